/* segment.c — segment files: creation with a durable header, lazily opened shared read
 * descriptors held by their readers, and the writer's append position. Never rewrites a byte before the tail. */
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

/* A segment's slot: bits 63..32 its descriptor + 1 (0: not open), bit 31 set once the file is
 * removed, bits 30..0 how many readers hold the descriptor. A reader takes a hold with a
 * compare-and-swap that fails once the file is removed; the descriptor is closed by whoever
 * leaves it at no holders after the removal (the remover, or the last reader), so a reader never
 * reads through a number that was closed and perhaps given to another file. */
#define SLOT_REMOVED (UINT64_C(1) << 31)
#define SLOT_HOLDERS (SLOT_REMOVED - 1)
#define SLOT_FD(v) ((int)((v) >> 32) - 1)
#define SLOTS_PER_CHUNK 1024u

typedef struct seg_chunk {
	_Atomic uint64_t slot[SLOTS_PER_CHUNK];
} seg_chunk;

/* segno / SLOTS_PER_CHUNK → its chunk of slots; chunks never move, the directory is replaced
 * (the old one kept until close) when it grows */
struct hl_segdir {
	uint32_t cap;
	hl_segdir *next_retired;
	_Atomic(seg_chunk *) chunk[];
};

static hl_segdir *segdir_new(uint32_t cap)
{
	hl_segdir *d = hl_malloc(sizeof(*d) + cap * sizeof(d->chunk[0]));
	if (!d)
		return NULL;
	d->cap = cap;
	d->next_retired = NULL;
	for (uint32_t i = 0; i < cap; i++)
		atomic_init(&d->chunk[i], NULL);
	return d;
}

/* segno's slot, or NULL when it was never made */
static _Atomic uint64_t *slot_find(hl_segset *ss, uint32_t segno)
{
	hl_segdir *d = atomic_load_explicit(&ss->dir_tab, memory_order_acquire);
	uint32_t c = segno / SLOTS_PER_CHUNK;
	seg_chunk *k = c < d->cap ? atomic_load_explicit(&d->chunk[c], memory_order_acquire) : NULL;
	return k ? &k->slot[segno % SLOTS_PER_CHUNK] : NULL;
}

/* segno's slot, made (and the directory grown) when missing; open_mu held. NULL: no memory. */
static _Atomic uint64_t *slot_make_locked(hl_segset *ss, uint32_t segno)
{
	hl_segdir *d = atomic_load(&ss->dir_tab);
	uint32_t c = segno / SLOTS_PER_CHUNK;
	if (c >= d->cap) {
		uint32_t cap = d->cap;
		while (cap <= c)
			cap *= 2;
		hl_segdir *nd = segdir_new(cap);
		if (!nd)
			return NULL;
		for (uint32_t i = 0; i < d->cap; i++)
			atomic_store(&nd->chunk[i], atomic_load(&d->chunk[i]));
		d->next_retired = ss->retired;
		ss->retired = d;
		atomic_store_explicit(&ss->dir_tab, nd, memory_order_release);
		d = nd;
	}
	seg_chunk *k = atomic_load(&d->chunk[c]);
	if (!k) {
		if (!(k = hl_malloc(sizeof(*k))))
			return NULL;
		for (uint32_t i = 0; i < SLOTS_PER_CHUNK; i++)
			atomic_init(&k->slot[i], 0);
		atomic_store_explicit(&d->chunk[c], k, memory_order_release);
	}
	return &k->slot[segno % SLOTS_PER_CHUNK];
}

void hl_segs_path(const hl_segset *ss, uint32_t segno, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/%08u.seg", ss->dir, segno);
}

int hl_segs_open(hl_segset *ss, const char *store_dir, int read_only, uint64_t segment_size)
{
	memset(ss, 0, sizeof(*ss));
	pthread_mutex_init(&ss->open_mu, NULL); /* so hl_segs_close always applies */
	size_t n = strlen(store_dir) + sizeof("/segments");
	ss->dir = hl_malloc(n);
	hl_segdir *d = segdir_new(16);
	if (!ss->dir || !d) {
		free(d);
		hl_segs_close(ss);
		return ENOMEM;
	}
	snprintf(ss->dir, n, "%s/segments", store_dir);
	ss->read_only = read_only;
	ss->segment_size = segment_size;
	atomic_init(&ss->dir_tab, d);
	if (!read_only) {
		int err = hl_io_mkdir(ss->dir, 0755);
		if (err) {
			hl_segs_close(ss);
			return err;
		}
	}
	return 0;
}

static void unreserve(hl_segset *ss);

void hl_segs_close(hl_segset *ss)
{
	if (!ss->read_only)
		unreserve(ss);
	hl_segdir *d = atomic_load(&ss->dir_tab);
	for (uint32_t c = 0; d && c < d->cap; c++) {
		seg_chunk *k = atomic_load(&d->chunk[c]);
		for (uint32_t i = 0; k && i < SLOTS_PER_CHUNK; i++) {
			uint64_t v = atomic_load(&k->slot[i]);
			if (SLOT_FD(v) >= 0 && !(v & SLOT_REMOVED)) /* (a removed one was closed) */
				hl_io_close(SLOT_FD(v));
		}
		free(k);
	}
	free(d);
	for (hl_segdir *r = ss->retired, *next; r; r = next) {
		next = r->next_retired;
		free(r);
	}
	free(ss->dir);
	pthread_mutex_destroy(&ss->open_mu);
	memset(ss, 0, sizeof(*ss));
}

/* A hold on the open descriptor in slot: 1 taken (*fd), 0 not open yet, -1 removed. */
static int slot_hold(_Atomic uint64_t *slot, int *fd)
{
	uint64_t v = atomic_load_explicit(slot, memory_order_acquire);
	for (;;) {
		if (v & SLOT_REMOVED)
			return -1;
		if (SLOT_FD(v) < 0)
			return 0;
		if ((v & SLOT_HOLDERS) == SLOT_HOLDERS)
			return 0; /* (2^31 holders: cannot happen; the locked path answers EBUSY) */
		if (atomic_compare_exchange_weak_explicit(slot, &v, v + 1, memory_order_acquire,
		                                          memory_order_acquire)) {
			*fd = SLOT_FD(v);
			return 1;
		}
	}
}

int hl_segs_hold(hl_segset *ss, uint32_t segno, int *fd)
{
	_Atomic uint64_t *slot = slot_find(ss, segno);
	int r = slot ? slot_hold(slot, fd) : 0;
	if (r)
		return r > 0 ? 0 : ENOENT;
	pthread_mutex_lock(&ss->open_mu);
	int err = 0;
	if (!(slot = slot_make_locked(ss, segno))) {
		err = ENOMEM;
	} else if ((r = slot_hold(slot, fd)) == 0) { /* not open: open it, held once */
		uint64_t v = atomic_load(slot);
		char path[4096];
		hl_segs_path(ss, segno, path, sizeof path);
		int f;
		if (SLOT_FD(v) >= 0)
			err = EBUSY;
		else if ((err = hl_io_open(path, ss->read_only ? O_RDONLY : O_RDWR, 0, &f)) == 0) {
			atomic_store_explicit(slot, ((uint64_t)(f + 1) << 32) | 1, memory_order_release);
			*fd = f;
		}
	} else if (r < 0) {
		err = ENOENT;
	}
	pthread_mutex_unlock(&ss->open_mu);
	return err;
}

void hl_segs_release(hl_segset *ss, uint32_t segno)
{
	_Atomic uint64_t *slot = slot_find(ss, segno);
	uint64_t v = atomic_fetch_sub_explicit(slot, 1, memory_order_acq_rel);
	if ((v & SLOT_REMOVED) && (v & SLOT_HOLDERS) == 1)
		hl_io_close(SLOT_FD(v)); /* the last reader of a removed file */
}

int hl_segs_size(hl_segset *ss, uint32_t segno, uint64_t *size)
{
	int fd, err = hl_segs_hold(ss, segno, &fd);
	if (!err) {
		err = hl_io_size(fd, size);
		hl_segs_release(ss, segno);
	}
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
		/* the space is freed once the descriptor is closed: now, or when its last reader lets
		 * go (a reader that then looks again follows the moved entry) */
		_Atomic uint64_t *slot = slot_find(ss, segno);
		uint64_t v = slot ? atomic_fetch_or(slot, SLOT_REMOVED) : 0;
		if (SLOT_FD(v) >= 0 && !(v & SLOT_REMOVED) && !(v & SLOT_HOLDERS))
			hl_io_close(SLOT_FD(v));
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
	_Atomic uint64_t *slot = slot_make_locked(ss, segno);
	uint64_t v = slot ? atomic_load(slot) : 0;
	if (!slot)
		err = ENOMEM;
	else if (v & SLOT_REMOVED)
		err = EEXIST; /* (numbers only grow: a removed one is never made again) */
	else if (SLOT_FD(v) < 0)
		atomic_store_explicit(slot, (uint64_t)(fd + 1) << 32, memory_order_release);
	pthread_mutex_unlock(&ss->open_mu);
	if (err || SLOT_FD(v) >= 0)
		hl_io_close(fd); /* someone opened the new file first; theirs is as good */
	return err;
}

int hl_segs_activate(hl_segset *ss, uint32_t segno, uint64_t tail, int create)
{
	int err, fd;
	if (create)
		unreserve(ss); /* the active one is sealed */
	if (create && (err = create_segment(ss, segno)) != 0)
		return err;
	if ((err = hl_segs_hold(ss, segno, &fd)) != 0)
		return err;
	uint64_t size;
	if ((err = hl_io_size(fd, &size)) == 0 && (tail < HL_SEG_HDR_LEN || tail > size))
		err = EINVAL;
	if (!err && size > tail)
		hl_log(HL_LOG_INFO, "segment %u: dropping %llu unindexed tail bytes", segno,
		       (unsigned long long)(size - tail));
	if (!err && (size > tail || !create)) /* at the same size: space a crash left reserved */
		err = hl_io_truncate(fd, tail);
	hl_segs_release(ss, segno);
	if (!err) {
		ss->active = segno;
		ss->tail = tail;
	}
	return err;
}

#define RESERVE_STEP (UINT64_C(8) << 20)

/* Space of the active segment allocated ahead of its tail, RESERVE_STEP at a time, without
 * changing the file's size: an append into it finds its blocks allocated, so it does not wait on
 * the inode's allocation lock while a sync writes the file back. Best effort: where fallocate is
 * refused (no room, a file system without it) appends allocate as they go. Not through the I/O
 * table: it changes no byte a read or a replay sees. */
static void reserve_ahead(hl_segset *ss, uint64_t end)
{
	if (ss->res_seg != ss->active) {
		ss->res_seg = ss->active;
		ss->res_end = ss->tail;
	}
	if (end <= ss->res_end || ss->res_end == UINT64_MAX)
		return;
	uint64_t want = end - ss->res_end < RESERVE_STEP ? RESERVE_STEP : end - ss->res_end;
	if (ss->res_end + want > ss->segment_size)
		want = ss->segment_size > ss->res_end ? ss->segment_size - ss->res_end : end - ss->res_end;
	int fd;
	if (hl_segs_hold(ss, ss->active, &fd) != 0)
		return;
	if (fallocate(fd, FALLOC_FL_KEEP_SIZE, (off_t)ss->res_end, (off_t)want) == 0)
		ss->res_end += want;
	else
		ss->res_end = UINT64_MAX; /* not for this segment */
	hl_segs_release(ss, ss->active);
}

/* Gives back what was reserved past the active segment's tail (it is sealed or the store closes):
 * a truncation to the tail frees the blocks past the end of the file (a hole punched there would
 * not; what lies past the tail in the file is a failed group's, never indexed). Best effort: a
 * failure leaves the space reserved, nothing else. */
static void unreserve(hl_segset *ss)
{
	int fd;
	if (ss->res_seg != ss->active || !ss->active || ss->res_end == UINT64_MAX || ss->res_end <= ss->tail)
		return;
	if (hl_segs_hold(ss, ss->active, &fd) == 0) {
		(void)hl_io_truncate(fd, ss->tail);
		hl_segs_release(ss, ss->active);
	}
	ss->res_end = ss->tail;
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
	if (!ss->read_only)
		reserve_ahead(ss, ss->tail + len);
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
		uint64_t sz;
		if ((err = hl_segs_size(ss, v[i], &sz)) == 0)
			total += sz;
		else if (err == ENOENT)
			err = 0; /* removed since it was listed */
	}
	free(v);
	*bytes = total;
	*count = n;
	return err;
}
