# ---- One direction of one layer over T steps: the time loop ----------------------------------------------------

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


cdef void _run_direction(int kind, Py_ssize_t T, Py_ssize_t B, Py_ssize_t H, Py_ssize_t P, Py_ssize_t GH,
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
