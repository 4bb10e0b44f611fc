/* Partial vectors of the AVX-512 tiers: one masked load or store for the units past the last whole vector. Included
 * by a tier file after its `#pragma GCC target` and <immintrin.h>; vec_ops.h uses them under FRNN_MASKED_TAILS. */
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
