/* l1.c — see l1.h. Each shard: a chained hash table of entries, a doubly linked queue (SIEVE's
 * FIFO or LRU's recency list), a byte budget, and a mutex that only writers take.
 *
 * SIEVE hits read without a lock: a reader announces itself in its thread slot's counter for the
 * current epoch parity (a write to a cache line of its own), walks the chain with atomic loads and
 * leaves. Writers unlink entries (and replaced bucket arrays) and retire them; retired memory is
 * freed once every reader that could have seen it has left: the epoch flips, and the old parity's
 * counters are found all zero (a grace period, polled without blocking while it stays small). So
 * a SIEVE hit writes nothing shared but its visited bit, once, and the caller's reference if it
 * asks for one (hl_l1_borrow does not). Hit and miss counters live in the same per-thread slots. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "base/slot.h"
#include "hash/hash.h"
#include "cache/l1.h"
#include "base/alloc.h"

#define ENTRY_OVERHEAD 96 /* charged per entry on top of the object's bytes */

typedef struct entry {
	hl_id id;
	hl_buf *buf;
	const uint8_t *data; /* buf's bytes, here so that a borrow reads only the entry */
	size_t len;
	_Atomic(struct entry *) hnext; /* hash chain: readers follow it without a lock */
	struct entry *prev, *next;     /* queue: head = newest (writers only) */
	struct entry *gnext;           /* retired list */
	atomic_uchar visited;          /* SIEVE */
} entry;

typedef struct table {
	struct table *gnext; /* retired list */
	size_t n;            /* a power of two */
	_Atomic(entry *) b[];
} table;

typedef struct shard {
	pthread_mutex_t lock; /* writers; LRU hits */
	_Atomic(table *) tab;
	size_t count;
	entry *head, *tail, *hand; /* hand: SIEVE's eviction pointer */
	uint64_t bytes, budget;
	atomic_uint_fast64_t inserts, evictions;
	char pad[64];
} shard;

/* Per-thread slots (threads beyond SLOTS share one: every field is atomic), one cache line each. */
#define SLOTS 64
typedef struct slot {
	atomic_uint_fast64_t hits, misses;
	atomic_uint_fast64_t in[2]; /* readers inside, by epoch parity */
	char pad[64 - 4 * sizeof(atomic_uint_fast64_t)];
} slot;

static unsigned thread_slot(void) { return hl_thread_slot(6); } /* SLOTS == 64 */

/* Retired memory waits here: fresh (retired in the current epoch) until the epoch flips, then
 * waiting until the old parity's readers are gone. */
typedef struct garbage {
	entry *entries;
	table *tables;
	uint64_t bytes;
	size_t count;
} garbage;

#define POLL_COUNT 32                      /* retired entries that make a writer poll */
#define POLL_BYTES (UINT64_C(1) << 20)     /* or retired bytes */
#define DRAIN_BYTES (UINT64_C(64) << 20)   /* past this a writer waits for the readers */

struct hl_l1 {
	int policy;
	unsigned bits;
	uint64_t max_object;
	shard *shards;
	slot *slots; /* SLOTS of them, cache-line aligned */
	atomic_uint epoch;
	/* Two locks, so a writer that retires under its shard's lock never waits for a poll that
	 * waits for readers (an LRU reader takes a shard's lock inside its section: that would be a
	 * cycle). fmu: fresh, held only to add or take; gmu: waiting and the epoch's flips. */
	pthread_mutex_t fmu, gmu;
	garbage fresh, waiting;
};

/* Shards take the low id bits, buckets the bits from 16 up (shard_bits ≤ 12). */
static size_t bucket_of(const hl_id *id, size_t n) { return (size_t)(hl_le64_id(id) >> 16) & (n - 1); }

static table *table_new(size_t n)
{
	table *t = hl_calloc(1, sizeof(*t) + n * sizeof(t->b[0]));
	if (t)
		t->n = n;
	return t;
}

static void l1_release(hl_l1 *c)
{
	free(c->shards);
	free(c->slots);
	free(c);
}

hl_l1 *hl_l1_new(uint64_t max_bytes, uint64_t max_object, int policy, unsigned shard_bits)
{
	if (policy != HL_L1_SIEVE && policy != HL_L1_LRU)
		return NULL;
	if (shard_bits > 12)
		return NULL;
	hl_l1 *c = hl_calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	size_t n = (size_t)1 << shard_bits;
	c->policy = policy;
	c->bits = shard_bits;
	c->max_object = max_object;
	c->shards = hl_calloc(n, sizeof(shard));
	c->slots = hl_aligned_alloc(64, SLOTS * sizeof(slot));
	if (!c->shards || !c->slots) {
		l1_release(c);
		return NULL;
	}
	memset(c->slots, 0, SLOTS * sizeof(slot));
	pthread_mutex_init(&c->fmu, NULL);
	pthread_mutex_init(&c->gmu, NULL);
	for (size_t i = 0; i < n; i++) {
		shard *s = &c->shards[i];
		table *t = table_new(64);
		if (!t) { /* free the shards made so far: they hold no entries yet */
			for (size_t j = 0; j < i; j++) {
				free(atomic_load(&c->shards[j].tab));
				pthread_mutex_destroy(&c->shards[j].lock);
			}
			pthread_mutex_destroy(&c->fmu);
			pthread_mutex_destroy(&c->gmu);
			l1_release(c);
			return NULL;
		}
		pthread_mutex_init(&s->lock, NULL);
		s->budget = max_bytes / n;
		atomic_init(&s->tab, t);
	}
	return c;
}

static shard *shard_of(hl_l1 *c, const hl_id *id)
{
	return &c->shards[hl_le64_id(id) & ((1u << c->bits) - 1)];
}

static void entry_free(entry *e)
{
	hl_buf_unref(e->buf);
	free(e);
}

static void garbage_free(garbage *g)
{
	for (entry *e = g->entries, *next; e; e = next) {
		next = e->gnext;
		entry_free(e);
	}
	for (table *t = g->tables, *next; t; t = next) {
		next = t->gnext;
		free(t);
	}
	memset(g, 0, sizeof(*g));
}

void hl_l1_free(hl_l1 *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ((size_t)1 << c->bits); i++) {
		shard *s = &c->shards[i];
		for (entry *e = s->head, *next; e; e = next) {
			next = e->next;
			entry_free(e);
		}
		free(atomic_load(&s->tab));
		pthread_mutex_destroy(&s->lock);
	}
	garbage_free(&c->fresh);
	garbage_free(&c->waiting);
	pthread_mutex_destroy(&c->fmu);
	pthread_mutex_destroy(&c->gmu);
	l1_release(c);
}

/* ---- readers ---- */

/* Enters a read section: counted under the epoch's parity, re-checked so that a flip between
 * reading the epoch and counting is never missed (all seq_cst: a writer that finds the count zero
 * after its flip is ordered before this reader's first load of the table). */
static unsigned read_enter(slot *k, hl_l1 *c)
{
	for (;;) {
		unsigned p = atomic_load(&c->epoch) & 1;
		atomic_fetch_add(&k->in[p], 1);
		if ((atomic_load(&c->epoch) & 1) == p)
			return p;
		atomic_fetch_sub_explicit(&k->in[p], 1, memory_order_release);
	}
}

static void read_leave(slot *k, unsigned p)
{
	atomic_fetch_sub_explicit(&k->in[p], 1, memory_order_release);
}

static entry *find(shard *s, const hl_id *id)
{
	table *t = atomic_load(&s->tab);
	for (entry *e = atomic_load(&t->b[bucket_of(id, t->n)]); e; e = atomic_load(&e->hnext))
		if (hl_id_cmp(&e->id, id) == 0)
			return e;
	return NULL;
}

static void queue_unlink(shard *s, entry *e)
{
	if (e->prev)
		e->prev->next = e->next;
	else
		s->head = e->next;
	if (e->next)
		e->next->prev = e->prev;
	else
		s->tail = e->prev;
	e->prev = e->next = NULL;
}

static void queue_push_head(shard *s, entry *e)
{
	e->prev = NULL;
	e->next = s->head;
	if (s->head)
		s->head->prev = e;
	s->head = e;
	if (!s->tail)
		s->tail = e;
}

/* The entry for id inside a read section (the caller leaves it); the hit counted; for LRU also
 * moved to the front under the shard's lock. */
static entry *lookup(hl_l1 *c, slot *k, const hl_id *id)
{
	shard *s = shard_of(c, id);
	entry *e;
	if (c->policy == HL_L1_SIEVE) {
		e = find(s, id);
		if (e && !atomic_load_explicit(&e->visited, memory_order_relaxed))
			atomic_store_explicit(&e->visited, 1, memory_order_relaxed);
	} else {
		pthread_mutex_lock(&s->lock);
		e = find(s, id);
		if (e && s->head != e) {
			queue_unlink(s, e);
			queue_push_head(s, e);
		}
		pthread_mutex_unlock(&s->lock);
	}
	atomic_fetch_add_explicit(e ? &k->hits : &k->misses, 1, memory_order_relaxed);
	return e;
}

int hl_l1_get(hl_l1 *c, const hl_id *id, hl_buf **out)
{
	slot *k = &c->slots[thread_slot()];
	unsigned p = read_enter(k, c);
	entry *e = lookup(c, k, id);
	if (e)
		*out = hl_buf_ref(e->buf);
	read_leave(k, p);
	return e ? 0 : HL_NOTFOUND;
}

int hl_l1_borrow(hl_l1 *c, const hl_id *id, hl_l1_pin *pin, const uint8_t **data, size_t *len)
{
	slot *k = &c->slots[thread_slot()];
	unsigned p = read_enter(k, c);
	entry *e = lookup(c, k, id);
	if (!e) {
		read_leave(k, p);
		return HL_NOTFOUND;
	}
	*data = e->data;
	*len = e->len;
	pin->slot = (unsigned)(k - c->slots);
	pin->parity = p;
	return 0;
}

void hl_l1_unpin(hl_l1 *c, hl_l1_pin *pin)
{
	read_leave(&c->slots[pin->slot], pin->parity);
}

/* ---- writers ---- */

static int readers_gone(hl_l1 *c, unsigned parity)
{
	for (int i = 0; i < SLOTS; i++)
		if (atomic_load(&c->slots[i].in[parity]))
			return 0;
	return 1;
}

/* Frees what the readers can no longer see; flips the epoch when fresh garbage waits. Under gmu
 * (not fmu: writers keep retiring meanwhile; what they retire after fresh was taken waits for the
 * next flip). drain: wait for the readers (they hold a section for a lookup or a short borrow). */
static void poll_locked(hl_l1 *c, int drain)
{
	for (int round = 0; round < 2; round++) {
		if (c->waiting.count) {
			unsigned old = (atomic_load(&c->epoch) - 1) & 1;
			while (!readers_gone(c, old)) {
				if (!drain)
					return;
				sched_yield();
			}
			garbage_free(&c->waiting);
		}
		pthread_mutex_lock(&c->fmu);
		c->waiting = c->fresh;
		memset(&c->fresh, 0, sizeof(c->fresh));
		pthread_mutex_unlock(&c->fmu);
		if (!c->waiting.count)
			return;
		atomic_fetch_add(&c->epoch, 1);
	}
}

static void retire(hl_l1 *c, entry *e, table *t)
{
	pthread_mutex_lock(&c->fmu);
	if (e) {
		e->gnext = c->fresh.entries;
		c->fresh.entries = e;
		c->fresh.bytes += hl_buf_len(e->buf) + ENTRY_OVERHEAD;
	}
	if (t) {
		t->gnext = c->fresh.tables;
		c->fresh.tables = t;
		c->fresh.bytes += t->n * sizeof(t->b[0]);
	}
	c->fresh.count++;
	pthread_mutex_unlock(&c->fmu);
}

/* Called by a writer after it let go of its shard. */
static void maybe_poll(hl_l1 *c)
{
	if (pthread_mutex_trylock(&c->gmu) != 0)
		return;
	pthread_mutex_lock(&c->fmu);
	uint64_t bytes = c->fresh.bytes + c->waiting.bytes;
	size_t fresh = c->fresh.count;
	pthread_mutex_unlock(&c->fmu);
	if (fresh >= POLL_COUNT || bytes >= POLL_BYTES || c->waiting.count)
		poll_locked(c, bytes >= DRAIN_BYTES);
	pthread_mutex_unlock(&c->gmu);
}

static void hash_unlink(shard *s, entry *e)
{
	table *t = atomic_load_explicit(&s->tab, memory_order_relaxed);
	_Atomic(entry *) *p = &t->b[bucket_of(&e->id, t->n)];
	entry *x;
	while ((x = atomic_load_explicit(p, memory_order_relaxed)) != e)
		p = &x->hnext;
	atomic_store(p, atomic_load_explicit(&e->hnext, memory_order_relaxed));
}

static void drop_locked(hl_l1 *c, shard *s, entry *e)
{
	if (s->hand == e)
		s->hand = e->prev;
	hash_unlink(s, e);
	queue_unlink(s, e);
	s->bytes -= hl_buf_len(e->buf) + ENTRY_OVERHEAD;
	s->count--;
	retire(c, e, NULL);
}

/* The entry to evict: LRU's tail, or SIEVE's hand sweeping from the tail toward the head, clearing
 * visited bits until it finds an unvisited entry. */
static entry *victim_locked(hl_l1 *c, shard *s)
{
	if (c->policy == HL_L1_LRU)
		return s->tail;
	entry *h = s->hand ? s->hand : s->tail;
	while (h && atomic_load_explicit(&h->visited, memory_order_relaxed)) {
		atomic_store_explicit(&h->visited, 0, memory_order_relaxed);
		h = h->prev ? h->prev : s->tail;
	}
	s->hand = h ? h->prev : NULL;
	return h;
}

/* Doubles the bucket array. Entries move chain by chain while readers may walk them: each moved
 * entry points at one moved before it, so a walk always ends (at worst it misses an entry that is
 * moving: a cache miss, not a wrong answer). The old array is retired. */
static void grow_locked(hl_l1 *c, shard *s)
{
	table *old = atomic_load_explicit(&s->tab, memory_order_relaxed);
	table *t = table_new(old->n * 2);
	if (!t)
		return; /* keep the longer chains */
	for (size_t i = 0; i < old->n; i++) {
		entry *e = atomic_load_explicit(&old->b[i], memory_order_relaxed);
		while (e) {
			entry *next = atomic_load_explicit(&e->hnext, memory_order_relaxed);
			size_t k = bucket_of(&e->id, t->n);
			atomic_store(&e->hnext, atomic_load_explicit(&t->b[k], memory_order_relaxed));
			atomic_store_explicit(&t->b[k], e, memory_order_relaxed);
			e = next;
		}
	}
	atomic_store(&s->tab, t);
	retire(c, NULL, old);
}

void hl_l1_put(hl_l1 *c, const hl_id *id, hl_buf *b)
{
	uint64_t cost = hl_buf_len(b) + ENTRY_OVERHEAD;
	shard *s = shard_of(c, id);
	if (hl_buf_len(b) > c->max_object || cost > s->budget)
		return;
	entry *n = hl_malloc(sizeof(*n));
	if (!n)
		return;
	n->id = *id;
	n->buf = hl_buf_ref(b);
	n->data = hl_buf_data(b);
	n->len = hl_buf_len(b);
	atomic_init(&n->visited, 0);
	pthread_mutex_lock(&s->lock);
	if (find(s, id)) {
		pthread_mutex_unlock(&s->lock);
		entry_free(n);
		return;
	}
	while (s->bytes + cost > s->budget) {
		entry *v = victim_locked(c, s);
		if (!v)
			break;
		drop_locked(c, s, v);
		atomic_fetch_add_explicit(&s->evictions, 1, memory_order_relaxed);
	}
	table *t = atomic_load_explicit(&s->tab, memory_order_relaxed);
	if (s->count + 1 > t->n) {
		grow_locked(c, s);
		t = atomic_load_explicit(&s->tab, memory_order_relaxed);
	}
	size_t k = bucket_of(id, t->n);
	atomic_init(&n->hnext, atomic_load_explicit(&t->b[k], memory_order_relaxed));
	atomic_store(&t->b[k], n); /* published: the entry's fields were written before */
	queue_push_head(s, n);
	s->bytes += cost;
	s->count++;
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_add_explicit(&s->inserts, 1, memory_order_relaxed);
	maybe_poll(c);
}

void hl_l1_remove(hl_l1 *c, const hl_id *id)
{
	shard *s = shard_of(c, id);
	pthread_mutex_lock(&s->lock);
	entry *e = find(s, id);
	if (e)
		drop_locked(c, s, e);
	pthread_mutex_unlock(&s->lock);
	if (e)
		maybe_poll(c);
}

void hl_l1_stats_get(hl_l1 *c, hl_l1_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < SLOTS; i++) {
		out->hits += atomic_load(&c->slots[i].hits);
		out->misses += atomic_load(&c->slots[i].misses);
	}
	for (size_t i = 0; i < ((size_t)1 << c->bits); i++) {
		shard *s = &c->shards[i];
		out->inserts += atomic_load(&s->inserts);
		out->evictions += atomic_load(&s->evictions);
		out->capacity += s->budget;
		pthread_mutex_lock(&s->lock);
		out->bytes += s->bytes;
		out->entries += s->count;
		pthread_mutex_unlock(&s->lock);
	}
}
