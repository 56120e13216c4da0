/* store_loctab.c — the store's side of the object table in memory (loctab.h): filling it from
 * LMDB after open, in a thread, and checking that it equals LMDB (verify --deep). Both walk LMDB's
 * object table in chunks, each under flush_mu: every change of that table holds flush_mu and
 * changes the table in memory too after its commit, so within a chunk the two agree, and a change
 * between chunks reaches both. */
#include "store/store_int.h"

#define CHUNK 8192 /* entries per hold of flush_mu */

typedef void (*entry_fn)(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx);

/* Calls fn for up to CHUNK entries of LMDB's object table after *from (from its start when
 * *first), under flush_mu. 0 with *more = 0 at the end, or an error. */
static int chunk(hl_local *s, hl_id *from, int *first, int *more, entry_fn fn, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	pthread_mutex_lock(&s->flush_mu);
	int err = hl_idx_read_begin(&s->ix, &txn);
	if (!err && (err = hl_idx_err(mdb_cursor_open(txn, s->ix.obj, &cur))) != 0)
		hl_idx_read_end(&s->ix, txn);
	if (err) {
		pthread_mutex_unlock(&s->flush_mu);
		return err;
	}
	MDB_val k = {HL_ID_LEN, from->b}, v;
	int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	if (rc == 0 && !*first && k.mv_size == HL_ID_LEN && memcmp(k.mv_data, from->b, HL_ID_LEN) == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT); /* the last chunk's last */
	for (size_t got = 0; rc == 0 && got < CHUNK; got++) {
		hl_idx_entry e;
		if (k.mv_size != HL_ID_LEN || hl_idx_entry_decode(v.mv_data, v.mv_size, &e)) {
			rc = MDB_CORRUPTED;
			break;
		}
		memcpy(from->b, k.mv_data, HL_ID_LEN);
		fn(s, from, &e, ctx);
		rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
	}
	*first = 0;
	*more = rc == 0;
	err = rc == 0 || rc == MDB_NOTFOUND ? 0 : hl_idx_err(rc);
	mdb_cursor_close(cur);
	hl_idx_read_end(&s->ix, txn);
	pthread_mutex_unlock(&s->flush_mu);
	return err;
}

static void copy_entry(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	(void)ctx;
	hl_loctab_put(s->loc, id, e);
}

/* "helios-loctab": fills s->loc, then lets lookups use it. */
static void *build_main(void *arg)
{
	hl_local *s = arg;
	hl_id from = {{0}};
	int first = 1, more = 1, err = 0;
	uint64_t t0 = hl_now_ns();
	while (more && !err && !hl_stopper_stopped(&s->loc_stop))
		err = chunk(s, &from, &first, &more, copy_entry, NULL);
	if (err) {
		hl_loctab_give_up(s->loc);
		hl_log(HL_LOG_WARN, "index table in memory: %s; lookups read the index file", hl_strerror(err));
	} else if (!more) {
		hl_loctab_complete(s->loc);
		hl_log(HL_LOG_INFO, "index table in memory: %llu entries, %llu MiB, built in %.2f s",
		       (unsigned long long)hl_loctab_count(s->loc),
		       (unsigned long long)(hl_loctab_bytes(s->loc) >> 20), (double)(hl_now_ns() - t0) / 1e9);
	}
	/* it stays until the close joins it: a process that ends without closing leaves no finished
	 * thread unjoined behind (ThreadSanitizer reports those) */
	while (!hl_stopper_rest(&s->loc_stop, UINT64_C(3600) * 1000000000u))
		;
	return NULL;
}

int hl_st_loctab_start(hl_local *s)
{
	if (!(s->loc = hl_loctab_new()))
		return ENOMEM;
	hl_stopper_init(&s->loc_stop);
	int err = pthread_create(&s->loc_builder, NULL, build_main, s);
	if (err) {
		hl_stopper_destroy(&s->loc_stop);
		hl_loctab_free(s->loc);
		s->loc = NULL;
		return err;
	}
	pthread_setname_np(s->loc_builder, "helios-loctab");
	s->loc_building = 1;
	return 0;
}

void hl_st_loctab_stop(hl_local *s)
{
	if (!s->loc_building)
		return;
	hl_stopper_stop(&s->loc_stop);
	pthread_join(s->loc_builder, NULL);
	hl_stopper_destroy(&s->loc_stop);
	s->loc_building = 0;
}

static void compare_entry(hl_local *s, const hl_id *id, const hl_idx_entry *e, void *ctx)
{
	uint64_t *problems = ctx;
	hl_idx_entry m;
	int err = hl_loctab_get(s->loc, id, &m);
	if (err == HL_BUSY)
		return; /* given up meanwhile: nothing is read from it */
	if (err || !hl_idx_entry_equal(&m, e)) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(id, hex);
		hl_log(HL_LOG_ERROR, "check: %s: the index table in memory %s", hex,
		       err ? "lacks it" : "holds another entry");
		++*problems;
	}
}

int hl_st_loctab_check(hl_local *s, uint64_t *problems)
{
	if (!s->loc || !hl_loctab_ready(s->loc))
		return 0;
	hl_id from = {{0}};
	int first = 1, more = 1, err = 0;
	while (more && !err)
		err = chunk(s, &from, &first, &more, compare_entry, problems);
	if (err)
		return err;
	/* and no more entries than LMDB: counted together, under flush_mu */
	MDB_txn *txn;
	MDB_stat st;
	pthread_mutex_lock(&s->flush_mu);
	if ((err = hl_idx_read_begin(&s->ix, &txn)) == 0) {
		err = hl_idx_err(mdb_stat(txn, s->ix.obj, &st));
		hl_idx_read_end(&s->ix, txn);
	}
	uint64_t held = hl_loctab_count(s->loc);
	pthread_mutex_unlock(&s->flush_mu);
	if (!err && hl_loctab_ready(s->loc) && held != st.ms_entries) {
		hl_log(HL_LOG_ERROR, "check: the index table in memory holds %llu entries, the index %llu",
		       (unsigned long long)held, (unsigned long long)st.ms_entries);
		++*problems;
	}
	return err;
}
