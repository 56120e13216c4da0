/* history.h — what the api's files share about history: the record of forgotten history, and a
 * walk that also gives forgotten commits (revisions and forget need them). */
#ifndef HL_API_HISTORY_H
#define HL_API_HISTORY_H
#include "helios.h"
#include "dedup/forgotten.h"

/* The store's record of forgotten history (an empty set when there is none); *at its id (zero
 * when none), for the compare-and-swap that replaces it. HL_CORRUPT when it breaks its format. */
int hl_api_forgotten_load(hl_store *s, hl_forgotten *f, hl_id *at);

/* hl_history, with each commit's forgotten flags (HL_FORGOT_*) in weak; with_forgotten: forgotten
 * commits are given too (limit counts them then). forgotten: the record the caller loaded (walks
 * of many refs read it once), or NULL to have it loaded here. */
typedef int (*hl_api_history_fn)(const hl_id *id, const hl_commit *c, unsigned flags, unsigned weak,
                                 void *ctx);
int hl_api_history(hl_store *s, const hl_id *from, const hl_forgotten *forgotten, int with_forgotten,
                   uint64_t before_ns, uint64_t limit, hl_api_history_fn fn, void *ctx);

#endif
