/* pool.h — a worker pool for background work: named threads, a queue of tasks ordered by when
 * they are due (now, or after a delay: periodic work resubmits itself), a stop flag that long
 * tasks poll, and a shutdown that joins every thread. */
#ifndef HL_COORD_POOL_H
#define HL_COORD_POOL_H
#include <stdint.h>

typedef struct hl_pool hl_pool;
typedef void (*hl_task_fn)(void *arg);

/* threads ≥ 1, named "<name>-<n>" (name ≤ 10 characters). NULL on failure. */
hl_pool *hl_pool_new(const char *name, unsigned threads);
/* Queues fn(arg) to run after delay_ms (0: as soon as a thread is free). HL_CLOSED once stopping;
 * ENOMEM. */
int hl_pool_submit(hl_pool *p, uint64_t delay_ms, hl_task_fn fn, void *arg);
/* Nonzero once hl_pool_free has begun: long tasks check it and return early. */
int hl_pool_stopping(const hl_pool *p);
/* Stops: tasks not yet started are dropped, running ones are waited for, threads joined. */
void hl_pool_free(hl_pool *p);

#endif
