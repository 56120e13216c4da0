/* test_store.c — the durable store through the public API: put/get/has/stat, batches (atomic,
 * verified), idempotence, compression, iterate, reopen, segment rolling, locking, read-only
 * handles, limits, sync modes, concurrent writers; and, through the store's internals, the
 * memtable growing with the store. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "api/api.h"
#include "base/io.h"
#include "store/store_int.h"

typedef struct fixture {
	char *dir;
	hl_store *s;
} fixture;

static int setup(void **st)
{
	fixture *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("store");
	f->s = tu_open(f->dir, HL_SYNC_ALWAYS, 0);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	fixture *f = *st;
	hl_close(f->s);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

static void reopen(fixture *f)
{
	hl_close(f->s);
	f->s = tu_open(f->dir, HL_SYNC_ALWAYS, 0);
}

/* Asserts that id reads back as exactly data[0..len) through both read calls. */
static void assert_reads(hl_store *s, const hl_id *id, const void *data, size_t len)
{
	hl_buf *b = NULL;
	assert_int_equal(hl_get(s, id, &b), 0);
	assert_int_equal(hl_buf_len(b), len);
	if (len)
		assert_memory_equal(hl_buf_data(b), data, len);
	hl_buf_unref(b);
	uint8_t *dst = malloc(len + 1);
	size_t got = 0;
	assert_int_equal(hl_get_into(s, id, dst, len, &got), 0);
	assert_int_equal(got, len);
	if (len)
		assert_memory_equal(dst, data, len);
	free(dst);
	assert_int_equal(hl_has(s, id), 0);
}

static void put_get_sizes(void **st)
{
	fixture *f = *st;
	static const size_t sizes[] = {0, 1, 63, 64, 4096, 65535, 65536, 65537, 1 << 20};
	uint64_t seed = 7;
	for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
		uint8_t *d = malloc(sizes[i] + 1);
		tu_fill(&seed, d, sizes[i]);
		hl_id id, want;
		int created = -1;
		assert_int_equal(hl_put(f->s, d, sizes[i], &id, &created), 0);
		hl_hash(d, sizes[i], &want);
		assert_true(hl_id_equal(&id, &want));
		assert_int_equal(created, 1);
		assert_int_equal(hl_put(f->s, d, sizes[i], &id, &created), 0); /* idempotent */
		assert_int_equal(created, 0);
		assert_reads(f->s, &id, d, sizes[i]);
		hl_stat sst;
		assert_int_equal(hl_stat_object(f->s, &id, &sst), 0);
		assert_int_equal(sst.size, sizes[i]);
		free(d);
	}
	hl_stats stats;
	assert_int_equal(hl_stats_get(f->s, &stats), 0);
	assert_int_equal(stats.objects, sizeof sizes / sizeof sizes[0]);
	assert_int_equal(stats.puts_new, stats.objects);
}

static void missing_and_invalid(void **st)
{
	fixture *f = *st;
	hl_id id;
	hl_hash("never stored", 12, &id);
	hl_buf *b = NULL;
	size_t len;
	uint8_t tmp[4];
	assert_int_equal(hl_get(f->s, &id, &b), HL_NOTFOUND);
	assert_null(b);
	assert_int_equal(hl_get_into(f->s, &id, tmp, sizeof tmp, &len), HL_NOTFOUND);
	assert_int_equal(hl_has(f->s, &id), HL_NOTFOUND);
	hl_stat sst;
	assert_int_equal(hl_stat_object(f->s, &id, &sst), HL_NOTFOUND);
	assert_int_equal(hl_put(f->s, NULL, 5, &id, NULL), HL_INVALID);
	assert_int_equal(hl_get(f->s, NULL, &b), HL_INVALID);
}

static void compressible_is_compressed(void **st)
{
	fixture *f = *st;
	size_t len = 200000;
	char *d = malloc(len);
	for (size_t i = 0; i < len; i++)
		d[i] = "helios content-addressed store\n"[i % 31];
	hl_id id;
	assert_int_equal(hl_put(f->s, d, len, &id, NULL), 0);
	hl_stat sst;
	assert_int_equal(hl_stat_object(f->s, &id, &sst), 0);
	assert_true(sst.flags & HL_STAT_COMPRESSED);
	assert_true(sst.stored_size < len / 10);
	reopen(f);
	assert_reads(f->s, &id, d, len);
	free(d);
}

static void put_expect_verifies(void **st)
{
	fixture *f = *st;
	hl_id id, other;
	hl_hash("abc", 3, &id);
	hl_hash("abd", 3, &other);
	int created;
	assert_int_equal(hl_put_expect(f->s, &other, "abc", 3, &created), HL_MISMATCH);
	assert_int_equal(hl_has(f->s, &other), HL_NOTFOUND);
	assert_int_equal(hl_has(f->s, &id), HL_NOTFOUND);
	assert_int_equal(hl_put_expect(f->s, &id, "abc", 3, &created), 0);
	assert_int_equal(created, 1);
	assert_reads(f->s, &id, "abc", 3);
}

static void batch_is_atomic(void **st)
{
	fixture *f = *st;
	enum { N = 64 };
	static uint8_t data[N][4096];
	hl_put_item items[N];
	uint64_t seed = 99;
	for (int i = 0; i < N; i++) {
		tu_fill(&seed, data[i], sizeof data[i]);
		items[i] = (hl_put_item){.data = data[i], .len = sizeof data[i]};
	}
	/* one bad item rejects the whole batch */
	items[N - 1].check_id = 1;
	hl_hash("something else", 14, &items[N - 1].id);
	hl_stats before, after;
	assert_int_equal(hl_stats_get(f->s, &before), 0);
	assert_int_equal(hl_put_batch(f->s, items, N), HL_MISMATCH);
	assert_int_equal(hl_stats_get(f->s, &after), 0);
	assert_int_equal(after.objects, before.objects);
	assert_int_equal(after.segment_bytes, before.segment_bytes);
	for (int i = 0; i < N - 1; i++) {
		hl_id id;
		hl_hash(data[i], sizeof data[i], &id);
		assert_int_equal(hl_has(f->s, &id), HL_NOTFOUND);
	}
	items[N - 1].check_id = 0;
	/* duplicates inside one batch are stored once */
	items[1].data = data[0];
	assert_int_equal(hl_put_batch(f->s, items, N), 0);
	assert_int_equal(items[0].created, 1);
	assert_int_equal(items[1].created, 0);
	assert_true(hl_id_equal(&items[0].id, &items[1].id));
	assert_int_equal(hl_stats_get(f->s, &after), 0);
	assert_int_equal(after.objects, before.objects + N - 1);
	assert_int_equal(after.commits, before.commits + 1); /* one commit, one sync for the batch */
	assert_int_equal(after.syncs, before.syncs + 1);
	assert_true(after.sync_ns > before.sync_ns); /* the sync's time is counted */
	reopen(f);
	for (int i = 0; i < N; i++)
		assert_reads(f->s, &items[i].id, items[i].data, items[i].len);
	/* an empty batch is fine and a batch of present objects writes nothing */
	assert_int_equal(hl_put_batch(f->s, items, 0), 0);
	assert_int_equal(hl_stats_get(f->s, &before), 0);
	assert_int_equal(hl_put_batch(f->s, items, N), 0);
	assert_int_equal(hl_stats_get(f->s, &after), 0);
	assert_int_equal(after.segment_bytes, before.segment_bytes);
}

typedef struct walk {
	hl_id last;
	int n, sorted;
} walk;

static int walk_fn(const hl_id *id, const hl_stat *st, void *ctx)
{
	walk *w = ctx;
	(void)st;
	if (w->n && memcmp(w->last.b, id->b, HL_ID_LEN) >= 0)
		w->sorted = 0;
	w->last = *id;
	w->n++;
	return 0;
}

static int stop_at_3(const hl_id *id, const hl_stat *st, void *ctx)
{
	(void)id; (void)st;
	return ++*(int *)ctx == 3 ? 42 : 0;
}

static void iterate_all(void **st)
{
	fixture *f = *st;
	for (int i = 0; i < 100; i++) {
		char buf[32];
		int n = snprintf(buf, sizeof buf, "object %d", i);
		assert_int_equal(hl_put(f->s, buf, (size_t)n, NULL, NULL), 0);
	}
	walk w = {.sorted = 1};
	assert_int_equal(hl_iterate(f->s, walk_fn, &w), 0);
	assert_int_equal(w.n, 100);
	assert_true(w.sorted);
	int count = 0;
	assert_int_equal(hl_iterate(f->s, stop_at_3, &count), 42);
	assert_int_equal(count, 3);
}

static void segments_roll_and_reopen(void **st)
{
	fixture *f = *st;
	hl_close(f->s);
	f->s = tu_open(f->dir, HL_SYNC_ALWAYS, 64 << 10);
	enum { N = 60 };
	static uint8_t data[N][10000];
	hl_id ids[N];
	uint64_t seed = 5;
	for (int i = 0; i < N; i++) {
		tu_fill(&seed, data[i], sizeof data[i]);
		assert_int_equal(hl_put(f->s, data[i], sizeof data[i], &ids[i], NULL), 0);
	}
	hl_stats stats;
	assert_int_equal(hl_stats_get(f->s, &stats), 0);
	assert_true(stats.segments >= 8);
	hl_close(f->s);
	f->s = tu_open(f->dir, HL_SYNC_ALWAYS, 64 << 10);
	for (int i = 0; i < N; i++)
		assert_reads(f->s, &ids[i], data[i], sizeof data[i]);
	hl_verify_report rep;
	assert_int_equal(hl_verify(f->s, 2, NULL, NULL, NULL, &rep), 0);
	assert_int_equal(rep.objects, N);
	assert_int_equal(rep.corrupt, 0);
}

static void lock_and_read_only(void **st)
{
	fixture *f = *st;
	hl_id id;
	assert_int_equal(hl_put(f->s, "shared", 6, &id, NULL), 0);
	assert_int_equal(hl_sync(f->s), 0);
	hl_options o;
	hl_options_init(&o);
	hl_store *second = NULL;
	assert_int_equal(hl_open(f->dir, &o, &second), HL_LOCKED);
	assert_null(second);
	o.read_only = 1;
	hl_store *ro = NULL;
	assert_int_equal(hl_open(f->dir, &o, &ro), 0);
	assert_reads(ro, &id, "shared", 6);
	assert_int_equal(hl_put(ro, "x", 1, NULL, NULL), HL_READONLY);
	/* the read-only handle sees objects the writer adds later, once the writer's index flush
	 * (every sync_interval_ms, or hl_sync) has committed them */
	hl_id later;
	assert_int_equal(hl_put(f->s, "later", 5, &later, NULL), 0);
	assert_int_equal(hl_sync(f->s), 0);
	assert_reads(ro, &later, "later", 5);
	hl_close(ro);
}

static void open_errors(void **st)
{
	fixture *f = *st;
	hl_options o;
	hl_options_init(&o);
	hl_store *s = NULL;
	char path[4200];
	snprintf(path, sizeof path, "%s/absent", f->dir);
	o.read_only = 1;
	assert_int_equal(hl_open(path, &o, &s), HL_NOSTORE);
	o.read_only = 0;
	o.create = 0;
	assert_int_equal(hl_open(path, &o, &s), HL_NOSTORE);
	/* a non-empty directory that is not a store is never taken over */
	snprintf(path, sizeof path, "%s/foreign", f->dir);
	mkdir(path, 0755);
	char file[4300];
	snprintf(file, sizeof file, "%s/notes.txt", path);
	FILE *fp = fopen(file, "w");
	fputs("mine", fp);
	fclose(fp);
	o.create = 1;
	assert_int_equal(hl_open(path, &o, &s), HL_NOTSTORE);
	/* a store written by a newer helios is refused */
	snprintf(path, sizeof path, "%s/newer", f->dir);
	hl_store *n = tu_open(path, HL_SYNC_NONE, 0);
	hl_close(n);
	snprintf(file, sizeof file, "%s/HELIOS", path);
	fp = fopen(file, "w");
	fputs("helios-store 99\n", fp);
	fclose(fp);
	assert_int_equal(hl_open(path, &o, &s), HL_VERSION);
	/* bad options */
	o.sync = 9;
	assert_int_equal(hl_open(f->dir, &o, &s), HL_INVALID);
	assert_null(s);
}

static void limits(void **st)
{
	fixture *f = *st;
	hl_close(f->s);
	hl_options o;
	hl_options_init(&o);
	o.max_object_size = 1000;
	assert_int_equal(hl_open(f->dir, &o, &f->s), 0);
	static uint8_t big[1001];
	hl_id id;
	assert_int_equal(hl_put(f->s, big, 1001, &id, NULL), HL_TOOBIG);
	assert_int_equal(hl_put(f->s, big, 1000, &id, NULL), 0);
	uint8_t small[10];
	size_t len = 0;
	assert_int_equal(hl_get_into(f->s, &id, small, sizeof small, &len), HL_TOOBIG);
	assert_int_equal(len, 1000);
}

static void sync_modes(void **st)
{
	fixture *f = *st;
	for (int mode = HL_SYNC_ALWAYS; mode <= HL_SYNC_NONE; mode++) {
		hl_close(f->s);
		f->s = tu_open(f->dir, (hl_sync_mode)mode, 0);
		char buf[64];
		int n = snprintf(buf, sizeof buf, "sync mode %d", mode);
		hl_id id;
		assert_int_equal(hl_put(f->s, buf, (size_t)n, &id, NULL), 0);
		assert_int_equal(hl_sync(f->s), 0);
		reopen(f);
		assert_reads(f->s, &id, buf, (size_t)n);
	}
}

typedef struct writer_arg {
	hl_store *s;
	int t;
	int failures;
} writer_arg;

static void *writer_main(void *p)
{
	writer_arg *a = p;
	for (int i = 0; i < 100; i++) {
		char buf[128];
		/* half the ids are shared between threads */
		int n = snprintf(buf, sizeof buf, "obj %d from %d", i, i % 2 ? a->t : -1);
		hl_id id;
		int err = hl_put(a->s, buf, (size_t)n, &id, NULL);
		if (err) {
			fprintf(stderr, "put: %s\n", hl_strerror(err));
			a->failures++;
		}
		hl_buf *b;
		if ((err = hl_get(a->s, &id, &b)) != 0 || hl_buf_len(b) != (size_t)n || memcmp(hl_buf_data(b), buf, (size_t)n))
			fprintf(stderr, "get: %s\n", hl_strerror(err)), a->failures++;
		else
			hl_buf_unref(b);
	}
	return NULL;
}

static void concurrent_writers(void **st)
{
	fixture *f = *st;
	enum { T = 16 };
	pthread_t th[T];
	writer_arg args[T];
	for (int t = 0; t < T; t++) {
		args[t] = (writer_arg){f->s, t, 0};
		pthread_create(&th[t], NULL, writer_main, &args[t]);
	}
	for (int t = 0; t < T; t++) {
		pthread_join(th[t], NULL);
		assert_int_equal(args[t].failures, 0);
	}
	hl_stats stats;
	assert_int_equal(hl_stats_get(f->s, &stats), 0);
	assert_int_equal(stats.objects, 50 + T * 50);
	printf("# %d writers: %llu new objects in %llu commits\n", T, (unsigned long long)stats.puts_new,
	       (unsigned long long)stats.commits);
	reopen(f);
	hl_verify_report rep;
	assert_int_equal(hl_verify(f->s, 0, NULL, NULL, NULL, &rep), 0);
	assert_int_equal(rep.objects, 50 + T * 50);
}

/* The memtable's size in slots, as a power of two. */
static unsigned active_bits(hl_store *s)
{
	return hl_memtab_bits(atomic_load(&s->local->active));
}

/* Puts objects [from, to): 64 bytes each, numbered. */
static void put_numbered(hl_store *s, uint32_t from, uint32_t to)
{
	static uint8_t data[1000][64];
	hl_put_item items[1000];
	for (uint32_t i = from; i < to;) {
		size_t n = 0;
		for (; n < 1000 && i < to; n++, i++) {
			memset(data[n], 0x5a, sizeof data[n]);
			memcpy(data[n], &i, sizeof i);
			items[n] = (hl_put_item){.data = data[n], .len = sizeof data[n]};
		}
		assert_int_equal(hl_put_batch(s, items, n), 0);
	}
}

/* A store that grows flushes larger memtables (one entry for every 64 objects, here every one,
 * so that a test reaches them): after a flush the spare is replaced by a larger table, the next
 * swap puts it in use, a reopen starts with one sized for the store, and every object reads
 * back, before and after. */
static void memtab_grows_with_store(void **st)
{
	fixture *f = *st;
	unsigned ratio = hl_st_objects_per_memtab_entry;
	hl_close(f->s); /* (the ratio changes only while no store runs: its flusher reads it) */
	hl_st_objects_per_memtab_entry = 1;
	f->s = tu_open(f->dir, HL_SYNC_BATCH, 0);
	assert_int_equal(active_bits(f->s), MEMTAB_BITS);
	uint32_t n = 0;
	for (unsigned want = MEMTAB_BITS + 1; want <= MEMTAB_BITS_MAX; want++) {
		uint32_t past = (UINT32_C(1) << (want - 2)) + 1; /* objects past the last size's share */
		put_numbered(f->s, n, past);
		n = past;
		assert_int_equal(hl_st_flush_index(f->s->local), 0); /* the spare is replaced */
		put_numbered(f->s, n, n + 10);
		n += 10;
		assert_int_equal(hl_st_flush_index(f->s->local), 0); /* and swapped in */
		assert_int_equal(active_bits(f->s), want);
	}
	hl_close(f->s);
	f->s = tu_open(f->dir, HL_SYNC_BATCH, 0);
	assert_int_equal(active_bits(f->s), MEMTAB_BITS_MAX);
	hl_close(f->s);
	hl_st_objects_per_memtab_entry = ratio;
	f->s = tu_open(f->dir, HL_SYNC_BATCH, 0);
	assert_int_equal(active_bits(f->s), MEMTAB_BITS); /* 64 per entry: small again */
	for (uint32_t i = 0; i < n; i++) {
		uint8_t data[64];
		memset(data, 0x5a, sizeof data);
		memcpy(data, &i, sizeof i);
		hl_id id;
		hl_hash(data, sizeof data, &id);
		assert_reads(f->s, &id, data, sizeof data);
	}
}

/* Repeated gets are served from the L1 cache; with the cache off the same calls read disk. */
static void l1_serves_repeat_gets(void **st)
{
	fixture *f = *st;
	hl_id id;
	assert_int_equal(hl_put(f->s, "cache me", 8, &id, NULL), 0);
	hl_stats before, after;
	assert_int_equal(hl_stats_get(f->s, &before), 0);
	for (int i = 0; i < 10; i++)
		assert_reads(f->s, &id, "cache me", 8);
	assert_int_equal(hl_stats_get(f->s, &after), 0);
	assert_true(after.l1_hits >= before.l1_hits + 19); /* 20 reads, the first one misses */
	assert_int_equal(after.l1_entries, 1);
	assert_true(after.l1_bytes <= after.l1_capacity);
	hl_close(f->s);
	hl_options o;
	hl_options_init(&o);
	o.l1_bytes = 0;
	assert_int_equal(hl_open(f->dir, &o, &f->s), 0);
	assert_reads(f->s, &id, "cache me", 8);
	assert_int_equal(hl_stats_get(f->s, &after), 0);
	assert_int_equal(after.l1_hits + after.l1_entries, 0);
	o.l1_policy = 9;
	hl_store *bad;
	assert_int_equal(hl_open(f->dir, &o, &bad), HL_INVALID);
}

/* Counts bytes read from segment files through the I/O table. */
static uint64_t seg_bytes_read;
static void count_if_segment(int fd, ssize_t r)
{
	char link[64], target[4096];
	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	ssize_t n = readlink(link, target, sizeof target - 1);
	if (r > 0 && n > 4) {
		target[n] = 0;
		if (!strcmp(target + n - 4, ".seg"))
			seg_bytes_read += (uint64_t)r;
	}
}
static ssize_t count_pread(int fd, void *b, size_t n, off_t o)
{
	ssize_t r = hl_io_system.pread(fd, b, n, o);
	count_if_segment(fd, r);
	return r;
}
static ssize_t count_preadv(int fd, const struct iovec *v, int c, off_t o)
{
	ssize_t r = hl_io_system.preadv(fd, v, c, o);
	count_if_segment(fd, r);
	return r;
}

/* Reopening a cleanly closed store reads no segment bytes at all (only the tail written after
 * the last index flush is ever re-read, and after a clean close there is none). */
static void open_reads_no_segments(void **st)
{
	fixture *f = *st;
	uint64_t seed = 3;
	static uint8_t buf[3000];
	for (int i = 0; i < 2000; i++) {
		tu_fill(&seed, buf, sizeof buf);
		assert_int_equal(hl_put(f->s, buf, sizeof buf, NULL, NULL), 0);
	}
	hl_close(f->s);
	hl_io counting = hl_io_system;
	counting.pread = count_pread;
	counting.preadv = count_preadv;
	seg_bytes_read = 0;
	hl_io_set(&counting);
	f->s = tu_open(f->dir, HL_SYNC_ALWAYS, 0);
	hl_io_set(NULL);
	assert_int_equal(seg_bytes_read, 0);
	hl_stats stats;
	assert_int_equal(hl_stats_get(f->s, &stats), 0);
	assert_int_equal(stats.objects, 2000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(put_get_sizes, setup, teardown),
		cmocka_unit_test_setup_teardown(missing_and_invalid, setup, teardown),
		cmocka_unit_test_setup_teardown(compressible_is_compressed, setup, teardown),
		cmocka_unit_test_setup_teardown(put_expect_verifies, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_is_atomic, setup, teardown),
		cmocka_unit_test_setup_teardown(iterate_all, setup, teardown),
		cmocka_unit_test_setup_teardown(segments_roll_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(lock_and_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(open_errors, setup, teardown),
		cmocka_unit_test_setup_teardown(limits, setup, teardown),
		cmocka_unit_test_setup_teardown(sync_modes, setup, teardown),
		cmocka_unit_test_setup_teardown(concurrent_writers, setup, teardown),
		cmocka_unit_test_setup_teardown(open_reads_no_segments, setup, teardown),
		cmocka_unit_test_setup_teardown(l1_serves_repeat_gets, setup, teardown),
		cmocka_unit_test_setup_teardown(memtab_grows_with_store, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
