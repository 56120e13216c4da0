/* test_chunker.c — FastCDC chunk boundaries: parameter checks, edge sizes, sizes within bounds and
 * around the average, the same cut from a window of max bytes as from the whole rest, and edits
 * (insert, delete, overwrite one byte in the middle of a large file) that change only one or two
 * chunks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "dedup/chunker.h"

static hl_cdc cdc;

static int setup(void **state)
{
	return hl_cdc_init(&cdc, HL_CDC_MIN, HL_CDC_AVG, HL_CDC_MAX);
}

static void params(void **state)
{
	hl_cdc c;
	assert_int_equal(hl_cdc_init(&c, 16384, 65536, 262144), 0);
	assert_int_equal(hl_cdc_init(&c, 2048, 8192, 65536), 0);
	assert_int_equal(hl_cdc_init(&c, 16384, 65535, 262144), HL_INVALID); /* avg not a power of two */
	assert_int_equal(hl_cdc_init(&c, 65536, 65536, 262144), HL_INVALID);  /* min = avg */
	assert_int_equal(hl_cdc_init(&c, 16384, 65536, 65536), HL_INVALID);   /* max = avg */
	assert_int_equal(hl_cdc_init(&c, 32, 64, 128), HL_INVALID);           /* min too small */
	assert_int_equal(hl_cdc_init(&c, 16384, 65536, 128u << 20), HL_INVALID);
}

static void edge_sizes(void **state)
{
	size_t n = HL_CDC_MAX + 1;
	uint8_t *d = malloc(n);
	uint64_t seed = 1;
	tu_fill(&seed, d, n);
	assert_int_equal(hl_cdc_next(&cdc, d, 0), 0);
	assert_int_equal(hl_cdc_next(&cdc, d, 1), 1);
	assert_int_equal(hl_cdc_next(&cdc, d, HL_CDC_MIN - 1), HL_CDC_MIN - 1);
	assert_int_equal(hl_cdc_next(&cdc, d, HL_CDC_MIN), HL_CDC_MIN);
	size_t c = hl_cdc_next(&cdc, d, HL_CDC_MAX);
	assert_true(c > HL_CDC_MIN && c <= HL_CDC_MAX);
	c = hl_cdc_next(&cdc, d, HL_CDC_MAX + 1);
	assert_true(c > HL_CDC_MIN && c <= HL_CDC_MAX);
	/* bytes with no cut point at all (a constant run) are cut at max */
	memset(d, 0, n);
	c = hl_cdc_next(&cdc, d, n);
	assert_true(c > HL_CDC_MIN && c <= HL_CDC_MAX);
	free(d);
}

/* Splits d into chunks, storing their ids; returns the count. */
static size_t split(const uint8_t *d, size_t n, hl_id *ids, size_t cap, size_t *sizes)
{
	size_t k = 0;
	for (size_t off = 0; off < n;) {
		size_t c = hl_cdc_next(&cdc, d + off, n - off);
		assert_true(c > 0);
		assert_true(k < cap);
		if (sizes)
			sizes[k] = c;
		hl_hash(d + off, c, &ids[k++]);
		off += c;
	}
	return k;
}

static void sizes_and_windows(void **state)
{
	size_t n = 32u << 20;
	uint8_t *d = malloc(n);
	uint64_t seed = 2;
	tu_fill(&seed, d, n);
	size_t cap = n / HL_CDC_MIN + 1, *sizes = malloc(cap * sizeof(size_t));
	hl_id *ids = malloc(cap * sizeof(hl_id));
	size_t k = split(d, n, ids, cap, sizes), off = 0;
	for (size_t i = 0; i < k; i++) {
		if (i + 1 < k)
			assert_true(sizes[i] > HL_CDC_MIN && sizes[i] <= HL_CDC_MAX);
		/* a window of max bytes gives the same cut as the whole rest */
		size_t w = n - off < HL_CDC_MAX ? n - off : HL_CDC_MAX;
		assert_int_equal(hl_cdc_next(&cdc, d + off, w), sizes[i]);
		off += sizes[i];
	}
	double mean = (double)n / (double)k;
	printf("# 32 MiB random: %zu chunks, mean %.0f bytes (avg parameter %u)\n", k, mean, HL_CDC_AVG);
	assert_true(mean > 0.6 * HL_CDC_AVG && mean < 1.6 * HL_CDC_AVG);
	free(sizes);
	free(ids);
	free(d);
}

static int contains(const hl_id *set, size_t n, const hl_id *id)
{
	for (size_t i = 0; i < n; i++)
		if (hl_id_equal(&set[i], id))
			return 1;
	return 0;
}

/* Chunks of b that are not chunks of a. */
static size_t changed(const uint8_t *a, size_t na, const uint8_t *b, size_t nb)
{
	size_t cap = (na > nb ? na : nb) / HL_CDC_MIN + 2;
	hl_id *ia = malloc(cap * sizeof(hl_id)), *ib = malloc(cap * sizeof(hl_id));
	size_t ka = split(a, na, ia, cap, NULL), kb = split(b, nb, ib, cap, NULL), diff = 0;
	for (size_t i = 0; i < kb; i++)
		diff += !contains(ia, ka, &ib[i]);
	free(ia);
	free(ib);
	return diff;
}

static void edits_touch_one_or_two_chunks(void **state)
{
	size_t n = 8u << 20;
	uint8_t *a = malloc(n), *b = malloc(n + 1);
	for (uint64_t trial = 0; trial < 8; trial++) {
		uint64_t seed = 100 + trial;
		tu_fill(&seed, a, n);
		size_t at = n / 2 + (size_t)(tu_rand(&seed) % 4096);
		/* insert one byte */
		memcpy(b, a, at);
		b[at] = 0x5a;
		memcpy(b + at + 1, a + at, n - at);
		size_t ins = changed(a, n, b, n + 1);
		/* delete one byte */
		memcpy(b, a, at);
		memcpy(b + at, a + at + 1, n - at - 1);
		size_t del = changed(a, n, b, n - 1);
		/* overwrite one byte */
		memcpy(b, a, n);
		b[at] ^= 0xff;
		size_t ovw = changed(a, n, b, n);
		printf("# trial %llu: insert changed %zu chunk(s), delete %zu, overwrite %zu\n",
		       (unsigned long long)trial, ins, del, ovw);
		assert_true(ins >= 1 && ins <= 2);
		assert_true(del >= 1 && del <= 2);
		assert_true(ovw >= 1 && ovw <= 2);
	}
	free(a);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(params),
		cmocka_unit_test_setup(edge_sizes, setup),
		cmocka_unit_test_setup(sizes_and_windows, setup),
		cmocka_unit_test_setup(edits_touch_one_or_two_chunks, setup),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
