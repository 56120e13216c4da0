/* maint.c — keeping a store whole: verify, the index check and rebuild, scrub, repair, and
 * garbage collection (local, or the shared bucket's collection protocol). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/stopper.h"
#include "helios.h"
#include "base/clock.h"
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
#include "api/history.h"
#include "base/alloc.h"

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
	if (hl_api_remote_backend(&o))
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


/* ---- garbage collection ---- */

void hl_gc_options_init(hl_gc_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->compact_below = 0.5;
}

/* Whether opt can be carried out on s: 0, HL_READONLY, or HL_INVALID (logged when the reason is
 * not in the numbers: a repack of a bucket). */
static int gc_options_check(hl_store *s, const hl_gc_options *opt)
{
	if (opt->compact_below < 0 || opt->compact_below > 1 || opt->repack < 0 ||
	    opt->repack > HL_REPACK_LEVEL_MAX)
		return HL_INVALID;
	int err = hl_api_writable(s);
	if (!err && opt->repack && !s->be.ops->collect && (s->be.ops->caps & HL_BE_SHARED)) {
		hl_log(HL_LOG_ERROR, "gc: --repack re-encodes a local store's records; a bucket keeps "
		                     "whole objects");
		err = HL_INVALID;
	}
	return err;
}

int hl_gc(hl_store *s, const hl_gc_options *opt, hl_gc_report *out)
{
	hl_gc_options d;
	hl_gc_report r;
	if (!opt) {
		hl_gc_options_init(&d);
		opt = &d;
	}
	int err = gc_options_check(s, opt);
	if (err)
		return err;
	if (s->be.ops->collect) /* a helios server collects (and repacks) its own */
		return s->be.ops->collect(s->be.self, opt, out ? out : &r);
	/* what forget dropped, read before the collection begins: a newer record only drops more */
	hl_forgotten forgotten;
	hl_id at;
	if ((err = hl_api_forgotten_load(s, &forgotten, &at)) != 0)
		return err;
	if (s->fleet) { /* a shared bucket: one collection across every node */
		hl_fleet_gc_options fo = {.grace_s = s->gc_grace_s, .lease_ms = s->fleet_lease_ms,
		                          .dry_run = opt->dry_run, .owner = hl_fleet_node(s->fleet),
		                          .kv_bound = s->kv_max_bytes, .forgotten = &forgotten};
		err = hl_fleet_gc(s->be, &fo, out ? out : &r);
		hl_forgotten_free(&forgotten);
		return err;
	}
	if (s->be.ops->caps & HL_BE_SHARED) {
		/* the backend's objects are named by every node's refs and uploads: collecting them needs
		 * a protocol between nodes that helios does not have yet (a helios backend collects its
		 * own: run gc there) */
		hl_log(HL_LOG_ERROR, "gc: not supported on a shared remote backend (run it on the backend)");
		err = HL_INVALID;
	}
	if (!err)
		err = hl_dedup_gc(s->local, s->gc_grace_s, opt, &forgotten, out ? out : &r);
	hl_forgotten_free(&forgotten);
	return err;
}

/* ---- collections in the background ---- */

struct hl_gc_bg {
	hl_store *s;
	hl_gc_options opt;
	unsigned every_s;
	pthread_t thread;
	hl_stopper stopper;
};

static void gc_bg_log(const hl_gc_report *r, int err, uint64_t ns)
{
	if (err == HL_BUSY) {
		hl_log(HL_LOG_INFO, "gc: a collection is already running; next period");
	} else if (err) {
		hl_log(HL_LOG_ERROR, "gc: %s", hl_strerror(err));
	} else {
		hl_log(HL_LOG_INFO, "gc: %llu of %llu objects collected (%llu bytes), %llu segments "
		       "compacted (%llu bytes reclaimed), %llu records repacked (%llu -> %llu bytes) in %.1f s",
		       (unsigned long long)r->collected, (unsigned long long)r->objects,
		       (unsigned long long)r->collected_bytes, (unsigned long long)r->segments_removed,
		       (unsigned long long)r->bytes_reclaimed, (unsigned long long)r->records_repacked,
		       (unsigned long long)r->repack_bytes_before, (unsigned long long)r->repack_bytes_after,
		       (double)ns / 1e9);
	}
}

static void *gc_bg_main(void *arg)
{
	struct hl_gc_bg *g = arg;
	while (!hl_stopper_rest(&g->stopper, (uint64_t)g->every_s * 1000000000u)) {
		hl_gc_report r;
		uint64_t t0 = hl_now_ns();
		int err = hl_gc(g->s, &g->opt, &r);
		gc_bg_log(&r, err, hl_now_ns() - t0);
	}
	return NULL;
}

int hl_gc_background(hl_store *s, unsigned every_s, const hl_gc_options *opt)
{
	hl_gc_options d;
	if (!opt) {
		hl_gc_options_init(&d);
		opt = &d;
	}
	if (!s || !every_s || opt->dry_run)
		return HL_INVALID;
	if (s->gc_bg)
		return HL_BUSY;
	int err = gc_options_check(s, opt);
	if (err)
		return err;
	struct hl_gc_bg *g = hl_calloc(1, sizeof(*g));
	if (!g)
		return ENOMEM;
	*g = (struct hl_gc_bg){.s = s, .opt = *opt, .every_s = every_s};
	hl_stopper_init(&g->stopper);
	if ((err = pthread_create(&g->thread, NULL, gc_bg_main, g)) != 0) {
		hl_stopper_destroy(&g->stopper);
		free(g);
		return err;
	}
	s->gc_bg = g;
	return 0;
}

void hl_api_gc_bg_stop(hl_store *s)
{
	struct hl_gc_bg *g = s->gc_bg;
	if (!g)
		return;
	hl_stopper_stop(&g->stopper);
	pthread_join(g->thread, NULL);
	hl_stopper_destroy(&g->stopper);
	free(g);
	s->gc_bg = NULL;
}
