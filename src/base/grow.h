/* grow.h — room for one more element in a growable array: the doubling idiom of every list in
 * helios, in one place. */
#ifndef HL_BASE_GROW_H
#define HL_BASE_GROW_H
#include <stddef.h>
#include <stdlib.h>
#include "base/alloc.h"

/* Returns arr if element n fits in its capacity *cap, else arr reallocated to twice the capacity
 * (first when it is 0) with *cap updated; NULL when out of memory, arr then unchanged and still
 * the caller's. */
static inline void *hl_grow(void *arr, size_t n, size_t *cap, size_t elem, size_t first)
{
	if (n < *cap)
		return arr;
	size_t c = *cap ? *cap * 2 : first;
	void *p = hl_realloc(arr, c * elem);
	if (p)
		*cap = c;
	return p;
}

#endif
