# ---- Trampolines to the active tier's kernels, over the fused type `floating` -------------------------------------
# `floating is float` is decided at compile time, so each of these is one indirect call (src_c/fastrnn_kernels.h
# says what each kernel computes).

cdef inline void _lstm_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                           const floating *w, const floating *v, const floating *g, Py_ssize_t ldg,
                           const floating *c_prev, floating *c, floating *h, const frnn_cell *cell,
                           const floating *peep) noexcept nogil:
    if floating is float:
        _K.lstm_rec_f32(n, H, j0, j1, K, w, v, g, ldg, c_prev, c, h, cell, peep)
    else:
        _K.lstm_rec_f64(n, H, j0, j1, K, w, v, g, ldg, c_prev, c, h, cell, peep)


cdef inline void _gru_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const floating *w,
                          const floating *h_prev, const floating *gx, Py_ssize_t ldx, const floating *b_hn,
                          floating *h, const frnn_cell *cell) noexcept nogil:
    if floating is float:
        _K.gru_rec_f32(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h, cell)
    else:
        _K.gru_rec_f64(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h, cell)


cdef inline void _gru_rz(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const floating *w,
                         const floating *h_prev, const floating *gx, Py_ssize_t ldx, floating *z, floating *rh,
                         const frnn_cell *cell) noexcept nogil:
    if floating is float:
        _K.gru_rz_f32(n, H, j0, j1, w, h_prev, gx, ldx, z, rh, cell)
    else:
        _K.gru_rz_f64(n, H, j0, j1, w, h_prev, gx, ldx, z, rh, cell)


cdef inline void _gru_n(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const floating *w,
                        const floating *rh, const floating *gx, Py_ssize_t ldx, const floating *z,
                        const floating *h_prev, floating *h, const frnn_cell *cell) noexcept nogil:
    if floating is float:
        _K.gru_n_f32(n, H, j0, j1, w, rh, gx, ldx, z, h_prev, h, cell)
    else:
        _K.gru_n_f64(n, H, j0, j1, w, rh, gx, ldx, z, h_prev, h, cell)


cdef inline void _dense(Py_ssize_t n, Py_ssize_t G, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                        const floating *w, const floating *v, Py_ssize_t ldv, const floating *pre,
                        Py_ssize_t ld_pre, const frnn_cell *act, floating *out, Py_ssize_t ld_out) noexcept nogil:
    if floating is float:
        _K.dense_f32(n, G, H, j0, j1, K, w, v, ldv, pre, ld_pre, act, out, ld_out)
    else:
        _K.dense_f64(n, G, H, j0, j1, K, w, v, ldv, pre, ld_pre, act, out, ld_out)


cdef inline void _copy_rows(Py_ssize_t n, Py_ssize_t H, const floating *src, Py_ssize_t lds,
                            floating *dst, Py_ssize_t ldd) noexcept nogil:
    frnn_copy_rows(sizeof(floating), n, H, src, lds, dst, ldd)
