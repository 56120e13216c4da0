/* test_agents.c — the fleet workload: 850 threads (one per agent) for a bounded time doing mixed
 * put / get / get_into / has / batch on overlapping ids through the public API, with a small L1
 * so it evicts. Every returned byte is compared with the object's known content; an acknowledged
 * object is never missing; the L1 never holds more than its byte bound; every buffer reference
 * is released at close; and after reopening every acknowledged object reads back.
 *
 * HELIOS_AGENTS (850) threads for HELIOS_AGENTS_SECONDS (3). Runs of a minute or more (make
 * stress) also sample the process's resident memory every 2 s and fail if it keeps growing. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "base/buf.h"
#include "base/clock.h"

enum { K = 4096, HOT = 64, BIG_EVERY = 97, BIG = 96 << 10, INTO_CAP = 32 << 10, BATCH = 8 };

static uint8_t *content[K];
static size_t clen[K];
static hl_id ids[K];
static atomic_uchar acked[K]; /* a put or batch that stored it returned 0 */

static hl_store *store;
static pthread_barrier_t start; /* agents begin together, once all exist */
static atomic_int stop;
static atomic_long ops, busy, wrong, missing, other_err, l1_over;

static void make_objects(void)
{
	for (int k = 0; k < K; k++) {
		uint64_t seed = (uint64_t)k * 2654435761u + 1;
		clen[k] = k % BIG_EVERY == 0 ? BIG : 64 + (size_t)(tu_rand(&seed) % (16 << 10));
		content[k] = malloc(clen[k]);
		tu_fill(&seed, content[k], clen[k]);
		hl_hash(content[k], clen[k], &ids[k]);
	}
}

static void check_bytes(int k, const void *data, size_t len)
{
	if (len != clen[k] || memcmp(data, content[k], len) != 0)
		atomic_fetch_add(&wrong, 1);
}

/* Counts the outcome of a call that may legitimately be refused or miss: a miss is wrong only
 * for an object acknowledged before the call began (was_acked). */
static void outcome(int was_acked, int err)
{
	if (err == HL_BUSY) {
		atomic_fetch_add(&busy, 1);
		usleep(200); /* back off like a client would */
	} else if (err == HL_NOTFOUND) {
		if (was_acked)
			atomic_fetch_add(&missing, 1);
	} else if (err) {
		fprintf(stderr, "unexpected: %s\n", hl_strerror(err));
		atomic_fetch_add(&other_err, 1);
	}
}

static void *agent(void *arg)
{
	uint64_t seed = (uint64_t)(uintptr_t)arg * 0x9e3779b97f4a7c15ull + 1;
	uint8_t *into = malloc(INTO_CAP);
	long n = 0;
	pthread_barrier_wait(&start);
	while (!atomic_load_explicit(&stop, memory_order_relaxed)) {
		unsigned r = (unsigned)(tu_rand(&seed) % 100);
		int k = (int)(tu_rand(&seed) % K);
		int err;
		if (r >= 85) /* the last 15%: gets from a hot set every agent reads */
			k = (int)(tu_rand(&seed) % HOT);
		int was = atomic_load(&acked[k]);
		if (r < 30 || r >= 85) {
			hl_buf *b;
			if ((err = hl_get(store, &ids[k], &b)) == 0) {
				check_bytes(k, hl_buf_data(b), hl_buf_len(b));
				hl_buf_unref(b);
			}
			outcome(was, err);
		} else if (r < 45) {
			size_t len = 0;
			err = hl_get_into(store, &ids[k], into, INTO_CAP, &len);
			if (err == 0)
				check_bytes(k, into, len);
			else if (err == HL_TOOBIG && len != clen[k])
				atomic_fetch_add(&wrong, 1);
			outcome(was, err == HL_TOOBIG ? 0 : err);
		} else if (r < 60) {
			hl_id id;
			if ((err = hl_put(store, content[k], clen[k], &id, NULL)) == 0) {
				if (!hl_id_equal(&id, &ids[k]))
					atomic_fetch_add(&wrong, 1);
				atomic_store(&acked[k], 1);
			}
			outcome(was, err);
		} else if (r < 72) {
			outcome(was, hl_has(store, &ids[k]));
		} else {
			hl_put_item it[BATCH];
			int ks[BATCH];
			for (int i = 0; i < BATCH; i++) {
				ks[i] = (int)(tu_rand(&seed) % K);
				it[i] = (hl_put_item){.data = content[ks[i]], .len = clen[ks[i]], .check_id = i % 2,
				                      .id = ids[ks[i]]};
			}
			if ((err = hl_put_batch(store, it, BATCH)) == 0)
				for (int i = 0; i < BATCH; i++) {
					if (!hl_id_equal(&it[i].id, &ids[ks[i]]))
						atomic_fetch_add(&wrong, 1);
					atomic_store(&acked[ks[i]], 1);
				}
			outcome(was, err);
		}
		n++;
	}
	atomic_fetch_add(&ops, n);
	free(into);
	return NULL;
}

/* Samples the L1's size against its bound and the process's resident memory. */
typedef struct monitor_arg {
	long rss_kb[1024];
	int nrss;
} monitor_arg;

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

static void *monitor(void *p)
{
	monitor_arg *m = p;
	uint64_t next_rss = hl_now_ns();
	while (!atomic_load(&stop)) {
		hl_stats st;
		if (hl_stats_get(store, &st) == 0 && st.l1_bytes > st.l1_capacity)
			atomic_fetch_add(&l1_over, 1);
		if (hl_now_ns() >= next_rss && m->nrss < 1024) {
			m->rss_kb[m->nrss++] = rss_kb();
			next_rss += 2000000000u;
		}
		usleep(20000);
	}
	return NULL;
}

static double mean(const long *v, int n)
{
	double s = 0;
	for (int i = 0; i < n; i++)
		s += (double)v[i];
	return n ? s / n : 0;
}

static void fleet(void **state)
{
	int threads = tu_env_int("HELIOS_AGENTS", 850);
	int seconds = tu_env_int("HELIOS_AGENTS_SECONDS", 3);
	char *dir = tu_tmpdir("agents");
	make_objects();
	hl_options o;
	hl_options_init(&o);
	o.l1_bytes = 4 << 20; /* small: the workload's objects do not fit, so it evicts all the time */
	o.l1_max_object = 64 << 10;
	o.max_inflight = 256;
	assert_int_equal(hl_open(dir, &o, &store), 0);

	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_t *th = calloc((size_t)threads, sizeof(pthread_t));
	monitor_arg *mon = calloc(1, sizeof(*mon));
	pthread_t mt;
	uint64_t t_create = hl_now_ns();
	pthread_barrier_init(&start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++)
		assert_int_equal(pthread_create(&th[i], &attr, agent, (void *)(uintptr_t)(i + 1)), 0);
	assert_int_equal(pthread_create(&mt, NULL, monitor, mon), 0);
	uint64_t t0 = hl_now_ns();
	pthread_barrier_wait(&start);
	while (hl_now_ns() - t0 < (uint64_t)seconds * 1000000000u)
		usleep(10000);
	atomic_store(&stop, 1);
	uint64_t t_stop = hl_now_ns();
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	pthread_join(mt, NULL);
	pthread_barrier_destroy(&start);
	printf("# threads created in %.2f s; stopped %.2f s after the stop flag\n",
	       (double)(t0 - t_create) / 1e9, (double)(hl_now_ns() - t_stop) / 1e9);
	double secs = (double)(hl_now_ns() - t0) / 1e9;

	hl_stats st;
	assert_int_equal(hl_stats_get(store, &st), 0);
	hl_latency lat[HL_OP_COUNT_];
	for (int op = 0; op < HL_OP_COUNT_; op++)
		assert_int_equal(hl_latency_get(store, op, HL_AT_ALL, &lat[op]), 0);
	printf("# %d agents, %.1f s: %ld ops (%.0f ops/s), %ld busy, L1 hit rate %.1f%%, %llu shared "
	       "reads/writes, %llu objects stored\n", threads, secs, atomic_load(&ops),
	       (double)atomic_load(&ops) / secs, atomic_load(&busy),
	       100.0 * (double)st.l1_hits / (double)(st.l1_hits + st.l1_misses + 1),
	       (unsigned long long)st.joined, (unsigned long long)st.objects);
	static const char *names[] = {"get", "has", "put", "batch"};
	for (int op = 0; op < HL_OP_COUNT_; op++)
		printf("#   %-5s n=%-8llu p50 %8.1f us  p99 %9.1f us  p999 %9.1f us\n", names[op],
		       (unsigned long long)lat[op].count, lat[op].p50_ns / 1e3, lat[op].p99_ns / 1e3,
		       lat[op].p999_ns / 1e3);
	hl_close(store);
	assert_int_equal(hl_buf_live(), 0); /* every reference handed out was released */
	long distinct = 0;
	for (int k = 0; k < K; k++)
		distinct += atomic_load(&acked[k]);
	assert_true(st.objects <= K); /* an object put by many agents at once is stored once */

	assert_int_equal(atomic_load(&wrong), 0);
	assert_int_equal(atomic_load(&missing), 0);
	assert_int_equal(atomic_load(&other_err), 0);
	assert_int_equal(atomic_load(&l1_over), 0);
	assert_true(atomic_load(&ops) > threads);

	/* Reopen: every acknowledged object is there and verifies. */
	store = tu_open(dir, HL_SYNC_ALWAYS, 0);
	long back = 0;
	for (int k = 0; k < K; k++) {
		if (!atomic_load(&acked[k]))
			continue;
		hl_buf *b;
		assert_int_equal(hl_get(store, &ids[k], &b), 0);
		check_bytes(k, hl_buf_data(b), hl_buf_len(b));
		hl_buf_unref(b);
		back++;
	}
	assert_int_equal(atomic_load(&wrong), 0);
	assert_int_equal(hl_stats_get(store, &st), 0);
	assert_int_equal(st.objects, distinct);
	printf("# reopened: %ld acknowledged objects read back verified\n", back);
	hl_close(store);

	if (seconds >= 60) { /* stress: resident memory must level off */
		int n = mon->nrss, skip = n / 4, third = (n - skip) / 3;
		printf("# RSS (KiB) every 2 s:");
		for (int i = 0; i < n; i++)
			printf(" %ld", mon->rss_kb[i]);
		printf("\n");
		double a = mean(mon->rss_kb + skip, third), b = mean(mon->rss_kb + skip + third, third),
		       c = mean(mon->rss_kb + skip + 2 * third, third);
		printf("# RSS means over the last three quarters: %.0f, %.0f, %.0f KiB\n", a, b, c);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
		printf("# (a sanitizer's own memory grows with history: RSS is not judged in this build)\n");
#else
		assert_false(b > a * 1.05 && c > b * 1.05); /* still growing at the end: a leak */
#endif
	}
	for (int k = 0; k < K; k++)
		free(content[k]);
	free(th);
	free(mon);
	pthread_attr_destroy(&attr);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(fleet)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
