/* The AVX2 + FMA tier: 32-byte vectors. Compiled on x86 only, with a function-level target, so the build stays
 * portable; dispatch.c runs it only where the CPU and OS support AVX2 and FMA. */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx2,fma")
#define ISA avx2
#define FRNN_VB 32
#define FRNN_ACC 12
#include "tier.h"
#endif
