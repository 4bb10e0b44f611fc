/* One persistent worker thread, teamed with one caller at a time (see worker.h for the contract).
 *
 * Chunks are claimed from one 64-bit word, seq:16 | n:16 | front:16 | back:16: the leader publishes a phase by
 * storing (seq, n, 0, 0); the leader claims from the front (fetch_add on `front`, runs chunk `front`), the worker
 * from the back (runs chunk n-1-`back`), while front + back < n. Each claimer decodes the word from its own
 * fetch_add, so it never acts on a later phase's size and no chunk is taken twice; a phase cannot end (nor its
 * function change) while a claimed chunk runs, because the leader waits for the worker's count of finished chunks
 * before it returns. Claiming from the two ends keeps each thread on about the same units every step, so the
 * weights of its part stay in its core's L2 from one step to the next.
 *
 * Never worse than one thread: the leader does not wait for the worker to start; it only waits for chunks the
 * worker has claimed. When such a wait runs long (the worker's core is busy with another process and the worker
 * was preempted mid-chunk), the worker is deemed late and the next calls run alone, twice as many after each late
 * call in a row (up to MAX_BACKOFF), so a busy core costs a few probes, not every step.
 *
 * The worker spins SPIN_NS after its last chunk (a phase of the next step, or the next streaming call, comes
 * within microseconds), then sleeps on a condition variable; a leader that finds it asleep signals it and goes on
 * with the chunks meanwhile. After fork() the child has no worker: the at-fork handler forgets it.
 */
#include <pthread.h>
#include <stdint.h>
#include <time.h>

#include "worker.h"

#define SPIN_NS 100000L        /* the worker's spin after its last chunk, before it sleeps */
#define LATE_MIN_NS 20000L     /* a wait for the worker this long (and 4x a chunk of the leader's) is late */
#define MAX_BACKOFF 256

#define NCH(w) (((w) >> 32) & 0xffff)
#define FRONT(w) (((w) >> 16) & 0xffff)
#define BACK(w) ((w) & 0xffff)
#define OPEN(w) (FRONT(w) + BACK(w) < NCH(w))
#define MAX_CHUNKS 0x7fff      /* each field counts at most n + 1 claims */

static pthread_mutex_t owner = PTHREAD_MUTEX_INITIALIZER;  /* held by the team's leader */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   /* guards the sleep */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

static uint64_t claim;                  /* atomic */
static frnn_chunk_fn phase_fn;          /* written by the leader before it publishes a phase */
static void *phase_ctx;
static long worker_done;                /* atomic: chunks the worker finished in this phase */
static int sleeping;                    /* atomic */
static int started;                     /* 0 never tried, 1 running, -1 pthread_create failed */
/* The leader's own state (under `owner`): */
static int in_team, late_in_team;
static uint64_t seq;
static long backoff_left, backoff_next = 1;
static long shared_phases, backoffs;

static long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
    __builtin_ia32_pause();
#endif
}

static void *worker_main(void *unused)
{
    (void)unused;
    long idle_since = now_ns();
    for (unsigned spins = 0;; ++spins) {
        uint64_t w = __atomic_load_n(&claim, __ATOMIC_ACQUIRE);
        if (OPEN(w)) {
            uint64_t got = __atomic_fetch_add(&claim, 1, __ATOMIC_ACQ_REL);
            if (OPEN(got)) {
                phase_fn(phase_ctx, (long)(NCH(got) - 1 - BACK(got)));
                __atomic_fetch_add(&worker_done, 1, __ATOMIC_RELEASE);
            }
            idle_since = now_ns();
            continue;
        }
        cpu_relax();
        if (spins % 64 || now_ns() - idle_since < SPIN_NS) continue;
        pthread_mutex_lock(&lock);
        __atomic_store_n(&sleeping, 1, __ATOMIC_SEQ_CST);
        while (__atomic_load_n(&claim, __ATOMIC_SEQ_CST) == w) pthread_cond_wait(&wake, &lock);
        __atomic_store_n(&sleeping, 0, __ATOMIC_RELAXED);
        pthread_mutex_unlock(&lock);
        idle_since = now_ns();
    }
    return NULL;
}

static void forget_worker_in_child(void)
{
    static const pthread_mutex_t fresh_mutex = PTHREAD_MUTEX_INITIALIZER;
    static const pthread_cond_t fresh_cond = PTHREAD_COND_INITIALIZER;
    owner = fresh_mutex;
    lock = fresh_mutex;
    wake = fresh_cond;
    claim = 0;
    worker_done = sleeping = started = in_team = late_in_team = 0;
    backoff_left = 0;
    backoff_next = 1;
}

static int ensure_started(void)  /* called with `owner` held */
{
    if (started == 0) {
        static int atfork_registered;
        pthread_t thread;
        pthread_attr_t attr;
        if (!atfork_registered) atfork_registered = pthread_atfork(NULL, NULL, forget_worker_in_child) == 0;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        started = pthread_create(&thread, &attr, worker_main, NULL) == 0 ? 1 : -1;
        pthread_attr_destroy(&attr);
    }
    return started == 1;
}

int frnn_team_begin(void)
{
    if (pthread_mutex_trylock(&owner) != 0) return 0;
    if (backoff_left > 0) {
        --backoff_left;
        ++backoffs;
        pthread_mutex_unlock(&owner);
        return 0;
    }
    if (!ensure_started()) {
        pthread_mutex_unlock(&owner);
        return 0;
    }
    in_team = 1;
    late_in_team = 0;
    return 1;
}

void frnn_team_end(void)
{
    if (late_in_team) {
        backoff_left = backoff_next;
        backoff_next = backoff_next * 2 < MAX_BACKOFF ? backoff_next * 2 : MAX_BACKOFF;
    } else {
        backoff_next = 1;
    }
    in_team = 0;
    pthread_mutex_unlock(&owner);
}

void frnn_team_run(frnn_chunk_fn fn, void *ctx, long n)
{
    if (!in_team || n <= 1 || n > MAX_CHUNKS || late_in_team) {
        for (long i = 0; i < n; ++i) fn(ctx, i);
        return;
    }
    phase_fn = fn;
    phase_ctx = ctx;
    __atomic_store_n(&worker_done, 0, __ATOMIC_RELAXED);
    seq = (seq + 1) & 0xffff;
    __atomic_store_n(&claim, seq << 48 | (uint64_t)n << 32, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(&sleeping, __ATOMIC_SEQ_CST)) {
        pthread_mutex_lock(&lock);
        pthread_cond_signal(&wake);
        pthread_mutex_unlock(&lock);
    }
    long mine = 0, start = now_ns();
    for (;;) {
        uint64_t got = __atomic_fetch_add(&claim, (uint64_t)1 << 16, __ATOMIC_ACQ_REL);
        if (!OPEN(got)) break;
        fn(ctx, (long)FRONT(got));
        ++mine;
    }
    if (mine == n) return;
    ++shared_phases;
    long waited_from = now_ns(), chunk_ns = mine ? (waited_from - start) / mine : 0;
    for (unsigned spins = 0; __atomic_load_n(&worker_done, __ATOMIC_ACQUIRE) < n - mine; ++spins) {
        cpu_relax();
        if (!late_in_team && spins % 64 == 0) {
            long waited = now_ns() - waited_from;
            late_in_team = waited > LATE_MIN_NS && waited > 4 * chunk_ns;
        }
    }
}

long frnn_team_shared_phases(void) { return shared_phases; }

void frnn_team_forgive(void)
{
    pthread_mutex_lock(&owner);
    backoff_left = 0;
    backoff_next = 1;
    pthread_mutex_unlock(&owner);
}

long frnn_team_backoffs(void) { return backoffs; }
