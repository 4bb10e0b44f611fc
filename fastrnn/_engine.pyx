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
"""
from cpython.buffer cimport PyObject_GetBuffer, PyBuffer_Release, PyBUF_C_CONTIGUOUS, PyBUF_WRITABLE, PyBUF_FORMAT
from cython cimport floating

from fastrnn._blas cimport gemm, gemv
from fastrnn._kernels cimport (
    frnn_lstm_step_f32, frnn_lstm_step_f64, frnn_gru_step_f32, frnn_gru_step_f64,
    frnn_rnn_step_f32, frnn_rnn_step_f64, frnn_copy_rows_f32, frnn_copy_rows_f64,
    frnn_sigmoid_f32, frnn_sigmoid_f64, frnn_tanh_f32, frnn_tanh_f64,
)

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


cdef inline void _rnn_step(Py_ssize_t n, Py_ssize_t H, floating *pre, Py_ssize_t ldp, int relu,
                           floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        frnn_rnn_step_f32(n, H, pre, ldp, relu, h, o, ldo)
    else:
        frnn_rnn_step_f64(n, H, pre, ldp, relu, h, o, ldo)


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


cdef void _run_direction(int kind, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t P,
                         floating *gates, Py_ssize_t g_ts, Py_ssize_t g_bs,
                         const floating *w_hh, const floating *b_hn, const floating *w_hr,
                         floating *h, floating *c,
                         floating *out, Py_ssize_t o_ts, Py_ssize_t o_bs,
                         const Py_ssize_t *active, bint reverse, floating *scratch) noexcept nogil:
    """One direction of one layer over T steps. h (B x P) and c (B x H) hold the initial state on
    entry and the final state on return; scratch holds B*3H (GRU) or B*H (LSTM with projection)."""
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
        if kind == KIND_GRU:
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


cdef void _input_proj(Py_ssize_t rows, Py_ssize_t I, Py_ssize_t N, const floating *x,
                      const floating *w_ih, const floating *bias, floating *gates) noexcept nogil:
    """gates (rows x N) = bias + x (rows x I) @ w_ih^T, bias broadcast over rows (or absent)."""
    cdef Py_ssize_t r
    cdef floating beta = 0
    if bias != NULL:
        for r in range(rows):
            _copy_rows(1, N, bias, N, gates + r * N, N)
        beta = 1
    gemm(False, True, <int>rows, <int>N, <int>I, <floating>1, x, <int>I, w_ih, <int>I, beta, gates, <int>N)


cdef void _run_layer(const LayerSpec *L, Py_ssize_t T, Py_ssize_t B, bint batch_first, const floating *x,
                     floating *h, floating *c, floating *out, floating *gates, floating *scratch,
                     const Py_ssize_t *active) noexcept nogil:
    cdef Py_ssize_t D = L.num_directions, GH = L.gate_rows, H = L.hidden_size, P = L.out_size
    cdef Py_ssize_t N = D * GH, DP = D * P, d
    cdef Py_ssize_t g_ts, g_bs, o_ts, o_bs
    _input_proj(T * B, L.input_size, N, x, <const floating *>L.w_ih, <const floating *>L.bias, gates)
    if batch_first:
        g_ts, g_bs, o_ts, o_bs = N, T * N, DP, T * DP
    else:
        g_ts, g_bs, o_ts, o_bs = B * N, N, B * DP, DP
    for d in range(D):
        _run_direction(L.kind, T, B, H, P, gates + d * GH, g_ts, g_bs,
                       <const floating *>L.w_hh[d], <const floating *>L.b_hn[d],
                       <const floating *>L.w_hr[d],
                       h + d * B * P, c + d * B * H if c != NULL else NULL,
                       out + d * P, o_ts, o_bs, active, d == 1, scratch)


cdef void *_data(object a, Py_ssize_t count, Py_ssize_t itemsize, bint writable, str name) except NULL:
    """Pointer to the data of a C-contiguous buffer holding at least `count` items of `itemsize`.

    The engine trusts the Python layer for shapes, but checks sizes here so a wrong call can never
    read or write out of bounds. The pointer stays valid while the caller holds the array."""
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


cdef class Layer:
    """One layer's weights in the engine's layout (built by fastrnn._layout), both directions.

    w_ih (D*G*H, I) and bias (D*G*H or None) are the directions stacked so the input projection is one
    gemm; w_hh[d] (G*H, P), b_hn[d] (H, GRU only, or None), w_hr[d] (P, H, LSTM projection, or None).
    All arrays C-contiguous, of one float dtype.
    """
    cdef LayerSpec spec
    cdef readonly Py_ssize_t itemsize
    cdef readonly object arrays           # keeps every weight array alive while spec points into them

    def __init__(self, int kind, w_ih, bias, list w_hh, list b_hn, list w_hr):
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
        for d in range(D):
            self.spec.w_hh[d] = _data(w_hh[d], G * H * P, s, False, "w_hh")
            if b_hn[d] is not None:
                self.spec.b_hn[d] = _data(b_hn[d], H, s, False, "b_hn")
            if w_hr[d] is not None:
                self.spec.w_hr[d] = _data(w_hr[d], P * H, s, False, "w_hr")
            elif P != H:
                raise ValueError("w_hh columns must equal hidden_size without a projection")

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
        if self.spec.kind == KIND_GRU:
            return max(1, B * self.spec.gate_rows)
        if self.spec.w_hr[0] != NULL:
            return max(1, B * self.spec.hidden_size)
        return 1

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
        cdef void *pscr = _data(scratch, self.scratch_size(B), s, True, "scratch")
        cdef const Py_ssize_t[::1] act
        cdef const Py_ssize_t *pa = NULL
        if active is not None:
            act = active
            if act.shape[0] != T:
                raise ValueError(f"active: expected {T} entries, got {act.shape[0]}")
            for t in range(T):
                if act[t] < 0 or act[t] > B:
                    raise ValueError(f"active[{t}] = {act[t]} is outside [0, {B}]")
            pa = &act[0]
        if s == 4:
            with nogil:
                _run_layer(&self.spec, T, B, batch_first, <float *>px, <float *>ph, <float *>pc,
                           <float *>po, <float *>pg, <float *>pscr, pa)
        else:
            with nogil:
                _run_layer(&self.spec, T, B, batch_first, <double *>px, <double *>ph, <double *>pc,
                           <double *>po, <double *>pg, <double *>pscr, pa)


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
