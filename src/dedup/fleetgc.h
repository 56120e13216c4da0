/* fleetgc.h — the collector of a shared backend: one collection at a time across every node on
 * the bucket, online, by the protocol of docs/DESIGN.md ("Collecting a shared bucket"); the
 * nodes' side of it is tier/fleet.h. */
#ifndef HL_DEDUP_FLEETGC_H
#define HL_DEDUP_FLEETGC_H
#include <stdint.h>
#include "helios.h"
#include "dedup/forgotten.h"
#include "tier/backend.h"

typedef struct hl_fleet_gc_options {
	uint64_t grace_s;   /* objects written within this long (by the bucket's clock) are roots */
	unsigned lease_ms;  /* the nodes' lease (hl_fleet_config.lease_ms) */
	int dry_run;        /* mark and report; condemn nothing */
	const char *owner;  /* this node's id (in the state object) */
	uint64_t kv_bound;  /* bytes of values a kv namespace keeps (newest writes first); 0: all */
	const hl_forgotten *forgotten; /* what forget dropped: weak links (may be NULL) */
} hl_fleet_gc_options;

/* HL_BUSY when another collector holds the bucket; HL_CORRUPT when a tree or manifest that is
 * reachable cannot be read (nothing is deleted); HL_UNAVAILABLE when a live node did not
 * acknowledge the condemned list in time (nothing is deleted). */
int hl_fleet_gc(hl_backend be, const hl_fleet_gc_options *o, hl_gc_report *r);

#endif
