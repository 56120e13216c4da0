/* l1.c — see l1.h. Each shard: a chained hash table of entries, a doubly linked queue (SIEVE's
 * FIFO or LRU's recency list), a byte budget, and a rwlock. Counters are per shard, summed on read. */
#include <pthread.h>
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
	struct entry *hnext;       /* hash chain */
	struct entry *prev, *next; /* queue: head = newest */
	atomic_uchar visited;      /* SIEVE */
} entry;

typedef struct shard {
	pthread_rwlock_t lock;
	entry **buckets;
	size_t nbuckets, count;
	entry *head, *tail, *hand;  /* hand: SIEVE's eviction pointer */
	uint64_t bytes, budget;
	atomic_uint_fast64_t inserts, evictions;
	char pad[64];
} shard;

/* Hit and miss counters live in per-thread slots (threads beyond SLOTS share), so a hit writes
 * nothing another core is likely to hold. */
#define SLOTS 64
typedef struct counter {
	atomic_uint_fast64_t hits, misses;
	char pad[64 - 2 * sizeof(atomic_uint_fast64_t)];
} counter;

static unsigned thread_slot(void) { return hl_thread_slot(6); } /* SLOTS == 64 */

struct hl_l1 {
	int policy;
	unsigned bits;
	uint64_t max_object;
	shard *shards;
	counter *ctr; /* SLOTS of them, cache-line aligned */
};

/* Shards take the low id bits, buckets the bits from 16 up (shard_bits ≤ 12). */
static size_t bucket_of(const hl_id *id, size_t n) { return (size_t)(hl_le64_id(id) >> 16) & (n - 1); }

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
	c->ctr = hl_aligned_alloc(64, SLOTS * sizeof(counter));
	if (!c->shards || !c->ctr) {
		free(c->shards);
		free(c->ctr);
		free(c);
		return NULL;
	}
	memset(c->ctr, 0, SLOTS * sizeof(counter));
	for (size_t i = 0; i < n; i++) {
		shard *s = &c->shards[i];
		pthread_rwlock_init(&s->lock, NULL);
		s->budget = max_bytes / n;
		s->nbuckets = 64;
		s->buckets = hl_calloc(s->nbuckets, sizeof(entry *));
		if (!s->buckets) { /* free the shards made so far: they hold no entries yet */
			for (size_t j = 0; j <= i; j++) {
				free(c->shards[j].buckets);
				pthread_rwlock_destroy(&c->shards[j].lock);
			}
			free(c->shards);
			free(c->ctr);
			free(c);
			return NULL;
		}
	}
	return c;
}

static shard *shard_of(hl_l1 *c, const hl_id *id)
{
	return &c->shards[hl_le64_id(id) & ((1u << c->bits) - 1)];
}

void hl_l1_free(hl_l1 *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < ((size_t)1 << c->bits); i++) {
		shard *s = &c->shards[i];
		for (entry *e = s->head, *next; e; e = next) {
			next = e->next;
			hl_buf_unref(e->buf);
			free(e);
		}
		free(s->buckets);
		pthread_rwlock_destroy(&s->lock);
	}
	free(c->shards);
	free(c->ctr);
	free(c);
}

static entry *find_locked(shard *s, const hl_id *id)
{
	for (entry *e = s->buckets[bucket_of(id, s->nbuckets)]; e; e = e->hnext)
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

int hl_l1_get(hl_l1 *c, const hl_id *id, hl_buf **out)
{
	shard *s = shard_of(c, id);
	if (c->policy == HL_L1_SIEVE) {
		pthread_rwlock_rdlock(&s->lock);
		entry *e = find_locked(s, id);
		if (e) {
			if (!atomic_load_explicit(&e->visited, memory_order_relaxed))
				atomic_store_explicit(&e->visited, 1, memory_order_relaxed);
			*out = hl_buf_ref(e->buf);
		}
		pthread_rwlock_unlock(&s->lock);
		counter *k = &c->ctr[thread_slot()];
		atomic_fetch_add_explicit(e ? &k->hits : &k->misses, 1, memory_order_relaxed);
		return e ? 0 : HL_NOTFOUND;
	}
	pthread_rwlock_wrlock(&s->lock);
	entry *e = find_locked(s, id);
	if (e) {
		if (s->head != e) {
			queue_unlink(s, e);
			queue_push_head(s, e);
		}
		*out = hl_buf_ref(e->buf);
	}
	pthread_rwlock_unlock(&s->lock);
	counter *k = &c->ctr[thread_slot()];
	atomic_fetch_add_explicit(e ? &k->hits : &k->misses, 1, memory_order_relaxed);
	return e ? 0 : HL_NOTFOUND;
}

static void hash_unlink(shard *s, entry *e)
{
	entry **p = &s->buckets[bucket_of(&e->id, s->nbuckets)];
	while (*p != e)
		p = &(*p)->hnext;
	*p = e->hnext;
}

static void drop_locked(shard *s, entry *e)
{
	if (s->hand == e)
		s->hand = e->prev;
	hash_unlink(s, e);
	queue_unlink(s, e);
	s->bytes -= hl_buf_len(e->buf) + ENTRY_OVERHEAD;
	s->count--;
	hl_buf_unref(e->buf);
	free(e);
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

static void grow_locked(shard *s)
{
	size_t n = s->nbuckets * 2;
	entry **b = hl_calloc(n, sizeof(entry *));
	if (!b)
		return; /* keep the longer chains */
	for (size_t i = 0; i < s->nbuckets; i++) {
		for (entry *e = s->buckets[i], *next; e; e = next) {
			next = e->hnext;
			size_t k = bucket_of(&e->id, n);
			e->hnext = b[k];
			b[k] = e;
		}
	}
	free(s->buckets);
	s->buckets = b;
	s->nbuckets = n;
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
	atomic_init(&n->visited, 0);
	pthread_rwlock_wrlock(&s->lock);
	if (find_locked(s, id)) {
		pthread_rwlock_unlock(&s->lock);
		hl_buf_unref(n->buf);
		free(n);
		return;
	}
	while (s->bytes + cost > s->budget) {
		entry *v = victim_locked(c, s);
		if (!v)
			break;
		drop_locked(s, v);
		atomic_fetch_add_explicit(&s->evictions, 1, memory_order_relaxed);
	}
	if (s->count + 1 > s->nbuckets)
		grow_locked(s);
	size_t k = bucket_of(id, s->nbuckets);
	n->hnext = s->buckets[k];
	s->buckets[k] = n;
	queue_push_head(s, n);
	s->bytes += cost;
	s->count++;
	pthread_rwlock_unlock(&s->lock);
	atomic_fetch_add_explicit(&s->inserts, 1, memory_order_relaxed);
}

void hl_l1_remove(hl_l1 *c, const hl_id *id)
{
	shard *s = shard_of(c, id);
	pthread_rwlock_wrlock(&s->lock);
	entry *e = find_locked(s, id);
	if (e)
		drop_locked(s, e);
	pthread_rwlock_unlock(&s->lock);
}

void hl_l1_stats_get(hl_l1 *c, hl_l1_stats *out)
{
	memset(out, 0, sizeof(*out));
	for (int i = 0; i < SLOTS; i++) {
		out->hits += atomic_load(&c->ctr[i].hits);
		out->misses += atomic_load(&c->ctr[i].misses);
	}
	for (size_t i = 0; i < ((size_t)1 << c->bits); i++) {
		shard *s = &c->shards[i];
		out->inserts += atomic_load(&s->inserts);
		out->evictions += atomic_load(&s->evictions);
		out->capacity += s->budget;
		pthread_rwlock_rdlock(&s->lock);
		out->bytes += s->bytes;
		out->entries += s->count;
		pthread_rwlock_unlock(&s->lock);
	}
}
