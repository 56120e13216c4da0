/* helios.c — implements include/helios.h by composing the layers below: this file opens a store
 * (the backend, the L1 and L2 caches, the coordinator, the integrity checkers) and closes it; the
 * rest of the API is in objects.c, maint.c, metrics.c, names.c and large.c, snapshot.c. */
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
#include "dedup/resolve.h"
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

#define L1_SHARD_BITS 6               /* 64 shards of the L1, each with its own lock */
#define L2_LZ4_MIN (16u << 10)        /* L2 entries from this size are LZ4-compressed */
#define FLEET_LEASE_MS_DEFAULT 10000  /* hl_options.fleet_lease_ms when 0 */
/* the L2 keeps objects up to half a region; the L1 is warmed from the L2 up to half its size */
#define L2_MAX_OBJECT(region) ((region) / 2)
#define L1_WARM_BYTES(l1) ((l1) / 2)

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
	opt->index_in_memory = 1;
	opt->l1_bytes = UINT64_C(256) << 20;
	opt->l1_max_object = UINT64_C(1) << 20;
	opt->l1_policy = HL_L1_POLICY_SIEVE;
	opt->max_inflight = 1024;
	opt->shard_inflight = 64;
	opt->adaptive_limit = 1;
	opt->health_interval_ms = 1000;
	opt->kv_max_bytes = UINT64_C(8) << 30;
	opt->gc_grace_s = 86400;
	opt->fleet_lease_ms = FLEET_LEASE_MS_DEFAULT;
	opt->chunk_threshold = UINT64_C(1) << 20;
	opt->chunk_min = HL_CDC_MIN;
	opt->chunk_avg = HL_CDC_AVG;
	opt->chunk_max = HL_CDC_MAX;
	opt->remote_timeout_ms = 30000;
	opt->remote_retries = 3;
	opt->l2_bytes = UINT64_C(1) << 30;
	opt->l2_region_size = 4u << 20;
}

int hl_api_remote_backend(const hl_options *opt)
{
	return opt->backend && *opt->backend && strcmp(opt->backend, "local");
}

/* Opens a remote backend: "s3" (the bucket of the s3_* options) or "helios" (the server at url).
 * role names it in the log ("backend", "repair source"). */
static int open_remote(const hl_options *opt, const char *role, const char *kind, const char *url,
                       hl_backend *out)
{
	hl_http_config hc = {.timeout_ms = opt->remote_timeout_ms, .retries = opt->remote_retries,
	                     .cainfo = opt->tls_cacert};
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
	if (!hl_api_remote_backend(opt)) {
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
		if ((err = hl_l2_open(path, opt->l2_bytes, opt->l2_region_size, L2_LZ4_MIN, &s->l2)) != 0) {
			hl_log(HL_LOG_ERROR, "L2 cache %s: %s", path, hl_strerror(err));
			return err;
		}
	}
	/* where a collector may delete what the L2 still holds, has asks the bucket */
	int fleet = !!(s->be.ops->caps & HL_BE_FLEET);
	err = hl_tier_stack_new(s->l2, L2_MAX_OBJECT(opt->l2_region_size), hl_backend_tier(s->be), !fleet,
	                        &s->stack);
	if (err)
		return err;
	*out = hl_tier_stack_tier(s->stack);
	if (!fleet || hl_local_read_only(s->local))
		return 0;
	/* this node's side of the bucket's collection protocol, around the backend and the stack */
	/* relies are remembered for the grace period, and at least ten leases (a write in flight) */
	unsigned lease = opt->fleet_lease_ms ? opt->fleet_lease_ms : FLEET_LEASE_MS_DEFAULT;
	hl_fleet_config fc = {
		.lease_ms = lease,
		.remember_s = opt->gc_grace_s > 10u * lease / 1000 ? opt->gc_grace_s : 10u * lease / 1000 + 1,
		.remember_max = opt->fleet_remember,
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

/* Read repair: a corrupt object met by a read is replaced from the repair source, when one is
 * configured (dedup/resolve.h calls this, then reads again). */
static int repair_on_read(void *ctx, const hl_id *id)
{
	hl_store *s = ctx;
	return s->scrub ? hl_scrub_repair(s->scrub, id, NULL) : HL_NOTFOUND; /* (gone at close) */
}

static void close_tiers(hl_store *s)
{
	hl_resolver_free(s->resolver);
	s->resolver = NULL;
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
	                                         opt->l1_policy == HL_L1_POLICY_LRU ? HL_L1_LRU : HL_L1_SIEVE,
	                                         L1_SHARD_BITS))) {
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
		err = hl_resolver_new(tier, s->be, s->l1, s->scrub && s->repair_name ? repair_on_read : NULL, s,
		                      &s->resolver);
	if (!err)
		err = hl_coord_new(hl_resolver_tier(s->resolver), s->l1, &co, &s->coord);
	if (!err && s->stack && s->l1 && hl_tier_stack_promote(s->stack, s->l1, L1_WARM_BYTES(opt->l1_bytes)))
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
	if (opt->tls_cacert && !(s->tls_cacert = hl_strdup(opt->tls_cacert))) {
		hl_close(s);
		return ENOMEM;
	}
	s->fleet_lease_ms = opt->fleet_lease_ms ? opt->fleet_lease_ms : FLEET_LEASE_MS_DEFAULT;
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
	if (s->local) /* a compaction in progress ends after its current batch */
		hl_local_stop_compaction(s->local);
	hl_api_gc_bg_stop(s);
	hl_scrub_free(s->scrub); /* its thread stops before what it uses goes */
	s->scrub = NULL;
	hl_bscrub_free(s->bscrub);
	s->bscrub = NULL;
	hl_coord_free(s->coord);
	close_tiers(s);
	hl_local_close(s->local);
	hl_l1_free(s->l1);
	free(s->tls_cacert);
	free(s);
}

/* Writes on a read-only handle are refused before any hashing. */
int hl_api_writable(hl_store *s)
{
	return hl_local_read_only(s->local) ? HL_READONLY : 0;
}
