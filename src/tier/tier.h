/* tier.h — the one small interface every storage tier implements (the durable local store now;
 * L2 and remote backends later), so the coordinator composes tiers without knowing what they are
 * and tests can stand in a backend of their own. */
#ifndef HL_TIER_TIER_H
#define HL_TIER_TIER_H
#include <stddef.h>
#include "helios.h"

typedef struct hl_tier_ops {
	const char *name;
	/* 0 and a new reference; HL_NOTFOUND; HL_CORRUPT (never returns unverified bytes); errors. */
	int (*get)(void *self, const hl_id *id, hl_buf **out);
	int (*has)(void *self, const hl_id *id);
	/* All or nothing. ids_trusted: every item's id was computed from its data by this process
	 * just now, so the tier need not hash again. */
	int (*put_batch)(void *self, hl_put_item *items, size_t n, int ids_trusted);
} hl_tier_ops;

typedef struct hl_tier {
	const hl_tier_ops *ops;
	void *self;
} hl_tier;

/* The durable local store as a tier (tier/local.c). */
struct hl_local;
hl_tier hl_tier_local(struct hl_local *s);

#endif
