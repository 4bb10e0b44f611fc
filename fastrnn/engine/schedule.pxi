# ---- Which thread runs what: the two directions at once, one direction split by units, or all on the caller ------

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
    _run_direction(L.kind, t.T, t.B, H, P, L.gate_rows, gates + d * L.gate_rows, t.g_ts, t.g_bs,
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


cdef void _run_split(const LayerSpec *L, DirectionTask *task, floating *gates) noexcept nogil:
    """Run one direction's time loop split by units across this thread and the worker, or, when the worker
    is busy (another Python thread's parallel region), all of it here."""
    global _split_runs
    cdef DirectionTask sides[2]
    cdef Split parts[2]
    cdef frnn_barrier barrier
    cdef Py_ssize_t lanes = frnn_lanes(sizeof(floating))
    cdef Py_ssize_t hu = _split_at(L.hidden_size, lanes), hp = _split_at(L.out_size, lanes)
    cdef Py_ssize_t hg = _split_at(L.gate_rows, lanes)
    cdef int side
    cdef frnn_task_fn run = _direction_task_f32 if floating is float else _direction_task_f64
    memset(&barrier, 0, sizeof(barrier))
    for side in range(2):
        sides[side] = task[0]
        sides[side].part = &parts[side]
        parts[side].barrier, parts[side].side, parts[side].reached = &barrier, side, 0
    parts[0].u0, parts[0].u1, parts[0].p0, parts[0].p1, parts[0].g0, parts[0].g1 = 0, hu, 0, hp, 0, hg
    parts[1].u0, parts[1].u1, parts[1].p0, parts[1].p1, parts[1].g0, parts[1].g1 = (
        hu, L.hidden_size, hp, L.out_size, hg, L.gate_rows)
    if frnn_try_run_pair(run, &sides[0], &sides[1]):
        _split_runs += 1  # only the worker's owner gets here, one at a time
    else:
        run(task)


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
                          and T * step_flops >= _tuning.parallel_min_flops)
    # Otherwise, with steps large enough, each direction's time loop split by units across both threads
    # (the same condition on BLAS: every step on the panels; the input projection stays one gemm, before).
    cdef bint split = (not parallel and _num_threads >= 2 and _num_cpus >= 2 and B <= L.packed_rows
                       and step_flops >= _tuning.split_min_step_flops
                       and T * step_flops >= _tuning.split_min_call_flops)
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
        frnn_run_pair(_direction_task_f32 if floating is float else _direction_task_f64, &tasks[0], &tasks[1])
    else:
        for d in range(D):
            if split:
                _run_split(L, &tasks[d], gates)
            else:
                _direction_task(gates, &tasks[d])
