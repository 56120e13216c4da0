/* restore.c — hl_restore: a stored tree recreated in a new or empty directory, every object
 * verified, unsafe names refused before anything is written. */
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
#include "dedup/tree.h"
#include "store/names.h"
#include "base/alloc.h"

#define MAX_DEPTH 1024
#define PATH_CAP 8192
#define BATCH_BYTES (64u << 20) /* new objects are stored in atomic batches of about this much */

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

static int restore_entry(hl_store *s, int dfd, const hl_tree_entry *e, int depth);

static int restore_tree(hl_store *s, int dfd, const hl_id *id, int depth)
{
	if (depth > MAX_DEPTH)
		return HL_TOOBIG;
	hl_buf *b;
	uint32_t n;
	int err = hl_api_load_tree(s, id, &b, &n);
	if (err)
		return err == HL_INVALID ? HL_CORRUPT : err;
	size_t pos = 0;
	hl_tree_entry e;
	char name[HL_TREE_NAME_MAX + 1];
	while (!err && hl_tree_next(hl_buf_data(b), hl_buf_len(b), &pos, &e)) {
		memcpy(name, e.name, e.name_len);
		name[e.name_len] = 0;
		e.name = name;
		err = restore_entry(s, dfd, &e, depth);
	}
	hl_buf_unref(b);
	return err;
}

static int restore_entry(hl_store *s, int dfd, const hl_tree_entry *e, int depth)
{
	int err = 0;
	if (e->kind == HL_TREE_DIR) {
		if (mkdirat(dfd, e->name, 0700))
			return errno;
		int sub = openat(dfd, e->name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
		if (sub < 0)
			return errno;
		err = restore_tree(s, sub, &e->id, depth + 1);
		if (!err && fchmod(sub, e->mode)) /* last, so a read-only directory can be filled */
			err = errno;
		close(sub);
		return err;
	}
	hl_buf *b;
	if ((err = hl_get(s, &e->id, &b)) != 0)
		return err;
	if (hl_buf_len(b) != e->size) {
		hl_buf_unref(b);
		return HL_CORRUPT; /* the tree and its object disagree */
	}
	if (e->kind == HL_TREE_SYMLINK) {
		char target[PATH_CAP];
		size_t n = hl_buf_len(b);
		if (n >= sizeof target || memchr(hl_buf_data(b), 0, n)) {
			err = HL_CORRUPT;
		} else {
			memcpy(target, hl_buf_data(b), n);
			target[n] = 0;
			err = symlinkat(target, dfd, e->name) ? errno : 0;
		}
	} else {
		int fd = openat(dfd, e->name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			err = errno;
		} else {
			err = write_all(fd, hl_buf_data(b), hl_buf_len(b));
			if (!err && fchmod(fd, e->mode))
				err = errno;
			if (close(fd) && !err)
				err = errno;
		}
	}
	hl_buf_unref(b);
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
	err = restore_tree(s, dfd, root, 0);
	close(dfd);
	return err;
}
