/* record.h — the on-disk record and segment-header formats (encode, decode, validate).
 *
 * A record is a 64-byte header followed by its payload. Header, little-endian:
 *   0  magic "HLRC"      4  version (1)      5  hash function (1 = BLAKE3-256)
 *   6  flags u16 (bit 0: payload is zstd; bit 1: the object may name other objects, i.e. it
 *      begins with the magic of a tree "HLTR", a manifest "HLMF" or a commit "HLCM": the
 *      collector reads it; bit 2: payload is a delta against a base object, below)
 *   8  id [32]
 *  40  stored_len u64 (payload bytes)       48  raw_len u64 (object bytes)
 *  56  reserved u32 (0)                     60  header check u32 (BLAKE3 of bytes 0..59, first 4)
 * A delta payload (bit 2; never with bit 0) is a 56-byte prefix and a zstd frame compressed with
 * the base object's bytes as its prefix (zstd's --patch-from mechanism):
 *   0  base id [32]   32  check [16] (BLAKE3 of the whole payload with these 16 bytes zero, first
 *      16 bytes)   48  depth u8 (1 + the base's depth; 1..HL_DELTA_MAX_DEPTH)   49  reserved [7] (0)
 * The check lets walks over segments confirm a delta record whole (prefix and frame) without its
 * base; a read resolves the chain and re-hashes the result against the id like any record.
 * A segment file starts with a 64-byte segment header:
 *   0  magic "HLSG"  4 version (1)  5..7 reserved (0)  8 segment number u32  12 reserved u32 (0)
 *  16  created (seconds since the epoch) u64   24..59 reserved (0)   60 header check u32 */
#ifndef HL_STORE_RECORD_H
#define HL_STORE_RECORD_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "base/endian.h"

#define HL_REC_HDR_LEN 64
#define HL_SEG_HDR_LEN 64
#define HL_REC_VERSION 1
#define HL_SEG_VERSION 1
#define HL_REC_F_ZSTD 0x0001u
#define HL_REC_F_LINKS 0x0002u
#define HL_REC_F_DELTA 0x0004u
#define HL_REC_F_KNOWN (HL_REC_F_ZSTD | HL_REC_F_LINKS | HL_REC_F_DELTA)
#define HL_DELTA_PREFIX_LEN 56
#define HL_DELTA_MAX_DEPTH 8
#define HL_REC_MAX_LEN (UINT64_C(1) << 40) /* sanity cap on lengths read from disk */

typedef struct hl_rec_hdr {
	uint8_t version, hashfn;
	uint16_t flags;
	hl_id id;
	uint64_t stored_len, raw_len;
} hl_rec_hdr;

/* Whether an object's bytes get HL_REC_F_LINKS: they begin with "HLTR", "HLMF" or "HLCM". */
static inline int hl_rec_links_magic(const uint8_t *buf, size_t len)
{
	return len >= 4 && buf[0] == 'H' && buf[1] == 'L' &&
	       ((buf[2] == 'T' && buf[3] == 'R') || (buf[2] == 'M' && buf[3] == 'F') ||
	        (buf[2] == 'C' && buf[3] == 'M'));
}

void hl_rec_encode(const hl_rec_hdr *h, uint8_t out[HL_REC_HDR_LEN]);
/* 0, HL_CORRUPT (bad magic, check, lengths, reserved bytes) or HL_VERSION (valid header of a
 * newer version, hash function or flag set). Reads only buf[0..len). */
int hl_rec_decode(const uint8_t *buf, size_t len, hl_rec_hdr *out);

typedef struct hl_delta_prefix {
	hl_id base;
	uint8_t check[16];
	unsigned depth;
} hl_delta_prefix;
void hl_delta_prefix_encode(const hl_delta_prefix *d, uint8_t out[HL_DELTA_PREFIX_LEN]);
/* The prefix of a delta payload buf[0..len) (at least the prefix and one frame byte); HL_CORRUPT
 * when malformed (depth out of range, reserved bytes set). */
int hl_delta_prefix_decode(const uint8_t *buf, size_t len, hl_delta_prefix *out);
/* The check of a delta payload buf[0..len) (len > HL_DELTA_PREFIX_LEN; its check field is
 * taken as zero). */
void hl_delta_check(const uint8_t *payload, size_t len, uint8_t out[16]);

void hl_seg_hdr_encode(uint32_t segno, uint64_t created, uint8_t out[HL_SEG_HDR_LEN]);
int hl_seg_hdr_decode(const uint8_t *buf, size_t len, uint32_t *segno);

#endif
