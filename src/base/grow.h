/* grow.h — room for more elements in a growable array: the doubling idiom of every list in
 * helios, in one place. */
#ifndef HL_BASE_GROW_H
#define HL_BASE_GROW_H
#include <stddef.h>
#include <stdlib.h>
#include "base/alloc.h"

/* Returns arr if want elements fit in its capacity *cap, else arr reallocated to the first
 * capacity that holds them in the doubling from twice *cap (from first when it is 0), with *cap
 * updated; NULL when out of memory, arr then unchanged and still the caller's (or when want is 0
 * and nothing was ever allocated: a caller that may ask for 0 checks *cap first). first > 0. */
static inline void *hl_grow_to(void *arr, size_t want, size_t *cap, size_t elem, size_t first)
{
	if (want <= *cap)
		return arr;
	size_t c = *cap ? *cap * 2 : first;
	while (c < want)
		c *= 2;
	void *p = hl_realloc(arr, c * elem);
	if (p)
		*cap = c;
	return p;
}

/* Room for element n (one more after n elements): hl_grow_to(arr, n + 1, ...). */
static inline void *hl_grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first)
{
	return hl_grow_to(arr, n + 1, cap, elem, first);
}

#endif
