/* test_record.c — codecs: record headers, segment headers, index entries and hex ids round-trip,
 * and every rejection path is taken. */
#include <string.h>
#include "testutil.h"
#include "hash/hash.h"
#include "store/index.h"
#include "store/record.h"

static hl_rec_hdr sample(void)
{
	hl_rec_hdr h = {HL_REC_VERSION, HL_HASHFN_BLAKE3_256, 0, {{0}}, 1000, 1000};
	hl_hash("hello", 5, &h.id);
	return h;
}

static void record_round_trip(void **st)
{
	(void)st;
	hl_rec_hdr h = sample(), d;
	uint8_t buf[HL_REC_HDR_LEN];
	hl_rec_encode(&h, buf);
	assert_int_equal(hl_rec_decode(buf, sizeof buf, &d), 0);
	assert_memory_equal(&h.id, &d.id, sizeof h.id);
	assert_int_equal(d.stored_len, 1000);
	assert_int_equal(d.raw_len, 1000);
	h.flags = HL_REC_F_ZSTD;
	h.stored_len = 10;
	hl_rec_encode(&h, buf);
	assert_int_equal(hl_rec_decode(buf, sizeof buf, &d), 0);
	assert_int_equal(d.flags, HL_REC_F_ZSTD);
	assert_int_equal(d.stored_len, 10);
}

/* Any single flipped bit anywhere in a header is rejected. */
static void record_rejects_every_bit_flip(void **st)
{
	(void)st;
	hl_rec_hdr h = sample(), d;
	uint8_t buf[HL_REC_HDR_LEN];
	hl_rec_encode(&h, buf);
	for (int byte = 0; byte < HL_REC_HDR_LEN; byte++)
		for (int bit = 0; bit < 8; bit++) {
			buf[byte] ^= (uint8_t)(1 << bit);
			assert_int_not_equal(hl_rec_decode(buf, sizeof buf, &d), 0);
			buf[byte] ^= (uint8_t)(1 << bit);
		}
	assert_int_equal(hl_rec_decode(buf, sizeof buf, &d), 0);
}

/* Re-encodes a header with one field changed (the check stays valid). */
static int decode_with(void (*mutate)(hl_rec_hdr *))
{
	hl_rec_hdr h = sample(), d;
	uint8_t buf[HL_REC_HDR_LEN];
	mutate(&h);
	hl_rec_encode(&h, buf);
	return hl_rec_decode(buf, sizeof buf, &d);
}
static void m_version(hl_rec_hdr *h) { h->version = 2; }
static void m_hashfn(hl_rec_hdr *h) { h->hashfn = 7; }
static void m_flags(hl_rec_hdr *h) { h->flags = 0x8000; }
static void m_len_mismatch(hl_rec_hdr *h) { h->stored_len = 999; }
static void m_zstd_not_smaller(hl_rec_hdr *h) { h->flags = HL_REC_F_ZSTD; h->stored_len = h->raw_len; }
static void m_zstd_empty(hl_rec_hdr *h) { h->flags = HL_REC_F_ZSTD; h->stored_len = 0; }
static void m_huge(hl_rec_hdr *h) { h->stored_len = h->raw_len = HL_REC_MAX_LEN + 1; }

static void record_rejections(void **st)
{
	(void)st;
	assert_int_equal(decode_with(m_version), HL_VERSION);
	assert_int_equal(decode_with(m_hashfn), HL_VERSION);
	assert_int_equal(decode_with(m_flags), HL_VERSION);
	assert_int_equal(decode_with(m_len_mismatch), HL_CORRUPT);
	assert_int_equal(decode_with(m_zstd_not_smaller), HL_CORRUPT);
	assert_int_equal(decode_with(m_zstd_empty), HL_CORRUPT);
	assert_int_equal(decode_with(m_huge), HL_CORRUPT);
	hl_rec_hdr h = sample(), d;
	uint8_t buf[HL_REC_HDR_LEN];
	hl_rec_encode(&h, buf);
	for (size_t n = 0; n < HL_REC_HDR_LEN; n++)
		assert_int_equal(hl_rec_decode(buf, n, &d), HL_CORRUPT); /* short buffers */
	memset(buf, 0, sizeof buf);
	assert_int_equal(hl_rec_decode(buf, sizeof buf, &d), HL_CORRUPT);
}

static void segment_header(void **st)
{
	(void)st;
	uint8_t buf[HL_SEG_HDR_LEN];
	uint32_t no = 0;
	hl_seg_hdr_encode(42, 1700000000, buf);
	assert_int_equal(hl_seg_hdr_decode(buf, sizeof buf, &no), 0);
	assert_int_equal(no, 42);
	assert_int_equal(hl_seg_hdr_decode(buf, sizeof buf - 1, &no), HL_CORRUPT);
	for (int byte = 0; byte < HL_SEG_HDR_LEN; byte++) {
		buf[byte] ^= 0x10;
		assert_int_not_equal(hl_seg_hdr_decode(buf, sizeof buf, &no), 0);
		buf[byte] ^= 0x10;
	}
}

static void index_entry(void **st)
{
	(void)st;
	hl_idx_entry e = {7, 4096, 100, 200, HL_REC_F_ZSTD, 3, 1700000000}, d;
	uint8_t buf[HL_IDX_ENTRY_LEN];
	hl_idx_entry_encode(&e, buf);
	assert_int_equal(hl_idx_entry_decode(buf, sizeof buf, &d), 0);
	assert_int_equal(d.segment, 7);
	assert_int_equal(d.offset, 4096);
	assert_int_equal(d.stored_len, 100);
	assert_int_equal(d.raw_len, 200);
	assert_int_equal(d.flags, HL_REC_F_ZSTD);
	assert_int_equal(d.marks, 3);
	assert_int_equal(d.atime, 1700000000);
	assert_int_equal(hl_idx_entry_decode(buf, sizeof buf - 1, &d), HL_CORRUPT);
	buf[0] = 9; /* unknown entry version */
	assert_int_equal(hl_idx_entry_decode(buf, sizeof buf, &d), HL_CORRUPT);
	e.segment = 0; /* segment numbers start at 1 */
	hl_idx_entry_encode(&e, buf);
	assert_int_equal(hl_idx_entry_decode(buf, sizeof buf, &d), HL_CORRUPT);
	e.segment = 1;
	e.offset = 10; /* inside the segment header */
	hl_idx_entry_encode(&e, buf);
	assert_int_equal(hl_idx_entry_decode(buf, sizeof buf, &d), HL_CORRUPT);
}

static void hex_ids(void **st)
{
	(void)st;
	const char *hex = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"; /* BLAKE3("") */
	hl_id id, e;
	char out[HL_ID_HEX_LEN + 1];
	assert_int_equal(hl_id_parse(hex, 64, &id), 0);
	hl_hash("", 0, &e);
	assert_true(hl_id_equal(&id, &e));
	hl_id_format(&id, out);
	assert_string_equal(out, hex);
	assert_int_equal(hl_id_parse(hex, 63, &id), HL_INVALID);
	assert_int_equal(hl_id_parse(hex, 65, &id), HL_INVALID);
	assert_int_equal(hl_id_parse(NULL, 64, &id), HL_INVALID);
	char bad[65];
	memcpy(bad, hex, 65);
	bad[10] = 'A'; /* uppercase: one id, one spelling */
	assert_int_equal(hl_id_parse(bad, 64, &id), HL_INVALID);
	bad[10] = 'g';
	assert_int_equal(hl_id_parse(bad, 64, &id), HL_INVALID);
	bad[10] = 0;
	assert_int_equal(hl_id_parse(bad, 64, &id), HL_INVALID);
}

/* Streaming and one-shot hashing agree at every split point around chunk boundaries. */
static void streaming_hash(void **st)
{
	(void)st;
	static uint8_t data[5000];
	uint64_t seed = 1;
	tu_fill(&seed, data, sizeof data);
	hl_id one, two;
	hl_hash(data, sizeof data, &one);
	for (size_t split = 0; split <= sizeof data; split += 97) {
		hl_hasher *h = hl_hasher_new();
		assert_non_null(h);
		hl_hasher_update(h, data, split);
		hl_hasher_update(h, data + split, sizeof data - split);
		hl_hasher_final(h, &two);
		hl_hasher_free(h);
		assert_true(hl_id_equal(&one, &two));
	}
}

static void strerror_names_everything(void **st)
{
	(void)st;
	for (int e = HL_NOTFOUND; e < HL_ERR_LAST_; e++)
		assert_string_not_equal(hl_strerror(e), "unknown error");
	assert_string_equal(hl_strerror(0), "success");
	assert_string_equal(hl_strerror(-1), "unknown error");
	assert_non_null(hl_strerror(5)); /* errno EIO */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(record_round_trip),
		cmocka_unit_test(record_rejects_every_bit_flip),
		cmocka_unit_test(record_rejections),
		cmocka_unit_test(segment_header),
		cmocka_unit_test(index_entry),
		cmocka_unit_test(hex_ids),
		cmocka_unit_test(streaming_hash),
		cmocka_unit_test(strerror_names_everything),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
