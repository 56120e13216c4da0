/* s3_names.c — names kept as small pointer objects in the bucket: the large-blob map and kv
 * namespaces (formats in s3.h), and what lists and rewrites objects by id. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "base/dec.h"
#include "base/grow.h"
#include "base/log.h"
#include "remote/s3.h"
#include "remote/s3_int.h"
#include "base/alloc.h"

/* ---- names kept as small bucket objects: the large-blob map and kv namespaces ---- */

int hl_s3_parse_pointer(const uint8_t *b, size_t len, hl_id *id, uint64_t *size)
{
	if (len < HL_ID_HEX_LEN + 3 || b[HL_ID_HEX_LEN] != '\n' || b[len - 1] != '\n' ||
	    hl_id_parse((const char *)b, HL_ID_HEX_LEN, id))
		return HL_CORRUPT;
	const char *d = (const char *)b + HL_ID_HEX_LEN + 1;
	size_t dl = len - HL_ID_HEX_LEN - 2;
	if ((d[0] == '0' && dl > 1) || hl_dec_u64(d, dl, size)) /* no leading zeros: one text per value */
		return HL_CORRUPT;
	return 0;
}

/* base64url (RFC 4648 section 5) without padding: a kv key of any bytes as a bucket key part */
static void b64url(const uint8_t *p, size_t n, char *out)
{
	static const char a[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	size_t o = 0;
	for (size_t i = 0; i < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (i + 1 < n ? (uint32_t)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		out[o++] = a[v >> 18 & 63];
		out[o++] = a[v >> 12 & 63];
		if (i + 1 < n)
			out[o++] = a[v >> 6 & 63];
		if (i + 2 < n)
			out[o++] = a[v & 63];
	}
	out[o] = 0;
}

static int url_large(const hl_s3 *s, const hl_id *id, char *out)
{
	return hl_s3i_url_id(s, "large", id, out);
}

static int url_kv(const hl_s3 *s, const char *ns, const void *key, size_t klen, char *out)
{
	char k[4 * HL_KV_KEY_MAX / 3 + 8], esc[3 * 64 + 1];
	if (!klen || klen > HL_KV_KEY_MAX || strlen(ns) > 64 || hl_http_escape(ns, 0, esc, sizeof esc))
		return HL_INVALID;
	b64url(key, klen, k);
	int n = snprintf(out, URL_MAX, "%s/%skv/%s/%s", s->base, s->prefix, esc, k);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

/* The URL of a key under the prefix (a control key, or a listed one). */
int hl_s3i_url_key(const hl_s3 *s, const char *key, char *out)
{
	char esc[3 * 1024 + 1];
	if (strlen(key) > 1024 || hl_http_escape(key, 1, esc, sizeof esc)) /* S3 keys: 1024 bytes */
		return HL_INVALID;
	int n = snprintf(out, URL_MAX, "%s/%s%s", s->base, s->prefix, esc);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

/* A pointer object: HL_NOTFOUND, or its id and size. */
static int get_pointer(hl_s3 *s, const char *url, hl_id *id, uint64_t *size)
{
	hl_http_resp r;
	int err = hl_s3i_do_req(s, "GET", url, NULL, NULL, 0, 0, &r);
	if (err)
		return err;
	if (r.status == 404)
		err = HL_NOTFOUND;
	else if (r.status != 200)
		err = hl_s3i_status_err("name get", r.status);
	else if (!r.body || hl_s3_parse_pointer(r.body->data, r.body->len, id, size)) {
		hl_log(HL_LOG_ERROR, "s3: %s does not hold \"<64 hex id>\\n<size>\\n\"", url);
		err = HL_CORRUPT;
	}
	hl_http_resp_clear(&r);
	return err;
}

/* Writes a pointer object; if_absent: keep an existing one (the large-blob map: any writer's
 * manifest is as good as another's). */
static int put_pointer(hl_s3 *s, const char *url, const hl_id *id, uint64_t size, int if_absent)
{
	char body[HL_ID_HEX_LEN + 24];
	hl_id_format(id, body);
	int len = snprintf(body + HL_ID_HEX_LEN, sizeof body - HL_ID_HEX_LEN, "\n%llu\n", (unsigned long long)size);
	int err = hl_s3i_probe(s);
	if (err)
		return err;
	if (if_absent && !atomic_load(&s->conditional)) {
		hl_id cur;
		uint64_t cs;
		if ((err = get_pointer(s, url, &cur, &cs)) != HL_NOTFOUND)
			return err;
	}
	hl_http_resp r;
	for (int tries = 0;; tries++) {
		const char *cond = if_absent && atomic_load(&s->conditional) ? "If-None-Match: *" : NULL;
		if ((err = hl_s3i_do_req(s, "PUT", url, cond, body, (size_t)(HL_ID_HEX_LEN + len), 0, &r)) != 0)
			return err;
		hl_http_resp_clear(&r);
		if (r.status == 409 && tries < 4)
			continue;
		if (r.status != 200 && r.status != 201 && !(if_absent && r.status == 412))
			err = hl_s3i_status_err("name put", r.status);
		return err;
	}
}

int hl_s3i_delete_key(hl_s3 *s, const char *url)
{
	hl_http_resp r;
	int err = hl_s3i_do_req(s, "DELETE", url, NULL, NULL, 0, 0, &r);
	if (err)
		return err;
	hl_http_resp_clear(&r);
	return r.status == 204 || r.status == 200 || r.status == 404 ? 0 : hl_s3i_status_err("delete", r.status);
}

int hl_s3_large_get(hl_s3 *s, const hl_id *id, hl_id *manifest, uint64_t *size)
{
	char url[URL_MAX];
	int err = url_large(s, id, url);
	return err ? err : get_pointer(s, url, manifest, size);
}

int hl_s3_large_put(hl_s3 *s, const hl_id *id, const hl_id *manifest, uint64_t size)
{
	char url[URL_MAX];
	int err = url_large(s, id, url);
	return err ? err : put_pointer(s, url, manifest, size, 1);
}

int hl_s3_large_del(hl_s3 *s, const hl_id *id)
{
	char url[URL_MAX];
	int err = url_large(s, id, url);
	return err ? err : hl_s3i_delete_key(s, url);
}

/* An id at the end of "<dir>/<ab>/<64 hex>" keys. */
static int key_id(const char *key, size_t len, size_t dirlen, hl_id *id)
{
	return len == dirlen + 3 + HL_ID_HEX_LEN && key[dirlen + 2] == '/' &&
	       !hl_id_parse(key + dirlen + 3, HL_ID_HEX_LEN, id) && !memcmp(key + dirlen, key + dirlen + 3, 2)
	       ? 0 : HL_INVALID;
}

typedef struct ids_ctx {
	hl_s3_aged_fn fn;
	void *ctx;
} ids_ctx;

static int each_id(const hl_s3_entry *e, void *arg)
{
	ids_ctx *c = arg;
	hl_id id;
	if (key_id(e->key, e->len, 6, &id)) /* "blobs/" or "large/" */
		return 0; /* foreign keys skipped */
	return c->fn(&id, e->size, e->mtime_ms, c->ctx);
}

int hl_s3_list(hl_s3 *s, int large, hl_s3_aged_fn fn, void *ctx)
{
	ids_ctx c = {fn, ctx};
	return hl_s3i_list_keys(s, large ? "large/" : "blobs/", each_id, &c);
}

int hl_s3_blob_stat(hl_s3 *s, const hl_id *id, uint64_t *size)
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = hl_s3i_url_blob(s, id, url);
	if (err || (err = hl_s3i_do_req(s, "HEAD", url, NULL, NULL, 0, 0, &r)) != 0)
		return err;
	hl_http_resp_clear(&r);
	if ((err = hl_http_presence("s3", &r)) == 0)
		*size = r.has_size ? r.size : r.content_length; /* stored encoded: the size it decodes to */
	return err;
}

int hl_s3_rewrite(hl_s3 *s, const hl_id *id, const void *data, size_t len)
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = hl_s3i_url_blob(s, id, url);
	encoded e;
	if (err)
		return err;
	hl_s3i_encode_object(data, len, &e);
	err = hl_s3i_do_req3(s, "PUT", url, e.enc ? e.encoding : NULL, e.enc ? e.size : NULL, NULL, e.body, e.len, 0, &r);
	free(e.enc);
	if (err)
		return err;
	hl_http_resp_clear(&r);
	return r.status == 200 || r.status == 201 ? 0 : hl_s3i_status_err("rewrite", r.status);
}

int hl_s3_blob_delete(hl_s3 *s, const hl_id *id)
{
	char url[URL_MAX];
	int err = hl_s3i_url_blob(s, id, url);
	return err ? err : hl_s3i_delete_key(s, url);
}

int hl_s3_kv_get(hl_s3 *s, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size)
{
	char url[URL_MAX];
	int err = url_kv(s, ns, key, klen, url);
	return err ? err : get_pointer(s, url, id, size);
}

int hl_s3_kv_set(hl_s3 *s, const char *ns, const void *key, size_t klen, const hl_id *id, uint64_t size)
{
	char url[URL_MAX];
	int err = url_kv(s, ns, key, klen, url);
	return err ? err : put_pointer(s, url, id, size, 0); /* a cache: the last writer wins */
}

int hl_s3_kv_delete(hl_s3 *s, const char *ns, const void *key, size_t klen)
{
	char url[URL_MAX];
	hl_id id;
	uint64_t size;
	int err = url_kv(s, ns, key, klen, url);
	if (!err && (err = get_pointer(s, url, &id, &size)) == 0) /* HL_NOTFOUND when there is none */
		err = hl_s3i_delete_key(s, url);
	return err;
}

typedef struct kv_row {
	char key[4 * HL_KV_KEY_MAX / 3 + 80]; /* "kv/<ns>/<base64url key>" */
	size_t nslen;                         /* the namespace's length (it starts at key + 3) */
	int64_t mtime_ms;
	hl_id id;
	uint64_t size;
} kv_row;

typedef struct kv_keys {
	kv_row *rows;
	size_t n, cap;
} kv_keys;

static int collect_kv(const hl_s3_entry *e, void *arg)
{
	kv_keys *c = arg;
	const char *slash = e->len > 3 ? memchr(e->key + 3, '/', e->len - 3) : NULL;
	if (e->len >= sizeof c->rows->key || !slash)
		return 0;
	void *p = hl_grow(c->rows, c->n, &c->cap, sizeof(*c->rows), 64);
	if (!p)
		return ENOMEM;
	c->rows = p;
	kv_row *r = &c->rows[c->n++];
	memcpy(r->key, e->key, e->len);
	r->key[e->len] = 0;
	r->nslen = (size_t)(slash - (e->key + 3));
	r->mtime_ms = e->mtime_ms;
	return 0;
}

/* Namespace, then newest write first (then key: one order for equal times). */
static int cmp_row(const void *a, const void *b)
{
	const kv_row *x = a, *y = b;
	size_t n = x->nslen < y->nslen ? x->nslen : y->nslen;
	int c = memcmp(x->key + 3, y->key + 3, n);
	if (c || x->nslen != y->nslen)
		return c ? c : x->nslen < y->nslen ? -1 : 1;
	if (x->mtime_ms != y->mtime_ms)
		return x->mtime_ms > y->mtime_ms ? -1 : 1;
	return strcmp(x->key, y->key);
}

int hl_s3_kv_each(hl_s3 *s, const char *ns, uint64_t bound, int dry_run, hl_s3_id_fn fn, void *ctx,
                  uint64_t *evicted)
{
	char under[80];
	if (evicted)
		*evicted = 0;
	if (snprintf(under, sizeof under, "kv/%s%s", ns ? ns : "", ns ? "/" : "") >= (int)sizeof under)
		return HL_INVALID;
	kv_keys c = {NULL, 0, 0};
	int err = hl_s3i_list_keys(s, under, collect_kv, &c);
	size_t live = 0;
	for (size_t i = 0; !err && i < c.n; i++) { /* each pointer read: its value's id and size */
		char url[URL_MAX];
		if (hl_s3i_url_key(s, c.rows[i].key, url))
			continue;
		int e = get_pointer(s, url, &c.rows[i].id, &c.rows[i].size);
		if (e == HL_NOTFOUND)
			continue; /* deleted since the listing */
		if (e)
			err = e;
		else
			c.rows[live++] = c.rows[i];
	}
	if (!err && bound && live)
		qsort(c.rows, live, sizeof(*c.rows), cmp_row);
	uint64_t held = 0;
	int full = 0;
	for (size_t i = 0; !err && i < live; i++) {
		if (bound) {
			if (i == 0 || c.rows[i].nslen != c.rows[i - 1].nslen ||
			    memcmp(c.rows[i].key + 3, c.rows[i - 1].key + 3, c.rows[i].nslen))
				held = 0, full = 0; /* a new namespace */
			if (full || held + c.rows[i].size > bound) { /* this and every older key: evicted */
				full = 1;
				int e = dry_run ? 0 : hl_s3_key_delete(s, c.rows[i].key);
				if (e && e != HL_NOTFOUND)
					err = e;
				else if (evicted)
					(*evicted)++;
				continue;
			}
			held += c.rows[i].size;
		}
		err = fn(&c.rows[i].id, c.rows[i].size, ctx);
	}
	free(c.rows);
	return err;
}
