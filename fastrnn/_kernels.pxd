# 1:1 mirror of src_c/fastrnn_kernels.h (the math and the layouts are explained there).
cdef extern from "fastrnn_kernels.h" nogil:
    enum:
        FRNN_ACT_TANH
        FRNN_ACT_RELU
        FRNN_ACT_IDENTITY

    ctypedef struct frnn_kernels:
        const char *name
        void (*sigmoid_f32)(Py_ssize_t n, float *x) noexcept nogil
        void (*tanh_f32)(Py_ssize_t n, float *x) noexcept nogil
        void (*lstm_step_f32)(Py_ssize_t n, Py_ssize_t H, const float *gates_bg, Py_ssize_t ld_gates,
                              float *c_bh, float *h_bh, float *out_bh, Py_ssize_t ld_out) noexcept nogil
        void (*gru_step_f32)(Py_ssize_t n, Py_ssize_t H, const float *gx_bg, Py_ssize_t ld_gx,
                             const float *gh_bg, const float *b_hn, float *h_bh, float *out_bh, Py_ssize_t ld_out) noexcept nogil
        void (*rnn_step_f32)(Py_ssize_t n, Py_ssize_t H, const float *pre_bh, Py_ssize_t ld_pre, int act,
                             float *h_bh, float *out_bh, Py_ssize_t ld_out) noexcept nogil
        void (*lstm_rec_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K,
                             const float *w_pkgu, const float *v_bk, const float *gates_bg, Py_ssize_t ld_gates,
                             float *c_bh, float *h_bh) noexcept nogil
        void (*gru_rec_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                            const float *w_pkgu, const float *h_prev_bh, const float *gx_bg, Py_ssize_t ld_gx,
                            const float *b_hn, float *h_bh) noexcept nogil
        void (*rnn_rec_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K,
                            const float *w_pkgu, const float *v_bk, const float *pre_bh, Py_ssize_t ld_pre,
                            int act, float *h_bh, Py_ssize_t ld_h) noexcept nogil
        void (*sigmoid_f64)(Py_ssize_t n, double *x) noexcept nogil
        void (*tanh_f64)(Py_ssize_t n, double *x) noexcept nogil
        void (*lstm_step_f64)(Py_ssize_t n, Py_ssize_t H, const double *gates_bg, Py_ssize_t ld_gates,
                              double *c_bh, double *h_bh, double *out_bh, Py_ssize_t ld_out) noexcept nogil
        void (*gru_step_f64)(Py_ssize_t n, Py_ssize_t H, const double *gx_bg, Py_ssize_t ld_gx,
                             const double *gh_bg, const double *b_hn, double *h_bh, double *out_bh,
                             Py_ssize_t ld_out) noexcept nogil
        void (*rnn_step_f64)(Py_ssize_t n, Py_ssize_t H, const double *pre_bh, Py_ssize_t ld_pre, int act,
                             double *h_bh, double *out_bh, Py_ssize_t ld_out) noexcept nogil
        void (*lstm_rec_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K,
                             const double *w_pkgu, const double *v_bk, const double *gates_bg,
                             Py_ssize_t ld_gates, double *c_bh, double *h_bh) noexcept nogil
        void (*gru_rec_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                            const double *w_pkgu, const double *h_prev_bh, const double *gx_bg, Py_ssize_t ld_gx,
                            const double *b_hn, double *h_bh) noexcept nogil
        void (*rnn_rec_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K,
                            const double *w_pkgu, const double *v_bk, const double *pre_bh, Py_ssize_t ld_pre,
                            int act, double *h_bh, Py_ssize_t ld_h) noexcept nogil

    int frnn_tier_count()
    const char *frnn_tier_name(int tier)
    int frnn_tier_supported(int tier)
    int frnn_tier_selectable(int tier)
    int frnn_use_tier(int tier)
    int frnn_active_tier()
    const frnn_kernels *frnn_active_kernels()

    Py_ssize_t frnn_lanes(Py_ssize_t itemsize)
    Py_ssize_t frnn_packed_size(Py_ssize_t itemsize, Py_ssize_t G, Py_ssize_t H, Py_ssize_t K)
    void frnn_pack_f32(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const float *w_gk, Py_ssize_t ld_w, float *w_pkgu)
    void frnn_pack_f64(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const double *w_gk, Py_ssize_t ld_w,
                       double *w_pkgu)
    void frnn_copy_rows(Py_ssize_t itemsize, Py_ssize_t n, Py_ssize_t H, const void *src, Py_ssize_t ld_src,
                        void *dst, Py_ssize_t ld_dst)


# 1:1 mirror of src_c/worker.h.
cdef extern from "worker.h" nogil:
    ctypedef void (*frnn_task_fn)(void *arg) noexcept nogil
    void frnn_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker)
    int frnn_try_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker)
    ctypedef struct frnn_barrier:
        pass
    void frnn_barrier_wait(frnn_barrier *b, int side, long *reached)
