# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True, initializedcheck=False
"""The nogil time loops of fastrnn.

One `Layer` holds one layer's weights (both directions) in the engine's layout, built once at load time
by fastrnn._layout. `Layer.forward` runs the whole sequence:

  1. one gemm for the input projection of every timestep and both directions:
         gates (rows, D*G*H) = bias + x (rows, I) @ W_ih^T
  2. per direction, a time loop with the GIL released; per step one gemm/gemv of the previous hidden
     state against W_hh, accumulated into that step's gate rows (GRU: into a scratch, since b_hn and
     W_hn h stay inside r * (...)), then one fused C kernel that applies the gates and writes the state
     and the output row in place.

Rows of x/out/gates are (t, b) pairs in the caller's order: time-major (t*B + b) or batch-major
(b*T + t); the loop only sees strides, so batch_first costs no transpose. The output of direction d
lives at column offset d*P of `out`, which is the next layer's input as it stands. With `active`
(variable lengths, rows sorted by decreasing length), step t only touches the first active[t] rows.
The input projection then skips the padded rows too when at most 85% of the T*B rows are used
(_input_proj; with more used, one gemm over all rows costs no more than gathering the used ones).

Small layers skip BLAS in the time loop: W_ih, W_hh (and W_hr) are packed once at load time into panels
that interleave the gates of 16 hidden units, and a step with at most `packed_rows` (40, the measured
crossover) active rows runs one fused C kernel that streams the panels and applies the gate math while
the dot products are in registers (one row: all gates in one pass; several: 6-row register blocks). Steps
with more rows, and layers too large to pack, use BLAS. The kernels' instruction set (generic or AVX2+FMA)
is chosen once at import from what the CPU supports, capped by the environment variable
FASTRNN_ISA=generic|avx2.

Threads: with a budget of 2 or more (fastrnn.set_num_threads) the two directions of a bidirectional layer
run at once, one on fastrnn's persistent worker thread, each with its own panel input projection, when no
step needs BLAS. Otherwise, with 2+ CPUs, a direction whose steps all fit the panels and are large enough
(_split_min_step_flops: e.g. LSTM from H = 192 at one row; a streamed step from H = 384) is split by hidden units:
the caller takes the first half of the panels and the worker the rest, the same halves at every step (each core
keeps its half of W_hh in its own cache); both project their gate columns of the input through the panels (no BLAS,
whose idle threads would spin against the worker), and they meet at two spin barriers per step. Each unit's
arithmetic is the same as on one thread. `Stack` steps every layer of a unidirectional module for streaming
(module.stream()).
"""
import os
import warnings

import numpy as np
cimport numpy as cnp

cnp.import_array()

from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBUF_FORMAT
from cpython.mem cimport PyMem_Malloc, PyMem_Free
from libc.string cimport memcpy, memmove, memset
from cython cimport floating

from fastrnn._blas cimport gemm, gemv
from fastrnn._kernels cimport (
    FRNN_ACT_IDENTITY, FRNN_ISA_GENERIC, FRNN_ISA_AVX2, frnn_cpu_isa, frnn_set_isa, frnn_get_isa, frnn_lanes,
    frnn_lstm_step_f32, frnn_lstm_step_f64, frnn_gru_step_f32, frnn_gru_step_f64,
    frnn_rnn_step_f32, frnn_rnn_step_f64, frnn_copy_rows_f32, frnn_copy_rows_f64,
    frnn_sigmoid_f32, frnn_sigmoid_f64, frnn_tanh_f32, frnn_tanh_f64,
    frnn_packed_size_f32, frnn_packed_size_f64, frnn_pack_f32, frnn_pack_f64,
    frnn_lstm_rec_f32, frnn_lstm_rec_f64, frnn_gru_rec_f32, frnn_gru_rec_f64, frnn_rnn_rec_f32, frnn_rnn_rec_f64,
    frnn_run_pair, frnn_try_run_pair, frnn_barrier, frnn_barrier_wait,
)

# ---- instruction set of the kernels, chosen once at import ----
ISA_NAMES = ("generic", "avx2")


def cpu_isa():
    """The best kernel instruction set this CPU and OS run: 'generic' or 'avx2' (AVX2 + FMA)."""
    return ISA_NAMES[frnn_cpu_isa()]


def isa():
    """The instruction set the kernels use now."""
    return ISA_NAMES[frnn_get_isa()]


def _set_isa(str name):
    """Use the kernels of `name` ('generic' or 'avx2') from now on (tests and benchmarks)."""
    if name not in ISA_NAMES:
        raise ValueError(f"isa: expected one of {ISA_NAMES}, got {name!r}")
    level = ISA_NAMES.index(name)
    if level > frnn_cpu_isa():
        raise ValueError(f"isa: this CPU cannot run {name!r} (best: {cpu_isa()!r})")
    frnn_set_isa(level)


def _init_isa():
    requested = os.environ.get("FASTRNN_ISA", "").strip().lower()
    best = frnn_cpu_isa()
    if requested and requested not in ISA_NAMES:
        warnings.warn(f"FASTRNN_ISA={requested!r} is not one of {ISA_NAMES}; using {ISA_NAMES[best]!r}",
                      RuntimeWarning)
        requested = ""
    level = ISA_NAMES.index(requested) if requested else best
    if level > best:
        warnings.warn(f"FASTRNN_ISA={requested!r}: this CPU cannot run it; using {ISA_NAMES[best]!r}",
                      RuntimeWarning)
        level = best
    frnn_set_isa(level)


_init_isa()

# Cell kinds, as passed to Layer(kind, ...).
cdef enum:
    KIND_RNN_TANH = 0
    KIND_RNN_RELU = 1
    KIND_LSTM = 2
    KIND_GRU = 3

RNN_TANH, RNN_RELU, LSTM, GRU = KIND_RNN_TANH, KIND_RNN_RELU, KIND_LSTM, KIND_GRU


cdef inline Py_ssize_t num_gates(int kind) noexcept nogil:
    return 4 if kind == KIND_LSTM else (3 if kind == KIND_GRU else 1)


cdef struct LayerSpec:
    int kind
    Py_ssize_t num_directions, input_size, hidden_size, out_size, gate_rows
    void *w_ih
    void *bias
    void *w_hh[2]
    void *b_hn[2]
    void *w_hr[2]
    void *w_hh_pk[2]      # W_hh in panels for the fused one-row step, or NULL (BLAS path only)
    void *w_hr_pk[2]      # W_hr in panels, with w_hh_pk and a projection
    void *w_ih_pk[2]      # W_ih of each direction in panels, with w_hh_pk: few-row input projections
    Py_ssize_t packed_rows   # steps with at most this many active rows take the panels, more take BLAS


cdef inline void _lstm_step(Py_ssize_t n, Py_ssize_t H, floating *g, Py_ssize_t ldg, floating *c,
                            floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        frnn_lstm_step_f32(n, H, g, ldg, c, h, o, ldo)
    else:
        frnn_lstm_step_f64(n, H, g, ldg, c, h, o, ldo)


cdef inline void _gru_step(Py_ssize_t n, Py_ssize_t H, floating *gx, Py_ssize_t ldx, floating *gh,
                           const floating *b_hn, floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        frnn_gru_step_f32(n, H, gx, ldx, gh, b_hn, h, o, ldo)
    else:
        frnn_gru_step_f64(n, H, gx, ldx, gh, b_hn, h, o, ldo)


cdef inline void _rnn_step(Py_ssize_t n, Py_ssize_t H, floating *pre, Py_ssize_t ldp, int act,
                           floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        frnn_rnn_step_f32(n, H, pre, ldp, act, h, o, ldo)
    else:
        frnn_rnn_step_f64(n, H, pre, ldp, act, h, o, ldo)


cdef inline void _lstm_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K, const floating *w,
                           const floating *v, const floating *g, Py_ssize_t ldg, floating *c,
                           floating *h) noexcept nogil:
    if floating is float:
        frnn_lstm_rec_f32(n, H, j0, j1, K, w, v, g, ldg, c, h)
    else:
        frnn_lstm_rec_f64(n, H, j0, j1, K, w, v, g, ldg, c, h)


cdef inline void _gru_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const floating *w,
                          const floating *h_prev, const floating *gx, Py_ssize_t ldx, const floating *b_hn,
                          floating *h) noexcept nogil:
    if floating is float:
        frnn_gru_rec_f32(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h)
    else:
        frnn_gru_rec_f64(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h)


cdef inline void _rnn_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K, const floating *w,
                          const floating *v, const floating *pre, Py_ssize_t ldp, int act, floating *h,
                          Py_ssize_t ldh) noexcept nogil:
    if floating is float:
        frnn_rnn_rec_f32(n, H, j0, j1, K, w, v, pre, ldp, act, h, ldh)
    else:
        frnn_rnn_rec_f64(n, H, j0, j1, K, w, v, pre, ldp, act, h, ldh)


cdef inline void _copy_rows(Py_ssize_t n, Py_ssize_t H, const floating *src, Py_ssize_t lds,
                            floating *dst, Py_ssize_t ldd) noexcept nogil:
    if floating is float:
        frnn_copy_rows_f32(n, H, src, lds, dst, ldd)
    else:
        frnn_copy_rows_f64(n, H, src, lds, dst, ldd)


cdef inline void _hidden_proj(Py_ssize_t n, Py_ssize_t GH, Py_ssize_t P, const floating *h,
                              const floating *w_hh, floating beta, floating *dst,
                              Py_ssize_t ld_dst) noexcept nogil:
    """dst (n x GH, row stride ld_dst) = h (n x P) @ w_hh^T + beta * dst."""
    if n == 1:
        gemv(<int>GH, <int>P, <floating>1, w_hh, <int>P, h, beta, dst)
    else:
        gemm(False, True, <int>n, <int>GH, <int>P, <floating>1, h, <int>P, w_hh, <int>P, beta,
             dst, <int>ld_dst)


cdef struct Split:
    # One side of a direction's time loop split by hidden units across two threads (the caller, side 0, and
    # fastrnn's worker, side 1): this side's units of the gates and of the output, whole panels, the same
    # ones at every step so each core keeps its half of W_hh in its own cache; and the barrier both meet at.
    frnn_barrier *barrier
    int side
    long reached
    Py_ssize_t u0, u1, p0, p1
    Py_ssize_t g0, g1         # this side's rows of W_ih (of G*H) in the input projection


cdef inline void _sync(Split *part) noexcept nogil:
    if part != NULL:
        frnn_barrier_wait(part.barrier, part.side, &part.reached)


cdef inline void _fused_rows(int kind, Py_ssize_t n, Py_ssize_t H, Py_ssize_t P, floating *g_t,
                             Py_ssize_t g_bs, const floating *w_hh_pk, const floating *b_hn,
                             const floating *w_hr_pk, floating *h, floating *c, floating *o_t, Py_ssize_t o_bs,
                             floating *scratch, Split *part) noexcept nogil:
    """One step of n batch rows through the packed-panel kernels: no BLAS call, W_hh read once.
    The new state goes to scratch first (every unit's dot products read the whole old h). With `part`, only
    its units, and two barriers: after the dot products (every unit of the old h read; with a projection,
    every unit of the cell output written, which the projection reads) and after the copy to h (the new h
    complete before either side starts the next step)."""
    cdef floating *h_new = scratch
    cdef Py_ssize_t u0 = 0, u1 = H, p0 = 0, p1 = P
    if part != NULL:
        u0, u1, p0, p1 = part.u0, part.u1, part.p0, part.p1
    if kind == KIND_LSTM:
        _lstm_rec(n, H, u0, u1, P, w_hh_pk, h, g_t, g_bs, c, scratch)
        if w_hr_pk != NULL:
            h_new = scratch + n * H
            _sync(part)
            _rnn_rec(n, P, p0, p1, H, w_hr_pk, scratch, <floating *>NULL, 0, FRNN_ACT_IDENTITY, h_new, P)
        else:
            _sync(part)
    elif kind == KIND_GRU:
        _gru_rec(n, H, u0, u1, w_hh_pk, h, g_t, g_bs, b_hn, scratch)
        _sync(part)
    else:
        _rnn_rec(n, H, u0, u1, P, w_hh_pk, h, g_t, g_bs, kind == KIND_RNN_RELU, scratch, H)
        _sync(part)
    _copy_rows(n, p1 - p0, h_new + p0, P, h + p0, P)
    _copy_rows(n, p1 - p0, h_new + p0, P, o_t + p0, o_bs)
    _sync(part)


cdef void _run_direction(int kind, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t P,
                         floating *gates, Py_ssize_t g_ts, Py_ssize_t g_bs,
                         const floating *w_hh, const floating *b_hn, const floating *w_hr,
                         const floating *w_hh_pk, const floating *w_hr_pk,
                         floating *h, floating *c,
                         floating *out, Py_ssize_t o_ts, Py_ssize_t o_bs,
                         const Py_ssize_t *active, bint reverse, Py_ssize_t packed_rows,
                         floating *scratch, Split *part) noexcept nogil:
    """One direction of one layer over T steps. h (B x P) and c (B x H) hold the initial state on
    entry and the final state on return; scratch holds what Layer.scratch_size(B) says. With `part`, only
    that side's units (every step on the panels: B <= packed_rows)."""
    cdef Py_ssize_t s, t, n
    cdef Py_ssize_t GH = num_gates(kind) * H
    cdef floating *g_t
    cdef floating *o_t
    for s in range(T):
        t = T - 1 - s if reverse else s
        n = active[t] if active != NULL else B
        if n == 0:
            continue
        g_t = gates + t * g_ts
        o_t = out + t * o_ts
        if n <= packed_rows:
            _fused_rows(kind, n, H, P, g_t, g_bs, w_hh_pk, b_hn, w_hr_pk, h, c, o_t, o_bs, scratch, part)
        elif kind == KIND_GRU:
            _hidden_proj(n, GH, P, h, w_hh, 0, scratch, GH)
            _gru_step(n, H, g_t, g_bs, scratch, b_hn, h, o_t, o_bs)
        elif kind == KIND_LSTM:
            _hidden_proj(n, GH, P, h, w_hh, 1, g_t, g_bs)
            if w_hr == NULL:
                _lstm_step(n, H, g_t, g_bs, c, h, o_t, o_bs)
            else:
                _lstm_step(n, H, g_t, g_bs, c, scratch, <floating *>NULL, 0)
                gemm(False, True, <int>n, <int>P, <int>H, <floating>1, scratch, <int>H, w_hr, <int>H,
                     <floating>0, h, <int>P)
                _copy_rows(n, P, h, P, o_t, o_bs)
        else:
            _hidden_proj(n, GH, P, h, w_hh, 1, g_t, g_bs)
            _rnn_step(n, H, g_t, g_bs, kind == KIND_RNN_RELU, h, o_t, o_bs)


cdef inline void _proj_rows(const LayerSpec *L, Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t rows, const floating *x,
                            floating *gates, bint panels, const Split *part) noexcept nogil:
    """gates (rows x D*G*H) = bias + x (rows x I) @ W_ih^T, bias broadcast over rows (or absent), for directions
    d0..d1-1: through each direction's panels if `panels` (with `part`, only its gate columns), else one gemm for
    both directions (d0 = 0, d1 = D)."""
    cdef Py_ssize_t r, d, I = L.input_size, GH = L.gate_rows, N = L.num_directions * L.gate_rows
    cdef const floating *bias = <const floating *>L.bias
    cdef floating beta = 0
    if panels:
        for d in range(d0, d1):
            _rnn_rec(rows, GH, part.g0 if part != NULL else 0, part.g1 if part != NULL else GH, I,
                     <const floating *>L.w_ih_pk[d], x, bias + d * GH if bias != NULL else NULL, 0,
                     FRNN_ACT_IDENTITY, gates + d * GH, N)
        return
    if bias != NULL:
        for r in range(rows):
            _copy_rows(1, N, bias, N, gates + r * N, N)
        beta = 1
    if rows == 1:
        gemv(<int>N, <int>I, <floating>1, <const floating *>L.w_ih, <int>I, x, beta, gates)
    else:
        gemm(False, True, <int>rows, <int>N, <int>I, <floating>1, x, <int>I, <const floating *>L.w_ih, <int>I, beta,
             gates, <int>N)


cdef inline Py_ssize_t _run_of_rows(const Py_ssize_t *active, Py_ssize_t T, Py_ssize_t B, bint batch_first,
                                    Py_ssize_t i, Py_ssize_t *first) noexcept nogil:
    """The i-th run of consecutive rows (of x / gates) that a variable-length batch uses: returns its length and
    sets *first. Time-major: step i's first active[i] rows; batch-major: row i's steps 0 .. len_i - 1, with
    len_i = the steps where active > i (active is non-increasing, so a binary search)."""
    cdef Py_ssize_t lo = 0, hi = T, mid
    if not batch_first:
        first[0] = i * B
        return active[i]
    while lo < hi:
        mid = (lo + hi) // 2
        if active[mid] > i:
            lo = mid + 1
        else:
            hi = mid
    first[0] = i * T
    return lo


cdef void _input_proj(const LayerSpec *L, Py_ssize_t d0, Py_ssize_t d1, Py_ssize_t T, Py_ssize_t B,
                      bint batch_first, const Py_ssize_t *active, floating *x_used, const floating *x,
                      floating *gates, bint panels, const Split *part) noexcept nogil:
    """The input projection of the T*B rows (see _proj_rows), or, with x_used (room for the used rows of x),
    only the rows a variable-length batch reads: every padded step skipped. Panels take the runs of used rows
    one by one (no setup per call); BLAS gets them gathered into x_used for one gemm into the front of gates,
    then each run moves back to its place, last run first (a run's place is never before where it landed)."""
    cdef Py_ssize_t i, n, r0, used = 0, I = L.input_size, N = L.num_directions * L.gate_rows
    cdef Py_ssize_t runs = B if batch_first else T
    if x_used == NULL:
        _proj_rows(L, d0, d1, T * B, x, gates, panels, part)
        return
    if panels:
        for i in range(runs):
            n = _run_of_rows(active, T, B, batch_first, i, &r0)
            if n > 0:
                _proj_rows(L, d0, d1, n, x + r0 * I, gates + r0 * N, True, part)
        return
    for i in range(runs):
        n = _run_of_rows(active, T, B, batch_first, i, &r0)
        memcpy(x_used + used * I, x + r0 * I, n * I * sizeof(floating))
        used += n
    _proj_rows(L, d0, d1, used, x_used, gates, False, NULL)
    for i in range(runs - 1, -1, -1):
        n = _run_of_rows(active, T, B, batch_first, i, &r0)
        used -= n
        if r0 != used:
            memmove(gates + r0 * N, gates + used * N, n * N * sizeof(floating))


# Threads the engine may use (fastrnn.set_num_threads): with 2 or more, the two directions of a bidirectional
# layer run at once, one on fastrnn's persistent worker thread (src_c/worker.c).
cdef int _num_threads = 1
# Least work (flops of one direction's time loop) worth waking the worker for: its wake-up and the final
# join cost ~10-50 us on this VM (bench/FLOOR.md).
cdef double _PARALLEL_MIN_FLOPS = 4e6


# CPUs this process may run on, read whenever the budget is set: the split's barriers spin, so two threads
# sharing one CPU (a budget above the affinity mask) would wait out each other's time slices at every step.
cdef int _num_cpus = 1


def _set_num_threads(int n):
    global _num_threads, _num_cpus
    _num_threads = max(1, n)
    _num_cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def _get_num_threads():
    return _num_threads


# Variable-length batches: the input projection skips the padded rows (time-major: a step's finished rows;
# batch-major: a row's steps past its length) when at most this fraction of the T*B rows is used, and runs
# one gemm over all rows otherwise: measured crossover, bench/FLOOR.md.
cdef double _skip_padded_fraction = 0.85


def _set_skip_padded_fraction(double fraction):
    """Tests: skip the padded rows from this used fraction down (1: always, -1: never). Returns the old value."""
    global _skip_padded_fraction
    old, _skip_padded_fraction = _skip_padded_fraction, fraction
    return old


# Least recurrent work (flops: 2 * rows * gate rows * P) worth splitting a step's units across two threads, per step
# and per call: measured (bench/FLOOR.md). Per step: LSTM 192 at one row (3e5) gains 1.3-1.5x, LSTM/GRU 128 (1.3e5,
# 1.0e5) about break even, since the two barriers per step and the panel input projection eat what half a step
# saves. Per call: waking the worker costs ~20 us, so a streamed LSTM 256 step (5e5) loses, LSTM 512 (2.1e6) gains.
cdef double _split_min_step_flops = 2.5e5
cdef double _split_min_call_flops = 1.5e6


def _set_split_min_flops(double step, double call):
    """Tests: split steps across two threads from this much work per step and per call on (0, 0: always, with 2+
    threads and every step on the panels). Returns the old (step, call)."""
    global _split_min_step_flops, _split_min_call_flops
    old = (_split_min_step_flops, _split_min_call_flops)
    _split_min_step_flops, _split_min_call_flops = step, call
    return old


def _set_parallel_min_flops(double flops):
    """Tests: run directions at once from this much work on (0: always, with 2+ threads). Returns the old value."""
    global _PARALLEL_MIN_FLOPS
    old, _PARALLEL_MIN_FLOPS = _PARALLEL_MIN_FLOPS, flops
    return old


_set_num_threads(len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1))


cdef inline Py_ssize_t _dir_scratch(const LayerSpec *L, Py_ssize_t B) noexcept nogil:
    """Items of scratch one direction's time loop needs for B rows."""
    cdef Py_ssize_t blas = 1, fused = 0
    if L.kind == KIND_GRU:
        blas = B * L.gate_rows
    elif L.w_hr[0] != NULL:
        blas = B * L.hidden_size
    if L.w_hh_pk[0] != NULL:
        fused = min(B, L.packed_rows) * (L.hidden_size + L.out_size)
    return max(1, blas, fused)


cdef struct DirectionTask:
    # one direction of one layer over the whole sequence: the arguments of _run_direction
    const LayerSpec *L
    int d
    bint own_input            # compute this direction's input projection first (through the panels)
    const void *x
    void *x_used              # non-NULL: project only the rows the batch uses (see _input_proj)
    bint batch_first
    Py_ssize_t T, B, g_ts, g_bs, o_ts, o_bs
    void *gates
    void *h
    void *c
    void *out
    void *scratch
    const Py_ssize_t *active
    Split *part               # non-NULL: only this side's units (split across two threads)


cdef void _direction_task(floating *gates, DirectionTask *t) noexcept nogil:
    cdef const LayerSpec *L = t.L
    cdef Py_ssize_t d = t.d, H = L.hidden_size, P = L.out_size, N = L.num_directions * L.gate_rows
    if t.own_input:
        _input_proj(L, d, d + 1, t.T, t.B, t.batch_first, t.active, <floating *>t.x_used, <const floating *>t.x,
                    gates, True, t.part)
        _sync(t.part)  # every gate column projected before either side's time loop reads them
    _run_direction(L.kind, t.T, t.B, H, P, gates + d * L.gate_rows, t.g_ts, t.g_bs,
                   <const floating *>L.w_hh[d], <const floating *>L.b_hn[d], <const floating *>L.w_hr[d],
                   <const floating *>L.w_hh_pk[d], <const floating *>L.w_hr_pk[d],
                   <floating *>t.h + d * t.B * P, <floating *>t.c + d * t.B * H if t.c != NULL else NULL,
                   <floating *>t.out + d * P, t.o_ts, t.o_bs, t.active, d == 1, L.packed_rows,
                   <floating *>t.scratch + d * _dir_scratch(L, t.B), t.part)


cdef void _direction_task_f32(void *task) noexcept nogil:
    _direction_task(<float *>(<DirectionTask *>task).gates, <DirectionTask *>task)


cdef void _direction_task_f64(void *task) noexcept nogil:
    _direction_task(<double *>(<DirectionTask *>task).gates, <DirectionTask *>task)


cdef inline Py_ssize_t _split_at(Py_ssize_t n, Py_ssize_t lanes) noexcept nogil:
    """Where side 1's units start: half of the panels of n units (side 0 takes the extra one)."""
    return min(n, (n + 2 * lanes - 1) // (2 * lanes) * lanes)


cdef Py_ssize_t _split_runs = 0


def _split_run_count():
    """Tests: how many direction time loops have run split across two threads so far."""
    return _split_runs


cdef void _run_split(const LayerSpec *L, DirectionTask *task, Py_ssize_t itemsize) noexcept nogil:
    """Run one direction's time loop split by units across this thread and the worker, or, when the worker
    is busy (another Python thread's parallel region), all of it here."""
    global _split_runs
    cdef DirectionTask sides[2]
    cdef Split parts[2]
    cdef frnn_barrier barrier
    cdef Py_ssize_t lanes = frnn_lanes(itemsize)
    cdef Py_ssize_t hu = _split_at(L.hidden_size, lanes), hp = _split_at(L.out_size, lanes)
    cdef Py_ssize_t hg = _split_at(L.gate_rows, lanes)
    cdef int side
    cdef bint ran
    memset(&barrier, 0, sizeof(barrier))
    for side in range(2):
        sides[side] = task[0]
        sides[side].part = &parts[side]
        parts[side].barrier, parts[side].side, parts[side].reached = &barrier, side, 0
    parts[0].u0, parts[0].u1, parts[0].p0, parts[0].p1, parts[0].g0, parts[0].g1 = 0, hu, 0, hp, 0, hg
    parts[1].u0, parts[1].u1, parts[1].p0, parts[1].p1, parts[1].g0, parts[1].g1 = (
        hu, L.hidden_size, hp, L.out_size, hg, L.gate_rows)
    if itemsize == 4:
        ran = frnn_try_run_pair(_direction_task_f32, &sides[0], &sides[1])
    else:
        ran = frnn_try_run_pair(_direction_task_f64, &sides[0], &sides[1])
    if ran:
        _split_runs += 1  # only the worker's owner gets here, one at a time
    else:
        if itemsize == 4:
            _direction_task_f32(task)
        else:
            _direction_task_f64(task)


cdef void _run_layer(const LayerSpec *L, Py_ssize_t T, Py_ssize_t B, bint batch_first, const floating *x,
                     floating *h, floating *c, floating *out, floating *gates, floating *scratch,
                     const Py_ssize_t *active, floating *x_used) noexcept nogil:
    cdef Py_ssize_t D = L.num_directions, GH = L.gate_rows, P = L.out_size
    cdef Py_ssize_t N = D * GH, DP = D * P, d
    cdef DirectionTask tasks[2]
    cdef double step_flops = 2.0 * B * GH * P
    # Both directions at once only when no step calls BLAS: every step's rows fit the panels, and each
    # direction computes its own input projection through the panels, so the BLAS's own threads never run
    # (or spin) inside this parallel region.
    cdef bint parallel = (D == 2 and _num_threads >= 2 and B <= L.packed_rows
                          and T * step_flops >= _PARALLEL_MIN_FLOPS)
    # Otherwise, with steps large enough, each direction's time loop split by units across both threads
    # (the same condition on BLAS: every step on the panels; the input projection stays one gemm, before).
    cdef bint split = (not parallel and _num_threads >= 2 and _num_cpus >= 2 and B <= L.packed_rows
                       and step_flops >= _split_min_step_flops and T * step_flops >= _split_min_call_flops)
    if not parallel and not split:
        _input_proj(L, 0, D, T, B, batch_first, active, x_used, x, gates, T * B <= L.packed_rows, NULL)
    for d in range(D):
        tasks[d].L, tasks[d].d, tasks[d].T, tasks[d].B, tasks[d].active = L, d, T, B, active
        tasks[d].own_input, tasks[d].x, tasks[d].x_used = parallel or split, x, x_used
        tasks[d].batch_first = batch_first
        if batch_first:
            tasks[d].g_ts, tasks[d].g_bs, tasks[d].o_ts, tasks[d].o_bs = N, T * N, DP, T * DP
        else:
            tasks[d].g_ts, tasks[d].g_bs, tasks[d].o_ts, tasks[d].o_bs = B * N, N, B * DP, DP
        tasks[d].gates, tasks[d].h, tasks[d].c, tasks[d].out, tasks[d].scratch = gates, h, c, out, scratch
        tasks[d].part = NULL
    if parallel:
        if floating is float:
            frnn_run_pair(_direction_task_f32, &tasks[0], &tasks[1])
        else:
            frnn_run_pair(_direction_task_f64, &tasks[0], &tasks[1])
    else:
        for d in range(D):
            if split:
                _run_split(L, &tasks[d], sizeof(floating))
            else:
                _direction_task(gates, &tasks[d])


cdef void *_data(object a, Py_ssize_t count, Py_ssize_t itemsize, bint writable, str name) except NULL:
    """Pointer to the data of a C-contiguous buffer holding at least `count` items of `itemsize`.

    The engine trusts the Python layer for shapes, but checks sizes here so a wrong call can never
    read or write out of bounds. The pointer stays valid while the caller holds the array.
    A well-formed numpy array is checked through its struct (tens of ns: this runs six times per
    Layer.forward, which matters for one-step streaming calls); anything else goes through the buffer
    protocol, which also words the errors."""
    cdef cnp.ndarray arr
    if type(a) is cnp.ndarray:
        arr = <cnp.ndarray>a
        if (cnp.PyArray_TYPE(arr) == (cnp.NPY_FLOAT32 if itemsize == 4 else cnp.NPY_FLOAT64)
                and cnp.PyArray_IS_C_CONTIGUOUS(arr) and cnp.PyArray_ISALIGNED(arr)
                and cnp.PyArray_ISNOTSWAPPED(arr) and (not writable or cnp.PyArray_ISWRITEABLE(arr))
                and cnp.PyArray_NBYTES(arr) >= count * itemsize):
            return cnp.PyArray_DATA(arr)
    return _buffer_data(a, count, itemsize, writable, name)


cdef void *_buffer_data(object a, Py_ssize_t count, Py_ssize_t itemsize, bint writable, str name) except NULL:
    cdef Py_buffer view
    cdef int flags = PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | (PyBUF_WRITABLE if writable else 0)
    PyObject_GetBuffer(a, &view, flags)
    try:
        fmt = <bytes>view.format if view.format != NULL else b''
        fmt = fmt[len(fmt) - 1:]
        if view.itemsize != itemsize or fmt not in (b'f', b'd'):
            raise TypeError(f"engine buffer {name!r}: expected {itemsize}-byte floats, got format {fmt!r}")
        if view.len < count * itemsize:
            raise ValueError(f"engine buffer {name!r}: holds {view.len // itemsize} items, needs {count}")
        return view.buf
    finally:
        PyBuffer_Release(&view)


def _packed_wins(int kind, Py_ssize_t H, Py_ssize_t P, Py_ssize_t itemsize):
    """Whether the fused panel kernel beats BLAS gemv + gate kernel for a one-row step (load-time choice)."""
    return num_gates(kind) * H * P * itemsize <= _PACKED_MAX_BYTES


# Largest W_hh (bytes) the packed kernel takes by default: measured crossover, see bench/FLOOR.md.
_PACKED_MAX_BYTES = 64 << 20
# Most active rows a step runs through the panels before BLAS gemm wins: measured crossover, bench/FLOOR.md.
_PACKED_MAX_ROWS = 40


def _pack(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, w, Py_ssize_t itemsize):
    """W (G*H x K, torch layout) -> a new array of panels (layout in src_c/fastrnn_kernels.h)."""
    cdef Py_ssize_t size
    if itemsize == 4:
        size = frnn_packed_size_f32(G, H, K)
        out = np.empty(size, np.float32)
        frnn_pack_f32(G, H, K, <const float *>_data(w, G * H * K, 4, False, "w"), K,
                      <float *>_data(out, size, 4, True, "packed"))
    else:
        size = frnn_packed_size_f64(G, H, K)
        out = np.empty(size, np.float64)
        frnn_pack_f64(G, H, K, <const double *>_data(w, G * H * K, 8, False, "w"), K,
                      <double *>_data(out, size, 8, True, "packed"))
    out.flags.writeable = False
    return out


cdef class Layer:
    """One layer's weights in the engine's layout (built by fastrnn._layout), both directions.

    w_ih (D*G*H, I) and bias (D*G*H or None) are the directions stacked so the input projection is one
    gemm; w_hh[d] (G*H, P), b_hn[d] (H, GRU only, or None), w_hr[d] (P, H, LSTM projection, or None).
    All arrays C-contiguous, of one float dtype.

    recurrent: 'auto' (default), 'packed' or 'blas': how a step with one batch row computes W_hh h.
    'packed' copies W_ih, W_hh (and W_hr) once into panels for the fused kernel; 'auto' does so where
    that beats BLAS gemv on the measured crossover (bench/FLOOR.md), i.e. while W_hh is small. With
    panels, a step with up to `packed_rows` active rows takes them, a step with more takes BLAS gemm.
    """
    cdef LayerSpec spec
    cdef readonly Py_ssize_t itemsize
    cdef readonly object arrays           # keeps every weight array alive while spec points into them

    def __init__(self, int kind, w_ih, bias, list w_hh, list b_hn, list w_hr, str recurrent="auto"):
        cdef Py_ssize_t d, D = len(w_hh)
        if kind not in (KIND_RNN_TANH, KIND_RNN_RELU, KIND_LSTM, KIND_GRU):
            raise ValueError(f"unknown kind {kind}")
        if D not in (1, 2) or len(b_hn) != D or len(w_hr) != D:
            raise ValueError("Layer needs 1 or 2 directions")
        cdef Py_ssize_t G = num_gates(kind), H = w_hh[0].shape[0] // G, P = w_hh[0].shape[1]
        cdef Py_ssize_t I = w_ih.shape[1], s = w_ih.itemsize
        if w_ih.shape[0] != D * G * H or w_hh[0].shape[0] != G * H:
            raise ValueError("w_ih rows must be num_directions * gates * hidden_size")
        self.itemsize = s
        self.arrays = (w_ih, bias, w_hh, b_hn, w_hr)
        self.spec.kind = kind
        self.spec.num_directions = D
        self.spec.input_size = I
        self.spec.hidden_size = H
        self.spec.out_size = P
        self.spec.gate_rows = G * H
        self.spec.w_ih = _data(w_ih, D * G * H * I, s, False, "w_ih")
        self.spec.bias = _data(bias, D * G * H, s, False, "bias") if bias is not None else NULL
        for d in range(2):
            self.spec.w_hh[d] = self.spec.b_hn[d] = self.spec.w_hr[d] = NULL
            self.spec.w_hh_pk[d] = self.spec.w_hr_pk[d] = NULL
        self.spec.w_ih_pk[0] = self.spec.w_ih_pk[1] = NULL
        self.spec.packed_rows = 0
        for d in range(D):
            self.spec.w_hh[d] = _data(w_hh[d], G * H * P, s, False, "w_hh")
            if b_hn[d] is not None:
                self.spec.b_hn[d] = _data(b_hn[d], H, s, False, "b_hn")
            if w_hr[d] is not None:
                self.spec.w_hr[d] = _data(w_hr[d], P * H, s, False, "w_hr")
            elif P != H:
                raise ValueError("w_hh columns must equal hidden_size without a projection")
        if recurrent not in ("auto", "packed", "blas"):
            raise ValueError(f"recurrent: expected 'auto', 'packed' or 'blas', got {recurrent!r}")
        if recurrent == "packed" or (recurrent == "auto" and _packed_wins(kind, H, P, s)):
            packed = []
            for d in range(D):
                panels = _pack(1, G * H, I, w_ih[d * G * H:(d + 1) * G * H], s)
                packed.append(panels)
                self.spec.w_ih_pk[d] = _data(panels, panels.size, s, False, "w_ih packed")
                panels = _pack(G, H, P, w_hh[d], s)
                packed.append(panels)
                self.spec.w_hh_pk[d] = _data(panels, panels.size, s, False, "w_hh packed")
                if w_hr[d] is not None:
                    panels = _pack(1, P, H, w_hr[d], s)
                    packed.append(panels)
                    self.spec.w_hr_pk[d] = _data(panels, panels.size, s, False, "w_hr packed")
            self.arrays += tuple(packed)
            self.spec.packed_rows = max(1, _PACKED_MAX_ROWS)

    @property
    def recurrent(self):
        """'packed' if one-row steps use the fused panel kernel, else 'blas'."""
        return "packed" if self.spec.w_hh_pk[0] != NULL else "blas"

    @property
    def packed_rows(self):
        """Most active rows a step runs through the panels (0: always BLAS)."""
        return self.spec.packed_rows

    @property
    def kind(self):
        return self.spec.kind

    @property
    def num_directions(self):
        return self.spec.num_directions

    @property
    def input_size(self):
        return self.spec.input_size

    @property
    def hidden_size(self):
        return self.spec.hidden_size

    @property
    def out_size(self):
        return self.spec.out_size

    @property
    def gate_rows(self):
        return self.spec.gate_rows

    def scratch_size(self, Py_ssize_t B):
        """Items of scratch `forward` needs for a batch of B rows (at least 1)."""
        return self._scratch_size(B)

    cdef Py_ssize_t _scratch_size(self, Py_ssize_t B):
        # each direction its own, since the two may run at once
        return self.spec.num_directions * _dir_scratch(&self.spec, B)

    def forward(self, x, Py_ssize_t T, Py_ssize_t B, bint batch_first, h, c, out, gates, scratch,
                active=None):
        """Run the layer over a whole sequence; see the module docstring for the layouts.

        x (T*B, I) input rows; h (D, B, P) and c (D, B, H, LSTM only) initial state, overwritten with
        the final state; out (T*B, D*P) receives the output; gates (T*B, D*G*H) and scratch are
        work space; active (T,) intp or None: rows alive at each step, rows sorted by decreasing length.
        """
        cdef Py_ssize_t D = self.spec.num_directions, s = self.itemsize, rows = T * B, t
        cdef Py_ssize_t H = self.spec.hidden_size, P = self.spec.out_size
        if T < 0 or B < 0:
            raise ValueError("T and B must be non-negative")
        if rows == 0:
            return
        cdef void *px = _data(x, rows * self.spec.input_size, s, False, "x")
        cdef void *ph = _data(h, D * B * P, s, True, "h")
        cdef void *pc = _data(c, D * B * H, s, True, "c") if self.spec.kind == KIND_LSTM else NULL
        cdef void *po = _data(out, rows * D * P, s, True, "out")
        cdef void *pg = _data(gates, rows * D * self.spec.gate_rows, s, True, "gates")
        cdef void *pscr = _data(scratch, self._scratch_size(B), s, True, "scratch")
        cdef const Py_ssize_t[::1] act
        cdef const Py_ssize_t *pa = NULL
        cdef Py_ssize_t used = 0, N = D * self.spec.gate_rows, I = self.spec.input_size
        cdef bint staircase = True
        cdef void *pxu = NULL
        if active is not None:
            act = active
            if act.shape[0] != T:
                raise ValueError(f"active: expected {T} entries, got {act.shape[0]}")
            for t in range(T):
                if act[t] < 0 or act[t] > B:
                    raise ValueError(f"active[{t}] = {act[t]} is outside [0, {B}]")
                used += act[t]
                staircase = staircase and (t == 0 or act[t] <= act[t - 1])
            pa = &act[0]
            # Skip the padded rows in the input projection when few enough rows are used that it pays
            # (bench/FLOOR.md). The used rows of x are gathered behind the room their gates need at the front
            # of `gates` when they fit there, else into a buffer of their own.
            if staircase and used < rows and used <= _skip_padded_fraction * rows:
                if used * (N + I) <= rows * N:
                    pxu = <char *>pg + (rows * N - used * I) * s
                else:
                    x_used = np.empty(max(1, used * I), np.float32 if s == 4 else np.float64)
                    pxu = cnp.PyArray_DATA(x_used)
        if s == 4:
            with nogil:
                _run_layer(&self.spec, T, B, batch_first, <float *>px, <float *>ph, <float *>pc,
                           <float *>po, <float *>pg, <float *>pscr, pa, <float *>pxu)
        else:
            with nogil:
                _run_layer(&self.spec, T, B, batch_first, <double *>px, <double *>ph, <double *>pc,
                           <double *>po, <double *>pg, <double *>pscr, pa, <double *>pxu)

cdef void _run_stack(const LayerSpec *specs, Py_ssize_t L, Py_ssize_t T, Py_ssize_t B, const floating *x,
                     floating *out, floating *h, floating *c, floating *gates, floating *scratch,
                     floating *between) noexcept nogil:
    """T steps of B rows through L unidirectional layers, step-major: step t runs layer 0..L-1 before
    step t + 1, each layer's input projection over its own B rows, so the arithmetic of a step never
    depends on how the steps were grouped into calls. One `between` buffer carries a layer's output to
    the next: _run_layer has read all of its input (into gates) before it writes its output."""
    cdef Py_ssize_t t, l, I0 = specs[0].input_size, P = specs[L - 1].out_size, H = specs[0].hidden_size
    cdef const floating *v
    cdef floating *dest
    for t in range(T):
        v = x + t * B * I0
        for l in range(L):
            dest = out + t * B * P if l == L - 1 else between
            _run_layer(&specs[l], 1, B, False, v, h + l * B * P, c + l * B * H if c != NULL else NULL,
                       dest, gates, scratch, <const Py_ssize_t *>NULL, <floating *>NULL)
            v = dest


cdef class Stack:
    """A unidirectional module's layers stepped together for streaming, with a fixed batch size.

    Owns the recurrent state, `h` (L, B, P) and, for LSTM, `c` (L, B, H) (numpy arrays: read, zero or set
    them in place), and every work buffer, so `run` allocates nothing and holds the GIL for no step.
    """
    cdef LayerSpec *specs
    cdef readonly Py_ssize_t num_layers, batch_size, input_size, out_size
    cdef readonly object layers           # keeps the weights the specs point into alive
    cdef readonly object h, c
    cdef object work                      # gates, scratch, between
    cdef void *ph
    cdef void *pc
    cdef void *pgates
    cdef void *pscratch
    cdef void *pbetween
    cdef int typenum

    def __cinit__(self):
        self.specs = NULL

    def __dealloc__(self):
        PyMem_Free(self.specs)

    def __init__(self, list layers, Py_ssize_t batch_size):
        cdef Layer layer, first
        cdef Py_ssize_t l, L = len(layers), B = batch_size
        if L < 1 or B < 1:
            raise ValueError("Stack needs at least one layer and batch_size >= 1")
        for l in range(L):
            if not isinstance(layers[l], Layer):
                raise TypeError(f"layers[{l}]: expected a Layer, got {type(layers[l]).__name__}")
        first = layers[0]
        for l in range(L):
            layer = layers[l]
            if layer.spec.num_directions != 1:
                raise ValueError("Stack: layers must be unidirectional")
            if (layer.itemsize != first.itemsize or layer.spec.kind != first.spec.kind
                    or layer.spec.hidden_size != first.spec.hidden_size
                    or layer.spec.out_size != first.spec.out_size):
                raise ValueError("Stack: layers must share kind, dtype, hidden and output sizes")
            if l > 0 and layer.spec.input_size != first.spec.out_size:
                raise ValueError(f"Stack: layers[{l}] takes {layer.spec.input_size} inputs, "
                                 f"layers[{l - 1}] gives {first.spec.out_size}")
        self.specs = <LayerSpec *>PyMem_Malloc(L * sizeof(LayerSpec))
        if self.specs == NULL:
            raise MemoryError()
        for l in range(L):
            self.specs[l] = (<Layer>layers[l]).spec
        self.layers = tuple(layers)
        self.num_layers, self.batch_size = L, B
        self.input_size, self.out_size = first.spec.input_size, first.spec.out_size
        dtype = np.float32 if first.itemsize == 4 else np.float64
        self.typenum = cnp.NPY_FLOAT32 if first.itemsize == 4 else cnp.NPY_FLOAT64
        H, P = first.spec.hidden_size, first.spec.out_size
        self.h = np.zeros((L, B, P), dtype)
        self.c = np.zeros((L, B, H), dtype) if first.spec.kind == KIND_LSTM else None
        gates = np.empty(B * first.spec.gate_rows, dtype)
        scratch = np.empty(max([(<Layer>layer)._scratch_size(B) for layer in layers]), dtype)
        between = np.empty(B * P, dtype)
        self.work = (gates, scratch, between)
        s = first.itemsize
        self.ph = _data(self.h, L * B * P, s, True, "h")
        self.pc = _data(self.c, L * B * H, s, True, "c") if self.c is not None else NULL
        self.pgates = _data(gates, gates.size, s, True, "gates")
        self.pscratch = _data(scratch, scratch.size, s, True, "scratch")
        self.pbetween = _data(between, between.size, s, True, "between")

    def run(self, x, out):
        """Run the steps of x (T, B, input_size) into out (T, B, out_size), carrying the state.

        Returns False, touching nothing, unless both are numpy arrays of the module's dtype, C-contiguous
        and aligned (out writeable): then the caller converts. Only the sizes are checked (T is read
        from x's size), so (T, input_size) serves for B = 1; the shapes are the caller's business."""
        cdef cnp.ndarray xa, oa
        if type(x) is not cnp.ndarray or type(out) is not cnp.ndarray:
            return False
        xa, oa = <cnp.ndarray>x, <cnp.ndarray>out
        if not (cnp.PyArray_TYPE(xa) == self.typenum and cnp.PyArray_TYPE(oa) == self.typenum
                and cnp.PyArray_IS_C_CONTIGUOUS(xa) and cnp.PyArray_IS_C_CONTIGUOUS(oa)
                and cnp.PyArray_ISALIGNED(xa) and cnp.PyArray_ISALIGNED(oa)
                and cnp.PyArray_ISNOTSWAPPED(xa) and cnp.PyArray_ISNOTSWAPPED(oa)
                and cnp.PyArray_ISWRITEABLE(oa)):
            return False
        cdef Py_ssize_t BI = self.batch_size * self.input_size, n = cnp.PyArray_SIZE(xa)
        cdef Py_ssize_t T = n // BI
        if n != T * BI or cnp.PyArray_SIZE(oa) != T * self.batch_size * self.out_size:
            raise ValueError(f"Stack.run: x holds {n} values and out {cnp.PyArray_SIZE(oa)}; expected "
                             f"T * {BI} and T * {self.batch_size * self.out_size}")
        if T == 0:
            return True
        if self.typenum == cnp.NPY_FLOAT32:
            with nogil:
                _run_stack(self.specs, self.num_layers, T, self.batch_size, <const float *>cnp.PyArray_DATA(xa),
                           <float *>cnp.PyArray_DATA(oa), <float *>self.ph, <float *>self.pc,
                           <float *>self.pgates, <float *>self.pscratch, <float *>self.pbetween)
        else:
            with nogil:
                _run_stack(self.specs, self.num_layers, T, self.batch_size, <const double *>cnp.PyArray_DATA(xa),
                           <double *>cnp.PyArray_DATA(oa), <double *>self.ph, <double *>self.pc,
                           <double *>self.pgates, <double *>self.pscratch, <double *>self.pbetween)
        return True


# ---- direct access to the gate kernels, so tests can check them against tests/reference.py ----

def _kernel_lstm_step(gates, c, h):
    """Apply the LSTM gate kernel to gates (n, 4H) in place on c (n, H) and h (n, H)."""
    n, H = c.shape
    if gates.dtype.itemsize == 4:
        frnn_lstm_step_f32(n, H, <float *>_data(gates, n * 4 * H, 4, False, "gates"), 4 * H,
                           <float *>_data(c, n * H, 4, True, "c"), <float *>_data(h, n * H, 4, True, "h"), NULL, 0)
    else:
        frnn_lstm_step_f64(n, H, <double *>_data(gates, n * 4 * H, 8, False, "gates"), 4 * H,
                           <double *>_data(c, n * H, 8, True, "c"), <double *>_data(h, n * H, 8, True, "h"), NULL, 0)


def _kernel_gru_step(gx, gh, b_hn, h):
    """Apply the GRU gate kernel: gx, gh (n, 3H), b_hn (H,) or None, h (n, H) updated in place."""
    n, H = h.shape
    if h.dtype.itemsize == 4:
        frnn_gru_step_f32(n, H, <float *>_data(gx, n * 3 * H, 4, False, "gx"), 3 * H,
                          <float *>_data(gh, n * 3 * H, 4, False, "gh"),
                          <float *>_data(b_hn, H, 4, False, "b_hn") if b_hn is not None else NULL,
                          <float *>_data(h, n * H, 4, True, "h"), NULL, 0)
    else:
        frnn_gru_step_f64(n, H, <double *>_data(gx, n * 3 * H, 8, False, "gx"), 3 * H,
                          <double *>_data(gh, n * 3 * H, 8, False, "gh"),
                          <double *>_data(b_hn, H, 8, False, "b_hn") if b_hn is not None else NULL,
                          <double *>_data(h, n * H, 8, True, "h"), NULL, 0)


def _kernel_rnn_step(pre, bint relu, h):
    """Apply the RNN kernel: pre (n, H) -> h (n, H)."""
    n, H = h.shape
    if h.dtype.itemsize == 4:
        frnn_rnn_step_f32(n, H, <float *>_data(pre, n * H, 4, False, "pre"), H, relu,
                          <float *>_data(h, n * H, 4, True, "h"), NULL, 0)
    else:
        frnn_rnn_step_f64(n, H, <double *>_data(pre, n * H, 8, False, "pre"), H, relu,
                          <double *>_data(h, n * H, 8, True, "h"), NULL, 0)


def _kernel_activation(str name, x):
    """Apply 'sigmoid' or 'tanh' in place to a contiguous float array."""
    n = x.size
    if name not in ("sigmoid", "tanh"):
        raise ValueError(f"unknown activation {name!r}")
    if x.dtype.itemsize == 4:
        if name == "sigmoid":
            frnn_sigmoid_f32(n, <float *>_data(x, n, 4, True, "x"))
        else:
            frnn_tanh_f32(n, <float *>_data(x, n, 4, True, "x"))
    else:
        if name == "sigmoid":
            frnn_sigmoid_f64(n, <double *>_data(x, n, 8, True, "x"))
        else:
            frnn_tanh_f64(n, <double *>_data(x, n, 8, True, "x"))
