/* gc.c — the collector: marks everything reachable from the roots (refs, kv values, and every
 * object younger than the grace period, with all it names), then deletes what is left, batch by
 * batch, after honouring every object that writers found present meanwhile; then compacts
 * segments whose live fraction fell low. Runs online: puts, gets and ref updates continue.
 * The protocol it relies on is in store.h ("collection support") and docs/DESIGN.md. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/grow.h"
#include "base/log.h"
#include "dedup/gc.h"
#include "dedup/links.h"
#include "store/names.h"
#include "store/record.h"
#include "base/alloc.h"

#define DELETE_BATCH 4096

typedef struct large_map {
	hl_id blob, manifest;
} large_map;

typedef struct gc {
	hl_local *s;
	hl_obj_entry *v; /* every indexed object at the start, sorted by id */
	size_t n;
	uint8_t *marked;
	size_t *stack; /* entries to read (marked, naming others) */
	size_t nstack;
	large_map *large; /* sorted by blob */
	size_t nlarge, caplarge;
	large_map *by_manifest; /* the same, sorted by manifest */
	uint64_t cutoff;  /* atime ≤ cutoff: old enough to collect */
	const hl_forgotten *forgotten; /* what forget dropped: weak links */
	hl_gc_report *res;
} gc;

static int cmp_id(const hl_id *a, const hl_id *b)
{
	return memcmp(a->b, b->b, HL_ID_LEN);
}

static size_t find_obj(const gc *g, const hl_id *id)
{
	size_t lo = 0, hi = g->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = cmp_id(&g->v[mid].id, id);
		if (!c)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return SIZE_MAX;
}

/* The first mapping at or after key in m[0..n) ordered by field off (blob or manifest). */
static size_t lower_large(const large_map *m, size_t n, const hl_id *key, int by_manifest)
{
	size_t lo = 0, hi = n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const hl_id *k = by_manifest ? &m[mid].manifest : &m[mid].blob;
		if (cmp_id(k, key) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Marks id: an indexed object (queued for reading when it may name others), or a chunked blob
 * (its manifest). An id that is neither is not stored, or was stored after the walk began (and
 * is then not a candidate). */
static int mark(const hl_id *id, void *ctx)
{
	gc *g = ctx;
	size_t i = find_obj(g, id);
	if (i == SIZE_MAX) {
		size_t j = lower_large(g->large, g->nlarge, id, 0);
		if (j < g->nlarge && !cmp_id(&g->large[j].blob, id))
			return mark(&g->large[j].manifest, ctx);
		return 0;
	}
	if (g->marked[i])
		return 0;
	g->marked[i] = 1;
	g->res->reachable++;
	if (g->v[i].e.flags & (HL_REC_F_LINKS | HL_REC_F_DELTA))
		g->stack[g->nstack++] = i; /* each entry is pushed at most once: n slots suffice */
	return 0;
}

static int cannot_read(const hl_id *id, const char *what, int err)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	hl_log(HL_LOG_ERROR, "gc: cannot read %s, which %s (%s); nothing is collected", hex, what,
	       hl_strerror(err));
	return err == HL_NOTFOUND ? HL_CORRUPT : err;
}

/* Reads every queued object and marks what it names, and the base of a delta. An object that
 * cannot be read stops the collection: what it needs is unknown, so nothing may be deleted. */
static int drain(gc *g)
{
	while (g->nstack) {
		size_t i = g->stack[--g->nstack];
		hl_id base;
		int err = 0;
		if (g->v[i].e.flags & HL_REC_F_DELTA) {
			if ((err = hl_local_delta_base(g->s, &g->v[i].id, &base)) == 0)
				err = mark(&base, g);
			else if (err != HL_NOTFOUND) /* HL_NOTFOUND: rewritten whole meanwhile */
				return cannot_read(&g->v[i].id, "is stored as a delta", err);
		}
		if (!(g->v[i].e.flags & HL_REC_F_LINKS))
			continue;
		hl_buf *b;
		err = hl_local_get(g->s, &g->v[i].id, &b);
		if (err)
			return cannot_read(&g->v[i].id, "may name other objects", err);
		err = hl_links_each_kept(hl_buf_data(b), hl_buf_len(b), &g->v[i].id, g->forgotten, mark, g);
		hl_buf_unref(b);
		if (err)
			return err;
	}
	return 0;
}

static int add_large(const hl_id *id, const hl_id *manifest, uint64_t size, void *ctx)
{
	(void)size;
	gc *g = ctx;
	large_map *m = hl_grow(g->large, g->nlarge, &g->caplarge, sizeof(*m), 256);
	if (!m)
		return ENOMEM;
	g->large = m;
	g->large[g->nlarge++] = (large_map){*id, *manifest};
	return 0;
}

static int cmp_by_manifest(const void *a, const void *b)
{
	return cmp_id(&((const large_map *)a)->manifest, &((const large_map *)b)->manifest);
}

static int mark_ref(const char *name, const hl_id *target, void *ctx)
{
	(void)name;
	return mark(target, ctx);
}

/* Marks the closure of every id writers found present since *from. */
static int mark_held(gc *g, const hl_id *ids, size_t n)
{
	for (size_t i = 0; i < n; i++)
		mark(&ids[i], g);
	g->res->held += n;
	return drain(g);
}

/* Deletes the next candidates, up to one batch, after the ids held so far are marked. *at runs
 * over v twice: first the manifests that large blobs map to (each deleted with its maps), then
 * the rest, so a reader never finds a blob's map with some of its chunks gone (a collection too
 * large for one batch would otherwise leave that between batches: read as damage). */
static int sweep_batch(gc *g, size_t *at, size_t *held_from, int dry_run)
{
	hl_gc_victim *vic = hl_malloc(DELETE_BATCH * sizeof(*vic));
	if (!vic)
		return ENOMEM;
	int err = 0;
	for (;;) { /* until no new held id needs marking while the writers are stopped */
		hl_local_gc_lock(g->s);
		hl_id *ids;
		size_t nids;
		if ((err = hl_local_gc_take_held_locked(g->s, held_from, &ids, &nids)) != 0 || !nids)
			break; /* keeps the lock */
		hl_local_gc_unlock(g->s);
		err = mark_held(g, ids, nids);
		free(ids);
		if (err) {
			free(vic);
			return err;
		}
	}
	size_t nv = 0;
	while (!err && *at < 2 * g->n && nv < DELETE_BATCH) {
		int mapped_pass = *at < g->n;
		size_t i = (*at)++ % g->n;
		if (g->marked[i] || g->v[i].e.atime > g->cutoff)
			continue;
		size_t j = lower_large(g->by_manifest, g->nlarge, &g->v[i].id, 1), k = j;
		while (k < g->nlarge && !cmp_id(&g->by_manifest[k].manifest, &g->v[i].id))
			k++;
		if ((k > j) != mapped_pass)
			continue; /* its pass is the other one */
		hl_gc_victim *x = &vic[nv++];
		x->id = g->v[i].id;
		x->e = g->v[i].e;
		x->large = NULL;
		x->nlarge = k - j;
		if (x->nlarge) { /* the blob ids, contiguous: copy them out of the pairs */
			hl_id *ids = hl_malloc(x->nlarge * sizeof(*ids));
			if (!ids) {
				err = ENOMEM;
				nv--;
				break;
			}
			for (size_t m = j; m < k; m++)
				ids[m - j] = g->by_manifest[m].blob;
			x->large = ids;
		}
	}
	if (!err && dry_run) {
		for (size_t i = 0; i < nv; i++) {
			g->res->collected++;
			g->res->collected_bytes += HL_REC_HDR_LEN + vic[i].e.stored_len;
		}
	} else if (!err && nv) {
		err = hl_local_gc_delete_locked(g->s, vic, nv, g->cutoff, &g->res->collected,
		                                &g->res->collected_bytes);
	}
	hl_local_gc_unlock(g->s);
	for (size_t i = 0; i < nv; i++)
		free((void *)vic[i].large);
	free(vic);
	return err;
}

int hl_dedup_gc(hl_local *s, uint64_t grace_s, const hl_gc_options *opt, const hl_forgotten *forgotten,
                hl_gc_report *res)
{
	memset(res, 0, sizeof(*res));
	uint64_t t0 = hl_now_ns(), now = hl_wall_s();
	gc g = {.s = s, .res = res, .forgotten = forgotten};
	g.cutoff = now > grace_s ? now - grace_s - 1 : 0; /* older than grace: atime + grace < now */
	int err = hl_local_gc_begin(s, g.cutoff);
	if (err)
		return err;
	if (now <= grace_s)
		goto done;
	/* roots are read after the collection began: anything linked later was found present
	 * (held) or written since (young) */
	if ((err = hl_local_entries(s, &g.v, &g.n)) != 0 ||
	    (err = hl_names_large_each(s, add_large, &g)) != 0)
		goto done;
	res->objects = g.n;
	g.marked = hl_calloc(g.n ? g.n : 1, 1);
	g.stack = hl_malloc((g.n ? g.n : 1) * sizeof(*g.stack));
	g.by_manifest = hl_malloc((g.nlarge ? g.nlarge : 1) * sizeof(*g.by_manifest));
	if (!g.marked || !g.stack || !g.by_manifest) {
		err = ENOMEM;
		goto done;
	}
	if (g.nlarge)
		memcpy(g.by_manifest, g.large, g.nlarge * sizeof(*g.large));
	qsort(g.by_manifest, g.nlarge, sizeof(*g.by_manifest), cmp_by_manifest);
	if ((err = hl_names_ref_list(s, "", mark_ref, &g)) != 0 ||
	    (err = hl_names_kv_each(s, mark, &g)) != 0)
		goto done;
	for (size_t i = 0; i < g.n; i++) {
		if (g.v[i].e.atime > g.cutoff) {
			res->young++;
			mark(&g.v[i].id, &g); /* young objects are roots: an upload in progress */
		}
	}
	if ((err = drain(&g)) != 0)
		goto done;
	size_t at = 0, held_from = 0;
	while (!err && at < 2 * g.n)
		err = sweep_batch(&g, &at, &held_from, opt->dry_run);
	hl_local_gc_swept(s); /* a paced compaction may take hours: no list of finds grows meanwhile */
	if (!err && !opt->dry_run && (opt->compact_below > 0 || opt->repack)) {
		hl_compact_report cr;
		err = hl_local_compact(s, opt->compact_below, opt->repack, opt->repack_threads,
		                       opt->compact_rate, &cr);
		res->segments_removed = cr.segments_removed;
		res->records_moved = cr.records_moved;
		res->bytes_moved = cr.bytes_moved;
		res->bytes_reclaimed = cr.bytes_reclaimed;
		res->records_repacked = cr.records_repacked;
		res->repack_bytes_before = cr.repack_bytes_before;
		res->repack_bytes_after = cr.repack_bytes_after;
	}
done:
	hl_local_gc_end(s);
	free(g.v);
	free(g.marked);
	free(g.stack);
	free(g.large);
	free(g.by_manifest);
	res->duration_ns = hl_now_ns() - t0;
	return err;
}
