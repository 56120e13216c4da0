/* s3_list.c — control keys (the collection protocol's state, lists and claims under gc/) and
 * listings: ListObjectsV2 pages parsed (parsers fuzzed: fuzz_s3), refs listed. */
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

/* ---- control objects: the collection protocol's state, lists and claims (under gc/) ---- */


int hl_s3_key_get(hl_s3 *s, const char *key, hl_buf **body, char etag[96])
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = hl_s3i_url_key(s, key, url);
	if (err || (err = hl_s3i_do_req(s, "GET", url, NULL, NULL, 0, 0, &r)) != 0)
		return err;
	if (r.status == 200) {
		if (etag)
			snprintf(etag, 96, "%s", r.etag);
		*body = r.body ? r.body : hl_buf_alloc(0);
		r.body = NULL;
		err = *body ? 0 : ENOMEM;
	} else {
		err = r.status == 404 ? HL_NOTFOUND : hl_s3i_status_err("get", r.status);
	}
	hl_http_resp_clear(&r);
	return err;
}

int hl_s3_key_put(hl_s3 *s, const char *key, const void *body, size_t len, const char *cond,
                  char etag[96])
{
	char url[URL_MAX], h[128];
	hl_http_resp r;
	int err = hl_s3i_url_key(s, key, url);
	if (!err && cond && !atomic_load(&s->conditional) && (err = hl_s3i_probe(s)) == 0 && !atomic_load(&s->conditional))
		err = HL_INVALID; /* a conditional write the bucket would not honour */
	if (err)
		return err;
	if (cond)
		snprintf(h, sizeof h, !strcmp(cond, "*") ? "If-None-Match: *" : "If-Match: %s", cond);
	if ((err = hl_s3i_do_req(s, "PUT", url, cond ? h : NULL, body, len, cond != NULL, &r)) != 0)
		return err;
	if (r.status == 200 || r.status == 201) {
		if (etag)
			snprintf(etag, 96, "%s", r.etag);
	} else {
		err = r.status == 412 || r.status == 409 || (cond && r.status == 404) ? HL_CONFLICT
		                                                                       : hl_s3i_status_err("put", r.status);
	}
	hl_http_resp_clear(&r);
	return err;
}

int hl_s3_key_delete(hl_s3 *s, const char *key)
{
	char url[URL_MAX];
	int err = hl_s3i_url_key(s, key, url);
	return err ? err : hl_s3i_delete_key(s, url);
}

int hl_s3_key_list(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx)
{
	return hl_s3i_list_keys(s, under, fn, ctx);
}

/* ---- listing ---- */

/* The text between <tag> and </tag> starting the search at p; NULL if absent. */
static const char *element(const char *p, const char *end, const char *tag, size_t *len)
{
	char open[40], close[41];
	int ol = snprintf(open, sizeof open, "<%s>", tag), cl = snprintf(close, sizeof close, "</%s>", tag);
	const char *a = memmem(p, (size_t)(end - p), open, (size_t)ol);
	if (!a)
		return NULL;
	a += ol;
	const char *b = memmem(a, (size_t)(end - a), close, (size_t)cl);
	if (!b)
		return NULL;
	*len = (size_t)(b - a);
	return a;
}

/* XML's five predefined entities and decimal references 1..127 decoded; -1 on anything else. */
static int unescape_xml(const char *s, size_t len, char *out, size_t cap)
{
	static const struct { const char *e; char c; } ents[] = {
		{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
	size_t o = 0;
	for (size_t i = 0; i < len;) {
		if (o + 1 >= cap)
			return -1;
		if (s[i] == 0) /* XML has no NUL characters, raw or escaped */
			return -1;
		if (s[i] != '&') {
			out[o++] = s[i++];
			continue;
		}
		size_t k;
		for (k = 0; k < 5; k++) {
			size_t el = strlen(ents[k].e);
			if (len - i >= el && !memcmp(s + i, ents[k].e, el)) {
				out[o++] = ents[k].c;
				i += el;
				break;
			}
		}
		if (k < 5)
			continue;
		unsigned v = 0;
		size_t j = i + 1;
		if (j < len && s[j] == '#') {
			for (j++; j < len && s[j] >= '0' && s[j] <= '9' && v < 128; j++)
				v = v * 10 + (unsigned)(s[j] - '0');
			if (j < len && s[j] == ';' && v > 0 && v < 128 && j > i + 2) {
				out[o++] = (char)v;
				i = j + 1;
				continue;
			}
		}
		return -1;
	}
	out[o] = 0;
	return (int)o;
}

int hl_s3_parse_time(const char *t, size_t len, int64_t *ms)
{
	/* ISO 8601 as S3 writes it: 2026-12-05T20:42:25.000Z (fraction optional, 1 to 9 digits) */
	int f[6] = {0}, at = 0;
	static const struct { int width; char after; } part[6] = {
		{4, '-'}, {2, '-'}, {2, 'T'}, {2, ':'}, {2, ':'}, {2, 0}};
	size_t i = 0;
	for (; at < 6; at++) {
		for (int d = 0; d < part[at].width; d++, i++) {
			if (i >= len || t[i] < '0' || t[i] > '9')
				return HL_CORRUPT;
			f[at] = f[at] * 10 + (t[i] - '0');
		}
		if (part[at].after && (i >= len || t[i++] != part[at].after))
			return HL_CORRUPT;
	}
	int64_t frac = 0, scale = 1000;
	if (i < len && t[i] == '.') {
		size_t d = 0;
		for (i++; i < len && t[i] >= '0' && t[i] <= '9'; i++, d++)
			if (d < 3)
				frac = frac * 10 + (t[i] - '0'), scale /= 10;
		if (d == 0 || d > 9)
			return HL_CORRUPT;
	}
	if (i + 1 != len || t[i] != 'Z' || f[0] < 1970 || f[1] < 1 || f[1] > 12 || f[2] < 1 || f[2] > 31 ||
	    f[3] > 23 || f[4] > 59 || f[5] > 60)
		return HL_CORRUPT;
	/* days from the civil date (Howard Hinnant's algorithm), no time zone involved */
	int y = f[0] - (f[1] <= 2), m = f[1];
	int64_t era = y / 400, yoe = y - era * 400, doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + f[2] - 1;
	int64_t days = era * 146097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719468;
	*ms = ((days * 24 + f[3]) * 60 + f[4]) * 60000 + f[5] * 1000 + frac * scale;
	return 0;
}

typedef struct skip_ctx {
	size_t skip; /* the bucket prefix's length */
	hl_s3_key_fn fn;
	void *ctx;
} skip_ctx;

static int skip_prefix(const hl_s3_entry *e, void *arg)
{
	skip_ctx *c = arg;
	if (e->len < c->skip)
		return 0;
	hl_s3_entry in = *e;
	in.key += c->skip;
	in.len -= c->skip;
	return c->fn(&in, c->ctx);
}

int hl_s3_parse_list(const char *body, size_t len, hl_s3_key_fn fn, void *ctx, int *truncated,
                     char *token, size_t token_cap)
{
	const char *end = body + len;
	*truncated = 0;
	if (!body || !memmem(body, len, "<ListBucketResult", 17))
		return HL_CORRUPT;
	size_t el, kl_raw, sl, ml;
	const char *p = body;
	char key[1100];
	for (const char *c; (c = element(p, end, "Contents", &el)) != NULL; p = c + el) {
		const char *k = element(c, c + el, "Key", &kl_raw), *sz = element(c, c + el, "Size", &sl);
		const char *mt = element(c, c + el, "LastModified", &ml);
		if (!k)
			return HL_CORRUPT;
		int kl = unescape_xml(k, kl_raw, key, sizeof key);
		uint64_t size = 0;
		int64_t mtime = 0;
		if (kl < 0 || (sz && hl_dec_u64(sz, sl, &size)) || (mt && hl_s3_parse_time(mt, ml, &mtime)))
			return HL_CORRUPT;
		hl_s3_entry e = {key, (size_t)kl, size, mtime};
		int err = fn(&e, ctx);
		if (err)
			return err;
	}
	const char *t = element(body, end, "IsTruncated", &el);
	if (t && el == 4 && !memcmp(t, "true", 4)) {
		const char *tok = element(body, end, "NextContinuationToken", &el);
		if (!tok || unescape_xml(tok, el, token, token_cap) <= 0)
			return HL_CORRUPT;
		*truncated = 1;
	}
	return 0;
}

/* Calls fn for every key under <prefix><under> (the part after <prefix>, and its size), in key
 * order, one ListObjectsV2 page at a time. */
int hl_s3i_list_keys(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx)
{
	char want[1200], esc[3 * sizeof want], token[1024] = "", etok[3 * sizeof token], url[URL_MAX + 8192];
	if (snprintf(want, sizeof want, "%s%s", s->raw_prefix, under) >= (int)sizeof want ||
	    hl_http_escape(want, 0, esc, sizeof esc))
		return HL_INVALID;
	skip_ctx sk = {strlen(s->raw_prefix), fn, ctx};
	int err = 0, truncated = 1;
	while (!err && truncated) {
		if (hl_http_escape(token, 0, etok, sizeof etok))
			return HL_INVALID;
		/* query parameters in sorted order (the signature's canonical form) */
		snprintf(url, sizeof url, "%s?%s%s%slist-type=2&prefix=%s", s->base, *token ? "continuation-token=" : "",
		         etok, *token ? "&" : "", esc);
		hl_http_resp r;
		if ((err = hl_s3i_do_req(s, "GET", url, NULL, NULL, 0, 0, &r)) != 0)
			break;
		if (r.status != 200)
			err = hl_s3i_status_err("list", r.status);
		else
			err = hl_s3_parse_list(r.body ? (const char *)r.body->data : NULL, r.body ? r.body->len : 0,
			                       skip_prefix, &sk, &truncated, token, sizeof token);
		hl_http_resp_clear(&r);
	}
	return err;
}

typedef struct list_ctx {
	char (*names)[HL_REF_MAX + 1];
	size_t n, cap;
} list_ctx;

static int collect_name(const hl_s3_entry *e, void *arg)
{
	const char *key = e->key;
	size_t len = e->len;
	list_ctx *c = arg;
	if (len <= 5 || len - 5 > HL_REF_MAX) /* "refs/<name>" */
		return 0;
	void *p = hl_grow(c->names, c->n, &c->cap, sizeof(*c->names), 64);
	if (!p)
		return ENOMEM;
	c->names = p;
	memcpy(c->names[c->n], key + 5, len - 5);
	c->names[c->n++][len - 5] = 0;
	return 0;
}

int hl_s3_ref_list(hl_s3 *s, const char *prefix, hl_ref_fn fn, void *ctx)
{
	char under[HL_REF_MAX + 8];
	if (snprintf(under, sizeof under, "refs/%s", prefix ? prefix : "") >= (int)sizeof under)
		return HL_INVALID;
	list_ctx c = {NULL, 0, 0};
	int err = hl_s3i_list_keys(s, under, collect_name, &c);
	for (size_t i = 0; !err && i < c.n; i++) { /* listed in key order: byte order of the names */
		hl_id id;
		int e = hl_s3_ref_get(s, c.names[i], &id);
		if (e == HL_NOTFOUND)
			continue; /* a tombstone, or deleted since the listing */
		err = e ? e : fn(c.names[i], &id, ctx);
	}
	free(c.names);
	return err;
}
