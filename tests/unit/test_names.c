/* test_names.c — refs (compare-and-swap, validation, listing, completeness, persistence,
 * concurrent updates) and kv namespaces (put/get/overwrite, byte bound with least-recently-used
 * eviction, validation, persistence) through the public API; the snapshot stat cache's table
 * (entries in any order, overwrites, old-format entries ignored). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "base/endian.h"
#include "store/index.h"
#include "store/names.h"
#include "testutil.h"

static hl_id put_str(hl_store *s, const char *str)
{
	hl_id id;
	assert_int_equal(hl_put(s, str, strlen(str), &id, NULL), 0);
	return id;
}

static hl_scache_entry scache_entry(uint64_t dev, uint64_t ino, uint64_t gen)
{
	hl_scache_entry e = {dev, ino, gen * 3, gen * 5, gen * 7, gen * 11, 0100644, {{0}}};
	hl_hash(&e, 48, &e.id);
	return e;
}

/* Entries put in batches whose keys fall before, among and after those stored (appended or
 * inserted), then some again (overwritten): each reads back as last put. An entry in the old
 * key order (version 1) is a miss, never someone else's hit. */
static void stat_cache_table(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("scache");
	hl_store *s = tu_open(dir, HL_SYNC_NONE, 0);
	enum { N = 3000 };
	static hl_scache_entry want[N];
	uint64_t rng = 5;
	for (int round = 0; round < 4; round++) {
		hl_scache_entry batch[N / 2];
		for (int k = 0; k < N / 2; k++) {
			int i = round < 2 ? round * (N / 2) + (N / 2 - 1 - k) /* descending, then above */
			                  : (int)(tu_rand(&rng) % N);        /* anywhere: overwrites */
			uint64_t dev = i % 3 ? 2049 : (UINT64_C(1) << 40) + 7;
			batch[k] = want[i] = scache_entry(dev, (uint64_t)i * 977 + 1, (uint64_t)round * N + (uint64_t)k);
		}
		assert_int_equal(hl_names_scache_put(s->local, batch, N / 2), 0);
	}
	for (int i = 0; i < N; i++) {
		hl_scache_entry got;
		assert_int_equal(hl_names_scache_get(s->local, want[i].dev, want[i].ino, &got), 0);
		assert_memory_equal(&got.id, &want[i].id, sizeof got.id);
		assert_true(got.mtime_ns == want[i].mtime_ns && got.size == want[i].size && got.mode == want[i].mode);
	}
	/* a version-1 row: little-endian key (dev 1, inode 2), as builds before wrote them */
	hl_index *ix = hl_local_index(s->local);
	MDB_txn *txn;
	uint8_t kb[16], vb[72] = {1};
	hl_put_le64(kb, 1);
	hl_put_le64(kb + 8, 2);
	MDB_val k = {16, kb}, v = {72, vb};
	assert_int_equal(hl_idx_write_begin(ix, &txn), 0);
	assert_int_equal(hl_idx_write_end(ix, txn, hl_idx_err(mdb_put(txn, ix->scache, &k, &v, 0))), 0);
	hl_scache_entry got;
	assert_int_equal(hl_names_scache_get(s->local, 1, 2, &got), HL_NOTFOUND);
	assert_int_equal(hl_names_scache_get(s->local, UINT64_C(1) << 56, UINT64_C(2) << 56, &got),
	                 HL_NOTFOUND); /* the same key bytes read big-endian */
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

static void ref_names(void **st)
{
	const char *good[] = {"main", "agents/42/main", "a.b_c-d", "x/y.z", "A9"};
	const char *bad[] = {"", "/main", "main/", "a//b", "..", "a/../b", ".hidden", "a/.b",
	                     "sp ace", "semi;colon", "back\\slash", "é"};
	for (size_t i = 0; i < sizeof good / sizeof *good; i++)
		assert_true(hl_ref_valid(good[i]));
	for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
		assert_false(hl_ref_valid(bad[i]));
	char longname[HL_REF_MAX + 2];
	memset(longname, 'a', sizeof longname);
	longname[HL_REF_MAX] = 0;
	assert_true(hl_ref_valid(longname));
	longname[HL_REF_MAX] = 'a';
	longname[HL_REF_MAX + 1] = 0;
	assert_false(hl_ref_valid(longname));
	assert_false(hl_ref_valid(NULL));
}

typedef struct listing {
	char names[8][64];
	hl_id ids[8];
	int n;
} listing;

static int collect(const char *name, const hl_id *id, void *ctx)
{
	listing *l = ctx;
	if (l->n == 8)
		return 99;
	snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
	l->ids[l->n++] = *id;
	return 0;
}

static void refs_cas(void **st)
{
	char *dir = tu_tmpdir("names");
	hl_store *s = tu_open(dir, HL_SYNC_ALWAYS, 0);
	hl_id a = put_str(s, "tree a"), b = put_str(s, "tree b"), c, out;
	hl_hash("never stored", 12, &c);

	assert_int_equal(hl_ref_get(s, "agents/1/main", &out), HL_NOTFOUND);
	assert_int_equal(hl_ref_cas(s, "agents/1/main", NULL, &c), HL_INCOMPLETE); /* absent target */
	assert_int_equal(hl_ref_cas(s, "bad//name", NULL, &a), HL_INVALID);
	assert_int_equal(hl_ref_cas(s, "agents/1/main", NULL, &a), 0);   /* create */
	assert_int_equal(hl_ref_cas(s, "agents/1/main", NULL, &b), HL_CONFLICT); /* exists */
	assert_int_equal(hl_ref_cas(s, "agents/1/main", &b, &b), HL_CONFLICT);   /* stale expect */
	assert_int_equal(hl_ref_get(s, "agents/1/main", &out), 0);
	assert_true(hl_id_equal(&out, &a));
	assert_int_equal(hl_ref_cas(s, "agents/1/main", &a, &b), 0);
	assert_int_equal(hl_ref_get(s, "agents/1/main", &out), 0);
	assert_true(hl_id_equal(&out, &b));
	assert_int_equal(hl_ref_set(s, "agents/2/main", &a), 0);
	assert_int_equal(hl_ref_set(s, "agents/2/main", &b), 0);
	assert_int_equal(hl_ref_set(s, "agents/10/main", &a), 0);
	assert_int_equal(hl_ref_set(s, "other", &a), 0);
	assert_int_equal(hl_ref_set(s, "agents/3/x", &c), HL_INCOMPLETE);

	listing l = {0};
	assert_int_equal(hl_ref_list(s, "agents/", collect, &l), 0);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.names[0], "agents/1/main");
	assert_string_equal(l.names[1], "agents/10/main");
	assert_string_equal(l.names[2], "agents/2/main");
	assert_true(hl_id_equal(&l.ids[2], &b));
	memset(&l, 0, sizeof l);
	assert_int_equal(hl_ref_list(s, NULL, collect, &l), 0);
	assert_int_equal(l.n, 4);

	assert_int_equal(hl_ref_delete(s, "agents/2/main", &a), HL_CONFLICT);
	assert_int_equal(hl_ref_delete(s, "agents/2/main", &b), 0);
	assert_int_equal(hl_ref_delete(s, "agents/2/main", NULL), HL_NOTFOUND);
	assert_int_equal(hl_ref_delete(s, "other", NULL), 0);

	/* refs survive a reopen, and a read-only handle sees them */
	hl_close(s);
	s = tu_open(dir, HL_SYNC_ALWAYS, 0);
	assert_int_equal(hl_ref_get(s, "agents/1/main", &out), 0);
	assert_true(hl_id_equal(&out, &b));
	assert_int_equal(hl_ref_get(s, "other", &out), HL_NOTFOUND);
	hl_options o;
	hl_options_init(&o);
	o.read_only = 1;
	hl_store *ro;
	assert_int_equal(hl_open(dir, &o, &ro), 0);
	assert_int_equal(hl_ref_get(ro, "agents/10/main", &out), 0);
	assert_true(hl_id_equal(&out, &a));
	assert_int_equal(hl_ref_set(ro, "x", &a), HL_READONLY);
	hl_close(ro);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* Many threads advance one ref by compare-and-swap: no update is lost. */
typedef struct racer {
	hl_store *s;
	hl_id *ids;
	int won;
} racer;

#define RACE_STEPS 200

static void *race(void *arg)
{
	racer *r = arg;
	for (;;) {
		hl_id cur;
		assert_int_equal(hl_ref_get(r->s, "race", &cur), 0);
		int at = -1;
		for (int i = 0; i <= RACE_STEPS; i++)
			if (hl_id_equal(&cur, &r->ids[i]))
				at = i;
		assert_true(at >= 0);
		if (at == RACE_STEPS)
			return NULL;
		int err = hl_ref_cas(r->s, "race", &cur, &r->ids[at + 1]);
		assert_true(err == 0 || err == HL_CONFLICT);
		r->won += err == 0;
	}
}

static void refs_race(void **st)
{
	char *dir = tu_tmpdir("names");
	hl_store *s = tu_open(dir, HL_SYNC_NONE, 0);
	hl_id ids[RACE_STEPS + 1];
	for (int i = 0; i <= RACE_STEPS; i++) {
		char t[32];
		snprintf(t, sizeof t, "step %d", i);
		ids[i] = put_str(s, t);
	}
	assert_int_equal(hl_ref_cas(s, "race", NULL, &ids[0]), 0);
	racer r[4];
	pthread_t th[4];
	for (int i = 0; i < 4; i++) {
		r[i] = (racer){s, ids, 0};
		pthread_create(&th[i], NULL, race, &r[i]);
	}
	int won = 0;
	for (int i = 0; i < 4; i++) {
		pthread_join(th[i], NULL);
		won += r[i].won;
	}
	assert_int_equal(won, RACE_STEPS); /* every step taken exactly once */
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

static void kv_roundtrip_and_bound(void **st)
{
	char *dir = tu_tmpdir("names");
	hl_options o;
	hl_options_init(&o);
	o.kv_max_bytes = 10000;
	hl_store *s;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	char val[1000];
	uint64_t seed = 7, size, bytes, keys;
	hl_buf *b;

	assert_int_equal(hl_kv_get(s, "ccache", "k", 1, &b), HL_NOTFOUND);
	assert_int_equal(hl_kv_put(s, "cc/ache", "k", 1, "v", 1), HL_INVALID);
	assert_int_equal(hl_kv_put(s, "", "k", 1, "v", 1), HL_INVALID);
	assert_int_equal(hl_kv_put(s, "ccache", "", 0, "v", 1), HL_INVALID);
	assert_int_equal(hl_kv_put(s, "ccache", "a\0b", 3, "v", 1), HL_INVALID);
	char bigkey[HL_KV_KEY_MAX + 1];
	memset(bigkey, 'k', sizeof bigkey);
	assert_int_equal(hl_kv_put(s, "ccache", bigkey, HL_KV_KEY_MAX + 1, "v", 1), HL_INVALID);
	assert_int_equal(hl_kv_put(s, "ccache", bigkey, HL_KV_KEY_MAX, "v", 1), 0);
	assert_int_equal(hl_kv_delete(s, "ccache", bigkey, HL_KV_KEY_MAX), 0);
	assert_int_equal(hl_kv_delete(s, "ccache", bigkey, HL_KV_KEY_MAX), HL_NOTFOUND);
	char *huge = calloc(1, 10001);
	assert_int_equal(hl_kv_put(s, "ccache", "huge", 4, huge, 10001), HL_TOOBIG);
	free(huge);

	/* 10 values of 1000 bytes fill the namespace exactly; the 11th evicts the oldest */
	for (int i = 0; i < 11; i++) {
		char key[16];
		snprintf(key, sizeof key, "key%02d", i);
		tu_fill(&seed, val, sizeof val);
		val[0] = (char)i;
		assert_int_equal(hl_kv_put(s, "ccache", key, strlen(key), val, sizeof val), 0);
		assert_int_equal(hl_kv_usage(s, "ccache", &bytes, &keys), 0);
		assert_true(bytes <= 10000);
	}
	assert_int_equal(hl_kv_usage(s, "ccache", &bytes, &keys), 0);
	assert_int_equal(bytes, 10000);
	assert_int_equal(keys, 10);
	assert_int_equal(hl_kv_stat(s, "ccache", "key00", 5, &size), HL_NOTFOUND);
	assert_int_equal(hl_kv_stat(s, "ccache", "key01", 5, &size), 0);
	assert_int_equal(size, 1000);
	assert_int_equal(hl_kv_get(s, "ccache", "key10", 5, &b), 0);
	assert_int_equal(hl_buf_len(b), 1000);
	assert_int_equal(hl_buf_data(b)[0], 10);
	hl_buf_unref(b);
	/* another namespace is bounded on its own */
	assert_int_equal(hl_kv_put(s, "bazel:ac", "key01", 5, "x", 1), 0);
	assert_int_equal(hl_kv_usage(s, "bazel:ac", &bytes, &keys), 0);
	assert_int_equal(bytes, 1);
	/* overwriting replaces the value and its size */
	assert_int_equal(hl_kv_put(s, "ccache", "key05", 5, "short", 5), 0);
	assert_int_equal(hl_kv_get(s, "ccache", "key05", 5, &b), 0);
	assert_memory_equal(hl_buf_data(b), "short", 5);
	hl_buf_unref(b);
	assert_int_equal(hl_kv_usage(s, "ccache", &bytes, &keys), 0);
	assert_int_equal(bytes, 9005);
	assert_int_equal(keys, 10);
	/* a value of 2000 bytes evicts the two oldest (key01, key02) */
	char v2[2000] = {0};
	assert_int_equal(hl_kv_put(s, "ccache", "big", 3, v2, sizeof v2), 0);
	assert_int_equal(hl_kv_stat(s, "ccache", "key01", 5, &size), HL_NOTFOUND);
	assert_int_equal(hl_kv_stat(s, "ccache", "key02", 5, &size), HL_NOTFOUND);
	assert_int_equal(hl_kv_stat(s, "ccache", "key03", 5, &size), 0);
	assert_int_equal(hl_kv_usage(s, "ccache", &bytes, &keys), 0);
	assert_int_equal(bytes, 9005 - 2000 + 2000);
	assert_int_equal(keys, 9);

	/* persistent */
	hl_close(s);
	assert_int_equal(hl_open(dir, &o, &s), 0);
	assert_int_equal(hl_kv_get(s, "ccache", "big", 3, &b), 0);
	assert_int_equal(hl_buf_len(b), 2000);
	hl_buf_unref(b);
	assert_int_equal(hl_kv_usage(s, "ccache", &bytes, &keys), 0);
	assert_int_equal(keys, 9);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(ref_names),
		cmocka_unit_test(stat_cache_table),
		cmocka_unit_test(refs_cas),
		cmocka_unit_test(refs_race),
		cmocka_unit_test(kv_roundtrip_and_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
