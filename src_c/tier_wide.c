/* A test-only tier: the AVX-512 tier's 64-byte vector bodies compiled WITHOUT the AVX-512 target, so GCC lowers
 * each vector to narrower instructions. Any x86-64 (any CPU) runs it, so the logic of the wide tier (one vector
 * per gate of a panel, its register blocks and tails) is exercised by the tests on machines without AVX-512. Never
 * chosen by default (dispatch.c); FASTRNN_ISA=wide or fastrnn._engine.set_isa('wide') selects it. */
#define ISA wide
#define FRNN_VB 64
#define FRNN_ACC 24
#include "tier.h"
