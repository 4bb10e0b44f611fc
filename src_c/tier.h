/* One tier's kernels: included by its file (tier_<name>.c) with ISA (the tier's name), FRNN_VB (its vector bytes)
 * and FRNN_ACC (accumulator registers a register block may use) defined, after the tier's `#pragma GCC target`,
 * so every function below gets that target. Instantiates
 * the bodies for float and double and defines the tier's table, frnn_kernels_<name>.
 */
#include <stddef.h>

#include "fastrnn_kernels.h"
#include "vec.h"
#include "activations.h"

/* Vectors wider than SSE are passed only between always_inline functions of one target, so the ABI note GCC
 * gives for them in a build without that target does not apply. */
#pragma GCC diagnostic ignored "-Wpsabi"

#define REAL float
#define FRNN_IS_FLOAT 1
#define SFX f32
#define VEC ISA_FN(vf32, ISA)
#define VINT ISA_FN(vi32, ISA)
#define LANES (FRNN_VB / 4)
#include "tier_bodies.h"

#define REAL double
#define FRNN_IS_FLOAT 0
#define SFX f64
#define VEC ISA_FN(vf64, ISA)
#define VINT ISA_FN(vi64, ISA)
#define LANES (FRNN_VB / 8)
#include "tier_bodies.h"

#define TIER_STR_(x) #x
#define TIER_STR(x) TIER_STR_(x)
#define TIER_KERNELS(sfx, isa)                                                                          \
    .sigmoid_##sfx = sigmoid_n_##sfx##_##isa, .tanh_##sfx = tanh_n_##sfx##_##isa,                       \
    .lstm_rec_##sfx = lstm_rec_##sfx##_##isa, .gru_rec_##sfx = gru_rec_##sfx##_##isa,                   \
    .gru_rz_##sfx = gru_rz_##sfx##_##isa, .gru_n_##sfx = gru_n_##sfx##_##isa, .dense_##sfx = dense_##sfx##_##isa
#define TIER_TABLE_(isa) \
    const frnn_kernels frnn_kernels_##isa = {.name = TIER_STR(isa), TIER_KERNELS(f32, isa), TIER_KERNELS(f64, isa)};
#define TIER_TABLE(isa) TIER_TABLE_(isa)

TIER_TABLE(ISA)
