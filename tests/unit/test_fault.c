/* test_fault.c — fault injection through the I/O table: for N = 1, 2, … fail the Nth file call
 * of an open + puts + batch + gets + close workload with ENOSPC, EIO or a short write, once or
 * from N on, in sync=always and sync=batch. Each time the caller sees a clear error (or, for short
 * writes, no error at all: they are retried), and a clean reopen finds every acknowledged object
 * intact and nothing corrupt. The loop ends when the workload completes without reaching call N.
 * A failed sync is fail-stop: for K = 1, 2, … the Kth sync fails with EIO, then ENOSPC; the
 * writes of its group fail, every later write (objects, refs, kv) answers HL_STOPPED, health is 0,
 * reads go on, and a reopen has everything acknowledged before and takes writes again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "testutil.h"
#include "base/io.h"
#include "faultio.h"

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
	if (err == HL_NOSPACE || err == EIO || err == ENOSPC || err == HL_STOPPED)
		return;
	fail_msg("%s failed with unexpected %d (%s) under %s at call %ld%s", what, err, hl_strerror(err),
	         tu_fault_names[tu_faults.kind], tu_faults.fail_at, tu_faults.persist ? " and after" : "");
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
		fail_msg("reopen after %s at call %ld: %s", tu_fault_names[tu_faults.kind], tu_faults.fail_at, hl_strerror(err));
	for (int i = 0; i < nack; i++) {
		hl_buf *b = NULL;
		err = hl_get(s, &ack[i].id, &b);
		if (err)
			fail_msg("acknowledged object lost after %s at call %ld: %s", tu_fault_names[tu_faults.kind], tu_faults.fail_at,
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

static void fault_loop(hl_sync_mode mode, int kind, int from_n_on)
{
	tu_faults.kind = kind;
	tu_faults.persist = from_n_on;
	long total = 0;
	for (tu_faults.fail_at = 1;; tu_faults.fail_at++) {
		char *dir = tu_tmpdir("fault");
		nack = 0;
		tu_faults.calls = 0;
		tu_faults.injected = 0;
		hl_io_set(&tu_faulty_io);
		workload(dir, mode, 42);
		hl_io_set(NULL);
		tu_faults.persist = 0;
		if (kind == TU_F_SHORT && tu_faults.injected) /* short writes are retried: nothing may fail */
			assert_int_equal(nack, 12 + 8);
		check_after(dir);
		tu_rmrf(dir);
		free(dir);
		tu_faults.persist = from_n_on;
		if (!tu_faults.injected) {
			total = tu_faults.calls;
			break;
		}
	}
	printf("# sync=%s, %s: failed each of %ld file calls in turn, %s\n",
	       mode == HL_SYNC_ALWAYS ? "always" : "batch", tu_fault_names[kind], total,
	       from_n_on ? "and every call after it" : "once");
	assert_true(total > 30);
}

static void always_enospc(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, TU_F_ENOSPC, 0); }
static void always_eio(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, TU_F_EIO, 0); }
static void always_short(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, TU_F_SHORT, 0); }
static void batch_enospc(void **st) { (void)st; fault_loop(HL_SYNC_BATCH, TU_F_ENOSPC, 0); }
static void batch_eio(void **st) { (void)st; fault_loop(HL_SYNC_BATCH, TU_F_EIO, 0); }
static void always_eio_on(void **st) { (void)st; fault_loop(HL_SYNC_ALWAYS, TU_F_EIO, 1); }
static void batch_enospc_on(void **st) { (void)st; fault_loop(HL_SYNC_BATCH, TU_F_ENOSPC, 1); }

/* One round of the fail-stop test: the Kth sync fails; returns whether it was reached. */
static int sync_fails_at(int kind, long k)
{
	char *dir = tu_tmpdir("syncfail");
	tu_faults.kind = kind;
	tu_faults.fail_at = k;
	tu_faults.syncs_only = 1;
	tu_faults.calls = 0;
	tu_faults.injected = 0;
	nack = 0;
	hl_options o;
	hl_options_init(&o);
	o.segment_size = 16 << 10;
	o.health_interval_ms = 0;
	hl_store *s = NULL;
	hl_io_set(&tu_faulty_io);
	int err = hl_open(dir, &o, &s);
	hl_id ref_val;
	int have_ref = 0, stopped = 0;
	if (err)
		assert_clear_error(err, "open");
	uint8_t buf[5000];
	uint64_t seed = 7;
	for (int i = 0; !err && i < 10; i++) {
		size_t len = 1 + (size_t)(tu_rand(&seed) % sizeof buf);
		tu_fill(&seed, buf, len);
		hl_id id;
		int e = hl_put(s, buf, len, &id, NULL);
		if (!stopped && e) { /* the failed sync: its group is not acknowledged */
			if (e != EIO && e != HL_NOSPACE)
				fail_msg("the put whose sync failed (%s, sync %ld): %s", tu_fault_names[kind], k, hl_strerror(e));
			stopped = 1;
		} else if (stopped) { /* and nothing is written after it */
			if (e != HL_STOPPED)
				fail_msg("a put after a failed sync: %s", hl_strerror(e));
			if (nack)
				assert_int_equal(hl_ref_set(s, "after", &ack[0].id), HL_STOPPED);
			assert_int_equal(hl_kv_put(s, "ns", "k", 1, "v", 1), HL_STOPPED);
			assert_int_equal(hl_sync(s), HL_STOPPED);
			hl_health h;
			assert_int_equal(hl_health_get(s, &h), 0);
			assert_int_equal(h.score, 0);
			assert_non_null(strstr(h.reason, "failed sync"));
		} else {
			remember(&id, buf, len);
			e = hl_ref_set(s, "last", &id);
			if (e == 0)
				ref_val = id, have_ref = 1;
			else if (e == EIO || e == HL_NOSPACE || e == HL_STOPPED)
				stopped = 1; /* the index's sync failed: a name is not acknowledged either */
			else
				fail_msg("ref set: %s", hl_strerror(e));
		}
	}
	for (int i = 0; !err && i < nack; i++) { /* reads go on */
		hl_buf *b = NULL;
		assert_int_equal(hl_get(s, &ack[i].id, &b), 0);
		hl_buf_unref(b);
	}
	hl_close(s);
	hl_io_set(NULL);
	tu_faults.syncs_only = 0;
	int reached = tu_faults.injected;
	if (nack || have_ref) { /* reopened: everything acknowledged, and writes again */
		hl_options_init(&o);
		o.segment_size = 16 << 10;
		assert_int_equal(hl_open(dir, &o, &s), 0);
		for (int i = 0; i < nack; i++) {
			hl_buf *b = NULL;
			if ((err = hl_get(s, &ack[i].id, &b)) != 0)
				fail_msg("acknowledged object lost after a failed sync (%s, sync %ld): %s", tu_fault_names[kind],
				         k, hl_strerror(err));
			hl_buf_unref(b);
		}
		hl_id got;
		if (have_ref) {
			assert_int_equal(hl_ref_get(s, "last", &got), 0);
			assert_true(hl_id_equal(&got, &ref_val));
		}
		assert_int_equal(hl_put(s, "after", 5, NULL, NULL), 0);
		hl_health h;
		assert_int_equal(hl_health_get(s, &h), 0);
		assert_int_equal(h.score, 100);
		hl_close(s);
	}
	tu_rmrf(dir);
	free(dir);
	return reached;
}

static void sync_failure_stops_writes(void **st)
{
	(void)st;
	for (int kind = TU_F_ENOSPC; kind <= TU_F_EIO; kind++) {
		long k = 1;
		while (sync_fails_at(kind, k))
			k++;
		printf("# %s on each of %ld syncs in turn: fail-stop, nothing acknowledged lost\n", tu_fault_names[kind],
		       k - 1);
		assert_true(k > 10);
	}
}

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
		cmocka_unit_test(batch_enospc), cmocka_unit_test(batch_eio), cmocka_unit_test(always_eio_on),
		cmocka_unit_test(batch_enospc_on), cmocka_unit_test(sync_failure_stops_writes),
		cmocka_unit_test(index_cannot_grow),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
