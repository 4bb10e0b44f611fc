# ---- Trampolines to the active tier's kernels, over the fused type `floating` -------------------------------------
# `floating is float` is decided at compile time, so each of these is one indirect call (src_c/fastrnn_kernels.h
# says what each kernel computes).

cdef inline void _lstm_step(Py_ssize_t n, Py_ssize_t H, const floating *g, Py_ssize_t ldg, floating *c,
                            floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        _K.lstm_step_f32(n, H, g, ldg, c, h, o, ldo)
    else:
        _K.lstm_step_f64(n, H, g, ldg, c, h, o, ldo)


cdef inline void _gru_step(Py_ssize_t n, Py_ssize_t H, const floating *gx, Py_ssize_t ldx, const floating *gh,
                           const floating *b_hn, floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        _K.gru_step_f32(n, H, gx, ldx, gh, b_hn, h, o, ldo)
    else:
        _K.gru_step_f64(n, H, gx, ldx, gh, b_hn, h, o, ldo)


cdef inline void _rnn_step(Py_ssize_t n, Py_ssize_t H, const floating *pre, Py_ssize_t ldp, int act,
                           floating *h, floating *o, Py_ssize_t ldo) noexcept nogil:
    if floating is float:
        _K.rnn_step_f32(n, H, pre, ldp, act, h, o, ldo)
    else:
        _K.rnn_step_f64(n, H, pre, ldp, act, h, o, ldo)


cdef inline void _lstm_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                           const floating *w, const floating *v, const floating *g, Py_ssize_t ldg, floating *c,
                           floating *h) noexcept nogil:
    if floating is float:
        _K.lstm_rec_f32(n, H, j0, j1, K, w, v, g, ldg, c, h)
    else:
        _K.lstm_rec_f64(n, H, j0, j1, K, w, v, g, ldg, c, h)


cdef inline void _gru_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const floating *w,
                          const floating *h_prev, const floating *gx, Py_ssize_t ldx, const floating *b_hn,
                          floating *h) noexcept nogil:
    if floating is float:
        _K.gru_rec_f32(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h)
    else:
        _K.gru_rec_f64(n, H, j0, j1, w, h_prev, gx, ldx, b_hn, h)


cdef inline void _rnn_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                          const floating *w, const floating *v, const floating *pre, Py_ssize_t ldp, int act,
                          floating *h, Py_ssize_t ldh) noexcept nogil:
    if floating is float:
        _K.rnn_rec_f32(n, H, j0, j1, K, w, v, pre, ldp, act, h, ldh)
    else:
        _K.rnn_rec_f64(n, H, j0, j1, K, w, v, pre, ldp, act, h, ldh)


cdef inline void _copy_rows(Py_ssize_t n, Py_ssize_t H, const floating *src, Py_ssize_t lds,
                            floating *dst, Py_ssize_t ldd) noexcept nogil:
    frnn_copy_rows(sizeof(floating), n, H, src, lds, dst, ldd)


cdef inline void _hidden_proj(Py_ssize_t n, Py_ssize_t GH, Py_ssize_t P, const floating *h,
                              const floating *w_hh, floating beta, floating *dst,
                              Py_ssize_t ld_dst) noexcept nogil:
    """dst (n x GH, row stride ld_dst) = h (n x P) @ w_hh^T + beta * dst, through BLAS."""
    if n == 1:
        gemv(<int>GH, <int>P, <floating>1, w_hh, <int>P, h, beta, dst)
    else:
        gemm(False, True, <int>n, <int>GH, <int>P, <floating>1, h, <int>P, w_hh, <int>P, beta,
             dst, <int>ld_dst)
