/* The products of rows with packed weights in every format (layouts and roundings in fastrnn_kernels.h), as the
 * kernels' precision's vectors: float panels for both precisions; for float also bfloat16 pairs and int8 quads.
 * Included by tier.h once per precision inside each tier, before panels.h.
 *
 * Each format gives product_body.h four operations on a tier's vectors. A tier with the instructions for a
 * format defines FRNN_DPBF16 (VDPBF16PS) or FRNN_VNNI (VPDPBUSD, on u8 activations = q + 128, corrected by 128 x
 * the weights' row sums); the others widen in registers: a bf16 is the high half of a float32, and an int8 is
 * sign-extended from its byte, so the bytes streamed are the format's either way.
 */
#if defined(__SSE2__)
#include <immintrin.h>
#endif

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
typedef int16_t FN(vs16) __attribute__((vector_size(FRNN_VB)));
typedef uint16_t FN(vh16) __attribute__((vector_size(FRNN_VB)));
typedef uint32_t FN(vu32p) __attribute__((vector_size(FRNN_VB)));

/* VPMADDWD: each 32-bit lane of a and b holds two int16; the lane's two products summed, exactly, into int32. */
FRNN_ALWAYS_INLINE VINT FN(madd16)(VINT a, VINT b)
{
#if FRNN_VB == 64 && defined(__AVX512BW__)
    return (VINT)_mm512_madd_epi16((__m512i)a, (__m512i)b);
#elif FRNN_VB == 32 && defined(__AVX2__)
    return (VINT)_mm256_madd_epi16((__m256i)a, (__m256i)b);
#elif FRNN_VB == 16 && defined(__SSE2__)
    return (VINT)_mm_madd_epi16((__m128i)a, (__m128i)b);
#else
    return ((VINT)((FN(vu32p))a << 16) >> 16) * ((VINT)((FN(vu32p))b << 16) >> 16) + (a >> 16) * (b >> 16);
#endif
}

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
/* A lane's quad (k0 k1 k2 k3) as int16 pairs: (k0, k2) by sign-extending the low byte of each 16-bit half, (k1, k3)
 * by shifting the high byte down; VPMADDWD sums each pair's two products into int32, exactly (|q w| <= 127 x 127). */
typedef struct { VINT even, odd; } FN(quad);
FRNN_ALWAYS_INLINE FN(quad) FN(splat_quad)(const char *p)
{
    const uint8_t *u = (const uint8_t *)p;
    const uint32_t even = (uint32_t)(uint16_t)(u[0] - 128) | (uint32_t)(uint16_t)(u[2] - 128) << 16;
    const uint32_t odd = (uint32_t)(uint16_t)(u[1] - 128) | (uint32_t)(uint16_t)(u[3] - 128) << 16;
    return (FN(quad)){(VINT){0} + (int32_t)even, (VINT){0} + (int32_t)odd};
}
FRNN_ALWAYS_INLINE VINT FN(madd_quad)(VINT acc, VINT w, FN(quad) x)
{
    const FN(vs16) even = (FN(vs16))((FN(vh16))w << 8) >> 8, odd = (FN(vs16))w >> 8;
    return acc + FN(madd16)((VINT)even, x.even) + FN(madd16)((VINT)odd, x.odd);
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

/* ---- int16 pairs (int8 weights and activations widened by panel_rows_wide), exact int32 sums ---- */
#define PFX i16
#define XB VINT
#define X_SPLAT(p) FN(splat_group)(p)
#define MADD(acc, w, x) ((acc) + FN(madd16)(w, x))
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

#if FRNN_IS_FLOAT
/* ---- many rows with a bf16 or int8 panel where the tier's dot instruction for the format is missing or slower
 * than its float32 FMAs (products_any says when) ----
 * Each chunk of k is widened once per call into a buffer that stays in L1 (a bf16 pair into two float32 groups,
 * the odd k first as VDPBF16PS adds them; an int8 quad into two int16-pair groups, (k0, k2) and (k1, k3)), and so
 * are the rows' activations, WIDE_ROWS rows at a time; then the float / int16 register blocks run on them. A
 * row's arithmetic is then float32's (VPMADDWD: one instruction per 2 k, as an FMA per k), while the weights still
 * stream as the format's bytes. Sums: bf16 in VDPBF16PS's order, int8 exact, so both as the dot instructions. A
 * bf16 matrix small enough to sit in L2 widened (FRNN_WIDE_COPY_BYTES) keeps that widened copy from packing, read
 * in place of the per-chunk widening: the same values in the same order. */
#define WIDE_ROWS 16

/* Groups (pairs, quads) per chunk: widened, FRNN_KC / G values of k (16 KB of panel), a multiple of 16 groups so
 * the rows' groups are read as whole vectors inside their padded length (frnn_converted_ld). */
FRNN_ALWAYS_INLINE ptrdiff_t FN(wide_chunk)(const int G) { return FRNN_KC / G / 2 / 16 * 16; }
#if FRNN_KC / 4 / 2 < 16
#error "FRNN_KC too small for a chunk of 16 groups at G = 4"
#endif

FRNN_ALWAYS_INLINE void FN(widen_panel)(const int i8, const int A, ptrdiff_t groups, const char *w, char *out)
{
    for (ptrdiff_t g = 0; g < groups; ++g) {
        for (int a = 0; a < A; ++a) {
            const VINT v = FN(load_wi)(w + (g * A + a) * FRNN_VB);
            const VINT first = i8 ? (VINT)((FN(vs16))((FN(vh16))v << 8) >> 8) : v & (int32_t)0xffff0000;
            const VINT second = i8 ? (VINT)((FN(vs16))v >> 8) : (VINT)((FN(vu32p))v << 16);
            memcpy(out + (2 * g * A + a) * FRNN_VB, &first, sizeof first);
            memcpy(out + ((2 * g + 1) * A + a) * FRNN_VB, &second, sizeof second);
        }
    }
}

/* n rows of `groups` activation groups (row stride ldx bytes) -> 2 * groups widened groups (row stride ldo). */
FRNN_ALWAYS_INLINE void FN(widen_rows)(const int i8, ptrdiff_t n, ptrdiff_t groups, const char *x, ptrdiff_t ldx,
                                       char *out, ptrdiff_t ldo)
{
    VINT low, high;  /* interleave: first[2i] = a[i], first[2i+1] = b[i]; second from the upper halves */
    for (int i = 0; i < LANES / 2; ++i) {
        low[2 * i] = i, low[2 * i + 1] = LANES + i;
        high[2 * i] = LANES / 2 + i, high[2 * i + 1] = LANES + LANES / 2 + i;
    }
    for (ptrdiff_t r = 0; r < n; ++r) {
        for (ptrdiff_t g = 0; g < groups; g += LANES) {
            const VINT v = FN(load_wi)(x + r * ldx + g * 4);
            const FN(vh16) u = (FN(vh16))v;
            const VINT a = i8 ? (VINT)((u & 0xff) - 128) : v & (int32_t)0xffff0000;
            const VINT b = i8 ? (VINT)((u >> 8) - 128) : (VINT)((FN(vu32p))v << 16);
            const VINT first = __builtin_shuffle(a, b, low), second = __builtin_shuffle(a, b, high);
            memcpy(out + r * ldo + 2 * g * 4, &first, sizeof first);
            memcpy(out + r * ldo + 2 * g * 4 + FRNN_VB, &second, sizeof second);
        }
    }
}

#define FRNN_ROWS_CASE(R)                                                                                         \
    case R:                                                                                                    \
        if (i8) FN(dot_block_i16)(A, R, C, c0, 0, 2 * m, ww, wide_x + b0 * ldo, ldo, (VINT *)acc + (r0 + b0) * A, \
                                  g0 == 0);                                                                    \
        else FN(dot_block_flt)(A, R, C, c0, 0, 2 * m, ww, wide_x + b0 * ldo, ldo, (VEC *)acc + (r0 + b0) * A, \
                               g0 == 0);                                                                       \
        break;

/* n (2..NSUP) rows of x (stride ldx bytes) with one bf16 (i8 = 0) or int8 panel of G gates: acc as panel_rows.
 * wide: the bf16 panel already widened (frnn_widen_bf16_panels), or NULL to widen it here chunk by chunk. */
FRNN_ALWAYS_INLINE void FN(panel_rows_wide)(const int i8, const int G, ptrdiff_t n, ptrdiff_t groups, const char *w,
                                            const char *wide, const char *x, ptrdiff_t ldx, void *acc)
{
    const int A = G * NV, C = FN(block_cols)(A);
    const int RB = FRNN_ACC / C < RMAX ? FRNN_ACC / C : RMAX;
    const ptrdiff_t P = FN(wide_chunk)(G), ldo = 2 * P * 4;
    char wide_w[FRNN_KC * 64] __attribute__((aligned(64)));          /* 2P groups of G * 64 bytes, 2P G <= KC */
    char wide_x[WIDE_ROWS * FRNN_KC * 4] __attribute__((aligned(64)));  /* ldo = 8P <= 4 KC / G */
    for (ptrdiff_t g0 = 0; g0 < groups; g0 += P) {
        const ptrdiff_t m = groups - g0 < P ? groups - g0 : P;
        const char *ww = wide_w;
        if (wide) ww = wide + 2 * g0 * A * FRNN_VB;
        else FN(widen_panel)(i8, A, m, w + g0 * A * FRNN_VB, wide_w);
        for (ptrdiff_t r0 = 0, rows; r0 < n; r0 += rows) {
            rows = n - r0 < WIDE_ROWS ? n - r0 : WIDE_ROWS;
            FN(widen_rows)(i8, rows, m, x + r0 * ldx + g0 * 4, ldx, wide_x, ldo);
            const ptrdiff_t blocks = (rows + RB - 1) / RB;
            for (int c0 = 0; c0 < A; c0 += C) {
                for (ptrdiff_t b = 0, b0 = 0, R; b < blocks; ++b, b0 += R) {
                    R = rows / blocks + (b < rows % blocks);
                    switch (R) {
                        FRNN_ROWS_CASE(1) FRNN_ROWS_CASE(2) FRNN_ROWS_CASE(3) FRNN_ROWS_CASE(4)
                        FRNN_ROWS_CASE(5) FRNN_ROWS_CASE(6) FRNN_ROWS_CASE(7) FRNN_ROWS_CASE(8)
                    }
                }
            }
        }
    }
}
#undef FRNN_ROWS_CASE
#undef WIDE_ROWS
#endif

#if FRNN_IS_FLOAT && defined(FRNN_AMX)
/* ---- AMX (the amx tier): bf16 (TDPBF16PS) and int8 (TDPBUSD: u8 activations x s8 weights, corrected by 128 x
 * the row sums as VPDPBUSD's are) products on tiles of 16 rows x 64 bytes, every k of a padded panel, when the
 * kernel asks for tiles (panels.h: steps of FRNN_AMX_MIN_ROWS rows or more; fewer rows stream the weights faster
 * through VDPBF16PS / VPDPBUSD, as a tile's work is the same for 1 row as for 16 and those steps are bound by the
 * bytes of weights) ----
 * A panel's 64-byte group of one gate, taken over 16 groups at a stride of G * 64 bytes, is a B tile as the
 * instructions read it (16 k-groups x 16 units); 16 rows of activations over the same 64 bytes of k are an A tile;
 * C is 16 rows x 16 units in float32 or int32, stored where the other tiers leave a panel's sums (one 64-byte
 * vector per gate and row). Tiles: C 0-3 (rows a, b x gates a, b), A 4-5 (rows a, b), B 6-7 (gates a, b). A
 * call of n < 16 rows configures its A and C tiles to n rows (a step of 8 rows, H = 256, took 1.4x the time with
 * 16-row tiles: 16.4 against 11.6 us, C harness); from 16 rows on, every row of a tile is read, so rows up to 15
 * past n are read (frnn_converted_bytes makes them readable) and their products stored into acc's rows past n
 * (NSUP, a multiple of 16, bounds them), never used. Each row's products are the same whatever n is. */
#if NSUP % FRNN_TILE_ROWS != 0 || FRNN_VB != 64
#error "the amx tier needs 64-byte vectors and NSUP a multiple of 16"
#endif

typedef struct { uint8_t palette, start_row, reserved[14]; uint16_t colsb[16]; uint8_t rows[16]; } FN(tile_config);

/* Every tile 64 bytes wide; the C and A tiles (0-5) `rows` rows (1..16), the B tiles 16. LDTILECFG costs ~400
 * cycles and STTILECFG ~15, so the configuration is loaded only when this thread's is another (first use, a call
 * with another row count, or code outside fastrnn configured the tiles otherwise). */
FRNN_ALWAYS_INLINE void FN(amx_config)(int rows)
{
    FN(tile_config) want, have;
    memset(&want, 0, sizeof want);
    want.palette = 1;
    for (int t = 0; t < 8; ++t) {
        want.rows[t] = t < 6 ? rows : FRNN_TILE_ROWS;
        want.colsb[t] = 64;
    }
    _tile_storeconfig(&have);
    if (memcmp(&want, &have, sizeof want) != 0) _tile_loadconfig(&want);
}

/* Rows a (and b: two_rows) x gates a (and b: two_gates), over `chunks` tiles of k: the C tiles of gate a and b
 * start as 16 copies of the 64-byte row init[0] and init[1] (NULL: zero) and are stored to dst[0..3] (rows a
 * gate a, rows a gate b, rows b gate a, rows b gate b) at row strides ld_dst. The tile numbers must be literals,
 * hence the branches, constant after inlining. */
#define FRNN_TILE_INIT(t, src) do { if (src) _tile_loadd(t, src, 0); else _tile_zero(t); } while (0)

FRNN_ALWAYS_INLINE void FN(amx_tiles)(const int i8, const int two_rows, const int two_gates, ptrdiff_t chunks,
                                      const char *x, ptrdiff_t ldx, const char *w, ptrdiff_t ldw,
                                      const char *const init[2], char *const dst[4], const ptrdiff_t ld_dst[4])
{
    FRNN_TILE_INIT(0, init[0]);
    if (two_gates) FRNN_TILE_INIT(1, init[1]);
    if (two_rows) FRNN_TILE_INIT(2, init[0]);
    if (two_rows && two_gates) FRNN_TILE_INIT(3, init[1]);
    for (ptrdiff_t k = 0; k < chunks; ++k) {
        const char *xk = x + k * 64, *wk = w + k * FRNN_TILE_GROUPS * ldw;
        _tile_loadd(4, xk, ldx);
        _tile_loadd(6, wk, ldw);
        if (two_gates) _tile_loadd(7, wk + 64, ldw);
        if (two_rows) _tile_loadd(5, xk + FRNN_TILE_ROWS * ldx, ldx);
        if (i8) {
            _tile_dpbusd(0, 4, 6);
            if (two_gates) _tile_dpbusd(1, 4, 7);
            if (two_rows) _tile_dpbusd(2, 5, 6);
            if (two_rows && two_gates) _tile_dpbusd(3, 5, 7);
        } else {
            _tile_dpbf16ps(0, 4, 6);
            if (two_gates) _tile_dpbf16ps(1, 4, 7);
            if (two_rows) _tile_dpbf16ps(2, 5, 6);
            if (two_rows && two_gates) _tile_dpbf16ps(3, 5, 7);
        }
    }
    _tile_stored(0, dst[0], ld_dst[0]);
    if (two_gates) _tile_stored(1, dst[1], ld_dst[1]);
    if (two_rows) _tile_stored(2, dst[2], ld_dst[2]);
    if (two_rows && two_gates) _tile_stored(3, dst[3], ld_dst[3]);
}
#undef FRNN_TILE_INIT

/* The same from zero, stored where the other tiers leave a panel's sums: c (row stride ldc), gate b 64 bytes on. */
FRNN_ALWAYS_INLINE void FN(amx_block)(const int i8, const int two_rows, const int two_gates, ptrdiff_t chunks,
                                      const char *x, ptrdiff_t ldx, const char *w, ptrdiff_t ldw, char *c,
                                      ptrdiff_t ldc)
{
    const char *const zero[2] = {NULL, NULL};
    char *const dst[4] = {c, c + 64, c + FRNN_TILE_ROWS * ldc, c + FRNN_TILE_ROWS * ldc + 64};
    const ptrdiff_t ld_dst[4] = {ldc, ldc, ldc, ldc};
    FN(amx_tiles)(i8, two_rows, two_gates, chunks, x, ldx, w, ldw, zero, dst, ld_dst);
}

/* n (1..NSUP) rows of x (stride ldx bytes) with one panel of G gates (chunks tiles of k): acc[r*G + g], as
 * float32 (bf16) or int32 (i8) vectors. */
FRNN_ALWAYS_INLINE void FN(amx_products)(const int i8, const int G, ptrdiff_t n, ptrdiff_t chunks, const char *w,
                                         const char *x, ptrdiff_t ldx, void *acc)
{
    const ptrdiff_t ldw = G * 64, ldc = G * 64;
    FN(amx_config)(n < FRNN_TILE_ROWS ? (int)n : FRNN_TILE_ROWS);
    __asm__ volatile("" ::: "memory");  /* the tile instructions' asm names no memory: order them with the C */
    for (int g = 0; g < G; g += 2) {
        for (ptrdiff_t r = 0; r < n; r += 2 * FRNN_TILE_ROWS) {
            const char *xr = x + r * ldx, *wg = w + g * 64;
            char *c = (char *)acc + (r * G + g) * 64;
            if (r + FRNN_TILE_ROWS < n) {
                if (g + 1 < G) FN(amx_block)(i8, 1, 1, chunks, xr, ldx, wg, ldw, c, ldc);
                else FN(amx_block)(i8, 1, 0, chunks, xr, ldx, wg, ldw, c, ldc);
            } else {
                if (g + 1 < G) FN(amx_block)(i8, 0, 1, chunks, xr, ldx, wg, ldw, c, ldc);
                else FN(amx_block)(i8, 0, 0, chunks, xr, ldx, wg, ldw, c, ldc);
            }
        }
    }
    __asm__ volatile("" ::: "memory");
}

/* ---- the dense kernel's bf16 products straight into its output (amx tier, no activation: the input projection)
 * Each C tile starts as the bias (one 64-byte row loaded at stride 0, so all 16 rows) or zero, takes the products
 * and is stored where its rows and units go, at the output's row stride: no pass through a buffer and no bias
 * epilogue, which took ~25% of an input projection's time. A tile with rows past n or units past H is stored into
 * a buffer and only its valid part copied. A row's sums are bias + the products in the tiles' order whatever n is.
 * out_bg (n x G*H floats, row stride ld_out) = bias (G*H, or NULL: zero) + v W^T for the units j_begin..j_end-1
 * (whole panels) of a bf16 matrix. */
static void FN(amx_dense_bf16)(const int G, ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                               ptrdiff_t K, const frnn_mat *w, const frnn_rows *v, const float *bias, float *out_bg,
                               ptrdiff_t ld_out)
{
    const ptrdiff_t groups = (K + 1) / 2, stride = frnn_tile_groups(groups), chunks = stride / FRNN_TILE_GROUPS;
    const ptrdiff_t ldw = G * 64, ldx = v->ld * 2;
    float spill[4][FRNN_TILE_ROWS * 16] __attribute__((aligned(64)));
    float edge[4][16] __attribute__((aligned(64)));  /* a partial panel's bias, zero-padded */
    FN(amx_config)(FRNN_TILE_ROWS);
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += 16) {
        const ptrdiff_t m = H - j0 < 16 ? H - j0 : 16;
        const char *panel = (const char *)w->panels + j0 / 16 * stride * G * 64;
        for (int g = 0; g < G && bias && m < 16; ++g) {
            memset(edge[g], 0, sizeof edge[g]);
            memcpy(edge[g], bias + g * H + j0, (size_t)m * 4);
        }
        __asm__ volatile("" ::: "memory");  /* the tile instructions' asm names no memory: order them with the C */
        for (ptrdiff_t r = 0; r < n; r += 2 * FRNN_TILE_ROWS) {
            const int two_rows = r + FRNN_TILE_ROWS < n;
            const char *xr = (const char *)v->v + r * ldx;
            for (int g = 0; g < G; g += 2) {
                const int two_gates = g + 1 < G;
                const char *init[2] = {NULL, NULL};
                char *dst[4];
                ptrdiff_t ld_dst[4];
                for (int i = 0; i < 4; ++i) {  /* tile i: rows r + (i / 2) * 16, gate g + i % 2 */
                    const ptrdiff_t r0 = r + (i / 2) * FRNN_TILE_ROWS, gi = g + i % 2;
                    if (i < 2 && bias && gi < G)
                        init[i] = m < 16 ? (const char *)edge[gi] : (const char *)(bias + gi * H + j0);
                    if (gi < G && m == 16 && r0 + FRNN_TILE_ROWS <= n) {
                        dst[i] = (char *)(out_bg + r0 * ld_out + gi * H + j0);
                        ld_dst[i] = ld_out * 4;
                    } else {
                        dst[i] = (char *)spill[i];
                        ld_dst[i] = 64;
                    }
                }
                if (two_rows) {
                    if (two_gates) FN(amx_tiles)(0, 1, 1, chunks, xr, ldx, panel + g * 64, ldw, init, dst, ld_dst);
                    else FN(amx_tiles)(0, 1, 0, chunks, xr, ldx, panel + g * 64, ldw, init, dst, ld_dst);
                } else {
                    if (two_gates) FN(amx_tiles)(0, 0, 1, chunks, xr, ldx, panel + g * 64, ldw, init, dst, ld_dst);
                    else FN(amx_tiles)(0, 0, 0, chunks, xr, ldx, panel + g * 64, ldw, init, dst, ld_dst);
                }
                __asm__ volatile("" ::: "memory");
                for (int i = 0; i < 4; ++i) {  /* the spilled tiles' valid rows and units */
                    const ptrdiff_t r0 = r + (i / 2) * FRNN_TILE_ROWS, gi = g + i % 2;
                    if (dst[i] != (char *)spill[i] || gi >= G || (i >= 2 && !two_rows)) continue;
                    for (ptrdiff_t q = 0; q < FRNN_TILE_ROWS && r0 + q < n; ++q)
                        memcpy(out_bg + (r0 + q) * ld_out + gi * H + j0, spill[i] + q * 16, (size_t)m * 4);
                }
            }
        }
    }
}
#endif

/* The dot products of n (1..NSUP) rows of v, from row b0, with panel p of w (units p*PANEL ..), as this
 * precision's vectors acc[r*A + a] (A = G*NV). H: the units of a gate, for an int8 matrix's per-row scales;
 * tiles: the amx tier may use AMX tiles (panels.h says when).
 * One copy per gate count, each G a constant inside it, called (not inlined) by every kernel: a call per panel
 * and block of rows costs nothing beside the products, and keeps the build small. */
#define FRNN_PRODUCTS(G)                                                                                       \
    __attribute__((noinline)) static void FN(products_g##G)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t K,            \
                                                            const frnn_mat *w, ptrdiff_t p, const frnn_rows *v,  \
                                                            ptrdiff_t b0, VEC *acc, int tiles)                 \
    {                                                                                                          \
        FN(products_any)(G, n, H, K, w, p, v, b0, acc, tiles);                                                 \
    }

FRNN_ALWAYS_INLINE void FN(products_any)(const int G, ptrdiff_t n, ptrdiff_t H, ptrdiff_t K, const frnn_mat *w,
                                         ptrdiff_t p, const frnn_rows *v, ptrdiff_t b0, VEC *acc, int tiles)
{
    (void)tiles;
#if FRNN_IS_FLOAT
    if (w->format == FRNN_FMT_BF16) {
        const ptrdiff_t groups = (K + 1) / 2, stride = frnn_tile_groups(groups);
        const char *panel = (const char *)w->panels + p * stride * G * 64, *x = (const char *)v->v + b0 * v->ld * 2;
#ifdef FRNN_AMX
        if (tiles) {
            FN(amx_products)(0, G, n, stride / FRNN_TILE_GROUPS, panel, x, v->ld * 2, acc);
            return;
        }
#endif
#ifdef FRNN_DPBF16
        if (n >= 2 && frnn_widen_bf16)
#else
        if (n >= 2)
#endif
            FN(panel_rows_wide)(0, G, n, groups, panel,
                                w->wide ? (const char *)w->wide + 2 * p * stride * G * 64 : NULL, x, v->ld * 2, acc);
        else
            FN(panel_rows_bf16)(G, n, groups, panel, x, v->ld * 2, acc);
        return;
    }
    if (w->format == FRNN_FMT_I8) {
        const ptrdiff_t groups = (K + 3) / 4, stride = frnn_tile_groups(groups), A = G * NV;
        const char *panel = (const char *)w->panels + p * stride * G * 64, *x = (const char *)v->v + b0 * v->ld;
        VINT sums[NSUP * 4 * NV];
#ifdef FRNN_AMX
        if (tiles) FN(amx_products)(1, G, n, stride / FRNN_TILE_GROUPS, panel, x, v->ld, sums);
        else
#endif
#ifndef FRNN_VNNI
        if (n >= 2) FN(panel_rows_wide)(1, G, n, groups, panel, NULL, x, v->ld, sums);
        else
#endif
        FN(panel_rows_i8)(G, n, groups, panel, x, v->ld, sums);
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
                                     ptrdiff_t p, const frnn_rows *v, ptrdiff_t b0, VEC *acc, int tiles)
{
    if (G == 4) FN(products_g4)(n, H, K, w, p, v, b0, acc, tiles);
    else if (G == 3) FN(products_g3)(n, H, K, w, p, v, b0, acc, tiles);
    else if (G == 2) FN(products_g2)(n, H, K, w, p, v, b0, acc, tiles);
    else FN(products_g1)(n, H, K, w, p, v, b0, acc, tiles);
}

#undef I8_SHIFTED
#undef RMAX
