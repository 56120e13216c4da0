/* store_rebuild.c — hl_local_rebuild_index: a new index from the segment files' self-describing
 * records, names copied from the damaged index in a child process.
 * Lock order: store_int.h. */
#include "store/store_int.h"

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
	int err = hl_segs_hold(&s->segs, seg, &fd);
	if (err)
		return err;
	err = hl_io_size(fd, &size);
	uint8_t *raw = NULL;
	size_t cap = 0;
	*end = HL_SEG_HDR_LEN;
	while (!err && off + HL_REC_HDR_LEN <= size) {
		hl_rec_hdr h;
		hl_idx_entry e;
		int rerr = hl_st_read_record_at(s, fd, seg, off, size, now, &h, &e, &raw, &cap);
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
	hl_segs_release(&s->segs, seg);
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
				hl_st_totals_add(&t, &e, 1);
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
	char *marker = hl_st_path_join(dir, MARKER);
	int err = marker ? hl_st_read_marker(marker) : ENOMEM;
	free(marker);
	if (!err)
		err = hl_st_take_lock(s);
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
	return hl_st_sys_err(err);
}
