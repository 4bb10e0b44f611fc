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


cdef inline void _project_rows(floating *typed, const Direction *D, Py_ssize_t n, Py_ssize_t x_row,
                               Py_ssize_t block_row, Py_ssize_t first_out, Py_ssize_t ld_out, Py_ssize_t j0,
                               Py_ssize_t j1) noexcept nogil:
    """n input rows into gate rows first_out, first_out + ld_out, ... of the block, units j0..j1: from x_row of x,
    or (bf16, int8 weights) from block_row of the block's converted rows."""
    cdef const LayerSpec *L = D.L
    cdef Py_ssize_t GH = L.gate_rows, I = L.input_size
    cdef frnn_rows rows
    if n <= 0:
        return
    if L.format == FRNN_FMT_FLOAT:
        rows = _float_rows(<const floating *>D.x + x_row * I, I)
    else:
        rows.v, rows.ld = D.x_conv, frnn_converted_ld(L.format, I)
        rows.scale = D.x_scale
        rows = _rows_from(&rows, L.format, sizeof(floating), block_row)
    _dense(n, L.gates, L.hidden_size, j0, j1, I, &L.w_ih[D.d], &rows, <const floating *>L.bias[D.d], 0,
           <const frnn_cell *>NULL, <floating *>D.gates + first_out * GH, ld_out * GH)


cdef void _project_block(floating *typed, const Direction *D, Py_ssize_t j0, Py_ssize_t j1) noexcept nogil:
    """The block [D.t0, D.t1) for units j0..j1: time-major x gives its rows contiguous per run of full steps (a
    step with finished rows is its own run); batch-major x gives each batch row's steps contiguous."""
    cdef Py_ssize_t t, start, b, stop, T = D.T, B = D.B, t0 = D.t0, t1 = D.t1
    if D.batch_first:
        for b in range(B):
            stop = t1 if D.active == NULL else min(t1, _row_length(D.active, T, b))
            _project_rows(typed, D, stop - t0, b * T + t0, b * (t1 - t0), b, B, j0, j1)
        return
    if D.active == NULL:
        _project_rows(typed, D, (t1 - t0) * B, t0 * B, 0, 0, 1, j0, j1)
        return
    t = t0
    while t < t1:
        start = t
        while t < t1 and D.active[t] == B:
            t += 1
        if t == start:  # a step with finished rows: its first active[t] rows alone
            _project_rows(typed, D, D.active[t], t * B, (t - t0) * B, (t - t0) * B, 1, j0, j1)
            t += 1
        else:
            _project_rows(typed, D, (t - start) * B, start * B, (start - t0) * B, (start - t0) * B, 1, j0, j1)


cdef void _convert_block(const Direction *D) noexcept nogil:
    """bf16 / int8 weights: the block's input rows a product will read, converted once before the (maybe shared)
    projection phase, in block order: time-major row (t - t0) * B + b, batch-major b * (t1 - t0) + (t - t0). Rows
    past a variable-length row's end are skipped, as the projection skips them."""
    cdef const LayerSpec *L = D.L
    cdef Py_ssize_t t, b, n, T = D.T, B = D.B, t0 = D.t0, t1 = D.t1, I = L.input_size
    cdef Py_ssize_t ld = frnn_converted_ld(L.format, I), size = _format_bytes(L.format, 4)
    cdef const float *x = <const float *>D.x
    if D.batch_first:
        for b in range(B):
            n = t1 - t0 if D.active == NULL else min(t1, _row_length(D.active, T, b)) - t0
            if n > 0:
                frnn_convert_rows(L.format, n, I, x + (b * T + t0) * I, I,
                                  <char *>D.x_conv + b * (t1 - t0) * ld * size, D.x_scale + b * (t1 - t0))
        return
    for t in range(t0, t1):
        n = B if D.active == NULL else D.active[t]
        frnn_convert_rows(L.format, n, I, x + t * B * I, I, <char *>D.x_conv + (t - t0) * B * ld * size,
                          D.x_scale + (t - t0) * B)
