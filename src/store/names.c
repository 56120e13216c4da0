/* names.c — the name tables of the store's LMDB index (layouts in nametab.h): the transactions
 * and table walks they share (names_int.h) and refs. kv namespaces are names_kv.c, the large-blob
 * map and the stat cache names_maps.c. They take the store, not just the index: a name write
 * obeys the store's read-only mode, its fail-stop after a failed sync and its sync mode. */
#include <string.h>
#include <time.h>
#include "base/endian.h"
#include "store/index.h"
#include "store/names.h"
#include "store/nametab.h"
#include "store/names_int.h"

uint64_t hl_nm_wall_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* ---- transactions ---- */

int hl_nm_read_begin(hl_local *s, MDB_txn **txn)
{
	hl_index *ix = hl_local_index(s);
	if (!ix->has_names)
		return HL_NOTFOUND;
	return hl_idx_read_begin(ix, txn);
}

/* A read transaction and a cursor on dbi (HL_NOTFOUND: the name tables do not exist). */
int hl_nm_cursor_begin(hl_local *s, MDB_dbi dbi, MDB_txn **txn, MDB_cursor **cur)
{
	int err = hl_nm_read_begin(s, txn);
	if (err)
		return err;
	if ((err = hl_idx_err(mdb_cursor_open(*txn, dbi, cur))) != 0)
		hl_idx_read_end(hl_local_index(s), *txn);
	return err;
}

int hl_nm_write_begin(hl_local *s, MDB_txn **txn)
{
	if (hl_local_read_only(s))
		return HL_READONLY;
	if (hl_local_stopped(s))
		return HL_STOPPED; /* a name must not outlive what it names: no writes after a failed sync */
	return hl_idx_write_begin(hl_local_index(s), txn);
}

/* Commits; when the store promises durability at acknowledgement, syncs the index too (LMDB's
 * commit alone leaves the last meta page unsynced under MDB_NOMETASYNC). */
int hl_nm_write_end(hl_local *s, MDB_txn *txn, int err)
{
	if ((err = hl_idx_write_end(hl_local_index(s), txn, err)) != 0)
		return err;
	return hl_local_sync_mode(s) == HL_SYNC_ALWAYS ? hl_idx_sync(hl_local_index(s)) : 0;
}

/* Calls row(key, value, ctx) for every row of table dbi, in key order, in one read
 * transaction; stops at the first nonzero return. A table that does not exist has no rows. */
int hl_nm_table_each(hl_local *s, MDB_dbi dbi, hl_nm_row_fn row, void *ctx)
{
	MDB_txn *txn;
	MDB_cursor *cur;
	int err = hl_nm_cursor_begin(s, dbi, &txn, &cur);
	if (err)
		return err == HL_NOTFOUND ? 0 : err;
	MDB_val k, v;
	int rc;
	for (rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); !err && rc == 0;
	     rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
		err = row(&k, &v, ctx);
	if (!err && rc && rc != MDB_NOTFOUND)
		err = hl_idx_err(rc);
	mdb_cursor_close(cur);
	hl_idx_read_end(hl_local_index(s), txn);
	return err;
}

/* ---- refs ---- */

int hl_names_ref_get(hl_local *s, const char *name, hl_id *out)
{
	if (!hl_names_ref_valid(name, name ? strlen(name) : 0))
		return HL_INVALID;
	MDB_txn *txn;
	int err = hl_nm_read_begin(s, &txn);
	if (err)
		return err;
	hl_index *ix = hl_local_index(s);
	MDB_val k = {strlen(name), (void *)name}, v;
	err = hl_idx_err(mdb_get(txn, ix->refs, &k, &v));
	if (!err && v.mv_size != HL_ID_LEN)
		err = HL_CORRUPT;
	if (!err)
		memcpy(out->b, v.mv_data, HL_ID_LEN);
	hl_idx_read_end(ix, txn);
	return err;
}

int hl_names_ref_set(hl_local *s, const char *name, const hl_id *expect, const hl_id *target,
                     int force)
{
	if (!hl_names_ref_valid(name, name ? strlen(name) : 0))
		return HL_INVALID;
	MDB_txn *txn;
	int err = hl_nm_write_begin(s, &txn);
	if (err)
		return err;
	hl_index *ix = hl_local_index(s);
	MDB_val k = {strlen(name), (void *)name}, v;
	int rc = mdb_get(txn, ix->refs, &k, &v);
	if (rc && rc != MDB_NOTFOUND)
		err = hl_idx_err(rc);
	else if (rc == 0 && v.mv_size != HL_ID_LEN)
		err = HL_CORRUPT;
	else if (!force && (expect ? rc != 0 || memcmp(v.mv_data, expect->b, HL_ID_LEN) : rc == 0))
		err = HL_CONFLICT;
	else if (!target)
		err = rc == MDB_NOTFOUND ? HL_NOTFOUND : hl_idx_err(mdb_del(txn, ix->refs, &k, NULL));
	else {
		MDB_val nv = {HL_ID_LEN, (void *)target->b};
		err = hl_idx_err(mdb_put(txn, ix->refs, &k, &nv, 0));
	}
	return hl_nm_write_end(s, txn, err);
}

int hl_names_ref_list(hl_local *s, const char *prefix, hl_ref_fn fn, void *ctx)
{
	size_t plen = prefix ? strlen(prefix) : 0;
	hl_index *ix = hl_local_index(s);
	MDB_txn *txn;
	MDB_cursor *cur;
	int err = hl_nm_cursor_begin(s, ix->refs, &txn, &cur);
	if (err)
		return err == HL_NOTFOUND ? 0 : err;
	MDB_val k = {plen, (void *)prefix}, v;
	int rc = mdb_cursor_get(cur, &k, &v, plen ? MDB_SET_RANGE : MDB_FIRST);
	char name[HL_REF_MAX + 1];
	for (; rc == 0; rc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
		if (plen && (k.mv_size < plen || memcmp(k.mv_data, prefix, plen)))
			break;
		if (k.mv_size > HL_REF_MAX || v.mv_size != HL_ID_LEN) {
			err = HL_CORRUPT;
			break;
		}
		memcpy(name, k.mv_data, k.mv_size);
		name[k.mv_size] = 0;
		hl_id id;
		memcpy(id.b, v.mv_data, HL_ID_LEN);
		if ((err = fn(name, &id, ctx)) != 0)
			break;
	}
	if (!err && rc && rc != MDB_NOTFOUND)
		err = hl_idx_err(rc);
	mdb_cursor_close(cur);
	hl_idx_read_end(ix, txn);
	return err;
}
