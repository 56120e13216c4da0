/* fuzz_manifest.c — fuzz target for the manifest decoder: never crash or read out of bounds, and
 * whatever decodes re-encodes to exactly the same bytes (one blob, one encoding); the collector's
 * view of what it names (hl_links_each) is its chunks exactly, and nothing for anything else. */
#include <stdlib.h>
#include <string.h>
#include "dedup/links.h"
#include "dedup/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_link(const hl_id *id, void *ctx)
{
	(void)id;
	++*(size_t *)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_manifest m;
	size_t links = 0;
	int links_err = hl_links_each(data, size, count_link, &links);
	int decoded = hl_manifest_decode(data, size, &m) == 0;
	if (links_err || (size >= 4 && !memcmp(data, "HLMF", 4) && links != (decoded ? m.count : 0)))
		__builtin_trap();
	if (!decoded)
		return 0;
	hl_chunk_ref *c = malloc(m.count * sizeof(*c));
	if (!c)
		return 0;
	for (uint32_t i = 0; i < m.count; i++)
		hl_manifest_chunk(&m, i, &c[i]);
	uint8_t *again = malloc(size);
	size_t len = 0;
	if (!again || hl_manifest_encode(c, m.count, again, size, &len) != 0 || len != size ||
	    memcmp(again, data, size) != 0)
		__builtin_trap();
	free(again);
	free(c);
	return 0;
}
