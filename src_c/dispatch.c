/* Which tier's kernels run: the table of tiers, what this CPU and OS support, and the active tier. Also the
 * packing of weights into panels, which every tier shares.
 *
 * A tier is one file (tier_<name>.c: a target pragma, ISA, FRNN_VB, #include "tier.h") and one line in TIERS
 * below: its table, whether the CPU runs it, and whether it is chosen by default.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>
#if defined(__linux__)
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include "fastrnn_kernels.h"

#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
#define FRNN_X86 1
#else
#define FRNN_X86 0
#endif

extern const frnn_kernels frnn_kernels_generic, frnn_kernels_wide;
#if FRNN_X86
extern const frnn_kernels frnn_kernels_avx2, frnn_kernels_avx512, frnn_kernels_avx512_bf16, frnn_kernels_amx;
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

static int cpu_avx512_bf16(void)
{
    return cpu_avx512() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512bf16");
}

/* AMX: the CPU has the tiles, bf16 and int8 (CPUID leaf 7: EDX bits 22, 24, 25), the OS enables their state
 * (XCR0 bits 17, 18) and Linux lets this process use it: the tile data is asked for once, with
 * arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA); if refused, the tier is not supported. */
static int cpu_amx(void)
{
    static int answer = -1;
    if (answer >= 0) return answer;
    answer = 0;
#if defined(__linux__) && defined(__x86_64__)
    unsigned a, b, c, d;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(7), "c"(0));
    if (!cpu_avx512_bf16() || ((d >> 22) & 1) == 0 || ((d >> 24) & 1) == 0 || ((d >> 25) & 1) == 0) return answer;
    __asm__("cpuid" : "=a"(a), "=b"(b), "=c"(c), "=d"(d) : "a"(1), "c"(0));
    if (((c >> 27) & 1) == 0) return answer;  /* OSXSAVE: XGETBV is there */
    unsigned lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    if (((lo >> 17) & 3) != 3) return answer;
    answer = syscall(SYS_arch_prctl, 0x1023 /* ARCH_REQ_XCOMP_PERM */, 18 /* XFEATURE_XTILEDATA */) == 0;
#endif
    return answer;
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
    {&frnn_kernels_avx512_bf16, cpu_avx512_bf16, 1},
    {&frnn_kernels_amx, cpu_amx, 1},
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

int frnn_widen_bf16 = 1;

int frnn_cpu_widens_bf16(void)
{
#if FRNN_X86
    unsigned a, vendor[3];
    __asm__("cpuid" : "=a"(a), "=b"(vendor[0]), "=d"(vendor[1]), "=c"(vendor[2]) : "a"(0), "c"(0));
    return memcmp(vendor, "AuthenticAMD", 12) != 0 && memcmp(vendor, "HygonGenuine", 12) != 0;
#else
    return 1;
#endif
}

const frnn_kernels *frnn_active_kernels(void) { return TIERS[active].kernels; }

/* ---- packing and conversions ------------------------------------------------------------------------------ */

ptrdiff_t frnn_lanes(ptrdiff_t itemsize) { return 64 / itemsize; }

void frnn_advise_huge_pages(void *p, size_t n)
{
#if defined(__linux__) && defined(MADV_HUGEPAGE)
    const uintptr_t page = FRNN_HUGE_PAGE, begin = ((uintptr_t)p + page - 1) / page * page,
                    end = ((uintptr_t)p + n) / page * page;
    if (end > begin) (void)madvise((void *)begin, end - begin, MADV_HUGEPAGE);  /* advice: refused is fine */
#else
    (void)p, (void)n;
#endif
}

/* k values per 64-byte group of a gate's panel, and units per panel. */
static ptrdiff_t group_k(int format) { return format == FRNN_FMT_BF16 ? 2 : format == FRNN_FMT_I8 ? 4 : 1; }

/* Groups of k a panel stores: the groups K needs, padded for AMX tiles in the reduced formats. */
static ptrdiff_t panel_groups(int format, ptrdiff_t K)
{
    ptrdiff_t kg = group_k(format), groups = (K + kg - 1) / kg;
    return format == FRNN_FMT_FLOAT ? groups : frnn_tile_groups(groups);
}

ptrdiff_t frnn_packed_bytes(int format, ptrdiff_t itemsize, ptrdiff_t G, ptrdiff_t H, ptrdiff_t K)
{
    ptrdiff_t units = format == FRNN_FMT_FLOAT ? frnn_lanes(itemsize) : 16;
    return (H + units - 1) / units * panel_groups(format, K) * G * 64;
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

static uint32_t bits_of(float x)
{
    uint32_t b;
    memcpy(&b, &x, sizeof b);
    return b;
}

static uint16_t bf16_bits(float x)
{
    uint32_t b = bits_of(x);
    if ((b & 0x7fffffff) > 0x7f800000) return (uint16_t)((b >> 16) | 0x40);  /* NaN stays a (quiet) NaN */
    return (uint16_t)((b + 0x7fff + ((b >> 16) & 1)) >> 16);                  /* to nearest, ties to even */
}

float frnn_round_bf16(float x)
{
    uint32_t b = (uint32_t)bf16_bits(x) << 16;
    float r;
    memcpy(&r, &b, sizeof r);
    return r;
}

void frnn_pack_bf16(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const float *w_gk, ptrdiff_t ld_w, uint16_t *w_pkgu)
{
    /* panel of 16 units, group of 2 k, gate, unit, k in group; zero past H and K (to the padded groups) */
    const ptrdiff_t groups = panel_groups(FRNN_FMT_BF16, K);
    for (ptrdiff_t j0 = 0; j0 < H; j0 += 16)
        for (ptrdiff_t k0 = 0; k0 < 2 * groups; k0 += 2)
            for (ptrdiff_t g = 0; g < G; ++g)
                for (ptrdiff_t u = 0; u < 16; ++u)
                    for (ptrdiff_t k = k0; k < k0 + 2; ++k)
                        *w_pkgu++ = j0 + u < H && k < K ? bf16_bits(w_gk[(g * H + j0 + u) * ld_w + k]) : 0;
}

void frnn_widen_bf16_panels(ptrdiff_t G, ptrdiff_t groups, const uint16_t *w_pkgu, float *wide)
{
    const unsigned char *in = (const unsigned char *)w_pkgu;
    unsigned char *out = (unsigned char *)wide;
    const ptrdiff_t lanes = G * 16;  /* 32-bit lanes per group: a unit's (even k, odd k) pair in each */
    for (ptrdiff_t g = 0; g < groups; ++g, in += 4 * lanes, out += 8 * lanes) {
        for (ptrdiff_t l = 0; l < lanes; ++l) {
            uint32_t pair, odd, even;
            memcpy(&pair, in + 4 * l, 4);
            odd = pair & 0xffff0000u;  /* the high half: the odd k, a float32 as it stands */
            even = pair << 16;
            memcpy(out + 4 * l, &odd, 4);
            memcpy(out + 4 * (lanes + l), &even, 4);
        }
    }
}

/* The one int8 rounding of weights and activations, per row, in float32 arithmetic: top = max|x|, scale = top /
 * 127 (what the products are multiplied by), q = rint(x * (127 / top)) clamped to [-127, 127]. A row of zeros has
 * scale 0 and q 0; a row holding NaN or an infinity has scale NaN (q 0), so its products are NaN, never a number. */
static float quantize_top(ptrdiff_t K, const float *x)
{
    float top = 0.0f;
    int bad = 0;
    for (ptrdiff_t k = 0; k < K; ++k) {
        float a = fabsf(x[k]);
        bad |= !(a <= FLT_MAX);
        top = a > top ? a : top;
    }
    return bad ? NAN : top;
}

static float quantize_scale(float top) { return top / 127.0f; }

static float quantize_inverse(float top) { return top > 0.0f ? 127.0f / top : 0.0f; }  /* NaN top: 0 */

static int quantize(float x, float inverse)
{
    float q = rintf(x * inverse);  /* |x| <= top: in range; inverse 0 (a row with NaN or inf) can give NaN */
    return q >= 127.0f ? 127 : q <= -127.0f ? -127 : q == q ? (int)q : 0;
}

void frnn_pack_i8(ptrdiff_t G, ptrdiff_t H, ptrdiff_t K, const float *w_gk, ptrdiff_t ld_w, int8_t *w_pkgu,
                  float *scale, int32_t *sums)
{
    /* row by row (one scale each), every value straight to its place: panel, group of 4 k, gate, unit, k */
    const ptrdiff_t groups = panel_groups(FRNN_FMT_I8, K);
    memset(w_pkgu, 0, (size_t)frnn_packed_bytes(FRNN_FMT_I8, 4, G, H, K));
    for (ptrdiff_t g = 0; g < G; ++g)
        for (ptrdiff_t j = 0; j < H; ++j) {
            const ptrdiff_t row = g * H + j;
            const float *x = w_gk + row * ld_w;
            float top = quantize_top(K, x), inverse = quantize_inverse(top);
            int8_t *panel = w_pkgu + (j / 16) * groups * G * 64 + g * 64 + (j % 16) * 4;
            scale[row] = quantize_scale(top);
            sums[row] = 0;
            for (ptrdiff_t k = 0; k < K; ++k) {
                int q = quantize(x[k], inverse);
                sums[row] += q;
                panel[(k / 4) * G * 64 + k % 4] = (int8_t)q;
            }
        }
}

ptrdiff_t frnn_converted_ld(int format, ptrdiff_t K) { return panel_groups(format, K) * group_k(format); }

ptrdiff_t frnn_converted_bytes(int format, ptrdiff_t n, ptrdiff_t K)
{
    return (n + FRNN_TILE_ROWS - 1) * frnn_converted_ld(format, K) * (format == FRNN_FMT_BF16 ? 2 : 1);
}

void frnn_convert_rows(int format, ptrdiff_t n, ptrdiff_t K, const float *src, ptrdiff_t ld_src, void *dst,
                       float *scale)
{
    frnn_active_kernels()->convert_rows(format, n, K, src, ld_src, dst, scale);
}

void frnn_copy_rows(ptrdiff_t itemsize, ptrdiff_t n, ptrdiff_t H, const void *src, ptrdiff_t ld_src, void *dst,
                    ptrdiff_t ld_dst)
{
    for (ptrdiff_t b = 0; b < n; ++b)
        memcpy((char *)dst + b * ld_dst * itemsize, (const char *)src + b * ld_src * itemsize,
               (size_t)(H * itemsize));
}
