/* bscrub.h — the integrity checker of a shared backend (an S3 bucket): walks every object the
 * backend lists, fetches each from the backend itself (never from a cache: a cached copy says
 * nothing about the bucket's) and re-hashes it; a corrupt object is logged and repaired from the
 * first source with a verified copy — this node's L1, its L2, the configured repair tier — by
 * writing the good bytes over the bad ones. One walk on demand (verify), or paced in the
 * background (serve --scrub-rate). */
#ifndef HL_INTEGRITY_BSCRUB_H
#define HL_INTEGRITY_BSCRUB_H
#include <stdint.h>
#include "helios.h"
#include "cache/l1.h"
#include "cache/l2.h"
#include "integrity/scrub.h"
#include "tier/backend.h"

typedef struct hl_bscrub hl_bscrub;

/* be must list (HL_BE_LIST) and rewrite. l1, l2, repair may be NULL / have no ops. on_corrupt
 * (may be NULL) hears of every corrupt object. Nothing is owned. */
int hl_bscrub_new(hl_backend be, hl_l1 *l1, hl_l2 *l2, hl_tier repair, const char *repair_name,
                  hl_scrub_corrupt_fn on_corrupt, void *ctx, hl_bscrub **out);
void hl_bscrub_free(hl_bscrub *b); /* stops the background walk first */

/* One whole walk with threads fetches in flight (0: 8), paced to bytes_per_s (0: unpaced);
 * repair: replace what is corrupt. fn hears of every object that is corrupt or unreadable (after
 * its repair, if any: err 0 then means repaired). HL_CORRUPT when something stays corrupt. */
int hl_bscrub_walk(hl_bscrub *b, unsigned threads, uint64_t bytes_per_s, int repair, hl_verify_fn fn,
                   hl_progress_fn progress, void *ctx, hl_verify_report *out);
/* Replaces id by a verified copy: 0 with the source's name in *from, HL_NOTFOUND when none has it. */
int hl_bscrub_repair(hl_bscrub *b, const hl_id *id, const char **from);
/* Walks again and again in a thread, bytes_per_s (at least 64 KiB/s), pause_s between walks. */
int hl_bscrub_start(hl_bscrub *b, uint64_t bytes_per_s, unsigned pause_s);
void hl_bscrub_stats_get(hl_bscrub *b, hl_scrub_stats *out);

#endif
