/* test_fault.c — fault injection through the I/O table: for N = 1, 2, … fail the Nth file call
 * of an open + puts + batch + gets + close workload with ENOSPC, EIO or a short write, in
 * sync=always and sync=batch. Each time the caller sees a clear error (or, for short writes, no
 * error at all: they are retried), and a clean reopen finds every acknowledged object intact and
 * nothing corrupt. The loop ends when the workload completes without reaching call N. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "testutil.h"
#include "base/io.h"

enum { F_ENOSPC, F_EIO, F_SHORT };
static const char *fault_names[] = {"ENOSPC", "EIO", "short write"};
/* calls and injected are touched by the store's background thread too (batch-mode syncs). */
static _Atomic long calls;
static long fail_at;
static int fault;
static _Atomic int injected;

/* Returns nonzero when this call is the one to fail (and sets errno). */
static int hit(int is_write)
{
	if (++calls != fail_at)
		return 0;
	if (fault == F_SHORT) {
		if (!is_write)
			return 0;
		injected = 1;
		return 2;
	}
	injected = 1;
	errno = fault == F_ENOSPC ? ENOSPC : EIO;
	return 1;
}

static int f_open(const char *p, int fl, mode_t m) { return hit(0) ? -1 : hl_io_system.open(p, fl, m); }
static ssize_t f_pread(int fd, void *b, size_t n, off_t o) { return hit(0) ? -1 : hl_io_system.pread(fd, b, n, o); }
static ssize_t f_preadv(int fd, const struct iovec *v, int c, off_t o) { return hit(0) ? -1 : hl_io_system.preadv(fd, v, c, o); }
static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t o)
{
	int h = hit(1);
	if (h == 1)
		return -1;
	if (h == 2 && n > 1)
		n /= 2; /* short write: half now, the rest on the retry */
	return hl_io_system.pwrite(fd, b, n, o);
}
static ssize_t f_pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	int h = hit(1);
	if (h == 1)
		return -1;
	if (h == 2 && v[0].iov_len > 1)
		return hl_io_system.pwrite(fd, v[0].iov_base, v[0].iov_len / 2, o);
	return hl_io_system.pwritev(fd, v, c, o);
}
static int f_fdatasync(int fd) { return hit(0) ? -1 : hl_io_system.fdatasync(fd); }
static int f_fsync(int fd) { return hit(0) ? -1 : hl_io_system.fsync(fd); }
static int f_ftruncate(int fd, off_t l) { return hit(0) ? -1 : hl_io_system.ftruncate(fd, l); }
static int f_mkdir(const char *p, mode_t m) { return hit(0) ? -1 : hl_io_system.mkdir(p, m); }
static int f_unlink(const char *p) { return hit(0) ? -1 : hl_io_system.unlink(p); }
static int f_rename(const char *a, const char *b) { return hit(0) ? -1 : hl_io_system.rename(a, b); }

static const hl_io faulty = {
	.open = f_open, .close = close, .pread = f_pread, .preadv = f_preadv, .pwrite = f_pwrite,
	.pwritev = f_pwritev, .fdatasync = f_fdatasync, .fsync = f_fsync, .ftruncate = f_ftruncate,
	.fstat = fstat, .mkdir = f_mkdir, .unlink = f_unlink, .rmdir = rmdir, .rename = f_rename,
	.flock = flock,
};

typedef struct acked {
	hl_id id;
	uint8_t data[6000];
	size_t len;
} acked;

static acked ack[64];
static int nack;

static void remember(const hl_id *id, const void *d, size_t len)
{
	ack[nack].id = *id;
	memcpy(ack[nack].data, d, len);
	ack[nack].len = len;
	nack++;
}

/* A failure must be a named, expected error, never corruption or an unknown code. */
static void assert_clear_error(int err, const char *what)
{
	if (err == HL_NOSPACE || err == EIO || err == ENOSPC)
		return;
	fail_msg("%s failed with unexpected %d (%s) under %s at call %ld", what, err, hl_strerror(err),
	         fault_names[fault], fail_at);
}

/* The workload; returns with the store closed. Records every acknowledged object. */
static void workload(const char *dir, hl_sync_mode mode, uint64_t seed)
{
	hl_options o;
	hl_options_init(&o);
	o.sync = mode;
	o.segment_size = 16 << 10; /* rolls during the workload */
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err) {
		assert_clear_error(err, "open");
		return;
	}
	uint8_t buf[6000];
	for (int i = 0; i < 12; i++) {
		size_t len = (size_t)(tu_rand(&seed) % sizeof buf);
		tu_fill(&seed, buf, len);
		if (i % 2)
			memset(buf, 'z', len / 2);
		hl_id id;
		err = hl_put(s, buf, len, &id, NULL);
		if (err)
			assert_clear_error(err, "put");
		else
			remember(&id, buf, len);
		if (i == 5) { /* a batch of 8 in the middle */
			static uint8_t bd[8][3000];
			hl_put_item items[8];
			for (int j = 0; j < 8; j++) {
				tu_fill(&seed, bd[j], sizeof bd[j]);
				items[j] = (hl_put_item){.data = bd[j], .len = sizeof bd[j]};
			}
			err = hl_put_batch(s, items, 8);
			if (err)
				assert_clear_error(err, "batch");
			else
				for (int j = 0; j < 8; j++)
					remember(&items[j].id, bd[j], sizeof bd[j]);
		}
	}
	for (int i = 0; i < nack; i++) { /* reads under faults: right bytes or an I/O error */
		hl_buf *b = NULL;
		err = hl_get(s, &ack[i].id, &b);
		if (err) {
			assert_clear_error(err, "get");
			continue;
		}
		assert_int_equal(hl_buf_len(b), ack[i].len);
		assert_memory_equal(hl_buf_data(b), ack[i].data, ack[i].len);
		hl_buf_unref(b);
	}
	hl_close(s);
}

static void check_after(const char *dir)
{
	hl_options o;
	hl_options_init(&o);
	o.segment_size = 16 << 10;
	hl_store *s;
	int err = hl_open(dir, &o, &s);
	if (err == HL_NOSTORE && nack == 0)
		return; /* creation itself failed: nothing was acknowledged */
	if (err)
		fail_msg("reopen after %s at call %ld: %s", fault_names[fault], fail_at, hl_strerror(err));
	for (int i = 0; i < nack; i++) {
		hl_buf *b = NULL;
		err = hl_get(s, &ack[i].id, &b);
		if (err)
			fail_msg("acknowledged object lost after %s at call %ld: %s", fault_names[fault], fail_at,
			         hl_strerror(err));
		assert_int_equal(hl_buf_len(b), ack[i].len);
		assert_memory_equal(hl_buf_data(b), ack[i].data, ack[i].len);
		hl_buf_unref(b);
	}
	hl_verify_report rep;
	assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &rep), 0);
	/* and the store still takes writes */
	assert_int_equal(hl_put(s, "after the fault", 15, NULL, NULL), 0);
	hl_close(s);
}

static void fault_loop(hl_sync_mode mode, int kind)
{
	fault = kind;
	long total = 0;
	for (fail_at = 1;; fail_at++) {
		char *dir = tu_tmpdir("fault");
		nack = 0;
		calls = 0;
		injected = 0;
		hl_io_set(&faulty);
		workload(dir, mode, 42);
		hl_io_set(NULL);
		if (kind == F_SHORT && injected) /* short writes are retried: nothing may fail */
			assert_int_equal(nack, 12 + 8);
		check_after(dir);
		tu_rmrf(dir);
		free(dir);
		if (!injected) {
			total = calls;
			break;
		}
	}
	printf("# sync=%s, %s: failed each of %ld file calls in turn\n",
	       mode == HL_SYNC_ALWAYS ? "always" : "batch", fault_names[kind], total);
	assert_true(total > 30);
}

static void always_enospc(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, F_ENOSPC); }
static void always_eio(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, F_EIO); }
static void always_short(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, F_SHORT); }
static void batch_enospc(void **st) { (void)st; fault_loop(HL_SYNC_BATCH, F_ENOSPC); }
static void batch_eio(void **st) { (void)st; fault_loop(HL_SYNC_BATCH, F_EIO); }

/* The index cannot grow (its map is full, as on a full disk): acknowledged objects stay durable in
 * the segments; hl_sync says so without failing; the store still opens (read-write and read-only)
 * with every acknowledged object readable, counted and verified; with room again the index takes
 * them all. */
static hl_store *open_map(const char *dir, int read_only, uint64_t map_size)
{
	hl_options o;
	hl_options_init(&o);
	o.read_only = read_only;
	o.map_size = map_size;
	o.l1_bytes = 0;
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err)
		fprintf(stderr, "open (read-only %d, map %llu): %s\n", read_only, (unsigned long long)map_size,
		        hl_strerror(err));
	assert_int_equal(err, 0);
	return s;
}

static void check_all(hl_store *s, const hl_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		assert_int_equal(hl_has(s, &ids[i]), 0);
	hl_verify_report rep;
	assert_int_equal(hl_verify(s, 2, NULL, NULL, NULL, &rep), 0);
	assert_int_equal(rep.objects, n); /* every acknowledged object checked, none skipped */
	hl_stats st;
	assert_int_equal(hl_stats_get(s, &st), 0);
	assert_int_equal(st.objects, n);
}

static void index_cannot_grow(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("fault-map");
	const uint64_t small = 1u << 20;
	hl_store *s = open_map(dir, 0, small);
	enum { BATCH = 256, MAXN = 200000 };
	hl_id *ids = malloc(MAXN * sizeof(*ids));
	uint8_t data[BATCH][40];
	size_t n = 0;
	uint64_t seed = 11;
	int err = 0;
	while (!err && n + BATCH <= MAXN) {
		hl_put_item items[BATCH];
		for (int i = 0; i < BATCH; i++) {
			tu_fill(&seed, data[i], sizeof data[i]);
			items[i] = (hl_put_item){.data = data[i], .len = sizeof data[i]};
		}
		if ((err = hl_put_batch(s, items, BATCH)) == 0)
			for (int i = 0; i < BATCH; i++)
				ids[n++] = items[i].id;
	}
	printf("# %zu objects acknowledged before the index was full (%s)\n", n, hl_strerror(err));
	assert_int_equal(err, HL_NOSPACE);
	assert_int_equal(hl_sync(s), 0); /* durable in the segments: not a failure */
	hl_stats stats;
	assert_int_equal(hl_stats_get(s, &stats), 0);
	assert_true(stats.unindexed > 0);
	check_all(s, ids, n);
	hl_close(s);
	s = open_map(dir, 0, small); /* opening needs no room */
	check_all(s, ids, n);
	hl_close(s);
	s = open_map(dir, 1, small);
	check_all(s, ids, n);
	hl_close(s);
	s = open_map(dir, 0, UINT64_C(1) << 30); /* room again: all indexed */
	assert_int_equal(hl_sync(s), 0);
	assert_int_equal(hl_stats_get(s, &stats), 0);
	assert_int_equal(stats.unindexed, 0);
	check_all(s, ids, n);
	hl_close(s);
	free(ids);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	setenv("HELIOS_LOG", "error", 0);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(always_enospc), cmocka_unit_test(always_eio), cmocka_unit_test(always_short),
		cmocka_unit_test(batch_enospc), cmocka_unit_test(batch_eio), cmocka_unit_test(index_cannot_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
