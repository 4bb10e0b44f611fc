# ---- Trampolines to the active tier's kernels, over the fused type `floating` -------------------------------------
# `floating is float` is decided at compile time, so each of these is one indirect call (src_c/fastrnn_kernels.h
# says what each kernel computes).

cdef inline void _lstm_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                           const floating *w, const floating *v, const floating *g, Py_ssize_t ldg,
                           const floating *c_prev, floating *c, floating *h) noexcept nogil:
    if floating is float:
        _K.lstm_rec_f32(n, H, j0, j1, K, w, v, g, ldg, c_prev, c, h)
    else:
        _K.lstm_rec_f64(n, H, j0, j1, K, w, v, g, ldg, c_prev, c, h)


cdef inline void _gru_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const floating *w,
                          const floating *h_prev, const floating *gx, Py_ssize_t ldx, const floating *b_hn,
                          floating *h) noexcept nogil:
    if floating is float:
        _K.gru_rec_f32(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h)
    else:
        _K.gru_rec_f64(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h)


cdef inline void _dense(Py_ssize_t n, Py_ssize_t G, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                        const floating *w, const floating *v, Py_ssize_t ldv, const floating *pre,
                        Py_ssize_t ld_pre, int act, floating *out, Py_ssize_t ld_out) noexcept nogil:
    if floating is float:
        _K.dense_f32(n, G, H, j0, j1, K, w, v, ldv, pre, ld_pre, act, out, ld_out)
    else:
        _K.dense_f64(n, G, H, j0, j1, K, w, v, ldv, pre, ld_pre, act, out, ld_out)


cdef inline void _copy_rows(Py_ssize_t n, Py_ssize_t H, const floating *src, Py_ssize_t lds,
                            floating *dst, Py_ssize_t ldd) noexcept nogil:
    frnn_copy_rows(sizeof(floating), n, H, src, lds, dst, ldd)
