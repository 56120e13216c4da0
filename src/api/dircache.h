/* dircache.h — a row of the snapshot stat cache: one per directory of a work tree, keyed by the
 * directory's device and inode (store/names.h). It says when it was written, which tree the
 * directory was stored as, and for each regular file of that tree (by its index there: the tree
 * gives its name, mode, size and id) the inode, mtime and ctime the file had when it was read.
 *
 * Encoding: version u8 (3), cached-at ns u64 (little-endian, wall clock), tree id [32], file count
 * (varint), then per file, each field a varint of its difference from the file before (the first
 * from 0): index (increasing), then inode, mtime ns and ctime ns (zigzag, as the difference may be
 * negative). A work tree's files share times and have neighbouring inodes: ~10 bytes a file. */
#ifndef HL_API_DIRCACHE_H
#define HL_API_DIRCACHE_H

#include <stddef.h>
#include <stdint.h>
#include "helios.h"

#define HL_DIRCACHE_VERSION 3 /* (1 and 2 were rows per file, keyed by the file's inode) */

typedef struct hl_dircache_file {
	uint32_t index;
	uint64_t ino, mtime_ns, ctime_ns;
} hl_dircache_file;

typedef struct hl_dircache {
	uint64_t cached_ns;
	hl_id tree;
	hl_dircache_file *f; /* n, by increasing index */
	size_t n;
} hl_dircache;

/* The most bytes n files take. */
size_t hl_dircache_size_max(size_t n);
/* Encodes c into out[0..cap): 0 and *len, HL_INVALID when indexes do not increase, HL_TOOBIG. */
int hl_dircache_encode(const hl_dircache *c, uint8_t *out, size_t cap, size_t *len);
/* Decodes buf[0..len) into c (c->f malloc'd; the caller frees it): 0, HL_NOTFOUND for a row of
 * another version, HL_CORRUPT for bytes that break the encoding, ENOMEM. Never reads outside buf. */
int hl_dircache_decode(const uint8_t *buf, size_t len, hl_dircache *c);

#endif
