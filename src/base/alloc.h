/* alloc.h — the library's allocation functions: the C library's, except that a test can make any
 * of them fail (SQLite's malloc-failure loops), so every path that handles ENOMEM is exercised.
 * Everything under src/ below the server and the CLI allocates through these. Memory they return
 * is freed with free(). Allocations inside LMDB, zstd, libcurl and the C library are not hooked. */
#ifndef HL_BASE_ALLOC_H
#define HL_BASE_ALLOC_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

/* When set, called before every allocation; nonzero makes it fail (NULL). Tests only. */
typedef int (*hl_alloc_fail_fn)(void);
extern _Atomic(hl_alloc_fail_fn) hl_alloc_fail;

static inline int hl_alloc_refused(void)
{
	hl_alloc_fail_fn f = atomic_load_explicit(&hl_alloc_fail, memory_order_relaxed);
	return f && f();
}

static inline void *hl_malloc(size_t n) { return hl_alloc_refused() ? NULL : malloc(n); }
static inline void *hl_calloc(size_t n, size_t size) { return hl_alloc_refused() ? NULL : calloc(n, size); }
static inline void *hl_realloc(void *p, size_t n) { return hl_alloc_refused() ? NULL : realloc(p, n); }
static inline char *hl_strdup(const char *s) { return hl_alloc_refused() ? NULL : strdup(s); }
static inline void *hl_aligned_alloc(size_t align, size_t n)
{
	return hl_alloc_refused() ? NULL : aligned_alloc(align, n);
}

/* bytes of zeroed anonymous memory for a hash table probed at random: in huge pages where the
 * kernel gives them (2 MiB or more), every page populated for writing now, so the table's first
 * touches neither fault one page at a time nor map the shared zero page that a write then
 * replaces (a copy-on-write fault and a TLB flush on every CPU the process runs on). NULL on
 * failure, memory that cannot be populated included; freed with hl_pages_free(p, bytes). */
void *hl_pages_alloc(size_t bytes);
void hl_pages_free(void *p, size_t bytes);

#endif
