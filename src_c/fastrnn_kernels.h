/* fastrnn gate kernels: the elementwise math of one timestep, applied to the pre-activations that the
 * engine's gemms produced. Plain C99, no Python.h, no allocation.
 *
 * Pointer names carry their layout: `_bg` is (batch rows, gate columns), `_bh` is (batch rows, hidden).
 * Rows of a `gates`/`out` matrix are `ld_*` elements apart (the engine writes interleaved layouts);
 * state buffers (`h_bh`, `c_bh`, `gh_bg`) are contiguous.
 *
 * Gate order is torch's: LSTM [i, f, g, o], GRU [r, z, n].
 *   LSTM: i,f,o = sigmoid(.), g = tanh(.), c' = f*c + i*g, h' = o*tanh(c')
 *   GRU:  r,z = sigmoid(gx + gh), n = tanh(gx_n + r*(gh_n + b_hn)), h' = (1-z)*n + z*h
 *   RNN:  h' = tanh(pre) or relu(pre)
 */
#ifndef FASTRNN_KERNELS_H
#define FASTRNN_KERNELS_H

#include <stddef.h>

#define FRNN_DECLARE(real, sfx)                                                                   \
    /* sigmoid/tanh applied to n contiguous values, in place (used by tests and cells). */        \
    void frnn_sigmoid_##sfx(ptrdiff_t n, real *x);                                                \
    void frnn_tanh_##sfx(ptrdiff_t n, real *x);                                                   \
    /* gates_bg (n x 4H, row stride ld_gates): pre-activations, bias included; c_bh updated in    \
     * place; h_bh (n x H) receives h; out_bh (row stride ld_out) receives h too unless NULL. */  \
    void frnn_lstm_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *gates_bg, ptrdiff_t ld_gates, \
                              real *c_bh, real *h_bh, real *out_bh, ptrdiff_t ld_out);            \
    /* gx_bg (n x 3H, stride ld_gx): input part, all biases but b_hn; gh_bg (n x 3H contiguous):  \
     * W_hh h; b_hn (H) or NULL; h_bh holds h on entry and h' on return. */                       \
    void frnn_gru_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *gx_bg, ptrdiff_t ld_gx,        \
                             const real *gh_bg, const real *b_hn, real *h_bh, real *out_bh,       \
                             ptrdiff_t ld_out);                                                   \
    /* pre_bh (n x H, stride ld_pre): pre-activations; relu != 0 selects relu over tanh. */       \
    void frnn_rnn_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *pre_bh, ptrdiff_t ld_pre,      \
                             int relu, real *h_bh, real *out_bh, ptrdiff_t ld_out);               \
    /* Copy n rows of H values from src (stride ld_src) to dst (stride ld_dst). */                \
    void frnn_copy_rows_##sfx(ptrdiff_t n, ptrdiff_t H, const real *src, ptrdiff_t ld_src,        \
                              real *dst, ptrdiff_t ld_dst);

FRNN_DECLARE(float, f32)
FRNN_DECLARE(double, f64)

#undef FRNN_DECLARE

#endif
