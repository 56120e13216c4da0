/* restore.c — hl_restore: a stored tree recreated in a new or empty directory, every object
 * verified, unsafe names refused before anything is written, files written on all cores and read
 * as a scan (through the L1 without filling it). */
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
#include "base/grow.h"
#include "base/log.h"
#include "base/workers.h"
#include "dedup/manifest.h"
#include "dedup/resolve.h"
#include "dedup/tree.h"
#include "store/names.h"
#include "base/alloc.h"

#define MAX_DEPTH 1024
#define PATH_CAP 8192
#define RESTORE_THREADS_MAX 8

/* ---------- restore ---------- */

static int write_all(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		p += w, n -= (size_t)w;
	}
	return 0;
}

/* A restore runs in three steps, so that no symlink exists while files are written (a path
 * through the new tree then only ever crosses directories this call made) and a read-only
 * directory gets its mode only once it is filled: (1) the trees walked, directories made, files
 * and symlinks listed; (2) the files written by workers on all cores, each under its path from
 * the root; (3) the symlinks made, then the directories' modes set, deepest first. */

typedef struct rjob {
	char *path;      /* from the root */
	hl_tree_entry e; /* name unused */
} rjob;

typedef struct rlist {
	rjob *v;
	size_t n, cap;
} rlist;

typedef struct restore {
	hl_store *s;
	int root;
	rlist files, links, dirs;
	atomic_size_t next;
	atomic_int err;
} restore;

static int rlist_add(rlist *l, const char *path, const hl_tree_entry *e)
{
	rjob *v = hl_grow(l->v, l->n, &l->cap, sizeof(*v), 64);
	if (!v)
		return ENOMEM;
	l->v = v;
	if (!(v[l->n].path = hl_strdup(path)))
		return ENOMEM;
	v[l->n].e = *e;
	v[l->n++].e.name = NULL;
	return 0;
}

static void rlist_free(rlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i].path);
	free(l->v);
}

/* Step 1 for the tree id at path (relative to the root; "" is the root itself). */
static int list_tree(restore *r, const char *path, const hl_id *id, int depth)
{
	if (depth > MAX_DEPTH)
		return HL_TOOBIG;
	hl_buf *b;
	uint32_t n;
	int err = hl_api_load_tree(r->s, id, &b, &n);
	if (err)
		return err == HL_INVALID ? HL_CORRUPT : err;
	size_t pos = 0, plen = strlen(path);
	hl_tree_entry e;
	char sub[PATH_CAP];
	while (!err && hl_tree_next(hl_buf_data(b), hl_buf_len(b), &pos, &e)) {
		if (plen + e.name_len + 2 > sizeof sub) {
			err = ENAMETOOLONG;
			break;
		}
		int k = plen ? snprintf(sub, sizeof sub, "%s/", path) : 0;
		memcpy(sub + k, e.name, e.name_len);
		sub[k + e.name_len] = 0;
		if (e.kind == HL_TREE_DIR) {
			if (mkdirat(r->root, sub, 0700))
				err = errno;
			else if ((err = rlist_add(&r->dirs, sub, &e)) == 0)
				err = list_tree(r, sub, &e.id, depth + 1);
		} else {
			err = rlist_add(e.kind == HL_TREE_SYMLINK ? &r->links : &r->files, sub, &e);
		}
	}
	hl_buf_unref(b);
	return err;
}

/* Writes a large blob chunk by chunk (each verified as it is read) while hashing the whole, which
 * must come out as its id: no copy of the blob in memory. HL_NOTFOUND when id is stored whole. */
static int write_chunked(hl_store *s, int fd, const hl_id *id, uint64_t size)
{
	hl_buf *mb;
	hl_manifest m;
	uint64_t total;
	int err = hl_resolve_manifest(s->resolver, id, &mb, &m, &total);
	if (err)
		return err;
	hl_hasher *h = hl_hasher_new();
	if (!h)
		err = ENOMEM;
	else if (total != size)
		err = HL_CORRUPT; /* the tree and its object disagree */
	for (uint32_t i = 0; !err && i < m.count; i++) {
		hl_chunk_ref c;
		hl_buf *cb;
		hl_manifest_chunk(&m, i, &c);
		if ((err = hl_resolve_chunk(s->resolver, &c, 1, &cb)) != 0)
			break;
		hl_hasher_update(h, hl_buf_data(cb), hl_buf_len(cb));
		err = write_all(fd, hl_buf_data(cb), hl_buf_len(cb));
		hl_buf_unref(cb);
	}
	hl_id got;
	if (!err) {
		hl_hasher_final(h, &got);
		if (!hl_id_equal(&got, id))
			err = HL_CORRUPT;
	}
	hl_hasher_free(h);
	hl_buf_unref(mb);
	return err;
}

static int write_file(restore *r, const rjob *j)
{
	hl_buf *b = NULL;
	int err = hl_coord_get_scan(r->s->coord, &j->e.id, &b);
	if (err && err != HL_NOTFOUND)
		return err;
	if (!err && hl_buf_len(b) != j->e.size) {
		hl_buf_unref(b);
		return HL_CORRUPT; /* the tree and its object disagree */
	}
	int fd = openat(r->root, j->path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		err = errno;
	} else {
		err = b ? write_all(fd, hl_buf_data(b), hl_buf_len(b)) : write_chunked(r->s, fd, &j->e.id, j->e.size);
		if (!err && fchmod(fd, j->e.mode))
			err = errno;
		if (close(fd) && !err)
			err = errno;
	}
	hl_buf_unref(b);
	return err;
}

static void *file_worker(void *arg)
{
	restore *r = arg;
	for (;;) {
		size_t k = atomic_fetch_add(&r->next, 1);
		if (k >= r->files.n || atomic_load(&r->err))
			return NULL;
		int err = write_file(r, &r->files.v[k]), none = 0;
		if (err) {
			hl_log(HL_LOG_ERROR, "restore: %s: %s", r->files.v[k].path, hl_strerror(err));
			atomic_compare_exchange_strong(&r->err, &none, err);
		}
	}
}

/* Step 3 for one symlink: its target read and checked (no NUL, within PATH_CAP). */
static int make_link(restore *r, const rjob *j)
{
	hl_buf *b;
	int err = hl_get(r->s, &j->e.id, &b);
	if (err)
		return err;
	char target[PATH_CAP];
	size_t n = hl_buf_len(b);
	if (n != j->e.size || n >= sizeof target || memchr(hl_buf_data(b), 0, n)) {
		err = HL_CORRUPT;
	} else {
		memcpy(target, hl_buf_data(b), n);
		target[n] = 0;
		err = symlinkat(target, r->root, j->path) ? errno : 0;
	}
	hl_buf_unref(b);
	return err;
}

/* Steps 2 and 3 after the walk: files on `threads` workers, then links, then directory modes. */
static int fill(restore *r, unsigned threads)
{
	if (threads > r->files.n)
		threads = r->files.n ? (unsigned)r->files.n : 1;
	hl_run_workers(file_worker, r, threads);
	int err = atomic_load(&r->err);
	for (size_t i = 0; !err && i < r->links.n; i++)
		err = make_link(r, &r->links.v[i]);
	for (size_t i = r->dirs.n; !err && i-- > 0;) { /* children were listed after their parents */
		int fd = openat(r->root, r->dirs.v[i].path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (fd < 0 || fchmod(fd, r->dirs.v[i].e.mode))
			err = errno;
		if (fd >= 0)
			close(fd);
	}
	return err;
}

static int check_only(const char *path, const hl_tree_entry *e, void *ctx)
{
	(void)path, (void)e, (void)ctx;
	return 0;
}

/* Creates the missing parents of path (like mkdir -p of its dirname). */
static int make_parents(const char *path)
{
	char p[PATH_CAP];
	size_t n = strlen(path);
	if (n >= sizeof p)
		return ENAMETOOLONG;
	memcpy(p, path, n + 1);
	for (size_t i = 1; i < n; i++) {
		if (p[i] != '/')
			continue;
		p[i] = 0;
		if (mkdir(p, 0755) && errno != EEXIST)
			return errno;
		p[i] = '/';
	}
	return 0;
}

int hl_restore(hl_store *s, const hl_id *root, const char *dir)
{
	if (!s || !root || !dir)
		return HL_INVALID;
	/* every tree is fetched and checked before anything is written */
	int err = hl_tree_walk(s, root, check_only, NULL);
	if (err)
		return err;
	int made = 0;
	if ((err = make_parents(dir)) != 0)
		return err;
	if (mkdir(dir, 0755) == 0) {
		made = 1;
	} else if (errno != EEXIST) {
		return errno;
	}
	int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dfd < 0)
		return errno;
	if (!made) { /* an existing directory must be empty */
		DIR *dp = fdopendir(dup(dfd));
		struct dirent *de;
		while (dp && (de = readdir(dp)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				err = EEXIST;
		if (dp)
			closedir(dp);
		if (err) {
			close(dfd);
			return ENOTEMPTY;
		}
	}
	restore r = {.s = s, .root = dfd};
	unsigned cpus = hl_cpus(), threads = cpus < RESTORE_THREADS_MAX ? cpus : RESTORE_THREADS_MAX;
	err = list_tree(&r, "", root, 0);
	if (!err)
		err = fill(&r, threads);
	rlist_free(&r.files);
	rlist_free(&r.links);
	rlist_free(&r.dirs);
	close(dfd);
	return err;
}
