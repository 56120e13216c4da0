/* test_integrity.c — the scrubber and repair, with an S3 bucket (the S3 test server) holding a
 * replica: N corruptions injected into the local store's segment files are every one found by the
 * scrub, which resumes from its cursor across a reopen; those the bucket has are repaired (the
 * right bytes come back, the quarantine is lifted), those it lacks are reported unrepairable, and
 * the corruption log says which is which; hl_repair succeeds once a source has the object; the
 * background scrubber keeps to its byte rate and repairs what it finds. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "base/clock.h"
#include "testutil.h"

#define N_OBJECTS 400
#define N_BAD 12
#define N_LOCAL_ONLY 3 /* of the bad ones, the last few are not in the bucket */

static char endpoint[64];

static hl_store *open_local(const char *dir, const tu_s3 *v)
{
	hl_options o;
	hl_options_init(&o);
	tu_s3_options(&o, v, endpoint);
	o.backend = NULL; /* local store; the bucket is the repair source */
	o.repair_from = "s3";
	o.segment_size = 256 << 10;
	o.l1_bytes = 0; /* the L1 would be a repair source too: here only the bucket is */
	o.sync = HL_SYNC_NONE;
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err)
		fail_msg("open %s: %s", dir, hl_strerror(err));
	return s;
}

static hl_store *open_bucket(const char *dir, const tu_s3 *v)
{
	hl_options o;
	hl_options_init(&o);
	tu_s3_options(&o, v, endpoint);
	o.l2_bytes = 0;
	o.l1_bytes = 0;
	hl_store *s = NULL;
	assert_int_equal(hl_open(dir, &o, &s), 0);
	return s;
}

typedef struct fixture {
	char *root, dir[4096], bucket[4096], node[4096];
	tu_s3 srv;
	hl_id ids[N_OBJECTS];
	uint8_t *data[N_OBJECTS];
	size_t len[N_OBJECTS];
	int bad[N_BAD];
} fixture;

static void flip_object(fixture *f, hl_store *s, const hl_id *id)
{
	hl_stat st;
	assert_int_equal(hl_stat_object(s, id, &st), 0);
	char seg[4200];
	tu_seg_path(f->dir, (uint32_t)st.segment, seg, sizeof seg);
	tu_flip_bit(seg, st.offset + 64 + st.stored_size / 3 % (st.stored_size - 64), 5);
}

static void flip_in_payload(fixture *f, hl_store *s, int i)
{
	flip_object(f, s, &f->ids[i]);
}

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	f->root = tu_tmpdir("integrity");
	snprintf(f->dir, sizeof f->dir, "%s/store", f->root);
	snprintf(f->bucket, sizeof f->bucket, "%s/bucket", f->root);
	snprintf(f->node, sizeof f->node, "%s/node", f->root);
	tu_s3_start(&f->srv, f->bucket, 0, 0);
	hl_store *s = open_local(f->dir, &f->srv), *b = open_bucket(f->node, &f->srv);
	uint64_t rng = 77;
	for (int i = 0; i < N_OBJECTS; i++) {
		f->len[i] = 200 + (size_t)(tu_rand(&rng) % 6000);
		f->data[i] = malloc(f->len[i]);
		tu_fill(&rng, f->data[i], f->len[i]);
		assert_int_equal(hl_put(s, f->data[i], f->len[i], &f->ids[i], NULL), 0);
	}
	/* the bad ones: spread over the store; the bucket lacks the last N_LOCAL_ONLY */
	for (int k = 0; k < N_BAD; k++)
		f->bad[k] = k * (N_OBJECTS / N_BAD) + 7;
	for (int i = 0; i < N_OBJECTS; i++) {
		int local_only = 0;
		for (int k = N_BAD - N_LOCAL_ONLY; k < N_BAD; k++)
			local_only |= f->bad[k] == i;
		if (!local_only)
			assert_int_equal(hl_put(b, f->data[i], f->len[i], NULL, NULL), 0);
	}
	hl_close(b);
	assert_int_equal(hl_sync(s), 0);
	for (int k = 0; k < N_BAD; k++)
		flip_in_payload(f, s, f->bad[k]);
	hl_close(s);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fixture *f = *state;
	tu_s3_stop(&f->srv);
	for (int i = 0; i < N_OBJECTS; i++)
		free(f->data[i]);
	tu_rmrf(f->root);
	free(f->root);
	free(f);
	return 0;
}

static int is_bad(const fixture *f, int i, int *local_only)
{
	for (int k = 0; k < N_BAD; k++)
		if (f->bad[k] == i) {
			*local_only = k >= N_BAD - N_LOCAL_ONLY;
			return 1;
		}
	return 0;
}

static void test_scrub_finds_and_repairs(void **state)
{
	fixture *f = *state;
	hl_store *s = open_local(f->dir, &f->srv);
	uint64_t found = 0, scrubbed = 0, repaired = 0, unrepairable = 0; /* summed over the two opens */
	int pass_done = 0, steps = 0, reopened = 0;
	while (!pass_done) {
		assert_int_equal(hl_scrub(s, 64 << 10, &pass_done, &found), 0);
		steps++;
		if (steps == 5 && !reopened) { /* a restart midway: the cursor is kept */
			hl_stats st;
			assert_int_equal(hl_stats_get(s, &st), 0);
			scrubbed += st.scrub_objects, repaired += st.repaired, unrepairable += st.unrepairable;
			hl_close(s);
			s = open_local(f->dir, &f->srv);
			reopened = 1;
		}
		assert_true(steps < 1000);
	}
	hl_stats st;
	assert_int_equal(hl_sync(s), 0); /* a repair lifts its quarantine when its entry is indexed */
	assert_int_equal(hl_stats_get(s, &st), 0);
	scrubbed += st.scrub_objects, repaired += st.repaired, unrepairable += st.unrepairable;
	printf("scrub: %llu objects in %d steps (one reopen), %llu corrupt found, %llu repaired, %llu unrepairable\n",
	       (unsigned long long)scrubbed, steps, (unsigned long long)found, (unsigned long long)repaired,
	       (unsigned long long)unrepairable);
	assert_int_equal(scrubbed, N_OBJECTS); /* every object once: resumed, not restarted */
	assert_int_equal(found, N_BAD);
	assert_int_equal(repaired, N_BAD - N_LOCAL_ONLY);
	assert_int_equal(unrepairable, N_LOCAL_ONLY);
	assert_int_equal(st.quarantined, N_LOCAL_ONLY);
	/* the log: one line per corrupt object, saying what became of it (before
	 * the gets below, which try the unrepairable ones again) */
	char logp[4200], line[512];
	snprintf(logp, sizeof logp, "%s/corruption.log", f->dir);
	FILE *lf = fopen(logp, "r");
	assert_non_null(lf);
	int repaired_lines = 0, unrepairable_lines = 0;
	while (fgets(line, sizeof line, lf)) {
		repaired_lines += strstr(line, " corrupt repaired-from=s3") != NULL;
		unrepairable_lines += strstr(line, " corrupt unrepairable") != NULL;
	}
	fclose(lf);
	assert_int_equal(repaired_lines, N_BAD - N_LOCAL_ONLY);
	assert_int_equal(unrepairable_lines, N_LOCAL_ONLY);

	for (int i = 0; i < N_OBJECTS; i++) {
		hl_buf *b = NULL;
		int local_only = 0, err = hl_get(s, &f->ids[i], &b);
		if (is_bad(f, i, &local_only) && local_only) {
			assert_int_equal(err, HL_CORRUPT);
			continue;
		}
		assert_int_equal(err, 0);
		assert_int_equal(hl_buf_len(b), f->len[i]);
		assert_memory_equal(hl_buf_data(b), f->data[i], f->len[i]);
		hl_buf_unref(b);
	}
	/* a source that gains the object: hl_repair succeeds; verify is clean again */
	int k = N_BAD - 1, i = f->bad[k];
	const char *from = "x";
	assert_int_equal(hl_repair(s, &f->ids[i], &from), HL_NOTFOUND);
	assert_null(from);
	char node2[4200];
	snprintf(node2, sizeof node2, "%s/node2", f->root);
	hl_store *b = open_bucket(node2, &f->srv);
	for (k = N_BAD - N_LOCAL_ONLY; k < N_BAD; k++)
		assert_int_equal(hl_put(b, f->data[f->bad[k]], f->len[f->bad[k]], NULL, NULL), 0);
	hl_close(b);
	for (k = N_BAD - N_LOCAL_ONLY; k < N_BAD; k++) {
		assert_int_equal(hl_repair(s, &f->ids[f->bad[k]], &from), 0);
		assert_string_equal(from, "s3");
	}
	hl_verify_report vr;
	assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &vr), 0);
	assert_int_equal(vr.corrupt, 0);
	assert_int_equal(vr.objects, N_OBJECTS);
	hl_close(s);
}

static void test_background_scrub(void **state)
{
	fixture *f = *state;
	hl_store *s = open_local(f->dir, &f->srv);
	/* one fresh corruption, made while the store is open */
	int victim = 123;
	assert_int_equal(hl_sync(s), 0);
	flip_in_payload(f, s, victim);
	hl_stats st;
	assert_int_equal(hl_stats_get(s, &st), 0);
	uint64_t total = st.stored_bytes, rate = 512 << 10;
	uint64_t t0 = hl_now_ns();
	assert_int_equal(hl_scrub_background(s, rate, 3600), 0);
	assert_int_equal(hl_scrub_background(s, rate, 3600), HL_INVALID); /* one at a time */
	for (int i = 0; i < 1500; i++) {
		assert_int_equal(hl_stats_get(s, &st), 0);
		if (st.scrub_passes >= 1)
			break;
		usleep(20 * 1000);
	}
	double secs = (double)(hl_now_ns() - t0) / 1e9, want = (double)total / (double)rate;
	printf("background scrub: %llu bytes in %.2f s at %llu B/s (%.2f s at the rate), %llu repaired\n",
	       (unsigned long long)st.scrub_bytes, secs, (unsigned long long)rate, want,
	       (unsigned long long)st.repaired);
	assert_true(st.scrub_passes >= 1);
	assert_true(secs >= want * 0.7); /* paced: never much faster than the rate */
	assert_int_equal(st.repaired, 1);
	hl_buf *b;
	assert_int_equal(hl_get(s, &f->ids[victim], &b), 0);
	assert_memory_equal(hl_buf_data(b), f->data[victim], f->len[victim]);
	hl_buf_unref(b);
	hl_close(s); /* stops the scrubber */
}

/* The bucket's scrubber in the background keeps to its byte rate, and closing the store ends its
 * rest between passes at once. */
static void test_background_bucket_scrub(void **state)
{
	fixture *f = *state;
	hl_store *b = open_bucket(f->node, &f->srv);
	uint64_t total = 0, rate = 1 << 20;
	for (int i = 0; i < N_OBJECTS; i++)
		total += f->len[i]; /* about what the bucket holds (it lacks a few) */
	hl_stats st;
	uint64_t t0 = hl_now_ns();
	assert_int_equal(hl_scrub_background(b, rate, 3600), 0);
	for (int i = 0; i < 3000; i++) {
		assert_int_equal(hl_stats_get(b, &st), 0);
		if (st.scrub_passes >= 1)
			break;
		usleep(20 * 1000);
	}
	double secs = (double)(hl_now_ns() - t0) / 1e9, want = (double)st.scrub_bytes / (double)rate;
	printf("bucket scrub: %llu objects, %llu bytes in %.2f s at %llu B/s (%.2f s at the rate)\n",
	       (unsigned long long)st.scrub_objects, (unsigned long long)st.scrub_bytes, secs,
	       (unsigned long long)rate, want);
	assert_true(st.scrub_passes >= 1);
	assert_true(st.scrub_bytes > total / 2);
	assert_true(secs >= want * 0.7); /* paced */
	t0 = hl_now_ns();
	hl_close(b); /* the scrubber rests an hour after its pass: the close ends that */
	double close_s = (double)(hl_now_ns() - t0) / 1e9;
	printf("close during the rest: %.3f s\n", close_s);
	assert_true(close_s < 30);
}

static int count_lines(const fixture *f, const hl_id *id)
{
	char logp[4200], line[512], hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	snprintf(logp, sizeof logp, "%s/corruption.log", f->dir);
	FILE *lf = fopen(logp, "r");
	int n = 0;
	while (lf && fgets(line, sizeof line, lf))
		n += strstr(line, hex) != NULL;
	if (lf)
		fclose(lf);
	return n;
}

/* A get that meets a corrupt record repairs it on the spot; one that cannot be repaired is
 * refused each time and logged once. */
static void test_read_repair(void **state)
{
	fixture *f = *state;
	hl_store *s = open_local(f->dir, &f->srv);
	uint8_t lonely[3000];
	uint64_t rng = 991;
	tu_fill(&rng, lonely, sizeof lonely);
	hl_id lid;
	assert_int_equal(hl_put(s, lonely, sizeof lonely, &lid, NULL), 0); /* not in the bucket */
	assert_int_equal(hl_sync(s), 0);
	int victim = 250;
	flip_in_payload(f, s, victim);
	flip_object(f, s, &lid);
	hl_buf *b = NULL;
	assert_int_equal(hl_get(s, &f->ids[victim], &b), 0);
	assert_memory_equal(hl_buf_data(b), f->data[victim], f->len[victim]);
	hl_buf_unref(b);
	assert_int_equal(count_lines(f, &f->ids[victim]), 1);
	uint8_t dst[4000];
	size_t len;
	for (int i = 0; i < 3; i++) {
		assert_int_equal(hl_get(s, &lid, &b), HL_CORRUPT);
		assert_int_equal(hl_get_into(s, &lid, dst, sizeof dst, &len), HL_CORRUPT);
	}
	assert_int_equal(count_lines(f, &lid), 1);
	hl_close(s);
}

typedef struct id_set {
	hl_id ids[N_OBJECTS + 64];
	uint64_t sizes[N_OBJECTS + 64];
	size_t n;
} id_set;

static int collect_whole(const hl_id *id, const hl_stat *st, void *ctx)
{
	id_set *set = ctx;
	if (!(st->flags & HL_STAT_CHUNKED) && set->n < N_OBJECTS + 64) {
		set->ids[set->n] = *id;
		set->sizes[set->n++] = st->size;
	}
	return 0;
}

static int in_set(const id_set *set, const hl_id *id)
{
	for (size_t i = 0; i < set->n; i++)
		if (hl_id_equal(&set->ids[i], id))
			return 1;
	return 0;
}

/* A large blob one of whose chunks is corrupt: the get below the coordinator repairs the chunk
 * from the bucket (which holds the same chunks) and returns the whole blob; so does a streaming
 * reader. */
static void test_read_repair_chunk(void **state)
{
	fixture *f = *state;
	hl_store *s = open_local(f->dir, &f->srv), *b = open_bucket(f->node, &f->srv);
	size_t len = 3u << 20;
	uint8_t *big = malloc(len);
	uint64_t rng = 4242;
	tu_fill(&rng, big, len);
	static id_set before, after;
	before.n = after.n = 0;
	assert_int_equal(hl_iterate(s, collect_whole, &before), 0);
	hl_id id, id_b;
	assert_int_equal(hl_put(s, big, len, &id, NULL), 0);
	assert_int_equal(hl_put(b, big, len, &id_b, NULL), 0); /* the repair source has its chunks */
	assert_true(hl_id_equal(&id, &id_b));
	hl_close(b);
	assert_int_equal(hl_sync(s), 0);
	assert_int_equal(hl_iterate(s, collect_whole, &after), 0);
	size_t victim = SIZE_MAX; /* the largest new object: a chunk, not the manifest */
	for (size_t i = 0; i < after.n; i++)
		if (!in_set(&before, &after.ids[i]) && (victim == SIZE_MAX || after.sizes[i] > after.sizes[victim]))
			victim = i;
	assert_true(victim != SIZE_MAX);
	flip_object(f, s, &after.ids[victim]);
	hl_buf *got = NULL;
	assert_int_equal(hl_get(s, &id, &got), 0);
	assert_int_equal(hl_buf_len(got), len);
	assert_memory_equal(hl_buf_data(got), big, len);
	hl_buf_unref(got);
	assert_int_equal(count_lines(f, &after.ids[victim]), 1);
	/* once more, now through a streaming reader after a second corruption of the same chunk */
	flip_object(f, s, &after.ids[victim]);
	hl_reader *r;
	uint64_t size;
	assert_int_equal(hl_reader_open(s, &id, &r, &size), 0);
	assert_int_equal(size, len);
	uint8_t *back = malloc(len);
	size_t n, off = 0;
	while (off < len) {
		assert_int_equal(hl_reader_read(r, off, back + off, 100000, &n), 0);
		assert_true(n > 0);
		off += n;
	}
	hl_reader_close(r);
	assert_memory_equal(back, big, len);
	free(back);
	free(big);
	hl_close(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_scrub_finds_and_repairs),
		cmocka_unit_test(test_background_scrub),
		cmocka_unit_test(test_background_bucket_scrub),
		cmocka_unit_test(test_read_repair),
		cmocka_unit_test(test_read_repair_chunk),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
