/* The fused recurrent step over packed panels (layout in fastrnn_kernels.h), for n batch rows: the dot products
 * of W_hh with the previous state and the gate math (gates.h) while they are in registers. Included by tier.h
 * once per precision inside each tier, after gates.h.
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
