/* transfer.c — hl_push and hl_pull (include/helios.h): snapshots between this store and a
 * `helios serve`, moving only what the other side lacks, over the one remote-helios client
 * (remote/hremote.c: /v1/missing, /v1/batch, blobs, refs by compare-and-swap). push: every object
 * of the snapshot, parents before children, asked about in groups; what the server lacks is
 * uploaded in reverse (children first, so a tree never arrives before what it names), then the
 * ref moves. pull: depth first, each object verified as it arrives (the client re-hashes), each
 * tree stored after everything it names (a store keeps only complete trees), then one sync. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "api/api.h"
#include "base/alloc.h"
#include "base/grow.h"
#include "remote/hremote.h"
#include "remote/http.h"

#define ASK_IDS 10000              /* ids per /v1/missing question */
#define BATCH_BYTES (4u << 20)     /* objects per upload, in bytes (the client splits larger) */
#define PULL_MAX_DEPTH 1024        /* directories nested deeper: refused (HL_TOOBIG) */

static int connect_to(hl_store *s, const char *url, const char *token, hl_hremote **r)
{
	hl_hremote_config rc = {.url = url, .token = token,
	                        .http = {.connect_timeout_ms = 10000, .timeout_ms = 600000,
	                                 .cainfo = s->tls_cacert}};
	return hl_hremote_open(&rc, r);
}

/* The report of a failed transfer: the status that refused it, or what the connection met. */
static void failed(hl_transfer_report *rep)
{
	snprintf(rep->detail, sizeof rep->detail, "%s", hl_http_last_failure());
	rep->status = hl_http_last_status(1);
}

/* ---- push ---- */

typedef struct obj {
	hl_id id;
	size_t at; /* its place in the walk */
} obj;

typedef struct objs {
	obj *v;
	size_t n, cap;
} objs;

static int add_obj(objs *o, const hl_id *id)
{
	obj *v = hl_grow(o->v, o->n, &o->cap, sizeof(*v), 1024);
	if (!v)
		return ENOMEM;
	o->v = v;
	o->v[o->n] = (obj){*id, o->n};
	o->n++;
	return 0;
}

static int collect(const char *path, const hl_tree_entry *e, void *ctx)
{
	(void)path;
	return add_obj(ctx, &e->id);
}

static int by_id_last_first(const void *x, const void *y)
{
	const obj *a = x, *b = y;
	int c = memcmp(a->id.b, b->id.b, HL_ID_LEN);
	return c ? c : (a->at < b->at) - (a->at > b->at);
}

static int by_place(const void *x, const void *y)
{
	const obj *a = x, *b = y;
	return (a->at > b->at) - (a->at < b->at);
}

/* Content listed more than once (one file in two places) is kept once, at its last place in the
 * walk: uploading in reverse, that is before every tree that names it. */
static void drop_repeats(objs *o)
{
	qsort(o->v, o->n, sizeof(*o->v), by_id_last_first);
	size_t k = 0;
	for (size_t i = 0; i < o->n; i++)
		if (!k || !hl_id_equal(&o->v[i].id, &o->v[k - 1].id))
			o->v[k++] = o->v[i];
	o->n = k;
	qsort(o->v, o->n, sizeof(*o->v), by_place);
}

typedef struct upload {
	hl_hremote *r;
	hl_put_item *items;
	hl_buf **bufs;
	size_t n, cap, bytes;
	hl_transfer_report *rep;
} upload;

static int send_pending(upload *u)
{
	int err = u->n ? hl_hremote_put_batch(u->r, u->items, u->n) : 0;
	if (u->n && !err)
		u->rep->batches++;
	for (size_t i = 0; i < u->n; i++)
		hl_buf_unref(u->bufs[i]);
	u->n = u->bytes = 0;
	return err;
}

static int queue(upload *u, const hl_id *id, hl_buf *b)
{
	if (u->n && u->bytes + hl_buf_len(b) > BATCH_BYTES) {
		int err = send_pending(u);
		if (err) {
			hl_buf_unref(b);
			return err;
		}
	}
	if (u->n == u->cap) {
		size_t cap = u->cap ? 2 * u->cap : 256;
		hl_put_item *it = hl_realloc(u->items, cap * sizeof(*it));
		if (it)
			u->items = it;
		hl_buf **bs = it ? hl_realloc(u->bufs, cap * sizeof(*bs)) : NULL;
		if (!bs) {
			hl_buf_unref(b);
			return ENOMEM;
		}
		u->bufs = bs, u->cap = cap;
	}
	u->items[u->n] = (hl_put_item){.data = hl_buf_data(b), .len = hl_buf_len(b), .id = *id, .check_id = 1};
	u->bufs[u->n++] = b;
	u->bytes += hl_buf_len(b);
	u->rep->moved++;
	u->rep->moved_bytes += hl_buf_len(b);
	return 0;
}

int hl_push(hl_store *s, const hl_id *root, const char *url, const char *token, const char *ref,
            hl_transfer_report *out)
{
	hl_transfer_report rep = {0};
	if (!s || !root || !url || (ref && !hl_ref_valid(ref)))
		return HL_INVALID;
	hl_hremote *r;
	hl_http_last_status(1);
	int err = connect_to(s, url, token, &r);
	if (err) {
		if (out) {
			*out = (hl_transfer_report){0};
			failed(out);
		}
		return err;
	}
	objs o = {0};
	uint8_t *missing = NULL;
	upload u = {.r = r, .rep = &rep};
	if ((err = add_obj(&o, root)) == 0 && (err = hl_tree_walk(s, root, collect, &o)) == 0) {
		drop_repeats(&o);
		rep.objects = o.n;
		hl_id *ids = hl_malloc((o.n ? o.n : 1) * sizeof(*ids));
		missing = hl_malloc(o.n ? o.n : 1);
		err = ids && missing ? 0 : ENOMEM;
		for (size_t i = 0; !err && i < o.n; i++)
			ids[i] = o.v[i].id;
		for (size_t at = 0; !err && at < o.n; at += ASK_IDS)
			err = hl_hremote_missing(r, ids + at, o.n - at < ASK_IDS ? o.n - at : ASK_IDS, missing + at);
		free(ids);
	}
	for (size_t k = o.n; !err && k-- > 0;) { /* children first */
		hl_buf *b;
		if (missing[k] && (err = hl_get(s, &o.v[k].id, &b)) == 0)
			err = queue(&u, &o.v[k].id, b);
	}
	if (!err)
		err = send_pending(&u);
	for (size_t i = 0; i < u.n; i++) /* left unsent after an error */
		hl_buf_unref(u.bufs[i]);
	if (!err && ref) { /* by compare-and-swap against what the server holds now */
		hl_id cur;
		int e = hl_hremote_ref_get(r, ref, &cur);
		err = e == HL_NOTFOUND ? hl_hremote_ref_set(r, ref, NULL, root, 0)
		      : e ? e : hl_hremote_ref_set(r, ref, &cur, root, 0);
	}
	free(u.items);
	free(u.bufs);
	free(missing);
	free(o.v);
	hl_hremote_close(r);
	if (err)
		failed(&rep);
	if (out)
		*out = rep;
	return err;
}

/* ---- pull ---- */

typedef struct puller {
	hl_hremote *r;
	hl_store *s;
	hl_transfer_report *rep;
	int depth;
} puller;

static int pull_object(puller *p, const hl_id *id, int is_tree, int depth);

static int pull_child(const hl_tree_entry *e, void *ctx)
{
	puller *p = ctx;
	return pull_object(p, &e->id, e->kind == HL_TREE_DIR, p->depth + 1);
}

/* Stores id from the server unless this store has it (then it has everything it names); a tree
 * only after everything it names. */
static int pull_object(puller *p, const hl_id *id, int is_tree, int depth)
{
	if (hl_has(p->s, id) == 0)
		return 0;
	if (depth > PULL_MAX_DEPTH)
		return HL_TOOBIG;
	hl_buf *b;
	int err = hl_hremote_get(p->r, id, &b); /* verified: HL_CORRUPT when it does not hash to id */
	if (err)
		return err;
	p->rep->moved++;
	p->rep->moved_bytes += hl_buf_len(b);
	if (is_tree) {
		int saved = p->depth;
		p->depth = depth;
		err = hl_tree_parse(hl_buf_data(b), hl_buf_len(b), pull_child, p);
		p->depth = saved;
	}
	if (!err)
		err = hl_put_expect(p->s, id, hl_buf_data(b), hl_buf_len(b), NULL);
	hl_buf_unref(b);
	return err;
}

/* Pulls the snapshot id names: a tree, or a commit's tree (then the commit is stored too, after
 * its tree; its history stays on the server). *id becomes the tree. */
static int pull_snapshot(puller *p, hl_id *id)
{
	hl_buf *b;
	int err = hl_has(p->s, id) == 0 ? hl_get(p->s, id, &b) : hl_hremote_get(p->r, id, &b);
	if (err)
		return err;
	hl_commit *c = NULL;
	if (hl_commit_parse(hl_buf_data(b), hl_buf_len(b), &c) != 0) {
		hl_buf_unref(b);
		return pull_object(p, id, 1, 0); /* no commit: a tree (or refused as none) */
	}
	hl_id commit = *id;
	*id = c->tree;
	hl_commit_free(c);
	err = pull_object(p, id, 1, 0);
	if (!err && hl_has(p->s, &commit) != 0) {
		p->rep->moved++;
		p->rep->moved_bytes += hl_buf_len(b);
		err = hl_put_expect(p->s, &commit, hl_buf_data(b), hl_buf_len(b), NULL);
	}
	hl_buf_unref(b);
	return err;
}

int hl_pull(hl_store *s, const char *url, const char *token, const char *rev, hl_id *root,
            hl_transfer_report *out)
{
	hl_transfer_report rep = {0};
	if (!s || !url || !rev || !root)
		return HL_INVALID;
	int err = hl_api_writable(s);
	if (err)
		return err;
	int by_id = hl_id_parse(rev, strlen(rev), root) == 0, by_ref = !by_id && hl_ref_valid(rev);
	hl_hremote *r;
	hl_http_last_status(1);
	if ((err = connect_to(s, url, token, &r)) != 0) {
		if (out) {
			*out = (hl_transfer_report){0};
			failed(out);
		}
		return err;
	}
	if (by_ref)
		err = hl_hremote_ref_get(r, rev, root);
	else if (!by_id) /* a revision the server resolves: R~N, R^, R@{TIME}, a prefix */
		err = hl_hremote_commit_id(r, rev, root);
	puller p = {r, s, &rep, 0};
	if (!err)
		err = pull_snapshot(&p, root);
	if (!err)
		err = hl_sync(s);
	hl_hremote_close(r);
	if (err)
		failed(&rep);
	if (out)
		*out = rep;
	return err;
}
