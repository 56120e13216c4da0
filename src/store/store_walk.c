/* store_walk.c — walks over the index (iterate, ids after), verify and the deeper index check,
 * statistics.
 * Lock order: store_int.h. */
#include <sys/statvfs.h>
#include "store/store_int.h"

/* ---------- walking, verifying, statistics ---------- */

/* A read transaction and a cursor on the object table, the memtables flushed first: every entry
 * in LMDB, one ordered, consistent walk. */
static int objects_cursor(hl_local *s, MDB_txn **txn, MDB_cursor **cur)
{
	int err = hl_st_flush_index(s);
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
		hl_st_stat_of(&e, &st);
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
			err = hl_st_read_following(j->s, &it->id, &it->e, hl_st_fill_raw, buf);
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
int hl_st_snapshot_entries(hl_local *s, MDB_dbi dbi, hl_obj_entry **out, size_t *count,
                           uint64_t *bytes, int *damaged)
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
	int err = hl_st_flush_index(s);
	if (err == HL_NOSPACE)
		err = 0; /* the entries the index could not take are checked from memory */
	int damaged = 0;
	if (!err)
		err = hl_st_snapshot_entries(s, s->ix.obj, &j.items, &j.n, &j.total_bytes, &damaged);
	if (err)
		return err;
	j.rep.index_damaged = damaged;
	j.rep.index_walked = j.n;
	if ((err = hl_st_snapshot_entries(s, s->ix.quar, &quar, &nquar, &qbytes, &damaged)) != 0) {
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
	int err = hl_st_flush_index(s);
	if (err == HL_NOSPACE)
		err = 0; /* the entries it could not take are checked from memory */
	hl_obj_entry *v = NULL;
	size_t n = 0;
	uint64_t bytes = 0;
	hl_stats st;
	if (err || (err = hl_st_snapshot_entries(s, s->ix.obj, &v, &n, &bytes, NULL)) != 0 ||
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
		int e2 = hl_segs_size(&s->segs, v[i].e.segment, &size);
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
		/* the writer's append position, taken under its lock; the bytes before it never change,
		 * so they are read without holding writers up */
		pthread_mutex_lock(&s->commit_mu);
		uint32_t last = s->segs.active;
		uint64_t tail = s->segs.tail, size = 0;
		int fd, held = 0;
		if (last && (err = hl_segs_hold(&s->segs, last, &fd)) == 0) {
			held = 1;
			err = hl_io_size(fd, &size);
		}
		pthread_mutex_unlock(&s->commit_mu);
		uint64_t off = HL_SEG_HDR_LEN, now = hl_wall_s();
		uint8_t *raw = NULL;
		size_t cap = 0;
		hl_rec_hdr h;
		hl_idx_entry e;
		while (!err && last && off < tail) {
			int r = hl_st_read_record_at(s, fd, last, off, tail, now, &h, &e, &raw, &cap);
			if (r == HL_INVALID)
				break; /* no whole record here */
			if (r && r != HL_CORRUPT && r != HL_TOOBIG)
				err = r; /* unreadable: nothing is known of the rest */
			else
				off += HL_REC_HDR_LEN + h.stored_len; /* a whole record (verify reports a bad one) */
		}
		if (held)
			hl_segs_release(&s->segs, last);
		free(raw);
		if (!err && last && (off != tail || size != tail)) {
			hl_log(HL_LOG_ERROR, "check: segment %u has %llu bytes after its last whole record", last,
			       (unsigned long long)(size - off));
			++*problems;
		}
	}
	free(segs);
	free(v);
	if (!err)
		err = hl_st_loctab_check(s, problems); /* the table in memory equals the index */
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
		t.deltas += s->tot.deltas - s->ptot.deltas;
		t.delta_raw_bytes += s->tot.delta_raw_bytes - s->ptot.delta_raw_bytes;
		t.delta_stored_bytes += s->tot.delta_stored_bytes - s->ptot.delta_stored_bytes;
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
	out->deltas = t.deltas;
	out->delta_raw_bytes = t.delta_raw_bytes;
	out->delta_stored_bytes = t.delta_stored_bytes;
	out->quarantined = qs.ms_entries;
	if ((err = hl_segs_bytes(&s->segs, &out->segment_bytes, &out->segments)) != 0)
		return err;
	out->puts = atomic_load(&s->puts);
	out->puts_new = atomic_load(&s->puts_new);
	out->gets = atomic_load(&s->gets);
	out->get_misses = atomic_load(&s->get_misses);
	out->corrupt_reads = atomic_load(&s->corrupt_reads);
	out->syncs = atomic_load(&s->syncs);
	out->sync_ns = atomic_load(&s->sync_ns);
	out->commits = atomic_load(&s->commits);
	out->index_flushes = atomic_load(&s->flushes);
	out->index_memory_bytes = s->loc && hl_loctab_ready(s->loc) ? hl_loctab_bytes(s->loc) : 0;
	out->unindexed = hl_st_unindexed(s);
	struct statvfs fs;
	if (statvfs(s->dir, &fs) == 0) { /* the file system the store lives on (0 when unknown) */
		out->disk_bytes = (uint64_t)fs.f_blocks * fs.f_frsize;
		out->disk_free_bytes = (uint64_t)fs.f_bavail * fs.f_frsize;
	}
	return 0;
}
