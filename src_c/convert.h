/* frnn_convert_rows on one tier's vectors (float32 rows only): included by tier_bodies.h in the float precision.
 * Bitwise the roundings the packing uses for weights (dispatch.c: bf16_bits, quantize) and tests/reference.py
 * states, as tests/test_precision.py checks on every tier:
 * bf16 by round-to-nearest-even on the bits (NaN stays a quiet NaN); int8 per row, scale = max|x| / 127 and
 * q = rint(x * (127 / max|x|)) clamped to [-127, 127] (NaN or inf in a row: scale NaN, q 0), stored as q + 128.
 * Converted rows are frnn_converted_ld elements long, a multiple of 32 (bf16) or 64 (int8), so whole vectors. */
typedef uint32_t FN(vu32) __attribute__((vector_size(FRNN_VB)));
typedef uint16_t FN(vu16) __attribute__((vector_size(FRNN_VB / 2)));
typedef uint8_t FN(vu8) __attribute__((vector_size(FRNN_VB / 4)));

FRNN_ALWAYS_INLINE void FN(convert_bf16)(ptrdiff_t K, ptrdiff_t ld, const float *x, uint16_t *out)
{
    for (ptrdiff_t k = 0; k < ld; k += LANES) {
        const FN(vu32) b = (FN(vu32))(k < K ? FN(load)(x + k, K - k) : (VEC){0});
        const FN(vu32) nan = (FN(vu32))((b & 0x7fffffffu) > 0x7f800000u);
        const FN(vu32) r = (((b + 0x7fffu + ((b >> 16) & 1u)) >> 16) & ~nan) | (((b >> 16) | 0x40u) & nan);
        const FN(vu16) h = __builtin_convertvector(r, FN(vu16));
        memcpy(out + k, &h, sizeof h);
    }
}

FRNN_ALWAYS_INLINE void FN(convert_i8)(ptrdiff_t K, ptrdiff_t ld, const float *x, uint8_t *out, float *scale)
{
    const VEC zero = {0}, finite = zero + FLT_MAX, lim = zero + 127.0f, magic = zero + 12582912.0f;  /* 1.5 * 2^23 */
    VEC top = zero;
    VINT bad = {0};
    for (ptrdiff_t k = 0; k < K; k += LANES) {
        const VEC a = (VEC)((VINT)FN(load)(x + k, K - k) & 0x7fffffff);
        bad |= ~(a <= finite);  /* NaN or inf */
        top = FN(select)(a > top, a, top);
    }
    float t = 0.0f;
    int any_bad = 0;
    for (int i = 0; i < LANES; ++i) {
        t = top[i] > t ? top[i] : t;
        any_bad |= bad[i] != 0;
    }
    if (any_bad) t = NAN;
    *scale = t / 127.0f;
    const VEC inverse = FN(splat)(t > 0.0f ? 127.0f / t : 0.0f);  /* NaN t: 0 */
    for (ptrdiff_t k = 0; k < ld; k += LANES) {
        VEC y = (k < K ? FN(load)(x + k, K - k) : zero) * inverse;
        y = FN(select)(y == y, y, zero);  /* NaN (inf x 0, NaN x 0): 0 */
        y = FN(select)(y > lim, lim, y);
        y = FN(select)(y < -lim, -lim, y);
        y = (y + magic) - magic;          /* rint: to nearest even, |y| <= 127 */
        const FN(vu8) u = __builtin_convertvector(__builtin_convertvector(y, VINT) + 128, FN(vu8));
        memcpy(out + k, &u, sizeof u);
    }
}

static void FN(convert_rows)(int format, ptrdiff_t n, ptrdiff_t K, const float *src, ptrdiff_t ld_src, void *dst,
                             float *scale)
{
    const ptrdiff_t ld = frnn_converted_ld(format, K);
    for (ptrdiff_t r = 0; r < n; ++r) {
        if (format == FRNN_FMT_BF16) FN(convert_bf16)(K, ld, src + r * ld_src, (uint16_t *)dst + r * ld);
        else FN(convert_i8)(K, ld, src + r * ld_src, (uint8_t *)dst + r * ld, scale + r);
    }
}
