/* dec.h — unsigned decimal numbers in the texts helios reads back (pointer objects, listings,
 * headers, control keys): one parse with one overflow check, for every such place. */
#ifndef HL_BASE_DEC_H
#define HL_BASE_DEC_H
#include <stddef.h>
#include <stdint.h>

/* 0 with the value of p[0..len) when it is 1 to 20 digits that fit in 64 bits; -1 otherwise.
 * Leading zeros are the caller's to refuse where a value must have one spelling. */
static inline int hl_dec_u64(const char *p, size_t len, uint64_t *out)
{
	uint64_t v = 0;
	if (!len || len > 20)
		return -1;
	for (size_t i = 0; i < len; i++) {
		if (p[i] < '0' || p[i] > '9' || v > (UINT64_MAX - (uint64_t)(p[i] - '0')) / 10)
			return -1;
		v = v * 10 + (uint64_t)(p[i] - '0');
	}
	*out = v;
	return 0;
}

#endif
