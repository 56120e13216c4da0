/* store.c — the durable local store: open/create/lock, group commit, verified reads, quarantine,
 * tail replay after a crash, verify. See store.h for the write-path contract. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <dirent.h>
#include <unistd.h>
#include <zstd.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/io.h"
#include "base/log.h"
#include "hash/hash.h"
#include "store/index.h"
#include "store/record.h"
#include "store/segment.h"
#include "store/store.h"

#define MARKER "HELIOS"
#define MARKER_TEXT "helios-store 1\n"
#define STORE_FORMAT 1
#define GROUP_MAX_BYTES (64u << 20) /* a commit group stops growing here */
#define COMPRESS_MIN 128
#define COMPRESS_MAX (64u << 20)
#define TOUCH_MAX 4096
#define TOUCH_AGE_S 60 /* refresh an access time only when older than this */

/* One record being written: header, payload (raw or compressed), outcome. */
typedef struct prep {
	hl_put_item *item;
	uint8_t hdr[HL_REC_HDR_LEN];
	const void *payload;
	size_t payload_len;
	void *zbuf;
	uint16_t flags;
} prep;

/* One caller's batch in the commit queue. */
typedef struct creq {
	prep *recs;
	size_t n;
	uint64_t bytes;
	int status;
	int done;
	struct creq *next;
} creq;

struct hl_local {
	char *dir;
	hl_options opt;
	int lock_fd;
	hl_index ix;
	hl_segset segs;

	pthread_mutex_t q_mu;        /* commit queue */
	pthread_cond_t q_cv;
	creq *q_head, *q_tail;

	pthread_mutex_t commit_mu;   /* held by the committing leader, the syncer, sync and close */
	int write_err;               /* sticky after a failed sync: writes refused until reopen */
	uint32_t dirty_lo;           /* lowest segment written since the last sync (0: clean) */
	int idx_dirty;

	pthread_mutex_t touch_mu;
	hl_id touches[TOUCH_MAX];
	size_t ntouch;

	pthread_t syncer;            /* sync=batch: "helios-sync" */
	int syncer_running, stop;
	pthread_cond_t stop_cv;

	atomic_uint_fast64_t puts, puts_new, gets, get_misses, corrupt_reads, syncs, commits;
};

/* ---------- helpers ---------- */

static int sys_err(int e)
{
	return e == ENOSPC || e == EDQUOT ? HL_NOSPACE : e;
}

static char *path_join(const char *a, const char *b)
{
	size_t n = strlen(a) + strlen(b) + 2;
	char *p = malloc(n);
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
		if (!(zbuf = malloc(e->stored_len ? e->stored_len : 1)))
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

/* Moves a corrupt record's entry from the index to the quarantine (read-write handles only),
 * unless the entry has meanwhile been replaced by a good copy. */
static void quarantine(hl_local *s, const hl_id *id, const hl_idx_entry *e)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	atomic_fetch_add(&s->corrupt_reads, 1);
	hl_log(HL_LOG_ERROR, "object %s: corrupt record in segment %u at offset %llu%s", hex,
	       e->segment, (unsigned long long)e->offset, s->opt.read_only ? "" : "; quarantined");
	if (s->opt.read_only)
		return;
	MDB_txn *txn;
	if (mdb_txn_begin(s->ix.env, NULL, 0, &txn))
		return;
	hl_idx_entry cur;
	hl_totals t;
	MDB_val k = {HL_ID_LEN, (void *)id->b};
	if (hl_idx_get(txn, s->ix.obj, id, &cur) == 0 && cur.segment == e->segment &&
	    cur.offset == e->offset && hl_idx_get_totals(txn, &s->ix, &t) == 0 &&
	    hl_idx_put(txn, s->ix.quar, id, e) == 0 && mdb_del(txn, s->ix.obj, &k, NULL) == 0) {
		t.objects--;
		t.raw_bytes -= e->raw_len;
		t.stored_bytes -= HL_REC_HDR_LEN + e->stored_len;
		if (e->flags & HL_REC_F_ZSTD)
			t.compressed--;
		if (hl_idx_set_totals(txn, &s->ix, &t) == 0 && mdb_txn_commit(txn) == 0)
			return;
		hl_log(HL_LOG_ERROR, "object %s: could not record the quarantine", hex);
		return;
	}
	mdb_txn_abort(txn);
}

/* Finds id and reads it through fill(); on a corrupt record quarantines it and reports
 * HL_CORRUPT. A quarantined id also reports HL_CORRUPT, so callers learn why it is gone. */
typedef int (*fill_fn)(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx);

static int locate_and_read(hl_local *s, const hl_id *id, fill_fn fill, void *ctx)
{
	atomic_fetch_add_explicit(&s->gets, 1, memory_order_relaxed);
	hl_idx_entry e;
	int err = hl_idx_lookup(&s->ix, s->ix.obj, id, &e);
	if (err == HL_NOTFOUND) {
		atomic_fetch_add_explicit(&s->get_misses, 1, memory_order_relaxed);
		hl_idx_entry q;
		return hl_idx_lookup(&s->ix, s->ix.quar, id, &q) == 0 ? HL_CORRUPT : HL_NOTFOUND;
	}
	if (err)
		return err;
	err = fill(s, id, &e, ctx);
	if (err == HL_CORRUPT)
		quarantine(s, id, &e);
	return err;
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

struct into_ctx {
	void *dst;
	size_t cap, *len;
};

static int fill_into(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	struct into_ctx *c = ctx;
	*c->len = (size_t)e->raw_len;
	if (e->raw_len > c->cap)
		return HL_TOOBIG;
	int err = read_record(s, id, e, c->dst);
	if (err == HL_CORRUPT)
		memset(c->dst, 0, (size_t)e->raw_len); /* never leave unverified bytes behind */
	return err;
}

int hl_local_get_into(hl_local *s, const hl_id *id, void *dst, size_t cap, size_t *len)
{
	struct into_ctx c = {dst, cap, len};
	return locate_and_read(s, id, fill_into, &c);
}

int hl_local_has(hl_local *s, const hl_id *id)
{
	hl_idx_entry e;
	return hl_idx_lookup(&s->ix, s->ix.obj, id, &e);
}

static void stat_of(const hl_idx_entry *e, hl_stat *st)
{
	st->size = e->raw_len;
	st->stored_size = HL_REC_HDR_LEN + e->stored_len;
	st->flags = (e->flags & HL_REC_F_ZSTD) ? HL_STAT_COMPRESSED : 0;
	st->segment = e->segment;
	st->offset = e->offset;
	st->atime = e->atime;
}

int hl_local_stat(hl_local *s, const hl_id *id, hl_stat *out)
{
	hl_idx_entry e;
	int err = hl_idx_lookup(&s->ix, s->ix.obj, id, &e);
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
static int prepare(hl_local *s, hl_put_item *items, size_t n, prep **out, uint64_t *bytes)
{
	prep *p = calloc(n ? n : 1, sizeof(*p));
	if (!p)
		return ENOMEM;
	uint64_t total = 0;
	for (size_t i = 0; i < n; i++) {
		hl_put_item *it = &items[i];
		if (!it->data && it->len)
			return prep_free(p, n), HL_INVALID;
		if (it->len > s->opt.max_object_size)
			return prep_free(p, n), HL_TOOBIG;
		hl_id id;
		hl_hash(it->data, it->len, &id);
		if (it->check_id && !hl_id_equal(&id, &it->id))
			return prep_free(p, n), HL_MISMATCH;
		it->id = id;
		it->created = 0;
		p[i].item = it;
		p[i].payload = it->data;
		p[i].payload_len = it->len;
		total += HL_REC_HDR_LEN + it->len;
	}
	*out = p;
	*bytes = total;
	return 0;
}

/* Compresses records that shrink; called for records that will really be written. */
static void maybe_compress(hl_local *s, prep *p)
{
	size_t len = p->item->len;
	if (s->opt.compress_level <= 0 || len < COMPRESS_MIN || len > COMPRESS_MAX)
		return;
	ZSTD_CCtx *c = thread_cctx();
	size_t bound = ZSTD_compressBound(len);
	void *z = c ? malloc(bound) : NULL;
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
	p->flags = HL_REC_F_ZSTD;
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

/* Syncs every segment written since the last sync, then (if asked) the index. commit_mu held. */
static int sync_locked(hl_local *s, int with_index)
{
	int err = 0;
	if (s->dirty_lo) {
		for (uint32_t seg = s->dirty_lo; seg <= s->segs.active && !err; seg++) {
			int fd;
			err = hl_segs_fd(&s->segs, seg, &fd);
			if (err == ENOENT)
				err = 0;
			else if (!err)
				err = hl_io_datasync(fd);
		}
		if (!err)
			s->dirty_lo = 0;
		atomic_fetch_add(&s->syncs, 1);
	}
	if (!err && with_index && s->idx_dirty) {
		err = hl_idx_sync(&s->ix);
		if (!err)
			s->idx_dirty = 0;
	}
	if (err && !s->write_err) {
		/* After a failed sync the kernel may have dropped the dirty pages: trust nothing more
		 * from this handle until a reopen re-validates the tail. */
		s->write_err = err;
		hl_log(HL_LOG_ERROR, "sync failed (%s); writes disabled until the store is reopened",
		       hl_strerror(err));
	}
	return err;
}

/* Applies queued access-time refreshes in txn; returns how many were queued. */
static size_t apply_touches(hl_local *s, MDB_txn *txn)
{
	hl_id t[TOUCH_MAX];
	pthread_mutex_lock(&s->touch_mu);
	size_t n = s->ntouch;
	memcpy(t, s->touches, n * sizeof(hl_id));
	s->ntouch = 0;
	pthread_mutex_unlock(&s->touch_mu);
	uint64_t now = hl_wall_s();
	for (size_t i = 0; i < n; i++) {
		hl_idx_entry e;
		if (hl_idx_get(txn, s->ix.obj, &t[i], &e) == 0 && e.atime < now) {
			e.atime = now;
			hl_idx_put(txn, s->ix.obj, &t[i], &e);
		}
	}
	return n;
}

/* Writes one group of requests: records, sync, index commit. commit_mu held. On failure nothing
 * of the group is visible and the append position is restored. */
static int commit_group_locked(hl_local *s, creq *group)
{
	if (s->write_err)
		return s->write_err;
	MDB_txn *txn;
	int err = hl_idx_err(mdb_txn_begin(s->ix.env, NULL, 0, &txn));
	if (err)
		return err;
	hl_totals t;
	uint32_t old_active = s->segs.active;
	uint64_t old_tail = s->segs.tail;
	int old_fd = s->segs.active_fd;
	uint64_t now = hl_wall_s();
	writer w = {.s = s};
	size_t written = 0;
	if ((err = hl_idx_get_totals(txn, &s->ix, &t)) != 0)
		goto fail;
	for (creq *r = group; r; r = r->next) {
		for (size_t i = 0; i < r->n; i++) {
			prep *p = &r->recs[i];
			hl_idx_entry e;
			err = hl_idx_get(txn, s->ix.obj, &p->item->id, &e);
			if (err == 0) { /* present already (or earlier in this group) */
				p->item->created = 0;
				continue;
			}
			if (err != HL_NOTFOUND)
				goto fail;
			maybe_compress(s, p);
			encode_header(p);
			uint32_t segno;
			uint64_t off;
			if ((err = hl_segs_reserve(&s->segs, HL_REC_HDR_LEN + p->payload_len, &segno, &off)))
				goto fail;
			if (!s->dirty_lo || segno < s->dirty_lo)
				s->dirty_lo = segno;
			e = (hl_idx_entry){segno, off, p->payload_len, p->item->len, p->flags, 0, now};
			MDB_val k = {HL_ID_LEN, p->item->id.b};
			int rc = mdb_del(txn, s->ix.quar, &k, NULL); /* a good copy replaces a quarantined one */
			if ((rc && rc != MDB_NOTFOUND && (err = hl_idx_err(rc))) ||
			    (err = hl_idx_put(txn, s->ix.obj, &p->item->id, &e)) ||
			    (err = writer_add(&w, segno, off, p)))
				goto fail;
			p->item->created = 1;
			t.objects++;
			t.raw_bytes += p->item->len;
			t.stored_bytes += HL_REC_HDR_LEN + p->payload_len;
			t.compressed += (p->flags & HL_REC_F_ZSTD) != 0;
			written++;
		}
	}
	if ((err = writer_flush(&w)) != 0)
		goto fail;
	if (written && s->opt.sync == HL_SYNC_ALWAYS && (err = sync_locked(s, 0)) != 0)
		goto fail;
	int touched = apply_touches(s, txn);
	if (!written && !touched) {
		mdb_txn_abort(txn);
		return 0;
	}
	if (written && ((err = hl_idx_set_tail(txn, &s->ix, s->segs.active, s->segs.tail)) ||
	                (err = hl_idx_set_totals(txn, &s->ix, &t))))
		goto fail;
	if ((err = hl_idx_err(mdb_txn_commit(txn))) != 0) {
		txn = NULL;
		goto fail;
	}
	s->idx_dirty = 1;
	atomic_fetch_add(&s->commits, 1);
	atomic_fetch_add(&s->puts_new, written);
	return 0;
fail:
	if (txn)
		mdb_txn_abort(txn);
	for (creq *r = group; r; r = r->next)
		for (size_t i = 0; i < r->n; i++)
			r->recs[i].item->created = 0;
	/* Bytes past the old tail are unindexed; the next group overwrites them. */
	s->segs.active = old_active;
	s->segs.tail = old_tail;
	s->segs.active_fd = old_fd;
	return sys_err(err);
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
		pthread_cond_wait(&s->q_cv, &s->q_mu);
	if (req->done) {
		pthread_mutex_unlock(&s->q_mu);
		return req->status;
	}
	/* Leader: wait for the previous group to finish, then take everything queued by now (up
	 * to a byte bound) as this group. Callers that arrive meanwhile form the next group. */
	pthread_mutex_unlock(&s->q_mu);
	pthread_mutex_lock(&s->commit_mu);
	pthread_mutex_lock(&s->q_mu);
	creq *last = req;
	uint64_t bytes = req->bytes;
	while (last->next && bytes + last->next->bytes <= GROUP_MAX_BYTES) {
		last = last->next;
		bytes += last->bytes;
	}
	s->q_head = last->next;
	if (!s->q_head)
		s->q_tail = NULL;
	last->next = NULL;
	pthread_cond_broadcast(&s->q_cv); /* the new head, if any, queues up for commit_mu */
	pthread_mutex_unlock(&s->q_mu);

	int status = commit_group_locked(s, req);
	pthread_mutex_unlock(&s->commit_mu);

	pthread_mutex_lock(&s->q_mu);
	for (creq *r = req; r; r = r->next) {
		r->status = status;
		r->done = 1;
	}
	pthread_cond_broadcast(&s->q_cv);
	pthread_mutex_unlock(&s->q_mu);
	return status;
}

static void touch_later(hl_local *s, const hl_id *id)
{
	pthread_mutex_lock(&s->touch_mu);
	if (s->ntouch < TOUCH_MAX)
		s->touches[s->ntouch++] = *id;
	pthread_mutex_unlock(&s->touch_mu);
}

int hl_local_put_batch(hl_local *s, hl_put_item *items, size_t n)
{
	if (s->opt.read_only)
		return HL_READONLY;
	if (n && !items)
		return HL_INVALID;
	prep *p;
	uint64_t bytes;
	int err = prepare(s, items, n, &p, &bytes);
	if (err)
		return err;
	atomic_fetch_add_explicit(&s->puts, n, memory_order_relaxed);
	/* Fast path: every object already present ⇒ no queue, no write; refresh access times. */
	size_t present = 0;
	MDB_txn *txn;
	uint64_t now = hl_wall_s();
	if (hl_idx_read_begin(&s->ix, &txn) == 0) {
		for (size_t i = 0; i < n; i++) {
			hl_idx_entry e;
			if (hl_idx_get(txn, s->ix.obj, &items[i].id, &e) != 0)
				break;
			if (e.atime + TOUCH_AGE_S < now)
				touch_later(s, &items[i].id);
			present++;
		}
		hl_idx_read_end(&s->ix, txn);
	}
	if (present == n) {
		prep_free(p, n);
		return 0;
	}
	creq req = {.recs = p, .n = n, .bytes = bytes};
	err = commit(s, &req);
	prep_free(p, n);
	return err;
}

/* ---------- sync=batch background thread ---------- */

static void *syncer_main(void *arg)
{
	hl_local *s = arg;
	pthread_mutex_lock(&s->commit_mu);
	while (!s->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)s->opt.sync_interval_ms * 1000000u;
		ts.tv_sec += (time_t)(ns / 1000000000u);
		ts.tv_nsec = (long)(ns % 1000000000u);
		pthread_cond_timedwait(&s->stop_cv, &s->commit_mu, &ts);
		if (!s->stop && (s->dirty_lo || s->idx_dirty) && !s->write_err)
			sync_locked(s, 1);
	}
	pthread_mutex_unlock(&s->commit_mu);
	return NULL;
}

int hl_local_sync(hl_local *s)
{
	if (s->opt.read_only)
		return 0;
	pthread_mutex_lock(&s->commit_mu);
	int err = s->write_err ? s->write_err : sync_locked(s, 1);
	pthread_mutex_unlock(&s->commit_mu);
	return sys_err(err);
}

/* ---------- opening: lock, create, replay the unindexed tail ---------- */

/* Re-validates records after the indexed tail (written, maybe synced, not yet indexed when the
 * process stopped), indexes the complete ones, and makes the last segment writable at the end of
 * the last good record. Reads only bytes past the tail. */
static int replay_tail(hl_local *s)
{
	uint32_t *segs;
	size_t nsegs;
	int err = hl_segs_list(&s->segs, &segs, &nsegs);
	if (err)
		return err;
	MDB_txn *txn;
	if ((err = hl_idx_err(mdb_txn_begin(s->ix.env, NULL, 0, &txn))) != 0) {
		free(segs);
		return err;
	}
	uint32_t tseg;
	uint64_t toff;
	hl_totals t;
	uint64_t recovered = 0, now = hl_wall_s();
	uint32_t last = 0;
	uint64_t last_off = 0, last_size = 0;
	int recreate = 0;
	if ((err = hl_idx_get_tail(txn, &s->ix, &tseg, &toff)) || (err = hl_idx_get_totals(txn, &s->ix, &t)))
		goto out;
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
			uint8_t hb[HL_REC_HDR_LEN];
			hl_rec_hdr h;
			if (hl_io_pread_full(fd, hb, sizeof hb, off) || hl_rec_decode(hb, sizeof hb, &h) ||
			    off + HL_REC_HDR_LEN + h.stored_len > size)
				break;
			hl_idx_entry e = {seg, off, h.stored_len, h.raw_len, h.flags, 0, now};
			uint8_t *raw = h.raw_len <= s->opt.max_object_size ? malloc(h.raw_len ? h.raw_len : 1) : NULL;
			int bad = !raw || read_record(s, &h.id, &e, raw) != 0;
			free(raw);
			if (bad)
				break;
			hl_idx_entry cur;
			if (hl_idx_get(txn, s->ix.obj, &h.id, &cur) == HL_NOTFOUND) {
				if ((err = hl_idx_put(txn, s->ix.obj, &h.id, &e)) != 0)
					break;
				t.objects++;
				t.raw_bytes += h.raw_len;
				t.stored_bytes += HL_REC_HDR_LEN + h.stored_len;
				t.compressed += (h.flags & HL_REC_F_ZSTD) != 0;
				recovered++;
			}
			off += HL_REC_HDR_LEN + h.stored_len;
		}
		last = seg;
		last_off = off;
		last_size = size;
	}
	if (err)
		goto out;
	if (last && last_off > last_size) {
		/* indexed bytes are missing (the file was cut short): those reads will report
		 * corruption; new records go to a fresh segment, never over the hole */
		hl_log(HL_LOG_ERROR, "segment %u: %llu indexed bytes missing at its end", last,
		       (unsigned long long)(last_off - last_size));
		recreate = 1;
		last++;
		last_off = HL_SEG_HDR_LEN;
	}
	if (recreate && (err = hl_segs_activate(&s->segs, last, last_off, 1)) != 0)
		goto out;
	if (last && ((err = hl_idx_set_tail(txn, &s->ix, last, last_off)) ||
	             (err = hl_idx_set_totals(txn, &s->ix, &t))))
		goto out;
	err = hl_idx_err(mdb_txn_commit(txn));
	txn = NULL;
	if (!err && last && !recreate)
		err = hl_segs_activate(&s->segs, last, last_off, 0);
	if (!err && recovered)
		hl_log(HL_LOG_INFO, "recovered %llu records written after the last index commit",
		       (unsigned long long)recovered);
out:
	if (txn)
		mdb_txn_abort(txn);
	free(segs);
	return err;
}

/* Refuses to turn a non-empty directory that is not a helios store into one. */
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
		    strcmp(n, "LOCK") && strcmp(n, MARKER ".tmp"))
			fresh = 0;
	}
	closedir(d);
	return fresh;
}

static int mkdir_p(const char *dir)
{
	char *p = strdup(dir);
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
	hl_io_close(fd);
	unsigned v;
	if (n <= 0 || sscanf(buf, "helios-store %u", &v) != 1)
		return HL_CORRUPT;
	return v > STORE_FORMAT ? HL_VERSION : 0;
}

static int write_marker(const char *dir)
{
	char *tmp = path_join(dir, MARKER ".tmp"), *fin = path_join(dir, MARKER);
	int fd = -1, err = (!tmp || !fin) ? ENOMEM : 0;
	if (!err)
		err = hl_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd);
	if (!err)
		err = hl_io_pwrite_full(fd, MARKER_TEXT, strlen(MARKER_TEXT), 0);
	if (!err)
		err = hl_io_datasync(fd);
	if (fd >= 0)
		hl_io_close(fd);
	if (!err && rename(tmp, fin) < 0)
		err = errno;
	if (!err)
		err = hl_io_sync_dir(dir);
	free(tmp);
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
	if (s->syncer_running) {
		pthread_mutex_lock(&s->commit_mu);
		s->stop = 1;
		pthread_cond_signal(&s->stop_cv);
		pthread_mutex_unlock(&s->commit_mu);
		pthread_join(s->syncer, NULL);
	}
	if (s->ix.env && !s->opt.read_only) {
		pthread_mutex_lock(&s->commit_mu);
		if (s->ntouch && !s->write_err) {
			MDB_txn *txn;
			if (mdb_txn_begin(s->ix.env, NULL, 0, &txn) == 0) {
				apply_touches(s, txn);
				if (mdb_txn_commit(txn) == 0)
					s->idx_dirty = 1;
			}
		}
		if (!s->write_err)
			sync_locked(s, 1);
		pthread_mutex_unlock(&s->commit_mu);
	}
	hl_idx_close(&s->ix);
	hl_segs_close(&s->segs);
	if (s->lock_fd >= 0)
		hl_io_close(s->lock_fd);
	pthread_mutex_destroy(&s->q_mu);
	pthread_cond_destroy(&s->q_cv);
	pthread_mutex_destroy(&s->commit_mu);
	pthread_mutex_destroy(&s->touch_mu);
	pthread_cond_destroy(&s->stop_cv);
	free(s->dir);
	free(s);
}

int hl_local_open(const char *dir, const hl_options *opt, hl_local **out)
{
	*out = NULL;
	if (!dir || !*dir || !opt || opt->sync > HL_SYNC_NONE || opt->segment_size < 4096 ||
	    opt->compress_level < 0 || opt->compress_level > ZSTD_maxCLevel())
		return HL_INVALID;
	hl_local *s = calloc(1, sizeof(*s));
	if (!s || !(s->dir = strdup(dir))) {
		free(s);
		return ENOMEM;
	}
	s->opt = *opt;
	s->lock_fd = -1;
	pthread_mutex_init(&s->q_mu, NULL);
	pthread_cond_init(&s->q_cv, NULL);
	pthread_mutex_init(&s->commit_mu, NULL);
	pthread_mutex_init(&s->touch_mu, NULL);
	pthread_cond_init(&s->stop_cv, NULL);
	char *marker = path_join(dir, MARKER);
	int err = marker ? read_marker(marker) : ENOMEM;
	int creating = 0;
	if (err == HL_NOSTORE && opt->create && !opt->read_only) {
		if (!dir_is_fresh(dir))
			err = HL_INVALID, hl_log(HL_LOG_ERROR, "%s: not empty and not a helios store", dir);
		else
			err = mkdir_p(dir), creating = 1;
	}
	free(marker);
	if (!err && !opt->read_only)
		err = take_lock(s);
	if (!err)
		err = hl_idx_open(&s->ix, dir, opt->read_only, opt->sync != HL_SYNC_ALWAYS, opt->map_size);
	if (!err)
		err = hl_segs_open(&s->segs, dir, opt->read_only, opt->segment_size);
	if (!err && creating)
		err = write_marker(dir);
	if (!err && !opt->read_only)
		err = replay_tail(s);
	if (!err && !opt->read_only && opt->sync == HL_SYNC_BATCH) {
		if ((err = pthread_create(&s->syncer, NULL, syncer_main, s)) == 0) {
			pthread_setname_np(s->syncer, "helios-sync");
			s->syncer_running = 1;
		}
	}
	if (err) {
		s->opt.read_only = 1; /* nothing to flush on the way out */
		hl_local_close(s);
		return sys_err(err);
	}
	*out = s;
	return 0;
}

/* ---------- walking, verifying, statistics ---------- */

int hl_local_iterate(hl_local *s, hl_iter_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int err = hl_idx_read_begin(&s->ix, &txn);
	if (err)
		return err;
	if ((err = hl_idx_err(mdb_cursor_open(txn, s->ix.obj, &cur))) != 0) {
		hl_idx_read_end(&s->ix, txn);
		return err;
	}
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

typedef struct vitem {
	hl_id id;
	hl_idx_entry e;
} vitem;

typedef struct vjob {
	hl_local *s;
	vitem *items;
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
		vitem *it = &j->items[i];
		int err = 0;
		if (it->e.raw_len > cap) {
			free(buf);
			cap = it->e.raw_len;
			if (!(buf = malloc(cap)))
				cap = 0, err = ENOMEM;
		}
		if (!err)
			err = read_record(j->s, &it->id, &it->e, buf);
		if (err == HL_CORRUPT)
			quarantine(j->s, &it->id, &it->e);
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

/* Snapshot of all entries of one database (obj or quar). */
static int snapshot_entries(hl_local *s, MDB_dbi dbi, vitem **out, size_t *count, uint64_t *bytes)
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
		return err;
	}
	vitem *v = malloc((ms.ms_entries ? ms.ms_entries : 1) * sizeof(*v));
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
	mdb_cursor_close(cur);
	hl_idx_read_end(&s->ix, txn);
	if (rc != MDB_NOTFOUND && rc != 0) {
		free(v);
		return rc == ENOMEM ? ENOMEM : hl_idx_err(rc);
	}
	*out = v;
	*count = n;
	*bytes = total;
	return 0;
}

int hl_local_verify(hl_local *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress,
                    void *ctx, hl_verify_report *out)
{
	vjob j;
	memset(&j, 0, sizeof j);
	vitem *quar;
	size_t nquar;
	uint64_t qbytes;
	int err = snapshot_entries(s, s->ix.obj, &j.items, &j.n, &j.total_bytes);
	if (err)
		return err;
	if ((err = snapshot_entries(s, s->ix.quar, &quar, &nquar, &qbytes)) != 0) {
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
	if (out)
		*out = j.rep;
	if (j.rep.corrupt || j.rep.quarantined)
		return HL_CORRUPT;
	return j.rep.io_errors ? EIO : 0;
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
	return 0;
}
