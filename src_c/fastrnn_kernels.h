/* fastrnn kernels: the public API the engine (fastrnn/_engine.pyx) calls. Plain C99 + GCC vector extensions,
 * no Python.h, no allocation.
 *
 * What the kernels compute (gate order is torch's: LSTM [i, f, g, o], GRU [r, z, n]), with the activation slots
 * of ONNX (f, g, h) and torch's defaults in brackets:
 *   LSTM: i = f(pi + P_i c), f = f(pf + P_f c) [sigmoid] (or 1 - i, coupled), g = g(pg) [tanh],
 *         c' = f*c + i*g, o = f(po + P_o c') [sigmoid], h' = o * h(c') [tanh]     (P: peepholes, if any)
 *   GRU:  r = f(gx_r + gh_r), z = f(gx_z + gh_z) [sigmoid], h' = (1-z)*n + z*h, with
 *         n = g(gx_n + r*(gh_n + b_hn)) [tanh] (linear before reset: torch's), or
 *         n = g(gx_n + (r*h) W_hn^T) (ONNX's default, Keras reset_after=False: two products per step)
 *   RNN:  h' = f(pre) [tanh or relu]
 * A clip c > 0 bounds every pre-activation to [-c, c] before its activation, as ONNX Runtime does.
 *
 * Pointer names carry their layout: `_bg` is (batch rows, gate columns), `_bh` is (batch rows, hidden),
 * `_g` / `_h` / `_k` one row of gate / hidden / input values. Rows of a `gates`/`out` matrix are `ld_*`
 * elements apart (the engine writes interleaved layouts); state buffers (`h_bh`, `c_bh`, `gh_bg`) are
 * contiguous.
 *
 * Packed panels (frnn_mat): a weight matrix W (G*H x K, torch's row order: gate-major) regrouped so one pass
 * over memory yields all G gates of a panel of hidden units: panel p holds, for each group of k, for each gate g,
 * 64 bytes of weights W[g*H + p*units + u, k...] (zero past H). Float panels: groups of one k, 16 floats or
 * 8 doubles (frnn_lanes(itemsize)) per gate. bfloat16 panels: groups of a k pair, 16 units x 2 k (each unit's
 * two bf16 in one 32-bit lane: what VDPBF16PS and AMX's TDPBF16PS read). int8 panels: groups of 4 k, 16 units x
 * 4 k (VPDPBUSD's and TDPBUSD's layout), symmetric per output row (scale = max|w| / 127), with each row's sum of
 * the int8 weights. The same layout serves every tier.
 *
 * Reduced precisions (what the bf16 and int8 kernels compute, stated so tests/reference.py can round the same
 * way): the activations a product reads (x_t, h_t-1, an LSTM's cell output before W_hr) are converted per call by
 * frnn_convert_rows: to bf16 by round-to-nearest-even, or to int8 per row (float32 arithmetic: scale = max|x| /
 * 127, q = rint(x * (127 / max|x|)) clamped to [-127, 127], stored as q + 128; weights the same way per output
 * row, at packing); the products accumulate in float32 (bf16) or exactly in int32 (int8, then acc * (scale_w *
 * scale_x), in that order); biases, state and gate math stay float32.
 *
 * Tiers: the kernels are compiled once per instruction-set tier (one file each, src_c/tier_*.c, from the
 * same bodies) into a frnn_kernels table of function pointers; frnn_use_tier() picks the table that
 * frnn_active_kernels() returns. Adding a tier is one file plus one line in the table of src_c/dispatch.c.
 */
#ifndef FASTRNN_KERNELS_H
#define FASTRNN_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Activations (ONNX's list, plus step: 1 where x >= 0, else 0); alpha and beta as ONNX defines them. Every one
 * propagates NaN. */
enum {
    FRNN_ACT_TANH = 0, FRNN_ACT_RELU, FRNN_ACT_IDENTITY, FRNN_ACT_SIGMOID, FRNN_ACT_AFFINE, FRNN_ACT_LEAKY_RELU,
    FRNN_ACT_THRESHOLDED_RELU, FRNN_ACT_SCALED_TANH, FRNN_ACT_HARD_SIGMOID, FRNN_ACT_ELU, FRNN_ACT_SOFTSIGN,
    FRNN_ACT_SOFTPLUS, FRNN_ACT_STEP
};

typedef struct frnn_act {
    int code;
    double alpha, beta;
} frnn_act;

/* Weight formats of a packed matrix; FRNN_FMT_FLOAT is the kernels' own precision (float or double). */
enum { FRNN_FMT_FLOAT = 0, FRNN_FMT_BF16 = 1, FRNN_FMT_I8 = 2 };

typedef struct frnn_mat {
    int format;
    const void *panels;
    const float *scale;     /* int8: per output row (G * units) */
    const int32_t *sums;    /* int8: per output row, the sum of its int8 weights */
    const void *wide;       /* bf16, or NULL: the panels widened to float32 once (frnn_widen_bf16_panels) */
} frnn_mat;

/* The rows a product reads: the kernels' precision for FRNN_FMT_FLOAT (row stride ld elements), else what
 * frnn_convert_rows made for the matrix's format (bf16 rows, or u8 rows with per-row scales). */
typedef struct frnn_rows {
    const void *v;
    ptrdiff_t ld;
    const float *scale;
} frnn_rows;

/* The gate math of a cell beyond its products: activation slots f, g, h (LSTM: f for i, f, o; g the candidate;
 * h the cell output. GRU: f for r, z; g the candidate. RNN: f), a clip (0: none), LSTM's coupled input and
 * forget gates. `standard` (torch's cell: sigmoid, tanh, tanh, no clip, no coupling, no peepholes) takes the
 * fastest path; the kernels treat the fields as constants of a call. */
typedef struct frnn_cell {
    frnn_act f, g, h;
    double clip;
    int input_forget;
    int standard;
} frnn_cell;

#define FRNN_KERNEL_FIELDS(real, sfx)                                                               \
    /* sigmoid/tanh applied to n contiguous values, in place (the tests check them on every tier). */   \
    void (*sigmoid_##sfx)(ptrdiff_t n, real *x);                                                     \
    void (*tanh_##sfx)(ptrdiff_t n, real *x);                                                        \
    /* Fused recurrent steps over n rows (h_bh, c_bh rows contiguous), for the units j_begin ..      \
     * j_end-1 only (j_begin a multiple of the panel width, j_end too or H; 0, H: all), so threads    \
     * can take one range each with the same arithmetic as one thread:                               \
     * LSTM: pre = gates_bg (n x 4H, stride ld_gates: input part + bias) + v (n x K, K = P) W^T;      \
     * c_bh (may be c_prev_bh) receives c' from c_prev_bh; h_bh (n x H) receives h' (not aliasing    \
     * v); peep_g (3H: i, f, o) or NULL. */                                                          \
    void (*lstm_rec_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,             \
                           ptrdiff_t K, const frnn_mat *w, const frnn_rows *v, const real *gates_bg,  \
                           ptrdiff_t ld_gates, const real *c_prev_bh, real *c_bh, real *h_bh,       \
                           const frnn_cell *cell, const real *peep_g);                               \
    /* GRU, linear before reset: gh = v (n x H, the old h in the product's format) W^T, then the    \
     * gate math with gx_bg (n x 3H, stride ld_gx), b_hn (H or NULL) and h_prev_bh (n x H); h_bh     \
     * (n x H, not aliasing h_prev_bh) receives h'. */                                               \
    void (*gru_rec_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,              \
                          const frnn_mat *w, const frnn_rows *v, const real *h_prev_bh,             \
                          const real *gx_bg, ptrdiff_t ld_gx, const real *b_hn, real *h_bh,          \
                          const frnn_cell *cell);                                                    \
    /* GRU, reset before the product, in two phases: gru_rz (W of the r, z gates, 2 x H units, K = H) \
     * gives z_bh and rh_bh = r * h_prev; gru_n (W of the n gate, v: rh in the product's format)      \
     * then h'. */                                                                                   \
    void (*gru_rz_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,               \
                         const frnn_mat *w, const frnn_rows *v, const real *h_prev_bh,              \
                         const real *gx_bg, ptrdiff_t ld_gx, real *z_bh, real *rh_bh,               \
                         const frnn_cell *cell);                                                     \
    void (*gru_n_##sfx)(ptrdiff_t n, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,                \
                        const frnn_mat *w, const frnn_rows *v, const real *gx_bg, ptrdiff_t ld_gx,   \
                        const real *z_bh, const real *h_prev_bh, real *h_bh, const frnn_cell *cell); \
    /* A dense layer over packed weights of G gates x H units (the RNN step, the input projection, the \
     * LSTM projection): out_bg (n x G*H, row stride ld_out) = act(clip(pre_bg + v W^T)); pre_bg may   \
     * be NULL, and ld_pre = 0 broadcasts one row (a bias) to every row; act NULL is the identity (no  \
     * clip). */                                                                                     \
    void (*dense_##sfx)(ptrdiff_t n, ptrdiff_t G, ptrdiff_t H, ptrdiff_t j_begin, ptrdiff_t j_end,   \
                        ptrdiff_t K, const frnn_mat *w, const frnn_rows *v, const real *pre_bg,       \
                        ptrdiff_t ld_pre, const frnn_cell *act, real *out_bg, ptrdiff_t ld_out);

/* One tier's kernels, float (f32) and double (f64), and its conversion of float32 rows for bf16 / int8 products
 * (what frnn_convert_rows does, vectorized for the tier; bitwise the same on every tier). */
typedef struct frnn_kernels {
    const char *name;
    FRNN_KERNEL_FIELDS(float, f32)
    FRNN_KERNEL_FIELDS(double, f64)
    void (*convert_rows)(int format, ptrdiff_t n, ptrdiff_t K, const float *src, ptrdiff_t ld_src, void *dst,
                         float *scale);
} frnn_kernels;

#undef FRNN_KERNEL_FIELDS

/* The tiers, in order of preference (index 0, 'generic', runs everywhere). */
int frnn_tier_count(void);
const char *frnn_tier_name(int tier);
int frnn_tier_supported(int tier);      /* this CPU and OS run it */
int frnn_tier_selectable(int tier);     /* chosen by default when supported (test-only tiers are not) */
/* Use `tier` from now on; returns 0, or -1 (nothing changed) if it is unknown or unsupported. */
int frnn_use_tier(int tier);
/* Whether a bf16 product of two or more rows on a tier with VDPBF16PS widens the panel to float32 and runs FMAs
 * instead (products.h): Intel's cores run VDPBF16PS at about half their FMA rate in multiply-adds, AMD's Zen 4/5
 * at twice. frnn_cpu_widens_bf16() is the default for this CPU; the engine sets it (a tuning field). */
extern int frnn_widen_bf16;
int frnn_cpu_widens_bf16(void);
int frnn_active_tier(void);
const frnn_kernels *frnn_active_kernels(void);

/* Packing (independent of the tier): the panel layouts above. Sizes in bytes; `itemsize` 8 for double panels,
 * 4 for every float32 format. */
ptrdiff_t frnn_lanes(ptrdiff_t itemsize);
ptrdiff_t frnn_packed_bytes(int format, ptrdiff_t itemsize, ptrdiff_t G, ptrdiff_t H, ptrdiff_t K);
void frnn_pack_f32(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const float *w_gk, ptrdiff_t ld_w, float *w_pkgu);
void frnn_pack_f64(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const double *w_gk, ptrdiff_t ld_w, double *w_pkgu);
void frnn_pack_bf16(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const float *w_gk, ptrdiff_t ld_w, uint16_t *w_pkgu);
/* Ask the OS to back the whole 2 MB pages inside [p, p + n) with huge pages (Linux: transparent huge pages in
 * "madvise" mode, the common default). A matrix streamed from L3 every step (16 MB for an LSTM 1024) then costs 8
 * TLB entries instead of 4096: 4% less time per step measured on a Xeon. Call it before the bytes are first
 * written; a no-op elsewhere. */
#define FRNN_HUGE_PAGE ((size_t)2 << 20)
void frnn_advise_huge_pages(void *p, size_t n);
/* A bf16 matrix of at most FRNN_WIDE_COPY_BYTES / 2 bytes of panels may also keep them widened to float32 (twice
 * the bytes, in L2 beside the rest of a step): products of 2+ rows on the tiers that widen bf16 (products.h) then
 * read it instead of widening every chunk of every panel at every step, which cost 10-25% over float32 at 8 rows.
 * Each group of 2 k (G x 64 bytes) becomes two float32 groups, the odd k first, as those products add them: the
 * same sums, bit for bit. `groups`: all groups of all panels (panel bytes / (G x 64)). */
#define FRNN_WIDE_COPY_BYTES ((ptrdiff_t)1 << 20)
void frnn_widen_bf16_panels(ptrdiff_t G, ptrdiff_t groups, const uint16_t *w_pkgu, float *wide);
/* scale and sums: one per output row (G*H), in torch's row order. */
void frnn_pack_i8(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const float *w_gk, ptrdiff_t ld_w, int8_t *w_pkgu,
                  float *scale, int32_t *sums);
/* Groups of k in one AMX tile (64 bytes of a row), and what reduced panels and converted rows pad their groups to;
 * rows of one AMX tile. */
#define FRNN_TILE_GROUPS 16
#define FRNN_TILE_ROWS 16
static inline ptrdiff_t frnn_tile_groups(ptrdiff_t groups)
{
    return (groups + FRNN_TILE_GROUPS - 1) / FRNN_TILE_GROUPS * FRNN_TILE_GROUPS;
}

/* Activations for a product with a matrix of `format`: n rows of K float32 values (row stride ld_src) into dst
 * rows of frnn_converted_ld(format, K) elements (bf16, or u8 with scale[n]), by the active tier; the padding of a
 * row (its groups of k padded as the panels' are) is zero. A buffer of converted rows holds
 * frnn_converted_bytes(format, n, K): AMX reads whole tiles of 16 rows, so 15 rows past the last are readable
 * (their products are computed and never used). */
ptrdiff_t frnn_converted_ld(int format, ptrdiff_t K);
ptrdiff_t frnn_converted_bytes(int format, ptrdiff_t n, ptrdiff_t K);
void frnn_convert_rows(int format, ptrdiff_t n, ptrdiff_t K, const float *src, ptrdiff_t ld_src, void *dst,
                       float *scale);
float frnn_round_bf16(float x);  /* round to nearest even, as the packing and the conversion do */
/* Copy n rows of H values from src (stride ld_src) to dst (stride ld_dst); itemsize 4 or 8. */
void frnn_copy_rows(ptrdiff_t itemsize, ptrdiff_t n, ptrdiff_t H, const void *src, ptrdiff_t ld_src, void *dst,
                    ptrdiff_t ld_dst);

#endif
