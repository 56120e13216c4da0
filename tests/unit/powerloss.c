/* powerloss.c — the journaling I/O table that a simulated power cut undoes, and the cut itself
 * (see powerloss.h). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include "base/io.h"
#include "powerloss.h"

enum { J_CREATE = 1, J_WRITE, J_SYNC, J_TRUNC, J_UNLINK, J_RENAME, J_MKDIR, J_RMDIR, J_DIRSYNC, J_INDEX };

/* One journal record: this header, then path, path2 and data of the given lengths. */
typedef struct jrec {
	uint32_t type, plen, p2len, dlen;
	uint64_t ino, a, b, c;
} jrec;

#define SECTOR 512u
#define MAXFD 65536

/* ---------- the journaling table (in the process to be cut) ---------- */

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* every call, so the journal is exact */
static int jfd = -1;
static char stash_dir[4096];
static uint64_t crash_at, nstash;
static _Atomic uint64_t calls;
static char *fd_path[MAXFD];
static uint8_t fd_is_dir[MAXFD];

static void jwrite(const jrec *r, const char *p, const char *p2, const void *data)
{
	jrec h = *r;
	h.plen = p ? (uint32_t)strlen(p) : 0;
	h.p2len = p2 ? (uint32_t)strlen(p2) : 0;
	struct iovec v[4] = {{&h, sizeof h}, {(void *)p, h.plen}, {(void *)p2, h.p2len}, {(void *)data, h.dlen}};
	struct iovec *iov = v;
	int cnt = 4;
	while (cnt > 0) {
		ssize_t n = writev(jfd, iov, cnt);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			abort(); /* a journal that misses a change would make the cut lie */
		while (cnt > 0 && (size_t)n >= iov->iov_len)
			n -= (ssize_t)iov->iov_len, iov++, cnt--;
		if (cnt > 0)
			iov->iov_base = (char *)iov->iov_base + n, iov->iov_len -= (size_t)n;
	}
}

/* Counts a call; the chosen one kills the process (all threads at once, none inside a call: every
 * call holds mu). Called with mu held. */
static void tick(void)
{
	if (++calls == crash_at)
		kill(getpid(), SIGKILL);
}

/* A call that changes nothing on disk: counted (a crash point like any other) under the lock. */
#define UNCHANGING(call)                                                                           \
	({                                                                                         \
		pthread_mutex_lock(&mu);                                                           \
		tick();                                                                            \
		__typeof__(call) r_ = (call);                                                      \
		int e_ = errno;                                                                    \
		pthread_mutex_unlock(&mu);                                                         \
		errno = e_;                                                                        \
		r_;                                                                                \
	})

/* Journals the old bytes of the sectors [off, end) of the file open as fd, which a write (c: the
 * write's end) or a truncate (c: the new length) will change. */
static void journal_change(int type, int fd, uint64_t off, uint64_t end, uint64_t c)
{
	struct stat st;
	if (fstat(fd, &st) != 0)
		abort();
	uint64_t size = (uint64_t)st.st_size, a = off / SECTOR * SECTOR;
	uint64_t e = (end + SECTOR - 1) / SECTOR * SECTOR, have = e < size ? e : size;
	size_t n = have > a ? (size_t)(have - a) : 0;
	uint8_t *old = n ? malloc(n) : NULL;
	if (n && (!old || pread(fd, old, n, (off_t)a) != (ssize_t)n))
		abort();
	jrec r = {.type = (uint32_t)type, .dlen = (uint32_t)n, .ino = st.st_ino, .a = a, .b = size, .c = c};
	jwrite(&r, NULL, NULL, old);
	free(old);
}

/* Keeps the file at path alive under the stash (a hard link) before it is removed or replaced;
 * returns the stash name in buf, or "" when there is no such file. */
static void keep(const char *path, char *buf, size_t cap)
{
	buf[0] = '\0';
	struct stat st;
	if (lstat(path, &st) != 0 || !S_ISREG(st.st_mode))
		return;
	snprintf(buf, cap, "%s/kept-%llu", stash_dir, (unsigned long long)++nstash);
	if (link(path, buf) != 0)
		abort();
}

static int l_open(const char *path, int flags, mode_t mode)
{
	pthread_mutex_lock(&mu);
	tick();
	struct stat st;
	int existed = stat(path, &st) == 0;
	if (existed && (flags & O_TRUNC) && S_ISREG(st.st_mode) && st.st_size > 0) {
		int fd = open(path, O_RDONLY | O_CLOEXEC);
		if (fd < 0)
			abort();
		journal_change(J_TRUNC, fd, 0, (uint64_t)st.st_size, 0);
		close(fd);
	}
	int fd = open(path, flags | O_CLOEXEC, mode);
	int e = errno;
	if (fd >= 0 && fd < MAXFD) {
		free(fd_path[fd]);
		fd_path[fd] = strdup(path);
		fd_is_dir[fd] = (flags & O_DIRECTORY) != 0;
		if (!existed && fstat(fd, &st) == 0) {
			jrec r = {.type = J_CREATE, .ino = st.st_ino};
			jwrite(&r, path, NULL, NULL);
		}
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return fd;
}

static int l_close(int fd)
{
	pthread_mutex_lock(&mu);
	if (fd >= 0 && fd < MAXFD) {
		free(fd_path[fd]);
		fd_path[fd] = NULL;
	}
	int r = close(fd);
	pthread_mutex_unlock(&mu);
	return r;
}

static ssize_t l_pread(int fd, void *b, size_t n, off_t o) { return UNCHANGING(pread(fd, b, n, o)); }

static ssize_t l_preadv(int fd, const struct iovec *v, int c, off_t o)
{
	return UNCHANGING(preadv(fd, v, c, o));
}

static ssize_t l_pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	pthread_mutex_lock(&mu);
	tick();
	uint64_t len = 0;
	for (int i = 0; i < c; i++)
		len += v[i].iov_len;
	if (len)
		journal_change(J_WRITE, fd, (uint64_t)o, (uint64_t)o + len, (uint64_t)o + len);
	ssize_t r = pwritev(fd, v, c, o);
	int e = errno;
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static ssize_t l_pwrite(int fd, const void *b, size_t n, off_t o)
{
	struct iovec v = {(void *)b, n};
	return l_pwritev(fd, &v, 1, o);
}

/* A sync only journals: what reached the platter is the cut's to decide. */
static int l_sync(int fd)
{
	pthread_mutex_lock(&mu);
	tick();
	struct stat st;
	if (fstat(fd, &st) != 0)
		abort();
	if (fd < MAXFD && fd_is_dir[fd] && fd_path[fd]) {
		jrec r = {.type = J_DIRSYNC};
		jwrite(&r, fd_path[fd], NULL, NULL);
	} else if (S_ISREG(st.st_mode)) {
		jrec r = {.type = J_SYNC, .ino = st.st_ino, .a = (uint64_t)st.st_size};
		jwrite(&r, NULL, NULL, NULL);
	}
	pthread_mutex_unlock(&mu);
	return 0;
}

static int l_ftruncate(int fd, off_t len)
{
	pthread_mutex_lock(&mu);
	tick();
	struct stat st;
	if (fstat(fd, &st) != 0)
		abort();
	if ((uint64_t)len < (uint64_t)st.st_size)
		journal_change(J_TRUNC, fd, (uint64_t)len, (uint64_t)st.st_size, (uint64_t)len);
	else if ((uint64_t)len > (uint64_t)st.st_size) /* zeros appear: a change like a write */
		journal_change(J_WRITE, fd, (uint64_t)st.st_size, (uint64_t)len, (uint64_t)len);
	int r = ftruncate(fd, len), e = errno;
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static int l_fstat(int fd, struct stat *st) { return UNCHANGING(fstat(fd, st)); }

static int l_mkdir(const char *path, mode_t mode)
{
	pthread_mutex_lock(&mu);
	tick();
	int r = mkdir(path, mode), e = errno;
	if (r == 0) {
		jrec j = {.type = J_MKDIR};
		jwrite(&j, path, NULL, NULL);
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static int l_rmdir(const char *path)
{
	pthread_mutex_lock(&mu);
	tick();
	int r = rmdir(path), e = errno;
	if (r == 0) {
		jrec j = {.type = J_RMDIR};
		jwrite(&j, path, NULL, NULL);
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static int l_unlink(const char *path)
{
	pthread_mutex_lock(&mu);
	tick();
	char kept[4200];
	keep(path, kept, sizeof kept);
	int r = unlink(path), e = errno; /* journaled after: no kill can fall inside a call (mu) */
	if (kept[0] && r == 0) {
		jrec j = {.type = J_UNLINK};
		jwrite(&j, path, kept, NULL);
	} else if (kept[0]) {
		unlink(kept);
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static int l_rename(const char *from, const char *to)
{
	pthread_mutex_lock(&mu);
	tick();
	char kept[4200];
	keep(to, kept, sizeof kept);
	int r = rename(from, to), e = errno;
	if (r == 0) {
		jrec j = {.type = J_RENAME, .dlen = (uint32_t)strlen(kept)};
		jwrite(&j, from, to, kept);
	} else if (kept[0]) {
		unlink(kept);
	}
	pthread_mutex_unlock(&mu);
	errno = e;
	return r;
}

static int l_flock(int fd, int op) { return UNCHANGING(flock(fd, op)); }

/* Copies src to dst (both regular files). */
static int copy_file(const char *src, const char *dst)
{
	int in = open(src, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	int err = in < 0 || out < 0 ? errno : 0;
	static char buf[1 << 16];
	ssize_t n;
	while (!err && (n = read(in, buf, sizeof buf)) != 0) {
		if (n < 0 || write(out, buf, (size_t)n) != n)
			err = errno ? errno : EIO;
	}
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return err;
}

/* Keeps a copy of the index under dir as it is now ("" when it has no data file yet). */
static void keep_index(const char *dir)
{
	char src[4200], dst[4200] = "";
	snprintf(src, sizeof src, "%s/data.mdb", dir);
	if (access(src, F_OK) == 0) {
		snprintf(dst, sizeof dst, "%s/index-%llu.mdb", stash_dir, (unsigned long long)++nstash);
		if (copy_file(src, dst) != 0)
			abort();
	}
	jrec j = {.type = J_INDEX};
	jwrite(&j, src, dst, NULL);
}

/* The index is durable now (its writers are stopped). */
static void l_outside_synced(const char *dir)
{
	pthread_mutex_lock(&mu);
	keep_index(dir);
	pthread_mutex_unlock(&mu);
}

static const hl_io journaling = {
	.open = l_open, .close = l_close, .pread = l_pread, .preadv = l_preadv, .pwrite = l_pwrite,
	.pwritev = l_pwritev, .fdatasync = l_sync, .fsync = l_sync, .ftruncate = l_ftruncate,
	.fstat = l_fstat, .mkdir = l_mkdir, .unlink = l_unlink, .rmdir = l_rmdir, .rename = l_rename,
	.flock = l_flock, .outside_synced = l_outside_synced,
};

void pl_install(const char *journal, const char *stash, const char *index_dir, uint64_t at)
{
	snprintf(stash_dir, sizeof stash_dir, "%s", stash);
	if (mkdir(stash, 0755) != 0 && errno != EEXIST)
		abort();
	jfd = open(journal, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
	if (jfd < 0)
		abort();
	crash_at = at;
	calls = 0;
	keep_index(index_dir); /* durable as the process finds it */
	hl_io_set(&journaling);
}

uint64_t pl_calls(void)
{
	return calls;
}

/* ---------- the cut (in the process that survives) ---------- */

typedef struct dirty {
	uint64_t no;
	uint8_t old[SECTOR]; /* the sector as it was at the last sync (zeros past the file's end) */
} dirty;

typedef struct file_state {
	uint64_t ino, synced, cur;
	dirty *v;
	size_t n, cap;
} file_state;

typedef struct name_op {
	uint32_t type;
	char *path, *path2, *kept, *dir;
	int durable, undo;
} name_op;

typedef struct cut {
	file_state *f;
	size_t nf, capf;
	name_op *ops;
	size_t nops, capops;
	char *index_data, *index_copy; /* the last durable copy of the index */
	uint64_t rng;
} cut;

static uint64_t rnd(cut *c)
{
	c->rng ^= c->rng >> 12;
	c->rng ^= c->rng << 25;
	c->rng ^= c->rng >> 27;
	return c->rng * UINT64_C(2685821657736338717);
}

static void *grow(void *v, size_t n, size_t *cap, size_t size)
{
	if (n < *cap)
		return v;
	*cap = *cap ? *cap * 2 : 16;
	void *nv = realloc(v, *cap * size);
	if (!nv)
		abort();
	return nv;
}

/* The state of inode ino; the first record that names it says its size before (all durable). */
static file_state *file_of(cut *c, uint64_t ino, uint64_t size_before)
{
	for (size_t i = 0; i < c->nf; i++)
		if (c->f[i].ino == ino)
			return &c->f[i];
	c->f = grow(c->f, c->nf, &c->capf, sizeof(*c->f));
	file_state *f = &c->f[c->nf++];
	memset(f, 0, sizeof(*f));
	f->ino = ino;
	f->synced = f->cur = size_before;
	return f;
}

static dirty *find_dirty(file_state *f, uint64_t no)
{
	for (size_t i = 0; i < f->n; i++)
		if (f->v[i].no == no)
			return &f->v[i];
	return NULL;
}

/* The sectors of [a, end) become dirty, those not dirty already with their old bytes from data
 * (n bytes from a; zeros after). */
static void mark_dirty(file_state *f, uint64_t a, uint64_t end, const uint8_t *data, uint64_t n)
{
	for (uint64_t s = a; s < end; s += SECTOR) {
		if (find_dirty(f, s / SECTOR))
			continue;
		f->v = grow(f->v, f->n, &f->cap, sizeof(*f->v));
		dirty *d = &f->v[f->n++];
		d->no = s / SECTOR;
		memset(d->old, 0, SECTOR);
		if (s - a < n)
			memcpy(d->old, data + (s - a), n - (s - a) < SECTOR ? (size_t)(n - (s - a)) : SECTOR);
	}
}

static char *dup_n(const char *p, size_t n)
{
	char *s = malloc(n + 1);
	if (!s)
		abort();
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static char *dir_of(const char *path)
{
	char *t = strdup(path), *d = strdup(dirname(t));
	free(t);
	return d;
}

static int read_journal(cut *c, const char *journal)
{
	FILE *fp = fopen(journal, "rb");
	if (!fp)
		return errno;
	jrec r;
	while (fread(&r, sizeof r, 1, fp) == 1) {
		size_t n = (size_t)r.plen + r.p2len + r.dlen;
		char *b = malloc(n + 1);
		if (!b)
			abort();
		if (fread(b, 1, n, fp) != n) { /* the process died writing it: the change never began */
			free(b);
			break;
		}
		char *p = b, *p2 = b + r.plen;
		const uint8_t *data = (const uint8_t *)b + r.plen + r.p2len;
		file_state *f;
		if (r.type == J_WRITE || r.type == J_TRUNC) {
			f = file_of(c, r.ino, r.b);
			uint64_t end = r.type == J_TRUNC ? r.b : r.c;
			mark_dirty(f, r.a, (end + SECTOR - 1) / SECTOR * SECTOR, data, r.dlen);
			f->cur = r.type == J_TRUNC ? r.c : (r.c > r.b ? r.c : r.b);
		} else if (r.type == J_SYNC) {
			f = file_of(c, r.ino, r.a);
			f->n = 0;
			f->synced = f->cur = r.a;
		} else if (r.type == J_CREATE) {
			file_of(c, r.ino, 0);
		} else if (r.type == J_INDEX) {
			free(c->index_data);
			free(c->index_copy);
			c->index_data = dup_n(p, r.plen);
			c->index_copy = dup_n(p2, r.p2len);
		}
		if (r.type == J_DIRSYNC) {
			char *d = dup_n(p, r.plen);
			for (size_t i = 0; i < c->nops; i++)
				if (!strcmp(c->ops[i].dir, d))
					c->ops[i].durable = 1;
			free(d);
		} else if (r.type == J_CREATE || r.type == J_UNLINK || r.type == J_RENAME || r.type == J_MKDIR ||
		           r.type == J_RMDIR) {
			c->ops = grow(c->ops, c->nops, &c->capops, sizeof(*c->ops));
			name_op *o = &c->ops[c->nops++];
			memset(o, 0, sizeof(*o));
			o->type = r.type;
			o->path = dup_n(p, r.plen);
			o->path2 = dup_n(p2, r.p2len);
			o->kept = r.type == J_RENAME ? dup_n((const char *)data, r.dlen) : strdup(o->path2);
			o->dir = dir_of(r.type == J_RENAME ? o->path2 : o->path);
		}
		free(b);
	}
	fclose(fp);
	return 0;
}

/* Where inode ino lives now (a path under root or the stash). */
static uint64_t want_ino;
static char found[4200];
static int find_cb(const char *p, const struct stat *st, int flag, struct FTW *fw)
{
	(void)fw;
	if (flag == FTW_F && st->st_ino == want_ino) {
		snprintf(found, sizeof found, "%s", p);
		return 1;
	}
	return 0;
}

static void cut_file(cut *c, file_state *f, const char *const *roots, unsigned block, pl_report *rep)
{
	found[0] = '\0';
	want_ino = f->ino;
	for (int i = 0; roots[i] && !found[0]; i++)
		nftw(roots[i], find_cb, 16, FTW_PHYS);
	if (!found[0])
		return; /* removed for good (a name the store removed and synced) */
	rep->files++;
	uint64_t lo = f->synced < f->cur ? f->synced : f->cur, hi = f->synced < f->cur ? f->cur : f->synced;
	uint64_t size = f->cur;
	if (lo != hi) {
		uint64_t r = rnd(c) % 3;
		size = r == 0 ? f->synced : r == 1 ? f->cur : lo + rnd(c) % (hi - lo + 1) / block * block;
		if (size != f->cur)
			rep->resized++;
	}
	int fd = open(found, O_RDWR | O_CLOEXEC);
	if (fd < 0)
		abort();
	if (ftruncate(fd, (off_t)size) != 0)
		abort();
	uint64_t nblocks = (size + block - 1) / block;
	for (uint64_t b = 0; b < nblocks; b++) {
		uint64_t start = b * block;
		int unsynced = start + block > f->synced;
		for (uint64_t s = start; !unsynced && s < start + block; s += SECTOR)
			unsynced = find_dirty(f, s / SECTOR) != NULL;
		if (!unsynced)
			continue;
		uint64_t r = rnd(c) % 100;
		if (r < 50) {
			rep->kept++;
			continue;
		}
		r < 85 ? rep->reverted++ : rep->garbled++;
		for (uint64_t s = start; s < start + block && s < size; s += SECTOR) {
			dirty *d = find_dirty(f, s / SECTOR);
			uint8_t buf[SECTOR];
			if (!d && s + SECTOR <= f->synced)
				continue; /* durable: a torn block leaves its synced sectors alone */
			if (r < 85 && d)
				memcpy(buf, d->old, SECTOR);
			else if (r < 85)
				continue; /* past the synced size, never written since: as it is */
			else if (pread(fd, buf, SECTOR, (off_t)s) < 0)
				abort();
			else /* garbage where nothing was durable (a sector never tears what was: powersafe
			        overwrite); an overwrite inside the synced size tears to old or new sectors */
				for (uint64_t i = s < f->synced ? f->synced - s : 0; i < SECTOR; i++)
					buf[i] = (uint8_t)rnd(c);
			size_t n = size - s < SECTOR ? (size_t)(size - s) : SECTOR;
			if (pwrite(fd, buf, n, (off_t)s) != (ssize_t)n)
				abort();
		}
	}
	close(fd);
}

static void undo(name_op *o, pl_report *rep)
{
	rep->names_undone++;
	switch (o->type) {
	case J_CREATE:
		unlink(o->path);
		break;
	case J_UNLINK:
		if (link(o->kept, o->path) != 0 && errno != EEXIST)
			abort();
		break;
	case J_RENAME:
		if (rename(o->path2, o->path) != 0 && errno != ENOENT)
			abort();
		if (o->kept[0] && link(o->kept, o->path2) != 0)
			abort();
		break;
	case J_MKDIR:
		rmdir(o->path); /* fails when something in it was kept: then it stays */
		break;
	case J_RMDIR:
		mkdir(o->path, 0755);
		break;
	}
}

static int rm_cb(const char *p, const struct stat *st, int flag, struct FTW *fw)
{
	(void)st, (void)flag, (void)fw;
	return remove(p);
}

int pl_cut(const char *journal, const char *stash, const char *root, uint64_t seed, pl_report *rep)
{
	memset(rep, 0, sizeof(*rep));
	cut c;
	memset(&c, 0, sizeof c);
	c.rng = seed * UINT64_C(0x9E3779B97F4A7C15) + 1;
	int err = read_journal(&c, journal);
	if (err)
		return err;
	rep->block = rnd(&c) % 2 ? 4096 : 512;
	/* the files: by inode, wherever the names are now (before names are undone) */
	const char *roots[3] = {root, stash, NULL};
	for (size_t i = 0; i < c.nf; i++)
		if (c.f[i].n || c.f[i].synced != c.f[i].cur)
			cut_file(&c, &c.f[i], roots, rep->block, rep);
	/* the names: each directory keeps a prefix of its unsynced changes */
	for (size_t i = 0; i < c.nops; i++) {
		if (c.ops[i].durable || c.ops[i].undo)
			continue; /* durable, or its directory decided already */
		size_t n = 0;
		for (size_t j = i; j < c.nops; j++)
			n += !c.ops[j].durable && !strcmp(c.ops[j].dir, c.ops[i].dir);
		size_t keep_n = (size_t)(rnd(&c) % (n + 1)), k = 0;
		for (size_t j = i; j < c.nops; j++)
			if (!c.ops[j].durable && !strcmp(c.ops[j].dir, c.ops[i].dir))
				c.ops[j].undo = k++ >= keep_n ? 1 : -1;
	}
	for (size_t i = c.nops; i-- > 0;)
		if (c.ops[i].undo == 1)
			undo(&c.ops[i], rep);
	/* the index: its last durable copy, or all LMDB wrote since */
	if (c.index_copy && rnd(&c) % 2) {
		if (!c.index_copy[0]) /* no durable index yet: LMDB finds none and starts afresh */
			unlink(c.index_data);
		else if ((err = copy_file(c.index_copy, c.index_data)) != 0)
			return err;
		rep->index_rolled_back = 1;
	}
	for (size_t i = 0; i < c.nf; i++)
		free(c.f[i].v);
	free(c.f);
	for (size_t i = 0; i < c.nops; i++) {
		free(c.ops[i].path);
		free(c.ops[i].path2);
		free(c.ops[i].kept);
		free(c.ops[i].dir);
	}
	free(c.ops);
	free(c.index_data);
	free(c.index_copy);
	nftw(stash, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	return 0;
}
