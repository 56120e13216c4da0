/* names_kv.c — kv namespaces in the store's index: keys pointing at objects, sizes per namespace,
 * least-recently-used eviction past a bound (layouts in nametab.h). */
#include <string.h>
#include <time.h>
#include "base/endian.h"
#include "store/index.h"
#include "store/names.h"
#include "store/nametab.h"
#include "store/names_int.h"

#define HL_KV_TOUCH_MS 60000 /* access times are refreshed at most this often (like relatime) */

/* ---- kv namespaces ---- */

typedef struct kv_entry {
	hl_id id;
	uint64_t size, atime;
} kv_entry;

/* ns NUL key: the kv table's key; with the access time between them, the kvlru table's. */
typedef struct kv_keys {
	uint8_t main[HL_NS_MAX + 1 + HL_KV_KEY_MAX], lru[HL_NS_MAX + 1 + 8 + HL_KV_KEY_MAX];
	size_t nslen, mainlen, lrulen;
} kv_keys;

static int kv_keys_make(kv_keys *kk, const char *ns, const void *key, size_t klen)
{
	size_t nslen = ns ? strlen(ns) : 0;
	if (!hl_names_ns_valid(ns, nslen) || !hl_names_key_valid(key, klen))
		return HL_INVALID;
	kk->nslen = nslen;
	memcpy(kk->main, ns, nslen);
	kk->main[nslen] = 0;
	memcpy(kk->main + nslen + 1, key, klen);
	kk->mainlen = nslen + 1 + klen;
	memcpy(kk->lru, kk->main, nslen + 1);
	memcpy(kk->lru + nslen + 1 + 8, key, klen);
	kk->lrulen = nslen + 1 + 8 + klen;
	return 0;
}

static void kv_lru_stamp(kv_keys *kk, uint64_t atime)
{
	for (int i = 0; i < 8; i++)
		kk->lru[kk->nslen + 1 + i] = (uint8_t)(atime >> (56 - 8 * i));
}

static int kv_entry_decode(const MDB_val *v, kv_entry *e)
{
	const uint8_t *p = v->mv_data;
	if (v->mv_size != HL_KV_ENTRY_LEN || p[0] != 1)
		return HL_CORRUPT;
	memcpy(e->id.b, p + 8, HL_ID_LEN);
	e->size = hl_le64(p + 40);
	e->atime = hl_le64(p + 48);
	return 0;
}

static void kv_entry_encode(const kv_entry *e, uint8_t out[HL_KV_ENTRY_LEN])
{
	memset(out, 0, HL_KV_ENTRY_LEN);
	out[0] = 1;
	memcpy(out + 8, e->id.b, HL_ID_LEN);
	hl_put_le64(out + 40, e->size);
	hl_put_le64(out + 48, e->atime);
}

typedef struct kv_usage {
	uint64_t bytes, entries;
} kv_usage;

static int usage_get(MDB_txn *txn, hl_index *ix, const kv_keys *kk, kv_usage *u)
{
	MDB_val k = {kk->nslen, (void *)kk->main}, v;
	int rc = mdb_get(txn, ix->kvns, &k, &v);
	u->bytes = u->entries = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return hl_idx_err(rc);
	if (v.mv_size != 16)
		return HL_CORRUPT;
	u->bytes = hl_le64(v.mv_data);
	u->entries = hl_le64((const uint8_t *)v.mv_data + 8);
	return 0;
}

static int usage_put(MDB_txn *txn, hl_index *ix, const kv_keys *kk, const kv_usage *u)
{
	MDB_val k = {kk->nslen, (void *)kk->main};
	if (u->entries == 0) {
		int rc = mdb_del(txn, ix->kvns, &k, NULL);
		return rc == MDB_NOTFOUND ? 0 : hl_idx_err(rc);
	}
	uint8_t b[16];
	hl_put_le64(b, u->bytes);
	hl_put_le64(b + 8, u->entries);
	MDB_val v = {16, b};
	return hl_idx_err(mdb_put(txn, ix->kvns, &k, &v, 0));
}

/* Removes the entry kk names (if any) from kv, kvlru and the usage; *had tells whether it was,
 * *old (may be NULL) what it held. */
static int kv_unlink(MDB_txn *txn, hl_index *ix, kv_keys *kk, kv_usage *u, int *had, kv_entry *old)
{
	MDB_val k = {kk->mainlen, kk->main}, v;
	int rc = mdb_get(txn, ix->kv, &k, &v);
	*had = 0;
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return hl_idx_err(rc);
	kv_entry e;
	if (kv_entry_decode(&v, &e))
		return HL_CORRUPT;
	kv_lru_stamp(kk, e.atime);
	MDB_val lk = {kk->lrulen, kk->lru};
	if ((rc = mdb_del(txn, ix->kvlru, &lk, NULL)) && rc != MDB_NOTFOUND)
		return hl_idx_err(rc);
	if ((rc = mdb_del(txn, ix->kv, &k, NULL)) != 0)
		return hl_idx_err(rc);
	u->bytes -= e.size < u->bytes ? e.size : u->bytes;
	u->entries -= u->entries > 0;
	*had = 1;
	if (old)
		*old = e;
	return 0;
}

static int kv_link(MDB_txn *txn, hl_index *ix, kv_keys *kk, const kv_entry *e, kv_usage *u)
{
	uint8_t b[HL_KV_ENTRY_LEN];
	kv_entry_encode(e, b);
	MDB_val k = {kk->mainlen, kk->main}, v = {HL_KV_ENTRY_LEN, b};
	int rc = mdb_put(txn, ix->kv, &k, &v, 0);
	if (rc)
		return hl_idx_err(rc);
	kv_lru_stamp(kk, e->atime);
	MDB_val lk = {kk->lrulen, kk->lru}, lv = {0, ""};
	if ((rc = mdb_put(txn, ix->kvlru, &lk, &lv, 0)) != 0)
		return hl_idx_err(rc);
	u->bytes += e->size;
	u->entries++;
	return 0;
}

/* Evicts the namespace's oldest entries until it holds at most bound bytes. */
static int kv_evict(MDB_txn *txn, hl_index *ix, const kv_keys *kk, kv_usage *u, uint64_t bound,
                    uint64_t *evicted)
{
	MDB_cursor *cur;
	int err = hl_idx_err(mdb_cursor_open(txn, ix->kvlru, &cur));
	if (err)
		return err;
	while (!err && u->bytes > bound) {
		MDB_val k = {kk->nslen + 1, (void *)kk->main}, v;
		int rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
		if (rc || k.mv_size <= kk->nslen + 9 || memcmp(k.mv_data, kk->main, kk->nslen + 1)) {
			err = rc && rc != MDB_NOTFOUND ? hl_idx_err(rc) : HL_CORRUPT; /* usage disagrees */
			break;
		}
		kv_keys victim;
		const uint8_t *p = k.mv_data;
		victim.nslen = kk->nslen;
		memcpy(victim.main, kk->main, kk->nslen + 1);
		size_t klen = k.mv_size - (kk->nslen + 9);
		memcpy(victim.main + kk->nslen + 1, p + kk->nslen + 9, klen);
		victim.mainlen = kk->nslen + 1 + klen;
		memcpy(victim.lru, p, k.mv_size);
		victim.lrulen = k.mv_size;
		int had;
		if ((err = kv_unlink(txn, ix, &victim, u, &had, NULL)) == 0 && !had)
			err = hl_idx_err(mdb_cursor_del(cur, 0)); /* an orphan in the lru table */
		else if (!err)
			(*evicted)++;
	}
	mdb_cursor_close(cur);
	return err;
}

int hl_names_kv_get(hl_local *s, const char *ns, const void *key, size_t klen, hl_id *id,
                    uint64_t *size)
{
	kv_keys kk;
	int err = kv_keys_make(&kk, ns, key, klen);
	if (err)
		return err;
	MDB_txn *txn;
	if ((err = hl_nm_read_begin(s, &txn)) != 0)
		return err;
	hl_index *ix = hl_local_index(s);
	MDB_val k = {kk.mainlen, kk.main}, v;
	kv_entry e;
	err = hl_idx_err(mdb_get(txn, ix->kv, &k, &v));
	if (!err)
		err = kv_entry_decode(&v, &e);
	hl_idx_read_end(ix, txn);
	if (err)
		return err;
	*id = e.id;
	if (size)
		*size = e.size;
	uint64_t now = hl_nm_wall_ms();
	if (now < e.atime + HL_KV_TOUCH_MS || hl_local_read_only(s))
		return 0;
	/* refresh the access time; a failure here costs recency, never the answer */
	if (hl_nm_write_begin(s, &txn) == 0) {
		kv_usage u;
		kv_entry cur;
		int had, e2 = usage_get(txn, ix, &kk, &u);
		if (!e2)
			e2 = kv_unlink(txn, ix, &kk, &u, &had, &cur);
		if (!e2 && had && hl_id_equal(&cur.id, &e.id)) {
			cur.atime = now;
			e2 = kv_link(txn, ix, &kk, &cur, &u);
		} else if (!e2) {
			e2 = HL_CONFLICT; /* changed meanwhile: leave it */
		}
		if (!e2)
			e2 = usage_put(txn, ix, &kk, &u);
		hl_idx_write_end(ix, txn, e2);
	}
	return 0;
}

int hl_names_kv_set(hl_local *s, const char *ns, const void *key, size_t klen, const hl_id *id,
                    uint64_t size, uint64_t bound, uint64_t *evicted)
{
	kv_keys kk;
	int err = kv_keys_make(&kk, ns, key, klen);
	uint64_t ev = 0;
	if (err)
		return err;
	if (size > bound)
		return HL_TOOBIG;
	MDB_txn *txn;
	if ((err = hl_nm_write_begin(s, &txn)) != 0)
		return err;
	hl_index *ix = hl_local_index(s);
	kv_usage u;
	int had;
	kv_entry e = {*id, size, hl_nm_wall_ms()};
	if (!(err = usage_get(txn, ix, &kk, &u)) && !(err = kv_unlink(txn, ix, &kk, &u, &had, NULL)) &&
	    !(err = kv_evict(txn, ix, &kk, &u, bound - size, &ev)) &&
	    !(err = kv_link(txn, ix, &kk, &e, &u)))
		err = usage_put(txn, ix, &kk, &u);
	if (evicted)
		*evicted = err ? 0 : ev;
	return hl_nm_write_end(s, txn, err);
}

int hl_names_kv_delete(hl_local *s, const char *ns, const void *key, size_t klen)
{
	kv_keys kk;
	int err = kv_keys_make(&kk, ns, key, klen);
	if (err)
		return err;
	MDB_txn *txn;
	if ((err = hl_nm_write_begin(s, &txn)) != 0)
		return err;
	hl_index *ix = hl_local_index(s);
	kv_usage u;
	int had = 0;
	if (!(err = usage_get(txn, ix, &kk, &u)) && !(err = kv_unlink(txn, ix, &kk, &u, &had, NULL)))
		err = had ? usage_put(txn, ix, &kk, &u) : HL_NOTFOUND;
	return hl_nm_write_end(s, txn, err);
}

typedef struct kv_each_ctx {
	hl_kv_id_fn fn;
	void *ctx;
} kv_each_ctx;

static int kv_row(const MDB_val *k, const MDB_val *v, void *ctx)
{
	(void)k;
	kv_each_ctx *c = ctx;
	kv_entry e;
	int err = kv_entry_decode(v, &e);
	return err ? err : c->fn(&e.id, c->ctx);
}

int hl_names_kv_each(hl_local *s, hl_kv_id_fn fn, void *ctx)
{
	kv_each_ctx c = {fn, ctx};
	return hl_nm_table_each(s, hl_local_index(s)->kv, kv_row, &c);
}

int hl_names_kv_usage(hl_local *s, const char *ns, uint64_t *bytes, uint64_t *entries)
{
	kv_keys kk;
	int err = kv_keys_make(&kk, ns, "-", 1);
	if (err)
		return err;
	MDB_txn *txn;
	kv_usage u = {0, 0};
	if ((err = hl_nm_read_begin(s, &txn)) == 0) {
		err = usage_get(txn, hl_local_index(s), &kk, &u);
		hl_idx_read_end(hl_local_index(s), txn);
	} else if (err == HL_NOTFOUND) {
		err = 0;
	}
	*bytes = u.bytes;
	*entries = u.entries;
	return err;
}
