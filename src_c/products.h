/* The products of rows with packed weights in every format (layouts and roundings in fastrnn_kernels.h), as the
 * kernels' precision's vectors: float panels for both precisions; for float also bfloat16 pairs and int8 quads.
 * Included by tier.h once per precision inside each tier, before panels.h.
 *
 * Each format gives product_body.h four operations on a tier's vectors. A tier with the instructions for a
 * format defines FRNN_DPBF16 (VDPBF16PS) or FRNN_VNNI (VPDPBUSD, on u8 activations = q + 128, corrected by 128 x
 * the weights' row sums); the others widen in registers: a bf16 is the high half of a float32, and an int8 is
 * sign-extended from its byte, so the bytes streamed are the format's either way.
 */
#define RMAX 8

/* Columns of a register block: the widest of 4, 3, 2, 1 that divides A and leaves room for 3 rows. */
FRNN_ALWAYS_INLINE int FN(block_cols)(const int A)
{
    return A % 4 == 0 && FRNN_ACC / 4 >= 3 ? 4 : A % 3 == 0 && FRNN_ACC / 3 >= 3 ? 3 : A % 2 == 0 ? 2 : 1;
}

FRNN_ALWAYS_INLINE VEC FN(load_w)(const char *p)
{
    VEC v;
    memcpy(&v, p, sizeof v);
    return v;
}

FRNN_ALWAYS_INLINE VINT FN(load_wi)(const char *p)
{
    VINT v;
    memcpy(&v, p, sizeof v);
    return v;
}

/* One 32-bit group of activations (a bf16 pair, a u8 quad) in every lane. */
FRNN_ALWAYS_INLINE VINT FN(splat_group)(const char *p)
{
    int32_t x;
    memcpy(&x, p, sizeof x);
    return (VINT){0} + x;
}

/* ---- float weights (the kernels' precision) ---- */
#define PFX flt
#define ACCV VEC
#define WV VEC
#define XB VEC
#define GROUP_X ((ptrdiff_t)sizeof(REAL))
#define W_LOAD(p) FN(load_w)(p)
#define X_SPLAT(p) FN(splat)(*(const REAL *)(p))
#define MADD(acc, w, x) ((acc) + (w) * (x))
#define ZERO_ACC ((VEC){0})
#include "product_body.h"
#undef PFX
#undef XB
#undef X_SPLAT
#undef MADD

#if FRNN_IS_FLOAT
/* ---- bfloat16 weights and activations (pairs of k in 32-bit lanes), float32 sums ---- */
#define PFX bf16
#undef WV
#define WV VINT
#undef W_LOAD
#define W_LOAD(p) FN(load_wi)(p)
#undef GROUP_X
#define GROUP_X ((ptrdiff_t)4)
#ifdef FRNN_DPBF16
#define XB VINT
#define X_SPLAT(p) FN(splat_group)(p)
#define MADD(acc, w, x) ((VEC)_mm512_dpbf16_ps((__m512)(acc), (__m512bh)(w), (__m512bh)(x)))
#else
typedef struct { VEC odd, even; } FN(pair);
FRNN_ALWAYS_INLINE FN(pair) FN(splat_pair)(const char *p)
{
    uint32_t bits, hi, lo;
    float fo, fe;
    memcpy(&bits, p, 4);
    hi = bits & 0xffff0000u;
    lo = bits << 16;
    memcpy(&fo, &hi, 4);
    memcpy(&fe, &lo, 4);
    return (FN(pair)){FN(splat)(fo), FN(splat)(fe)};
}
/* VDPBF16PS's order: the odd k of each pair, then the even one (each product exact in float32). */
FRNN_ALWAYS_INLINE VEC FN(madd_pair)(VEC acc, VINT w, FN(pair) x)
{
    const VINT high = (VINT){0} + (int32_t)0xffff0000;
    acc = acc + (VEC)(w & high) * x.odd;
    return acc + (VEC)(w << 16) * x.even;
}
#define XB FN(pair)
#define X_SPLAT(p) FN(splat_pair)(p)
#define MADD(acc, w, x) FN(madd_pair)(acc, w, x)
#endif
#include "product_body.h"
#undef PFX
#undef XB
#undef X_SPLAT
#undef MADD

/* ---- int8 weights and activations (quads of k in 32-bit lanes), exact int32 sums ---- */
#define PFX i8
#undef ACCV
#define ACCV VINT
#undef ZERO_ACC
#define ZERO_ACC ((VINT){0})
#ifdef FRNN_VNNI
#define I8_SHIFTED 1  /* the sums hold u8 x s8: subtract 128 x the weights' row sum */
#define XB VINT
#define X_SPLAT(p) FN(splat_group)(p)
#define MADD(acc, w, x) ((VINT)_mm512_dpbusd_epi32((__m512i)(acc), (__m512i)(x), (__m512i)(w)))
#else
#define I8_SHIFTED 0
typedef struct { VINT q[4]; } FN(quad);
FRNN_ALWAYS_INLINE FN(quad) FN(splat_quad)(const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    FN(quad) x;
    for (int j = 0; j < 4; ++j) x.q[j] = (VINT){0} + ((int32_t)u[j] - 128);
    return x;
}
FRNN_ALWAYS_INLINE VINT FN(madd_quad)(VINT acc, VINT w, FN(quad) x)
{
    /* byte j of each lane, sign-extended: no product or sum can overflow int32 */
    return acc + ((w << 24) >> 24) * x.q[0] + ((w << 16) >> 24) * x.q[1] + ((w << 8) >> 24) * x.q[2]
           + (w >> 24) * x.q[3];
}
#define XB FN(quad)
#define X_SPLAT(p) FN(splat_quad)(p)
#define MADD(acc, w, x) FN(madd_quad)(acc, w, x)
#endif
#include "product_body.h"
#undef PFX
#undef XB
#undef X_SPLAT
#undef MADD
#endif /* FRNN_IS_FLOAT */

#undef ACCV
#undef WV
#undef GROUP_X
#undef W_LOAD
#undef ZERO_ACC

/* The dot products of n (1..NSUP) rows of v, from row b0, with panel p of w (units p*PANEL ..), as this
 * precision's vectors acc[r*A + a] (A = G*NV). H: the units of a gate, for an int8 matrix's per-row scales.
 * One copy per gate count, each G a constant inside it, called (not inlined) by every kernel: a call per panel
 * and block of rows costs nothing beside the products, and keeps the build small. */
#define FRNN_PRODUCTS(G)                                                                                       \
    __attribute__((noinline)) static void FN(products_g##G)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t K,            \
                                                            const frnn_mat *w, ptrdiff_t p, const frnn_rows *v,  \
                                                            ptrdiff_t b0, VEC *acc)                            \
    {                                                                                                          \
        FN(products_any)(G, n, H, K, w, p, v, b0, acc);                                                        \
    }

FRNN_ALWAYS_INLINE void FN(products_any)(const int G, ptrdiff_t n, ptrdiff_t H, ptrdiff_t K, const frnn_mat *w,
                                         ptrdiff_t p, const frnn_rows *v, ptrdiff_t b0, VEC *acc)
{
#if FRNN_IS_FLOAT
    if (w->format == FRNN_FMT_BF16) {
        const ptrdiff_t groups = (K + 1) / 2;
        FN(panel_rows_bf16)(G, n, groups, (const char *)w->panels + p * groups * G * 64,
                            (const char *)v->v + b0 * v->ld * 2, v->ld * 2, acc);
        return;
    }
    if (w->format == FRNN_FMT_I8) {
        const ptrdiff_t groups = (K + 3) / 4, A = G * NV;
        VINT sums[NSUP * 4 * NV];
        FN(panel_rows_i8)(G, n, groups, (const char *)w->panels + p * groups * G * 64,
                          (const char *)v->v + b0 * v->ld, v->ld, sums);
        for (int a = 0; a < A; ++a) {  /* dequantize: q_x q_w x scale_x x scale_w */
            ptrdiff_t row = (a / NV) * H + p * PANEL + (a % NV) * LANES, m = H - (p * PANEL + (a % NV) * LANES);
            VEC scale = m > 0 ? FN(load)(w->scale + row, m) : (VEC){0};
            VINT shift = (VINT){0};
            if (I8_SHIFTED && m > 0) {
                VINT s = {0};
                memcpy(&s, w->sums + row, sizeof s < (size_t)m * 4 ? sizeof s : (size_t)m * 4);
                shift = s * 128;
            }
            for (ptrdiff_t r = 0; r < n; ++r)
                acc[r * A + a] = __builtin_convertvector(sums[r * A + a] - shift, VEC) * (scale * v->scale[b0 + r]);
        }
        return;
    }
#endif
    FN(panel_rows_flt)(G, n, K, (const char *)w->panels + p * K * G * 64,
                       (const char *)v->v + b0 * v->ld * (ptrdiff_t)sizeof(REAL), v->ld * (ptrdiff_t)sizeof(REAL),
                       acc);
}

FRNN_PRODUCTS(1)
FRNN_PRODUCTS(2)
FRNN_PRODUCTS(3)
FRNN_PRODUCTS(4)
#undef FRNN_PRODUCTS

FRNN_ALWAYS_INLINE void FN(products)(const int G, ptrdiff_t n, ptrdiff_t H, ptrdiff_t K, const frnn_mat *w,
                                     ptrdiff_t p, const frnn_rows *v, ptrdiff_t b0, VEC *acc)
{
    if (G == 4) FN(products_g4)(n, H, K, w, p, v, b0, acc);
    else if (G == 3) FN(products_g3)(n, H, K, w, p, v, b0, acc);
    else if (G == 2) FN(products_g2)(n, H, K, w, p, v, b0, acc);
    else FN(products_g1)(n, H, K, w, p, v, b0, acc);
}

#undef I8_SHIFTED
#undef RMAX
