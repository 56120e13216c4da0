/* slot.h — a small per-thread index for striping hot counters: threads that run at the same time
 * usually land on different cache lines, so counting writes nothing another core holds. */
#ifndef HL_BASE_SLOT_H
#define HL_BASE_SLOT_H
#include <pthread.h>
#include <stdint.h>

/* The calling thread's slot in [0, 2^bits), from its thread descriptor's address (a register
 * read; no TLS lookup, which costs a call in a position-independent library). bits ≤ 16. */
static inline unsigned hl_thread_slot(unsigned bits)
{
	uint64_t x = (uint64_t)(uintptr_t)pthread_self() * 0x9e3779b97f4a7c15ull;
	return (unsigned)(x >> (64 - bits));
}

#endif
