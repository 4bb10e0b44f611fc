# ---- Trampolines to the active tier's kernels, over the fused type `floating` -------------------------------------
# `floating is float` is decided at compile time, so each of these is one indirect call (src_c/fastrnn_kernels.h
# says what each kernel computes). A product's weights come as a frnn_mat (panels of any format) and the rows it
# reads as a frnn_rows (the floats themselves, or what _convert_rows made of them for a bf16 or int8 matrix).

cdef inline void _lstm_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                           const frnn_mat *w, const frnn_rows *v, const floating *g, Py_ssize_t ldg,
                           const floating *c_prev, floating *c, floating *h, const frnn_cell *cell,
                           const floating *peep) noexcept nogil:
    if floating is float:
        _K.lstm_rec_f32(n, H, j0, j1, K, w, v, g, ldg, c_prev, c, h, cell, peep)
    else:
        _K.lstm_rec_f64(n, H, j0, j1, K, w, v, g, ldg, c_prev, c, h, cell, peep)


cdef inline void _gru_rec(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const frnn_mat *w,
                          const frnn_rows *v, const floating *h_prev, const floating *gx, Py_ssize_t ldx,
                          const floating *b_hn, floating *h, const frnn_cell *cell) noexcept nogil:
    if floating is float:
        _K.gru_rec_f32(n, H, j0, j1, w, v, h_prev, gx, ldx, b_hn, h, cell)
    else:
        _K.gru_rec_f64(n, H, j0, j1, w, v, h_prev, gx, ldx, b_hn, h, cell)


cdef inline void _gru_rz(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const frnn_mat *w,
                         const frnn_rows *v, const floating *h_prev, const floating *gx, Py_ssize_t ldx,
                         floating *z, floating *rh, const frnn_cell *cell) noexcept nogil:
    if floating is float:
        _K.gru_rz_f32(n, H, j0, j1, w, v, h_prev, gx, ldx, z, rh, cell)
    else:
        _K.gru_rz_f64(n, H, j0, j1, w, v, h_prev, gx, ldx, z, rh, cell)


cdef inline void _gru_n(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, const frnn_mat *w,
                        const frnn_rows *v, const floating *gx, Py_ssize_t ldx, const floating *z,
                        const floating *h_prev, floating *h, const frnn_cell *cell) noexcept nogil:
    if floating is float:
        _K.gru_n_f32(n, H, j0, j1, w, v, gx, ldx, z, h_prev, h, cell)
    else:
        _K.gru_n_f64(n, H, j0, j1, w, v, gx, ldx, z, h_prev, h, cell)


cdef inline void _dense(Py_ssize_t n, Py_ssize_t G, Py_ssize_t H, Py_ssize_t j0, Py_ssize_t j1, Py_ssize_t K,
                        const frnn_mat *w, const frnn_rows *v, const floating *pre, Py_ssize_t ld_pre,
                        const frnn_cell *act, floating *out, Py_ssize_t ld_out) noexcept nogil:
    if floating is float:
        _K.dense_f32(n, G, H, j0, j1, K, w, v, pre, ld_pre, act, out, ld_out)
    else:
        _K.dense_f64(n, G, H, j0, j1, K, w, v, pre, ld_pre, act, out, ld_out)


cdef inline void _copy_rows(Py_ssize_t n, Py_ssize_t H, const floating *src, Py_ssize_t lds,
                            floating *dst, Py_ssize_t ldd) noexcept nogil:
    frnn_copy_rows(sizeof(floating), n, H, src, lds, dst, ldd)


# ---- Rows as a product reads them ---------------------------------------------------------------------------------

cdef inline Py_ssize_t _format_bytes(int format, Py_ssize_t itemsize) noexcept nogil:
    """Bytes of one value of `format`, a weight or a converted activation (FRNN_FMT_FLOAT: the kernels' own
    itemsize)."""
    return 2 if format == FRNN_FMT_BF16 else 1 if format == FRNN_FMT_I8 else itemsize


cdef inline frnn_rows _float_rows(const void *v, Py_ssize_t ld) noexcept nogil:
    cdef frnn_rows rows
    rows.v, rows.ld, rows.scale = v, ld, NULL
    return rows


cdef inline frnn_rows _rows_from(const frnn_rows *rows, int format, Py_ssize_t itemsize, Py_ssize_t r) noexcept nogil:
    """rows, from its row r on."""
    cdef frnn_rows out = rows[0]
    out.v = <const char *>rows.v + r * rows.ld * _format_bytes(format, itemsize)
    if rows.scale != NULL:
        out.scale = rows.scale + r
    return out


cdef inline frnn_rows _convert_rows(int format, Py_ssize_t n, Py_ssize_t K, const void *src, Py_ssize_t ld_src,
                                    void *dst, float *scale) noexcept nogil:
    """n float32 rows of K values (stride ld_src) in the format a product with a `format` matrix reads: converted
    into dst/scale (bf16 or int8), or the rows themselves for FRNN_FMT_FLOAT."""
    cdef frnn_rows rows
    if format == FRNN_FMT_FLOAT:
        return _float_rows(src, ld_src)
    frnn_convert_rows(format, n, K, <const float *>src, ld_src, dst, scale)
    rows.v, rows.ld, rows.scale = dst, frnn_converted_ld(format, K), scale
    return rows
