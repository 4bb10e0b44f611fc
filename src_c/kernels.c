/* Gate kernels for float and double, instantiated from one body (kernels_impl.h). */
#include <math.h>
#include "fastrnn_kernels.h"

#define REAL float
#define SFX f32
#define EXP expf
#define TANH tanhf
#include "kernels_impl.h"
#undef REAL
#undef SFX
#undef EXP
#undef TANH

#define REAL double
#define SFX f64
#define EXP exp
#define TANH tanh
#include "kernels_impl.h"
#undef REAL
#undef SFX
#undef EXP
#undef TANH
