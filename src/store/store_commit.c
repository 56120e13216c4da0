/* store_commit.c — the store's write side: preparing records (hash, compress), the group commit
 * that appends and syncs them, the sticky sync error, access-time refreshes and held finds.
 * Lock order: store_int.h. */
#include "store/store_int.h"

/* ---------- write path ---------- */

void hl_st_prep_free(prep *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].zbuf);
	free(p);
}

/* Hashes or verifies each item and compresses what shrinks; nothing is queued on failure. */
int hl_st_prepare(hl_local *s, hl_put_item *items, size_t n, int ids_trusted, prep **out,
                  uint64_t *bytes)
{
	prep *p = hl_calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return ENOMEM;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		hl_put_item *it = &items[i];
		if (!it->data && it->len)
			return hl_st_prep_free(p, n), HL_INVALID;
		if (it->len > s->opt.max_object_size)
			return hl_st_prep_free(p, n), HL_TOOBIG;
		if (!ids_trusted) {
			hl_id id;
			hl_hash(it->data, it->len, &id);
			if (it->check_id && !hl_id_equal(&id, &it->id))
				return hl_st_prep_free(p, n), HL_MISMATCH;
			it->id = id;
		}
		it->created = 0;
		p[i].item = it;
		p[i].flags = hl_rec_links_magic(it->data, it->len) ? HL_REC_F_LINKS : 0;
		p[i].payload = it->data;
		p[i].payload_len = it->len;
		total += HL_REC_HDR_LEN + it->len;
	}
	*out = p;
	*bytes = total;
	return 0;
}

/* Whether data looks worth handing to zstd: the byte-coincidence index of a sample (the sum of
 * squared byte counts, which is about n²/256 + n for random bytes and several times that for text,
 * code or structured data). Random and already-compressed data are then stored raw without a
 * compression attempt. Data whose only redundancy is long-range repetition of random blocks is
 * missed; deduplication is the tool for that. */
static int looks_compressible(const uint8_t *d, size_t len)
{
	enum { WINDOWS = 16, WINDOW = 64 };
	uint32_t count[256] = {0};
	size_t n = 0;
	if (len <= WINDOWS * WINDOW) {
		for (size_t i = 0; i < len; i++)
			count[d[i]]++;
		n = len;
	} else {
		size_t step = (len - WINDOW) / (WINDOWS - 1);
		for (size_t w = 0; w < WINDOWS; w++)
			for (size_t i = 0; i < WINDOW; i++)
				count[d[w * step + i]]++;
		n = WINDOWS * WINDOW;
	}
	uint64_t sq = 0;
	for (int b = 0; b < 256; b++)
		sq += (uint64_t)count[b] * count[b];
	uint64_t uniform = (uint64_t)n * n / 256 + n;
	return sq * 10 > uniform * 13; /* more than 1.3× the coincidences of random bytes */
}

static int level_of(const hl_local *s, const prep *p)
{
	return p->level ? p->level : s->opt.compress_level;
}

/* Compresses records that shrink; called for records that will really be written. */
void hl_st_maybe_compress(hl_local *s, prep *p)
{
	size_t len = p->item->len;
	if (level_of(s, p) <= 0 || len < COMPRESS_MIN || len > COMPRESS_MAX ||
	    !looks_compressible(p->item->data, len))
		return;
	ZSTD_CCtx *c = hl_st_thread_cctx();
	size_t bound = ZSTD_compressBound(len);
	void *z = c ? hl_malloc(bound) : NULL;
	if (!z)
		return;
	size_t r = ZSTD_compressCCtx(c, z, bound, p->item->data, len, level_of(s, p));
	if (ZSTD_isError(r) || r >= len - len / 32) { /* keep raw unless it saves > 3% */
		free(z);
		return;
	}
	p->zbuf = z;
	p->payload = z;
	p->payload_len = r;
	p->flags |= HL_REC_F_ZSTD;
}

/* A candidate delta: the payload (prefix and frame) against base at depth, or NULL. */
typedef struct delta_try {
	uint8_t *buf;
	size_t len;
	hl_id base, base_of_base; /* base_of_base: zero when the base is no delta */
	unsigned depth;
	prep *in_batch; /* the base is this earlier record of the batch */
	hl_idx_entry base_at; /* else the base's entry as it was read */
} delta_try;

/* Encodes data[0..len) against base_data[0..base_len) (the bytes of base, a delta at depth - 1 or
 * a whole object when depth is 1) at zstd level into t; t->buf stays NULL when zstd fails. */
static void delta_encode_bytes(int level, const hl_id *base, const void *base_data, size_t base_len,
                               unsigned depth, const void *data, size_t len, delta_try *t)
{
	ZSTD_CCtx *c = hl_st_thread_cctx();
	size_t cap = HL_DELTA_PREFIX_LEN + ZSTD_compressBound(len);
	uint8_t *out = c ? hl_malloc(cap) : NULL;
	unsigned wlog = 10;
	while (((uint64_t)1 << wlog) < base_len + len)
		wlog++;
	size_t r = out ? ZSTD_CCtx_setParameter(c, ZSTD_c_compressionLevel, level) : 0;
	if (out && !ZSTD_isError(r))
		r = ZSTD_CCtx_setParameter(c, ZSTD_c_windowLog, (int)wlog);
	if (out && !ZSTD_isError(r))
		r = ZSTD_CCtx_refPrefix(c, base_data, base_len);
	if (out && !ZSTD_isError(r))
		r = ZSTD_compress2(c, out + HL_DELTA_PREFIX_LEN, cap - HL_DELTA_PREFIX_LEN, data, len);
	if (c)
		ZSTD_CCtx_reset(c, ZSTD_reset_session_and_parameters);
	if (!out || ZSTD_isError(r)) {
		free(out);
		return;
	}
	hl_delta_prefix d = {*base, {0}, (uint8_t)depth};
	hl_delta_prefix_encode(&d, out); /* the check field zero, then the check over it all */
	hl_delta_check(out, HL_DELTA_PREFIX_LEN + r, d.check);
	hl_delta_prefix_encode(&d, out);
	t->buf = out;
	t->len = HL_DELTA_PREFIX_LEN + r;
	t->base = *base;
	t->depth = depth;
}

/* Whether a base of base_len bytes may carry an object of len: both fit zstd's window, and the
 * base is not so much larger that reading the object costs several reads of its size (a read
 * decodes the base first): at most 4 times the object and 4 KiB. */
static int base_fits(uint64_t base_len, size_t len)
{
	return base_len + len <= ((uint64_t)1 << HL_DELTA_WINDOW_LOG_MAX) &&
	       base_len <= 4 * (uint64_t)len + (4u << 10);
}

/* The record of this batch, before p, that writes base (absent from the store when the batch was
 * prepared), or NULL. */
static prep *earlier_in_batch(prep *first, prep *p, const hl_id *base)
{
	for (prep *q = first; q < p; q++)
		if (q->fresh && hl_id_equal(&q->item->id, base))
			return q;
	return NULL;
}

/* Encodes p's object against base into t (t->buf NULL when the base is not there or cannot be
 * read, the two do not fit the window, the chain would pass HL_DELTA_MAX_DEPTH, or zstd fails).
 * The base is a stored object or, with first, an earlier record of p's batch (t->in_batch).
 * A writer relies on a stored base (held and its access time refreshed); compaction moving a
 * delta does not (the collection keeps its base). */
static void delta_encode(hl_local *s, prep *first, prep *p, const hl_id *base, delta_try *t)
{
	memset(t, 0, sizeof *t);
	const void *data = p->item->data;
	size_t len = p->item->len;
	hl_idx_entry be;
	int err = hl_st_find_entry(s, NULL, base, &be);
	prep *q = err == HL_NOTFOUND && first ? earlier_in_batch(first, p, base) : NULL;
	if (q) { /* its bytes are at hand; it is written before p, in the same group */
		unsigned depth = (q->flags & HL_REC_F_DELTA) ? q->depth + 1u : 1u;
		if (depth > HL_DELTA_MAX_DEPTH || !base_fits(q->item->len, len))
			return;
		if (q->flags & HL_REC_F_DELTA)
			t->base_of_base = q->delta_base;
		t->in_batch = q;
		delta_encode_bytes(level_of(s, p), base, q->item->data, q->item->len, depth, data, len, t);
		return;
	}
	if (err || !base_fits(be.raw_len, len) || (!p->moving && hl_st_rely_on(s, base, &be)))
		return;
	unsigned depth;
	if (hl_st_delta_base(s, base, &be, &t->base_of_base, &depth) == HL_NOTFOUND)
		depth = 0;
	else if (depth == 0)
		return; /* its own bytes are bad: no base */
	if (++depth > HL_DELTA_MAX_DEPTH)
		return;
	hl_buf *b;
	if (hl_st_read_object(s, base, &b))
		return;
	delta_encode_bytes(level_of(s, p), base, hl_buf_data(b), hl_buf_len(b), depth, data, len, t);
	hl_buf_unref(b);
	t->base_at = be;
}

static const hl_id zero_id;

/* Whether p, compressed or raw, becomes a delta against base (or, when base is itself a delta,
 * against base's base if that is no larger: chains stay short): kept only when it saves a quarter
 * of the plain payload (an eighth for a repacked record). */
static int try_delta(hl_local *s, prep *first, prep *p, const hl_id *base)
{
	size_t len = p->item->len;
	if (hl_id_equal(base, &p->item->id))
		return 0;
	delta_try t, u;
	delta_encode(s, first, p, base, &t);
	if (!hl_id_equal(&t.base_of_base, &zero_id) && !hl_id_equal(&t.base_of_base, &p->item->id)) {
		delta_encode(s, first, p, &t.base_of_base, &u); /* shallower */
		if (u.buf && (!t.buf || u.len <= t.len)) {
			free(t.buf);
			t = u;
		} else {
			free(u.buf);
		}
	}
	if (!t.buf)
		return 0;
	/* not worth a read through a base unless it saves a quarter of the plain payload (zstd's, or
	 * the raw bytes), or an eighth for a repacked record (old data: density weighs more) */
	size_t plain = p->payload_len;
	if (t.len >= len || t.len > plain - plain / ((p->marks & HL_IDX_MARK_LEVEL) ? 8 : 4)) {
		free(t.buf);
		return 0;
	}
	free(p->zbuf);
	p->zbuf = t.buf;
	p->payload = t.buf;
	p->payload_len = t.len;
	p->flags = (uint16_t)((p->flags & ~HL_REC_F_ZSTD) | HL_REC_F_DELTA);
	p->depth = (uint8_t)t.depth;
	p->delta_base = t.base;
	p->base_rec = t.in_batch;
	p->base_at = t.base_at;
	return 1;
}

static int deltas_wanted(const hl_local *s, const prep *p)
{
	return level_of(s, p) > 0 && p->item->len >= COMPRESS_MIN && p->item->len <= COMPRESS_MAX;
}

void hl_st_compress_against(hl_local *s, prep *p, const hl_id *base, const hl_id *other)
{
	hl_st_maybe_compress(s, p);
	if (!deltas_wanted(s, p)) /* no compression asked for: no deltas either */
		return;
	if (base)
		try_delta(s, NULL, p, base);
	if (other)
		try_delta(s, NULL, p, other);
}

/* Tries the candidates found by similarity for p: the stored object (g) and the earlier record
 * of its batch (l) sharing the most features, the one sharing more first. */
static void delta_by_sketch(hl_local *s, prep *first, prep *p, const hl_sketch *sk,
                            hl_sketch_index *batch)
{
	hl_id g, l;
	unsigned gv = 0, lv = 0;
	int gf = hl_sketch_index_find(&s->sketches, sk, &p->item->id, &g, &gv) == 0;
	int lf = hl_sketch_index_find(batch, sk, &p->item->id, &l, &lv) == 0;
	if (lf && (!gf || lv >= gv)) {
		if (!try_delta(s, first, p, &l) && gf)
			try_delta(s, first, p, &g);
	} else if (gf && !try_delta(s, first, p, &g) && lf) {
		try_delta(s, first, p, &l);
	}
}

/* A new record of a put that names bases (the snapshot path), p within its batch from first:
 * compressed, then a delta against its named base if that pays, else against an object most like
 * it (sketch.h): a recent stored one, or an earlier record of the batch. *sk is its sketch (n 0:
 * none), added to the batch's index here and to the store's once it is stored. */
static void compress_like(hl_local *s, prep *first, prep *p, const hl_id *base, hl_sketch *sk,
                          hl_sketch_index *batch)
{
	hl_st_maybe_compress(s, p);
	p->fresh = 1;
	if (!deltas_wanted(s, p))
		return; /* (*sk stays empty) */
	(void)hl_sketch_of(p->item->data, p->item->len, sk); /* (n 0 when it has none) */
	if (!(base && try_delta(s, first, p, base)) && sk->n)
		delta_by_sketch(s, first, p, sk, batch);
	if (sk->n)
		hl_sketch_index_add(batch, sk, &p->item->id);
}

typedef struct idset {
	const hl_id **slot;
	size_t mask;
} idset;

static int idset_add(idset *set, const hl_id *id)
{
	for (size_t i = hl_le64(id->b) & set->mask;; i = (i + 1) & set->mask) {
		if (!set->slot[i]) {
			set->slot[i] = id;
			return 1;
		}
		if (hl_id_equal(set->slot[i], id))
			return 0;
	}
}

/* Whether the stored base at e is no deeper than p's depth allows: true unless the base moved
 * since p was encoded against it (at p->base_at) and is now a delta as deep as p (a repack gave
 * it a base meanwhile). Reads the base's prefix only when it moved. */
static int base_depth_kept(hl_local *s, const prep *p, const hl_idx_entry *e)
{
	hl_id b;
	unsigned depth;
	if (hl_st_same_place(e, &p->base_at) || !(e->flags & HL_REC_F_DELTA))
		return 1;
	return hl_st_delta_base(s, &p->delta_base, e, &b, &depth) == 0 && depth < p->depth;
}

/* A delta's base must outlive it, and no chain may grow deeper than its deltas say. Under
 * commit_mu, which a collection's deletion takes too: a base still stored is held for a running
 * collection (so it is marked before anything more is deleted), and one deleted since the delta
 * was encoded (a collection that began after the encoder found it) is replaced by the object's
 * own bytes, stored raw. So is a delta whose base a repack re-based since (deeper now, or in this
 * group: `rebasing`), and an object a repack re-based that a delta named meanwhile (s->named).
 * Every base kept is added to s->named while a repack runs. 0 or an error. */
static int keep_base(hl_local *s, prep *p, hl_idmap *rebasing)
{
	hl_delta_prefix d;
	hl_idx_entry e;
	int held, err = hl_delta_prefix_decode(p->payload, p->payload_len, &d); /* delta_encode's */
	if (!err)
		err = hl_st_find_entry(s, NULL, &d.base, &e);
	if (err && err != HL_NOTFOUND)
		return err; /* an index error, or (never) a prefix that does not decode */
	/* a base of the batch stored by someone else first, or written by another record of the
	 * group, may be a deeper delta than the one p was encoded against */
	int keep = err == 0 ? !hl_idmap_get(rebasing, &d.base, NULL) && base_depth_kept(s, p, &e)
	                    : p->base_rec && p->base_rec->write; /* written first, in this group */
	if (keep && p->rebased) /* (noted in rebasing, or whole) */
		keep = !s->named_lost && !(s->named && hl_idmap_get(s->named, &p->item->id, NULL)) &&
		       hl_idmap_put(rebasing, &p->item->id, 1) >= 0;
	if (!keep) {
		p->payload = p->item->data;
		p->payload_len = p->item->len;
		p->flags &= (uint16_t)~HL_REC_F_DELTA;
		p->marks = 0; /* (a repack's copy: the next one tries again) */
		return 0;
	}
	if (s->named && hl_idmap_put(s->named, &d.base, 1) < 0)
		s->named_lost = 1;
	if (err == 0 && !p->moving)
		return hl_st_hold(s, &d.base, e.atime, &held);
	return 0; /* a compaction copy: its collection marked the base (and keeps its age) */
}

static void encode_header(prep *p)
{
	hl_rec_hdr h = {HL_REC_VERSION, HL_HASHFN_BLAKE3_256, p->flags, p->item->id, p->payload_len,
	                p->item->len};
	hl_rec_encode(&h, p->hdr);
}

/* Accumulates iovecs of consecutive records of one segment and writes them in one call. */
typedef struct writer {
	hl_local *s;
	uint32_t segno;
	uint64_t off;  /* where iov starts */
	struct iovec iov[128];
	int n;
} writer;

static int writer_flush(writer *w)
{
	if (!w->n)
		return 0;
	int fd, err = hl_segs_hold(&w->s->segs, w->segno, &fd);
	if (!err) {
		err = hl_io_pwritev_full(fd, w->iov, w->n, w->off);
		hl_segs_release(&w->s->segs, w->segno);
	}
	w->n = 0;
	return err;
}

static int writer_add(writer *w, uint32_t segno, uint64_t off, prep *p)
{
	uint64_t end = w->off;
	for (int i = 0; i < w->n; i++)
		end += w->iov[i].iov_len;
	if (w->n && (segno != w->segno || off != end || w->n + 2 > 128)) {
		int err = writer_flush(w);
		if (err)
			return err;
	}
	if (!w->n) {
		w->segno = segno;
		w->off = off;
	}
	w->iov[w->n++] = (struct iovec){p->hdr, HL_REC_HDR_LEN};
	w->iov[w->n++] = (struct iovec){(void *)p->payload, p->payload_len};
	return 0;
}

/* fdatasyncs segments lo..hi (lo 0: nothing to do). */
static int sync_range(hl_local *s, uint32_t lo, uint32_t hi)
{
	int err = 0;
	uint64_t t0 = hl_now_ns();
	for (uint32_t seg = lo; seg && seg <= hi && !err; seg++) {
		int fd;
		err = hl_segs_hold(&s->segs, seg, &fd);
		if (err == ENOENT) {
			err = 0;
		} else if (!err) {
			err = hl_io_datasync(fd);
			hl_segs_release(&s->segs, seg);
		}
	}
	atomic_fetch_add(&s->syncs, 1);
	atomic_fetch_add(&s->sync_ns, hl_now_ns() - t0);
	return err;
}

/* After a failed sync the kernel may have dropped the dirty pages: writes fail until a reopen
 * re-validates the tail. commit_mu held. */
void hl_st_set_write_err(hl_local *s, int err)
{
	if (!s->write_err) {
		__atomic_store_n(&s->write_err, err, __ATOMIC_RELEASE);
		hl_log(HL_LOG_ERROR, "sync failed (%s); writes disabled until the store is reopened",
		       hl_strerror(err));
	}
}

/* Objects committed to segments but not to the index (tot is changed under commit_mu, ptot under
 * flush_mu: both are taken, in their order). */
uint64_t hl_st_unindexed(hl_local *s)
{
	if (s->opt.read_only)
		return s->tot.objects - s->ptot.objects;
	pthread_mutex_lock(&s->flush_mu);
	pthread_mutex_lock(&s->commit_mu);
	uint64_t n = s->tot.objects - s->ptot.objects;
	pthread_mutex_unlock(&s->commit_mu);
	pthread_mutex_unlock(&s->flush_mu);
	return n;
}

/* Syncs every segment written since the last sync, holding commit_mu throughout. */
int hl_st_sync_locked(hl_local *s)
{
	if (!s->dirty_lo)
		return s->write_err ? HL_STOPPED : 0;
	int err = sync_range(s, s->dirty_lo, s->segs.active);
	if (!err)
		s->dirty_lo = 0;
	else
		hl_st_set_write_err(s, err);
	return err;
}

/* Syncs what has been written so far without holding commit_mu during the fdatasync, so writers
 * keep going; whatever they write meanwhile is left for the next sync. */
int hl_st_sync_unlocked(hl_local *s)
{
	pthread_mutex_lock(&s->commit_mu);
	uint32_t lo = s->dirty_lo, hi = s->segs.active;
	int err = s->write_err ? HL_STOPPED : 0;
	if (!err)
		s->dirty_lo = 0;
	pthread_mutex_unlock(&s->commit_mu);
	if (err || !lo)
		return err;
	if ((err = sync_range(s, lo, hi)) != 0) {
		pthread_mutex_lock(&s->commit_mu);
		hl_st_set_write_err(s, err);
		pthread_mutex_unlock(&s->commit_mu);
	}
	return err;
}

/* The access-time refreshes queued so far move to touches_spare (flush_mu held), before the
 * index transaction begins: touch_mu is never taken inside one. */
void hl_st_take_touches(hl_local *s)
{
	pthread_mutex_lock(&s->touch_mu);
	if (!s->touches_spare.n) {
		idvec tv = s->touches;
		s->touches = s->touches_spare;
		s->touches_spare = tv;
	} else { /* left over from a failed flush */
		idvec *t = &s->touches;
		while (t->n && idvec_push(&s->touches_spare, &t->v[t->n - 1]) == 0)
			t->n--;
	}
	pthread_mutex_unlock(&s->touch_mu);
}

/* After a failed flush: the refreshes taken go back in the queue (none is ever dropped; on no
 * memory, those that do not fit wait in the spare list for the next flush). */
void hl_st_return_touches(hl_local *s)
{
	idvec *sp = &s->touches_spare;
	pthread_mutex_lock(&s->touch_mu);
	while (sp->n && idvec_push(&s->touches, &sp->v[sp->n - 1]) == 0)
		sp->n--;
	pthread_mutex_unlock(&s->touch_mu);
}

/* Applies the refreshes taken by take_touches in txn, to access time now. */
void hl_st_apply_touches(hl_local *s, MDB_txn *txn, uint64_t now)
{
	hl_id *t = s->touches_spare.v;
	size_t n = s->touches_spare.n;
	for (size_t i = 0; i < n; i++) {
		hl_idx_entry e;
		if (hl_idx_get(txn, s->ix.obj, &t[i], &e) == 0 && e.atime < now) {
			e.atime = now;
			hl_idx_put(txn, s->ix.obj, &t[i], &e);
		}
	}
}


/* ---------- group commit ---------- */

/* Ids already claimed by earlier records of the group being written (open addressing). */
/* Writes one group: records appended, synced (sync=always), entries published in the active
 * table. commit_mu held, and the active table has room for every record. On failure nothing of
 * the group is visible and the append position is restored. */
static int commit_group_locked(hl_local *s, creq *group, size_t nrecs)
{
	if (s->write_err)
		return HL_STOPPED;
	size_t cap = 16;
	while (cap < nrecs * 2)
		cap *= 2;
	idset set = {hl_calloc(cap, sizeof(hl_id *)), cap - 1};
	hl_idmap rebasing = {0}; /* records a repack re-bases in this group (allocated only then) */
	int err = set.slot ? 0 : ENOMEM;
	/* Which records to write: not claimed by an earlier record of the group, not present. The
	 * read transaction starts under gen_lock, so an entry is either still in a memtable or already
	 * in the snapshot (a flush that commits in between is not missed). Only commits add entries,
	 * and this thread holds commit_mu, so the answers stay true while the group is written. */
	if (!err) {
		MDB_txn *txn = NULL; /* begun when LMDB must be read (the table in memory not ready) */
		pthread_rwlock_rdlock(&s->gen_lock);
		for (creq *r = group; r && !err; r = r->next) {
			for (size_t i = 0; i < r->n && !err; i++) {
				prep *p = &r->recs[i];
				hl_idx_entry e;
				p->item->created = 0;
				p->write = 0;
				if (p->moving) { /* a compaction copy: written while its entry is current */
					err = hl_st_find_in_memory_locked(s, &p->item->id, &e);
					if (err == HL_NOTFOUND)
						err = hl_st_find_committed(s, &txn, &p->item->id, &e);
					p->write = err == 0 && hl_st_same_place(&e, p->moving);
					if (err == HL_NOTFOUND)
						err = 0;
					continue;
				}
				if (!idset_add(&set, &p->item->id))
					continue; /* an earlier record of this group stores it */
				err = hl_st_find_in_memory_locked(s, &p->item->id, &e);
				if (err == HL_NOTFOUND)
					err = hl_st_find_committed(s, &txn, &p->item->id, &e);
				p->write = err == HL_NOTFOUND;
				if (err == 0 || err == HL_NOTFOUND)
					err = 0;
			}
		}
		if (txn)
			hl_idx_read_end(&s->ix, txn);
		pthread_rwlock_unlock(&s->gen_lock);
	}
	for (creq *r = group; r && !err; r = r->next)
		for (size_t i = 0; i < r->n && !err; i++)
			if (r->recs[i].write && (r->recs[i].flags & HL_REC_F_DELTA))
				err = keep_base(s, &r->recs[i], &rebasing);
	uint32_t old_active = s->segs.active;
	uint64_t old_tail = s->segs.tail;
	uint64_t now = hl_wall_s();
	writer w = {.s = s};
	size_t written = 0;
	for (creq *r = group; r && !err; r = r->next) {
		for (size_t i = 0; i < r->n && !err; i++) {
			prep *p = &r->recs[i];
			if (!p->write)
				continue;
			encode_header(p);
			uint32_t was = s->segs.active;
			if ((err = hl_segs_reserve(&s->segs, HL_REC_HDR_LEN + p->payload_len, &p->segno, &p->off)))
				break;
			/* Rolling to a new segment: what went to the last one (this group's records, and
			 * under sync=batch earlier groups') is made durable before anything is written
			 * into the new one, so a crash never keeps records of the new segment while losing
			 * those before them — a delta without its base, a manifest without its chunks,
			 * which the replay would take (it reads each segment up to its first torn record)
			 * and no read could resolve. */
			if (was && p->segno != was && s->opt.sync != HL_SYNC_NONE) {
				if (!(err = writer_flush(&w)) && (err = sync_range(s, was, was)) != 0)
					hl_st_set_write_err(s, err); /* as any failed sync */
				if (err)
					break;
			}
			if ((err = writer_add(&w, p->segno, p->off, p)))
				break;
			if (!s->dirty_lo || p->segno < s->dirty_lo)
				s->dirty_lo = p->segno;
			p->item->created = 1;
			written += !p->moving;
		}
	}
	free(set.slot);
	hl_idmap_free(&rebasing);
	if (!err)
		err = writer_flush(&w);
	if (!err && s->dirty_lo && s->opt.sync == HL_SYNC_ALWAYS)
		err = hl_st_sync_locked(s);
	if (err) {
		for (creq *r = group; r; r = r->next)
			for (size_t i = 0; i < r->n; i++)
				r->recs[i].item->created = 0;
		if (s->segs.sync_err)
			hl_st_set_write_err(s, s->segs.sync_err); /* a new segment's sync failed: stop too */
		/* Bytes past the old tail are unindexed; the next group overwrites them. */
		s->segs.active = old_active;
		s->segs.tail = old_tail;
		return hl_st_sys_err(err);
	}
	for (creq *r = group; r; r = r->next) {
		for (size_t i = 0; i < r->n; i++) {
			prep *p = &r->recs[i];
			if (!p->item->created)
				continue;
			hl_idx_entry e = {p->segno, p->off, p->payload_len, p->item->len, p->flags, p->marks, now};
			if (p->moving) {
				e.atime = p->moving->atime; /* moving a record does not make it young */
				hl_st_totals_add(&s->tot, p->moving, -1);
			}
			hl_memtab_put(s->active, &p->item->id, &e); /* room was ensured by the caller */
			hl_st_totals_add(&s->tot, &e, 1);
		}
	}
	if (written) {
		atomic_fetch_add(&s->commits, 1);
		atomic_fetch_add(&s->puts_new, written);
		if (hl_memtab_room(s->active) < hl_memtab_used(s->active))
			hl_st_wake_flusher(s); /* half full */
	}
	return 0;
}

/* Queues req and returns once a leader (maybe this thread) has committed it. */
int hl_st_commit(hl_local *s, creq *req)
{
	pthread_mutex_lock(&s->q_mu);
	req->next = NULL;
	if (s->q_tail)
		s->q_tail->next = req;
	else
		s->q_head = req;
	s->q_tail = req;
	while (!req->done && s->q_head != req)
		pthread_cond_wait(&req->cv, &s->q_mu);
	if (req->done) {
		pthread_mutex_unlock(&s->q_mu);
		return req->status;
	}
	pthread_mutex_unlock(&s->q_mu);
	/* Leader: wait for the previous group to finish and for room in the active table, then take
	 * everything queued by now (within bounds) as this group. Callers that arrive meanwhile form
	 * the next group. */
	for (;;) {
		pthread_mutex_lock(&s->commit_mu);
		if (s->write_err || hl_memtab_room(s->active) >= req->n)
			break;
		pthread_mutex_unlock(&s->commit_mu);
		int err = hl_st_flush_index(s);
		if (err) {
			pthread_mutex_lock(&s->commit_mu);
			if (hl_memtab_room(s->active) >= req->n)
				break;
			pthread_mutex_unlock(&s->commit_mu);
			pthread_mutex_lock(&s->q_mu);
			s->q_head = req->next;
			if (!s->q_head)
				s->q_tail = NULL;
			else
				pthread_cond_signal(&s->q_head->cv);
			pthread_mutex_unlock(&s->q_mu);
			return err;
		}
	}
	pthread_mutex_lock(&s->q_mu);
	creq *last = req;
	uint64_t bytes = req->bytes;
	size_t nrecs = req->n;
	while (last->next && bytes + last->next->bytes <= GROUP_MAX_BYTES &&
	       nrecs + last->next->n <= hl_memtab_room(s->active)) {
		last = last->next;
		bytes += last->bytes;
		nrecs += last->n;
	}
	s->q_head = last->next;
	if (!s->q_head)
		s->q_tail = NULL;
	last->next = NULL;
	pthread_mutex_unlock(&s->q_mu);

	int status = commit_group_locked(s, req, nrecs);

	/* Wake this group's callers, and the next leader only now that commit_mu is about to be
	 * free, so it sleeps once rather than twice. */
	pthread_mutex_lock(&s->q_mu);
	for (creq *r = req->next; r; r = r->next) {
		r->status = status;
		r->done = 1;
		pthread_cond_signal(&r->cv);
	}
	if (s->q_head)
		pthread_cond_signal(&s->q_head->cv);
	pthread_mutex_unlock(&s->q_mu);
	pthread_mutex_unlock(&s->commit_mu);
	return status;
}

/* A caller found id present and will rely on it (not store it, link it from a tree or a ref):
 * its access time is refreshed at the next index flush, and while a collection runs it is also
 * held, which the collector honours before it deletes anything (under touch_mu, which deletion
 * holds across its commit). *held = 1: held, so the caller must look again (the object may have
 * been deleted just before); 0: only touched. 0 or ENOMEM: nothing is ever dropped. */
int hl_st_hold(hl_local *s, const hl_id *id, uint64_t atime, int *held)
{
	pthread_mutex_lock(&s->touch_mu);
	int err = idvec_push(&s->touches, id);
	/* an object younger than the cutoff is no candidate (access times only grow) */
	*held = atomic_load(&s->gc_active) && atime <= atomic_load(&s->gc_cutoff);
	if (!err && *held && (err = idvec_room(&s->held, s->held.n + 1 + s->pins_units)) == 0)
		s->held.v[s->held.n++] = *id; /* (the room kept for unpins stays) */
	pthread_mutex_unlock(&s->touch_mu);
	return err;
}

/* Whether a caller that found entry e must hold it: its access time is stale, or a collection
 * is running (which may take even a fresh object when its grace period is short). */
static int needs_hold(hl_local *s, const hl_idx_entry *e, uint64_t now)
{
	return e->atime + s->touch_age < now ||
	       (atomic_load(&s->gc_active) && e->atime <= atomic_load(&s->gc_cutoff));
}

/* Found present and relied on: hold it, and look again when a collection is running.
 * 0 present, HL_NOTFOUND, or an error. */
int hl_st_rely_on(hl_local *s, const hl_id *id, const hl_idx_entry *e)
{
	if (!needs_hold(s, e, hl_wall_s()))
		return 0;
	int held, err = hl_st_hold(s, id, e->atime, &held);
	if (err || !held)
		return err;
	hl_idx_entry again;
	return hl_st_find_entry(s, NULL, id, &again); /* a fresh read: sees the collector's last commit */
}

static int put_batch(hl_local *s, hl_put_item *items, const hl_id *const *bases, size_t n,
                     int ids_trusted)
{
	if (s->opt.read_only)
		return HL_READONLY;
	if (n && !items)
		return HL_INVALID;
	if (n > BATCH_MAX)
		return HL_TOOBIG;
	prep *p;
	uint64_t bytes;
	int err = hl_st_prepare(s, items, n, ids_trusted, &p, &bytes);
	if (err)
		return err;
	atomic_fetch_add_explicit(&s->puts, n, memory_order_relaxed);
	/* Objects already present need no write (their access time is refreshed); the others are
	 * compressed here, in the caller's thread, so the leader only writes. If every object is
	 * present the call returns without queueing. */
	size_t present = 0;
	MDB_txn *txn;
	/* a put naming bases: each new object's sketch, and an index of the batch's */
	hl_sketch *sk = bases ? hl_calloc(n ? n : 1, sizeof(*sk)) : NULL;
	hl_sketch_index batch = {0};
	if (sk && n > 1) {
		unsigned log = 4;
		while (((size_t)1 << log) < n)
			log++;
		(void)hl_sketch_index_init(&batch, log, log + 7); /* (without: no bases within the batch) */
	}
	/* (the table in memory answers without LMDB when ready) */
	txn = NULL;
	err = s->loc && hl_loctab_ready(s->loc) ? 0 : hl_idx_read_begin(&s->ix, &txn);
	for (size_t i = 0; i < n; i++) {
		hl_idx_entry e;
		if (!err && hl_st_find_entry(s, txn, &items[i].id, &e) == 0 &&
		    hl_st_rely_on(s, &items[i].id, &e) == 0)
			present++;
		else if (sk) /* absent, or gone under a collection: written */
			compress_like(s, p, &p[i], bases[i], &sk[i], &batch);
		else
			hl_st_maybe_compress(s, &p[i]);
	}
	if (!err && txn)
		hl_idx_read_end(&s->ix, txn);
	hl_sketch_index_free(&batch);
	if (present < n) {
		creq req = {.recs = p, .n = n, .bytes = bytes};
		pthread_cond_init(&req.cv, NULL);
		err = hl_st_commit(s, &req);
		pthread_cond_destroy(&req.cv);
	}
	for (size_t i = 0; sk && !err && i < n; i++) /* stored: bases for later puts */
		if (sk[i].n && items[i].created)
			hl_sketch_index_add(&s->sketches, &sk[i], &items[i].id);
	free(sk);
	hl_st_prep_free(p, n);
	return err;
}

int hl_local_put_batch(hl_local *s, hl_put_item *items, size_t n)
{
	return put_batch(s, items, NULL, n, 0);
}

int hl_local_put_hashed(hl_local *s, hl_put_item *items, size_t n)
{
	return put_batch(s, items, NULL, n, 1);
}

int hl_local_put_like(hl_local *s, hl_put_item *items, const hl_id *const *bases, size_t n)
{
	return put_batch(s, items, bases, n, 1);
}

int hl_local_read_only(const hl_local *s)
{
	return s->opt.read_only;
}

int hl_local_stopped(hl_local *s)
{
	return s && __atomic_load_n(&s->write_err, __ATOMIC_ACQUIRE) != 0;
}

int hl_local_sync_mode(const hl_local *s)
{
	return s->opt.sync;
}

struct hl_index *hl_local_index(hl_local *s)
{
	return &s->ix;
}

int hl_local_sync(hl_local *s)
{
	if (s->opt.read_only)
		return 0;
	int err = hl_st_sync_unlocked(s);
	if (!err)
		err = hl_st_flush_index(s);
	if (!err)
		err = hl_idx_sync(&s->ix);
	if (err == HL_NOSPACE) { /* the segments are synced; only the index could not grow */
		uint64_t waiting = hl_st_unindexed(s);
		pthread_mutex_lock(&s->commit_mu);
		/* what was written meanwhile, too */
		err = s->dirty_lo ? hl_st_sync_locked(s) : s->write_err ? HL_STOPPED : 0;
		pthread_mutex_unlock(&s->commit_mu);
		if (!err)
			hl_log(HL_LOG_WARN, "the index cannot grow (no space left on device): %llu objects are "
			       "durable in the segment files and are indexed again when the store next opens",
			       (unsigned long long)waiting);
	}
	return hl_st_sys_err(err);
}
