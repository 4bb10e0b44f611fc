# 1:1 mirror of src_c/fastrnn_kernels.h (the math and the layouts are explained there).
from libc.stdint cimport int8_t, int32_t, uint16_t

cdef extern from "fastrnn_kernels.h" nogil:
    enum:
        FRNN_ACT_TANH
        FRNN_ACT_RELU
        FRNN_ACT_IDENTITY
        FRNN_ACT_SIGMOID
        FRNN_ACT_AFFINE
        FRNN_ACT_LEAKY_RELU
        FRNN_ACT_THRESHOLDED_RELU
        FRNN_ACT_SCALED_TANH
        FRNN_ACT_HARD_SIGMOID
        FRNN_ACT_ELU
        FRNN_ACT_SOFTSIGN
        FRNN_ACT_SOFTPLUS
        FRNN_ACT_STEP

    ctypedef struct frnn_act:
        int code
        double alpha, beta

    ctypedef struct frnn_cell:
        frnn_act f, g, h
        double clip
        int input_forget
        int standard

    enum:
        FRNN_FMT_FLOAT
        FRNN_FMT_BF16
        FRNN_FMT_I8

    ctypedef struct frnn_mat:
        int format
        const void *panels
        const float *scale
        const int32_t *sums
        const void *wide

    ctypedef struct frnn_rows:
        const void *v
        Py_ssize_t ld
        const float *scale

    ctypedef struct frnn_kernels:
        const char *name
        void (*sigmoid_f32)(Py_ssize_t n, float *x) noexcept nogil
        void (*tanh_f32)(Py_ssize_t n, float *x) noexcept nogil
        void (*lstm_rec_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K,
                             const frnn_mat *w, const frnn_rows *v, const float *gates_bg, Py_ssize_t ld_gates,
                             const float *c_prev_bh, float *c_bh, float *h_bh, const frnn_cell *cell,
                             const float *peep_g) noexcept nogil
        void (*gru_rec_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                            const frnn_mat *w, const frnn_rows *v, const float *h_prev_bh, const float *gx_bg,
                            Py_ssize_t ld_gx, const float *b_hn, float *h_bh, const frnn_cell *cell) noexcept nogil
        void (*gru_rz_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                           const frnn_mat *w, const frnn_rows *v, const float *h_prev_bh, const float *gx_bg,
                           Py_ssize_t ld_gx, float *z_bh, float *rh_bh, const frnn_cell *cell) noexcept nogil
        void (*gru_n_f32)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                          const frnn_mat *w, const frnn_rows *v, const float *gx_bg, Py_ssize_t ld_gx,
                          const float *z_bh, const float *h_prev_bh, float *h_bh,
                          const frnn_cell *cell) noexcept nogil
        void (*dense_f32)(Py_ssize_t n, Py_ssize_t G, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                          Py_ssize_t K, const frnn_mat *w, const frnn_rows *v, const float *pre_bg,
                          Py_ssize_t ld_pre, const frnn_cell *act, float *out_bg, Py_ssize_t ld_out) noexcept nogil
        void (*sigmoid_f64)(Py_ssize_t n, double *x) noexcept nogil
        void (*tanh_f64)(Py_ssize_t n, double *x) noexcept nogil
        void (*lstm_rec_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end, Py_ssize_t K,
                             const frnn_mat *w, const frnn_rows *v, const double *gates_bg, Py_ssize_t ld_gates,
                             const double *c_prev_bh, double *c_bh, double *h_bh, const frnn_cell *cell,
                             const double *peep_g) noexcept nogil
        void (*gru_rec_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                            const frnn_mat *w, const frnn_rows *v, const double *h_prev_bh, const double *gx_bg,
                            Py_ssize_t ld_gx, const double *b_hn, double *h_bh, const frnn_cell *cell) noexcept nogil
        void (*gru_rz_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                           const frnn_mat *w, const frnn_rows *v, const double *h_prev_bh, const double *gx_bg,
                           Py_ssize_t ld_gx, double *z_bh, double *rh_bh, const frnn_cell *cell) noexcept nogil
        void (*gru_n_f64)(Py_ssize_t n, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                          const frnn_mat *w, const frnn_rows *v, const double *gx_bg, Py_ssize_t ld_gx,
                          const double *z_bh, const double *h_prev_bh, double *h_bh,
                          const frnn_cell *cell) noexcept nogil
        void (*dense_f64)(Py_ssize_t n, Py_ssize_t G, Py_ssize_t H, Py_ssize_t j_begin, Py_ssize_t j_end,
                          Py_ssize_t K, const frnn_mat *w, const frnn_rows *v, const double *pre_bg,
                          Py_ssize_t ld_pre, const frnn_cell *act, double *out_bg, Py_ssize_t ld_out) noexcept nogil

    int frnn_tier_count()
    const char *frnn_tier_name(int tier)
    int frnn_tier_supported(int tier)
    int frnn_tier_selectable(int tier)
    int frnn_use_tier(int tier)
    int frnn_active_tier()
    int frnn_widen_bf16
    int frnn_cpu_widens_bf16()
    const frnn_kernels *frnn_active_kernels()

    Py_ssize_t frnn_lanes(Py_ssize_t itemsize)
    size_t FRNN_HUGE_PAGE
    Py_ssize_t FRNN_WIDE_COPY_BYTES
    void frnn_widen_bf16_panels(Py_ssize_t G, Py_ssize_t groups, const uint16_t *w_pkgu, float *wide)
    void frnn_advise_huge_pages(void *p, size_t n)
    Py_ssize_t frnn_packed_bytes(int format, Py_ssize_t itemsize, Py_ssize_t G, Py_ssize_t H, Py_ssize_t K)
    void frnn_pack_f32(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const float *w_gk, Py_ssize_t ld_w, float *w_pkgu)
    void frnn_pack_f64(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const double *w_gk, Py_ssize_t ld_w,
                       double *w_pkgu)
    void frnn_pack_bf16(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const float *w_gk, Py_ssize_t ld_w,
                        uint16_t *w_pkgu)
    void frnn_pack_i8(Py_ssize_t G, Py_ssize_t H, Py_ssize_t K, const float *w_gk, Py_ssize_t ld_w, int8_t *w_pkgu,
                      float *scale, int32_t *sums)
    Py_ssize_t frnn_converted_ld(int format, Py_ssize_t K)
    Py_ssize_t frnn_converted_bytes(int format, Py_ssize_t n, Py_ssize_t K)
    enum: FRNN_TILE_ROWS
    void frnn_convert_rows(int format, Py_ssize_t n, Py_ssize_t K, const float *src, Py_ssize_t ld_src, void *dst,
                           float *scale)
    float frnn_round_bf16(float x)
    void frnn_copy_rows(Py_ssize_t itemsize, Py_ssize_t n, Py_ssize_t H, const void *src, Py_ssize_t ld_src,
                        void *dst, Py_ssize_t ld_dst)


# 1:1 mirror of src_c/worker.h.
cdef extern from "worker.h" nogil:
    ctypedef void (*frnn_chunk_fn)(void *ctx, long chunk) noexcept nogil
    int frnn_team_begin()
    void frnn_team_run(frnn_chunk_fn fn, void *ctx, long n)
    void frnn_team_end()
    long frnn_team_shared_phases()
    long frnn_team_backoffs()
    void frnn_team_forgive()
