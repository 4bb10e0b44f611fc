/* The AVX-512 tier with the reduced-precision dot products: VDPBF16PS (AVX512_BF16) for bfloat16 weights and
 * VPDPBUSD (AVX512_VNNI) for int8 weights, otherwise the AVX-512 tier's code (Intel Cooper Lake and later, AMD
 * Zen 4 and later). */
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx2,fma")
#include <stddef.h>
#include <immintrin.h>
#include "avx512_masks.h"

#define FRNN_DPBF16 1
#define FRNN_VNNI 1
#define ISA avx512_bf16
#define FRNN_VB 64
#define FRNN_ACC 24
#include "tier.h"
#endif
