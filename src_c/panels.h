/* Products with weights packed into panels (layout in fastrnn_kernels.h), for n rows, fused with what follows
 * them while they are in registers: the gate math of a recurrent step (lstm_rec, gru_rec), or a bias and an
 * activation (dense: the RNN step, the input projection, the LSTM projection). Included by tier.h once per
 * precision inside each tier, after gates.h.
 *
 * Only the units j_begin .. j_end-1 (whole panels): each panel's arithmetic is the same whichever range it is in,
 * so threads that take one range each compute bitwise what one thread computes over 0 .. H-1.
 *
 * A panel covers PANEL units (64 bytes per gate) = NV native vectors per gate, A = G*NV vectors per k. Its dot
 * products with the rows land in acc[r*A + a] (row r, vector a = gate*NV + q), then the epilogue runs on them.
 *
 * One row (the streaming / B = 1 case, bound by reading the weights) takes every vector of the panel in one pass
 * over memory, with S independent partial sums so >= 8 FMA chains are in flight. Several rows form a gemm
 * micro-kernel: register blocks of R rows x C vectors (C the widest divisor of A leaving room for >= 3 rows in
 * the tier's ACC accumulator registers), each weight vector loaded once per k for R rows. k is walked in chunks
 * of KC, about 16 KB of panel, which stay in L1 while every block of rows passes over them; up to NSUP rows are
 * held at once, and more take the panel again. So weights are packed once, at load, never per step.
 */
#define PANEL (FRNN_PANEL_BYTES / (ptrdiff_t)sizeof(REAL))
#define NV (PANEL / LANES)
#ifndef FRNN_NSUP
#define FRNN_NSUP 48
#endif
#ifndef FRNN_KC
#define FRNN_KC 256
#endif
#define NSUP FRNN_NSUP
#define RMAX 8

/* One row: acc[a] = sum_k w[k][a] * v[k] over the whole panel, S partial sums. */
FRNN_ALWAYS_INLINE void FN(panel_dot)(const int A, ptrdiff_t K, const REAL *w_kgu, const REAL *v_k, VEC *acc)
{
    const int S = A >= 8 ? 1 : A >= 4 ? 2 : A >= 2 ? 4 : 8;
    VEC sum[8][4 * 4];
    for (int s = 0; s < S; ++s)
        for (int a = 0; a < A; ++a) sum[s][a] = (VEC){0};
    ptrdiff_t k = 0;
    for (; k + S <= K; k += S) {
        for (int s = 0; s < S; ++s) {
            const VEC vk = FN(splat)(v_k[k + s]);
            const REAL *w = w_kgu + (k + s) * A * LANES;
            for (int a = 0; a < A; ++a) sum[s][a] += FN(load)(w + a * LANES, LANES) * vk;
        }
    }
    for (; k < K; ++k) {
        const VEC vk = FN(splat)(v_k[k]);
        const REAL *w = w_kgu + k * A * LANES;
        for (int a = 0; a < A; ++a) sum[0][a] += FN(load)(w + a * LANES, LANES) * vk;
    }
    for (int a = 0; a < A; ++a) {
        acc[a] = sum[0][a];
        for (int s = 1; s < S; ++s) acc[a] += sum[s][a];
    }
}

/* Vectors c0 .. c0+C-1 of the panel for R rows of v (row stride ldv), k in [k0, k1): acc[r*A + c0 + c] gets the
 * sums (first chunk) or adds them. R and C are constants after inlining, so the sums live in registers. */
FRNN_ALWAYS_INLINE void FN(dot_block)(const int A, const int R, const int C, int c0, ptrdiff_t k0, ptrdiff_t k1,
                                      const REAL *w_kgu, const REAL *v_bk, ptrdiff_t ldv, VEC *acc, int first)
{
    VEC sum[RMAX][FRNN_ACC];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) sum[r][c] = first ? (VEC){0} : acc[r * A + c0 + c];
    const REAL *w = w_kgu + k0 * A * LANES + c0 * LANES;
    for (ptrdiff_t k = k0; k < k1; ++k, w += A * LANES) {
        VEC wv[FRNN_ACC];
        for (int c = 0; c < C; ++c) wv[c] = FN(load)(w + c * LANES, LANES);
        for (int r = 0; r < R; ++r) {
            const VEC vk = FN(splat)(v_bk[r * ldv + k]);
            for (int c = 0; c < C; ++c) sum[r][c] += wv[c] * vk;
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r * A + c0 + c] = sum[r][c];
}

/* Columns of a register block: the widest of 4, 3, 2, 1 that divides A and leaves room for 3 rows. */
FRNN_ALWAYS_INLINE int FN(block_cols)(const int A)
{
    return A % 4 == 0 && FRNN_ACC / 4 >= 3 ? 4 : A % 3 == 0 && FRNN_ACC / 3 >= 3 ? 3 : A % 2 == 0 ? 2 : 1;
}

#define FRNN_ROWS_CASE(R) \
    case R: FN(dot_block)(A, R, C, c0, k0, k1, w_kgu, v_bk + b0 * ldv, ldv, acc + b0 * A, k0 == 0); break;

/* The dot products of n (1..NSUP) rows of v with one panel, into acc[r*A + a]. */
FRNN_ALWAYS_INLINE void FN(panel_rows)(const int G, ptrdiff_t n, ptrdiff_t K, const REAL *w_kgu, const REAL *v_bk,
                                       ptrdiff_t ldv, VEC *acc)
{
    const int A = G * NV, C = FN(block_cols)(A);
    const int RB = FRNN_ACC / C < RMAX ? FRNN_ACC / C : RMAX;
    const ptrdiff_t KC = FRNN_KC / G;
    if (n == 1) {
        FN(panel_dot)(A, K, w_kgu, v_bk, acc);
        return;
    }
    if (K == 0) {
        for (ptrdiff_t a = 0; a < n * A; ++a) acc[a] = (VEC){0};
        return;
    }
    const ptrdiff_t blocks = (n + RB - 1) / RB;
    for (ptrdiff_t k0 = 0; k0 < K; k0 += KC) {
        const ptrdiff_t k1 = k0 + KC < K ? k0 + KC : K;
        for (int c0 = 0; c0 < A; c0 += C) {
            for (ptrdiff_t b = 0, b0 = 0, R; b < blocks; ++b, b0 += R) {
                R = n / blocks + (b < n % blocks);  /* near-equal blocks: 8 rows as 4 + 4, not 6 + 2 */
                switch (R) {
                    FRNN_ROWS_CASE(1) FRNN_ROWS_CASE(2) FRNN_ROWS_CASE(3) FRNN_ROWS_CASE(4)
                    FRNN_ROWS_CASE(5) FRNN_ROWS_CASE(6) FRNN_ROWS_CASE(7) FRNN_ROWS_CASE(8)
                }
            }
        }
    }
}

#undef FRNN_ROWS_CASE

static void FN(lstm_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K,
                         const REAL *w_pkgu, const REAL *v_bk, const REAL *gates_bg, ptrdiff_t ld_gates,
                         const REAL *c_prev_bh, REAL *c_bh, REAL *h_bh, const frnn_cell *cell, const REAL *peep_g)
{
    const VEC zero = {0};
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 4 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_rows)(4, R, K, w_pkgu + j0 * K * 4, v_bk + b0 * K, K, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                const VEC *ar = a + r * 4 * NV;
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    const REAL *g = gates_bg + (b0 + r) * ld_gates + j;
                    FN(lstm_cell)(ar[q] + FN(load)(g, m), ar[NV + q] + FN(load)(g + H, m),
                                  ar[2 * NV + q] + FN(load)(g + 2 * H, m), ar[3 * NV + q] + FN(load)(g + 3 * H, m),
                                  c_prev_bh + row + j, c_bh + row + j, h_bh + row + j, m, cell,
                                  peep_g ? FN(load)(peep_g + j, m) : zero, peep_g ? FN(load)(peep_g + H + j, m) : zero,
                                  peep_g ? FN(load)(peep_g + 2 * H + j, m) : zero);
                }
            }
        }
    }
}

static void FN(gru_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                        const REAL *w_pkgu, const REAL *h_prev_bh, const REAL *gx_bg,
                        ptrdiff_t ld_gx, const REAL *b_hn, REAL *h_bh, const frnn_cell *cell)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 3 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_rows)(3, R, H, w_pkgu + j0 * H * 3, h_prev_bh + b0 * H, H, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                const VEC *ar = a + r * 3 * NV;
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    const REAL *x = gx_bg + (b0 + r) * ld_gx + j;
                    VEC bn = b_hn ? FN(load)(b_hn + j, m) : (VEC){0};
                    FN(gru_cell)(FN(load)(x, m), FN(load)(x + H, m), FN(load)(x + 2 * H, m), ar[q], ar[NV + q],
                                 ar[2 * NV + q], bn, h_prev_bh + row + j, h_bh + row + j, m, cell);
                }
            }
        }
    }
}

/* out_bg (n x G*H, row stride ld_out) = act(clip(pre_bg + v_bk W^T)) for W of G gates x H units packed in panels;
 * pre_bg (row stride ld_pre; 0 broadcasts one row, a bias) may be NULL; act (its f slot and clip) NULL for the
 * identity. */
FRNN_ALWAYS_INLINE void FN(dense_g)(const int G, ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                                    ptrdiff_t K, const REAL *w_pkgu, const REAL *v_bk, ptrdiff_t ldv,
                                    const REAL *pre_bg, ptrdiff_t ld_pre, const frnn_cell *act, REAL *out_bg,
                                    ptrdiff_t ld_out)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 4 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_rows)(G, R, K, w_pkgu + j0 * K * G, v_bk + b0 * ldv, ldv, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                for (int g = 0; g < G; ++g) {
                    for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                        ptrdiff_t j = g * H + j0 + q * LANES, m = H - (j0 + q * LANES);
                        VEC v = a[(r * G + g) * NV + q];
                        if (pre_bg) v += FN(load)(pre_bg + (b0 + r) * ld_pre + j, m);
                        if (act) v = FN(gate)(&act->f, (REAL)act->clip, v);
                        FN(store)(out_bg + (b0 + r) * ld_out + j, v, m);
                    }
                }
            }
        }
    }
}

static void FN(dense)(ptrdiff_t n, ptrdiff_t G, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K,
                      const REAL *w_pkgu, const REAL *v_bk, ptrdiff_t ldv, const REAL *pre_bg, ptrdiff_t ld_pre,
                      const frnn_cell *act, REAL *out_bg, ptrdiff_t ld_out)
{
    switch (G) {  /* the gate count a constant of each copy, so its register blocks are too */
    case 4: FN(dense_g)(4, n, H, j_begin, j_end, K, w_pkgu, v_bk, ldv, pre_bg, ld_pre, act, out_bg, ld_out); break;
    case 3: FN(dense_g)(3, n, H, j_begin, j_end, K, w_pkgu, v_bk, ldv, pre_bg, ld_pre, act, out_bg, ld_out); break;
    default: FN(dense_g)(1, n, H, j_begin, j_end, K, w_pkgu, v_bk, ldv, pre_bg, ld_pre, act, out_bg, ld_out); break;
    }
}

/* GRU with the reset before the product (ONNX's default): the r and z gates first (W of 2 gates x H units), r
 * applied to the old h for the second product, then the candidate and h' (gru_n). */
static void FN(gru_rz)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, const REAL *w_pkgu,
                       const REAL *h_prev_bh, const REAL *gx_bg, ptrdiff_t ld_gx, REAL *z_bh, REAL *rh_bh,
                       const frnn_cell *cell)
{
    const REAL clip = (REAL)cell->clip;
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 2 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_rows)(2, R, H, w_pkgu + j0 * H * 2, h_prev_bh + b0 * H, H, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                const VEC *ar = a + r * 2 * NV;
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    const REAL *x = gx_bg + (b0 + r) * ld_gx + j;
                    VEC rg = FN(gate)(&cell->f, clip, FN(load)(x, m) + ar[q]);
                    FN(store)(z_bh + row + j, FN(gate)(&cell->f, clip, FN(load)(x + H, m) + ar[NV + q]), m);
                    FN(store)(rh_bh + row + j, rg * FN(load)(h_prev_bh + row + j, m), m);
                }
            }
        }
    }
}

static void FN(gru_n)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, const REAL *w_pkgu,
                      const REAL *rh_bh, const REAL *gx_bg, ptrdiff_t ld_gx, const REAL *z_bh,
                      const REAL *h_prev_bh, REAL *h_bh, const frnn_cell *cell)
{
    const REAL clip = (REAL)cell->clip;
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(panel_rows)(1, R, H, w_pkgu + j0 * H, rh_bh + b0 * H, H, a);
            for (ptrdiff_t r = 0; r < R; ++r) {
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    VEC nn = FN(gate)(&cell->g, clip, FN(load)(gx_bg + (b0 + r) * ld_gx + 2 * H + j, m) + a[r * NV + q]);
                    VEC z = FN(load)(z_bh + row + j, m);
                    FN(store)(h_bh + row + j, ((REAL)1 - z) * nn + z * FN(load)(h_prev_bh + row + j, m), m);
                }
            }
        }
    }
}

#undef RMAX
#undef NSUP
#undef NV
#undef PANEL
