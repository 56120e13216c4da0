/* entry.h — an object's index entry as the store hands it out (where its record is, its sizes,
 * flags and access time) and its 48-byte encoding in the index. Free of LMDB: the store's users
 * see entries, never the index's types (those stay in src/store). */
#ifndef HL_STORE_ENTRY_H
#define HL_STORE_ENTRY_H
#include <stddef.h>
#include <stdint.h>

#define HL_IDX_ENTRY_LEN 48
#define HL_IDX_FORMAT 1

typedef struct hl_idx_entry {
	uint32_t segment;
	uint64_t offset;      /* of the record header */
	uint64_t stored_len;  /* payload bytes on disk */
	uint64_t raw_len;     /* object bytes */
	uint16_t flags;       /* record flags (HL_REC_F_*) */
	uint32_t marks;       /* bits 0..7: the zstd level a repack re-encoded the record at (0: none;
	                         compaction keeps it); the rest 0. Older builds read it as an unused
	                         reference count and write 0 */
	uint64_t atime;
} hl_idx_entry;

/* Value layout: version u8 (1), pad u8, flags u16, segment u32, offset u64, stored u64, raw u64,
 * atime u64, marks u32, reserved u32. */
#define HL_IDX_MARK_LEVEL 0xffu
void hl_idx_entry_encode(const hl_idx_entry *e, uint8_t out[HL_IDX_ENTRY_LEN]);
int hl_idx_entry_decode(const uint8_t *buf, size_t len, hl_idx_entry *out); /* 0 or HL_CORRUPT */
/* Whether a and b agree in every field. */
int hl_idx_entry_equal(const hl_idx_entry *a, const hl_idx_entry *b);

#endif
