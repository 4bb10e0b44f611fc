# ---- The input projection of a block of timesteps: gates = bias + x W_ih^T, only for the rows the batch uses -----
# Through the packed panels of W_ih (the dense kernel: a register-blocked gemm whose weights were packed at load),
# into the block's gate buffer, row (t - t0) * B + b for step t and batch row b. Rows past a variable-length row's
# end are never computed: the time loop does not read them.

cdef inline Py_ssize_t _row_length(const Py_ssize_t *active, Py_ssize_t T, Py_ssize_t b) noexcept nogil:
    """Steps batch row b runs (rows sorted by decreasing length): the t with active[t] > b, a prefix of 0..T-1."""
    cdef Py_ssize_t lo = 0, hi = T, mid
    while lo < hi:
        mid = (lo + hi) // 2
        if active[mid] > b:
            lo = mid + 1
        else:
            hi = mid
    return lo


cdef inline void _project_rows(const Direction *D, Py_ssize_t n, const floating *x, Py_ssize_t first_out,
                               Py_ssize_t ld_out, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """n rows of x (row stride I) into gate rows first_out, first_out + ld_out, ... of the block, units j0..j1."""
    cdef const LayerSpec *L = D.L
    cdef Py_ssize_t GH = L.gate_rows
    if n > 0:
        _dense(n, L.gates, L.hidden_size, j0, j1, L.input_size, <const floating *>L.w_ih[D.d], x, L.input_size,
               <const floating *>L.bias[D.d], 0, <const frnn_cell *>NULL, <floating *>D.gates + first_out * GH,
               ld_out * GH)


cdef void _project_block(floating *typed, const Direction *D, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """The block [D.t0, D.t1) for units j0..j1: time-major x gives its rows contiguous per run of full steps (a
    step with finished rows is its own run); batch-major x gives each batch row's steps contiguous."""
    cdef Py_ssize_t t, start, b, stop, T = D.T, B = D.B, t0 = D.t0, t1 = D.t1, I = D.L.input_size
    cdef const floating *x = <const floating *>D.x
    if D.batch_first:
        for b in range(B):
            stop = t1 if D.active == NULL else min(t1, _row_length(D.active, T, b))
            _project_rows(D, stop - t0, x + (b * T + t0) * I, b, B, j0, j1)
        return
    if D.active == NULL:
        _project_rows(D, (t1 - t0) * B, x + t0 * B * I, 0, 1, j0, j1)
        return
    t = t0
    while t < t1:
        start = t
        while t < t1 and D.active[t] == B:
            t += 1
        if t == start:  # a step with finished rows: its first active[t] rows alone
            _project_rows(D, D.active[t], x + t * B * I, (t - t0) * B, 1, j0, j1)
            t += 1
        else:
            _project_rows(D, (t - start) * B, x + start * B * I, (start - t0) * B, 1, j0, j1)
