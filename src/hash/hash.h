/* hash.h — BLAKE3-256 through the official implementation (SIMD dispatch included), and the
 * hex form of ids. The public half (hl_hash, hl_hasher_*, hl_id_*) is declared in helios.h. */
#ifndef HL_HASH_HASH_H
#define HL_HASH_HASH_H
#include "helios.h"

/* Hash-function ids recorded in stored records, so a future hash can coexist with this one. */
enum { HL_HASHFN_BLAKE3_256 = 1 };

/* BLAKE3 of a[0..alen) followed by b[0..blen), without copying them together. */
void hl_hash_two(const void *a, size_t alen, const void *b, size_t blen, hl_id *out);

/* Constant-time-irrelevant, plain comparison of ids (ids are public). */
static inline int hl_id_cmp(const hl_id *a, const hl_id *b)
{
	return __builtin_memcmp(a->b, b->b, HL_ID_LEN);
}

/* The first 8 id bytes as an integer (ids are uniformly random: good hash-table keys). */
static inline uint64_t hl_le64_id(const hl_id *id)
{
	uint64_t v = 0;
	for (int i = 7; i >= 0; i--)
		v = v << 8 | id->b[i];
	return v;
}

#endif
