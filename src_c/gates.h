/* The gate math of one timestep (formulas in fastrnn_kernels.h), on one tier's vectors of one precision, and the
 * activations over arrays (for the tests). Included by tier.h once per precision inside each tier, after
 * vec_ops.h; panels.h applies the gate math to the dot products it computes.
 *
 * Unit tails (H not a multiple of LANES) go through zero-padded loads and partial stores, so every lane computes
 * on defined values and nothing past H is read or written. Every function lets NaN through: comparisons are
 * false for NaN, so each select below keeps x where it would replace it.
 */
FRNN_ALWAYS_INLINE VEC FN(relu)(VEC x)
{
    /* a comparison, not max(): NaN < 0 is false, so NaN propagates like torch's relu */
    return FN(select)(x < (REAL)0, (VEC){0}, x);
}

/* One activation (fastrnn_kernels.h's list) of x. The code is the same for every vector of a call, so the
 * switch is predicted and the default cells never reach it (they call sigmoid/tanh directly). */
FRNN_ALWAYS_INLINE VEC FN(activate)(const frnn_act *a, VEC x)
{
    const VEC zero = {0}, one = zero + 1, alpha = FN(splat)((REAL)a->alpha), beta = FN(splat)((REAL)a->beta);
    VEC v;
    switch (a->code) {
    case FRNN_ACT_SIGMOID: return FN(sigmoid)(x);
    case FRNN_ACT_TANH: return FN(tanh)(x);
    case FRNN_ACT_RELU: return FN(relu)(x);
    case FRNN_ACT_AFFINE: return alpha * x + beta;
    case FRNN_ACT_LEAKY_RELU: return FN(select)(x < zero, alpha * x, x);
    case FRNN_ACT_THRESHOLDED_RELU: return FN(select)(x < alpha, zero, x);
    case FRNN_ACT_SCALED_TANH: return alpha * FN(tanh)(beta * x);
    case FRNN_ACT_HARD_SIGMOID:
        v = alpha * x + beta;
        return FN(select)(v < zero, zero, FN(select)(v > one, one, v));
    case FRNN_ACT_ELU: return FN(select)(x < zero, alpha * (FN(exp_nonpos)(FN(select)(x < zero, x, zero)) - one), x);
    case FRNN_ACT_SOFTSIGN: return x / (one + FN(select)(x < zero, -x, x));
    case FRNN_ACT_SOFTPLUS:  /* max(x, 0) + log(1 + exp(-|x|)): no overflow, exact tail */
        v = FN(select)(x < zero, x, -x);
        return FN(select)(x < zero, zero, x) + FN(log1p_unit)(FN(exp_nonpos)(v));
    case FRNN_ACT_STEP: return FN(select)(x < zero, zero, FN(select)(x >= zero, one, x));
    default: return x;  /* FRNN_ACT_IDENTITY */
    }
}

/* x bounded to [-clip, clip] (clip > 0). */
FRNN_ALWAYS_INLINE VEC FN(clip)(VEC x, REAL clip)
{
    const VEC c = FN(splat)(clip);
    return FN(select)(x > c, c, FN(select)(x < -c, -c, x));
}

FRNN_ALWAYS_INLINE VEC FN(gate)(const frnn_act *a, REAL clip, VEC pre)
{
    return FN(activate)(a, clip > 0 ? FN(clip)(pre, clip) : pre);
}

/* ---- the gate math on one panel vector of units; n valid lanes of the state pointers ---- */

/* c_new may alias c_prev (one thread) or not (threads sharing a step read the old state while others write). The
 * standard cell is torch's LSTM; the general one every option (activations, clip, coupled gates, peepholes
 * pi, pf, po: zeros without). */
FRNN_ALWAYS_INLINE void FN(lstm_cell)(VEC i, VEC f, VEC g, VEC o, const REAL *c_prev, REAL *c_new, REAL *h,
                                      ptrdiff_t n, const frnn_cell *cell, VEC pi, VEC pf, VEC po)
{
    VEC cp = FN(load)(c_prev, n), c;
    if (cell->standard) {
        c = FN(sigmoid)(f) * cp + FN(sigmoid)(i) * FN(tanh)(g);
        FN(store)(c_new, c, n);
        FN(store)(h, FN(sigmoid)(o) * FN(tanh)(c), n);
        return;
    }
    const REAL clip = (REAL)cell->clip;
    i = FN(gate)(&cell->f, clip, i + pi * cp);
    f = cell->input_forget ? (REAL)1 - i : FN(gate)(&cell->f, clip, f + pf * cp);
    c = f * cp + i * FN(gate)(&cell->g, clip, g);
    FN(store)(c_new, c, n);
    FN(store)(h, FN(gate)(&cell->f, clip, o + po * c) * FN(activate)(&cell->h, c), n);
}

/* h_new must not alias h_old in the fused kernel, whose other units still read the whole old h. */
FRNN_ALWAYS_INLINE void FN(gru_cell)(VEC xr, VEC xz, VEC xn, VEC hr, VEC hz, VEC hn, VEC b_hn,
                                     const REAL *h_old, REAL *h_new, ptrdiff_t n, const frnn_cell *cell)
{
    VEC r, z, nn;
    if (cell->standard) {
        r = FN(sigmoid)(xr + hr);
        z = FN(sigmoid)(xz + hz);
        nn = FN(tanh)(xn + r * (hn + b_hn));
    } else {
        const REAL clip = (REAL)cell->clip;
        r = FN(gate)(&cell->f, clip, xr + hr);
        z = FN(gate)(&cell->f, clip, xz + hz);
        nn = FN(gate)(&cell->g, clip, xn + r * (hn + b_hn));
    }
    FN(store)(h_new, ((REAL)1 - z) * nn + z * FN(load)(h_old, n), n);
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
