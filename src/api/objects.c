/* objects.c — the object calls of include/helios.h: put (one, expected, batch, with the
 * completeness rule for trees and manifests), get, has, stat, iterate. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"
#include "base/log.h"
#include "hash/hash.h"
#include "cache/l1.h"
#include "cache/l2.h"
#include "coord/coord.h"
#include "dedup/fleetgc.h"
#include "dedup/gc.h"
#include "dedup/links.h"
#include "integrity/bscrub.h"
#include "integrity/scrub.h"
#include "remote/hremote.h"
#include "remote/s3.h"
#include "store/names.h"
#include "store/store.h"
#include "tier/fleet.h"
#include "tier/tier.h"
#include "api/api.h"
#include "base/alloc.h"

/* ---- completeness: a tree or manifest is stored only when what it names is ---- */

typedef struct completeness {
	hl_store *s;
	hl_id *batch; /* ids stored with it, sorted */
	size_t n;
} completeness;

static int cmp_idp(const void *a, const void *b)
{
	return memcmp(a, b, HL_ID_LEN);
}

static int child_present(const hl_id *child, void *ctx)
{
	completeness *c = ctx;
	if (c->n && bsearch(child, c->batch, c->n, sizeof(hl_id), cmp_idp))
		return 0;
	int err = hl_has(c->s, child); /* holds it: a running collection keeps it */
	return err == HL_NOTFOUND ? HL_INCOMPLETE : err;
}

/* HL_INCOMPLETE if an item names an object neither stored nor among the items (whose ids are
 * computed). */
static int check_complete(hl_store *s, const hl_put_item *items, size_t n)
{
	completeness c = {s, NULL, 0};
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		if (!hl_links_magic(items[i].data, items[i].len))
			continue;
		if (!c.batch && n > 1) {
			if (!(c.batch = hl_malloc(n * sizeof(hl_id))))
				return ENOMEM;
			for (size_t j = 0; j < n; j++)
				c.batch[j] = items[j].id;
			qsort(c.batch, n, sizeof(hl_id), cmp_idp);
			c.n = n;
		}
		err = hl_links_needed_each(items[i].data, items[i].len, child_present, &c);
	}
	free(c.batch);
	return err;
}

static int any_links(const hl_put_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		if (hl_links_magic(items[i].data, items[i].len))
			return 1;
	return 0;
}

static int any_large(const hl_store *s, const hl_put_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		if (hl_large_wanted(s, items[i].data, items[i].len))
			return 1;
	return 0;
}

int hl_put_batch(hl_store *s, hl_put_item *items, size_t n)
{
	int err = hl_api_writable(s);
	int links = any_links(items, n), large = any_large(s, items, n);
	if (err || (!links && !large))
		return err ? err : hl_coord_put_batch(s->coord, items, n);
	/* hashed once, here: the completeness check and the large-blob map need the ids */
	if ((err = hl_coord_hash_items(s->coord, items, n)) != 0 ||
	    (links && (err = check_complete(s, items, n)) != 0))
		return err;
	return large ? hl_large_put_hashed(s, items, n) : hl_coord_put_hashed(s->coord, items, n);
}

/* The completeness check of a single put (only trees and manifests are looked at). */
static int check_one(hl_store *s, const void *data, size_t len, const hl_id *expect)
{
	if (!data || !hl_links_magic(data, len))
		return 0;
	hl_put_item it = {.data = data, .len = len};
	hl_hash(data, len, &it.id);
	if (expect && !hl_id_equal(expect, &it.id))
		return HL_MISMATCH;
	return check_complete(s, &it, 1);
}

int hl_api_put(hl_store *s, const hl_id *expect, const void *data, size_t len, hl_id *id,
               int *created)
{
	int err = hl_api_writable(s);
	hl_id got; /* equal to *expect when stored */
	if (!err && hl_large_wanted(s, data, len) && (id || expect))
		return hl_large_put(s, expect, data, len, id ? id : &got, created);
	if (!err && len <= s->max_object_size)
		err = check_one(s, data, len, expect);
	return err ? err : hl_coord_put(s->coord, expect, data, len, id, created);
}

int hl_put(hl_store *s, const void *data, size_t len, hl_id *id, int *created)
{
	return hl_api_put(s, NULL, data, len, id, created);
}

int hl_put_expect(hl_store *s, const hl_id *id, const void *data, size_t len, int *created)
{
	return id ? hl_api_put(s, id, data, len, NULL, created) : HL_INVALID;
}

/* One call down: the coordinator's tier resolves large blobs and repairs corrupt objects
 * (dedup/resolve.h). */
int hl_get(hl_store *s, const hl_id *id, hl_buf **out)
{
	return id && out ? hl_coord_get(s->coord, id, out) : HL_INVALID;
}

int hl_get_into(hl_store *s, const hl_id *id, void *dst, size_t cap, size_t *len)
{
	if (!id || !len || (!dst && cap))
		return HL_INVALID;
	return hl_coord_get_into(s->coord, id, dst, cap, len);
}

int hl_has(hl_store *s, const hl_id *id)
{
	return id ? hl_api_has(s, id) : HL_INVALID;
}

int hl_api_has(hl_store *s, const hl_id *id)
{
	return hl_coord_has(s->coord, id); /* large blobs too: dedup/resolve.h */
}

int hl_stat_object(hl_store *s, const hl_id *id, hl_stat *out)
{
	if (!id || !out)
		return HL_INVALID;
	hl_buf *b;
	if ((s->be.ops->caps & HL_BE_SHARED) && s->l1 && hl_l1_get(s->l1, id, &b) == 0) {
		*out = (hl_stat){.size = hl_buf_len(b)}; /* a cached copy: no round trip */
		hl_buf_unref(b);
		return 0;
	}
	int err = s->be.ops->stat(s->be.self, id, out);
	hl_id m;
	uint64_t size;
	if (err != HL_NOTFOUND || !s->be.ops->large_get ||
	    (err = s->be.ops->large_get(s->be.self, id, &m, &size)) != 0)
		return err;
	hl_stat ms;
	if ((err = s->be.ops->stat(s->be.self, &m, &ms)) != 0)
		return err == HL_NOTFOUND ? HL_CORRUPT : err; /* mapped to a manifest that is gone */
	*out = ms;
	out->size = size;
	out->flags |= HL_STAT_CHUNKED;
	return 0;
}

typedef struct iter_large {
	hl_iter_fn fn;
	void *ctx;
} iter_large;

static int each_large(const hl_id *id, const hl_id *mid, uint64_t size, void *arg)
{
	iter_large *it = arg;
	hl_stat st = {.size = size, .flags = HL_STAT_CHUNKED};
	return it->fn(id, &st, it->ctx);
}

int hl_iterate(hl_store *s, hl_iter_fn fn, void *ctx)
{
	if (!fn || !s->be.ops->list)
		return HL_INVALID;
	int err = s->be.ops->list(s->be.self, fn, ctx);
	iter_large it = {fn, ctx};
	return err || !s->be.ops->large_each ? err : s->be.ops->large_each(s->be.self, each_large, &it);
}
