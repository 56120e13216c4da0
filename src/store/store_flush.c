/* store_flush.c — the index flusher: the memtable written to LMDB in one transaction with the
 * indexed tail and totals, and the helios-index thread (flushes, and syncs under sync=batch).
 * Lock order: store_int.h. */
#include "store/store_int.h"

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

/* After a commit, the table in memory takes the same changes: the entries and the refreshed
 * access times (touches_spare, to now). flush_mu held. */
static void mirror_flush(hl_local *s, const flat *v, size_t n, uint64_t now)
{
	for (size_t i = 0; i < n; i++)
		hl_loctab_put(s->loc, &v[i].id, &v[i].e);
	for (size_t i = 0; i < s->touches_spare.n; i++)
		hl_loctab_touch(s->loc, &s->touches_spare.v[i], now);
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
	hl_st_take_touches(s);
	uint64_t now = hl_wall_s();
	MDB_txn *txn = NULL;
	int err = hl_idx_write_begin(&s->ix, &txn);
	if (err)
		txn = NULL;
	for (size_t i = 0; i < n && !err; i++) {
		MDB_val k = {HL_ID_LEN, v[i].id.b};
		int rc = mdb_del(txn, s->ix.quar, &k, NULL); /* a good copy replaces a quarantined one */
		err = rc && rc != MDB_NOTFOUND ? hl_idx_err(rc) : hl_idx_put(txn, s->ix.obj, &v[i].id, &v[i].e);
	}
	if (!err) {
		hl_st_apply_touches(s, txn, now);
		if ((err = hl_idx_set_tail(txn, &s->ix, s->pend_seg, s->pend_off)) == 0)
			err = hl_idx_set_totals(txn, &s->ix, &s->pend_tot);
	}
	if (txn)
		err = hl_idx_write_end(&s->ix, txn, err);
	if (!err && s->loc)
		mirror_flush(s, v, n, now);
	free(v);
	if (err)
		hl_st_return_touches(s);
	else
		s->touches_spare.n = 0;
	return err;
}

/* The memtable's size for a store of `objects`. Ids are random, so once the LMDB tree has more
 * leaves than a flush has entries, each entry dirties a leaf page of its own: a larger store
 * flushes larger tables, at least one entry for every 64 objects (a 10 M store written at full
 * speed: LMDB wrote 42 GB with 32 Ki entries a flush, 35 GB growing to 128 Ki, and its file is
 * 30% smaller). Small stores keep the small table: every read-write open populates one. */
unsigned hl_st_objects_per_memtab_entry = 64;

unsigned hl_st_memtab_bits(uint64_t objects)
{
	unsigned bits = MEMTAB_BITS;
	while (bits < MEMTAB_BITS_MAX &&
	       ((uint64_t)1 << (bits - 1)) * hl_st_objects_per_memtab_entry < objects)
		bits++;
	return bits;
}

/* Moves every unflushed entry into LMDB: syncs segments (unless sync=none), swaps in a fresh
 * table, commits the old one. Takes flush_mu and commit_mu; readers keep finding every entry. */
int hl_st_flush_index(hl_local *s)
{
	if (s->opt.read_only)
		return 0;
	int err = 0;
	pthread_mutex_lock(&s->flush_mu);
	if (!s->flushing && s->opt.sync == HL_SYNC_BATCH)
		hl_st_sync_unlocked(s); /* the bulk, while writers continue; the catch-up below is short */
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
			err = hl_st_sync_locked(s); /* the index never points at bytes that are not durable */
		hl_memtab *fresh = err      ? NULL
		                   : s->spare ? s->spare
		                              : hl_memtab_new(hl_st_memtab_bits(s->tot.objects));
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
			unsigned want = hl_st_memtab_bits(s->pend_tot.objects);
			if (hl_memtab_bits(old) < want) {
				/* the store outgrew it (made here, outside commit_mu; kept if that fails) */
				hl_memtab *larger = hl_memtab_new(want);
				if (larger) {
					hl_memtab_free(old);
					old = larger;
				}
			}
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

void hl_st_wake_flusher(hl_local *s)
{
	pthread_mutex_lock(&s->wake_mu);
	s->wake = 1;
	pthread_cond_signal(&s->wake_cv);
	pthread_mutex_unlock(&s->wake_mu);
}

/* "helios-index": every sync_interval_ms syncs the segments (sync=batch); every INDEX_FLUSH_MS,
 * or when woken because the memtable is half full, flushes the index. */
void *hl_st_flusher_main(void *arg)
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
			hl_st_flush_index(s); /* syncs the segments first under sync=batch */
			last_flush = now;
		} else if (s->opt.sync == HL_SYNC_BATCH) {
			hl_st_sync_unlocked(s);
		}
		pthread_mutex_lock(&s->wake_mu);
	}
	pthread_mutex_unlock(&s->wake_mu);
	return NULL;
}
