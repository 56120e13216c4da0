/* names.h — the names a store keeps in its index, beside the objects:
 *  - refs: a name → an object id, changed only by compare-and-swap;
 *  - kv namespaces: an opaque key → an object id and its size, each namespace bounded in bytes,
 *    the least recently used entries evicted past the bound (build caches never delete);
 *  - large blobs: a blob's id → its manifest's id and size (the blob is stored as chunks);
 *  - the stat cache of snapshots: a file's (device, inode) → what it held when last hashed.
 * Values are objects stored the usual way; a name only points at one. Every update is one LMDB
 * write transaction, synced before it returns when the store syncs always. */
#ifndef HL_STORE_NAMES_H
#define HL_STORE_NAMES_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "store/nametab.h"
#include "store/store.h"

int hl_names_ref_get(hl_local *s, const char *name, hl_id *out);
/* expect NULL: the ref must not exist; target NULL: delete. force: ignore expect.
 * HL_CONFLICT when the current value is not the expected one. */
int hl_names_ref_set(hl_local *s, const char *name, const hl_id *expect, const hl_id *target,
                     int force);
int hl_names_ref_list(hl_local *s, const char *prefix, hl_ref_fn fn, void *ctx);

/* Looks key up; refreshes its access time when that is older than HL_KV_TOUCH_MS. */
int hl_names_kv_get(hl_local *s, const char *ns, const void *key, size_t klen, hl_id *id,
                    uint64_t *size);
/* Points key at id (size bytes), evicting the namespace's least recently used entries while it
 * holds more than bound bytes. HL_TOOBIG if size alone exceeds bound. */
int hl_names_kv_set(hl_local *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                    uint64_t size, uint64_t bound, uint64_t *evicted);
int hl_names_kv_delete(hl_local *s, const char *ns, const void *key, size_t klen);
/* Calls fn with the object id of every kv entry of every namespace (the collector's roots). */
typedef int (*hl_kv_id_fn)(const hl_id *id, void *ctx);
int hl_names_kv_each(hl_local *s, hl_kv_id_fn fn, void *ctx);
int hl_names_kv_usage(hl_local *s, const char *ns, uint64_t *bytes, uint64_t *entries);

/* Large blobs. put is idempotent; written after the chunks and manifest are stored. */
int hl_names_large_get(hl_local *s, const hl_id *id, hl_id *manifest, uint64_t *size);
int hl_names_large_put(hl_local *s, const hl_id *id, const hl_id *manifest, uint64_t size);
/* The same for n blobs in one transaction: all mapped or none. */
typedef struct hl_large_map {
	hl_id id, manifest;
	uint64_t size;
} hl_large_map;
int hl_names_large_put_n(hl_local *s, const hl_large_map *m, size_t n);
/* Removes id's mapping if it names manifest (0 also when it does not). */
int hl_names_large_del(hl_local *s, const hl_id *id, const hl_id *manifest);
typedef int (*hl_large_fn)(const hl_id *id, const hl_id *manifest, uint64_t size, void *ctx);
int hl_names_large_each(hl_local *s, hl_large_fn fn, void *ctx);
/* Number of large blobs. */
int hl_names_large_count(hl_local *s, uint64_t *blobs);

/* Stat cache (the snapshot's; its rows' contents are api/dircache.h's): a row per (device, inode)
 * of a directory. A hit is only a hint: the caller decides whether to trust it. */
typedef struct hl_scache_row {
	uint64_t dev, ino;
	const uint8_t *val;
	size_t len;
} hl_scache_row;
/* 0 and a copy of the row in *val (the caller frees it), HL_NOTFOUND, or an error. */
int hl_names_scache_get(hl_local *s, uint64_t dev, uint64_t ino, uint8_t **val, size_t *len);
/* Records n rows in one transaction (not synced: a lost update only costs a re-hash). The first
 * write into a table of the per-file rows of older builds (format 2) empties it. */
int hl_names_scache_put(hl_local *s, const hl_scache_row *rows, size_t n);

#endif
