/* large.c — blobs above the chunk threshold: cut by FastCDC into chunks, each an object of its
 * own, listed by a manifest object; the index maps the blob's id (BLAKE3 of the whole content) to
 * the manifest. Gets reassemble them below the coordinator (dedup/resolve.c re-hashes the whole);
 * readers here stream them (each chunk verified as it is read). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "dedup/links.h"
#include "base/buf.h"
#include "base/grow.h"
#include "base/log.h"
#include "dedup/manifest.h"
#include "dedup/resolve.h"
#include "store/names.h"
#include "base/alloc.h"

#define BATCH_CHUNKS 1024 /* chunks per atomic batch (the last one carries the manifest) */

/* The parts of blobs about to be mapped, pinned (tier/backend.h: pin; *pinned set) and each
 * relied on again: no collection can take them now, and one that walked before the maps exist
 * keeps them after the unpin. 0: all there; HL_NOTFOUND: a collection took one before the pin
 * (pinned from now on, so what is stored again stays); then unpin_parts in every case. A shared
 * backend's collection settles its own writers (tier/fleet.c): nothing to pin there. */
static int pin_parts(hl_store *s, const hl_id *ids, size_t n, int *pinned)
{
	*pinned = 0;
	if (!s->be.ops->pin)
		return 0;
	int err = s->be.ops->pin(s->be.self, ids, n);
	*pinned = !err;
	for (size_t i = 0; i < n && !err; i++)
		err = hl_api_has(s, &ids[i]);
	return err;
}

/* err, after the pins (if any) are taken off. */
static int unpin_parts(hl_store *s, const hl_id *ids, size_t n, int pinned, int err)
{
	if (pinned)
		s->be.ops->unpin(s->be.self, ids, n);
	return err;
}

static void log_parts_taken(void)
{
	hl_log(HL_LOG_WARN, "large blob: a collection took parts of it before its map was made");
}

/* The end of storing a large blob: its manifest of refs[0..n) is appended to the last batch of
 * chunks, items[0..nitems) (which has room for it), the batch is stored (one sync), and only then
 * is the blob's id mapped to the manifest, its parts pinned meanwhile, so the blob is visible only
 * once every part is stored. The chunks of earlier batches are not at hand any more: if a
 * collection took one of them before the pin, no map is made and the write fails HL_INCOMPLETE. */
static int store_manifest(hl_store *s, const hl_id *whole, uint64_t size, const hl_chunk_ref *refs,
                          size_t n, hl_put_item *items, size_t nitems)
{
	size_t mlen = hl_manifest_size(n);
	uint8_t *man = hl_malloc(mlen);
	hl_id *parts = hl_malloc((n + 1) * sizeof(*parts));
	if (!man || !parts) {
		free(man);
		free(parts);
		return ENOMEM;
	}
	int err = hl_manifest_encode(refs, n, man, mlen, &mlen);
	hl_put_item *it = &items[nitems];
	memset(it, 0, sizeof(*it));
	it->data = man;
	it->len = mlen;
	hl_hash(man, mlen, &it->id);
	hl_large_map map = {*whole, it->id, size};
	parts[0] = it->id;
	for (size_t i = 0; i < n; i++)
		parts[i + 1] = refs[i].id;
	if (!err)
		err = hl_coord_put_hashed(s->coord, items, nitems + 1);
	if (!err) {
		int pinned;
		if ((err = pin_parts(s, parts, n + 1, &pinned)) == HL_NOTFOUND) {
			log_parts_taken();
			err = HL_INCOMPLETE;
		}
		if (!err)
			err = s->be.ops->large_put_n(s->be.self, &map, 1);
		err = unpin_parts(s, parts, n + 1, pinned, err);
	}
	free(parts);
	free(man);
	return err;
}

int hl_large_put(hl_store *s, const hl_id *expect, const void *data, size_t len, hl_id *id,
                 int *created)
{
	if (len > s->max_object_size)
		return HL_TOOBIG;
	hl_put_item it = {.data = data, .len = len};
	hl_hash(data, len, &it.id);
	if (expect && !hl_id_equal(expect, &it.id))
		return HL_MISMATCH;
	*id = it.id;
	int err = hl_large_put_hashed(s, &it, 1);
	if (created)
		*created = !err && it.created;
	return err;
}

int hl_large_wanted(const hl_store *s, const void *data, size_t len)
{
	return s->chunk_threshold && len > s->chunk_threshold && data && !hl_links_magic(data, len);
}

#define ONE_BATCH_MAX 8192 /* items in one atomic batch; chunks beyond go ahead in batches of their own */

/* Cuts data into chunks appended to *chunks (pointing into data), and encodes their manifest into
 * *man (the caller frees it). */
static int cut_all(hl_store *s, const uint8_t *data, size_t len, hl_put_item *chunks, size_t *nchunks,
                   hl_chunk_ref *refs, uint8_t **man, size_t *mlen)
{
	size_t n = 0, off = 0;
	while (off < len) {
		size_t cl = hl_cdc_next(&s->cdc, data + off, len - off);
		hl_put_item *it = &chunks[(*nchunks)++];
		memset(it, 0, sizeof(*it));
		it->data = data + off;
		it->len = cl;
		hl_hash(it->data, cl, &it->id);
		refs[n].id = it->id;
		refs[n++].len = (uint32_t)cl;
		off += cl;
	}
	*mlen = hl_manifest_size(n);
	if (!(*man = hl_malloc(*mlen)))
		return ENOMEM;
	return hl_manifest_encode(refs, n, *man, *mlen, mlen);
}

int hl_api_put_like(hl_store *s, hl_put_item *items, const hl_id *const *bases, size_t n)
{
	if (!bases || !s->be.ops->put_like)
		return hl_coord_put_hashed(s->coord, items, n);
	return hl_coord_put_like(s->coord, items, bases, n, s->be.ops->put_like, s->be.self);
}

/* Bases for the chunks and manifest just cut from a blob that resembles the large blob like:
 * each chunk's is the chunk of like's manifest that overlaps most of its byte range (an edit in
 * place keeps the boundaries; an insertion moves them a little), the manifest's is like's
 * manifest. Nothing is set when like is no large blob here (or cannot be read). */
static void like_bases(hl_store *s, const hl_id *like, const hl_put_item *chunks, size_t n,
                       hl_id *ids, const hl_id **bases, const hl_id **manifest_base, hl_id *mid)
{
	hl_buf *mb;
	hl_manifest m;
	uint64_t size, at = 0, first_start = 0;
	if (hl_resolve_manifest(s->resolver, like, &mb, &m, &size))
		return;
	uint32_t first = 0; /* the first base chunk that ends after at */
	for (size_t k = 0; k < n && m.count; k++) {
		uint64_t end = at + chunks[k].len, best = 0, start = first_start;
		hl_chunk_ref c;
		for (uint32_t j = first; j < m.count && start < end; j++) {
			hl_manifest_chunk(&m, j, &c);
			uint64_t lo = start > at ? start : at, hi = start + c.len < end ? start + c.len : end;
			if (hi > lo && hi - lo > best) {
				best = hi - lo;
				ids[k] = c.id;
				bases[k] = &ids[k];
			}
			if (start + c.len <= end) { /* ends inside this chunk: no later chunk needs it */
				first = j + 1;
				first_start = start + c.len;
			}
			start += c.len;
		}
		at = end;
	}
	hl_hash(hl_buf_data(mb), hl_buf_len(mb), mid);
	*manifest_base = mid;
	hl_buf_unref(mb);
}

/* Stores chunks[0..nchunks) in batches of BATCH_CHUNKS, then rest[0..nrest) (the manifests and
 * small items) in one batch, each with its base from bases and rest_bases (NULL: none). */
static int put_parts(hl_store *s, hl_put_item *chunks, const hl_id **bases, size_t nchunks,
                     hl_put_item *rest, const hl_id **rest_bases, size_t nrest)
{
	int err = 0;
	for (size_t at = 0; at < nchunks && !err; at += BATCH_CHUNKS)
		err = hl_api_put_like(s, chunks + at, bases ? bases + at : NULL,
		                      nchunks - at < BATCH_CHUNKS ? nchunks - at : BATCH_CHUNKS);
	return err ? err : hl_api_put_like(s, rest, rest_bases, nrest);
}

/* Makes the maps of a batch whose parts (chunks[0..nchunks), and the manifests among
 * rest[0..nrest)) were stored, with every part pinned: a part a collection took before the pin is
 * stored again first (the missing ones are written, the rest held), so no map ever names a part
 * that is gone. */
static int map_kept(hl_store *s, hl_put_item *chunks, size_t nchunks, hl_put_item *rest,
                    size_t nrest, const hl_large_map *maps, size_t nmaps)
{
	if (!nmaps)
		return 0;
	hl_id *parts = hl_malloc((nmaps + nchunks) * sizeof(*parts));
	if (!parts)
		return ENOMEM;
	for (size_t j = 0; j < nmaps; j++)
		parts[j] = maps[j].manifest;
	for (size_t i = 0; i < nchunks; i++)
		parts[nmaps + i] = chunks[i].id;
	int pinned, err = pin_parts(s, parts, nmaps + nchunks, &pinned);
	if (err == HL_NOTFOUND) {
		log_parts_taken();
		err = put_parts(s, chunks, NULL, nchunks, rest, NULL, nrest);
	}
	if (!err)
		err = s->be.ops->large_put_n(s->be.self, maps, nmaps);
	err = unpin_parts(s, parts, nmaps + nchunks, pinned, err);
	free(parts);
	return err;
}

/* A batch with large items (ids computed and checked): each large item not stored yet becomes its
 * chunks plus a manifest. The small items and the manifests go in one atomic batch, with the
 * chunks when the whole fits (else the chunks go ahead in batches of their own, invisible until a
 * manifest is mapped); then every large id is mapped to its manifest in one index transaction.
 * So each item is visible whole or not at all, and a failure leaves none of the large ones
 * visible. */
static int large_put(hl_store *s, hl_put_item *items, const hl_id *const *likes, size_t n)
{
	size_t ccap = 0, nchunks = 0, nrest = 0, nmaps = 0, refs_cap = 0;
	for (size_t i = 0; i < n; i++)
		if (hl_large_wanted(s, items[i].data, items[i].len)) {
			size_t c = items[i].len / s->cdc.min + 2;
			ccap += c;
			refs_cap = c > refs_cap ? c : refs_cap;
		}
	hl_put_item *chunks = hl_malloc((ccap + 2 * n) * sizeof(*chunks)), *rest = chunks ? chunks + ccap : NULL;
	/* with likes: every item's base (NULL: none) beside chunks, and the ids they point at */
	const hl_id **bases = likes ? hl_calloc(ccap + 2 * n, sizeof(*bases)) : NULL;
	hl_id *base_ids = likes ? hl_malloc((ccap + n + 1) * sizeof(*base_ids)) : NULL;
	const hl_id **rest_bases = bases ? bases + ccap : NULL;
	hl_chunk_ref *refs = hl_malloc(refs_cap * sizeof(*refs));
	hl_large_map *maps = hl_malloc(n * sizeof(*maps));
	uint8_t **mans = hl_calloc(n, sizeof(*mans));
	uint8_t *told = hl_calloc(n, 1); /* maps[j] was reported created to an item */
	size_t *slot = hl_malloc(n * sizeof(*slot)); /* where item i went in rest (small items) */
	int err = chunks && refs && maps && mans && told && slot && (!likes || (bases && base_ids)) ? 0 : ENOMEM;
	for (size_t i = 0; i < n && !err; i++) {
		items[i].created = 0;
		slot[i] = SIZE_MAX;
		if (!hl_large_wanted(s, items[i].data, items[i].len)) {
			slot[i] = nrest;
			rest[nrest++] = items[i];
			continue;
		}
		int again = hl_api_has(s, &items[i].id) == 0; /* stored already, chunked or whole */
		for (size_t j = 0; j < nmaps && !again; j++)
			again = hl_id_equal(&maps[j].id, &items[i].id);
		if (again)
			continue;
		size_t mlen, first = nchunks;
		err = cut_all(s, items[i].data, items[i].len, chunks, &nchunks, refs, &mans[nmaps], &mlen);
		if (err)
			break;
		if (likes && likes[i])
			like_bases(s, likes[i], chunks + first, nchunks - first, base_ids + first, bases + first,
			           &rest_bases[nrest], &base_ids[ccap + nmaps]);
		hl_put_item *m = &rest[nrest++];
		memset(m, 0, sizeof(*m));
		m->data = mans[nmaps];
		m->len = mlen;
		hl_hash(m->data, mlen, &m->id);
		maps[nmaps++] = (hl_large_map){items[i].id, m->id, items[i].len};
	}
	if (!err && nchunks + nrest <= ONE_BATCH_MAX) { /* the usual case: one batch, one sync */
		memmove(chunks + nchunks, rest, nrest * sizeof(*rest));
		rest = chunks + nchunks;
		if (bases) {
			memmove(bases + nchunks, rest_bases, nrest * sizeof(*bases));
			rest_bases = bases + nchunks;
		}
		err = hl_api_put_like(s, chunks, bases, nchunks + nrest);
	} else if (!err) {
		err = put_parts(s, chunks, bases, nchunks, rest, rest_bases, nrest);
	}
	if (!err)
		err = map_kept(s, chunks, nchunks, rest, nrest, maps, nmaps);
	for (size_t i = 0; i < n && !err; i++) {
		if (slot[i] != SIZE_MAX) {
			items[i].created = rest[slot[i]].created;
			continue;
		}
		for (size_t j = 0; j < nmaps; j++)
			if (!told[j] && hl_id_equal(&maps[j].id, &items[i].id))
				items[i].created = told[j] = 1; /* a repeat in the batch was not created */
	}
	for (size_t j = 0; mans && j < nmaps; j++)
		free(mans[j]);
	free(mans);
	free(told);
	free(maps);
	free(refs);
	free(chunks);
	free(slot);
	free(bases);
	free(base_ids);
	return err;
}

int hl_large_put_hashed(hl_store *s, hl_put_item *items, size_t n)
{
	return large_put(s, items, NULL, n);
}

int hl_large_put_like(hl_store *s, const void *data, size_t len, const hl_id *like, hl_id *id,
                      int *created)
{
	if (!s->be.ops->put_like)
		return hl_large_put(s, NULL, data, len, id, created);
	if (len > s->max_object_size)
		return HL_TOOBIG;
	hl_put_item it = {.data = data, .len = len};
	hl_hash(data, len, &it.id);
	*id = it.id;
	const hl_id *likes[1] = {like};
	int err = large_put(s, &it, likes, 1);
	if (created)
		*created = !err && it.created;
	return err;
}

/* ---- writers ---- */

#define FLUSH_BYTES (16u << 20) /* chunks are stored in batches of about this much */

struct hl_writer {
	hl_store *s;
	hl_id expect;
	int has_expect, chunked, failed;
	hl_hasher *h;
	uint64_t total;
	uint8_t *buf;              /* bytes not yet cut into chunks */
	size_t len, cap;
	hl_chunk_ref *refs;        /* every chunk so far */
	size_t nrefs, refs_cap;
	hl_put_item *pend;         /* chunks cut but not yet stored (data owned) */
	size_t npend, pend_cap, pend_bytes;
};

int hl_writer_open(hl_store *s, const hl_id *expect, hl_writer **out)
{
	if (!s || !out)
		return HL_INVALID;
	if (hl_local_read_only(s->local))
		return HL_READONLY;
	hl_writer *w = hl_calloc(1, sizeof(*w));
	if (!w || !(w->h = hl_hasher_new())) {
		free(w);
		return ENOMEM;
	}
	w->s = s;
	if (expect)
		w->expect = *expect, w->has_expect = 1;
	*out = w;
	return 0;
}

static void drop_pending(hl_writer *w)
{
	for (size_t i = 0; i < w->npend; i++)
		free((void *)w->pend[i].data);
	w->npend = w->pend_bytes = 0;
}

static int flush_pending(hl_writer *w)
{
	int err = w->npend ? hl_coord_put_hashed(w->s->coord, w->pend, w->npend) : 0;
	drop_pending(w);
	return err;
}

/* Cuts the chunk at the front of the buffer (len bytes of it) and queues it for storing. */
static int cut_chunk(hl_writer *w, size_t len)
{
	hl_chunk_ref *r = hl_grow(w->refs, w->nrefs, &w->refs_cap, sizeof(*r), 64);
	if (!r)
		return ENOMEM;
	w->refs = r;
	/* room for this chunk and one more item after it: the manifest */
	hl_put_item *p = hl_grow(w->pend, w->npend + 1, &w->pend_cap, sizeof(*p), 64);
	if (!p)
		return ENOMEM;
	w->pend = p;
	uint8_t *copy = hl_malloc(len ? len : 1);
	if (!copy)
		return ENOMEM;
	memcpy(copy, w->buf, len);
	hl_put_item *it = &w->pend[w->npend++];
	memset(it, 0, sizeof(*it));
	it->data = copy;
	it->len = len;
	hl_hash(copy, len, &it->id);
	w->refs[w->nrefs].id = it->id;
	w->refs[w->nrefs++].len = (uint32_t)len;
	w->pend_bytes += len;
	memmove(w->buf, w->buf + len, w->len - len);
	w->len -= len;
	return w->pend_bytes >= FLUSH_BYTES ? flush_pending(w) : 0;
}

int hl_writer_write(hl_writer *w, const void *data, size_t len)
{
	if (!w || (!data && len))
		return HL_INVALID;
	if (w->failed)
		return w->failed;
	if (w->total + len > w->s->max_object_size)
		return w->failed = HL_TOOBIG;
	hl_hasher_update(w->h, data, len);
	w->total += len;
	const uint8_t *p = data;
	while (len) {
		size_t keep = w->chunked ? (size_t)w->s->cdc.max * 2 : (size_t)w->s->chunk_threshold + w->s->cdc.max;
		if (!w->cap) {
			if (!(w->buf = hl_malloc(keep)))
				return w->failed = ENOMEM;
			w->cap = keep;
		}
		size_t k = w->cap - w->len < len ? w->cap - w->len : len;
		memcpy(w->buf + w->len, p, k);
		w->len += k, p += k, len -= k;
		if (!w->chunked && w->s->chunk_threshold && w->total - len > w->s->chunk_threshold &&
		    !hl_links_magic(w->buf, w->len))
			w->chunked = 1; /* past the threshold: from now on, cut as it comes (a tree or
			                   manifest stays whole: the collector reads what it names) */
		/* a cut made with at least max bytes ahead is the cut hl_put makes with the whole rest */
		while (w->chunked && w->len >= w->s->cdc.max) {
			int err = cut_chunk(w, hl_cdc_next(&w->s->cdc, w->buf, w->len));
			if (err)
				return w->failed = err;
		}
		if (!w->chunked && w->len == w->cap) {
			uint8_t *b = hl_realloc(w->buf, w->cap * 2); /* below the threshold (or never chunking) */
			if (!b)
				return w->failed = ENOMEM;
			w->buf = b, w->cap *= 2;
		}
	}
	return 0;
}

void hl_writer_abort(hl_writer *w)
{
	if (!w)
		return;
	drop_pending(w);
	hl_hasher_free(w->h);
	free(w->buf);
	free(w->refs);
	free(w->pend);
	free(w);
}

int hl_writer_close(hl_writer *w, hl_id *id, int *created)
{
	if (!w)
		return HL_INVALID;
	int err = w->failed;
	hl_id whole;
	hl_hasher_final(w->h, &whole);
	if (created)
		*created = 0;
	if (!err && w->has_expect && !hl_id_equal(&whole, &w->expect))
		err = HL_MISMATCH;
	if (!err && !w->chunked) { /* small enough: stored whole, or chunked by hl_put itself */
		err = hl_api_put(w->s, w->has_expect ? &whole : NULL, w->buf ? w->buf : (uint8_t *)"", w->len,
		                 w->has_expect ? NULL : &whole, created);
	} else if (!err && hl_api_has(w->s, &whole) != 0) { /* (else stored already) */
		while (!err && w->len)
			err = cut_chunk(w, hl_cdc_next(&w->s->cdc, w->buf, w->len));
		if (!err)
			err = store_manifest(w->s, &whole, w->total, w->refs, w->nrefs, w->pend, w->npend);
		if (!err && created)
			*created = 1;
	}
	if (!err && id)
		*id = whole;
	hl_writer_abort(w);
	return err;
}

/* ---- readers ---- */

struct hl_reader {
	hl_store *s;
	uint64_t size;
	hl_buf *whole;     /* an object stored whole */
	hl_buf *manifest;  /* or a large blob's manifest … */
	hl_manifest m;
	uint64_t *starts;  /* … with the offset of every chunk, and a sentinel */
	hl_buf *chunk;     /* the chunk read last, kept for sequential reads */
	uint32_t chunk_i;
};

int hl_reader_open(hl_store *s, const hl_id *id, hl_reader **out, uint64_t *size)
{
	if (!s || !id || !out)
		return HL_INVALID;
	hl_reader *r = hl_calloc(1, sizeof(*r));
	if (!r)
		return ENOMEM;
	r->s = s;
	int err = hl_coord_get_whole(s->coord, id, &r->whole);
	if (err == 0) {
		r->size = hl_buf_len(r->whole);
	} else if (err == HL_NOTFOUND) { /* a large blob: read chunk by chunk */
		err = hl_resolve_manifest(s->resolver, id, &r->manifest, &r->m, &r->size);
		if (!err && !(r->starts = hl_malloc(((size_t)r->m.count + 1) * sizeof(uint64_t))))
			err = ENOMEM;
		if (!err) {
			uint64_t o = 0;
			for (uint32_t i = 0; i <= r->m.count; i++) {
				hl_chunk_ref c = {0};
				r->starts[i] = o;
				if (i < r->m.count) {
					hl_manifest_chunk(&r->m, i, &c);
					o += c.len;
				}
			}
		}
	}
	if (err) {
		hl_reader_close(r);
		return err;
	}
	if (size)
		*size = r->size;
	*out = r;
	return 0;
}

/* The chunk that holds byte off (binary search over the starts). */
static uint32_t chunk_at(const hl_reader *r, uint64_t off)
{
	uint32_t lo = 0, hi = r->m.count;
	while (hi - lo > 1) {
		uint32_t mid = lo + (hi - lo) / 2;
		if (r->starts[mid] <= off)
			lo = mid;
		else
			hi = mid;
	}
	return lo;
}

int hl_reader_read(hl_reader *r, uint64_t off, void *dst, size_t cap, size_t *n)
{
	if (!r || !n || (!dst && cap))
		return HL_INVALID;
	*n = 0;
	if (off >= r->size || cap == 0)
		return 0;
	if (r->whole) {
		size_t k = r->size - off < cap ? (size_t)(r->size - off) : cap;
		memcpy(dst, hl_buf_data(r->whole) + off, k);
		*n = k;
		return 0;
	}
	uint8_t *d = dst;
	while (cap && off < r->size) {
		uint32_t i = chunk_at(r, off);
		if (!r->chunk || r->chunk_i != i) {
			hl_chunk_ref c;
			hl_manifest_chunk(&r->m, i, &c);
			hl_buf_unref(r->chunk);
			r->chunk = NULL;
			int err = hl_resolve_chunk(r->s->resolver, &c, 0, &r->chunk);
			if (err) {
				r->chunk = NULL;
				return err;
			}
			r->chunk_i = i;
		}
		uint64_t in = off - r->starts[i], avail = hl_buf_len(r->chunk) - in;
		size_t k = avail < cap ? (size_t)avail : cap;
		memcpy(d, hl_buf_data(r->chunk) + in, k);
		d += k, off += k, cap -= k, *n += k;
	}
	return 0;
}

hl_buf *hl_reader_whole(hl_reader *r)
{
	return r && r->whole ? hl_buf_ref(r->whole) : NULL;
}

void hl_reader_close(hl_reader *r)
{
	if (!r)
		return;
	hl_buf_unref(r->whole);
	hl_buf_unref(r->manifest);
	hl_buf_unref(r->chunk);
	free(r->starts);
	free(r);
}

/* ---- verification ---- */

typedef struct vlarge {
	hl_store *s;
	hl_verify_fn fn;
	void *ctx;
	uint64_t checked, bad;
} vlarge;

static int verify_one(const hl_id *id, const hl_id *mid, uint64_t size, void *arg)
{
	vlarge *v = arg;
	hl_buf *b = NULL;
	int err = hl_resolve_large(v->s->resolver, id, &b);
	hl_buf_unref(b);
	v->checked++;
	if (err == ENOMEM)
		return err;
	if (err) {
		v->bad++;
		if (v->fn)
			v->fn(id, err, v->ctx);
	}
	return 0;
}

int hl_large_verify(hl_store *s, hl_verify_fn fn, void *ctx, uint64_t *checked, uint64_t *bad)
{
	vlarge v = {s, fn, ctx, 0, 0};
	int err = s->be.ops->large_each ? s->be.ops->large_each(s->be.self, verify_one, &v) : 0;
	*checked = v.checked;
	*bad = v.bad;
	return err;
}

/* ---- the large-blob map, derived again after an index rebuild ---- */

typedef struct derive_ctx {
	hl_store *s;
	hl_large_map *v; /* the pairs the manifests give (whole id, manifest) */
	size_t n, cap;
	int err;
} derive_ctx;

/* For every manifest: hashes its chunks in order (each verified as read) into the whole's id. A
 * manifest whose chunks are missing or corrupt gives nothing. */
static int derive_one(const hl_id *id, const hl_stat *st, void *arg)
{
	derive_ctx *d = arg;
	if (!(st->flags & HL_STAT_LINKS) || st->size < HL_MANIFEST_HDR)
		return 0; /* only trees and manifests carry the flag */
	hl_buf *mb;
	if (hl_local_get(d->s->local, id, &mb) != 0)
		return 0;
	hl_manifest m;
	if (hl_manifest_decode(hl_buf_data(mb), hl_buf_len(mb), &m) != 0) {
		hl_buf_unref(mb);
		return 0; /* a tree, or not an object of ours */
	}
	hl_hasher *h = hl_hasher_new();
	int err = h ? 0 : ENOMEM;
	for (uint32_t i = 0; i < m.count && !err; i++) {
		hl_chunk_ref c;
		hl_manifest_chunk(&m, i, &c);
		hl_buf *cb;
		if ((err = hl_local_get(d->s->local, &c.id, &cb)) == 0) {
			hl_hasher_update(h, hl_buf_data(cb), hl_buf_len(cb));
			hl_buf_unref(cb);
		}
	}
	hl_large_map *v = err ? NULL : hl_grow(d->v, d->n, &d->cap, sizeof(*v), 64);
	if (v) {
		d->v = v;
		v[d->n].manifest = *id;
		v[d->n].size = m.total;
		hl_hasher_final(h, &v[d->n++].id);
	} else if (!err) {
		err = d->err = ENOMEM;
	}
	hl_hasher_free(h);
	hl_buf_unref(mb);
	return err == ENOMEM ? ENOMEM : 0;
}

static int same_pair(const hl_large_map *a, const hl_id *id, const hl_id *mid)
{
	return hl_id_equal(&a->id, id) && hl_id_equal(&a->manifest, mid);
}

typedef struct prune_ctx {
	derive_ctx *d;
	hl_large_map *bad; /* entries no manifest confirms */
	size_t n, cap;
	uint8_t *confirmed; /* d->v[i] is in the map already */
} prune_ctx;

static int check_entry(const hl_id *id, const hl_id *mid, uint64_t size, void *arg)
{
	prune_ctx *p = arg;
	for (size_t i = 0; i < p->d->n; i++)
		if (same_pair(&p->d->v[i], id, mid))
			return p->confirmed[i] = 1, 0;
	hl_large_map *v = hl_grow(p->bad, p->n, &p->cap, sizeof(*v), 16);
	if (!v)
		return ENOMEM;
	p->bad = v;
	p->bad[p->n++] = (hl_large_map){*id, *mid, size};
	return 0;
}

int hl_large_derive(hl_store *s, uint64_t *derived, uint64_t *dropped)
{
	derive_ctx d = {.s = s};
	*derived = *dropped = 0;
	int err = hl_local_iterate(s->local, derive_one, &d);
	prune_ctx p = {.d = &d, .confirmed = hl_calloc(d.n ? d.n : 1, 1)};
	if (!err && !p.confirmed)
		err = ENOMEM;
	if (!err)
		err = hl_names_large_each(s->local, check_entry, &p);
	for (size_t i = 0; !err && i < p.n; i++) /* a damaged row: its id is not its manifest's */
		if ((err = hl_names_large_del(s->local, &p.bad[i].id, &p.bad[i].manifest)) == 0)
			++*dropped;
	for (size_t i = 0; !err && i < d.n; i++)
		if (!p.confirmed[i] && (err = hl_names_large_put(s->local, &d.v[i].id, &d.v[i].manifest, d.v[i].size)) == 0)
			++*derived;
	free(p.confirmed);
	free(p.bad);
	free(d.v);
	return err ? err : d.err;
}
