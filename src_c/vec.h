/* The vector vocabulary of one tier: GCC/Clang vector extensions of FRNN_VB bytes (set by the tier's file:
 * 16 for SSE2, 32 for AVX2, 64 for AVX-512), so one kernel body compiles to every tier and precision.
 *
 * Why vector extensions and not <immintrin.h>: the bodies (gates.h, panels.h) must compile to SSE2 (the
 * portable default), AVX2+FMA and AVX-512 (function-level targets chosen at run time), for float and double;
 * intrinsics would need one body per tier and precision. `a * b + c` becomes an FMA where the target has one
 * (GCC contracts by default in GNU C mode). A kernel register is the tier's native width, so GCC keeps
 * accumulators in registers and splats a scalar with one broadcast. A packed panel is FRNN_PANEL_BYTES = 64
 * bytes of units per gate (16 floats or 8 doubles) on every tier, so the packed weights do not depend on it.
 *
 * Included once per tier, with ISA (the tier's name) and FRNN_VB defined.
 */
#include <stdint.h>
#include <string.h>

#ifndef FRNN_PANEL_BYTES
#define FRNN_PANEL_BYTES 64
#define FRNN_ALWAYS_INLINE static inline __attribute__((always_inline))
#define ISA_FN_(name, isa) name##_##isa
#define ISA_FN(name, isa) ISA_FN_(name, isa)
#endif

typedef float ISA_FN(vf32, ISA) __attribute__((vector_size(FRNN_VB)));
typedef int32_t ISA_FN(vi32, ISA) __attribute__((vector_size(FRNN_VB)));
typedef double ISA_FN(vf64, ISA) __attribute__((vector_size(FRNN_VB)));
typedef int64_t ISA_FN(vi64, ISA) __attribute__((vector_size(FRNN_VB)));
