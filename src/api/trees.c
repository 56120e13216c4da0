/* trees.c — reading stored trees: hl_tree_parse, hl_tree_walk (depth first, in name order) and
 * hl_tree_diff (identical subtrees skipped by id). */
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

/* ---------- reading trees ---------- */

/* Fetches and checks a tree: HL_INVALID from the check (another kind of object) reads as "not a
 * tree" to the caller, anything malformed as HL_CORRUPT. */
int hl_api_load_tree(hl_store *s, const hl_id *id, hl_buf **out, uint32_t *count)
{
	int err = hl_get(s, id, out);
	if (err)
		return err;
	err = hl_tree_check(hl_buf_data(*out), hl_buf_len(*out), count);
	if (err) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(id, hex);
		hl_log(HL_LOG_ERROR, "tree %s: %s", hex,
		       err == HL_INVALID ? "not a tree" : err == HL_VERSION ? "a newer tree format" :
		       "malformed (unsafe or unsorted names, bad lengths or kinds); refused");
		hl_buf_unref(*out);
		*out = NULL;
	}
	return err;
}

/* Appends "/name" (or "name" at the top) to the path of length plen in path[PATH_CAP]; returns the
 * offset of the name in it, or 0 with HL_TOOBIG in *err when it does not fit. */
static size_t path_push(char *path, size_t plen, const char *name, size_t nlen, int *err)
{
	size_t at = plen ? plen + 1 : 0;
	if (at + nlen + 1 > PATH_CAP) {
		*err = HL_TOOBIG;
		return 0;
	}
	if (plen)
		path[plen] = '/';
	memcpy(path + at, name, nlen);
	path[at + nlen] = 0;
	return at;
}

typedef struct walker {
	hl_store *s;
	hl_tree_fn fn;
	void *ctx;
	char path[PATH_CAP];
} walker;

static int walk(walker *w, const hl_id *id, size_t plen, int depth)
{
	if (depth > MAX_DEPTH)
		return HL_TOOBIG;
	hl_buf *b;
	uint32_t n;
	int err = hl_api_load_tree(w->s, id, &b, &n);
	if (err)
		return depth && err == HL_INVALID ? HL_CORRUPT : err; /* a subtree that is no tree */
	size_t pos = 0;
	hl_tree_entry e;
	while (!err && hl_tree_next(hl_buf_data(b), hl_buf_len(b), &pos, &e)) {
		size_t at = path_push(w->path, plen, e.name, e.name_len, &err);
		if (err)
			break;
		e.name = w->path + at;
		err = w->fn(w->path, &e, w->ctx);
		if (!err && e.kind == HL_TREE_DIR)
			err = walk(w, &e.id, at + e.name_len, depth + 1);
		w->path[plen] = 0;
	}
	hl_buf_unref(b);
	return err;
}

int hl_tree_parse(const void *buf, size_t len, hl_entry_fn fn, void *ctx)
{
	uint32_t n;
	if (!buf || !fn)
		return HL_INVALID;
	int err = hl_tree_check(buf, len, &n);
	size_t pos = 0;
	hl_tree_entry e;
	while (!err && hl_tree_next(buf, len, &pos, &e))
		err = fn(&e, ctx);
	return err == HL_VERSION ? HL_CORRUPT : err;
}

int hl_tree_walk(hl_store *s, const hl_id *root, hl_tree_fn fn, void *ctx)
{
	if (!s || !root || !fn)
		return HL_INVALID;
	walker *w = hl_malloc(sizeof(*w));
	if (!w)
		return ENOMEM;
	w->s = s, w->fn = fn, w->ctx = ctx, w->path[0] = 0;
	int err = walk(w, root, 0, 0);
	free(w);
	return err;
}


/* ---------- diff ---------- */

typedef struct differ {
	hl_store *s;
	hl_diff_fn fn;
	void *ctx;
	char path[PATH_CAP];
} differ;

/* Calls fn with the path of e under the current prefix. */
static int report(differ *df, size_t plen, const hl_tree_entry *a, const hl_tree_entry *b)
{
	const hl_tree_entry *e = a ? a : b;
	int err = 0;
	size_t at = path_push(df->path, plen, e->name, e->name_len, &err);
	if (err)
		return err;
	hl_tree_entry ca, cb;
	if (a)
		ca = *a, ca.name = df->path + at;
	if (b)
		cb = *b, cb.name = df->path + at;
	err = df->fn(df->path, a ? &ca : NULL, b ? &cb : NULL, df->ctx);
	df->path[plen] = 0;
	return err;
}

static int diff_trees(differ *df, const hl_id *ia, const hl_id *ib, size_t plen, int depth)
{
	if (depth > MAX_DEPTH)
		return HL_TOOBIG;
	hl_buf *ba, *bb;
	uint32_t na, nb;
	int err = hl_api_load_tree(df->s, ia, &ba, &na);
	if (err)
		return err;
	if ((err = hl_api_load_tree(df->s, ib, &bb, &nb)) != 0) {
		hl_buf_unref(ba);
		return err;
	}
	size_t pa = 0, pb = 0;
	hl_tree_entry ea, eb;
	int ha = hl_tree_next(hl_buf_data(ba), hl_buf_len(ba), &pa, &ea);
	int hb = hl_tree_next(hl_buf_data(bb), hl_buf_len(bb), &pb, &eb);
	while (!err && (ha || hb)) {
		int c = !ha ? 1 : !hb ? -1 : hl_tree_entry_cmp(&ea, &eb);
		if (c < 0) {
			err = report(df, plen, &ea, NULL);
			ha = hl_tree_next(hl_buf_data(ba), hl_buf_len(ba), &pa, &ea);
		} else if (c > 0) {
			err = report(df, plen, NULL, &eb);
			hb = hl_tree_next(hl_buf_data(bb), hl_buf_len(bb), &pb, &eb);
		} else {
			if (ea.kind == HL_TREE_DIR && eb.kind == HL_TREE_DIR) {
				if (ea.mode != eb.mode)
					err = report(df, plen, &ea, &eb);
				if (!err && !hl_id_equal(&ea.id, &eb.id)) {
					size_t at = path_push(df->path, plen, ea.name, ea.name_len, &err);
					if (!err)
						err = diff_trees(df, &ea.id, &eb.id, at + ea.name_len, depth + 1);
					df->path[plen] = 0;
				}
			} else if (ea.kind != eb.kind || ea.mode != eb.mode || !hl_id_equal(&ea.id, &eb.id)) {
				err = report(df, plen, &ea, &eb);
			}
			ha = hl_tree_next(hl_buf_data(ba), hl_buf_len(ba), &pa, &ea);
			hb = hl_tree_next(hl_buf_data(bb), hl_buf_len(bb), &pb, &eb);
		}
	}
	hl_buf_unref(ba);
	hl_buf_unref(bb);
	return err;
}

int hl_tree_diff(hl_store *s, const hl_id *a, const hl_id *b, hl_diff_fn fn, void *ctx)
{
	if (!s || !a || !b || !fn)
		return HL_INVALID;
	differ *df = hl_malloc(sizeof(*df));
	if (!df)
		return ENOMEM;
	df->s = s, df->fn = fn, df->ctx = ctx, df->path[0] = 0;
	int err = diff_trees(df, a, b, 0, 0);
	free(df);
	return err;
}
