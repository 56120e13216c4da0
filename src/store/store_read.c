/* store_read.c — the store's read side: reading and verifying a record, finding an entry (the
 * in-memory tables, then LMDB), gets, has, stat, quarantine.
 * Lock order: store_int.h. */
#include "store/store_int.h"

/* ---------- helpers ---------- */

int hl_st_sys_err(int e)
{
	return e == ENOSPC || e == EDQUOT ? HL_NOSPACE : e;
}

char *hl_st_path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = hl_malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", a, b);
	return p;
}

static pthread_key_t zkey_c, zkey_d;
static pthread_once_t zonce = PTHREAD_ONCE_INIT;
static void free_cctx(void *p) { ZSTD_freeCCtx(p); }
static void free_dctx(void *p) { ZSTD_freeDCtx(p); }
static void zkeys_init(void)
{
	pthread_key_create(&zkey_c, free_cctx);
	pthread_key_create(&zkey_d, free_dctx);
}
ZSTD_CCtx *hl_st_thread_cctx(void)
{
	pthread_once(&zonce, zkeys_init);
	ZSTD_CCtx *c = pthread_getspecific(zkey_c);
	if (!c && (c = ZSTD_createCCtx()) != NULL)
		pthread_setspecific(zkey_c, c);
	return c;
}
ZSTD_DCtx *hl_st_thread_dctx(void)
{
	pthread_once(&zonce, zkeys_init);
	ZSTD_DCtx *d = pthread_getspecific(zkey_d);
	if (!d && (d = ZSTD_createDCtx()) != NULL)
		pthread_setspecific(zkey_d, d);
	return d;
}

/* ---------- reading and verifying one record ---------- */

/* What the record at e holds: its header read and checked against e and id, its payload into
 * *payload (malloc'd; NULL when stored raw, then read into dst). HL_CORRUPT or an I/O error. */
static int read_stored(hl_local *s, const hl_id *id, const hl_idx_entry *e, uint8_t *dst,
                       uint8_t **payload)
{
	*payload = NULL;
	uint8_t hdr[HL_REC_HDR_LEN];
	struct iovec iov[2] = {{hdr, sizeof hdr}, {dst, e->raw_len}};
	if (e->flags & (HL_REC_F_ZSTD | HL_REC_F_DELTA)) {
		if (!(*payload = hl_malloc(e->stored_len ? e->stored_len : 1)))
			return ENOMEM;
		iov[1].iov_base = *payload;
		iov[1].iov_len = e->stored_len;
	}
	int fd, err = hl_segs_hold(&s->segs, e->segment, &fd);
	if (err == ENOENT)
		err = HL_CORRUPT; /* removed by compaction: the caller follows the moved entry */
	if (!err) {
		err = hl_io_preadv_full(fd, iov, 2, e->offset);
		hl_segs_release(&s->segs, e->segment);
	}
	if (err == HL_IO_SHORT)
		err = HL_CORRUPT;
	hl_rec_hdr h;
	if (!err && (err = hl_rec_decode(hdr, sizeof hdr, &h)) == 0) {
		if (!hl_id_equal(&h.id, id) || h.stored_len != e->stored_len || h.raw_len != e->raw_len ||
		    h.flags != e->flags)
			err = HL_CORRUPT;
	}
	if (err) {
		free(*payload);
		*payload = NULL;
	}
	return err;
}

/* A delta payload's prefix, checked with its frame (the record's own bytes, base unread). */
static int delta_prefix(const hl_id *id, const uint8_t *payload, uint64_t len, unsigned limit,
                        hl_delta_prefix *d)
{
	uint8_t check[16];
	if (hl_delta_prefix_decode(payload, (size_t)len, d) || d->depth > limit ||
	    hl_id_equal(&d->base, id))
		return HL_CORRUPT;
	hl_delta_check(payload, (size_t)len, check);
	return memcmp(check, d->check, sizeof check) ? HL_CORRUPT : 0;
}

static int read_record(hl_local *s, const hl_id *id, const hl_idx_entry *e, uint8_t *dst,
                       unsigned limit, hl_id *bad_base, int verify);

typedef struct base_fill {
	unsigned limit;
	int verify;
	hl_buf *out;
} base_fill;

static int fill_base(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	base_fill *f = ctx;
	hl_buf *b = hl_buf_alloc((size_t)e->raw_len);
	if (!b)
		return ENOMEM;
	int err = read_record(s, id, e, hl_buf_wdata(b), f->limit, NULL, f->verify);
	if (err)
		hl_buf_unref(b);
	else
		f->out = b;
	return err;
}

static int locate(hl_local *s, const hl_id *id, fill_fn fill, void *ctx);

/* The delta at e (payload read) resolved into dst: its base read (a chain at most limit deep),
 * the frame decompressed against it. verify: the base is verified, and read through a move or
 * quarantined as any read; DELTA_BASE_BAD (*bad_base set) when it cannot be produced: missing,
 * quarantined or corrupt. Unverified (the caller hashes the result, and on a mismatch resolves
 * again verified to learn which record is bad): read where the index says, or HL_CORRUPT. */
static int resolve_delta(hl_local *s, const hl_id *id, const hl_idx_entry *e, const uint8_t *payload,
                         uint8_t *dst, unsigned limit, hl_id *bad_base, int verify)
{
	hl_delta_prefix d;
	int err = delta_prefix(id, payload, e->stored_len, limit, &d);
	if (err)
		return err;
	base_fill f = {d.depth - 1, verify, NULL};
	hl_idx_entry be;
	if (!verify) {
		if ((err = hl_st_find_entry(s, NULL, &d.base, &be)) == 0)
			err = fill_base(s, &d.base, &be, &f);
		if (err)
			return err == ENOMEM ? err : HL_CORRUPT;
	} else if ((err = locate(s, &d.base, fill_base, &f)) != 0) {
		if (err != HL_CORRUPT && err != HL_NOTFOUND && err != HL_TOOBIG)
			return err;
		if (bad_base)
			*bad_base = d.base;
		return DELTA_BASE_BAD;
	}
	ZSTD_DCtx *dctx = hl_st_thread_dctx();
	if (!dctx) {
		hl_buf_unref(f.out);
		return ENOMEM;
	}
	size_t r = ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, HL_DELTA_WINDOW_LOG_MAX);
	if (!ZSTD_isError(r))
		r = ZSTD_DCtx_refPrefix(dctx, hl_buf_data(f.out), hl_buf_len(f.out));
	if (!ZSTD_isError(r))
		r = ZSTD_decompressDCtx(dctx, dst, e->raw_len, payload + HL_DELTA_PREFIX_LEN,
		                        e->stored_len - HL_DELTA_PREFIX_LEN);
	ZSTD_DCtx_reset(dctx, ZSTD_reset_session_and_parameters);
	hl_buf_unref(f.out);
	return ZSTD_isError(r) || r != e->raw_len ? HL_CORRUPT : 0;
}

/* Reads the record at e into dst (e->raw_len bytes) and verifies header and content against id
 * (unless !verify: the base of a delta read unverified, whose result its reader hashes); a delta
 * is resolved through its base (limit: how deep its chain may be) — first without verifying each
 * base (the result's hash covers them), then, when that fails, with. HL_CORRUPT for any mismatch
 * or missing bytes of this record; DELTA_BASE_BAD (see resolve_delta); a positive errno for an
 * I/O failure. */
static int read_record(hl_local *s, const hl_id *id, const hl_idx_entry *e, uint8_t *dst,
                       unsigned limit, hl_id *bad_base, int verify)
{
	uint8_t *payload;
	int err = read_stored(s, id, e, dst, &payload);
	if (!err && (e->flags & HL_REC_F_DELTA)) {
		err = resolve_delta(s, id, e, payload, dst, limit, bad_base, 0);
		if (!verify) {
			free(payload);
			return err;
		}
		hl_id got;
		if (!err && (hl_hash(dst, e->raw_len, &got), hl_id_equal(&got, id))) {
			free(payload);
			return 0;
		}
		if (err == 0 || err == HL_CORRUPT) /* something is bad: which record, verified reads say */
			err = resolve_delta(s, id, e, payload, dst, limit, bad_base, 1);
	} else if (!err && payload) {
		ZSTD_DCtx *dctx = hl_st_thread_dctx();
		size_t r = dctx ? ZSTD_decompressDCtx(dctx, dst, e->raw_len, payload, e->stored_len) : 0;
		if (!dctx)
			err = ENOMEM;
		else if (ZSTD_isError(r) || r != e->raw_len)
			err = HL_CORRUPT;
	}
	free(payload);
	if (!err && verify) {
		hl_id got;
		hl_hash(dst, e->raw_len, &got);
		if (!hl_id_equal(&got, id))
			err = HL_CORRUPT;
	}
	return err;
}

int hl_st_check_entry(hl_local *s, const hl_id *id, const hl_idx_entry *e, uint8_t *dst,
                      hl_id *bad_base)
{
	return read_record(s, id, e, dst, HL_DELTA_MAX_DEPTH, bad_base, 1);
}

int hl_st_delta_base(hl_local *s, const hl_id *id, const hl_idx_entry *e, hl_id *base,
                     unsigned *depth)
{
	*depth = 0;
	if (!(e->flags & HL_REC_F_DELTA))
		return HL_NOTFOUND;
	uint8_t *payload; /* a delta's payload is always read into its own buffer, never into dst */
	int err = read_stored(s, id, e, NULL, &payload);
	hl_delta_prefix d;
	if (!err && (err = delta_prefix(id, payload, e->stored_len, HL_DELTA_MAX_DEPTH, &d)) == 0) {
		*base = d.base;
		*depth = d.depth;
	}
	free(payload);
	return err;
}

/* Reads the record whose header starts at off of segment seg (fd, size bytes long): its header
 * into *h, its index entry into *e (access time now), its verified bytes into *buf, grown to *cap
 * (a delta record: only its own bytes are checked, against its check; *buf is not filled).
 * HL_INVALID when no whole record with a well-formed header stands there (a torn tail, or damage),
 * HL_TOOBIG when it is larger than the store takes, HL_CORRUPT when it fails verification, or the
 * error reading it. The walks over segments (replay, rebuild) read records through this. */
int hl_st_read_record_at(hl_local *s, int fd, uint32_t seg, uint64_t off, uint64_t size,
                         uint64_t now, hl_rec_hdr *h, hl_idx_entry *e, uint8_t **buf, size_t *cap)
{
	uint8_t hb[HL_REC_HDR_LEN];
	int err = off + HL_REC_HDR_LEN > size ? HL_IO_SHORT : hl_io_pread_full(fd, hb, sizeof hb, off);
	if (err && err != HL_IO_SHORT)
		return err; /* an I/O error says nothing about the record */
	if (err || hl_rec_decode(hb, sizeof hb, h) || off + HL_REC_HDR_LEN + h->stored_len > size)
		return HL_INVALID;
	*e = (hl_idx_entry){seg, off, h->stored_len, h->raw_len, h->flags, 0, now};
	if (h->raw_len > s->opt.max_object_size)
		return HL_TOOBIG;
	if (h->raw_len >= *cap) {
		uint8_t *nb = hl_realloc(*buf, h->raw_len + 1);
		if (!nb)
			return ENOMEM;
		*buf = nb;
		*cap = h->raw_len + 1;
	}
	if (!(h->flags & HL_REC_F_DELTA))
		return read_record(s, &h->id, e, *buf, 0, NULL, 1);
	uint8_t *payload; /* a delta: its own bytes checked (the base may not be indexed yet) */
	hl_delta_prefix d;
	err = read_stored(s, &h->id, e, *buf, &payload);
	if (!err)
		err = delta_prefix(&h->id, payload, h->stored_len, HL_DELTA_MAX_DEPTH, &d);
	free(payload);
	return err;
}

/* ---------- finding entries: memtables first, then LMDB ---------- */


int hl_st_same_place(const hl_idx_entry *a, const hl_idx_entry *b)
{
	return a->segment == b->segment && a->offset == b->offset;
}

/* Looks id up in the unflushed tables. 0 with *e, or HL_NOTFOUND. */
/* gen_lock held (read or write). active is loaded before flushing: the swap stores flushing
 * (the old active) first, so a reader that sees the new active also sees the old one. */
int hl_st_find_in_memory_locked(hl_local *s, const hl_id *id, hl_idx_entry *e)
{
	int err = hl_memtab_get(atomic_load(&s->active), id, e);
	hl_memtab *f;
	if (err && (f = atomic_load(&s->flushing)) != NULL)
		err = hl_memtab_get(f, id, e);
	return err;
}

int hl_st_find_in_memory(hl_local *s, const hl_id *id, hl_idx_entry *e)
{
	if (s->opt.read_only) /* its one table, filled at open, never changes nor moves */
		return s->active ? hl_memtab_get(s->active, id, e) : HL_NOTFOUND;
	pthread_rwlock_rdlock(&s->gen_lock);
	int err = hl_st_find_in_memory_locked(s, id, e);
	pthread_rwlock_unlock(&s->gen_lock);
	return err;
}

/* The current entry of id; txn may be NULL (a pooled read transaction is used when LMDB must
 * be read). */
int hl_st_find_entry(hl_local *s, MDB_txn *txn, const hl_id *id, hl_idx_entry *e)
{
	int err = hl_st_find_in_memory(s, id, e);
	if (err != HL_NOTFOUND)
		return err;
	if (s->loc && (err = hl_loctab_get(s->loc, id, e)) != HL_BUSY)
		return err;
	return txn ? hl_idx_get(txn, s->ix.obj, id, e) : hl_idx_lookup(&s->ix, s->ix.obj, id, e);
}

int hl_st_find_committed(hl_local *s, MDB_txn **txn, const hl_id *id, hl_idx_entry *e)
{
	int err;
	if (s->loc && (err = hl_loctab_get(s->loc, id, e)) != HL_BUSY)
		return err;
	if (!*txn && (err = hl_idx_read_begin(&s->ix, txn)) != 0) {
		*txn = NULL;
		return err;
	}
	return hl_idx_get(*txn, s->ix.obj, id, e);
}

void hl_st_totals_add(hl_totals *t, const hl_idx_entry *e, int sign)
{
	t->objects += (uint64_t)(int64_t)sign;
	t->raw_bytes += (uint64_t)((int64_t)sign * (int64_t)e->raw_len);
	t->stored_bytes += (uint64_t)((int64_t)sign * (int64_t)(HL_REC_HDR_LEN + e->stored_len));
	if (e->flags & HL_REC_F_ZSTD)
		t->compressed += (uint64_t)(int64_t)sign;
	if (e->flags & HL_REC_F_DELTA) {
		t->deltas += (uint64_t)(int64_t)sign;
		t->delta_raw_bytes += (uint64_t)((int64_t)sign * (int64_t)e->raw_len);
		t->delta_stored_bytes += (uint64_t)((int64_t)sign * (int64_t)(HL_REC_HDR_LEN + e->stored_len));
	}
}

/* Moves a corrupt record's entry to the quarantine (read-write handles only), unless the entry
 * has meanwhile been replaced by a good copy. */
void hl_st_quarantine(hl_local *s, const hl_id *id, const hl_idx_entry *e)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	atomic_fetch_add(&s->corrupt_reads, 1);
	hl_log(HL_LOG_ERROR, "object %s: corrupt record in segment %u at offset %llu%s", hex,
	       e->segment, (unsigned long long)e->offset, s->opt.read_only ? "" : "; quarantined");
	if (s->opt.read_only)
		return;
	pthread_mutex_lock(&s->flush_mu);
	pthread_mutex_lock(&s->commit_mu);
	int in_active = hl_memtab_kill(s->active, id, e->segment, e->offset);
	int in_flushing = !in_active && s->flushing && hl_memtab_kill(s->flushing, id, e->segment, e->offset);
	int in_lmdb = 0;
	MDB_txn *txn;
	int err = hl_idx_write_begin(&s->ix, &txn);
	if (!err) {
		hl_idx_entry cur;
		MDB_val k = {HL_ID_LEN, (void *)id->b};
		hl_totals p = s->ptot;
		if (!in_active && !in_flushing && hl_idx_get(txn, s->ix.obj, id, &cur) == 0 &&
		    cur.segment == e->segment && cur.offset == e->offset) {
			in_lmdb = 1;
			hl_st_totals_add(&p, e, -1);
			if ((err = hl_idx_err(mdb_del(txn, s->ix.obj, &k, NULL))) == 0)
				err = hl_idx_set_totals(txn, &s->ix, &p);
		}
		if (!err && !in_active && !in_flushing && !in_lmdb)
			err = HL_NOTFOUND; /* moved by compaction, collected, or quarantined by another
			                      reader meanwhile: nothing to quarantine */
		if (!err)
			err = hl_idx_put(txn, s->ix.quar, id, e);
		if ((err = hl_idx_write_end(&s->ix, txn, err)) == 0 && in_lmdb) {
			s->ptot = p;
			if (s->loc)
				hl_loctab_del(s->loc, id);
		}
	}
	if (in_active || in_flushing || in_lmdb)
		hl_st_totals_add(&s->tot, e, -1);
	if (in_flushing)
		hl_st_totals_add(&s->pend_tot, e, -1);
	pthread_mutex_unlock(&s->commit_mu);
	pthread_mutex_unlock(&s->flush_mu);
	if (err && err != HL_NOTFOUND)
		hl_log(HL_LOG_ERROR, "object %s: could not record the quarantine: %s", hex, hl_strerror(err));
}

/* Reads id at *e through fill(); when that fails because compaction moved the record (and may
 * have closed its old file) or a collection removed it, follows the current entry. HL_NOTFOUND
 * when collected; on a corrupt record that is still current, quarantines it. */
int hl_st_read_following(hl_local *s, const hl_id *id, hl_idx_entry *e, fill_fn fill, void *ctx)
{
	int err = fill(s, id, e, ctx);
	for (int tries = 0; err && tries < 3; tries++) {
		hl_idx_entry cur;
		int ferr = hl_st_find_entry(s, NULL, id, &cur);
		if (ferr == HL_NOTFOUND)
			return HL_NOTFOUND;
		if (ferr || hl_st_same_place(&cur, e))
			break;
		*e = cur;
		err = fill(s, id, e, ctx);
	}
	if (err == HL_CORRUPT)
		hl_st_quarantine(s, id, e);
	return err == DELTA_BASE_BAD ? HL_CORRUPT : err; /* sound itself: not quarantined */
}

/* Finds id and reads it through fill(); on a corrupt record quarantines it and reports
 * HL_CORRUPT. A quarantined id also reports HL_CORRUPT, so callers learn why it is gone. */
static int locate(hl_local *s, const hl_id *id, fill_fn fill, void *ctx)
{
	hl_idx_entry e;
	int err = hl_st_find_entry(s, NULL, id, &e);
	if (err == HL_NOTFOUND) {
		hl_idx_entry q;
		return hl_idx_lookup(&s->ix, s->ix.quar, id, &q) == 0 ? HL_CORRUPT : HL_NOTFOUND;
	}
	return err ? err : hl_st_read_following(s, id, &e, fill, ctx);
}

static int locate_and_read(hl_local *s, const hl_id *id, fill_fn fill, void *ctx)
{
	atomic_fetch_add_explicit(&s->gets, 1, memory_order_relaxed);
	int err = locate(s, id, fill, ctx);
	if (err == HL_NOTFOUND)
		atomic_fetch_add_explicit(&s->get_misses, 1, memory_order_relaxed);
	return err;
}

int hl_st_fill_raw(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	return read_record(s, id, e, ctx, HL_DELTA_MAX_DEPTH, NULL, 1);
}

static int fill_buf(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	if (e->raw_len > SIZE_MAX - 64)
		return HL_TOOBIG;
	hl_buf *b = hl_buf_alloc((size_t)e->raw_len);
	if (!b)
		return ENOMEM;
	int err = read_record(s, id, e, hl_buf_wdata(b), HL_DELTA_MAX_DEPTH, NULL, 1);
	if (err) {
		hl_buf_unref(b);
		return err;
	}
	*(hl_buf **)ctx = b;
	return 0;
}

int hl_local_delta_base(hl_local *s, const hl_id *id, hl_id *base)
{
	hl_idx_entry e;
	unsigned depth;
	int err = hl_st_find_entry(s, NULL, id, &e);
	return err ? err : hl_st_delta_base(s, id, &e, base, &depth);
}

int hl_st_read_object(hl_local *s, const hl_id *id, hl_buf **out)
{
	return locate(s, id, fill_buf, out);
}

int hl_local_get(hl_local *s, const hl_id *id, hl_buf **out)
{
	return locate_and_read(s, id, fill_buf, out);
}

/* fill_raw into a scratch buffer grown to the object's size */
typedef struct scratch_fill {
	uint8_t **buf;
	size_t *cap;
} scratch_fill;

static int fill_scratch(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	scratch_fill *f = ctx;
	if (e->raw_len > *f->cap) {
		if (e->raw_len > SIZE_MAX / 2)
			return HL_TOOBIG;
		uint8_t *b = hl_realloc(*f->buf, (size_t)e->raw_len);
		if (!b)
			return ENOMEM;
		*f->buf = b, *f->cap = (size_t)e->raw_len;
	}
	return read_record(s, id, e, *f->buf, HL_DELTA_MAX_DEPTH, NULL, 1);
}

int hl_local_check(hl_local *s, const hl_id *id, uint8_t **scratch, size_t *cap)
{
	scratch_fill f = {scratch, cap};
	return locate_and_read(s, id, fill_scratch, &f);
}

int hl_local_has(hl_local *s, const hl_id *id)
{
	hl_idx_entry e;
	int err = hl_st_find_entry(s, NULL, id, &e);
	return err || s->opt.read_only ? err : hl_st_rely_on(s, id, &e);
}

void hl_st_stat_of(const hl_idx_entry *e, hl_stat *st)
{
	st->size = e->raw_len;
	st->stored_size = HL_REC_HDR_LEN + e->stored_len;
	st->flags = ((e->flags & HL_REC_F_ZSTD) ? HL_STAT_COMPRESSED : 0) |
	            ((e->flags & HL_REC_F_LINKS) ? HL_STAT_LINKS : 0) |
	            ((e->flags & HL_REC_F_DELTA) ? HL_STAT_DELTA : 0);
	st->segment = e->segment;
	st->offset = e->offset;
	st->atime = e->atime;
}

int hl_local_stat(hl_local *s, const hl_id *id, hl_stat *out)
{
	hl_idx_entry e;
	int err = hl_st_find_entry(s, NULL, id, &e);
	if (!err)
		hl_st_stat_of(&e, out);
	return err;
}
