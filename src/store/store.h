/* store.h — the durable local store ("local" backend): objects appended to segment files,
 * located through the LMDB index, verified on every read.
 *
 * Write path: callers hash (and maybe compress) in their own thread, then queue; the thread at
 * the head of the queue becomes the leader and commits every queued request as one group:
 * records appended, segments synced (sync=always), index transaction committed, all acknowledged
 * together (group commit). A crash leaves at worst unindexed bytes after the indexed tail; the
 * next read-write open re-validates exactly those bytes (never whole segments) and truncates. */
#ifndef HL_STORE_STORE_H
#define HL_STORE_STORE_H
#include "helios.h"

typedef struct hl_local hl_local;

int hl_local_open(const char *dir, const hl_options *opt, hl_local **out);
void hl_local_close(hl_local *s);

/* All or nothing, one sync. Items with check_id are verified; others get their id computed. */
int hl_local_put_batch(hl_local *s, hl_put_item *items, size_t n);
/* The same, for items whose id this process has just computed from their data (not re-hashed). */
int hl_local_put_hashed(hl_local *s, hl_put_item *items, size_t n);
/* hl_local_put_hashed, where bases[i] (may be NULL, as may bases) names a stored object that
 * items[i] probably resembles (an earlier version of the same file): a new item is then stored as
 * a delta against it when that saves at least a quarter of its compressed size (docs/DESIGN.md,
 * "Delta records"). */
int hl_local_put_like(hl_local *s, hl_put_item *items, const hl_id *const *bases, size_t n);
int hl_local_get(hl_local *s, const hl_id *id, hl_buf **out);
/* The base of id when it is stored as a delta (its record's own bytes checked): 0 with *base,
 * HL_NOTFOUND when id is not stored or is no delta, HL_CORRUPT, or an error. */
int hl_local_delta_base(hl_local *s, const hl_id *id, hl_id *base);
int hl_local_has(hl_local *s, const hl_id *id);
/* Reads and verifies id like hl_local_get (a corrupt record is quarantined), into *scratch, which
 * is grown (realloc) to *cap as needed and kept by the caller: a walk over every object without
 * an allocation per object. */
int hl_local_check(hl_local *s, const hl_id *id, uint8_t **scratch, size_t *cap);
int hl_local_stat(hl_local *s, const hl_id *id, hl_stat *out);
int hl_local_iterate(hl_local *s, hl_iter_fn fn, void *ctx);
/* A place in the segments: the record that starts at offset of segment. */
typedef struct hl_seg_pos {
	uint32_t segment;
	uint64_t offset;
} hl_seg_pos;
/* What a scan found at a live record (the copy the index points at): verified (status 0), corrupt
 * (HL_CORRUPT: quarantined, as a read would) or unreadable (EIO or another error; left as is). */
typedef void (*hl_scan_fn)(void *ctx, const hl_id *id, uint64_t raw_len, int status);
/* The memory a scan reads and decompresses into, kept by its caller from one scan to the next:
 * fresh pages cost a fault each, which on a virtual machine cost more than the reading. Starts
 * zeroed; hl_scan_buf_free releases it. */
typedef struct hl_scan_buf {
	uint8_t *win, *scratch;
	size_t win_cap, scratch_cap;
} hl_scan_buf;
void hl_scan_buf_free(hl_scan_buf *b);
/* Verifies live records from *pos on in segment and offset order, reading many records at once
 * (sequential reads into buf), until about max_bytes of them were read; other records are
 * skipped unhashed. A pass ends at *end: where the segments ended when it began (set here when
 * end->segment is 0), so records written meanwhile wait for the next pass and a pass always
 * ends. Advances *pos; at the end of a pass sets *pass_done and both back to 0. */
int hl_local_scan(hl_local *s, hl_scan_buf *buf, hl_seg_pos *pos, hl_seg_pos *end, uint64_t max_bytes,
                  hl_scan_fn fn, void *ctx, int *pass_done);
/* The store side of hl_rebuild_index (dir closed): a new index from the segments, the names
 * copied from the damaged one. The large-blob map is derived again by the caller. */
int hl_local_rebuild_index(const char *dir, const hl_options *opt, hl_rebuild_report *rep);
int hl_local_verify(hl_local *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress,
                    void *ctx, hl_verify_report *out);
int hl_local_stats(hl_local *s, hl_stats *out);
/* Whether the index and the segment files agree (verify --deep, a store at rest): the totals
 * equal the entries, every entry lies inside an existing segment file, and the newest segment
 * ends at its last whole record. HL_CORRUPT with *problems (each logged). */
int hl_local_check_index(hl_local *s, uint64_t *problems);
int hl_local_sync(hl_local *s);
int hl_local_read_only(const hl_local *s);
int hl_local_sync_mode(const hl_local *s);
/* Whether a failed sync stopped writes (HL_STOPPED) until the store is reopened. */
int hl_local_stopped(hl_local *s);
/* ---- collection support (dedup/gc.c drives it; docs/DESIGN.md "Garbage collection") ----
 * A caller that finds an object present and relies on it (does not store it, links it) holds
 * it: hl_local_has and the put paths do so themselves. */

#include "store/entry.h"
typedef struct hl_obj_entry {
	hl_id id;
	hl_idx_entry e;
} hl_obj_entry;
/* Every indexed object (the memtables flushed first); caller frees *out. */
int hl_local_entries(hl_local *s, hl_obj_entry **out, size_t *n);

/* Starts a collection that may delete objects whose access time is at most cutoff (HL_BUSY if
 * one runs): from now on every find of such an object is also held; the index is flushed so
 * access times refreshed before are visible. hl_local_gc_end finishes it. */
int hl_local_gc_begin(hl_local *s, uint64_t cutoff);
/* The collection deletes nothing more (its compaction only moves records): finds are no longer
 * held, and the list of held ids is freed. */
void hl_local_gc_swept(hl_local *s);
void hl_local_gc_end(hl_local *s);
/* Stops writers, flushes and finds (in the store's lock order) while the collector decides. */
void hl_local_gc_lock(hl_local *s);
void hl_local_gc_unlock(hl_local *s);
/* Under the lock: the ids held since position *from (advanced); caller frees *ids. */
int hl_local_gc_take_held_locked(hl_local *s, size_t *from, hl_id **ids, size_t *n);

/* Pins ids[0..n): no collection deletes them until as many unpins (a writer making a large blob's
 * map pins its parts first: a collection that walked before the map cannot take them). 0 or
 * ENOMEM (nothing pinned). */
int hl_local_pin(hl_local *s, const hl_id *ids, size_t n);
/* Takes one pin off each; a running collection keeps them (they are held: it may have walked
 * before the map that names them was made). Never fails: the room to hold them was kept when
 * they were pinned, or when the collection began. */
void hl_local_unpin(hl_local *s, const hl_id *ids, size_t n);

typedef struct hl_gc_victim {
	hl_id id;
	hl_idx_entry e;       /* where the walk saw it */
	const hl_id *large;   /* large blobs mapped to this manifest: unmapped with it */
	size_t nlarge;
} hl_gc_victim;
/* Under the lock, one index transaction: deletes each victim still at e whose access time is
 * at most cutoff (seconds) and that nobody pins. Adds to *objects and *bytes (record bytes). */
int hl_local_gc_delete_locked(hl_local *s, const hl_gc_victim *v, size_t n, uint64_t cutoff,
                              uint64_t *objects, uint64_t *bytes);

typedef struct hl_compact_report {
	uint64_t segments_seen, segments_removed, records_moved, bytes_moved, bytes_reclaimed;
	uint64_t records_repacked, repack_bytes_before, repack_bytes_after; /* record bytes */
} hl_compact_report;
/* Between gc_begin and gc_end: copies the live records of every segment (not the active one)
 * whose live bytes are below `below` of its size into the active segment, syncs, and deletes
 * the old files once no entry points into them. Reads and writes continue meanwhile.
 * repack_level > 0 also takes every segment holding a record not yet repacked at that zstd level
 * (the active one too: writes move to a new segment) and re-encodes those records at it, each
 * against a similar object where that pays and nothing depends on it (store_repack.c).
 * rate > 0 paces it: the records it moves (their raw bytes) stay within rate bytes per second
 * of the time since it began (it sleeps between batches, holding only the collection). */
int hl_local_compact(hl_local *s, double below, int repack_level, unsigned repack_threads,
                     uint64_t rate, hl_compact_report *rep);

/* Makes a running compaction (and every later one) stop after its current batch: the store is
 * about to close, and a paced pass may have hours to go. What it moved stays where it is now. */
void hl_local_stop_compaction(hl_local *s);

/* The LMDB index, for the name tables (store/names.h) that live beside the objects. */
struct hl_index *hl_local_index(hl_local *s);

#endif
