/* Loads, stores, broadcasts and selects on one tier's vectors of one precision: included by tier.h once per
 * precision (REAL, SFX, VEC, VINT, LANES defined) inside each tier (ISA). FN(name) is name_SFX_ISA. */
#define FN__(name, sfx, isa) name##_##sfx##_##isa
#define FN_(name, sfx, isa) FN__(name, sfx, isa)
#define FN(name) FN_(name, SFX, ISA)

#define PASTE_(a, b) a##b
#define PASTE(a, b) PASTE_(a, b)

/* The first n (>= 1) values at p, zeros in the other lanes. A tier with mask registers (FRNN_MASKED_TAILS:
 * AVX-512) reads a partial vector with one masked load; the others copy it through memory. */
FRNN_ALWAYS_INLINE VEC FN(load)(const REAL *p, ptrdiff_t n)
{
    VEC v = {0};
    if (n >= LANES) memcpy(&v, p, sizeof v);  /* constant size: one unaligned vector load */
#ifdef FRNN_MASKED_TAILS
    else v = (VEC)PASTE(frnn_mask_load_, SFX)(p, n);
#else
    else memcpy(&v, p, (size_t)n * sizeof(REAL));
#endif
    return v;
}

FRNN_ALWAYS_INLINE void FN(store)(REAL *p, VEC v, ptrdiff_t n)
{
    if (n >= LANES) memcpy(p, &v, sizeof v);
#ifdef FRNN_MASKED_TAILS
    else PASTE(frnn_mask_store_, SFX)(p, v, n);
#else
    else memcpy(p, &v, (size_t)n * sizeof(REAL));
#endif
}

/* x in every lane. `x - 0` is exact for every x (-0 - 0 = -0), so the compiler drops the subtraction and
 * emits one broadcast (from memory where x comes from memory); `0 + x` would round -0 to +0 and stays an
 * add, which in the multi-row kernel doubled the non-FMA work per weight load. */
FRNN_ALWAYS_INLINE VEC FN(splat)(REAL x)
{
    return x - (VEC){0};
}

/* NaN-propagating select: lanes where mask is true (-1) take a, the others b. */
FRNN_ALWAYS_INLINE VEC FN(select)(VINT mask, VEC a, VEC b)
{
    return (VEC)(((VINT)a & mask) | ((VINT)b & ~mask));
}
