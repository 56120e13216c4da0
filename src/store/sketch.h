/* sketch.h — similarity sketches: a sample of content-defined features of an object, and an index
 * of the recently written objects' samples, so a new object finds a stored one that contains much
 * of its content (a delta base) without a base named by its writer. */
#ifndef HL_STORE_SKETCH_H
#define HL_STORE_SKETCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include "hash/hash.h"

#define HL_SKETCH_K 32         /* features kept per object */
#define HL_SKETCH_MIN_LEN 512  /* smaller objects get no sketch */

/* The K smallest feature values of an object (a bottom-k sample): an object contained in another
 * has about K × (its size / the other's) of its values among the other's, and two versions of one
 * file most of theirs. */
typedef struct hl_sketch {
	uint32_t f[HL_SKETCH_K];
	unsigned n;
} hl_sketch;

/* The sketch of data[0..len): 0, or HL_NOTFOUND (out->n 0) when it has too few features to say
 * anything (short, or one byte repeated). */
int hl_sketch_of(const void *data, size_t len, hl_sketch *out);

/* The recent objects: a ring of the last 2^ring_log ids and a table of 2^slots_log slots from a
 * feature to the newest ring entry that had it. Thread-safe; never fails (a feature that does not
 * fit replaces another). */
typedef struct hl_sketch_index {
	pthread_mutex_t mu;
	hl_id *ring;
	struct sketch_slot *slot;
	unsigned ring_log, slots_log;
	uint64_t head; /* entries added so far */
} hl_sketch_index;

/* 0, or ENOMEM (then the index stays empty and finds nothing). */
int hl_sketch_index_init(hl_sketch_index *x, unsigned ring_log, unsigned slots_log);
void hl_sketch_index_free(hl_sketch_index *x);
void hl_sketch_index_add(hl_sketch_index *x, const hl_sketch *sk, const hl_id *id);
/* The recent object sharing the most features with sk (at least two; on a tie the newest), other
 * than self: 0 with *out and *votes (how many it shares), or HL_NOTFOUND. */
int hl_sketch_index_find(hl_sketch_index *x, const hl_sketch *sk, const hl_id *self, hl_id *out,
                         unsigned *votes);

#endif
