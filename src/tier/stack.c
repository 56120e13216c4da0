/* stack.c — the tier manager's composition: an L2 disk cache in front of a durable tier. Reads
 * try the L2, then the durable tier (whose bytes are verified there) and keep what they fetched
 * in the L2; writes go to the durable tier first and are acknowledged only once it has them, then
 * are kept in the L2 (what was just written is likely read soon: the agent's next checkout). The
 * L1 in front of all this is the coordinator's. */
#include <errno.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "cache/l2.h"
#include "tier/tier.h"

struct hl_tier_stack {
	hl_l2 *l2;        /* may be NULL: the durable tier alone */
	hl_tier durable;
	uint64_t l2_max_object;
	atomic_uint_fast64_t l2_hits, durable_reads, durable_writes;
};

static void keep(hl_tier_stack *t, const hl_id *id, const void *data, size_t len)
{
	if (t->l2 && len <= t->l2_max_object)
		hl_l2_put(t->l2, id, data, len); /* a cache: a failure here costs a later miss only */
}

static int s_get(void *self, const hl_id *id, hl_buf **out)
{
	hl_tier_stack *t = self;
	if (t->l2 && hl_l2_get(t->l2, id, out) == 0) {
		atomic_fetch_add(&t->l2_hits, 1);
		return 0;
	}
	atomic_fetch_add(&t->durable_reads, 1);
	int err = t->durable.ops->get(t->durable.self, id, out);
	if (!err)
		keep(t, id, hl_buf_data(*out), hl_buf_len(*out));
	return err;
}

static int s_has(void *self, const hl_id *id)
{
	hl_tier_stack *t = self;
	if (t->l2 && hl_l2_has(t->l2, id) == 0) /* only what the durable tier had enters the L2 */
		return 0;
	return t->durable.ops->has(t->durable.self, id);
}

static int s_put_batch(void *self, hl_put_item *items, size_t n, int ids_trusted)
{
	hl_tier_stack *t = self;
	atomic_fetch_add(&t->durable_writes, 1);
	int err = t->durable.ops->put_batch(t->durable.self, items, n, ids_trusted);
	for (size_t i = 0; !err && i < n; i++)
		keep(t, &items[i].id, items[i].data, items[i].len);
	return err;
}

static const hl_tier_ops stack_ops = {
	.name = "stack", .get = s_get, .has = s_has, .put_batch = s_put_batch,
};

int hl_tier_stack_new(hl_l2 *l2, uint64_t l2_max_object, hl_tier durable, hl_tier_stack **out)
{
	hl_tier_stack *t = calloc(1, sizeof(*t));
	if (!t)
		return ENOMEM;
	t->l2 = l2;
	t->durable = durable;
	t->l2_max_object = l2_max_object;
	*out = t;
	return 0;
}

hl_tier hl_tier_stack_tier(hl_tier_stack *t)
{
	return (hl_tier){&stack_ops, t};
}

void hl_tier_stack_stats(hl_tier_stack *t, uint64_t *l2_hits, uint64_t *durable_reads, uint64_t *durable_writes)
{
	*l2_hits = atomic_load(&t->l2_hits);
	*durable_reads = atomic_load(&t->durable_reads);
	*durable_writes = atomic_load(&t->durable_writes);
}

void hl_tier_stack_free(hl_tier_stack *t)
{
	free(t);
}
