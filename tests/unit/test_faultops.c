/* test_faultops.c — fault loops over every operation (SQLite's malloc and I/O-error tests): for
 * each operation — open, put (small and chunked), batch, get, snapshot, restore, ref and kv
 * updates, gc with compaction, and recovery of an unindexed tail — fail the Nth allocation of
 * the library, or the Nth file call (EIO), made while it runs, once and then from N on, for
 * N = 1, 2, … until the operation completes without reaching N. Each time: no crash, no leak (the
 * ASan build runs this with LeakSanitizer), the operation either succeeds or returns a clear
 * error, the store closes, and a clean reopen finds every object acknowledged before and during
 * the operation, verify finds nothing wrong, and the store takes writes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include "testutil.h"
#include "base/alloc.h"
#include "base/io.h"
#include "faultio.h"

static int io_mode;

static void arm(long n, int from_n_on)
{
	tu_fault_arm(TU_F_EIO, n, from_n_on, 0);
	if (io_mode)
		hl_io_set(&tu_faulty_io);
	else
		atomic_store(&hl_alloc_fail, tu_fault_alloc);
}

static void disarm(void)
{
	atomic_store(&hl_alloc_fail, NULL);
	hl_io_set(NULL);
}

enum { OP_OPEN, OP_PUT, OP_BATCH, OP_GET, OP_SNAPSHOT, OP_RESTORE, OP_NAMES, OP_GC, OP_RECOVERY, OP_COUNT_ };
static const char *op_names[] = {"open", "put", "batch", "get", "snapshot", "restore", "ref and kv", "gc",
                                 "recovery"};

#define NOBJ 8
#define LARGE (300u << 10)
static uint8_t small[NOBJ][3000];
static uint8_t large[LARGE];
static hl_id ids[NOBJ + 2]; /* small ones, then the large one, then the batch's first */

static void options(hl_options *o)
{
	hl_options_init(o);
	o->segment_size = 32u << 10;
	o->chunk_threshold = 64u << 10;
	o->chunk_min = 4096, o->chunk_avg = 16384, o->chunk_max = 65536;
	o->gc_grace_s = 0;
	o->health_interval_ms = 0;
	o->map_size = 256u << 20;
}

static hl_store *open_clean(const char *dir)
{
	hl_options o;
	options(&o);
	hl_store *s;
	int err = hl_open(dir, &o, &s);
	if (err)
		fail_msg("reopen: %s", hl_strerror(err));
	return s;
}

/* A failure must be a named error, never corruption or a crash. */
static void clear_error(int err, int op, long n)
{
	if (err == ENOMEM || err == HL_NOSPACE || err == EIO || err == HL_STOPPED || err == HL_BUSY)
		return;
	fail_msg("%s with %s %ld failing%s: %d (%s)", op_names[op], io_mode ? "file call" : "allocation", n,
	         tu_faults.persist ? " and after" : "", err, hl_strerror(err));
}

/* The store every round starts from: some objects (one chunked), a tree, garbage to collect. */
static void prepare(const char *dir, const char *tree, hl_id *root)
{
	hl_store *s = open_clean(dir);
	for (int i = 0; i < NOBJ; i++)
		assert_int_equal(hl_put(s, small[i], sizeof small[i], &ids[i], NULL), 0);
	assert_int_equal(hl_put(s, large, sizeof large, &ids[NOBJ], NULL), 0);
	assert_int_equal(hl_snapshot(s, tree, 1, root, NULL), 0);
	assert_int_equal(hl_ref_set(s, "keep/root", root), 0);
	for (int i = 0; i < NOBJ; i++) { /* roots for the small objects; the large one is garbage */
		char key[8];
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(hl_kv_put(s, "ns", key, strlen(key), small[i], sizeof small[i]), 0);
	}
	hl_close(s);
}

static void check(const char *dir, int op, long n, const hl_id *extra, size_t nextra)
{
	hl_store *s = open_clean(dir);
	for (int i = 0; i < NOBJ; i++) {
		hl_buf *b = NULL;
		int err = hl_get(s, &ids[i], &b);
		if (err)
			fail_msg("after %s failed at allocation %ld: object %d: %s", op_names[op], n, i, hl_strerror(err));
		hl_buf_unref(b);
	}
	for (size_t i = 0; i < nextra; i++) {
		hl_buf *b = NULL;
		int err = hl_get(s, &extra[i], &b);
		if (err)
			fail_msg("after %s failed at allocation %ld: an object it acknowledged: %s", op_names[op], n,
			         hl_strerror(err));
		hl_buf_unref(b);
	}
	hl_verify_report rep;
	int err = hl_verify(s, 1, NULL, NULL, NULL, &rep);
	if (err)
		fail_msg("after %s failed at allocation %ld: verify: %s", op_names[op], n, hl_strerror(err));
	uint64_t problems;
	if ((err = hl_check_index(s, &problems)) != 0)
		fail_msg("after %s failed at %ld: the index and the segment files disagree: %s", op_names[op], n,
		         hl_strerror(err));
	assert_int_equal(hl_put(s, "writes again", 12, NULL, NULL), 0);
	hl_close(s);
}

/* One round: the operation with allocation n failing. Returns whether n was reached. */
static int round_at(int op, long n, int from_n_on, const char *base, const char *tree)
{
	char dir[4200], out[4200], pristine[4200];
	snprintf(dir, sizeof dir, "%s/store", base);
	snprintf(out, sizeof out, "%s/restored", base);
	snprintf(pristine, sizeof pristine, "%s/pristine", base);
	tu_rmrf(out);
	tu_copy_tree(pristine, dir);
	hl_id acked[2];
	size_t nacked = 0;
	hl_store *s = NULL;
	hl_options o;
	options(&o);
	int err = 0;
	if (op == OP_RECOVERY) { /* a tail the index has not seen: the open replays it */
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			hl_store *c;
			if (hl_open(dir, &o, &c) || hl_put(c, "unindexed", 9, NULL, NULL))
				_exit(1);
			_exit(0);
		}
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
		hl_hash("unindexed", 9, &acked[nacked++]);
	}
	if (op == OP_OPEN || op == OP_RECOVERY)
		arm(n, from_n_on);
	err = hl_open(dir, &o, &s);
	if (err) {
		disarm();
		clear_error(err, op, n);
		check(dir, op, n, acked, nacked);
		return tu_faults.injected;
	}
	if (op != OP_OPEN && op != OP_RECOVERY)
		arm(n, from_n_on);
	uint8_t fresh[5000];
	uint64_t seed = (uint64_t)n * 31 + (uint64_t)op;
	tu_fill(&seed, fresh, sizeof fresh);
	hl_id id;
	hl_buf *b = NULL;
	switch (op) {
	case OP_PUT: {
		static uint8_t big[200u << 10];
		tu_fill(&seed, big, sizeof big);
		if ((err = hl_put(s, fresh, sizeof fresh, &id, NULL)) == 0)
			acked[nacked++] = id;
		if (!err && (err = hl_put(s, big, sizeof big, &id, NULL)) == 0) /* chunked */
			acked[nacked++] = id;
		break;
	}
	case OP_BATCH: {
		hl_put_item it[4];
		for (int i = 0; i < 4; i++)
			it[i] = (hl_put_item){.data = fresh + i * 1000, .len = 1000};
		if ((err = hl_put_batch(s, it, 4)) == 0)
			acked[nacked++] = it[0].id, acked[nacked++] = it[3].id;
		break;
	}
	case OP_GET:
		for (int i = 0; i <= NOBJ && !err; i++) {
			if ((err = hl_get(s, &ids[i], &b)) == 0) {
				hl_id again;
				hl_hash(hl_buf_data(b), hl_buf_len(b), &again);
				assert_true(hl_id_equal(&again, &ids[i]));
				hl_buf_unref(b);
			}
		}
		break;
	case OP_SNAPSHOT: { /* one new file, so the snapshot stores a blob and trees */
		char p[4300];
		snprintf(p, sizeof p, "%s/sub/fresh", tree);
		disarm();
		FILE *f = fopen(p, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(fresh, 1, sizeof fresh, f), sizeof fresh);
		fclose(f);
		arm(n, from_n_on);
		err = hl_snapshot(s, tree, 2, &id, NULL);
		break;
	}
	case OP_RESTORE: {
		hl_id root;
		disarm();
		assert_int_equal(hl_ref_get(s, "keep/root", &root), 0);
		arm(n, from_n_on);
		err = hl_restore(s, &root, out);
		break;
	}
	case OP_NAMES:
		if ((err = hl_ref_set(s, "keep/again", &ids[0])) == 0 &&
		    (err = hl_kv_put(s, "ns", "new", 3, fresh, 100)) == 0)
			hl_hash(fresh, 100, &acked[nacked++]);
		break;
	case OP_GC: {
		hl_gc_options go;
		hl_gc_options_init(&go);
		go.compact_below = 0.9;
		hl_gc_report gr;
		err = hl_gc(s, &go, &gr);
		break;
	}
	}
	disarm();
	int reached = tu_faults.injected;
	if (err)
		clear_error(err, op, n);
	hl_close(s);
	check(dir, op, n, acked, nacked);
	return reached;
}

static void fault_loops(int io)
{
	io_mode = io;
	char *base = tu_tmpdir("alloc");
	char pristine[4200], tree[4200], path[4400];
	snprintf(pristine, sizeof pristine, "%s/pristine", base);
	snprintf(tree, sizeof tree, "%s/tree", base);
	uint64_t seed = 5;
	for (int i = 0; i < NOBJ; i++)
		tu_fill(&seed, small[i], sizeof small[i]);
	tu_fill(&seed, large, sizeof large);
	assert_int_equal(mkdir(tree, 0755), 0);
	snprintf(path, sizeof path, "%s/sub", tree);
	assert_int_equal(mkdir(path, 0755), 0);
	for (int i = 0; i < 4; i++) { /* a few files, one of them large */
		snprintf(path, sizeof path, "%s/%sf%d", tree, i % 2 ? "sub/" : "", i);
		FILE *f = fopen(path, "wb");
		assert_non_null(f);
		assert_int_equal(fwrite(i == 3 ? large : small[i], 1, i == 3 ? sizeof large : sizeof small[i], f),
		                 i == 3 ? sizeof large : sizeof small[i]);
		fclose(f);
	}
	hl_id root;
	prepare(pristine, tree, &root);
	long total = 0;
	for (int op = 0; op < OP_COUNT_; op++) {
		for (int from_n_on = 0; from_n_on < 2; from_n_on++) {
			long n = 1;
			while (round_at(op, n, from_n_on, base, tree))
				n++;
			total += n - 1;
			printf("# %s: each of %ld %s failed in turn, %s\n", op_names[op], n - 1,
			       io ? "file calls" : "allocations", from_n_on ? "and every one after it" : "once");
			assert_true(n > 1 || (io && op == OP_NAMES)); /* names live in LMDB, not the table */
		}
	}
	printf("# %ld rounds, no crash, no wrong answer, nothing acknowledged lost\n", total);
	tu_rmrf(base);
	free(base);
}

static void allocation_loops(void **st) { (void)st; fault_loops(0); }
static void io_error_loops(void **st) { (void)st; fault_loops(1); }

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(allocation_loops), cmocka_unit_test(io_error_loops)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
