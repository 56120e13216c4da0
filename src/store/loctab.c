/* loctab.c — see loctab.h. Linear probing with backward-shift deletion (no tombstones), on a
 * keyed mix of the id so ids crafted to share bits do not build long probe chains; a shard's
 * table grows by half when four fifths full (any size: a slot's home is the mix scaled to it),
 * so it is 53–80% full. A slot is 64 bytes: an entry whose fields do not fit (an offset or size
 * of a TiB or more, a later access time than 2106, marks past 8 bits) gives the table up. */
#include "store/loctab.h"
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include "base/alloc.h"
#include "base/endian.h"


#define SHARD_BITS 6
#define SHARDS (1u << SHARD_BITS)
#define FIRST_SLOTS 256u /* per shard */
#define FIELD_MAX (UINT64_C(1) << 40) /* offsets and sizes below this fit */

typedef struct slot { /* segment 0: empty (segments are numbered from 1) */
	hl_id id;
	uint64_t offset, stored_len;
	uint64_t raw_flags_marks; /* raw_len (40 bits), flags (16), marks (8) */
	uint32_t segment, atime;
} slot;
_Static_assert(sizeof(slot) == 64, "a slot is 64 bytes");

typedef struct shard {
	pthread_rwlock_t lock;
	slot *slots;
	size_t cap, used;
} shard;

struct hl_loctab {
	uint64_t key;
	atomic_int ready, given_up;
	shard shards[SHARDS];
};

static uint64_t mix(const hl_loctab *t, const hl_id *id)
{
	return (hl_le64(id->b) ^ t->key) * 0x9e3779b97f4a7c15ull;
}

/* The mix's top bits choose the shard, the ones below them the slot: a product's high bits depend
 * on every bit of the id's word, so ids made to share some bits still spread. */
static shard *shard_of(hl_loctab *t, uint64_t m) { return &t->shards[m >> (64 - SHARD_BITS)]; }

/* Where a mix lives in a table of cap slots (the bits below the shard's, scaled to cap). */
static size_t home_of(uint64_t m, size_t cap)
{
	return (size_t)(((unsigned __int128)(m << SHARD_BITS) * cap) >> 64);
}

static size_t next(size_t i, size_t cap) { return i + 1 == cap ? 0 : i + 1; }

static int fits(const hl_idx_entry *e)
{
	return e->segment && e->offset < FIELD_MAX && e->stored_len < FIELD_MAX && e->raw_len < FIELD_MAX &&
	       e->marks < 256 && e->atime <= UINT32_MAX;
}

static slot pack(const hl_id *id, const hl_idx_entry *e)
{
	return (slot){*id, e->offset, e->stored_len,
	              e->raw_len | (uint64_t)e->flags << 40 | (uint64_t)e->marks << 56, e->segment,
	              (uint32_t)e->atime};
}

static hl_idx_entry unpack(const slot *s)
{
	return (hl_idx_entry){s->segment, s->offset, s->stored_len, s->raw_flags_marks & (FIELD_MAX - 1),
	                      (uint16_t)(s->raw_flags_marks >> 40), (uint32_t)(s->raw_flags_marks >> 56),
	                      s->atime};
}

/* Zeroed slots, populated (a grown table is probed at random: unpopulated, its reads would map
 * the zero page and each first write then fault and flush the TLB of every CPU), in huge pages
 * where the kernel allows (fewer TLB misses on a table of hundreds of MiB). */
static slot *slots_alloc(size_t n) { return hl_pages_alloc(n * sizeof(slot)); }
static void slots_free(slot *s, size_t n) { hl_pages_free(s, n * sizeof(slot)); }

hl_loctab *hl_loctab_new(void)
{
	hl_loctab *t = hl_calloc(1, sizeof(*t));
	if (!t)
		return NULL;
	int ok = getrandom(&t->key, sizeof t->key, 0) == sizeof t->key;
	unsigned i = 0;
	for (; ok && i < SHARDS; i++) {
		shard *sh = &t->shards[i];
		if (!(sh->slots = slots_alloc(FIRST_SLOTS)))
			break;
		sh->cap = FIRST_SLOTS;
		pthread_rwlock_init(&sh->lock, NULL);
	}
	if (i < SHARDS) {
		while (i--) {
			slots_free(t->shards[i].slots, FIRST_SLOTS);
			pthread_rwlock_destroy(&t->shards[i].lock);
		}
		free(t);
		return NULL;
	}
	return t;
}

void hl_loctab_free(hl_loctab *t)
{
	if (!t)
		return;
	for (unsigned i = 0; i < SHARDS; i++) {
		slots_free(t->shards[i].slots, t->shards[i].cap);
		pthread_rwlock_destroy(&t->shards[i].lock);
	}
	free(t);
}

/* The slot holding id, or the empty one where it would go. Shard lock held. */
static size_t find(const shard *sh, uint64_t m, const hl_id *id)
{
	size_t i = home_of(m, sh->cap);
	while (sh->slots[i].segment && memcmp(sh->slots[i].id.b, id->b, HL_ID_LEN) != 0)
		i = next(i, sh->cap);
	return i;
}

int hl_loctab_get(hl_loctab *t, const hl_id *id, hl_idx_entry *out)
{
	if (!atomic_load_explicit(&t->ready, memory_order_acquire) ||
	    atomic_load_explicit(&t->given_up, memory_order_relaxed))
		return HL_BUSY;
	uint64_t m = mix(t, id);
	shard *sh = shard_of(t, m);
	pthread_rwlock_rdlock(&sh->lock);
	const slot *s = &sh->slots[find(sh, m, id)];
	int err = HL_NOTFOUND;
	if (s->segment) {
		*out = unpack(s);
		err = 0;
	}
	pthread_rwlock_unlock(&sh->lock);
	/* given up meanwhile: the entry may be stale */
	return atomic_load_explicit(&t->given_up, memory_order_acquire) ? HL_BUSY : err;
}

/* Grows the shard's table by half. Shard lock held (write). */
static int grow(hl_loctab *t, shard *sh)
{
	size_t n = sh->cap + sh->cap / 2;
	slot *v = slots_alloc(n);
	if (!v)
		return ENOMEM;
	for (size_t i = 0; i < sh->cap; i++) {
		const slot *s = &sh->slots[i];
		if (!s->segment)
			continue;
		size_t j = home_of(mix(t, &s->id), n);
		while (v[j].segment)
			j = next(j, n);
		v[j] = *s;
	}
	slots_free(sh->slots, sh->cap);
	sh->slots = v;
	sh->cap = n;
	return 0;
}

void hl_loctab_put(hl_loctab *t, const hl_id *id, const hl_idx_entry *e)
{
	if (atomic_load_explicit(&t->given_up, memory_order_relaxed))
		return;
	if (!fits(e)) { /* kept no copy that could be wrong */
		hl_loctab_give_up(t);
		return;
	}
	uint64_t m = mix(t, id);
	shard *sh = shard_of(t, m);
	pthread_rwlock_wrlock(&sh->lock);
	int err = 0;
	if ((sh->used + 1) * 5 > sh->cap * 4)
		err = grow(t, sh);
	if (!err) {
		slot *s = &sh->slots[find(sh, m, id)];
		sh->used += !s->segment;
		*s = pack(id, e);
	}
	pthread_rwlock_unlock(&sh->lock);
	if (err)
		hl_loctab_give_up(t);
}

void hl_loctab_del(hl_loctab *t, const hl_id *id)
{
	uint64_t m = mix(t, id);
	shard *sh = shard_of(t, m);
	pthread_rwlock_wrlock(&sh->lock);
	size_t i = find(sh, m, id);
	if (sh->slots[i].segment) {
		/* backward shift: move later members of the run into the hole when their home allows */
		size_t j = i;
		for (;;) {
			j = next(j, sh->cap);
			if (!sh->slots[j].segment)
				break;
			size_t home = home_of(mix(t, &sh->slots[j].id), sh->cap);
			/* slot j may fill hole i when its home is not in (i, j] (cyclically) */
			if ((j > i && (home <= i || home > j)) || (j < i && home <= i && home > j)) {
				sh->slots[i] = sh->slots[j];
				i = j;
			}
		}
		memset(&sh->slots[i], 0, sizeof(slot));
		sh->used--;
	}
	pthread_rwlock_unlock(&sh->lock);
}

void hl_loctab_touch(hl_loctab *t, const hl_id *id, uint64_t atime)
{
	uint64_t m = mix(t, id);
	shard *sh = shard_of(t, m);
	pthread_rwlock_wrlock(&sh->lock);
	slot *s = &sh->slots[find(sh, m, id)];
	if (s->segment && s->atime < atime) {
		if (atime > UINT32_MAX)
			hl_loctab_give_up(t);
		s->atime = (uint32_t)atime;
	}
	pthread_rwlock_unlock(&sh->lock);
}

void hl_loctab_complete(hl_loctab *t) { atomic_store_explicit(&t->ready, 1, memory_order_release); }

void hl_loctab_give_up(hl_loctab *t) { atomic_store_explicit(&t->given_up, 1, memory_order_release); }

int hl_loctab_ready(hl_loctab *t)
{
	return atomic_load(&t->ready) && !atomic_load(&t->given_up);
}

static uint64_t sum(hl_loctab *t, int bytes)
{
	uint64_t n = 0;
	for (unsigned i = 0; i < SHARDS; i++) {
		shard *sh = &t->shards[i];
		pthread_rwlock_rdlock(&sh->lock);
		n += bytes ? sh->cap * sizeof(slot) : sh->used;
		pthread_rwlock_unlock(&sh->lock);
	}
	return n;
}

uint64_t hl_loctab_count(hl_loctab *t) { return sum(t, 0); }
uint64_t hl_loctab_bytes(hl_loctab *t) { return sum(t, 1); }
