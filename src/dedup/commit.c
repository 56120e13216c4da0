/* commit.c — the commit encoding of commit.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/alloc.h"
#include "base/endian.h"
#include "dedup/commit.h"

#define KEY_MAX 64

int hl_commit_key_ok(const char *key, size_t len)
{
	if (!key || len == 0 || len > KEY_MAX)
		return 0;
	for (size_t i = 0; i < len; i++) {
		char ch = key[i];
		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
		      ch == '.' || ch == '_' || ch == '-'))
			return 0;
	}
	return 1;
}

static size_t slen(const char *s)
{
	return s ? strlen(s) : 0;
}

size_t hl_commit_size(const hl_commit *c)
{
	size_t n = HL_COMMIT_HDR + (size_t)c->nparents * HL_ID_LEN + HL_COMMIT_STATS + 2 +
	           slen(c->author) + 4 + slen(c->message) + 2;
	for (unsigned i = 0; i < c->nmeta && i < HL_COMMIT_META_MAX; i++)
		n += 1 + slen(c->meta[i].key) + 2 + slen(c->meta[i].value);
	return n;
}

static int meta_cmp(const void *x, const void *y)
{
	const hl_commit_meta *a = x, *b = y;
	return strcmp(a->key ? a->key : "", b->key ? b->key : "");
}

static int parents_distinct(const hl_id *p, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		for (unsigned j = 0; j < i; j++)
			if (!memcmp(p[i].b, p[j].b, HL_ID_LEN))
				return 0;
	return 1;
}

int hl_commit_encode(hl_commit *c, uint8_t *out, size_t cap, size_t *len)
{
	if (c->nparents > HL_COMMIT_PARENTS_MAX || c->nmeta > HL_COMMIT_META_MAX ||
	    !parents_distinct(c->parents, c->nparents) || slen(c->author) > HL_COMMIT_AUTHOR_MAX ||
	    slen(c->message) > HL_COMMIT_MESSAGE_MAX)
		return HL_INVALID;
	if (c->nmeta > 1)
		qsort(c->meta, c->nmeta, sizeof(*c->meta), meta_cmp);
	for (unsigned i = 0; i < c->nmeta; i++) {
		const hl_commit_meta *m = &c->meta[i];
		if (!hl_commit_key_ok(m->key, slen(m->key)) || slen(m->value) > HL_COMMIT_VALUE_MAX ||
		    (i && !strcmp(c->meta[i - 1].key, m->key)))
			return HL_INVALID;
	}
	size_t need = hl_commit_size(c);
	if (need > cap)
		return HL_TOOBIG;
	uint8_t *p = out;
	memcpy(p, "HLCM", 4);
	p[4] = HL_COMMIT_VERSION;
	p[5] = 1; /* BLAKE3-256 */
	p[6] = (uint8_t)c->nparents;
	p[7] = 0;
	hl_put_le64(p + 8, c->time_ns);
	memcpy(p + 16, c->tree.b, HL_ID_LEN);
	p += HL_COMMIT_HDR;
	for (unsigned i = 0; i < c->nparents; i++, p += HL_ID_LEN)
		memcpy(p, c->parents[i].b, HL_ID_LEN);
	hl_put_le64(p, c->files);
	hl_put_le64(p + 8, c->bytes);
	hl_put_le64(p + 16, c->new_bytes);
	hl_put_le32(p + 24, c->added);
	hl_put_le32(p + 28, c->changed);
	hl_put_le32(p + 32, c->deleted);
	hl_put_le32(p + 36, 0);
	p += HL_COMMIT_STATS;
	size_t n = slen(c->author);
	hl_put_le16(p, (uint16_t)n);
	memcpy(p + 2, c->author ? c->author : "", n);
	p += 2 + n;
	n = slen(c->message);
	hl_put_le32(p, (uint32_t)n);
	memcpy(p + 4, c->message ? c->message : "", n);
	p += 4 + n;
	hl_put_le16(p, (uint16_t)c->nmeta);
	p += 2;
	for (unsigned i = 0; i < c->nmeta; i++) {
		n = strlen(c->meta[i].key);
		*p = (uint8_t)n;
		memcpy(p + 1, c->meta[i].key, n);
		p += 1 + n;
		n = slen(c->meta[i].value);
		hl_put_le16(p, (uint16_t)n);
		memcpy(p + 2, c->meta[i].value ? c->meta[i].value : "", n);
		p += 2 + n;
	}
	*len = need;
	return 0;
}

/* A reader over buf that fails (sets bad) instead of reading past the end. */
typedef struct cursor {
	const uint8_t *b;
	size_t len, pos;
	int bad;
} cursor;

static const uint8_t *take(cursor *c, size_t n)
{
	if (c->bad || c->len - c->pos < n) {
		c->bad = 1;
		return NULL;
	}
	const uint8_t *p = c->b + c->pos;
	c->pos += n;
	return p;
}

static uint64_t take_uint(cursor *c, size_t width)
{
	const uint8_t *p = take(c, width);
	if (!p)
		return 0;
	return width == 1 ? p[0] : width == 2 ? hl_le16(p) : width == 4 ? hl_le32(p) : hl_le64(p);
}

/* A string of a length field `width` bytes wide, at most max bytes, without NUL. */
static const uint8_t *take_str(cursor *c, size_t width, size_t max, size_t *n)
{
	*n = (size_t)take_uint(c, width);
	if (*n > max) {
		c->bad = 1;
		return NULL;
	}
	const uint8_t *p = take(c, *n);
	if (p && memchr(p, 0, *n))
		c->bad = 1;
	return c->bad ? NULL : p;
}

/* Appends s[0..n) and a NUL at *at in the allocation; returns where it went. */
static const char *copy_str(char **at, const uint8_t *s, size_t n)
{
	char *d = *at;
	if (n)
		memcpy(d, s, n);
	d[n] = 0;
	*at = d + n + 1;
	return d;
}

int hl_commit_decode(const uint8_t *buf, size_t len, hl_commit **out)
{
	if (len < 4 || memcmp(buf, "HLCM", 4))
		return HL_INVALID;
	if (len < HL_COMMIT_HDR)
		return HL_CORRUPT;
	if (buf[4] > HL_COMMIT_VERSION || buf[5] != 1)
		return HL_VERSION;
	if (buf[4] == 0 || buf[6] > HL_COMMIT_PARENTS_MAX || buf[7])
		return HL_CORRUPT;
	unsigned np = buf[6];
	cursor c = {buf, len, HL_COMMIT_HDR, 0};
	const uint8_t *parents = take(&c, (size_t)np * HL_ID_LEN), *stats = take(&c, HL_COMMIT_STATS);
	size_t alen, mlen, klen[HL_COMMIT_META_MAX], vlen[HL_COMMIT_META_MAX];
	const uint8_t *author = take_str(&c, 2, HL_COMMIT_AUTHOR_MAX, &alen);
	const uint8_t *message = take_str(&c, 4, HL_COMMIT_MESSAGE_MAX, &mlen);
	const uint8_t *key[HL_COMMIT_META_MAX], *val[HL_COMMIT_META_MAX];
	unsigned nm = (unsigned)take_uint(&c, 2);
	if (c.bad || nm > HL_COMMIT_META_MAX || hl_le32(stats + 36))
		return HL_CORRUPT;
	size_t strings = alen + 1 + mlen + 1;
	for (unsigned i = 0; i < nm; i++) {
		key[i] = take_str(&c, 1, KEY_MAX, &klen[i]);
		val[i] = take_str(&c, 2, HL_COMMIT_VALUE_MAX, &vlen[i]);
		if (c.bad || !hl_commit_key_ok((const char *)key[i], klen[i]))
			return HL_CORRUPT;
		if (i) { /* strictly increasing */
			size_t k = klen[i - 1] < klen[i] ? klen[i - 1] : klen[i];
			int d = memcmp(key[i - 1], key[i], k);
			if (d > 0 || (d == 0 && klen[i - 1] >= klen[i]))
				return HL_CORRUPT;
		}
		strings += klen[i] + 1 + vlen[i] + 1;
	}
	if (c.pos != len)
		return HL_CORRUPT;
	hl_id ps[HL_COMMIT_PARENTS_MAX];
	memcpy(ps, parents, (size_t)np * HL_ID_LEN);
	if (!parents_distinct(ps, np))
		return HL_CORRUPT;
	if (!out)
		return 0;
	hl_commit *r = hl_calloc(1, sizeof(*r) + strings);
	if (!r)
		return ENOMEM;
	char *at = (char *)(r + 1);
	r->time_ns = hl_le64(buf + 8);
	memcpy(r->tree.b, buf + 16, HL_ID_LEN);
	r->nparents = np;
	memcpy(r->parents, ps, (size_t)np * HL_ID_LEN);
	r->files = hl_le64(stats);
	r->bytes = hl_le64(stats + 8);
	r->new_bytes = hl_le64(stats + 16);
	r->added = hl_le32(stats + 24);
	r->changed = hl_le32(stats + 28);
	r->deleted = hl_le32(stats + 32);
	r->author = copy_str(&at, author, alen);
	r->message = copy_str(&at, message, mlen);
	r->nmeta = nm;
	for (unsigned i = 0; i < nm; i++) {
		r->meta[i].key = copy_str(&at, key[i], klen[i]);
		r->meta[i].value = copy_str(&at, val[i], vlen[i]);
	}
	*out = r;
	return 0;
}

int hl_commit_links(const uint8_t *buf, size_t len, hl_id *tree, hl_id *parents, unsigned *n)
{
	int err = hl_commit_decode(buf, len, NULL);
	if (err)
		return err;
	memcpy(tree->b, buf + 16, HL_ID_LEN);
	*n = buf[6];
	memcpy(parents, buf + HL_COMMIT_HDR, (size_t)*n * HL_ID_LEN);
	return 0;
}
