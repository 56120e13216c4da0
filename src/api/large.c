/* large.c — blobs above the chunk threshold: cut by FastCDC into chunks, each an object of its
 * own, listed by a manifest object; the index maps the blob's id (BLAKE3 of the whole content) to
 * the manifest. Readers reassemble them (whole gets re-hash the whole; ranged reads verify each
 * chunk as it is read). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "base/buf.h"
#include "base/log.h"
#include "dedup/manifest.h"
#include "store/names.h"

#define BATCH_CHUNKS 1024 /* chunks per atomic batch (the last one carries the manifest) */

int api_put_large(hl_store *s, const hl_id *expect, const void *data, size_t len, hl_id *id,
                  int *created)
{
	hl_id whole, mid;
	uint64_t size;
	if (len > s->max_object_size)
		return HL_TOOBIG;
	hl_hash(data, len, &whole);
	if (expect && !hl_id_equal(expect, &whole))
		return HL_MISMATCH;
	*id = whole;
	if (created)
		*created = 0;
	if (hl_names_large_get(s->local, &whole, &mid, &size) == 0 || hl_coord_has(s->coord, &whole) == 0)
		return 0; /* stored already, chunked or whole */

	size_t cap = len / s->cdc.min + 2, n = 0;
	hl_chunk_ref *refs = malloc(cap * sizeof(*refs));
	hl_put_item *items = malloc((BATCH_CHUNKS + 1) * sizeof(*items));
	uint8_t *man = NULL;
	int err = refs && items ? 0 : ENOMEM;
	const uint8_t *p = data;
	size_t off = 0, batch = 0;
	while (!err && off < len) {
		size_t cl = hl_cdc_next(&s->cdc, p + off, len - off);
		hl_put_item *it = &items[batch++];
		memset(it, 0, sizeof(*it));
		it->data = p + off;
		it->len = cl;
		hl_hash(it->data, cl, &it->id);
		refs[n].id = it->id;
		refs[n++].len = (uint32_t)cl;
		off += cl;
		if (batch == BATCH_CHUNKS && off < len) { /* a full batch, more to come */
			err = hl_coord_put_hashed(s->coord, items, batch);
			batch = 0;
		}
	}
	size_t mlen = hl_manifest_size(n);
	if (!err && !(man = malloc(mlen)))
		err = ENOMEM;
	if (!err)
		err = hl_manifest_encode(refs, n, man, mlen, &mlen);
	if (!err) { /* the last chunks and the manifest: one batch, one sync */
		hl_put_item *it = &items[batch++];
		memset(it, 0, sizeof(*it));
		it->data = man;
		it->len = mlen;
		hl_hash(man, mlen, &mid);
		it->id = mid;
		err = hl_coord_put_hashed(s->coord, items, batch);
	}
	if (!err) /* visible only once every part is stored */
		err = hl_names_large_put(s->local, &whole, &mid, len);
	if (!err && created)
		*created = 1;
	free(man);
	free(items);
	free(refs);
	return err;
}

/* The manifest of a large blob, checked against the size the index gives. */
static int load_manifest(hl_store *s, const hl_id *id, hl_buf **mb, hl_manifest *m, uint64_t *size)
{
	hl_id mid;
	int err = hl_names_large_get(s->local, id, &mid, size);
	if (err)
		return err;
	if ((err = hl_coord_get(s->coord, &mid, mb)) != 0)
		return err == HL_NOTFOUND ? HL_CORRUPT : err; /* a part is missing: the blob is damaged */
	if (hl_manifest_decode(hl_buf_data(*mb), hl_buf_len(*mb), m) || m->total != *size) {
		hl_buf_unref(*mb);
		*mb = NULL;
		return HL_CORRUPT;
	}
	return 0;
}

static void log_damage(const hl_id *id, int err)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	hl_log(HL_LOG_ERROR, "large blob %s: %s", hex, hl_strerror(err));
}

int api_get_large(hl_store *s, const hl_id *id, hl_buf **out)
{
	hl_buf *mb;
	hl_manifest m;
	uint64_t size;
	int err = load_manifest(s, id, &mb, &m, &size);
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
		if ((err = hl_coord_get(s->coord, &c.id, &cb)) != 0) {
			err = err == HL_NOTFOUND ? HL_CORRUPT : err;
			break;
		}
		if (hl_buf_len(cb) != c.len)
			err = HL_CORRUPT;
		else
			memcpy(dst, hl_buf_data(cb), c.len), dst += c.len;
		hl_buf_unref(cb);
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
	hl_reader *r = calloc(1, sizeof(*r));
	if (!r)
		return ENOMEM;
	r->s = s;
	int err = hl_coord_get(s->coord, id, &r->whole);
	if (err == 0) {
		r->size = hl_buf_len(r->whole);
	} else if (err == HL_NOTFOUND) {
		err = load_manifest(s, id, &r->manifest, &r->m, &r->size);
		if (!err && !(r->starts = malloc(((size_t)r->m.count + 1) * sizeof(uint64_t))))
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
		if (err == HL_CORRUPT)
			log_damage(id, err);
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
			int err = hl_coord_get(r->s->coord, &c.id, &r->chunk);
			if (!err && hl_buf_len(r->chunk) != c.len)
				err = HL_CORRUPT;
			if (err) {
				hl_buf_unref(r->chunk);
				r->chunk = NULL;
				return err == HL_NOTFOUND ? HL_CORRUPT : err;
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
	int err = api_get_large(v->s, id, &b);
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

int api_verify_large(hl_store *s, hl_verify_fn fn, void *ctx, uint64_t *checked, uint64_t *bad)
{
	vlarge v = {s, fn, ctx, 0, 0};
	int err = hl_names_large_each(s->local, verify_one, &v);
	*checked = v.checked;
	*bad = v.bad;
	return err;
}
