/* memtab.h — index entries that are durable in segment files but not yet committed to LMDB.
 * A fixed-capacity open-addressing table: one writer (the committing leader) inserts, any thread
 * looks up without locks. Slots are written once (EMPTY → LIVE) and may later die (LIVE → DEAD,
 * when a record is quarantined); they are never reused, so a reader never sees a torn entry.
 * The store swaps a full or aged table out and commits it to LMDB in one transaction. */
#ifndef HL_STORE_MEMTAB_H
#define HL_STORE_MEMTAB_H
#include <stddef.h>
#include "store/index.h"

typedef struct hl_memtab hl_memtab;

/* A table of 2^bits slots that accepts inserts until half full. NULL on out-of-memory. */
hl_memtab *hl_memtab_new(unsigned bits);
void hl_memtab_free(hl_memtab *t);
/* Empties the table for reuse (no reader may be using it). Touches only the slots in use. */
void hl_memtab_clear(hl_memtab *t);
/* Slots used (live or dead), how many more inserts fit, and the table's size (2^bits slots). */
size_t hl_memtab_used(const hl_memtab *t);
size_t hl_memtab_room(const hl_memtab *t);
unsigned hl_memtab_bits(const hl_memtab *t);

/* Writer only. HL_TOOBIG when full. The caller ensures no live entry for id exists. */
int hl_memtab_put(hl_memtab *t, const hl_id *id, const hl_idx_entry *e);
/* Any thread: 0 and *out for a live entry, HL_NOTFOUND otherwise. */
int hl_memtab_get(const hl_memtab *t, const hl_id *id, hl_idx_entry *out);
/* Any thread: marks id's live entry dead if it still points at (segment, offset). 1 if killed. */
int hl_memtab_kill(hl_memtab *t, const hl_id *id, uint32_t segment, uint64_t offset);
/* Calls fn for every live entry; stops on nonzero and returns it. No concurrent writer allowed. */
int hl_memtab_each(const hl_memtab *t, int (*fn)(const hl_id *, const hl_idx_entry *, void *), void *ctx);

#endif
