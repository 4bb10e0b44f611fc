/* The gate math of one timestep (formulas in fastrnn_kernels.h), on one tier's vectors of one precision, and the
 * elementwise step kernels of the BLAS path (a gemm already produced the pre-activations). Included by tier.h
 * once per precision inside each tier, after vec_ops.h.
 *
 * Unit tails (H not a multiple of LANES) go through zero-padded loads and partial stores, so every lane computes
 * on defined values and nothing past H is read or written.
 */
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

static void FN(copy_out)(ptrdiff_t n, ptrdiff_t H, const REAL *src, ptrdiff_t ld_src, REAL *dst,
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
    if (out_bh) FN(copy_out)(n, H, h_bh, H, out_bh, ld_out);
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
    if (out_bh) FN(copy_out)(n, H, h_bh, H, out_bh, ld_out);
}

static void FN(rnn_step)(ptrdiff_t n, ptrdiff_t H, const REAL *pre_bh, ptrdiff_t ld_pre, int act,
                         REAL *h_bh, REAL *out_bh, ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b)
        for (ptrdiff_t j = 0; j < H; j += LANES)
            FN(store)(h_bh + b * H + j, FN(rnn_act)(FN(load)(pre_bh + b * ld_pre + j, H - j), act), H - j);
    if (out_bh) FN(copy_out)(n, H, h_bh, H, out_bh, ld_out);
}
