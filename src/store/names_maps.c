/* names_maps.c — the index's maps: the large-blob map (blob id → manifest and size) and the
 * snapshot stat cache (a directory's device and inode → its row). Layouts in nametab.h. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "base/alloc.h"
#include "base/endian.h"
#include "store/index.h"
#include "store/names.h"
#include "store/nametab.h"
#include "store/names_int.h"

/* ---- large blobs ---- */

int hl_names_large_get(hl_local *s, const hl_id *id, hl_id *manifest, uint64_t *size)
{
	MDB_txn *txn;
	int err = hl_nm_read_begin(s, &txn);
	if (err)
		return err;
	hl_index *ix = hl_local_index(s);
	MDB_val k = {HL_ID_LEN, (void *)id->b}, v;
	err = hl_idx_err(mdb_get(txn, ix->large, &k, &v));
	if (!err)
		err = hl_names_large_decode(&v, manifest, size);
	hl_idx_read_end(ix, txn);
	return err;
}

int hl_names_large_put_n(hl_local *s, const hl_large_map *m, size_t n)
{
	if (n == 0)
		return 0;
	MDB_txn *txn;
	int err = hl_nm_write_begin(s, &txn);
	if (err)
		return err;
	for (size_t i = 0; i < n && !err; i++) {
		uint8_t b[HL_LARGE_ENTRY_LEN] = {1};
		memcpy(b + 8, m[i].manifest.b, HL_ID_LEN);
		hl_put_le64(b + 40, m[i].size);
		MDB_val k = {HL_ID_LEN, (void *)m[i].id.b}, v = {HL_LARGE_ENTRY_LEN, b};
		err = hl_idx_err(mdb_put(txn, hl_local_index(s)->large, &k, &v, 0));
	}
	return hl_nm_write_end(s, txn, err);
}

int hl_names_large_put(hl_local *s, const hl_id *id, const hl_id *manifest, uint64_t size)
{
	hl_large_map m = {*id, *manifest, size};
	return hl_names_large_put_n(s, &m, 1);
}

int hl_names_large_del(hl_local *s, const hl_id *id, const hl_id *manifest)
{
	MDB_txn *txn;
	int err = hl_nm_write_begin(s, &txn);
	if (err)
		return err;
	return hl_nm_write_end(s, txn, hl_names_large_unmap(txn, hl_local_index(s), id, manifest));
}

typedef struct large_each_ctx {
	hl_large_fn fn;
	void *ctx;
} large_each_ctx;

static int large_row(const MDB_val *k, const MDB_val *v, void *ctx)
{
	large_each_ctx *c = ctx;
	hl_id id, m;
	uint64_t size;
	if (k->mv_size != HL_ID_LEN || hl_names_large_decode(v, &m, &size))
		return HL_CORRUPT;
	memcpy(id.b, k->mv_data, HL_ID_LEN);
	return c->fn(&id, &m, size, c->ctx);
}

int hl_names_large_each(hl_local *s, hl_large_fn fn, void *ctx)
{
	large_each_ctx c = {fn, ctx};
	return hl_nm_table_each(s, hl_local_index(s)->large, large_row, &c);
}

int hl_names_large_count(hl_local *s, uint64_t *blobs)
{
	MDB_txn *txn;
	*blobs = 0;
	int err = hl_nm_read_begin(s, &txn);
	if (err)
		return err == HL_NOTFOUND ? 0 : err;
	MDB_stat st;
	hl_index *ix = hl_local_index(s);
	if ((err = hl_idx_err(mdb_stat(txn, ix->large, &st))) == 0)
		*blobs = st.ms_entries;
	hl_idx_read_end(ix, txn);
	return err;
}

/* ---- stat cache ---- */

#define SCACHE_FORMAT 3 /* meta "scache": rows per directory (2: per file, big-endian keys) */

/* Big-endian, so a work tree's inodes, allocated in order, sort in order: appended. */
static void scache_key(uint8_t k[16], uint64_t dev, uint64_t ino)
{
	for (int i = 0; i < 8; i++) {
		k[i] = (uint8_t)(dev >> (56 - 8 * i));
		k[8 + i] = (uint8_t)(ino >> (56 - 8 * i));
	}
}

int hl_names_scache_get(hl_local *s, uint64_t dev, uint64_t ino, uint8_t **val, size_t *len)
{
	MDB_txn *txn;
	int err = hl_nm_read_begin(s, &txn);
	if (err)
		return err;
	hl_index *ix = hl_local_index(s);
	uint8_t kb[16];
	scache_key(kb, dev, ino);
	MDB_val k = {16, kb}, v;
	if ((err = hl_idx_err(mdb_get(txn, ix->scache, &k, &v))) == 0) {
		*val = hl_malloc(v.mv_size ? v.mv_size : 1);
		if (!*val)
			err = ENOMEM;
		else
			memcpy(*val, v.mv_data, v.mv_size), *len = v.mv_size;
	}
	hl_idx_read_end(ix, txn);
	return err;
}

static int cmp_scache_key(const void *a, const void *b)
{
	const hl_scache_row *x = *(const hl_scache_row *const *)a, *y = *(const hl_scache_row *const *)b;
	uint8_t kx[16], ky[16];
	scache_key(kx, x->dev, x->ino);
	scache_key(ky, y->dev, y->ino);
	return memcmp(kx, ky, sizeof kx);
}

/* Empties a table of an older format's rows (once: the format is then recorded in meta). */
static int scache_format(MDB_txn *txn, hl_index *ix)
{
	MDB_val k = {6, "scache"}, v;
	int rc = mdb_get(txn, ix->meta, &k, &v);
	if (rc == 0 && v.mv_size == 4 && hl_le32(v.mv_data) == SCACHE_FORMAT)
		return 0;
	if (rc && rc != MDB_NOTFOUND)
		return hl_idx_err(rc);
	uint8_t f[4];
	hl_put_le32(f, SCACHE_FORMAT);
	v = (MDB_val){4, f};
	if ((rc = mdb_drop(txn, ix->scache, 0)) == 0)
		rc = mdb_put(txn, ix->meta, &k, &v, 0);
	return hl_idx_err(rc);
}

/* In key order; the keys past the table's last one are appended (MDB_APPEND fills pages whole
 * instead of splitting them in half: a new work tree's inodes usually all lie past the old). */
int hl_names_scache_put(hl_local *s, const hl_scache_row *rows, size_t n)
{
	if (n == 0)
		return 0;
	const hl_scache_row **order = hl_malloc(n * sizeof(*order));
	if (!order)
		return ENOMEM;
	for (size_t i = 0; i < n; i++)
		order[i] = &rows[i];
	qsort(order, n, sizeof(*order), cmp_scache_key);
	MDB_txn *txn;
	int err = hl_nm_write_begin(s, &txn);
	if (err) {
		free(order);
		return err;
	}
	hl_index *ix = hl_local_index(s);
	uint8_t last[16];
	int have_last = 0;
	MDB_cursor *cur;
	if (!(err = scache_format(txn, ix)) && !(err = hl_idx_err(mdb_cursor_open(txn, ix->scache, &cur)))) {
		MDB_val k, v;
		int rc = mdb_cursor_get(cur, &k, &v, MDB_LAST);
		if (rc == 0 && k.mv_size == sizeof last)
			memcpy(last, k.mv_data, sizeof last), have_last = 1;
		else if (rc != MDB_NOTFOUND)
			err = hl_idx_err(rc ? rc : MDB_CORRUPTED);
		mdb_cursor_close(cur);
	}
	for (size_t i = 0; !err && i < n; i++) {
		const hl_scache_row *x = order[i];
		uint8_t kb[16];
		scache_key(kb, x->dev, x->ino);
		unsigned flags = 0;
		if (!have_last || memcmp(kb, last, sizeof last) > 0) {
			flags = MDB_APPEND;
			memcpy(last, kb, sizeof last);
			have_last = 1;
		}
		MDB_val k = {16, kb}, v = {x->len, (void *)x->val};
		err = hl_idx_err(mdb_put(txn, ix->scache, &k, &v, flags));
	}
	free(order);
	return hl_idx_write_end(ix, txn, err); /* no environment sync: a hint, not data */
}
