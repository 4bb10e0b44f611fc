/* fastrnn kernels: the elementwise gate math of one timestep, and a fused recurrent step (packed W_hh
 * mat-vec + gate math) for a few batch rows. Plain C99 + GCC vector extensions, no Python.h, no allocation.
 *
 * Pointer names carry their layout: `_bg` is (batch rows, gate columns), `_bh` is (batch rows, hidden),
 * `_g` / `_h` / `_k` one row of gate / hidden / input values. Rows of a `gates`/`out` matrix are `ld_*`
 * elements apart (the engine writes interleaved layouts); state buffers (`h_bh`, `c_bh`, `gh_bg`) are
 * contiguous.
 *
 * Gate order is torch's: LSTM [i, f, g, o], GRU [r, z, n].
 *   LSTM: i,f,o = sigmoid(.), g = tanh(.), c' = f*c + i*g, h' = o*tanh(c')
 *   GRU:  r,z = sigmoid(gx + gh), n = tanh(gx_n + r*(gh_n + b_hn)), h' = (1-z)*n + z*h
 *   RNN:  h' = tanh(pre) or relu(pre)
 *
 * Packed panels (`w_pkgu`): a weight matrix W (G*H x K, torch's row order: gate-major) regrouped so one
 * pass over memory yields all G gates of LANES hidden units: panel p holds, for k = 0..K-1, for each gate
 * g, the LANES weights W[g*H + p*LANES + u, k], u = 0..LANES-1 (zero past H). LANES = frnn_lanes(itemsize)
 * = 16 floats or 8 doubles; the same layout serves every instruction set.
 *
 * Instruction set: the public functions dispatch on a level chosen once (frnn_set_isa): 0 = generic
 * (SSE2 on x86-64, plain C elsewhere), 1 = AVX2+FMA. frnn_cpu_isa() is the best level this CPU and OS run.
 */
#ifndef FASTRNN_KERNELS_H
#define FASTRNN_KERNELS_H

#include <stddef.h>

enum { FRNN_ACT_TANH = 0, FRNN_ACT_RELU = 1, FRNN_ACT_IDENTITY = 2 };
enum { FRNN_ISA_GENERIC = 0, FRNN_ISA_AVX2 = 1 };

int frnn_cpu_isa(void);
void frnn_set_isa(int level);  /* callers pass a level <= frnn_cpu_isa() */
int frnn_get_isa(void);
ptrdiff_t frnn_lanes(ptrdiff_t itemsize);

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
    /* pre_bh (n x H, stride ld_pre): pre-activations; act: FRNN_ACT_TANH / RELU / IDENTITY. */   \
    void frnn_rnn_step_##sfx(ptrdiff_t n, ptrdiff_t H, const real *pre_bh, ptrdiff_t ld_pre,      \
                             int act, real *h_bh, real *out_bh, ptrdiff_t ld_out);                \
    /* Copy n rows of H values from src (stride ld_src) to dst (stride ld_dst). */                \
    void frnn_copy_rows_##sfx(ptrdiff_t n, ptrdiff_t H, const real *src, ptrdiff_t ld_src,        \
                              real *dst, ptrdiff_t ld_dst);                                       \
    /* Items of the packed form of a (G*H x K) matrix: ceil(H / LANES) * LANES * G * K. */        \
    ptrdiff_t frnn_packed_size_##sfx(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K);                      \
    /* Pack w_gk (G*H x K, row stride ld_w, torch layout) into panels w_pkgu (see above). */      \
    void frnn_pack_##sfx(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const real *w_gk, ptrdiff_t ld_w, \
                         real *w_pkgu);                                                           \
    /* Fused recurrent steps over n rows (packed W, see above; v_bk, h_bh, c_bh rows contiguous),   \
     * for the units j_begin .. j_end-1 only (j_begin a multiple of the panel width, j_end too or H; \
     * 0, H: all), so two threads can take one range each with the same arithmetic as one thread:    \
     * LSTM: pre = gates_bg (n x 4H, stride ld_gates: input part + bias) + v_bk (n x K, K = P) W^T;   \
     * c_bh updated in place; h_bh (n x H) receives h' and must not alias v_bk. */                   \
    void frnn_lstm_rec_##sfx(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,          \
                             ptrdiff_t K, const real *w_pkgu,                                       \
                             const real *v_bk, const real *gates_bg, ptrdiff_t ld_gates, real *c_bh, \
                             real *h_bh);                                                           \
    /* GRU: gh = h_prev_bh (n x H) W^T (K = H), then the gate math with gx_bg (n x 3H, stride ld_gx) \
     * and b_hn (H or NULL); h_bh (n x H, not aliasing h_prev_bh) receives h'. */                   \
    void frnn_gru_rec_##sfx(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,           \
                            const real *w_pkgu, const real *h_prev_bh,                              \
                            const real *gx_bg, ptrdiff_t ld_gx, const real *b_hn, real *h_bh);       \
    /* RNN step / projection / input projection: h_bh (n x H, row stride ld_h) = act(pre_bh +      \
     * v_bk W^T); pre_bh may be NULL, and ld_pre = 0 broadcasts one row (a bias) to every row. */   \
    void frnn_rnn_rec_##sfx(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,           \
                            ptrdiff_t K, const real *w_pkgu,                                        \
                            const real *v_bk, const real *pre_bh, ptrdiff_t ld_pre, int act,        \
                            real *h_bh, ptrdiff_t ld_h);

FRNN_DECLARE(float, f32)
FRNN_DECLARE(double, f64)

#undef FRNN_DECLARE

/* Run fn(arg_here) on the calling thread and fn(arg_worker) on fastrnn's one persistent worker thread
 * (src_c/worker.c), returning when both are done. If the worker is busy with another caller or cannot be
 * started, runs both here, one after the other. */
typedef void (*frnn_task_fn)(void *arg);
void frnn_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker);
/* The same, but when the worker is busy or cannot be started runs nothing and returns 0 (1: both ran). For
 * tasks that wait for each other (frnn_barrier_wait), which must run at once or not at all. */
int frnn_try_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker);

/* A spinning barrier for the two sides (0: the caller, 1: the worker) of one frnn_try_run_pair: zero it
 * before the run; each side keeps its own count of barriers reached (*reached, starting at 0). Each side's
 * count sits in its own 64-byte line. */
#define FRNN_BARRIER_STRIDE 16
typedef struct frnn_barrier { long count[2 * FRNN_BARRIER_STRIDE]; } frnn_barrier;
void frnn_barrier_wait(frnn_barrier *b, int side, long *reached);

#endif
