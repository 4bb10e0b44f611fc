# 1:1 mirror of src_c/fastrnn_kernels.h (see there for the math and the layouts).
cdef extern from "fastrnn_kernels.h" nogil:
    enum:
        FRNN_ACT_TANH
        FRNN_ACT_RELU
        FRNN_ACT_IDENTITY
        FRNN_ISA_GENERIC
        FRNN_ISA_AVX2
    int frnn_cpu_isa()
    void frnn_set_isa(int level)
    int frnn_get_isa()
    Py_ssize_t frnn_lanes(Py_ssize_t itemsize)
    void frnn_sigmoid_f32(Py_ssize_t n, float *x)
    void frnn_tanh_f32(Py_ssize_t n, float *x)
    void frnn_lstm_step_f32(Py_ssize_t n, Py_ssize_t H, const float *gates_bg, Py_ssize_t ld_gates,
                             float *c_bh, float *h_bh, float *out_bh, Py_ssize_t ld_out)
    void frnn_gru_step_f32(Py_ssize_t n, Py_ssize_t H, const float *gx_bg, Py_ssize_t ld_gx,
                            const float *gh_bg, const float *b_hn, float *h_bh, float *out_bh,
                            Py_ssize_t ld_out)
    void frnn_rnn_step_f32(Py_ssize_t n, Py_ssize_t H, const float *pre_bh, Py_ssize_t ld_pre,
                            int act, float *h_bh, float *out_bh, Py_ssize_t ld_out)
    void frnn_copy_rows_f32(Py_ssize_t n, Py_ssize_t H, const float *src, Py_ssize_t ld_src,
                             float *dst, Py_ssize_t ld_dst)
    Py_ssize_t frnn_packed_size_f32(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K)
    void frnn_pack_f32(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const float *w_gk, Py_ssize_t ld_w,
                        float *w_pkgu)
    void frnn_lstm_rec_f32(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K, const float *w_pkgu,
                            const float *v_bk, const float *gates_bg, Py_ssize_t ld_gates, float *c_bh,
                            float *h_bh)
    void frnn_gru_rec_f32(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, const float *w_pkgu, const float *h_prev_bh,
                           const float *gx_bg, Py_ssize_t ld_gx, const float *b_hn, float *h_bh)
    void frnn_rnn_rec_f32(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K, const float *w_pkgu,
                           const float *v_bk, const float *pre_bh, Py_ssize_t ld_pre, int act,
                           float *h_bh, Py_ssize_t ld_h)
    void frnn_sigmoid_f64(Py_ssize_t n, double *x)
    void frnn_tanh_f64(Py_ssize_t n, double *x)
    void frnn_lstm_step_f64(Py_ssize_t n, Py_ssize_t H, const double *gates_bg, Py_ssize_t ld_gates,
                             double *c_bh, double *h_bh, double *out_bh, Py_ssize_t ld_out)
    void frnn_gru_step_f64(Py_ssize_t n, Py_ssize_t H, const double *gx_bg, Py_ssize_t ld_gx,
                            const double *gh_bg, const double *b_hn, double *h_bh, double *out_bh,
                            Py_ssize_t ld_out)
    void frnn_rnn_step_f64(Py_ssize_t n, Py_ssize_t H, const double *pre_bh, Py_ssize_t ld_pre,
                            int act, double *h_bh, double *out_bh, Py_ssize_t ld_out)
    void frnn_copy_rows_f64(Py_ssize_t n, Py_ssize_t H, const double *src, Py_ssize_t ld_src,
                             double *dst, Py_ssize_t ld_dst)
    Py_ssize_t frnn_packed_size_f64(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K)
    void frnn_pack_f64(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const double *w_gk, Py_ssize_t ld_w,
                        double *w_pkgu)
    void frnn_lstm_rec_f64(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K, const double *w_pkgu,
                            const double *v_bk, const double *gates_bg, Py_ssize_t ld_gates, double *c_bh,
                            double *h_bh)
    void frnn_gru_rec_f64(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, const double *w_pkgu, const double *h_prev_bh,
                           const double *gx_bg, Py_ssize_t ld_gx, const double *b_hn, double *h_bh)
    void frnn_rnn_rec_f64(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K, const double *w_pkgu,
                           const double *v_bk, const double *pre_bh, Py_ssize_t ld_pre, int act,
                           double *h_bh, Py_ssize_t ld_h)
    ctypedef void (*frnn_task_fn)(void *arg) noexcept nogil
    void frnn_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker)
    int frnn_try_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker)
    ctypedef struct frnn_barrier:
        pass
    void frnn_barrier_wait(frnn_barrier *b, int side, long *reached)
