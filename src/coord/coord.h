/* coord.h — the coordinator: every object operation of the API passes through it on its way to
 * the L1 cache and the tiers.
 *  - 1024 shards by id; a shard's mutex is held only to look up or publish an operation in
 *    flight, never across I/O, so reads of present objects never wait behind writers.
 *  - single-flight: concurrent gets of one id that miss the L1 share one read below it;
 *    concurrent puts of one id share one write.
 *  - admission: reads below the L1 and writes each have a bounded number in flight, globally
 *    and per shard; the global bound adapts to latency (decreased when a window's mean latency
 *    climbs well above the lowest seen, raised while it stays near it). Past the bound a call
 *    returns HL_BUSY at once. L1 hits and calls that join an operation in flight are not limited.
 *  - metrics (coord/metrics.h) and a worker pool that evaluates health periodically. */
#ifndef HL_COORD_COORD_H
#define HL_COORD_COORD_H
#include <stddef.h>
#include "helios.h"
#include "cache/l1.h"
#include "coord/metrics.h"
#include "tier/tier.h"

#define HL_COORD_SHARDS 1024
/* admission classes: gets below the L1, has, puts and batches */
enum { HL_CLASS_READ, HL_CLASS_HAS, HL_CLASS_WRITE, HL_CLASSES_ };

typedef struct hl_coord_options {
	unsigned max_inflight;   /* ceiling of each class's limit; 0 = no admission control */
	unsigned min_inflight;   /* the adaptive limit's floor, default 4 */
	unsigned shard_inflight; /* per shard and class, default 64 */
	int adaptive;            /* adapt the limit to latency */
	unsigned window_ms;      /* limiter window, default 100 */
	double tolerance;        /* congested when a window's mean > tolerance × the lowest; default 3 */
	unsigned health_interval_ms; /* periodic health evaluation; 0 = only on request */
	hl_health_thresholds health;
	uint64_t max_object_size; /* puts above it: HL_TOOBIG */
	int (*writes_stopped)(void *ctx); /* health 0 while this says so (a failed sync); may be NULL */
	void *writes_stopped_ctx;
} hl_coord_options;

typedef struct hl_coord hl_coord;

/* l1 may be NULL. The coordinator uses but does not own the tier and the cache. */
int hl_coord_new(hl_tier tier, hl_l1 *l1, const hl_coord_options *opt, hl_coord **out);
void hl_coord_free(hl_coord *c);

int hl_coord_get(hl_coord *c, const hl_id *id, hl_buf **out);
/* As hl_coord_get, but an object the tier would have to assemble (a large blob: tier get_whole)
 * is HL_NOTFOUND: for streaming readers, which read such a blob chunk by chunk. */
int hl_coord_get_whole(hl_coord *c, const hl_id *id, hl_buf **out);
/* As hl_coord_get_whole, but a miss does not fill the L1: for a scan (a restore), which reads
 * each object about once; filling the cache would only cost fresh memory, a page fault per 4 KiB. */
int hl_coord_get_scan(hl_coord *c, const hl_id *id, hl_buf **out);
int hl_coord_get_into(hl_coord *c, const hl_id *id, void *dst, size_t cap, size_t *len);
int hl_coord_has(hl_coord *c, const hl_id *id);
/* expect may be NULL; else the data must hash to it (HL_MISMATCH). */
int hl_coord_put(hl_coord *c, const hl_id *expect, const void *data, size_t len, hl_id *id, int *created);
int hl_coord_put_batch(hl_coord *c, hl_put_item *items, size_t n);
/* The same for items whose ids the caller has just computed from their data (not hashed again). */
int hl_coord_put_hashed(hl_coord *c, hl_put_item *items, size_t n);
/* hl_coord_put_hashed through put_like(self, items, bases, n) instead of the tier's put_batch (a
 * backend's delta-aware put: tier/backend.h), admitted and measured the same way. */
typedef int (*hl_put_like_fn)(void *self, hl_put_item *items, const hl_id *const *bases, size_t n);
int hl_coord_put_like(hl_coord *c, hl_put_item *items, const hl_id *const *bases, size_t n,
                      hl_put_like_fn put_like, void *self);
/* What a batch put does before storing: every item checked (data, size) and its id computed
 * and checked against check_id; then hl_coord_put_hashed stores them without hashing again. */
int hl_coord_hash_items(const hl_coord *c, hl_put_item *items, size_t n);

/* Corruption found outside the request path (a verify run) counts against health. */
void hl_coord_note_corrupt(hl_coord *c, uint64_t n);

typedef struct hl_coord_stats {
	uint64_t joined;             /* calls that shared another call's read or write */
	uint64_t busy;               /* calls refused with HL_BUSY */
	uint64_t inflight[HL_CLASSES_], limit[HL_CLASSES_]; /* per class, now (limit 0: unlimited) */
	uint64_t decreases, increases;  /* limiter adjustments */
} hl_coord_stats;
void hl_coord_stats_get(hl_coord *c, hl_coord_stats *out);
hl_metrics *hl_coord_metrics(hl_coord *c);

#endif
