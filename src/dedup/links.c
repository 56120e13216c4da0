/* links.c — the objects a tree or a manifest names (see links.h). */
#include <string.h>
#include "dedup/links.h"
#include "dedup/manifest.h"
#include "dedup/tree.h"
#include "store/record.h"

int hl_links_magic(const uint8_t *buf, size_t len)
{
	return hl_rec_links_magic(buf, len);
}

int hl_links_each(const uint8_t *buf, size_t len, hl_link_fn fn, void *ctx)
{
	if (!hl_links_magic(buf, len))
		return 0;
	int err;
	if (!memcmp(buf, "HLTR", 4)) {
		uint32_t count;
		if ((err = hl_tree_check(buf, len, &count)) != 0)
			return 0;
		size_t pos = 0;
		hl_tree_entry e;
		while (hl_tree_next(buf, len, &pos, &e))
			if ((err = fn(&e.id, ctx)) != 0)
				return err;
		return 0;
	}
	hl_manifest m;
	if ((err = hl_manifest_decode(buf, len, &m)) != 0)
		return 0;
	for (uint32_t i = 0; i < m.count; i++) {
		hl_chunk_ref c;
		hl_manifest_chunk(&m, i, &c);
		if ((err = fn(&c.id, ctx)) != 0)
			return err;
	}
	return 0;
}
