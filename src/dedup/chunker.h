/* chunker.h — content-defined chunking (FastCDC): cut points chosen by the content, so an edit
 * moves only the boundaries near it and the chunks elsewhere keep their ids.
 *
 * Gear rolling hash (fp = (fp << 1) + gear[byte]); no cut is looked for before `min` bytes; up to
 * `avg` bytes a cut needs log2(avg) + 2 mask bits zero, after it log2(avg) − 2 (normalized chunking,
 * level 2), so sizes gather around avg; a chunk never exceeds `max`. Mask bits are spread over the
 * hash's upper 48 bits (the ones that depend on the last 48+ bytes). The gear table is fixed: the
 * same bytes and parameters always give the same chunks, on every machine and version. */
#ifndef HL_DEDUP_CHUNKER_H
#define HL_DEDUP_CHUNKER_H
#include <stddef.h>
#include <stdint.h>

typedef struct hl_cdc {
	uint32_t min, avg, max;
	uint64_t mask_s, mask_l; /* derived */
} hl_cdc;

#define HL_CDC_MIN 16384u
#define HL_CDC_AVG 65536u
#define HL_CDC_MAX 262144u

/* Validates and derives: 64 ≤ min < avg < max ≤ 64 MiB, avg a power of two. HL_INVALID otherwise. */
int hl_cdc_init(hl_cdc *c, uint32_t min, uint32_t avg, uint32_t max);

/* Length of the chunk that starts at data: len is all that remains, or at least max bytes (the
 * cut is then the same as with the whole rest). Returns len when len ≤ min; 0 only for len 0. */
size_t hl_cdc_next(const hl_cdc *c, const uint8_t *data, size_t len);

#endif
