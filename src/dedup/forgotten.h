/* forgotten.h — what `forget` decided to drop from history, as the collector reads it: a set of
 * commit ids, each with which of its links are weak. A forgotten commit's tree is no longer kept
 * through it (its commit object stays while a kept commit lies beyond it, so history still
 * walks); a cut commit's parents are no longer kept through it (the oldest kept commit of a ref:
 * everything older goes). Every entry only ever drops what forget decided to drop, so a collector
 * that reads an older record keeps more, never less.
 *
 * The record is one object (not a links format: the collector never follows it) named by the ref
 * HL_FORGOTTEN_REF, replaced by compare-and-swap. Format v1, little-endian:
 *   0  magic "HLFG"  4  version (1)  5  reserved u8 = 0  6  reserved u16 = 0
 *   8  entry count u32   12 reserved u32 = 0
 *  16  count × entry: id [32], flags u8 (HL_FORGOT_TREE | HL_FORGOT_PARENTS, nonzero)
 * Entries in strictly increasing id order; the encoding ends after the last. */
#ifndef HL_DEDUP_FORGOTTEN_H
#define HL_DEDUP_FORGOTTEN_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

#define HL_FORGOTTEN_REF "_helios/forgotten"
#define HL_FORGOTTEN_HDR 16u
#define HL_FORGOTTEN_ENTRY 33u
enum { HL_FORGOT_TREE = 1, HL_FORGOT_PARENTS = 2 };

typedef struct hl_forgot {
	hl_id id;
	uint8_t flags;
} hl_forgot;
typedef struct hl_forgotten {
	hl_forgot *v; /* sorted by id */
	size_t n, cap;
} hl_forgotten;

/* Checks and decodes buf[0..len) into f (entries appended to an empty set): HL_INVALID (another
 * magic), HL_VERSION, HL_CORRUPT. f is left empty on failure. */
int hl_forgotten_decode(const uint8_t *buf, size_t len, hl_forgotten *f);
size_t hl_forgotten_size(const hl_forgotten *f);
/* Encodes f (sorted, flags nonzero: else HL_INVALID) into out[0..cap) (HL_TOOBIG if short). */
int hl_forgotten_encode(const hl_forgotten *f, uint8_t *out, size_t cap, size_t *len);
/* The flags recorded for id, 0 when none. */
unsigned hl_forgotten_flags(const hl_forgotten *f, const hl_id *id);
/* Adds flags to id's entry (created when absent; keeps the order). */
int hl_forgotten_add(hl_forgotten *f, const hl_id *id, unsigned flags);
void hl_forgotten_free(hl_forgotten *f);
#endif
