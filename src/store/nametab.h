/* nametab.h — the name tables of the index (refs, kv, the large-blob map, the stat cache): their
 * layouts, the validity of names, and what needs only the index and a transaction (the collector's
 * unmapping of a large blob). The store uses this; store/names.h, the names' interface above the
 * store, builds on it. */
#ifndef HL_STORE_NAMETAB_H
#define HL_STORE_NAMETAB_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

/* Table layouts (little-endian):
 *   refs  : name → id[32]
 *   kv    : ns NUL key → version u8 (1), reserved [7], id[32], size u64, atime u64 (ms)  (56 B)
 *   kvlru : ns NUL atime (big-endian u64, so keys sort oldest first) key → empty
 *   kvns  : ns → bytes u64, entries u64
 *   large : blob id[32] → version u8 (1), reserved [7], manifest id[32], size u64      (48 B)
 *   scache: a directory's dev, inode (big-endian u64 each) → its row (api/dircache.h; meta
 *           "scache" u32 = 3; a table of format 2, per-file rows, is emptied at the first write) */
#define HL_KV_ENTRY_LEN 56
#define HL_LARGE_ENTRY_LEN 48
#define HL_NS_MAX 64 /* bytes of a kv namespace */

/* A ref name is 1..HL_REF_MAX bytes of components [A-Za-z0-9._-]+ joined by '/', no component
 * starting with '.', no empty component. */
int hl_names_ref_valid(const char *name, size_t len);
/* A namespace is 1..64 bytes of [A-Za-z0-9._:-]; a key 1..HL_KV_KEY_MAX bytes, anything but NUL. */
int hl_names_ns_valid(const char *ns, size_t len);
int hl_names_key_valid(const void *key, size_t len);

/* A large-map row: the manifest's id and the blob's size (HL_CORRUPT when malformed). */
struct MDB_val;
int hl_names_large_decode(const struct MDB_val *v, hl_id *manifest, uint64_t *size);
/* In the collector's transaction: removes id's mapping if it still names manifest. */
struct hl_index;
struct MDB_txn;
int hl_names_large_unmap(struct MDB_txn *txn, struct hl_index *ix, const hl_id *id, const hl_id *manifest);

#endif
