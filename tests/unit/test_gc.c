/* test_gc.c — garbage collection: completeness on put, reachable objects kept (refs, kv values,
 * trees, chunked blobs), garbage collected only past the grace period, sparse segments compacted,
 * a corrupt tree stopping the collection, collections racing writers that link old objects,
 * kill -9 during compaction, and the index file compacted at close. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "api/api.h"
#include "base/alloc.h"
#include "base/clock.h"
#include "dedup/manifest.h"
#include "dedup/tree.h"
#include "store/names.h"
#include "store/record.h"
#include "testutil.h"

#define SEG (64u << 10)

static hl_store *open_gc(const char *dir, uint64_t grace_s)
{
	hl_options o;
	hl_options_init(&o);
	o.segment_size = SEG;
	o.gc_grace_s = grace_s;
	o.chunk_threshold = 64 << 10;
	o.chunk_min = 4 << 10, o.chunk_avg = 8 << 10, o.chunk_max = 16 << 10;
	o.index_in_memory = tu_env_int("HELIOS_TEST_INDEX_MEMORY", o.index_in_memory);
	hl_store *s = NULL;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	return s;
}

static void msleep(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) && errno == EINTR) {
	}
}

/* Encodes a tree of files named f0000.. pointing at ids (sizes given) into a malloc'd buffer. */
static uint8_t *tree_of(const hl_id *ids, const uint64_t *sizes, size_t n, size_t *len)
{
	hl_tree_entry *e = calloc(n ? n : 1, sizeof(*e));
	char (*names)[16] = calloc(n ? n : 1, 16);
	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		snprintf(names[i], 16, "f%06zu", i);
		e[i] = (hl_tree_entry){.kind = HL_TREE_FILE, .mode = 0644, .size = sizes ? sizes[i] : 0,
		                       .id = ids[i], .name = names[i], .name_len = strlen(names[i])};
	}
	size_t cap = hl_tree_size(e, n);
	uint8_t *buf = malloc(cap);
	assert_int_equal(hl_tree_encode(e, n, buf, cap, len), 0);
	free(e);
	free(names);
	return buf;
}

static hl_id put_random(hl_store *s, uint64_t *rng, size_t len)
{
	uint8_t *b = malloc(len);
	tu_fill(rng, b, len);
	hl_id id;
	assert_int_equal(hl_put(s, b, len, &id, NULL), 0);
	free(b);
	return id;
}

static void test_completeness(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-complete");
	hl_store *s = open_gc(dir, 86400);
	uint64_t rng = 7;
	hl_id ids[2];
	uint8_t missing_data[100];
	tu_fill(&rng, missing_data, sizeof missing_data);
	hl_hash(missing_data, sizeof missing_data, &ids[0]); /* never stored */
	ids[1] = put_random(s, &rng, 300);
	size_t len;
	uint8_t *t = tree_of(ids, NULL, 2, &len);
	hl_id tid;
	assert_int_equal(hl_put(s, t, len, &tid, NULL), HL_INCOMPLETE);
	hl_hash(t, len, &tid);
	assert_int_equal(hl_has(s, &tid), HL_NOTFOUND);
	assert_int_equal(hl_put_expect(s, &tid, t, len, NULL), HL_INCOMPLETE);
	/* the missing child in the same batch: complete */
	hl_put_item items[2] = {{.data = t, .len = len}, {.data = missing_data, .len = sizeof missing_data}};
	assert_int_equal(hl_put_batch(s, items, 2), 0);
	assert_int_equal(hl_has(s, &tid), 0);
	/* a manifest naming a chunk that is not stored */
	hl_chunk_ref c = {.len = 50};
	tu_fill(&rng, c.id.b, HL_ID_LEN);
	uint8_t m[HL_MANIFEST_HDR + HL_MANIFEST_ENTRY];
	size_t mlen;
	assert_int_equal(hl_manifest_encode(&c, 1, m, sizeof m, &mlen), 0);
	assert_int_equal(hl_put(s, m, mlen, NULL, NULL), HL_INCOMPLETE);
	free(t);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

typedef struct world {
	hl_id a, s, big, t2, t1;         /* reachable through ref "main" */
	uint8_t kv[500];                 /* reachable as a kv value */
	hl_id garbage[200], lg, gb, tg;  /* unreachable */
} world;

static void build_world(hl_store *s, world *w, uint64_t *rng)
{
	w->a = put_random(s, rng, 1000);
	w->s = put_random(s, rng, 20);
	w->big = put_random(s, rng, 300 << 10); /* chunked */
	hl_stat st;
	assert_int_equal(hl_stat_object(s, &w->big, &st), 0);
	assert_true(st.flags & HL_STAT_CHUNKED);
	uint64_t bigsize = 300 << 10;
	size_t len;
	uint8_t *t2 = tree_of(&w->big, &bigsize, 1, &len);
	assert_int_equal(hl_put(s, t2, len, &w->t2, NULL), 0);
	free(t2);
	hl_tree_entry e[3] = {
		{.kind = HL_TREE_FILE, .mode = 0644, .size = 1000, .id = w->a, .name = "a", .name_len = 1},
		{.kind = HL_TREE_DIR, .mode = 0755, .id = w->t2, .name = "d", .name_len = 1},
		{.kind = HL_TREE_SYMLINK, .size = 20, .id = w->s, .name = "s", .name_len = 1}};
	uint8_t buf[1024];
	assert_int_equal(hl_tree_encode(e, 3, buf, sizeof buf, &len), 0);
	assert_int_equal(hl_put(s, buf, len, &w->t1, NULL), 0);
	assert_int_equal(hl_ref_set(s, "main", &w->t1), 0);
	tu_fill(rng, w->kv, sizeof w->kv);
	assert_int_equal(hl_kv_put(s, "ns", "key", 3, w->kv, sizeof w->kv), 0);
	for (int i = 0; i < 200; i++)
		w->garbage[i] = put_random(s, rng, 500 + (size_t)i * 10);
	w->lg = put_random(s, rng, 200 << 10);
	w->gb = put_random(s, rng, 700);
	uint8_t *tg = tree_of(&w->gb, NULL, 1, &len);
	assert_int_equal(hl_put(s, tg, len, &w->tg, NULL), 0);
	free(tg);
}

static void assert_reachable(hl_store *s, const world *w)
{
	const hl_id *keep[] = {&w->a, &w->s, &w->big, &w->t2, &w->t1};
	for (size_t i = 0; i < 5; i++) {
		hl_buf *b;
		assert_int_equal(hl_get(s, keep[i], &b), 0);
		hl_buf_unref(b);
	}
	hl_buf *b;
	assert_int_equal(hl_kv_get(s, "ns", "key", 3, &b), 0);
	assert_memory_equal(hl_buf_data(b), w->kv, sizeof w->kv);
	hl_buf_unref(b);
}

static void assert_collected(hl_store *s, const world *w)
{
	for (int i = 0; i < 200; i++)
		assert_int_equal(hl_has(s, &w->garbage[i]), HL_NOTFOUND);
	assert_int_equal(hl_has(s, &w->lg), HL_NOTFOUND);
	assert_int_equal(hl_has(s, &w->gb), HL_NOTFOUND);
	assert_int_equal(hl_has(s, &w->tg), HL_NOTFOUND);
}

static void test_reachable_kept(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-world");
	hl_store *s = open_gc(dir, 86400);
	uint64_t rng = 11;
	world w;
	build_world(s, &w, &rng);
	hl_gc_report r;
	assert_int_equal(hl_gc(s, NULL, &r), 0); /* everything is within the grace period */
	assert_int_equal(r.collected, 0);
	assert_true(r.young == r.objects && r.objects > 200);
	hl_close(s); /* (a grace of a day there: building the world may take seconds on a slow machine) */
	s = open_gc(dir, 1);
	msleep(2200);
	hl_stats before, after;
	assert_int_equal(hl_stats_get(s, &before), 0);
	hl_gc_options o;
	hl_gc_options_init(&o);
	o.dry_run = 1;
	assert_int_equal(hl_gc(s, &o, &r), 0);
	uint64_t would = r.collected;
	assert_true(would > 200);
	hl_stat st; /* (hl_has would count as a find, and keep it) */
	assert_int_equal(hl_stat_object(s, &w.garbage[0], &st), 0); /* a dry run deletes nothing */
	o.dry_run = 0;
	o.compact_below = 0.9;
	assert_int_equal(hl_gc(s, &o, &r), 0);
	assert_int_equal(r.collected, would);
	assert_true(r.segments_removed > 0);
	assert_true(r.bytes_reclaimed > 0);
	assert_int_equal(hl_stats_get(s, &after), 0);
	assert_true(after.segment_bytes < before.segment_bytes);
	assert_int_equal(after.objects, before.objects - r.collected);
	assert_reachable(s, &w);
	assert_collected(s, &w);
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &vr), 0);
	hl_close(s);

	/* reopened: nothing collected comes back, everything kept is intact */
	s = open_gc(dir, 1);
	assert_reachable(s, &w);
	assert_collected(s, &w);
	assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &vr), 0);
	/* the ref gone, its objects follow once they age; the kv value stays a root */
	assert_int_equal(hl_ref_delete(s, "main", &w.t1), 0);
	msleep(2200);
	assert_int_equal(hl_gc(s, NULL, &r), 0);
	assert_int_equal(hl_has(s, &w.t1), HL_NOTFOUND);
	assert_int_equal(hl_has(s, &w.big), HL_NOTFOUND);
	hl_buf *b;
	assert_int_equal(hl_kv_get(s, "ns", "key", 3, &b), 0);
	hl_buf_unref(b);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

static void test_corrupt_tree_stops(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-corrupt");
	hl_store *s = open_gc(dir, 1);
	uint64_t rng = 13;
	world w;
	build_world(s, &w, &rng);
	hl_stat st;
	assert_int_equal(hl_stat_object(s, &w.t2, &st), 0);
	assert_int_equal(hl_sync(s), 0);
	hl_close(s);
	char seg[4096];
	tu_seg_path(dir, (uint32_t)st.segment, seg, sizeof seg);
	tu_flip_bit(seg, st.offset + 64 + 20, 3); /* inside the tree's payload */
	msleep(2200);
	s = open_gc(dir, 1);
	hl_gc_report r;
	assert_int_equal(hl_gc(s, NULL, &r), HL_CORRUPT);
	assert_int_equal(r.collected, 0);
	assert_int_equal(hl_has(s, &w.garbage[0]), 0); /* nothing deleted */
	assert_int_equal(hl_has(s, &w.big), 0);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* ---- collections racing writers that link old, unreachable objects ---- */

#define POOL 1500
#define WRITERS 4

typedef struct race {
	hl_store *s;
	hl_id pool[POOL]; /* old and unreachable when the race starts */
	hl_put_item items[POOL]; /* their bytes, for writers that find them collected */
	atomic_int stop;
	atomic_uint_fast64_t links, collections, held, collected, incomplete;
	int idx;
} race;

typedef struct writer_arg {
	race *r;
	int idx;
} writer_arg;

static void *race_writer(void *arg)
{
	writer_arg *wa = arg;
	race *r = wa->r;
	uint64_t rng = 1000 + (uint64_t)wa->idx;
	for (unsigned it = 0; !atomic_load(&r->stop); it++) {
		hl_id ids[25];
		uint8_t fresh[5][256];
		hl_put_item items[6];
		for (int i = 0; i < 20; i++)
			ids[i] = r->pool[tu_rand(&rng) % POOL];
		for (int i = 0; i < 5; i++) {
			tu_fill(&rng, fresh[i], sizeof fresh[i]);
			hl_hash(fresh[i], sizeof fresh[i], &ids[20 + i]);
			items[i + 1] = (hl_put_item){.data = fresh[i], .len = sizeof fresh[i]};
		}
		/* tree entries are sorted by name, ids need not be: duplicates are fine */
		size_t len;
		uint8_t *t = tree_of(ids, NULL, 25, &len);
		items[0] = (hl_put_item){.data = t, .len = len};
		int err = hl_put_batch(r->s, items, 6);
		if (err == HL_INCOMPLETE) { /* a pool object was collected: upload what it names again,
		                               as an agent would (present ones are found, and held) */
			atomic_fetch_add(&r->incomplete, 1);
			hl_put_item again[20];
			for (int i = 0; i < 20; i++) {
				size_t k = 0;
				while (!hl_id_equal(&r->pool[k], &ids[i]))
					k++;
				again[i] = (hl_put_item){.data = r->items[k].data, .len = r->items[k].len};
			}
			assert_int_equal(hl_put_batch(r->s, again, 20), 0);
			err = hl_put_batch(r->s, items, 6);
			if (err == HL_INCOMPLETE) { /* collected again in between: a later round */
				free(t);
				continue;
			}
		}
		assert_int_equal(err, 0);
		char ref[32];
		snprintf(ref, sizeof ref, "w%d/%u", wa->idx, it % 6);
		err = hl_ref_set(r->s, ref, &items[0].id);
		assert_true(err == 0 || err == HL_INCOMPLETE);
		if (!err)
			atomic_fetch_add(&r->links, 1);
		free(t);
	}
	return NULL;
}

static void *race_collector(void *arg)
{
	race *r = arg;
	hl_gc_options o;
	hl_gc_options_init(&o);
	o.compact_below = 0.9;
	while (!atomic_load(&r->stop)) {
		hl_gc_report rep;
		int err = hl_gc(r->s, &o, &rep);
		assert_int_equal(err, 0);
		atomic_fetch_add(&r->collections, 1);
		atomic_fetch_add(&r->held, rep.held);
		atomic_fetch_add(&r->collected, rep.collected);
	}
	return NULL;
}

static int check_entry(const char *path, const hl_tree_entry *e, void *ctx)
{
	(void)path;
	hl_buf *b;
	int err = hl_get(ctx, &e->id, &b);
	if (err) {
		char hex[65];
		hl_id_format(&e->id, hex);
		fprintf(stderr, "reachable object %s: %s\n", hex, hl_strerror(err));
		return err;
	}
	hl_buf_unref(b);
	return 0;
}

static int check_ref(const char *name, const hl_id *target, void *ctx)
{
	(void)name;
	hl_buf *b;
	int err = hl_get(ctx, target, &b);
	if (!err)
		hl_buf_unref(b);
	return err ? err : hl_tree_walk(ctx, target, check_entry, ctx);
}

static void test_race_writers(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-race");
	static race r;
	memset(&r, 0, sizeof r);
	r.s = open_gc(dir, 2);
	uint64_t rng = 17;
	for (int i = 0; i < POOL; i++) {
		size_t len = 200 + (size_t)(i % 50) * 20;
		uint8_t *d = malloc(len);
		tu_fill(&rng, d, len);
		r.items[i] = (hl_put_item){.data = d, .len = len};
		assert_int_equal(hl_put(r.s, d, len, &r.pool[i], NULL), 0);
	}
	msleep(3200); /* the pool is old and unreachable: every object a candidate */
	pthread_t w[WRITERS], c;
	writer_arg wa[WRITERS];
	for (int i = 0; i < WRITERS; i++) {
		wa[i] = (writer_arg){&r, i};
		assert_int_equal(pthread_create(&w[i], NULL, race_writer, &wa[i]), 0);
	}
	assert_int_equal(pthread_create(&c, NULL, race_collector, &r), 0);
	msleep((unsigned)tu_env_int("HELIOS_GC_RACE_MS", 4000));
	atomic_store(&r.stop, 1);
	for (int i = 0; i < WRITERS; i++)
		pthread_join(w[i], NULL);
	pthread_join(c, NULL);
	fprintf(stderr, "race: %llu links, %llu collections, %llu held finds, %llu collected, %llu incomplete\n",
	        (unsigned long long)r.links, (unsigned long long)r.collections,
	        (unsigned long long)r.held, (unsigned long long)r.collected,
	        (unsigned long long)r.incomplete);
	assert_true(r.links > 0 && r.collections > 0);
	assert_true(r.collected > 0); /* the pool objects nobody linked went */
	/* every ref's tree and everything it names is readable: nothing reachable was collected */
	assert_int_equal(hl_ref_list(r.s, "", check_ref, r.s), 0);
	hl_verify_report vr;
	assert_int_equal(hl_verify(r.s, 0, NULL, NULL, NULL, &vr), 0);
	hl_close(r.s);
	r.s = open_gc(dir, 2); /* and after a reopen */
	assert_int_equal(hl_ref_list(r.s, "", check_ref, r.s), 0);
	hl_close(r.s);
	for (int i = 0; i < POOL; i++)
		free((void *)r.items[i].data);
	tu_rmrf(dir);
	free(dir);
}

/* ---- chunked blobs put while collections with no grace period run ---- */

typedef struct large_race {
	hl_store *s;
	atomic_int stop;
	atomic_uint_fast64_t puts, gone, collections;
} large_race;

/* Stores unreferenced chunked blobs and reads each back at once: a collection may take one (not
 * found), never leave it half there (a map whose manifest or chunks are gone reads HL_CORRUPT). */
static void *large_race_writer(void *arg)
{
	large_race *r = arg;
	uint64_t rng = 99;
	size_t len = 160u << 10;
	uint8_t *data = malloc(len);
	while (!atomic_load(&r->stop)) {
		tu_fill(&rng, data, len);
		hl_id id;
		assert_int_equal(hl_put(r->s, data, len, &id, NULL), 0);
		hl_buf *b;
		int err = hl_get(r->s, &id, &b);
		if (err == HL_NOTFOUND) {
			atomic_fetch_add(&r->gone, 1);
		} else {
			if (err)
				fprintf(stderr, "large blob read after its put: %s\n", hl_strerror(err));
			assert_int_equal(err, 0);
			assert_memory_equal(hl_buf_data(b), data, len);
			hl_buf_unref(b);
		}
		atomic_fetch_add(&r->puts, 1);
	}
	free(data);
	return NULL;
}

static void *large_race_collector(void *arg)
{
	large_race *r = arg;
	hl_gc_options o;
	hl_gc_options_init(&o);
	while (!atomic_load(&r->stop)) {
		hl_gc_report rep;
		assert_int_equal(hl_gc(r->s, &o, &rep), 0);
		atomic_fetch_add(&r->collections, 1);
	}
	return NULL;
}

static void test_race_large(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-race-large");
	static large_race r;
	memset(&r, 0, sizeof r);
	r.s = open_gc(dir, 0);
	pthread_t w[2], c;
	for (int i = 0; i < 2; i++)
		assert_int_equal(pthread_create(&w[i], NULL, large_race_writer, &r), 0);
	assert_int_equal(pthread_create(&c, NULL, large_race_collector, &r), 0);
	msleep((unsigned)tu_env_int("HELIOS_GC_RACE_MS", 4000));
	atomic_store(&r.stop, 1);
	for (int i = 0; i < 2; i++)
		pthread_join(w[i], NULL);
	pthread_join(c, NULL);
	fprintf(stderr, "large race: %llu puts, %llu taken before their read, %llu collections\n",
	        (unsigned long long)r.puts, (unsigned long long)r.gone,
	        (unsigned long long)r.collections);
	assert_true(r.puts > 0 && r.collections > 0);
	hl_verify_report vr;
	assert_int_equal(hl_verify(r.s, 0, NULL, NULL, NULL, &vr), 0);
	hl_close(r.s);
	tu_rmrf(dir);
	free(dir);
}

/* Until the wall clock's second changes: what was written before is then older than a collection
 * with no grace period (atime < now). */
static void wait_next_second(void)
{
	time_t t0 = time(NULL);
	while (time(NULL) <= t0)
		msleep(20);
}

/* ---- pins: what a writer pins no collection takes; counted; kept through the pins' tidying ---- */

static int stored(hl_store *s, const hl_id *id)
{
	hl_stat st; /* (not hl_has: that would refresh its access time) */
	return hl_stat_object(s, id, &st) == 0;
}

static void test_pins(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-pins");
	hl_store *s = open_gc(dir, 0);
	uint64_t rng = 77;
	hl_id a = put_random(s, &rng, 300), b = put_random(s, &rng, 300);
	assert_int_equal(hl_local_pin(s->local, &a, 1), 0);
	assert_int_equal(hl_local_pin(s->local, &a, 1), 0); /* twice */
	/* many other ids pinned and unpinned: the pins' map is tidied, a's pin stays */
	enum { OTHERS = 5000 };
	hl_id *others = malloc(OTHERS * sizeof(*others));
	for (uint32_t i = 0; i < OTHERS; i++)
		hl_hash(&i, sizeof i, &others[i]);
	for (int round = 0; round < 3; round++) {
		assert_int_equal(hl_local_pin(s->local, others, OTHERS), 0);
		hl_local_unpin(s->local, others, OTHERS);
	}
	free(others);
	hl_gc_options o;
	hl_gc_options_init(&o);
	hl_gc_report rep;
	wait_next_second();
	assert_int_equal(hl_gc(s, &o, &rep), 0);
	assert_true(stored(s, &a));
	assert_false(stored(s, &b)); /* the same age, not pinned */
	hl_local_unpin(s->local, &a, 1);
	wait_next_second();
	assert_int_equal(hl_gc(s, &o, &rep), 0);
	assert_true(stored(s, &a)); /* one pin left */
	hl_local_unpin(s->local, &a, 1);
	hl_local_unpin(s->local, &a, 1); /* (one too many: nothing happens) */
	wait_next_second();
	assert_int_equal(hl_gc(s, &o, &rep), 0);
	assert_false(stored(s, &a));
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

static int refuse_all(void) { return 1; }

/* The ids the running collection holds (from position 0). */
static size_t take_held(hl_store *s, hl_id **held)
{
	size_t from = 0, n;
	hl_local_gc_lock(s->local);
	assert_int_equal(hl_local_gc_take_held_locked(s->local, &from, held, &n), 0);
	hl_local_gc_unlock(s->local);
	return n;
}

/* While a collection runs, an unpin holds what it unpins without allocating: the room was kept
 * by the collection's start for pins made before it, and by each pin made during it. With no
 * memory at all every pin is taken off and held, and a pin that finds no room fails whole. */
static void test_unpin_without_memory(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-unpin-nomem");
	hl_store *s = open_gc(dir, 0);
	enum { BEFORE = 3000, DURING = 1500, FOUND = 100 };
	hl_id *ids = malloc((BEFORE + DURING) * sizeof(*ids)), *held;
	for (uint32_t i = 0; i < BEFORE + DURING; i++)
		hl_hash(&i, sizeof i, &ids[i]);
	uint64_t rng = 5;
	for (int i = 0; i < FOUND; i++)
		put_random(s, &rng, 200);
	/* pinned before the collection (the first ten twice): the room is kept by its start */
	assert_int_equal(hl_local_pin(s->local, ids, BEFORE), 0);
	assert_int_equal(hl_local_pin(s->local, ids, 10), 0);
	assert_int_equal(hl_local_gc_begin(s->local, hl_wall_s()), 0);
	atomic_store(&hl_alloc_fail, refuse_all);
	hl_local_unpin(s->local, ids, BEFORE);
	hl_local_unpin(s->local, ids, 10);
	atomic_store(&hl_alloc_fail, NULL);
	assert_int_equal(take_held(s, &held), BEFORE + 10);
	assert_memory_equal(held, ids, BEFORE * sizeof(*ids));
	free(held);
	hl_local_gc_end(s->local);
	/* pinned during it, after finds were held: the room is kept by the pin */
	assert_int_equal(hl_local_gc_begin(s->local, hl_wall_s()), 0);
	rng = 5;
	for (int i = 0; i < FOUND; i++) /* stored again: found, and held */
		put_random(s, &rng, 200);
	assert_int_equal(hl_local_pin(s->local, ids + BEFORE, DURING), 0);
	atomic_store(&hl_alloc_fail, refuse_all);
	hl_local_unpin(s->local, ids + BEFORE, DURING);
	int pin_err = hl_local_pin(s->local, ids, BEFORE); /* no room for these: none pinned */
	atomic_store(&hl_alloc_fail, NULL);
	assert_int_equal(pin_err, ENOMEM);
	assert_int_equal(take_held(s, &held), FOUND + DURING);
	assert_memory_equal(held + FOUND, ids + BEFORE, DURING * sizeof(*ids));
	free(held);
	hl_local_gc_end(s->local);
	/* nothing stayed pinned: the next collection takes what was pinned */
	hl_gc_options o;
	hl_gc_options_init(&o);
	hl_gc_report rep;
	hl_id a = put_random(s, &rng, 300);
	assert_int_equal(hl_local_pin(s->local, &a, 1), 0);
	hl_local_unpin(s->local, &a, 1);
	wait_next_second();
	assert_int_equal(hl_gc(s, &o, &rep), 0);
	assert_false(stored(s, &a));
	free(ids);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* ---- a collection larger than one deletion batch takes blobs' maps before their chunks ---- */

enum { MANY_BLOBS = 12, MANY_BLOB_LEN = 5 << 20 }; /* ~7,700 chunks: two batches of deletions */

typedef struct many_reader {
	hl_store *s;
	const hl_id *ids;
	atomic_int stop;
	atomic_ulong reads, gone, damaged;
} many_reader;

/* Reads the blobs round and round until every one is gone: each reads whole or not at all. */
static void *read_many(void *arg)
{
	many_reader *r = arg;
	size_t left = MANY_BLOBS, i = 0;
	uint8_t gone[MANY_BLOBS] = {0};
	while (left && !atomic_load(&r->stop)) {
		if (!gone[i]) {
			hl_buf *b;
			int err = hl_get(r->s, &r->ids[i], &b);
			if (!err) {
				hl_buf_unref(b);
				atomic_fetch_add(&r->reads, 1);
			} else if (err == HL_NOTFOUND) {
				gone[i] = 1;
				left--;
				atomic_fetch_add(&r->gone, 1);
			} else {
				atomic_fetch_add(&r->damaged, 1);
			}
		}
		i = (i + 1) % MANY_BLOBS;
	}
	return NULL;
}

static void test_collect_maps_first(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-maps-first");
	hl_options o;
	hl_options_init(&o);
	o.segment_size = SEG;
	o.gc_grace_s = 0;
	o.l1_bytes = 0; /* every read goes to the store: a chunk gone is seen at once */
	o.chunk_threshold = 64 << 10;
	o.chunk_min = 4 << 10, o.chunk_avg = 8 << 10, o.chunk_max = 16 << 10;
	hl_store *s = NULL;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	static hl_id ids[MANY_BLOBS];
	uint8_t *data = malloc(MANY_BLOB_LEN);
	uint64_t rng = 123;
	for (int i = 0; i < MANY_BLOBS; i++) {
		tu_fill(&rng, data, MANY_BLOB_LEN);
		assert_int_equal(hl_put(s, data, MANY_BLOB_LEN, &ids[i], NULL), 0);
	}
	free(data);
	wait_next_second(); /* every part older than a collection with no grace period */
	static many_reader r;
	memset(&r, 0, sizeof r);
	r.s = s;
	r.ids = ids;
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, read_many, &r), 0);
	while (atomic_load(&r.reads) < MANY_BLOBS) /* the reader is under way */
		msleep(5);
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.compact_below = 0;
	hl_gc_report rep;
	assert_int_equal(hl_gc(s, &go, &rep), 0);
	atomic_store(&r.stop, 1);
	pthread_join(t, NULL);
	fprintf(stderr, "maps first: %llu collected; %lu whole reads, %lu gone, %lu damaged\n",
	        (unsigned long long)rep.collected, (unsigned long)r.reads, (unsigned long)r.gone,
	        (unsigned long)r.damaged);
	assert_true(rep.collected > 4096 + MANY_BLOBS); /* more than one batch */
	assert_int_equal(r.damaged, 0);
	/* (a blob whose put crossed a second may have been relied on since: kept, and that is fine) */
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* A streamed blob whose first chunks a whole collection took before the writer closed: the map is
 * not left naming missing chunks (HL_CORRUPT on read); the close fails HL_INCOMPLETE, the blob is
 * not found, and writing it again stores it. A map entry whose manifest is gone is not "stored"
 * either: a put of that blob stores it again. */
static void test_writer_outlived(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-writer");
	hl_store *s = open_gc(dir, 0);
	size_t len = (17u << 20) + 12345, head = (16u << 20) + (256u << 10);
	uint8_t *data = malloc(len);
	uint64_t rng = 5;
	tu_fill(&rng, data, len);
	hl_id id, got;
	hl_hash(data, len, &id);
	hl_writer *w;
	assert_int_equal(hl_writer_open(s, NULL, &w), 0);
	assert_int_equal(hl_writer_write(w, data, head), 0); /* the first 16 MiB of chunks are stored */
	wait_next_second();
	hl_gc_options o;
	hl_gc_options_init(&o);
	hl_gc_report rep;
	assert_int_equal(hl_gc(s, &o, &rep), 0);
	assert_true(rep.collected > 0); /* they were unreferenced, and there is no grace period */
	assert_int_equal(hl_writer_write(w, data + head, len - head), 0);
	assert_int_equal(hl_writer_close(w, &got, NULL), HL_INCOMPLETE);
	assert_int_equal(hl_has(s, &id), HL_NOTFOUND);
	hl_buf *b;
	assert_int_equal(hl_get(s, &id, &b), HL_NOTFOUND);
	assert_int_equal(hl_writer_open(s, NULL, &w), 0);
	assert_int_equal(hl_writer_write(w, data, len), 0);
	assert_int_equal(hl_writer_close(w, &got, NULL), 0);
	assert_true(hl_id_equal(&got, &id));
	assert_int_equal(hl_get(s, &id, &b), 0);
	assert_int_equal(hl_buf_len(b), len);
	assert_memory_equal(hl_buf_data(b), data, len);
	hl_buf_unref(b);
	/* the map made again by hand after a collection took the blob: has says absent, put heals */
	hl_id m;
	uint64_t size;
	assert_int_equal(hl_names_large_get(s->local, &id, &m, &size), 0);
	/* a read's access-time refresh lands with the time of the index flush (the collection's
	 * own, on a loaded machine a second later): collect until that second is past, 10 at most */
	for (int tries = 0; tries < 10 && hl_has(s, &id) == 0; tries++) {
		wait_next_second();
		assert_int_equal(hl_gc(s, &o, &rep), 0);
	}
	assert_int_equal(hl_has(s, &id), HL_NOTFOUND);
	hl_large_map dangling = {id, m, size};
	assert_int_equal(hl_names_large_put_n(s->local, &dangling, 1), 0);
	hl_close(s); /* (its L1 still holds the chunks) */
	s = open_gc(dir, 0);
	assert_int_equal(hl_get(s, &id, &b), HL_CORRUPT); /* what the race used to leave */
	assert_int_equal(hl_has(s, &id), HL_NOTFOUND);
	assert_int_equal(hl_put(s, data, len, &got, NULL), 0);
	assert_int_equal(hl_get(s, &id, &b), 0);
	assert_memory_equal(hl_buf_data(b), data, len);
	hl_buf_unref(b);
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &vr), 0);
	hl_close(s);
	free(data);
	tu_rmrf(dir);
	free(dir);
}

/* ---- kill -9 during compaction ---- */

#define KEEP 1500

static void test_kill_during_compaction(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gc-kill");
	uint64_t rng = 19;
	hl_id *keep = calloc(KEEP, sizeof(*keep));
	hl_store *s = open_gc(dir, 0);
	for (int i = 0; i < KEEP; i++) { /* each segment holds a little that stays, much that goes */
		keep[i] = put_random(s, &rng, 1500);
		for (int g = 0; g < 9; g++)
			put_random(s, &rng, 1500);
	}
	size_t len;
	uint8_t *t = tree_of(keep, NULL, KEEP, &len);
	hl_id tid;
	assert_int_equal(hl_put(s, t, len, &tid, NULL), 0);
	free(t);
	assert_int_equal(hl_ref_set(s, "keep", &tid), 0);
	hl_close(s);
	msleep(1100); /* grace 0: everything older than this second is a candidate */
	int rounds = tu_env_int("HELIOS_GC_KILLS", 4);
	for (int round = 0; round < rounds; round++) {
		/* the child is this program again (exec, not a bare fork: a sanitizer runtime may not
		 * start threads in a forked child); it says when its store is open, and is killed at a
		 * random moment after that, however slow the machine */
		int p[2];
		assert_int_equal(pipe(p), 0);
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			char env[64];
			snprintf(env, sizeof env, "%d:%d", p[1], round);
			setenv("HELIOS_GC_CHILD", env, 1);
			setenv("HELIOS_GC_DIR", dir, 1);
			execl("/proc/self/exe", "test_gc", (char *)NULL);
			_exit(127);
		}
		close(p[1]);
		char c;
		ssize_t got;
		while ((got = read(p[0], &c, 1)) < 0 && errno == EINTR)
			;
		close(p[0]);
		if (got != 1)
			fail_msg("round %d: the compaction child died before opening the store", round);
		msleep(30 + (unsigned)(tu_rand(&rng) % 400));
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("round %d: the compaction child ended on its own (status %d)", round, status);
		s = open_gc(dir, 0);
		hl_buf *b;
		assert_int_equal(hl_get(s, &tid, &b), 0);
		hl_buf_unref(b);
		for (int i = 0; i < KEEP; i++) {
			int err = hl_get(s, &keep[i], &b);
			if (err)
				fprintf(stderr, "round %d: kept object %d: %s\n", round, i, hl_strerror(err));
			assert_int_equal(err, 0);
			hl_buf_unref(b);
		}
		hl_verify_report vr;
		assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &vr), 0);
		hl_stats st;
		assert_int_equal(hl_stats_get(s, &st), 0);
		fprintf(stderr, "round %d: %llu objects, %llu segments after the kill\n", round,
		        (unsigned long long)st.objects, (unsigned long long)st.segments);
		hl_close(s);
	}
	free(keep);
	tu_rmrf(dir);
	free(dir);
}

/* the child of test_kill_during_compaction: collect, compact and make new garbage until killed */
static void compaction_child(const char *spec, const char *dir)
{
	int fd = -1, round = 0;
	if (sscanf(spec, "%d:%d", &fd, &round) != 2 || !dir)
		_exit(2);
	hl_store *s = open_gc(dir, 0);
	if (write(fd, "o", 1) != 1)
		_exit(2);
	hl_gc_options o;
	hl_gc_options_init(&o);
	o.compact_below = 0.95;
	for (;;) {
		hl_gc(s, &o, NULL);
		uint64_t rng = 1000 + (uint64_t)round;
		for (int g = 0; g < 200; g++)
			put_random(s, &rng, 1500);
	}
}

/* ---- the index file compacted at close ---- */

static uint64_t index_stat(const char *dir, ino_t *ino)
{
	char p[4200];
	struct stat st;
	snprintf(p, sizeof p, "%s/index/data.mdb", dir);
	assert_int_equal(stat(p, &st), 0);
	if (ino)
		*ino = st.st_ino;
	return (uint64_t)st.st_size;
}

static uint64_t index_bytes(const char *dir)
{
	return index_stat(dir, NULL);
}

static void gc_all_moved(hl_store *s)
{
	hl_gc_options o;
	hl_gc_options_init(&o);
	o.compact_below = 1.0; /* every segment: every entry rewritten */
	hl_gc_report r;
	assert_int_equal(hl_gc(s, &o, &r), 0);
	assert_true(r.records_moved > 0);
}

static void assert_all_there(hl_store *s, const hl_id *ids, size_t n, const hl_stats *was)
{
	hl_buf *b;
	for (size_t i = 0; i < n; i++) {
		assert_int_equal(hl_get(s, &ids[i], &b), 0);
		hl_buf_unref(b);
	}
	hl_stats st;
	uint64_t problems;
	assert_int_equal(hl_stats_get(s, &st), 0);
	assert_int_equal(st.objects, was->objects);
	assert_int_equal(st.stored_bytes, was->stored_bytes);
	assert_int_equal(hl_check_index(s, &problems), 0);
	assert_int_equal(problems, 0);
}

/* A compaction that rewrote every entry leaves the index file mostly free pages; the writer's close
 * copies it packed and renames it over the old one (smaller, the same entries), unless a reader
 * has the index open; a copy a crash left behind is removed at the next open. */
static void test_index_compacted_at_close(void **state)
{
	(void)state;
	enum { N = 20000 };
	char *dir = tu_tmpdir("gc-index");
	uint64_t rng = 23;
	hl_id *ids = calloc(N, sizeof(*ids));
	hl_store *s = open_gc(dir, 24 * 3600);
	for (int i = 0; i < N; i++)
		ids[i] = put_random(s, &rng, 100);
	hl_stats was;
	assert_int_equal(hl_stats_get(s, &was), 0);
	hl_close(s);
	uint64_t first = index_bytes(dir);
	s = open_gc(dir, 24 * 3600);
	gc_all_moved(s);
	assert_int_equal(hl_sync(s), 0);
	uint64_t churned = index_bytes(dir);
	assert_true(churned > first); /* (LMDB's file grew: the old pages are free) */
	/* a reader in another process (LMDB allows one environment per file in a process) */
	int up[2], down[2];
	assert_int_equal(pipe(up), 0);
	assert_int_equal(pipe(down), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		close(up[0]);
		close(down[1]);
		char env[64];
		snprintf(env, sizeof env, "%d:%d", up[1], down[0]);
		setenv("HELIOS_GC_READER", env, 1);
		setenv("HELIOS_GC_DIR", dir, 1);
		execl("/proc/self/exe", "test_gc", (char *)NULL);
		_exit(127);
	}
	close(up[1]);
	close(down[0]);
	char c;
	assert_int_equal(read(up[0], &c, 1), 1); /* its store is open */
	hl_close(s); /* a reader has it open: not compacted */
	assert_int_equal(index_bytes(dir), churned);
	assert_int_equal(write(down[1], "x", 1), 1);
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(up[0]);
	close(down[1]);
	s = open_gc(dir, 24 * 3600);
	hl_close(s); /* alone now: compacted */
	ino_t ino, ino2;
	uint64_t packed = index_stat(dir, &ino);
	fprintf(stderr, "index: %llu bytes after the puts, %llu after the compaction, %llu packed\n",
	        (unsigned long long)first, (unsigned long long)churned, (unsigned long long)packed);
	assert_true(packed <= first && packed * 2 < churned); /* (the first close may pack too) */
	s = open_gc(dir, 24 * 3600);
	assert_all_there(s, ids, N, &was);
	assert_int_equal(hl_put(s, "after", 5, NULL, NULL), 0); /* takes writes */
	hl_close(s);
	index_stat(dir, &ino2);
	assert_true(ino2 == ino); /* little to gain: left alone */
	char tmp[4300], junk[4400];
	snprintf(tmp, sizeof tmp, "%s/index/compact.tmp", dir);
	assert_int_equal(mkdir(tmp, 0755), 0);
	snprintf(junk, sizeof junk, "%s/data.mdb", tmp);
	FILE *f = fopen(junk, "w");
	assert_non_null(f);
	fputs("a copy cut short", f);
	fclose(f);
	s = open_gc(dir, 24 * 3600);
	struct stat st;
	assert_int_equal(stat(tmp, &st), -1);
	assert_all_there(s, ids, N, &(hl_stats){.objects = was.objects + 1,
	                                        .stored_bytes = was.stored_bytes + HL_REC_HDR_LEN + 5});
	hl_close(s);
	free(ids);
	tu_rmrf(dir);
	free(dir);
}

/* the reader of test_index_compacted_at_close: opens the store read-only, says so, reads the
 * store's totals, and closes it when told to */
static void reader_child(const char *spec, const char *dir)
{
	int up = -1, down = -1;
	if (sscanf(spec, "%d:%d", &up, &down) != 2 || !dir)
		_exit(2);
	hl_options o;
	hl_options_init(&o);
	o.read_only = 1;
	hl_store *s;
	if (hl_open(dir, &o, &s) != 0 || write(up, "o", 1) != 1)
		_exit(3);
	char c;
	hl_stats st;
	if (read(down, &c, 1) != 1 || hl_stats_get(s, &st) != 0 || st.objects == 0)
		_exit(4);
	hl_close(s);
	_exit(0);
}

/* Background collections (hl_gc_background): an unreachable object goes within a few periods,
 * a named one stays; bad options are refused. */
static void test_background(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gcbg");
	hl_store *s = open_gc(dir, 0);
	uint64_t rng = 41;
	hl_id junk = put_random(s, &rng, 3000), kept = put_random(s, &rng, 3000);
	assert_int_equal(hl_ref_set(s, "keep", &kept), 0);
	hl_gc_options o;
	hl_gc_options_init(&o);
	o.dry_run = 1;
	assert_int_equal(hl_gc_background(s, 1, &o), HL_INVALID);
	assert_int_equal(hl_gc_background(s, 0, NULL), HL_INVALID);
	o.dry_run = 0;
	o.repack = HL_REPACK_LEVEL_MAX + 1;
	assert_int_equal(hl_gc_background(s, 1, &o), HL_INVALID);
	o.repack = 3;
	assert_int_equal(hl_gc_background(s, 1, &o), 0);
	assert_int_equal(hl_gc_background(s, 1, &o), HL_BUSY);
	/* watched through the totals: a lookup would refresh junk's access time, and hold it */
	hl_stats st;
	uint64_t until = hl_now_ns() + UINT64_C(120) * 1000000000u; /* generous: a loaded machine */
	do {
		msleep(50);
		assert_int_equal(hl_stats_get(s, &st), 0);
	} while (st.objects > 1 && hl_now_ns() < until);
	assert_int_equal(st.objects, 1);
	assert_int_equal(hl_has(s, &junk), HL_NOTFOUND);
	assert_int_equal(hl_has(s, &kept), 0);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* hl_close while a background repack is paced to take many minutes: the compaction stops after
 * its batch, close returns soon, and every object reads back, verify clean. */
static void test_close_stops_paced(void **state)
{
	(void)state;
	char *dir = tu_tmpdir("gcbg");
	hl_store *s = open_gc(dir, 86400);
	enum { N = 400, LEN = 10000 };
	hl_id ids[N];
	uint64_t rng = 43;
	for (int i = 0; i < N; i++)
		ids[i] = put_random(s, &rng, LEN);
	hl_stats st0, st;
	assert_int_equal(hl_stats_get(s, &st0), 0);
	hl_gc_options o;
	hl_gc_options_init(&o);
	o.repack = 3;
	o.compact_rate = 10000; /* 4 MB: 400 s */
	assert_int_equal(hl_gc_background(s, 1, &o), 0);
	/* until the compaction has begun: its first copies are written, their old segments not yet
	 * deleted (a batch is one 64 KiB segment's records: 6 s of the pace each) */
	uint64_t until = hl_now_ns() + UINT64_C(120) * 1000000000u;
	do {
		msleep(50);
		assert_int_equal(hl_stats_get(s, &st), 0);
	} while (st.segment_bytes <= st0.segment_bytes + 3 * LEN && hl_now_ns() < until);
	assert_true(st.segment_bytes > st0.segment_bytes + 3 * LEN);
	uint64_t t0 = hl_now_ns();
	hl_close(s);
	double took = (double)(hl_now_ns() - t0) / 1e9;
	printf("# close during a paced repack: %.2f s\n", took);
	fflush(stdout);
	assert_true(took < 60); /* (not the 400 s of the pass) */
	s = open_gc(dir, 86400);
	for (int i = 0; i < N; i++) {
		hl_buf *b;
		assert_int_equal(hl_get(s, &ids[i], &b), 0);
		assert_int_equal(hl_buf_len(b), LEN);
		hl_buf_unref(b);
	}
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &vr), 0);
	assert_int_equal(vr.corrupt, 0);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	if (getenv("HELIOS_GC_READER"))
		reader_child(getenv("HELIOS_GC_READER"), getenv("HELIOS_GC_DIR"));
	if (getenv("HELIOS_GC_CHILD"))
		compaction_child(getenv("HELIOS_GC_CHILD"), getenv("HELIOS_GC_DIR"));
	tu_test_filter();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_completeness),
		cmocka_unit_test(test_reachable_kept),
		cmocka_unit_test(test_corrupt_tree_stops),
		cmocka_unit_test(test_race_writers),
		cmocka_unit_test(test_race_large),
		cmocka_unit_test(test_writer_outlived),
		cmocka_unit_test(test_collect_maps_first),
		cmocka_unit_test(test_pins),
		cmocka_unit_test(test_unpin_without_memory),
		cmocka_unit_test(test_kill_during_compaction),
		cmocka_unit_test(test_index_compacted_at_close),
		cmocka_unit_test(test_background),
		cmocka_unit_test(test_close_stops_paced),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
