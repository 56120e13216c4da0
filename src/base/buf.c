/* buf.c — reference-counted immutable byte buffers: one allocation, atomic reference count. */
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "base/slot.h"
#include "base/alloc.h"

/* Buffers alive, striped per thread (a buffer freed by another thread than the one that made it
 * moves one stripe down and another up; the sum is exact). */
static struct {
	atomic_long n;
	char pad[64 - sizeof(atomic_long)];
} live[16];

static void live_add(long d)
{
	atomic_fetch_add_explicit(&live[hl_thread_slot(4)].n, d, memory_order_relaxed);
}

long hl_buf_live(void)
{
	long n = 0;
	for (int i = 0; i < 16; i++)
		n += atomic_load(&live[i].n);
	return n;
}

hl_buf *hl_buf_alloc(size_t len)
{
	if (len > SIZE_MAX - sizeof(hl_buf))
		return NULL;
	hl_buf *b = hl_malloc(sizeof(*b) + (len ? len : 1));
	if (!b)
		return NULL;
	atomic_init(&b->refs, 1);
	b->len = len;
	b->data = b->inline_;
	live_add(1);
	return b;
}

hl_buf *hl_buf_copy(const void *data, size_t len)
{
	hl_buf *b = hl_buf_alloc(len);
	if (b && len)
		memcpy(b->data, data, len);
	return b;
}

const uint8_t *hl_buf_data(const hl_buf *b) { return b->data; }
size_t hl_buf_len(const hl_buf *b) { return b->len; }

hl_buf *hl_buf_ref(hl_buf *b)
{
	atomic_fetch_add_explicit(&b->refs, 1, memory_order_relaxed);
	return b;
}

void hl_buf_unref(hl_buf *b)
{
	if (b && atomic_fetch_sub_explicit(&b->refs, 1, memory_order_acq_rel) == 1) {
		live_add(-1);
		free(b);
	}
}
