/* Portable SIMD vocabulary for the kernels: GCC/Clang vector extensions.
 *
 * Why vector extensions and not <immintrin.h>: one kernel body (kernels_impl.h) must compile to SSE2
 * (the portable default build) and to AVX2+FMA (a function-level target, chosen at run time), for float
 * and double. Intrinsics would need one body per ISA and precision. `a * b + c` becomes an FMA where
 * the target has one (GCC contracts by default in GNU C mode). Nothing here can emit AVX-512: no
 * function is ever compiled with an avx512 target.
 *
 * One kernel register is FRNN_VB bytes (set per ISA by kernels.c: 16 for SSE2, 32 for AVX2), the
 * native width, so GCC keeps accumulators in registers and splats a scalar with one broadcast (a wider
 * generic vector is lowered through the stack). A packed panel is FRNN_PANEL_BYTES = 64 bytes of units
 * per gate: 16 floats or 8 doubles, the same for every ISA, so the packed weights do not depend on it.
 */
#ifndef FASTRNN_SIMD_H
#define FASTRNN_SIMD_H

#include <stdint.h>
#include <string.h>

#define FRNN_PANEL_BYTES 64
#define FRNN_ALWAYS_INLINE static inline __attribute__((always_inline))

#endif
