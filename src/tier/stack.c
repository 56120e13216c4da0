/* stack.c — the tier manager's composition: an L2 disk cache in front of a durable tier. Reads
 * try the L2, then the durable tier (whose bytes are verified there) and keep what they fetched
 * in the L2; writes go to the durable tier first and are acknowledged only once it has them, then
 * are kept in the L2 (what was just written is likely read soon: the agent's next checkout). The
 * L1 in front of all this is the coordinator's, which promotes every read served below it at
 * once; at start a promotion worker fills it from the L2's newest entries, so a restarted node
 * serves its working set from memory without waiting for misses. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "cache/l1.h"
#include "cache/l2.h"
#include "tier/tier.h"
#include "base/alloc.h"

struct hl_tier_stack {
	hl_l2 *l2;        /* may be NULL: the durable tier alone */
	hl_tier durable;
	uint64_t l2_max_object;
	int has_from_l2;
	atomic_uint_fast64_t promoted;
	/* the promotion worker */
	hl_l1 *l1;
	uint64_t promote_bytes;
	pthread_t promoter;
	int promoting;
	atomic_int stop;
};

static void keep(hl_tier_stack *t, const hl_id *id, const void *data, size_t len)
{
	if (t->l2 && len <= t->l2_max_object)
		hl_l2_put(t->l2, id, data, len); /* a cache: a failure here costs a later miss only */
}

static int s_get(void *self, const hl_id *id, hl_buf **out)
{
	hl_tier_stack *t = self;
	if (t->l2 && hl_l2_get(t->l2, id, out) == 0)
		return 0;
	int err = t->durable.ops->get(t->durable.self, id, out);
	if (!err)
		keep(t, id, hl_buf_data(*out), hl_buf_len(*out));
	return err;
}

static int s_has(void *self, const hl_id *id)
{
	hl_tier_stack *t = self;
	if (t->has_from_l2 && t->l2 && hl_l2_has(t->l2, id) == 0) /* only what the durable tier had enters it */
		return 0;
	return t->durable.ops->has(t->durable.self, id);
}

static int s_put_batch(void *self, hl_put_item *items, size_t n, int ids_trusted)
{
	hl_tier_stack *t = self;
	int err = t->durable.ops->put_batch(t->durable.self, items, n, ids_trusted);
	for (size_t i = 0; !err && i < n; i++)
		keep(t, &items[i].id, items[i].data, items[i].len);
	return err;
}

static const hl_tier_ops stack_ops = {
	.name = "stack", .get = s_get, .has = s_has, .put_batch = s_put_batch,
};

int hl_tier_stack_new(hl_l2 *l2, uint64_t l2_max_object, hl_tier durable, int has_from_l2,
                      hl_tier_stack **out)
{
	hl_tier_stack *t = hl_calloc(1, sizeof(*t));
	if (!t)
		return ENOMEM;
	t->l2 = l2;
	t->durable = durable;
	t->l2_max_object = l2_max_object;
	t->has_from_l2 = has_from_l2;
	*out = t;
	return 0;
}

hl_tier hl_tier_stack_tier(hl_tier_stack *t)
{
	return (hl_tier){&stack_ops, t};
}

static void *promote_main(void *arg)
{
	hl_tier_stack *t = arg;
	pthread_setname_np(pthread_self(), "hl-promote");
	hl_id *ids;
	size_t n;
	if (hl_l2_recent(t->l2, t->promote_bytes, &ids, &n))
		return NULL;
	for (size_t i = 0; i < n && !atomic_load(&t->stop); i++) {
		hl_buf *b;
		if (hl_l1_get(t->l1, &ids[i], &b) == 0) { /* a reader was first */
			hl_buf_unref(b);
			continue;
		}
		if (hl_l2_get(t->l2, &ids[i], &b) != 0) /* verified, or a counted miss */
			continue;
		hl_l1_put(t->l1, &ids[i], b);
		hl_buf_unref(b);
		atomic_fetch_add(&t->promoted, 1);
	}
	free(ids);
	return NULL;
}

int hl_tier_stack_promote(hl_tier_stack *t, hl_l1 *l1, uint64_t max_bytes)
{
	if (!t->l2 || !l1 || !max_bytes || t->promoting)
		return 0;
	t->l1 = l1;
	t->promote_bytes = max_bytes;
	if (pthread_create(&t->promoter, NULL, promote_main, t))
		return EAGAIN;
	t->promoting = 1;
	return 0;
}

uint64_t hl_tier_stack_promoted(hl_tier_stack *t)
{
	return atomic_load(&t->promoted);
}

void hl_tier_stack_free(hl_tier_stack *t)
{
	if (!t)
		return;
	if (t->promoting) {
		atomic_store(&t->stop, 1);
		pthread_join(t->promoter, NULL);
	}
	free(t);
}
