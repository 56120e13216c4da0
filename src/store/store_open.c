/* store_open.c — opening a store: the marker, the lock, the index and segments, the replay of
 * the unindexed tail after a crash; and closing it.
 * Lock order: store_int.h. */
#include "store/store_int.h"

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
		if ((err = hl_segs_hold(&s->segs, seg, &fd)) != 0)
			break;
		if ((err = hl_io_size(fd, &size)) != 0) {
			hl_segs_release(&s->segs, seg);
			break;
		}
		if (seg != tseg) {
			uint8_t sh[HL_SEG_HDR_LEN];
			uint32_t no;
			if (size < HL_SEG_HDR_LEN || hl_io_pread_full(fd, sh, sizeof sh, 0) ||
			    hl_seg_hdr_decode(sh, sizeof sh, &no) || no != seg) {
				hl_segs_release(&s->segs, seg);
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
			int rerr = hl_st_read_record_at(s, fd, seg, off, size, now, &h, &e, &raw, &rawcap);
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
		hl_segs_release(&s->segs, seg);
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
	unsigned bits = s->opt.read_only ? 4 : hl_st_memtab_bits(t.objects);
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
		hl_st_totals_add(&t, &found[i].e, 1);
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
	err = hl_st_flush_index(s);
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

int hl_st_read_marker(const char *path)
{
	char buf[64] = {0};
	size_t n;
	int err = hl_io_read_file(path, buf, sizeof buf - 1, &n);
	if (err)
		return err == ENOENT ? HL_NOSTORE : err; /* unreadable is not corrupt */
	unsigned v;
	if (n == 0 || sscanf(buf, "helios-store %u", &v) != 1)
		return HL_CORRUPT;
	return v > STORE_FORMAT ? HL_VERSION : 0;
}

static int write_marker(const char *dir)
{
	char *fin = hl_st_path_join(dir, MARKER);
	int err = fin ? hl_io_replace_file(fin, MARKER_TEXT, strlen(MARKER_TEXT)) : ENOMEM;
	free(fin);
	return err;
}

int hl_st_take_lock(hl_local *s)
{
	char *p = hl_st_path_join(s->dir, "LOCK");
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
	hl_st_loctab_stop(s);
	if (s->flusher_running) {
		pthread_mutex_lock(&s->wake_mu);
		s->stop = 1;
		pthread_cond_signal(&s->wake_cv);
		pthread_mutex_unlock(&s->wake_mu);
		pthread_join(s->flusher, NULL);
	}
	int flushed = 0;
	if (s->ix.env && !s->opt.read_only && s->active) {
		int err = hl_st_flush_index(s);
		if (!err)
			err = hl_idx_sync(&s->ix);
		if (err)
			hl_log(HL_LOG_ERROR, "closing %s: %s (the next open replays the segment tail)", s->dir,
			       hl_strerror(err));
		flushed = !err;
	}
	hl_memtab_free(s->active);
	hl_memtab_free(s->flushing);
	hl_memtab_free(s->spare);
	hl_loctab_free(s->loc);
	free(s->touches.v);
	free(s->touches_spare.v);
	free(s->held.v);
	hl_idmap_free(&s->pins);
	hl_sketch_index_free(&s->sketches);
	if (flushed && !s->write_err)
		hl_idx_close_compact(&s->ix); /* (the file shrinks when mostly free pages) */
	else
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
	char *marker = hl_st_path_join(dir, MARKER);
	int err = marker ? hl_st_read_marker(marker) : ENOMEM;
	int creating = 0;
	if (err == HL_NOSTORE && opt->create && !opt->read_only) {
		if (!dir_is_fresh(dir))
			err = HL_NOTSTORE;
		else
			err = mkdir_p(dir), creating = 1;
	}
	free(marker);
	if (!err && !opt->read_only)
		err = hl_st_take_lock(s);
	if (!err)
		err = hl_idx_open(&s->ix, dir, opt->read_only, opt->sync == HL_SYNC_NONE, opt->map_size);
	if (!err)
		err = hl_segs_open(&s->segs, dir, opt->read_only, opt->segment_size);
	if (!err && creating)
		err = write_marker(dir);
	if (!err)
		err = replay_tail(s);
	if (!err && !opt->read_only) /* without its memory, puts find no bases by similarity */
		(void)hl_sketch_index_init(&s->sketches, SKETCH_RING_LOG, SKETCH_RING_LOG + 5);
	/* (before the flusher: it reads s->loc) */
	if (!err && !opt->read_only && opt->index_in_memory && (err = hl_st_loctab_start(s)) != 0) {
		hl_log(HL_LOG_WARN, "index table in memory: %s; lookups read the index file", hl_strerror(err));
		err = 0;
	}
	if (!err && !opt->read_only) {
		if ((err = pthread_create(&s->flusher, NULL, hl_st_flusher_main, s)) == 0) {
			pthread_setname_np(s->flusher, "helios-index");
			s->flusher_running = 1;
		}
	}
	if (err) {
		hl_memtab_free(s->active);
		s->active = NULL; /* nothing to flush on the way out */
		hl_local_close(s);
		return hl_st_sys_err(err);
	}
	*out = s;
	return 0;
}
