/* record.c — encode and decode of record headers and segment headers; every field is checked. */
#include <string.h>
#include "hash/hash.h"
#include "store/record.h"

static const uint8_t rec_magic[4] = {'H', 'L', 'R', 'C'};
static const uint8_t seg_magic[4] = {'H', 'L', 'S', 'G'};

/* First four bytes of BLAKE3 over the 60 bytes before the check field. */
static uint32_t header_check(const uint8_t *h)
{
	hl_id d;
	hl_hash(h, 60, &d);
	return hl_le32(d.b);
}

static int all_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			return 0;
	return 1;
}

void hl_rec_encode(const hl_rec_hdr *h, uint8_t out[HL_REC_HDR_LEN])
{
	memset(out, 0, HL_REC_HDR_LEN);
	memcpy(out, rec_magic, 4);
	out[4] = h->version;
	out[5] = h->hashfn;
	hl_put_le16(out + 6, h->flags);
	memcpy(out + 8, h->id.b, HL_ID_LEN);
	hl_put_le64(out + 40, h->stored_len);
	hl_put_le64(out + 48, h->raw_len);
	hl_put_le32(out + 60, header_check(out));
}

int hl_rec_decode(const uint8_t *buf, size_t len, hl_rec_hdr *out)
{
	if (len < HL_REC_HDR_LEN || memcmp(buf, rec_magic, 4) != 0)
		return HL_CORRUPT;
	if (hl_le32(buf + 60) != header_check(buf) || !all_zero(buf + 56, 4))
		return HL_CORRUPT;
	hl_rec_hdr h;
	h.version = buf[4];
	h.hashfn = buf[5];
	h.flags = hl_le16(buf + 6);
	memcpy(h.id.b, buf + 8, HL_ID_LEN);
	h.stored_len = hl_le64(buf + 40);
	h.raw_len = hl_le64(buf + 48);
	if (h.version != HL_REC_VERSION || h.hashfn != HL_HASHFN_BLAKE3_256 || (h.flags & ~HL_REC_F_KNOWN))
		return HL_VERSION;
	if (h.stored_len > HL_REC_MAX_LEN || h.raw_len > HL_REC_MAX_LEN)
		return HL_CORRUPT;
	if ((h.flags & HL_REC_F_DELTA) && (h.flags & HL_REC_F_ZSTD))
		return HL_CORRUPT;
	if (h.flags & HL_REC_F_DELTA) {
		if (h.stored_len <= HL_DELTA_PREFIX_LEN || h.stored_len >= h.raw_len)
			return HL_CORRUPT; /* a delta is kept only when it shrinks */
	} else if (h.flags & HL_REC_F_ZSTD) {
		if (h.stored_len == 0 || h.stored_len >= h.raw_len)
			return HL_CORRUPT; /* compression is kept only when it shrinks */
	} else if (h.stored_len != h.raw_len) {
		return HL_CORRUPT;
	}
	*out = h;
	return 0;
}

void hl_delta_check(const uint8_t *payload, size_t len, uint8_t out[16])
{
	uint8_t prefix[HL_DELTA_PREFIX_LEN];
	memcpy(prefix, payload, sizeof prefix);
	memset(prefix + 32, 0, 16);
	hl_id d;
	hl_hash_two(prefix, sizeof prefix, payload + HL_DELTA_PREFIX_LEN, len - HL_DELTA_PREFIX_LEN, &d);
	memcpy(out, d.b, 16);
}

void hl_delta_prefix_encode(const hl_delta_prefix *d, uint8_t out[HL_DELTA_PREFIX_LEN])
{
	memset(out, 0, HL_DELTA_PREFIX_LEN);
	memcpy(out, d->base.b, HL_ID_LEN);
	memcpy(out + 32, d->check, 16);
	out[48] = (uint8_t)d->depth;
}

int hl_delta_prefix_decode(const uint8_t *buf, size_t len, hl_delta_prefix *out)
{
	if (len <= HL_DELTA_PREFIX_LEN || buf[48] < 1 || buf[48] > HL_DELTA_MAX_DEPTH ||
	    !all_zero(buf + 49, 7))
		return HL_CORRUPT;
	memcpy(out->base.b, buf, HL_ID_LEN);
	memcpy(out->check, buf + 32, 16);
	out->depth = buf[48];
	return 0;
}

void hl_seg_hdr_encode(uint32_t segno, uint64_t created, uint8_t out[HL_SEG_HDR_LEN])
{
	memset(out, 0, HL_SEG_HDR_LEN);
	memcpy(out, seg_magic, 4);
	out[4] = HL_SEG_VERSION;
	hl_put_le32(out + 8, segno);
	hl_put_le64(out + 16, created);
	hl_put_le32(out + 60, header_check(out));
}

int hl_seg_hdr_decode(const uint8_t *buf, size_t len, uint32_t *segno)
{
	if (len < HL_SEG_HDR_LEN || memcmp(buf, seg_magic, 4) != 0)
		return HL_CORRUPT;
	if (hl_le32(buf + 60) != header_check(buf))
		return HL_CORRUPT;
	if (buf[4] != HL_SEG_VERSION)
		return HL_VERSION;
	if (!all_zero(buf + 5, 3) || !all_zero(buf + 12, 4) || !all_zero(buf + 24, 36))
		return HL_CORRUPT;
	*segno = hl_le32(buf + 8);
	return 0;
}
