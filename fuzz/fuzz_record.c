/* fuzz_record.c — fuzz target for the on-disk header decoders (record and segment headers, a delta
 * payload's prefix): never crash or read out of bounds, and whatever decodes re-encodes to the
 * same bytes. */
#include <stdint.h>
#include <string.h>
#include "store/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_rec_hdr h;
	if (hl_rec_decode(data, size, &h) == 0) {
		uint8_t again[HL_REC_HDR_LEN];
		hl_rec_encode(&h, again);
		if (memcmp(again, data, HL_REC_HDR_LEN) != 0)
			__builtin_trap();
	}
	hl_delta_prefix d;
	if (hl_delta_prefix_decode(data, size, &d) == 0) {
		uint8_t again[HL_DELTA_PREFIX_LEN];
		hl_delta_prefix_encode(&d, again);
		if (memcmp(again, data, HL_DELTA_PREFIX_LEN) != 0)
			__builtin_trap();
	}
	uint32_t segno;
	if (hl_seg_hdr_decode(data, size, &segno) == 0) {
		uint8_t again[HL_SEG_HDR_LEN];
		hl_seg_hdr_encode(segno, size >= 24 ? hl_le64(data + 16) : 0, again);
		if (memcmp(again, data, HL_SEG_HDR_LEN) != 0)
			__builtin_trap();
	}
	return 0;
}
