/* bench_store.c — `make bench`: the durable store against raw baselines measured in the same run
 * (pwrite + fdatasync per object, 64 pwrites + one fdatasync, BLAKE3 alone, pread). Every figure
 * is the median of several runs with its spread (min..max), and a ratio helios / baseline.
 * Options: --quick (fewer runs), --dir DIR (default $TMPDIR or /tmp: use the disk you deploy on),
 * --scale N,N,... (store sizes of the scale table, default 10000,1000000,10000000; 0 skips it). */
#include <blake3.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <ftw.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "helios.h"
#include "bench_l1.h"
#include "bench_fleet.h"
#include "api/api.h"
#include "cache/l2.h"
#include "dedup/chunker.h"
#include "s3/spawn.h"

static int runs = 7;
static const char *base_dir;
static uint64_t rng = 88172645463325252ull;

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void fill(void *buf, size_t len)
{
	uint8_t *p = buf;
	for (size_t i = 0; i < len; i += 8) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		memcpy(p + i, &rng, len - i < 8 ? len - i : 8);
	}
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

typedef struct stat3 {
	double med, lo, hi;
} stat3;

static stat3 summarize(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return (stat3){v[n / 2], v[0], v[n - 1]};
}

/* A measurement: fn runs one round of `ops` operations and returns its seconds. */
typedef double (*round_fn)(void *ctx, int ops);

static stat3 measure(round_fn fn, void *ctx, int ops)
{
	double v[64];
	sync(); /* start clean: dirty pages left by an earlier row would throttle this one */
	fn(ctx, ops > 4 ? ops / 4 : 1); /* warm-up */
	for (int r = 0; r < runs; r++)
		v[r] = fn(ctx, ops) / ops * 1e6; /* µs per op */
	return summarize(v, runs);
}

/* Measures helios and its baseline in alternating rounds (the order flips every round), so disk
 * drift and write-back from one side land on both sides alike. */
static void measure_pair(round_fn hf, void *hc, round_fn bf, void *bc, int ops, stat3 *h, stat3 *b)
{
	double hv[64], bv[64];
	sync();
	hf(hc, ops > 4 ? ops / 4 : 1); /* warm-up */
	bf(bc, ops > 4 ? ops / 4 : 1);
	for (int r = 0; r < runs; r++) {
		sync();
		if (r % 2) {
			bv[r] = bf(bc, ops) / ops * 1e6;
			hv[r] = hf(hc, ops) / ops * 1e6;
		} else {
			hv[r] = hf(hc, ops) / ops * 1e6;
			bv[r] = bf(bc, ops) / ops * 1e6;
		}
	}
	*h = summarize(hv, runs);
	*b = summarize(bv, runs);
}

static void row(const char *what, stat3 h, const char *base, stat3 b, const char *target)
{
	printf("| %-44s | %9.2f (%.2f..%.2f) | %-26s | %9.2f (%.2f..%.2f) | %5.2fx | %-10s |\n", what, h.med,
	       h.lo, h.hi, base, b.med, b.lo, b.hi, h.med / b.med, target);
	fflush(stdout);
}

static void header(const char *title)
{
	printf("\n### %s\n\n", title);
	printf("| %-44s | %-26s | %-26s | %-26s | %-6s | %-10s |\n", "helios (µs/op, median (min..max))", "", "baseline", "", "ratio", "target");
	printf("|%s|%s|%s|%s|%s|%s|\n", "----------------------------------------------", "----------------------------",
	       "----------------------------", "----------------------------", "--------", "------------");
}

static int rm_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st; (void)f; (void)w;
	return remove(p);
}

/* Reads a file whole, so its pages are in the page cache. */
static int read_one(const char *p, const struct stat *st, int f, struct FTW *w)
{
	(void)st, (void)w;
	static char buf[1 << 20];
	int fd = f == FTW_F ? open(p, O_RDONLY) : -1;
	while (fd >= 0 && read(fd, buf, sizeof buf) > 0) {
	}
	if (fd >= 0)
		close(fd);
	return 0;
}

static char *fresh_dir(const char *tag)
{
	char *p = malloc(4096);
	snprintf(p, 4096, "%s/helios-bench-%s-XXXXXX", base_dir, tag);
	if (!mkdtemp(p)) {
		perror(p);
		exit(1);
	}
	return p;
}

static void drop_dir(char *p)
{
	nftw(p, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(p);
}

/* ---------- raw baselines ---------- */

typedef struct raw {
	int fd;
	uint64_t off;
	size_t size, batch;
	int sync;
	uint8_t *buf;
} raw;

static double raw_round(void *p, int ops)
{
	raw *r = p;
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		for (size_t j = 0; j < r->batch; j++) {
			uint8_t *b = r->buf + j * r->size; /* distinct bytes per object, as helios writes */
			fill(b, 64);
			if (pwrite(r->fd, b, r->size, (off_t)r->off) != (ssize_t)r->size)
				abort();
			r->off += r->size;
		}
		if (r->sync)
			fdatasync(r->fd);
	}
	return now_s() - t;
}

static raw *raw_open(const char *dir, size_t size, size_t batch, int sync)
{
	raw *r = calloc(1, sizeof *r);
	char p[4200];
	snprintf(p, sizeof p, "%s/raw", dir);
	r->fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0644);
	r->size = size;
	r->batch = batch;
	r->sync = sync;
	r->buf = malloc(size * batch);
	fill(r->buf, size * batch);
	return r;
}

static void raw_close(raw *r)
{
	close(r->fd);
	free(r->buf);
	free(r);
}

/* ---------- helios puts ---------- */

typedef struct hput {
	hl_store *s;
	size_t size, batch;
	uint8_t *bufs;
} hput;

static double hput_round(void *p, int ops)
{
	hput *h = p;
	hl_put_item items[64];
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		for (size_t j = 0; j < h->batch; j++) {
			uint8_t *b = h->bufs + j * h->size;
			fill(b, 64); /* new content, so every put really writes */
			items[j] = (hl_put_item){.data = b, .len = h->size};
		}
		if (hl_put_batch(h->s, items, h->batch) != 0)
			abort();
	}
	return now_s() - t;
}

static int index_in_memory; /* the scale table measures with the index in memory */

static hl_store *open_store_l1(const char *dir, hl_sync_mode mode, int compress, uint64_t l1_bytes)
{
	hl_options o;
	hl_options_init(&o);
	o.index_in_memory = index_in_memory;
	o.sync = mode;
	o.l1_bytes = l1_bytes;
	if (compress >= 0)
		o.compress_level = compress;
	hl_store *s;
	int err = hl_open(dir, &o, &s);
	if (err) {
		fprintf(stderr, "open %s: %s\n", dir, hl_strerror(err));
		exit(1);
	}
	return s;
}

static hl_store *open_store(const char *dir, hl_sync_mode mode, int compress)
{
	return open_store_l1(dir, mode, compress, UINT64_C(256) << 20);
}

static void bench_puts(void)
{
	static const char *modes[] = {"always", "batch", "none"};
	header("put: helios vs raw writes (same disk, same run); 4 KiB and 64 KiB random objects");
	for (int mode = HL_SYNC_ALWAYS; mode <= HL_SYNC_NONE; mode++) {
		for (int si = 0; si < 2; si++) {
			size_t size = si ? 65536 : 4096;
			for (int bi = 0; bi < 2; bi++) {
				size_t batch = bi ? 64 : 1;
				/* unsynced rows stay well under the kernel's dirty-page limits, or throttling
				 * (not helios or the baseline) is what gets measured */
				int ops = mode == HL_SYNC_ALWAYS ? (batch == 1 ? 100 : 20)
				          : batch == 1 ? (size > 4096 ? 300 : 2000) : (size > 4096 ? 6 : 60);
				char *d = fresh_dir("put");
				hput h = {open_store(d, (hl_sync_mode)mode, -1), size, batch, malloc(size * batch)};
				fill(h.bufs, size * batch);
				raw *r = raw_open(d, size, batch, mode == HL_SYNC_ALWAYS);
				stat3 hs, rs;
				measure_pair(hput_round, &h, raw_round, r, ops, &hs, &rs);
				hl_close(h.s);
				raw_close(r);
				free(h.bufs);
				drop_dir(d);
				char what[128], base[64];
				snprintf(what, sizeof what, "sync=%s put %s %zu KiB", modes[mode],
				         batch == 1 ? "1 ×" : "batch 64 ×", size >> 10);
				snprintf(base, sizeof base, "%s%s", batch == 1 ? "pwrite" : "64 pwrite",
				         mode == HL_SYNC_ALWAYS ? (batch == 1 ? " + fdatasync" : " + 1 fdatasync") : "");
				row(what, hs, base, rs,
				    mode == HL_SYNC_ALWAYS && batch == 64 && size == 4096 ? "<= 1.3x" : "");
			}
		}
	}
}

/* ---------- concurrent writers (group commit) ---------- */

/* One writer thread's share of a concurrent round. */
typedef struct thr_arg {
	void *ctx; /* the store, or the minimal group commit */
	int per_thread;
	pthread_barrier_t *bar;
} thr_arg;

/* Starts 64 threads running fn, releases them together, and times them until the last ends. */
static double run_threads(void *(*fn)(void *), void *ctx, int ops)
{
	enum { T = 64 };
	pthread_t th[T];
	thr_arg a[T];
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, T + 1);
	for (int t = 0; t < T; t++) {
		a[t] = (thr_arg){ctx, ops / T, &bar};
		pthread_create(&th[t], NULL, fn, &a[t]);
	}
	pthread_barrier_wait(&bar);
	double t0 = now_s();
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	pthread_barrier_destroy(&bar);
	return now_s() - t0;
}

/* New 4 KiB of content (every writer, every round: the store would deduplicate a repeat); both
 * sides of the group-commit rows make it the same way. */
static void next_content(uint64_t *state, uint8_t buf[4096])
{
	for (int j = 0; j < 4096; j += 8) {
		*state = *state * 6364136223846793005ull + 1442695040888963407ull;
		memcpy(buf + j, state, 8);
	}
}

static uint64_t content_seed(void)
{
	static atomic_uint_fast64_t seeds = 1;
	return atomic_fetch_add(&seeds, 1) * 0x9e3779b97f4a7c15ull;
}

static void *cw_main(void *p)
{
	thr_arg *c = p;
	hl_store *s = c->ctx;
	uint8_t buf[4096];
	uint64_t local = content_seed();
	pthread_barrier_wait(c->bar);
	for (int i = 0; i < c->per_thread; i++) {
		next_content(&local, buf);
		if (hl_put(s, buf, sizeof buf, NULL, NULL) != 0)
			abort();
	}
	return NULL;
}

static double cw_round(void *p, int ops) { return run_threads(cw_main, p, ops); }

/* The least any group commit can do: 64 threads, one mutex, whoever finds unsynced writes does
 * one fdatasync for all of them (no hashing, no index). */
typedef struct mini {
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int fd, syncing;
	uint64_t off, written, synced;
} mini;

static void *mini_main(void *p)
{
	thr_arg *a = p;
	mini *m = a->ctx;
	uint8_t buf[4096];
	uint64_t local = content_seed();
	pthread_barrier_wait(a->bar);
	for (int i = 0; i < a->per_thread; i++) {
		next_content(&local, buf);
		pthread_mutex_lock(&m->mu);
		uint64_t off = m->off;
		m->off += sizeof buf;
		uint64_t mine = ++m->written;
		pthread_mutex_unlock(&m->mu);
		if (pwrite(m->fd, buf, sizeof buf, (off_t)off) != (ssize_t)sizeof buf)
			abort();
		pthread_mutex_lock(&m->mu);
		while (m->synced < mine) {
			if (m->syncing) {
				pthread_cond_wait(&m->cv, &m->mu);
				continue;
			}
			m->syncing = 1;
			uint64_t target = m->written;
			pthread_mutex_unlock(&m->mu);
			fdatasync(m->fd);
			pthread_mutex_lock(&m->mu);
			m->syncing = 0;
			m->synced = target; /* writes counted before the sync began (a conservative bound) */
			pthread_cond_broadcast(&m->cv);
		}
		pthread_mutex_unlock(&m->mu);
	}
	return NULL;
}

static double mini_round(void *p, int ops) { return run_threads(mini_main, p, ops); }

static void bench_concurrent(void)
{
	header("group commit: 64 threads each putting 4 KiB objects, sync=always (µs per object)");
	char *d = fresh_dir("cw");
	hl_store *s = open_store(d, HL_SYNC_ALWAYS, -1);
	raw *r = raw_open(d, 4096, 64, 1);
	mini m = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, r->fd, 0, 0, 0, 0};
	stat3 hs, ms; /* helios and the minimal group commit in alternating rounds */
	measure_pair(cw_round, s, mini_round, &m, 64 * 40, &hs, &ms);
	hl_stats st;
	hl_stats_get(s, &st);
	hl_close(s);
	stat3 rs = measure(raw_round, r, 20);
	raw_close(r);
	rs.med /= 64, rs.lo /= 64, rs.hi /= 64;
	drop_dir(d);
	row("64 writers, 1 × 4 KiB each put, sync=always", hs, "64 pwrite + 1 fdatasync /64", rs, "<= 1.43x");
	row("64 writers, 1 × 4 KiB each put, sync=always", hs, "minimal group commit, 64 thr", ms, "<= 1.11x");
	printf("\n%.0f objects per sync on average (%llu objects, %llu syncs); throughput ratio "
	       "helios/raw-batched = %.2f (target >= 0.7)\n",
	       (double)st.puts_new / (double)(st.syncs ? st.syncs : 1), (unsigned long long)st.puts_new,
	       (unsigned long long)st.syncs, rs.med / hs.med);
}

/* ---------- hashing ---------- */

typedef struct hh {
	uint8_t *buf;
	size_t len;
	hl_store *s;
} hh;

static double blake3_round(void *p, int ops)
{
	hh *h = p;
	uint8_t out[32];
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		blake3_hasher b;
		blake3_hasher_init(&b);
		blake3_hasher_update(&b, h->buf, h->len);
		blake3_hasher_finalize(&b, out, 32);
		h->buf[0] ^= out[0];
	}
	return now_s() - t;
}

static double hl_hash_round(void *p, int ops)
{
	hh *h = p;
	hl_id id;
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		hl_hash(h->buf, h->len, &id);
		h->buf[0] ^= id.b[0];
	}
	return now_s() - t;
}

static double put_none_round(void *p, int ops)
{
	hh *h = p;
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		memcpy(h->buf, &i, sizeof i); /* new content each time */
		if (hl_put(h->s, h->buf, h->len, NULL, NULL) != 0)
			abort();
	}
	return now_s() - t;
}

static void bench_hash(void)
{
	header("hashing at 64 KiB: the put path's BLAKE3 step and a whole put against BLAKE3 alone");
	hh h = {malloc(65536), 65536, NULL};
	fill(h.buf, h.len);
	stat3 b = measure(blake3_round, &h, 5000);
	stat3 w = measure(hl_hash_round, &h, 5000);
	row("hl_hash (the hash step of every put)", w, "blake3_hasher_* direct", b, "<= 1.11x");
	char *d = fresh_dir("hash");
	h.s = open_store(d, HL_SYNC_NONE, 0);
	stat3 p = measure(put_none_round, &h, 2000);
	row("whole put, sync=none, compression off", p, "blake3_hasher_* direct", b, "");
	hl_close(h.s);
	drop_dir(d);
	printf("\nBLAKE3 alone: %.2f GB/s; hash step: %.2f GB/s (%.2fx of BLAKE3 alone, target >= 0.9)\n",
	       65536 / b.med / 1e3, 65536 / w.med / 1e3, b.med / w.med);
	free(h.buf);
}

/* ---------- content-defined chunking ---------- */

static hl_cdc bench_cdc;

static double cdc_round(void *p, int ops)
{
	hh *h = p;
	size_t chunks = 0;
	double t = now_s();
	for (int i = 0; i < ops; i++)
		for (size_t off = 0; off < h->len; chunks++)
			off += hl_cdc_next(&bench_cdc, h->buf + off, h->len - off);
	h->buf[0] ^= (uint8_t)chunks;
	return now_s() - t;
}

/* Chunking must not be what limits ingest: it runs beside BLAKE3 over the same bytes. */
static void bench_chunk(void)
{
	header("content-defined chunking (FastCDC 16/64/256 KiB) of 16 MiB against BLAKE3 of the same bytes");
	hh h = {malloc(16u << 20), 16u << 20, NULL};
	fill(h.buf, h.len);
	hl_cdc_init(&bench_cdc, HL_CDC_MIN, HL_CDC_AVG, HL_CDC_MAX);
	stat3 b = measure(blake3_round, &h, 3);
	stat3 c = measure(cdc_round, &h, 3);
	row("FastCDC cut points, 16 MiB", c, "BLAKE3, 16 MiB", b, "");
	printf("\nchunking %.2f GB/s, BLAKE3 %.2f GB/s\n", h.len / c.med / 1e3, h.len / b.med / 1e3);
	free(h.buf);
}

/* ---------- hot reads ---------- */

typedef struct hr {
	hl_store *s;
	hl_id id;
	int fd;
	uint8_t *dst;
	size_t len;
} hr;

static double get_into_round(void *p, int ops)
{
	hr *r = p;
	size_t len;
	double t = now_s();
	for (int i = 0; i < ops; i++)
		if (hl_get_into(r->s, &r->id, r->dst, r->len, &len) != 0)
			abort();
	return now_s() - t;
}

static double get_buf_round(void *p, int ops)
{
	hr *r = p;
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		hl_buf *b;
		if (hl_get(r->s, &r->id, &b) != 0)
			abort();
		hl_buf_unref(b);
	}
	return now_s() - t;
}

static double pread_round(void *p, int ops)
{
	hr *r = p;
	double t = now_s();
	for (int i = 0; i < ops; i++)
		if (pread(r->fd, r->dst, r->len, 4096) != (ssize_t)r->len)
			abort();
	return now_s() - t;
}

static double pread_hash_round(void *p, int ops)
{
	hr *r = p;
	hl_id id;
	double t = now_s();
	for (int i = 0; i < ops; i++) {
		if (pread(r->fd, r->dst, r->len, 4096) != (ssize_t)r->len)
			abort();
		hl_hash(r->dst, r->len, &id);
	}
	return now_s() - t;
}

static void bench_get(void)
{
	header("hot get: the public hl_get (L1 hit) and the verified disk read (L1 off, page cache)");
	for (int si = 0; si < 2; si++) {
		size_t size = si ? 65536 : 4096;
		char *d = fresh_dir("get");
		hr r = {open_store_l1(d, HL_SYNC_NONE, 0, 0), {{0}}, -1, malloc(size), size};
		fill(r.dst, size);
		hl_put(r.s, r.dst, size, &r.id, NULL);
		hl_sync(r.s);
		raw *w = raw_open(d, size, 1, 0);
		raw_round(w, 3);
		r.fd = w->fd;
		int ops = si ? 20000 : 100000;
		stat3 disk = measure(get_into_round, &r, ops);
		stat3 pr = measure(pread_round, &r, ops);
		stat3 ph = measure(pread_hash_round, &r, ops);
		hl_close(r.s);
		r.s = open_store(d, HL_SYNC_NONE, 0); /* L1 on (the default) */
		stat3 api = measure(get_buf_round, &r, ops);
		stat3 api_into = measure(get_into_round, &r, ops);
		char what[96];
		snprintf(what, sizeof what, "hl_get %zu KiB, hot (L1 hit, a reference)", size >> 10);
		row(what, api, "pread", pr, si ? "" : "<= 2x");
		snprintf(what, sizeof what, "hl_get_into %zu KiB, hot (L1 hit, copied)", size >> 10);
		row(what, api_into, "pread", pr, "");
		snprintf(what, sizeof what, "verified disk read %zu KiB (L1 off)", size >> 10);
		row(what, disk, "pread", pr, "");
		row(what, disk, "pread + BLAKE3 (verify floor)", ph, "");
		raw_close(w);
		hl_close(r.s);
		free(r.dst);
		drop_dir(d);
	}
}

/* ---------- delta records: reading an object stored against a base ---------- */

/* Text-like bytes (words of a small alphabet): what agents' edits are stored against. */
static void fill_words(uint8_t *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		uint64_t r = rng % 40;
		p[i] = r < 6 ? ' ' : r == 6 ? '\n' : (uint8_t)('a' + r % 26);
	}
}

/* One row: a 4 KiB object (base_len bytes of words with a 40-byte edit at 1000, taken at offset
 * at of the base) stored as a delta against the base, read, against the same object stored
 * plain in another store. */
static void delta_row(size_t base_len, size_t at, const char *what_base, const char *target)
{
	enum { LEN = 4096 };
	uint8_t *base = malloc(base_len), edited[LEN];
	fill_words(base, base_len);
	memcpy(edited, base + at, LEN);
	fill_words(edited + 1000, 40); /* an agent's edit: a line changed */
	char *dd = fresh_dir("delta"), *dp = fresh_dir("plain");
	hl_store *sd = open_store_l1(dd, HL_SYNC_NONE, -1, 0), *sp = open_store_l1(dp, HL_SYNC_NONE, -1, 0);
	hl_id base_id;
	hl_put(sd, base, base_len, &base_id, NULL);
	hl_put_item it = {.data = edited, .len = LEN};
	hl_hash(edited, LEN, &it.id);
	const hl_id *bases[1] = {&base_id};
	hl_stat st;
	if (hl_local_put_like(sd->local, &it, bases, 1) || hl_stat_object(sd, &it.id, &st) ||
	    !(st.flags & HL_STAT_DELTA)) {
		fprintf(stderr, "delta bench: the edit was not stored as a delta\n");
		exit(1);
	}
	uint64_t delta_bytes = st.stored_size;
	hl_put(sp, edited, LEN, NULL, NULL);
	hl_stat_object(sp, &it.id, &st);
	hr rd = {sd, it.id, -1, malloc(LEN), LEN}, rp = {sp, it.id, -1, malloc(LEN), LEN};
	stat3 delta = measure(get_into_round, &rd, 50000);
	stat3 plain = measure(get_into_round, &rp, 50000);
	char what[96];
	snprintf(what, sizeof what, "read of a delta on %s (%llu B stored)", what_base,
	         (unsigned long long)delta_bytes);
	char base_what[64];
	snprintf(base_what, sizeof base_what, "the same, plain zstd (%llu B)", (unsigned long long)st.stored_size);
	row(what, delta, base_what, plain, target);
	free(rd.dst);
	free(rp.dst);
	free(base);
	hl_close(sd);
	hl_close(sp);
	drop_dir(dd);
	drop_dir(dp);
}

static void bench_delta(void)
{
	header("delta records: a 4 KiB object stored as a delta against another, read from the page cache (L1 off)");
	delta_row(4096, 0, "its 4 KiB original", "<= 3x");
	/* a source file found by similarity in a larger object holding it (a chunk of an archive) */
	delta_row(20480, 10000, "a 20 KiB base (the largest a 4 KiB one takes)", "<= 3x");
}

/* ---------- opening a big store ---------- */

/* ---------- scale: the same operations on stores of 10 k, 1 M and 10 M objects ---------- */

enum { SCALE_OBJ = 100, SCALE_SAMPLES = 20000 };

/* Object number i of a scale store: 100 bytes, unique. */
static void scale_object(uint64_t i, uint8_t out[SCALE_OBJ])
{
	memset(out, 'x', SCALE_OBJ);
	memcpy(out, &i, sizeof i);
}

static long rss_kib(void)
{
	FILE *f = fopen("/proc/self/status", "r");
	char line[256];
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (f)
		fclose(f);
	return kib;
}

typedef struct pcts {
	double p50, p99;
} pcts;

static pcts pct_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, cmp_d);
	return (pcts){v[n / 2], v[n * 99 / 100]};
}

typedef struct scale_row {
	long n;
	double open_ms, index_b, rss_b, table_s, table_b;
	pcts put, hot, cold;
} scale_row;

/* count gets of objects k % distinct spread stride apart; their latencies in µs. */
static pcts timed_gets(hl_store *s, int count, int distinct, uint64_t stride, double *lat)
{
	uint8_t obj[SCALE_OBJ];
	for (int k = 0; k < count; k++) {
		uint64_t i = (uint64_t)(k % distinct);
		hl_id id;
		scale_object(i * stride + i % stride, obj);
		hl_hash(obj, SCALE_OBJ, &id);
		hl_buf *b;
		double t = now_s();
		if (hl_get(s, &id, &b) != 0)
			abort();
		lat[k] = (now_s() - t) * 1e6;
		hl_buf_unref(b);
	}
	return pct_of(lat, count);
}

static void scale_one(long n, scale_row *row_out)
{
	char *d = fresh_dir("scale");
	hl_store *s = open_store(d, HL_SYNC_NONE, 0);
	enum { B = 1000 };
	static uint8_t vals[B][SCALE_OBJ];
	hl_put_item items[B];
	double t0 = now_s();
	for (long i = 0; i < n; i += B) {
		int m = n - i < B ? (int)(n - i) : B;
		for (int j = 0; j < m; j++) {
			scale_object((uint64_t)(i + j), vals[j]);
			items[j] = (hl_put_item){.data = vals[j], .len = SCALE_OBJ};
		}
		if (hl_put_batch(s, items, (size_t)m) != 0)
			abort();
	}
	hl_close(s);
	fprintf(stderr, "scale: %ld objects stored in %.1f s\n", n, now_s() - t0);
	double v[16];
	for (int r = 0; r < runs; r++) {
		double t = now_s();
		s = open_store(d, HL_SYNC_BATCH, -1);
		v[r] = now_s() - t;
		hl_close(s);
	}
	row_out->n = n;
	row_out->open_ms = summarize(v, runs).med * 1e3;
	long rss0 = rss_kib();
	double t_open = now_s();
	s = open_store(d, HL_SYNC_BATCH, -1);
	/* the index's copy in memory is built in the background after open: measured once built */
	hl_stats hs = {0};
	while (hl_stats_get(s, &hs) == 0 && !hs.index_memory_bytes && now_s() - t_open < 600)
		usleep(1000);
	row_out->table_s = now_s() - t_open;
	row_out->table_b = (double)hs.index_memory_bytes / (double)n;
	static double lat[SCALE_SAMPLES];
	uint8_t obj[SCALE_OBJ];
	/* cold gets: distinct objects spread over the whole store, never read before (not in the L1);
	 * hot gets: the first 1000 of those again, from the L1. The segments are read once before,
	 * so every size is measured with its store in the page cache: on the virtual machines this
	 * bench runs on, a 10 M store written at full speed came out with 0.1-0.5% of its segment
	 * pages dropped (workingset refaults, no reclaim counted) and 1-4% of its cold gets read the
	 * disk, which measured the machine, not the store's lookup. */
	char path[4200];
	snprintf(path, sizeof path, "%s/segments", d);
	nftw(path, read_one, 16, FTW_PHYS);
	uint64_t stride = (uint64_t)n / SCALE_SAMPLES > 1 ? (uint64_t)n / SCALE_SAMPLES : 1;
	int ns = n < SCALE_SAMPLES ? (int)n : SCALE_SAMPLES;
	row_out->cold = timed_gets(s, ns, ns, stride, lat);
	row_out->hot = timed_gets(s, ns, 1000, stride, lat);
	/* puts of new objects, one at a time */
	for (int k = 0; k < SCALE_SAMPLES; k++) {
		scale_object((uint64_t)n + (uint64_t)k, obj);
		double t = now_s();
		if (hl_put(s, obj, SCALE_OBJ, NULL, NULL) != 0)
			abort();
		lat[k] = (now_s() - t) * 1e6;
	}
	row_out->put = pct_of(lat, SCALE_SAMPLES);
	row_out->rss_b = (double)(rss_kib() - rss0) * 1024.0 / (double)n;
	hl_close(s);
	snprintf(path, sizeof path, "%s/index/data.mdb", d);
	struct stat st;
	row_out->index_b = stat(path, &st) == 0 ? (double)st.st_blocks * 512.0 / (double)n : 0;
	drop_dir(d);
}

/* Put, hot get and cold get latency and open time at each store size; each p50/p99 as a ratio to
 * the smallest store's (target: within ±20%), open < 1 s, and the index bytes per object. */
static void bench_scale(const long *sizes, int nsizes)
{
	if (nsizes <= 0)
		return;
	index_in_memory = 1;
	printf("\n### scale: %d-byte objects, sync=batch, index in memory, segments in the page cache; µs p50 / p99 of %d operations\n\n",
	       SCALE_OBJ, SCALE_SAMPLES);
	scale_row r[8];
	for (int i = 0; i < nsizes && i < 8; i++)
		scale_one(sizes[i], &r[i]);
	index_in_memory = 0;
	printf("| %10s | %9s | %15s | %15s | %15s | %11s | %11s | %11s | %11s |\n", "objects", "open ms", "put",
	       "hot get (L1)", "cold get", "index B/obj", "table B/obj", "table s", "RSS B/obj");
	printf("|------------|-----------|-----------------|-----------------|-----------------|-------------|-------------|-------------|-------------|\n");
	double worst = 1;
	for (int i = 0; i < nsizes && i < 8; i++) {
		printf("| %10ld | %9.1f | %6.2f / %6.2f | %6.2f / %6.2f | %6.2f / %6.2f | %11.0f | %11.1f | %11.2f | %11.1f |\n",
		       r[i].n, r[i].open_ms, r[i].put.p50, r[i].put.p99, r[i].hot.p50, r[i].hot.p99, r[i].cold.p50,
		       r[i].cold.p99, r[i].index_b, r[i].table_b, r[i].table_s, r[i].rss_b);
		double q[6] = {r[i].put.p50 / r[0].put.p50, r[i].put.p99 / r[0].put.p99,
		               r[i].hot.p50 / r[0].hot.p50, r[i].hot.p99 / r[0].hot.p99,
		               r[i].cold.p50 / r[0].cold.p50, r[i].cold.p99 / r[0].cold.p99};
		for (int k = 0; k < 6; k++) {
			double dev = q[k] >= 1 ? q[k] : 1 / q[k];
			if (dev > worst)
				worst = dev;
		}
	}
	int last = (nsizes < 8 ? nsizes : 8) - 1;
	printf("\nlargest deviation of a p50/p99 from the %ld-object store's: %.2fx (target <= 1.2x); "
	       "open of %ld objects %.1f ms (target < 1000 ms)\n", r[0].n, worst, r[last].n, r[last].open_ms);
}

/* ---------- the L2 disk cache ---------- */

/* 4 KiB gets and sets against raw 4 KiB pread / pwrite at random offsets of a file of the same
 * size on the same file system (both served from the page cache once warm, as an SSD cache's hot
 * set is). Gets read from regions on disk (not the one being filled). */
static void bench_l2(void)
{
	enum { N = 4096, ENTRIES = 20000 };
	char *d = fresh_dir("l2"), path[4096];
	snprintf(path, sizeof path, "%s/l2.cache", d);
	hl_l2 *c;
	if (hl_l2_open(path, UINT64_C(256) << 20, 4u << 20, 1u << 30, &c)) {
		fprintf(stderr, "l2 bench: cannot open the cache\n");
		exit(1);
	}
	static uint8_t obj[4096];
	static hl_id ids[ENTRIES];
	for (int i = 0; i < ENTRIES; i++) {
		fill(obj, sizeof obj);
		hl_hash(obj, sizeof obj, &ids[i]);
		hl_l2_put(c, &ids[i], obj, sizeof obj);
	}
	hl_l2_flush(c);
	snprintf(path, sizeof path, "%s/raw", d);
	int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0644);
	for (int i = 0; i < ENTRIES; i++)
		if (pwrite(fd, obj, sizeof obj, (off_t)i * 4096) != 4096)
			exit(1);
	double hg[64], bg[64], hs[64], bs[64];
	int n = runs < 64 ? runs : 64;
	for (int r = 0; r < n; r++) {
		double t = now_s();
		for (int i = 0; i < N; i++) {
			hl_buf *b;
			if (hl_l2_get(c, &ids[(i * 7919) % (ENTRIES - 2000)], &b) == 0)
				hl_buf_unref(b);
		}
		hg[r] = (now_s() - t) / N * 1e6;
		t = now_s();
		for (int i = 0; i < N; i++)
			if (pread(fd, obj, sizeof obj, (off_t)((i * 7919) % ENTRIES) * 4096) != 4096)
				exit(1);
		bg[r] = (now_s() - t) / N * 1e6;
		t = now_s();
		for (int i = 0; i < N; i++) {
			hl_id id;
			memcpy(obj, &i, sizeof i);
			memcpy(obj + 8, &r, sizeof r);
			hl_hash(obj, sizeof obj, &id);
			hl_l2_put(c, &id, obj, sizeof obj);
		}
		hs[r] = (now_s() - t) / N * 1e6;
		t = now_s();
		for (int i = 0; i < N; i++)
			if (pwrite(fd, obj, sizeof obj, (off_t)((i * 7919) % ENTRIES) * 4096) != 4096)
				exit(1);
		bs[r] = (now_s() - t) / N * 1e6;
	}
	close(fd);
	hl_l2_close(c);
	header("L2 disk cache, 4 KiB objects (µs/op)");
	row("L2 get (verified, from a written region)", summarize(hg, n), "pread 4 KiB", summarize(bg, n), "< 20 µs");
	row("L2 set (with the caller's BLAKE3 of it)", summarize(hs, n), "pwrite 4 KiB", summarize(bs, n), "< 50 µs");
	drop_dir(d);
}

/* ---------- integrity: the scrubber against BLAKE3 alone ---------- */

/* One thread scrubbing a store whose segments are in the page cache, against one thread hashing
 * the same bytes from memory: the scrubber's cost beyond the hash (index walk, pread, header
 * checks) in µs per MiB. Target: scrub throughput at least 0.8x BLAKE3's, i.e. ratio <= 1.25. */
/* Sequential preads of win_len bytes of every segment file of dir into a page-aligned buffer,
 * each hashed (hash = 1) or not: the floor of a scrub pass (read + hash, in the scrubber's window
 * size) and the disk's sequential read. Seconds. */
static double read_segments(const char *dir, size_t win_len, int hash)
{
	static _Alignas(4096) uint8_t win[4 << 20];
	char path[4200];
	double t = now_s();
	for (uint32_t seg = 1;; seg++) {
		snprintf(path, sizeof path, "%s/segments/%08u.seg", dir, seg);
		int fd = open(path, O_RDONLY);
		if (fd < 0)
			break;
		ssize_t n;
		off_t off = 0;
		while ((n = pread(fd, win, win_len, off)) > 0) {
			if (hash) {
				hl_id id;
				hl_hash(win, (size_t)n, &id);
			}
			off += n;
		}
		close(fd);
	}
	return now_s() - t;
}

/* Every segment file of dir mapped and hashed in win_len pieces, without a copy out of the page
 * cache: what a scrub that maps the segments would pay (page-table fills instead of copies).
 * Seconds. */
static double map_segments(const char *dir, size_t win_len)
{
	char path[4200];
	double t = now_s();
	for (uint32_t seg = 1;; seg++) {
		snprintf(path, sizeof path, "%s/segments/%08u.seg", dir, seg);
		int fd = open(path, O_RDONLY);
		struct stat st;
		if (fd < 0)
			break;
		if (fstat(fd, &st) == 0 && st.st_size > 0) {
			size_t size = (size_t)st.st_size;
			const uint8_t *m = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
			for (size_t off = 0; m != MAP_FAILED && off < size; off += win_len) {
				hl_id id;
				hl_hash(m + off, size - off < win_len ? size - off : win_len, &id);
			}
			if (m != MAP_FAILED)
				munmap((void *)m, size);
		}
		close(fd);
	}
	return now_s() - t;
}

/* Drops the page cache (root only): 0, or -1 when not allowed. */
static int drop_caches(void)
{
	sync();
	int fd = open("/proc/sys/vm/drop_caches", O_WRONLY);
	if (fd < 0)
		return -1;
	int ok = write(fd, "3", 1) == 1;
	close(fd);
	return ok ? 0 : -1;
}

static void bench_scrub(void)
{
	enum { OBJ = 64 << 10, COUNT = 768 };
	char *d = fresh_dir("scrub");
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_NONE;
	o.l1_bytes = 0;
	hl_store *s;
	if (hl_open(d, &o, &s)) {
		fprintf(stderr, "scrub bench: cannot open the store\n");
		exit(1);
	}
	uint8_t *mem = malloc((size_t)OBJ * COUNT);
	fill(mem, (size_t)OBJ * COUNT); /* random: stored raw, as most build outputs are */
	for (int i = 0; i < COUNT; i++)
		hl_put(s, mem + (size_t)i * OBJ, OBJ, NULL, NULL);
	hl_sync(s);
	double mib = (double)OBJ * COUNT / 1048576.0, hv[64], bv[64], fv[64], mv[64], cv[64], dv[64];
	int pass_done, cold = 1;
	hl_scrub(s, UINT64_MAX, &pass_done, NULL); /* warm: the segments in the page cache */
	for (int r = 0; r < runs; r++) {
		double t = now_s();
		hl_scrub(s, UINT64_MAX, &pass_done, NULL);
		hv[r] = (now_s() - t) / mib * 1e6;
		t = now_s();
		for (int i = 0; i < COUNT; i++) {
			hl_id id;
			hl_hash(mem + (size_t)i * OBJ, OBJ, &id);
		}
		bv[r] = (now_s() - t) / mib * 1e6;
		fv[r] = read_segments(d, 512 << 10, 1) / mib * 1e6;
		mv[r] = map_segments(d, 512 << 10) / mib * 1e6;
	}
	for (int r = 0; r < runs && cold; r++) { /* caches dropped before each side */
		if ((cold = drop_caches() == 0) != 0) {
			double t = now_s();
			hl_scrub(s, UINT64_MAX, &pass_done, NULL);
			cv[r] = (now_s() - t) / mib * 1e6;
		}
		if (cold && (cold = drop_caches() == 0) != 0)
			dv[r] = read_segments(d, 4 << 20, 0) / mib * 1e6;
	}
	hl_close(s);
	free(mem);
	header("scrub, one thread, 64 KiB objects (µs per MiB; lower is faster)");
	row("scrub pass, page-cached (segment order)", summarize(hv, runs), "BLAKE3 of the bytes in memory",
	    summarize(bv, runs), "<= 1.25x");
	row("scrub pass, page-cached (segment order)", summarize(hv, runs), "512 KiB preads + BLAKE3 (floor)",
	    summarize(fv, runs), "");
	row("scrub pass, page-cached (segment order)", summarize(hv, runs), "segments mapped + BLAKE3 (no copy)",
	    summarize(mv, runs), "");
	if (cold)
		row("scrub pass, caches dropped", summarize(cv, runs), "4 MiB preads, caches dropped",
		    summarize(dv, runs), "<= 1.25x");
	else
		printf("(cold rows skipped: dropping the page cache needs root)\n");
	drop_dir(d);
}

/* ---------- tiers: L1 -> L2 -> s3 against L1 -> local ---------- */

typedef struct tier_read {
	hl_store *s;
	hl_id *ids;
	int n;
} tier_read;

static double read_round(void *arg, int ops)
{
	tier_read *t = arg;
	double t0 = now_s();
	for (int i = 0; i < ops; i++) {
		hl_buf *b;
		if (hl_get(t->s, &t->ids[(i * 7919) % t->n], &b) == 0)
			hl_buf_unref(b);
	}
	return now_s() - t0;
}

static hl_store *tier_store(const char *dir, const char *endpoint, uint64_t l1, uint64_t l2)
{
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_NONE;
	o.l1_bytes = l1;
	if (endpoint) {
		o.backend = "s3";
		o.s3_endpoint = endpoint;
		o.s3_bucket = "helios";
		o.s3_access_key = "helios-test";
		o.s3_secret_key = "helios-secret";
		o.l2_bytes = l2;
		o.l2_region_size = 4u << 20;
	}
	hl_store *s;
	int err = hl_open(dir, &o, &s);
	if (err) {
		fprintf(stderr, "tiers bench: open %s: %s\n", dir, hl_strerror(err));
		exit(1);
	}
	return s;
}

static void bench_tiers(void)
{
	enum { N = 2000, OBJ = 4096 };
	char *d = fresh_dir("tiers"), bucket[4200], node[4200], local[4200], cold[4200], msg[300], endpoint[64];
	snprintf(bucket, sizeof bucket, "%s/bucket", d);
	snprintf(node, sizeof node, "%s/node", d);
	snprintf(local, sizeof local, "%s/local", d);
	int pid, port;
	if (s3_spawn(HELIOS_S3_SERVER, bucket, 0, 0, &pid, &port, msg, sizeof msg)) {
		fprintf(stderr, "tiers bench: %s\n", msg);
		exit(1);
	}
	snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", port);
	hl_store *remote = tier_store(node, endpoint, 256u << 20, 256u << 20);
	hl_store *loc = tier_store(local, NULL, 256u << 20, 0);
	static hl_id ids[N];
	static uint8_t obj[OBJ];
	for (int i = 0; i < N; i++) {
		fill(obj, sizeof obj);
		hl_put(remote, obj, sizeof obj, &ids[i], NULL);
		hl_put(loc, obj, sizeof obj, NULL, NULL);
	}
	tier_read a = {remote, ids, N}, b = {loc, ids, N};
	read_round(&a, N), read_round(&b, N); /* both L1s hold every object now */
	stat3 h, base;
	header("tiers, 4 KiB objects (µs/op)");
	measure_pair(read_round, &a, read_round, &b, 20000, &h, &base);
	row("hot get, L1 -> L2 -> s3 (L1 hit)", h, "L1 -> local (L1 hit)", base, "<= 1x");
	hl_close(remote), hl_close(loc);
	remote = tier_store(node, endpoint, 0, 256u << 20); /* no L1: the L2 serves */
	loc = tier_store(local, NULL, 0, 0);                 /* no L1: the segments serve */
	a.s = remote, b.s = loc;
	measure_pair(read_round, &a, read_round, &b, N, &h, &base);
	row("get, L2 -> s3 (L2 hit, verified)", h, "local store (page cache)", base, "info");
	hl_close(remote);
	snprintf(cold, sizeof cold, "%s/cold", d);
	remote = tier_store(cold, endpoint, 0, 0); /* no caches: every get is the bucket's */
	a.s = remote;
	h = measure(read_round, &a, 200);
	row("get from the bucket (s3rver on loopback)", h, "local store (page cache)", base, "info");
	hl_close(remote), hl_close(loc);
	s3_kill(pid);
	drop_dir(d);
}

/* ---------- an agent commit ---------- */

/* A work tree of 700 source-like files in 20 directories; each round rewrites 50 of them and
 * commits: hl_snapshot (sync=always: every new object durable) plus the ref moved by
 * compare-and-swap. Baseline: one 4 KiB pwrite + fdatasync on the same file system. */
static void write_text(const char *path, int round, int i)
{
	FILE *f = fopen(path, "w");
	if (!f) {
		perror(path);
		exit(1);
	}
	for (int line = 0; line < 100; line++)
		fprintf(f, "int f_%d_%d_%d(int x) { return x * %d + %d; }\n", i, round, line, line, i);
	fclose(f);
}

static void bench_commit(void)
{
	char *d = fresh_dir("commit"), path[4096];
	snprintf(path, sizeof path, "%s/work", d);
	mkdir(path, 0755);
	for (int k = 0; k < 20; k++) {
		snprintf(path, sizeof path, "%s/work/dir%02d", d, k);
		mkdir(path, 0755);
	}
	for (int i = 0; i < 700; i++) {
		snprintf(path, sizeof path, "%s/work/dir%02d/file%03d.c", d, i % 20, i);
		write_text(path, 0, i);
	}
	snprintf(path, sizeof path, "%s/store", d);
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_ALWAYS;
	hl_store *s;
	if (hl_open(path, &o, &s)) {
		fprintf(stderr, "commit bench: cannot open the store\n");
		exit(1);
	}
	char work[4096];
	snprintf(work, sizeof work, "%s/work", d);
	hl_id root, prev;
	hl_snapshot(s, work, 0, &prev, NULL);
	sleep(3); /* an agent commits minutes apart: the unchanged files are then known to the stat cache */
	hl_snapshot(s, work, 0, &prev, NULL);
	hl_ref_set(s, "agents/1/main", &prev);
	double hv[64], bv[64];
	snprintf(path, sizeof path, "%s/raw", d);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	uint8_t buf[4096];
	fill(buf, sizeof buf);
	int n = runs < 64 ? runs : 64;
	for (int r = 0; r < n; r++) {
		for (int j = 0; j < 50; j++) { /* 50 changed files */
			int i = (int)((uint64_t)(r * 50 + j) * 7919 % 700);
			snprintf(path, sizeof path, "%s/work/dir%02d/file%03d.c", d, i % 20, i);
			write_text(path, r + 1, i);
		}
		sync();
		double t = now_s();
		hl_snapshot_stats st;
		if (hl_snapshot(s, work, 0, &root, &st) || hl_ref_cas(s, "agents/1/main", &prev, &root)) {
			fprintf(stderr, "commit bench: snapshot or ref update failed\n");
			exit(1);
		}
		hv[r] = (now_s() - t) * 1e6;
		prev = root;
		t = now_s();
		if (pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf || fdatasync(fd)) {
			perror("raw");
			exit(1);
		}
		bv[r] = (now_s() - t) * 1e6;
	}
	close(fd);
	hl_close(s);
	header("agent commit: 50 changed files in a 700-file tree, sync=always");
	row("snapshot + ref compare-and-swap (µs)", summarize(hv, n), "one 4 KiB pwrite+fdatasync", summarize(bv, n), "report");
	printf("(per commit: 50 files read and stored, 650 taken from the stat cache, 21 trees, one batch sync, the ref's sync)\n");
	drop_dir(d);
}

int main(int argc, char **argv)
{
	long scale[8] = {10000, 1000000, 10000000};
	int nscale = 3;
	base_dir = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--quick"))
			runs = 3, scale[1] = 100000, scale[2] = 1000000;
		else if (!strcmp(argv[i], "--dir") && i + 1 < argc)
			base_dir = argv[++i];
		else if (!strcmp(argv[i], "--scale") && i + 1 < argc) { /* e.g. 10000,1000000 (0: skip) */
			nscale = 0;
			for (char *p = argv[++i]; *p && nscale < 8; p += *p == ',')
				if ((scale[nscale] = strtol(p, &p, 10)) > 0)
					nscale++;
		}
		else {
			fprintf(stderr, "usage: helios-bench [--quick] [--dir DIR] [--scale N,N,...]\n");
			return 2;
		}
	}
	printf("# helios %s benchmark — %d runs per figure, median (min..max), dir %s\n",
	       HL_VERSION_STRING, runs, base_dir);
	const char *only = getenv("HELIOS_BENCH_ONLY"); /* hash|chunk|get|delta|l1|put|concurrent|scale|commit|l2|scrub|tiers|fleet */
#define PART(name, call) if (!only || !strcmp(only, name)) call
	PART("hash", bench_hash());
	PART("chunk", bench_chunk());
	PART("get", bench_get());
	PART("delta", bench_delta());
	PART("l1", bench_l1(runs));
	PART("put", bench_puts());
	PART("concurrent", bench_concurrent());
	PART("scale", bench_scale(scale, nscale));
	PART("commit", bench_commit());
	PART("l2", bench_l2());
	PART("scrub", bench_scrub());
	PART("tiers", bench_tiers());
	const char *agents = getenv("HELIOS_BENCH_AGENTS");
	PART("fleet", bench_fleet(base_dir, agents ? atoi(agents) : 850, runs <= 3 ? 2 : 5));
	return 0;
}
