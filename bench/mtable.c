/* mtable.c — see mtable.h. */
#include <stdlib.h>
#include <string.h>
#include "mtable.h"

mtable *mt_new(void)
{
	mtable *t = calloc(1, sizeof(*t));
	pthread_mutex_init(&t->mu, NULL);
	return t;
}

static size_t mt_slot(const hl_id *id) { return ((size_t)id->b[0] << 8 | id->b[1]) & 0xffff; }

static mnode *find_locked(mtable *t, const hl_id *id)
{
	for (mnode *n = t->b[mt_slot(id)]; n; n = n->next)
		if (!memcmp(n->id.b, id->b, HL_ID_LEN))
			return n;
	return NULL;
}

int mt_put(mtable *t, const hl_id *id, const void *v, size_t len)
{
	mnode *n = malloc(sizeof(*n));
	n->id = *id;
	n->val = malloc(len ? len : 1);
	memcpy(n->val, v, len);
	n->len = len;
	pthread_mutex_lock(&t->mu);
	int fresh = !find_locked(t, id);
	if (fresh) {
		n->next = t->b[mt_slot(id)];
		t->b[mt_slot(id)] = n;
	}
	pthread_mutex_unlock(&t->mu);
	if (!fresh) {
		free(n->val);
		free(n);
	}
	return fresh;
}

int mt_get(mtable *t, const hl_id *id, void *out, size_t cap, size_t *len)
{
	pthread_mutex_lock(&t->mu);
	mnode *n = find_locked(t, id);
	if (n) {
		*len = n->len;
		memcpy(out, n->val, n->len < cap ? n->len : cap);
	}
	pthread_mutex_unlock(&t->mu);
	return n ? 0 : -1;
}

int mt_has(mtable *t, const hl_id *id)
{
	pthread_mutex_lock(&t->mu);
	mnode *n = find_locked(t, id);
	pthread_mutex_unlock(&t->mu);
	return n ? 0 : -1;
}

void mt_free(mtable *t)
{
	for (size_t i = 0; i < (1 << 16); i++)
		for (mnode *n = t->b[i], *nx; n; n = nx) {
			nx = n->next;
			free(n->val);
			free(n);
		}
	free(t);
}
