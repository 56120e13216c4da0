/* commit.h — the canonical encoding of a commit: one snapshot of a work tree in a ref's history,
 * with its parents, time, author, message, free key/value metadata and the counts `log` prints.
 * Same commit ⇒ same bytes ⇒ same id; every rule below is checked on read.
 *
 * Format v1, little-endian:
 *   0  magic "HLCM"   4  version (1)   5  hash function (1 = BLAKE3-256)
 *   6  parent count u8 (0..HL_COMMIT_PARENTS_MAX, distinct ids)   7  reserved u8 = 0
 *   8  time u64: nanoseconds since the Unix epoch (UTC)
 *  16  tree id [32]   48  parents × [32]
 *      stats: files u64, bytes u64, new_bytes u64, added u32, changed u32, deleted u32,
 *             reserved u32 = 0                                             (40 bytes)
 *      author: length u16 (0..HL_COMMIT_AUTHOR_MAX) + bytes
 *      message: length u32 (0..HL_COMMIT_MESSAGE_MAX) + bytes
 *      meta count u16 (0..HL_COMMIT_META_MAX), each: key length u8 (1..64) + key bytes of
 *      [A-Za-z0-9._-], value length u16 (0..HL_COMMIT_VALUE_MAX) + bytes
 * No string holds a NUL; meta keys are in strictly increasing bytewise order; the encoding ends
 * exactly after the last value. The collector follows the tree and the parents (a put needs only
 * the tree present: history may arrive later, or have been forgotten). */
#ifndef HL_DEDUP_COMMIT_H
#define HL_DEDUP_COMMIT_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

#define HL_COMMIT_VERSION 1
#define HL_COMMIT_HDR 48u
#define HL_COMMIT_STATS 40u

/* 1 if key[0..len) may be a meta key. */
int hl_commit_key_ok(const char *key, size_t len);
/* Bytes the encoding of c takes (meta in any order). */
size_t hl_commit_size(const hl_commit *c);
/* Encodes c (its meta sorted by key first: c->meta is reordered) into out[0..cap). HL_INVALID
 * for a rule broken (see above), HL_TOOBIG if cap is short. */
int hl_commit_encode(hl_commit *c, uint8_t *out, size_t cap, size_t *len);
/* Checks buf[0..len): 0, HL_INVALID (another magic), HL_VERSION (newer), HL_CORRUPT (a rule
 * broken). With out, also decodes: strings are copied into one allocation with the struct,
 * freed by hl_commit_free. Never reads outside buf. */
int hl_commit_decode(const uint8_t *buf, size_t len, hl_commit **out);
/* The tree and parent ids of a checked commit, without decoding the strings. */
int hl_commit_links(const uint8_t *buf, size_t len, hl_id *tree, hl_id *parents, unsigned *n);

#endif
