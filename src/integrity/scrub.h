/* scrub.h — the integrity checker of the durable local store: a scrubber that re-reads every
 * object (each read re-hashes it: a mismatch quarantines the record) from a cursor kept in
 * <store>/scrub.cursor, so it resumes where it stopped after a restart; paced to a byte rate when
 * it runs in the background; every corrupt object found is appended to <store>/corruption.log
 * and repaired from the first source that has a verified copy: the L1 cache, then the configured
 * repair tiers (another helios, an S3 bucket). A repair stores the good bytes again, which lifts
 * the quarantine. */
#ifndef HL_INTEGRITY_SCRUB_H
#define HL_INTEGRITY_SCRUB_H
#include <stdint.h>
#include "helios.h"
#include "cache/l1.h"
#include "store/store.h"
#include "tier/tier.h"

typedef struct hl_scrubber hl_scrubber;

typedef struct hl_scrub_stats {
	uint64_t objects, bytes;      /* scrubbed since open */
	uint64_t corrupt;             /* found corrupt (by the scrubber or reported to it) */
	uint64_t repaired, unrepairable;
	uint64_t passes;              /* whole walks finished since open */
} hl_scrub_stats;

/* dir: the store directory (cursor and log). l1 may be NULL; sources (nsources tiers, with names
 * for the log) are asked in order; on_corrupt (may be NULL) hears of every corrupt object found
 * (the health score counts them). Nothing is owned. */
typedef void (*hl_scrub_corrupt_fn)(void *ctx);
int hl_scrub_new(hl_local *s, const char *dir, hl_l1 *l1, const hl_tier *sources,
                 const char *const *names, size_t nsources, hl_scrub_corrupt_fn on_corrupt,
                 void *ctx, hl_scrubber **out);
/* Stops the background thread (if any), saves the cursor, frees. */
void hl_scrub_free(hl_scrubber *sc);

/* Scrubs objects after the cursor until about max_bytes of records were read; *pass_done is set
 * when the walk reached the end (the cursor starts over). Found corruption is logged and repaired;
 * found is incremented per corrupt object. */
int hl_scrub_step(hl_scrubber *sc, uint64_t max_bytes, int *pass_done, uint64_t *found);
/* Logs id as corrupt and repairs it: 0 (source named in *from), HL_NOTFOUND when no source has a
 * verified copy (logged as unrepairable), or the error storing the copy. */
int hl_scrub_repair(hl_scrubber *sc, const hl_id *id, const char **from);
/* Starts a background thread scrubbing bytes_per_s (at least 64 KiB/s); a finished pass is
 * followed by pause_s seconds of rest. */
int hl_scrub_start(hl_scrubber *sc, uint64_t bytes_per_s, unsigned pause_s);
void hl_scrub_stats_get(hl_scrubber *sc, hl_scrub_stats *out);

#endif
