/* Which tier's kernels run: the table of tiers, what this CPU and OS support, and the active tier. Also the
 * packing of weights into panels, which every tier shares.
 *
 * A tier is one file (tier_<name>.c: a target pragma, ISA, FRNN_VB, #include "tier.h") and one line in TIERS
 * below: its table, whether the CPU runs it, and whether it is chosen by default.
 */
#include <stdint.h>
#include <string.h>

#include "fastrnn_kernels.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FRNN_X86 1
#else
#define FRNN_X86 0
#endif

extern const frnn_kernels frnn_kernels_generic, frnn_kernels_wide;
#if FRNN_X86
extern const frnn_kernels frnn_kernels_avx2, frnn_kernels_avx512;
#endif

static int always(void) { return 1; }

#if FRNN_X86
/* libgcc's cpu model reports avx2 / avx512* only when the OS saves the ymm / zmm and mask state (XGETBV), so this
 * is enough. */
static int cpu_avx2(void)
{
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}

static int cpu_avx512(void)
{
    __builtin_cpu_init();
    return cpu_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
           && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq");
}
#endif

static const struct {
    const frnn_kernels *kernels;
    int (*supported)(void);
    int selectable;            /* 0: a test-only tier, never chosen by default */
} TIERS[] = {
    {&frnn_kernels_generic, always, 1},
    {&frnn_kernels_wide, always, 0},
#if FRNN_X86
    {&frnn_kernels_avx2, cpu_avx2, 1},
    {&frnn_kernels_avx512, cpu_avx512, 1},
#endif
};

enum { TIER_COUNT = (int)(sizeof TIERS / sizeof TIERS[0]) };

static int active = 0;

int frnn_tier_count(void) { return TIER_COUNT; }

const char *frnn_tier_name(int tier) { return tier >= 0 && tier < TIER_COUNT ? TIERS[tier].kernels->name : NULL; }

int frnn_tier_supported(int tier) { return tier >= 0 && tier < TIER_COUNT && TIERS[tier].supported(); }

int frnn_tier_selectable(int tier) { return frnn_tier_supported(tier) && TIERS[tier].selectable; }

int frnn_use_tier(int tier)
{
    if (!frnn_tier_supported(tier)) return -1;
    active = tier;
    return 0;
}

int frnn_active_tier(void) { return active; }

const frnn_kernels *frnn_active_kernels(void) { return TIERS[active].kernels; }

/* ---- packing ---------------------------------------------------------------------------------------------- */

ptrdiff_t frnn_lanes(ptrdiff_t itemsize) { return 64 / itemsize; }

ptrdiff_t frnn_packed_size(ptrdiff_t itemsize, ptrdiff_t G, ptrdiff_t H, ptrdiff_t K)
{
    ptrdiff_t lanes = frnn_lanes(itemsize);
    return (H + lanes - 1) / lanes * lanes * G * K;
}

#define FRNN_PACK(real, sfx)                                                                               \
    void frnn_pack_##sfx(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const real *w_gk, ptrdiff_t ld_w, real *w_pkgu) \
    {                                                                                                      \
        const ptrdiff_t lanes = frnn_lanes((ptrdiff_t)sizeof(real));                                       \
        for (ptrdiff_t j0 = 0; j0 < H; j0 += lanes)                                                        \
            for (ptrdiff_t k = 0; k < K; ++k)                                                              \
                for (ptrdiff_t g = 0; g < G; ++g)                                                          \
                    for (ptrdiff_t u = 0; u < lanes; ++u)                                                  \
                        *w_pkgu++ = j0 + u < H ? w_gk[(g * H + j0 + u) * ld_w + k] : (real)0;              \
    }

FRNN_PACK(float, f32)
FRNN_PACK(double, f64)

void frnn_copy_rows(ptrdiff_t itemsize, ptrdiff_t n, ptrdiff_t H, const void *src, ptrdiff_t ld_src, void *dst,
                    ptrdiff_t ld_dst)
{
    for (ptrdiff_t b = 0; b < n; ++b)
        memcpy((char *)dst + b * ld_dst * itemsize, (const char *)src + b * ld_src * itemsize,
               (size_t)(H * itemsize));
}
