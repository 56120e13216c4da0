/* sketch.c — similarity sketches and the index of recent ones (sketch.h). A gear hash rolls over
 * the bytes (each value depends on the last 64 of them); positions where its top bits are zero
 * (about one in 64, chosen by content, so shared content yields the same positions wherever it
 * sits) are the features, mixed to 32 bits; the sketch keeps the K smallest. Nothing here is
 * stored: the index lives in memory and starts empty at every open. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"
#include "base/alloc.h"
#include "store/sketch.h"

#define ANCHOR_SHIFT 58  /* a feature where the hash's top 6 bits are zero */
#define MIN_FEATURES 8

struct sketch_slot {
	uint32_t tag; /* the feature */
	uint32_t pos; /* its ring entry's number + 1 (low 32 bits); 0: empty */
};

static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static uint64_t mix64(uint64_t z)
{
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static void gear_fill(void)
{
	for (int i = 0; i < 256; i++)
		gear[i] = mix64(0x5ce7c4a11ull + (uint64_t)i * 0x9e3779b97f4a7c15ull);
}

/* Keeps v among the n (≤ K) smallest distinct values in the max-heap f. */
static void keep_smallest(uint32_t *f, unsigned *n, uint32_t v)
{
	if (*n == HL_SKETCH_K && v >= f[0])
		return;
	for (unsigned i = 0; i < *n; i++)
		if (f[i] == v)
			return; /* repeated content: one feature */
	unsigned i;
	if (*n < HL_SKETCH_K) { /* sift up from the end */
		i = (*n)++;
		while (i && f[(i - 1) / 2] < v) {
			f[i] = f[(i - 1) / 2];
			i = (i - 1) / 2;
		}
		f[i] = v;
		return;
	}
	i = 0; /* replace the largest, sift down */
	for (;;) {
		unsigned c = 2 * i + 1;
		if (c >= *n)
			break;
		if (c + 1 < *n && f[c + 1] > f[c])
			c++;
		if (f[c] <= v)
			break;
		f[i] = f[c];
		i = c;
	}
	f[i] = v;
}

int hl_sketch_of(const void *data, size_t len, hl_sketch *out)
{
	pthread_once(&gear_once, gear_fill);
	const uint8_t *d = data;
	uint64_t h = 0;
	out->n = 0;
	if (len < HL_SKETCH_MIN_LEN)
		return HL_NOTFOUND;
	for (size_t i = 0; i < len; i++) {
		h = (h << 1) + gear[d[i]];
		if (i >= 63 && (h >> ANCHOR_SHIFT) == 0)
			keep_smallest(out->f, &out->n, (uint32_t)(mix64(h) >> 32) | 1); /* never 0 */
	}
	if (out->n < MIN_FEATURES) {
		out->n = 0;
		return HL_NOTFOUND;
	}
	return 0;
}

int hl_sketch_index_init(hl_sketch_index *x, unsigned ring_log, unsigned slots_log)
{
	memset(x, 0, sizeof *x);
	x->ring_log = ring_log;
	x->slots_log = slots_log;
	x->ring = hl_calloc((size_t)1 << ring_log, sizeof(*x->ring));
	x->slot = hl_calloc((size_t)1 << slots_log, sizeof(*x->slot));
	if (!x->ring || !x->slot) {
		free(x->ring);
		free(x->slot);
		x->ring = NULL;
		x->slot = NULL;
		return ENOMEM;
	}
	pthread_mutex_init(&x->mu, NULL);
	return 0;
}

void hl_sketch_index_free(hl_sketch_index *x)
{
	if (!x->ring)
		return;
	pthread_mutex_destroy(&x->mu);
	free(x->ring);
	free(x->slot);
	x->ring = NULL;
	x->slot = NULL;
}

static struct sketch_slot *slot_of(hl_sketch_index *x, uint32_t tag)
{
	return &x->slot[mix64(tag) & (((uint64_t)1 << x->slots_log) - 1)];
}

void hl_sketch_index_add(hl_sketch_index *x, const hl_sketch *sk, const hl_id *id)
{
	if (!x->ring)
		return;
	pthread_mutex_lock(&x->mu);
	uint64_t n = x->head++;
	x->ring[n & (((uint64_t)1 << x->ring_log) - 1)] = *id;
	for (unsigned k = 0; k < sk->n; k++)
		*slot_of(x, sk->f[k]) = (struct sketch_slot){sk->f[k], (uint32_t)n + 1};
	pthread_mutex_unlock(&x->mu);
}

int hl_sketch_index_find(hl_sketch_index *x, const hl_sketch *sk, const hl_id *self, hl_id *out,
                         unsigned *votes_out)
{
	if (!x->ring)
		return HL_NOTFOUND;
	uint32_t pos[HL_SKETCH_K];
	unsigned n = 0;
	pthread_mutex_lock(&x->mu);
	uint32_t head = (uint32_t)x->head;
	for (unsigned k = 0; k < sk->n; k++) {
		struct sketch_slot s = *slot_of(x, sk->f[k]);
		/* still in the ring: fewer than its size added since */
		if (s.pos && s.tag == sk->f[k] && (uint32_t)(head - (s.pos - 1)) <= ((uint32_t)1 << x->ring_log))
			pos[n++] = s.pos - 1;
	}
	unsigned best_votes = 0;
	uint32_t best = 0;
	for (unsigned i = 0; i < n; i++) {
		unsigned votes = 0;
		for (unsigned j = 0; j < n; j++)
			votes += pos[j] == pos[i];
		if (votes > best_votes || (votes == best_votes && (int32_t)(pos[i] - best) > 0)) {
			best_votes = votes;
			best = pos[i];
		}
	}
	int err = HL_NOTFOUND;
	if (best_votes >= 2) {
		hl_id id = x->ring[best & (((uint32_t)1 << x->ring_log) - 1)];
		if (!self || !hl_id_equal(&id, self)) {
			*out = id;
			*votes_out = best_votes;
			err = 0;
		}
	}
	pthread_mutex_unlock(&x->mu);
	return err;
}
