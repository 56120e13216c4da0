/* local.c — the durable local store (src/store) as a backend: objects in its segments, names in
 * its index. */
#include "store/names.h"
#include "store/store.h"
#include "tier/backend.h"

static int l_get(void *s, const hl_id *id, hl_buf **out) { return hl_local_get(s, id, out); }
static int l_has(void *s, const hl_id *id) { return hl_local_has(s, id); }
static int l_put_batch(void *s, hl_put_item *items, size_t n, int ids_trusted)
{
	return ids_trusted ? hl_local_put_hashed(s, items, n) : hl_local_put_batch(s, items, n);
}

static int l_stat(void *s, const hl_id *id, hl_stat *out) { return hl_local_stat(s, id, out); }

static int l_list(void *s, hl_iter_fn fn, void *ctx) { return hl_local_iterate(s, fn, ctx); }
static int l_ref_get(void *s, const char *name, hl_id *out) { return hl_names_ref_get(s, name, out); }
static int l_ref_set(void *s, const char *name, const hl_id *expect, const hl_id *target, int force)
{
	return hl_names_ref_set(s, name, expect, target, force);
}
static int l_ref_list(void *s, const char *prefix, hl_ref_fn fn, void *ctx)
{
	return hl_names_ref_list(s, prefix, fn, ctx);
}

static int l_kv_get(void *s, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size)
{
	return hl_names_kv_get(s, ns, key, klen, id, size);
}
static int l_kv_set(void *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                    uint64_t size, uint64_t bound, uint64_t *evicted)
{
	return hl_names_kv_set(s, ns, key, klen, id, size, bound, evicted);
}
static int l_kv_delete(void *s, const char *ns, const void *key, size_t klen)
{
	return hl_names_kv_delete(s, ns, key, klen);
}
static int l_kv_usage(void *s, const char *ns, uint64_t *bytes, uint64_t *keys)
{
	return hl_names_kv_usage(s, ns, bytes, keys);
}
static int l_kv_each(void *s, hl_kv_id_fn fn, void *ctx) { return hl_names_kv_each(s, fn, ctx); }

/* A found blob is relied on through its manifest (large_has), which a running collection must then
 * keep; the map entry is deleted with the manifest. */
static int l_large_get(void *s, const hl_id *id, hl_id *manifest, uint64_t *size)
{
	return hl_names_large_get(s, id, manifest, size);
}

static int l_large_has(void *s, const hl_id *id)
{
	hl_id m;
	uint64_t size;
	int err = hl_names_large_get(s, id, &m, &size);
	/* the manifest relied on (a running collection keeps it and its chunks); an entry whose
	 * manifest is gone names nothing a writer can rely on, so it is stored again */
	return err ? err : hl_local_has(s, &m);
}
static int l_large_put_n(void *s, const hl_large_map *m, size_t n) { return hl_names_large_put_n(s, m, n); }
static int l_large_each(void *s, hl_large_fn fn, void *ctx) { return hl_names_large_each(s, fn, ctx); }
static int l_pin(void *s, const hl_id *ids, size_t n) { return hl_local_pin(s, ids, n); }
static void l_unpin(void *s, const hl_id *ids, size_t n) { hl_local_unpin(s, ids, n); }

static int l_put_like(void *s, hl_put_item *items, const hl_id *const *bases, size_t n)
{
	return hl_local_put_like(s, items, bases, n);
}

static const hl_backend_ops local_ops = {
	.obj = {.name = "local", .get = l_get, .has = l_has, .put_batch = l_put_batch},
	.kind = "local",
	.caps = HL_BE_CHUNKS | HL_BE_LIST | HL_BE_KV_BOUND,
	.stat = l_stat, .list = l_list,
	.ref_get = l_ref_get, .ref_set = l_ref_set, .ref_list = l_ref_list,
	.kv_get = l_kv_get, .kv_set = l_kv_set, .kv_delete = l_kv_delete, .kv_usage = l_kv_usage, .kv_each = l_kv_each,
	.large_get = l_large_get, .large_has = l_large_has, .large_put_n = l_large_put_n, .large_each = l_large_each,
	.pin = l_pin, .unpin = l_unpin,
	.put_like = l_put_like,
};

hl_backend hl_backend_local(struct hl_local *s)
{
	return (hl_backend){&local_ops, s};
}
