/* test_loctab.c — the object index's copy in memory. The table alone: random puts, removals and
 * access-time raises over ids enough to make long probe runs, checked against a plain model after
 * every step (and the count); not answering before it is complete, nor after it gave up (a failed
 * growth); readers in four threads never see an entry of another id while a writer changes it.
 * In a store: it equals the index file (verify --deep's check) after puts, a collection that
 * deletes half, quarantines, a compaction, a reopen; the objects read as with it off. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"
#include "base/alloc.h"
#include "store/loctab.h"

enum { POOL = 20000, OPS = 300000 };

static hl_id id_of(uint32_t i)
{
	hl_id id;
	hl_hash(&i, sizeof i, &id);
	return id;
}

/* An entry that says which id it belongs to (offset = i), the rest varied by v. */
static hl_idx_entry entry_of(uint32_t i, uint64_t v)
{
	return (hl_idx_entry){1 + (uint32_t)(v % 1000), i, v * 7, v * 13, (uint16_t)(v & 0xff), (uint32_t)(v % 23), v};
}

static void model_check(void **st)
{
	(void)st;
	static hl_idx_entry model[POOL];
	static int has[POOL];
	static hl_id ids[POOL];
	for (uint32_t i = 0; i < POOL; i++)
		ids[i] = id_of(i);
	hl_loctab *t = hl_loctab_new();
	assert_non_null(t);
	hl_idx_entry e;
	assert_int_equal(hl_loctab_get(t, &ids[0], &e), HL_BUSY); /* not complete yet */
	hl_loctab_complete(t);
	uint64_t rng = 99, live = 0;
	for (int k = 0; k < OPS; k++) {
		uint32_t i = (uint32_t)(tu_rand(&rng) % (k < OPS / 2 ? POOL : POOL / 8)); /* then churn */
		unsigned op = (unsigned)(tu_rand(&rng) % 10);
		if (op < 5) {
			hl_idx_entry ne = entry_of(i, tu_rand(&rng) % 100000);
			hl_loctab_put(t, &ids[i], &ne);
			live += !has[i];
			model[i] = ne, has[i] = 1;
		} else if (op < 8) {
			hl_loctab_del(t, &ids[i]);
			live -= has[i];
			has[i] = 0;
		} else {
			uint64_t at = tu_rand(&rng) % 100000;
			hl_loctab_touch(t, &ids[i], at);
			if (has[i] && model[i].atime < at)
				model[i].atime = at;
		}
		uint32_t j = (uint32_t)(tu_rand(&rng) % POOL);
		int err = hl_loctab_get(t, &ids[j], &e);
		if (has[j]) {
			assert_int_equal(err, 0);
			assert_true(hl_idx_entry_equal(&e, &model[j]));
		} else {
			assert_int_equal(err, HL_NOTFOUND);
		}
	}
	for (uint32_t i = 0; i < POOL; i++) {
		int err = hl_loctab_get(t, &ids[i], &e);
		assert_int_equal(err, has[i] ? 0 : HL_NOTFOUND);
		if (has[i])
			assert_true(hl_idx_entry_equal(&e, &model[i]));
	}
	assert_int_equal(hl_loctab_count(t), live);
	printf("# %llu entries, %llu bytes of slots\n", (unsigned long long)live,
	       (unsigned long long)hl_loctab_bytes(t));
	hl_loctab_free(t);
}

static int refuse(void) { return 1; }

/* A growth that cannot allocate gives the table up: it answers HL_BUSY from then on. */
static void gives_up(void **st)
{
	(void)st;
	hl_loctab *t = hl_loctab_new();
	assert_non_null(t);
	hl_loctab_complete(t);
	uint32_t i = 0;
	hl_idx_entry e = entry_of(0, 5), got;
	for (; i < 1000; i++) { /* enough to fill a shard's first table */
		hl_id id = id_of(i);
		hl_loctab_put(t, &id, &e);
	}
	hl_id first = id_of(0);
	assert_int_equal(hl_loctab_get(t, &first, &got), 0);
	atomic_store(&hl_alloc_fail, refuse);
	for (; i < 40000 && hl_loctab_ready(t); i++) {
		hl_id id = id_of(i);
		hl_loctab_put(t, &id, &e);
	}
	atomic_store(&hl_alloc_fail, NULL);
	assert_false(hl_loctab_ready(t));
	assert_int_equal(hl_loctab_get(t, &first, &got), HL_BUSY);
	hl_loctab_free(t);

	/* so does an entry whose fields do not fit its slot; the largest that fit read back whole */
	hl_idx_entry big = {UINT32_MAX, (UINT64_C(1) << 40) - 1, (UINT64_C(1) << 40) - 1,
	                    (UINT64_C(1) << 40) - 1, 0xffff, 255, UINT32_MAX};
	hl_idx_entry too[] = {big, big, big, big, big};
	too[0].offset++, too[1].stored_len++, too[2].raw_len++, too[3].marks++, too[4].atime++;
	for (int k = 0; k < 5; k++) {
		t = hl_loctab_new();
		hl_loctab_complete(t);
		hl_loctab_put(t, &first, &big);
		assert_int_equal(hl_loctab_get(t, &first, &got), 0);
		assert_true(hl_idx_entry_equal(&got, &big));
		hl_loctab_put(t, &first, &too[k]);
		assert_int_equal(hl_loctab_get(t, &first, &got), HL_BUSY);
		hl_loctab_free(t);
	}
}

typedef struct race {
	hl_loctab *t;
	atomic_int stop, next_seed;
	atomic_long seen;
} race;

static void *reader(void *arg)
{
	race *r = arg;
	uint64_t rng = 12345 + (uint64_t)atomic_fetch_add(&r->next_seed, 1); /* each its own ids */
	while (!atomic_load(&r->stop)) {
		uint32_t i = (uint32_t)(tu_rand(&rng) % 5000);
		hl_id id = id_of(i);
		hl_idx_entry e;
		int err = hl_loctab_get(r->t, &id, &e);
		if (err == 0) {
			if (e.offset != i)
				abort(); /* an entry of another id */
			atomic_fetch_add(&r->seen, 1);
		} else if (err != HL_NOTFOUND) {
			abort();
		}
	}
	return NULL;
}

static void concurrent_readers(void **st)
{
	(void)st;
	race r = {.t = hl_loctab_new()};
	assert_non_null(r.t);
	hl_loctab_complete(r.t);
	pthread_t th[4];
	for (int k = 0; k < 4; k++)
		assert_int_equal(pthread_create(&th[k], NULL, reader, &r), 0);
	uint64_t rng = 7;
	for (int k = 0; k < 200000; k++) {
		uint32_t i = (uint32_t)(tu_rand(&rng) % 5000);
		hl_id id = id_of(i);
		if (tu_rand(&rng) % 3) {
			hl_idx_entry e = entry_of(i, tu_rand(&rng) % 1000000);
			hl_loctab_put(r.t, &id, &e);
		} else {
			hl_loctab_del(r.t, &id);
		}
	}
	atomic_store(&r.stop, 1);
	for (int k = 0; k < 4; k++)
		pthread_join(th[k], NULL);
	printf("# readers found %ld entries, each its own\n", atomic_load(&r.seen));
	assert_true(atomic_load(&r.seen) > 0);
	hl_loctab_free(r.t);
}

/* ---- in a store ---- */

static hl_store *open_store(const char *dir, int in_memory)
{
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_NONE;
	o.segment_size = 256 << 10;
	o.gc_grace_s = 0;
	o.l1_bytes = 0; /* every get reads the index */
	o.index_in_memory = in_memory;
	hl_store *s = NULL;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	if (in_memory) { /* built in the background: wait for it */
		hl_stats st;
		for (int i = 0; i < 3000; i++) {
			assert_int_equal(hl_stats_get(s, &st), 0);
			if (st.index_memory_bytes)
				break;
			usleep(10 * 1000);
		}
		assert_true(st.index_memory_bytes > 0);
	}
	return s;
}

static void assert_equal_to_index(hl_store *s, const char *when)
{
	uint64_t problems = 99;
	int err = hl_check_index(s, &problems);
	printf("# %s: check %s, %llu problems\n", when, hl_strerror(err), (unsigned long long)problems);
	assert_int_equal(err, 0);
	assert_int_equal(problems, 0);
}

enum { N = 3000 };

static void store_keeps_it_equal(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("loctab");
	hl_store *s = open_store(dir, 1);
	static hl_id ids[N];
	static char data[N][64];
	for (int i = 0; i < N; i++) {
		int len = snprintf(data[i], sizeof data[i], "object %d of the loctab test", i);
		assert_int_equal(hl_put(s, data[i], (size_t)len, &ids[i], NULL), 0);
	}
	assert_equal_to_index(s, "after puts");
	/* half named (kept), half collected once past the grace period of 0 s */
	for (int i = 0; i < N; i += 2) {
		char name[32];
		snprintf(name, sizeof name, "keep/%d", i);
		assert_int_equal(hl_ref_set(s, name, &ids[i]), 0);
	}
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.compact_below = 0;
	hl_gc_report r = {0};
	uint64_t collected = 0;
	for (int k = 0; k < 500 && collected < N / 2; k++) { /* access times are in seconds */
		usleep(20 * 1000);
		assert_int_equal(hl_gc(s, &go, &r), 0);
		collected += r.collected;
	}
	assert_int_equal(collected, N / 2);
	assert_equal_to_index(s, "after the collection");
	for (int i = 0; i < N; i++)
		assert_int_equal(hl_has(s, &ids[i]), i % 2 ? HL_NOTFOUND : 0);
	/* quarantined: a few kept objects' records damaged, found by reads */
	hl_stat sst;
	for (int i = 0; i < 20; i += 2) {
		assert_int_equal(hl_stat_object(s, &ids[i], &sst), 0);
		char seg[4200];
		tu_seg_path(dir, (uint32_t)sst.segment, seg, sizeof seg);
		assert_int_equal(hl_sync(s), 0);
		tu_flip_bit(seg, sst.offset + 64 + 3, 2);
		hl_buf *b;
		assert_int_equal(hl_get(s, &ids[i], &b), HL_CORRUPT);
	}
	assert_equal_to_index(s, "after quarantines");
	/* written again (the good copies replace the quarantined), then every segment compacted */
	for (int i = 0; i < 20; i += 2)
		assert_int_equal(hl_put(s, data[i], strlen(data[i]), NULL, NULL), 0);
	go.compact_below = 1.0;
	assert_int_equal(hl_gc(s, &go, &r), 0);
	printf("# compaction moved %llu records\n", (unsigned long long)r.records_moved);
	assert_true(r.records_moved > 0);
	assert_equal_to_index(s, "after the compaction");
	hl_close(s);
	/* reopened: built again from the index file; reads the same with the table on and off */
	for (int on = 1; on >= 0; on--) {
		s = open_store(dir, on);
		if (on)
			assert_equal_to_index(s, "after a reopen");
		for (int i = 0; i < N; i++) {
			hl_buf *b = NULL;
			int err = hl_get(s, &ids[i], &b);
			if (i % 2) {
				assert_int_equal(err, HL_NOTFOUND);
			} else {
				assert_int_equal(err, 0);
				assert_memory_equal(hl_buf_data(b), data[i], strlen(data[i]));
				hl_buf_unref(b);
			}
		}
		hl_stats stt;
		assert_int_equal(hl_stats_get(s, &stt), 0);
		assert_true(on ? stt.index_memory_bytes > 0 : stt.index_memory_bytes == 0);
		hl_close(s);
	}
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(model_check),
		cmocka_unit_test(gives_up),
		cmocka_unit_test(concurrent_readers),
		cmocka_unit_test(store_keeps_it_equal),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
