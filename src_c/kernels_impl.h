/* Body of the gate kernels, included once per precision by kernels.c with REAL, SFX, EXP and TANH
 * defined: one source for float and double. */

#define FN_(name, sfx) name##_##sfx
#define FN(name, sfx) FN_(name, sfx)

static inline REAL FN(sigmoid1, SFX)(REAL x)
{
    /* exp of a non-positive argument only: never overflows, so saturation gives exactly 0 or 1. */
    if (x >= 0) {
        return (REAL)1 / ((REAL)1 + EXP(-x));
    }
    REAL e = EXP(x);
    return e / ((REAL)1 + e);
}

void FN(frnn_sigmoid, SFX)(ptrdiff_t n, REAL *x)
{
    for (ptrdiff_t k = 0; k < n; ++k) x[k] = FN(sigmoid1, SFX)(x[k]);
}

void FN(frnn_tanh, SFX)(ptrdiff_t n, REAL *x)
{
    for (ptrdiff_t k = 0; k < n; ++k) x[k] = TANH(x[k]);
}

void FN(frnn_lstm_step, SFX)(ptrdiff_t n, ptrdiff_t H, const REAL *gates_bg, ptrdiff_t ld_gates,
                             REAL *c_bh, REAL *h_bh, REAL *out_bh, ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b) {
        const REAL *gi = gates_bg + b * ld_gates, *gf = gi + H, *gg = gi + 2 * H, *go = gi + 3 * H;
        REAL *c = c_bh + b * H, *h = h_bh + b * H;
        for (ptrdiff_t j = 0; j < H; ++j) {
            REAL c_new = FN(sigmoid1, SFX)(gf[j]) * c[j] + FN(sigmoid1, SFX)(gi[j]) * TANH(gg[j]);
            c[j] = c_new;
            h[j] = FN(sigmoid1, SFX)(go[j]) * TANH(c_new);
        }
        if (out_bh) {
            REAL *o = out_bh + b * ld_out;
            for (ptrdiff_t j = 0; j < H; ++j) o[j] = h[j];
        }
    }
}

void FN(frnn_gru_step, SFX)(ptrdiff_t n, ptrdiff_t H, const REAL *gx_bg, ptrdiff_t ld_gx,
                            const REAL *gh_bg, const REAL *b_hn, REAL *h_bh, REAL *out_bh,
                            ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b) {
        const REAL *xr = gx_bg + b * ld_gx, *xz = xr + H, *xn = xr + 2 * H;
        const REAL *hr = gh_bg + b * 3 * H, *hz = hr + H, *hn = hr + 2 * H;
        REAL *h = h_bh + b * H;
        for (ptrdiff_t j = 0; j < H; ++j) {
            REAL r = FN(sigmoid1, SFX)(xr[j] + hr[j]);
            REAL z = FN(sigmoid1, SFX)(xz[j] + hz[j]);
            REAL nn = TANH(xn[j] + r * (hn[j] + (b_hn ? b_hn[j] : (REAL)0)));
            h[j] = ((REAL)1 - z) * nn + z * h[j];
        }
        if (out_bh) {
            REAL *o = out_bh + b * ld_out;
            for (ptrdiff_t j = 0; j < H; ++j) o[j] = h[j];
        }
    }
}

void FN(frnn_rnn_step, SFX)(ptrdiff_t n, ptrdiff_t H, const REAL *pre_bh, ptrdiff_t ld_pre,
                            int relu, REAL *h_bh, REAL *out_bh, ptrdiff_t ld_out)
{
    for (ptrdiff_t b = 0; b < n; ++b) {
        const REAL *p = pre_bh + b * ld_pre;
        REAL *h = h_bh + b * H;
        if (relu) {
            /* written as a comparison so that NaN propagates like torch's relu */
            for (ptrdiff_t j = 0; j < H; ++j) h[j] = p[j] < 0 ? (REAL)0 : p[j];
        } else {
            for (ptrdiff_t j = 0; j < H; ++j) h[j] = TANH(p[j]);
        }
        if (out_bh) {
            REAL *o = out_bh + b * ld_out;
            for (ptrdiff_t j = 0; j < H; ++j) o[j] = h[j];
        }
    }
}

void FN(frnn_copy_rows, SFX)(ptrdiff_t n, ptrdiff_t H, const REAL *src, ptrdiff_t ld_src,
                             REAL *dst, ptrdiff_t ld_dst)
{
    for (ptrdiff_t b = 0; b < n; ++b) {
        const REAL *s = src + b * ld_src;
        REAL *d = dst + b * ld_dst;
        for (ptrdiff_t j = 0; j < H; ++j) d[j] = s[j];
    }
}

#undef FN
#undef FN_
