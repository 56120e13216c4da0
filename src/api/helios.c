/* helios.c — implements include/helios.h by composing the layers below: the coordinator in
 * front of the L1 memory cache and the durable local store (as a tier). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"
#include "base/log.h"
#include "hash/hash.h"
#include "cache/l1.h"
#include "cache/l2.h"
#include "coord/coord.h"
#include "dedup/fleetgc.h"
#include "dedup/gc.h"
#include "dedup/links.h"
#include "integrity/bscrub.h"
#include "integrity/scrub.h"
#include "remote/hremote.h"
#include "remote/s3.h"
#include "store/names.h"
#include "store/store.h"
#include "tier/fleet.h"
#include "tier/tier.h"
#include "api/api.h"
#include "base/alloc.h"


void hl_options_init(hl_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->create = 1;
	opt->sync = HL_SYNC_ALWAYS;
	opt->sync_interval_ms = 50;
	opt->segment_size = UINT64_C(256) << 20;
	opt->compress_level = 3;
	opt->max_object_size = UINT64_C(4) << 30;
	opt->map_size = UINT64_C(1) << 40;
	opt->l1_bytes = UINT64_C(256) << 20;
	opt->l1_max_object = UINT64_C(1) << 20;
	opt->l1_policy = HL_L1_POLICY_SIEVE;
	opt->max_inflight = 1024;
	opt->shard_inflight = 64;
	opt->adaptive_limit = 1;
	opt->health_interval_ms = 1000;
	opt->kv_max_bytes = UINT64_C(8) << 30;
	opt->gc_grace_s = 86400;
	opt->fleet_lease_ms = 10000;
	opt->chunk_threshold = UINT64_C(1) << 20;
	opt->chunk_min = HL_CDC_MIN;
	opt->chunk_avg = HL_CDC_AVG;
	opt->chunk_max = HL_CDC_MAX;
	opt->remote_timeout_ms = 30000;
	opt->remote_retries = 3;
	opt->l2_bytes = UINT64_C(1) << 30;
	opt->l2_region_size = 4u << 20;
}

static int remote_backend(const hl_options *opt)
{
	return opt->backend && *opt->backend && strcmp(opt->backend, "local");
}

/* Opens a remote backend: "s3" (the bucket of the s3_* options) or "helios" (the server at url).
 * role names it in the log ("backend", "repair source"). */
static int open_remote(const hl_options *opt, const char *role, const char *kind, const char *url,
                       hl_backend *out)
{
	hl_http_config hc = {.timeout_ms = opt->remote_timeout_ms, .retries = opt->remote_retries};
	int err;
	if (!strcmp(kind, "s3")) {
		hl_s3_config sc = {
			.endpoint = opt->s3_endpoint, .bucket = opt->s3_bucket, .prefix = opt->s3_prefix,
			.region = opt->s3_region, .access_key = opt->s3_access_key, .secret_key = opt->s3_secret_key,
			.http = hc,
		};
		struct hl_s3 *s3;
		if ((err = hl_s3_open(&sc, &s3)) == 0)
			*out = hl_backend_s3(s3);
		else
			hl_log(HL_LOG_ERROR, "s3 %s %s/%s: %s", role, opt->s3_endpoint ? opt->s3_endpoint : "(no endpoint)",
			       opt->s3_bucket ? opt->s3_bucket : "(no bucket)", hl_strerror(err));
		return err;
	}
	hl_hremote_config rc = {.url = url, .token = opt->remote_token, .http = hc};
	struct hl_hremote *hr;
	if ((err = hl_hremote_open(&rc, &hr)) == 0)
		*out = hl_backend_hremote(hr);
	else
		hl_log(HL_LOG_ERROR, "helios %s %s: %s", role, url ? url : "(no url)", hl_strerror(err));
	return err;
}

/* The backend, and the tier below the L1: the local store itself, or the L2 stack over a remote
 * backend. */
static int open_tiers(hl_store *s, const char *dir, const hl_options *opt, hl_tier *out)
{
	if (!remote_backend(opt)) {
		s->be = hl_backend_local(s->local);
		*out = hl_backend_tier(s->be);
		return 0;
	}
	if (strcmp(opt->backend, "s3") && strcmp(opt->backend, "helios")) {
		hl_log(HL_LOG_ERROR, "unknown backend \"%s\" (known: local, s3, helios)", opt->backend);
		return HL_INVALID;
	}
	int err = open_remote(opt, "backend", opt->backend, opt->remote_url, &s->be);
	if (err)
		return err;
	if (opt->l2_bytes && !hl_local_read_only(s->local)) {
		char path[4096];
		if (snprintf(path, sizeof path, "%s/l2.cache", dir) >= (int)sizeof path)
			return HL_INVALID;
		if ((err = hl_l2_open(path, opt->l2_bytes, opt->l2_region_size, 16u << 10, &s->l2)) != 0) {
			hl_log(HL_LOG_ERROR, "L2 cache %s: %s", path, hl_strerror(err));
			return err;
		}
	}
	/* where a collector may delete what the L2 still holds, has asks the bucket */
	int fleet = !!(s->be.ops->caps & HL_BE_FLEET);
	if ((err = hl_tier_stack_new(s->l2, opt->l2_region_size / 2, hl_backend_tier(s->be), !fleet, &s->stack)) != 0)
		return err;
	*out = hl_tier_stack_tier(s->stack);
	if (!fleet || hl_local_read_only(s->local))
		return 0;
	/* this node's side of the bucket's collection protocol, around the backend and the stack */
	/* relies are remembered for the grace period, and at least ten leases (a write in flight) */
	unsigned lease = opt->fleet_lease_ms ? opt->fleet_lease_ms : 10000;
	hl_fleet_config fc = {
		.lease_ms = lease,
		.remember_s = opt->gc_grace_s > 10u * lease / 1000 ? opt->gc_grace_s : 10u * lease / 1000 + 1,
	};
	if ((err = hl_fleet_new(s->be, *out, &fc, &s->fleet)) != 0)
		return err;
	s->raw = s->be;
	s->be = hl_fleet_backend(s->fleet);
	*out = hl_fleet_tier(s->fleet);
	return 0;
}

static void scrub_found_corrupt(void *ctx)
{
	hl_coord_note_corrupt(((hl_store *)ctx)->coord, 1); /* the health score hears of it */
}

/* The scrubber and its repair source, for a read-write handle: the local store's, or the shared
 * backend's when it can be listed and repaired. */
static int open_integrity(hl_store *s, const char *dir, const hl_options *opt)
{
	if (hl_local_read_only(s->local) || (s->stack && (!s->be.ops->list || !s->be.ops->rewrite)))
		return 0;
	const char *from = opt->repair_from;
	size_t n = 0;
	if (from && *from) { /* "s3", or a helios URL */
		int s3 = !strcmp(from, "s3");
		int err = open_remote(opt, "repair source", s3 ? "s3" : "helios", from, &s->repair);
		if (err)
			return err;
		s->repair_tier = hl_backend_tier(s->repair);
		s->repair_name = s3 ? "s3" : "helios";
		n = 1;
	}
	if (s->stack)
		return hl_bscrub_new(s->be, s->l1, s->l2, n ? s->repair_tier : (hl_tier){0}, s->repair_name,
		                     scrub_found_corrupt, s, &s->bscrub);
	return hl_scrub_new(s->local, dir, s->l1, &s->repair_tier, &s->repair_name, n,
	                    scrub_found_corrupt, s, &s->scrub);
}

static void close_tiers(hl_store *s)
{
	hl_scrub_free(s->scrub);
	hl_bscrub_free(s->bscrub);
	if (s->repair.ops && s->repair.ops->close)
		s->repair.ops->close(s->repair.self);
	hl_fleet_free(s->fleet); /* its watcher stops before the backend goes */
	s->fleet = NULL;
	if (s->raw.ops)
		s->be = s->raw;
	hl_tier_stack_free(s->stack);
	hl_l2_close(s->l2);
	if (s->be.ops && s->be.ops->close)
		s->be.ops->close(s->be.self);
}

static int writes_stopped(void *ctx)
{
	return hl_local_stopped(((hl_store *)ctx)->local);
}

int hl_open(const char *dir, const hl_options *opt, hl_store **out)
{
	hl_options def;
	if (!out)
		return HL_INVALID;
	*out = NULL;
	if (!opt) {
		hl_options_init(&def);
		opt = &def;
	}
	hl_store *s = hl_calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	if ((opt->l1_policy != HL_L1_POLICY_SIEVE && opt->l1_policy != HL_L1_POLICY_LRU) ||
	    hl_cdc_init(&s->cdc, opt->chunk_min, opt->chunk_avg, opt->chunk_max) ||
	    (opt->chunk_threshold && opt->chunk_threshold < opt->chunk_max)) {
		free(s);
		return HL_INVALID;
	}
	if (opt->l1_bytes && !(s->l1 = hl_l1_new(opt->l1_bytes, opt->l1_max_object,
	                                         opt->l1_policy == HL_L1_POLICY_LRU ? HL_L1_LRU : HL_L1_SIEVE, 6))) {
		free(s);
		return ENOMEM;
	}
	int err = hl_local_open(dir, opt, &s->local);
	hl_coord_options co = {
		.max_inflight = opt->max_inflight,
		.shard_inflight = opt->shard_inflight,
		.adaptive = opt->adaptive_limit,
		.health_interval_ms = opt->health_interval_ms,
		.max_object_size = opt->max_object_size,
		.writes_stopped = writes_stopped,
		.writes_stopped_ctx = s,
	};
	hl_tier tier;
	if (!err)
		err = open_tiers(s, dir, opt, &tier);
	if (!err)
		err = open_integrity(s, dir, opt);
	if (!err)
		err = hl_coord_new(tier, s->l1, &co, &s->coord);
	if (!err && s->stack && s->l1 && hl_tier_stack_promote(s->stack, s->l1, opt->l1_bytes / 2))
		hl_log(HL_LOG_WARN, "L1 warm-up from the L2 not started (a thread could not be created)");
	if (err) {
		close_tiers(s);
		hl_local_close(s->local);
		hl_l1_free(s->l1);
		free(s);
		return err;
	}
	s->kv_max_bytes = opt->kv_max_bytes;
	s->gc_grace_s = opt->gc_grace_s;
	s->fleet_lease_ms = opt->fleet_lease_ms ? opt->fleet_lease_ms : 10000;
	/* a backend that does not keep a large-blob map (a helios server) chunks large objects itself */
	s->chunk_threshold = s->be.ops->caps & HL_BE_CHUNKS ? opt->chunk_threshold : 0;
	s->max_object_size = opt->max_object_size;
	*out = s;
	return 0;
}

void hl_close(hl_store *s)
{
	if (!s)
		return;
	hl_scrub_free(s->scrub); /* its thread stops before what it uses goes */
	s->scrub = NULL;
	hl_bscrub_free(s->bscrub);
	s->bscrub = NULL;
	hl_coord_free(s->coord);
	close_tiers(s);
	hl_local_close(s->local);
	hl_l1_free(s->l1);
	free(s);
}

/* Writes on a read-only handle are refused before any hashing. */
static int writable(hl_store *s)
{
	return hl_local_read_only(s->local) ? HL_READONLY : 0;
}

/* ---- completeness: a tree or manifest is stored only when what it names is ---- */

typedef struct completeness {
	hl_store *s;
	hl_id *batch; /* ids stored with it, sorted */
	size_t n;
} completeness;

static int cmp_idp(const void *a, const void *b)
{
	return memcmp(a, b, HL_ID_LEN);
}

static int child_present(const hl_id *child, void *ctx)
{
	completeness *c = ctx;
	if (c->n && bsearch(child, c->batch, c->n, sizeof(hl_id), cmp_idp))
		return 0;
	int err = hl_has(c->s, child); /* holds it: a running collection keeps it */
	return err == HL_NOTFOUND ? HL_INCOMPLETE : err;
}

/* HL_INCOMPLETE if an item names an object neither stored nor among the items (whose ids are
 * computed). */
static int check_complete(hl_store *s, const hl_put_item *items, size_t n)
{
	completeness c = {s, NULL, 0};
	int err = 0;
	for (size_t i = 0; i < n && !err; i++) {
		if (!hl_links_magic(items[i].data, items[i].len))
			continue;
		if (!c.batch && n > 1) {
			if (!(c.batch = hl_malloc(n * sizeof(hl_id))))
				return ENOMEM;
			for (size_t j = 0; j < n; j++)
				c.batch[j] = items[j].id;
			qsort(c.batch, n, sizeof(hl_id), cmp_idp);
			c.n = n;
		}
		err = hl_links_each(items[i].data, items[i].len, child_present, &c);
	}
	free(c.batch);
	return err;
}

static int any_links(const hl_put_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		if (hl_links_magic(items[i].data, items[i].len))
			return 1;
	return 0;
}

static int any_large(const hl_store *s, const hl_put_item *items, size_t n)
{
	for (size_t i = 0; items && i < n; i++)
		if (hl_large_wanted(s, items[i].data, items[i].len))
			return 1;
	return 0;
}

int hl_put_batch(hl_store *s, hl_put_item *items, size_t n)
{
	int err = writable(s);
	int links = any_links(items, n), large = any_large(s, items, n);
	if (err || (!links && !large))
		return err ? err : hl_coord_put_batch(s->coord, items, n);
	/* hashed once, here: the completeness check and the large-blob map need the ids */
	if ((err = hl_coord_hash_items(s->coord, items, n)) != 0 ||
	    (links && (err = check_complete(s, items, n)) != 0))
		return err;
	return large ? hl_large_put_hashed(s, items, n) : hl_coord_put_hashed(s->coord, items, n);
}

/* The completeness check of a single put (only trees and manifests are looked at). */
static int check_one(hl_store *s, const void *data, size_t len, const hl_id *expect)
{
	if (!data || !hl_links_magic(data, len))
		return 0;
	hl_put_item it = {.data = data, .len = len};
	hl_hash(data, len, &it.id);
	if (expect && !hl_id_equal(expect, &it.id))
		return HL_MISMATCH;
	return check_complete(s, &it, 1);
}

int hl_put(hl_store *s, const void *data, size_t len, hl_id *id, int *created)
{
	int err = writable(s);
	if (!err && hl_large_wanted(s, data, len) && id)
		return hl_large_put(s, NULL, data, len, id, created);
	if (!err && len <= s->max_object_size)
		err = check_one(s, data, len, NULL);
	return err ? err : hl_coord_put(s->coord, NULL, data, len, id, created);
}

int hl_put_expect(hl_store *s, const hl_id *id, const void *data, size_t len, int *created)
{
	if (!id)
		return HL_INVALID;
	int err = writable(s);
	hl_id got; /* equal to *id when stored */
	if (!err && hl_large_wanted(s, data, len))
		return hl_large_put(s, id, data, len, &got, created);
	if (!err && len <= s->max_object_size)
		err = check_one(s, data, len, id);
	return err ? err : hl_coord_put(s->coord, id, data, len, NULL, created);
}

/* A corrupt record met by a read is replaced on the spot when a repair source has a verified
 * copy (then 1: read again). */
static int read_repair(hl_store *s, const hl_id *id)
{
	return s->scrub && s->repair_name && hl_scrub_repair(s->scrub, id, NULL) == 0;
}

int hl_get(hl_store *s, const hl_id *id, hl_buf **out)
{
	if (!id || !out)
		return HL_INVALID;
	int err = hl_coord_get(s->coord, id, out);
	if (err == HL_CORRUPT && read_repair(s, id))
		err = hl_coord_get(s->coord, id, out);
	return err == HL_NOTFOUND ? hl_large_get(s, id, out) : err;
}

int hl_get_into(hl_store *s, const hl_id *id, void *dst, size_t cap, size_t *len)
{
	if (!id || !len || (!dst && cap))
		return HL_INVALID;
	int err = hl_coord_get_into(s->coord, id, dst, cap, len);
	if (err == HL_CORRUPT && read_repair(s, id))
		err = hl_coord_get_into(s->coord, id, dst, cap, len);
	hl_buf *b;
	if (err != HL_NOTFOUND || (err = hl_large_get(s, id, &b)) != 0)
		return err;
	*len = hl_buf_len(b);
	if (*len <= cap)
		memcpy(dst, hl_buf_data(b), *len);
	else
		err = HL_TOOBIG;
	hl_buf_unref(b);
	return err;
}

int hl_has(hl_store *s, const hl_id *id)
{
	if (!id)
		return HL_INVALID;
	int err = hl_coord_has(s->coord, id);
	if (err != HL_NOTFOUND)
		return err;
	/* a chunked blob (the backend holds its manifest against a running collection) */
	return s->be.ops->large_has ? s->be.ops->large_has(s->be.self, id) : HL_NOTFOUND;
}

int hl_stat_object(hl_store *s, const hl_id *id, hl_stat *out)
{
	if (!id || !out)
		return HL_INVALID;
	hl_buf *b;
	if ((s->be.ops->caps & HL_BE_SHARED) && s->l1 && hl_l1_get(s->l1, id, &b) == 0) {
		*out = (hl_stat){.size = hl_buf_len(b)}; /* a cached copy: no round trip */
		hl_buf_unref(b);
		return 0;
	}
	int err = s->be.ops->stat(s->be.self, id, out);
	hl_id m;
	uint64_t size;
	if (err != HL_NOTFOUND || !s->be.ops->large_get ||
	    (err = s->be.ops->large_get(s->be.self, id, &m, &size)) != 0)
		return err;
	hl_stat ms;
	if ((err = s->be.ops->stat(s->be.self, &m, &ms)) != 0)
		return err == HL_NOTFOUND ? HL_CORRUPT : err; /* mapped to a manifest that is gone */
	*out = ms;
	out->size = size;
	out->flags |= HL_STAT_CHUNKED;
	return 0;
}

typedef struct iter_large {
	hl_iter_fn fn;
	void *ctx;
} iter_large;

static int each_large(const hl_id *id, const hl_id *mid, uint64_t size, void *arg)
{
	iter_large *it = arg;
	hl_stat st = {.size = size, .flags = HL_STAT_CHUNKED};
	return it->fn(id, &st, it->ctx);
}

int hl_iterate(hl_store *s, hl_iter_fn fn, void *ctx)
{
	if (!fn || !s->be.ops->list)
		return HL_INVALID;
	int err = s->be.ops->list(s->be.self, fn, ctx);
	iter_large it = {fn, ctx};
	return err || !s->be.ops->large_each ? err : s->be.ops->large_each(s->be.self, each_large, &it);
}

int hl_verify(hl_store *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress, void *ctx,
              hl_verify_report *out)
{
	hl_verify_report r = {0};
	int err;
	if (s->be.ops->caps & HL_BE_SHARED) { /* the backend's objects, fetched from it */
		hl_bscrub *b = s->bscrub;
		if (!s->be.ops->list) {
			hl_log(HL_LOG_ERROR, "verify: a %s backend is verified where it stores its objects",
			       s->be.ops->kind);
			return HL_INVALID;
		}
		if (!b && (err = hl_bscrub_new(s->be, NULL, NULL, (hl_tier){0}, NULL, NULL, NULL, &b)) != 0)
			return err;
		err = hl_bscrub_walk(b, threads, 0, 0, fn, progress, ctx, &r);
		if (b != s->bscrub)
			hl_bscrub_free(b);
		if (!err && r.corrupt)
			err = HL_CORRUPT;
	} else {
		err = hl_local_verify(s->local, threads, fn, progress, ctx, &r);
	}
	uint64_t checked = 0, bad = 0;
	if (!err || err == HL_CORRUPT) { /* large blobs re-hashed whole, after their chunks */
		int e2 = hl_large_verify(s, fn, ctx, &checked, &bad);
		r.objects += checked;
		r.corrupt += bad;
		if (e2)
			err = e2;
		else if (bad)
			err = HL_CORRUPT;
	}
	if (r.corrupt)
		hl_coord_note_corrupt(s->coord, r.corrupt);
	if (out)
		*out = r;
	return err;
}

typedef struct dangling_ctx {
	hl_store *s;
	uint64_t n;
} dangling_ctx;

static int count_dangling(const char *name, const hl_id *id, void *ctx)
{
	(void)name;
	dangling_ctx *d = ctx;
	d->n += hl_has(d->s, id) != 0;
	return 0;
}

int hl_rebuild_index(const char *dir, const hl_options *opt, hl_rebuild_report *out)
{
	hl_options o;
	hl_rebuild_report r;
	if (!dir || !out)
		return HL_INVALID;
	if (opt)
		o = *opt;
	else
		hl_options_init(&o);
	if (remote_backend(&o))
		return HL_INVALID; /* the bucket's objects have no local index to rebuild */
	int err = hl_local_rebuild_index(dir, &o, &r);
	hl_store *s = NULL;
	o.read_only = 0;
	o.create = 0;
	o.l2_bytes = 0;
	if (!err)
		err = hl_open(dir, &o, &s);
	uint64_t dropped = 0;
	if (!err && (err = hl_large_derive(s, &r.large_derived, &dropped)) == 0 && dropped)
		r.names_damaged = 1;
	dangling_ctx d = {s, 0};
	if (!err && (err = hl_ref_list(s, "", count_dangling, &d)) == 0 && (r.refs_dangling = d.n) != 0)
		r.names_damaged = 1;
	if (s)
		hl_close(s);
	*out = r;
	return err;
}

int hl_scrub(hl_store *s, uint64_t max_bytes, int *pass_done, uint64_t *found)
{
	int done;
	uint64_t n = 0;
	if (s->bscrub) { /* a bucket is walked whole: its listing has no cursor to resume from */
		hl_verify_report r;
		int err = hl_bscrub_walk(s->bscrub, 0, 0, 1, NULL, NULL, NULL, &r);
		if (pass_done)
			*pass_done = 1;
		if (found)
			*found += r.corrupt;
		return err;
	}
	if (!s->scrub)
		return HL_INVALID;
	int err = hl_scrub_step(s->scrub, max_bytes, pass_done ? pass_done : &done, &n);
	if (found)
		*found += n;
	return err;
}

int hl_scrub_background(hl_store *s, uint64_t bytes_per_s, unsigned pause_s)
{
	if (s->bscrub)
		return hl_bscrub_start(s->bscrub, bytes_per_s, pause_s);
	return s->scrub ? hl_scrub_start(s->scrub, bytes_per_s, pause_s) : HL_INVALID;
}

int hl_repair(hl_store *s, const hl_id *id, const char **from)
{
	if (!id)
		return HL_INVALID;
	if (s->bscrub)
		return hl_bscrub_repair(s->bscrub, id, from);
	if (!s->scrub)
		return HL_INVALID;
	return hl_scrub_repair(s->scrub, id, from);
}

int hl_check_index(hl_store *s, uint64_t *problems)
{
	if (!s || !problems)
		return HL_INVALID;
	*problems = 0;
	if (s->be.ops->caps & HL_BE_SHARED)
		return HL_INVALID;
	return hl_local_check_index(s->local, problems);
}

int hl_stats_get(hl_store *s, hl_stats *out)
{
	if (!out)
		return HL_INVALID;
	int err = hl_local_stats(s->local, out);
	if (!err && !(s->be.ops->caps & HL_BE_SHARED)) /* a bucket's are counted by verify --backend */
		err = hl_names_large_count(s->local, &out->chunked);
	if (!err && s->l1) {
		hl_l1_stats l;
		hl_l1_stats_get(s->l1, &l);
		out->l1_hits = l.hits;
		out->l1_misses = l.misses;
		out->l1_evictions = l.evictions;
		out->l1_bytes = l.bytes;
		out->l1_entries = l.entries;
		out->l1_capacity = l.capacity;
	}
	if (!err) {
		hl_coord_stats c;
		hl_coord_stats_get(s->coord, &c);
		out->busy = c.busy;
		out->joined = c.joined;
		out->limit_get = c.limit[HL_CLASS_READ];
		out->limit_has = c.limit[HL_CLASS_HAS];
		out->limit_write = c.limit[HL_CLASS_WRITE];
		out->inflight = c.inflight[HL_CLASS_READ] + c.inflight[HL_CLASS_HAS] + c.inflight[HL_CLASS_WRITE];
		hl_health h;
		hl_metrics_health(hl_coord_metrics(s->coord), 1000000000u, &h);
		out->health_score = h.score;
	}
	if (!err && (s->scrub || s->bscrub)) {
		hl_scrub_stats ss;
		if (s->scrub)
			hl_scrub_stats_get(s->scrub, &ss);
		else
			hl_bscrub_stats_get(s->bscrub, &ss);
		out->scrub_objects = ss.objects;
		out->scrub_bytes = ss.bytes;
		out->scrub_passes = ss.passes;
		out->scrub_corrupt = ss.corrupt;
		out->repaired = ss.repaired;
		out->unrepairable = ss.unrepairable;
	}
	if (!err && s->l2) {
		hl_l2_stats l;
		hl_l2_stats_get(s->l2, &l);
		out->l2_hits = l.hits, out->l2_misses = l.misses, out->l2_corrupt = l.corrupt;
		out->l2_bytes = l.bytes, out->l2_entries = l.entries, out->l2_capacity = l.capacity;
	}
	if (!err && s->stack)
		out->l2_promoted = hl_tier_stack_promoted(s->stack);
	if (!err && s->be.ops->remote_stats) {
		hl_http_stats h;
		s->be.ops->remote_stats(s->be.self, &h);
		out->remote_requests = h.requests, out->remote_retries = h.retries;
		out->remote_failures = h.failures, out->remote_breaker_opens = h.breaker_opens;
		out->remote_breaker_open = h.breaker_open;
	}
	return err;
}

typedef struct counting {
	uint64_t objects, bytes, chunked;
} counting;

static int count_object(const hl_id *id, const hl_stat *st, void *arg)
{
	(void)id;
	counting *c = arg;
	c->objects++;
	c->bytes += st->stored_size ? st->stored_size : st->size;
	return 0;
}

static int count_large(const hl_id *id, const hl_id *manifest, uint64_t size, void *arg)
{
	(void)id, (void)manifest, (void)size;
	((counting *)arg)->chunked++;
	return 0;
}

int hl_backend_get(hl_store *s, int count, hl_backend_info *out)
{
	if (!out)
		return HL_INVALID;
	memset(out, 0, sizeof(*out));
	snprintf(out->kind, sizeof out->kind, "%s", s->be.ops->kind);
	out->shared = !!(s->be.ops->caps & HL_BE_SHARED);
	if (!count || !s->be.ops->list)
		return 0;
	counting c = {0, 0, 0};
	int err = s->be.ops->list(s->be.self, count_object, &c);
	if (!err && s->be.ops->large_each)
		err = s->be.ops->large_each(s->be.self, count_large, &c);
	if (err)
		return err;
	out->counted = 1;
	out->objects = c.objects, out->bytes = c.bytes, out->chunked = c.chunked;
	return 0;
}

int hl_latency_get(hl_store *s, int op, int at, hl_latency *out)
{
	if (!out || op < 0 || op >= HL_OP_COUNT_ || at < HL_AT_L1 || at > HL_AT_ALL)
		return HL_INVALID;
	hl_metrics_latency(hl_coord_metrics(s->coord), op, at, out);
	return 0;
}

int hl_health_get(hl_store *s, hl_health *out)
{
	if (!out)
		return HL_INVALID;
	/* re-evaluated when asked, at most once a second (a window shorter than that is noise) */
	hl_metrics_health(hl_coord_metrics(s->coord), 1000000000u, out);
	return 0;
}

int hl_metrics_text(hl_store *s, char **text, size_t *len)
{
	if (!text)
		return HL_INVALID;
	*text = NULL;
	hl_stats st;
	int err = hl_stats_get(s, &st);
	if (err)
		return err;
	hl_text t = {0};
	const struct { const char *name, *type, *help; uint64_t v; } m[] = {
		{"helios_objects", "gauge", "Stored objects.", st.objects},
		{"helios_logical_bytes", "gauge", "Sum of stored object sizes.", st.logical_bytes},
		{"helios_stored_bytes", "gauge", "Bytes in records of stored objects (headers, payloads).", st.stored_bytes},
		{"helios_segment_bytes", "gauge", "Size of all segment files, dead space included.", st.segment_bytes},
		{"helios_segments", "gauge", "Segment files.", st.segments},
		{"helios_quarantined", "gauge", "Records quarantined as corrupt.", st.quarantined},
		{"helios_chunked_objects", "gauge", "Large objects stored as chunks and a manifest.", st.chunked},
		{"helios_store_puts_total", "counter", "Objects offered to the store.", st.puts},
		{"helios_store_puts_new_total", "counter", "Objects the store wrote (not already present).", st.puts_new},
		{"helios_store_reads_total", "counter", "Reads from the store (below the L1).", st.gets},
		{"helios_corrupt_reads_total", "counter", "Reads that failed verification.", st.corrupt_reads},
		{"helios_syncs_total", "counter", "Segment syncs.", st.syncs},
		{"helios_commits_total", "counter", "Group commits.", st.commits},
		{"helios_index_flushes_total", "counter", "Memtable flushes into the index.", st.index_flushes},
		{"helios_unindexed_objects", "gauge", "Objects durable in segment files, not yet in the index.", st.unindexed},
		{"helios_l1_hits_total", "counter", "L1 memory cache hits.", st.l1_hits},
		{"helios_l1_misses_total", "counter", "L1 memory cache misses.", st.l1_misses},
		{"helios_l1_evictions_total", "counter", "L1 evictions.", st.l1_evictions},
		{"helios_l1_bytes", "gauge", "Bytes held by the L1 (with per-entry overhead).", st.l1_bytes},
		{"helios_l1_entries", "gauge", "Objects held by the L1.", st.l1_entries},
		{"helios_l1_capacity_bytes", "gauge", "The L1's byte bound.", st.l1_capacity},
		{"helios_scrub_objects_total", "counter", "Objects re-read and re-hashed by the scrubber.", st.scrub_objects},
		{"helios_scrub_bytes_total", "counter", "Record bytes re-read by the scrubber.", st.scrub_bytes},
		{"helios_scrub_passes_total", "counter", "Whole passes of the scrubber over the store.", st.scrub_passes},
		{"helios_scrub_corrupt_total", "counter", "Corrupt objects found by the scrubber or given to repair.", st.scrub_corrupt},
		{"helios_repaired_total", "counter", "Corrupt objects replaced by a verified copy from another tier.", st.repaired},
		{"helios_unrepairable_total", "counter", "Corrupt objects no repair source had.", st.unrepairable},
		{"helios_l2_hits_total", "counter", "L2 disk cache hits (verified).", st.l2_hits},
		{"helios_l2_misses_total", "counter", "L2 disk cache misses.", st.l2_misses},
		{"helios_l2_corrupt_total", "counter", "L2 entries that failed verification (counted as misses).", st.l2_corrupt},
		{"helios_l2_bytes", "gauge", "Bytes held by the L2.", st.l2_bytes},
		{"helios_l2_entries", "gauge", "Objects held by the L2.", st.l2_entries},
		{"helios_l2_capacity_bytes", "gauge", "The L2's byte bound.", st.l2_capacity},
		{"helios_l2_promoted_total", "counter", "Objects the warm-up moved from the L2 into the L1.", st.l2_promoted},
		{"helios_remote_requests_total", "counter", "Requests sent to the remote backend.", st.remote_requests},
		{"helios_remote_retries_total", "counter", "Requests resent after a transient failure.", st.remote_retries},
		{"helios_remote_failures_total", "counter", "Calls to the remote backend that failed after their retries.", st.remote_failures},
		{"helios_remote_breaker_opens_total", "counter", "Times the circuit breaker opened.", st.remote_breaker_opens},
		{"helios_remote_breaker_open", "gauge", "1 while the circuit breaker is open (calls fail at once).", (uint64_t)st.remote_breaker_open},
		{"helios_busy_total", "counter", "Calls refused with HL_BUSY (admission control).", st.busy},
		{"helios_joined_total", "counter", "Calls that shared a concurrent identical read or write.", st.joined},
		{"helios_inflight", "gauge", "Operations in flight below the L1.", st.inflight},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		hl_text_printf(&t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name, m[i].help, m[i].name,
		               m[i].type, m[i].name, (unsigned long long)m[i].v);
	hl_text_printf(&t, "# HELP helios_inflight_limit Current admission bound per class (0: unbounded).\n"
	                   "# TYPE helios_inflight_limit gauge\n"
	                   "helios_inflight_limit{class=\"get\"} %llu\nhelios_inflight_limit{class=\"has\"} %llu\n"
	                   "helios_inflight_limit{class=\"write\"} %llu\n",
	               (unsigned long long)st.limit_get, (unsigned long long)st.limit_has,
	               (unsigned long long)st.limit_write);
	hl_text_printf(&t, "# HELP helios_backend_info The durable backend (shared: other nodes write it too; "
	                   "the object figures above are then this node's local store's).\n"
	                   "# TYPE helios_backend_info gauge\nhelios_backend_info{kind=\"%s\",shared=\"%s\"} 1\n",
	               s->be.ops->kind, s->be.ops->caps & HL_BE_SHARED ? "true" : "false");
	hl_metrics_prometheus(hl_coord_metrics(s->coord), &t);
	if (t.oom) {
		free(t.p);
		return ENOMEM;
	}
	*text = t.p;
	if (len)
		*len = t.len;
	return 0;
}

int hl_sync(hl_store *s)
{
	return hl_local_sync(s->local);
}

void hl_set_logger(hl_log_fn fn)
{
	hl_log_set_sink(fn);
}

/* ---- garbage collection ---- */

void hl_gc_options_init(hl_gc_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->compact_below = 0.5;
}

int hl_gc(hl_store *s, const hl_gc_options *opt, hl_gc_report *out)
{
	hl_gc_options d;
	hl_gc_report r;
	if (!opt) {
		hl_gc_options_init(&d);
		opt = &d;
	}
	if (opt->compact_below < 0 || opt->compact_below > 1)
		return HL_INVALID;
	int err = writable(s);
	if (!err && s->fleet) { /* a shared bucket: one collection across every node */
		hl_fleet_gc_options fo = {.grace_s = s->gc_grace_s, .lease_ms = s->fleet_lease_ms,
		                          .dry_run = opt->dry_run, .owner = hl_fleet_node(s->fleet)};
		return hl_fleet_gc(s->be, &fo, out ? out : &r);
	}
	if (!err && s->be.ops->collect) /* a helios server collects its own */
		return s->be.ops->collect(s->be.self, opt->dry_run, out ? out : &r);
	if (!err && (s->be.ops->caps & HL_BE_SHARED)) {
		/* the backend's objects are named by every node's refs and uploads: collecting them needs
		 * a protocol between nodes that helios does not have yet (a helios backend collects its
		 * own: run gc there) */
		hl_log(HL_LOG_ERROR, "gc: not supported on a shared remote backend (run it on the backend)");
		err = HL_INVALID;
	}
	if (!err)
		err = hl_dedup_gc(s->local, s->gc_grace_s, opt->compact_below, opt->dry_run, out ? out : &r);
	return err;
}

/* ---- refs ---- */

int hl_ref_valid(const char *name)
{
	return name && hl_names_ref_valid(name, strlen(name));
}

int hl_ref_get(hl_store *s, const char *name, hl_id *out)
{
	if (!out || !hl_ref_valid(name))
		return HL_INVALID;
	return s->be.ops->ref_get(s->be.self, name, out);
}

/* A ref may only point at a stored object (GC roots must be complete). */
static int ref_update(hl_store *s, const char *name, const hl_id *expect, const hl_id *target,
                      int force)
{
	int err = writable(s);
	if (err || !hl_ref_valid(name))
		return err ? err : HL_INVALID;
	if (target && (err = hl_has(s, target)) != 0) /* stored whole or as chunks */
		return err == HL_NOTFOUND ? HL_INCOMPLETE : err;
	return s->be.ops->ref_set(s->be.self, name, expect, target, force);
}

int hl_ref_cas(hl_store *s, const char *name, const hl_id *expect, const hl_id *target)
{
	return target ? ref_update(s, name, expect, target, 0) : HL_INVALID;
}

int hl_ref_set(hl_store *s, const char *name, const hl_id *target)
{
	return target ? ref_update(s, name, NULL, target, 1) : HL_INVALID;
}

int hl_ref_delete(hl_store *s, const char *name, const hl_id *expect)
{
	return ref_update(s, name, expect, NULL, expect == NULL);
}

int hl_ref_list(hl_store *s, const char *prefix, hl_ref_fn fn, void *ctx)
{
	if (!fn)
		return HL_INVALID;
	return s->be.ops->ref_list(s->be.self, prefix, fn, ctx);
}

/* ---- kv ---- */

static int kv_valid(const char *ns, const void *key, size_t klen)
{
	return hl_names_ns_valid(ns, ns ? strlen(ns) : 0) && hl_names_key_valid(key, klen);
}

/* Points the key at a stored object of len bytes. */
static int kv_set(hl_store *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                  uint64_t len)
{
	uint64_t evicted = 0;
	int err = s->be.ops->kv_set(s->be.self, ns, key, klen, id, len, s->kv_max_bytes, &evicted);
	if (!err && evicted)
		hl_log(HL_LOG_DEBUG, "kv %s: %llu least recently used keys evicted", ns,
		       (unsigned long long)evicted);
	return err;
}

int hl_kv_put(hl_store *s, const char *ns, const void *key, size_t klen, const void *data,
              size_t len)
{
	int err = writable(s);
	if (err)
		return err;
	if (!kv_valid(ns, key, klen) || (!data && len))
		return HL_INVALID;
	if (len > s->kv_max_bytes)
		return HL_TOOBIG;
	hl_id id;
	if ((err = hl_coord_put(s->coord, NULL, data, len, &id, NULL)) != 0)
		return err;
	return kv_set(s, ns, key, klen, &id, len);
}

int hl_kv_link(hl_store *s, const char *ns, const void *key, size_t klen, const hl_id *id)
{
	int err = writable(s);
	if (err || !id || !kv_valid(ns, key, klen))
		return err ? err : HL_INVALID;
	hl_stat st;
	if ((err = hl_has(s, id)) != 0 || (err = hl_stat_object(s, id, &st)) != 0)
		return err == HL_NOTFOUND ? HL_INCOMPLETE : err;
	if (st.size > s->kv_max_bytes)
		return HL_TOOBIG;
	return kv_set(s, ns, key, klen, id, st.size);
}

int hl_kv_lookup(hl_store *s, const char *ns, const void *key, size_t klen, hl_id *id,
                 uint64_t *size)
{
	hl_id dummy;
	uint64_t sz;
	if (!kv_valid(ns, key, klen))
		return HL_INVALID;
	return s->be.ops->kv_get(s->be.self, ns, key, klen, id ? id : &dummy, size ? size : &sz);
}

int hl_kv_stat(hl_store *s, const char *ns, const void *key, size_t klen, uint64_t *size)
{
	return hl_kv_lookup(s, ns, key, klen, NULL, size);
}

int hl_kv_get(hl_store *s, const char *ns, const void *key, size_t klen, hl_buf **out)
{
	hl_id id;
	if (!out)
		return HL_INVALID;
	int err = hl_kv_lookup(s, ns, key, klen, &id, NULL);
	return err ? err : hl_get(s, &id, out);
}

int hl_kv_delete(hl_store *s, const char *ns, const void *key, size_t klen)
{
	int err = writable(s);
	if (!err && !kv_valid(ns, key, klen))
		err = HL_INVALID;
	return err ? err : s->be.ops->kv_delete(s->be.self, ns, key, klen);
}

int hl_kv_usage(hl_store *s, const char *ns, uint64_t *bytes, uint64_t *keys)
{
	uint64_t b = 0, k = 0;
	if (!hl_names_ns_valid(ns, ns ? strlen(ns) : 0))
		return HL_INVALID;
	int err = s->be.ops->kv_usage ? s->be.ops->kv_usage(s->be.self, ns, &b, &k) : HL_INVALID;
	if (bytes)
		*bytes = b;
	if (keys)
		*keys = k;
	return err;
}
