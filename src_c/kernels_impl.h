/* Kernel bodies, included by kernels_isa.h once per precision (REAL, SFX, VEC, VINT, LANES) inside each
 * instruction set (ISA): one source for float/double x generic/avx2. Everything here is static; the
 * dispatching public functions live in kernels.c. The formulas are in fastrnn_kernels.h.
 *
 * Unit tails (H not a multiple of LANES) go through zero-padded loads and partial stores, so every
 * lane computes on defined values and nothing past H is read or written.
 */
#define FN__(name, sfx, isa) name##_##sfx##_##isa
#define FN_(name, sfx, isa) FN__(name, sfx, isa)
#define FN(name) FN_(name, SFX, ISA)

/* The first n (>= 1) values at p, zeros in the other lanes. */
FRNN_ALWAYS_INLINE VEC FN(load)(const REAL *p, ptrdiff_t n)
{
    VEC v = {0};
    if (n >= LANES) memcpy(&v, p, sizeof v);  /* constant size: one unaligned vector load */
    else memcpy(&v, p, (size_t)n * sizeof(REAL));
    return v;
}

FRNN_ALWAYS_INLINE void FN(store)(REAL *p, VEC v, ptrdiff_t n)
{
    if (n >= LANES) memcpy(p, &v, sizeof v);
    else memcpy(p, &v, (size_t)n * sizeof(REAL));
}

/* x in every lane. `x - 0` is exact for every x (-0 - 0 = -0), so the compiler drops the subtraction and
 * emits one broadcast (from memory where x comes from memory); `0 + x` would round -0 to +0 and stays an
 * add, which in the multi-row kernel doubled the non-FMA work per weight load. */
FRNN_ALWAYS_INLINE VEC FN(splat)(REAL x)
{
    return x - (VEC){0};
}

/* NaN-propagating select: lanes where mask is true (-1) take a, the others b. */
FRNN_ALWAYS_INLINE VEC FN(select)(VINT mask, VEC a, VEC b)
{
    return (VEC)(((VINT)a & mask) | ((VINT)b & ~mask));
}

FRNN_ALWAYS_INLINE VEC FN(relu)(VEC x)
{
    /* a comparison, not max(): NaN < 0 is false, so NaN propagates like torch's relu */
    return FN(select)(x < (REAL)0, (VEC){0}, x);
}

/* ---- gate math on one panel vector of units; n valid lanes of the state pointers ---- */

FRNN_ALWAYS_INLINE void FN(lstm_cell)(VEC i, VEC f, VEC g, VEC o, REAL *c, REAL *h, ptrdiff_t n)
{
    VEC c_new = FN(sigmoid)(f) * FN(load)(c, n) + FN(sigmoid)(i) * FN(tanh)(g);
    FN(store)(c, c_new, n);
    FN(store)(h, FN(sigmoid)(o) * FN(tanh)(c_new), n);
}

/* h_new may alias h_old (the elementwise kernel) or not (the fused recurrent one). */
FRNN_ALWAYS_INLINE void FN(gru_cell)(VEC xr, VEC xz, VEC xn, VEC hr, VEC hz, VEC hn, VEC b_hn,
                                     const REAL *h_old, REAL *h_new, ptrdiff_t n)
{
    VEC r = FN(sigmoid)(xr + hr);
    VEC z = FN(sigmoid)(xz + hz);
    VEC nn = FN(tanh)(xn + r * (hn + b_hn));
    FN(store)(h_new, ((REAL)1 - z) * nn + z * FN(load)(h_old, n), n);
}

FRNN_ALWAYS_INLINE VEC FN(rnn_act)(VEC pre, int act)
{
    return act == FRNN_ACT_TANH ? FN(tanh)(pre) : act == FRNN_ACT_RELU ? FN(relu)(pre) : pre;
}

/* ---- elementwise kernels (the BLAS path: the gemm already produced the pre-activations) ---- */

static void FN(sigmoid_n)(ptrdiff_t n, REAL *x)
{
    for (ptrdiff_t j = 0; j < n; j += LANES) FN(store)(x + j, FN(sigmoid)(FN(load)(x + j, n - j)), n - j);
}

static void FN(tanh_n)(ptrdiff_t n, REAL *x)
{
    for (ptrdiff_t j = 0; j < n; j += LANES) FN(store)(x + j, FN(tanh)(FN(load)(x + j, n - j)), n - j);
}

static void FN(copy_rows)(ptrdiff_t n, ptrdiff_t H, const REAL *src, ptrdiff_t ld_src, REAL *dst,
                          ptrdiff_t ld_dst)
{
    for (ptrdiff_t b = 0; b < n; ++b) memcpy(dst + b * ld_dst, src + b * ld_src, (size_t)H * sizeof(REAL));
}

static void FN(lstm_step)(ptrdiff_t n, ptrdiff_t H, const REAL *gates_bg, ptrdiff_t ld_gates, REAL *c_bh,
                          REAL *h_bh, REAL *out_bh, ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b) {
        const REAL *g = gates_bg + b * ld_gates;
        for (ptrdiff_t j = 0; j < H; j += LANES) {
            ptrdiff_t m = H - j;
            FN(lstm_cell)(FN(load)(g + j, m), FN(load)(g + H + j, m), FN(load)(g + 2 * H + j, m),
                          FN(load)(g + 3 * H + j, m), c_bh + b * H + j, h_bh + b * H + j, m);
        }
    }
    if (out_bh) FN(copy_rows)(n, H, h_bh, H, out_bh, ld_out);
}

static void FN(gru_step)(ptrdiff_t n, ptrdiff_t H, const REAL *gx_bg, ptrdiff_t ld_gx, const REAL *gh_bg,
                         const REAL *b_hn, REAL *h_bh, REAL *out_bh, ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b) {
        const REAL *x = gx_bg + b * ld_gx, *gh = gh_bg + b * 3 * H;
        for (ptrdiff_t j = 0; j < H; j += LANES) {
            ptrdiff_t m = H - j;
            VEC bn = b_hn ? FN(load)(b_hn + j, m) : (VEC){0};
            FN(gru_cell)(FN(load)(x + j, m), FN(load)(x + H + j, m), FN(load)(x + 2 * H + j, m),
                         FN(load)(gh + j, m), FN(load)(gh + H + j, m), FN(load)(gh + 2 * H + j, m), bn,
                         h_bh + b * H + j, h_bh + b * H + j, m);
        }
    }
    if (out_bh) FN(copy_rows)(n, H, h_bh, H, out_bh, ld_out);
}

static void FN(rnn_step)(ptrdiff_t n, ptrdiff_t H, const REAL *pre_bh, ptrdiff_t ld_pre, int act,
                         REAL *h_bh, REAL *out_bh, ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b)
        for (ptrdiff_t j = 0; j < H; j += LANES)
            FN(store)(h_bh + b * H + j, FN(rnn_act)(FN(load)(pre_bh + b * ld_pre + j, H - j), act), H - j);
    if (out_bh) FN(copy_rows)(n, H, h_bh, H, out_bh, ld_out);
}

/* ---- fused recurrent step over packed panels, for n batch rows ----
 *
 * Only units j_begin .. j_end-1 (whole panels): each panel's arithmetic is the same whichever range it is
 * in, so two threads that take one range each compute bitwise what one thread computes over 0 .. H-1.
 *
 * A panel covers PANEL units (64 bytes per gate) = NV native vectors. The dot products of one panel with
 * R rows of v land in acc[(r*G + g)*NV + q] (row r, gate g, vector q), then the gate math runs on them
 * while they are hot, so W_hh is streamed once per step and no gate pre-activation goes to memory.
 *
 * One row (R = 1, the streaming / B = 1 case) takes every gate of the panel in one pass over memory: per
 * k one broadcast of v[k] and G*NV FMAs on contiguous weights; S independent partial sums keep >= 8 FMA
 * chains in flight where the register file allows (an FMA has ~4 cycles of latency, 2 issue per cycle).
 * Several rows use a register block of R rows x one gate's NV vectors (AVX2 float: 6 x 2 ymm = 12
 * accumulators + 2 weight registers + 1 broadcast of the 16): each weight vector loaded once per k
 * serves R rows, the shape of a gemm micro-kernel, so small batches reach near the FMA peak without
 * BLAS copying all of W into its packing buffer at every step. G and R are constants after inlining,
 * so the sums live in registers. */
#define PANEL (FRNN_PANEL_BYTES / (ptrdiff_t)sizeof(REAL))
#define NV (PANEL / LANES)
/* Rows per register block: 12 accumulators (6 with AVX2, 3 with SSE2's 4-vector panels); BMAX bounds
 * every ISA's RMAX, for the sizes of the accumulator arrays. A panel's dot products are taken for up to
 * NSUP rows at once (24 rows x 4 gates x 64 bytes = 6 KB of accumulators on the stack). */
#define RMAX (12 / NV)
#define BMAX 6
#define NSUP 24

FRNN_ALWAYS_INLINE void FN(panel_dot)(const int G, ptrdiff_t K, const REAL *w_kgu, const REAL *v_k, VEC *acc)
{
    const int A = G * NV, S = A >= 8 ? 1 : A >= 4 ? 2 : 4;
    VEC sum[4][4 * NV];
    for (int s = 0; s < S; ++s)
        for (int a = 0; a < A; ++a) sum[s][a] = (VEC){0};
    ptrdiff_t k = 0;
    for (; k + S <= K; k += S) {
        for (int s = 0; s < S; ++s) {
            const VEC vk = FN(splat)(v_k[k + s]);
            const REAL *w = w_kgu + (k + s) * G * PANEL;
            for (int a = 0; a < A; ++a) sum[s][a] += FN(load)(w + a * LANES, LANES) * vk;
        }
    }
    for (; k < K; ++k) {
        const VEC vk = FN(splat)(v_k[k]);
        const REAL *w = w_kgu + k * G * PANEL;
        for (int a = 0; a < A; ++a) sum[0][a] += FN(load)(w + a * LANES, LANES) * vk;
    }
    for (int a = 0; a < A; ++a) {
        acc[a] = sum[0][a];
        for (int s = 1; s < S; ++s) acc[a] += sum[s][a];
    }
}

/* Vectors c0 .. c0+C-1 of the panel (of A = G*NV per k) for R rows of v (row stride K): acc[r*A + c]. */
FRNN_ALWAYS_INLINE void FN(dot_block)(const int G, const int R, const int C, int c0, ptrdiff_t K,
                                      const REAL *w_kgu, const REAL *v_bk, VEC *acc)
{
    const int A = G * NV;
    VEC sum[BMAX][6];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) sum[r][c] = (VEC){0};
    const REAL *w = w_kgu + c0 * LANES;
    for (ptrdiff_t k = 0; k < K; ++k, w += G * PANEL) {
        VEC wv[6];
        for (int c = 0; c < C; ++c) wv[c] = FN(load)(w + c * LANES, LANES);
        for (int r = 0; r < R; ++r) {
            const VEC vk = FN(splat)(v_bk[r * K + k]);
            for (int c = 0; c < C; ++c) sum[r][c] += wv[c] * vk;
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r * A + c0 + c] = sum[r][c];
}

/* A block of R = 2 or 3 rows alone: the panel's vectors C at a time, C the widest divisor of A with R*C <= 12,
 * so it still runs >= 8 independent FMA chains (one gate's NV vectors would give 4-6). */
FRNN_ALWAYS_INLINE void FN(dot_short)(const int G, const int R, ptrdiff_t K, const REAL *w_kgu, const REAL *v_bk,
                                      VEC *acc)
{
    const int A = G * NV;
    const int C = A % 6 == 0 && 6 * R <= 12 ? 6 : A % 4 == 0 && 4 * R <= 12 ? 4
                : A % 3 == 0 && 3 * R <= 12 ? 3 : A % 2 == 0 && 2 * R <= 12 ? 2 : 1;
    for (int c0 = 0; c0 < A; c0 += C) FN(dot_block)(G, R, C, c0, K, w_kgu, v_bk, acc);
}

/* The dot products of n (1..NSUP) rows with one panel, into acc[r*A + a]. Four rows and more go gate by gate
 * (one 64-byte line per k, K lines = 16 KB at K = 256, which stay in L1), every block of rows in turn, so a
 * block after the first reads the weights from L1, not L2; blocks of 4-6 rows x NV vectors keep >= 8 FMA
 * chains. */
FRNN_ALWAYS_INLINE void FN(panel_dots)(const int G, ptrdiff_t n, ptrdiff_t K, const REAL *w_kgu, const REAL *v_bk,
                                       VEC *acc)
{
    const int A = G * NV;
    if (n == 1) {
        FN(panel_dot)(G, K, w_kgu, v_bk, acc);
        return;
    }
    if (n <= 3 || RMAX < 4) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            R = n - b0 <= RMAX ? n - b0 : n - b0 == RMAX + 1 ? RMAX - 1 : RMAX;  /* no block of one row */
            if (R == 1) FN(panel_dot)(G, K, w_kgu, v_bk + b0 * K, acc + b0 * A);
            else if (R == 2) FN(dot_short)(G, 2, K, w_kgu, v_bk + b0 * K, acc + b0 * A);
            else FN(dot_short)(G, 3, K, w_kgu, v_bk + b0 * K, acc + b0 * A);
        }
        return;
    }
    const ptrdiff_t blocks = (n + RMAX - 1) / RMAX;
    for (int g = 0; g < G; ++g) {
        for (ptrdiff_t b = 0, b0 = 0, R; b < blocks; ++b, b0 += R) {
            R = n / blocks + (b < n % blocks);  /* near-equal blocks: 16 rows as 6 + 5 + 5, 8 as 4 + 4 */
            const REAL *v = v_bk + b0 * K;
            VEC *out = acc + b0 * A;
            switch (R) {
            case 3: FN(dot_block)(G, 3, NV, g * NV, K, w_kgu, v, out); break;
            case 4: FN(dot_block)(G, 4, NV, g * NV, K, w_kgu, v, out); break;
            case 5: FN(dot_block)(G, 5, NV, g * NV, K, w_kgu, v, out); break;
            default: FN(dot_block)(G, 6, NV, g * NV, K, w_kgu, v, out); break;
            }
        }
    }
}

static void FN(lstm_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                         ptrdiff_t K, const REAL *w_pkgu, const REAL *v_bk,
                         const REAL *gates_bg, ptrdiff_t ld_gates, REAL *c_bh, REAL *h_bh)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 4 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_dots)(4, R, K, w_pkgu + j0 * K * 4, v_bk + b0 * K, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                const VEC *ar = a + r * 4 * NV;
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    const REAL *g = gates_bg + (b0 + r) * ld_gates + j;
                    FN(lstm_cell)(ar[q] + FN(load)(g, m), ar[NV + q] + FN(load)(g + H, m),
                                  ar[2 * NV + q] + FN(load)(g + 2 * H, m), ar[3 * NV + q] + FN(load)(g + 3 * H, m),
                                  c_bh + row + j, h_bh + row + j, m);
                }
            }
        }
    }
}

static void FN(gru_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                        const REAL *w_pkgu, const REAL *h_prev_bh, const REAL *gx_bg,
                        ptrdiff_t ld_gx, const REAL *b_hn, REAL *h_bh)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 3 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_dots)(3, R, H, w_pkgu + j0 * H * 3, h_prev_bh + b0 * H, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                const VEC *ar = a + r * 3 * NV;
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    const REAL *x = gx_bg + (b0 + r) * ld_gx + j;
                    VEC bn = b_hn ? FN(load)(b_hn + j, m) : (VEC){0};
                    FN(gru_cell)(FN(load)(x, m), FN(load)(x + H, m), FN(load)(x + 2 * H, m), ar[q], ar[NV + q],
                                 ar[2 * NV + q], bn, h_prev_bh + row + j, h_bh + row + j, m);
                }
            }
        }
    }
}

static void FN(rnn_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                        ptrdiff_t K, const REAL *w_pkgu, const REAL *v_bk,
                        const REAL *pre_bh, ptrdiff_t ld_pre, int act, REAL *h_bh, ptrdiff_t ld_h)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_dots)(1, R, K, w_pkgu + j0 * K, v_bk + b0 * K, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j;
                    VEC v = a[r * NV + q];
                    if (pre_bh) v += FN(load)(pre_bh + (b0 + r) * ld_pre + j, m);
                    FN(store)(h_bh + (b0 + r) * ld_h + j, FN(rnn_act)(v, act), m);
                }
            }
        }
    }
}

#undef NSUP
#undef BMAX
#undef RMAX
#undef NV
#undef PANEL
#undef FN
#undef FN_
#undef FN__
