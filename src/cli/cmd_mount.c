/* cmd_mount.c — `helios mount DIR [--ref R | --commit REV]`: a read-only FUSE file system
 * (libfuse3) of the store's snapshots, read lazily through the store (L1, L2, backend) with every
 * byte verified: refs/<name>/{latest, <time>-<id>}/… and commits/<id>/…, or one ref's history, or
 * one snapshot at the top. stat comes from the trees; a large file is read chunk by chunk; a
 * corrupt object is EIO, never wrong bytes. SIGINT or SIGTERM unmounts. */
#define FUSE_USE_VERSION 312
#include <errno.h>
#include <fuse.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"

#define MAX_DEPTH 256
#define REFRESH_S 1.0 /* how long the kernel keeps names and attributes: refs move */

enum { ALL, ONE_REF, ONE_SNAPSHOT };

/* One ref's history as directory entries ("<time>-<id prefix>"), rebuilt when the ref moves. */
typedef struct hist_entry {
	char name[48];
	hl_id commit, tree;
	uint64_t time_ns;
} hist_entry;
typedef struct hist {
	char ref[HL_REF_MAX + 1];
	hl_id head;
	int is_commit; /* else the ref names a tree: only "latest" */
	hist_entry *v;
	size_t n, cap;
	struct hist *next;
} hist;

/* A tree, parsed once: its entries in name order (names point into the tree's buffer). */
typedef struct dent {
	const char *name;
	size_t len;
	int kind;
	uint32_t mode;
	uint64_t size;
	hl_id id;
} dent;
typedef struct dir {
	hl_id id;
	hl_buf *b;
	dent *v;
	size_t n;
	unsigned refs;   /* callers using it now (it is not freed under them) */
	struct dir *next;
} dir;
#define DIR_SLOTS 4096
#define DIR_MAX 16384 /* parsed trees kept; past that the unused ones are dropped */

typedef struct mnt {
	hl_store *s;
	int what;
	const char *ref;        /* ONE_REF */
	hl_id tree;             /* ONE_SNAPSHOT */
	uint64_t time_ns;       /* ONE_SNAPSHOT: its commit's time */
	uint64_t mounted_ns;
	uid_t uid;              /* every file is the mounting user's */
	gid_t gid;
	const char *dir;
	pthread_mutex_t mu;     /* the history caches and the parsed trees */
	hist *hists;
	dir *dirs[DIR_SLOTS];
	size_t ndirs;
	pthread_mutex_t hmu;    /* the open files */
	struct handle *open;    /* a stop can leave some unreleased: closed at the end */
} mnt;

/* What a path names. */
enum { V_ROOT, V_REFS, V_COMMITS, V_REFDIR, T_DIR, T_FILE, T_LINK };
typedef struct node {
	int kind;
	char ref[HL_REF_MAX + 1]; /* V_REFDIR: the name so far ("" for refs/ itself) */
	int is_ref;               /* V_REFDIR: that name is a ref (its history is listed) */
	hl_id id;                 /* T_*: the tree, content or link target */
	uint32_t mode;
	uint64_t size, time_ns;
} node;

static mnt *M(void)
{
	return fuse_get_context()->private_data;
}

static int fs_err(int err)
{
	if (err == HL_NOTFOUND || err == HL_FORGOTTEN)
		return -ENOENT;
	if (err == HL_INVALID || err == HL_AMBIGUOUS)
		return -ENOENT;
	if (err == ENOMEM)
		return -ENOMEM;
	if (err == HL_BUSY || err == HL_UNAVAILABLE)
		return -EAGAIN;
	return -EIO; /* HL_CORRUPT above all: never wrong bytes */
}

/* ---- history caches ---- */

static int add_hist(const hl_id *id, const hl_commit *c, unsigned flags, void *ctx)
{
	(void)flags;
	hist *h = ctx;
	if (h->n == h->cap) {
		size_t cap = h->cap ? h->cap * 2 : 64;
		hist_entry *v = realloc(h->v, cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		h->v = v, h->cap = cap;
	}
	hist_entry *e = &h->v[h->n++];
	char hex[HL_ID_HEX_LEN + 1], when[32];
	cli_format_time(c->time_ns, when, sizeof when);
	hl_id_format(id, hex);
	snprintf(e->name, sizeof e->name, "%s-%.12s", when, hex);
	e->commit = *id, e->tree = c->tree, e->time_ns = c->time_ns;
	return 0;
}

/* The ref's history, current (rebuilt when the ref moved); NULL with *err when it cannot be read.
 * Called with m->mu held; the result stays valid while it is held. */
static hist *history_of(mnt *m, const char *ref, int *err)
{
	hl_id head;
	if ((*err = hl_ref_get(m->s, ref, &head)) != 0)
		return NULL;
	hist *h = m->hists;
	while (h && strcmp(h->ref, ref))
		h = h->next;
	if (h && hl_id_equal(&h->head, &head))
		return h;
	if (!h) {
		if (!(h = calloc(1, sizeof(*h)))) {
			*err = ENOMEM;
			return NULL;
		}
		snprintf(h->ref, sizeof h->ref, "%s", ref);
		h->next = m->hists;
		m->hists = h;
	}
	h->n = 0;
	h->head = head;
	hl_commit *c;
	h->is_commit = hl_commit_get(m->s, &head, &c) == 0;
	if (h->is_commit) {
		hl_commit_free(c);
		if ((*err = hl_history(m->s, &head, 0, 0, add_hist, h)) != 0) {
			memset(&h->head, 0, sizeof(h->head)); /* read again next time */
			return NULL;
		}
	}
	return h;
}

/* The snapshot a ref's history entry names ("latest" or "<time>-<id>"). */
static int ref_entry(mnt *m, const char *ref, const char *name, hl_id *tree, uint64_t *time_ns)
{
	pthread_mutex_lock(&m->mu);
	int err;
	hist *h = history_of(m, ref, &err);
	if (h) {
		err = HL_NOTFOUND;
		if (!strcmp(name, "latest") && !h->is_commit) {
			*tree = h->head, *time_ns = m->mounted_ns, err = 0;
		} else {
			for (size_t i = 0; i < h->n && err; i++)
				if ((i == 0 && !strcmp(name, "latest")) || !strcmp(name, h->v[i].name))
					*tree = h->v[i].tree, *time_ns = h->v[i].time_ns, err = 0;
		}
	}
	pthread_mutex_unlock(&m->mu);
	return err;
}

/* ---- resolving paths ---- */

static int add_dent(const hl_tree_entry *e, void *ctx)
{
	dir *d = ctx;
	d->v[d->n++] = (dent){e->name, e->name_len, e->kind, e->mode, e->size, e->id};
	return 0;
}

static size_t dir_slot(const hl_id *id)
{
	uint32_t h;
	memcpy(&h, id->b, sizeof(h));
	return h % DIR_SLOTS;
}

static void dir_free(dir *d)
{
	hl_buf_unref(d->b);
	free(d->v);
	free(d);
}

/* Drops every parsed tree nobody uses (with m->mu held). */
static void dirs_trim(mnt *m)
{
	for (size_t i = 0; i < DIR_SLOTS; i++)
		for (dir **pp = &m->dirs[i]; *pp;) {
			dir *d = *pp;
			if (d->refs) {
				pp = &d->next;
				continue;
			}
			*pp = d->next;
			dir_free(d);
			m->ndirs--;
		}
}

/* The tree id, parsed (held until dir_put). A tree missing from a snapshot is corruption. */
static int dir_get(mnt *m, const hl_id *id, dir **out)
{
	size_t slot = dir_slot(id);
	pthread_mutex_lock(&m->mu);
	for (dir *d = m->dirs[slot]; d; d = d->next)
		if (hl_id_equal(&d->id, id)) {
			d->refs++;
			pthread_mutex_unlock(&m->mu);
			*out = d;
			return 0;
		}
	pthread_mutex_unlock(&m->mu);
	dir *d = calloc(1, sizeof(*d));
	if (!d)
		return ENOMEM;
	d->id = *id;
	int err = hl_get(m->s, id, &d->b);
	if (err) {
		free(d);
		return err == HL_NOTFOUND ? HL_CORRUPT : err;
	}
	/* at most one entry per 48 bytes of encoding */
	if (!(d->v = malloc((hl_buf_len(d->b) / 48 + 1) * sizeof(*d->v))))
		err = ENOMEM;
	else if ((err = hl_tree_parse(hl_buf_data(d->b), hl_buf_len(d->b), add_dent, d)) != 0)
		err = err == HL_INVALID ? HL_CORRUPT : err; /* a snapshot's directory that is no tree */
	if (err) {
		dir_free(d);
		return err;
	}
	pthread_mutex_lock(&m->mu);
	dir *other = m->dirs[slot];
	while (other && !hl_id_equal(&other->id, id))
		other = other->next;
	if (other) { /* parsed meanwhile by another thread */
		other->refs++;
		pthread_mutex_unlock(&m->mu);
		dir_free(d);
		*out = other;
		return 0;
	}
	if (m->ndirs >= DIR_MAX)
		dirs_trim(m);
	d->refs = 1;
	d->next = m->dirs[slot];
	m->dirs[slot] = d;
	m->ndirs++;
	pthread_mutex_unlock(&m->mu);
	*out = d;
	return 0;
}

static void dir_put(mnt *m, dir *d)
{
	pthread_mutex_lock(&m->mu);
	d->refs--;
	pthread_mutex_unlock(&m->mu);
}

/* The entry named name[0..len) (binary search: entries are in bytewise name order). */
static const dent *dir_find(const dir *d, const char *name, size_t len)
{
	size_t lo = 0, hi = d->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const dent *e = &d->v[mid];
		size_t k = e->len < len ? e->len : len;
		int c = memcmp(e->name, name, k);
		if (!c)
			c = (e->len > len) - (e->len < len);
		if (!c)
			return e;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

static void dent_node(const dent *e, uint64_t time_ns, node *n)
{
	n->kind = e->kind == HL_TREE_DIR ? T_DIR : e->kind == HL_TREE_SYMLINK ? T_LINK : T_FILE;
	n->id = e->id, n->mode = e->mode, n->size = e->size, n->time_ns = time_ns;
}

/* Walks the components of path (p, '/'-separated, no leading '/') down the tree, into n. */
static int walk_tree(mnt *m, const hl_id *tree, uint64_t time_ns, const char *p, node *n)
{
	*n = (node){.kind = T_DIR, .id = *tree, .mode = 0555, .time_ns = time_ns};
	for (int depth = 0; *p; depth++) {
		if (n->kind != T_DIR || depth > MAX_DEPTH)
			return HL_NOTFOUND;
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		dir *d;
		int err = dir_get(m, &n->id, &d);
		if (err)
			return err;
		const dent *e = dir_find(d, p, len);
		if (e)
			dent_node(e, time_ns, n);
		dir_put(m, d);
		if (!e)
			return HL_NOTFOUND;
		p += len + (slash != NULL);
	}
	return 0;
}

typedef struct prefix_probe {
	size_t len;
	int any;
} prefix_probe;

static int probe_ref(const char *name, const hl_id *id, void *ctx)
{
	(void)name, (void)id;
	((prefix_probe *)ctx)->any = 1;
	return 1;
}

/* Whether the component at p is a history entry's name: "latest" or "<time>-<12 hex>". */
static int history_name(const char *p)
{
	size_t len = strcspn(p, "/");
	return (len == 6 && !memcmp(p, "latest", 6)) || (len == 33 && p[19] == 'Z' && p[20] == '-');
}

/* Below refs/: a ref name's components, then one of its history entries, then a snapshot path. */
static int resolve_refs(mnt *m, const char *p, node *n)
{
	char name[HL_REF_MAX + 2]; /* a ref name, and room for the '/' of a prefix */
	size_t at = 0;
	*n = (node){.kind = V_REFDIR, .mode = 0555, .time_ns = m->mounted_ns};
	while (*p) {
		const char *slash = strchr(p, '/');
		size_t len = slash ? (size_t)(slash - p) : strlen(p);
		if (at + len + 1 > HL_REF_MAX)
			return HL_NOTFOUND;
		if (at)
			name[at++] = '/';
		memcpy(name + at, p, len);
		at += len;
		name[at] = 0;
		p += len + (slash != NULL);
		hl_id id;
		if (!hl_ref_valid(name) || !strncmp(name, "_helios/", 8))
			return HL_NOTFOUND;
		/* is it a ref? asked only where it matters: before a history entry, and at the end */
		int is_ref = (!*p || history_name(p)) && hl_ref_get(m->s, name, &id) == 0;
		if (is_ref && *p) { /* the next component may be one of its history entries */
			const char *s2 = strchr(p, '/');
			char entry[64];
			size_t el = s2 ? (size_t)(s2 - p) : strlen(p);
			hl_id tree;
			uint64_t t;
			if (el < sizeof entry) {
				memcpy(entry, p, el);
				entry[el] = 0;
				if (ref_entry(m, name, entry, &tree, &t) == 0)
					return walk_tree(m, &tree, t, s2 ? s2 + 1 : "", n);
			}
		}
		if (!*p) {
			memcpy(n->ref, name, at + 1);
			n->is_ref = is_ref;
			if (is_ref)
				return 0;
			name[at] = '/', name[at + 1] = 0; /* a directory when some ref lies below */
			prefix_probe pp = {at + 1, 0};
			int err = hl_ref_list(m->s, name, probe_ref, &pp);
			name[at] = 0;
			return err && err != 1 ? err : pp.any ? 0 : HL_NOTFOUND;
		}
	}
	return 0; /* refs/ itself */
}

static int resolve(mnt *m, const char *path, node *n)
{
	const char *p = path[0] == '/' ? path + 1 : path;
	if (m->what == ONE_SNAPSHOT)
		return walk_tree(m, &m->tree, m->time_ns, p, n);
	if (m->what == ONE_REF) {
		if (!*p) {
			*n = (node){.kind = V_REFDIR, .is_ref = 1, .mode = 0555, .time_ns = m->mounted_ns};
			snprintf(n->ref, sizeof n->ref, "%s", m->ref);
			return 0;
		}
		const char *slash = strchr(p, '/');
		char entry[64];
		size_t el = slash ? (size_t)(slash - p) : strlen(p);
		hl_id tree;
		uint64_t t;
		if (el >= sizeof entry)
			return HL_NOTFOUND;
		memcpy(entry, p, el);
		entry[el] = 0;
		int err = ref_entry(m, m->ref, entry, &tree, &t);
		return err ? err : walk_tree(m, &tree, t, slash ? slash + 1 : "", n);
	}
	if (!*p) {
		*n = (node){.kind = V_ROOT, .mode = 0555, .time_ns = m->mounted_ns};
		return 0;
	}
	if (!strcmp(p, "refs") || !strncmp(p, "refs/", 5))
		return resolve_refs(m, p + 4 + (p[4] == '/'), n);
	if (!strcmp(p, "commits")) {
		*n = (node){.kind = V_COMMITS, .mode = 0555, .time_ns = m->mounted_ns};
		return 0;
	}
	if (!strncmp(p, "commits/", 8)) {
		const char *c = p + 8, *slash = strchr(c, '/');
		char rev[HL_ID_HEX_LEN + 1];
		size_t len = slash ? (size_t)(slash - c) : strlen(c);
		if (len > HL_ID_HEX_LEN || len < 4)
			return HL_NOTFOUND;
		memcpy(rev, c, len);
		rev[len] = 0;
		for (size_t i = 0; i < len; i++) /* ids and prefixes only: no refs or suffixes here */
			if (!strchr("0123456789abcdef", rev[i]))
				return HL_NOTFOUND;
		hl_id commit, tree;
		hl_commit *cm;
		int err = hl_rev_parse(m->s, rev, &commit, &tree);
		if (err || (err = hl_commit_get(m->s, &commit, &cm)) != 0)
			return err;
		uint64_t t = cm->time_ns;
		hl_commit_free(cm);
		return walk_tree(m, &tree, t, slash ? slash + 1 : "", n);
	}
	return HL_NOTFOUND;
}

static void fill_stat(const node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_uid = M()->uid;
	st->st_gid = M()->gid;
	st->st_mtim.tv_sec = st->st_ctim.tv_sec = st->st_atim.tv_sec = (time_t)(n->time_ns / 1000000000u);
	switch (n->kind) {
	case T_FILE:
		st->st_mode = S_IFREG | (n->mode & 07555);
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
		st->st_blocks = (blkcnt_t)((n->size + 511) / 512);
		break;
	case T_LINK:
		st->st_mode = S_IFLNK | 0777;
		st->st_nlink = 1;
		st->st_size = (off_t)n->size;
		break;
	default:
		st->st_mode = S_IFDIR | (n->kind == T_DIR ? n->mode & 07555 : 0555);
		st->st_nlink = 2;
		break;
	}
}

/* ---- operations ---- */

static int op_getattr(const char *path, struct stat *st, struct fuse_file_info *fi)
{
	(void)fi;
	node n;
	int err = resolve(M(), path, &n);
	if (err)
		return fs_err(err);
	fill_stat(&n, st);
	return 0;
}

static int op_readlink(const char *path, char *buf, size_t size)
{
	node n;
	int err = resolve(M(), path, &n);
	if (err)
		return fs_err(err);
	if (n.kind != T_LINK)
		return -EINVAL;
	hl_buf *b;
	if ((err = hl_get(M()->s, &n.id, &b)) != 0)
		return fs_err(err == HL_NOTFOUND ? HL_CORRUPT : err);
	size_t len = hl_buf_len(b) < size - 1 ? hl_buf_len(b) : size - 1;
	memcpy(buf, hl_buf_data(b), len);
	buf[len] = 0;
	hl_buf_unref(b);
	return 0;
}

typedef struct handle {
	pthread_mutex_t mu;
	hl_reader *r;
	struct handle *prev, *next; /* mnt.open */
} handle;

static void handle_free(handle *h)
{
	hl_reader_close(h->r);
	pthread_mutex_destroy(&h->mu);
	free(h);
}

static int op_open(const char *path, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY)
		return -EROFS;
	node n;
	int err = resolve(M(), path, &n);
	if (err)
		return fs_err(err);
	if (n.kind != T_FILE)
		return -EISDIR;
	handle *h = calloc(1, sizeof(*h));
	if (!h)
		return -ENOMEM;
	uint64_t size;
	if ((err = hl_reader_open(M()->s, &n.id, &h->r, &size)) != 0) {
		free(h);
		return fs_err(err == HL_NOTFOUND ? HL_CORRUPT : err);
	}
	pthread_mutex_init(&h->mu, NULL);
	pthread_mutex_lock(&M()->hmu);
	if ((h->next = M()->open) != NULL)
		h->next->prev = h;
	M()->open = h;
	pthread_mutex_unlock(&M()->hmu);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->keep_cache = 1; /* a snapshot's content never changes */
	return 0;
}

static int op_read(const char *path, char *buf, size_t size, off_t off, struct fuse_file_info *fi)
{
	handle *h = (handle *)(uintptr_t)fi->fh;
	size_t got = 0;
	pthread_mutex_lock(&h->mu);
	int err = hl_reader_read(h->r, (uint64_t)off, buf, size, &got);
	pthread_mutex_unlock(&h->mu);
	if (err) {
		fprintf(stderr, "helios: mount: %s: %s\n", path, hl_strerror(err));
		return fs_err(err == HL_NOTFOUND ? HL_CORRUPT : err);
	}
	return (int)got;
}

static int op_release(const char *path, struct fuse_file_info *fi)
{
	(void)path;
	handle *h = (handle *)(uintptr_t)fi->fh;
	pthread_mutex_lock(&M()->hmu);
	if (h->prev)
		h->prev->next = h->next;
	else
		M()->open = h->next;
	if (h->next)
		h->next->prev = h->prev;
	pthread_mutex_unlock(&M()->hmu);
	handle_free(h);
	return 0;
}

typedef struct lister {
	void *buf;
	fuse_fill_dir_t fill;
} lister;

typedef struct ref_lister {
	size_t skip;             /* the prefix's length */
	char (*names)[256];      /* next components seen */
	size_t n, cap;
} ref_lister;

static int list_ref(const char *name, const hl_id *id, void *ctx)
{
	(void)id;
	ref_lister *r = ctx;
	if (!strncmp(name, "_helios/", 8))
		return 0;
	const char *rest = name + r->skip;
	size_t len = strcspn(rest, "/");
	if (len >= 256)
		return 0;
	for (size_t i = 0; i < r->n; i++)
		if (strlen(r->names[i]) == len && !memcmp(r->names[i], rest, len))
			return 0;
	if (r->n == r->cap) {
		size_t cap = r->cap ? r->cap * 2 : 32;
		void *v = realloc(r->names, cap * sizeof(*r->names));
		if (!v)
			return ENOMEM;
		r->names = v, r->cap = cap;
	}
	memcpy(r->names[r->n], rest, len);
	r->names[r->n++][len] = 0;
	return 0;
}

/* The entries of a ref's history directory. */
static int list_history(mnt *m, const char *ref, lister *l)
{
	pthread_mutex_lock(&m->mu);
	int err;
	hist *h = history_of(m, ref, &err);
	if (h) {
		l->fill(l->buf, "latest", NULL, 0, 0);
		for (size_t i = 0; i < h->n; i++)
			l->fill(l->buf, h->v[i].name, NULL, 0, 0);
	}
	pthread_mutex_unlock(&m->mu);
	return h ? 0 : err;
}

typedef struct commit_lister {
	mnt *m;
	lister *l;
} commit_lister;

static int list_commits_of(const char *name, const hl_id *id, void *ctx)
{
	(void)id;
	commit_lister *c = ctx;
	if (!strncmp(name, "_helios/", 8))
		return 0;
	int err;
	hist *h = history_of(c->m, name, &err);
	for (size_t i = 0; h && i < h->n; i++) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(&h->v[i].commit, hex);
		c->l->fill(c->l->buf, hex, NULL, 0, 0); /* a commit two refs share shows twice: harmless */
	}
	return 0;
}

/* A snapshot's directory never changes: the kernel may keep its listing (refs/ is not kept). */
static int op_opendir(const char *path, struct fuse_file_info *fi)
{
	node n;
	int err = resolve(M(), path, &n);
	if (err)
		return fs_err(err);
	if (n.kind == T_DIR)
		fi->cache_readdir = fi->keep_cache = 1;
	return 0;
}

static int op_readdir(const char *path, void *buf, fuse_fill_dir_t fill, off_t off,
                      struct fuse_file_info *fi, enum fuse_readdir_flags flags)
{
	(void)off, (void)fi, (void)flags;
	mnt *m = M();
	node n;
	int err = resolve(m, path, &n);
	if (err)
		return fs_err(err);
	lister l = {buf, fill};
	fill(buf, ".", NULL, 0, 0);
	fill(buf, "..", NULL, 0, 0);
	switch (n.kind) {
	case V_ROOT:
		fill(buf, "refs", NULL, 0, 0);
		fill(buf, "commits", NULL, 0, 0);
		return 0;
	case V_COMMITS: {
		commit_lister c = {m, &l};
		pthread_mutex_lock(&m->mu);
		err = hl_ref_list(m->s, "", list_commits_of, &c);
		pthread_mutex_unlock(&m->mu);
		return err ? fs_err(err) : 0;
	}
	case V_REFDIR: {
		if (n.is_ref && (err = list_history(m, n.ref, &l)) != 0)
			return fs_err(err);
		if (m->what == ONE_REF)
			return 0;
		char prefix[HL_REF_MAX + 2];
		snprintf(prefix, sizeof prefix, "%s%s", n.ref, n.ref[0] ? "/" : "");
		ref_lister r = {strlen(prefix), NULL, 0, 0};
		err = hl_ref_list(m->s, prefix, list_ref, &r);
		for (size_t i = 0; !err && i < r.n; i++)
			fill(buf, r.names[i], NULL, 0, 0);
		free(r.names);
		return err ? fs_err(err) : 0;
	}
	case T_DIR: {
		dir *d;
		if ((err = dir_get(m, &n.id, &d)) != 0)
			return fs_err(err);
		for (size_t i = 0; i < d->n; i++) {
			char name[256];
			node e;
			struct stat st;
			memcpy(name, d->v[i].name, d->v[i].len);
			name[d->v[i].len] = 0;
			dent_node(&d->v[i], n.time_ns, &e);
			fill_stat(&e, &st);
			if (fill(buf, name, &st, 0, FUSE_FILL_DIR_PLUS))
				break;
		}
		dir_put(m, d);
		return 0;
	}
	default:
		return -ENOTDIR;
	}
}

static void *op_init(struct fuse_conn_info *conn, struct fuse_config *cfg)
{
	(void)conn;
	mnt *m = M();
	cfg->entry_timeout = cfg->attr_timeout = cfg->negative_timeout = REFRESH_S;
	cfg->kernel_cache = 1;
	printf("mounted at %s (read-only); Ctrl-C or SIGTERM unmounts\n", m->dir);
	fflush(stdout);
	return m;
}

static const struct fuse_operations ops = {
	.getattr = op_getattr, .readlink = op_readlink, .open = op_open, .read = op_read,
	.release = op_release, .opendir = op_opendir, .readdir = op_readdir, .init = op_init,
};

/* Mounts, serves until SIGINT, SIGTERM or SIGHUP (or an unmount), unmounts: an exit code. */
static int serve_mount(mnt *m, int debug)
{
	struct fuse_args args = FUSE_ARGS_INIT(0, NULL);
	int rc = EXIT_FAIL;
	if (fuse_opt_add_arg(&args, "helios") || fuse_opt_add_arg(&args, "-o") ||
	    fuse_opt_add_arg(&args, "ro,default_permissions,fsname=helios,subtype=helios") ||
	    (debug && fuse_opt_add_arg(&args, "-d"))) {
		fuse_opt_free_args(&args);
		return cli_fail("mount", ENOMEM);
	}
	struct fuse *f = fuse_new(&args, &ops, sizeof ops, m);
	struct fuse_loop_config *lc = fuse_loop_cfg_create();
	if (!f || !lc) {
		fprintf(stderr, "helios: mount: libfuse could not start\n");
	} else if (fuse_mount(f, m->dir) != 0) {
		fprintf(stderr, "helios: mount: could not mount on %s (needs /dev/fuse, and fusermount3 "
		        "when not root)\n", m->dir);
	} else {
		struct fuse_session *se = fuse_get_session(f);
		/* SIGINT and SIGTERM unmount even when started ignoring them (a background job of a
		 * script starts with SIGINT ignored, and libfuse keeps what it finds ignored); SIGHUP
		 * is left as found, so nohup keeps a mount */
		signal(SIGINT, SIG_DFL);
		signal(SIGTERM, SIG_DFL);
		fuse_set_signal_handlers(se);
		/* several threads, so one slow read (a bucket) does not stop the rest; few idle ones, as
		 * idle workers all wait on the device and each request wakes them (measured: 16 idle
		 * made `ls -R` 20–30% slower than 2) */
		fuse_loop_cfg_set_max_threads(lc, 16);
		fuse_loop_cfg_set_idle_threads(lc, 2);
		int err = fuse_loop_mt(f, lc);
		fuse_remove_signal_handlers(se);
		fuse_unmount(f);
		/* (the loop's threads are gone) files a stop left open: their release never comes */
		while (m->open) {
			handle *h = m->open;
			m->open = h->next;
			handle_free(h);
		}
		/* the loop ends with the signal that stopped it, or 0 when unmounted from outside */
		rc = err == 0 || err == SIGINT || err == SIGTERM || err == SIGHUP ? EXIT_OK : EXIT_FAIL;
		if (rc)
			fprintf(stderr, "helios: mount: the file system stopped: %s\n", strerror(err < 0 ? -err : err));
	}
	if (lc)
		fuse_loop_cfg_destroy(lc);
	if (f)
		fuse_destroy(f);
	fuse_opt_free_args(&args);
	return rc;
}

int cmd_mount(cli *c)
{
	static const char usage[] = "usage: helios mount DIR [--ref REF | --commit REV] [--debug]";
	mnt m = {.what = ALL, .uid = getuid(), .gid = getgid()};
	const char *rev = NULL;
	int debug = 0;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--ref") && i + 1 < c->argc && !rev)
			m.ref = c->argv[++i], m.what = ONE_REF;
		else if (!strcmp(a, "--commit") && i + 1 < c->argc && !m.ref)
			rev = c->argv[++i], m.what = ONE_SNAPSHOT;
		else if (!strcmp(a, "--debug"))
			debug = 1;
		else if (a[0] == '-' || m.dir)
			return cli_usage("mount: unexpected argument '%s'; %s", a, usage);
		else
			m.dir = a;
	}
	if (!m.dir)
		return cli_usage("%s", usage);
	if (m.ref && !hl_ref_valid(m.ref))
		return cli_usage("mount: '%s' is not a ref name", m.ref);
	if (access(m.dir, F_OK) != 0)
		return cli_usage("mount: %s: no such directory to mount on", m.dir);
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, &m.s);
	if (code)
		return code;
	struct timespec now;
	clock_gettime(CLOCK_REALTIME, &now);
	m.mounted_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
	hl_id id;
	if (m.ref && (code = cli_rev(m.s, m.ref, &id, &m.tree)) != 0) {
		hl_close(m.s);
		return code;
	}
	if (rev) {
		hl_commit *cm;
		if ((code = cli_rev(m.s, rev, &id, &m.tree)) != 0) {
			hl_close(m.s);
			return code;
		}
		m.time_ns = m.mounted_ns; /* a tree alone has no time of its own */
		if (hl_commit_get(m.s, &id, &cm) == 0) {
			m.time_ns = cm->time_ns;
			hl_commit_free(cm);
		}
	}
	pthread_mutex_init(&m.mu, NULL);
	pthread_mutex_init(&m.hmu, NULL);
	int rc = serve_mount(&m, debug);
	hl_stats st;
	if (!c->quiet && hl_stats_get(m.s, &st) == 0)
		fprintf(stderr, "helios: mount: unmounted %s; %llu objects read from the store, %llu found in "
		        "the memory cache\n", m.dir, (unsigned long long)st.l1_misses,
		        (unsigned long long)st.l1_hits);
	while (m.hists) {
		hist *h = m.hists;
		m.hists = h->next;
		free(h->v);
		free(h);
	}
	dirs_trim(&m);
	pthread_mutex_destroy(&m.mu);
	pthread_mutex_destroy(&m.hmu);
	hl_close(m.s);
	return rc;
}
