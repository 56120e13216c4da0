/* history.c — commits and their history: hl_commit_get/put, hl_commit_ref (a snapshot recorded
 * in a ref's history by compare-and-swap) and hl_history (newest first over every parent). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <jansson.h>
#include "helios.h"
#include "api/api.h"
#include "api/history.h"
#include "base/alloc.h"
#include "base/idmap.h"
#include "base/log.h"
#include "dedup/commit.h"
#include "dedup/forgotten.h"

int hl_commit_parse(const void *buf, size_t len, hl_commit **out)
{
	if ((!buf && len) || !out)
		return HL_INVALID;
	int err = hl_commit_decode(buf, len, out);
	return err == HL_VERSION ? HL_CORRUPT : err;
}

void hl_commit_free(hl_commit *c)
{
	free(c);
}

static void format_time(uint64_t ns, char *out, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static json_t *commit_object(const hl_id *id, const hl_commit *c, unsigned flags)
{
	char hex[HL_ID_HEX_LEN + 1], when[32];
	json_t *o = json_object(), *parents = json_array(), *meta = json_object();
	hl_id_format(id, hex);
	json_object_set_new(o, "id", json_string(hex));
	hl_id_format(&c->tree, hex);
	json_object_set_new(o, "tree", json_string(hex));
	for (unsigned i = 0; i < c->nparents; i++) {
		hl_id_format(&c->parents[i], hex);
		json_array_append_new(parents, json_string(hex));
	}
	json_object_set_new(o, "parents", parents);
	format_time(c->time_ns, when, sizeof when);
	json_object_set_new(o, "time", json_string(when));
	json_object_set_new(o, "time_ns", json_integer((json_int_t)c->time_ns));
	json_object_set_new(o, "author", json_string(c->author));
	json_object_set_new(o, "message", json_string(c->message));
	for (unsigned i = 0; i < c->nmeta; i++)
		json_object_set_new(meta, c->meta[i].key, json_string(c->meta[i].value));
	json_object_set_new(o, "meta", meta);
	json_object_set_new(o, "files", json_integer((json_int_t)c->files));
	json_object_set_new(o, "bytes", json_integer((json_int_t)c->bytes));
	json_object_set_new(o, "new_bytes", json_integer((json_int_t)c->new_bytes));
	json_object_set_new(o, "added", json_integer(c->added));
	json_object_set_new(o, "changed", json_integer(c->changed));
	json_object_set_new(o, "deleted", json_integer(c->deleted));
	json_object_set_new(o, "older_history_forgotten", json_boolean(flags & HL_HIST_CUT));
	json_object_set_new(o, "parent_forgotten", json_boolean(flags & (HL_HIST_CUT | HL_HIST_GAP)));
	json_object_set_new(o, "parent_missing", json_boolean(flags & HL_HIST_MISSING));
	return o;
}

char *hl_commit_json(const hl_id *id, const hl_commit *c, unsigned flags)
{
	json_t *o = commit_object(id, c, flags);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	return text;
}

int hl_commit_get(hl_store *s, const hl_id *id, hl_commit **out)
{
	hl_buf *b;
	int err = hl_get(s, id, &b);
	if (err)
		return err;
	err = hl_commit_decode(hl_buf_data(b), hl_buf_len(b), out);
	hl_buf_unref(b);
	if (err && err != HL_INVALID && err != ENOMEM) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(id, hex);
		hl_log(HL_LOG_ERROR, "commit %s: %s; refused", hex,
		       err == HL_VERSION ? "a newer commit format" : "breaks the commit format");
		err = HL_CORRUPT;
	}
	return err;
}

int hl_commit_put(hl_store *s, hl_commit *c, hl_id *id)
{
	if (!s || !c || !id)
		return HL_INVALID;
	size_t cap = hl_commit_size(c), len;
	uint8_t *buf = hl_malloc(cap);
	if (!buf)
		return ENOMEM;
	int err = hl_commit_encode(c, buf, cap, &len);
	if (!err)
		err = hl_put(s, buf, len, id, NULL); /* HL_INCOMPLETE without its tree */
	free(buf);
	return err;
}

int hl_api_forgotten_load(hl_store *s, hl_forgotten *f, hl_id *at)
{
	memset(f, 0, sizeof(*f));
	memset(at, 0, sizeof(*at));
	int err = hl_ref_get(s, HL_FORGOTTEN_REF, at);
	if (err)
		return err == HL_NOTFOUND ? 0 : err;
	hl_buf *b;
	if ((err = hl_get(s, at, &b)) != 0)
		return err == HL_NOTFOUND ? HL_CORRUPT : err; /* a root that is gone */
	err = hl_forgotten_decode(hl_buf_data(b), hl_buf_len(b), f);
	hl_buf_unref(b);
	if (err && err != ENOMEM) {
		hl_log(HL_LOG_ERROR, "the record of forgotten history (ref %s) is %s; refused",
		       HL_FORGOTTEN_REF, err == HL_VERSION ? "of a newer format" : "malformed");
		err = HL_CORRUPT;
	}
	return err;
}

/* ---- recording a snapshot ---- */

typedef struct change_counts {
	hl_store *s;
	uint32_t added, changed, deleted;
} change_counts;

static int count_file(const char *path, const hl_tree_entry *e, void *ctx)
{
	(void)path;
	if (e->kind != HL_TREE_DIR)
		(*(uint32_t *)ctx)++;
	return 0;
}

/* Paths that changed: a directory added or deleted counts as the files in it. */
static int count_change(const char *path, const hl_tree_entry *a, const hl_tree_entry *b, void *ctx)
{
	(void)path;
	change_counts *cc = ctx;
	if (a && b && (a->kind == HL_TREE_DIR) == (b->kind == HL_TREE_DIR)) {
		cc->changed += a->kind != HL_TREE_DIR; /* a directory's mode alone is not a file */
		return 0;
	}
	int err = 0;
	if (a)
		err = a->kind == HL_TREE_DIR ? hl_tree_walk(cc->s, &a->id, count_file, &cc->deleted)
		                             : (cc->deleted++, 0);
	if (!err && b)
		err = b->kind == HL_TREE_DIR ? hl_tree_walk(cc->s, &b->id, count_file, &cc->added)
		                             : (cc->added++, 0);
	return err;
}

static int count_changes(hl_store *s, const hl_id *from, const hl_id *to, hl_commit *c)
{
	static const hl_id none;
	change_counts cc = {s, 0, 0, 0};
	int err = 0;
	if (!memcmp(from, &none, sizeof(none)))
		err = hl_tree_walk(s, to, count_file, &cc.added);
	else
		err = hl_tree_diff(s, from, to, count_change, &cc);
	c->added = cc.added, c->changed = cc.changed, c->deleted = cc.deleted;
	return err;
}

static uint64_t wall_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The ref's commit (*has 1) or nothing to parent on (*has 0: no ref, or a ref naming a tree);
 * *head what the ref names, for the compare-and-swap. */
static int read_head(hl_store *s, const char *ref, int *exists, hl_id *head, int *has, hl_id *tree)
{
	*exists = *has = 0;
	memset(tree, 0, sizeof(*tree));
	int err = hl_ref_get(s, ref, head);
	if (err == HL_NOTFOUND)
		return 0;
	if (err)
		return err;
	*exists = 1;
	hl_commit *p;
	if ((err = hl_commit_get(s, head, &p)) == HL_INVALID)
		return 0; /* a tree, as refs named before history */
	if (err)
		return err;
	*has = 1;
	*tree = p->tree;
	hl_commit_free(p);
	return 0;
}

int hl_commit_ref(hl_store *s, const char *ref, const hl_id *tree, const hl_snapshot_stats *st,
                  const hl_commit_options *o, hl_id *commit, hl_commit **out)
{
	static const hl_commit_options none;
	if (!s || !tree || !commit || !hl_ref_valid(ref))
		return HL_INVALID;
	o = o ? o : &none;
	if (o->nmeta > HL_COMMIT_META_MAX)
		return HL_INVALID;
	hl_commit *c = hl_calloc(1, sizeof(*c));
	if (!c)
		return ENOMEM;
	c->tree = *tree;
	c->time_ns = o->time_ns ? o->time_ns : wall_ns();
	c->author = o->author ? o->author : "";
	c->message = o->message ? o->message : "";
	c->nmeta = o->nmeta;
	if (o->nmeta)
		memcpy(c->meta, o->meta, o->nmeta * sizeof(*o->meta));
	if (st)
		c->files = st->files, c->bytes = st->bytes, c->new_bytes = st->new_bytes;
	int err = 0;
	for (int attempt = 0;; attempt++) {
		int exists, has;
		hl_id head, ptree;
		if ((err = read_head(s, ref, &exists, &head, &has, &ptree)) != 0)
			break;
		c->nparents = has;
		if (has)
			c->parents[0] = head;
		if ((err = count_changes(s, &ptree, tree, c)) != 0 || (err = hl_commit_put(s, c, commit)) != 0)
			break;
		err = hl_ref_cas(s, ref, exists ? &head : NULL, commit);
		if (err != HL_CONFLICT || !o->retry || attempt >= 1000)
			break;
	}
	if (!err && out) { /* as stored: the strings copied, meta in key order */
		err = hl_commit_get(s, commit, out);
	}
	free(c);
	return err;
}

/* ---- walking history ---- */

typedef struct node {
	uint64_t time;
	hl_id id;
	hl_commit *c;
} node;

typedef struct walk {
	hl_store *s;
	const hl_forgotten *forgotten; /* the caller's, or own */
	hl_forgotten own;
	node *heap;
	size_t n, cap;
	hl_idmap seen;
} walk;

static int newer(const node *a, const node *b)
{
	return a->time != b->time ? a->time > b->time : memcmp(a->id.b, b->id.b, HL_ID_LEN) > 0;
}

static int heap_push(walk *w, node x)
{
	if (w->n == w->cap) {
		size_t cap = w->cap ? w->cap * 2 : 64;
		node *h = realloc(w->heap, cap * sizeof(*h));
		if (!h)
			return ENOMEM;
		w->heap = h, w->cap = cap;
	}
	size_t i = w->n++;
	while (i && newer(&x, &w->heap[(i - 1) / 2])) {
		w->heap[i] = w->heap[(i - 1) / 2];
		i = (i - 1) / 2;
	}
	w->heap[i] = x;
	return 0;
}

static node heap_pop(walk *w)
{
	node top = w->heap[0], last = w->heap[--w->n];
	size_t i = 0;
	for (;;) {
		size_t l = 2 * i + 1, r = l + 1, m = i;
		const node *mv = &last;
		if (l < w->n && newer(&w->heap[l], mv))
			m = l, mv = &w->heap[l];
		if (r < w->n && newer(&w->heap[r], mv))
			m = r;
		if (m == i)
			break;
		w->heap[i] = w->heap[m];
		i = m;
	}
	if (w->n)
		w->heap[i] = last;
	return top;
}

/* Queues commit id (once). *missing is set when it is not stored. */
static int enqueue(walk *w, const hl_id *id, int *missing)
{
	int fresh = hl_idmap_put(&w->seen, id, 0), err;
	if (fresh <= 0)
		return fresh ? ENOMEM : 0;
	hl_commit *c;
	if ((err = hl_commit_get(w->s, id, &c)) == HL_NOTFOUND) {
		*missing = 1;
		return 0;
	}
	if (err)
		return err == HL_INVALID ? HL_CORRUPT : err; /* a parent that is no commit */
	if ((err = heap_push(w, (node){c->time_ns, *id, c})) != 0)
		hl_commit_free(c);
	return err;
}

static void walk_free(walk *w)
{
	while (w->n)
		hl_commit_free(heap_pop(w).c);
	free(w->heap);
	hl_idmap_free(&w->seen);
	hl_forgotten_free(&w->own);
}

int hl_api_history(hl_store *s, const hl_id *from, const hl_forgotten *forgotten, int with_forgotten,
                   uint64_t before_ns, uint64_t limit, hl_api_history_fn fn, void *ctx)
{
	walk w = {.s = s, .forgotten = forgotten ? forgotten : &w.own};
	hl_id at;
	int err = forgotten ? 0 : hl_api_forgotten_load(s, &w.own, &at), missing = 0;
	if (!err && (err = enqueue(&w, from, &missing)) == 0 && missing)
		err = HL_NOTFOUND;
	uint64_t given = 0;
	while (!err && w.n && (!limit || given < limit)) {
		node x = heap_pop(&w);
		unsigned weak = hl_forgotten_flags(w.forgotten, &x.id), flags = 0;
		if (weak & HL_FORGOT_PARENTS)
			flags |= HL_HIST_CUT;
		else
			for (unsigned i = 0; !err && i < x.c->nparents; i++) {
				err = enqueue(&w, &x.c->parents[i], &missing);
				if (hl_forgotten_flags(w.forgotten, &x.c->parents[i]) & HL_FORGOT_TREE)
					flags |= HL_HIST_GAP;
			}
		if (missing)
			flags |= HL_HIST_MISSING, missing = 0;
		if (!err && (!before_ns || x.time < before_ns) && (with_forgotten || !(weak & HL_FORGOT_TREE))) {
			err = fn(&x.id, x.c, flags, weak, ctx);
			given++;
		}
		hl_commit_free(x.c);
	}
	walk_free(&w);
	return err;
}

typedef struct public_fn {
	hl_history_fn fn;
	void *ctx;
} public_fn;

static int call_public(const hl_id *id, const hl_commit *c, unsigned flags, unsigned weak, void *ctx)
{
	(void)weak;
	public_fn *p = ctx;
	return p->fn(id, c, flags, p->ctx);
}

int hl_history(hl_store *s, const hl_id *from, uint64_t before_ns, uint64_t limit, hl_history_fn fn,
               void *ctx)
{
	if (!s || !from || !fn)
		return HL_INVALID;
	public_fn p = {fn, ctx};
	return hl_api_history(s, from, NULL, 0, before_ns, limit, call_public, &p);
}

/* ---- the tree a new snapshot resembles ---- */

typedef struct newest_sibling {
	hl_store *s;
	unsigned seen;
	uint64_t time_ns;
	hl_id tree;
	int found, enough;
} newest_sibling;

static int sibling(const char *name, const hl_id *id, void *ctx)
{
	newest_sibling *n = ctx;
	hl_commit *cm;
	if (!strncmp(name, "_helios/", 8))
		return 0;
	if (++n->seen > HL_LIKE_SIBLINGS_MAX) {
		n->enough = 1;
		return HL_TOOBIG; /* stops the listing */
	}
	if (hl_commit_get(n->s, id, &cm) != 0)
		return 0; /* a ref to something else: no snapshot */
	if (!n->found || cm->time_ns > n->time_ns) {
		n->time_ns = cm->time_ns;
		n->tree = cm->tree;
		n->found = 1;
	}
	hl_commit_free(cm);
	return 0;
}

int hl_snapshot_like_for(hl_store *s, const char *ref, hl_id *tree)
{
	if (!s || !ref || !tree)
		return HL_INVALID;
	hl_id at;
	hl_commit *cm;
	int err = hl_ref_get(s, ref, &at);
	if (!err && (err = hl_commit_get(s, &at, &cm)) == 0) {
		*tree = cm->tree;
		hl_commit_free(cm);
		return 0;
	}
	const char *slash = strrchr(ref, '/');
	size_t plen = slash ? (size_t)(slash - ref) + 1 : 0;
	char *prefix = hl_malloc(plen + 1);
	if (!prefix)
		return ENOMEM;
	memcpy(prefix, ref, plen);
	prefix[plen] = 0;
	newest_sibling n = {.s = s};
	err = hl_ref_list(s, prefix, sibling, &n);
	free(prefix);
	if (err && !n.enough)
		return err;
	if (!n.found)
		return HL_NOTFOUND;
	*tree = n.tree;
	return 0;
}
