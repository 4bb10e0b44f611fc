/* The portable tier: the build's default target (SSE2 on x86-64, plain C elsewhere), 16-byte vectors. */
#define ISA generic
#define FRNN_VB 16
#define FRNN_ACC 12
#include "tier.h"
