/* hash.c — BLAKE3-256 ids: one-shot and streaming hashing, hex parsing and formatting. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <blake3.h>
#include "hash/hash.h"
#include "base/alloc.h"

/* BLAKE3's C implementation detects the CPU's SIMD features on first use into a plain global;
 * two threads hashing first at once race on it (benign, but a data race). Detected once here,
 * before any caller's hash, every later read happens after the write. */
static pthread_once_t features_once = PTHREAD_ONCE_INIT;
static void detect_features(void)
{
	blake3_hasher h;
	uint8_t out[HL_ID_LEN];
	blake3_hasher_init(&h);
	blake3_hasher_update(&h, "", 0);
	blake3_hasher_finalize(&h, out, sizeof out);
}

struct hl_hasher {
	blake3_hasher h;
};

void hl_hash_two(const void *a, size_t alen, const void *b, size_t blen, hl_id *out)
{
	pthread_once(&features_once, detect_features);
	blake3_hasher h;
	blake3_hasher_init(&h);
	blake3_hasher_update(&h, a, alen);
	blake3_hasher_update(&h, b, blen);
	blake3_hasher_finalize(&h, out->b, HL_ID_LEN);
}

void hl_hash(const void *data, size_t len, hl_id *out)
{
	pthread_once(&features_once, detect_features);
	blake3_hasher h;
	blake3_hasher_init(&h);
	blake3_hasher_update(&h, data, len);
	blake3_hasher_finalize(&h, out->b, HL_ID_LEN);
}

hl_hasher *hl_hasher_new(void)
{
	pthread_once(&features_once, detect_features);
	hl_hasher *h = hl_malloc(sizeof(*h));
	if (h)
		blake3_hasher_init(&h->h);
	return h;
}

void hl_hasher_update(hl_hasher *h, const void *data, size_t len) { blake3_hasher_update(&h->h, data, len); }
void hl_hasher_final(const hl_hasher *h, hl_id *out) { blake3_hasher_finalize(&h->h, out->b, HL_ID_LEN); }
void hl_hasher_free(hl_hasher *h) { free(h); }

/* A hex digit's value with bit 4 set (0x10); 0 for anything else (uppercase is rejected on
 * purpose: one id, one spelling). A table, and one check for the whole id (bit 4 in every digit):
 * every request parses an id, and this took a third of the instructions of the branchy loop. */
static const uint8_t hex_digit[256] = {
	['0'] = 0x10, ['1'] = 0x11, ['2'] = 0x12, ['3'] = 0x13, ['4'] = 0x14, ['5'] = 0x15, ['6'] = 0x16,
	['7'] = 0x17, ['8'] = 0x18, ['9'] = 0x19, ['a'] = 0x1a, ['b'] = 0x1b, ['c'] = 0x1c, ['d'] = 0x1d,
	['e'] = 0x1e, ['f'] = 0x1f,
};

int hl_id_parse(const char *hex, size_t len, hl_id *out)
{
	if (!hex || len != HL_ID_HEX_LEN)
		return HL_INVALID;
	const uint8_t *h = (const uint8_t *)hex;
	hl_id id;
	unsigned all = 0x10;
	for (size_t i = 0; i < HL_ID_LEN; i++) {
		unsigned hi = hex_digit[h[2 * i]], lo = hex_digit[h[2 * i + 1]];
		all &= hi & lo;
		id.b[i] = (uint8_t)(hi << 4 | (lo & 15));
	}
	if (!all)
		return HL_INVALID;
	*out = id;
	return 0;
}

void hl_id_format(const hl_id *id, char out[HL_ID_HEX_LEN + 1])
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < HL_ID_LEN; i++) {
		out[2 * i] = digits[id->b[i] >> 4];
		out[2 * i + 1] = digits[id->b[i] & 15];
	}
	out[HL_ID_HEX_LEN] = 0;
}

int hl_id_equal(const hl_id *a, const hl_id *b) { return hl_id_cmp(a, b) == 0; }
