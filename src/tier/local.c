/* local.c — the durable local store (src/store) presented as a tier. */
#include "store/store.h"
#include "tier/tier.h"

static int l_get(void *s, const hl_id *id, hl_buf **out) { return hl_local_get(s, id, out); }
static int l_has(void *s, const hl_id *id) { return hl_local_has(s, id); }
static int l_put_batch(void *s, hl_put_item *items, size_t n, int ids_trusted)
{
	return ids_trusted ? hl_local_put_hashed(s, items, n) : hl_local_put_batch(s, items, n);
}

static const hl_tier_ops local_ops = {
	.name = "local", .get = l_get, .has = l_has, .put_batch = l_put_batch,
};

hl_tier hl_tier_local(struct hl_local *s)
{
	return (hl_tier){&local_ops, s};
}
