/* coord.c — see coord.h. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "base/clock.h"
#include "base/log.h"
#include "hash/hash.h"
#include "coord/coord.h"
#include "coord/pool.h"
#include "base/alloc.h"

enum { FL_GET, FL_GET_WHOLE, FL_SCAN, FL_PUT };

/* One operation in flight below the L1; callers asking for the same (kind, id) wait for it. */
typedef struct flight {
	hl_id id;
	int kind, done, err;
	hl_buf *buf;      /* a get's result, one reference held for the waiters */
	unsigned waiters; /* the last waiter out frees the flight */
	struct flight *next;
} flight;

typedef struct cshard {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	flight *flights;
	unsigned inflight[HL_CLASSES_];
} __attribute__((aligned(64))) cshard;

/* The adaptive bound on one class's operations in flight. */
typedef struct limiter {
	atomic_int inflight, limit;
	atomic_uint_fast64_t win_sum_ns, win_n, win_start_ns;
	pthread_mutex_t mu; /* one thread at a time closes a window */
	double limit_f, low_ns;
	double cut_mean; /* the window mean that made the last cut, 0 when the last step was up */
	int settle;      /* windows to wait after a cut before judging it (calls admitted before it drain) */
	int confirm;     /* congested windows in a row before a first cut (a ramp's window is mixed) */
	int futile;      /* cuts in a row that did not lower the mean */
	double floor;    /* the lowest the limit goes */
	atomic_uint_fast64_t decreases, increases;
} __attribute__((aligned(64))) limiter;

struct hl_coord {
	hl_tier tier;
	hl_l1 *l1;
	hl_coord_options opt;
	cshard *shards;
	limiter lim[HL_CLASSES_];
	atomic_uint_fast64_t joined;
	hl_metrics m;
	hl_pool *pool;
};

static const char *class_names[HL_CLASSES_] = {"get", "has", "write"};

static cshard *shard_of(hl_coord *c, const hl_id *id)
{
	/* bytes the L1 does not shard by (it uses the low 64 bits) */
	return &c->shards[(id->b[30] | (unsigned)id->b[31] << 8) & (HL_COORD_SHARDS - 1)];
}

/* ---------- admission ---------- */

static int admit_global(hl_coord *c, int cls)
{
	if (!c->opt.max_inflight)
		return 0;
	limiter *l = &c->lim[cls];
	if (atomic_fetch_add(&l->inflight, 1) >= atomic_load_explicit(&l->limit, memory_order_relaxed)) {
		atomic_fetch_sub(&l->inflight, 1);
		return HL_BUSY;
	}
	return 0;
}

/* With the shard's mutex held. */
static int admit(hl_coord *c, cshard *sh, int cls)
{
	if (!c->opt.max_inflight)
		return 0;
	if (sh->inflight[cls] >= c->opt.shard_inflight)
		return HL_BUSY;
	int err = admit_global(c, cls);
	if (!err)
		sh->inflight[cls]++;
	return err;
}

/* Ends one admitted operation that took ns; every window_ms one caller re-derives the limit: a
 * window whose mean latency exceeds tolerance × the lowest window mean seen (which drifts up 1% a
 * window, so a lasting change of the backend is learnt) cuts the limit by a fifth; otherwise it
 * grows by an eighth (at least 1), up to max_inflight. A first cut needs two congested windows in a
 * row, and a cut is judged one window after it is made. Two cuts in a row that did not bring the
 * mean down by a tenth show the latency does not come from this class's own queue (the CPU is busy with other
 * work, the device got slower): the mean becomes the new normal and the limit grows again, instead
 * of starving the class (group commit needs writers in flight to batch them). */
static void release(hl_coord *c, int cls, uint64_t ns)
{
	if (!c->opt.max_inflight)
		return;
	limiter *l = &c->lim[cls];
	atomic_fetch_sub(&l->inflight, 1);
	if (!c->opt.adaptive)
		return;
	atomic_fetch_add_explicit(&l->win_sum_ns, ns, memory_order_relaxed);
	atomic_fetch_add_explicit(&l->win_n, 1, memory_order_relaxed);
	uint64_t now = hl_now_ns(), window = (uint64_t)c->opt.window_ms * 1000000u;
	if (now - atomic_load_explicit(&l->win_start_ns, memory_order_relaxed) < window)
		return;
	if (pthread_mutex_trylock(&l->mu) != 0)
		return;
	if (now - atomic_load(&l->win_start_ns) >= window) {
		uint64_t sum = atomic_exchange(&l->win_sum_ns, 0), n = atomic_exchange(&l->win_n, 0);
		atomic_store(&l->win_start_ns, now);
		if (n && l->settle) {
			l->settle--;
		} else if (n) {
			double mean = (double)sum / (double)n;
			if (l->low_ns == 0 || mean < l->low_ns)
				l->low_ns = mean;
			else
				l->low_ns += (mean - l->low_ns) * 0.01;
			double lo = l->floor, hi = c->opt.max_inflight;
			int congested = mean > c->opt.tolerance * l->low_ns;
			if (congested && l->cut_mean && mean > 0.9 * l->cut_mean && ++l->futile >= 2) {
				l->low_ns = mean; /* two cuts did not help: not our queue */
				congested = 0;
			} else if (congested && l->cut_mean && mean <= 0.9 * l->cut_mean) {
				l->futile = 0;
			}
			if (congested && !l->cut_mean && ++l->confirm < 2) {
				/* first congested window: wait for a second before cutting */
			} else if (congested) {
				l->limit_f = l->limit_f * 0.8 < lo ? lo : l->limit_f * 0.8;
				l->cut_mean = mean;
				l->settle = 1;
				l->confirm = 0;
				atomic_fetch_add(&l->decreases, 1);
			} else {
				l->cut_mean = 0;
				l->confirm = 0;
				l->futile = 0;
				if (l->limit_f < hi) {
					double step = l->limit_f / 8 < 1 ? 1 : l->limit_f / 8;
					l->limit_f = l->limit_f + step > hi ? hi : l->limit_f + step;
					atomic_fetch_add(&l->increases, 1);
				}
			}
			if ((int)l->limit_f != atomic_load(&l->limit))
				hl_log(HL_LOG_DEBUG, "admission: %s bound %d -> %d (window mean %.2f ms, normal %.2f ms)",
				       class_names[cls], atomic_load(&l->limit), (int)l->limit_f, mean / 1e6, l->low_ns / 1e6);
			atomic_store(&l->limit, (int)l->limit_f);
		}
	}
	pthread_mutex_unlock(&l->mu);
}

/* ---------- single-flight ---------- */

static void flight_free(flight *f)
{
	hl_buf_unref(f->buf);
	free(f);
}

static void unlink_flight(cshard *sh, flight *f)
{
	flight **pp = &sh->flights;
	while (*pp != f)
		pp = &(*pp)->next;
	*pp = f->next;
}

static int read_below(hl_coord *c, int kind, const hl_id *id, hl_buf **out)
{
	if ((kind == FL_GET_WHOLE || kind == FL_SCAN) && c->tier.ops->get_whole)
		return c->tier.ops->get_whole(c->tier.self, id, out);
	return c->tier.ops->get(c->tier.self, id, out);
}

/* The read or write below the L1, done once for every concurrent caller with the same kind and
 * id. A get's result buffer comes back in *out, a put's "newly stored" in *created (0 for the
 * callers that shared another's write). */
static int fly(hl_coord *c, int kind, const hl_id *id, const void *data, size_t len, hl_buf **out,
               int *created)
{
	int reads = kind != FL_PUT, cls = reads ? HL_CLASS_READ : HL_CLASS_WRITE;
	cshard *sh = shard_of(c, id);
	pthread_mutex_lock(&sh->mu);
	for (flight *f = sh->flights; f; f = f->next) {
		if (f->kind != kind || !hl_id_equal(&f->id, id))
			continue;
		f->waiters++;
		while (!f->done)
			pthread_cond_wait(&sh->cv, &sh->mu);
		int err = f->err;
		if (!err && out)
			*out = hl_buf_ref(f->buf);
		if (created)
			*created = 0;
		if (--f->waiters == 0)
			flight_free(f);
		pthread_mutex_unlock(&sh->mu);
		if (err == HL_NOTFOUND && reads) {
			/* The read began before this call; a put acknowledged in between must be seen.
			 * Misses are index lookups: cheap to repeat. */
			return read_below(c, kind, id, out);
		}
		atomic_fetch_add_explicit(&c->joined, 1, memory_order_relaxed);
		return err;
	}
	int err = admit(c, sh, cls);
	flight *f = err ? NULL : hl_calloc(1, sizeof(*f));
	if (!err && !f) {
		if (c->opt.max_inflight)
			sh->inflight[cls]--;
		pthread_mutex_unlock(&sh->mu);
		release(c, cls, 0);
		return ENOMEM;
	}
	if (err) {
		pthread_mutex_unlock(&sh->mu);
		return err;
	}
	f->id = *id;
	f->kind = kind;
	f->next = sh->flights;
	sh->flights = f;
	pthread_mutex_unlock(&sh->mu);

	uint64_t t0 = hl_ticks();
	hl_buf *b = NULL;
	if (reads) {
		err = read_below(c, kind, id, &b);
		if (!err && c->l1 && kind != FL_SCAN)
			hl_l1_put(c->l1, id, b); /* the tier verified it */
	} else {
		hl_put_item it = {.data = data, .len = len, .id = *id};
		err = c->tier.ops->put_batch(c->tier.self, &it, 1, 1);
		if (!err && created)
			*created = it.created;
	}
	uint64_t dt = hl_ticks_ns(hl_ticks() - t0);

	pthread_mutex_lock(&sh->mu);
	unlink_flight(sh, f);
	f->done = 1;
	f->err = err;
	if (c->opt.max_inflight)
		sh->inflight[cls]--;
	if (f->waiters) {
		f->buf = b ? hl_buf_ref(b) : NULL;
		pthread_cond_broadcast(&sh->cv);
	} else {
		flight_free(f);
	}
	pthread_mutex_unlock(&sh->mu);
	release(c, cls, dt);
	if (out)
		*out = b;
	else
		hl_buf_unref(b);
	return err;
}

/* ---------- operations ---------- */

/* A get the L1 did not answer (t0: when the call began). */
static int get_below(hl_coord *c, int kind, const hl_id *id, hl_buf **out, uint64_t t0)
{
	int err = fly(c, kind, id, NULL, 0, out, NULL);
	hl_metrics_record(&c->m, HL_OP_GET, HL_AT_BELOW, err, hl_ticks_ns(hl_ticks() - t0));
	return err;
}

static int get(hl_coord *c, int kind, const hl_id *id, hl_buf **out)
{
	uint64_t t0 = hl_ticks();
	if (c->l1 && hl_l1_get(c->l1, id, out) == 0) {
		hl_metrics_record(&c->m, HL_OP_GET, HL_AT_L1, 0, hl_ticks_ns(hl_ticks() - t0));
		return 0;
	}
	return get_below(c, kind, id, out, t0);
}

int hl_coord_get(hl_coord *c, const hl_id *id, hl_buf **out)
{
	return get(c, FL_GET, id, out);
}

int hl_coord_get_whole(hl_coord *c, const hl_id *id, hl_buf **out)
{
	return get(c, FL_GET_WHOLE, id, out);
}

int hl_coord_get_scan(hl_coord *c, const hl_id *id, hl_buf **out)
{
	return get(c, FL_SCAN, id, out);
}

int hl_coord_get_into(hl_coord *c, const hl_id *id, void *dst, size_t cap, size_t *len)
{
	uint64_t t0 = hl_ticks();
	hl_l1_pin pin;
	const uint8_t *data;
	if (c->l1 && hl_l1_borrow(c->l1, id, &pin, &data, len) == 0) { /* no reference taken */
		int err = *len > cap ? HL_TOOBIG : 0;
		if (!err && *len)
			memcpy(dst, data, *len);
		hl_l1_unpin(c->l1, &pin);
		hl_metrics_record(&c->m, HL_OP_GET, HL_AT_L1, 0, hl_ticks_ns(hl_ticks() - t0));
		return err;
	}
	hl_buf *b;
	int err = get_below(c, FL_GET, id, &b, t0);
	if (err)
		return err;
	*len = hl_buf_len(b);
	if (*len > cap)
		err = HL_TOOBIG;
	else if (*len)
		memcpy(dst, hl_buf_data(b), *len);
	hl_buf_unref(b);
	return err;
}

int hl_coord_has(hl_coord *c, const hl_id *id)
{
	uint64_t t0 = hl_ticks();
	int err = admit_global(c, HL_CLASS_HAS);
	if (!err) {
		err = c->tier.ops->has(c->tier.self, id);
		release(c, HL_CLASS_HAS, hl_ticks_ns(hl_ticks() - t0));
	}
	hl_metrics_record(&c->m, HL_OP_HAS, HL_AT_BELOW, err, hl_ticks_ns(hl_ticks() - t0));
	return err;
}

int hl_coord_put(hl_coord *c, const hl_id *expect, const void *data, size_t len, hl_id *id_out,
                 int *created)
{
	uint64_t t0 = hl_ticks();
	int err = 0, cr = 0;
	hl_id id;
	if (!data && len)
		err = HL_INVALID;
	else if (len > c->opt.max_object_size)
		err = HL_TOOBIG;
	if (!err) {
		hl_hash(data, len, &id); /* in the caller's thread; the tier trusts it */
		if (expect && !hl_id_equal(expect, &id))
			err = HL_MISMATCH;
	}
	if (!err)
		err = fly(c, FL_PUT, &id, data, len, NULL, &cr);
	if (!err) {
		if (id_out)
			*id_out = id;
		if (created)
			*created = cr;
	}
	hl_metrics_record(&c->m, HL_OP_PUT, HL_AT_BELOW, err, hl_ticks_ns(hl_ticks() - t0));
	return err;
}

typedef struct put_via {
	hl_put_like_fn fn; /* NULL: the tier's put_batch */
	void *self;
	const hl_id *const *bases;
} put_via;

static int put_batch(hl_coord *c, hl_put_item *items, size_t n, int hashed, const put_via *via);

int hl_coord_put_batch(hl_coord *c, hl_put_item *items, size_t n)
{
	return put_batch(c, items, n, 0, NULL);
}

int hl_coord_put_hashed(hl_coord *c, hl_put_item *items, size_t n)
{
	return put_batch(c, items, n, 1, NULL);
}

int hl_coord_put_like(hl_coord *c, hl_put_item *items, const hl_id *const *bases, size_t n,
                      hl_put_like_fn put_like, void *self)
{
	put_via via = {put_like, self, bases};
	return put_batch(c, items, n, 1, &via);
}

/* Checks every item (its data present, within the size bound) and, unless hashed, computes its
 * id (HL_MISMATCH when that differs from a check_id). */
static int check_items(const hl_coord *c, hl_put_item *items, size_t n, int hashed)
{
	int err = n && !items ? HL_INVALID : 0;
	for (size_t i = 0; !err && i < n; i++) {
		hl_put_item *it = &items[i];
		if (!it->data && it->len)
			err = HL_INVALID;
		else if (it->len > c->opt.max_object_size)
			err = HL_TOOBIG;
	}
	for (size_t i = 0; !err && !hashed && i < n; i++) {
		hl_id id;
		hl_hash(items[i].data, items[i].len, &id);
		if (items[i].check_id && !hl_id_equal(&id, &items[i].id))
			err = HL_MISMATCH;
		items[i].id = id;
	}
	return err;
}

int hl_coord_hash_items(const hl_coord *c, hl_put_item *items, size_t n)
{
	return check_items(c, items, n, 0);
}

static int put_batch(hl_coord *c, hl_put_item *items, size_t n, int hashed, const put_via *via)
{
	uint64_t t0 = hl_ticks();
	int err = check_items(c, items, n, hashed);
	for (size_t i = 0; i < n; i++)
		items[i].created = 0;
	if (!err && !(err = admit_global(c, HL_CLASS_WRITE))) {
		uint64_t t1 = hl_ticks();
		err = via ? via->fn(via->self, items, via->bases, n)
		          : c->tier.ops->put_batch(c->tier.self, items, n, 1);
		release(c, HL_CLASS_WRITE, hl_ticks_ns(hl_ticks() - t1));
	}
	hl_metrics_record(&c->m, HL_OP_BATCH, HL_AT_BELOW, err, hl_ticks_ns(hl_ticks() - t0));
	return err;
}

void hl_coord_note_corrupt(hl_coord *c, uint64_t n)
{
	atomic_fetch_add(&c->m.corrupt_noted, n);
}

/* ---------- life cycle ---------- */

static void health_tick(void *arg)
{
	hl_coord *c = arg;
	hl_metrics_health(&c->m, 0, NULL);
	if (!hl_pool_stopping(c->pool))
		hl_pool_submit(c->pool, c->opt.health_interval_ms, health_tick, c);
}

int hl_coord_new(hl_tier tier, hl_l1 *l1, const hl_coord_options *opt, hl_coord **out)
{
	*out = NULL;
	hl_ticks_init();
	hl_coord *c = hl_calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->tier = tier;
	c->l1 = l1;
	c->opt = *opt;
	if (!c->opt.min_inflight)
		c->opt.min_inflight = 4;
	if (c->opt.min_inflight > c->opt.max_inflight)
		c->opt.min_inflight = c->opt.max_inflight;
	if (!c->opt.shard_inflight)
		c->opt.shard_inflight = 64;
	if (!c->opt.window_ms)
		c->opt.window_ms = 100;
	if (c->opt.tolerance < 1.1)
		c->opt.tolerance = 3;
	if (!c->opt.max_object_size)
		c->opt.max_object_size = UINT64_MAX;
	int err = hl_metrics_init(&c->m, &c->opt.health);
	if (err) {
		free(c);
		return err;
	}
	c->m.stopped = opt->writes_stopped, c->m.stopped_ctx = opt->writes_stopped_ctx;
	c->shards = hl_aligned_alloc(64, HL_COORD_SHARDS * sizeof(cshard));
	if (!c->shards) {
		hl_metrics_destroy(&c->m);
		free(c);
		return ENOMEM;
	}
	memset(c->shards, 0, HL_COORD_SHARDS * sizeof(cshard));
	for (size_t i = 0; i < HL_COORD_SHARDS; i++) {
		pthread_mutex_init(&c->shards[i].mu, NULL);
		pthread_cond_init(&c->shards[i].cv, NULL);
	}
	uint64_t now = hl_now_ns();
	for (int k = 0; k < HL_CLASSES_; k++) {
		limiter *l = &c->lim[k];
		pthread_mutex_init(&l->mu, NULL);
		l->limit_f = c->opt.max_inflight;
		/* writers in flight are what group commit batches: keep at least a sixteenth of them */
		l->floor = c->opt.min_inflight;
		if (k == HL_CLASS_WRITE && l->floor < c->opt.max_inflight / 16.0)
			l->floor = c->opt.max_inflight / 16.0;
		atomic_init(&l->limit, (int)c->opt.max_inflight);
		atomic_init(&l->win_start_ns, now);
	}
	if (c->opt.health_interval_ms) {
		if (!(c->pool = hl_pool_new("helios-bg", 1))) {
			hl_coord_free(c);
			return ENOMEM;
		}
		hl_pool_submit(c->pool, c->opt.health_interval_ms, health_tick, c);
	}
	*out = c;
	return 0;
}

void hl_coord_free(hl_coord *c)
{
	if (!c)
		return;
	hl_pool_free(c->pool);
	for (size_t i = 0; i < HL_COORD_SHARDS; i++) {
		pthread_mutex_destroy(&c->shards[i].mu);
		pthread_cond_destroy(&c->shards[i].cv);
	}
	for (int k = 0; k < HL_CLASSES_; k++)
		pthread_mutex_destroy(&c->lim[k].mu);
	free(c->shards);
	hl_metrics_destroy(&c->m);
	free(c);
}

void hl_coord_stats_get(hl_coord *c, hl_coord_stats *out)
{
	memset(out, 0, sizeof(*out));
	out->joined = atomic_load(&c->joined);
	for (int op = 0; op < HL_OP_COUNT_; op++)
		out->busy += hl_metrics_count(&c->m, op, HL_M_BUSY);
	for (int k = 0; k < HL_CLASSES_; k++) {
		out->inflight[k] = (uint64_t)atomic_load(&c->lim[k].inflight);
		out->limit[k] = c->opt.max_inflight ? (uint64_t)atomic_load(&c->lim[k].limit) : 0;
		out->decreases += atomic_load(&c->lim[k].decreases);
		out->increases += atomic_load(&c->lim[k].increases);
	}
}

hl_metrics *hl_coord_metrics(hl_coord *c)
{
	return &c->m;
}
