/* alloc.c — the hook that lets a test fail any allocation of the library, and populated pages
 * for hash tables (base/alloc.h). */
#include "base/alloc.h"
#include <errno.h>
#include <sys/mman.h>

_Atomic(hl_alloc_fail_fn) hl_alloc_fail;

void *hl_pages_alloc(size_t bytes)
{
	if (hl_alloc_refused())
		return NULL;
	void *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (p == MAP_FAILED)
		return NULL;
	if (bytes >= (2u << 20))
		madvise(p, bytes, MADV_HUGEPAGE);
	if (madvise(p, bytes, MADV_POPULATE_WRITE) != 0) {
		if (errno != EINVAL) { /* no memory for it: a failed allocation now, not a fault later */
			munmap(p, bytes);
			return NULL;
		}
		for (size_t off = 0; off < bytes; off += 4096) /* before Linux 5.14: by hand */
			((volatile char *)p)[off] = 0;
	}
	return p;
}

void hl_pages_free(void *p, size_t bytes)
{
	if (p)
		munmap(p, bytes);
}
