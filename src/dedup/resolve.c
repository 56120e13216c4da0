/* resolve.c — the resolving tier (resolve.h): whole objects from the tier below, large blobs
 * assembled from their chunks and verified whole, corrupt objects repaired once and read again. */
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include "dedup/resolve.h"
#include "base/alloc.h"
#include "base/buf.h"
#include "base/log.h"

struct hl_resolver {
	hl_tier below;
	hl_backend be;
	hl_l1 *l1;
	hl_repair_fn repair;
	void *repair_ctx;
};

/* From the tier below; a corrupt copy is repaired once (when a source is configured) and read
 * again. */
static int get_below(hl_resolver *r, const hl_id *id, hl_buf **out)
{
	int err = r->below.ops->get(r->below.self, id, out);
	if (err == HL_CORRUPT && r->repair && r->repair(r->repair_ctx, id) == 0)
		err = r->below.ops->get(r->below.self, id, out);
	return err;
}

/* A part of a large blob: from the L1 when it is there, else from below (then kept in the L1,
 * unless scan); HL_NOTFOUND when it is gone (see part_gone). */
static int get_part(hl_resolver *r, const hl_id *id, int scan, hl_buf **out)
{
	if (r->l1 && hl_l1_get(r->l1, id, out) == 0)
		return 0;
	int err = get_below(r, id, out);
	if (!err && r->l1 && !scan)
		hl_l1_put(r->l1, id, *out); /* verified below */
	return err;
}

/* What a part of blob id that is gone means: the blob is damaged (HL_CORRUPT), unless the blob
 * itself is gone too — a collection took it between the read of its map and of the part
 * (HL_NOTFOUND, as if the read had come a moment later). */
static int part_gone(hl_resolver *r, const hl_id *id)
{
	hl_id mid;
	uint64_t size;
	return r->be.ops->large_get(r->be.self, id, &mid, &size) == HL_NOTFOUND ? HL_NOTFOUND : HL_CORRUPT;
}

static void log_damage(const hl_id *id, int err)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	hl_log(HL_LOG_ERROR, "large blob %s: %s", hex, hl_strerror(err));
}

int hl_resolve_manifest(hl_resolver *r, const hl_id *id, hl_buf **mb, hl_manifest *m,
                        uint64_t *size)
{
	hl_id mid;
	if (!r->be.ops || !r->be.ops->large_get)
		return HL_NOTFOUND;
	int err = r->be.ops->large_get(r->be.self, id, &mid, size);
	if (err)
		return err;
	if ((err = get_part(r, &mid, 0, mb)) != 0) {
		if (err == HL_NOTFOUND && (err = part_gone(r, id)) == HL_NOTFOUND)
			return err;
		log_damage(id, err);
		return err;
	}
	if (hl_manifest_decode(hl_buf_data(*mb), hl_buf_len(*mb), m) || m->total != *size) {
		hl_buf_unref(*mb);
		*mb = NULL;
		log_damage(id, HL_CORRUPT);
		return HL_CORRUPT;
	}
	return 0;
}

/* A chunk of a blob (HL_NOTFOUND when it is gone). */
static int chunk_of(hl_resolver *r, const hl_chunk_ref *c, int scan, hl_buf **out)
{
	int err = get_part(r, &c->id, scan, out);
	if (!err && hl_buf_len(*out) != c->len) {
		hl_buf_unref(*out);
		err = HL_CORRUPT;
	}
	return err;
}

int hl_resolve_chunk(hl_resolver *r, const hl_chunk_ref *c, int scan, hl_buf **out)
{
	int err = chunk_of(r, c, scan, out);
	return err == HL_NOTFOUND ? HL_CORRUPT : err;
}

int hl_resolve_large(hl_resolver *r, const hl_id *id, hl_buf **out)
{
	hl_buf *mb;
	hl_manifest m;
	uint64_t size;
	int err = hl_resolve_manifest(r, id, &mb, &m, &size);
	if (err)
		return err;
	hl_buf *b = size <= SIZE_MAX ? hl_buf_alloc((size_t)size) : NULL;
	if (!b) {
		hl_buf_unref(mb);
		return ENOMEM;
	}
	uint8_t *dst = hl_buf_wdata(b);
	for (uint32_t i = 0; !err && i < m.count; i++) {
		hl_chunk_ref c;
		hl_buf *cb;
		hl_manifest_chunk(&m, i, &c);
		if ((err = chunk_of(r, &c, 0, &cb)) == 0) {
			memcpy(dst, hl_buf_data(cb), c.len), dst += c.len;
			hl_buf_unref(cb);
		} else if (err == HL_NOTFOUND) {
			err = part_gone(r, id);
		}
	}
	hl_buf_unref(mb);
	hl_id check;
	if (!err) {
		hl_hash(hl_buf_data(b), hl_buf_len(b), &check);
		if (!hl_id_equal(&check, id))
			err = HL_CORRUPT;
	}
	if (err) {
		if (err == HL_CORRUPT)
			log_damage(id, err);
		hl_buf_unref(b);
		return err;
	}
	*out = b;
	return 0;
}

static int r_get(void *self, const hl_id *id, hl_buf **out)
{
	hl_resolver *r = self;
	int err = get_below(r, id, out);
	return err == HL_NOTFOUND ? hl_resolve_large(r, id, out) : err;
}

static int r_get_whole(void *self, const hl_id *id, hl_buf **out)
{
	return get_below(self, id, out);
}

/* A large blob is there when its map, its manifest and every chunk the manifest lists are, each
 * relied on (held against a running collection, as has() does an object). A map is made only
 * with its parts pinned and present (api/large.c), but a chunk quarantined since, or a map left by
 * a crash under an older version (map first, parts checked after), names a part that is gone: the
 * blob is then absent, so a put stores it again rather than trusting a map that does not read. On
 * a shared backend the map and manifest answer (its collection settles its own writers:
 * tier/fleet.c). */
static int r_has(void *self, const hl_id *id)
{
	hl_resolver *r = self;
	int err = r->below.ops->has(r->below.self, id);
	if (err != HL_NOTFOUND || !r->be.ops || !r->be.ops->large_has)
		return err;
	if ((err = r->be.ops->large_has(r->be.self, id)) != 0 || (r->be.ops->caps & HL_BE_SHARED))
		return err;
	hl_id mid;
	uint64_t size;
	hl_buf *mb;
	hl_manifest m;
	if ((err = r->be.ops->large_get(r->be.self, id, &mid, &size)) != 0 ||
	    (err = get_part(r, &mid, 0, &mb)) != 0)
		return err == HL_CORRUPT ? HL_NOTFOUND : err;
	if (hl_manifest_decode(hl_buf_data(mb), hl_buf_len(mb), &m) || m.total != size)
		err = HL_NOTFOUND;
	for (uint32_t i = 0; !err && i < m.count; i++) {
		hl_chunk_ref c;
		hl_manifest_chunk(&m, i, &c);
		err = r->below.ops->has(r->below.self, &c.id);
	}
	hl_buf_unref(mb);
	return err;
}

static int r_put_batch(void *self, hl_put_item *items, size_t n, int ids_trusted)
{
	hl_resolver *r = self;
	return r->below.ops->put_batch(r->below.self, items, n, ids_trusted);
}

static const hl_tier_ops resolve_ops = {
	.name = "resolve", .get = r_get, .has = r_has, .put_batch = r_put_batch, .get_whole = r_get_whole,
};

int hl_resolver_new(hl_tier below, hl_backend be, hl_l1 *l1, hl_repair_fn repair, void *repair_ctx,
                    hl_resolver **out)
{
	hl_resolver *r = hl_calloc(1, sizeof(*r));
	if (!r)
		return ENOMEM;
	*r = (hl_resolver){below, be, l1, repair, repair_ctx};
	*out = r;
	return 0;
}

hl_tier hl_resolver_tier(hl_resolver *r)
{
	return (hl_tier){&resolve_ops, r};
}

void hl_resolver_free(hl_resolver *r)
{
	free(r);
}
