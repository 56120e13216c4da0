/* s3.c — the S3-compatible durable tier: the client (URLs, requests, the probe at open), objects
 * and refs by conditional PUT (see s3.h). Names kept as pointer objects are s3_names.c; control
 * keys and listings s3_list.c; s3_int.h is what the three share. */
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
#include "remote/s3_int.h"
#include "base/alloc.h"

/* `<prefix>/<dir>/<ab>/<id>`: an object (dir "blobs") or a large-blob map entry ("large"). */
int hl_s3i_url_id(const hl_s3 *s, const char *dir, const hl_id *id, char *out)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	int n = snprintf(out, URL_MAX, "%s/%s%s/%.2s/%s", s->base, s->prefix, dir, hex, hex);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

int hl_s3i_url_blob(const hl_s3 *s, const hl_id *id, char *out)
{
	return hl_s3i_url_id(s, "blobs", id, out);
}

static int url_ref(const hl_s3 *s, const char *name, char *out)
{
	char esc[3 * HL_REF_MAX + 1];
	if (hl_http_escape(name, 1, esc, sizeof esc))
		return HL_INVALID;
	int n = snprintf(out, URL_MAX, "%s/%srefs/%s", s->base, s->prefix, esc);
	return n > 0 && n < URL_MAX ? 0 : HL_INVALID;
}

int hl_s3i_status_err(const char *what, long st)
{
	return hl_http_status_err("s3", what, st);
}

int hl_s3i_do_req3(hl_s3 *s, const char *method, const char *url, const char *h1, const char *h2,
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

int hl_s3i_do_req(hl_s3 *s, const char *method, const char *url, const char *h1, const void *body,
                  size_t len, int not_idempotent, hl_http_resp *r)
{
	return hl_s3i_do_req3(s, method, url, h1, NULL, NULL, body, len, not_idempotent, r);
}

void hl_s3i_encode_object(const void *data, size_t len, encoded *e)
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
		if ((err = hl_s3i_do_req(s, "PUT", url, "If-None-Match: *", "probe", 5, 1, &r)) != 0)
			break;
		hl_http_resp_clear(&r);
		if (i == 0 && r.status != 200)
			err = hl_s3i_status_err("probe put", r.status);
		else if (i == 1)
			*conditional = r.status == 412;
	}
	if (!hl_s3i_do_req(s, "DELETE", url, NULL, NULL, 0, 0, &r))
		hl_http_resp_clear(&r);
	return err;
}

/* Checks the bucket once it can be reached: it exists, the credentials work, and whether it
 * honours conditional writes. */
int hl_s3i_probe(hl_s3 *s)
{
	if (atomic_load(&s->probed))
		return 0;
	hl_http_resp r;
	int err = hl_s3i_do_req(s, "HEAD", s->base, NULL, NULL, 0, 0, &r), conditional = 0;
	if (!err) {
		if (r.status == 404)
			err = HL_NOTFOUND;
		else if (r.status != 200)
			err = hl_s3i_status_err("bucket", r.status);
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
	if (!err && (err = hl_s3i_probe(s)) == HL_UNAVAILABLE) {
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
	return hl_s3i_probe(s) == 0 && atomic_load(&s->conditional);
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
	int err = hl_s3i_url_blob(s, id, url);
	if (err || (err = hl_s3i_do_req(s, "GET", url, NULL, NULL, 0, 0, &r)) != 0)
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
	int err = hl_s3i_url_blob(s, id, url);
	if (created)
		*created = 0;
	if (!err)
		err = hl_s3i_probe(s);
	int conditional = atomic_load(&s->conditional);
	if (!err && !conditional) { /* look first: an existing object is never rewritten */
		if ((err = hl_s3_has(s, id)) != HL_NOTFOUND)
			return err;
		err = 0;
	}
	encoded e;
	hl_s3i_encode_object(data, len, &e);
	/* 409: a concurrent conditional write of the same key (S3 asks to retry) */
	for (int tries = 0; !err; tries++) {
		if ((err = hl_s3i_do_req3(s, "PUT", url, conditional ? "If-None-Match: *" : NULL, e.enc ? e.encoding : NULL,
		                   e.enc ? e.size : NULL, e.body, e.len, 0, &r)) != 0)
			break;
		hl_http_resp_clear(&r);
		if (r.status == 409 && tries < 4)
			continue;
		if (r.status == 200 || r.status == 201) {
			if (created)
				*created = 1;
		} else if (r.status != 412) {
			err = hl_s3i_status_err("put", r.status);
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
	int err = hl_s3i_do_req(s, "GET", url, NULL, NULL, 0, 0, &r);
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
		err = hl_s3i_status_err("ref get", r.status);
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
		err = hl_s3i_probe(s);
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
		if ((err = hl_s3i_do_req(s, "PUT", url, cond, body, (size_t)blen, 1, &r)) != 0)
			return err;
		hl_http_resp_clear(&r);
		if (r.status == 200 || r.status == 201)
			return 0;
		if (r.status != 412 && r.status != 409 && r.status != 404)
			return hl_s3i_status_err("ref put", r.status);
		/* lost a race: look again */
	}
	return HL_CONFLICT;
}
