/* The kernel bodies in one precision (REAL, SFX, VEC, VINT, LANES defined by tier.h), inside one tier (ISA);
 * included twice by tier.h, float then double, and clears the precision's macros for the next. */
#include "vec_ops.h"
#include "gates.h"
#include "panels.h"

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
