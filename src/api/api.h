/* api.h — the insides of an hl_store handle, shared by the files of src/api, and the large-blob
 * paths (large.c) that hl_put, hl_get and friends take for chunked objects. */
#ifndef HL_API_API_H
#define HL_API_API_H
#include "helios.h"
#include "cache/l1.h"
#include "coord/coord.h"
#include "dedup/chunker.h"
#include "store/store.h"
#include "tier/backend.h"

struct hl_store {
	uint64_t kv_max_bytes;
	uint64_t chunk_threshold; /* objects above it are stored as chunks; 0: never */
	uint64_t max_object_size;
	uint64_t gc_grace_s;
	char *tls_cacert;         /* hl_options.tls_cacert (copied), for push and pull */
	unsigned fleet_lease_ms;
	hl_cdc cdc;
	hl_local *local;   /* the node's own store: the backend when that is local; else it keeps
	                      what is the node's alone (the snapshot stat cache) */
	hl_backend be;     /* the durable backend: objects and names (tier/backend.h) */
	hl_backend raw;    /* on a shared bucket: the backend itself, be being it with this node's
	                      side of the collection protocol around it (fleet) */
	struct hl_fleet *fleet;
	hl_l1 *l1; /* NULL when l1_bytes is 0 */
	hl_coord *coord;
	struct hl_resolver *resolver; /* the coordinator's tier: large blobs, read repair */
	/* a remote backend's L2 cache and their stack (else NULL) */
	struct hl_l2 *l2;
	struct hl_tier_stack *stack;
	/* integrity (read-write): the local store's scrubber, or a shared backend's (bscrub), and
	 * their repair source */
	struct hl_scrubber *scrub;
	struct hl_bscrub *bscrub;
	hl_backend repair;
	hl_tier repair_tier;
	const char *repair_name;
	struct hl_gc_bg *gc_bg; /* hl_gc_background's thread, or NULL */
};

/* Stores data (len > chunk_threshold) as chunks plus a manifest and maps its id to the manifest.
 * expect: verify against it (HL_MISMATCH). */
int hl_large_put(hl_store *s, const hl_id *expect, const void *data, size_t len, hl_id *id,
                 int *created);
/* Stored as chunks: past the threshold, and not a tree or manifest (those stay whole, so the
 * collector can read what they name). */
int hl_large_wanted(const hl_store *s, const void *data, size_t len);
/* hl_put_batch's path when items hold large objects; their ids are computed and checked already
 * (hl_coord_hash_items). Every item is stored or none is visible; see large.c. */
int hl_large_put_hashed(hl_store *s, hl_put_item *items, size_t n);
/* After an index rebuild: makes the large-blob map agree with the manifests (a blob's id is the
 * hash of its manifest's chunks in order): missing entries are added (*derived), entries no
 * manifest confirms (damaged rows) removed (*dropped). */
int hl_large_derive(hl_store *s, uint64_t *derived, uint64_t *dropped);
/* Re-hashes every large blob whole; fn gets each that fails (HL_CORRUPT, or the error reading a
 * chunk). *bad counts them. */
int hl_large_verify(hl_store *s, hl_verify_fn fn, void *ctx, uint64_t *checked, uint64_t *bad);

/* hl_put and hl_put_expect (expect: the id the data must hash to, or NULL; id may be NULL then)
 * and hl_has, for the api's own files: large.c stores and finds through these, never through
 * the public calls (objects.c). */
int hl_api_put(hl_store *s, const hl_id *expect, const void *data, size_t len, hl_id *id,
               int *created);
int hl_api_has(hl_store *s, const hl_id *id);
/* hl_coord_put_hashed, where bases[i] (may be NULL) names a stored object that items[i] probably
 * resembles: stored as deltas where the backend does that (put_like) (large.c); with bases, the
 * store also looks for bases by similarity among recent objects (NULL bases: a plain put). */
int hl_api_put_like(hl_store *s, hl_put_item *items, const hl_id *const *bases, size_t n);
/* hl_large_put through hl_api_put_like, for a blob that probably resembles the stored blob like
 * (NULL: none): each new chunk's base is the chunk of like that covers the same offset (large.c). */
int hl_large_put_like(hl_store *s, const void *data, size_t len, const hl_id *like, hl_id *id,
                      int *created);
/* Stops hl_gc_background's thread, if any, waiting for a collection in progress (maint.c). */
void hl_api_gc_bg_stop(hl_store *s);
/* Whether the options name a remote backend (s3, helios) (helios.c). */
int hl_api_remote_backend(const hl_options *opt);
/* 0 when the store takes writes, else why not (HL_READONLY) (helios.c). */
int hl_api_writable(hl_store *s);

/* A stored tree, fetched and checked, with its entry count (trees.c). */
int hl_api_load_tree(hl_store *s, const hl_id *id, hl_buf **out, uint32_t *count);

#endif
