/* tree.h — the canonical encoding of one directory: its entries sorted by name, each with its
 * kind, mode, size and id. Same directory content ⇒ same bytes ⇒ same tree id; a snapshot of a
 * work tree is the id of its root tree.
 *
 * Format v1, little-endian:
 *   0  magic "HLTR"      4  version (1)      5  hash function (1 = BLAKE3-256)
 *   6  reserved u16 = 0  8  entry count u32  12 reserved u32 = 0
 *  16  count × entry:  kind u8 (1 file, 2 directory, 3 symlink), reserved u8 = 0,
 *      name length u16 (1..255), mode u32 (permission bits, ≤ 07777; 0 for symlinks),
 *      size u64 (file bytes; symlink target bytes; 0 for directories), id [32] (file content,
 *      subtree, or symlink target stored as an object), name bytes.
 * Entries are in strictly increasing bytewise order of name; a name is never empty, ".", "..",
 * and holds no '/' or NUL. Exactly the bytes the entries need: one directory, one encoding. */
#ifndef HL_DEDUP_TREE_H
#define HL_DEDUP_TREE_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

#define HL_TREE_HDR 16u
#define HL_TREE_ENTRY 48u
#define HL_TREE_VERSION 1
#define HL_TREE_NAME_MAX 255

/* hl_tree_entry and the HL_TREE_* kinds are in helios.h. */

/* 1 if name[0..len) may be a tree entry's name. */
int hl_tree_name_ok(const char *name, size_t len);
/* The canonical order: bytewise by name, a prefix first. */
int hl_tree_entry_cmp(const hl_tree_entry *a, const hl_tree_entry *b);
/* Sorts entries into canonical order. */
void hl_tree_sort(hl_tree_entry *e, size_t n);
/* Bytes the encoding of these entries takes. */
size_t hl_tree_size(const hl_tree_entry *e, size_t n);
/* Encodes n sorted entries into out. HL_INVALID for a bad name, kind or mode, duplicate or
 * unsorted names; HL_TOOBIG if cap is short. */
int hl_tree_encode(const hl_tree_entry *e, size_t n, uint8_t *out, size_t cap, size_t *len);
/* Checks buf[0..len) and counts its entries: 0, HL_INVALID (not a tree: another magic),
 * HL_VERSION (newer), HL_CORRUPT (a tree that breaks a rule: unsafe or unsorted names, bad
 * lengths, unknown kind). Never reads outside buf. */
int hl_tree_check(const uint8_t *buf, size_t len, uint32_t *count);
/* Iterates a checked tree: *pos starts at 0; fills e (name points into buf, not NUL-terminated:
 * e->name_len says how long) and returns 1, or 0 at the end. */
int hl_tree_next(const uint8_t *buf, size_t len, size_t *pos, hl_tree_entry *e);

#endif
