/* index.c — LMDB plumbing for the durable store: environment set-up, pooled read transactions,
 * fixed-layout entry encoding, metadata records. Knows nothing of segments or records. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include "base/grow.h"
#include "base/io.h"
#include "base/log.h"
#include "store/index.h"
#include "store/record.h"

#define POOL_MAX 256

int hl_idx_err(int rc)
{
	switch (rc) {
	case MDB_SUCCESS: return 0;
	case MDB_NOTFOUND: return HL_NOTFOUND;
	case MDB_CORRUPTED: case MDB_PAGE_NOTFOUND: case MDB_INVALID: case MDB_BAD_TXN:
		return HL_CORRUPT;
	case MDB_VERSION_MISMATCH: return HL_VERSION;
	case MDB_MAP_FULL: return HL_NOSPACE;
	case MDB_READERS_FULL: case MDB_TXN_FULL: return HL_BUSY;
	default:
		if (rc > 0)
			return rc == EDQUOT ? HL_NOSPACE : rc == ENOSPC ? HL_NOSPACE : rc;
		hl_log(HL_LOG_ERROR, "index: %s", mdb_strerror(rc));
		return EIO;
	}
}

void hl_idx_entry_encode(const hl_idx_entry *e, uint8_t out[HL_IDX_ENTRY_LEN])
{
	memset(out, 0, HL_IDX_ENTRY_LEN);
	out[0] = 1;
	hl_put_le16(out + 2, e->flags);
	hl_put_le32(out + 4, e->segment);
	hl_put_le64(out + 8, e->offset);
	hl_put_le64(out + 16, e->stored_len);
	hl_put_le64(out + 24, e->raw_len);
	hl_put_le64(out + 32, e->atime);
	hl_put_le32(out + 40, e->marks);
}

int hl_idx_entry_decode(const uint8_t *buf, size_t len, hl_idx_entry *out)
{
	if (len != HL_IDX_ENTRY_LEN || buf[0] != 1 || buf[1] != 0 || hl_le32(buf + 44) != 0)
		return HL_CORRUPT;
	hl_idx_entry e;
	e.flags = hl_le16(buf + 2);
	e.segment = hl_le32(buf + 4);
	e.offset = hl_le64(buf + 8);
	e.stored_len = hl_le64(buf + 16);
	e.raw_len = hl_le64(buf + 24);
	e.atime = hl_le64(buf + 32);
	e.marks = hl_le32(buf + 40);
	if (e.segment == 0 || e.offset < HL_SEG_HDR_LEN || (e.flags & ~HL_REC_F_KNOWN) ||
	    e.stored_len > HL_REC_MAX_LEN || e.raw_len > HL_REC_MAX_LEN)
		return HL_CORRUPT;
	*out = e;
	return 0;
}

int hl_idx_entry_equal(const hl_idx_entry *a, const hl_idx_entry *b)
{
	return a->segment == b->segment && a->offset == b->offset && a->stored_len == b->stored_len &&
	       a->raw_len == b->raw_len && a->flags == b->flags && a->marks == b->marks && a->atime == b->atime;
}

int hl_idx_open(hl_index *ix, const char *store_dir, int read_only, int nosync, uint64_t map_size)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/index", store_dir);
	return hl_idx_open_at(ix, path, read_only, nosync, map_size);
}

static int open_env(hl_index *ix, const char *path, int read_only, int nosync, uint64_t map_size);

/* Removes a compaction's directory (hl_idx_close_compact) and what it holds; 0 or an errno. */
static int remove_tmp(const char *tmp)
{
	char f[4300];
	snprintf(f, sizeof f, "%s/data.mdb", tmp);
	int err = hl_io_unlink(f);
	snprintf(f, sizeof f, "%s/lock.mdb", tmp);
	if (!err)
		err = hl_io_unlink(f);
	return err ? err : hl_io_rmdir(tmp);
}

/* A reader's shared flock on <path>/lock.mdb (waiting out a writer compacting the file), or -1
 * (no lock file yet: nothing to compact either). */
static int share_lock(const char *path)
{
	char lock[4200];
	snprintf(lock, sizeof lock, "%s/lock.mdb", path);
	int fd;
	if (hl_io_open(lock, O_RDONLY, 0, &fd))
		return -1;
	while (hl_io_cur->flock(fd, LOCK_SH) < 0 && errno == EINTR)
		;
	return fd;
}

static void share_unlock(hl_index *ix)
{
	if (ix->share_fd >= 0)
		hl_io_close(ix->share_fd); /* (releases the flock) */
	ix->share_fd = -1;
}

int hl_idx_open_at(hl_index *ix, const char *path, int read_only, int nosync, uint64_t map_size)
{
	memset(ix, 0, sizeof(*ix));
	ix->share_fd = -1;
	if (!read_only) {
		int e = hl_io_mkdir(path, 0755);
		if (e)
			return e;
		char tmp[4200]; /* a compaction's copy that a crash left unrenamed */
		snprintf(tmp, sizeof tmp, "%s/compact.tmp", path);
		if ((e = remove_tmp(tmp)) != 0)
			return e;
	} else {
		ix->share_fd = share_lock(path);
	}
	int err = open_env(ix, path, read_only, nosync, map_size);
	if (err)
		share_unlock(ix);
	return err;
}

static int open_env(hl_index *ix, const char *path, int read_only, int nosync, uint64_t map_size)
{
	int rc = mdb_env_create(&ix->env);
	if (rc)
		return hl_idx_err(rc);
	mdb_env_set_maxdbs(ix->env, 16);
	mdb_env_set_maxreaders(ix->env, 4096);
	unsigned flags = MDB_NOTLS | MDB_NORDAHEAD;
	if (read_only)
		flags |= MDB_RDONLY;
	else
		flags |= nosync ? MDB_NOSYNC : MDB_NOMETASYNC;
	/* The map is address space, not memory; where address space is limited (ulimit -v and some
	 * sanitizers: ENOMEM; valgrind: EINVAL) a smaller map still works, so halve it down to 1 GiB
	 * before giving up. */
	for (;;) {
		mdb_env_set_mapsize(ix->env, (size_t)map_size);
		rc = mdb_env_open(ix->env, path, flags, 0644);
		if ((rc != ENOMEM && rc != EINVAL) || map_size <= (UINT64_C(1) << 30))
			break;
		map_size /= 2;
		mdb_env_close(ix->env);
		if ((rc = mdb_env_create(&ix->env)) != 0)
			return hl_idx_err(rc);
		mdb_env_set_maxdbs(ix->env, 16);
		mdb_env_set_maxreaders(ix->env, 4096);
		hl_log(HL_LOG_INFO, "index map: retrying with %llu MiB of address space",
		       (unsigned long long)(map_size >> 20));
	}
	if (rc != 0) {
		mdb_env_close(ix->env);
		ix->env = NULL;
		return rc == ENOENT ? HL_NOSTORE : hl_idx_err(rc);
	}
	/* a data file shorter than the pages its meta page names (cut short, or a damaged meta page)
	 * would fault on the first read of a missing page (SIGBUS): refuse it as corrupt */
	MDB_envinfo info;
	MDB_stat est;
	struct stat fst;
	char data[4200];
	snprintf(data, sizeof data, "%s/data.mdb", path);
	if (mdb_env_info(ix->env, &info) == 0 && mdb_env_stat(ix->env, &est) == 0 && stat(data, &fst) == 0 &&
	    ((uint64_t)info.me_last_pgno + 1) * est.ms_psize > (uint64_t)fst.st_size) {
		hl_log(HL_LOG_ERROR, "%s: %llu bytes, shorter than the %llu pages its index names", data,
		       (unsigned long long)fst.st_size, (unsigned long long)info.me_last_pgno + 1);
		rc = MDB_CORRUPTED;
		goto fail;
	}
	int dead;
	mdb_reader_check(ix->env, &dead); /* frees slots of crashed readers */

	MDB_txn *txn;
	if ((rc = mdb_txn_begin(ix->env, NULL, read_only ? MDB_RDONLY : 0, &txn)) != 0)
		goto fail;
	unsigned dflags = read_only ? 0 : MDB_CREATE;
	if ((rc = mdb_dbi_open(txn, "obj", dflags, &ix->obj)) ||
	    (rc = mdb_dbi_open(txn, "quar", dflags, &ix->quar)) ||
	    (rc = mdb_dbi_open(txn, "meta", dflags, &ix->meta))) {
		mdb_txn_abort(txn);
		goto fail;
	}
	/* the name tables; a read-only opener of a store no writer has opened since they were
	 * introduced finds none (and sees no names) */
	if ((rc = mdb_dbi_open(txn, "refs", dflags, &ix->refs)) ||
	    (rc = mdb_dbi_open(txn, "kv", dflags, &ix->kv)) ||
	    (rc = mdb_dbi_open(txn, "kvlru", dflags, &ix->kvlru)) ||
	    (rc = mdb_dbi_open(txn, "kvns", dflags, &ix->kvns)) ||
	    (rc = mdb_dbi_open(txn, "large", dflags, &ix->large)) ||
	    (rc = mdb_dbi_open(txn, "scache", dflags, &ix->scache))) {
		if (rc != MDB_NOTFOUND || !read_only) {
			mdb_txn_abort(txn);
			goto fail;
		}
	} else {
		ix->has_names = 1;
	}
	/* format version: written on creation, checked on every open */
	MDB_val k = {6, "format"}, v;
	rc = mdb_get(txn, ix->meta, &k, &v);
	if (rc == MDB_NOTFOUND && !read_only) {
		uint8_t f[4];
		hl_put_le32(f, HL_IDX_FORMAT);
		v.mv_size = 4;
		v.mv_data = f;
		rc = mdb_put(txn, ix->meta, &k, &v, 0);
	} else if (rc == 0) {
		if (v.mv_size != 4)
			rc = MDB_CORRUPTED;
		else if (hl_le32(v.mv_data) > HL_IDX_FORMAT)
			rc = MDB_VERSION_MISMATCH;
	}
	if (rc) {
		mdb_txn_abort(txn);
		goto fail;
	}
	if ((rc = mdb_txn_commit(txn)) != 0) /* commit (even read-only) keeps the dbi handles */
		goto fail;
	int serr = read_only ? 0 : hl_io_sync_dir(path); /* LMDB created its files: names durable */
	if (serr) {
		mdb_env_close(ix->env);
		ix->env = NULL;
		return serr;
	}
	ix->read_only = read_only;
	pthread_mutex_init(&ix->pool_mu, NULL);
	return 0;
fail:
	mdb_env_close(ix->env);
	ix->env = NULL;
	return rc == MDB_NOTFOUND ? HL_NOSTORE : hl_idx_err(rc);
}

void hl_idx_close(hl_index *ix)
{
	if (!ix->env)
		return;
	long open = atomic_load(&ix->open_txns);
	if (open) {
		hl_log(HL_LOG_ERROR, "index closed with %ld transaction(s) open: a begin without its end",
		       open);
		abort();
	}
	for (size_t i = 0; i < ix->npool; i++)
		mdb_txn_abort(ix->pool[i]);
	free(ix->pool);
	mdb_env_close(ix->env);
	pthread_mutex_destroy(&ix->pool_mu);
	share_unlock(ix);
	memset(ix, 0, sizeof(*ix));
	ix->share_fd = -1;
}

/* The bytes of free pages in the index file (pages on LMDB's free list, and any past its last
 * page), and the file's size. */
static int free_bytes(hl_index *ix, const char *data, uint64_t *free_b, uint64_t *size)
{
	MDB_txn *txn;
	MDB_cursor *c;
	MDB_val k, v;
	MDB_envinfo info;
	MDB_stat est;
	struct stat st;
	uint64_t pages = 0;
	if (mdb_env_info(ix->env, &info) || mdb_env_stat(ix->env, &est) || stat(data, &st) ||
	    mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn))
		return -1;
	int rc = mdb_cursor_open(txn, 0, &c); /* database 0: the free list */
	while (rc == 0 && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
		size_t n; /* a record: a count of page numbers, then the numbers */
		if (v.mv_size < sizeof n)
			break;
		memcpy(&n, v.mv_data, sizeof n);
		pages += n;
	}
	if (rc != MDB_NOTFOUND && rc != 0)
		pages = 0;
	else
		mdb_cursor_close(c);
	mdb_txn_abort(txn);
	uint64_t used = ((uint64_t)info.me_last_pgno + 1) * est.ms_psize;
	*size = (uint64_t)st.st_size;
	*free_b = pages * est.ms_psize + (*size > used ? *size - used : 0);
	return 0;
}

/* Copies every table of ix into a new environment in dir, key by key with MDB_APPEND, so each
 * page is filled (a copy of the pages, even LMDB's compacting one, keeps the two-thirds-full
 * pages that inserts in random key order leave); commits every PACK_BATCH entries (a write
 * transaction has a bounded number of dirty pages), syncs once at the end. */
#define PACK_BATCH 65536
static int copy_packed(hl_index *ix, const char *dir)
{
	MDB_env *dst = NULL;
	MDB_envinfo info;
	MDB_stat est;
	MDB_txn *st = NULL, *dt = NULL;
	MDB_cursor *names = NULL, *c = NULL;
	MDB_dbi main_s, sdbi, ddbi;
	MDB_val k, v, name;
	unsigned flags;
	size_t n = 0;
	int rc = mdb_env_info(ix->env, &info);
	if (!rc)
		rc = mdb_env_stat(ix->env, &est);
	if (!rc)
		rc = mdb_env_create(&dst);
	if (!rc) { /* room for the pages in use and as many again (not the whole map: address space
	            * may be short; the next open sets the map as usual) */
		mdb_env_set_maxdbs(dst, 16);
		mdb_env_set_mapsize(dst, ((size_t)info.me_last_pgno + 1) * est.ms_psize * 2 + (16u << 20));
		rc = mdb_env_open(dst, dir, MDB_NOSYNC | MDB_NOLOCK, 0644);
	}
	if (!rc)
		rc = mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &st);
	if (!rc)
		rc = mdb_dbi_open(st, NULL, 0, &main_s);
	if (!rc)
		rc = mdb_cursor_open(st, main_s, &names);
	while (!rc && (rc = mdb_cursor_get(names, &name, &v, MDB_NEXT)) == 0) {
		char nm[64]; /* the tables' names (the main table holds nothing else) */
		if (name.mv_size >= sizeof nm) {
			rc = MDB_INCOMPATIBLE;
			break;
		}
		memcpy(nm, name.mv_data, name.mv_size);
		nm[name.mv_size] = 0;
		if ((rc = mdb_dbi_open(st, nm, 0, &sdbi)) || (rc = mdb_dbi_flags(st, sdbi, &flags)))
			break;
		if (flags & MDB_DUPSORT) { /* (no table of the index has duplicates) */
			rc = MDB_INCOMPATIBLE;
			break;
		}
		if ((!dt && (rc = mdb_txn_begin(dst, NULL, 0, &dt))) ||
		    (rc = mdb_dbi_open(dt, nm, flags | MDB_CREATE, &ddbi)) || (rc = mdb_cursor_open(st, sdbi, &c)))
			break;
		while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
			if ((rc = mdb_put(dt, ddbi, &k, &v, MDB_APPEND)) != 0)
				break;
			if (++n % PACK_BATCH == 0) {
				rc = mdb_txn_commit(dt);
				dt = NULL;
				if (rc || (rc = mdb_txn_begin(dst, NULL, 0, &dt)) != 0)
					break;
			}
		}
		mdb_cursor_close(c);
		c = NULL;
		if (rc != MDB_NOTFOUND)
			break;
		rc = 0;
	}
	if (rc == MDB_NOTFOUND)
		rc = 0;
	if (names)
		mdb_cursor_close(names);
	if (st)
		mdb_txn_abort(st);
	if (dt) {
		if (rc)
			mdb_txn_abort(dt);
		else
			rc = mdb_txn_commit(dt);
	}
	if (!rc)
		rc = mdb_env_sync(dst, 1);
	if (dst)
		mdb_env_close(dst);
	return rc;
}

void hl_idx_close_compact(hl_index *ix)
{
	const char *p;
	char dir[4096], data[4200], tmp[4200], tmp_data[4300], lock[4200];
	uint64_t free_b, size;
	int lock_fd = -1, done = 0, tried = 0;
	if (!ix->env || ix->read_only || mdb_env_get_path(ix->env, &p) || strlen(p) >= sizeof dir) {
		hl_idx_close(ix);
		return;
	}
	strcpy(dir, p);
	snprintf(data, sizeof data, "%s/data.mdb", dir);
	snprintf(tmp, sizeof tmp, "%s/compact.tmp", dir);
	snprintf(tmp_data, sizeof tmp_data, "%s/data.mdb", tmp);
	snprintf(lock, sizeof lock, "%s/lock.mdb", dir);
	if (free_bytes(ix, data, &free_b, &size) == 0 && free_b >= (256u << 10) && free_b * 3 >= size &&
	    hl_io_open(lock, O_RDONLY, 0, &lock_fd) == 0 && hl_io_cur->flock(lock_fd, LOCK_EX | LOCK_NB) == 0 &&
	    remove_tmp(tmp) == 0 && hl_io_mkdir(tmp, 0755) == 0) {
		tried = 1;
		int rc = copy_packed(ix, tmp);
		done = rc == 0;
		if (rc)
			hl_log(HL_LOG_WARN, "index: compacting %s: %s (kept as it is)", data, mdb_strerror(rc));
	}
	hl_idx_close(ix);
	if (done && hl_io_rename(tmp_data, data) == 0) {
		(void)hl_io_sync_dir(dir);
		hl_log(HL_LOG_INFO, "index: %s compacted (%llu of %llu bytes were free pages)", data,
		       (unsigned long long)free_b, (unsigned long long)size);
	}
	if (tried)
		(void)remove_tmp(tmp);
	if (lock_fd >= 0)
		hl_io_close(lock_fd);
}

int hl_idx_write_begin(hl_index *ix, MDB_txn **txn)
{
	int rc = mdb_txn_begin(ix->env, NULL, 0, txn);
	if (rc == 0)
		atomic_fetch_add(&ix->open_txns, 1);
	return hl_idx_err(rc);
}

/* LMDB reports a short write as EIO; on a filesystem with no room left it is a full disk. */
static int disk_full(hl_index *ix)
{
	const char *path;
	struct statvfs vs;
	return mdb_env_get_path(ix->env, &path) == 0 && statvfs(path, &vs) == 0 &&
	       (uint64_t)vs.f_bavail * vs.f_frsize < (UINT64_C(1) << 20);
}

int hl_idx_write_end(hl_index *ix, MDB_txn *txn, int err)
{
	atomic_fetch_sub(&ix->open_txns, 1);
	if (err) {
		mdb_txn_abort(txn);
		return err;
	}
	int rc = mdb_txn_commit(txn); /* frees txn whatever the outcome */
	return rc == EIO && disk_full(ix) ? HL_NOSPACE : hl_idx_err(rc);
}

int hl_idx_read_begin(hl_index *ix, MDB_txn **out)
{
	MDB_txn *txn = NULL;
	pthread_mutex_lock(&ix->pool_mu);
	if (ix->npool)
		txn = ix->pool[--ix->npool];
	pthread_mutex_unlock(&ix->pool_mu);
	int rc = txn ? mdb_txn_renew(txn) : mdb_txn_begin(ix->env, NULL, MDB_RDONLY, &txn);
	if (rc) {
		if (txn)
			mdb_txn_abort(txn);
		return hl_idx_err(rc);
	}
	atomic_fetch_add(&ix->open_txns, 1);
	*out = txn;
	return 0;
}

void hl_idx_read_end(hl_index *ix, MDB_txn *txn)
{
	atomic_fetch_sub(&ix->open_txns, 1);
	mdb_txn_reset(txn);
	pthread_mutex_lock(&ix->pool_mu);
	if (ix->cap < POOL_MAX) {
		MDB_txn **p = hl_grow(ix->pool, ix->npool, &ix->cap, sizeof(*p), 16);
		if (p)
			ix->pool = p; /* else the transaction is simply not pooled */
	}
	if (ix->npool < ix->cap) {
		ix->pool[ix->npool++] = txn;
		txn = NULL;
	}
	pthread_mutex_unlock(&ix->pool_mu);
	if (txn)
		mdb_txn_abort(txn);
}

int hl_idx_get(MDB_txn *txn, MDB_dbi dbi, const hl_id *id, hl_idx_entry *out)
{
	MDB_val k = {HL_ID_LEN, (void *)id->b}, v;
	int rc = mdb_get(txn, dbi, &k, &v);
	if (rc)
		return hl_idx_err(rc);
	return hl_idx_entry_decode(v.mv_data, v.mv_size, out);
}

void hl_idx_prefetch(hl_index *ix, uint64_t max_bytes)
{
	int fd;
	struct stat st;
	if (mdb_env_get_fd(ix->env, &fd) == 0 && fstat(fd, &st) == 0 && (uint64_t)st.st_size <= max_bytes)
		posix_fadvise(fd, 0, 0, POSIX_FADV_WILLNEED);
}

int hl_idx_lookup(hl_index *ix, MDB_dbi dbi, const hl_id *id, hl_idx_entry *out)
{
	MDB_txn *txn = NULL;
	int err = hl_idx_read_begin(ix, &txn);
	if (err)
		return err;
	err = hl_idx_get(txn, dbi, id, out);
	hl_idx_read_end(ix, txn);
	return err;
}

int hl_idx_put(MDB_txn *txn, MDB_dbi dbi, const hl_id *id, const hl_idx_entry *e)
{
	uint8_t buf[HL_IDX_ENTRY_LEN];
	hl_idx_entry_encode(e, buf);
	MDB_val k = {HL_ID_LEN, (void *)id->b}, v = {sizeof buf, buf};
	return hl_idx_err(mdb_put(txn, dbi, &k, &v, 0));
}

int hl_idx_get_tail(MDB_txn *txn, hl_index *ix, uint32_t *segno, uint64_t *off)
{
	MDB_val k = {4, "tail"}, v;
	int rc = mdb_get(txn, ix->meta, &k, &v);
	if (rc == MDB_NOTFOUND) {
		*segno = 0;
		*off = 0;
		return 0;
	}
	if (rc)
		return hl_idx_err(rc);
	if (v.mv_size != 12)
		return HL_CORRUPT;
	*segno = hl_le32(v.mv_data);
	*off = hl_le64((const uint8_t *)v.mv_data + 4);
	return 0;
}

int hl_idx_set_tail(MDB_txn *txn, hl_index *ix, uint32_t segno, uint64_t off)
{
	uint8_t b[12];
	hl_put_le32(b, segno);
	hl_put_le64(b + 4, off);
	MDB_val k = {4, "tail"}, v = {sizeof b, b};
	return hl_idx_err(mdb_put(txn, ix->meta, &k, &v, 0));
}

int hl_idx_get_totals(MDB_txn *txn, hl_index *ix, hl_totals *t)
{
	MDB_val k = {6, "totals"}, v;
	int rc = mdb_get(txn, ix->meta, &k, &v);
	memset(t, 0, sizeof(*t));
	if (rc == MDB_NOTFOUND)
		return 0;
	if (rc)
		return hl_idx_err(rc);
	if (v.mv_size != 32 && v.mv_size != 56)
		return HL_CORRUPT;
	const uint8_t *p = v.mv_data;
	t->objects = hl_le64(p);
	t->raw_bytes = hl_le64(p + 8);
	t->stored_bytes = hl_le64(p + 16);
	t->compressed = hl_le64(p + 24);
	if (v.mv_size == 56) {
		t->deltas = hl_le64(p + 32);
		t->delta_raw_bytes = hl_le64(p + 40);
		t->delta_stored_bytes = hl_le64(p + 48);
	}
	return 0;
}

int hl_idx_set_totals(MDB_txn *txn, hl_index *ix, const hl_totals *t)
{
	uint8_t b[56];
	hl_put_le64(b, t->objects);
	hl_put_le64(b + 8, t->raw_bytes);
	hl_put_le64(b + 16, t->stored_bytes);
	hl_put_le64(b + 24, t->compressed);
	hl_put_le64(b + 32, t->deltas);
	hl_put_le64(b + 40, t->delta_raw_bytes);
	hl_put_le64(b + 48, t->delta_stored_bytes);
	/* the 32-byte form while no delta is stored: what builds before delta records read */
	MDB_val k = {6, "totals"}, v = {t->deltas || t->delta_raw_bytes ? sizeof b : 32, b};
	return hl_idx_err(mdb_put(txn, ix->meta, &k, &v, 0));
}

int hl_idx_sync(hl_index *ix)
{
	void (*synced)(const char *) = hl_io_cur->outside_synced;
	if (!synced)
		return hl_idx_err(mdb_env_sync(ix->env, 1));
	/* a power-cut simulation keeps the durable index: writers stopped from the sync to the copy */
	MDB_txn *txn;
	const char *path;
	int err = hl_idx_write_begin(ix, &txn);
	if (err)
		return err;
	if ((err = hl_idx_err(mdb_env_sync(ix->env, 1))) == 0 && mdb_env_get_path(ix->env, &path) == 0)
		synced(path);
	hl_idx_write_end(ix, txn, 1); /* aborted: nothing was written */
	return err;
}
