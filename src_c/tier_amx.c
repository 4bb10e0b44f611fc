/* The AMX tier: the avx512_bf16 tier's code, with the bf16 and int8 products of calls with FRNN_AMX_MIN_ROWS rows
 * or more on AMX tiles (TDPBF16PS, TDPBUSD; products.h). Intel Sapphire Rapids and later; dispatch.c runs it only
 * where the CPU has AMX and Linux grants this process the tile state. */
#if defined(__GNUC__) && defined(__x86_64__)
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512vnni,avx512bf16,avx2,fma,amx-tile,amx-bf16,amx-int8")
#include <stddef.h>
#include <immintrin.h>
#include "avx512_masks.h"

#define FRNN_DPBF16 1
#define FRNN_VNNI 1
#define FRNN_AMX 1
#define FRNN_NSUP 64
#define FRNN_AMX_MIN_ROWS 4
#define ISA amx
#define FRNN_VB 64
#define FRNN_ACC 24
#include "tier.h"
#endif
