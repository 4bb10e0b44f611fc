/* The AVX-512 tier (F, BW, VL, DQ): 64-byte vectors, one per gate of a panel, 32 registers (24 accumulators per
 * register block), and mask registers for the partial vector at the end of a row of units. Reduced-precision
 * weights are widened in registers. Compiled on x86 only, with a function-level target; dispatch.c runs it only
 * where the CPU and OS support it. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx2,fma")
#include <stddef.h>
#include <immintrin.h>
#include "avx512_masks.h"

#define ISA avx512
#define FRNN_VB 64
#define FRNN_ACC 24
#include "tier.h"
#endif
