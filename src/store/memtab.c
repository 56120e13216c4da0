/* memtab.c — see memtab.h. Linear probing on a keyed mix of the id, so ids crafted to share low
 * bits do not build long probe chains. */
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include "hash/hash.h"
#include "store/memtab.h"
#include "store/record.h"
#include "base/alloc.h"

enum { EMPTY = 0, LIVE = 1, DEAD = 2 };

typedef struct slot {
	atomic_uint state;
	hl_id id;
	hl_idx_entry e;
} slot;

struct hl_memtab {
	unsigned bits;
	size_t mask, used, limit;
	uint64_t key;
	slot *slots;
	uint32_t *order; /* used slot indexes in insertion order, so walks touch only those */
};

hl_memtab *hl_memtab_new(unsigned bits)
{
	hl_memtab *t = hl_calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	t->bits = bits;
	t->mask = ((size_t)1 << bits) - 1;
	t->limit = (size_t)1 << (bits - 1);
	/* populated now so inserts and lookups never fault; the store reuses a table after flushing
	 * it (hl_memtab_clear) instead of mapping a new one */
	t->slots = hl_pages_alloc(((size_t)1 << bits) * sizeof(slot));
	t->order = hl_malloc(t->limit * sizeof(uint32_t));
	if (!t->slots || !t->order || getrandom(&t->key, sizeof t->key, 0) != sizeof t->key) {
		hl_pages_free(t->slots, ((size_t)1 << bits) * sizeof(slot));
		free(t->order);
		free(t);
		return NULL;
	}
	return t;
}

void hl_memtab_free(hl_memtab *t)
{
	if (t) {
		hl_pages_free(t->slots, (t->mask + 1) * sizeof(slot));
		free(t->order);
		free(t);
	}
}

void hl_memtab_clear(hl_memtab *t)
{
	for (size_t i = 0; i < t->used; i++)
		memset(&t->slots[t->order[i]], 0, sizeof(slot));
	t->used = 0;
}

size_t hl_memtab_used(const hl_memtab *t) { return t->used; }
size_t hl_memtab_room(const hl_memtab *t) { return t->limit - t->used; }
unsigned hl_memtab_bits(const hl_memtab *t) { return t->bits; }

static size_t home(const hl_memtab *t, const hl_id *id)
{
	uint64_t x = (hl_le64(id->b) ^ t->key) * 0x9e3779b97f4a7c15ull;
	return (size_t)(x >> (64 - t->bits));
}

int hl_memtab_put(hl_memtab *t, const hl_id *id, const hl_idx_entry *e)
{
	if (t->used >= t->limit)
		return HL_TOOBIG;
	for (size_t i = home(t, id);; i = (i + 1) & t->mask) {
		slot *s = &t->slots[i];
		if (atomic_load_explicit(&s->state, memory_order_relaxed) != EMPTY)
			continue;
		s->id = *id;
		s->e = *e;
		atomic_store_explicit(&s->state, LIVE, memory_order_release);
		t->order[t->used++] = (uint32_t)i;
		return 0;
	}
}

/* The live slot of id, or NULL. */
static slot *find_live(const hl_memtab *t, const hl_id *id)
{
	for (size_t i = home(t, id);; i = (i + 1) & t->mask) {
		slot *s = &t->slots[i];
		unsigned st = atomic_load_explicit(&s->state, memory_order_acquire);
		if (st == EMPTY)
			return NULL;
		if (st == LIVE && hl_id_equal(&s->id, id))
			return s;
	}
}

int hl_memtab_get(const hl_memtab *t, const hl_id *id, hl_idx_entry *out)
{
	slot *s = find_live(t, id);
	if (!s)
		return HL_NOTFOUND;
	*out = s->e;
	/* a concurrent kill may land now; the caller then reads a record that is quarantined, which
	 * verification reports as corrupt anyway */
	return 0;
}

int hl_memtab_kill(hl_memtab *t, const hl_id *id, uint32_t segment, uint64_t offset)
{
	slot *s = find_live(t, id);
	if (!s || s->e.segment != segment || s->e.offset != offset)
		return 0;
	unsigned live = LIVE;
	return atomic_compare_exchange_strong(&s->state, &live, DEAD);
}

int hl_memtab_each(const hl_memtab *t, int (*fn)(const hl_id *, const hl_idx_entry *, void *), void *ctx)
{
	for (size_t i = 0; i < t->used; i++) {
		const slot *s = &t->slots[t->order[i]];
		if (atomic_load_explicit(&s->state, memory_order_acquire) != LIVE)
			continue;
		int r = fn(&s->id, &s->e, ctx);
		if (r)
			return r;
	}
	return 0;
}
