/* The kernels: the products with packed weights (products.h, any format) fused with what follows them while they
 * are in registers: the gate math of a recurrent step (lstm_rec, gru_rec, gru_rz + gru_n), or a bias and an
 * activation (dense: the RNN step, the input projection, the LSTM projection). Included by tier.h once per
 * precision inside each tier, after products.h. Weights are packed once, at load, never per step.
 *
 * Only the units j_begin .. j_end-1 (whole panels): each panel's arithmetic is the same whichever range it is in,
 * so threads that take one range each compute bitwise what one thread computes over 0 .. H-1. Rows go NSUP at a
 * time; row r of a panel's products is a[r*A + gate*NV + q].
 *
 * On the amx tier, a recurrent step's bf16 / int8 products take AMX tiles when the step has FRNN_AMX_MIN_ROWS rows
 * or more (the row count of a step is the same on every path); the dense kernel's always do, because its row
 * count depends on how the input projection is cut into blocks, and a row's sums must not. A bf16 dense call with
 * no activation and at most a bias (the input projection, the LSTM projection) stores its tiles straight into
 * its output (products.h, amx_dense_bf16).
 */
FRNN_ALWAYS_INLINE int FN(tiles)(ptrdiff_t n)
{
#ifdef FRNN_AMX_MIN_ROWS
    return n >= FRNN_AMX_MIN_ROWS;
#else
    (void)n;
    return 0;
#endif
}

static void FN(lstm_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K,
                         const frnn_mat *w, const frnn_rows *v, const REAL *gates_bg, ptrdiff_t ld_gates,
                         const REAL *c_prev_bh, REAL *c_bh, REAL *h_bh, const frnn_cell *cell, const REAL *peep_g)
{
    const VEC zero = {0};
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 4 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(products)(4, R, H, K, w, j0 / PANEL, v, b0, a, FN(tiles)(n));
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

static void FN(gru_rec)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, const frnn_mat *w,
                        const frnn_rows *v, const REAL *h_prev_bh, const REAL *gx_bg, ptrdiff_t ld_gx,
                        const REAL *b_hn, REAL *h_bh, const frnn_cell *cell)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 3 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(products)(3, R, H, H, w, j0 / PANEL, v, b0, a, FN(tiles)(n));
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

/* out_bg (n x G*H, row stride ld_out) = act(clip(pre_bg + v W^T)) for W of G gates x H units packed in panels;
 * pre_bg (row stride ld_pre; 0 broadcasts one row, a bias) may be NULL; act (its f slot and clip) NULL for the
 * identity. */
FRNN_ALWAYS_INLINE void FN(dense_g)(const int G, ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,
                                    ptrdiff_t K, const frnn_mat *w, const frnn_rows *v, const REAL *pre_bg,
                                    ptrdiff_t ld_pre, const frnn_cell *act, REAL *out_bg, ptrdiff_t ld_out)
{
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 4 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(products)(G, R, H, K, w, j0 / PANEL, v, b0, a, 1);
            for (ptrdiff_t r = 0; r < R; ++r) {
                for (int g = 0; g < G; ++g) {
                    for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                        ptrdiff_t j = g * H + j0 + q * LANES, m = H - (j0 + q * LANES);
                        VEC x = a[(r * G + g) * NV + q];
                        if (pre_bg) x += FN(load)(pre_bg + (b0 + r) * ld_pre + j, m);
                        if (act) x = FN(gate)(&act->f, (REAL)act->clip, x);
                        FN(store)(out_bg + (b0 + r) * ld_out + j, x, m);
                    }
                }
            }
        }
    }
}

static void FN(dense)(ptrdiff_t n, ptrdiff_t G, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K,
                      const frnn_mat *w, const frnn_rows *v, const REAL *pre_bg, ptrdiff_t ld_pre,
                      const frnn_cell *act, REAL *out_bg, ptrdiff_t ld_out)
{
#if FRNN_IS_FLOAT && defined(FRNN_AMX)
    if (w->format == FRNN_FMT_BF16 && act == NULL && (pre_bg == NULL || ld_pre == 0) && n > 0 && G <= 4) {
        FN(amx_dense_bf16)((int)G, n, H, j_begin, j_end, K, w, v, pre_bg, out_bg, ld_out);
        return;
    }
#endif
    switch (G) {  /* the gate count a constant of each copy, so its register blocks are too */
    case 4: FN(dense_g)(4, n, H, j_begin, j_end, K, w, v, pre_bg, ld_pre, act, out_bg, ld_out); break;
    case 3: FN(dense_g)(3, n, H, j_begin, j_end, K, w, v, pre_bg, ld_pre, act, out_bg, ld_out); break;
    default: FN(dense_g)(1, n, H, j_begin, j_end, K, w, v, pre_bg, ld_pre, act, out_bg, ld_out); break;
    }
}

/* GRU with the reset before the product (ONNX's default): the r and z gates first (W of 2 gates x H units), r
 * applied to the old h for the second product (gru_n: W of the n gate, its rows in the product's format). */
static void FN(gru_rz)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, const frnn_mat *w,
                       const frnn_rows *v, const REAL *h_prev_bh, const REAL *gx_bg, ptrdiff_t ld_gx, REAL *z_bh,
                       REAL *rh_bh, const frnn_cell *cell)
{
    const REAL clip = (REAL)cell->clip;
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * 2 * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(products)(2, R, H, H, w, j0 / PANEL, v, b0, a, FN(tiles)(n));
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

static void FN(gru_n)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, const frnn_mat *w,
                      const frnn_rows *v, const REAL *gx_bg, ptrdiff_t ld_gx, const REAL *z_bh,
                      const REAL *h_prev_bh, REAL *h_bh, const frnn_cell *cell)
{
    const REAL clip = (REAL)cell->clip;
    for (ptrdiff_t j0 = j_begin; j0 < j_end; j0 += PANEL) {
        for (ptrdiff_t b0 = 0, R; b0 < n; b0 += R) {
            VEC a[NSUP * NV];
            R = n - b0 < NSUP ? n - b0 : NSUP;
            FN(products)(1, R, H, H, w, j0 / PANEL, v, b0, a, FN(tiles)(n));
            for (ptrdiff_t r = 0; r < R; ++r) {
                for (int q = 0; q < NV && j0 + q * LANES < H; ++q) {
                    ptrdiff_t j = j0 + q * LANES, m = H - j, row = (b0 + r) * H;
                    VEC pre = FN(load)(gx_bg + (b0 + r) * ld_gx + 2 * H + j, m) + a[r * NV + q];
                    VEC nn = FN(gate)(&cell->g, clip, pre), z = FN(load)(z_bh + row + j, m);
                    FN(store)(h_bh + row + j, ((REAL)1 - z) * nn + z * FN(load)(h_prev_bh + row + j, m), m);
                }
            }
        }
    }
}
