/* fuzz_tree.c — fuzz target for the tree decoder: never crash or read out of bounds, and whatever
 * checks re-encodes to exactly the same bytes (one directory, one encoding). */
#include <stdlib.h>
#include <string.h>
#include "dedup/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t n;
	if (hl_tree_check(data, size, &n) != 0)
		return 0;
	hl_tree_entry *e = malloc((n ? n : 1) * sizeof(*e));
	uint8_t *again = malloc(size);
	size_t pos = 0, i = 0, len = 0;
	if (!e || !again)
		__builtin_trap();
	while (i < n && hl_tree_next(data, size, &pos, &e[i]))
		i++;
	if (i != n || hl_tree_next(data, size, &pos, &e[0]) ||
	    hl_tree_encode(e, n, again, size, &len) != 0 || len != size || memcmp(again, data, size))
		__builtin_trap();
	free(again);
	free(e);
	return 0;
}
