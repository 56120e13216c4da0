/* fuzz_manifest.c — fuzz target for the manifest decoder: never crash or read out of bounds, and
 * whatever decodes re-encodes to exactly the same bytes (one blob, one encoding). */
#include <stdlib.h>
#include <string.h>
#include "dedup/manifest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_manifest m;
	if (hl_manifest_decode(data, size, &m) != 0)
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
