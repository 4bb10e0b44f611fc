/* One persistent worker thread, so a bidirectional layer can run its two directions at once.
 *
 * Created on first use and kept: a thread per call would cost tens of microseconds, the worker's wake-up a few.
 * One caller at a time owns it (a trylock); a caller that finds it busy (another Python thread is in a parallel
 * region) runs both tasks itself (frnn_run_pair) or takes its single-threaded path (frnn_try_run_pair: tasks
 * that meet at a barrier cannot run one after the other), so the engine never has more threads in flight
 * than the budget allows.
 * After fork() the child has no worker: the at-fork handler forgets it, and the child starts its own.
 * Plain C99 + POSIX threads: no Python, no allocation beyond the thread itself.
 */
#include <pthread.h>
#include <sched.h>

#include "worker.h"

static pthread_mutex_t owner = PTHREAD_MUTEX_INITIALIZER;  /* held by the caller using the worker */
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;   /* guards the fields below */
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;
static pthread_cond_t finished = PTHREAD_COND_INITIALIZER;
static frnn_task_fn task;
static void *task_arg;
static int pending, done;
static int started;  /* 0 never tried, 1 running, -1 pthread_create failed */

static void *worker_main(void *unused)
{
    (void)unused;
    for (;;) {
        pthread_mutex_lock(&lock);
        while (!pending) pthread_cond_wait(&wake, &lock);
        frnn_task_fn fn = task;
        void *arg = task_arg;
        pending = 0;
        pthread_mutex_unlock(&lock);
        fn(arg);
        pthread_mutex_lock(&lock);
        done = 1;
        pthread_cond_signal(&finished);
        pthread_mutex_unlock(&lock);
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
    finished = fresh_cond;
    pending = done = 0;
    started = 0;
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

int frnn_try_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker)
{
    if (pthread_mutex_trylock(&owner) != 0) return 0;
    if (!ensure_started()) {
        pthread_mutex_unlock(&owner);
        return 0;
    }
    pthread_mutex_lock(&lock);
    task = fn;
    task_arg = arg_worker;
    pending = 1;
    done = 0;
    pthread_cond_signal(&wake);
    pthread_mutex_unlock(&lock);
    fn(arg_here);
    pthread_mutex_lock(&lock);
    while (!done) pthread_cond_wait(&finished, &lock);
    pthread_mutex_unlock(&lock);
    pthread_mutex_unlock(&owner);
    return 1;
}

void frnn_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker)
{
    if (!frnn_try_run_pair(fn, arg_here, arg_worker)) {
        fn(arg_here);
        fn(arg_worker);
    }
}

/* Two-party barrier: each side publishes how many barriers it has reached in its own cache line and spins
 * until the other has reached as many. No read-modify-write, so the only traffic is one line each way.
 * Spinning, not sleeping: a step of the split time loop takes 10-600 us and a futex wake-up tens. After ~2000
 * pauses (tens of us: far more than the two halves of a step ever differ on idle cores) it yields the CPU at
 * every try, so another runnable thread on this core (the other side itself, if both share one CPU) gets it. */
void frnn_barrier_wait(frnn_barrier *b, int side, long *reached)
{
    long mine = ++*reached;
    long spins = 0;
    __atomic_store_n(&b->count[side * FRNN_BARRIER_STRIDE], mine, __ATOMIC_RELEASE);
    while (__atomic_load_n(&b->count[(1 - side) * FRNN_BARRIER_STRIDE], __ATOMIC_ACQUIRE) < mine) {
        if (++spins > 2000) sched_yield();
#if defined(__GNUC__) && (defined(__x86_64__) || defined(__i386__))
        else __builtin_ia32_pause();
#endif
    }
}
