/* The gate math of one timestep (formulas in fastrnn_kernels.h), on one tier's vectors of one precision, and the
 * activations over arrays (for the tests). Included by tier.h once per precision inside each tier, after
 * vec_ops.h; panels.h applies the gate math to the dot products it computes.
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

/* c_new may alias c_prev (one thread) or not (threads sharing a step read the old state while others write). */
FRNN_ALWAYS_INLINE void FN(lstm_cell)(VEC i, VEC f, VEC g, VEC o, const REAL *c_prev, REAL *c_new, REAL *h,
                                      ptrdiff_t n)
{
    VEC c = FN(sigmoid)(f) * FN(load)(c_prev, n) + FN(sigmoid)(i) * FN(tanh)(g);
    FN(store)(c_new, c, n);
    FN(store)(h, FN(sigmoid)(o) * FN(tanh)(c), n);
}

/* h_new must not alias h_old in the fused kernel, whose other units still read the whole old h. */
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

/* ---- activations over arrays (the tests check every tier's against the reference) ---- */

static void FN(sigmoid_n)(ptrdiff_t n, REAL *x)
{
    for (ptrdiff_t j = 0; j < n; j += LANES) FN(store)(x + j, FN(sigmoid)(FN(load)(x + j, n - j)), n - j);
}

static void FN(tanh_n)(ptrdiff_t n, REAL *x)
{
    for (ptrdiff_t j = 0; j < n; j += LANES) FN(store)(x + j, FN(tanh)(FN(load)(x + j, n - j)), n - j);
}
