/* mtable.h — the benchmarks' baseline in-memory store: one mutex over a chained hash table,
 * values copied in and out (what a straightforward cache or server would do). */
#ifndef HL_BENCH_MTABLE_H
#define HL_BENCH_MTABLE_H
#include <pthread.h>
#include <stddef.h>
#include "helios.h"

typedef struct mnode {
	hl_id id;
	uint8_t *val;
	size_t len;
	struct mnode *next;
} mnode;

typedef struct mtable {
	pthread_mutex_t mu;
	mnode *b[1 << 16];
} mtable;

mtable *mt_new(void);
void mt_free(mtable *t);
/* Stores a copy unless id is present; 1 if stored. */
int mt_put(mtable *t, const hl_id *id, const void *v, size_t len);
/* 0 and the value copied into out (up to cap), or -1 if absent. */
int mt_get(mtable *t, const hl_id *id, void *out, size_t cap, size_t *len);
int mt_has(mtable *t, const hl_id *id);

#endif
