/* gc.h — the collector of a local store: mark from the roots, sweep what nothing reaches and
 * nobody touched within the grace period, compact sparse segments. See gc.c. */
#ifndef HL_DEDUP_GC_H
#define HL_DEDUP_GC_H
#include "helios.h"
#include "dedup/forgotten.h"
#include "store/store.h"

/* One collection (HL_BUSY if another runs). compact_below: segments whose live bytes are below
 * this fraction of their size are compacted (0: none); repack: a zstd level the records not yet
 * repacked are re-encoded at (hl_local_compact; 0: none). dry_run: count, delete nothing.
 * forgotten (may be NULL): the history forget dropped (links it makes weak are not followed). */
int hl_dedup_gc(hl_local *s, uint64_t grace_s, double compact_below, int repack, int dry_run,
                const hl_forgotten *forgotten, hl_gc_report *res);

#endif
