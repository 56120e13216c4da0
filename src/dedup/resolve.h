/* resolve.h — the tier the coordinator reads through, so that a get is one call down from the
 * api: an object stored whole comes from the tier below; a large blob is found in the backend's
 * large-blob map and assembled from its manifest and chunks, then verified whole; a corrupt object
 * (or chunk, or manifest) is repaired once, when a repair source is configured, and read again.
 * has answers for large blobs the same way. Streaming readers use its manifest and chunk reads. */
#ifndef HL_DEDUP_RESOLVE_H
#define HL_DEDUP_RESOLVE_H
#include "helios.h"
#include "cache/l1.h"
#include "dedup/manifest.h"
#include "tier/backend.h"
#include "tier/tier.h"

/* Writes a verified copy of id over a corrupt one; 0 when it did. */
typedef int (*hl_repair_fn)(void *ctx, const hl_id *id);

typedef struct hl_resolver hl_resolver;

/* below: the tier objects come from; be: whose large-blob map names large blobs (none: no large
 * blobs); l1 (may be NULL): where chunks are cached, as every object read through the coordinator
 * is; repair (may be NULL). None is owned. */
int hl_resolver_new(hl_tier below, hl_backend be, hl_l1 *l1, hl_repair_fn repair, void *repair_ctx,
                    hl_resolver **out);
hl_tier hl_resolver_tier(hl_resolver *r);
void hl_resolver_free(hl_resolver *r);

/* A large blob assembled and verified (what the tier's get does when the object is not stored
 * whole), without caching the whole: for verification. HL_NOTFOUND: no such large blob (also
 * when a collection took it while it was read: a part is gone and so is its map). */
int hl_resolve_large(hl_resolver *r, const hl_id *id, hl_buf **out);
/* A large blob's manifest (in *mb, decoded into *m, a view into it) and size, checked against
 * each other. A manifest that is gone is HL_CORRUPT (the blob is damaged), unless the blob's map
 * is gone by then too (a collection took it meanwhile: HL_NOTFOUND). */
int hl_resolve_manifest(hl_resolver *r, const hl_id *id, hl_buf **mb, hl_manifest *m,
                        uint64_t *size);
/* One chunk of a manifest, of the length it lists; a missing chunk is HL_CORRUPT. scan: a miss
 * does not fill the L1 (as hl_coord_get_scan). */
int hl_resolve_chunk(hl_resolver *r, const hl_chunk_ref *c, int scan, hl_buf **out);

#endif
