/* gc.h — the collector of a local store: mark from the roots, sweep what nothing reaches and
 * nobody touched within the grace period, compact sparse segments. See gc.c. */
#ifndef HL_DEDUP_GC_H
#define HL_DEDUP_GC_H
#include "helios.h"
#include "dedup/forgotten.h"
#include "store/store.h"

/* One collection (HL_BUSY if another runs), as opt says (helios.h: compaction, repacking, dry
 * run). forgotten (may be NULL): the history forget dropped (links it makes weak are not
 * followed). */
int hl_dedup_gc(hl_local *s, uint64_t grace_s, const hl_gc_options *opt, const hl_forgotten *forgotten,
                hl_gc_report *res);

#endif
