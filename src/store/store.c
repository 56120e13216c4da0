/* store.c — the durable local store: open/create/lock, group commit, the in-memory index tables
 * and their flusher, verified reads, quarantine, tail replay after a crash, verify, and the
 * store's side of garbage collection (held finds, deletion, compaction).
 * See store.h for the write-path contract.
 *
 * Locks, always taken in this order: gc_mu (one collection) → flush_mu (index flushes,
 * quarantines) → commit_mu (the leader writing a group; segment writer state, totals) →
 * touch_mu (queued access-time refreshes, held ids; taken alone by finders, never inside an LMDB
 * write transaction except by the collector's deletion, which holds all three) → gen_lock.
 * Readers take only gen_lock, shared, for two table lookups: it keeps a table they may be reading
 * from being emptied for reuse. The swap of the active table (under commit_mu) does not take it —
 * the two pointers are atomic and stored in an order readers tolerate — so a reader that is
 * descheduled inside its lookup never holds up a commit. gen_lock prefers writers: a stream of
 * readers cannot starve the flusher's release of a flushed table. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <dirent.h>
#include <unistd.h>
#include <zstd.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/grow.h"
#include "base/io.h"
#include "base/log.h"
#include "hash/hash.h"
#include "store/index.h"
#include "store/memtab.h"
#include "store/names.h"
#include "store/record.h"
#include "store/segment.h"
#include "store/store.h"
#include "base/alloc.h"

#define MARKER "HELIOS"
#define MARKER_TEXT "helios-store 1\n"
#define STORE_FORMAT 1
#define GROUP_MAX_BYTES (64u << 20) /* a commit group stops growing here */
#define COMPRESS_MIN 128
#define COMPRESS_MAX (64u << 20)
#define MEMTAB_BITS 16 /* 64 Ki slots: up to 32 Ki entries between index flushes */
#define BATCH_MAX ((size_t)1 << (MEMTAB_BITS - 1))
#define TOUCH_AGE_S 60 /* refresh an access time only when older than this (or a quarter of the
                          GC grace period, when that is shorter) */
#define INDEX_FLUSH_MS 1000 /* the memtable goes to LMDB at least this often (or when half full) */

/* One record being written: header, payload (raw or compressed), outcome. */
typedef struct prep {
	hl_put_item *item;
	uint8_t hdr[HL_REC_HDR_LEN];
	const void *payload;
	size_t payload_len;
	void *zbuf;
	uint16_t flags;
	uint32_t segno;  /* where it was written */
	uint64_t off;
	int write;       /* the group commit writes it (not present, not a duplicate) */
	const hl_idx_entry *moving; /* compaction: the entry this record replaces (written even
	                               though the object is present; its access time is kept) */
} prep;

/* A growable list of ids. */
typedef struct idvec {
	hl_id *v;
	size_t n, cap;
} idvec;

static int idvec_push(idvec *x, const hl_id *id)
{
	hl_id *v = hl_grow(x->v, x->n, &x->cap, sizeof(*v), 1024);
	if (!v)
		return ENOMEM;
	x->v = v;
	x->v[x->n++] = *id;
	return 0;
}

/* One caller's batch in the commit queue. */
typedef struct creq {
	prep *recs;
	size_t n;
	uint64_t bytes;
	int status;
	int done;
	pthread_cond_t cv;  /* signalled when done, or when it becomes the head of the queue */
	struct creq *next;
} creq;

struct hl_local {
	char *dir;
	hl_options opt;
	int lock_fd;
	hl_index ix;
	hl_segset segs;

	pthread_mutex_t q_mu;        /* commit queue */
	creq *q_head, *q_tail;

	pthread_mutex_t commit_mu;   /* the leader writing a group; see the lock order above */
	int write_err;               /* sticky after a failed sync: writes refused until reopen */
	uint32_t dirty_lo;           /* lowest segment written since the last sync (0: clean) */
	hl_totals tot;               /* everything stored, flushed or not */

	pthread_rwlock_t gen_lock;
	_Atomic(hl_memtab *) active;   /* entries committed to segments, not yet to LMDB */
	_Atomic(hl_memtab *) flushing; /* the table being written to LMDB (or whose write failed) */
	hl_memtab *spare;            /* an emptied table, ready for the next swap (flush_mu) */

	pthread_mutex_t gc_mu;       /* one collection or compaction at a time */
	pthread_mutex_t flush_mu;
	int flush_err;               /* the last flush's failure, logged once (flush_mu) */
	hl_totals ptot;              /* totals as committed to LMDB */
	hl_totals pend_tot;          /* totals and tail that go with `flushing` */
	uint32_t pend_seg;
	uint64_t pend_off;

	pthread_mutex_t touch_mu;    /* innermost lock: touches, held ids, gc_active */
	idvec touches;               /* ids whose access time to refresh at the next index flush */
	idvec touches_spare;         /* swapped with touches by the flush (flush_mu) */
	atomic_int gc_active;        /* a collection is running: found ids it may take are held */
	_Atomic uint64_t gc_cutoff;  /* its candidates' access times are at most this */
	idvec held;                  /* ids found present since the collection began */
	uint64_t touch_age;          /* refresh access times older than this many seconds */

	pthread_t flusher;           /* "helios-index": flushes tables, and syncs for sync=batch */
	int flusher_running, stop, wake;
	pthread_mutex_t wake_mu;
	pthread_cond_t wake_cv;

	atomic_uint_fast64_t puts, puts_new, gets, get_misses, corrupt_reads, syncs, commits, flushes;
};

/* ---------- helpers ---------- */

static int sys_err(int e)
{
	return e == ENOSPC || e == EDQUOT ? HL_NOSPACE : e;
}

static char *path_join(const char *a, const char *b)
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
static ZSTD_CCtx *thread_cctx(void)
{
	pthread_once(&zonce, zkeys_init);
	ZSTD_CCtx *c = pthread_getspecific(zkey_c);
	if (!c && (c = ZSTD_createCCtx()) != NULL)
		pthread_setspecific(zkey_c, c);
	return c;
}
static ZSTD_DCtx *thread_dctx(void)
{
	pthread_once(&zonce, zkeys_init);
	ZSTD_DCtx *d = pthread_getspecific(zkey_d);
	if (!d && (d = ZSTD_createDCtx()) != NULL)
		pthread_setspecific(zkey_d, d);
	return d;
}

/* ---------- reading and verifying one record ---------- */

/* Reads the record at e into dst (e->raw_len bytes) and verifies header and content against id.
 * HL_CORRUPT for any mismatch or missing bytes; a positive errno for an I/O failure. */
static int read_record(hl_local *s, const hl_id *id, const hl_idx_entry *e, uint8_t *dst)
{
	int fd, err = hl_segs_fd(&s->segs, e->segment, &fd);
	if (err)
		return err == ENOENT ? HL_CORRUPT : err;
	uint8_t hdr[HL_REC_HDR_LEN];
	void *zbuf = NULL;
	struct iovec iov[2] = {{hdr, sizeof hdr}, {dst, e->raw_len}};
	if (e->flags & HL_REC_F_ZSTD) {
		if (!(zbuf = hl_malloc(e->stored_len ? e->stored_len : 1)))
			return ENOMEM;
		iov[1].iov_base = zbuf;
		iov[1].iov_len = e->stored_len;
	}
	err = hl_io_preadv_full(fd, iov, 2, e->offset);
	if (err == HL_IO_SHORT)
		err = HL_CORRUPT;
	hl_rec_hdr h;
	if (!err && (err = hl_rec_decode(hdr, sizeof hdr, &h)) == 0) {
		if (!hl_id_equal(&h.id, id) || h.stored_len != e->stored_len || h.raw_len != e->raw_len ||
		    h.flags != e->flags)
			err = HL_CORRUPT;
	}
	if (!err && zbuf) {
		ZSTD_DCtx *dctx = thread_dctx();
		size_t r = dctx ? ZSTD_decompressDCtx(dctx, dst, e->raw_len, zbuf, e->stored_len) : 0;
		if (!dctx)
			err = ENOMEM;
		else if (ZSTD_isError(r) || r != e->raw_len)
			err = HL_CORRUPT;
	}
	free(zbuf);
	if (!err) {
		hl_id got;
		hl_hash(dst, e->raw_len, &got);
		if (!hl_id_equal(&got, id))
			err = HL_CORRUPT;
	}
	return err;
}

/* Reads the record whose header starts at off of segment seg (fd, size bytes long): its header
 * into *h, its index entry into *e (access time now), its verified bytes into *buf, grown to *cap.
 * HL_INVALID when no whole record with a well-formed header stands there (a torn tail, or damage),
 * HL_TOOBIG when it is larger than the store takes, HL_CORRUPT when it fails verification, or the
 * error reading it. The walks over segments (replay, rebuild) read records through this. */
static int read_record_at(hl_local *s, int fd, uint32_t seg, uint64_t off, uint64_t size, uint64_t now,
                          hl_rec_hdr *h, hl_idx_entry *e, uint8_t **buf, size_t *cap)
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
	return read_record(s, &h->id, e, *buf);
}

/* ---------- finding entries: memtables first, then LMDB ---------- */

static int rely_on(hl_local *s, const hl_id *id, const hl_idx_entry *e);
static int hold(hl_local *s, const hl_id *id, uint64_t atime, int *held);

static int same_place(const hl_idx_entry *a, const hl_idx_entry *b)
{
	return a->segment == b->segment && a->offset == b->offset;
}

/* Looks id up in the unflushed tables. 0 with *e, or HL_NOTFOUND. */
/* gen_lock held (read or write). active is loaded before flushing: the swap stores flushing
 * (the old active) first, so a reader that sees the new active also sees the old one. */
static int find_in_memory_locked(hl_local *s, const hl_id *id, hl_idx_entry *e)
{
	int err = hl_memtab_get(atomic_load(&s->active), id, e);
	hl_memtab *f;
	if (err && (f = atomic_load(&s->flushing)) != NULL)
		err = hl_memtab_get(f, id, e);
	return err;
}

static int find_in_memory(hl_local *s, const hl_id *id, hl_idx_entry *e)
{
	if (s->opt.read_only) /* its one table, filled at open, never changes nor moves */
		return s->active ? hl_memtab_get(s->active, id, e) : HL_NOTFOUND;
	pthread_rwlock_rdlock(&s->gen_lock);
	int err = find_in_memory_locked(s, id, e);
	pthread_rwlock_unlock(&s->gen_lock);
	return err;
}

/* The current entry of id; txn may be NULL (a pooled read transaction is used). */
static int find_entry(hl_local *s, MDB_txn *txn, const hl_id *id, hl_idx_entry *e)
{
	int err = find_in_memory(s, id, e);
	if (err != HL_NOTFOUND)
		return err;
	return txn ? hl_idx_get(txn, s->ix.obj, id, e) : hl_idx_lookup(&s->ix, s->ix.obj, id, e);
}

static void totals_add(hl_totals *t, const hl_idx_entry *e, int sign)
{
	t->objects += (uint64_t)(int64_t)sign;
	t->raw_bytes += (uint64_t)((int64_t)sign * (int64_t)e->raw_len);
	t->stored_bytes += (uint64_t)((int64_t)sign * (int64_t)(HL_REC_HDR_LEN + e->stored_len));
	if (e->flags & HL_REC_F_ZSTD)
		t->compressed += (uint64_t)(int64_t)sign;
}

/* Moves a corrupt record's entry to the quarantine (read-write handles only), unless the entry
 * has meanwhile been replaced by a good copy. */
static void quarantine(hl_local *s, const hl_id *id, const hl_idx_entry *e)
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
			totals_add(&p, e, -1);
			if ((err = hl_idx_err(mdb_del(txn, s->ix.obj, &k, NULL))) == 0)
				err = hl_idx_set_totals(txn, &s->ix, &p);
		}
		if (!err && !in_active && !in_flushing && !in_lmdb)
			err = HL_NOTFOUND; /* moved by compaction, collected, or quarantined by another
			                      reader meanwhile: nothing to quarantine */
		if (!err)
			err = hl_idx_put(txn, s->ix.quar, id, e);
		if ((err = hl_idx_write_end(&s->ix, txn, err)) == 0 && in_lmdb)
			s->ptot = p;
	}
	if (in_active || in_flushing || in_lmdb)
		totals_add(&s->tot, e, -1);
	if (in_flushing)
		totals_add(&s->pend_tot, e, -1);
	pthread_mutex_unlock(&s->commit_mu);
	pthread_mutex_unlock(&s->flush_mu);
	if (err && err != HL_NOTFOUND)
		hl_log(HL_LOG_ERROR, "object %s: could not record the quarantine: %s", hex, hl_strerror(err));
}

/* Finds id and reads it through fill(); on a corrupt record quarantines it and reports
 * HL_CORRUPT. A quarantined id also reports HL_CORRUPT, so callers learn why it is gone. */
typedef int (*fill_fn)(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx);

/* Reads id at *e through fill(); when that fails because compaction moved the record (and may
 * have closed its old file) or a collection removed it, follows the current entry. HL_NOTFOUND
 * when collected; on a corrupt record that is still current, quarantines it. */
static int read_following(hl_local *s, const hl_id *id, hl_idx_entry *e, fill_fn fill, void *ctx)
{
	int err = fill(s, id, e, ctx);
	for (int tries = 0; err && tries < 3; tries++) {
		hl_idx_entry cur;
		int ferr = find_entry(s, NULL, id, &cur);
		if (ferr == HL_NOTFOUND)
			return HL_NOTFOUND;
		if (ferr || same_place(&cur, e))
			break;
		*e = cur;
		err = fill(s, id, e, ctx);
	}
	if (err == HL_CORRUPT)
		quarantine(s, id, e);
	return err;
}

static int locate_and_read(hl_local *s, const hl_id *id, fill_fn fill, void *ctx)
{
	atomic_fetch_add_explicit(&s->gets, 1, memory_order_relaxed);
	hl_idx_entry e;
	int err = find_entry(s, NULL, id, &e);
	if (err == HL_NOTFOUND) {
		atomic_fetch_add_explicit(&s->get_misses, 1, memory_order_relaxed);
		hl_idx_entry q;
		return hl_idx_lookup(&s->ix, s->ix.quar, id, &q) == 0 ? HL_CORRUPT : HL_NOTFOUND;
	}
	return err ? err : read_following(s, id, &e, fill, ctx);
}

static int fill_raw(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	return read_record(s, id, e, ctx);
}

static int fill_buf(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	if (e->raw_len > SIZE_MAX - 64)
		return HL_TOOBIG;
	hl_buf *b = hl_buf_alloc((size_t)e->raw_len);
	if (!b)
		return ENOMEM;
	int err = read_record(s, id, e, hl_buf_wdata(b));
	if (err) {
		hl_buf_unref(b);
		return err;
	}
	*(hl_buf **)ctx = b;
	return 0;
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
	return read_record(s, id, e, *f->buf);
}

int hl_local_check(hl_local *s, const hl_id *id, uint8_t **scratch, size_t *cap)
{
	scratch_fill f = {scratch, cap};
	return locate_and_read(s, id, fill_scratch, &f);
}

int hl_local_has(hl_local *s, const hl_id *id)
{
	hl_idx_entry e;
	int err = find_entry(s, NULL, id, &e);
	return err || s->opt.read_only ? err : rely_on(s, id, &e);
}

int hl_local_hold(hl_local *s, const hl_id *id, int *recheck)
{
	*recheck = 0;
	return s->opt.read_only ? 0 : hold(s, id, 0, recheck);
}

static void stat_of(const hl_idx_entry *e, hl_stat *st)
{
	st->size = e->raw_len;
	st->stored_size = HL_REC_HDR_LEN + e->stored_len;
	st->flags = ((e->flags & HL_REC_F_ZSTD) ? HL_STAT_COMPRESSED : 0) |
	            ((e->flags & HL_REC_F_LINKS) ? HL_STAT_LINKS : 0);
	st->segment = e->segment;
	st->offset = e->offset;
	st->atime = e->atime;
}

int hl_local_stat(hl_local *s, const hl_id *id, hl_stat *out)
{
	hl_idx_entry e;
	int err = find_entry(s, NULL, id, &e);
	if (!err)
		stat_of(&e, out);
	return err;
}

/* ---------- write path ---------- */

static void prep_free(prep *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(p[i].zbuf);
	free(p);
}

/* Hashes or verifies each item and compresses what shrinks; nothing is queued on failure. */
static int prepare(hl_local *s, hl_put_item *items, size_t n, int ids_trusted, prep **out,
                   uint64_t *bytes)
{
	prep *p = hl_calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return ENOMEM;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		hl_put_item *it = &items[i];
		if (!it->data && it->len)
			return prep_free(p, n), HL_INVALID;
		if (it->len > s->opt.max_object_size)
			return prep_free(p, n), HL_TOOBIG;
		if (!ids_trusted) {
			hl_id id;
			hl_hash(it->data, it->len, &id);
			if (it->check_id && !hl_id_equal(&id, &it->id))
				return prep_free(p, n), HL_MISMATCH;
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

/* Compresses records that shrink; called for records that will really be written. */
static void maybe_compress(hl_local *s, prep *p)
{
	size_t len = p->item->len;
	if (s->opt.compress_level <= 0 || len < COMPRESS_MIN || len > COMPRESS_MAX ||
	    !looks_compressible(p->item->data, len))
		return;
	ZSTD_CCtx *c = thread_cctx();
	size_t bound = ZSTD_compressBound(len);
	void *z = c ? hl_malloc(bound) : NULL;
	if (!z)
		return;
	size_t r = ZSTD_compressCCtx(c, z, bound, p->item->data, len, s->opt.compress_level);
	if (ZSTD_isError(r) || r >= len - len / 32) { /* keep raw unless it saves > 3% */
		free(z);
		return;
	}
	p->zbuf = z;
	p->payload = z;
	p->payload_len = r;
	p->flags |= HL_REC_F_ZSTD;
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
	int fd, err = hl_segs_fd(&w->s->segs, w->segno, &fd);
	if (!err)
		err = hl_io_pwritev_full(fd, w->iov, w->n, w->off);
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
	for (uint32_t seg = lo; seg && seg <= hi && !err; seg++) {
		int fd;
		err = hl_segs_fd(&s->segs, seg, &fd);
		if (err == ENOENT)
			err = 0;
		else if (!err)
			err = hl_io_datasync(fd);
	}
	atomic_fetch_add(&s->syncs, 1);
	return err;
}

/* After a failed sync the kernel may have dropped the dirty pages: writes fail until a reopen
 * re-validates the tail. commit_mu held. */
static void set_write_err(hl_local *s, int err)
{
	if (!s->write_err) {
		__atomic_store_n(&s->write_err, err, __ATOMIC_RELEASE);
		hl_log(HL_LOG_ERROR, "sync failed (%s); writes disabled until the store is reopened",
		       hl_strerror(err));
	}
}

/* Objects committed to segments but not to the index (tot is changed under commit_mu, ptot under
 * flush_mu: both are taken, in their order). */
static uint64_t unindexed(hl_local *s)
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
static int sync_locked(hl_local *s)
{
	if (!s->dirty_lo)
		return s->write_err ? HL_STOPPED : 0;
	int err = sync_range(s, s->dirty_lo, s->segs.active);
	if (!err)
		s->dirty_lo = 0;
	else
		set_write_err(s, err);
	return err;
}

/* Syncs what has been written so far without holding commit_mu during the fdatasync, so writers
 * keep going; whatever they write meanwhile is left for the next sync. */
static int sync_unlocked(hl_local *s)
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
		set_write_err(s, err);
		pthread_mutex_unlock(&s->commit_mu);
	}
	return err;
}

/* The access-time refreshes queued so far move to touches_spare (flush_mu held), before the
 * index transaction begins: touch_mu is never taken inside one. */
static void take_touches(hl_local *s)
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
static void return_touches(hl_local *s)
{
	idvec *sp = &s->touches_spare;
	pthread_mutex_lock(&s->touch_mu);
	while (sp->n && idvec_push(&s->touches, &sp->v[sp->n - 1]) == 0)
		sp->n--;
	pthread_mutex_unlock(&s->touch_mu);
}

/* Applies the refreshes taken by take_touches in txn. */
static void apply_touches(hl_local *s, MDB_txn *txn)
{
	hl_id *t = s->touches_spare.v;
	size_t n = s->touches_spare.n;
	uint64_t now = hl_wall_s();
	for (size_t i = 0; i < n; i++) {
		hl_idx_entry e;
		if (hl_idx_get(txn, s->ix.obj, &t[i], &e) == 0 && e.atime < now) {
			e.atime = now;
			hl_idx_put(txn, s->ix.obj, &t[i], &e);
		}
	}
}

/* ---------- index flush: memtable → LMDB ---------- */

typedef struct flat {
	hl_id id;
	hl_idx_entry e;
} flat;

static int collect(const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	flat **p = ctx;
	(*p)->id = *id;
	(*p)->e = *e;
	(*p)++;
	return 0;
}

static int cmp_flat(const void *a, const void *b)
{
	return memcmp(((const flat *)a)->id.b, ((const flat *)b)->id.b, HL_ID_LEN);
}

/* Commits the flushing table (sorted, one transaction) with its tail and totals. flush_mu held. */
static int commit_flushing(hl_local *s)
{
	size_t n = hl_memtab_used(s->flushing);
	flat *v = hl_malloc((n ? n : 1) * sizeof(*v)), *end = v;
	if (!v)
		return ENOMEM;
	hl_memtab_each(s->flushing, collect, &end);
	n = (size_t)(end - v);
	qsort(v, n, sizeof(*v), cmp_flat);
	take_touches(s);
	MDB_txn *txn = NULL;
	int err = hl_idx_write_begin(&s->ix, &txn);
	if (err)
		txn = NULL;
	for (size_t i = 0; i < n && !err; i++) {
		MDB_val k = {HL_ID_LEN, v[i].id.b};
		int rc = mdb_del(txn, s->ix.quar, &k, NULL); /* a good copy replaces a quarantined one */
		err = rc && rc != MDB_NOTFOUND ? hl_idx_err(rc) : hl_idx_put(txn, s->ix.obj, &v[i].id, &v[i].e);
	}
	free(v);
	if (!err) {
		apply_touches(s, txn);
		if ((err = hl_idx_set_tail(txn, &s->ix, s->pend_seg, s->pend_off)) == 0)
			err = hl_idx_set_totals(txn, &s->ix, &s->pend_tot);
	}
	if (txn)
		err = hl_idx_write_end(&s->ix, txn, err);
	if (err)
		return_touches(s);
	else
		s->touches_spare.n = 0;
	return err;
}

/* Moves every unflushed entry into LMDB: syncs segments (unless sync=none), swaps in a fresh
 * table, commits the old one. Takes flush_mu and commit_mu; readers keep finding every entry. */
static int flush_index(hl_local *s)
{
	if (s->opt.read_only)
		return 0;
	int err = 0;
	pthread_mutex_lock(&s->flush_mu);
	if (!s->flushing && s->opt.sync == HL_SYNC_BATCH)
		sync_unlocked(s); /* the bulk, while writers continue; the catch-up below is short */
	if (!s->flushing) {
		pthread_mutex_lock(&s->commit_mu);
		pthread_mutex_lock(&s->touch_mu);
		size_t touched = s->touches.n;
		pthread_mutex_unlock(&s->touch_mu);
		if (hl_memtab_used(s->active) == 0 && !touched && !s->dirty_lo) {
			pthread_mutex_unlock(&s->commit_mu);
			pthread_mutex_unlock(&s->flush_mu);
			return 0;
		}
		if (s->opt.sync != HL_SYNC_NONE)
			err = sync_locked(s); /* the index never points at bytes that are not durable */
		hl_memtab *fresh = err ? NULL : s->spare ? s->spare : hl_memtab_new(MEMTAB_BITS);
		if (!err && !fresh)
			err = ENOMEM;
		if (!err)
			s->spare = NULL;
		if (!err) {
			atomic_store(&s->flushing, atomic_load(&s->active)); /* first: see find_in_memory_locked */
			atomic_store(&s->active, fresh);
			s->pend_seg = s->segs.active;
			s->pend_off = s->segs.tail;
			s->pend_tot = s->tot;
		}
		pthread_mutex_unlock(&s->commit_mu);
	}
	if (!err && s->flushing) {
		if (s->pend_seg == 0) /* nothing was ever written: only access times to record */
			s->pend_off = 0;
		err = commit_flushing(s);
		if (!err) {
			pthread_rwlock_wrlock(&s->gen_lock);
			hl_memtab *old = s->flushing;
			s->flushing = NULL;
			pthread_rwlock_unlock(&s->gen_lock);
			hl_memtab_clear(old); /* no reader can reach it any more */
			s->spare = old;
			s->ptot = s->pend_tot;
			atomic_fetch_add(&s->flushes, 1);
			if (s->flush_err)
				hl_log(HL_LOG_WARN, "index flush works again");
			s->flush_err = 0;
		} else if (err != s->flush_err) { /* once per cause, not once a second */
			hl_log(HL_LOG_ERROR, "index flush failed (%s); retrying%s", hl_strerror(err),
			       err == HL_NOSPACE ? " once there is room (objects stay durable in the segments)" : "");
			s->flush_err = err;
		}
	}
	pthread_mutex_unlock(&s->flush_mu);
	return err;
}

static void wake_flusher(hl_local *s)
{
	pthread_mutex_lock(&s->wake_mu);
	s->wake = 1;
	pthread_cond_signal(&s->wake_cv);
	pthread_mutex_unlock(&s->wake_mu);
}

/* "helios-index": every sync_interval_ms syncs the segments (sync=batch); every INDEX_FLUSH_MS,
 * or when woken because the memtable is half full, flushes the index. */
static void *flusher_main(void *arg)
{
	hl_local *s = arg;
	uint64_t last_flush = hl_now_ns();
	pthread_mutex_lock(&s->wake_mu);
	while (!s->stop) {
		if (!s->wake) {
			struct timespec ts = hl_deadline_after((uint64_t)s->opt.sync_interval_ms * 1000000u);
			pthread_cond_timedwait(&s->wake_cv, &s->wake_mu, &ts);
		}
		int woken = s->wake;
		s->wake = 0;
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->wake_mu);
		uint64_t now = hl_now_ns();
		if (woken || now - last_flush >= (uint64_t)INDEX_FLUSH_MS * 1000000u) {
			flush_index(s); /* syncs the segments first under sync=batch */
			last_flush = now;
		} else if (s->opt.sync == HL_SYNC_BATCH) {
			sync_unlocked(s);
		}
		pthread_mutex_lock(&s->wake_mu);
	}
	pthread_mutex_unlock(&s->wake_mu);
	return NULL;
}

/* ---------- group commit ---------- */

/* Ids already claimed by earlier records of the group being written (open addressing). */
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
	int err = set.slot ? 0 : ENOMEM;
	/* Which records to write: not claimed by an earlier record of the group, not present. The
	 * read transaction starts under gen_lock, so an entry is either still in a memtable or already
	 * in the snapshot (a flush that commits in between is not missed). Only commits add entries,
	 * and this thread holds commit_mu, so the answers stay true while the group is written. */
	if (!err) {
		MDB_txn *txn = NULL;
		pthread_rwlock_rdlock(&s->gen_lock);
		err = hl_idx_read_begin(&s->ix, &txn);
		for (creq *r = group; r && !err; r = r->next) {
			for (size_t i = 0; i < r->n && !err; i++) {
				prep *p = &r->recs[i];
				hl_idx_entry e;
				p->item->created = 0;
				p->write = 0;
				if (p->moving) { /* a compaction copy: written while its entry is current */
					err = find_in_memory_locked(s, &p->item->id, &e);
					if (err == HL_NOTFOUND)
						err = hl_idx_get(txn, s->ix.obj, &p->item->id, &e);
					p->write = err == 0 && same_place(&e, p->moving);
					if (err == HL_NOTFOUND)
						err = 0;
					continue;
				}
				if (!idset_add(&set, &p->item->id))
					continue; /* an earlier record of this group stores it */
				err = find_in_memory_locked(s, &p->item->id, &e);
				if (err == HL_NOTFOUND)
					err = hl_idx_get(txn, s->ix.obj, &p->item->id, &e);
				p->write = err == HL_NOTFOUND;
				if (err == 0 || err == HL_NOTFOUND)
					err = 0;
			}
		}
		if (txn)
			hl_idx_read_end(&s->ix, txn);
		pthread_rwlock_unlock(&s->gen_lock);
	}
	uint32_t old_active = s->segs.active;
	uint64_t old_tail = s->segs.tail;
	int old_fd = s->segs.active_fd;
	uint64_t now = hl_wall_s();
	writer w = {.s = s};
	size_t written = 0;
	for (creq *r = group; r && !err; r = r->next) {
		for (size_t i = 0; i < r->n && !err; i++) {
			prep *p = &r->recs[i];
			if (!p->write)
				continue;
			encode_header(p);
			if ((err = hl_segs_reserve(&s->segs, HL_REC_HDR_LEN + p->payload_len, &p->segno, &p->off)) ||
			    (err = writer_add(&w, p->segno, p->off, p)))
				break;
			if (!s->dirty_lo || p->segno < s->dirty_lo)
				s->dirty_lo = p->segno;
			p->item->created = 1;
			written += !p->moving;
		}
	}
	free(set.slot);
	if (!err)
		err = writer_flush(&w);
	if (!err && s->dirty_lo && s->opt.sync == HL_SYNC_ALWAYS)
		err = sync_locked(s);
	if (err) {
		for (creq *r = group; r; r = r->next)
			for (size_t i = 0; i < r->n; i++)
				r->recs[i].item->created = 0;
		if (s->segs.sync_err)
			set_write_err(s, s->segs.sync_err); /* a new segment's sync failed: stop too */
		/* Bytes past the old tail are unindexed; the next group overwrites them. */
		s->segs.active = old_active;
		s->segs.tail = old_tail;
		s->segs.active_fd = old_fd;
		return sys_err(err);
	}
	for (creq *r = group; r; r = r->next) {
		for (size_t i = 0; i < r->n; i++) {
			prep *p = &r->recs[i];
			if (!p->item->created)
				continue;
			hl_idx_entry e = {p->segno, p->off, p->payload_len, p->item->len, p->flags, 0, now};
			if (p->moving) {
				e.atime = p->moving->atime; /* moving a record does not make it young */
				totals_add(&s->tot, p->moving, -1);
			}
			hl_memtab_put(s->active, &p->item->id, &e); /* room was ensured by the caller */
			totals_add(&s->tot, &e, 1);
		}
	}
	if (written) {
		atomic_fetch_add(&s->commits, 1);
		atomic_fetch_add(&s->puts_new, written);
		if (hl_memtab_room(s->active) < BATCH_MAX / 2)
			wake_flusher(s);
	}
	return 0;
}

/* Queues req and returns once a leader (maybe this thread) has committed it. */
static int commit(hl_local *s, creq *req)
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
		int err = flush_index(s);
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
static int hold(hl_local *s, const hl_id *id, uint64_t atime, int *held)
{
	pthread_mutex_lock(&s->touch_mu);
	int err = idvec_push(&s->touches, id);
	/* an object younger than the cutoff is no candidate (access times only grow) */
	*held = atomic_load(&s->gc_active) && atime <= atomic_load(&s->gc_cutoff);
	if (!err && *held)
		err = idvec_push(&s->held, id);
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
static int rely_on(hl_local *s, const hl_id *id, const hl_idx_entry *e)
{
	if (!needs_hold(s, e, hl_wall_s()))
		return 0;
	int held, err = hold(s, id, e->atime, &held);
	if (err || !held)
		return err;
	hl_idx_entry again;
	return find_entry(s, NULL, id, &again); /* a fresh read: sees the collector's last commit */
}

static int put_batch(hl_local *s, hl_put_item *items, size_t n, int ids_trusted)
{
	if (s->opt.read_only)
		return HL_READONLY;
	if (n && !items)
		return HL_INVALID;
	if (n > BATCH_MAX)
		return HL_TOOBIG;
	prep *p;
	uint64_t bytes;
	int err = prepare(s, items, n, ids_trusted, &p, &bytes);
	if (err)
		return err;
	atomic_fetch_add_explicit(&s->puts, n, memory_order_relaxed);
	/* Objects already present need no write (their access time is refreshed); the others are
	 * compressed here, in the caller's thread, so the leader only writes. If every object is
	 * present the call returns without queueing. */
	size_t present = 0;
	MDB_txn *txn;
	err = hl_idx_read_begin(&s->ix, &txn);
	for (size_t i = 0; i < n; i++) {
		hl_idx_entry e;
		if (!err && find_entry(s, txn, &items[i].id, &e) == 0 &&
		    rely_on(s, &items[i].id, &e) == 0)
			present++;
		else
			maybe_compress(s, &p[i]); /* absent, or gone under a collection: written */
	}
	if (!err)
		hl_idx_read_end(&s->ix, txn);
	if (present == n) {
		prep_free(p, n);
		return 0;
	}
	creq req = {.recs = p, .n = n, .bytes = bytes};
	pthread_cond_init(&req.cv, NULL);
	err = commit(s, &req);
	pthread_cond_destroy(&req.cv);
	prep_free(p, n);
	return err;
}

int hl_local_put_batch(hl_local *s, hl_put_item *items, size_t n)
{
	return put_batch(s, items, n, 0);
}

int hl_local_put_hashed(hl_local *s, hl_put_item *items, size_t n)
{
	return put_batch(s, items, n, 1);
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
	int err = sync_unlocked(s);
	if (!err)
		err = flush_index(s);
	if (!err)
		err = hl_idx_sync(&s->ix);
	if (err == HL_NOSPACE) { /* the segments are synced; only the index could not grow */
		uint64_t waiting = unindexed(s);
		pthread_mutex_lock(&s->commit_mu);
		err = s->dirty_lo ? sync_locked(s) : s->write_err ? HL_STOPPED : 0; /* written meanwhile, too */
		pthread_mutex_unlock(&s->commit_mu);
		if (!err)
			hl_log(HL_LOG_WARN, "the index cannot grow (no space left on device): %llu objects are "
			       "durable in the segment files and are indexed again when the store next opens",
			       (unsigned long long)waiting);
	}
	return sys_err(err);
}

/* ---------- opening: lock, create, replay the unindexed tail ---------- */

/* Re-validates records after the indexed tail (written, maybe synced, not yet indexed when the
 * process stopped) and keeps the complete ones in the active in-memory table, as if just
 * committed; reads only bytes past the tail and writes nothing to the index. A read-write handle
 * then makes the last segment writable at the end of the last good record and flushes the table
 * (the records synced first); when the index cannot grow (a full disk) the entries stay in memory
 * and the flusher writes them once there is room, so opening never needs free space. A read-only
 * handle keeps them for its lifetime: its reads, walks and verify see every acknowledged
 * object. */
static int replay_tail(hl_local *s)
{
	uint32_t *segs;
	size_t nsegs;
	int err = hl_segs_list(&s->segs, &segs, &nsegs);
	if (err)
		return err;
	MDB_txn *txn;
	if ((err = hl_idx_read_begin(&s->ix, &txn)) != 0) {
		free(segs);
		return err;
	}
	uint32_t tseg;
	uint64_t toff;
	hl_totals t;
	uint64_t now = hl_wall_s();
	uint32_t last = 0, first_found = 0;
	uint64_t last_off = 0, last_size = 0;
	int recreate = 0;
	hl_obj_entry *found = NULL;
	size_t nfound = 0, cap = 0, rawcap = 0;
	uint8_t *raw = NULL;
	if ((err = hl_idx_get_tail(txn, &s->ix, &tseg, &toff)) || (err = hl_idx_get_totals(txn, &s->ix, &t)))
		goto out;
	s->ptot = t;
	for (size_t i = 0; i < nsegs && !err; i++) {
		uint32_t seg = segs[i];
		if (seg < tseg)
			continue;
		int fd;
		uint64_t size, off = seg == tseg ? toff : HL_SEG_HDR_LEN;
		if ((err = hl_segs_fd(&s->segs, seg, &fd)) || (err = hl_io_size(fd, &size)))
			break;
		if (seg != tseg) {
			uint8_t sh[HL_SEG_HDR_LEN];
			uint32_t no;
			if (size < HL_SEG_HDR_LEN || hl_io_pread_full(fd, sh, sizeof sh, 0) ||
			    hl_seg_hdr_decode(sh, sizeof sh, &no) || no != seg) {
				if (i + 1 != nsegs) {
					hl_log(HL_LOG_ERROR, "segment %u: bad header", seg);
					err = HL_CORRUPT;
					break;
				}
				/* its creation never completed, so nothing in it was acknowledged */
				hl_log(HL_LOG_WARN, "segment %u: incomplete header, recreating it", seg);
				recreate = 1;
				last = seg;
				last_off = last_size = HL_SEG_HDR_LEN;
				break;
			}
		}
		while (off + HL_REC_HDR_LEN <= size) {
			hl_rec_hdr h;
			hl_idx_entry e;
			int rerr = read_record_at(s, fd, seg, off, size, now, &h, &e, &raw, &rawcap);
			if (rerr == HL_INVALID || rerr == HL_CORRUPT || rerr == HL_TOOBIG)
				break; /* the end of what was written whole */
			if (rerr) { /* out of memory, an I/O error: nothing is known of the rest; never cut */
				err = rerr;
				break;
			}
			hl_idx_entry cur;
			if (hl_idx_get(txn, s->ix.obj, &h.id, &cur) == HL_NOTFOUND) {
				hl_obj_entry *v = hl_grow(found, nfound, &cap, sizeof(*v), 1024);
				if (!v) {
					err = ENOMEM;
					break;
				}
				found = v;
				found[nfound++] = (hl_obj_entry){h.id, e};
				if (!first_found)
					first_found = seg;
			}
			off += HL_REC_HDR_LEN + h.stored_len;
		}
		last = seg;
		last_off = off;
		last_size = size;
	}
	hl_idx_read_end(&s->ix, txn);
	txn = NULL;
	if (err)
		goto out;
	/* the table: room for what was found, and for writing on (a read-write handle); a
	 * read-only handle with nothing past the tail needs none */
	s->tot = t;
	if (s->opt.read_only && !nfound)
		goto out;
	unsigned bits = s->opt.read_only ? 4 : MEMTAB_BITS;
	while (((size_t)1 << (bits - 1)) < nfound + (s->opt.read_only ? 0 : BATCH_MAX))
		bits++;
	hl_memtab *table = hl_memtab_new(bits);
	if (!table) {
		err = ENOMEM;
		goto out;
	}
	atomic_store(&s->active, table);
	for (size_t i = 0; i < nfound; i++) {
		hl_idx_entry dup;
		if (hl_memtab_get(table, &found[i].id, &dup) == 0)
			continue; /* the same object twice in the tail: the first copy serves */
		hl_memtab_put(table, &found[i].id, &found[i].e);
		totals_add(&t, &found[i].e, 1);
	}
	s->tot = t;
	if (s->opt.read_only) {
		if (hl_memtab_used(table))
			hl_log(HL_LOG_INFO, "%zu objects past the indexed tail, read from the segments",
			       hl_memtab_used(table));
		goto out;
	}
	if (last && last_off > last_size) {
		/* indexed bytes are missing (the file was cut short): those reads will report
		 * corruption; new records go to a fresh segment, never over the hole */
		hl_log(HL_LOG_ERROR, "segment %u: %llu indexed bytes missing at its end", last,
		       (unsigned long long)(last_off - last_size));
		recreate = 1;
		last++;
		last_off = HL_SEG_HDR_LEN;
	}
	if (last && (err = hl_segs_activate(&s->segs, last, last_off, recreate)) != 0)
		goto out;
	if (!nfound && !recreate)
		goto out;
	/* the records found are synced before the index names them; a new segment's place is
	 * recorded at once, so no later open recreates it over records written there */
	s->dirty_lo = first_found ? first_found : last;
	err = flush_index(s);
	if (err) { /* the flusher tries again; until then the entries serve from memory */
		hl_log(HL_LOG_WARN, "the index cannot take the %zu objects past its tail now (%s): they are "
		       "served from memory and indexed once it can", hl_memtab_used(table), hl_strerror(err));
		err = 0;
	} else if (nfound) {
		hl_log(HL_LOG_INFO, "recovered %zu records written after the last index commit", nfound);
	}
out:
	if (txn)
		hl_idx_read_end(&s->ix, txn);
	free(raw);
	free(found);
	free(segs);
	return err;
}

/* Refuses to turn a non-empty directory that is not a helios store into one; a prepared
 * helios.conf (the README's first deployment) and what an interrupted creation left are fine. */
static int dir_is_fresh(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return errno == ENOENT;
	struct dirent *e;
	int fresh = 1;
	while ((e = readdir(d)) != NULL) {
		const char *n = e->d_name;
		if (strcmp(n, ".") && strcmp(n, "..") && strcmp(n, "index") && strcmp(n, "segments") &&
		    strcmp(n, "LOCK") && strcmp(n, MARKER ".tmp") && strcmp(n, "helios.conf"))
			fresh = 0;
	}
	closedir(d);
	return fresh;
}

static int mkdir_p(const char *dir)
{
	char *p = hl_strdup(dir);
	if (!p)
		return ENOMEM;
	int err = 0;
	for (char *c = p + 1; *c && !err; c++) {
		if (*c == '/') {
			*c = 0;
			err = hl_io_mkdir(p, 0755);
			*c = '/';
		}
	}
	if (!err)
		err = hl_io_mkdir(p, 0755);
	free(p);
	return err;
}

static int read_marker(const char *path)
{
	int fd, err = hl_io_open(path, O_RDONLY, 0, &fd);
	if (err)
		return err == ENOENT ? HL_NOSTORE : err;
	char buf[64] = {0};
	ssize_t n = hl_io_cur->pread(fd, buf, sizeof buf - 1, 0);
	int rerr = n < 0 ? (errno ? errno : EIO) : 0;
	hl_io_close(fd);
	unsigned v;
	if (rerr)
		return rerr; /* unreadable is not corrupt */
	if (n == 0 || sscanf(buf, "helios-store %u", &v) != 1)
		return HL_CORRUPT;
	return v > STORE_FORMAT ? HL_VERSION : 0;
}

static int write_marker(const char *dir)
{
	char *fin = path_join(dir, MARKER);
	int err = fin ? hl_io_replace_file(fin, MARKER_TEXT, strlen(MARKER_TEXT)) : ENOMEM;
	free(fin);
	return err;
}

static int take_lock(hl_local *s)
{
	char *p = path_join(s->dir, "LOCK");
	if (!p)
		return ENOMEM;
	int err = hl_io_open(p, O_RDWR | O_CREAT, 0644, &s->lock_fd);
	free(p);
	if (err)
		return err;
	if (hl_io_cur->flock(s->lock_fd, LOCK_EX | LOCK_NB) < 0)
		return errno == EWOULDBLOCK ? HL_LOCKED : errno;
	return 0;
}

void hl_local_close(hl_local *s)
{
	if (!s)
		return;
	if (s->flusher_running) {
		pthread_mutex_lock(&s->wake_mu);
		s->stop = 1;
		pthread_cond_signal(&s->wake_cv);
		pthread_mutex_unlock(&s->wake_mu);
		pthread_join(s->flusher, NULL);
	}
	if (s->ix.env && !s->opt.read_only && s->active) {
		int err = flush_index(s);
		if (!err)
			err = hl_idx_sync(&s->ix);
		if (err)
			hl_log(HL_LOG_ERROR, "closing %s: %s (the next open replays the segment tail)", s->dir,
			       hl_strerror(err));
	}
	hl_memtab_free(s->active);
	hl_memtab_free(s->flushing);
	hl_memtab_free(s->spare);
	free(s->touches.v);
	free(s->touches_spare.v);
	free(s->held.v);
	hl_idx_close(&s->ix);
	hl_segs_close(&s->segs);
	if (s->lock_fd >= 0)
		hl_io_close(s->lock_fd);
	pthread_mutex_destroy(&s->q_mu);
	pthread_mutex_destroy(&s->commit_mu);
	pthread_rwlock_destroy(&s->gen_lock);
	pthread_mutex_destroy(&s->flush_mu);
	pthread_mutex_destroy(&s->gc_mu);
	pthread_mutex_destroy(&s->touch_mu);
	pthread_mutex_destroy(&s->wake_mu);
	pthread_cond_destroy(&s->wake_cv);
	free(s->dir);
	free(s);
}

int hl_local_open(const char *dir, const hl_options *opt, hl_local **out)
{
	*out = NULL;
	if (!dir || !*dir || !opt || opt->sync > HL_SYNC_NONE || opt->segment_size < 4096 ||
	    opt->compress_level < 0 || opt->compress_level > ZSTD_maxCLevel())
		return HL_INVALID;
	hl_local *s = hl_calloc(1, sizeof(*s));
	if (!s || !(s->dir = hl_strdup(dir))) {
		free(s);
		return ENOMEM;
	}
	s->opt = *opt;
	s->lock_fd = -1;
	s->touch_age = opt->gc_grace_s / 4 < TOUCH_AGE_S ? opt->gc_grace_s / 4 : TOUCH_AGE_S;
	pthread_mutex_init(&s->q_mu, NULL);
	pthread_mutex_init(&s->commit_mu, NULL);
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&s->gen_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	pthread_mutex_init(&s->flush_mu, NULL);
	pthread_mutex_init(&s->gc_mu, NULL);
	pthread_mutex_init(&s->touch_mu, NULL);
	pthread_mutex_init(&s->wake_mu, NULL);
	pthread_cond_init(&s->wake_cv, NULL);
	char *marker = path_join(dir, MARKER);
	int err = marker ? read_marker(marker) : ENOMEM;
	int creating = 0;
	if (err == HL_NOSTORE && opt->create && !opt->read_only) {
		if (!dir_is_fresh(dir))
			err = HL_NOTSTORE;
		else
			err = mkdir_p(dir), creating = 1;
	}
	free(marker);
	if (!err && !opt->read_only)
		err = take_lock(s);
	if (!err)
		err = hl_idx_open(&s->ix, dir, opt->read_only, opt->sync == HL_SYNC_NONE, opt->map_size);
	if (!err)
		err = hl_segs_open(&s->segs, dir, opt->read_only, opt->segment_size);
	if (!err && creating)
		err = write_marker(dir);
	if (!err)
		err = replay_tail(s);
	if (!err && !opt->read_only) {
		if ((err = pthread_create(&s->flusher, NULL, flusher_main, s)) == 0) {
			pthread_setname_np(s->flusher, "helios-index");
			s->flusher_running = 1;
		}
	}
	if (err) {
		hl_memtab_free(s->active);
		s->active = NULL; /* nothing to flush on the way out */
		hl_local_close(s);
		return sys_err(err);
	}
	*out = s;
	return 0;
}

/* ---------- rebuilding a damaged index from the segments ---------- */

/* The offset of the next record magic at or after from (size when there is none). */
static uint64_t next_record_magic(int fd, uint64_t from, uint64_t size)
{
	static const uint8_t magic[4] = {'H', 'L', 'R', 'C'};
	uint8_t buf[1 << 16];
	while (from + sizeof magic <= size) {
		size_t n = size - from < sizeof buf ? (size_t)(size - from) : sizeof buf;
		if (hl_io_pread_full(fd, buf, n, from))
			return size;
		const uint8_t *p = memmem(buf, n, magic, sizeof magic);
		if (p)
			return from + (uint64_t)(p - buf);
		from += n - (sizeof magic - 1);
	}
	return size;
}

/* Indexes every intact record of segment seg into txn (a later copy of an id replaces an earlier
 * one, as compaction writes them); a record that fails verification goes to the quarantine (lifted
 * at the end of the rebuild where a good copy exists). *end is the end of the last intact record. */
static int rebuild_segment(hl_local *s, MDB_txn *txn, uint32_t seg, uint64_t *end, hl_rebuild_report *rep)
{
	int fd;
	uint64_t size, off = HL_SEG_HDR_LEN, now = hl_wall_s();
	int err = hl_segs_fd(&s->segs, seg, &fd);
	if (!err)
		err = hl_io_size(fd, &size);
	uint8_t *raw = NULL;
	size_t cap = 0;
	*end = HL_SEG_HDR_LEN;
	while (!err && off + HL_REC_HDR_LEN <= size) {
		hl_rec_hdr h;
		hl_idx_entry e;
		int rerr = read_record_at(s, fd, seg, off, size, now, &h, &e, &raw, &cap);
		if (rerr == HL_INVALID) {
			rep->corrupt++; /* an unreadable stretch: on to the next record header */
			off = next_record_magic(fd, off + 1, size);
			continue;
		}
		off += HL_REC_HDR_LEN + h.stored_len;
		if (rerr == HL_TOOBIG) {
			rep->corrupt++;
		} else if (rerr == HL_CORRUPT) {
			rep->corrupt++;
			err = hl_idx_put(txn, s->ix.quar, &h.id, &e);
		} else if (rerr) {
			err = rerr;
		} else {
			rep->records++;
			*end = off;
			err = hl_idx_put(txn, s->ix.obj, &h.id, &e);
		}
	}
	free(raw);
	return err;
}

/* The name tables of an index, in the order the rebuild copies them. */
static void name_tables(hl_index *ix, MDB_dbi *out[6])
{
	out[0] = &ix->refs, out[1] = &ix->kv, out[2] = &ix->kvlru;
	out[3] = &ix->kvns, out[4] = &ix->large, out[5] = &ix->scache;
}

/* In a child process: writes every row of the damaged index's name tables to f as (table u8,
 * key length u32, value length u32, key, value), as far as each reads. Exits 0 when all were read
 * to their end, 1 when one was not, 2 when the index does not open. */
static void dump_names(const char *oldpath, uint64_t map_size, FILE *f)
{
	hl_index old;
	if (hl_idx_open_at(&old, oldpath, 1, 1, map_size) != 0 || !old.has_names)
		_exit(2);
	MDB_dbi *t[6];
	name_tables(&old, t);
	int damaged = 0;
	for (uint8_t i = 0; i < 6; i++) {
		MDB_txn *rt;
		MDB_cursor *cur;
		MDB_val k, v;
		if (hl_idx_read_begin(&old, &rt) != 0 || mdb_cursor_open(rt, *t[i], &cur) != 0) {
			damaged = 1;
			continue;
		}
		int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
		for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			uint8_t h[9] = {i};
			hl_put_le32(h + 1, (uint32_t)k.mv_size);
			hl_put_le32(h + 5, (uint32_t)v.mv_size);
			if (fwrite(h, 1, sizeof h, f) != sizeof h || fwrite(k.mv_data, 1, k.mv_size, f) != k.mv_size ||
			    fwrite(v.mv_data, 1, v.mv_size, f) != v.mv_size || fflush(f) != 0)
				_exit(1);
		}
		damaged |= rc != MDB_NOTFOUND;
	}
	_exit(damaged);
}

/* Copies the names from the damaged index into the new one. The damaged index is read in a child
 * process: LMDB pages carry no checksums, so reading damaged ones can fault, and a fault must
 * cost only the names not yet read, never the rebuild. */
static int copy_names(hl_local *s, const char *oldpath, hl_rebuild_report *rep)
{
	FILE *f = tmpfile();
	if (!f)
		return errno;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		fclose(f);
		return e;
	}
	if (pid == 0)
		dump_names(oldpath, s->opt.map_size, f);
	int status = 0;
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		rep->names_damaged = 1;
	rewind(f);
	MDB_dbi *t[6];
	name_tables(&s->ix, t);
	MDB_txn *wt;
	int err = hl_idx_write_begin(&s->ix, &wt);
	if (err) {
		fclose(f);
		return err;
	}
	uint8_t h[9], *row = NULL;
	size_t cap = 0;
	while (!err && fread(h, 1, sizeof h, f) == sizeof h) {
		size_t kl = hl_le32(h + 1), vl = hl_le32(h + 5);
		if (h[0] >= 6 || kl + vl > (64u << 20)) {
			rep->names_damaged = 1;
			break;
		}
		if (kl + vl + 1 > cap) {
			uint8_t *nr = hl_realloc(row, kl + vl + 1);
			if (!nr) {
				err = ENOMEM;
				break;
			}
			row = nr;
			cap = kl + vl + 1;
		}
		if (fread(row, 1, kl + vl, f) != kl + vl) {
			rep->names_damaged = 1; /* the child died mid-row */
			break;
		}
		MDB_val k = {kl, row}, v = {vl, row + kl};
		int prc = h[0] == 0 && (vl != HL_ID_LEN || !hl_names_ref_valid((const char *)row, kl))
		              ? MDB_BAD_VALSIZE /* not a ref: a damaged row */
		              : mdb_put(wt, *t[h[0]], &k, &v, 0);
		if (prc == MDB_BAD_VALSIZE)
			rep->names_damaged = 1; /* a row whose key or value the damage changed: dropped */
		else if ((err = hl_idx_err(prc)) == 0)
			rep->names_copied++;
	}
	free(row);
	fclose(f);
	return hl_idx_write_end(&s->ix, wt, err);
}

/* Removes an index directory left by an interrupted rebuild. */
static void remove_index_dir(const char *path)
{
	char f[4300];
	snprintf(f, sizeof f, "%s/data.mdb", path);
	hl_io_unlink(f);
	snprintf(f, sizeof f, "%s/lock.mdb", path);
	hl_io_unlink(f);
	hl_io_rmdir(path);
}

/* The new index, built in <dir>/index.new and renamed into place only when complete: an
 * interrupted rebuild leaves the old index where it was, and can simply be run again. */
static int rebuild_into(hl_local *s, const char *newpath, hl_rebuild_report *rep)
{
	int err = hl_idx_open_at(&s->ix, newpath, 0, 1, s->opt.map_size);
	if (err)
		return err;
	char oldpath[4200];
	snprintf(oldpath, sizeof oldpath, "%s/index", s->dir);
	err = copy_names(s, oldpath, rep);
	uint32_t *segs = NULL, last = 0;
	size_t nsegs = 0;
	uint64_t last_end = 0;
	if (!err)
		err = hl_segs_list(&s->segs, &segs, &nsegs);
	for (size_t i = 0; i < nsegs && !err; i++) {
		MDB_txn *txn;
		if ((err = hl_idx_write_begin(&s->ix, &txn)) != 0)
			break;
		err = rebuild_segment(s, txn, segs[i], &last_end, rep);
		last = segs[i];
		err = hl_idx_write_end(&s->ix, txn, err);
	}
	free(segs);
	/* the quarantine keeps only ids with no good copy; totals and the tail from what is indexed */
	MDB_txn *txn;
	if (!err && (err = hl_idx_write_begin(&s->ix, &txn)) == 0) {
		MDB_cursor *cur;
		MDB_val k, v;
		hl_totals t = {0};
		err = hl_idx_err(mdb_cursor_open(txn, s->ix.obj, &cur));
		for (int rc = err ? MDB_NOTFOUND : mdb_cursor_get(cur, &k, &v, MDB_FIRST); rc == 0 && !err;
		     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
			hl_idx_entry e;
			if ((err = hl_idx_entry_decode(v.mv_data, v.mv_size, &e)) == 0) {
				totals_add(&t, &e, 1);
				int rc2 = mdb_del(txn, s->ix.quar, &k, NULL);
				err = rc2 && rc2 != MDB_NOTFOUND ? hl_idx_err(rc2) : 0;
			}
		}
		if (!err)
			mdb_cursor_close(cur);
		rep->objects = t.objects;
		if (!err)
			err = hl_idx_set_totals(txn, &s->ix, &t);
		if (!err && last)
			err = hl_idx_set_tail(txn, &s->ix, last, last_end);
		err = hl_idx_write_end(&s->ix, txn, err);
	}
	if (!err)
		err = hl_idx_sync(&s->ix);
	hl_idx_close(&s->ix);
	return err;
}

int hl_local_rebuild_index(const char *dir, const hl_options *opt, hl_rebuild_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	hl_local *s = hl_calloc(1, sizeof(*s));
	if (!s || !(s->dir = hl_strdup(dir))) {
		free(s);
		return ENOMEM;
	}
	s->opt = *opt;
	s->opt.read_only = 0;
	s->lock_fd = -1;
	char *marker = path_join(dir, MARKER);
	int err = marker ? read_marker(marker) : ENOMEM;
	free(marker);
	if (!err)
		err = take_lock(s);
	if (!err)
		err = hl_segs_open(&s->segs, dir, 1, opt->segment_size);
	char newpath[4200], oldpath[4200], saved[4200];
	snprintf(newpath, sizeof newpath, "%s/index.new", dir);
	snprintf(oldpath, sizeof oldpath, "%s/index", dir);
	if (!err) {
		remove_index_dir(newpath);
		err = rebuild_into(s, newpath, rep);
	}
	if (!err && access(oldpath, F_OK) == 0) {
		snprintf(rep->saved, sizeof rep->saved, "index.damaged-%llu", (unsigned long long)hl_wall_s());
		snprintf(saved, sizeof saved, "%s/%s", dir, rep->saved);
		err = hl_io_rename(oldpath, saved);
	}
	if (!err)
		err = hl_io_rename(newpath, oldpath);
	if (!err)
		err = hl_io_sync_dir(dir);
	hl_segs_close(&s->segs);
	if (s->lock_fd >= 0)
		hl_io_close(s->lock_fd);
	free(s->dir);
	free(s);
	return sys_err(err);
}

/* ---------- walking, verifying, statistics ---------- */

/* A read transaction and a cursor on the object table, the memtables flushed first: every entry
 * in LMDB, one ordered, consistent walk. */
static int objects_cursor(hl_local *s, MDB_txn **txn, MDB_cursor **cur)
{
	int err = flush_index(s);
	if (!err)
		err = hl_idx_read_begin(&s->ix, txn);
	if (err)
		return err;
	if ((err = hl_idx_err(mdb_cursor_open(*txn, s->ix.obj, cur))) != 0)
		hl_idx_read_end(&s->ix, *txn);
	return err;
}

int hl_local_iterate(hl_local *s, hl_iter_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int err = objects_cursor(s, &txn, &cur);
	if (err)
		return err;
	MDB_val k, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	while (rc == 0) {
		hl_idx_entry e;
		hl_id id;
		hl_stat st;
		if (k.mv_size != HL_ID_LEN || hl_idx_entry_decode(v.mv_data, v.mv_size, &e)) {
			err = HL_CORRUPT;
			break;
		}
		memcpy(id.b, k.mv_data, HL_ID_LEN);
		stat_of(&e, &st);
		if ((err = fn(&id, &st, ctx)) != 0)
			break;
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	if (!err && rc != MDB_NOTFOUND)
		err = hl_idx_err(rc);
	mdb_cursor_close(cur);
	hl_idx_read_end(&s->ix, txn);
	return err;
}

int hl_local_ids_after(hl_local *s, const hl_id *after, hl_id *out, uint64_t *sizes, size_t max, size_t *n)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	*n = 0;
	int err = objects_cursor(s, &txn, &cur);
	if (err)
		return err;
	MDB_val k = {HL_ID_LEN, after ? (void *)after->b : NULL}, v;
	int rc = mdb_cursor_get(cur, &k, &v, after ? MDB_SET_RANGE : MDB_FIRST);
	if (rc == 0 && after && k.mv_size == HL_ID_LEN && !memcmp(k.mv_data, after->b, HL_ID_LEN))
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* strictly after */
	for (; rc == 0 && *n < max; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		hl_idx_entry e;
		if (k.mv_size != HL_ID_LEN || hl_idx_entry_decode(v.mv_data, v.mv_size, &e)) {
			err = HL_CORRUPT;
			break;
		}
		memcpy(out[*n].b, k.mv_data, HL_ID_LEN);
		if (sizes)
			sizes[*n] = HL_REC_HDR_LEN + e.stored_len;
		++*n;
	}
	if (!err && rc != 0 && rc != MDB_NOTFOUND)
		err = hl_idx_err(rc);
	mdb_cursor_close(cur);
	hl_idx_read_end(&s->ix, txn);
	return err;
}

typedef struct vjob {
	hl_local *s;
	hl_obj_entry *items;
	size_t n;
	atomic_size_t next;
	atomic_uint_fast64_t bytes;
	uint64_t total_bytes;
	pthread_mutex_t mu; /* serialises callbacks and the report */
	hl_verify_fn fn;
	hl_progress_fn progress;
	void *ctx;
	hl_verify_report rep;
} vjob;

static void *verify_worker(void *arg)
{
	vjob *j = arg;
	size_t cap = 0;
	uint8_t *buf = NULL;
	for (;;) {
		size_t i = atomic_fetch_add(&j->next, 1);
		if (i >= j->n)
			break;
		hl_obj_entry *it = &j->items[i];
		int err = 0;
		if (it->e.raw_len > cap) {
			free(buf);
			cap = it->e.raw_len;
			if (!(buf = hl_malloc(cap)))
				cap = 0, err = ENOMEM;
		}
		if (!err)
			err = read_following(j->s, &it->id, &it->e, fill_raw, buf);
		if (err == HL_NOTFOUND) /* collected since the walk began */
			err = 0;
		uint64_t done = atomic_fetch_add(&j->bytes, it->e.raw_len) + it->e.raw_len;
		pthread_mutex_lock(&j->mu);
		j->rep.objects++;
		if (err == HL_CORRUPT)
			j->rep.corrupt++;
		else if (err)
			j->rep.io_errors++;
		if (err && j->fn)
			j->fn(&it->id, err, j->ctx);
		if (j->progress && (i % 256 == 0 || i + 1 == j->n))
			j->progress(done, j->total_bytes, j->ctx);
		pthread_mutex_unlock(&j->mu);
	}
	free(buf);
	return NULL;
}

/* Snapshot of all entries of one database (obj or quar) in LMDB. With damaged set, a table that
 * cannot be walked to its end (corrupt pages or entries, a count that disagrees) gives what was
 * walked and *damaged = 1; without it, HL_CORRUPT. */
static int snapshot_lmdb(hl_local *s, MDB_dbi dbi, hl_obj_entry **out, size_t *count, uint64_t *bytes,
                         int *damaged)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int err = hl_idx_read_begin(&s->ix, &txn);
	if (err)
		return err;
	MDB_stat ms;
	if ((err = hl_idx_err(mdb_stat(txn, dbi, &ms))) ||
	    (err = hl_idx_err(mdb_cursor_open(txn, dbi, &cur)))) {
		hl_idx_read_end(&s->ix, txn);
		if (err != HL_CORRUPT || !damaged)
			return err;
		*damaged = 1; /* not even its root can be read */
		*count = 0;
		*bytes = 0;
		return (*out = hl_malloc(sizeof(**out))) ? 0 : ENOMEM;
	}
	hl_obj_entry *v = hl_malloc((ms.ms_entries ? ms.ms_entries : 1) * sizeof(*v));
	size_t n = 0;
	uint64_t total = 0;
	MDB_val k, val;
	int rc = v ? mdb_cursor_get(cur, &k, &val, MDB_FIRST) : ENOMEM;
	while (rc == 0 && n < ms.ms_entries) {
		if (k.mv_size != HL_ID_LEN || hl_idx_entry_decode(val.mv_data, val.mv_size, &v[n].e)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(v[n].id.b, k.mv_data, HL_ID_LEN);
		total += v[n].e.raw_len;
		n++;
		rc = mdb_cursor_get(cur, &k, &val, MDB_NEXT);
	}
	if (rc == 0) /* as many as the count says, and yet more: the count is wrong */
		rc = MDB_CORRUPTED;
	mdb_cursor_close(cur);
	hl_idx_read_end(&s->ix, txn);
	if (rc != MDB_NOTFOUND && rc != ENOMEM && damaged && hl_idx_err(rc) == HL_CORRUPT) {
		*damaged = 1;
		hl_log(HL_LOG_ERROR, "the index is damaged: its table could be walked for %zu entries (%s)",
		       n, mdb_strerror(rc));
	} else if (rc != MDB_NOTFOUND) {
		free(v);
		return rc == ENOMEM ? ENOMEM : hl_idx_err(rc);
	}
	*out = v;
	*count = n;
	*bytes = total;
	return 0;
}

typedef struct entry_list {
	hl_obj_entry *v;
	size_t n, cap;
	int err;
} entry_list;

static int list_entry(const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	entry_list *l = ctx;
	hl_obj_entry *v = hl_grow(l->v, l->n, &l->cap, sizeof(*v), 1024);
	if (!v)
		return l->err = ENOMEM;
	l->v = v;
	l->v[l->n++] = (hl_obj_entry){*id, *e};
	return 0;
}

static int cmp_obj_entry(const void *a, const void *b)
{
	return memcmp(((const hl_obj_entry *)a)->id.b, ((const hl_obj_entry *)b)->id.b, HL_ID_LEN);
}

/* The entries of the in-memory tables (those an index flush could not write yet, or a read-only
 * handle's replayed tail), sorted by id. */
static int memory_entries(hl_local *s, entry_list *l)
{
	memset(l, 0, sizeof(*l));
	if (!s->opt.read_only) {
		pthread_mutex_lock(&s->flush_mu);
		pthread_mutex_lock(&s->commit_mu);
	}
	if (s->active)
		hl_memtab_each(s->active, list_entry, l);
	if (s->flushing && !l->err)
		hl_memtab_each(s->flushing, list_entry, l);
	if (!s->opt.read_only) {
		pthread_mutex_unlock(&s->commit_mu);
		pthread_mutex_unlock(&s->flush_mu);
	}
	if (l->err || !l->n)
		return l->err;
	qsort(l->v, l->n, sizeof(*l->v), cmp_obj_entry);
	size_t n = 1; /* an id in both tables (a compaction moved it): the later record is current */
	for (size_t i = 1; i < l->n; i++) {
		hl_obj_entry *prev = &l->v[n - 1], *e = &l->v[i];
		if (cmp_obj_entry(prev, e) != 0)
			l->v[n++] = *e;
		else if (e->e.segment > prev->e.segment ||
		         (e->e.segment == prev->e.segment && e->e.offset > prev->e.offset))
			*prev = *e;
	}
	l->n = n;
	return 0;
}

/* Snapshot of all entries of one database (obj or quar); for obj, with the in-memory entries
 * merged in (they replace an older entry of the same id). */
static int snapshot_entries(hl_local *s, MDB_dbi dbi, hl_obj_entry **out, size_t *count, uint64_t *bytes,
                            int *damaged)
{
	int err = snapshot_lmdb(s, dbi, out, count, bytes, damaged);
	if (err || dbi != s->ix.obj)
		return err;
	entry_list mem;
	if ((err = memory_entries(s, &mem)) != 0 || mem.n == 0) {
		if (err)
			free(*out);
		free(mem.v);
		return err;
	}
	hl_obj_entry *disk = *out, *all = hl_malloc((*count + mem.n) * sizeof(*all));
	if (!all) {
		free(mem.v);
		return ENOMEM;
	}
	size_t i = 0, j = 0, n = 0;
	uint64_t total = 0;
	while (i < *count || j < mem.n) {
		int c = i == *count ? 1 : j == mem.n ? -1 : cmp_obj_entry(&disk[i], &mem.v[j]);
		if (c == 0)
			i++; /* the table's entry is the newer */
		all[n] = c < 0 ? disk[i++] : mem.v[j++];
		total += all[n++].e.raw_len;
	}
	free(disk);
	free(mem.v);
	*out = all;
	*count = n;
	*bytes = total;
	return 0;
}

int hl_local_verify(hl_local *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress,
                    void *ctx, hl_verify_report *out)
{
	vjob j;
	memset(&j, 0, sizeof j);
	hl_obj_entry *quar;
	size_t nquar;
	uint64_t qbytes;
	int err = flush_index(s);
	if (err == HL_NOSPACE)
		err = 0; /* the entries the index could not take are checked from memory */
	int damaged = 0;
	if (!err)
		err = snapshot_entries(s, s->ix.obj, &j.items, &j.n, &j.total_bytes, &damaged);
	if (err)
		return err;
	j.rep.index_damaged = damaged;
	j.rep.index_walked = j.n;
	if ((err = snapshot_entries(s, s->ix.quar, &quar, &nquar, &qbytes, &damaged)) != 0) {
		free(j.items);
		return err;
	}
	j.s = s;
	j.fn = fn;
	j.progress = progress;
	j.ctx = ctx;
	pthread_mutex_init(&j.mu, NULL);
	if (threads == 0) {
		long c = sysconf(_SC_NPROCESSORS_ONLN);
		threads = c > 0 ? (unsigned)c : 1;
	}
	if (threads > 256)
		threads = 256;
	pthread_t tid[256];
	unsigned started = 0;
	for (unsigned i = 1; i < threads; i++) {
		if (pthread_create(&tid[started], NULL, verify_worker, &j) != 0)
			break;
		pthread_setname_np(tid[started], "helios-verify");
		started++;
	}
	verify_worker(&j);
	for (unsigned i = 0; i < started; i++)
		pthread_join(tid[i], NULL);
	for (size_t i = 0; i < nquar; i++) {
		if (fn)
			fn(&quar[i].id, HL_CORRUPT, ctx);
		j.rep.quarantined++;
	}
	j.rep.bytes = atomic_load(&j.bytes);
	pthread_mutex_destroy(&j.mu);
	free(j.items);
	free(quar);
	j.rep.index_damaged |= damaged;
	if (out)
		*out = j.rep;
	if (j.rep.corrupt || j.rep.quarantined || j.rep.index_damaged)
		return HL_CORRUPT;
	return j.rep.io_errors ? EIO : 0;
}

int hl_local_check_index(hl_local *s, uint64_t *problems)
{
	*problems = 0;
	int err = flush_index(s);
	if (err == HL_NOSPACE)
		err = 0; /* the entries it could not take are checked from memory */
	hl_obj_entry *v = NULL;
	size_t n = 0;
	uint64_t bytes = 0;
	hl_stats st;
	if (err || (err = snapshot_entries(s, s->ix.obj, &v, &n, &bytes, NULL)) != 0 ||
	    (err = hl_local_stats(s, &st)) != 0) {
		free(v);
		return err;
	}
	if (st.objects != n || st.logical_bytes != bytes) {
		hl_log(HL_LOG_ERROR, "check: the totals say %llu objects of %llu bytes, the index holds %zu of %llu",
		       (unsigned long long)st.objects, (unsigned long long)st.logical_bytes, n,
		       (unsigned long long)bytes);
		++*problems;
	}
	uint32_t *segs = NULL;
	size_t nsegs = 0;
	if ((err = hl_segs_list(&s->segs, &segs, &nsegs)) != 0) {
		free(v);
		return err;
	}
	for (size_t i = 0; i < n; i++) { /* every entry inside a segment file that exists */
		uint64_t size;
		int fd, e2 = hl_segs_fd(&s->segs, v[i].e.segment, &fd);
		if (!e2)
			e2 = hl_io_size(fd, &size);
		if (e2 == ENOENT || (!e2 && v[i].e.offset + HL_REC_HDR_LEN + v[i].e.stored_len > size)) {
			char hex[HL_ID_HEX_LEN + 1];
			hl_id_format(&v[i].id, hex);
			hl_log(HL_LOG_ERROR, "check: %s points past the end of segment %u", hex, v[i].e.segment);
			++*problems;
		} else if (e2) {
			err = e2;
			break;
		}
	}
	if (!err && nsegs && !s->opt.read_only) { /* the newest segment ends at its last whole record */
		uint32_t last = segs[nsegs - 1];
		uint64_t size, off = HL_SEG_HDR_LEN, now = hl_wall_s();
		int fd;
		uint8_t *raw = NULL;
		size_t cap = 0;
		pthread_mutex_lock(&s->commit_mu);
		if ((err = hl_segs_fd(&s->segs, last, &fd)) == 0 && (err = hl_io_size(fd, &size)) == 0) {
			hl_rec_hdr h;
			hl_idx_entry e;
			int rerr;
			while (off < size && (rerr = read_record_at(s, fd, last, off, size, now, &h, &e, &raw, &cap)) != HL_INVALID)
				off += HL_REC_HDR_LEN + h.stored_len;
			if (off != size) {
				hl_log(HL_LOG_ERROR, "check: segment %u has %llu bytes after its last whole record", last,
				       (unsigned long long)(size - off));
				++*problems;
			}
		}
		pthread_mutex_unlock(&s->commit_mu);
		free(raw);
	}
	free(segs);
	free(v);
	return err ? err : *problems ? HL_CORRUPT : 0;
}

int hl_local_stats(hl_local *s, hl_stats *out)
{
	memset(out, 0, sizeof(*out));
	MDB_txn *txn;
	int err = hl_idx_read_begin(&s->ix, &txn);
	if (err)
		return err;
	hl_totals t;
	MDB_stat qs;
	err = hl_idx_get_totals(txn, &s->ix, &t);
	if (!err && !s->opt.read_only) {
		pthread_mutex_lock(&s->commit_mu);
		t = s->tot; /* includes entries not yet flushed to LMDB */
		pthread_mutex_unlock(&s->commit_mu);
	} else if (!err) { /* the index now, and what this handle found past its tail at open */
		t.objects += s->tot.objects - s->ptot.objects;
		t.raw_bytes += s->tot.raw_bytes - s->ptot.raw_bytes;
		t.stored_bytes += s->tot.stored_bytes - s->ptot.stored_bytes;
		t.compressed += s->tot.compressed - s->ptot.compressed;
	}
	if (!err)
		err = hl_idx_err(mdb_stat(txn, s->ix.quar, &qs));
	hl_idx_read_end(&s->ix, txn);
	if (err)
		return err;
	out->objects = t.objects;
	out->logical_bytes = t.raw_bytes;
	out->stored_bytes = t.stored_bytes;
	out->compressed = t.compressed;
	out->quarantined = qs.ms_entries;
	if ((err = hl_segs_bytes(&s->segs, &out->segment_bytes, &out->segments)) != 0)
		return err;
	out->puts = atomic_load(&s->puts);
	out->puts_new = atomic_load(&s->puts_new);
	out->gets = atomic_load(&s->gets);
	out->get_misses = atomic_load(&s->get_misses);
	out->corrupt_reads = atomic_load(&s->corrupt_reads);
	out->syncs = atomic_load(&s->syncs);
	out->commits = atomic_load(&s->commits);
	out->index_flushes = atomic_load(&s->flushes);
	out->unindexed = unindexed(s);
	return 0;
}

/* ---------- collection and compaction (driven by dedup/gc.c) ---------- */

int hl_local_entries(hl_local *s, hl_obj_entry **out, size_t *n)
{
	uint64_t bytes;
	int err = flush_index(s);
	return err ? err : snapshot_entries(s, s->ix.obj, out, n, &bytes, NULL);
}

int hl_local_gc_begin(hl_local *s, uint64_t cutoff)
{
	if (s->opt.read_only)
		return HL_READONLY;
	if (pthread_mutex_trylock(&s->gc_mu) != 0)
		return HL_BUSY;
	pthread_mutex_lock(&s->touch_mu);
	s->held.n = 0;
	atomic_store(&s->gc_cutoff, cutoff); /* before the flag: a finder that sees it sees this */
	atomic_store(&s->gc_active, 1);
	pthread_mutex_unlock(&s->touch_mu);
	/* every refresh queued before the flag went up reaches the index now; later ones are held */
	int err = flush_index(s);
	if (err)
		hl_local_gc_end(s);
	return err;
}

void hl_local_gc_end(hl_local *s)
{
	pthread_mutex_lock(&s->touch_mu);
	atomic_store(&s->gc_active, 0);
	s->held.n = 0;
	pthread_mutex_unlock(&s->touch_mu);
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

int hl_local_gc_delete_locked(hl_local *s, const hl_gc_victim *v, size_t n, uint64_t cutoff,
                              uint64_t *objects, uint64_t *bytes)
{
	MDB_txn *txn;
	int err = hl_idx_write_begin(&s->ix, &txn);
	if (err)
		return err;
	hl_totals p = s->ptot, t = s->tot;
	uint64_t nobj = 0, nbytes = 0;
	for (size_t i = 0; i < n && !err; i++) {
		hl_idx_entry cur, mem;
		err = hl_idx_get(txn, s->ix.obj, &v[i].id, &cur);
		if (err == HL_NOTFOUND) {
			err = 0;
			continue;
		}
		/* still where the walk saw it, not refreshed since, not rewritten in a memtable */
		if (err || !same_place(&cur, &v[i].e) || cur.atime > cutoff ||
		    find_in_memory(s, &v[i].id, &mem) != HL_NOTFOUND)
			continue;
		MDB_val k = {HL_ID_LEN, (void *)v[i].id.b};
		if ((err = hl_idx_err(mdb_del(txn, s->ix.obj, &k, NULL))) != 0)
			break;
		for (size_t j = 0; j < v[i].nlarge && !err; j++)
			err = hl_names_large_unmap(txn, &s->ix, &v[i].large[j], &v[i].id);
		totals_add(&p, &cur, -1);
		totals_add(&t, &cur, -1);
		nobj++;
		nbytes += HL_REC_HDR_LEN + cur.stored_len;
	}
	if (!err)
		err = hl_idx_set_totals(txn, &s->ix, &p);
	if ((err = hl_idx_write_end(&s->ix, txn, err)) != 0)
		return err;
	s->ptot = p;
	s->tot = t;
	*objects += nobj;
	*bytes += nbytes;
	return 0;
}

/* Copies the n records (all in one segment) into the active segment through the group commit;
 * entries that changed meanwhile are left alone. *moved counts the copies. */
static int relocate(hl_local *s, const hl_obj_entry *v, size_t n, uint64_t *moved)
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
		int rerr = read_following(s, &v[i].id, &e, fill_raw, buf);
		if (rerr || !same_place(&e, &v[i].e)) {
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
	if (!err && k && (err = prepare(s, items, k, 1, &p, &total)) == 0) {
		for (size_t i = 0; i < k; i++) {
			p[i].moving = &was[i];
			maybe_compress(s, &p[i]);
		}
		creq req = {.recs = p, .n = k, .bytes = bytes};
		pthread_cond_init(&req.cv, NULL);
		err = commit(s, &req);
		pthread_cond_destroy(&req.cv);
		for (size_t i = 0; i < k; i++)
			*moved += items[i].created;
		prep_free(p, k);
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
 * live bytes are below `below`, moves writes to a fresh segment so it can be compacted; *v is
 * then listed again (every entry in the old one is indexed by now). */
static int roll_if_sparse(hl_local *s, hl_obj_entry **v, size_t *n, double below, uint32_t *active)
{
	pthread_mutex_lock(&s->commit_mu);
	uint32_t seg = s->segs.active;
	uint64_t size = s->segs.tail;
	pthread_mutex_unlock(&s->commit_mu);
	if (seg != *active)
		return 0; /* rolled since the listing began: the next run looks at it */
	uint64_t live = 0;
	for (size_t i = 0; i < *n; i++)
		if ((*v)[i].e.segment == seg)
			live += HL_REC_HDR_LEN + (*v)[i].e.stored_len;
	if (!seg || size < s->opt.segment_size / 4 || (double)live >= below * (double)size)
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
			if (find_entry(s, NULL, &v[j].id, &cur) == 0 && same_place(&cur, &v[j].e))
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
			set_write_err(s, s->segs.sync_err);
			pthread_mutex_unlock(&s->commit_mu);
		}
	}
	g->n = 0;
	g->moved_bytes = 0;
	return err;
}

/* Caller holds the collection (hl_local_gc_begin). */
int hl_local_compact(hl_local *s, double below, hl_compact_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	if (s->opt.read_only)
		return HL_READONLY;
	hl_obj_entry *v;
	size_t n;
	/* the active segment as it was before the listing: every older one is complete in it */
	pthread_mutex_lock(&s->commit_mu);
	uint32_t active = s->segs.active;
	pthread_mutex_unlock(&s->commit_mu);
	int err = hl_local_entries(s, &v, &n);
	if (err)
		return err;
	if ((err = roll_if_sparse(s, &v, &n, below, &active)) != 0) {
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
		int fd;
		while (at < n && v[at].e.segment < seg)
			at++;
		size_t first = at;
		while (at < n && v[at].e.segment == seg)
			live += HL_REC_HDR_LEN + v[at++].e.stored_len;
		if (seg >= active || hl_segs_fd(&s->segs, seg, &fd) || hl_io_size(fd, &size))
			continue;
		rep->segments_seen++;
		if ((double)live >= below * (double)size)
			continue;
		for (size_t j = first; j < at && !err;) { /* copy the live records out, in batches */
			size_t b = j;
			uint64_t bytes = 0;
			while (b < at && b - j < RELOCATE_BATCH && bytes < RELOCATE_BYTES)
				bytes += v[b++].e.raw_len;
			err = relocate(s, v + j, b - j, &rep->records_moved);
			rep->bytes_moved += bytes;
			g.moved_bytes += bytes;
			j = b;
		}
		g.picked[g.n++] = (compact_seg){seg, size, first, at};
		if (!err && (g.n >= GROUP_SEGMENTS || g.moved_bytes >= GROUP_BYTES))
			err = finish_group(s, v, &g, rep);
	}
	if (!err)
		err = finish_group(s, v, &g, rep);
	free(v);
	free(segs);
	free(g.picked);
	return sys_err(err);
}
