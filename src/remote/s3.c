/* s3.c — the S3-compatible durable tier: objects, refs by conditional PUT, listing (see s3.h). */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <zstd.h>
#include "base/buf.h"
#include "base/dec.h"
#include "base/grow.h"
#include "base/log.h"
#include "remote/s3.h"
#include "base/alloc.h"

#define URL_MAX 2048
#define REF_BODY_MAX 256
#define CAS_TRIES 16

struct hl_s3 {
	hl_http *http;
	char base[URL_MAX / 2]; /* endpoint/bucket */
	char prefix[256];       /* "" or "prefix/" (escaped) */
	char raw_prefix[256];   /* the same, not escaped (keys in listings) */
	atomic_int probed;      /* the bucket was reached once: existence, credentials, conditional writes */
	atomic_int conditional;
};

/* `<prefix>/<dir>/<ab>/<id>`: an object (dir "blobs") or a large-blob map entry ("large"). */
static int url_id(const hl_s3 *s, const char *dir, const hl_id *id, char *out)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	int n = snprintf(out, URL_MAX, "%s/%s%s/%.2s/%s", s->base, s->prefix, dir, hex, hex);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

static int url_blob(const hl_s3 *s, const hl_id *id, char *out)
{
	return url_id(s, "blobs", id, out);
}

static int url_ref(const hl_s3 *s, const char *name, char *out)
{
	char esc[3 * HL_REF_MAX + 1];
	if (hl_http_escape(name, 1, esc, sizeof esc))
		return HL_INVALID;
	int n = snprintf(out, URL_MAX, "%s/%srefs/%s", s->base, s->prefix, esc);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

static int status_err(const char *what, long st)
{
	return hl_http_status_err("s3", what, st);
}

static int do_req3(hl_s3 *s, const char *method, const char *url, const char *h1, const char *h2,
                   const char *h3, const void *body, size_t len, int not_idempotent, hl_http_resp *r)
{
	const char *hs[3] = {h1, h2, h3};
	hl_http_req rq = {.method = method, .url = url, .body = body, .body_len = len,
	                  .not_idempotent = not_idempotent, .max_response = UINT64_C(8) << 30};
	for (size_t i = 0, n = 0; i < 3; i++) /* present ones first: the list ends at a NULL */
		if (hs[i])
			rq.headers[n++] = hs[i];
	return hl_http_do(s->http, &rq, r);
}

static int do_req(hl_s3 *s, const char *method, const char *url, const char *h1, const void *body,
                  size_t len, int not_idempotent, hl_http_resp *r)
{
	return do_req3(s, method, url, h1, NULL, NULL, body, len, not_idempotent, r);
}

/* An object's body as the bucket keeps it: a zstd frame (level 3) when that saves an eighth or
 * more (Content-Encoding: zstd, the size before encoding in X-Amz-Meta-Helios-Size), else the
 * bytes themselves. *enc is malloc'd (free it) or NULL. */
typedef struct encoded {
	const void *body;
	size_t len;
	void *enc;
	char encoding[32], size[64];
} encoded;

static void encode_object(const void *data, size_t len, encoded *e)
{
	*e = (encoded){.body = data, .len = len};
	if (len < 512)
		return;
	size_t cap = ZSTD_compressBound(len);
	void *z = hl_malloc(cap);
	size_t n = z ? ZSTD_compress(z, cap, data, len, 3) : 0;
	if (!z || ZSTD_isError(n) || n > len - len / 8) {
		free(z);
		return;
	}
	e->body = e->enc = z;
	e->len = n;
	snprintf(e->encoding, sizeof e->encoding, "Content-Encoding: zstd");
	snprintf(e->size, sizeof e->size, "X-Amz-Meta-Helios-Size: %zu", len);
}

static void random_hex(char *out, size_t bytes)
{
	unsigned char r[32];
	if (bytes > sizeof r)
		bytes = sizeof r;
	if (getrandom(r, bytes, 0) != (ssize_t)bytes) { /* never expected; still unique enough */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		for (size_t i = 0; i < bytes; i++)
			r[i] = (unsigned char)((uint64_t)ts.tv_nsec >> (i % 8 * 8) ^ (uint64_t)(uintptr_t)out >> i);
	}
	for (size_t i = 0; i < bytes; i++)
		sprintf(out + 2 * i, "%02x", r[i]);
}

/* Does the bucket refuse a second `If-None-Match: *` put of one key? */
static int probe_conditional(hl_s3 *s, int *conditional)
{
	char url[URL_MAX], key[33];
	random_hex(key, 16);
	snprintf(url, sizeof url, "%s/%sprobe/%s", s->base, s->prefix, key);
	hl_http_resp r;
	int err = 0;
	for (int i = 0; i < 2 && !err; i++) {
		if ((err = do_req(s, "PUT", url, "If-None-Match: *", "probe", 5, 1, &r)) != 0)
			break;
		hl_http_resp_clear(&r);
		if (i == 0 && r.status != 200)
			err = status_err("probe put", r.status);
		else if (i == 1)
			*conditional = r.status == 412;
	}
	if (!do_req(s, "DELETE", url, NULL, NULL, 0, 0, &r))
		hl_http_resp_clear(&r);
	return err;
}

/* Checks the bucket once it can be reached: it exists, the credentials work, and whether it
 * honours conditional writes. */
static int probe(hl_s3 *s)
{
	if (atomic_load(&s->probed))
		return 0;
	hl_http_resp r;
	int err = do_req(s, "HEAD", s->base, NULL, NULL, 0, 0, &r), conditional = 0;
	if (!err) {
		if (r.status == 404)
			err = HL_NOTFOUND;
		else if (r.status != 200)
			err = status_err("bucket", r.status);
		hl_http_resp_clear(&r);
	}
	if (!err)
		err = probe_conditional(s, &conditional);
	if (err)
		return err;
	atomic_store(&s->conditional, conditional);
	if (!conditional)
		hl_log(HL_LOG_WARN, "s3: bucket %s does not honour conditional writes: objects are stored, "
		       "ref updates are refused", s->base);
	atomic_store(&s->probed, 1);
	return 0;
}

int hl_s3_open(const hl_s3_config *cfg, hl_s3 **out)
{
	*out = NULL;
	if (!cfg->endpoint || !cfg->bucket || !*cfg->bucket || strchr(cfg->bucket, '/') ||
	    (strncmp(cfg->endpoint, "http://", 7) && strncmp(cfg->endpoint, "https://", 8)))
		return HL_INVALID;
	const char *prefix = cfg->prefix ? cfg->prefix : "";
	size_t pl = strlen(prefix);
	if (pl && (prefix[0] == '/' || prefix[pl - 1] == '/'))
		return HL_INVALID;
	hl_s3 *s = hl_calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	size_t el = strlen(cfg->endpoint);
	while (el && cfg->endpoint[el - 1] == '/')
		el--;
	char esc[sizeof s->prefix - 1];
	int n = snprintf(s->base, sizeof s->base, "%.*s/%s", (int)el, cfg->endpoint, cfg->bucket);
	int bad = n <= 0 || (size_t)n >= sizeof s->base || pl + 2 > sizeof s->raw_prefix ||
	          hl_http_escape(prefix, 1, esc, sizeof esc);
	if (!bad) {
		snprintf(s->prefix, sizeof s->prefix, "%s%s", esc, pl ? "/" : "");
		snprintf(s->raw_prefix, sizeof s->raw_prefix, "%s%s", prefix, pl ? "/" : "");
	}
	char sigv4[128];
	snprintf(sigv4, sizeof sigv4, "aws:amz:%s:s3", cfg->region && *cfg->region ? cfg->region : "us-east-1");
	hl_http_config hc = cfg->http;
	hc.sigv4 = sigv4;
	hc.access_key = cfg->access_key;
	hc.secret_key = cfg->secret_key;
	int err = bad ? HL_INVALID : hl_http_new(&hc, &s->http);
	if (!err && (err = probe(s)) == HL_UNAVAILABLE) {
		/* a node restarting during an outage still serves its caches; checked on first use */
		hl_log(HL_LOG_WARN, "s3: bucket %s unreachable; serving from the caches until it is back", s->base);
		err = 0;
	}
	if (err) {
		hl_s3_close(s);
		return err;
	}
	*out = s;
	return 0;
}

void hl_s3_close(hl_s3 *s)
{
	if (!s)
		return;
	hl_http_free(s->http);
	free(s);
}

int hl_s3_conditional_writes(hl_s3 *s)
{
	return probe(s) == 0 && atomic_load(&s->conditional);
}

void hl_s3_stats_get(hl_s3 *s, hl_http_stats *out)
{
	hl_http_stats_get(s->http, out);
}

/* ---- objects ---- */

int hl_s3_get(hl_s3 *s, const hl_id *id, hl_buf **out)
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = url_blob(s, id, url);
	if (err || (err = do_req(s, "GET", url, NULL, NULL, 0, 0, &r)) != 0)
		return err;
	return hl_http_object("s3", id, &r, out);
}

int hl_s3_has(hl_s3 *s, const hl_id *id)
{
	uint64_t size;
	return hl_s3_blob_stat(s, id, &size);
}

int hl_s3_put(hl_s3 *s, const hl_id *id, const void *data, size_t len, int *created)
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = url_blob(s, id, url);
	if (created)
		*created = 0;
	if (!err)
		err = probe(s);
	int conditional = atomic_load(&s->conditional);
	if (!err && !conditional) { /* look first: an existing object is never rewritten */
		if ((err = hl_s3_has(s, id)) != HL_NOTFOUND)
			return err;
		err = 0;
	}
	encoded e;
	encode_object(data, len, &e);
	/* 409: a concurrent conditional write of the same key (S3 asks to retry) */
	for (int tries = 0; !err; tries++) {
		if ((err = do_req3(s, "PUT", url, conditional ? "If-None-Match: *" : NULL, e.enc ? e.encoding : NULL,
		                   e.enc ? e.size : NULL, e.body, e.len, 0, &r)) != 0)
			break;
		hl_http_resp_clear(&r);
		if (r.status == 409 && tries < 4)
			continue;
		if (r.status == 200 || r.status == 201) {
			if (created)
				*created = 1;
		} else if (r.status != 412) {
			err = status_err("put", r.status);
		}
		break;
	}
	free(e.enc);
	return err;
}

/* ---- refs ---- */

typedef struct ref_state {
	int exists;        /* a key is there (maybe a tombstone) */
	int live;          /* it names an object */
	hl_id id;
	char etag[96];
	char body[REF_BODY_MAX];
} ref_state;

int hl_s3_parse_ref(const uint8_t *b, size_t len, int *live, hl_id *id)
{
	*live = 0;
	if (len >= 2 && b[0] == '-' && b[1] == '\n')
		return 0;
	if (len < HL_ID_HEX_LEN + 1 || b[HL_ID_HEX_LEN] != '\n' || hl_id_parse((const char *)b, HL_ID_HEX_LEN, id))
		return HL_CORRUPT;
	*live = 1;
	return 0;
}

static int read_ref(hl_s3 *s, const char *url, ref_state *st)
{
	hl_http_resp r;
	memset(st, 0, sizeof(*st));
	int err = do_req(s, "GET", url, NULL, NULL, 0, 0, &r);
	if (err)
		return err;
	if (r.status == 200) {
		st->exists = 1;
		snprintf(st->etag, sizeof st->etag, "%s", r.etag);
		size_t len = r.body ? r.body->len : 0;
		if (len >= sizeof st->body || hl_s3_parse_ref(r.body ? r.body->data : NULL, len, &st->live, &st->id))
			err = HL_CORRUPT;
		else if (len)
			memcpy(st->body, r.body->data, len);
	} else if (r.status != 404) {
		err = status_err("ref get", r.status);
	}
	hl_http_resp_clear(&r);
	return err;
}

int hl_s3_ref_get(hl_s3 *s, const char *name, hl_id *out)
{
	char url[URL_MAX];
	ref_state st;
	int err = url_ref(s, name, url);
	if (err || (err = read_ref(s, url, &st)) != 0)
		return err;
	if (!st.live)
		return HL_NOTFOUND;
	*out = st.id;
	return 0;
}

int hl_s3_ref_set(hl_s3 *s, const char *name, const hl_id *expect, const hl_id *target, int force)
{
	char url[URL_MAX];
	int err = url_ref(s, name, url);
	if (!err)
		err = probe(s);
	if (err)
		return err;
	if (!atomic_load(&s->conditional)) {
		hl_log(HL_LOG_ERROR, "s3: ref %s not changed: the bucket does not honour conditional writes, "
		       "so an update could silently undo another node's", name);
		return HL_INVALID;
	}
	char body[REF_BODY_MAX];
	int blen;
	if (target) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(target, hex);
		blen = snprintf(body, sizeof body, "%s\n", hex);
	} else {
		blen = snprintf(body, sizeof body, "-\n");
	}
	random_hex(body + blen, 16);
	blen += 32;
	body[blen++] = '\n';
	body[blen] = 0;
	for (int tries = 0; tries < CAS_TRIES; tries++) {
		ref_state st;
		if ((err = read_ref(s, url, &st)) != 0)
			return err;
		if (tries && !strcmp(st.body, body))
			return 0; /* ours landed (a resent request, or an answer that was lost) */
		if (!force && (expect ? !st.live || !hl_id_equal(&st.id, expect) : st.live))
			return HL_CONFLICT;
		if (!target && !st.live)
			return HL_NOTFOUND;
		char cond[128];
		snprintf(cond, sizeof cond, st.exists ? "If-Match: %s" : "If-None-Match: *", st.etag);
		hl_http_resp r;
		if ((err = do_req(s, "PUT", url, cond, body, (size_t)blen, 1, &r)) != 0)
			return err;
		hl_http_resp_clear(&r);
		if (r.status == 200 || r.status == 201)
			return 0;
		if (r.status != 412 && r.status != 409 && r.status != 404)
			return status_err("ref put", r.status);
		/* lost a race: look again */
	}
	return HL_CONFLICT;
}

static int list_keys(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx);

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
	return url_id(s, "large", id, out);
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
static int url_key(const hl_s3 *s, const char *key, char *out)
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
	int err = do_req(s, "GET", url, NULL, NULL, 0, 0, &r);
	if (err)
		return err;
	if (r.status == 404)
		err = HL_NOTFOUND;
	else if (r.status != 200)
		err = status_err("name get", r.status);
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
	int err = probe(s);
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
		if ((err = do_req(s, "PUT", url, cond, body, (size_t)(HL_ID_HEX_LEN + len), 0, &r)) != 0)
			return err;
		hl_http_resp_clear(&r);
		if (r.status == 409 && tries < 4)
			continue;
		if (r.status != 200 && r.status != 201 && !(if_absent && r.status == 412))
			err = status_err("name put", r.status);
		return err;
	}
}

static int delete_key(hl_s3 *s, const char *url)
{
	hl_http_resp r;
	int err = do_req(s, "DELETE", url, NULL, NULL, 0, 0, &r);
	if (err)
		return err;
	hl_http_resp_clear(&r);
	return r.status == 204 || r.status == 200 || r.status == 404 ? 0 : status_err("delete", r.status);
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
	return err ? err : delete_key(s, url);
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
	return list_keys(s, large ? "large/" : "blobs/", each_id, &c);
}

int hl_s3_blob_stat(hl_s3 *s, const hl_id *id, uint64_t *size)
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = url_blob(s, id, url);
	if (err || (err = do_req(s, "HEAD", url, NULL, NULL, 0, 0, &r)) != 0)
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
	int err = url_blob(s, id, url);
	encoded e;
	if (err)
		return err;
	encode_object(data, len, &e);
	err = do_req3(s, "PUT", url, e.enc ? e.encoding : NULL, e.enc ? e.size : NULL, NULL, e.body, e.len, 0, &r);
	free(e.enc);
	if (err)
		return err;
	hl_http_resp_clear(&r);
	return r.status == 200 || r.status == 201 ? 0 : status_err("rewrite", r.status);
}

int hl_s3_blob_delete(hl_s3 *s, const hl_id *id)
{
	char url[URL_MAX];
	int err = url_blob(s, id, url);
	return err ? err : delete_key(s, url);
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
		err = delete_key(s, url);
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
	int err = list_keys(s, under, collect_kv, &c);
	size_t live = 0;
	for (size_t i = 0; !err && i < c.n; i++) { /* each pointer read: its value's id and size */
		char url[URL_MAX];
		if (url_key(s, c.rows[i].key, url))
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

/* ---- control objects: the collection protocol's state, lists and claims (under gc/) ---- */


int hl_s3_key_get(hl_s3 *s, const char *key, hl_buf **body, char etag[96])
{
	char url[URL_MAX];
	hl_http_resp r;
	int err = url_key(s, key, url);
	if (err || (err = do_req(s, "GET", url, NULL, NULL, 0, 0, &r)) != 0)
		return err;
	if (r.status == 200) {
		if (etag)
			snprintf(etag, 96, "%s", r.etag);
		*body = r.body ? r.body : hl_buf_alloc(0);
		r.body = NULL;
		err = *body ? 0 : ENOMEM;
	} else {
		err = r.status == 404 ? HL_NOTFOUND : status_err("get", r.status);
	}
	hl_http_resp_clear(&r);
	return err;
}

int hl_s3_key_put(hl_s3 *s, const char *key, const void *body, size_t len, const char *cond,
                  char etag[96])
{
	char url[URL_MAX], h[128];
	hl_http_resp r;
	int err = url_key(s, key, url);
	if (!err && cond && !atomic_load(&s->conditional) && (err = probe(s)) == 0 && !atomic_load(&s->conditional))
		err = HL_INVALID; /* a conditional write the bucket would not honour */
	if (err)
		return err;
	if (cond)
		snprintf(h, sizeof h, !strcmp(cond, "*") ? "If-None-Match: *" : "If-Match: %s", cond);
	if ((err = do_req(s, "PUT", url, cond ? h : NULL, body, len, cond != NULL, &r)) != 0)
		return err;
	if (r.status == 200 || r.status == 201) {
		if (etag)
			snprintf(etag, 96, "%s", r.etag);
	} else {
		err = r.status == 412 || r.status == 409 || (cond && r.status == 404) ? HL_CONFLICT
		                                                                       : status_err("put", r.status);
	}
	hl_http_resp_clear(&r);
	return err;
}

int hl_s3_key_delete(hl_s3 *s, const char *key)
{
	char url[URL_MAX];
	int err = url_key(s, key, url);
	return err ? err : delete_key(s, url);
}

int hl_s3_key_list(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx)
{
	return list_keys(s, under, fn, ctx);
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
static int list_keys(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx)
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
		if ((err = do_req(s, "GET", url, NULL, NULL, 0, 0, &r)) != 0)
			break;
		if (r.status != 200)
			err = status_err("list", r.status);
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
	int err = list_keys(s, under, collect_name, &c);
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
