/* segment.c — segment files: creation with a durable header, lazily opened shared read
 * descriptors, and the writer's append position. Never rewrites a byte before the tail. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "base/clock.h"
#include "base/grow.h"
#include "base/io.h"
#include "base/log.h"
#include "store/record.h"
#include "store/segment.h"
#include "base/alloc.h"

struct hl_fdtab {
	uint32_t cap;
	hl_fdtab *next_retired;
	atomic_int fd[]; /* -1: not open */
};

static hl_fdtab *fdtab_new(uint32_t cap)
{
	hl_fdtab *t = hl_malloc(sizeof(*t) + cap * sizeof(atomic_int));
	if (!t)
		return NULL;
	t->cap = cap;
	t->next_retired = NULL;
	for (uint32_t i = 0; i < cap; i++)
		atomic_init(&t->fd[i], -1);
	return t;
}

void hl_segs_path(const hl_segset *ss, uint32_t segno, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%08u.seg", ss->dir, segno);
}

int hl_segs_open(hl_segset *ss, const char *store_dir, int read_only, uint64_t segment_size)
{
	memset(ss, 0, sizeof(*ss));
	ss->active_fd = -1;
	pthread_mutex_init(&ss->open_mu, NULL); /* so hl_segs_close always applies */
	size_t n = strlen(store_dir) + sizeof("/segments");
	ss->dir = hl_malloc(n);
	hl_fdtab *t = fdtab_new(64);
	if (!ss->dir || !t) {
		free(t);
		hl_segs_close(ss);
		return ENOMEM;
	}
	snprintf(ss->dir, n, "%s/segments", store_dir);
	ss->read_only = read_only;
	ss->segment_size = segment_size;
	atomic_init(&ss->tab, t);
	if (!read_only) {
		int err = hl_io_mkdir(ss->dir, 0755);
		if (err) {
			hl_segs_close(ss);
			return err;
		}
	}
	return 0;
}

void hl_segs_close(hl_segset *ss)
{
	hl_fdtab *t = atomic_load(&ss->tab);
	if (t) {
		for (uint32_t i = 0; i < t->cap; i++) {
			int fd = atomic_load(&t->fd[i]);
			if (fd >= 0)
				hl_io_close(fd);
		}
		free(t);
	}
	for (hl_fdtab *r = ss->retired, *next; r; r = next) {
		next = r->next_retired;
		free(r);
	}
	free(ss->dir);
	pthread_mutex_destroy(&ss->open_mu);
	memset(ss, 0, sizeof(*ss));
	ss->active_fd = -1;
}

/* Publishes fd for segno, growing the table; caller holds open_mu. */
static int install_fd_locked(hl_segset *ss, uint32_t segno, int fd)
{
	hl_fdtab *t = atomic_load(&ss->tab);
	if (segno >= t->cap) {
		uint32_t cap = t->cap;
		while (cap <= segno)
			cap *= 2;
		hl_fdtab *nt = fdtab_new(cap);
		if (!nt)
			return ENOMEM;
		for (uint32_t i = 0; i < t->cap; i++)
			atomic_store(&nt->fd[i], atomic_load(&t->fd[i]));
		t->next_retired = ss->retired;
		ss->retired = t;
		atomic_store(&ss->tab, nt);
		t = nt;
	}
	atomic_store(&t->fd[segno], fd);
	return 0;
}

int hl_segs_fd(hl_segset *ss, uint32_t segno, int *fd)
{
	hl_fdtab *t = atomic_load_explicit(&ss->tab, memory_order_acquire);
	if (segno < t->cap) {
		int f = atomic_load_explicit(&t->fd[segno], memory_order_acquire);
		if (f >= 0) {
			*fd = f;
			return 0;
		}
	}
	pthread_mutex_lock(&ss->open_mu);
	t = atomic_load(&ss->tab);
	int f = segno < t->cap ? atomic_load(&t->fd[segno]) : -1;
	int err = 0;
	if (f < 0) {
		char path[4096];
		hl_segs_path(ss, segno, path, sizeof path);
		err = hl_io_open(path, ss->read_only ? O_RDONLY : O_RDWR, 0, &f);
		if (!err && (err = install_fd_locked(ss, segno, f)) != 0)
			hl_io_close(f);
	}
	pthread_mutex_unlock(&ss->open_mu);
	if (!err)
		*fd = f;
	return err;
}

int hl_segs_remove(hl_segset *ss, uint32_t segno)
{
	if (ss->read_only)
		return HL_INVALID; /* (the caller never names the active segment: it holds no lock here) */
	char path[4096];
	hl_segs_path(ss, segno, path, sizeof path);
	pthread_mutex_lock(&ss->open_mu);
	int err = hl_io_unlink(path);
	if (!err) {
		hl_fdtab *t = atomic_load(&ss->tab);
		int f = segno < t->cap ? atomic_exchange(&t->fd[segno], -1) : -1;
		if (f >= 0)
			hl_io_close(f); /* the space is freed now; a reader that still held the number fails
			                   verification or gets EBADF, and follows the moved entry */
		if ((err = hl_io_sync_dir(ss->dir)) != 0)
			ss->sync_err = err;
	}
	pthread_mutex_unlock(&ss->open_mu);
	return err;
}

/* Creates segment segno: header written and synced, then the directory synced. */
static int create_segment(hl_segset *ss, uint32_t segno)
{
	char path[4096];
	hl_segs_path(ss, segno, path, sizeof path);
	int fd, err = hl_io_open(path, O_RDWR | O_CREAT | O_TRUNC, 0644, &fd);
	if (err)
		return err;
	uint8_t hdr[HL_SEG_HDR_LEN];
	hl_seg_hdr_encode(segno, hl_wall_s(), hdr);
	if ((err = hl_io_pwrite_full(fd, hdr, sizeof hdr, 0)) == 0 &&
	    ((err = hl_io_datasync(fd)) || (err = hl_io_sync_dir(ss->dir))))
		ss->sync_err = err;
	if (err) {
		hl_io_close(fd);
		return err;
	}
	pthread_mutex_lock(&ss->open_mu);
	hl_fdtab *t = atomic_load(&ss->tab);
	int old = segno < t->cap ? atomic_load(&t->fd[segno]) : -1;
	err = old >= 0 ? 0 : install_fd_locked(ss, segno, fd);
	pthread_mutex_unlock(&ss->open_mu);
	if (old >= 0 || err)
		hl_io_close(fd); /* someone opened the new file first; theirs is as good */
	return err;
}

int hl_segs_activate(hl_segset *ss, uint32_t segno, uint64_t tail, int create)
{
	int err, fd;
	if (create && (err = create_segment(ss, segno)) != 0)
		return err;
	if ((err = hl_segs_fd(ss, segno, &fd)) != 0)
		return err;
	uint64_t size;
	if ((err = hl_io_size(fd, &size)) != 0)
		return err;
	if (tail < HL_SEG_HDR_LEN || tail > size)
		return EINVAL;
	if (size > tail) {
		hl_log(HL_LOG_INFO, "segment %u: dropping %llu unindexed tail bytes", segno,
		       (unsigned long long)(size - tail));
		if ((err = hl_io_truncate(fd, tail)) != 0)
			return err;
	}
	ss->active = segno;
	ss->active_fd = fd;
	ss->tail = tail;
	return 0;
}

int hl_segs_reserve(hl_segset *ss, uint64_t len, uint32_t *segno, uint64_t *off)
{
	if (ss->active == 0 || (ss->tail > HL_SEG_HDR_LEN && ss->tail + len > ss->segment_size)) {
		int err = hl_segs_activate(ss, ss->active + 1, HL_SEG_HDR_LEN, 1);
		if (err)
			return err;
	}
	*segno = ss->active;
	*off = ss->tail;
	ss->tail += len;
	return 0;
}

static int segno_of(const char *name, uint32_t *segno)
{
	char *end;
	size_t n = strlen(name);
	if (n != 12 || strcmp(name + 8, ".seg") != 0)
		return 0;
	unsigned long v = strtoul(name, &end, 10);
	if (end != name + 8 || v == 0 || v > UINT32_MAX)
		return 0;
	*segno = (uint32_t)v;
	return 1;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

int hl_segs_list(hl_segset *ss, uint32_t **out, size_t *count)
{
	DIR *d = opendir(ss->dir);
	*out = NULL;
	*count = 0;
	if (!d)
		return errno == ENOENT ? 0 : errno;
	size_t n = 0, cap = 0;
	uint32_t *v = NULL;
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		uint32_t s;
		if (!segno_of(e->d_name, &s))
			continue;
		uint32_t *nv = hl_grow(v, n, &cap, sizeof(*v), 16);
		if (!nv) {
			free(v);
			closedir(d);
			return ENOMEM;
		}
		v = nv;
		v[n++] = s;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u32);
	*out = v;
	*count = n;
	return 0;
}

int hl_segs_bytes(hl_segset *ss, uint64_t *bytes, uint64_t *count)
{
	uint32_t *v;
	size_t n;
	int err = hl_segs_list(ss, &v, &n);
	if (err)
		return err;
	uint64_t total = 0;
	for (size_t i = 0; i < n && !err; i++) {
		int fd;
		uint64_t sz;
		if ((err = hl_segs_fd(ss, v[i], &fd)) == 0 && (err = hl_io_size(fd, &sz)) == 0)
			total += sz;
	}
	free(v);
	*bytes = total;
	*count = n;
	return err;
}
