/* test_s3.c — the S3-compatible backend against a real S3 server on loopback (s3rver from npm,
 * started by tests/s3/server.js, which also verifies SigV4 signatures and honours conditional
 * writes): round trips through L1 → L2 → bucket, two nodes sharing one bucket (objects and refs),
 * compare-and-swap of one ref racing from two nodes with no update lost, bytes in the bucket that
 * do not hash to their id refused, the server stopped mid-run (cached reads go on, writes fail
 * clearly and fast) and restarted, wrong credentials, a missing bucket, a server without
 * conditional writes (objects work, ref updates are refused), and the test server itself killed
 * mid-write (every key and object reads back whole, as on S3, which the fleet tests rely on). */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "base/clock.h"
#include "remote/s3.h"
#include "testutil.h"

static char endpoint[64];

static hl_store *open_node(const char *dir, const tu_s3 *v, uint64_t l1, uint64_t l2, const char *secret)
{
	hl_options o;
	hl_options_init(&o);
	tu_s3_options(&o, v, endpoint);
	if (secret)
		o.s3_secret_key = secret;
	o.l1_bytes = l1;
	o.l2_bytes = l2;
	o.l2_region_size = 256 << 10;
	o.sync = HL_SYNC_NONE;
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err)
		fail_msg("open node %s: %s", dir, hl_strerror(err));
	return s;
}

static hl_id put_random(hl_store *s, uint64_t *rng, size_t len)
{
	uint8_t *d = malloc(len ? len : 1);
	tu_fill(rng, d, len);
	hl_id id;
	int created = -1;
	assert_int_equal(hl_put(s, d, len, &id, &created), 0);
	assert_int_equal(created, 1);
	free(d);
	return id;
}

static void assert_get_ok(hl_store *s, const hl_id *id)
{
	hl_buf *b = NULL;
	int err = hl_get(s, id, &b);
	if (err)
		fail_msg("get: %s", hl_strerror(err));
	hl_id again;
	hl_hash(hl_buf_data(b), hl_buf_len(b), &again);
	assert_true(hl_id_equal(&again, id));
	hl_buf_unref(b);
}

typedef struct world {
	char *root, *bucket, *na, *nb;
	int round;
	tu_s3 srv;
} world;

/* Node directories of their own for each test (a failed test leaves its handles open). */
static int fresh_nodes(void **state)
{
	world *w = *state;
	size_t n = strlen(w->root) + 32;
	w->round++;
	snprintf(w->na, n, "%s/node-a%d", w->root, w->round);
	snprintf(w->nb, n, "%s/node-b%d", w->root, w->round);
	return 0;
}

static int setup(void **state)
{
	world *w = calloc(1, sizeof(*w));
	w->root = tu_tmpdir("s3");
	size_t n = strlen(w->root) + 32;
	w->bucket = malloc(n), w->na = malloc(n), w->nb = malloc(n);
	snprintf(w->bucket, n, "%s/bucket", w->root);
	snprintf(w->na, n, "%s/node-a", w->root);
	snprintf(w->nb, n, "%s/node-b", w->root);
	tu_s3_start(&w->srv, w->bucket, 0, 0);
	*state = w;
	return 0;
}

static int teardown(void **state)
{
	world *w = *state;
	tu_s3_stop(&w->srv);
	tu_rmrf(w->root);
	free(w->root), free(w->bucket), free(w->na), free(w->nb);
	free(w);
	return 0;
}

static void test_round_trip_two_nodes(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w->na, &w->srv, 64 << 20, 16 << 20, NULL);
	hl_store *b = open_node(w->nb, &w->srv, 0, 0, NULL); /* no caches: every read is the bucket's */
	uint64_t rng = 3;
	hl_id ids[40];
	size_t sizes[40];
	for (int i = 0; i < 40; i++) {
		sizes[i] = i == 0 ? 0 : i == 1 ? (3u << 20) + 7 : (size_t)(tu_rand(&rng) % 20000);
		ids[i] = put_random(a, &rng, sizes[i]);
	}
	for (int i = 0; i < 40; i++) {
		assert_int_equal(hl_has(b, &ids[i]), 0);
		assert_get_ok(b, &ids[i]);
		assert_get_ok(a, &ids[i]);
	}
	/* a second put of the same content is not a new object, on either node */
	uint8_t d[100];
	memset(d, 7, sizeof d);
	hl_id id;
	int created;
	assert_int_equal(hl_put(a, d, sizeof d, &id, &created), 0);
	assert_int_equal(created, 1);
	assert_int_equal(hl_put(b, d, sizeof d, &id, &created), 0);
	assert_int_equal(created, 0);
	/* a batch (uploaded in parallel) */
	hl_put_item items[64];
	uint8_t bufs[64][300];
	for (int i = 0; i < 64; i++) {
		tu_fill(&rng, bufs[i], sizeof bufs[i]);
		items[i] = (hl_put_item){.data = bufs[i], .len = sizeof bufs[i]};
	}
	assert_int_equal(hl_put_batch(b, items, 64), 0);
	for (int i = 0; i < 64; i++) {
		assert_int_equal(items[i].created, 1);
		assert_get_ok(a, &items[i].id);
	}
	hl_id none;
	hl_hash("never stored", 12, &none);
	assert_int_equal(hl_has(a, &none), HL_NOTFOUND);
	hl_buf *buf;
	assert_int_equal(hl_get(b, &none, &buf), HL_NOTFOUND);

	/* refs live in the bucket: one node's update is the other's */
	assert_int_equal(hl_ref_cas(a, "agents/1/main", NULL, &ids[2]), 0);
	hl_id got;
	assert_int_equal(hl_ref_get(b, "agents/1/main", &got), 0);
	assert_true(hl_id_equal(&got, &ids[2]));
	assert_int_equal(hl_ref_cas(b, "agents/1/main", &ids[2], &ids[3]), 0);
	assert_int_equal(hl_ref_cas(a, "agents/1/main", &ids[2], &ids[4]), HL_CONFLICT); /* stale */
	assert_int_equal(hl_ref_cas(a, "agents/1/main", NULL, &ids[4]), HL_CONFLICT);     /* exists */
	assert_int_equal(hl_ref_cas(a, "agents/1/main", &ids[3], &none), HL_INCOMPLETE);  /* not stored */
	assert_int_equal(hl_ref_set(a, "agents/2/main", &ids[5]), 0);
	assert_int_equal(hl_ref_set(a, "other", &ids[6]), 0);
	/* A→B→A: the value is back, the ETag is not (a nonce in every body) */
	assert_int_equal(hl_ref_cas(a, "other", &ids[6], &ids[7]), 0);
	assert_int_equal(hl_ref_cas(b, "other", &ids[7], &ids[6]), 0);
	assert_int_equal(hl_ref_cas(a, "other", &ids[6], &ids[8]), 0);
	assert_int_equal(hl_ref_delete(b, "agents/2/main", &ids[4]), HL_CONFLICT);
	assert_int_equal(hl_ref_delete(b, "agents/2/main", &ids[5]), 0);
	assert_int_equal(hl_ref_get(a, "agents/2/main", &got), HL_NOTFOUND);
	assert_int_equal(hl_ref_delete(a, "agents/2/main", NULL), HL_NOTFOUND);
	assert_int_equal(hl_ref_cas(a, "agents/2/main", NULL, &ids[9]), 0); /* over a tombstone */
	assert_int_equal(hl_ref_get(b, "agents/2/main", &got), 0);
	assert_true(hl_id_equal(&got, &ids[9]));
	assert_int_equal(hl_ref_get(b, "../main", &got), HL_INVALID);
	hl_close(a);
	hl_close(b);
}

typedef struct lister {
	char names[8][HL_REF_MAX + 1];
	int n;
} lister;

static int list_one(const char *name, const hl_id *id, void *ctx)
{
	(void)id;
	lister *l = ctx;
	if (l->n < 8)
		snprintf(l->names[l->n], sizeof l->names[0], "%s", name);
	l->n++;
	return 0;
}

static void test_ref_list(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w->na, &w->srv, 0, 0, NULL);
	uint64_t rng = 5;
	hl_id id = put_random(a, &rng, 500);
	assert_int_equal(hl_ref_set(a, "list/x", &id), 0);
	assert_int_equal(hl_ref_set(a, "list/a.b", &id), 0);
	assert_int_equal(hl_ref_set(a, "list/z-1", &id), 0);
	assert_int_equal(hl_ref_set(a, "list/gone", &id), 0);
	assert_int_equal(hl_ref_delete(a, "list/gone", NULL), 0);
	assert_int_equal(hl_ref_set(a, "listless", &id), 0);
	lister l = {0};
	assert_int_equal(hl_ref_list(a, "list/", list_one, &l), 0);
	assert_int_equal(l.n, 3); /* the tombstone and "listless" are not listed */
	assert_string_equal(l.names[0], "list/a.b");
	assert_string_equal(l.names[1], "list/x");
	assert_string_equal(l.names[2], "list/z-1");
	hl_close(a);
}

/* ---- the race: two nodes, several threads each, one ref ---- */

typedef struct racer {
	hl_store *s;
	int who, rounds;
	int won, lost;
	int err; /* the first unexpected result (threads do not assert) */
} racer;

/* Each update stores an object naming the previous head, then moves the ref from the head it read
 * to it. No lost update: walking back from the final head visits every won update once. */
static void *race(void *arg)
{
	racer *r = arg;
	for (int i = 0; i < r->rounds && !r->err; i++) {
		for (;;) {
			hl_id head, next;
			if ((r->err = hl_ref_get(r->s, "race", &head)) != 0)
				break;
			char body[200], hex[HL_ID_HEX_LEN + 1];
			hl_id_format(&head, hex);
			int n = snprintf(body, sizeof body, "prev %s by %d round %d", hex, r->who, i);
			if ((r->err = hl_put(r->s, body, (size_t)n, &next, NULL)) != 0)
				break;
			int err = hl_ref_cas(r->s, "race", &head, &next);
			if (err == 0) {
				r->won++;
				break;
			}
			if (err != HL_CONFLICT) {
				r->err = err;
				break;
			}
			r->lost++;
		}
	}
	return NULL;
}

static void test_cas_race(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w->na, &w->srv, 8 << 20, 0, NULL);
	hl_store *b = open_node(w->nb, &w->srv, 8 << 20, 0, NULL);
	const char *genesis = "genesis";
	hl_id g;
	assert_int_equal(hl_put(a, genesis, strlen(genesis), &g, NULL), 0);
	assert_int_equal(hl_ref_set(a, "race", &g), 0);
	enum { T = 6 };
	racer rs[T];
	pthread_t th[T];
	int rounds = tu_env_int("HELIOS_S3_RACE_ROUNDS", 12);
	for (int i = 0; i < T; i++) {
		rs[i] = (racer){.s = i % 2 ? b : a, .who = i, .rounds = rounds};
		pthread_create(&th[i], NULL, race, &rs[i]);
	}
	int won = 0, lost = 0;
	for (int i = 0; i < T; i++) {
		pthread_join(th[i], NULL);
		if (rs[i].err)
			fail_msg("racer %d: %s", i, hl_strerror(rs[i].err));
		won += rs[i].won, lost += rs[i].lost;
	}
	assert_int_equal(won, T * rounds);
	hl_id head;
	assert_int_equal(hl_ref_get(b, "race", &head), 0);
	int chain = 0;
	while (!hl_id_equal(&head, &g)) {
		hl_buf *buf;
		assert_int_equal(hl_get(a, &head, &buf), 0);
		assert_true(hl_buf_len(buf) > 5 + HL_ID_HEX_LEN && !memcmp(hl_buf_data(buf), "prev ", 5));
		assert_int_equal(hl_id_parse((const char *)hl_buf_data(buf) + 5, HL_ID_HEX_LEN, &head), 0);
		hl_buf_unref(buf);
		chain++;
		assert_true(chain <= won);
	}
	printf("race: %d updates from 2 nodes × %d threads, %d lost races retried, chain of %d\n", won,
	       T / 2, lost, chain);
	assert_int_equal(chain, won);
	hl_close(a);
	hl_close(b);
}

/* Bytes in the bucket that do not hash to their key are never returned. */
static void test_bad_bytes_refused(void **state)
{
	world *w = *state;
	hl_s3_config c = {.endpoint = endpoint, .bucket = "helios", .prefix = "fleet",
	                  .access_key = "helios-test", .secret_key = "helios-secret"};
	snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", w->srv.port);
	hl_s3 *raw;
	assert_int_equal(hl_s3_open(&c, &raw), 0);
	assert_int_equal(hl_s3_conditional_writes(raw), 1);
	const char *good = "the right bytes", *bad = "the wrong bytes";
	hl_id id;
	hl_hash(good, strlen(good), &id);
	int created;
	assert_int_equal(hl_s3_put(raw, &id, bad, strlen(bad), &created), 0); /* a lying writer */
	hl_store *a = open_node(w->na, &w->srv, 8 << 20, 8 << 20, NULL);
	hl_buf *b = NULL;
	assert_int_equal(hl_get(a, &id, &b), HL_CORRUPT);
	assert_null(b);
	uint8_t dst[64];
	size_t len = 0;
	assert_int_equal(hl_get_into(a, &id, dst, sizeof dst, &len), HL_CORRUPT);
	hl_close(a);
	hl_s3_close(raw);
}

static void test_server_down(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w->na, &w->srv, 0, 16 << 20, NULL); /* L2 only: the disk cache serves */
	hl_store *b = open_node(w->nb, &w->srv, 0, 0, NULL);
	uint64_t rng = 9;
	hl_id ids[20];
	for (int i = 0; i < 20; i++)
		ids[i] = put_random(a, &rng, 1000 + (size_t)i * 100);
	hl_id cold = put_random(b, &rng, 800); /* in the bucket only */
	hl_close(b);
	int port = w->srv.port;
	tu_s3_stop(&w->srv);
	for (int i = 0; i < 20; i++) /* written through to the L2: read while the bucket is down */
		assert_get_ok(a, &ids[i]);
	uint8_t d[500];
	tu_fill(&rng, d, sizeof d);
	hl_id id;
	uint64_t t0 = hl_now_ns();
	for (int i = 0; i < 20; i++) {
		d[0] = (uint8_t)i;
		assert_int_equal(hl_put(a, d, sizeof d, &id, NULL), HL_UNAVAILABLE);
	}
	double secs = (double)(hl_now_ns() - t0) / 1e9;
	printf("bucket down: 20 writes refused in %.2f s (the breaker answers at once)\n", secs);
	assert_true(secs < 10);
	hl_buf *buf = NULL;
	assert_int_equal(hl_get(a, &cold, &buf), HL_UNAVAILABLE); /* unreachable is not "not found" */
	assert_int_equal(hl_has(a, &cold), HL_UNAVAILABLE);
	hl_id ref;
	assert_int_equal(hl_ref_get(a, "anything", &ref), HL_UNAVAILABLE);
	assert_int_equal(hl_ref_set(a, "anything", &ids[0]), HL_UNAVAILABLE);
	hl_stats st;
	assert_int_equal(hl_stats_get(a, &st), 0);
	assert_int_equal(st.remote_breaker_open, 1);
	assert_true(st.remote_breaker_opens >= 1 && st.remote_failures >= 5);
	char *text;
	size_t tlen;
	assert_int_equal(hl_metrics_text(a, &text, &tlen), 0);
	assert_non_null(strstr(text, "helios_remote_breaker_open 1\n"));
	free(text);

	/* a node restarting during the outage opens, and serves its L2 (rebuilt from the file) */
	hl_close(a);
	a = open_node(w->na, &w->srv, 0, 16 << 20, NULL);
	for (int i = 0; i < 20; i++)
		assert_get_ok(a, &ids[i]);

	/* the bucket back: writes resume once the breaker lets a trial through */
	tu_s3_start(&w->srv, w->bucket, port, 0);
	int err = HL_UNAVAILABLE;
	for (int i = 0; i < 100 && err == HL_UNAVAILABLE; i++) {
		err = hl_put(a, d, sizeof d, &id, NULL);
		if (err == HL_UNAVAILABLE)
			usleep(100 * 1000);
	}
	assert_int_equal(err, 0);
	assert_get_ok(a, &cold);
	assert_int_equal(hl_ref_set(a, "after-outage", &id), 0);
	hl_close(a);
}

/* A restarted node's L1 is warmed from its L2's newest entries in the background. */
static void test_promotion(void **state)
{
	world *w = *state;
	hl_store *a = open_node(w->na, &w->srv, 64 << 20, 16 << 20, NULL);
	uint64_t rng = 31;
	enum { N = 300 };
	hl_id ids[N];
	for (int i = 0; i < N; i++)
		ids[i] = put_random(a, &rng, 2000);
	hl_close(a);
	a = open_node(w->na, &w->srv, 64 << 20, 16 << 20, NULL);
	hl_stats st;
	for (int i = 0; i < 2000; i++) {
		assert_int_equal(hl_stats_get(a, &st), 0);
		if (st.l2_promoted >= N)
			break;
		usleep(10 * 1000);
	}
	printf("promotion: %llu objects moved from the L2 into the L1 after a restart\n",
	       (unsigned long long)st.l2_promoted);
	assert_int_equal(st.l2_promoted, N);
	uint64_t l2_hits = st.l2_hits, reqs = st.remote_requests;
	for (int i = 0; i < N; i++)
		assert_get_ok(a, &ids[i]);
	assert_int_equal(hl_stats_get(a, &st), 0);
	assert_true(st.l1_hits >= N);
	assert_int_equal(st.l2_hits, l2_hits);          /* all served from memory */
	/* and none from the bucket: reading them there would be N requests; the node's heartbeat
	 * may add one or two when the machine is slow (seen: 6 for 5 under load) */
	assert_true(st.remote_requests - reqs < 10);
	hl_close(a);
}

static void test_refused_and_missing(void **state)
{
	world *w = *state;
	hl_options o;
	hl_options_init(&o);
	snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", w->srv.port);
	o.backend = "s3";
	o.s3_endpoint = endpoint;
	o.s3_bucket = "helios";
	o.s3_access_key = "helios-test";
	o.s3_secret_key = "not-the-secret";
	hl_store *s = NULL;
	assert_int_equal(hl_open(w->na, &o, &s), EACCES); /* the signature does not match */
	assert_null(s);
	o.s3_secret_key = "helios-secret";
	o.s3_bucket = "no-such-bucket";
	assert_int_equal(hl_open(w->na, &o, &s), HL_NOTFOUND);
	o.s3_bucket = "helios";
	o.backend = "ftp";
	assert_int_equal(hl_open(w->na, &o, &s), HL_INVALID);
	o.backend = "s3";
	o.s3_endpoint = "127.0.0.1:9"; /* no scheme */
	assert_int_equal(hl_open(w->na, &o, &s), HL_INVALID);
	o.s3_endpoint = endpoint;
	o.s3_prefix = "/leading";
	assert_int_equal(hl_open(w->na, &o, &s), HL_INVALID);
}

/* A server without conditional writes: objects are stored, ref updates refused (they could undo
 * another node's). */
static void test_plain_server(void **state)
{
	world *w = *state;
	tu_s3 plain;
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/plain-bucket", w->root);
	tu_s3_start(&plain, dir, 0, 1);
	hl_store *a = open_node(w->na, &plain, 0, 0, NULL);
	uint64_t rng = 21;
	hl_id id = put_random(a, &rng, 700);
	int created = -1;
	uint8_t again[700];
	rng = 21;
	tu_fill(&rng, again, sizeof again);
	assert_int_equal(hl_put(a, again, sizeof again, &id, &created), 0);
	assert_int_equal(created, 0); /* found by HEAD */
	assert_get_ok(a, &id);
	assert_int_equal(hl_ref_set(a, "main", &id), HL_INVALID);
	hl_close(a);
	tu_s3_stop(&plain);
}

/* The test bucket is killed in the middle of writes and started again, as the fleet tests do: like
 * S3, every key and object reads back whole — the last body written or the one before it, never a
 * torn one, a body with another's metadata, or an error that stays. */
#define TORN_WRITERS 4
typedef struct torn_writer {
	hl_s3 *s3;
	int index;
	atomic_int stop;
	uint64_t rng;
	hl_id objs[4096];
	size_t nobjs;
} torn_writer;

/* A control key's body says how to make it again: "torn <seed>\n" and seed's bytes after. */
static size_t torn_body(uint64_t seed, uint8_t *out)
{
	int h = snprintf((char *)out, 32, "torn %016llx\n", (unsigned long long)seed);
	size_t len = (size_t)h + seed % 30000;
	uint64_t r = seed;
	tu_fill(&r, out + h, len - (size_t)h);
	return len;
}

static void *torn_write(void *arg)
{
	torn_writer *t = arg;
	uint8_t *body = malloc(32 + 30000);
	char key[32], text[64 << 10];
	while (!t->stop) {
		uint64_t seed = tu_rand(&t->rng);
		snprintf(key, sizeof key, "torn/k%d-%d", t->index, (int)(seed % 3));
		int err = hl_s3_key_put(t->s3, key, body, torn_body(seed, body), NULL, NULL);
		if (t->nobjs < sizeof t->objs / sizeof t->objs[0]) { /* compressible: stored as zstd */
			size_t n = 0, want = 1000 + (size_t)(seed % (sizeof text - 1000));
			while (n + 40 < want)
				n += (size_t)snprintf(text + n, sizeof text - n, "line %zu of %016llx\n", n,
				                      (unsigned long long)seed);
			hl_hash(text, n, &t->objs[t->nobjs]);
			int created;
			err |= hl_s3_put(t->s3, &t->objs[t->nobjs++], text, n, &created);
		}
		if (err)
			usleep(2000); /* down: the breaker answers at once */
	}
	free(body);
	return NULL;
}

/* Calls again while the bucket is still coming back (the breaker's cooldown). */
#define UNTIL_UP(call)                                                                             \
	({                                                                                             \
		int e_;                                                                                    \
		uint64_t end_ = hl_now_ns() + 30000000000ull;                                              \
		while ((e_ = (call)) == HL_UNAVAILABLE && hl_now_ns() < end_)                              \
			usleep(50000);                                                                         \
		e_;                                                                                        \
	})

static void test_killed_mid_write(void **state)
{
	world *w = *state;
	hl_s3_config c = {.endpoint = endpoint, .bucket = "helios", .prefix = "torn",
	                  .access_key = "helios-test", .secret_key = "helios-secret"};
	c.http.breaker_cooldown_ms = 200;
	snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%d", w->srv.port);
	hl_s3 *s3;
	assert_int_equal(hl_s3_open(&c, &s3), 0);
	static torn_writer tw[TORN_WRITERS];
	pthread_t th[TORN_WRITERS];
	uint64_t rng = 77;
	for (int i = 0; i < TORN_WRITERS; i++) {
		tw[i] = (torn_writer){.s3 = s3, .index = i, .rng = tu_rand(&rng)};
		assert_int_equal(pthread_create(&th[i], NULL, torn_write, &tw[i]), 0);
	}
	int port = w->srv.port, rounds = tu_env_int("HELIOS_KILL_ROUNDS", 12);
	for (int r = 0; r < rounds; r++) {
		usleep((150 + (unsigned)(tu_rand(&rng) % 300)) * 1000);
		tu_s3_stop(&w->srv); /* SIGKILL: whatever the server was writing stops there */
		tu_s3_start(&w->srv, w->bucket, port, 0);
	}
	usleep(300 * 1000);
	for (int i = 0; i < TORN_WRITERS; i++) {
		tw[i].stop = 1;
		pthread_join(th[i], NULL);
	}
	uint8_t *want = malloc(32 + 30000);
	size_t keys = 0, objs = 0;
	for (int i = 0; i < TORN_WRITERS; i++) {
		for (int k = 0; k < 3; k++) {
			char key[32], etag[96];
			snprintf(key, sizeof key, "torn/k%d-%d", i, k);
			hl_buf *b = NULL;
			int err = UNTIL_UP(hl_s3_key_get(s3, key, &b, etag));
			if (err == HL_NOTFOUND)
				continue;
			if (err)
				fail_msg("%s after the kills: %s", key, hl_strerror(err));
			unsigned long long seed = 0;
			const char *p = (const char *)hl_buf_data(b);
			if (hl_buf_len(b) < 22 || sscanf(p, "torn %16llx\n", &seed) != 1 ||
			    torn_body(seed, want) != hl_buf_len(b) || memcmp(want, p, hl_buf_len(b)))
				fail_msg("%s after the kills: a torn body of %zu bytes", key, hl_buf_len(b));
			hl_buf_unref(b);
			/* its ETag is the one the server keeps: a write conditional on it succeeds */
			assert_int_equal(UNTIL_UP(hl_s3_key_put(s3, key, "x", 1, etag, NULL)), 0);
			keys++;
		}
		for (size_t j = 0; j < tw[i].nobjs; j++) {
			hl_buf *b = NULL;
			int err = UNTIL_UP(hl_s3_get(s3, &tw[i].objs[j], &b));
			if (err && err != HL_NOTFOUND) {
				char hex[HL_ID_HEX_LEN + 1];
				hl_id_format(&tw[i].objs[j], hex);
				fail_msg("object %s after the kills: %s", hex, hl_strerror(err));
			}
			objs += !err;
			hl_buf_unref(b);
		}
	}
	printf("%d kills: %zu keys and %zu objects read back whole\n", rounds, keys, objs);
	assert_true(keys > 0 && objs > 0);
	free(want);
	hl_s3_close(s3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_round_trip_two_nodes, fresh_nodes),
		cmocka_unit_test_setup(test_ref_list, fresh_nodes),
		cmocka_unit_test_setup(test_cas_race, fresh_nodes),
		cmocka_unit_test_setup(test_bad_bytes_refused, fresh_nodes),
		cmocka_unit_test_setup(test_server_down, fresh_nodes),
		cmocka_unit_test_setup(test_promotion, fresh_nodes),
		cmocka_unit_test_setup(test_refused_and_missing, fresh_nodes),
		cmocka_unit_test_setup(test_plain_server, fresh_nodes),
		cmocka_unit_test_setup(test_killed_mid_write, fresh_nodes),
	};
	tu_test_filter();
	return cmocka_run_group_tests(tests, setup, teardown);
}
