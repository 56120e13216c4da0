/* test_fleet.c — several nodes on one S3 bucket behave as one machine (the S3 test server on
 * loopback, tests/s3): chunked large blobs stored in the bucket (a one-byte edit of an 8 MiB file
 * adds less than 1 MiB, whichever node stores it), kv and stat across nodes, the bucket verified
 * and repaired, and garbage collection of the shared bucket while nodes keep writing:
 *  - what no root names is collected; what a node relied on (found present by has or by a put)
 *    is kept although nothing names it;
 *  - a race: two writer processes commit trees and move refs by compare-and-swap while a third
 *    collects back to back; collector and writers are killed (SIGKILL) at seeded moments and
 *    started again; afterwards every ref's tree reads back whole through a fresh node, one more
 *    collection succeeds (taking over a killed collector's state), and the bucket verifies clean;
 *  - the bucket stopped in the middle of a collection and started again.
 * HELIOS_SEED picks the seed (printed), HELIOS_FLEET_ROUNDS the length of the race. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/clock.h"
#include "dedup/tree.h"
#include "remote/s3.h"
#include "tier/fleet.h"
#include "testutil.h"

#define LEASE_MS 1000

static char endpoint[64];

typedef struct world {
	char *root, *bucket;
	int round;
	tu_s3 srv;
} world;

static size_t remember_ring; /* hl_options.fleet_remember of the nodes opened next (0: default) */
static uint64_t kv_bound;     /* hl_options.kv_max_bytes of the nodes opened next (0: default) */

static hl_store *open_node(world *w, const char *name, uint64_t cache_bytes, uint64_t grace_s)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/%s-%d", w->root, name, w->round);
	hl_options o;
	hl_options_init(&o);
	tu_s3_options(&o, &w->srv, endpoint);
	o.l1_bytes = cache_bytes;
	o.l2_bytes = cache_bytes;
	o.l2_region_size = 256 << 10;
	o.sync = HL_SYNC_NONE;
	o.fleet_lease_ms = LEASE_MS;
	o.fleet_remember = remember_ring;
	if (kv_bound)
		o.kv_max_bytes = kv_bound;
	o.gc_grace_s = grace_s;
	o.chunk_threshold = 1 << 20;
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err)
		fail_msg("open node %s: %s", dir, hl_strerror(err));
	return s;
}

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

static hl_id put_bytes(hl_store *s, const void *d, size_t len, int *created)
{
	hl_id id;
	int err = hl_put(s, d, len, &id, created);
	if (err)
		fail_msg("put: %s", hl_strerror(err));
	return id;
}

static hl_id put_random(hl_store *s, uint64_t *rng, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	tu_fill(rng, d, len);
	hl_id id = put_bytes(s, d, len, NULL);
	free(d);
	return id;
}

static void assert_reads(hl_store *s, const hl_id *id)
{
	hl_buf *b = NULL;
	int err = hl_get(s, id, &b);
	if (err) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(id, hex);
		fail_msg("get %s: %s", hex, hl_strerror(err));
	}
	hl_id again;
	hl_hash(hl_buf_data(b), hl_buf_len(b), &again);
	assert_true(hl_id_equal(&again, id));
	hl_buf_unref(b);
}

static uint64_t bucket_bytes(hl_store *s)
{
	hl_backend_info bi;
	assert_int_equal(hl_backend_get(s, 1, &bi), 0);
	assert_true(bi.counted && bi.shared);
	return bi.bytes;
}

/* A gc that waits out a collector still holding the bucket (a killed one: its lease runs out)
 * and a bucket that just came back (the circuit breaker's pause). */
static int gc_until_free(hl_store *s, hl_gc_report *r, unsigned max_s)
{
	uint64_t end = hl_now_ns() + (uint64_t)max_s * 1000000000u;
	int err;
	while (((err = hl_gc(s, NULL, r)) == HL_BUSY || err == HL_UNAVAILABLE) && hl_now_ns() < end)
		msleep(200);
	return err;
}

static int setup(void **state)
{
	world *w = calloc(1, sizeof(*w));
	w->root = tu_tmpdir("fleet");
	size_t n = strlen(w->root) + 32;
	w->bucket = malloc(n);
	snprintf(w->bucket, n, "%s/bucket", w->root);
	tu_s3_start(&w->srv, w->bucket, 0, 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	world *w = *state;
	tu_s3_stop(&w->srv);
	tu_rmrf(w->root);
	free(w->root);
	free(w->bucket);
	free(w);
	return 0;
}

static int next_round(void **state)
{
	((world *)*state)->round++;
	return 0;
}

/* The formats the protocol reads from the bucket: times, pointers, state, condemned lists. */
static void test_formats(void **state)
{
	(void)state;
	int64_t ms;
	assert_int_equal(hl_s3_parse_time("2026-12-05T20:42:25.123Z", 24, &ms), 0);
	assert_true(ms == INT64_C(1796503345123));
	assert_int_equal(hl_s3_parse_time("2000-02-29T23:59:59Z", 20, &ms), 0);
	assert_true(ms == INT64_C(951868799000));
	assert_int_equal(hl_s3_parse_time("1970-01-01T00:00:00.000Z", 24, &ms), 0);
	assert_true(ms == 0);
	assert_int_equal(hl_s3_parse_time("2026-13-05T20:42:25Z", 20, &ms), HL_CORRUPT);
	assert_int_equal(hl_s3_parse_time("2026-12-05 20:42:25Z", 20, &ms), HL_CORRUPT);
	hl_id id;
	uint64_t size;
	char ptr[128];
	memset(ptr, 'a', 64);
	memcpy(ptr + 64, "\n8388608\n", 9);
	assert_int_equal(hl_s3_parse_pointer((const uint8_t *)ptr, 73, &id, &size), 0);
	assert_true(size == 8388608);
	memcpy(ptr + 64, "\n08\n", 4);
	assert_int_equal(hl_s3_parse_pointer((const uint8_t *)ptr, 68, &id, &size), HL_CORRUPT);
	hl_fleet_state st = {.phase = HL_FLEET_SWEEP, .lease_ms = 60000}, back;
	hl_fleet_random_id(st.cid);
	hl_fleet_random_id(st.owner);
	char text[256];
	int len = hl_fleet_state_format(&st, text, sizeof text);
	assert_int_equal(hl_fleet_state_parse((const uint8_t *)text, (size_t)len, &back), 0);
	assert_string_equal(back.cid, st.cid);
	assert_int_equal(back.phase, HL_FLEET_SWEEP);
	assert_true(back.lease_ms == 60000);
	assert_int_equal(hl_fleet_state_parse((const uint8_t *)text, (size_t)len - 1, &back), HL_CORRUPT);
	hl_fleet_victim v[3] = {{HL_FLEET_OBJECT, {{1}}}, {HL_FLEET_OBJECT, {{2}}}, {HL_FLEET_LARGE, {{1}}}}, *out;
	uint8_t *enc;
	size_t elen, n;
	assert_int_equal(hl_fleet_list_encode(v, 3, &enc, &elen), 0);
	assert_int_equal(hl_fleet_list_parse(enc, elen, &out, &n), 0);
	assert_int_equal(n, 3);
	assert_int_equal(out[2].kind, HL_FLEET_LARGE);
	free(out);
	enc[16 + 33] = HL_FLEET_OBJECT, enc[16 + 34] = 0; /* out of order */
	assert_int_equal(hl_fleet_list_parse(enc, elen, &out, &n), HL_CORRUPT);
	free(enc);
}

static void test_large_kv_stat(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w, "a", 64 << 20, 86400), *b = open_node(w, "b", 0, 86400);
	uint64_t rng = 11;
	size_t len = 8u << 20;
	uint8_t *d = malloc(len);
	tu_fill(&rng, d, len);
	int created = 0;
	hl_id big = put_bytes(a, d, len, &created);
	assert_int_equal(created, 1);
	hl_stat st;
	assert_int_equal(hl_stat_object(b, &big, &st), 0);
	assert_int_equal(st.size, len);
	assert_true(st.flags & HL_STAT_CHUNKED);
	assert_reads(b, &big);
	/* one byte edited, stored through the other node: only the chunks around it are new */
	uint64_t before = bucket_bytes(a);
	d[len / 2] ^= 1;
	hl_id edited = put_bytes(b, d, len, &created);
	assert_int_equal(created, 1);
	uint64_t added = bucket_bytes(b) - before;
	print_message("a one-byte edit of an 8 MiB file added %llu bytes to the bucket\n", (unsigned long long)added);
	assert_true(added < (1u << 20));
	assert_reads(a, &edited);
	assert_int_equal(hl_has(a, &edited), 0);
	/* the same content again through a: nothing new */
	assert_int_equal(hl_put(a, d, len, &edited, &created), 0);
	assert_int_equal(created, 0);
	free(d);
	/* a compressible object is stored compressed in the bucket, read and sized as itself */
	char *text = malloc(200000);
	for (size_t i = 0; i < 200000; i++)
		text[i] = "int main(void) { return 0; }\n"[i % 30];
	uint64_t b0 = bucket_bytes(a);
	hl_id tid = put_bytes(b, text, 200000, &created);
	uint64_t grew = bucket_bytes(a) - b0;
	print_message("a compressible object of 200000 bytes takes %llu in the bucket\n", (unsigned long long)grew);
	assert_true(grew < 20000);
	assert_int_equal(hl_stat_object(a, &tid, &st), 0);
	assert_int_equal(st.size, 200000);
	hl_buf *tb;
	assert_int_equal(hl_get(a, &tid, &tb), 0);
	assert_int_equal(hl_buf_len(tb), 200000);
	assert_memory_equal(hl_buf_data(tb), text, 200000);
	hl_buf_unref(tb);
	free(text);
	/* kv and its size across nodes; the Bazel maps are kv namespaces too */
	assert_int_equal(hl_kv_put(a, "ccache", "k1", 2, "value one", 9), 0);
	uint64_t size = 0;
	hl_id vid;
	assert_int_equal(hl_kv_lookup(b, "ccache", "k1", 2, &vid, &size), 0);
	assert_int_equal(size, 9);
	hl_buf *buf;
	assert_int_equal(hl_kv_get(b, "ccache", "k1", 2, &buf), 0);
	assert_memory_equal(hl_buf_data(buf), "value one", 9);
	hl_buf_unref(buf);
	assert_int_equal(hl_kv_link(b, "bazel:cas", "x/y", 3, &vid), 0);
	assert_int_equal(hl_kv_stat(a, "bazel:cas", "x/y", 3, &size), 0);
	assert_int_equal(hl_kv_delete(a, "ccache", "k1", 2), 0);
	assert_int_equal(hl_kv_get(b, "ccache", "k1", 2, &buf), HL_NOTFOUND);
	uint64_t bytes, keys;
	assert_int_equal(hl_kv_usage(b, "bazel:cas", &bytes, &keys), 0);
	assert_int_equal(keys, 1);
	assert_int_equal(bytes, 9);
	/* the bucket verifies clean from either node */
	hl_verify_report vr;
	assert_int_equal(hl_verify(b, 4, NULL, NULL, NULL, &vr), 0);
	assert_true(vr.objects > 10);
	assert_int_equal(vr.corrupt, 0);
	hl_close(a);
	hl_close(b);
}

/* A corrupt object in the bucket is found by verify and repaired from a node's cache. */
static void test_bucket_repair(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w, "a", 64 << 20, 86400);
	uint64_t rng = 21;
	hl_id id = put_random(a, &rng, 5000);
	assert_reads(a, &id); /* in a's L1 now */
	char hex[HL_ID_HEX_LEN + 1], path[1024];
	hl_id_format(&id, hex);
	/* s3rver keeps an object's bytes in <bucket dir>/helios/<key>._S3rver_object */
	snprintf(path, sizeof path, "%s/helios/fleet/blobs/%.2s/%s._S3rver_object", w->bucket, hex, hex);
	tu_flip_bit(path, 100, 3);
	hl_verify_report vr;
	assert_int_equal(hl_verify(a, 2, NULL, NULL, NULL, &vr), HL_CORRUPT);
	assert_int_equal(vr.corrupt, 1);
	const char *from = NULL;
	assert_int_equal(hl_repair(a, &id, &from), 0);
	assert_string_equal(from, "l1");
	assert_int_equal(hl_verify(a, 2, NULL, NULL, NULL, &vr), 0);
	hl_stats s;
	assert_int_equal(hl_stats_get(a, &s), 0);
	assert_int_equal(s.repaired, 1);
	/* the same for an object the bucket keeps compressed: a flipped bit fails to decode or to hash */
	char *text = malloc(100000);
	for (size_t i = 0; i < 100000; i++)
		text[i] = "abcdefgh\n"[i % 9];
	hl_id tid = put_bytes(a, text, 100000, NULL);
	free(text);
	assert_reads(a, &tid);
	hl_id_format(&tid, hex);
	snprintf(path, sizeof path, "%s/helios/fleet/blobs/%.2s/%s._S3rver_object", w->bucket, hex, hex);
	tu_flip_bit(path, 20, 1);
	assert_int_equal(hl_verify(a, 2, NULL, NULL, NULL, &vr), HL_CORRUPT);
	assert_int_equal(hl_repair(a, &tid, &from), 0);
	assert_int_equal(hl_verify(a, 2, NULL, NULL, NULL, &vr), 0);
	hl_close(a);
}

/* A tree of n files (ids given) encoded into a malloc'd buffer. */
static uint8_t *tree_of(const hl_id *ids, const uint64_t *sizes, size_t n, size_t *len)
{
	hl_tree_entry *e = calloc(n, sizeof(*e));
	char (*names)[24] = calloc(n, 24);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 24, "f%04zu", i);
		e[i] = (hl_tree_entry){.kind = HL_TREE_FILE, .mode = 0644, .size = sizes[i], .id = ids[i],
		                       .name = names[i], .name_len = strlen(names[i])};
	}
	size_t cap = 64 + n * 128;
	uint8_t *buf = malloc(cap);
	assert_int_equal(hl_tree_encode(e, n, buf, cap, len), 0);
	free(e);
	free(names);
	return buf;
}

static void test_gc_keeps_what_is_relied_on(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w, "a", 0, 1);
	remember_ring = 4; /* b relies on more than its ring holds: the ring must grow, not forget */
	hl_store *b = open_node(w, "b", 0, 1);
	remember_ring = 0;
	uint64_t rng = 31;
	hl_id garbage[20], files[3], more[8];
	uint64_t sizes[3] = {3000, 2000, 3u << 20};
	for (int i = 0; i < 20; i++)
		garbage[i] = put_random(a, &rng, 1000 + (size_t)i);
	for (int i = 0; i < 3; i++)
		files[i] = put_random(a, &rng, sizes[i]); /* the last one chunked */
	size_t len;
	uint8_t *t = tree_of(files, sizes, 3, &len);
	hl_id tree = put_bytes(a, t, len, NULL);
	free(t);
	assert_int_equal(hl_ref_set(a, "agents/1/main", &tree), 0);
	assert_int_equal(hl_kv_put(a, "ccache", "key", 3, "kv value", 8), 0);
	uint8_t relied_bytes[700];
	tu_fill(&rng, relied_bytes, sizeof relied_bytes);
	hl_id relied = put_bytes(a, relied_bytes, sizeof relied_bytes, NULL), found = put_random(a, &rng, 800);
	for (int i = 0; i < 8; i++)
		more[i] = put_random(a, &rng, 900 + (size_t)i);
	msleep(2100); /* everything is older than the 1 s grace period now */
	/* b relies on unreachable objects: a put finding one present, a has finding each other one */
	int created = -1;
	hl_id same = put_bytes(b, relied_bytes, sizeof relied_bytes, &created);
	assert_true(hl_id_equal(&same, &relied));
	assert_int_equal(created, 0);
	assert_int_equal(hl_has(b, &found), 0);
	for (int i = 0; i < 8; i++)
		assert_int_equal(hl_has(b, &more[i]), 0);
	hl_gc_report r;
	assert_int_equal(gc_until_free(a, &r, 30), 0);
	print_message("gc: %llu objects, %llu reachable, %llu young, %llu held, %llu collected\n",
	              (unsigned long long)r.objects, (unsigned long long)r.reachable, (unsigned long long)r.young,
	              (unsigned long long)r.held, (unsigned long long)r.collected);
	for (int i = 0; i < 20; i++)
		assert_int_equal(hl_has(b, &garbage[i]), HL_NOTFOUND);
	assert_true(r.collected >= 20);
	assert_true(r.held >= 10);
	assert_reads(b, &relied);
	assert_reads(a, &found);
	for (int i = 0; i < 8; i++)
		assert_reads(a, &more[i]);
	assert_reads(b, &tree);
	for (int i = 0; i < 3; i++)
		assert_reads(b, &files[i]);
	hl_buf *buf;
	assert_int_equal(hl_kv_get(b, "ccache", "key", 3, &buf), 0);
	hl_buf_unref(buf);
	/* once the relies are old too, an unreachable object goes. The probe is a get through b, which
	 * never read it (no cache has it) and relies on nothing: a has would be a rely itself, kept by
	 * the next collection when it runs within the grace period (as it did on a loaded machine) */
	int gone = 0;
	for (int tries = 0; tries < 40 && !gone; tries++) {
		msleep(1000);
		assert_int_equal(gc_until_free(b, &r, 30), 0);
		hl_buf *probe = NULL;
		gone = hl_get(b, &found, &probe) == HL_NOTFOUND;
		hl_buf_unref(probe);
	}
	assert_true(gone);
	hl_verify_report vr;
	assert_int_equal(hl_verify(a, 4, NULL, NULL, NULL, &vr), 0);
	hl_close(a);
	hl_close(b);
}

/* kv namespaces on the bucket are bounded by the collector, as a local store bounds them on write:
 * past kv_max_bytes a namespace loses its oldest writes first (a dry run only counts them); another
 * namespace keeps its own. */
static void test_kv_bound(void **state)
{
	world *w = *state;
	kv_bound = 7000;
	hl_store *a = open_node(w, "a", 0, 1);
	kv_bound = 0;
	hl_store *b = open_node(w, "b", 0, 1);
	uint64_t rng = 57;
	static uint8_t val[5][3000], other[2][100];
	char key[16];
	for (int i = 0; i < 5; i++) {
		tu_fill(&rng, val[i], sizeof val[i]);
		snprintf(key, sizeof key, "k%d", i);
		assert_int_equal(hl_kv_put(b, "bounded", key, strlen(key), val[i], sizeof val[i]), 0);
		if (i < 4)
			msleep(1100); /* distinct write times: a bucket lists them in whole seconds */
	}
	for (int i = 0; i < 2; i++) {
		tu_fill(&rng, other[i], sizeof other[i]);
		snprintf(key, sizeof key, "o%d", i);
		assert_int_equal(hl_kv_put(b, "unbounded", key, strlen(key), other[i], sizeof other[i]), 0);
	}
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.dry_run = 1;
	hl_gc_report r;
	int err;
	uint64_t end = hl_now_ns() + UINT64_C(30000000000);
	while (((err = hl_gc(a, &go, &r)) == HL_BUSY || err == HL_UNAVAILABLE) && hl_now_ns() < end)
		msleep(200);
	assert_int_equal(err, 0);
	assert_int_equal(r.kv_evicted, 3); /* the newest two (6000 bytes) fit in 7000 */
	assert_int_equal(gc_until_free(a, &r, 30), 0);
	assert_int_equal(r.kv_evicted, 3);
	for (int i = 0; i < 5; i++) {
		hl_buf *got = NULL;
		snprintf(key, sizeof key, "k%d", i);
		err = hl_kv_get(b, "bounded", key, strlen(key), &got);
		if (i < 3) {
			assert_int_equal(err, HL_NOTFOUND);
		} else {
			assert_int_equal(err, 0);
			assert_memory_equal(hl_buf_data(got), val[i], sizeof val[i]);
		}
		hl_buf_unref(got);
	}
	for (int i = 0; i < 2; i++) {
		hl_buf *got = NULL;
		snprintf(key, sizeof key, "o%d", i);
		assert_int_equal(hl_kv_get(a, "unbounded", key, strlen(key), &got), 0);
		hl_buf_unref(got);
	}
	assert_int_equal(gc_until_free(a, &r, 30), 0);
	assert_int_equal(r.kv_evicted, 0); /* within the bound now */
	hl_close(a);
	hl_close(b);
}

/* ---- the race: writers and a collector in processes of their own, killed at random ---- */

#define POOL 48 /* file contents come from a small pool: old garbage comes back often */

static void pool_bytes(unsigned k, uint8_t *d, size_t *len)
{
	uint64_t r = 1000 + k;
	*len = k % 16 == 0 ? (200u << 10) + k : 500 + (size_t)(k * 97 % 4000); /* some chunked */
	tu_fill(&r, d, *len);
}

/* One writer: commits a tree of 5 pool files to agents/<i>/main, over and over. */
static void writer_main(world *w, int i, uint64_t seed)
{
	char name[32];
	snprintf(name, sizeof name, "w%d-%llu", i, (unsigned long long)seed);
	hl_store *s = open_node(w, name, 8 << 20, 1);
	uint8_t *d = malloc(300u << 10);
	char ref[64];
	snprintf(ref, sizeof ref, "agents/%d/main", i);
	for (;;) {
		hl_id ids[5];
		uint64_t sizes[5];
		int err = 0;
		for (int f = 0; f < 5 && !err; f++) {
			size_t len;
			pool_bytes((unsigned)(tu_rand(&seed) % POOL), d, &len);
			sizes[f] = len;
			err = hl_put(s, d, len, &ids[f], NULL);
		}
		size_t tlen;
		uint8_t *t = tree_of(ids, sizes, 5, &tlen);
		hl_id tree;
		if (!err)
			err = hl_put(s, t, tlen, &tree, NULL); /* HL_INCOMPLETE: a file was collected first */
		free(t);
		hl_id cur;
		int have = hl_ref_get(s, ref, &cur);
		if (!err)
			err = hl_ref_cas(s, ref, have ? NULL : &cur, &tree);
		if (err && err != HL_INCOMPLETE && err != HL_CONFLICT && err != HL_UNAVAILABLE)
			fprintf(stderr, "writer %d: %s\n", i, hl_strerror(err));
	}
}

static void collector_main(world *w, uint64_t seed)
{
	char name[32];
	snprintf(name, sizeof name, "c-%llu", (unsigned long long)seed);
	hl_store *s = open_node(w, name, 0, 1);
	for (;;) {
		hl_gc_report r;
		int err = hl_gc(s, NULL, &r);
		if (err && err != HL_BUSY && err != HL_UNAVAILABLE && err != HL_INCOMPLETE)
			fprintf(stderr, "collector: %s\n", hl_strerror(err));
		if (!err)
			fprintf(stderr, "collection: %llu objects, %llu held, %llu collected\n", (unsigned long long)r.objects,
			        (unsigned long long)r.held, (unsigned long long)r.collected);
		if (err)
			msleep(100);
	}
}

static pid_t start(world *w, int role, uint64_t seed)
{
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) {
		if (role < 0)
			collector_main(w, seed);
		else
			writer_main(w, role, seed);
		_exit(0);
	}
	assert_true(pid > 0);
	return pid;
}

static void stop(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

typedef struct walk_ctx {
	hl_store *s;
	size_t files;
} walk_ctx;

static int check_entry(const char *path, const hl_tree_entry *e, void *arg)
{
	(void)path;
	walk_ctx *c = arg;
	hl_buf *b;
	int err = hl_get(c->s, &e->id, &b);
	if (!err)
		hl_buf_unref(b);
	c->files++;
	return err;
}

static int check_ref(const char *name, const hl_id *id, void *arg)
{
	walk_ctx *c = arg;
	int err = hl_tree_walk(c->s, id, check_entry, c);
	if (err)
		fail_msg("ref %s: its tree does not read back whole: %s", name, hl_strerror(err));
	return 0;
}

static void test_gc_race(void **state)
{
	world *w = *state;
	uint64_t seed = (uint64_t)tu_env_int("HELIOS_SEED", (int)(time(NULL) & 0x7fffffff));
	int rounds = tu_env_int("HELIOS_FLEET_ROUNDS", 6);
	print_message("gc race: HELIOS_SEED=%llu, %d rounds\n", (unsigned long long)seed, rounds);
	uint64_t rng = seed;
	pid_t writers[2] = {start(w, 0, tu_rand(&rng)), start(w, 1, tu_rand(&rng))};
	pid_t collector = start(w, -1, tu_rand(&rng));
	for (int r = 0; r < rounds; r++) {
		msleep(2000 + (unsigned)(tu_rand(&rng) % 3000));
		unsigned who = (unsigned)(tu_rand(&rng) % 5); /* the collector one time in five */
		if (who == 4) {
			stop(collector);
			collector = start(w, -1, tu_rand(&rng));
		} else {
			stop(writers[who % 2]);
			writers[who % 2] = start(w, (int)(who % 2), tu_rand(&rng));
		}
	}
	msleep(1500);
	stop(writers[0]);
	stop(writers[1]);
	stop(collector);
	/* a fresh node with no caches: every ref's tree is whole in the bucket */
	w->round++;
	hl_store *s = open_node(w, "check", 0, 1);
	walk_ctx c = {s, 0};
	assert_int_equal(hl_ref_list(s, "agents/", check_ref, &c), 0);
	assert_true(c.files > 0);
	hl_gc_report r;
	assert_int_equal(gc_until_free(s, &r, 60), 0); /* takes over what a killed collector left */
	print_message("final gc: %llu objects, %llu reachable, %llu collected\n", (unsigned long long)r.objects,
	              (unsigned long long)r.reachable, (unsigned long long)r.collected);
	c.files = 0;
	assert_int_equal(hl_ref_list(s, "agents/", check_ref, &c), 0);
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 4, NULL, NULL, NULL, &vr), 0);
	assert_int_equal(vr.corrupt, 0);
	hl_close(s);
}

/* The bucket stops in the middle of a collection and comes back: nothing reachable is lost and
 * the next collection finishes. */
typedef struct bg_gc {
	hl_store *s;
	int err;
} bg_gc;

static void *run_gc(void *arg)
{
	bg_gc *g = arg;
	hl_gc_report r;
	g->err = hl_gc(g->s, NULL, &r);
	return NULL;
}

static void test_bucket_down_during_gc(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w, "a", 0, 0);
	uint64_t rng = 41;
	hl_id keep[30], ids[300];
	uint64_t sizes[30];
	for (int i = 0; i < 300; i++)
		ids[i] = put_random(a, &rng, 300 + (size_t)i);
	for (int i = 0; i < 30; i++)
		keep[i] = ids[i * 10], sizes[i] = 300 + (uint64_t)i * 10;
	size_t len;
	uint8_t *t = tree_of(keep, sizes, 30, &len);
	hl_id tree = put_bytes(a, t, len, NULL);
	free(t);
	assert_int_equal(hl_ref_set(a, "pin/keep", &tree), 0);
	msleep(1200);
	bg_gc g = {a, 0};
	pthread_t th;
	assert_int_equal(pthread_create(&th, NULL, run_gc, &g), 0);
	msleep(150 + (unsigned)(tu_rand(&rng) % 300));
	int port = w->srv.port;
	tu_s3_stop(&w->srv);
	msleep(1500);
	tu_s3_start(&w->srv, w->bucket, port, 0);
	pthread_join(th, NULL);
	print_message("the collection during the outage ended with: %s\n", g.err ? hl_strerror(g.err) : "success");
	hl_gc_report r;
	assert_int_equal(gc_until_free(a, &r, 60), 0);
	for (int i = 0; i < 30; i++)
		assert_reads(a, &keep[i]);
	assert_reads(a, &tree);
	hl_close(a);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_formats),
		cmocka_unit_test_setup(test_large_kv_stat, next_round),
		cmocka_unit_test_setup(test_bucket_repair, next_round),
		cmocka_unit_test_setup(test_gc_keeps_what_is_relied_on, next_round),
		cmocka_unit_test_setup(test_kv_bound, next_round),
		cmocka_unit_test_setup(test_gc_race, next_round),
		cmocka_unit_test_setup(test_bucket_down_during_gc, next_round),
	};
	tu_test_filter();
	return cmocka_run_group_tests(tests, setup, teardown);
}
