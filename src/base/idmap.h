/* idmap.h — a map from object ids to small values (open addressing on the id's first bytes:
 * ids are uniformly distributed). For walks that visit each commit once and number them. */
#ifndef HL_BASE_IDMAP_H
#define HL_BASE_IDMAP_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef struct hl_idmap {
	hl_id *keys;
	uint32_t *vals;
	uint8_t *used;
	size_t cap, n;
} hl_idmap;

/* *val of id: 1 when present, 0 when not. */
int hl_idmap_get(const hl_idmap *m, const hl_id *id, uint32_t *val);
/* Where id's value is kept, to change in place (until the next put); NULL when id is absent. */
uint32_t *hl_idmap_ref(hl_idmap *m, const hl_id *id);
/* Sets id's value: 1 when id was new, 0 when it was there (its value replaced), -1 when memory
 * ran out. */
int hl_idmap_put(hl_idmap *m, const hl_id *id, uint32_t val);
void hl_idmap_free(hl_idmap *m);

#endif
