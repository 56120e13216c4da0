/* backend.h — the one contract every durable backend implements under the api (docs/DESIGN.md,
 * "Backends"): objects and names, and what the backend can do. The local store, an S3-compatible
 * bucket shared by many nodes, and another helios server implement it; the api holds one backend
 * and never asks which it is. Its object part is a tier (the coordinator reads and writes through
 * it, with an L2 stacked in front of a remote one); names go to the backend directly. */
#ifndef HL_TIER_BACKEND_H
#define HL_TIER_BACKEND_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "remote/http.h"
#include "store/names.h"
#include "tier/tier.h"

enum {
	HL_BE_SHARED = 1,   /* other nodes write it too: nothing about it is this node's alone */
	HL_BE_CHUNKS = 2,   /* this node chunks large blobs into it and keeps their map there (the
	                       large_* calls); else the backend takes large objects whole (a helios
	                       server chunks them itself) */
	HL_BE_LIST = 4,     /* its objects can be listed (verify, iterate) */
	HL_BE_KV_BOUND = 8, /* kv namespaces are bounded by kv_set's bound (LRU eviction) */
	HL_BE_FLEET = 16,   /* shared, with the control objects and aged listings that the fleet's
	                       collection protocol (tier/fleet.h, dedup/fleetgc.c) runs on */
};

/* A control key as listed: its name (without the backend's prefix), size and last change by the
 * backend's clock. */
typedef struct hl_key_entry {
	const char *key;
	size_t len;
	uint64_t size;
	int64_t mtime_ms;
} hl_key_entry;
typedef int (*hl_key_fn)(const hl_key_entry *e, void *ctx);
/* An object (or a large-blob map entry) with its last write by the backend's clock. */
typedef int (*hl_aged_fn)(const hl_id *id, uint64_t size, int64_t mtime_ms, void *ctx);
enum { HL_BE_BLOB, HL_BE_LARGE }; /* what list_aged and remove walk: objects, or the large map */

typedef struct hl_backend_ops {
	hl_tier_ops obj;   /* first: get / has / put_batch (see tier.h) */
	const char *kind;  /* "local", "s3", "helios" */
	unsigned caps;     /* HL_BE_* */
	/* A whole stored object (not a large blob's map entry): size at least; the local store fills
	 * every field. HL_NOTFOUND. */
	int (*stat)(void *self, const hl_id *id, hl_stat *out);
	/* Every stored object, in id order (HL_BE_LIST); a remote backend fills size only. */
	int (*list)(void *self, hl_iter_fn fn, void *ctx);
	/* Refs: compare-and-swap as hl_names_ref_set (expect NULL: must not exist; target NULL:
	 * delete; force: ignore expect); HL_CONFLICT when expect does not hold. */
	int (*ref_get)(void *self, const char *name, hl_id *out);
	int (*ref_set)(void *self, const char *name, const hl_id *expect, const hl_id *target, int force);
	int (*ref_list)(void *self, const char *prefix, hl_ref_fn fn, void *ctx);
	/* kv namespaces (the Bazel maps are two of them): a key names a stored object. */
	int (*kv_get)(void *self, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size);
	int (*kv_set)(void *self, const char *ns, const void *key, size_t klen, const hl_id *id,
	              uint64_t size, uint64_t bound, uint64_t *evicted);
	int (*kv_delete)(void *self, const char *ns, const void *key, size_t klen);
	int (*kv_usage)(void *self, const char *ns, uint64_t *bytes, uint64_t *keys);
	/* Every kv entry's object id (the collector's roots). */
	int (*kv_each)(void *self, hl_kv_id_fn fn, void *ctx);
	/* Optional, for a backend that does not bound kv namespaces on write (no HL_BE_KV_BOUND): as
	 * kv_each, after removing the keys of each namespace past its newest `bound` bytes of values
	 * by write time (counted in *evicted; only counted when dry_run), whose values fn never gets. */
	int (*kv_bound_each)(void *self, uint64_t bound, int dry_run, hl_kv_id_fn fn, void *ctx,
	                     uint64_t *evicted);
	/* The large-blob map (HL_BE_CHUNKS): a blob's id → its manifest and size. large_has is the
	 * lookup of a writer that relies on the blob being there: it holds the manifest against a
	 * running collection, as has() does an object (a reader's large_get does not). */
	int (*large_get)(void *self, const hl_id *id, hl_id *manifest, uint64_t *size);
	int (*large_has)(void *self, const hl_id *id);
	int (*large_put_n)(void *self, const hl_large_map *m, size_t n);
	int (*large_each)(void *self, hl_large_fn fn, void *ctx);
	/* Optional, for a backend whose collections run in this process (the local store): ids no
	 * collection deletes until unpinned; an unpin makes a running collection keep them
	 * (store.h: hl_local_pin). A large blob's writer pins its parts while it makes the map.
	 * A pin may fail (ENOMEM: nothing pinned); an unpin does not. */
	int (*pin)(void *self, const hl_id *ids, size_t n);
	void (*unpin)(void *self, const hl_id *ids, size_t n);
	/* A backend that collects its own garbage (a helios server): one collection there. */
	int (*collect)(void *self, const hl_gc_options *opt, hl_gc_report *out);
	/* Writes good bytes over a stored object that failed verification (the repair of a shared
	 * backend's object; NULL where the backend repairs its own). */
	int (*rewrite)(void *self, const hl_id *id, const void *data, size_t len);
	/* As obj.put_batch with ids trusted, where bases[i] (NULL, or NULL bases) names a stored
	 * object items[i] probably resembles: a backend that stores deltas may store it as one
	 * (docs/DESIGN.md, "Delta records"). NULL: put_batch. */
	int (*put_like)(void *self, hl_put_item *items, const hl_id *const *bases, size_t n);
	/* HL_BE_FLEET: control objects (cond NULL: unconditional; "*": only if absent; else only if
	 * the ETag is cond, HL_CONFLICT when not), aged listings, and removal of an object or a
	 * large-blob map entry. */
	int (*key_get)(void *self, const char *key, hl_buf **body, char etag[96]);
	int (*key_put)(void *self, const char *key, const void *body, size_t len, const char *cond,
	               char etag[96]);
	int (*key_delete)(void *self, const char *key);
	int (*key_list)(void *self, const char *under, hl_key_fn fn, void *ctx);
	int (*list_aged)(void *self, int what, hl_aged_fn fn, void *ctx);
	int (*remove)(void *self, int what, const hl_id *id);
	/* A remote backend's request counters (NULL: local), and its close (NULL: the node's own
	 * store, closed with the node). */
	void (*remote_stats)(void *self, hl_http_stats *out);
	void (*close)(void *self);
} hl_backend_ops;

typedef struct hl_backend {
	const hl_backend_ops *ops;
	void *self;
} hl_backend;

static inline hl_tier hl_backend_tier(hl_backend b)
{
	return (hl_tier){&b.ops->obj, b.self};
}

struct hl_local;
struct hl_s3;
struct hl_hremote;
hl_backend hl_backend_local(struct hl_local *s);   /* tier/local.c */
hl_backend hl_backend_s3(struct hl_s3 *s);         /* tier/remote.c */
hl_backend hl_backend_hremote(struct hl_hremote *r);

#endif
