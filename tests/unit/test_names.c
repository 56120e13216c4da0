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
#include "api/dircache.h"
#include "testutil.h"

static hl_id put_str(hl_store *s, const char *str)
{
	hl_id id;
	assert_int_equal(hl_put(s, str, strlen(str), &id, NULL), 0);
	return id;
}

/* A row's bytes for (dev, ino) at generation gen: a dircache row of three files. */
static size_t scache_row(uint64_t dev, uint64_t ino, uint64_t gen, uint8_t *out, size_t cap)
{
	hl_dircache_file f[3] = {{0, ino + 1, gen * 3, gen * 5}, {2, ino + 2, gen * 3, gen * 7},
	                         {7, ino - 1, gen, gen * 11}};
	hl_dircache c = {.cached_ns = gen * 13, .f = f, .n = 3};
	hl_hash(&dev, sizeof dev, &c.tree);
	size_t len;
	assert_int_equal(hl_dircache_encode(&c, out, cap, &len), 0);
	return len;
}

/* Rows put in batches whose keys fall before, among and after those stored (appended or
 * inserted), then some again (overwritten): each reads back as last put and decodes. A table of
 * an older format (per-file rows) is emptied by the first write, and a row of another version
 * decodes as a miss (HL_NOTFOUND), never someone else's hit. */
static void stat_cache_table(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("scache");
	hl_store *s = tu_open(dir, HL_SYNC_NONE, 0);
	enum { N = 3000, CAP = 200 };
	static uint64_t gen_of[N];
	static uint8_t bufs[N / 2][CAP];
	/* a version-2 row, as builds before wrote them per file: gone after the first put */
	hl_index *ix = hl_local_index(s->local);
	MDB_txn *txn;
	uint8_t kb[16] = {0}, vb[72] = {2};
	kb[15] = 9;
	MDB_val k = {16, kb}, v = {72, vb};
	assert_int_equal(hl_idx_write_begin(ix, &txn), 0);
	assert_int_equal(hl_idx_write_end(ix, txn, hl_idx_err(mdb_put(txn, ix->scache, &k, &v, 0))), 0);
	uint8_t *got;
	size_t len;
	hl_dircache c;
	assert_int_equal(hl_names_scache_get(s->local, 0, 9, &got, &len), 0);
	assert_int_equal(hl_dircache_decode(got, len, &c), HL_NOTFOUND);
	free(got);
	uint64_t rng = 5;
	for (int round = 0; round < 4; round++) {
		hl_scache_row batch[N / 2];
		for (int k2 = 0; k2 < N / 2; k2++) {
			int i = round < 2 ? round * (N / 2) + (N / 2 - 1 - k2) /* descending, then above */
			                  : (int)(tu_rand(&rng) % N);         /* anywhere: overwrites */
			uint64_t dev = i % 3 ? 2049 : (UINT64_C(1) << 40) + 7;
			gen_of[i] = (uint64_t)round * N + (uint64_t)k2 + 1;
			batch[k2] = (hl_scache_row){dev, (uint64_t)i * 977 + 10, bufs[k2],
			                            scache_row(dev, (uint64_t)i * 977 + 10, gen_of[i], bufs[k2], CAP)};
		}
		assert_int_equal(hl_names_scache_put(s->local, batch, N / 2), 0);
	}
	assert_int_equal(hl_names_scache_get(s->local, 0, 9, &got, &len), HL_NOTFOUND);
	for (int i = 0; i < N; i++) {
		uint64_t dev = i % 3 ? 2049 : (UINT64_C(1) << 40) + 7, ino = (uint64_t)i * 977 + 10;
		uint8_t want[CAP];
		size_t wlen = scache_row(dev, ino, gen_of[i], want, CAP);
		assert_int_equal(hl_names_scache_get(s->local, dev, ino, &got, &len), 0);
		assert_int_equal(len, wlen);
		assert_memory_equal(got, want, len);
		assert_int_equal(hl_dircache_decode(got, len, &c), 0);
		assert_int_equal(c.n, 3);
		assert_true(c.f[2].index == 7 && c.f[2].ino == ino - 1 && c.f[1].ctime_ns == gen_of[i] * 7);
		assert_true(c.cached_ns == gen_of[i] * 13);
		free(c.f);
		free(got);
	}
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* The row codec: round trips (times going backwards too), and refuses what breaks it. */
static void dircache_rows(void **st)
{
	(void)st;
	hl_dircache_file f[4] = {{3, 100, UINT64_C(1700000000000000000), 5}, {4, 90, 7, UINT64_MAX},
	                         {9, UINT64_MAX, 0, 0}, {UINT32_MAX, 0, 1, 1}};
	hl_dircache c = {.cached_ns = 42, .f = f, .n = 4}, d;
	uint8_t buf[256];
	size_t len;
	assert_int_equal(hl_dircache_encode(&c, buf, sizeof buf, &len), 0);
	assert_int_equal(hl_dircache_decode(buf, len, &d), 0);
	assert_int_equal(d.n, 4);
	for (int i = 0; i < 4; i++)
		assert_true(d.f[i].index == f[i].index && d.f[i].ino == f[i].ino &&
		            d.f[i].mtime_ns == f[i].mtime_ns && d.f[i].ctime_ns == f[i].ctime_ns);
	assert_true(d.cached_ns == 42);
	free(d.f);
	assert_int_equal(hl_dircache_decode(buf, len - 1, &d), HL_CORRUPT);   /* truncated */
	buf[len] = 0;
	assert_int_equal(hl_dircache_decode(buf, len + 1, &d), HL_CORRUPT);   /* trailing */
	assert_int_equal(hl_dircache_decode(buf, 20, &d), HL_CORRUPT);        /* short header */
	buf[0] = 2;
	assert_int_equal(hl_dircache_decode(buf, len, &d), HL_NOTFOUND);      /* another version */
	f[1].index = 3;
	assert_int_equal(hl_dircache_encode(&c, buf, sizeof buf, &len), HL_INVALID); /* not increasing */
	assert_int_equal(hl_dircache_encode(&c, buf, 10, &len), HL_TOOBIG);
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
		cmocka_unit_test(dircache_rows),
		cmocka_unit_test(refs_cas),
		cmocka_unit_test(refs_race),
		cmocka_unit_test(kv_roundtrip_and_bound),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
