/* buf.h — reference-counted immutable byte buffers (the hl_buf of helios.h), internal side:
 * allocation and the struct layout. Data lives inline after the header: one allocation. */
#ifndef HL_BASE_BUF_H
#define HL_BASE_BUF_H
#include <stdatomic.h>
#include "helios.h"

struct hl_buf {
	atomic_uint refs;
	size_t len;
	uint8_t *data;       /* points at inline[] */
	uint8_t inline_[];
};

/* A buffer of len bytes with one reference, contents uninitialised. NULL on out-of-memory. */
hl_buf *hl_buf_alloc(size_t len);
/* Same bytes as data[0..len). */
hl_buf *hl_buf_copy(const void *data, size_t len);
/* Buffers allocated and not yet freed, in the whole process (tests check for leaked references). */
long hl_buf_live(void);
/* Mutable access, only while the caller holds the only reference (filling a fresh buffer). */
static inline uint8_t *hl_buf_wdata(hl_buf *b) { return b->data; }

#endif
