/* fuzz_s3.c — fuzz target for what the S3 backend parses from a bucket's answers: a
 * ListObjectsV2 page (keys, truncation, continuation token) and a ref body. Never crash or read
 * out of bounds; every key handed out fits its buffer and is NUL-terminated; a continuation token
 * is only reported with a truncated page. */
#include <stdlib.h>
#include <string.h>
#include "remote/s3.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int check_key(const char *key, size_t len, void *ctx)
{
	(void)ctx;
	if (strlen(key) != len) /* an entity may decode to NUL only as &#0;, which is refused */
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
	return 0;
}
