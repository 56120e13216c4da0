/* stopper.c — the rest-unless-stopped wait of threads that run until told to stop. */
#include "base/stopper.h"
#include <errno.h>
#include "base/clock.h"

void hl_stopper_init(hl_stopper *st)
{
	pthread_mutex_init(&st->mu, NULL);
	pthread_cond_init(&st->cv, NULL);
	st->stop = 0;
}

void hl_stopper_destroy(hl_stopper *st)
{
	pthread_cond_destroy(&st->cv);
	pthread_mutex_destroy(&st->mu);
}

void hl_stopper_stop(hl_stopper *st)
{
	pthread_mutex_lock(&st->mu);
	st->stop = 1;
	pthread_cond_broadcast(&st->cv);
	pthread_mutex_unlock(&st->mu);
}

int hl_stopper_stopped(hl_stopper *st)
{
	pthread_mutex_lock(&st->mu);
	int stop = st->stop;
	pthread_mutex_unlock(&st->mu);
	return stop;
}

int hl_stopper_rest(hl_stopper *st, uint64_t ns)
{
	struct timespec at = hl_deadline_after(ns);
	pthread_mutex_lock(&st->mu);
	while (!st->stop && pthread_cond_timedwait(&st->cv, &st->mu, &at) != ETIMEDOUT)
		;
	int stop = st->stop;
	pthread_mutex_unlock(&st->mu);
	return stop;
}
