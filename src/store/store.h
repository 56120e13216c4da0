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
int hl_local_get(hl_local *s, const hl_id *id, hl_buf **out);
int hl_local_has(hl_local *s, const hl_id *id);
int hl_local_stat(hl_local *s, const hl_id *id, hl_stat *out);
int hl_local_iterate(hl_local *s, hl_iter_fn fn, void *ctx);
int hl_local_verify(hl_local *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress,
                    void *ctx, hl_verify_report *out);
int hl_local_stats(hl_local *s, hl_stats *out);
int hl_local_sync(hl_local *s);
int hl_local_read_only(const hl_local *s);
int hl_local_sync_mode(const hl_local *s);
/* The LMDB index, for the name tables (store/names.h) that live beside the objects. */
struct hl_index *hl_local_index(hl_local *s);

#endif
