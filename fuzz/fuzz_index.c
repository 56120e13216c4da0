/* fuzz_index.c — fuzz target for index entry decoding and id parsing: never crash, and what
 * decodes re-encodes to the same bytes. */
#include <stdint.h>
#include <string.h>
#include "hash/hash.h"
#include "store/index.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_idx_entry e;
	if (hl_idx_entry_decode(data, size, &e) == 0) {
		uint8_t again[HL_IDX_ENTRY_LEN];
		hl_idx_entry_encode(&e, again);
		if (memcmp(again, data, HL_IDX_ENTRY_LEN) != 0)
			__builtin_trap();
	}
	hl_id id;
	if (hl_id_parse((const char *)data, size, &id) == 0) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(&id, hex);
		if (memcmp(hex, data, HL_ID_HEX_LEN) != 0)
			__builtin_trap();
	}
	return 0;
}
