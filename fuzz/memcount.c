/* Counts the bytes held in large heap blocks and their peak, for the fuzz harness (fuzz/_harness.py).
 *
 * fuzz/run.py builds this into a shared library and LD_PRELOADs it into each fuzz target, so every malloc of
 * the process (numpy's array buffers, Python's large bytes objects, zipfile's and zlib's buffers) goes through
 * these wrappers. They count the requested block, touched or not: an unchecked `np.empty(declared size)` costs
 * no resident memory until it is written, so an RSS limit misses it, but it is counted here. tracemalloc sees
 * the same, but slows the targets several times over; this costs one size lookup per call.
 *
 * Only blocks of at least LARGE bytes are counted: a bound "far beyond the file's size" is about big buffers,
 * and skipping the small ones keeps the counters off the hot path. glibc's __libc_* entry points are the real
 * allocator (no dlsym, which itself allocates). Every allocating entry point is wrapped, so that no block is
 * counted on free without having been counted on allocation.
 */
#include <errno.h>
#include <malloc.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

#define LARGE ((size_t)64 * 1024)

static _Atomic long long current, peak;

static void *counted(void *block) {
    if (block) {
        size_t size = malloc_usable_size(block);
        if (size >= LARGE) {
            long long now = atomic_fetch_add(&current, (long long)size) + (long long)size;
            long long seen = atomic_load(&peak);
            while (now > seen && !atomic_compare_exchange_weak(&peak, &seen, now)) {
            }
        }
    }
    return block;
}

static void uncount(void *block) {
    if (block) {
        size_t size = malloc_usable_size(block);
        if (size >= LARGE)
            atomic_fetch_sub(&current, (long long)size);
    }
}

void *malloc(size_t size) { return counted(__libc_malloc(size)); }

void *calloc(size_t count, size_t size) { return counted(__libc_calloc(count, size)); }

void free(void *block) {
    uncount(block);
    __libc_free(block);
}

void *realloc(void *block, size_t size) {
    size_t old = block ? malloc_usable_size(block) : 0;
    void *moved = __libc_realloc(block, size);
    if (moved || size == 0) { /* the old block is gone (moved, resized or freed); on failure it stays */
        if (old >= LARGE)
            atomic_fetch_sub(&current, (long long)old);
        counted(moved);
    }
    return moved;
}

void *reallocarray(void *block, size_t count, size_t size) {
    if (size && count > SIZE_MAX / size) {
        errno = ENOMEM;
        return NULL;
    }
    return realloc(block, count * size);
}

void *memalign(size_t alignment, size_t size) { return counted(__libc_memalign(alignment, size)); }

void *aligned_alloc(size_t alignment, size_t size) { return memalign(alignment, size); }

void *valloc(size_t size) { return memalign((size_t)sysconf(_SC_PAGESIZE), size); }

void *pvalloc(size_t size) {
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    return memalign(page, (size + page - 1) / page * page);
}

int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)))
        return EINVAL;
    void *block = memalign(alignment, size);
    if (!block && size)
        return ENOMEM;
    *out = block;
    return 0;
}

/* The harness's interface (through ctypes): start a new input, then read its peak above the start. */
void fastrnn_fuzz_reset_peak(void) { atomic_store(&peak, atomic_load(&current)); }

long long fastrnn_fuzz_current(void) { return atomic_load(&current); }

long long fastrnn_fuzz_peak(void) { return atomic_load(&peak); }
