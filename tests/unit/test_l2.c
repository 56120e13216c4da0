/* test_l2.c — the L2 disk cache: round trips from memory and from disk, LZ4 for compressible
 * entries, the index rebuilt on open, corrupted region bytes read as misses (never wrong bytes),
 * eviction a region at a time within the file's fixed size, and reinsertion of entries read since
 * they were written. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "cache/l2.h"

#define REGION (64u << 10)

typedef struct obj {
	hl_id id;
	uint8_t data[6000];
	size_t len;
} obj;

static void make(obj *o, uint64_t *seed, int compressible)
{
	o->len = 1000 + (size_t)(tu_rand(seed) % 5000);
	tu_fill(seed, o->data, o->len);
	if (compressible)
		memset(o->data, 'z', o->len * 3 / 4);
	hl_hash(o->data, o->len, &o->id);
}

static int reads_back(hl_l2 *c, const obj *o)
{
	hl_buf *b;
	int err = hl_l2_get(c, &o->id, &b);
	if (err)
		return 0;
	assert_int_equal(hl_buf_len(b), o->len);
	assert_memory_equal(hl_buf_data(b), o->data, o->len);
	hl_buf_unref(b);
	return 1;
}

/* The partly filled region reaches the disk within about a second, without a flush: a cache
 * opened from the file then (as after a crash) finds those entries. */
static void partial_region_written(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("l2p"), path[4096];
	snprintf(path, sizeof path, "%s/l2.cache", dir);
	hl_l2 *c, *again;
	assert_int_equal(hl_l2_open(path, 8 * REGION, REGION, 2048, &c), 0);
	static obj o[5];
	uint64_t seed = 9;
	for (int i = 0; i < 5; i++) {
		make(&o[i], &seed, 0);
		assert_int_equal(hl_l2_put(c, &o[i].id, o[i].data, o[i].len), 0);
	}
	hl_l2_stats s;
	for (int i = 0; i < 1000; i++) {
		hl_l2_stats_get(c, &s);
		if (s.flushes)
			break;
		usleep(10 * 1000);
	}
	assert_int_equal(s.flushes, 1);
	assert_int_equal(hl_l2_open(path, 8 * REGION, REGION, 2048, &again), 0);
	hl_l2_stats_get(again, &s);
	assert_int_equal(s.entries, 5);
	for (int i = 0; i < 5; i++)
		assert_true(reads_back(again, &o[i]));
	hl_l2_close(again);
	hl_l2_close(c);
	tu_rmrf(dir);
	free(dir);
}

static void roundtrip_restart_corrupt(void **st)
{
	char *dir = tu_tmpdir("l2"), path[4096];
	snprintf(path, sizeof path, "%s/l2.cache", dir);
	hl_l2 *c;
	assert_int_equal(hl_l2_open(path, 8 * REGION, REGION, 2048, &c), 0);
	static obj o[40];
	uint64_t seed = 5;
	for (int i = 0; i < 40; i++) {
		make(&o[i], &seed, i % 2);
		assert_int_equal(hl_l2_put(c, &o[i].id, o[i].data, o[i].len), 0);
	}
	for (int i = 0; i < 40; i++) /* some from disk (regions written), the newest from memory */
		assert_true(reads_back(c, &o[i]));
	hl_l2_stats s;
	assert_int_equal(hl_l2_flush(c), 0); /* the writer's images on disk, and the current one */
	hl_l2_stats_get(c, &s);
	assert_int_equal(s.entries, 40);
	assert_true(s.flushes >= 2);
	assert_true(s.bytes < 40 * 3500); /* the compressible half was compressed */
	hl_id none;
	hl_hash("none", 4, &none);
	hl_buf *b;
	assert_int_equal(hl_l2_get(c, &none, &b), HL_NOTFOUND);
	hl_l2_close(c);

	/* restart: the index comes back from the region headers */
	assert_int_equal(hl_l2_open(path, 8 * REGION, REGION, 2048, &c), 0);
	hl_l2_stats_get(c, &s);
	assert_int_equal(s.entries, 40);
	for (int i = 0; i < 40; i++)
		assert_true(reads_back(c, &o[i]));
	hl_l2_close(c);

	/* flip bytes inside the first region's entries: misses, never wrong bytes */
	FILE *f = fopen(path, "r+b");
	for (long off = 200; off < (long)REGION - 100; off += 997) {
		fseek(f, off, SEEK_SET);
		int ch = fgetc(f);
		fseek(f, off, SEEK_SET);
		fputc(ch ^ 0x40, f);
	}
	fclose(f);
	assert_int_equal(hl_l2_open(path, 8 * REGION, REGION, 2048, &c), 0);
	int hits = 0;
	for (int i = 0; i < 40; i++)
		hits += reads_back(c, &o[i]);
	hl_l2_stats_get(c, &s);
	printf("# after corrupting region 0: %d of 40 hit, %llu corrupt entries seen\n", hits,
	       (unsigned long long)s.corrupt);
	assert_true(hits < 40 && hits > 0);
	/* a truncated file is a cold cache, not an error */
	hl_l2_close(c);
	assert_int_equal(truncate(path, 0), 0);
	assert_int_equal(hl_l2_open(path, 8 * REGION, REGION, 2048, &c), 0);
	hl_l2_stats_get(c, &s);
	assert_int_equal(s.entries, 0);
	hl_l2_close(c);
	tu_rmrf(dir);
	free(dir);
}

static void eviction_and_reinsertion(void **st)
{
	char *dir = tu_tmpdir("l2"), path[4096];
	snprintf(path, sizeof path, "%s/l2.cache", dir);
	hl_l2 *c;
	assert_int_equal(hl_l2_open(path, 4 * REGION, REGION, 1u << 30, &c), 0);
	static obj o[400];
	uint64_t seed = 11;
	make(&o[0], &seed, 0);
	assert_int_equal(hl_l2_put(c, &o[0].id, o[0].data, o[0].len), 0);
	for (int i = 1; i < 400; i++) {
		make(&o[i], &seed, 0);
		assert_int_equal(hl_l2_put(c, &o[i].id, o[i].data, o[i].len), 0);
		if (i % 10 == 0)
			assert_true(reads_back(c, &o[0])); /* kept hot: carried over each time its region goes */
	}
	hl_l2_stats s;
	hl_l2_stats_get(c, &s);
	printf("# 400 puts into 4 regions: %llu entries, %llu evicted, %llu reinserted\n",
	       (unsigned long long)s.entries, (unsigned long long)s.evictions, (unsigned long long)s.reinserted);
	assert_true(s.evictions > 0);
	assert_true(s.reinserted > 0);
	assert_true(s.bytes <= 4 * REGION);
	assert_true(reads_back(c, &o[0]));
	assert_false(reads_back(c, &o[1])); /* cold and old: gone */
	assert_true(reads_back(c, &o[399]));
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(sb.st_size, 4 * REGION); /* the file never grows */
	/* an object larger than a region is not cached */
	static uint8_t big[REGION];
	hl_id bid;
	hl_hash(big, sizeof big, &bid);
	assert_int_equal(hl_l2_put(c, &bid, big, sizeof big), HL_TOOBIG);
	hl_l2_close(c);
	hl_l2 *bad;
	assert_int_equal(hl_l2_open(path, REGION, REGION, 0, &bad), HL_INVALID); /* one region */
	assert_int_equal(hl_l2_open(path, 4 * REGION, 1000, 0, &bad), HL_INVALID);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(roundtrip_restart_corrupt),
		cmocka_unit_test(partial_region_written),
		cmocka_unit_test(eviction_and_reinsertion),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
