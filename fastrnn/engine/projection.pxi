# ---- The input projection: gates = bias + x W_ih^T for the rows a call uses ----------------------------------------

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
