/* hremote.c — another helios server as the durable tier (see hremote.h). */
#include <errno.h>
#include <stddef.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/buf.h"
#include "base/log.h"
#include "remote/hremote.h"
#include "base/alloc.h"

#define URL_MAX 2048
#define BATCH_BYTES (8u << 20) /* one /v1/batch body at most (the server takes 64 MiB) */

struct hl_hremote {
	hl_http *http;
	char base[URL_MAX / 2];
};

static int status_err(const char *what, long st)
{
	return hl_http_status_err("helios remote", what, st);
}

static int req(hl_hremote *r, const char *method, const char *url, const char *h1, const char *h2,
               const void *body, size_t len, int not_idempotent, hl_http_resp *out)
{
	hl_http_req rq = {.method = method, .url = url, .headers = {h1, h2}, .body = body, .body_len = len,
	                  .not_idempotent = not_idempotent, .max_response = UINT64_C(8) << 30};
	return hl_http_do(r->http, &rq, out);
}

int hl_hremote_open(const hl_hremote_config *cfg, hl_hremote **out)
{
	*out = NULL;
	if (!cfg->url || (strncmp(cfg->url, "http://", 7) && strncmp(cfg->url, "https://", 8)))
		return HL_INVALID;
	hl_hremote *r = hl_calloc(1, sizeof(*r));
	if (!r)
		return ENOMEM;
	size_t n = strlen(cfg->url);
	while (n && cfg->url[n - 1] == '/')
		n--;
	hl_http_config hc = cfg->http;
	hc.bearer = cfg->token && *cfg->token ? cfg->token : NULL;
	int err = n >= sizeof r->base ? HL_INVALID : hl_http_new(&hc, &r->http);
	if (!err) {
		memcpy(r->base, cfg->url, n);
		char url[URL_MAX];
		snprintf(url, sizeof url, "%s/v1/refs?prefix=%%2E", r->base); /* needs the read scope */
		hl_http_resp resp;
		if ((err = req(r, "GET", url, NULL, NULL, NULL, 0, 0, &resp)) == 0) {
			hl_http_resp_clear(&resp);
			if (resp.status != 200)
				err = status_err("open", resp.status);
		} else if (err == HL_UNAVAILABLE) {
			hl_log(HL_LOG_WARN, "helios remote %s unreachable; serving from the caches until it is back", r->base);
			err = 0;
		}
	}
	if (err) {
		hl_hremote_close(r);
		return err;
	}
	*out = r;
	return 0;
}

void hl_hremote_stats_get(hl_hremote *r, hl_http_stats *out)
{
	hl_http_stats_get(r->http, out);
}

void hl_hremote_close(hl_hremote *r)
{
	if (!r)
		return;
	hl_http_free(r->http);
	free(r);
}

static void blob_url(const hl_hremote *r, const hl_id *id, char *url)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	snprintf(url, URL_MAX, "%s/v1/blobs/%s", r->base, hex);
}

int hl_hremote_get(hl_hremote *r, const hl_id *id, hl_buf **out)
{
	char url[URL_MAX];
	blob_url(r, id, url);
	hl_http_resp resp;
	int err = req(r, "GET", url, NULL, NULL, NULL, 0, 0, &resp);
	return err ? err : hl_http_object("helios remote", id, &resp, out);
}

int hl_hremote_has(hl_hremote *r, const hl_id *id)
{
	uint64_t size;
	return hl_hremote_stat(r, id, &size);
}

int hl_hremote_stat(hl_hremote *r, const hl_id *id, uint64_t *size)
{
	char url[URL_MAX];
	blob_url(r, id, url);
	hl_http_resp resp;
	int err = req(r, "HEAD", url, NULL, NULL, NULL, 0, 0, &resp);
	if (err)
		return err;
	hl_http_resp_clear(&resp);
	if ((err = hl_http_presence("helios remote", &resp)) == 0)
		*size = resp.content_length;
	return err;
}

/* Reads "results": [{"id", "created"}…] of a batch answer into the items' created flags. */
static int batch_results(const hl_buf *body, hl_put_item *items, size_t n)
{
	json_t *j = body ? json_loadb((const char *)body->data, body->len, 0, NULL) : NULL;
	json_t *res = json_object_get(j, "results");
	int err = json_is_array(res) && json_array_size(res) == n ? 0 : EPROTO;
	for (size_t i = 0; !err && i < n; i++)
		items[i].created = json_is_true(json_object_get(json_array_get(res, i), "created"));
	json_decref(j);
	return err;
}

static int put_one(hl_hremote *r, hl_put_item *it)
{
	char url[URL_MAX];
	blob_url(r, &it->id, url);
	hl_http_resp resp;
	int err = req(r, "PUT", url, NULL, NULL, it->data, it->len, 0, &resp);
	if (err)
		return err;
	hl_http_resp_clear(&resp);
	it->created = resp.status == 201;
	if (resp.status == 422)
		return HL_MISMATCH;
	return resp.status == 200 || resp.status == 201 ? 0 : status_err("put", resp.status);
}

static int post_batch(hl_hremote *r, hl_put_item *items, size_t n)
{
	size_t total = hl_batch_size(items, n), off;
	uint8_t *body = hl_malloc(total ? total : 1);
	char url[URL_MAX];
	if (!body)
		return ENOMEM;
	int err = hl_batch_encode(items, n, body, total, &off);
	if (err) {
		free(body);
		return err;
	}
	snprintf(url, sizeof url, "%s/v1/batch", r->base);
	hl_http_resp resp;
	err = req(r, "POST", url, NULL, NULL, body, off, 0, &resp); /* content-addressed: resending is safe */
	free(body);
	if (err)
		return err;
	if (resp.status == 200)
		err = batch_results(resp.body, items, n);
	else
		err = resp.status == 422 ? HL_MISMATCH : resp.status == 409 ? HL_INCOMPLETE : status_err("batch", resp.status);
	hl_http_resp_clear(&resp);
	return err;
}

int hl_hremote_put_batch(hl_hremote *r, hl_put_item *items, size_t n)
{
	int err = 0;
	size_t i = 0;
	while (!err && i < n) {
		if (items[i].len > BATCH_BYTES) {
			err = put_one(r, &items[i++]);
			continue;
		}
		size_t j = i, bytes = 0;
		while (j < n && items[j].len <= BATCH_BYTES && bytes + items[j].len <= BATCH_BYTES)
			bytes += items[j++].len;
		err = post_batch(r, items + i, j - i);
		i = j;
	}
	return err;
}

typedef struct asked {
	hl_id id;
	size_t at;
} asked;

static int cmp_asked(const void *a, const void *b)
{
	return memcmp(((const asked *)a)->id.b, ((const asked *)b)->id.b, HL_ID_LEN);
}

/* Marks in missing[i] (1) each of ids[0..n) the server does not have (POST /v1/missing). */
int hl_hremote_missing(hl_hremote *r, const hl_id *ids, size_t n, uint8_t *missing)
{
	json_t *arr = json_array(), *q = arr ? json_pack("{s:o}", "ids", arr) : NULL;
	char hex[HL_ID_HEX_LEN + 1], url[URL_MAX];
	for (size_t i = 0; q && i < n; i++) {
		hl_id_format(&ids[i], hex);
		if (json_array_append_new(arr, json_string(hex))) {
			json_decref(q);
			q = NULL;
		}
	}
	char *text = q ? json_dumps(q, JSON_COMPACT) : NULL;
	json_decref(q);
	if (!text)
		return ENOMEM;
	snprintf(url, sizeof url, "%s/v1/missing", r->base);
	hl_http_resp resp;
	int err = req(r, "POST", url, "Content-Type: application/json", NULL, text, strlen(text), 0, &resp);
	free(text);
	if (err)
		return err;
	if (resp.status != 200) {
		err = status_err("missing", resp.status);
		hl_http_resp_clear(&resp);
		return err;
	}
	json_t *j = resp.body ? json_loadb((const char *)resp.body->data, resp.body->len, 0, NULL) : NULL;
	json_t *m = json_object_get(j, "missing"), *x;
	hl_http_resp_clear(&resp);
	memset(missing, 0, n);
	asked *by_id = hl_malloc((n ? n : 1) * sizeof(*by_id));
	err = !by_id ? ENOMEM : json_is_array(m) ? 0 : EPROTO;
	for (size_t i = 0; by_id && i < n; i++)
		by_id[i] = (asked){ids[i], i};
	if (by_id)
		qsort(by_id, n, sizeof(*by_id), cmp_asked);
	size_t k;
	json_array_foreach(m, k, x) {
		const char *h = json_string_value(x);
		asked key;
		if (err || !h || hl_id_parse(h, strlen(h), &key.id)) {
			err = err ? err : EPROTO;
			break;
		}
		const asked *hit = bsearch(&key, by_id, n, sizeof(*by_id), cmp_asked);
		if (!hit) {
			err = EPROTO; /* an id not asked about */
			break;
		}
		missing[hit->at] = 1;
	}
	free(by_id);
	if (err == EPROTO)
		hl_log(HL_LOG_ERROR, "helios remote: the answer to /v1/missing is not {\"missing\": [<ids asked>]}");
	json_decref(j);
	return err;
}

/* ---- refs ---- */

static int ref_url(const hl_hremote *r, const char *name, char *url)
{
	int n = snprintf(url, URL_MAX, "%s/v1/refs/%s", r->base, name);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

/* GET url, answered by a JSON object whose "id" is taken: 0, or the status's meaning. */
static int get_id(hl_hremote *r, const char *url, const char *what, hl_id *out)
{
	hl_http_resp resp;
	int err = req(r, "GET", url, NULL, NULL, NULL, 0, 0, &resp);
	if (err)
		return err;
	if (resp.status == 200) {
		json_t *j = resp.body ? json_loadb((const char *)resp.body->data, resp.body->len, 0, NULL) : NULL;
		const char *hex = json_string_value(json_object_get(j, "id"));
		err = hex && strlen(hex) == HL_ID_HEX_LEN && !hl_id_parse(hex, HL_ID_HEX_LEN, out) ? 0 : EPROTO;
		json_decref(j);
	} else {
		err = resp.status == 404 ? HL_NOTFOUND : resp.status == 400 ? HL_INVALID :
		      resp.status == 410 ? HL_FORGOTTEN : status_err(what, resp.status);
	}
	hl_http_resp_clear(&resp);
	return err;
}

int hl_hremote_ref_get(hl_hremote *r, const char *name, hl_id *out)
{
	char url[URL_MAX];
	int err = ref_url(r, name, url);
	return err ? err : get_id(r, url, "ref get", out);
}

int hl_hremote_commit_id(hl_hremote *r, const char *rev, hl_id *out)
{
	char esc[3 * 512], url[URL_MAX];
	if (strlen(rev) >= 512 || hl_http_escape(rev, 1, esc, sizeof esc))
		return HL_INVALID;
	int n = snprintf(url, sizeof url, "%s/v1/commits/%s", r->base, esc);
	if (n < 0 || n >= (int)sizeof url)
		return HL_INVALID;
	return get_id(r, url, "commit", out);
}

int hl_hremote_ref_set(hl_hremote *r, const char *name, const hl_id *expect, const hl_id *target, int force)
{
	char url[URL_MAX], cond[80], body[100];
	int err = ref_url(r, name, url);
	for (int tries = 0; !err && tries < 16; tries++) {
		hl_id cur;
		const hl_id *want = expect;
		if (force) { /* whatever it holds now: the server's CAS from that */
			int e = hl_hremote_ref_get(r, name, &cur);
			if (e && e != HL_NOTFOUND)
				return e;
			if (e == HL_NOTFOUND && !target)
				return HL_NOTFOUND;
			want = e ? NULL : &cur;
		}
		char hex[HL_ID_HEX_LEN + 1];
		if (want) {
			hl_id_format(want, hex);
			snprintf(cond, sizeof cond, "If-Match: \"%s\"", hex);
		} else {
			snprintf(cond, sizeof cond, "If-None-Match: *");
		}
		if (!target && !want)
			return HL_INVALID;
		hl_http_resp resp;
		if (target) {
			hl_id_format(target, hex);
			int n = snprintf(body, sizeof body, "{\"id\":\"%s\"}", hex);
			err = req(r, "PUT", url, cond, "Content-Type: application/json", body, (size_t)n, 1, &resp);
		} else {
			err = req(r, "DELETE", url, cond, NULL, NULL, 0, 1, &resp);
		}
		if (err)
			return err;
		hl_http_resp_clear(&resp);
		long st = resp.status;
		if (st == 200 || st == 201 || st == 204)
			return 0;
		if (st == 412 && force)
			continue; /* moved between our read and write: read again */
		if (st == 412)
			return HL_CONFLICT;
		if (st == 404)
			return target ? HL_CONFLICT : HL_NOTFOUND;
		if (st == 409)
			return HL_INCOMPLETE;
		return status_err("ref set", st);
	}
	return err ? err : HL_CONFLICT;
}

int hl_hremote_ref_list(hl_hremote *r, const char *prefix, hl_ref_fn fn, void *ctx)
{
	char esc[3 * (HL_REF_MAX + 1)], url[URL_MAX];
	if (hl_http_escape(prefix ? prefix : "", 0, esc, sizeof esc))
		return HL_INVALID;
	snprintf(url, sizeof url, "%s/v1/refs?prefix=%s", r->base, esc);
	hl_http_resp resp;
	int err = req(r, "GET", url, NULL, NULL, NULL, 0, 0, &resp);
	if (err)
		return err;
	if (resp.status != 200) {
		hl_http_resp_clear(&resp);
		return status_err("ref list", resp.status);
	}
	json_t *j = resp.body ? json_loadb((const char *)resp.body->data, resp.body->len, 0, NULL) : NULL;
	hl_http_resp_clear(&resp);
	json_t *refs = json_object_get(j, "refs");
	if (!json_is_array(refs))
		err = EPROTO;
	for (size_t i = 0; !err && i < json_array_size(refs); i++) {
		json_t *e = json_array_get(refs, i);
		const char *name = json_string_value(json_object_get(e, "name"));
		const char *hex = json_string_value(json_object_get(e, "id"));
		hl_id id;
		if (!name || !hex || strlen(hex) != HL_ID_HEX_LEN || hl_id_parse(hex, HL_ID_HEX_LEN, &id))
			err = EPROTO;
		else
			err = fn(name, &id, ctx);
	}
	if (!err && json_is_true(json_object_get(j, "truncated")))
		hl_log(HL_LOG_WARN, "helios remote %s: ref list truncated by the server", r->base);
	json_decref(j);
	return err;
}

/* ---- kv: the server's /kv/{ns}/{key}, whose ETag is the value object's id ---- */

/* The server's route for a key: /bazel/ac/{key} and /bazel/cas/{key} for its two Bazel
 * namespaces, /kv/{ns}/{key} for the others. A key the route would read differently ('/' joins
 * ccache's subdirectory layout; "." and ".." are path segments) or a namespace it cannot carry is
 * HL_INVALID. */
static int kv_url(const hl_hremote *r, const char *ns, const void *key, size_t klen, char *url)
{
	char k[HL_KV_KEY_MAX + 1], esc[3 * HL_KV_KEY_MAX + 1], ens[3 * 64 + 1];
	if (!klen || klen > HL_KV_KEY_MAX || memchr(key, 0, klen) || memchr(key, '/', klen) || strlen(ns) > 64)
		return HL_INVALID;
	memcpy(k, key, klen);
	k[klen] = 0;
	if (!strcmp(k, ".") || !strcmp(k, "..") || hl_http_escape(k, 0, esc, sizeof esc) ||
	    hl_http_escape(ns, 0, ens, sizeof ens))
		return HL_INVALID;
	int n;
	if (!strcmp(ns, "bazel:ac") || !strcmp(ns, "bazel:cas"))
		n = snprintf(url, URL_MAX, "%s/bazel/%s/%s", r->base, ns + 6, esc);
	else if (strchr(ns, ':'))
		return HL_INVALID;
	else
		n = snprintf(url, URL_MAX, "%s/kv/%s/%s", r->base, ens, esc);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

int hl_hremote_kv_get(hl_hremote *r, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size)
{
	char url[URL_MAX];
	hl_http_resp resp;
	int err = kv_url(r, ns, key, klen, url);
	if (err || (err = req(r, "HEAD", url, NULL, NULL, NULL, 0, 0, &resp)) != 0)
		return err;
	hl_http_resp_clear(&resp);
	if ((err = hl_http_presence("helios remote", &resp)) != 0)
		return err;
	size_t el = strlen(resp.etag);
	if (el != HL_ID_HEX_LEN + 2 || resp.etag[0] != '"' || hl_id_parse(resp.etag + 1, HL_ID_HEX_LEN, id))
		return EPROTO; /* a server older than the kv ETag */
	*size = resp.content_length;
	return 0;
}

int hl_hremote_kv_set(hl_hremote *r, const char *ns, const void *key, size_t klen, const hl_id *id)
{
	char url[URL_MAX], hdr[HL_ID_HEX_LEN + 32], hex[HL_ID_HEX_LEN + 1];
	hl_http_resp resp;
	int err = kv_url(r, ns, key, klen, url);
	hl_id_format(id, hex);
	snprintf(hdr, sizeof hdr, "X-Helios-Object: %s", hex);
	if (err || (err = req(r, "PUT", url, hdr, NULL, "", 0, 0, &resp)) != 0)
		return err;
	hl_http_resp_clear(&resp);
	if (resp.status == 200 || resp.status == 201)
		return 0;
	return resp.status == 409 ? HL_INCOMPLETE : resp.status == 413 ? HL_TOOBIG : status_err("kv put", resp.status);
}

int hl_hremote_kv_delete(hl_hremote *r, const char *ns, const void *key, size_t klen)
{
	char url[URL_MAX];
	hl_http_resp resp;
	int err = kv_url(r, ns, key, klen, url);
	if (err || (err = req(r, "DELETE", url, NULL, NULL, NULL, 0, 0, &resp)) != 0)
		return err;
	hl_http_resp_clear(&resp);
	return resp.status == 204 ? 0 : resp.status == 404 ? HL_NOTFOUND : status_err("kv delete", resp.status);
}

int hl_hremote_gc(hl_hremote *r, const hl_gc_options *opt, hl_gc_report *out)
{
	char url[URL_MAX];
	hl_http_resp resp;
	snprintf(url, sizeof url, "%s/v1/admin/gc?dry_run=%d&repack=%d&compact_rate=%llu", r->base,
	         opt->dry_run ? 1 : 0, opt->repack, (unsigned long long)opt->compact_rate);
	int err = req(r, "POST", url, NULL, NULL, "", 0, 1, &resp);
	if (err)
		return err;
	if (resp.status == 200) {
		json_t *j = resp.body ? json_loadb((const char *)resp.body->data, resp.body->len, 0, NULL) : NULL;
		static const struct { const char *name; size_t off; int optional; } f[] = {
			{"objects", offsetof(hl_gc_report, objects), 0},
			{"reachable", offsetof(hl_gc_report, reachable), 0},
			{"young", offsetof(hl_gc_report, young), 0}, {"held", offsetof(hl_gc_report, held), 0},
			{"collected", offsetof(hl_gc_report, collected), 0},
			{"collected_bytes", offsetof(hl_gc_report, collected_bytes), 0},
			{"segments_removed", offsetof(hl_gc_report, segments_removed), 0},
			{"records_moved", offsetof(hl_gc_report, records_moved), 0},
			{"bytes_reclaimed", offsetof(hl_gc_report, bytes_reclaimed), 0},
			/* a server of an older version does not repack, nor say so */
			{"records_repacked", offsetof(hl_gc_report, records_repacked), 1},
			{"repack_bytes_before", offsetof(hl_gc_report, repack_bytes_before), 1},
			{"repack_bytes_after", offsetof(hl_gc_report, repack_bytes_after), 1},
		};
		memset(out, 0, sizeof(*out));
		err = json_is_object(j) ? 0 : EPROTO;
		for (size_t i = 0; !err && i < sizeof f / sizeof f[0]; i++) {
			json_t *v = json_object_get(j, f[i].name);
			if (!v && f[i].optional)
				continue;
			if (!json_is_integer(v) || json_integer_value(v) < 0)
				err = EPROTO;
			else
				*(uint64_t *)((char *)out + f[i].off) = (uint64_t)json_integer_value(v);
		}
		json_decref(j);
	} else {
		err = resp.status == 409 ? HL_BUSY : status_err("gc", resp.status);
	}
	hl_http_resp_clear(&resp);
	return err;
}
