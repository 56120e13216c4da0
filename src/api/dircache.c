/* dircache.c — encoding of the snapshot stat cache's per-directory rows (dircache.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "api/dircache.h"
#include "base/alloc.h"
#include "base/endian.h"

#define HDR (1 + 8 + HL_ID_LEN)
#define VARINT_MAX 10

static size_t put_varint(uint8_t *p, uint64_t v)
{
	size_t n = 0;
	while (v >= 0x80) {
		p[n++] = (uint8_t)(v | 0x80);
		v >>= 7;
	}
	p[n++] = (uint8_t)v;
	return n;
}

/* 0 and *v, or HL_CORRUPT (truncated, or longer than 64 bits). */
static int get_varint(const uint8_t *buf, size_t len, size_t *pos, uint64_t *v)
{
	uint64_t x = 0;
	for (unsigned shift = 0; shift < 64; shift += 7) {
		if (*pos >= len)
			return HL_CORRUPT;
		uint8_t b = buf[(*pos)++];
		if (shift == 63 && b > 1)
			return HL_CORRUPT;
		x |= (uint64_t)(b & 0x7f) << shift;
		if (!(b & 0x80)) {
			*v = x;
			return 0;
		}
	}
	return HL_CORRUPT;
}

static uint64_t zigzag(uint64_t d) { return (d << 1) ^ (uint64_t)-(int64_t)(d >> 63); }
static uint64_t unzigzag(uint64_t z) { return (z >> 1) ^ (uint64_t)-(int64_t)(z & 1); }

size_t hl_dircache_size_max(size_t n)
{
	return HDR + VARINT_MAX + n * 4 * VARINT_MAX;
}

int hl_dircache_encode(const hl_dircache *c, uint8_t *out, size_t cap, size_t *len)
{
	if (cap < hl_dircache_size_max(c->n))
		return HL_TOOBIG;
	out[0] = HL_DIRCACHE_VERSION;
	hl_put_le64(out + 1, c->cached_ns);
	memcpy(out + 9, c->tree.b, HL_ID_LEN);
	size_t p = HDR + put_varint(out + HDR, c->n);
	uint64_t index = 0, ino = 0, mtime = 0, ctime = 0;
	for (size_t i = 0; i < c->n; i++) {
		const hl_dircache_file *f = &c->f[i];
		if (i && f->index <= index)
			return HL_INVALID;
		p += put_varint(out + p, f->index - index);
		p += put_varint(out + p, zigzag(f->ino - ino));
		p += put_varint(out + p, zigzag(f->mtime_ns - mtime));
		p += put_varint(out + p, zigzag(f->ctime_ns - ctime));
		index = f->index, ino = f->ino, mtime = f->mtime_ns, ctime = f->ctime_ns;
	}
	*len = p;
	return 0;
}

int hl_dircache_decode(const uint8_t *buf, size_t len, hl_dircache *c)
{
	memset(c, 0, sizeof *c);
	if (len < 1)
		return HL_CORRUPT;
	if (buf[0] != HL_DIRCACHE_VERSION)
		return HL_NOTFOUND;
	if (len < HDR)
		return HL_CORRUPT;
	c->cached_ns = hl_le64(buf + 1);
	memcpy(c->tree.b, buf + 9, HL_ID_LEN);
	size_t pos = HDR;
	uint64_t n;
	if (get_varint(buf, len, &pos, &n) || n > (len - pos) / 4) /* each file takes 4 bytes or more */
		return HL_CORRUPT;
	c->f = hl_malloc((n ? n : 1) * sizeof(*c->f));
	if (!c->f)
		return ENOMEM;
	uint64_t index = 0, ino = 0, mtime = 0, ctime = 0;
	for (size_t i = 0; i < n; i++) {
		uint64_t di, a, b, d;
		if (get_varint(buf, len, &pos, &di) || get_varint(buf, len, &pos, &a) ||
		    get_varint(buf, len, &pos, &b) || get_varint(buf, len, &pos, &d) ||
		    (i && di == 0) || di > UINT32_MAX - index) {
			free(c->f);
			c->f = NULL;
			return HL_CORRUPT;
		}
		index += di, ino += unzigzag(a), mtime += unzigzag(b), ctime += unzigzag(d);
		c->f[i] = (hl_dircache_file){(uint32_t)index, ino, mtime, ctime};
	}
	if (pos != len) {
		free(c->f);
		c->f = NULL;
		return HL_CORRUPT;
	}
	c->n = n;
	return 0;
}
