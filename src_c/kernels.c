/* The kernels, instantiated from one body per instruction set and precision, and the run-time dispatch.
 *
 * kernels_isa.h (-> kernels_impl.h) is compiled twice: as the portable default (ISA = generic), and, on
 * x86, inside `#pragma GCC target("avx2,fma")` (ISA = avx2), whose functions may only run after
 * frnn_cpu_isa() said the CPU and the OS support them. The build itself stays portable (no -march).
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "fastrnn_kernels.h"
#include "simd.h"

/* Vectors wider than SSE are passed only between always_inline functions of one target, so the ABI
 * note GCC gives for them in the generic build does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FRNN_HAVE_AVX2 1
#else
#define FRNN_HAVE_AVX2 0
#endif

#define ISA generic
#define FRNN_VB 16
#include "kernels_isa.h"
#undef FRNN_VB
#undef ISA

#if FRNN_HAVE_AVX2
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#define ISA avx2
#define FRNN_VB 32
#include "kernels_isa.h"
#undef FRNN_VB
#undef ISA
#pragma GCC pop_options
#endif

static int frnn_level = FRNN_ISA_GENERIC;

int frnn_cpu_isa(void)
{
#if FRNN_HAVE_AVX2
    /* libgcc's cpu model reports avx2 only when the OS saves the ymm state (XGETBV), so this is enough. */
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return FRNN_ISA_AVX2;
#endif
    return FRNN_ISA_GENERIC;
}

void frnn_set_isa(int level) { frnn_level = level <= frnn_cpu_isa() ? level : frnn_cpu_isa(); }

int frnn_get_isa(void) { return frnn_level; }

ptrdiff_t frnn_lanes(ptrdiff_t itemsize) { return FRNN_PANEL_BYTES / itemsize; }

#if FRNN_HAVE_AVX2
#define FRNN_CALL(name, sfx, args) \
    (frnn_level == FRNN_ISA_AVX2 ? name##_##sfx##_avx2 args : name##_##sfx##_generic args)
#else
#define FRNN_CALL(name, sfx, args) (name##_##sfx##_generic args)
#endif

#define FRNN_DEFINE(real, sfx)                                                                      \
    void frnn_sigmoid_##sfx(ptrdiff_t n, real *x) { FRNN_CALL(sigmoid_n, sfx, (n, x)); }            \
    void frnn_tanh_##sfx(ptrdiff_t n, real *x) { FRNN_CALL(tanh_n, sfx, (n, x)); }                  \
    void frnn_lstm_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *gates_bg, ptrdiff_t ld_gates,   \
                              real *c_bh, real *h_bh, real *out_bh, ptrdiff_t ld_out)               \
    {                                                                                               \
        FRNN_CALL(lstm_step, sfx, (n, H, gates_bg, ld_gates, c_bh, h_bh, out_bh, ld_out));          \
    }                                                                                               \
    void frnn_gru_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *gx_bg, ptrdiff_t ld_gx,          \
                             const real *gh_bg, const real *b_hn, real *h_bh, real *out_bh,         \
                             ptrdiff_t ld_out)                                                      \
    {                                                                                               \
        FRNN_CALL(gru_step, sfx, (n, H, gx_bg, ld_gx, gh_bg, b_hn, h_bh, out_bh, ld_out));          \
    }                                                                                               \
    void frnn_rnn_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *pre_bh, ptrdiff_t ld_pre,        \
                             int act, real *h_bh, real *out_bh, ptrdiff_t ld_out)                   \
    {                                                                                               \
        FRNN_CALL(rnn_step, sfx, (n, H, pre_bh, ld_pre, act, h_bh, out_bh, ld_out));                \
    }                                                                                               \
    void frnn_copy_rows_##sfx(ptrdiff_t n, ptrdiff_t H, const real *src, ptrdiff_t ld_src,          \
                              real *dst, ptrdiff_t ld_dst)                                          \
    {                                                                                               \
        copy_rows_##sfx##_generic(n, H, src, ld_src, dst, ld_dst);                                  \
    }                                                                                               \
    ptrdiff_t frnn_packed_size_##sfx(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K)                         \
    {                                                                                               \
        ptrdiff_t lanes = FRNN_PANEL_BYTES / (ptrdiff_t)sizeof(real);                                    \
        return (H + lanes - 1) / lanes * lanes * G * K;                                             \
    }                                                                                               \
    void frnn_pack_##sfx(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const real *w_gk, ptrdiff_t ld_w,   \
                         real *w_pkgu)                                                              \
    {                                                                                               \
        const ptrdiff_t lanes = FRNN_PANEL_BYTES / (ptrdiff_t)sizeof(real);                              \
        for (ptrdiff_t j0 = 0; j0 < H; j0 += lanes)                                                 \
            for (ptrdiff_t k = 0; k < K; ++k)                                                       \
                for (ptrdiff_t g = 0; g < G; ++g)                                                   \
                    for (ptrdiff_t u = 0; u < lanes; ++u)                                           \
                        *w_pkgu++ = j0 + u < H ? w_gk[(g * H + j0 + u) * ld_w + k] : (real)0;       \
    }                                                                                               \
    void frnn_lstm_rec_##sfx(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K, \
                             const real *w_pkgu,                                                      \
                             const real *v_bk, const real *gates_bg, ptrdiff_t ld_gates, real *c_bh,  \
                             real *h_bh)                                                              \
    {                                                                                                 \
        FRNN_CALL(lstm_rec, sfx, (n, H, j_begin, j_end, K, w_pkgu, v_bk, gates_bg, ld_gates, c_bh, h_bh));             \
    }                                                                                                 \
    void frnn_gru_rec_##sfx(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,             \
                            const real *w_pkgu, const real *h_prev_bh,                                \
                            const real *gx_bg, ptrdiff_t ld_gx, const real *b_hn, real *h_bh)          \
    {                                                                                                 \
        FRNN_CALL(gru_rec, sfx, (n, H, j_begin, j_end, w_pkgu, h_prev_bh, gx_bg, ld_gx, b_hn, h_bh));                  \
    }                                                                                                 \
    void frnn_rnn_rec_##sfx(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K, \
                            const real *w_pkgu,                                                       \
                            const real *v_bk, const real *pre_bh, ptrdiff_t ld_pre, int act,          \
                            real *h_bh, ptrdiff_t ld_h)                                               \
    {                                                                                                 \
        FRNN_CALL(rnn_rec, sfx, (n, H, j_begin, j_end, K, w_pkgu, v_bk, pre_bh, ld_pre, act, h_bh, ld_h));             \
    }

FRNN_DEFINE(float, f32)
FRNN_DEFINE(double, f64)
