/* tier.h — the one small interface every storage tier implements (the durable local store, an
 * S3-compatible bucket, the L2-over-durable stack), so the coordinator composes tiers without
 * knowing what they are and tests can stand in a backend of their own. */
#ifndef HL_TIER_TIER_H
#define HL_TIER_TIER_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef struct hl_tier_ops {
	const char *name;
	/* 0 and a new reference; HL_NOTFOUND; HL_CORRUPT (never returns unverified bytes); errors. */
	int (*get)(void *self, const hl_id *id, hl_buf **out);
	int (*has)(void *self, const hl_id *id);
	/* All or nothing. ids_trusted: every item's id was computed from its data by this process
	 * just now, so the tier need not hash again. */
	int (*put_batch)(void *self, hl_put_item *items, size_t n, int ids_trusted);
	/* Optional: as get, for an object stored whole only (HL_NOTFOUND for one the tier would
	 * assemble from parts: dedup/resolve.h). NULL: get. */
	int (*get_whole)(void *self, const hl_id *id, hl_buf **out);
} hl_tier_ops;

typedef struct hl_tier {
	const hl_tier_ops *ops;
	void *self;
} hl_tier;

/* The backends (local store, bucket, helios server) are tiers too: tier/backend.h. */

/* The tier manager's stack (tier/stack.c): an L2 cache (may be NULL) in front of a durable tier;
 * objects above l2_max_object bypass the L2. Neither is owned. has_from_l2: has may answer from
 * the L2's index (not where a collector of the durable tier may delete what the L2 still holds:
 * a shared bucket). */
struct hl_l2;
typedef struct hl_tier_stack hl_tier_stack;
int hl_tier_stack_new(struct hl_l2 *l2, uint64_t l2_max_object, hl_tier durable, int has_from_l2,
                      hl_tier_stack **out);
hl_tier hl_tier_stack_tier(hl_tier_stack *t);
/* Starts the promotion worker: the L2's newest entries, up to max_bytes, are read (verified) and
 * put into l1 in the background, skipping what readers already brought there. Stopped by
 * hl_tier_stack_free. */
struct hl_l1;
int hl_tier_stack_promote(hl_tier_stack *t, struct hl_l1 *l1, uint64_t max_bytes);
uint64_t hl_tier_stack_promoted(hl_tier_stack *t);
void hl_tier_stack_free(hl_tier_stack *t); /* stops the worker first */

#endif
