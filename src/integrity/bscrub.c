/* bscrub.c — the shared backend's integrity checker (see bscrub.h). */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/stopper.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/grow.h"
#include "base/log.h"
#include "integrity/bscrub.h"
#include "base/alloc.h"

#define MAX_THREADS 32

struct hl_bscrub {
	hl_backend be;
	hl_l1 *l1;
	hl_l2 *l2;
	hl_tier repair;
	const char *repair_name;
	hl_scrub_corrupt_fn on_corrupt;
	void *ctx;
	atomic_uint_fast64_t objects, bytes, corrupt, repaired, unrepairable, passes;
	/* the background walk */
	pthread_t th;
	int running;
	uint64_t rate;
	unsigned pause_s;
	hl_stopper stopper;
};

typedef struct listed {
	hl_id id;
	uint64_t size;
} listed;

typedef struct walk {
	hl_bscrub *b;
	listed *v;
	size_t n, cap;
	atomic_size_t next;
	atomic_uint_fast64_t done_bytes, objects, corrupt, io_errors;
	uint64_t total_bytes, rate, t0;
	int repair;
	hl_verify_fn fn;
	hl_progress_fn progress;
	void *ctx;
	pthread_mutex_t mu; /* fn and progress are called one at a time */
} walk;

static int collect(const hl_id *id, const hl_stat *st, void *arg)
{
	walk *w = arg;
	void *p = hl_grow(w->v, w->n, &w->cap, sizeof(*w->v), 1024);
	if (!p)
		return ENOMEM;
	w->v = p;
	w->v[w->n++] = (listed){*id, st->size};
	w->total_bytes += st->size;
	return 0;
}

static int stopping(hl_bscrub *b) { return hl_stopper_stopped(&b->stopper); }

/* Sleeps until done bytes fit the rate since t0 (or the walk is told to stop). */
static void pace(walk *w, uint64_t done)
{
	uint64_t due = hl_pace_due(w->t0, done, w->rate), now = hl_now_ns();
	if (due > now)
		hl_stopper_rest(&w->b->stopper, due - now);
}

static void log_id(int level, const hl_id *id, const char *what)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	hl_log(level, "backend object %s: %s", hex, what);
}

static void *walk_some(void *arg)
{
	walk *w = arg;
	hl_bscrub *b = w->b;
	for (size_t i; (i = atomic_fetch_add(&w->next, 1)) < w->n && !stopping(b);) {
		hl_buf *buf = NULL;
		int err = b->be.ops->obj.get(b->be.self, &w->v[i].id, &buf); /* re-hashed by the backend */
		hl_buf_unref(buf);
		uint64_t done = atomic_fetch_add(&w->done_bytes, w->v[i].size) + w->v[i].size;
		atomic_fetch_add(&w->objects, 1);
		atomic_fetch_add(&b->objects, 1);
		atomic_fetch_add(&b->bytes, w->v[i].size);
		if (err == HL_NOTFOUND)
			err = 0; /* collected since the listing */
		if (err == HL_CORRUPT) {
			atomic_fetch_add(&w->corrupt, 1);
			atomic_fetch_add(&b->corrupt, 1);
			if (b->on_corrupt)
				b->on_corrupt(b->ctx);
			const char *from;
			if (w->repair && hl_bscrub_repair(b, &w->v[i].id, &from) == 0)
				err = 0;
			else
				log_id(HL_LOG_ERROR, &w->v[i].id, "corrupt in the backend");
		} else if (err) {
			atomic_fetch_add(&w->io_errors, 1);
			log_id(HL_LOG_WARN, &w->v[i].id, hl_strerror(err));
		}
		pthread_mutex_lock(&w->mu);
		if (err && w->fn)
			w->fn(&w->v[i].id, err, w->ctx);
		if (w->progress)
			w->progress(done, w->total_bytes, w->ctx);
		pthread_mutex_unlock(&w->mu);
		pace(w, done);
	}
	return NULL;
}

int hl_bscrub_walk(hl_bscrub *b, unsigned threads, uint64_t bytes_per_s, int repair, hl_verify_fn fn,
                   hl_progress_fn progress, void *ctx, hl_verify_report *out)
{
	walk w = {.b = b, .rate = bytes_per_s, .repair = repair, .fn = fn, .progress = progress, .ctx = ctx};
	memset(out, 0, sizeof(*out));
	pthread_mutex_init(&w.mu, NULL);
	int err = b->be.ops->list(b->be.self, collect, &w);
	w.t0 = hl_now_ns();
	pthread_t th[MAX_THREADS];
	size_t nth = threads ? threads : 8, started = 0;
	if (nth > MAX_THREADS)
		nth = MAX_THREADS;
	for (; !err && started + 1 < nth && started + 1 < w.n; started++)
		if (pthread_create(&th[started], NULL, walk_some, &w))
			break;
	if (!err)
		walk_some(&w);
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	pthread_mutex_destroy(&w.mu);
	free(w.v);
	out->objects = atomic_load(&w.objects);
	out->bytes = atomic_load(&w.done_bytes);
	out->corrupt = atomic_load(&w.corrupt);
	out->io_errors = atomic_load(&w.io_errors);
	if (!err && !stopping(b) && w.next >= w.n)
		atomic_fetch_add(&b->passes, 1);
	if (err)
		return err;
	return out->io_errors ? EIO : 0;
}

int hl_bscrub_repair(hl_bscrub *b, const hl_id *id, const char **from)
{
	hl_buf *good = NULL;
	const char *src = NULL;
	if (b->l1 && hl_l1_get(b->l1, id, &good) == 0) /* verified when it entered */
		src = "l1";
	else if (b->l2 && hl_l2_get(b->l2, id, &good) == 0) /* verified as it is read */
		src = "l2";
	else if (b->repair.ops && b->repair.ops->get(b->repair.self, id, &good) == 0)
		src = b->repair_name;
	if (!src) {
		atomic_fetch_add(&b->unrepairable, 1);
		log_id(HL_LOG_ERROR, id, "corrupt in the backend and no source has a verified copy");
		return HL_NOTFOUND;
	}
	int err = b->be.ops->rewrite(b->be.self, id, hl_buf_data(good), hl_buf_len(good));
	hl_buf_unref(good);
	hl_buf *check = NULL;
	if (!err)
		err = b->be.ops->obj.get(b->be.self, id, &check); /* the backend has good bytes now */
	hl_buf_unref(check);
	if (err) {
		log_id(HL_LOG_ERROR, id, "repair failed");
		return err;
	}
	atomic_fetch_add(&b->repaired, 1);
	char what[64];
	snprintf(what, sizeof what, "was corrupt in the backend; repaired from %s", src);
	log_id(HL_LOG_WARN, id, what);
	if (from)
		*from = src;
	return 0;
}

int hl_bscrub_new(hl_backend be, hl_l1 *l1, hl_l2 *l2, hl_tier repair, const char *repair_name,
                  hl_scrub_corrupt_fn on_corrupt, void *ctx, hl_bscrub **out)
{
	if (!be.ops->list || !be.ops->rewrite)
		return HL_INVALID;
	hl_bscrub *b = hl_calloc(1, sizeof(*b));
	if (!b)
		return ENOMEM;
	*b = (hl_bscrub){.be = be, .l1 = l1, .l2 = l2, .repair = repair, .repair_name = repair_name,
	                 .on_corrupt = on_corrupt, .ctx = ctx};
	hl_stopper_init(&b->stopper);
	*out = b;
	return 0;
}

static void *background(void *arg)
{
	hl_bscrub *b = arg;
	pthread_setname_np(pthread_self(), "hl-bscrub");
	while (!stopping(b)) {
		hl_verify_report r;
		int err = hl_bscrub_walk(b, 2, b->rate, 1, NULL, NULL, NULL, &r);
		if (err && err != EIO)
			hl_log(HL_LOG_WARN, "backend scrub: %s (trying again after the pause)", hl_strerror(err));
		hl_stopper_rest(&b->stopper, (uint64_t)(b->pause_s ? b->pause_s : 1) * 1000000000u);
	}
	return NULL;
}

int hl_bscrub_start(hl_bscrub *b, uint64_t bytes_per_s, unsigned pause_s)
{
	if (b->running)
		return 0;
	b->rate = bytes_per_s < (64u << 10) ? 64u << 10 : bytes_per_s;
	b->pause_s = pause_s;
	if (pthread_create(&b->th, NULL, background, b))
		return EAGAIN;
	b->running = 1;
	return 0;
}

void hl_bscrub_stats_get(hl_bscrub *b, hl_scrub_stats *out)
{
	out->objects = atomic_load(&b->objects);
	out->bytes = atomic_load(&b->bytes);
	out->corrupt = atomic_load(&b->corrupt);
	out->repaired = atomic_load(&b->repaired);
	out->unrepairable = atomic_load(&b->unrepairable);
	out->passes = atomic_load(&b->passes);
}

void hl_bscrub_free(hl_bscrub *b)
{
	if (!b)
		return;
	if (b->running) {
		hl_stopper_stop(&b->stopper);
		pthread_join(b->th, NULL);
	}
	hl_stopper_destroy(&b->stopper);
	free(b);
}
