/* loctab.h — the object index held in memory: every entry of the LMDB object table, by id, so a
 * lookup costs one probe of a hash table instead of a descent through B-tree pages (on a large
 * store those pages are cold in the TLB and the CPU cache: 15–22 µs a lookup at 10 M objects on
 * this machine, against 0.2–0.4 µs for the table). LMDB stays the durable index; this is a copy
 * that the store keeps equal to it: built from it after open (in the background, so open stays
 * fast), then changed in the same critical sections as it, after each successful commit. Until
 * the build is complete, or after a failed allocation (the table then gives up for good), lookups
 * answer HL_BUSY and the caller reads LMDB.
 * Sharded by id; each shard an open-addressing table under its own read-write lock, grown by
 * half when four fifths full, its slots populated when allocated, in huge pages where the kernel
 * gives them. The shard locks are leaves: no other lock is taken while one is held. */
#ifndef HL_STORE_LOCTAB_H
#define HL_STORE_LOCTAB_H
#include <stddef.h>
#include <stdint.h>
#include "hash/hash.h"
#include "store/entry.h"

typedef struct hl_loctab hl_loctab;

/* An empty table, not yet complete. NULL on out-of-memory. */
hl_loctab *hl_loctab_new(void);
void hl_loctab_free(hl_loctab *t);
/* 0 and *out when id has an entry, HL_NOTFOUND when it has none, HL_BUSY when the table cannot
 * tell (not complete, or given up). */
int hl_loctab_get(hl_loctab *t, const hl_id *id, hl_idx_entry *out);
/* Sets id's entry (added or replaced). */
void hl_loctab_put(hl_loctab *t, const hl_id *id, const hl_idx_entry *e);
/* Removes id's entry, if any. */
void hl_loctab_del(hl_loctab *t, const hl_id *id);
/* Raises id's access time to atime, if it has an entry with an older one. */
void hl_loctab_touch(hl_loctab *t, const hl_id *id, uint64_t atime);
/* The build has seen every entry: lookups are answered from now on (unless given up). */
void hl_loctab_complete(hl_loctab *t);
/* Gives up: lookups answer HL_BUSY for good (a change could not be recorded). */
void hl_loctab_give_up(hl_loctab *t);
/* Whether lookups are answered; entries held; bytes of slots allocated. */
int hl_loctab_ready(hl_loctab *t);
uint64_t hl_loctab_count(hl_loctab *t);
uint64_t hl_loctab_bytes(hl_loctab *t);

#endif
