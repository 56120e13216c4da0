/* snapshot.c — hl_snapshot: a work tree stored as trees and blobs, files hashed on all cores,
 * unchanged files skipped by the stat cache; new files and trees stored as deltas against the same
 * path of a similar stored tree where that saves space (hl_snapshot_like). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "helios.h"
#include "api/api.h"
#include "api/dircache.h"
#include "base/grow.h"
#include "base/log.h"
#include "base/workers.h"
#include "dedup/tree.h"
#include "store/names.h"
#include "base/alloc.h"

#define MAX_DEPTH 1024
#define PATH_CAP 8192
#define BATCH_BYTES (64u << 20) /* new objects are stored in atomic batches of about this much */

/* ---------- snapshot ---------- */

typedef struct snap_dir {
	char *path;                /* on disk */
	hl_tree_entry *e;          /* names owned (malloc'd) */
	struct snap_dir **sub;     /* per entry: the subdirectory, or NULL */
	size_t n, cap;
	hl_id *like;               /* per entry: the same path's object in the like tree (NULL: none
	                              at all; a zero id: none for that entry) */
	hl_id like_tree;           /* the same directory's tree in the like tree */
	int has_like_tree;
	uint64_t dev, ino;         /* the directory's: the key of its stat cache row */
	hl_id tree_id;             /* what it was stored as (encode_trees) */
	struct cached_file *cache; /* per entry: what the stat cache said of it (NULL: nothing) */
	uint64_t cached_ns;        /* when that row was written */
	hl_id cache_tree;          /* the tree it named (with cache) */
	size_t *job_of;            /* per entry: its file job, or SIZE_MAX (update_cache) */
} snap_dir;

/* A file as the stat cache last saw it: its inode and times, and from the tree its size, mode and
 * id. */
typedef struct cached_file {
	int ok;
	uint64_t ino, mtime_ns, ctime_ns, size;
	uint32_t mode;
	hl_id id;
} cached_file;

/* A new object waiting for its batch: a mapped file, a symlink target or an encoded tree. */
typedef struct pending {
	const void *data;
	size_t len;
	hl_id id;
	void *map;     /* munmap after storing (files) */
	void *owned;   /* free after storing (targets, trees) */
	const hl_id *like; /* a stored object it probably resembles, or NULL */
} pending;

typedef struct file_job {
	snap_dir *d;
	size_t i;
	pending p;     /* set when the file is new and waits for a batch */
	struct stat st;        /* as listed (lstat), then as read (fstat) */
	int hashed;            /* read and hashed (not taken from the stat cache) */
} file_job;

typedef struct snap {
	hl_store *s;
	hl_snapshot_stats st;
	file_job *jobs;
	size_t njobs, jobs_cap;
	atomic_size_t next;
	atomic_int err;
	atomic_uint_fast64_t new_objects, new_bytes, cached;
	pending *pend;             /* symlink targets and trees, in the order they must be stored */
	size_t npend, pend_cap;
	size_t nlarge;             /* jobs[0..nlarge): files above the chunk threshold (order_jobs) */
	size_t large_left;         /* of them not yet stored (mu) */
	pthread_mutex_t mu;
	pthread_cond_t large_cv;   /* large_left reached 0 */
} snap;

static int add_pending(snap *sn, const pending *p)
{
	pending *v = hl_grow(sn->pend, sn->npend, &sn->pend_cap, sizeof(*v), 64);
	if (!v)
		return ENOMEM;
	sn->pend = v;
	sn->pend[sn->npend++] = *p;
	return 0;
}

static void release(pending *p)
{
	if (p->map && p->len)
		munmap(p->map, p->len);
	free(p->owned);
	memset(p, 0, sizeof(*p));
}

static void dir_free(snap_dir *d)
{
	if (!d)
		return;
	for (size_t i = 0; i < d->n; i++) {
		dir_free(d->sub[i]);
		free((char *)d->e[i].name);
	}
	free(d->e);
	free(d->sub);
	free(d->like);
	free(d->cache);
	free(d->job_of);
	free(d->path);
	free(d);
}

static int dir_add(snap_dir *d, const char *name)
{
	size_t cap = d->cap; /* e and sub share d->cap: it moves with the second */
	hl_tree_entry *e = hl_grow(d->e, d->n, &cap, sizeof(*e), 16);
	if (!e)
		return ENOMEM;
	d->e = e;
	snap_dir **sub = hl_grow(d->sub, d->n, &d->cap, sizeof(*sub), 16);
	if (!sub)
		return ENOMEM;
	d->sub = sub;
	memset(&d->e[d->n], 0, sizeof(d->e[0]));
	d->sub[d->n] = NULL;
	if (!(d->e[d->n].name = hl_strdup(name)))
		return ENOMEM;
	d->e[d->n].name_len = strlen(name);
	d->n++;
	return 0;
}

static char *join(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	char *p = hl_malloc(la + lb + 2);
	if (p) {
		memcpy(p, a, la);
		p[la] = '/';
		memcpy(p + la + 1, b, lb + 1);
	}
	return p;
}

/* Reads a directory: entries sorted, subdirectories read recursively, files queued. */
static int scan(snap *sn, const char *path, int depth, snap_dir **out)
{
	if (depth > MAX_DEPTH)
		return HL_TOOBIG;
	snap_dir *d = hl_calloc(1, sizeof(*d));
	if (!d || !(d->path = hl_strdup(path))) {
		free(d);
		return ENOMEM;
	}
	*out = d;
	DIR *dp = opendir(path);
	if (!dp) {
		int e = errno;
		hl_log(HL_LOG_ERROR, "snapshot: %s: %s", path, strerror(e));
		return e;
	}
	struct stat ds;
	if (fstat(dirfd(dp), &ds) == 0)
		d->dev = (uint64_t)ds.st_dev, d->ino = (uint64_t)ds.st_ino;
	struct dirent *de;
	int err = 0;
	while (!err && (de = readdir(dp)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
			err = dir_add(d, de->d_name);
	closedir(dp);
	if (err)
		return err;
	hl_tree_sort(d->e, d->n);
	sn->st.dirs++;
	size_t keep = 0, i;
	for (i = 0; i < d->n && !err; i++) {
		hl_tree_entry *e = &d->e[i];
		char *p = join(path, e->name);
		struct stat st;
		if (!p)
			return ENOMEM;
		if (lstat(p, &st)) {
			err = errno;
			hl_log(HL_LOG_ERROR, "snapshot: %s: %s", p, strerror(err));
		} else if (S_ISREG(st.st_mode)) {
			e->kind = HL_TREE_FILE;
			e->mode = st.st_mode & 07777;
			file_job *j = hl_grow(sn->jobs, sn->njobs, &sn->jobs_cap, sizeof(*j), 256);
			if (!j)
				err = ENOMEM;
			else
				sn->jobs = j;
			if (!err)
				sn->jobs[sn->njobs++] = (file_job){d, keep, {0}, st, 0};
			sn->st.files++;
		} else if (S_ISDIR(st.st_mode)) {
			e->kind = HL_TREE_DIR;
			e->mode = st.st_mode & 07777;
			err = scan(sn, p, depth + 1, &d->sub[i]);
		} else if (S_ISLNK(st.st_mode)) {
			char target[PATH_CAP];
			ssize_t n = readlink(p, target, sizeof target);
			e->kind = HL_TREE_SYMLINK;
			if (n < 0 || (size_t)n >= sizeof target) {
				err = n < 0 ? errno : HL_TOOBIG;
			} else {
				hl_hash(target, (size_t)n, &e->id);
				e->size = (uint64_t)n;
				if (hl_has(sn->s, &e->id) == HL_NOTFOUND) {
					pending pd = {.len = (size_t)n, .id = e->id, .owned = hl_malloc((size_t)n + 1)};
					if (!pd.owned)
						err = ENOMEM;
					else
						memcpy(pd.owned, target, (size_t)n), pd.data = pd.owned, err = add_pending(sn, &pd);
				}
			}
			sn->st.symlinks++;
		} else {
			hl_log(HL_LOG_WARN, "snapshot: %s: not a file, directory or symlink; skipped", p);
			sn->st.skipped++;
			free(p);
			free((char *)e->name);
			continue; /* dropped from the tree */
		}
		free(p);
		if (keep != i) { /* close the gap a skipped entry left */
			d->e[keep] = d->e[i];
			d->sub[keep] = d->sub[i];
			d->sub[i] = NULL;
		}
		keep++;
	}
	for (; i < d->n; i++, keep++) { /* after an error: the rest, unvisited, closes up too */
		d->e[keep] = d->e[i];
		d->sub[keep] = d->sub[i];
	}
	d->n = keep;
	return err;
}

#define SMALL_FILE (256u << 10)

/* The whole file into a new buffer (NULL with errno set, or EIO when it changed size). */
static void *read_whole(int fd, size_t len)
{
	uint8_t *b = hl_malloc(len);
	size_t got = 0;
	while (b && got < len) {
		ssize_t r = read(fd, b + got, len - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0)
				errno = EIO; /* shrank while read */
			free(b);
			return NULL;
		}
		got += (size_t)r;
	}
	return b;
}

static const hl_id zero_id;

/* The same path's object in the like tree, or NULL. */
static const hl_id *like_of(const snap_dir *d, size_t i)
{
	return d->like && !hl_id_equal(&d->like[i], &zero_id) ? &d->like[i] : NULL;
}

/* Pairs d's entries with those of the stored tree like (same name, same kind): each file's
 * object and each subdirectory's tree become the bases its new version is stored against. A tree
 * that cannot be read pairs nothing (the snapshot goes on without deltas there). */
static int match_like(snap *sn, snap_dir *d, const hl_id *like)
{
	hl_buf *b;
	uint32_t count;
	if (hl_api_load_tree(sn->s, like, &b, &count))
		return 0;
	d->like_tree = *like;
	d->has_like_tree = 1;
	int err = (d->like = hl_calloc(d->n ? d->n : 1, sizeof(*d->like))) ? 0 : ENOMEM;
	size_t pos = 0, i = 0;
	hl_tree_entry e;
	while (!err && i < d->n && hl_tree_next(hl_buf_data(b), hl_buf_len(b), &pos, &e)) {
		while (i < d->n && hl_tree_entry_cmp(&d->e[i], &e) < 0)
			i++;
		if (i == d->n || hl_tree_entry_cmp(&d->e[i], &e) != 0 || d->e[i].kind != e.kind)
			continue;
		if (e.kind == HL_TREE_FILE)
			d->like[i] = e.id;
		else if (e.kind == HL_TREE_DIR && d->sub[i])
			err = match_like(sn, d->sub[i], &e.id);
	}
	hl_buf_unref(b);
	return err;
}

/* Hashes one file in this thread. Already stored: done. New: kept mapped for a batch (or, above
 * the chunk threshold, stored at once as chunks). */
static int hash_file(snap *sn, file_job *job)
{
	hl_tree_entry *e = &job->d->e[job->i];
	char *p = join(job->d->path, e->name);
	if (!p)
		return ENOMEM;
	int fd = open(p, O_RDONLY | O_NOFOLLOW | O_CLOEXEC), err = 0;
	struct stat st;
	if (fd < 0 || fstat(fd, &st)) {
		err = errno;
	} else {
		job->st = st;
		job->hashed = 1;
		size_t len = (size_t)st.st_size;
		int small = len <= SMALL_FILE; /* read: cheaper than mapping (no page tables, no shootdown) */
		void *m = !len ? (void *)"" : small ? read_whole(fd, len) : mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0);
		if (!m || m == MAP_FAILED) {
			err = errno ? errno : EIO; /* read_whole and mmap both set errno */
		} else {
			pending pd = {.data = m, .len = len, .owned = small && len ? m : NULL,
			              .map = !small && len ? m : NULL};
			e->size = len;
			const hl_id *like = like_of(job->d, job->i);
			if (sn->s->chunk_threshold && len > sn->s->chunk_threshold) {
				int created = 0;
				err = hl_large_put_like(sn->s, m, len, like, &e->id, &created);
				if (created)
					atomic_fetch_add(&sn->new_objects, 1), atomic_fetch_add(&sn->new_bytes, len);
			} else {
				hl_hash(m, len, &e->id);
				pd.id = e->id;
				if ((err = hl_has(sn->s, &e->id)) == HL_NOTFOUND) {
					pd.like = like;
					job->p = pd; /* new: kept for a batch */
					pd = (pending){0};
					err = 0;
				}
			}
			release(&pd);
		}
	}
	if (fd >= 0)
		close(fd);
	if (err)
		hl_log(HL_LOG_ERROR, "snapshot: %s: %s", p, hl_strerror(err));
	free(p);
	return err;
}

static uint64_t ns_of(const struct timespec *t)
{
	return (uint64_t)t->tv_sec * 1000000000u + (uint64_t)t->tv_nsec;
}

static uint64_t wall_ns(void)
{
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	return ns_of(&t);
}

/* Racily clean: a file changed within this much of being cached may have changed again within the
 * same timestamp tick; its cache entry is not trusted. */
#define RACY_NS 2000000000ull

/* The stat cache (a row per directory, api/dircache.h): what d's row says of the files still
 * listed under their names, read against the tree it names (size, mode and id come from there);
 * then d's subdirectories. A missing, older or unreadable row or tree is no hit. */
static void load_cache(snap *sn, snap_dir *d)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->sub[i])
			load_cache(sn, d->sub[i]);
	uint8_t *row;
	size_t len, pos = 0, j = 0;
	hl_dircache c;
	hl_buf *tb = NULL;
	uint32_t count, at = 0;
	if (!d->n || hl_names_scache_get(sn->s->local, d->dev, d->ino, &row, &len))
		return;
	int err = hl_dircache_decode(row, len, &c);
	free(row);
	if (err)
		return;
	if (c.n && hl_get(sn->s, &c.tree, &tb) == 0 &&
	    hl_tree_check(hl_buf_data(tb), hl_buf_len(tb), &count) == 0 &&
	    (d->cache = hl_calloc(d->n, sizeof(*d->cache))) != NULL) {
		const uint8_t *t = hl_buf_data(tb);
		size_t tlen = hl_buf_len(tb);
		hl_tree_entry te;
		int have = hl_tree_next(t, tlen, &pos, &te);
		for (size_t k = 0; k < c.n && have; k++) {
			while (have && at < c.f[k].index)
				have = hl_tree_next(t, tlen, &pos, &te), at++;
			if (!have || te.kind != HL_TREE_FILE)
				continue;
			while (j < d->n && hl_tree_entry_cmp(&d->e[j], &te) < 0) /* both in tree order */
				j++;
			if (j < d->n && hl_tree_entry_cmp(&d->e[j], &te) == 0 && d->e[j].kind == HL_TREE_FILE)
				d->cache[j] = (cached_file){1, c.f[k].ino, c.f[k].mtime_ns, c.f[k].ctime_ns, te.size,
				                            te.mode, te.id};
		}
		d->cached_ns = c.cached_ns;
		d->cache_tree = c.tree;
	}
	if (tb)
		hl_buf_unref(tb);
	free(c.f);
}

/* A file whose inode is the one the stat cache saw under its name, still showing the size, mode,
 * mtime and ctime it had when it was last read (and not changed just before that), and whose
 * object is stored, is not read again. */
static int from_cache(snap *sn, file_job *job)
{
	const snap_dir *d = job->d;
	const cached_file *c = d->cache ? &d->cache[job->i] : NULL;
	const struct stat *st = &job->st;
	if (!c || !c->ok || c->ino != (uint64_t)st->st_ino || c->size != (uint64_t)st->st_size ||
	    c->mtime_ns != ns_of(&st->st_mtim) || c->ctime_ns != ns_of(&st->st_ctim) ||
	    c->mode != (uint32_t)(st->st_mode & 07777) || c->mtime_ns + RACY_NS > d->cached_ns ||
	    c->ctime_ns + RACY_NS > d->cached_ns)
		return 0;
	if (hl_has(sn->s, &c->id))
		return 0;
	hl_tree_entry *e = &job->d->e[job->i];
	e->id = c->id;
	e->size = c->size;
	return 1;
}

typedef struct cache_rows {
	hl_scache_row *v;
	size_t n, cap;
	uint64_t now;
	int err;
} cache_rows;

/* d's row for the next snapshot (when one of its files was read or its tree is not the one its
 * row names), then its subdirectories'. */
static void cache_row(snap *sn, snap_dir *d, cache_rows *r)
{
	for (size_t i = 0; i < d->n; i++)
		if (d->sub[i])
			cache_row(sn, d->sub[i], r);
	if (!d->job_of || r->err)
		return;
	hl_dircache c = {.cached_ns = r->now, .tree = d->tree_id, .f = hl_malloc(d->n * sizeof(*c.f))};
	int dirty = !d->cache || !hl_id_equal(&d->cache_tree, &d->tree_id);
	for (size_t i = 0; c.f && i < d->n; i++) {
		if (d->job_of[i] == SIZE_MAX)
			continue;
		const file_job *j = &sn->jobs[d->job_of[i]];
		c.f[c.n++] = (hl_dircache_file){(uint32_t)i, (uint64_t)j->st.st_ino, ns_of(&j->st.st_mtim),
		                                ns_of(&j->st.st_ctim)};
		dirty |= j->hashed;
	}
	size_t cap = hl_dircache_size_max(c.n), len = 0;
	uint8_t *buf = c.f && dirty ? hl_malloc(cap) : NULL;
	hl_scache_row *v = buf ? hl_grow(r->v, r->n, &r->cap, sizeof(*v), 64) : NULL;
	if (v && hl_dircache_encode(&c, buf, cap, &len) == 0) {
		r->v = v;
		r->v[r->n++] = (hl_scache_row){d->dev, d->ino, buf, len};
	} else {
		free(buf);
		if (dirty)
			r->err = ENOMEM;
	}
	free(c.f);
}

/* What the files just listed looked like, a row per directory, for the next snapshot. */
static void update_cache(snap *sn, snap_dir *top)
{
	for (size_t k = 0; k < sn->njobs; k++) {
		snap_dir *d = sn->jobs[k].d;
		if (!d->job_of && (d->job_of = hl_malloc(d->n * sizeof(*d->job_of))) != NULL)
			for (size_t i = 0; i < d->n; i++)
				d->job_of[i] = SIZE_MAX;
		if (d->job_of)
			d->job_of[sn->jobs[k].i] = k;
	}
	cache_rows r = {.now = wall_ns()};
	cache_row(sn, top, &r);
	if (r.err || hl_names_scache_put(sn->s->local, r.v, r.n))
		hl_log(HL_LOG_INFO, "snapshot: the stat cache was not updated; the next snapshot reads more");
	for (size_t i = 0; i < r.n; i++)
		free((void *)r.v[i].val);
	free(r.v);
}

static int store_pending(snap *sn, pending **list, size_t n);

#define WORKER_BATCH_BYTES (16u << 20) /* a worker stores its new files in batches of this much */
#define WORKER_BATCH_FILES 4096

static void fail(snap *sn, int err)
{
	int none = 0;
	if (!err)
		return;
	atomic_compare_exchange_strong(&sn->err, &none, err);
	pthread_mutex_lock(&sn->mu); /* a worker waiting for the large files stops waiting */
	pthread_cond_broadcast(&sn->large_cv);
	pthread_mutex_unlock(&sn->mu);
}

/* One of the large files is stored (or failed): after the last, the waiting batches go on. */
static void large_stored(snap *sn)
{
	pthread_mutex_lock(&sn->mu);
	if (--sn->large_left == 0)
		pthread_cond_broadcast(&sn->large_cv);
	pthread_mutex_unlock(&sn->mu);
}

/* Stores a worker's batch of new small files once every large file is stored (they come first,
 * so this waits only for the ones other workers are still storing): the small files' objects then
 * find the large files' chunks as bases by similarity. After a failure (a worker that stops takes
 * no more jobs, large ones included) nothing is stored. */
static int store_batch(snap *sn, pending **batch, size_t nb)
{
	pthread_mutex_lock(&sn->mu);
	while (sn->large_left && !atomic_load(&sn->err))
		pthread_cond_wait(&sn->large_cv, &sn->mu);
	pthread_mutex_unlock(&sn->mu);
	return atomic_load(&sn->err) ? 0 : store_pending(sn, batch, nb);
}

/* Reads and hashes files; stores the new ones as it goes, in batches of WORKER_BATCH_BYTES, so a
 * snapshot holds at most that much per thread in memory (and reuses it: fresh memory for every
 * file costs a page fault per page), whatever the size of the tree. */
static void *file_worker(void *arg)
{
	snap *sn = arg;
	pending *batch[WORKER_BATCH_FILES];
	size_t nb = 0, bytes = 0;
	for (;;) {
		size_t k = atomic_fetch_add(&sn->next, 1);
		if (k >= sn->njobs || atomic_load(&sn->err))
			break;
		file_job *job = &sn->jobs[k];
		int err = 0;
		if (from_cache(sn, job)) {
			atomic_fetch_add(&sn->cached, 1);
		} else if ((err = hash_file(sn, job)) == HL_BUSY) { /* overloaded: wait, retry this one */
			usleep(1000);
			err = hash_file(sn, job);
		}
		if (k < sn->nlarge) /* (stored by hash_file, or failed) */
			large_stored(sn);
		fail(sn, err);
		if (!err && job->p.data) {
			batch[nb++] = &job->p;
			bytes += job->p.len;
		}
		if (nb == WORKER_BATCH_FILES || bytes >= WORKER_BATCH_BYTES) {
			fail(sn, store_batch(sn, batch, nb));
			nb = bytes = 0;
		}
	}
	if (nb && !atomic_load(&sn->err))
		fail(sn, store_batch(sn, batch, nb));
	return NULL; /* (what a failure left unstored is released by hl_snapshot) */
}

/* Encodes the trees bottom up (*id is d's tree id); the new ones wait for the last batch. */
static int encode_trees(snap *sn, snap_dir *d, hl_id *id)
{
	for (size_t i = 0; i < d->n; i++) {
		int err = d->sub[i] ? encode_trees(sn, d->sub[i], &d->e[i].id) : 0;
		if (err)
			return err;
	}
	size_t len = hl_tree_size(d->e, d->n);
	uint8_t *buf = hl_malloc(len);
	if (!buf)
		return ENOMEM;
	int err = hl_tree_encode(d->e, d->n, buf, len, &len);
	if (err == HL_INVALID)
		hl_log(HL_LOG_ERROR, "snapshot: %s: holds a name a tree cannot (empty, '.', '..')", d->path);
	if (!err) {
		hl_hash(buf, len, id);
		d->tree_id = *id;
		if ((err = hl_has(sn->s, id)) == HL_NOTFOUND) {
			pending pd = {.data = buf, .len = len, .id = *id, .owned = buf,
			              .like = d->has_like_tree ? &d->like_tree : NULL};
			if ((err = add_pending(sn, &pd)) == 0)
				return 0;
		}
	}
	free(buf);
	return err;
}

/* Stores the pending objects in order, in atomic batches of about BATCH_BYTES (one sync each).
 * HL_READONLY on a read-only store (nothing stored; the objects stay for hl_snapshot to release). */
static int store_pending(snap *sn, pending **list, size_t n)
{
	if (hl_local_read_only(sn->s->local))
		return HL_READONLY;
	hl_put_item *items = hl_malloc((n ? n : 1) * sizeof(*items));
	const hl_id **likes = hl_malloc((n ? n : 1) * sizeof(*likes));
	if (!items || !likes) {
		free(items);
		free(likes);
		return ENOMEM;
	}
	int err = 0;
	size_t start = 0, bytes = 0;
	for (size_t i = 0; i <= n && !err; i++) {
		if (i < n && (i == start || bytes + list[i]->len <= BATCH_BYTES)) {
			items[i] = (hl_put_item){.data = list[i]->data, .len = list[i]->len, .id = list[i]->id};
			likes[i] = list[i]->like;
			bytes += list[i]->len;
			continue;
		}
		if (i > start && (err = hl_api_put_like(sn->s, items + start, likes + start, i - start)) == 0)
			for (size_t k = start; k < i; k++)
				if (items[k].created)
					atomic_fetch_add(&sn->new_objects, 1), atomic_fetch_add(&sn->new_bytes, items[k].len);
		for (size_t k = start; k < i; k++)
			release(list[k]);
		start = i;
		bytes = 0;
		if (i < n)
			i--; /* this one opens the next batch */
	}
	free(items);
	free(likes);
	return err;
}

typedef struct job_rank {
	off_t size;
	size_t k; /* where it was listed */
} job_rank;

static int larger_first(const void *a, const void *b)
{
	const job_rank *x = a, *y = b;
	if (x->size != y->size)
		return x->size > y->size ? -1 : 1;
	return x->k < y->k ? -1 : x->k > y->k;
}

/* Puts the files above the chunk threshold first, largest first (in the order listed otherwise):
 * a big archive or database is then stored before the small files, which find its chunks as delta
 * bases by similarity (a tar of sources, a vendored copy), and the longest jobs start first. */
static int order_jobs(snap *sn)
{
	uint64_t threshold = sn->s->chunk_threshold;
	size_t nlarge = 0;
	for (size_t k = 0; threshold && k < sn->njobs; k++)
		nlarge += (uint64_t)sn->jobs[k].st.st_size > threshold;
	if (!nlarge)
		return 0;
	file_job *v = hl_malloc(sn->njobs * sizeof(*v));
	job_rank *r = hl_malloc(nlarge * sizeof(*r));
	if (!v || !r) {
		free(v);
		free(r);
		return ENOMEM;
	}
	size_t a = 0, b = nlarge;
	for (size_t k = 0; k < sn->njobs; k++)
		if ((uint64_t)sn->jobs[k].st.st_size > threshold)
			r[a++] = (job_rank){sn->jobs[k].st.st_size, k};
		else
			v[b++] = sn->jobs[k];
	qsort(r, nlarge, sizeof(*r), larger_first);
	for (size_t i = 0; i < nlarge; i++)
		v[i] = sn->jobs[r[i].k];
	free(r);
	free(sn->jobs);
	sn->jobs = v;
	sn->jobs_cap = sn->njobs;
	sn->nlarge = sn->large_left = nlarge;
	return 0;
}

int hl_snapshot(hl_store *s, const char *dir, unsigned threads, hl_id *root, hl_snapshot_stats *st)
{
	return hl_snapshot_like(s, dir, threads, NULL, root, st);
}

int hl_snapshot_like(hl_store *s, const char *dir, unsigned threads, const hl_id *like, hl_id *root,
                     hl_snapshot_stats *st)
{
	if (!s || !dir || !root)
		return HL_INVALID;
	struct stat sb;
	if (stat(dir, &sb))
		return errno;
	if (!S_ISDIR(sb.st_mode))
		return ENOTDIR;
	snap sn;
	memset(&sn, 0, sizeof sn);
	sn.s = s;
	pthread_mutex_init(&sn.mu, NULL);
	pthread_cond_init(&sn.large_cv, NULL);
	snap_dir *top = NULL;
	int err = scan(&sn, dir, 0, &top);
	if (!err && like)
		err = match_like(&sn, top, like);
	if (!err)
		err = order_jobs(&sn);
	if (!err)
		load_cache(&sn, top);
	if (!err) {
		if (!threads)
			threads = hl_cpus();
		if (threads > sn.njobs)
			threads = sn.njobs ? (unsigned)sn.njobs : 1;
		hl_run_workers(file_worker, &sn, threads);
		err = atomic_load(&sn.err);
	}
	for (size_t k = 0; !err && k < sn.njobs; k++)
		sn.st.bytes += sn.jobs[k].d->e[sn.jobs[k].i].size;
	if (!err)
		err = encode_trees(&sn, top, root);
	/* new files, then symlink targets and trees (children before the trees that name them) */
	pending **list = hl_malloc((sn.njobs + sn.npend + 1) * sizeof(*list));
	size_t nl = 0;
	if (!list && !err)
		err = ENOMEM;
	for (size_t k = 0; list && k < sn.njobs; k++)
		if (sn.jobs[k].p.data)
			list[nl++] = &sn.jobs[k].p;
	for (size_t k = 0; list && k < sn.npend; k++)
		list[nl++] = &sn.pend[k];
	if (!err)
		err = store_pending(&sn, list, nl);
	if (!err)
		update_cache(&sn, top);
	for (size_t k = 0; k < sn.njobs; k++)
		release(&sn.jobs[k].p);
	for (size_t k = 0; k < sn.npend; k++)
		release(&sn.pend[k]);
	free(list);
	free(sn.pend);
	sn.st.new_objects = atomic_load(&sn.new_objects);
	sn.st.new_bytes = atomic_load(&sn.new_bytes);
	sn.st.cached = atomic_load(&sn.cached);
	if (st)
		*st = sn.st;
	dir_free(top);
	free(sn.jobs);
	pthread_cond_destroy(&sn.large_cv);
	pthread_mutex_destroy(&sn.mu);
	return err;
}
