/* bench_fleet.c — the 850-agent mixed workload of helios-bench: one thread per agent, closed loop,
 * no think time: 55% gets (half from a hot set of 64 objects every agent reads), 15% has, 15% puts
 * (half new 4 KiB objects, half existing ones), 15% batches of 8 (2 new). Run through the public
 * API on a durable store (sync=always, default options) and, in the same run, against the
 * baseline: one mutex over a hash table in memory, values copied (mtable.h), not durable.
 * Latency is measured by the clients; HL_BUSY refusals are counted and retried after an
 * exponential back-off. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/clock.h"
#include "base/hist.h"
#include "bench_fleet.h"
#include "mtable.h"

enum { K = 4096, HOT = 64, NEW_LEN = 4096, BATCH = 8, CLASSES = 4 };
static const char *class_names[CLASSES] = {"get", "has", "put", "batch"};

static uint8_t *content[K];
static size_t clen[K];
static hl_id ids[K];

typedef struct run {
	hl_store *store; /* or NULL: the baseline */
	mtable *mt;
	hl_hist *lat[CLASSES];
	pthread_barrier_t start;
	unsigned think_us; /* pause between an agent's calls */
	uint64_t salt;     /* makes each run's new objects new */
	atomic_int stop;
	atomic_long ops, busy;
} run;

typedef struct agent_arg {
	run *r;
	uint64_t seed;
} agent_arg;

static uint64_t rnd(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 2685821657736338717ull;
}

static void fill(uint64_t seed, uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i += 8) {
		uint64_t v = rnd(&seed);
		memcpy(p + i, &v, len - i < 8 ? len - i : 8);
	}
}

static int do_put(run *r, const void *d, size_t len)
{
	if (r->store)
		return hl_put(r->store, d, len, NULL, NULL);
	hl_id id;
	hl_hash(d, len, &id); /* the baseline addresses by content too */
	mt_put(r->mt, &id, d, len);
	return 0;
}

static void *agent(void *p)
{
	agent_arg *a = p;
	run *r = a->r;
	uint8_t *buf = malloc(64 << 10), (*fresh)[NEW_LEN] = malloc(BATCH * NEW_LEN);
	long n = 0;
	unsigned backoff_us = 500;
	pthread_barrier_wait(&r->start);
	while (!atomic_load_explicit(&r->stop, memory_order_relaxed)) {
		unsigned x = (unsigned)(rnd(&a->seed) % 100);
		int k = (int)(rnd(&a->seed) % (rnd(&a->seed) & 1 ? HOT : K)), cls, err = 0;
		uint64_t t0 = hl_now_ns();
		if (x < 55) {
			cls = 0;
			if (r->store) {
				hl_buf *b;
				if ((err = hl_get(r->store, &ids[k], &b)) == 0)
					hl_buf_unref(b);
			} else {
				size_t len;
				mt_get(r->mt, &ids[k], buf, 64 << 10, &len);
			}
		} else if (x < 70) {
			cls = 1;
			err = r->store ? hl_has(r->store, &ids[k]) : mt_has(r->mt, &ids[k]);
		} else if (x < 85) {
			cls = 2;
			if (x & 1) {
				fill(a->seed + (uint64_t)n, fresh[0], NEW_LEN);
				err = do_put(r, fresh[0], NEW_LEN);
			} else {
				err = do_put(r, content[k], clen[k]);
			}
		} else {
			cls = 3;
			hl_put_item it[BATCH];
			for (int i = 0; i < BATCH; i++) {
				int j = (int)(rnd(&a->seed) % K);
				if (i < 2)
					fill(a->seed + (uint64_t)n * BATCH + (uint64_t)i, fresh[i], NEW_LEN);
				it[i] = (hl_put_item){.data = i < 2 ? fresh[i] : content[j], .len = i < 2 ? NEW_LEN : clen[j]};
			}
			if (r->store) {
				err = hl_put_batch(r->store, it, BATCH);
			} else {
				for (int i = 0; i < BATCH; i++)
					hl_hash(it[i].data, it[i].len, &it[i].id);
				for (int i = 0; i < BATCH; i++)
					mt_put(r->mt, &it[i].id, it[i].data, it[i].len);
			}
		}
		if (err == HL_BUSY) { /* back off like a client should: 0.5 ms doubling to 64 ms */
			atomic_fetch_add_explicit(&r->busy, 1, memory_order_relaxed);
			usleep(backoff_us);
			backoff_us = backoff_us < 64000 ? backoff_us * 2 : backoff_us;
			continue;
		}
		backoff_us = 500;
		hl_hist_record(r->lat[cls], hl_now_ns() - t0);
		n++;
		if (r->think_us)
			usleep(r->think_us);
	}
	atomic_fetch_add(&r->ops, n);
	free(buf);
	free(fresh);
	return NULL;
}

typedef struct result {
	double ops_s;
	long busy;
	hl_latency lat[CLASSES];
} result;

static void fleet_run(run *r, int threads, double seconds, result *out)
{
	atomic_store(&r->stop, 0);
	atomic_store(&r->ops, 0);
	atomic_store(&r->busy, 0);
	for (int c = 0; c < CLASSES; c++)
		r->lat[c] = hl_hist_new();
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 << 10);
	pthread_t *th = calloc((size_t)threads, sizeof(pthread_t));
	agent_arg *args = calloc((size_t)threads, sizeof(agent_arg));
	pthread_barrier_init(&r->start, NULL, (unsigned)threads + 1);
	for (int i = 0; i < threads; i++) {
		args[i] = (agent_arg){r, ((uint64_t)i + r->salt) * 0x9e3779b97f4a7c15ull + 7};
		pthread_create(&th[i], &attr, agent, &args[i]);
	}
	pthread_barrier_wait(&r->start);
	uint64_t t0 = hl_now_ns();
	usleep((useconds_t)(seconds * 1e6));
	atomic_store(&r->stop, 1);
	for (int i = 0; i < threads; i++)
		pthread_join(th[i], NULL);
	double dt = (double)(hl_now_ns() - t0) / 1e9;
	out->ops_s = (double)atomic_load(&r->ops) / dt;
	out->busy = atomic_load(&r->busy);
	hl_hist_snap *s = malloc(sizeof(*s));
	for (int c = 0; c < CLASSES; c++) {
		hl_hist_snapshot(r->lat[c], s);
		out->lat[c] = (hl_latency){.count = s->count, .p50_ns = hl_hist_quantile(s, 0.5),
		                           .p99_ns = hl_hist_quantile(s, 0.99), .p999_ns = hl_hist_quantile(s, 0.999)};
		hl_hist_free(r->lat[c]);
	}
	free(s);
	pthread_barrier_destroy(&r->start);
	pthread_attr_destroy(&attr);
	free(th);
	free(args);
}

static void print_row(const char *name, const result *r)
{
	printf("| %-26s | %10.0f |", name, r->ops_s);
	for (int c = 0; c < CLASSES; c++)
		printf(" %7.1f / %8.1f / %8.1f |", r->lat[c].p50_ns / 1e3, r->lat[c].p99_ns / 1e3,
		       r->lat[c].p999_ns / 1e3);
	printf(" %8ld |\n", r->busy);
}

void bench_fleet(const char *base_dir, int threads, double seconds)
{
	printf("\n### %d agents, mixed workload, %.0f s each (closed loop, no think time)\n\n", threads, seconds);
	for (int k = 0; k < K; k++) {
		clen[k] = 64 + (size_t)(k * 7919 % (16 << 10));
		content[k] = malloc(clen[k]);
		fill((uint64_t)k + 1, content[k], clen[k]);
		hl_hash(content[k], clen[k], &ids[k]);
	}
	char dir[512];
	snprintf(dir, sizeof dir, "%s/helios-fleet-XXXXXX", base_dir);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return;
	}
	run *h = calloc(1, sizeof(*h)), *b = calloc(1, sizeof(*b));
	if (hl_open(dir, NULL, &h->store) != 0) {
		fprintf(stderr, "cannot open %s\n", dir);
		return;
	}
	b->mt = mt_new();
	for (int k = 0; k < K; k++) { /* the objects exist: the agents work on a shared repository */
		hl_put(h->store, content[k], clen[k], NULL, NULL);
		mt_put(b->mt, &ids[k], content[k], clen[k]);
	}
	printf("| %-26s | %10s |", "µs p50 / p99 / p999", "ops/s");
	for (int c = 0; c < CLASSES; c++)
		printf(" %-28s |", class_names[c]);
	printf(" %8s |\n|----------------------------|------------|------------------------------|"
	       "------------------------------|------------------------------|------------------------------|----------|\n", "busy");
	static const unsigned think[] = {0, 1000};
	for (int t = 0; t < 2; t++) {
		result rh, rb;
		h->think_us = b->think_us = think[t];
		h->salt = b->salt = (uint64_t)(t + 1) << 32;
		hl_stats s0, s1;
		hl_stats_get(h->store, &s0);
		fleet_run(b, threads, seconds, &rb);
		fleet_run(h, threads, seconds, &rh);
		hl_stats_get(h->store, &s1);
		char name[64];
		snprintf(name, sizeof name, "helios, think %u µs", think[t]);
		print_row(name, &rh);
		snprintf(name, sizeof name, "mutex table, think %u µs", think[t]);
		print_row(name, &rb);
		uint64_t hits = s1.l1_hits - s0.l1_hits, misses = s1.l1_misses - s0.l1_misses;
		printf("| %-26s | %9.2fx | L1 hit rate %5.1f%%; %llu calls shared a read or write; %llu group commits\n",
		       "helios / mutex table", rh.ops_s / rb.ops_s, 100.0 * (double)hits / (double)(hits + misses + 1),
		       (unsigned long long)(s1.joined - s0.joined), (unsigned long long)(s1.commits - s0.commits));
	}
	printf("\nhelios is durable (sync=always, group commit); the mutex table keeps copies in memory only.\n"
	       "Seed floor: 10,000 ops/s. With no think time 850 runnable threads share the cores, so a\n"
	       "writer woken after its sync waits for the run queue: the write tail is the scheduler's.\n");
	hl_close(h->store);
	mt_free(b->mt);
	free(h);
	free(b);
	for (int k = 0; k < K; k++)
		free(content[k]);
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", dir);
}
