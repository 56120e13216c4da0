/* manifest.h — the manifest of a large blob: the ids and lengths of its chunks, in order. A large
 * blob's id stays the BLAKE3 of its whole content; its manifest is an object of its own.
 *
 * Format v1, little-endian:
 *   0  magic "HLMF"           4  version (1)        5  hash function (1 = BLAKE3-256)
 *   6  reserved u16 = 0       8  total length u64 (the blob's size: the sum of the chunk lengths)
 *  16  chunk count u32 ≥ 1   20  reserved u32 = 0
 *  24  count × (chunk id [32], chunk length u32, 1 ≤ length ≤ 64 MiB)
 * Exactly 24 + 36 × count bytes: one blob has one encoding. */
#ifndef HL_DEDUP_MANIFEST_H
#define HL_DEDUP_MANIFEST_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

#define HL_MANIFEST_HDR 24u
#define HL_MANIFEST_ENTRY 36u
#define HL_MANIFEST_VERSION 1
#define HL_MANIFEST_MAX_CHUNK (64u << 20)

typedef struct hl_chunk_ref {
	hl_id id;
	uint32_t len;
} hl_chunk_ref;

/* A decoded manifest: a view into the caller's buffer (valid while it is). */
typedef struct hl_manifest {
	uint64_t total;
	uint32_t count;
	const uint8_t *entries;
} hl_manifest;

/* Bytes the encoding of count chunks takes. */
size_t hl_manifest_size(size_t count);
/* Encodes n ≥ 1 chunks into out (hl_manifest_size(n) bytes). HL_INVALID for a bad chunk list
 * (none, a zero or oversized length, more than UINT32_MAX chunks), HL_TOOBIG if cap is short. */
int hl_manifest_encode(const hl_chunk_ref *c, size_t n, uint8_t *out, size_t cap, size_t *len);
/* Parses buf[0..len): 0, HL_VERSION (a newer version or unknown hash function), or HL_INVALID
 * (anything else malformed). Never reads outside buf. */
int hl_manifest_decode(const uint8_t *buf, size_t len, hl_manifest *out);
/* Chunk i (< count) of a decoded manifest. */
void hl_manifest_chunk(const hl_manifest *m, uint32_t i, hl_chunk_ref *out);

#endif
