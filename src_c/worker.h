/* fastrnn's one persistent worker thread (worker.c) and the spinning barrier its two sides meet at.
 * Plain C99 + POSIX threads: no Python, no allocation beyond the thread itself. */
#ifndef FASTRNN_WORKER_H
#define FASTRNN_WORKER_H

/* Run fn(arg_here) on the calling thread and fn(arg_worker) on the worker, returning when both are done. If
 * the worker is busy with another caller or cannot be started, runs both here, one after the other. */
typedef void (*frnn_task_fn)(void *arg);
void frnn_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker);
/* The same, but when the worker is busy or cannot be started runs nothing and returns 0 (1: both ran). For
 * tasks that wait for each other (frnn_barrier_wait), which must run at once or not at all. */
int frnn_try_run_pair(frnn_task_fn fn, void *arg_here, void *arg_worker);

/* A spinning barrier for the two sides (0: the caller, 1: the worker) of one frnn_try_run_pair: zero it
 * before the run; each side keeps its own count of barriers reached (*reached, starting at 0). Each side's
 * count sits in its own 64-byte line. */
#define FRNN_BARRIER_STRIDE 16
typedef struct frnn_barrier { long count[2 * FRNN_BARRIER_STRIDE]; } frnn_barrier;
void frnn_barrier_wait(frnn_barrier *b, int side, long *reached);

#endif
