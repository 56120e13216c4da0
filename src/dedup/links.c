/* links.c — the objects a tree, a manifest or a commit names (see links.h). */
#include <string.h>
#include "dedup/commit.h"
#include "dedup/links.h"
#include "dedup/manifest.h"
#include "dedup/tree.h"
#include "store/record.h"

int hl_links_magic(const uint8_t *buf, size_t len)
{
	return hl_rec_links_magic(buf, len);
}

enum { WITH_PARENTS = 1 };

static int commit_links(const uint8_t *buf, size_t len, const hl_id *id,
                        const hl_forgotten *forgotten, int what, hl_link_fn fn, void *ctx)
{
	hl_id tree, parents[HL_COMMIT_PARENTS_MAX];
	unsigned n;
	if (hl_commit_links(buf, len, &tree, parents, &n) != 0)
		return 0;
	unsigned weak = forgotten ? hl_forgotten_flags(forgotten, id) : 0;
	int err = 0;
	if (!(weak & HL_FORGOT_TREE))
		err = fn(&tree, ctx);
	for (unsigned i = 0; !err && (what & WITH_PARENTS) && !(weak & HL_FORGOT_PARENTS) && i < n; i++)
		err = fn(&parents[i], ctx);
	return err;
}

static int links(const uint8_t *buf, size_t len, const hl_id *id, const hl_forgotten *forgotten,
                 int what, hl_link_fn fn, void *ctx)
{
	if (!hl_links_magic(buf, len))
		return 0;
	int err;
	if (!memcmp(buf, "HLCM", 4))
		return commit_links(buf, len, id, forgotten, what, fn, ctx);
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

int hl_links_each(const uint8_t *buf, size_t len, hl_link_fn fn, void *ctx)
{
	return links(buf, len, NULL, NULL, WITH_PARENTS, fn, ctx);
}

int hl_links_each_kept(const uint8_t *buf, size_t len, const hl_id *id, const hl_forgotten *forgotten,
                       hl_link_fn fn, void *ctx)
{
	return links(buf, len, id, forgotten, WITH_PARENTS, fn, ctx);
}

int hl_links_needed_each(const uint8_t *buf, size_t len, hl_link_fn fn, void *ctx)
{
	return links(buf, len, NULL, NULL, 0, fn, ctx);
}
