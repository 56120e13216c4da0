/* forgotten.c — the record of forgotten history of forgotten.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/alloc.h"
#include "base/endian.h"
#include "base/grow.h"
#include "dedup/forgotten.h"

static int cmp_id(const hl_id *a, const hl_id *b)
{
	return memcmp(a->b, b->b, HL_ID_LEN);
}

/* The first entry at or after id. */
static size_t lower(const hl_forgotten *f, const hl_id *id)
{
	size_t lo = 0, hi = f->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (cmp_id(&f->v[mid].id, id) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

unsigned hl_forgotten_flags(const hl_forgotten *f, const hl_id *id)
{
	size_t i = lower(f, id);
	return i < f->n && !cmp_id(&f->v[i].id, id) ? f->v[i].flags : 0;
}

int hl_forgotten_add(hl_forgotten *f, const hl_id *id, unsigned flags)
{
	size_t i = lower(f, id);
	if (i < f->n && !cmp_id(&f->v[i].id, id)) {
		f->v[i].flags |= (uint8_t)flags;
		return 0;
	}
	hl_forgot *v = hl_grow(f->v, f->n, &f->cap, sizeof(*v), 64);
	if (!v)
		return ENOMEM;
	f->v = v;
	memmove(&v[i + 1], &v[i], (f->n - i) * sizeof(*v));
	v[i] = (hl_forgot){*id, (uint8_t)flags};
	f->n++;
	return 0;
}

void hl_forgotten_free(hl_forgotten *f)
{
	free(f->v);
	memset(f, 0, sizeof(*f));
}

size_t hl_forgotten_size(const hl_forgotten *f)
{
	return HL_FORGOTTEN_HDR + f->n * HL_FORGOTTEN_ENTRY;
}

int hl_forgotten_encode(const hl_forgotten *f, uint8_t *out, size_t cap, size_t *len)
{
	if (f->n > UINT32_MAX)
		return HL_INVALID;
	for (size_t i = 0; i < f->n; i++)
		if (!f->v[i].flags || (f->v[i].flags & ~3u) || (i && cmp_id(&f->v[i - 1].id, &f->v[i].id) >= 0))
			return HL_INVALID;
	size_t need = hl_forgotten_size(f);
	if (need > cap)
		return HL_TOOBIG;
	memcpy(out, "HLFG", 4);
	out[4] = 1;
	out[5] = 0;
	hl_put_le16(out + 6, 0);
	hl_put_le32(out + 8, (uint32_t)f->n);
	hl_put_le32(out + 12, 0);
	uint8_t *p = out + HL_FORGOTTEN_HDR;
	for (size_t i = 0; i < f->n; i++, p += HL_FORGOTTEN_ENTRY) {
		memcpy(p, f->v[i].id.b, HL_ID_LEN);
		p[HL_ID_LEN] = f->v[i].flags;
	}
	*len = need;
	return 0;
}

int hl_forgotten_decode(const uint8_t *buf, size_t len, hl_forgotten *f)
{
	if (len < 4 || memcmp(buf, "HLFG", 4))
		return HL_INVALID;
	if (len < HL_FORGOTTEN_HDR)
		return HL_CORRUPT;
	if (buf[4] > 1)
		return HL_VERSION;
	uint64_t n = hl_le32(buf + 8);
	if (buf[4] == 0 || buf[5] || hl_le16(buf + 6) || hl_le32(buf + 12) ||
	    (len - HL_FORGOTTEN_HDR) != n * HL_FORGOTTEN_ENTRY)
		return HL_CORRUPT;
	hl_forgot *v = hl_malloc((n ? n : 1) * sizeof(*v));
	if (!v)
		return ENOMEM;
	const uint8_t *p = buf + HL_FORGOTTEN_HDR;
	for (size_t i = 0; i < n; i++, p += HL_FORGOTTEN_ENTRY) {
		memcpy(v[i].id.b, p, HL_ID_LEN);
		v[i].flags = p[HL_ID_LEN];
		if (!v[i].flags || (v[i].flags & ~3u) || (i && cmp_id(&v[i - 1].id, &v[i].id) >= 0)) {
			free(v);
			return HL_CORRUPT;
		}
	}
	f->v = v;
	f->n = f->cap = n;
	return 0;
}
