/* fuzz_tree.c — fuzz target for the tree decoder: never crash or read out of bounds, and whatever
 * checks re-encodes to exactly the same bytes (one directory, one encoding); the collector's view
 * of what it names (hl_links_each) and hl_tree_parse see exactly its entries, and a buffer that
 * is no valid tree names nothing. */
#include <stdlib.h>
#include <string.h>
#include "dedup/links.h"
#include "dedup/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_link(const hl_id *id, void *ctx)
{
	(void)id;
	++*(size_t *)ctx;
	return 0;
}

static int count_entry(const hl_tree_entry *e, void *ctx)
{
	(void)e;
	++*(size_t *)ctx;
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint32_t n;
	size_t links = 0, entries = 0;
	int checked = hl_tree_check(data, size, &n) == 0;
	int parsed = hl_tree_parse(data, size, count_entry, &entries);
	if (hl_links_each(data, size, count_link, &links) != 0 || (checked != (parsed == 0)) ||
	    (size >= 4 && !memcmp(data, "HLTR", 4) && links != (checked ? n : 0)) ||
	    (checked && entries != n))
		__builtin_trap();
	if (!checked)
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
