/* The activations on one tier's vectors: float32 vectorised (no libm call per element), float64 by libm per
 * lane, which meets 1e-10 with margin and is not on the latency path users care about. Included once per
 * tier (after vec.h); names are sigmoid_f32_<tier>, tanh_f64_<tier>, ...
 */
#include <math.h>
#if defined(__SSE2__)
#include <immintrin.h>
#endif

#define frnn_vf32 ISA_FN(vf32, ISA)
#define frnn_vi32 ISA_FN(vi32, ISA)
#define frnn_vf64 ISA_FN(vf64, ISA)
#define frnn_vi64 ISA_FN(vi64, ISA)

/* ---- float32 activations on a panel vector -------------------------------------------------------------
 * exp(x) for x <= 0 (Cephes expf): x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial (about
 * 1 ulp), 2^n put into the exponent field. Clamping to [-88, 0] keeps 2^n a normal number or exactly 0,
 * so deep saturation gives exact 0/1 and never inf/inf. Comparisons are false for NaN, so a NaN input
 * keeps its value through the clamps and poisons the polynomial: NaN in, NaN out. */
/* expm1(r) = exp(n ln2 + r) / 2^n - 1 for the reduced argument: x = r + n ln2 (ln2 in two parts), then r + r^2 P(r)
 * (exact near 0: tanh reads it directly). */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(expm1_reduced_f32, ISA)(frnn_vf32 x, frnn_vf32 n)
{
    x = x - n * 0.693359375f;
    x = x - n * -2.12194440e-4f;
    const frnn_vf32 z = x * x;
    frnn_vf32 p = 1.9875691500e-4f + (frnn_vf32){0};
    p = p * x + 1.3981999507e-3f;
    p = p * x + 8.3334519073e-3f;
    p = p * x + 4.1665795894e-2f;
    p = p * x + 1.6666665459e-1f;
    p = p * x + 5.0000001201e-1f;
    return p * z + x;
}

/* exp(n ln2 + r) / 2^n = 1 + expm1(r). */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(exp_reduced_f32, ISA)(frnn_vf32 x, frnn_vf32 n)
{
    return ISA_FN(expm1_reduced_f32, ISA)(x, n) + 1.0f;
}

FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(exp_neg_f32, ISA)(frnn_vf32 x)
{
#if FRNN_VB == 64 && defined(__AVX512F__)
    /* The same reduction and polynomial in ~14 instructions instead of ~25: n rounded by VRNDSCALEPS, 2^n applied
     * by VSCALEFPS, no clamps or integer round trip (the cell math is ~20% faster). Below ln(FLT_MIN) the result
     * is 0 (the mask: no subnormals, whose arithmetic is slow; NaN is kept as not-less-than is true for it). */
    const __mmask16 normal = _mm512_cmp_ps_mask((__m512)x, _mm512_set1_ps(-87.33f), _CMP_NLT_UQ);
    const frnn_vf32 n = (frnn_vf32)_mm512_roundscale_ps((__m512)(x * 1.44269504088896341f),
                                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const frnn_vf32 p = ISA_FN(exp_reduced_f32, ISA)(x, n);
    return (frnn_vf32)_mm512_maskz_scalef_ps(normal, (__m512)p, (__m512)n);
#else
    const frnn_vf32 lo = (frnn_vf32){0} - 88.0f, zero = (frnn_vf32){0};
    frnn_vi32 below = x < lo, above = x > zero;
    x = (frnn_vf32)(((frnn_vi32)x & ~below) | ((frnn_vi32)lo & below));
    x = (frnn_vf32)((frnn_vi32)x & ~above);
    frnn_vf32 fx = x * 1.44269504088896341f + 0.5f;
    frnn_vi32 n = __builtin_convertvector(fx, frnn_vi32);   /* truncates; fix to floor below */
    frnn_vf32 nf = __builtin_convertvector(n, frnn_vf32);
    n += (nf > fx);                                          /* true is -1 */
    nf = __builtin_convertvector(n, frnn_vf32);
    const frnn_vf32 p = ISA_FN(exp_reduced_f32, ISA)(x, nf);
    /* n >= -127: n = -127 gives exponent field 0, i.e. the factor 0.0 (true value < 1.2e-38). */
    frnn_vi32 scale = (n + 127) << 23;
    return p * (frnn_vf32)scale;
#endif
}

FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(abs_f32, ISA)(frnn_vf32 x)
{
    return (frnn_vf32)((frnn_vi32)x & 0x7fffffff);
}

#if FRNN_VB == 64 && defined(__AVX512F__)
/* The AVX-512 forms: an LSTM cell in 122 instructions instead of 159 (GCC 12), ~25% faster alone, as the cell's time
 * is its instruction count (with AMX products the cell was half a small-batch step). */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(neg_abs_f32, ISA)(frnn_vf32 x)
{
    return (frnn_vf32)((frnn_vi32)x | INT32_MIN);
}

/* sigmoid(x) = r = 1 / (1 + e) for x >= 0, e r for x < 0 (a masked multiply), with e = exp(-|x|) in (0, 1]. */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(sigmoid_f32, ISA)(frnn_vf32 x)
{
    const frnn_vf32 e = ISA_FN(exp_neg_f32, ISA)(ISA_FN(neg_abs_f32, ISA)(x)), r = 1.0f / (1.0f + e);
    const __mmask16 neg = _mm512_cmp_ps_mask((__m512)x, _mm512_setzero_ps(), _CMP_LT_OQ);
    return (frnn_vf32)_mm512_mask_mul_ps((__m512)r, neg, (__m512)e, (__m512)r);
}

/* tanh(|x|) = -m / (2 + m) with m = expm1(-2|x|) in [-1, 0], the sign of x copied back (so tanh(-0) = -0 and NaN
 * keeps its payload). expm1 = 2^n (1 + q) - 1 = 2^n q + (2^n - 1) with q = expm1(r) = r + r^2 P(r), the
 * reduction and polynomial of exp_neg: near 0 (n = 0) m = q has no cancellation, so one formula covers every x
 * (the portable form needs a second polynomial for |x| < 0.625 and a select): <= 2.5 ulp against <= 1.5. Below
 * ln(FLT_MIN) both scaled terms are masked to 0, so m = -1 and tanh is exactly +-1 from |x| > 43.7 and at +-inf. */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(tanh_f32, ISA)(frnn_vf32 x)
{
    const frnn_vf32 t = ISA_FN(neg_abs_f32, ISA)(x) * 2.0f;
    const __mmask16 normal = _mm512_cmp_ps_mask((__m512)t, _mm512_set1_ps(-87.33f), _CMP_NLT_UQ);
    const frnn_vf32 n = (frnn_vf32)_mm512_roundscale_ps((__m512)(t * 1.44269504088896341f),
                                                        _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const frnn_vf32 q = ISA_FN(expm1_reduced_f32, ISA)(t, n);
    const frnn_vf32 m = (frnn_vf32)_mm512_maskz_scalef_ps(normal, (__m512)q, (__m512)n) +
                        ((frnn_vf32)_mm512_maskz_scalef_ps(normal, _mm512_set1_ps(1.0f), (__m512)n) - 1.0f);
    const frnn_vf32 y = m / (2.0f + m);  /* -tanh(|x|) */
    /* bitwise: the sign bit from x, every other bit from y (VPTERNLOGD 0xE4: c ? a : b) */
    return (frnn_vf32)_mm512_ternarylogic_epi32((__m512i)x, (__m512i)y, _mm512_set1_epi32(INT32_MIN), 0xe4);
}
#else
/* sigmoid(x) = 1 / (1 + e) for x >= 0, e / (1 + e) for x < 0, with e = exp(-|x|) in (0, 1]. */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(sigmoid_f32, ISA)(frnn_vf32 x)
{
    frnn_vf32 e = ISA_FN(exp_neg_f32, ISA)(-ISA_FN(abs_f32, ISA)(x));
    frnn_vf32 r = 1.0f / (1.0f + e);
    frnn_vi32 neg = x < 0.0f;
    return (frnn_vf32)(((frnn_vi32)r & ~neg) | ((frnn_vi32)(e * r) & neg));
}

/* tanh: |x| < 0.625 by Cephes tanhf's odd polynomial (no cancellation near 0), else (1 - e) / (1 + e)
 * with e = exp(-2|x|); the sign is copied back. */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(tanh_f32, ISA)(frnn_vf32 x)
{
    frnn_vf32 ax = ISA_FN(abs_f32, ISA)(x);
    frnn_vf32 z = x * x;
    frnn_vf32 p = -5.70498872745e-3f + (frnn_vf32){0};
    p = p * z + 2.06390887954e-2f;
    p = p * z - 5.37397155531e-2f;
    p = p * z + 1.33314422036e-1f;
    p = p * z - 3.33332819422e-1f;
    frnn_vf32 small = p * z * x + x;
    frnn_vf32 e = ISA_FN(exp_neg_f32, ISA)(-2.0f * ax);
    frnn_vf32 big = (1.0f - e) / (1.0f + e);
    big = (frnn_vf32)((frnn_vi32)big | ((frnn_vi32)x & INT32_MIN));
    frnn_vi32 is_small = ax < 0.625f;
    return (frnn_vf32)(((frnn_vi32)small & is_small) | ((frnn_vi32)big & ~is_small));
}

#endif

/* log(1 + u) for u in [0, 1] (softplus): 2 atanh(s) with s = u / (2 + u) in [0, 1/3], an odd series in s with
 * no cancellation near 0; ~1 ulp. NaN in, NaN out. */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(log1p_unit_f32, ISA)(frnn_vf32 u)
{
    frnn_vf32 s = u / (2.0f + u), z = s * s;
    frnn_vf32 p = 1.0f / 15 + (frnn_vf32){0};
    p = p * z + 1.0f / 13;
    p = p * z + 1.0f / 11;
    p = p * z + 1.0f / 9;
    p = p * z + 1.0f / 7;
    p = p * z + 1.0f / 5;
    p = p * z + 1.0f / 3;
    return 2.0f * (s + s * z * p);
}

/* exp(x) for x <= 0 (the ELU's negative side). */
FRNN_ALWAYS_INLINE frnn_vf32 ISA_FN(exp_nonpos_f32, ISA)(frnn_vf32 x)
{
    return ISA_FN(exp_neg_f32, ISA)(x);
}

/* ---- float64 activations: libm per lane ------------------------------------------------------------- */
FRNN_ALWAYS_INLINE double ISA_FN(sigmoid1_f64, ISA)(double x)
{
    /* exp of a non-positive argument only: never overflows, so saturation gives exactly 0 or 1. */
    if (x >= 0) return 1.0 / (1.0 + exp(-x));
    double e = exp(x);
    return e / (1.0 + e);
}

FRNN_ALWAYS_INLINE frnn_vf64 ISA_FN(sigmoid_f64, ISA)(frnn_vf64 x)
{
    for (int k = 0; k < FRNN_VB / 8; ++k) x[k] = ISA_FN(sigmoid1_f64, ISA)(x[k]);
    return x;
}

FRNN_ALWAYS_INLINE frnn_vf64 ISA_FN(tanh_f64, ISA)(frnn_vf64 x)
{
    for (int k = 0; k < FRNN_VB / 8; ++k) x[k] = tanh(x[k]);
    return x;
}

FRNN_ALWAYS_INLINE frnn_vf64 ISA_FN(log1p_unit_f64, ISA)(frnn_vf64 u)
{
    for (int k = 0; k < FRNN_VB / 8; ++k) u[k] = log1p(u[k]);
    return u;
}

FRNN_ALWAYS_INLINE frnn_vf64 ISA_FN(exp_nonpos_f64, ISA)(frnn_vf64 x)
{
    for (int k = 0; k < FRNN_VB / 8; ++k) x[k] = exp(x[k]);
    return x;
}

#undef frnn_vf32
#undef frnn_vi32
#undef frnn_vf64
#undef frnn_vi64
