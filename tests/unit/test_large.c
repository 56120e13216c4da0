/* test_large.c — objects above the chunk threshold: stored as chunks plus a manifest, read back
 * whole, by range and into a buffer; deduplicated across edits (a one-byte insert stores one or
 * two new chunks); persistent; listed; a corrupt chunk is HL_CORRUPT for the blob and reported by
 * verify, never wrong bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "dedup/chunker.h"

#define SIZE (8u << 20)

typedef struct fx {
	char *dir;
	hl_store *s;
	uint8_t *data;
} fx;

static hl_store *open_store(const char *dir, uint64_t threshold)
{
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_NONE;
	o.chunk_threshold = threshold;
	hl_store *s;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	return s;
}

static int setup(void **st)
{
	fx *f = calloc(1, sizeof(*f));
	f->dir = tu_tmpdir("large");
	f->s = open_store(f->dir, 1u << 20);
	f->data = malloc(SIZE + 1);
	uint64_t seed = 42;
	tu_fill(&seed, f->data, SIZE + 1);
	*st = f;
	return 0;
}

static int teardown(void **st)
{
	fx *f = *st;
	hl_close(f->s);
	tu_rmrf(f->dir);
	free(f->dir);
	free(f->data);
	free(f);
	return 0;
}

static uint64_t objects(hl_store *s)
{
	hl_stats st;
	assert_int_equal(hl_stats_get(s, &st), 0);
	return st.objects;
}

static void assert_whole(hl_store *s, const hl_id *id, const uint8_t *data, size_t len)
{
	hl_buf *b;
	assert_int_equal(hl_get(s, id, &b), 0);
	assert_int_equal(hl_buf_len(b), len);
	assert_memory_equal(hl_buf_data(b), data, len);
	hl_buf_unref(b);
}

static void roundtrip_and_dedup(void **st)
{
	fx *f = *st;
	hl_id id, want;
	int created;
	hl_hash(f->data, SIZE, &want);
	assert_int_equal(hl_put(f->s, f->data, SIZE, &id, &created), 0);
	assert_true(hl_id_equal(&id, &want)); /* the id is the BLAKE3 of the whole */
	assert_int_equal(created, 1);
	uint64_t after_first = objects(f->s);
	assert_true(after_first > SIZE / (256u << 10)); /* chunks and a manifest */
	assert_int_equal(hl_put(f->s, f->data, SIZE, &id, &created), 0);
	assert_int_equal(created, 0);
	assert_int_equal(objects(f->s), after_first);
	assert_int_equal(hl_has(f->s, &id), 0);
	assert_int_equal(hl_ref_set(f->s, "big", &id), 0); /* a ref may name a chunked object */
	hl_stat sb;
	assert_int_equal(hl_stat_object(f->s, &id, &sb), 0);
	assert_int_equal(sb.size, SIZE);
	assert_true(sb.flags & HL_STAT_CHUNKED);
	hl_stats stats;
	assert_int_equal(hl_stats_get(f->s, &stats), 0);
	assert_int_equal(stats.chunked, 1);
	assert_whole(f->s, &id, f->data, SIZE);

	/* insert one byte in the middle: one or two new chunks and a manifest */
	uint8_t *edited = malloc(SIZE + 1);
	memcpy(edited, f->data, SIZE / 2);
	edited[SIZE / 2] = 0x5a;
	memcpy(edited + SIZE / 2 + 1, f->data + SIZE / 2, SIZE / 2);
	hl_id id2;
	assert_int_equal(hl_put(f->s, edited, SIZE + 1, &id2, &created), 0);
	assert_int_equal(created, 1);
	uint64_t added = objects(f->s) - after_first;
	printf("# one-byte insert into 8 MiB: %llu new objects\n", (unsigned long long)added);
	assert_true(added >= 2 && added <= 3);
	assert_whole(f->s, &id2, edited, SIZE + 1);
	assert_whole(f->s, &id, f->data, SIZE);

	/* a wrong expected id stores nothing */
	uint64_t before = objects(f->s);
	edited[0] ^= 1;
	assert_int_equal(hl_put_expect(f->s, &id2, edited, SIZE + 1, &created), HL_MISMATCH);
	assert_int_equal(objects(f->s), before);
	edited[0] ^= 1;
	assert_int_equal(hl_put_expect(f->s, &id2, edited, SIZE + 1, &created), 0);
	assert_int_equal(created, 0);
	free(edited);

	/* get_into: too small, then exact */
	uint8_t *dst = malloc(SIZE);
	size_t len;
	assert_int_equal(hl_get_into(f->s, &id, dst, SIZE - 1, &len), HL_TOOBIG);
	assert_int_equal(hl_get_into(f->s, &id, dst, SIZE, &len), 0);
	assert_int_equal(len, SIZE);
	assert_memory_equal(dst, f->data, SIZE);
	free(dst);

	/* persistent, and listed */
	hl_close(f->s);
	f->s = open_store(f->dir, 1u << 20);
	assert_whole(f->s, &id, f->data, SIZE);
}

static void reader_ranges(void **st)
{
	fx *f = *st;
	hl_id id;
	assert_int_equal(hl_put(f->s, f->data, SIZE, &id, NULL), 0);
	hl_reader *r;
	uint64_t size;
	assert_int_equal(hl_reader_open(f->s, &id, &r, &size), 0);
	assert_int_equal(size, SIZE);
	uint8_t *buf = malloc(1 << 20);
	uint64_t seed = 9;
	for (int i = 0; i < 200; i++) {
		uint64_t off = tu_rand(&seed) % SIZE;
		size_t want = (size_t)(tu_rand(&seed) % (1 << 20)), n;
		assert_int_equal(hl_reader_read(r, off, buf, want, &n), 0);
		size_t expect = SIZE - off < want ? (size_t)(SIZE - off) : want;
		assert_int_equal(n, expect);
		assert_memory_equal(buf, f->data + off, n);
	}
	/* sequential 4 KiB reads cover it exactly */
	uint64_t off = 0;
	size_t n;
	do {
		assert_int_equal(hl_reader_read(r, off, buf, 4096, &n), 0);
		if (n)
			assert_memory_equal(buf, f->data + off, n);
		off += n;
	} while (n == 4096);
	assert_int_equal(off, SIZE);
	assert_int_equal(hl_reader_read(r, SIZE + 5, buf, 10, &n), 0);
	assert_int_equal(n, 0);
	hl_reader_close(r);
	/* a small object reads through the same interface */
	hl_id small;
	assert_int_equal(hl_put(f->s, "tiny", 4, &small, NULL), 0);
	assert_int_equal(hl_reader_open(f->s, &small, &r, &size), 0);
	assert_int_equal(hl_reader_read(r, 1, buf, 100, &n), 0);
	assert_int_equal(n, 3);
	assert_memory_equal(buf, "iny", 3);
	hl_reader_close(r);
	hl_id none;
	hl_hash("none", 4, &none);
	assert_int_equal(hl_reader_open(f->s, &none, &r, &size), HL_NOTFOUND);
	free(buf);
}

static void threshold_edges(void **st)
{
	fx *f = *st;
	hl_id id;
	hl_stat sb;
	assert_int_equal(hl_put(f->s, f->data, 1u << 20, &id, NULL), 0); /* at the threshold: whole */
	assert_int_equal(hl_stat_object(f->s, &id, &sb), 0);
	assert_false(sb.flags & HL_STAT_CHUNKED);
	assert_int_equal(hl_put(f->s, f->data + 1, (1u << 20) + 1, &id, NULL), 0); /* past it */
	assert_int_equal(hl_stat_object(f->s, &id, &sb), 0);
	assert_true(sb.flags & HL_STAT_CHUNKED);
	/* threshold 0: never chunked */
	hl_close(f->s);
	f->s = open_store(f->dir, 0);
	assert_int_equal(hl_put(f->s, f->data + 2, 3u << 20, &id, NULL), 0);
	assert_int_equal(hl_stat_object(f->s, &id, &sb), 0);
	assert_false(sb.flags & HL_STAT_CHUNKED);
	/* a threshold below the largest chunk is refused */
	hl_options o;
	hl_options_init(&o);
	o.chunk_threshold = 1000;
	hl_store *s2;
	assert_int_equal(hl_open(f->dir, &o, &s2), HL_INVALID);
}

typedef struct seen {
	hl_id large;
	int found_large, corrupt_large, corrupt_chunk;
	hl_id chunk;
} seen;

static int find_large(const hl_id *id, const hl_stat *st, void *ctx)
{
	seen *s = ctx;
	if ((st->flags & HL_STAT_CHUNKED) && hl_id_equal(id, &s->large))
		s->found_large = 1;
	return 0;
}

static void on_bad(const hl_id *id, int err, void *ctx)
{
	seen *s = ctx;
	if (hl_id_equal(id, &s->large))
		s->corrupt_large = 1;
	if (hl_id_equal(id, &s->chunk))
		s->corrupt_chunk = 1;
}

static void corrupt_chunk(void **st)
{
	fx *f = *st;
	seen sn = {0};
	assert_int_equal(hl_put(f->s, f->data, SIZE, &sn.large, NULL), 0);
	assert_int_equal(hl_iterate(f->s, find_large, &sn), 0);
	assert_true(sn.found_large);
	/* the third chunk, found the way the store cut it */
	hl_cdc c;
	hl_cdc_init(&c, HL_CDC_MIN, HL_CDC_AVG, HL_CDC_MAX);
	size_t off = 0, cl = 0;
	for (int i = 0; i < 3; i++) {
		off += cl;
		cl = hl_cdc_next(&c, f->data + off, SIZE - off);
	}
	hl_hash(f->data + off, cl, &sn.chunk);
	hl_stat cs;
	assert_int_equal(hl_stat_object(f->s, &sn.chunk, &cs), 0);
	assert_int_equal(cs.size, cl);
	hl_close(f->s); /* no cached copy of the chunk survives */
	char seg[4096];
	tu_seg_path(f->dir, cs.segment, seg, sizeof seg);
	tu_flip_bit(seg, cs.offset + 64 + cl / 2, 3); /* in the payload (stored raw: random data) */
	f->s = open_store(f->dir, 1u << 20);
	hl_buf *b = NULL;
	assert_int_equal(hl_get(f->s, &sn.large, &b), HL_CORRUPT);
	assert_null(b);
	hl_reader *r;
	uint8_t buf[64];
	size_t n;
	assert_int_equal(hl_reader_open(f->s, &sn.large, &r, NULL), 0);
	assert_int_equal(hl_reader_read(r, 0, buf, sizeof buf, &n), 0); /* the first chunk is fine */
	assert_int_equal(hl_reader_read(r, off + 1, buf, sizeof buf, &n), HL_CORRUPT);
	hl_reader_close(r);
	hl_verify_report rep;
	assert_int_equal(hl_verify(f->s, 2, on_bad, NULL, &sn, &rep), HL_CORRUPT);
	assert_true(sn.corrupt_chunk);
	assert_true(sn.corrupt_large);
	assert_true(rep.corrupt >= 1 && rep.corrupt + rep.quarantined >= 2); /* the chunk was quarantined by the get */
	/* a blob with a part gone is not there (its map alone does not make it so); the same bytes
	 * put again repair it (the chunk is stored anew, the quarantine lifted) */
	assert_int_equal(hl_has(f->s, &sn.large), HL_NOTFOUND);
	hl_id again;
	assert_int_equal(hl_put(f->s, f->data, SIZE, &again, NULL), 0);
	assert_true(hl_id_equal(&again, &sn.large));
	assert_int_equal(hl_has(f->s, &sn.large), 0);
	assert_whole(f->s, &sn.large, f->data, SIZE);
}

static void writer_streams(void **st)
{
	fx *f = *st;
	hl_id whole, id;
	int created;
	hl_hash(f->data, SIZE, &whole);
	/* in pieces of odd sizes: the same object, the same chunks hl_put makes */
	hl_writer *w;
	assert_int_equal(hl_writer_open(f->s, &whole, &w), 0);
	uint64_t seed = 3;
	for (size_t off = 0; off < SIZE;) {
		size_t n = 1 + (size_t)(tu_rand(&seed) % 300000);
		if (n > SIZE - off)
			n = SIZE - off;
		assert_int_equal(hl_writer_write(w, f->data + off, n), 0);
		off += n;
	}
	assert_int_equal(hl_writer_close(w, &id, &created), 0);
	assert_true(hl_id_equal(&id, &whole));
	assert_int_equal(created, 1);
	uint64_t n_objects = objects(f->s);
	assert_int_equal(hl_put(f->s, f->data, SIZE, &id, &created), 0);
	assert_int_equal(created, 0);
	assert_int_equal(objects(f->s), n_objects);
	assert_whole(f->s, &whole, f->data, SIZE);
	/* the same bytes one byte shorter, through hl_put first: the writer then adds nothing but
	 * the manifest's twin check (same chunks, same manifest) */
	hl_id shorter;
	assert_int_equal(hl_put(f->s, f->data, SIZE - 1, &shorter, NULL), 0);
	n_objects = objects(f->s);
	assert_int_equal(hl_writer_open(f->s, NULL, &w), 0);
	assert_int_equal(hl_writer_write(w, f->data, SIZE - 1), 0);
	assert_int_equal(hl_writer_close(w, &id, &created), 0);
	assert_true(hl_id_equal(&id, &shorter));
	assert_int_equal(created, 0);
	assert_int_equal(objects(f->s), n_objects);
	/* small: stored whole */
	assert_int_equal(hl_writer_open(f->s, NULL, &w), 0);
	assert_int_equal(hl_writer_write(w, f->data + 5, 1000), 0);
	assert_int_equal(hl_writer_write(w, f->data + 1005, 0), 0);
	assert_int_equal(hl_writer_close(w, &id, &created), 0);
	assert_int_equal(created, 1);
	hl_stat sb;
	assert_int_equal(hl_stat_object(f->s, &id, &sb), 0);
	assert_false(sb.flags & HL_STAT_CHUNKED);
	assert_whole(f->s, &id, f->data + 5, 1000);
	/* the wrong id: not stored; abort leaves nothing visible */
	hl_id other;
	hl_hash("other", 5, &other);
	assert_int_equal(hl_writer_open(f->s, &other, &w), 0);
	assert_int_equal(hl_writer_write(w, f->data + 7, 3u << 20), 0);
	assert_int_equal(hl_writer_close(w, &id, &created), HL_MISMATCH);
	assert_int_equal(hl_has(f->s, &other), HL_NOTFOUND);
	hl_hash(f->data + 9, 2u << 20, &other);
	assert_int_equal(hl_writer_open(f->s, NULL, &w), 0);
	assert_int_equal(hl_writer_write(w, f->data + 9, 2u << 20), 0);
	hl_writer_abort(w);
	assert_int_equal(hl_has(f->s, &other), HL_NOTFOUND);
}

/* hl_put_batch (the CLI's put) chunks its large items like hl_put: a one-byte insert into an
 * 8 MiB file stores a few chunks, not the file again; a bad item anywhere stores nothing, large
 * or small; repeats and already-stored blobs are not "created". */
static void batch_chunks_large(void **st)
{
	fx *f = *st;
	uint8_t small[3000];
	memcpy(small, f->data + 100, sizeof small);
	hl_put_item items[3] = {{.data = f->data, .len = SIZE}, {.data = small, .len = sizeof small},
	                        {.data = f->data, .len = SIZE}};
	/* one item with a wrong expected id: the whole batch is refused before anything is written */
	items[1].check_id = 1;
	hl_hash("not it", 6, &items[1].id);
	assert_int_equal(hl_put_batch(f->s, items, 3), HL_MISMATCH);
	assert_int_equal(objects(f->s), 0);
	items[1].check_id = 0;
	assert_int_equal(hl_put_batch(f->s, items, 3), 0);
	hl_id want;
	hl_hash(f->data, SIZE, &want);
	assert_true(hl_id_equal(&items[0].id, &want));
	assert_int_equal(items[0].created + items[2].created, 1); /* the repeat was not created */
	assert_int_equal(items[1].created, 1);
	hl_stat sb;
	assert_int_equal(hl_stat_object(f->s, &want, &sb), 0);
	assert_true(sb.flags & HL_STAT_CHUNKED);
	assert_whole(f->s, &want, f->data, SIZE);
	hl_stats a, b;
	assert_int_equal(hl_stats_get(f->s, &a), 0);
	uint8_t *edited = malloc(SIZE + 1);
	memcpy(edited, f->data, SIZE / 2);
	edited[SIZE / 2] = 0x5a;
	memcpy(edited + SIZE / 2 + 1, f->data + SIZE / 2, SIZE / 2);
	hl_put_item again[2] = {{.data = edited, .len = SIZE + 1}, {.data = f->data, .len = SIZE}};
	assert_int_equal(hl_put_batch(f->s, again, 2), 0);
	assert_int_equal(again[0].created, 1);
	assert_int_equal(again[1].created, 0);
	assert_int_equal(hl_stats_get(f->s, &b), 0);
	printf("# batch: one-byte insert into 8 MiB stored %llu bytes\n",
	       (unsigned long long)(b.stored_bytes - a.stored_bytes));
	assert_true(b.stored_bytes - a.stored_bytes < (1u << 20));
	assert_whole(f->s, &again[0].id, edited, SIZE + 1);
	free(edited);
	hl_close(f->s); /* and it lasts */
	f->s = open_store(f->dir, 1u << 20);
	assert_whole(f->s, &want, f->data, SIZE);
	assert_whole(f->s, &items[1].id, small, sizeof small);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(roundtrip_and_dedup, setup, teardown),
		cmocka_unit_test_setup_teardown(reader_ranges, setup, teardown),
		cmocka_unit_test_setup_teardown(threshold_edges, setup, teardown),
		cmocka_unit_test_setup_teardown(corrupt_chunk, setup, teardown),
		cmocka_unit_test_setup_teardown(writer_streams, setup, teardown),
		cmocka_unit_test_setup_teardown(batch_chunks_large, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
