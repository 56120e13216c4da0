/* workers.h — one function run by several threads at once, the calling thread among them, for the
 * walks that share a queue of jobs (snapshot's files, restore's files). */
#ifndef HL_BASE_WORKERS_H
#define HL_BASE_WORKERS_H

/* Online CPUs, at least 1. */
unsigned hl_cpus(void);
/* Runs fn(arg) on n threads in all (n - 1 started, and the calling thread; fewer when a thread
 * cannot be started, never none) and returns once every one has returned. */
void hl_run_workers(void *(*fn)(void *), void *arg, unsigned n);

#endif
