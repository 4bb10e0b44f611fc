/* The kernel bodies in one precision (REAL, SFX, VEC, VINT, LANES defined by tier.h), inside one tier (ISA);
 * included twice by tier.h, float then double, and clears the precision's macros for the next. */
/* A panel covers PANEL units (64 bytes of a gate) = NV native vectors; NSUP rows have their products held at once;
 * FRNN_KC / G groups of k make a chunk of panel (16 KB) that stays in L1 while every block of rows passes. */
#define PANEL (FRNN_PANEL_BYTES / (ptrdiff_t)sizeof(REAL))
#define NV (PANEL / LANES)
#ifndef FRNN_NSUP
#define FRNN_NSUP 48
#endif
#ifndef FRNN_KC
#define FRNN_KC 256
#endif
#define NSUP FRNN_NSUP

#include "vec_ops.h"
#include "gates.h"
#include "products.h"
#include "panels.h"

#undef NSUP
#undef NV
#undef PANEL
#undef FRNN_IS_FLOAT
#undef FN
#undef FN_
#undef FN__
#undef PASTE
#undef PASTE_
#undef REAL
#undef SFX
#undef VEC
#undef VINT
#undef LANES
