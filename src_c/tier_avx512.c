/* The AVX-512 tier (F, BW, VL, DQ): 64-byte vectors, one per gate of a panel, 32 registers (24 accumulators per
 * register block), and mask registers for the partial vector at the end of a row of units. Compiled on x86 only,
 * with a function-level target; dispatch.c runs it only where the CPU and OS support it. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#include <immintrin.h>

#define FRNN_MASKED_TAILS 1
static inline __m512 frnn_mask_load_f32(const float *p, ptrdiff_t n)
{
    return _mm512_maskz_loadu_ps((__mmask16)((1u << n) - 1), p);
}
static inline __m512d frnn_mask_load_f64(const double *p, ptrdiff_t n)
{
    return _mm512_maskz_loadu_pd((__mmask8)((1u << n) - 1), p);
}
#define frnn_mask_store_f32(p, v, n) _mm512_mask_storeu_ps(p, (__mmask16)((1u << (n)) - 1), (__m512)(v))
#define frnn_mask_store_f64(p, v, n) _mm512_mask_storeu_pd(p, (__mmask8)((1u << (n)) - 1), (__m512d)(v))

#define ISA avx512
#define FRNN_VB 64
#define FRNN_ACC 24
#include "tier.h"
#endif
