/* l1.h — the L1 memory cache: verified objects kept as reference-counted buffers, bounded in
 * bytes, sharded by id bits. A hit is a lookup plus a reference (hl_l1_get) or a borrow of the bytes
 * (hl_l1_borrow): no copy, no allocation. Policies: SIEVE (default: a hit takes no lock and writes
 * nothing shared but a visited bit, once; readers are protected by epochs) and LRU (the baseline: a
 * hit moves the entry to the front, under the shard's lock). Not a source of truth: callers put
 * only bytes they have verified against the id. */
#ifndef HL_CACHE_L1_H
#define HL_CACHE_L1_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef struct hl_l1 hl_l1;
enum { HL_L1_SIEVE = 0, HL_L1_LRU = 1 };

typedef struct hl_l1_stats {
	uint64_t hits, misses, inserts, evictions, bytes, entries, capacity;
} hl_l1_stats;

/* max_bytes bounds the sum of cached object sizes (plus a small per-entry overhead); objects larger
 * than max_object are never cached. 2^shard_bits shards (≤ 12), each with max_bytes / 2^bits. NULL
 * on bad arguments or out-of-memory. */
hl_l1 *hl_l1_new(uint64_t max_bytes, uint64_t max_object, int policy, unsigned shard_bits);
void hl_l1_free(hl_l1 *c); /* drops the cache's references; buffers held by callers stay valid */

/* 0 and a new reference in *out on a hit; HL_NOTFOUND on a miss. */
int hl_l1_get(hl_l1 *c, const hl_id *id, hl_buf **out);
/* A borrow of cached bytes: valid until hl_l1_unpin, which must come soon, from this
 * thread or another (a borrow holds back the freeing of everything evicted meanwhile; past 64 MiB of such
 * garbage, writers wait for it: so a thread holding a borrow never puts or removes before its
 * unpin). Writes no reference count. */
typedef struct hl_l1_pin {
	unsigned slot, parity;
} hl_l1_pin;
/* 0 and the bytes in *data, *len (pinned: call hl_l1_unpin); HL_NOTFOUND (nothing pinned). */
int hl_l1_borrow(hl_l1 *c, const hl_id *id, hl_l1_pin *pin, const uint8_t **data, size_t *len);
void hl_l1_unpin(hl_l1 *c, hl_l1_pin *pin);
/* Caches b under id (taking its own reference) unless it is too big or already cached. */
void hl_l1_put(hl_l1 *c, const hl_id *id, hl_buf *b);
/* Removes id if cached. */
void hl_l1_remove(hl_l1 *c, const hl_id *id);
void hl_l1_stats_get(hl_l1 *c, hl_l1_stats *out);

#endif
