/* pool.c — see pool.h. One mutex and condition variable guard a list of tasks sorted by due
 * time; idle threads sleep until the earliest is due or a new one arrives. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "helios.h"
#include "base/clock.h"
#include "coord/pool.h"
#include "base/alloc.h"

typedef struct task {
	uint64_t due_ns;
	hl_task_fn fn;
	void *arg;
	struct task *next;
} task;

struct hl_pool {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	task *head; /* sorted by due_ns */
	atomic_int stop;
	unsigned nthreads;
	pthread_t *threads;
};

static void *worker(void *arg)
{
	hl_pool *p = arg;
	pthread_mutex_lock(&p->mu);
	while (!atomic_load(&p->stop)) {
		task *t = p->head;
		if (!t) {
			pthread_cond_wait(&p->cv, &p->mu);
			continue;
		}
		uint64_t now = hl_now_ns();
		if (t->due_ns > now) {
			struct timespec ts;
			clock_gettime(CLOCK_MONOTONIC, &ts);
			uint64_t wait = t->due_ns - now;
			ts.tv_sec += (time_t)(wait / 1000000000u);
			ts.tv_nsec += (long)(wait % 1000000000u);
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&p->cv, &p->mu, &ts);
			continue;
		}
		p->head = t->next;
		pthread_mutex_unlock(&p->mu);
		t->fn(t->arg);
		free(t);
		pthread_mutex_lock(&p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

hl_pool *hl_pool_new(const char *name, unsigned threads)
{
	if (!threads || !name || strlen(name) > 10)
		return NULL;
	hl_pool *p = hl_calloc(1, sizeof(*p));
	if (!p || !(p->threads = hl_calloc(threads, sizeof(pthread_t)))) {
		free(p);
		return NULL;
	}
	pthread_mutex_init(&p->mu, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (unsigned i = 0; i < threads; i++) {
		if (pthread_create(&p->threads[i], NULL, worker, p) != 0) {
			hl_pool_free(p);
			return NULL;
		}
		p->nthreads++;
		char tn[16];
		snprintf(tn, sizeof tn, "%s-%u", name, i);
		pthread_setname_np(p->threads[i], tn);
	}
	return p;
}

int hl_pool_submit(hl_pool *p, uint64_t delay_ms, hl_task_fn fn, void *arg)
{
	task *t = hl_malloc(sizeof(*t));
	if (!t)
		return ENOMEM;
	t->due_ns = hl_now_ns() + delay_ms * 1000000u;
	t->fn = fn;
	t->arg = arg;
	pthread_mutex_lock(&p->mu);
	if (atomic_load(&p->stop)) {
		pthread_mutex_unlock(&p->mu);
		free(t);
		return HL_CLOSED;
	}
	task **pp = &p->head;
	while (*pp && (*pp)->due_ns <= t->due_ns)
		pp = &(*pp)->next;
	t->next = *pp;
	*pp = t;
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	return 0;
}

int hl_pool_stopping(const hl_pool *p)
{
	return atomic_load(&p->stop);
}

void hl_pool_free(hl_pool *p)
{
	if (!p)
		return;
	pthread_mutex_lock(&p->mu);
	atomic_store(&p->stop, 1);
	pthread_cond_broadcast(&p->cv);
	pthread_mutex_unlock(&p->mu);
	for (unsigned i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	for (task *t = p->head, *next; t; t = next) {
		next = t->next;
		free(t);
	}
	pthread_cond_destroy(&p->cv);
	pthread_mutex_destroy(&p->mu);
	free(p->threads);
	free(p);
}
