/* store_gc.c — the store's side of garbage collection (held finds, deletion in one transaction
 * per batch) and compaction (live records copied through the group commit, old files deleted).
 * Lock order: store_int.h. */
#include "store/store_int.h"
#include "base/stopper.h"

/* ---------- collection and compaction (driven by dedup/gc.c) ---------- */

int hl_local_entries(hl_local *s, hl_obj_entry **out, size_t *n)
{
	uint64_t bytes;
	int err = hl_st_flush_index(s);
	return err ? err : hl_st_snapshot_entries(s, s->ix.obj, out, n, &bytes, NULL);
}

int hl_local_gc_begin(hl_local *s, uint64_t cutoff)
{
	if (s->opt.read_only)
		return HL_READONLY;
	if (pthread_mutex_trylock(&s->gc_mu) != 0)
		return HL_BUSY;
	pthread_mutex_lock(&s->touch_mu);
	s->held.n = 0;
	if (idvec_room(&s->held, s->pins_units)) { /* what unpins will hold */
		pthread_mutex_unlock(&s->touch_mu);
		pthread_mutex_unlock(&s->gc_mu);
		return ENOMEM;
	}
	atomic_store(&s->gc_cutoff, cutoff); /* before the flag: a finder that sees it sees this */
	atomic_store(&s->gc_active, 1);
	pthread_mutex_unlock(&s->touch_mu);
	/* every refresh queued before the flag went up reaches the index now; later ones are held */
	int err = hl_st_flush_index(s);
	if (err)
		hl_local_gc_end(s);
	return err;
}

void hl_local_gc_swept(hl_local *s)
{
	pthread_mutex_lock(&s->touch_mu);
	atomic_store(&s->gc_active, 0);
	free(s->held.v);
	s->held = (idvec){0};
	pthread_mutex_unlock(&s->touch_mu);
}

void hl_local_gc_end(hl_local *s)
{
	hl_local_gc_swept(s); /* (already, unless it ended before its sweep) */
	pthread_mutex_unlock(&s->gc_mu);
}

void hl_local_gc_lock(hl_local *s)
{
	pthread_mutex_lock(&s->flush_mu);
	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->touch_mu);
}

void hl_local_gc_unlock(hl_local *s)
{
	pthread_mutex_unlock(&s->touch_mu);
	pthread_mutex_unlock(&s->commit_mu);
	pthread_mutex_unlock(&s->flush_mu);
}

int hl_local_gc_take_held_locked(hl_local *s, size_t *from, hl_id **ids, size_t *n)
{
	*ids = NULL;
	*n = 0;
	if (*from >= s->held.n)
		return 0;
	size_t k = s->held.n - *from;
	hl_id *v = hl_malloc(k * sizeof(*v));
	if (!v)
		return ENOMEM;
	memcpy(v, s->held.v + *from, k * sizeof(*v));
	*from = s->held.n;
	*ids = v;
	*n = k;
	return 0;
}

/* Drops the pins' tombstones (ids pinned and unpinned again) once they outnumber the pins
 * four to one; touch_mu held. Out of memory: left as they are. */
static void pins_tidy(hl_local *s)
{
	hl_idmap *m = &s->pins;
	if (m->n < 1024 || m->n < 4 * s->pins_live)
		return;
	hl_idmap live = {0};
	for (size_t i = 0; i < m->cap; i++)
		if (m->used[i] && m->vals[i] && hl_idmap_put(&live, &m->keys[i], m->vals[i]) < 0) {
			hl_idmap_free(&live);
			return;
		}
	hl_idmap_free(m);
	*m = live;
}

int hl_local_pin(hl_local *s, const hl_id *ids, size_t n)
{
	size_t i;
	pthread_mutex_lock(&s->touch_mu);
	/* while a collection runs, room to hold each when it is unpinned */
	int err = atomic_load(&s->gc_active) ? idvec_room(&s->held, s->held.n + s->pins_units + n) : 0;
	for (i = 0; i < n && !err; i++) {
		uint32_t *c = hl_idmap_ref(&s->pins, &ids[i]);
		if (c)
			s->pins_live += (*c)++ == 0;
		else if (hl_idmap_put(&s->pins, &ids[i], 1) < 0)
			err = ENOMEM;
		else
			s->pins_live++;
		s->pins_units += !err;
	}
	pthread_mutex_unlock(&s->touch_mu);
	if (err && i > 1)
		hl_local_unpin(s, ids, i - 1);
	return err;
}

void hl_local_unpin(hl_local *s, const hl_id *ids, size_t n)
{
	pthread_mutex_lock(&s->touch_mu);
	int active = atomic_load(&s->gc_active);
	for (size_t i = 0; i < n; i++) {
		uint32_t *c = hl_idmap_ref(&s->pins, &ids[i]);
		if (!c || !*c)
			continue;
		if (active) {
			if (s->held.n == s->held.cap)
				continue; /* (never: room was kept since the pin or the collection's start) */
			s->held.v[s->held.n++] = ids[i];
		}
		s->pins_live -= --*c == 0;
		s->pins_units--;
	}
	pins_tidy(s);
	pthread_mutex_unlock(&s->touch_mu);
}

int hl_local_gc_delete_locked(hl_local *s, const hl_gc_victim *v, size_t n, uint64_t cutoff,
                              uint64_t *objects, uint64_t *bytes)
{
	MDB_txn *txn;
	uint8_t *gone = s->loc ? hl_calloc(n ? n : 1, 1) : NULL; /* which were deleted */
	if (s->loc && !gone)
		hl_loctab_give_up(s->loc); /* its copy could not follow: LMDB is read instead */
	int err = hl_idx_write_begin(&s->ix, &txn);
	if (err) {
		free(gone);
		return err;
	}
	hl_totals p = s->ptot, t = s->tot;
	uint64_t nobj = 0, nbytes = 0;
	for (size_t i = 0; i < n && !err; i++) {
		hl_idx_entry cur, mem;
		err = hl_idx_get(txn, s->ix.obj, &v[i].id, &cur);
		if (err == HL_NOTFOUND) {
			err = 0;
			continue;
		}
		/* still where the walk saw it, not refreshed since, not rewritten in a memtable, not
		 * pinned */
		uint32_t *pins = s->pins_live ? hl_idmap_ref(&s->pins, &v[i].id) : NULL;
		if (err || !hl_st_same_place(&cur, &v[i].e) || cur.atime > cutoff ||
		    hl_st_find_in_memory(s, &v[i].id, &mem) != HL_NOTFOUND || (pins && *pins))
			continue;
		MDB_val k = {HL_ID_LEN, (void *)v[i].id.b};
		if ((err = hl_idx_err(mdb_del(txn, s->ix.obj, &k, NULL))) != 0)
			break;
		for (size_t j = 0; j < v[i].nlarge && !err; j++)
			err = hl_names_large_unmap(txn, &s->ix, &v[i].large[j], &v[i].id);
		hl_st_totals_add(&p, &cur, -1);
		hl_st_totals_add(&t, &cur, -1);
		if (gone)
			gone[i] = 1;
		nobj++;
		nbytes += HL_REC_HDR_LEN + cur.stored_len;
	}
	if (!err)
		err = hl_idx_set_totals(txn, &s->ix, &p);
	if ((err = hl_idx_write_end(&s->ix, txn, err)) == 0)
		for (size_t i = 0; gone && i < n; i++)
			if (gone[i])
				hl_loctab_del(s->loc, &v[i].id);
	free(gone);
	if (err)
		return err;
	s->ptot = p;
	s->tot = t;
	*objects += nobj;
	*bytes += nbytes;
	return 0;
}

/* Copies the n records (all in one segment) into the active segment through the group commit,
 * re-encoded (hl_st_encode_moves; rp: a repack pass, or NULL); entries that changed meanwhile are
 * left alone. *moved counts the copies. */
static int relocate(hl_local *s, repack *rp, const hl_obj_entry *v, size_t n, uint64_t *moved)
{
	hl_put_item *items = hl_calloc(n ? n : 1, sizeof(*items));
	hl_idx_entry *was = hl_calloc(n ? n : 1, sizeof(*was));
	size_t k = 0;
	int err = items && was ? 0 : ENOMEM;
	uint64_t bytes = 0;
	for (size_t i = 0; i < n && !err; i++) {
		hl_idx_entry e = v[i].e;
		uint8_t *buf = hl_malloc(e.raw_len ? e.raw_len : 1);
		if (!buf) {
			err = ENOMEM;
			break;
		}
		int rerr = hl_st_read_following(s, &v[i].id, &e, hl_st_fill_raw, buf);
		if (rerr || !hl_st_same_place(&e, &v[i].e)) {
			free(buf); /* collected, moved, or unreadable (then quarantined): not copied */
			if (rerr && rerr != HL_NOTFOUND && rerr != HL_CORRUPT)
				err = rerr;
			continue;
		}
		items[k] = (hl_put_item){.data = buf, .len = e.raw_len, .id = v[i].id};
		was[k] = e;
		bytes += HL_REC_HDR_LEN + e.raw_len;
		k++;
	}
	prep *p = NULL;
	uint64_t total;
	if (!err && k && (err = hl_st_prepare(s, items, k, 1, &p, &total)) == 0) {
		hl_st_encode_moves(s, rp, p, was, k);
		creq req = {.recs = p, .n = k, .bytes = bytes};
		pthread_cond_init(&req.cv, NULL);
		err = hl_st_commit(s, &req);
		pthread_cond_destroy(&req.cv);
		for (size_t i = 0; i < k; i++) {
			*moved += items[i].created;
			if (items[i].created)
				hl_st_repack_count(rp, &was[i], &p[i]);
		}
		hl_st_prep_free(p, k);
	}
	for (size_t i = 0; items && i < k; i++)
		free((void *)items[i].data);
	free(items);
	free(was);
	return err;
}

static int cmp_entry_place(const void *a, const void *b)
{
	const hl_idx_entry *x = &((const hl_obj_entry *)a)->e, *y = &((const hl_obj_entry *)b)->e;
	if (x->segment != y->segment)
		return x->segment < y->segment ? -1 : 1;
	return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* When the active segment is large enough to matter (a quarter of the segment size) and its
 * live bytes are below `below`, or a repack pass wants one of its records, moves writes to a
 * fresh segment so it can be compacted; *v is then listed again (every entry in the old one is
 * indexed by now). */
static int roll_if_wanted(hl_local *s, const repack *rp, hl_obj_entry **v, size_t *n, double below,
                          uint32_t *active)
{
	pthread_mutex_lock(&s->commit_mu);
	uint32_t seg = s->segs.active;
	uint64_t size = s->segs.tail;
	pthread_mutex_unlock(&s->commit_mu);
	if (seg != *active)
		return 0; /* rolled since the listing began: the next run looks at it */
	uint64_t live = 0;
	int wanted = 0;
	for (size_t i = 0; i < *n; i++) {
		if ((*v)[i].e.segment == seg) {
			live += HL_REC_HDR_LEN + (*v)[i].e.stored_len;
			wanted |= hl_st_repack_wants(rp, &(*v)[i].e);
		}
	}
	int sparse = size >= s->opt.segment_size / 4 && (double)live < below * (double)size;
	if (!seg || !(sparse || wanted))
		return 0;
	pthread_mutex_lock(&s->commit_mu);
	int err = s->segs.active == seg ? hl_segs_activate(&s->segs, seg + 1, HL_SEG_HDR_LEN, 1) : 0;
	*active = s->segs.active;
	pthread_mutex_unlock(&s->commit_mu);
	if (err)
		return err;
	free(*v);
	*v = NULL;
	return hl_local_entries(s, v, n);
}

#define RELOCATE_BATCH 512
#define RELOCATE_BYTES (16u << 20)

typedef struct compact_seg {
	uint32_t seg;
	uint64_t size;
	size_t first, end; /* its entries in the listing */
} compact_seg;

typedef struct compact_group {
	compact_seg *picked;
	size_t n;
	uint64_t moved_bytes;
} compact_group;

#define GROUP_SEGMENTS 16          /* old files are deleted after this many are copied out */
#define GROUP_BYTES (64u << 20)    /* or this many bytes: a bound on the extra disk it takes */

/* Makes the copies of the group's segments durable and indexed (the index synced too), checks
 * that no listed entry still points into each, and deletes those files. Entries not in the
 * listing cannot point into them: every one is older than the listing's active segment. */
static int finish_group(hl_local *s, const hl_obj_entry *v, compact_group *g, hl_compact_report *rep)
{
	int err = g->n ? hl_local_sync(s) : 0;
	for (size_t i = 0; i < g->n && !err; i++) {
		const compact_seg *c = &g->picked[i];
		size_t still = 0;
		for (size_t j = c->first; j < c->end; j++) {
			hl_idx_entry cur;
			if (hl_st_find_entry(s, NULL, &v[j].id, &cur) == 0 && hl_st_same_place(&cur, &v[j].e))
				still++;
		}
		if (still) {
			hl_log(HL_LOG_WARN, "segment %u: %zu records could not be moved; kept", c->seg, still);
			continue;
		}
		if ((err = hl_segs_remove(&s->segs, c->seg)) == 0) {
			rep->segments_removed++;
			rep->bytes_reclaimed += c->size;
		} else if (s->segs.sync_err) {
			pthread_mutex_lock(&s->commit_mu);
			hl_st_set_write_err(s, s->segs.sync_err);
			pthread_mutex_unlock(&s->commit_mu);
		}
	}
	g->n = 0;
	g->moved_bytes = 0;
	return err;
}

void hl_local_stop_compaction(hl_local *s)
{
	atomic_store(&s->compact_stop, 1);
}

/* Waits until bytes moved since t0 (hl_now_ns) fit within rate bytes per second (0: unpaced),
 * in slices of at most 100 ms, and not once the store asks compactions to stop. */
static void pace(hl_local *s, uint64_t t0, uint64_t bytes, uint64_t rate)
{
	uint64_t due = hl_pace_due(t0, bytes, rate), now;
	while (!atomic_load(&s->compact_stop) && due > (now = hl_now_ns())) {
		uint64_t ms = (due - now + 999999) / 1000000;
		hl_sleep_ms(ms < 100 ? ms : 100);
	}
}

static int compact(hl_local *s, double below, repack *rp, uint64_t rate, hl_compact_report *rep)
{
	uint64_t t0 = hl_now_ns();
	hl_obj_entry *v;
	size_t n;
	/* the active segment as it was before the listing: every older one is complete in it */
	pthread_mutex_lock(&s->commit_mu);
	uint32_t active = s->segs.active;
	pthread_mutex_unlock(&s->commit_mu);
	int err = hl_local_entries(s, &v, &n);
	if (err)
		return err;
	if ((err = roll_if_wanted(s, rp, &v, &n, below, &active)) != 0 ||
	    (rp && (err = hl_st_repack_scan(s, rp, v, n)) != 0)) {
		free(v);
		return err;
	}
	qsort(v, n, sizeof(*v), cmp_entry_place);
	uint32_t *segs;
	size_t nsegs;
	if ((err = hl_segs_list(&s->segs, &segs, &nsegs)) != 0) {
		free(v);
		return err;
	}
	size_t at = 0;
	compact_group g = {.picked = hl_malloc((nsegs ? nsegs : 1) * sizeof(*g.picked))};
	err = g.picked ? 0 : ENOMEM;
	for (size_t i = 0; i < nsegs && !err; i++) {
		uint32_t seg = segs[i];
		uint64_t size, live = 0;
		int wanted = 0;
		while (at < n && v[at].e.segment < seg)
			at++;
		size_t first = at;
		for (; at < n && v[at].e.segment == seg; at++) {
			live += HL_REC_HDR_LEN + v[at].e.stored_len;
			wanted |= hl_st_repack_wants(rp, &v[at].e);
		}
		if (seg >= active || hl_segs_size(&s->segs, seg, &size))
			continue;
		rep->segments_seen++;
		if ((double)live >= below * (double)size && !wanted)
			continue;
		size_t j = first;
		while (j < at && !err && !atomic_load(&s->compact_stop)) { /* the live records, in batches */
			size_t b = j;
			uint64_t bytes = 0;
			while (b < at && b - j < RELOCATE_BATCH && bytes < RELOCATE_BYTES)
				bytes += v[b++].e.raw_len;
			err = relocate(s, rp, v + j, b - j, &rep->records_moved);
			rep->bytes_moved += bytes;
			g.moved_bytes += bytes;
			j = b;
			pace(s, t0, rep->bytes_moved, rate);
		}
		if (j < at) /* stopped inside it (the store closes): it stays; what moved is moved */
			break;
		g.picked[g.n++] = (compact_seg){seg, size, first, at};
		if (!err && (g.n >= GROUP_SEGMENTS || g.moved_bytes >= GROUP_BYTES))
			err = finish_group(s, v, &g, rep);
	}
	if (!err)
		err = finish_group(s, v, &g, rep);
	free(v);
	free(segs);
	free(g.picked);
	return hl_st_sys_err(err);
}

/* Caller holds the collection (hl_local_gc_begin). */
int hl_local_compact(hl_local *s, double below, int repack_level, unsigned repack_threads,
                     uint64_t rate, hl_compact_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	if (s->opt.read_only)
		return HL_READONLY;
	if (repack_level < 0 || repack_level > ZSTD_maxCLevel())
		return HL_INVALID;
	repack *rp = NULL;
	int err = repack_level ? hl_st_repack_begin(s, repack_level, repack_threads, &rp) : 0;
	if (err)
		return err;
	err = compact(s, below, rp, rate, rep);
	hl_st_repack_end(s, rp, rep);
	return err;
}
