/* test_manifest.c — the manifest encoding: round trip, the exact size, and every rejection path
 * of the decoder (which reads only the bytes it is given). */
#include <stdlib.h>
#include <string.h>
#include "testutil.h"
#include "base/endian.h"
#include "dedup/manifest.h"

static size_t make(uint8_t *out, size_t cap, size_t n)
{
	hl_chunk_ref c[8];
	for (size_t i = 0; i < n; i++) {
		uint64_t k = i;
		hl_hash(&k, sizeof k, &c[i].id);
		c[i].len = (uint32_t)(1000 * (i + 1));
	}
	size_t len = 0;
	assert_int_equal(hl_manifest_encode(c, n, out, cap, &len), 0);
	return len;
}

static void round_trip(void **state)
{
	uint8_t buf[512];
	size_t len = make(buf, sizeof buf, 5);
	assert_int_equal(len, hl_manifest_size(5));
	assert_int_equal(len, 24 + 5 * 36);
	hl_manifest m;
	assert_int_equal(hl_manifest_decode(buf, len, &m), 0);
	assert_int_equal(m.count, 5);
	assert_int_equal(m.total, 1000 + 2000 + 3000 + 4000 + 5000);
	for (uint32_t i = 0; i < 5; i++) {
		hl_chunk_ref c;
		hl_manifest_chunk(&m, i, &c);
		uint64_t k = i;
		hl_id want;
		hl_hash(&k, sizeof k, &want);
		assert_true(hl_id_equal(&c.id, &want));
		assert_int_equal(c.len, 1000 * (i + 1));
	}
}

static void encode_rejects(void **state)
{
	uint8_t buf[512];
	size_t len;
	hl_chunk_ref c[2] = {{.len = 10}, {.len = 0}};
	assert_int_equal(hl_manifest_encode(c, 0, buf, sizeof buf, &len), HL_INVALID);   /* no chunks */
	assert_int_equal(hl_manifest_encode(c, 2, buf, sizeof buf, &len), HL_INVALID);   /* empty chunk */
	c[1].len = HL_MANIFEST_MAX_CHUNK + 1;
	assert_int_equal(hl_manifest_encode(c, 2, buf, sizeof buf, &len), HL_INVALID);   /* oversized */
	c[1].len = 5;
	assert_int_equal(hl_manifest_encode(c, 2, buf, 24 + 36, &len), HL_TOOBIG);      /* short buffer */
	assert_int_equal(hl_manifest_encode(c, 2, buf, 24 + 72, &len), 0);
}

/* Decodes a copy of good[0..len) with one change applied, expecting err. */
static void expect(const uint8_t *good, size_t len, size_t off, uint8_t val, int err)
{
	uint8_t *b = malloc(len);
	memcpy(b, good, len);
	if (off < len)
		b[off] = val;
	hl_manifest m;
	assert_int_equal(hl_manifest_decode(b, len, &m), err);
	free(b);
}

static void decode_rejects(void **state)
{
	uint8_t good[512];
	size_t len = make(good, sizeof good, 3);
	hl_manifest m;
	assert_int_equal(hl_manifest_decode(good, 0, &m), HL_INVALID);
	assert_int_equal(hl_manifest_decode(good, 23, &m), HL_INVALID);      /* shorter than a header */
	assert_int_equal(hl_manifest_decode(good, len - 1, &m), HL_INVALID); /* truncated entry */
	assert_int_equal(hl_manifest_decode(good, len - 36, &m), HL_INVALID); /* a whole entry short */
	uint8_t longer[600];
	memcpy(longer, good, len);
	memset(longer + len, 0, 36);
	assert_int_equal(hl_manifest_decode(longer, len + 36, &m), HL_INVALID); /* trailing entry */
	expect(good, len, 0, 'X', HL_INVALID);  /* magic */
	expect(good, len, 4, 2, HL_VERSION);    /* newer version */
	expect(good, len, 4, 0, HL_INVALID);    /* version 0 */
	expect(good, len, 5, 2, HL_VERSION);    /* unknown hash function */
	expect(good, len, 5, 0, HL_INVALID);
	expect(good, len, 6, 1, HL_INVALID);    /* reserved */
	expect(good, len, 20, 1, HL_INVALID);   /* reserved */
	expect(good, len, 8, good[8] ^ 1, HL_INVALID);  /* total disagrees with the chunks */
	expect(good, len, 16, 4, HL_INVALID);   /* count disagrees with the size */
	expect(good, len, 16, 0, HL_INVALID);   /* count zero */
	/* a zero-length chunk, and one over the maximum */
	uint8_t *b = malloc(len);
	memcpy(b, good, len);
	hl_put_le32(b + 24 + 32, 0);
	assert_int_equal(hl_manifest_decode(b, len, &m), HL_INVALID);
	hl_put_le32(b + 24 + 32, HL_MANIFEST_MAX_CHUNK + 1);
	assert_int_equal(hl_manifest_decode(b, len, &m), HL_INVALID);
	free(b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(round_trip),
		cmocka_unit_test(encode_rejects),
		cmocka_unit_test(decode_rejects),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
