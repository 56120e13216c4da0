/* stopper.h — how a thread that runs until told to stop (the scrubbers, the background
 * collection) rests between steps: a flag under a lock, and a wait that ends early when the flag is
 * raised, so closing a store never waits out a thread's rest. */
#ifndef HL_BASE_STOPPER_H
#define HL_BASE_STOPPER_H
#include <pthread.h>
#include <stdint.h>

typedef struct hl_stopper {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int stop;
} hl_stopper;

void hl_stopper_init(hl_stopper *st);
void hl_stopper_destroy(hl_stopper *st);
/* Raises the flag and wakes whoever rests. */
void hl_stopper_stop(hl_stopper *st);
/* Whether the flag is raised. */
int hl_stopper_stopped(hl_stopper *st);
/* Waits ns nanoseconds unless the flag is (or gets) raised; 1 when it is. */
int hl_stopper_rest(hl_stopper *st, uint64_t ns);

/* When `bytes` done since t0 (hl_now_ns) are due at rate bytes per second: the moment a paced
 * walk may go on (t0 when rate is 0: unpaced). */
static inline uint64_t hl_pace_due(uint64_t t0, uint64_t bytes, uint64_t rate)
{
	return rate ? t0 + (uint64_t)((unsigned __int128)bytes * 1000000000u / rate) : t0;
}

#endif
