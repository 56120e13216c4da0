/* test_delta.c — delta records: a snapshot stored against a similar one keeps every id and reads
 * back byte for byte; chains stay within HL_DELTA_MAX_DEPTH; a corrupt base makes its dependents
 * HL_CORRUPT (never wrong bytes), the scrubber reports the base and not the dependent, and putting
 * the base again heals both; the collector keeps a base while a delta needs it and compaction keeps
 * deltas readable; an index rebuilt from the segments and a reopened store read them too. A large
 * file edited in place and by an insertion is stored as chunk deltas and restored streamed, and a
 * blob mapped to another blob's chunks is refused (HL_CORRUPT) by the restore's whole-file hash. */
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "api/api.h"
#include "store/names.h"
#include "store/record.h"
#include "store/sketch.h"
#include "store/store_int.h"
#include "testutil.h"

#define FILES 12
#define FILE_LEN 6000

static void write_file(const char *dir, const char *name, const uint8_t *data, size_t len)
{
	char path[1200];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(data, 1, len, f), len);
	fclose(f);
}

/* Text-like random content: words from a small alphabet, so zstd alone saves some but not all. */
static void fill_text(uint64_t *rng, uint8_t *buf, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		uint64_t r = tu_rand(rng) % 40;
		buf[i] = r < 6 ? ' ' : r == 6 ? '\n' : (uint8_t)('a' + r % 26);
	}
}

typedef struct tree_files {
	uint8_t data[FILES][FILE_LEN];
	hl_id id[FILES];
} tree_files;

/* dir with FILES files (and a subdirectory with a copy of the first), from t. */
static void write_tree(const char *dir, tree_files *t)
{
	char sub[512], name[32];
	mkdir(dir, 0755);
	snprintf(sub, sizeof sub, "%s/sub", dir);
	mkdir(sub, 0755);
	for (int i = 0; i < FILES; i++) {
		snprintf(name, sizeof name, "f%02d.txt", i);
		write_file(dir, name, t->data[i], FILE_LEN);
		hl_hash(t->data[i], FILE_LEN, &t->id[i]);
	}
	write_file(sub, "copy.txt", t->data[0], FILE_LEN);
}

/* t with a few bytes changed in every file. */
static void edit(uint64_t *rng, tree_files *t)
{
	for (int i = 0; i < FILES; i++)
		fill_text(rng, t->data[i] + tu_rand(rng) % (FILE_LEN - 40), 30);
}

static void expect_bytes(hl_store *s, const hl_id *id, const uint8_t *data, size_t len)
{
	hl_buf *b;
	assert_int_equal(hl_get(s, id, &b), 0);
	assert_int_equal(hl_buf_len(b), len);
	assert_memory_equal(hl_buf_data(b), data, len);
	hl_buf_unref(b);
}

static int is_delta(hl_store *s, const hl_id *id)
{
	hl_stat st;
	assert_int_equal(hl_stat_object(s, id, &st), 0);
	return (st.flags & HL_STAT_DELTA) != 0;
}

static hl_store *open_store(const char *dir)
{
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_NONE;
	o.segment_size = 64u << 10;
	o.l1_bytes = 0; /* every read goes to the records */
	hl_store *s = NULL;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	return s;
}

typedef struct fixture {
	char *root, *store;
	tree_files a, b;
	hl_id tree_a, tree_b;
} fixture;

/* Two snapshots: A plain, B (A edited) stored like A. */
static void two_snapshots(fixture *f, hl_store *s)
{
	uint64_t rng = 42;
	char dir[512];
	for (int i = 0; i < FILES; i++)
		fill_text(&rng, f->a.data[i], FILE_LEN);
	snprintf(dir, sizeof dir, "%s/a", f->root);
	write_tree(dir, &f->a);
	assert_int_equal(hl_snapshot(s, dir, 2, &f->tree_a, NULL), 0);
	f->b = f->a;
	edit(&rng, &f->b);
	snprintf(dir, sizeof dir, "%s/b", f->root);
	write_tree(dir, &f->b);
	assert_int_equal(hl_snapshot_like(s, dir, 2, &f->tree_a, &f->tree_b, NULL), 0);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->root = tu_tmpdir("delta");
	size_t n = strlen(f->root) + 8;
	f->store = malloc(n);
	snprintf(f->store, n, "%s/st", f->root);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_rmrf(f->root);
	free(f->root);
	free(f->store);
	free(f);
	return 0;
}

static void restores_as_snapshotted(hl_store *s, fixture *f)
{
	char out[512], cmp[1024];
	snprintf(out, sizeof out, "%s/out", f->root);
	tu_rmrf(out);
	assert_int_equal(hl_restore(s, &f->tree_b, out), 0);
	snprintf(cmp, sizeof cmp, "diff -r %s/b %s >/dev/null", f->root, out);
	assert_int_equal(system(cmp), 0);
}

static void snapshot_like_stores_deltas(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	two_snapshots(f, s);
	hl_stats st;
	assert_int_equal(hl_stats_get(s, &st), 0);
	assert_true(st.deltas >= FILES); /* every edited file, and the trees */
	assert_true(st.delta_stored_bytes * 4 < st.delta_raw_bytes);
	for (int i = 0; i < FILES; i++) {
		assert_true(is_delta(s, &f->b.id[i]));
		assert_false(is_delta(s, &f->a.id[i]));
		expect_bytes(s, &f->b.id[i], f->b.data[i], FILE_LEN);
	}
	restores_as_snapshotted(s, f);
	hl_close(s);
	/* reopened (replayed from the segments' tail, nothing flushed by a sync) and rebuilt */
	s = open_store(f->store);
	expect_bytes(s, &f->b.id[3], f->b.data[3], FILE_LEN);
	hl_close(s);
	hl_options o;
	hl_options_init(&o);
	hl_rebuild_report rep;
	assert_int_equal(hl_rebuild_index(f->store, &o, &rep), 0);
	assert_int_equal(rep.corrupt, 0);
	s = open_store(f->store);
	assert_true(is_delta(s, &f->b.id[5]));
	restores_as_snapshotted(s, f);
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &vr), 0);
	hl_close(s);
}

/* One file edited again and again, each version stored like the one before: the chain of bases
 * never grows past HL_DELTA_MAX_DEPTH (a version whose base is that deep goes against the base's
 * base), and every version reads back. */
static void chains_stay_bounded(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	enum { VERSIONS = 3 * HL_DELTA_MAX_DEPTH };
	static uint8_t data[VERSIONS][FILE_LEN];
	hl_id ids[VERSIONS], tree, prev;
	uint64_t rng = 7;
	char dir[512];
	snprintf(dir, sizeof dir, "%s/v", f->root);
	mkdir(dir, 0755);
	fill_text(&rng, data[0], FILE_LEN);
	unsigned deltas = 0, deepest = 0;
	for (int v = 0; v < VERSIONS; v++) {
		if (v) { /* a new stretch each time: the previous version is always the best base */
			memcpy(data[v], data[v - 1], FILE_LEN);
			fill_text(&rng, data[v] + (size_t)v * 200, 200);
		}
		write_file(dir, "f.txt", data[v], FILE_LEN);
		assert_int_equal(hl_snapshot_like(s, dir, 1, v ? &prev : NULL, &tree, NULL), 0);
		prev = tree;
		hl_hash(data[v], FILE_LEN, &ids[v]);
		unsigned depth = 0;
		hl_id at = ids[v], base;
		while (hl_local_delta_base(s->local, &at, &base) == 0) {
			depth++;
			at = base;
		}
		assert_true(depth <= HL_DELTA_MAX_DEPTH);
		deltas += depth > 0;
		deepest = depth > deepest ? depth : deepest;
	}
	assert_int_equal(deepest, HL_DELTA_MAX_DEPTH); /* reached, never passed: past it, a version */
	assert_int_equal(deltas, VERSIONS - 1);         /* goes against its base's base */
	for (int v = 0; v < VERSIONS; v++)
		expect_bytes(s, &ids[v], data[v], FILE_LEN);
	hl_close(s);
}

static int log_has(const char *store, const hl_id *id)
{
	char path[512], hex[HL_ID_HEX_LEN + 1], line[512];
	snprintf(path, sizeof path, "%s/corruption.log", store);
	hl_id_format(id, hex);
	FILE *fp = fopen(path, "r");
	int found = 0;
	while (fp && fgets(line, sizeof line, fp))
		found |= strstr(line, hex) != NULL;
	if (fp)
		fclose(fp);
	return found;
}

/* A bit flipped in a base's record: its dependent reads HL_CORRUPT, the scrubber names the base
 * only, and the base stored again heals both. */
static void corrupt_base(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	two_snapshots(f, s);
	hl_stat st;
	assert_int_equal(hl_stat_object(s, &f->a.id[2], &st), 0);
	hl_close(s);
	char seg[512];
	tu_seg_path(f->store, st.segment, seg, sizeof seg);
	tu_flip_bit(seg, st.offset + 64 + 100, 3);
	s = open_store(f->store);
	hl_buf *b;
	assert_int_equal(hl_get(s, &f->b.id[2], &b), HL_CORRUPT);
	expect_bytes(s, &f->b.id[4], f->b.data[4], FILE_LEN); /* others unaffected */
	int done = 0;
	uint64_t found = 0;
	while (!done)
		assert_int_equal(hl_scrub(s, 1u << 20, &done, &found), 0);
	assert_true(found >= 1);
	assert_true(log_has(f->store, &f->a.id[2]));
	assert_false(log_has(f->store, &f->b.id[2]));
	assert_int_equal(hl_get(s, &f->b.id[2], &b), HL_CORRUPT); /* no source to repair from */
	hl_id again;
	assert_int_equal(hl_put(s, f->a.data[2], FILE_LEN, &again, NULL), 0);
	expect_bytes(s, &f->a.id[2], f->a.data[2], FILE_LEN);
	expect_bytes(s, &f->b.id[2], f->b.data[2], FILE_LEN);
	hl_close(s);
}

/* Only B is named: A's objects that B's deltas need stay through a collection (with compaction
 * moving records, deltas included); with B gone too, everything goes. */
static void collector_keeps_bases(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	two_snapshots(f, s);
	assert_int_equal(hl_ref_set(s, "b", &f->tree_b), 0);
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.compact_below = 0.99;
	hl_gc_report gr;
	hl_options o;
	hl_options_init(&o);
	hl_close(s);
	o.sync = HL_SYNC_NONE, o.segment_size = 64u << 10, o.l1_bytes = 0, o.gc_grace_s = 0;
	assert_int_equal(hl_open(f->store, &o, &s), 0);
	sleep(2); /* grace 0: objects older than the current second are candidates */
	assert_int_equal(hl_gc(s, &go, &gr), 0);
	assert_true(gr.collected > 0); /* A's tree of the subdirectory and what only A had... */
	restores_as_snapshotted(s, f);
	for (int i = 0; i < FILES; i++) {
		assert_true(is_delta(s, &f->b.id[i]));
		expect_bytes(s, &f->a.id[i], f->a.data[i], FILE_LEN); /* kept as bases */
	}
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &vr), 0);
	assert_int_equal(hl_ref_delete(s, "b", &f->tree_b), 0);
	assert_int_equal(hl_gc(s, &go, &gr), 0);
	hl_stats st;
	assert_int_equal(hl_stats_get(s, &st), 0);
	assert_int_equal(st.objects, 0);
	assert_int_equal(st.deltas, 0);
	hl_close(s);
}

/* A 3 MiB file; B has 100 bytes changed in place and 50 inserted further on, C only bytes changed
 * in place. Chunks of B go as deltas against A's chunks at the same place; B restores byte for
 * byte, streamed chunk by chunk; C mapped to A's manifest (a damaged map row: same size, other
 * bytes), C's restore fails HL_CORRUPT on the whole-file hash. */
static void large_files(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	enum { BIG = 3 << 20 };
	uint8_t *a = malloc(BIG), *b = malloc(BIG + 50), *c = malloc(BIG);
	uint64_t rng = 11;
	fill_text(&rng, a, BIG);
	memcpy(b, a, BIG / 3);
	fill_text(&rng, b + BIG / 3, 100);
	memcpy(b + BIG / 3 + 100, a + BIG / 3 + 100, BIG / 3);
	fill_text(&rng, b + 2 * (BIG / 3) + 100, 50);
	memcpy(b + 2 * (BIG / 3) + 150, a + 2 * (BIG / 3) + 100, BIG - 2 * (BIG / 3) - 100);
	memcpy(c, a, BIG);
	fill_text(&rng, c + BIG / 2, 64);
	char da[512], db[512], dc[512], out[512], cmp[1200];
	snprintf(da, sizeof da, "%s/la", f->root);
	snprintf(db, sizeof db, "%s/lb", f->root);
	snprintf(dc, sizeof dc, "%s/lc", f->root);
	mkdir(da, 0755);
	mkdir(db, 0755);
	mkdir(dc, 0755);
	write_file(da, "big.bin", a, BIG);
	write_file(db, "big.bin", b, BIG + 50);
	write_file(dc, "big.bin", c, BIG);
	hl_id ta, tb, tc, ia, ic;
	hl_hash(a, BIG, &ia);
	hl_hash(c, BIG, &ic);
	assert_int_equal(hl_snapshot(s, da, 1, &ta, NULL), 0);
	hl_stats before, after;
	assert_int_equal(hl_stats_get(s, &before), 0);
	assert_int_equal(hl_snapshot_like(s, db, 1, &ta, &tb, NULL), 0);
	assert_int_equal(hl_stats_get(s, &after), 0);
	assert_true(after.deltas >= before.deltas + 2); /* the two edited chunks (and the manifest) */
	assert_true(after.stored_bytes - before.stored_bytes < 40000);
	snprintf(out, sizeof out, "%s/lout", f->root);
	assert_int_equal(hl_restore(s, &tb, out), 0);
	snprintf(cmp, sizeof cmp, "cmp -s %s/big.bin %s/big.bin", db, out);
	assert_int_equal(system(cmp), 0);
	assert_int_equal(hl_snapshot_like(s, dc, 1, &ta, &tc, NULL), 0);
	hl_id ma;
	uint64_t size;
	assert_int_equal(hl_names_large_get(s->local, &ia, &ma, &size), 0);
	hl_large_map wrong = {ic, ma, BIG};
	assert_int_equal(hl_names_large_put_n(s->local, &wrong, 1), 0);
	hl_close(s);
	s = open_store(f->store); /* nothing of C's cached */
	snprintf(out, sizeof out, "%s/lout2", f->root);
	assert_int_equal(hl_restore(s, &tc, out), HL_CORRUPT);
	hl_close(s);
	free(a);
	free(b);
	free(c);
}

/* The sketch: an object inside a larger one, and an edited copy, share features with it; short or
 * featureless data has no sketch; the index finds the container, forgets what left its ring, and
 * finds nothing for unrelated data. */
static void sketches_find_containers(void **state)
{
	(void)state;
	enum { PART = 8000, WHOLE = 65536, AT = 20000 };
	static uint8_t whole[WHOLE], part[PART], edited[PART], other[WHOLE];
	uint64_t rng = 3;
	fill_text(&rng, whole, WHOLE);
	fill_text(&rng, other, WHOLE);
	memcpy(part, whole + AT, PART);
	memcpy(edited, part, PART);
	fill_text(&rng, edited + PART / 2, 100);
	hl_sketch sw, sp, se, so;
	assert_int_equal(hl_sketch_of(whole, WHOLE, &sw), 0);
	assert_int_equal(hl_sketch_of(part, PART, &sp), 0);
	assert_int_equal(hl_sketch_of(edited, PART, &se), 0);
	assert_int_equal(hl_sketch_of(other, WHOLE, &so), 0);
	unsigned shared = 0;
	for (unsigned i = 0; i < sp.n; i++)
		for (unsigned j = 0; j < se.n; j++)
			shared += sp.f[i] == se.f[j];
	assert_true(shared >= HL_SKETCH_K / 2); /* an edit of 100 bytes in 8000 */
	assert_int_equal(hl_sketch_of(whole, 100, &sp), HL_NOTFOUND);
	memset(other, 'a', 10000);
	assert_int_equal(hl_sketch_of(other, 10000, &sp), HL_NOTFOUND); /* one feature, repeated */
	assert_int_equal(hl_sketch_of(part, PART, &sp), 0);
	hl_sketch_index x;
	assert_int_equal(hl_sketch_index_init(&x, 4, 10), 0); /* a ring of 16 */
	hl_id iw, found, io;
	unsigned votes;
	hl_hash(whole, WHOLE, &iw);
	hl_sketch_index_add(&x, &sw, &iw);
	assert_int_equal(hl_sketch_index_find(&x, &sp, NULL, &found, &votes), 0);
	assert_true(hl_id_equal(&found, &iw));
	assert_true(votes >= 2);
	assert_int_equal(hl_sketch_index_find(&x, &sw, &iw, &found, &votes), HL_NOTFOUND); /* itself */
	assert_int_equal(hl_sketch_index_find(&x, &so, NULL, &found, &votes), HL_NOTFOUND);
	for (int i = 0; i < 16; i++) { /* the ring turns over: the container is forgotten */
		fill_text(&rng, other, 4096);
		hl_sketch sk;
		assert_int_equal(hl_sketch_of(other, 4096, &sk), 0);
		hl_hash(other, 4096, &io);
		hl_sketch_index_add(&x, &sk, &io);
	}
	assert_int_equal(hl_sketch_index_find(&x, &sp, NULL, &found, &votes), HL_NOTFOUND);
	hl_sketch_index_free(&x);
}

/* No base named: a snapshot's small files find the chunks of an archive of them (stored first),
 * a file finds a similar one of its own batch, and in the next snapshot a file renamed and edited
 * finds its old version among the recent objects. Everything restores and verifies. */
static void bases_by_similarity(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	enum { N = 40, LEN = 30000 };
	static uint8_t files[N][LEN], pair[2][LEN];
	uint8_t *archive = malloc(N * LEN);
	uint64_t rng = 21;
	char dir[512], dir2[512], name[600], out[512], cmp[1200];
	snprintf(dir, sizeof dir, "%s/sim", f->root);
	snprintf(dir2, sizeof dir2, "%s/sim2", f->root);
	mkdir(dir, 0755);
	mkdir(dir2, 0755);
	for (int i = 0; i < N; i++) {
		fill_text(&rng, files[i], LEN);
		memcpy(archive + (size_t)i * LEN, files[i], LEN);
		snprintf(name, sizeof name, "src%02d.txt", i);
		write_file(dir, name, files[i], LEN);
	}
	write_file(dir, "vendor.tar", archive, N * LEN); /* above the 1 MiB chunk threshold */
	hl_id t1, t2, tp, id;
	/* two workers: the archive (listed last) is stored first, the small files wait for it */
	assert_int_equal(hl_snapshot(s, dir, 2, &t1, NULL), 0);
	unsigned deltas = 0;
	for (int i = 0; i < N; i++) {
		hl_hash(files[i], LEN, &id);
		deltas += is_delta(s, &id);
	}
	assert_true(deltas >= N * 3 / 4); /* (a file across two chunks may go against neither) */
	fill_text(&rng, pair[0], LEN);
	memcpy(pair[1], pair[0], LEN);
	fill_text(&rng, pair[1] + LEN / 3, 200);
	write_file(dir2, "pair-a.txt", pair[0], LEN);
	write_file(dir2, "pair-b.txt", pair[1], LEN);
	assert_int_equal(hl_snapshot(s, dir2, 1, &tp, NULL), 0); /* one worker: one batch */
	hl_id pa, pb;
	hl_hash(pair[0], LEN, &pa);
	hl_hash(pair[1], LEN, &pb);
	assert_true(is_delta(s, &pa) != is_delta(s, &pb)); /* the later of the two, on the earlier */
	/* the next snapshot: pair-b renamed and edited; no path matches it */
	fill_text(&rng, pair[1] + 2 * LEN / 3, 200);
	snprintf(name, sizeof name, "%s/pair-b.txt", dir2);
	unlink(name);
	write_file(dir2, "moved.txt", pair[1], LEN);
	assert_int_equal(hl_snapshot_like(s, dir2, 1, &tp, &t2, NULL), 0);
	hl_hash(pair[1], LEN, &id);
	assert_true(is_delta(s, &id));
	expect_bytes(s, &id, pair[1], LEN);
	snprintf(out, sizeof out, "%s/simout", f->root);
	assert_int_equal(hl_restore(s, &t1, out), 0);
	snprintf(cmp, sizeof cmp, "diff -r %s %s >/dev/null", dir, out);
	assert_int_equal(system(cmp), 0);
	hl_close(s);
	s = open_store(f->store); /* (replayed) */
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &vr), 0);
	assert_int_equal(vr.corrupt, 0);
	hl_close(s);
	/* a failure while the large file is stored: the workers holding small files stop waiting */
	hl_options o;
	hl_options_init(&o);
	o.read_only = 1;
	assert_int_equal(hl_open(f->store, &o, &s), 0);
	fill_text(&rng, archive, N * LEN);
	write_file(dir, "vendor.tar", archive, N * LEN);
	for (int i = 0; i < N; i++) {
		fill_text(&rng, files[i], LEN);
		snprintf(name, sizeof name, "src%02d.txt", i);
		write_file(dir, name, files[i], LEN);
	}
	assert_int_equal(hl_snapshot(s, dir, 4, &t2, NULL), HL_READONLY);
	hl_close(s);
	free(archive);
}

/* Every object readable with its bytes, and verify and the index check find nothing. */
static void all_sound(hl_store *s, uint8_t (*data)[FILE_LEN], size_t n)
{
	for (size_t i = 0; i < n; i++) {
		hl_id id;
		hl_hash(data[i], FILE_LEN, &id);
		expect_bytes(s, &id, data[i], FILE_LEN);
	}
	hl_verify_report vr;
	uint64_t problems;
	assert_int_equal(hl_verify(s, 2, NULL, NULL, NULL, &vr), 0);
	assert_int_equal(vr.corrupt + vr.io_errors + vr.quarantined, 0);
	assert_int_equal(hl_check_index(s, &problems), 0);
	assert_int_equal(problems, 0);
}

static void gc_repack(hl_store *s, int level, double below, hl_gc_report *gr)
{
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.repack = level;
	go.repack_threads = 3; /* (encoding in parallel, whatever the machine) */
	go.compact_below = below;
	assert_int_equal(hl_gc(s, &go, gr), 0);
	assert_int_equal(gr->collected, 0); /* (everything is within the grace period) */
}

/* Objects put whole (no bases named): originals and edits of them. A repack re-encodes every
 * record at its level, the edits as deltas (found by similarity), and reads stay byte for byte,
 * after a reopen too; a second repack has nothing to do, and a compaction keeps the level. */
static void repack_encodes_again(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	enum { N = 16 };
	static uint8_t data[2 * N][FILE_LEN];
	uint64_t rng = 5;
	for (int i = 0; i < N; i++) {
		fill_text(&rng, data[i], FILE_LEN);
		memcpy(data[N + i], data[i], FILE_LEN);
		fill_text(&rng, data[N + i] + 1000 + i * 100, 40);
	}
	for (int i = 0; i < 2 * N; i++)
		assert_int_equal(hl_put(s, data[i], FILE_LEN, NULL, NULL), 0);
	hl_stats st0, st1, st2;
	assert_int_equal(hl_stats_get(s, &st0), 0);
	assert_int_equal(st0.deltas, 0);
	hl_gc_report gr;
	gc_repack(s, HL_REPACK_LEVEL, 0.5, &gr);
	assert_int_equal(gr.records_repacked, 2 * N);
	printf("# repacked %llu: %llu -> %llu B\n", (unsigned long long)gr.records_repacked, (unsigned long long)gr.repack_bytes_before, (unsigned long long)gr.repack_bytes_after);
	assert_true(gr.repack_bytes_after * 10 < gr.repack_bytes_before * 6); /* the edits: ~100 B */
	assert_int_equal(hl_stats_get(s, &st1), 0);
	/* every pair one delta: the batch's records are all sketched before any is encoded (encoded
	 * as they were sketched, an original and its edit encoded at once stayed whole, 5 of 80 runs) */
	assert_int_equal(st1.deltas, N);
	assert_true(st1.stored_bytes * 10 < st0.stored_bytes * 6);
	assert_int_equal(st1.objects, 2 * N);
	unsigned deltas = 0;
	for (int i = 0; i < 2 * N; i++) {
		hl_id id;
		hl_hash(data[i], FILE_LEN, &id);
		deltas += is_delta(s, &id);
	}
	assert_int_equal(deltas, N);
	all_sound(s, data, 2 * N);
	gc_repack(s, HL_REPACK_LEVEL, 0.5, &gr); /* nothing left to repack */
	assert_int_equal(gr.records_repacked, 0);
	assert_int_equal(gr.records_moved, 0);
	gc_repack(s, 0, 1.0, &gr); /* every segment compacted: the records keep level and bases */
	assert_true(gr.records_moved > 0);
	assert_int_equal(hl_stats_get(s, &st2), 0);
	assert_int_equal(st2.deltas, st1.deltas);
	assert_int_equal(st2.stored_bytes, st1.stored_bytes);
	hl_close(s);
	s = open_store(f->store);
	all_sound(s, data, 2 * N);
	gc_repack(s, HL_REPACK_LEVEL, 0.5, &gr); /* the level is in the index: still nothing to do */
	assert_int_equal(gr.records_repacked, 0);
	gc_repack(s, HL_REPACK_LEVEL + 1, 0.5, &gr); /* a higher level: everything again */
	assert_int_equal(gr.records_repacked, 2 * N);
	all_sound(s, data, 2 * N);
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.repack = HL_REPACK_LEVEL_MAX + 1;
	assert_int_equal(hl_gc(s, &go, &gr), HL_INVALID);
	hl_close(s);
}

/* An object that a delta names keeps its depth: A's files (B's bases) are like objects C put
 * before them, which a repack finds first; A must not become deltas against C (B's chains would
 * be deeper than B's records say, and B unreadable). */
static void repack_spares_bases(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	static uint8_t c[FILES][FILE_LEN];
	uint64_t rng = 42, other = 43; /* two_snapshots' A, edited otherwise than B */
	for (int i = 0; i < FILES; i++)
		fill_text(&rng, c[i], FILE_LEN);
	for (int i = 0; i < FILES; i++)
		fill_text(&other, c[i] + 3000, 50);
	for (int i = 0; i < FILES; i++)
		assert_int_equal(hl_put(s, c[i], FILE_LEN, NULL, NULL), 0);
	two_snapshots(f, s);
	for (int i = 0; i < FILES; i++)
		assert_true(is_delta(s, &f->b.id[i]));
	hl_gc_report gr;
	gc_repack(s, HL_REPACK_LEVEL, 0.5, &gr);
	assert_true(gr.records_repacked > 2 * FILES);
	for (int i = 0; i < FILES; i++) {
		assert_false(is_delta(s, &f->a.id[i]));
		assert_true(is_delta(s, &f->b.id[i]));
		expect_bytes(s, &f->b.id[i], f->b.data[i], FILE_LEN);
	}
	all_sound(s, c, FILES);
	all_sound(s, f->a.data, FILES);
	restores_as_snapshotted(s, f);
	hl_close(s);
}

typedef struct snapper {
	hl_store *s;
	fixture *f;
	int rounds;
	tree_files *versions;
	_Atomic int done;
} snapper;

/* Snapshots of a tree edited each round, each stored like the one before. */
static void *snap_rounds(void *arg)
{
	snapper *w = arg;
	char dir[512];
	uint64_t rng = 77;
	hl_id prev, tree;
	snprintf(dir, sizeof dir, "%s/rounds", w->f->root);
	for (int r = 0; r < w->rounds; r++) {
		if (r)
			w->versions[r] = w->versions[r - 1];
		edit(&rng, &w->versions[r]);
		write_tree(dir, &w->versions[r]);
		assert_int_equal(hl_snapshot_like(w->s, dir, 2, r ? &prev : NULL, &tree, NULL), 0);
		prev = tree;
	}
	atomic_store(&w->done, 1);
	return NULL;
}

typedef struct paced_writer {
	hl_store *s;
	atomic_int started, stop, puts;
} paced_writer;

static void *paced_puts(void *arg)
{
	paced_writer *w = arg;
	uint64_t rng = 77;
	atomic_store(&w->started, 1);
	while (!atomic_load(&w->stop)) {
		uint8_t b[512];
		tu_fill(&rng, b, sizeof b);
		assert_int_equal(hl_put(w->s, b, sizeof b, NULL, NULL), 0);
		atomic_fetch_add(&w->puts, 1);
		usleep(500);
	}
	return NULL;
}

/* A paced repack (compact_rate) moves its records no faster than the rate — it takes at least
 * their bytes over the rate, across more than one batch — and puts go on meanwhile. */
static void repack_paced(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	enum { N = 600 };
	uint8_t *data = malloc((size_t)N * FILE_LEN);
	uint64_t rng = 9;
	for (int i = 0; i < N; i++) {
		fill_text(&rng, data + (size_t)i * FILE_LEN, FILE_LEN);
		assert_int_equal(hl_put(s, data + (size_t)i * FILE_LEN, FILE_LEN, NULL, NULL), 0);
	}
	paced_writer w = {.s = s};
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, paced_puts, &w), 0);
	while (!atomic_load(&w.started))
		usleep(1000);
	hl_gc_options go;
	hl_gc_options_init(&go);
	go.repack = 3;
	go.compact_rate = 1500000; /* 3.6 MB of records: 2.4 s at least */
	hl_gc_report gr;
	uint64_t t0 = hl_now_ns();
	assert_int_equal(hl_gc(s, &go, &gr), 0);
	uint64_t took = hl_now_ns() - t0;
	int during = atomic_load(&w.puts);
	atomic_store(&w.stop, 1);
	pthread_join(t, NULL);
	printf("# paced: %llu records, %llu B moved in %.2f s; %d puts meanwhile\n",
	       (unsigned long long)gr.records_moved, (unsigned long long)gr.bytes_moved, (double)took / 1e9, during);
	assert_true(gr.records_repacked >= N);
	assert_true(gr.bytes_moved >= (uint64_t)N * FILE_LEN);
	assert_true((double)took >= (double)gr.bytes_moved / 1500000.0 * 1e9);
	assert_true(during > 0);
	hl_id id;
	hl_buf *b;
	for (int i = 0; i < N; i++) {
		hl_hash(data + (size_t)i * FILE_LEN, FILE_LEN, &id);
		assert_int_equal(hl_get(s, &id, &b), 0);
		assert_memory_equal(hl_buf_data(b), data + (size_t)i * FILE_LEN, FILE_LEN);
		hl_buf_unref(b);
	}
	hl_close(s);
	free(data);
}

/* Repacks while snapshots store deltas against the objects being repacked: every version reads
 * back (a delta encoded against an object before the repack gave it a base is stored whole or
 * against it as it is now, never deeper than it says). */
static void repack_while_writing(void **state)
{
	fixture *f = *state;
	hl_store *s = open_store(f->store);
	snapper w = {.s = s, .f = f, .rounds = 24};
	w.versions = calloc((size_t)w.rounds, sizeof *w.versions);
	uint64_t rng = 9;
	for (int i = 0; i < FILES; i++)
		fill_text(&rng, w.versions[0].data[i], FILE_LEN);
	pthread_t t;
	assert_int_equal(pthread_create(&t, NULL, snap_rounds, &w), 0);
	unsigned passes = 0;
	uint64_t repacked = 0;
	while (!atomic_load(&w.done) || passes < 2) {
		hl_gc_report gr;
		gc_repack(s, 3 + (int)(passes % 2), 0.5, &gr); /* (cheap levels: many passes) */
		passes++;
		repacked += gr.records_repacked;
	}
	pthread_join(t, NULL);
	assert_true(repacked > 0);
	for (int r = 0; r < w.rounds; r++)
		all_sound(s, w.versions[r].data, FILES);
	hl_close(s);
	free(w.versions);
}

/* The race a repack has with a writer, made to happen in order: a delta is encoded against X (a
 * whole object: depth 1), a repack then gives X a base (X is like Y, put before it, and nothing
 * named X yet), and only then is the delta committed: it must not claim depth 1 on a base at
 * depth 1 now; it is stored whole instead and reads back. */
static void repack_between_encode_and_commit(void **state)
{
	fixture *f = *state;
	hl_store *st = open_store(f->store);
	hl_local *s = st->local;
	static uint8_t y[FILE_LEN], x[FILE_LEN], n[FILE_LEN];
	uint64_t rng = 3;
	fill_text(&rng, y, FILE_LEN);
	memcpy(x, y, FILE_LEN);
	fill_text(&rng, x + 2000, 60);
	memcpy(n, x, FILE_LEN);
	fill_text(&rng, n + 4000, 60);
	hl_id yid, xid;
	assert_int_equal(hl_put(st, y, FILE_LEN, &yid, NULL), 0);
	assert_int_equal(hl_put(st, x, FILE_LEN, &xid, NULL), 0);
	hl_put_item it = {.data = n, .len = FILE_LEN};
	prep *p;
	uint64_t bytes;
	assert_int_equal(hl_st_prepare(s, &it, 1, 0, &p, &bytes), 0);
	hl_st_compress_against(s, p, &xid, NULL);
	assert_true(p->flags & HL_REC_F_DELTA);
	assert_int_equal(p->depth, 1);
	hl_compact_report rep;
	assert_int_equal(hl_local_gc_begin(s, 0), 0);
	assert_int_equal(hl_local_compact(s, 0.5, HL_REPACK_LEVEL, 0, 0, &rep), 0);
	hl_local_gc_end(s);
	assert_int_equal(rep.records_repacked, 2);
	assert_true(is_delta(st, &xid)); /* against y now */
	creq req = {.recs = p, .n = 1, .bytes = bytes};
	pthread_cond_init(&req.cv, NULL);
	assert_int_equal(hl_st_commit(s, &req), 0);
	pthread_cond_destroy(&req.cv);
	assert_int_equal(it.created, 1);
	hl_st_prep_free(p, 1);
	assert_false(is_delta(st, &it.id)); /* whole */
	expect_bytes(st, &it.id, n, FILE_LEN);
	expect_bytes(st, &xid, x, FILE_LEN);
	hl_close(st);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(snapshot_like_stores_deltas, setup, teardown),
		cmocka_unit_test_setup_teardown(chains_stay_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_base, setup, teardown),
		cmocka_unit_test_setup_teardown(collector_keeps_bases, setup, teardown),
		cmocka_unit_test_setup_teardown(large_files, setup, teardown),
		cmocka_unit_test(sketches_find_containers),
		cmocka_unit_test_setup_teardown(bases_by_similarity, setup, teardown),
		cmocka_unit_test_setup_teardown(repack_encodes_again, setup, teardown),
		cmocka_unit_test_setup_teardown(repack_spares_bases, setup, teardown),
		cmocka_unit_test_setup_teardown(repack_while_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(repack_paced, setup, teardown),
		cmocka_unit_test_setup_teardown(repack_between_encode_and_commit, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
