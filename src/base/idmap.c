/* idmap.c — the id map of idmap.h. */
#include <stdlib.h>
#include <string.h>
#include "base/alloc.h"
#include "base/idmap.h"

static size_t slot_of(const hl_idmap *m, const hl_id *id)
{
	uint64_t h;
	memcpy(&h, id->b, sizeof(h));
	size_t i = (size_t)(h & (m->cap - 1));
	while (m->used[i] && memcmp(&m->keys[i], id, sizeof(*id)))
		i = (i + 1) & (m->cap - 1);
	return i;
}

int hl_idmap_get(const hl_idmap *m, const hl_id *id, uint32_t *val)
{
	if (!m->cap)
		return 0;
	size_t i = slot_of(m, id);
	if (!m->used[i])
		return 0;
	if (val)
		*val = m->vals[i];
	return 1;
}

uint32_t *hl_idmap_ref(hl_idmap *m, const hl_id *id)
{
	if (!m->cap)
		return NULL;
	size_t i = slot_of(m, id);
	return m->used[i] ? &m->vals[i] : NULL;
}

static int grow(hl_idmap *m)
{
	hl_idmap g = {.cap = m->cap ? m->cap * 2 : 256};
	g.keys = hl_malloc(g.cap * sizeof(*g.keys));
	g.vals = hl_malloc(g.cap * sizeof(*g.vals));
	g.used = hl_calloc(g.cap, 1);
	if (!g.keys || !g.vals || !g.used) {
		hl_idmap_free(&g);
		return -1;
	}
	for (size_t i = 0; i < m->cap; i++) {
		if (!m->used[i])
			continue;
		size_t j = slot_of(&g, &m->keys[i]);
		g.keys[j] = m->keys[i], g.vals[j] = m->vals[i], g.used[j] = 1;
	}
	g.n = m->n;
	hl_idmap_free(m);
	*m = g;
	return 0;
}

int hl_idmap_put(hl_idmap *m, const hl_id *id, uint32_t val)
{
	if ((m->n + 1) * 2 > m->cap && grow(m))
		return -1;
	size_t i = slot_of(m, id);
	int fresh = !m->used[i];
	m->keys[i] = *id, m->vals[i] = val, m->used[i] = 1;
	m->n += fresh;
	return fresh;
}

void hl_idmap_free(hl_idmap *m)
{
	free(m->keys);
	free(m->vals);
	free(m->used);
	memset(m, 0, sizeof(*m));
}
