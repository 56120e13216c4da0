/* remote.c — the remote durable backends: an S3-compatible bucket
 * (src/remote/s3.h), whose batches are uploaded by up to 16 requests in flight and acknowledged
 * once every object is in the bucket (a bucket cannot store several objects atomically: a failed
 * batch may leave some of its objects stored, harmless for immutable, content-addressed objects
 * nothing names yet), its names kept as bucket objects; and another helios server
 * (src/remote/hremote.h), whose batches are atomic and which chunks large objects itself. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include "remote/hremote.h"
#include "remote/s3.h"
#include "store/record.h"
#include "tier/backend.h"

#define PUT_PARALLEL 16

static int r_get(void *s, const hl_id *id, hl_buf **out) { return hl_s3_get(s, id, out); }
static int r_has(void *s, const hl_id *id) { return hl_s3_has(s, id); }

typedef struct uploads {
	hl_s3 *s;
	hl_put_item *items;
	size_t n;
	atomic_size_t next;
	atomic_int err;
} uploads;

/* A tree or manifest is announced by an empty key links/<ab>/<id> written before it, so the
 * collector knows which objects name others without reading every object (a marker whose object
 * never came is ignored, and removed once old). */
static int mark_links(hl_s3 *s, const hl_put_item *it)
{
	if (!hl_rec_links_magic(it->data, it->len))
		return 0;
	char key[HL_ID_HEX_LEN + 16];
	hl_id_format(&it->id, key + 9);
	memcpy(key, "links/", 6);
	memcpy(key + 6, key + 9, 2);
	key[8] = '/';
	return hl_s3_key_put(s, key, "", 0, NULL, NULL);
}

static void *upload_some(void *arg)
{
	uploads *u = arg;
	for (size_t i; atomic_load(&u->err) == 0 && (i = atomic_fetch_add(&u->next, 1)) < u->n;) {
		int err = mark_links(u->s, &u->items[i]);
		if (!err)
			err = hl_s3_put(u->s, &u->items[i].id, u->items[i].data, u->items[i].len, &u->items[i].created);
		if (err) {
			int zero = 0;
			atomic_compare_exchange_strong(&u->err, &zero, err);
		}
	}
	return NULL;
}

/* Every item checked (and hashed unless trusted) before anything is sent. */
static int check_items(hl_put_item *items, size_t n, int ids_trusted)
{
	for (size_t i = 0; i < n; i++) {
		if (!items[i].data && items[i].len)
			return HL_INVALID;
		if (!ids_trusted) {
			hl_id got;
			hl_hash(items[i].data, items[i].len, &got);
			if (items[i].check_id && !hl_id_equal(&got, &items[i].id))
				return HL_MISMATCH;
			items[i].id = got;
		}
		items[i].created = 0;
	}
	return 0;
}

static int r_put_batch(void *s, hl_put_item *items, size_t n, int ids_trusted)
{
	int err = check_items(items, n, ids_trusted);
	if (err)
		return err;
	uploads u = {.s = s, .items = items, .n = n};
	pthread_t th[PUT_PARALLEL];
	size_t nth = n < 4 ? 0 : n / 2 < PUT_PARALLEL ? n / 2 : PUT_PARALLEL, started = 0;
	for (; started < nth; started++)
		if (pthread_create(&th[started], NULL, upload_some, &u))
			break;
	upload_some(&u); /* this thread too (alone when the batch is small or no thread started) */
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&u.err);
}

static int r_stat(void *s, const hl_id *id, hl_stat *out)
{
	uint64_t size;
	int err = hl_s3_blob_stat(s, id, &size);
	if (!err)
		*out = (hl_stat){.size = size, .stored_size = size};
	return err;
}

typedef struct list_ctx {
	hl_iter_fn fn;
	void *ctx;
} list_ctx;

static int list_one(const hl_id *id, uint64_t size, int64_t mtime_ms, void *arg)
{
	(void)mtime_ms;
	list_ctx *c = arg;
	hl_stat st = {.size = size, .stored_size = size};
	return c->fn(id, &st, c->ctx);
}

static int r_list(void *s, hl_iter_fn fn, void *ctx)
{
	list_ctx c = {fn, ctx};
	return hl_s3_list(s, 0, list_one, &c);
}

static int r_rewrite(void *s, const hl_id *id, const void *data, size_t len)
{
	return hl_s3_rewrite(s, id, data, len);
}
static void r_stats(void *s, hl_http_stats *out) { hl_s3_stats_get(s, out); }
static void r_close(void *s) { hl_s3_close(s); }
static void h_stats(void *r, hl_http_stats *out) { hl_hremote_stats_get(r, out); }
static void h_close(void *r) { hl_hremote_close(r); }
static int r_ref_get(void *s, const char *name, hl_id *out) { return hl_s3_ref_get(s, name, out); }
static int r_ref_set(void *s, const char *name, const hl_id *expect, const hl_id *target, int force)
{
	return hl_s3_ref_set(s, name, expect, target, force);
}
static int r_ref_list(void *s, const char *prefix, hl_ref_fn fn, void *ctx)
{
	return hl_s3_ref_list(s, prefix, fn, ctx);
}
static int r_kv_get(void *s, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size)
{
	return hl_s3_kv_get(s, ns, key, klen, id, size);
}
static int r_kv_set(void *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                    uint64_t size, uint64_t bound, uint64_t *evicted)
{
	(void)bound; /* no LRU in a bucket (no HL_BE_KV_BOUND) */
	*evicted = 0;
	return hl_s3_kv_set(s, ns, key, klen, id, size);
}
static int r_kv_delete(void *s, const char *ns, const void *key, size_t klen)
{
	return hl_s3_kv_delete(s, ns, key, klen);
}

typedef struct usage {
	uint64_t bytes, keys;
} usage;

static int add_usage(const hl_id *id, uint64_t size, void *arg)
{
	(void)id;
	usage *u = arg;
	u->bytes += size;
	u->keys++;
	return 0;
}

static int r_kv_usage(void *s, const char *ns, uint64_t *bytes, uint64_t *keys)
{
	usage u = {0, 0};
	int err = hl_s3_kv_each(s, ns, 0, 0, add_usage, &u, NULL);
	*bytes = u.bytes;
	*keys = u.keys;
	return err;
}

typedef struct kv_walk {
	hl_kv_id_fn fn;
	void *ctx;
} kv_walk;

static int kv_one(const hl_id *id, uint64_t size, void *arg)
{
	(void)size;
	kv_walk *w = arg;
	return w->fn(id, w->ctx);
}

static int r_kv_each(void *s, hl_kv_id_fn fn, void *ctx)
{
	kv_walk w = {fn, ctx};
	return hl_s3_kv_each(s, NULL, 0, 0, kv_one, &w, NULL);
}

static int r_kv_bound_each(void *s, uint64_t bound, int dry_run, hl_kv_id_fn fn, void *ctx,
                           uint64_t *evicted)
{
	kv_walk w = {fn, ctx};
	return hl_s3_kv_each(s, NULL, bound, dry_run, kv_one, &w, evicted);
}

static int r_key_get(void *s, const char *key, hl_buf **body, char etag[96])
{
	return hl_s3_key_get(s, key, body, etag);
}
static int r_key_put(void *s, const char *key, const void *body, size_t len, const char *cond, char etag[96])
{
	return hl_s3_key_put(s, key, body, len, cond, etag);
}
static int r_key_delete(void *s, const char *key) { return hl_s3_key_delete(s, key); }

typedef struct key_walk {
	hl_key_fn fn;
	void *ctx;
} key_walk;

static int key_one(const hl_s3_entry *e, void *arg)
{
	key_walk *w = arg;
	hl_key_entry k = {e->key, e->len, e->size, e->mtime_ms};
	return w->fn(&k, w->ctx);
}

static int r_key_list(void *s, const char *under, hl_key_fn fn, void *ctx)
{
	key_walk w = {fn, ctx};
	return hl_s3_key_list(s, under, key_one, &w);
}

static int r_list_aged(void *s, int what, hl_aged_fn fn, void *ctx)
{
	return hl_s3_list(s, what == HL_BE_LARGE, fn, ctx);
}

static int r_remove(void *s, int what, const hl_id *id)
{
	return what == HL_BE_LARGE ? hl_s3_large_del(s, id) : hl_s3_blob_delete(s, id);
}

static int r_large_get(void *s, const hl_id *id, hl_id *manifest, uint64_t *size)
{
	return hl_s3_large_get(s, id, manifest, size);
}

static int r_large_has(void *s, const hl_id *id)
{
	hl_id m;
	uint64_t size;
	return hl_s3_large_get(s, id, &m, &size);
}

static int r_large_put_n(void *s, const hl_large_map *m, size_t n)
{
	int err = 0;
	for (size_t i = 0; i < n && !err; i++)
		err = hl_s3_large_put(s, &m[i].id, &m[i].manifest, m[i].size);
	return err;
}

typedef struct large_walk {
	hl_s3 *s;
	hl_large_fn fn;
	void *ctx;
} large_walk;

static int large_one(const hl_id *id, uint64_t ptr_size, int64_t mtime_ms, void *arg)
{
	(void)ptr_size, (void)mtime_ms;
	large_walk *w = arg;
	hl_id m;
	uint64_t size;
	int err = hl_s3_large_get(w->s, id, &m, &size);
	if (err == HL_NOTFOUND)
		return 0; /* removed since the listing */
	return err ? err : w->fn(id, &m, size, w->ctx);
}

static int r_large_each(void *s, hl_large_fn fn, void *ctx)
{
	large_walk w = {s, fn, ctx};
	return hl_s3_list(s, 1, large_one, &w);
}

static const hl_backend_ops s3_ops = {
	.obj = {.name = "s3", .get = r_get, .has = r_has, .put_batch = r_put_batch},
	.kind = "s3",
	.caps = HL_BE_SHARED | HL_BE_CHUNKS | HL_BE_LIST | HL_BE_FLEET,
	.stat = r_stat, .list = r_list,
	.ref_get = r_ref_get, .ref_set = r_ref_set, .ref_list = r_ref_list,
	.kv_get = r_kv_get, .kv_set = r_kv_set, .kv_delete = r_kv_delete, .kv_usage = r_kv_usage, .kv_each = r_kv_each,
	.kv_bound_each = r_kv_bound_each,
	.large_get = r_large_get, .large_has = r_large_has, .large_put_n = r_large_put_n, .large_each = r_large_each,
	.key_get = r_key_get, .key_put = r_key_put, .key_delete = r_key_delete, .key_list = r_key_list,
	.list_aged = r_list_aged, .remove = r_remove,
	.rewrite = r_rewrite, .remote_stats = r_stats, .close = r_close,
};

hl_backend hl_backend_s3(struct hl_s3 *s)
{
	return (hl_backend){&s3_ops, s};
}

static int h_get(void *r, const hl_id *id, hl_buf **out) { return hl_hremote_get(r, id, out); }
static int h_has(void *r, const hl_id *id) { return hl_hremote_has(r, id); }
static int h_put_batch(void *r, hl_put_item *items, size_t n, int ids_trusted)
{
	int err = check_items(items, n, ids_trusted);
	return err ? err : hl_hremote_put_batch(r, items, n);
}

static int h_stat(void *r, const hl_id *id, hl_stat *out)
{
	uint64_t size;
	int err = hl_hremote_stat(r, id, &size);
	if (!err)
		*out = (hl_stat){.size = size};
	return err;
}
static int h_ref_get(void *r, const char *name, hl_id *out) { return hl_hremote_ref_get(r, name, out); }
static int h_ref_set(void *r, const char *name, const hl_id *expect, const hl_id *target, int force)
{
	return hl_hremote_ref_set(r, name, expect, target, force);
}
static int h_ref_list(void *r, const char *prefix, hl_ref_fn fn, void *ctx)
{
	return hl_hremote_ref_list(r, prefix, fn, ctx);
}
static int h_kv_get(void *r, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size)
{
	return hl_hremote_kv_get(r, ns, key, klen, id, size);
}
static int h_kv_set(void *r, const char *ns, const void *key, size_t klen, const hl_id *id,
                    uint64_t size, uint64_t bound, uint64_t *evicted)
{
	(void)size, (void)bound; /* the server bounds its namespaces itself */
	*evicted = 0;
	return hl_hremote_kv_set(r, ns, key, klen, id);
}
static int h_kv_delete(void *r, const char *ns, const void *key, size_t klen)
{
	return hl_hremote_kv_delete(r, ns, key, klen);
}

static int h_collect(void *r, const hl_gc_options *opt, hl_gc_report *out)
{
	return hl_hremote_gc(r, opt, out);
}

static const hl_backend_ops hremote_ops = {
	.obj = {.name = "helios", .get = h_get, .has = h_has, .put_batch = h_put_batch},
	.kind = "helios",
	.caps = HL_BE_SHARED,
	.stat = h_stat,
	.ref_get = h_ref_get, .ref_set = h_ref_set, .ref_list = h_ref_list,
	.kv_get = h_kv_get, .kv_set = h_kv_set, .kv_delete = h_kv_delete,
	.collect = h_collect, .remote_stats = h_stats, .close = h_close,
};

hl_backend hl_backend_hremote(struct hl_hremote *r)
{
	return (hl_backend){&hremote_ops, r};
}
