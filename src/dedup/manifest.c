/* manifest.c — see manifest.h. */
#include <string.h>
#include "base/endian.h"
#include "hash/hash.h"
#include "dedup/manifest.h"

static const uint8_t magic[4] = {'H', 'L', 'M', 'F'};

size_t hl_manifest_size(size_t count)
{
	return HL_MANIFEST_HDR + HL_MANIFEST_ENTRY * count;
}

int hl_manifest_encode(const hl_chunk_ref *c, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	if (!n || n > UINT32_MAX || !c)
		return HL_INVALID;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		if (!c[i].len || c[i].len > HL_MANIFEST_MAX_CHUNK)
			return HL_INVALID;
		total += c[i].len;
	}
	size_t need = hl_manifest_size(n);
	if (cap < need)
		return HL_TOOBIG;
	memcpy(out, magic, 4);
	out[4] = HL_MANIFEST_VERSION;
	out[5] = HL_HASHFN_BLAKE3_256;
	hl_put_le16(out + 6, 0);
	hl_put_le64(out + 8, total);
	hl_put_le32(out + 16, (uint32_t)n);
	hl_put_le32(out + 20, 0);
	for (size_t i = 0; i < n; i++) {
		uint8_t *e = out + HL_MANIFEST_HDR + HL_MANIFEST_ENTRY * i;
		memcpy(e, c[i].id.b, HL_ID_LEN);
		hl_put_le32(e + HL_ID_LEN, c[i].len);
	}
	*len = need;
	return 0;
}

int hl_manifest_decode(const uint8_t *buf, size_t len, hl_manifest *out)
{
	if (!buf || len < HL_MANIFEST_HDR || memcmp(buf, magic, 4) != 0)
		return HL_INVALID;
	if (buf[4] > HL_MANIFEST_VERSION || buf[5] > HL_HASHFN_BLAKE3_256)
		return HL_VERSION;
	if (buf[4] == 0 || buf[5] == 0 || hl_le16(buf + 6) != 0 || hl_le32(buf + 20) != 0)
		return HL_INVALID;
	uint32_t count = hl_le32(buf + 16);
	if (count == 0 || (len - HL_MANIFEST_HDR) / HL_MANIFEST_ENTRY != count ||
	    (len - HL_MANIFEST_HDR) % HL_MANIFEST_ENTRY != 0)
		return HL_INVALID;
	uint64_t total = 0;
	for (uint32_t i = 0; i < count; i++) {
		uint32_t l = hl_le32(buf + HL_MANIFEST_HDR + HL_MANIFEST_ENTRY * (size_t)i + HL_ID_LEN);
		if (l == 0 || l > HL_MANIFEST_MAX_CHUNK)
			return HL_INVALID;
		total += l; /* at most 2^32 × 2^26: no overflow */
	}
	if (total != hl_le64(buf + 8))
		return HL_INVALID;
	out->total = total;
	out->count = count;
	out->entries = buf + HL_MANIFEST_HDR;
	return 0;
}

void hl_manifest_chunk(const hl_manifest *m, uint32_t i, hl_chunk_ref *out)
{
	const uint8_t *e = m->entries + HL_MANIFEST_ENTRY * (size_t)i;
	memcpy(out->id.b, e, HL_ID_LEN);
	out->len = hl_le32(e + HL_ID_LEN);
}
