/* fastrnn's one persistent worker thread, which forms a team of two with a caller (worker.c).
 * Plain C99 + POSIX threads + GCC atomics: no Python, no allocation beyond the thread itself.
 *
 * A team runs phases: frnn_team_run(fn, ctx, n) runs fn(ctx, i) for every chunk i in 0..n-1 and returns when all
 * are done. The caller and the worker claim chunks through one atomic word (the caller from the first up, the
 * worker from the last down), so a worker that is late (asleep, or its core busy with another process) simply
 * takes fewer or none: the caller never waits for it to start, only for a chunk it has claimed to finish. Chunks
 * of one phase must be independent; a phase starts after the previous one ended.
 */
#ifndef FASTRNN_WORKER_H
#define FASTRNN_WORKER_H

typedef void (*frnn_chunk_fn)(void *ctx, long chunk);

/* Own the worker for one call: 1 if this caller now leads a team (end it with frnn_team_end), 0 if not (the
 * worker is busy with another caller, cannot be started, or is backing off after being late: run alone). */
int frnn_team_begin(void);
/* Run chunks 0..n-1 of fn on the team (the caller from chunk 0 up, the worker from n-1 down), or all on this
 * thread when called outside a team or with n > 32767. */
void frnn_team_run(frnn_chunk_fn fn, void *ctx, long n);
void frnn_team_end(void);

/* Tests: phases run with the worker taking at least one chunk so far; calls refused while backing off. */
long frnn_team_shared_phases(void);
long frnn_team_backoffs(void);
void frnn_team_forgive(void);  /* tests: end any back-off now */

#endif
