/* fuzz_fleet.c — fuzz target for what a node and the collector parse from a shared bucket's
 * collection keys: the state object and the condemned list. Never crash or read out of bounds;
 * what parses encodes back to the same bytes (one encoding per content), and a parsed list is in
 * strictly increasing order. */
#include <stdlib.h>
#include <string.h>
#include "tier/fleet.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_fleet_state st;
	if (hl_fleet_state_parse(data, size, &st) == 0) {
		char again[256];
		int len = hl_fleet_state_format(&st, again, sizeof again);
		if (len < 0 || (size_t)len != size || memcmp(again, data, size))
			abort();
	}
	hl_fleet_victim *v;
	size_t n;
	if (hl_fleet_list_parse(data, size, &v, &n) == 0) {
		uint8_t *enc;
		size_t len;
		if (hl_fleet_list_encode(v, n, &enc, &len) || len != size || memcmp(enc, data, size))
			abort();
		for (size_t i = 1; i < n; i++)
			if (hl_fleet_victim_cmp(&v[i - 1], &v[i]) >= 0)
				abort();
		free(enc);
		free(v);
	}
	return 0;
}
