/* fuzz_s3.c — fuzz target for what the S3 backend parses from a bucket's answers: a
 * ListObjectsV2 page (keys and sizes, truncation, continuation token), a ref body and a pointer
 * body (the large-blob map and kv entries: one text per value, so what parses re-encodes to the
 * same bytes). Never crash or read
 * out of bounds; every key handed out fits its buffer and is NUL-terminated; a continuation token
 * is only reported with a truncated page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "remote/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_key(const hl_s3_entry *e, void *ctx)
{
	(void)ctx;
	if (strlen(e->key) != e->len) /* an entity may decode to NUL only as &#0;, which is refused */
		abort();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char token[64];
	int truncated = 0;
	memset(token, 0x55, sizeof token);
	if (hl_s3_parse_list((const char *)data, size, check_key, NULL, &truncated, token, sizeof token) == 0 &&
	    truncated && !memchr(token, 0, sizeof token))
		abort();
	int live = -1;
	hl_id id;
	if (hl_s3_parse_ref(data, size, &live, &id) == 0 && live != 0 && live != 1)
		abort();
	int64_t ms;
	if (hl_s3_parse_time((const char *)data, size, &ms) == 0 && ms < 0)
		abort();
	uint64_t n;
	if (hl_s3_parse_pointer(data, size, &id, &n) == 0) {
		char again[HL_ID_HEX_LEN + 24];
		hl_id_format(&id, again);
		int len = snprintf(again + HL_ID_HEX_LEN, sizeof again - HL_ID_HEX_LEN, "\n%llu\n", (unsigned long long)n);
		if ((size_t)(HL_ID_HEX_LEN + len) != size || memcmp(again, data, size))
			abort();
	}
	return 0;
}
