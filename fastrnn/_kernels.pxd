# 1:1 mirror of src_c/fastrnn_kernels.h (see there for the math and the layouts).
cdef extern from "fastrnn_kernels.h" nogil:
    void frnn_sigmoid_f32(Py_ssize_t n, float *x)
    void frnn_sigmoid_f64(Py_ssize_t n, double *x)
    void frnn_tanh_f32(Py_ssize_t n, float *x)
    void frnn_tanh_f64(Py_ssize_t n, double *x)
    void frnn_lstm_step_f32(Py_ssize_t n, Py_ssize_t H, const float *gates_bg, Py_ssize_t ld_gates,
                            float *c_bh, float *h_bh, float *out_bh, Py_ssize_t ld_out)
    void frnn_lstm_step_f64(Py_ssize_t n, Py_ssize_t H, const double *gates_bg, Py_ssize_t ld_gates,
                            double *c_bh, double *h_bh, double *out_bh, Py_ssize_t ld_out)
    void frnn_gru_step_f32(Py_ssize_t n, Py_ssize_t H, const float *gx_bg, Py_ssize_t ld_gx,
                           const float *gh_bg, const float *b_hn, float *h_bh, float *out_bh,
                           Py_ssize_t ld_out)
    void frnn_gru_step_f64(Py_ssize_t n, Py_ssize_t H, const double *gx_bg, Py_ssize_t ld_gx,
                           const double *gh_bg, const double *b_hn, double *h_bh, double *out_bh,
                           Py_ssize_t ld_out)
    void frnn_rnn_step_f32(Py_ssize_t n, Py_ssize_t H, const float *pre_bh, Py_ssize_t ld_pre,
                           int relu, float *h_bh, float *out_bh, Py_ssize_t ld_out)
    void frnn_rnn_step_f64(Py_ssize_t n, Py_ssize_t H, const double *pre_bh, Py_ssize_t ld_pre,
                           int relu, double *h_bh, double *out_bh, Py_ssize_t ld_out)
    void frnn_copy_rows_f32(Py_ssize_t n, Py_ssize_t H, const float *src, Py_ssize_t ld_src,
                            float *dst, Py_ssize_t ld_dst)
    void frnn_copy_rows_f64(Py_ssize_t n, Py_ssize_t H, const double *src, Py_ssize_t ld_src,
                            double *dst, Py_ssize_t ld_dst)
