/* test_coord.c — the coordinator against a backend of the test's own that counts its calls and is
 * slowed on purpose: single-flight of gets and puts, admission under overload (HL_BUSY at once)
 * and the limiter's recovery, health alerts raised and cleared, the worker pool, the latency
 * histogram's buckets and the Prometheus text. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "base/buf.h"
#include "base/clock.h"
#include "base/hist.h"
#include "base/log.h"
#include "coord/coord.h"
#include "coord/pool.h"

/* ---- the test backend: every id is present; its content is the id's 32 bytes repeated ---- */
typedef struct fake {
	atomic_int gets, puts, has, active;
	atomic_uint delay_us;   /* each call sleeps this long ... */
	unsigned per_active_us; /* ... plus this for every call in progress (an overloaded backend) */
	atomic_int fail_gets;   /* gets return EIO while set */
} fake;

static void fake_wait(fake *f)
{
	int n = atomic_fetch_add(&f->active, 1) + 1;
	usleep(atomic_load(&f->delay_us) + f->per_active_us * (unsigned)n);
	atomic_fetch_sub(&f->active, 1);
}

static int f_get(void *self, const hl_id *id, hl_buf **out)
{
	fake *f = self;
	atomic_fetch_add(&f->gets, 1);
	fake_wait(f);
	if (atomic_load(&f->fail_gets))
		return EIO;
	hl_buf *b = hl_buf_alloc(256);
	for (int i = 0; i < 256; i++)
		hl_buf_wdata(b)[i] = id->b[i % 32];
	*out = b;
	return 0;
}
static int f_has(void *self, const hl_id *id)
{
	atomic_fetch_add(&((fake *)self)->has, 1);
	return 0;
}
static int f_put(void *self, hl_put_item *items, size_t n, int trusted)
{
	fake *f = self;
	atomic_fetch_add(&f->puts, 1);
	fake_wait(f);
	for (size_t i = 0; i < n; i++)
		items[i].created = 1;
	return 0;
}
static const hl_tier_ops fake_ops = {.name = "fake", .get = f_get, .has = f_has, .put_batch = f_put};

static hl_coord *new_coord(fake *f, hl_l1 *l1, unsigned max_inflight)
{
	hl_coord_options o = {.max_inflight = max_inflight, .min_inflight = 2, .adaptive = 1, .window_ms = 50};
	hl_coord *c;
	assert_int_equal(hl_coord_new((hl_tier){&fake_ops, f}, l1, &o, &c), 0);
	return c;
}

static hl_id id_of(uint64_t k)
{
	hl_id id;
	hl_hash(&k, sizeof k, &id);
	return id;
}

/* ---- single-flight ---- */
typedef struct sf_arg {
	hl_coord *c;
	pthread_barrier_t *bar;
	hl_id id;
	const char *data;
	int err, created;
	hl_buf *buf;
} sf_arg;

static void *sf_get(void *p)
{
	sf_arg *a = p;
	pthread_barrier_wait(a->bar);
	a->err = hl_coord_get(a->c, &a->id, &a->buf);
	return NULL;
}

static void *sf_put(void *p)
{
	sf_arg *a = p;
	pthread_barrier_wait(a->bar);
	a->err = hl_coord_put(a->c, NULL, a->data, strlen(a->data), &a->id, &a->created);
	return NULL;
}

enum { N = 32 };

static void run_all(void *(*fn)(void *), sf_arg *a, int n)
{
	pthread_t th[N];
	for (int i = 0; i < n; i++)
		assert_int_equal(pthread_create(&th[i], NULL, fn, &a[i]), 0);
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

static void single_flight_get(void **state)
{
	fake f = {.delay_us = 1000000}; /* the one read takes 1 s: every caller arrives during it */
	hl_l1 *l1 = hl_l1_new(1 << 20, 1 << 20, HL_L1_SIEVE, 2);
	hl_coord *c = new_coord(&f, l1, 1024);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, N);
	sf_arg a[N];
	hl_id id = id_of(7);
	for (int i = 0; i < N; i++)
		a[i] = (sf_arg){.c = c, .bar = &bar, .id = id};
	run_all(sf_get, a, N);
	assert_int_equal(atomic_load(&f.gets), 1);
	for (int i = 0; i < N; i++) {
		assert_int_equal(a[i].err, 0);
		assert_int_equal(hl_buf_len(a[i].buf), 256);
		assert_memory_equal(hl_buf_data(a[i].buf), id.b, 32);
		assert_ptr_equal(a[i].buf, a[0].buf); /* one buffer, shared by reference */
		hl_buf_unref(a[i].buf);
	}
	hl_coord_stats st;
	hl_coord_stats_get(c, &st);
	assert_int_equal(st.joined, N - 1);
	/* A later get is an L1 hit: still one backend read. */
	hl_buf *b;
	assert_int_equal(hl_coord_get(c, &id, &b), 0);
	hl_buf_unref(b);
	assert_int_equal(atomic_load(&f.gets), 1);
	/* A failed read is shared as well, and not cached. */
	atomic_store(&f.fail_gets, 1);
	hl_id other = id_of(8);
	for (int i = 0; i < N; i++)
		a[i] = (sf_arg){.c = c, .bar = &bar, .id = other};
	run_all(sf_get, a, N);
	assert_int_equal(atomic_load(&f.gets), 2);
	for (int i = 0; i < N; i++)
		assert_int_equal(a[i].err, EIO);
	atomic_store(&f.fail_gets, 0);
	assert_int_equal(hl_coord_get(c, &other, &b), 0);
	hl_buf_unref(b);
	assert_int_equal(atomic_load(&f.gets), 3);
	pthread_barrier_destroy(&bar);
	hl_coord_free(c);
	hl_l1_free(l1);
}

static void single_flight_put(void **state)
{
	fake f = {.delay_us = 1000000};
	hl_coord *c = new_coord(&f, NULL, 1024);
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, N);
	sf_arg a[N];
	for (int i = 0; i < N; i++) /* two different objects, 16 callers each */
		a[i] = (sf_arg){.c = c, .bar = &bar, .data = i % 2 ? "object one" : "object two"};
	run_all(sf_put, a, N);
	assert_int_equal(atomic_load(&f.puts), 2);
	int created = 0;
	for (int i = 0; i < N; i++) {
		assert_int_equal(a[i].err, 0);
		hl_id want;
		hl_hash(a[i].data, strlen(a[i].data), &want);
		assert_true(hl_id_equal(&a[i].id, &want));
		created += a[i].created;
	}
	assert_int_equal(created, 2); /* the two writers; the 30 that shared a write report 0 */
	/* a wrong expected id is refused before the backend */
	hl_id wrong = id_of(1);
	assert_int_equal(hl_coord_put(c, &wrong, "x", 1, NULL, NULL), HL_MISMATCH);
	assert_int_equal(atomic_load(&f.puts), 2);
	pthread_barrier_destroy(&bar);
	hl_coord_free(c);
}

/* ---- admission ---- */
typedef struct load_arg {
	hl_coord *c;
	atomic_int *stop;
	uint64_t seed;
	long ok, busy;
	uint64_t busy_ns[4096];
	int nbusy_ns;
} load_arg;

static void *load(void *p)
{
	load_arg *a = p;
	while (!atomic_load(a->stop)) {
		hl_id id = id_of(tu_rand(&a->seed));
		hl_buf *b;
		uint64_t t0 = hl_now_ns();
		int err = hl_coord_get(a->c, &id, &b);
		if (err == HL_BUSY) {
			if (a->nbusy_ns < 4096)
				a->busy_ns[a->nbusy_ns++] = hl_now_ns() - t0;
			a->busy++;
			usleep(1000); /* a well-behaved client backs off */
			continue;
		}
		assert_int_equal(err, 0);
		hl_buf_unref(b);
		a->ok++;
	}
	return NULL;
}

static int cmp_u64(const void *x, const void *y)
{
	uint64_t a = *(const uint64_t *)x, b = *(const uint64_t *)y;
	return a < b ? -1 : a > b;
}

static void admission(void **state)
{
	/* Each backend read takes 1 ms plus 5 ms per read in progress: concurrency only adds latency,
	 * and so much of it (32 in flight: 161 ms against 6 ms alone) that a starved machine's noise
	 * in the unloaded figure cannot hide the congestion. */
	fake f = {.delay_us = 1000, .per_active_us = 5000};
	hl_coord *c = new_coord(&f, NULL, 32);
	atomic_int stop = 0;
	/* light load: the limiter learns the backend's unloaded latency */
	load_arg *one = calloc(1, sizeof(*one));
	*one = (load_arg){.c = c, .stop = &stop, .seed = 1};
	pthread_t th[64];
	pthread_create(&th[0], NULL, load, one);
	usleep(300000);
	atomic_store(&stop, 1);
	pthread_join(th[0], NULL);
	assert_int_equal(one->busy, 0);

	/* overload: 64 clients */
	enum { T = 64 };
	load_arg *a = calloc(T, sizeof(*a));
	atomic_store(&stop, 0);
	for (int i = 0; i < T; i++) {
		a[i] = (load_arg){.c = c, .stop = &stop, .seed = (uint64_t)i + 100};
		pthread_create(&th[i], NULL, load, &a[i]);
	}
	uint64_t min_limit = 32; /* the lowest bound seen while overloaded */
	hl_coord_stats st;
	/* 1.5 s at least; on a starved machine (sanitizers, a busy CI host) up to 8 s for the bound
	 * to come down, since scheduling noise can make the limiter's first cuts look futile */
	for (int i = 0; i < 800 && (i < 150 || min_limit == 32); i++) {
		usleep(10000);
		hl_coord_stats_get(c, &st);
		if (st.limit[HL_CLASS_READ] < min_limit)
			min_limit = st.limit[HL_CLASS_READ];
	}
	atomic_store(&stop, 1);
	long busy = 0, ok = 0;
	static uint64_t lat[T * 4096];
	size_t nlat = 0;
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		busy += a[i].busy;
		ok += a[i].ok;
		memcpy(lat + nlat, a[i].busy_ns, (size_t)a[i].nbusy_ns * sizeof(uint64_t));
		nlat += (size_t)a[i].nbusy_ns;
	}
	hl_coord_stats_get(c, &st);
	printf("# overload: %ld ok, %ld busy; read limit went down to %llu, now %llu (%llu decreases)\n", ok,
	       busy, (unsigned long long)min_limit, (unsigned long long)st.limit[HL_CLASS_READ],
	       (unsigned long long)st.decreases);
	assert_true(busy > 0);
	assert_true(ok > 0);
#if !defined(__SANITIZE_THREAD__)
	/* latency grew with concurrency: the bound came down. Not judged under TSan: there, with 64
	 * threads on a busy 2-core machine, scheduling rather than the backend sets the latency (even
	 * the one-client phase sees "congested" windows), so the limiter rightly calls its cuts futile
	 * ("not our queue"); TSan runs this test for races, the other builds for the adaptation. */
	assert_true(st.decreases > 0);
	assert_true(min_limit < 32);
#endif
	qsort(lat, nlat, sizeof lat[0], cmp_u64);
	printf("# HL_BUSY returned in: median %.1f us, p99 %.1f us (a backend read takes >= 6 ms)\n",
	       (double)lat[nlat / 2] / 1e3, (double)lat[nlat * 99 / 100] / 1e3);
	assert_true(lat[nlat / 2] < 1000000); /* refusals do not wait for the backend */

	/* load drops to one client: latency is back to normal and the limit climbs again */
	atomic_store(&stop, 0);
	*one = (load_arg){.c = c, .stop = &stop, .seed = 7};
	pthread_create(&th[0], NULL, load, one);
	uint64_t limit = 0;
	for (int i = 0; i < 100 && limit < 24; i++) {
		usleep(100000);
		hl_coord_stats_get(c, &st);
		limit = st.limit[HL_CLASS_READ];
	}
	atomic_store(&stop, 1);
	pthread_join(th[0], NULL);
	printf("# recovered: read limit %llu after the load dropped\n", (unsigned long long)limit);
	assert_true(limit >= 24);
	assert_int_equal(one->busy, 0);
	free(one);
	free(a);
	hl_coord_free(c);
}

/* A backend that becomes slower for every call alike (not from our own queue): the limiter tries a
 * cut, sees it change nothing, learns the new latency and gives the bound back. */
static void limiter_learns_a_slower_backend(void **state)
{
	fake f = {.delay_us = 1000};
	hl_coord *c = new_coord(&f, NULL, 32);
	atomic_int stop = 0;
	enum { T = 16 };
	load_arg *a = calloc(T, sizeof(*a));
	pthread_t th[T];
	for (int i = 0; i < T; i++) {
		a[i] = (load_arg){.c = c, .stop = &stop, .seed = (uint64_t)i + 1};
		pthread_create(&th[i], NULL, load, &a[i]);
	}
	usleep(400000);
	atomic_store(&f.delay_us, 20000); /* 20 times slower, however few calls are in flight */
	usleep(2000000);
	atomic_store(&stop, 1);
	for (int i = 0; i < T; i++)
		pthread_join(th[i], NULL);
	hl_coord_stats st;
	hl_coord_stats_get(c, &st);
	printf("# after the backend slowed down: read limit %llu (%llu decreases, %llu increases)\n",
	       (unsigned long long)st.limit[HL_CLASS_READ], (unsigned long long)st.decreases,
	       (unsigned long long)st.increases);
	assert_true(st.limit[HL_CLASS_READ] >= 24); /* not starved: 16 clients always fit */
	free(a);
	hl_coord_free(c);
}

/* A fixed (non-adaptive) bound is never exceeded: the backend never sees more than it. */
static atomic_int peak;
static int p_get(void *self, const hl_id *id, hl_buf **out)
{
	fake *f = self;
	int n = atomic_fetch_add(&f->active, 1) + 1;
	int p = atomic_load(&peak);
	while (n > p && !atomic_compare_exchange_weak(&peak, &p, n))
		;
	usleep(2000);
	atomic_fetch_sub(&f->active, 1);
	*out = hl_buf_alloc(1);
	return 0;
}
static const hl_tier_ops peak_ops = {.name = "peak", .get = p_get, .has = f_has, .put_batch = f_put};

static void bound_holds(void **state)
{
	fake f = {0};
	hl_coord_options o = {.max_inflight = 8, .shard_inflight = 64};
	hl_coord *c;
	assert_int_equal(hl_coord_new((hl_tier){&peak_ops, &f}, NULL, &o, &c), 0);
	atomic_int stop = 0;
	load_arg *a = calloc(32, sizeof(*a));
	pthread_t th[32];
	for (int i = 0; i < 32; i++) {
		a[i] = (load_arg){.c = c, .stop = &stop, .seed = (uint64_t)i + 1};
		pthread_create(&th[i], NULL, load, &a[i]);
	}
	usleep(400000);
	atomic_store(&stop, 1);
	for (int i = 0; i < 32; i++)
		pthread_join(th[i], NULL);
	assert_true(atomic_load(&peak) <= 8);
	assert_true(atomic_load(&peak) >= 2);
	free(a);
	hl_coord_free(c);
}

/* ---- health ---- */
static char logged[8][256];
static int nlogged;
static void capture(int level, const char *line)
{
	if (nlogged < 8)
		snprintf(logged[nlogged++], sizeof logged[0], "%s", line);
}

static void health_alerts(void **state)
{
	fake f = {0};
	hl_coord *c = new_coord(&f, NULL, 1024);
	hl_metrics *m = hl_coord_metrics(c);
	hl_log_set_sink(capture);
	hl_health h;
	hl_metrics_health(m, 0, &h);
	assert_int_equal(h.score, 100);
	atomic_store(&f.fail_gets, 1);
	for (uint64_t k = 0; k < 50; k++) {
		hl_id id = id_of(k);
		hl_buf *b;
		assert_int_equal(hl_coord_get(c, &id, &b), EIO);
	}
	hl_metrics_health(m, 0, &h);
	assert_true(h.score < 50);
	assert_int_equal(h.level, HL_HEALTH_UNHEALTHY);
	assert_int_equal(h.alerts, 1);
	assert_non_null(strstr(h.reason, "error rate 100.0%"));
	assert_int_equal(nlogged, 1);
	assert_non_null(strstr(logged[0], "health unhealthy"));
	atomic_store(&f.fail_gets, 0);
	for (uint64_t k = 0; k < 50; k++) {
		hl_id id = id_of(k);
		hl_buf *b;
		assert_int_equal(hl_coord_get(c, &id, &b), 0);
		hl_buf_unref(b);
	}
	hl_metrics_health(m, 0, &h);
	assert_int_equal(h.score, 100);
	assert_int_equal(h.alerts, 2);
	assert_int_equal(nlogged, 2);
	assert_non_null(strstr(logged[1], "health back to ok"));
	/* corruption found by a verify run weighs on health for minutes */
	hl_coord_note_corrupt(c, 1);
	hl_metrics_health(m, 0, &h);
	assert_int_equal(h.score, 70);
	assert_int_equal(h.level, HL_HEALTH_DEGRADED);
	assert_non_null(strstr(h.reason, "corruption"));
	hl_log_set_sink(NULL);
	hl_coord_free(c);
}

/* ---- pool ---- */
typedef struct pool_arg {
	atomic_int *order, *done;
	int ran_at;
	char name[16];
} pool_arg;

static void task(void *p)
{
	pool_arg *a = p;
	a->ran_at = atomic_fetch_add(a->order, 1) + 1;
	pthread_getname_np(pthread_self(), a->name, sizeof a->name);
	atomic_fetch_add(a->done, 1); /* publishes ran_at and name */
}

static void pool_runs_in_due_order_and_stops(void **state)
{
	hl_pool *p = hl_pool_new("tpool", 1);
	assert_non_null(p);
	atomic_int order = 0, done = 0;
	pool_arg a[4];
	for (int i = 0; i < 4; i++)
		a[i] = (pool_arg){.order = &order, .done = &done};
	assert_int_equal(hl_pool_submit(p, 200, task, &a[0]), 0);
	assert_int_equal(hl_pool_submit(p, 100, task, &a[1]), 0);
	assert_int_equal(hl_pool_submit(p, 0, task, &a[2]), 0);
	assert_int_equal(hl_pool_submit(p, 60000, task, &a[3]), 0); /* never due: dropped at stop */
	for (int i = 0; i < 200 && atomic_load(&done) < 3; i++)
		usleep(10000);
	assert_int_equal(a[2].ran_at, 1);
	assert_int_equal(a[1].ran_at, 2);
	assert_int_equal(a[0].ran_at, 3);
	assert_string_equal(a[0].name, "tpool-0");
	hl_pool_free(p);
	assert_int_equal(a[3].ran_at, 0);
	assert_null(hl_pool_new("much-too-long-name", 1));
}

/* ---- histograms and exposition ---- */
static void hist_buckets(void **state)
{
	uint64_t vals[] = {0, 1, 99, 100, 109, 110, 999, 1000, 1234, 99999, 1000000, 123456789,
	                   99999999999ull, 100000000000ull, UINT64_MAX};
	for (size_t i = 0; i < sizeof vals / sizeof vals[0]; i++) {
		size_t b = hl_hist_bucket(vals[i]);
		assert_true(b < HL_HIST_BUCKETS);
		assert_true(vals[i] <= hl_hist_upper(b));
		if (b > 0)
			assert_true(vals[i] > hl_hist_upper(b - 1));
		if (vals[i] >= 100 && b < HL_HIST_BUCKETS - 1) /* at most 10% wide */
			assert_true(hl_hist_upper(b) - vals[i] <= vals[i] / 10);
	}
	for (size_t b = 1; b < HL_HIST_BUCKETS; b++)
		assert_true(hl_hist_upper(b) > hl_hist_upper(b - 1));
	hl_hist *h = hl_hist_new();
	for (uint64_t v = 1; v <= 10000; v++)
		hl_hist_record(h, v * 1000); /* 1 µs .. 10 ms uniformly */
	hl_hist_snap *s = malloc(sizeof(*s));
	hl_hist_snapshot(h, s);
	assert_int_equal(s->count, 10000);
	uint64_t p50 = hl_hist_quantile(s, 0.5), p99 = hl_hist_quantile(s, 0.99);
	assert_true(p50 >= 5000000 && p50 <= 5500000);
	assert_true(p99 >= 9900000 && p99 <= 10900000);
	assert_int_equal(hl_hist_count_le(s, 999999), 999); /* 1..999 µs */
	free(s);
	hl_hist_free(h);

	/* the interval stamps the histograms are fed with agree with the monotonic clock */
	hl_ticks_init();
	uint64_t a0 = hl_now_ns(), k0 = hl_ticks(), a1 = hl_now_ns();
	usleep(50000);
	uint64_t b0 = hl_now_ns(), k1 = hl_ticks(), b1 = hl_now_ns();
	uint64_t by_ticks = hl_ticks_ns(k1 - k0); /* must lie between the clock's inner and outer spans */
	assert_true(by_ticks >= (b0 - a1) * 98 / 100 && by_ticks <= (b1 - a0) * 102 / 100);
}

static void prometheus_text(void **state)
{
	fake f = {0};
	hl_coord *c = new_coord(&f, NULL, 1024);
	hl_id id = id_of(1);
	hl_buf *b;
	assert_int_equal(hl_coord_get(c, &id, &b), 0);
	hl_buf_unref(b);
	assert_int_equal(hl_coord_has(c, &id), 0);
	hl_text t = {0};
	hl_metrics_prometheus(hl_coord_metrics(c), &t);
	assert_false(t.oom);
	assert_non_null(strstr(t.p, "helios_ops_total{op=\"get\",result=\"ok\"} 1\n"));
	assert_non_null(strstr(t.p, "helios_ops_total{op=\"has\",result=\"ok\"} 1\n"));
	assert_non_null(strstr(t.p, "helios_op_duration_seconds_count{op=\"get\",at=\"below\"} 1\n"));
	assert_non_null(strstr(t.p, "helios_op_duration_seconds_bucket{op=\"get\",at=\"below\",le=\"+Inf\"} 1\n"));
	assert_non_null(strstr(t.p, "# TYPE helios_op_duration_seconds histogram\n"));
	assert_non_null(strstr(t.p, "helios_health_score 100\n"));
	free(t.p);
	hl_coord_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(single_flight_get),
		cmocka_unit_test(single_flight_put),
		cmocka_unit_test(admission),
		cmocka_unit_test(limiter_learns_a_slower_backend),
		cmocka_unit_test(bound_holds),
		cmocka_unit_test(health_alerts),
		cmocka_unit_test(pool_runs_in_due_order_and_stops),
		cmocka_unit_test(hist_buckets),
		cmocka_unit_test(prometheus_text),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
