/* l2.h — the L2 cache: verified objects kept on local disk (SSD) in front of a slow or remote
 * tier. One file of fixed-size regions used as a ring: new entries are appended to the region being
 * filled (in memory, written a whole region at a time); when the ring wraps, the oldest region is
 * evicted at once, except entries read since they were written, which are carried into the new
 * region (FIFO with reinsertion). Entries above a size threshold are LZ4-compressed when that
 * saves space. The index lives in memory and is rebuilt from the region and entry headers on open.
 * A corrupt or unreadable entry is a counted miss, never data. Not a source of truth.
 *
 * Region: header (64 B: magic "HL2R", version 1, reserved, sequence u64 (0: never written),
 * used bytes u32, check u32 = first 4 bytes of BLAKE3 of bytes 0..59), then entries, 8-byte
 * aligned: header (56 B: magic "HL2E", flags u8 (bit 0: LZ4), reserved, raw length u32, stored
 * length u32, id [32], reserved u32, check u32 over bytes 0..51), then the stored bytes. */
#ifndef HL_CACHE_L2_H
#define HL_CACHE_L2_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef struct hl_l2 hl_l2;

typedef struct hl_l2_stats {
	uint64_t hits, misses, corrupt, inserts, evictions, reinserted, flushes, entries, bytes;
	uint64_t capacity;
} hl_l2_stats;

/* Opens (creating) the cache file at path: bytes in regions of region_size (at least 2 regions;
 * region_size a multiple of 4 KiB, 64 KiB..1 GiB). Objects of at least lz4_min bytes are
 * compressed when it saves 1/16. Rebuilds the index from the file. */
int hl_l2_open(const char *path, uint64_t bytes, uint32_t region_size, uint32_t lz4_min, hl_l2 **out);
/* Writes the region being filled and closes. */
void hl_l2_close(hl_l2 *c);

/* 0 and a new buffer (verified against id) in *out, or HL_NOTFOUND. */
int hl_l2_get(hl_l2 *c, const hl_id *id, hl_buf **out);
/* 0 if an entry for id is indexed (not read: it may still turn out unreadable), else HL_NOTFOUND. */
int hl_l2_has(hl_l2 *c, const hl_id *id);
/* Caches data under id (the caller has verified it). Objects larger than a region are skipped. */
int hl_l2_put(hl_l2 *c, const hl_id *id, const void *data, size_t len);
/* Writes the region being filled now (it stays the one being filled). */
int hl_l2_flush(hl_l2 *c);
void hl_l2_stats_get(hl_l2 *c, hl_l2_stats *out);
/* The ids of the most recently written (or carried) entries, newest first, as many as fit in
 * max_bytes of their sizes: what a restarted node should have in memory first. Caller frees. */
int hl_l2_recent(hl_l2 *c, uint64_t max_bytes, hl_id **ids, size_t *n);

#endif
