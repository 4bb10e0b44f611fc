/* fastrnn kernels: the public API the engine (fastrnn/_engine.pyx) calls. Plain C99 + GCC vector extensions,
 * no Python.h, no allocation.
 *
 * What the kernels compute (gate order is torch's: LSTM [i, f, g, o], GRU [r, z, n]):
 *   LSTM: i,f,o = sigmoid(.), g = tanh(.), c' = f*c + i*g, h' = o*tanh(c')
 *   GRU:  r,z = sigmoid(gx + gh), n = tanh(gx_n + r*(gh_n + b_hn)), h' = (1-z)*n + z*h
 *   RNN:  h' = tanh(pre) or relu(pre)
 *
 * Pointer names carry their layout: `_bg` is (batch rows, gate columns), `_bh` is (batch rows, hidden),
 * `_g` / `_h` / `_k` one row of gate / hidden / input values. Rows of a `gates`/`out` matrix are `ld_*`
 * elements apart (the engine writes interleaved layouts); state buffers (`h_bh`, `c_bh`, `gh_bg`) are
 * contiguous.
 *
 * Packed panels (`w_pkgu`): a weight matrix W (G*H x K, torch's row order: gate-major) regrouped so one
 * pass over memory yields all G gates of a panel of hidden units: panel p holds, for k = 0..K-1, for each gate
 * g, the lanes weights W[g*H + p*lanes + u, k], u = 0..lanes-1 (zero past H). lanes = frnn_lanes(itemsize)
 * = 16 floats or 8 doubles (64 bytes); the same layout serves every tier.
 *
 * Tiers: the kernels are compiled once per instruction-set tier (one file each, src_c/tier_*.c, from the
 * same bodies) into a frnn_kernels table of function pointers; frnn_use_tier() picks the table that
 * frnn_active_kernels() returns. Adding a tier is one file plus one line in the table of src_c/dispatch.c.
 */
#ifndef FASTRNN_KERNELS_H
#define FASTRNN_KERNELS_H

#include <stddef.h>

enum { FRNN_ACT_TANH = 0, FRNN_ACT_RELU = 1, FRNN_ACT_IDENTITY = 2 };

#define FRNN_KERNEL_FIELDS(real, sfx)                                                               \
    /* sigmoid/tanh applied to n contiguous values, in place (tests and cells). */                   \
    void (*sigmoid_##sfx)(ptrdiff_t n, real *x);                                                     \
    void (*tanh_##sfx)(ptrdiff_t n, real *x);                                                        \
    /* gates_bg (n x 4H, row stride ld_gates): pre-activations, bias included; c_bh updated in       \
     * place; h_bh (n x H) receives h; out_bh (row stride ld_out) receives h too unless NULL. */     \
    void (*lstm_step_##sfx)(ptrdiff_t n, ptrdiff_t H, const real *gates_bg, ptrdiff_t ld_gates,      \
                            real *c_bh, real *h_bh, real *out_bh, ptrdiff_t ld_out);                 \
    /* gx_bg (n x 3H, stride ld_gx): input part, all biases but b_hn; gh_bg (n x 3H contiguous):     \
     * W_hh h; b_hn (H) or NULL; h_bh holds h on entry and h' on return. */                          \
    void (*gru_step_##sfx)(ptrdiff_t n, ptrdiff_t H, const real *gx_bg, ptrdiff_t ld_gx,             \
                           const real *gh_bg, const real *b_hn, real *h_bh, real *out_bh,            \
                           ptrdiff_t ld_out);                                                        \
    /* pre_bh (n x H, stride ld_pre): pre-activations; act: FRNN_ACT_TANH / RELU / IDENTITY. */      \
    void (*rnn_step_##sfx)(ptrdiff_t n, ptrdiff_t H, const real *pre_bh, ptrdiff_t ld_pre, int act,  \
                           real *h_bh, real *out_bh, ptrdiff_t ld_out);                              \
    /* Fused recurrent steps over n rows (packed W; v_bk, h_bh, c_bh rows contiguous), for the units  \
     * j_begin .. j_end-1 only (j_begin a multiple of the panel width, j_end too or H; 0, H: all), so \
     * two threads can take one range each with the same arithmetic as one thread:                   \
     * LSTM: pre = gates_bg (n x 4H, stride ld_gates: input part + bias) + v_bk (n x K, K = P) W^T;   \
     * c_bh updated in place; h_bh (n x H) receives h' and must not alias v_bk. */                   \
    void (*lstm_rec_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,             \
                           ptrdiff_t K, const real *w_pkgu, const real *v_bk, const real *gates_bg,  \
                           ptrdiff_t ld_gates, real *c_bh, real *h_bh);                              \
    /* GRU: gh = h_prev_bh (n x H) W^T (K = H), then the gate math with gx_bg (n x 3H, stride ld_gx) \
     * and b_hn (H or NULL); h_bh (n x H, not aliasing h_prev_bh) receives h'. */                    \
    void (*gru_rec_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,              \
                          const real *w_pkgu, const real *h_prev_bh, const real *gx_bg,              \
                          ptrdiff_t ld_gx, const real *b_hn, real *h_bh);                            \
    /* RNN step / projection / input projection: h_bh (n x H, row stride ld_h) = act(pre_bh +        \
     * v_bk W^T); pre_bh may be NULL, and ld_pre = 0 broadcasts one row (a bias) to every row. */    \
    void (*rnn_rec_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end, ptrdiff_t K, \
                          const real *w_pkgu, const real *v_bk, const real *pre_bh, ptrdiff_t ld_pre, \
                          int act, real *h_bh, ptrdiff_t ld_h);

/* One tier's kernels, float (f32) and double (f64). */
typedef struct frnn_kernels {
    const char *name;
    FRNN_KERNEL_FIELDS(float, f32)
    FRNN_KERNEL_FIELDS(double, f64)
} frnn_kernels;

#undef FRNN_KERNEL_FIELDS

/* The tiers, in order of preference (index 0, 'generic', runs everywhere). */
int frnn_tier_count(void);
const char *frnn_tier_name(int tier);
int frnn_tier_supported(int tier);      /* this CPU and OS run it */
int frnn_tier_selectable(int tier);     /* chosen by default when supported (test-only tiers are not) */
/* Use `tier` from now on; returns 0, or -1 (nothing changed) if it is unknown or unsupported. */
int frnn_use_tier(int tier);
int frnn_active_tier(void);
const frnn_kernels *frnn_active_kernels(void);

/* Packing (independent of the tier): the panel layout above. */
ptrdiff_t frnn_lanes(ptrdiff_t itemsize);
ptrdiff_t frnn_packed_size(ptrdiff_t itemsize, ptrdiff_t G, ptrdiff_t H, ptrdiff_t K);
void frnn_pack_f32(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const float *w_gk, ptrdiff_t ld_w, float *w_pkgu);
void frnn_pack_f64(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const double *w_gk, ptrdiff_t ld_w, double *w_pkgu);
/* Copy n rows of H values from src (stride ld_src) to dst (stride ld_dst); itemsize 4 or 8. */
void frnn_copy_rows(ptrdiff_t itemsize, ptrdiff_t n, ptrdiff_t H, const void *src, ptrdiff_t ld_src, void *dst,
                    ptrdiff_t ld_dst);

#endif
