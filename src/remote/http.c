/* http.c — the shared HTTP client of the remote backends: handle pool, retries, circuit breaker
 * (see http.h). */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <zstd.h>
#include "base/buf.h"
#include "base/clock.h"
#include "base/dec.h"
#include "base/log.h"
#include "remote/http.h"
#include "base/alloc.h"

#define POOL_MAX 64

struct hl_http {
	hl_http_config cfg;
	char *sigv4;
	char *userpwd;
	char *bearer_header;
	char *cainfo;
	pthread_mutex_t mu; /* guards the pool and the breaker */
	CURL *pool[POOL_MAX];
	unsigned npool;
	unsigned failures;     /* consecutive failed calls */
	uint64_t open_until;   /* breaker open until this monotonic ns; 0: closed */
	int trial;             /* a trial call is in flight (half-open) */
	atomic_uint_fast64_t requests, retries, failed, opens, rejects;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

static unsigned or_default(unsigned v, unsigned d)
{
	return v ? v : d;
}

int hl_http_new(const hl_http_config *cfg, hl_http **out)
{
	pthread_once(&curl_once, curl_init_once);
	hl_http *h = hl_calloc(1, sizeof(*h));
	if (!h)
		return ENOMEM;
	h->cfg = *cfg;
	h->cfg.connect_timeout_ms = or_default(cfg->connect_timeout_ms, 2000);
	h->cfg.timeout_ms = or_default(cfg->timeout_ms, 30000);
	h->cfg.retries = cfg->retries == 0 ? 3 : cfg->retries;
	h->cfg.backoff_ms = or_default(cfg->backoff_ms, 50);
	h->cfg.breaker_failures = or_default(cfg->breaker_failures, 5);
	h->cfg.breaker_cooldown_ms = or_default(cfg->breaker_cooldown_ms, 2000);
	int bad = 0;
	if (cfg->cainfo && !(h->cainfo = hl_strdup(cfg->cainfo)))
		bad = 1;
	h->cfg.cainfo = NULL; /* only h->cainfo is kept */
	if (cfg->sigv4) {
		h->sigv4 = hl_strdup(cfg->sigv4);
		size_t n = strlen(cfg->access_key ? cfg->access_key : "") + strlen(cfg->secret_key ? cfg->secret_key : "") + 2;
		if ((h->userpwd = hl_malloc(n)) != NULL)
			snprintf(h->userpwd, n, "%s:%s", cfg->access_key ? cfg->access_key : "",
			         cfg->secret_key ? cfg->secret_key : "");
		bad = !h->userpwd || !h->sigv4;
	} else if (cfg->bearer) {
		size_t n = strlen(cfg->bearer) + 32;
		if ((h->bearer_header = hl_malloc(n)) != NULL)
			snprintf(h->bearer_header, n, "Authorization: Bearer %s", cfg->bearer);
		bad = !h->bearer_header;
	}
	if (bad) {
		free(h->cainfo);
		free(h->sigv4);
		free(h->userpwd);
		free(h);
		return ENOMEM;
	}
	/* only the copies above are kept */
	h->cfg.sigv4 = h->cfg.access_key = h->cfg.secret_key = h->cfg.bearer = NULL;
	pthread_mutex_init(&h->mu, NULL);
	*out = h;
	return 0;
}

void hl_http_free(hl_http *h)
{
	if (!h)
		return;
	for (unsigned i = 0; i < h->npool; i++)
		curl_easy_cleanup(h->pool[i]);
	pthread_mutex_destroy(&h->mu);
	if (h->userpwd)
		memset(h->userpwd, 0, strlen(h->userpwd));
	free(h->userpwd);
	free(h->sigv4);
	free(h->bearer_header);
	free(h->cainfo);
	free(h);
}

static CURL *take_handle(hl_http *h)
{
	pthread_mutex_lock(&h->mu);
	CURL *c = h->npool ? h->pool[--h->npool] : NULL;
	pthread_mutex_unlock(&h->mu);
	if (c)
		curl_easy_reset(c); /* options cleared; the connection cache stays */
	else
		c = curl_easy_init();
	return c;
}

static void give_handle(hl_http *h, CURL *c)
{
	pthread_mutex_lock(&h->mu);
	if (h->npool < POOL_MAX) {
		h->pool[h->npool++] = c;
		c = NULL;
	}
	pthread_mutex_unlock(&h->mu);
	if (c)
		curl_easy_cleanup(c);
}

/* ---- the breaker: closed, open (calls refused until open_until), half-open (one trial) ---- */

static int breaker_admit(hl_http *h, int *is_trial)
{
	int ok = 1;
	*is_trial = 0;
	pthread_mutex_lock(&h->mu);
	if (h->open_until) {
		if (hl_now_ns() < h->open_until || h->trial)
			ok = 0;
		else
			h->trial = *is_trial = 1;
	}
	pthread_mutex_unlock(&h->mu);
	if (!ok)
		atomic_fetch_add(&h->rejects, 1);
	return ok;
}

/* The outcome of a call the breaker admitted. Opening (and a failed trial keeping it open) is
 * logged with the failure that did it, and closing again too, so refusals are never silent. */
static void breaker_result(hl_http *h, int failed, int is_trial, const hl_http_req *rq, const char *why)
{
	int opened = 0, closed = 0;
	unsigned failures;
	pthread_mutex_lock(&h->mu);
	if (is_trial)
		h->trial = 0;
	if (!failed) {
		closed = h->open_until != 0;
		h->failures = 0;
		h->open_until = 0;
	} else if (++h->failures >= h->cfg.breaker_failures || is_trial) {
		if ((opened = !h->open_until || is_trial) != 0)
			atomic_fetch_add(&h->opens, 1);
		h->open_until = hl_now_ns() + (uint64_t)h->cfg.breaker_cooldown_ms * 1000000u;
	}
	failures = h->failures;
	pthread_mutex_unlock(&h->mu);
	if (opened)
		hl_log(HL_LOG_WARN, "http: %s: calls refused for %u ms (%u failures in a row; the last: %s %s: %s)",
		       is_trial ? "a trial call failed, the circuit breaker stays open" : "circuit breaker open",
		       h->cfg.breaker_cooldown_ms, failures, rq ? rq->method : "", rq ? rq->url : "", why);
	else if (closed)
		hl_log(HL_LOG_INFO, "http: circuit breaker closed: %s %s succeeded", rq ? rq->method : "",
		       rq ? rq->url : "");
}

/* ---- one transfer ---- */

typedef struct sink {
	hl_http_resp *resp;
	size_t cap, len;
	uint8_t *data;
	uint64_t max;
	int too_big;
} sink;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	sink *s = arg;
	size_t n = size * nmemb;
	if (s->len + n > s->max) {
		s->too_big = 1;
		return 0;
	}
	if (s->len + n > s->cap) {
		size_t cap = s->cap ? s->cap : 16384;
		while (cap < s->len + n)
			cap *= 2;
		uint8_t *d = hl_realloc(s->data, cap);
		if (!d)
			return 0;
		s->data = d, s->cap = cap;
	}
	memcpy(s->data + s->len, p, n);
	s->len += n;
	return n;
}

/* The value of header line p[0..n) when it is "<name>: value", trimmed; NULL otherwise. */
static const char *header_value(const char *p, size_t n, const char *name, size_t *vl)
{
	size_t nl = strlen(name);
	if (n <= nl || strncasecmp(p, name, nl))
		return NULL;
	const char *v = p + nl;
	*vl = n - nl;
	while (*vl && (*v == ' ' || *v == '\t'))
		v++, --*vl;
	while (*vl && (v[*vl - 1] == '\r' || v[*vl - 1] == '\n' || v[*vl - 1] == ' '))
		--*vl;
	return v;
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
	sink *s = arg;
	size_t n = size * nmemb, vl;
	const char *v;
	if ((v = header_value(p, n, "content-encoding:", &vl)) != NULL)
		s->resp->zstd = vl == 4 && !strncasecmp(v, "zstd", 4);
	if ((v = header_value(p, n, "x-amz-meta-helios-size:", &vl)) != NULL)
		s->resp->has_size = hl_dec_u64(v, vl, &s->resp->size) == 0;
	if ((v = header_value(p, n, "etag:", &vl)) != NULL && vl < sizeof s->resp->etag) {
		memcpy(s->resp->etag, v, vl);
		s->resp->etag[vl] = 0;
	}
	return n;
}

static int transient_status(long st)
{
	return st == 429 || st == 500 || st == 502 || st == 503 || st == 504;
}

/* The request may have reached the server (so a non-idempotent one must not be resent). */
static int maybe_sent(CURLcode rc)
{
	return rc != CURLE_COULDNT_CONNECT && rc != CURLE_COULDNT_RESOLVE_HOST &&
	       rc != CURLE_COULDNT_RESOLVE_PROXY;
}

static __thread char last_failure[160];

const char *hl_http_last_failure(void)
{
	return last_failure;
}

/* Remembers why url could not be asked (rc), with a hint where the cause is likely a mix-up. */
static void note_failure(const char *url, CURLcode rc)
{
	const char *hint = "";
	if (rc == CURLE_GOT_NOTHING && !strncmp(url, "http://", 7))
		hint = ": if the server speaks HTTPS, use an https:// URL";
	else if (rc == CURLE_SSL_CONNECT_ERROR && !strncmp(url, "https://", 8))
		hint = ": is it a plain HTTP server (use http://), or older than TLS 1.2?";
	snprintf(last_failure, sizeof last_failure, "%s%s", curl_easy_strerror(rc), hint);
}


static CURLcode send_once(hl_http *h, CURL *c, const hl_http_req *rq, sink *s)
{
	struct curl_slist *hdrs = NULL;
	for (size_t i = 0; i < sizeof rq->headers / sizeof rq->headers[0] && rq->headers[i]; i++)
		hdrs = curl_slist_append(hdrs, rq->headers[i]);
	if (h->bearer_header)
		hdrs = curl_slist_append(hdrs, h->bearer_header);
	/* signed requests: the payload is not part of the signature (objects are verified by their
	 * ids); unsigned ones: no 100-continue round trip (a signed request keeps curl's Expect, which
	 * is added after signing: an emptied header would be signed but not sent) */
	if (h->userpwd)
		hdrs = curl_slist_append(hdrs, "x-amz-content-sha256: UNSIGNED-PAYLOAD");
	else
		hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, rq->url);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, (long)h->cfg.connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)h->cfg.timeout_ms);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, s);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, s);
	if (h->userpwd) {
		curl_easy_setopt(c, CURLOPT_AWS_SIGV4, h->sigv4);
		curl_easy_setopt(c, CURLOPT_USERPWD, h->userpwd);
	}
	if (!strcmp(rq->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (!strcmp(rq->method, "PUT") || !strcmp(rq->method, "POST")) {
		hdrs = curl_slist_append(hdrs, "Content-Type: application/octet-stream");
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, rq->body ? rq->body : "");
		curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)rq->body_len);
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	} else if (strcmp(rq->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, rq->method);
	}
	if (h->cainfo)
		curl_easy_setopt(c, CURLOPT_CAINFO, h->cainfo);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	CURLcode rc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	return rc;
}

static void backoff(const hl_http *h, unsigned attempt)
{
	static _Thread_local uint64_t rng;
	if (!rng)
		rng = hl_now_ns() | 1;
	rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
	uint64_t ms = (uint64_t)h->cfg.backoff_ms << (attempt < 10 ? attempt : 10);
	ms = ms / 2 + rng % (ms / 2 + 1); /* half fixed, half jitter */
	hl_sleep_ms(ms);
}

int hl_http_do(hl_http *h, const hl_http_req *rq, hl_http_resp *resp)
{
	memset(resp, 0, sizeof(*resp));
	int trial;
	if (!breaker_admit(h, &trial))
		return HL_UNAVAILABLE;
	CURL *c = take_handle(h);
	if (!c) {
		breaker_result(h, 0, trial, NULL, "");
		return ENOMEM;
	}
	sink s = {.resp = resp, .max = rq->max_response ? rq->max_response : (UINT64_C(64) << 20)};
	int err = 0;
	char why[96] = "";
	for (unsigned attempt = 0;; attempt++) {
		atomic_fetch_add(&h->requests, 1);
		s.len = 0, s.too_big = 0, resp->etag[0] = 0;
		resp->zstd = resp->has_size = 0, resp->size = 0;
		resp->attempts = attempt + 1;
		CURLcode rc = send_once(h, c, rq, &s);
		long st = 0;
		if (rc == CURLE_OK)
			curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &st);
		int again = rc == CURLE_OK ? transient_status(st) : !(rq->not_idempotent && maybe_sent(rc));
		if (rc == CURLE_WRITE_ERROR && s.too_big) {
			err = HL_TOOBIG;
			break;
		}
		if (rc == CURLE_OUT_OF_MEMORY || (rc == CURLE_WRITE_ERROR && !s.too_big)) {
			err = ENOMEM;
			break;
		}
		if (rc == CURLE_PEER_FAILED_VERIFICATION) { /* no retry makes a certificate trusted */
			note_failure(rq->url, rc);
			err = HL_UNTRUSTED;
			break;
		}
		if (rc != CURLE_OK)
			snprintf(why, sizeof why, "%s", curl_easy_strerror(rc));
		else
			snprintf(why, sizeof why, "status %ld", st);
		if (!again || attempt >= h->cfg.retries || (trial && attempt >= 1)) {
			if (rc != CURLE_OK) {
				note_failure(rq->url, rc);
				err = HL_UNAVAILABLE;
			} else {
				resp->status = st;
				curl_off_t cl = -1;
				curl_easy_getinfo(c, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
				resp->content_length = cl >= 0 && !strcmp(rq->method, "HEAD") ? (uint64_t)cl : s.len;
			}
			break;
		}
		if (rc != CURLE_OK)
			hl_log(HL_LOG_DEBUG, "http: %s %s: %s (attempt %u)", rq->method, rq->url, curl_easy_strerror(rc), attempt + 1);
		else
			hl_log(HL_LOG_DEBUG, "http: %s %s: status %ld (attempt %u)", rq->method, rq->url, st, attempt + 1);
		atomic_fetch_add(&h->retries, 1);
		backoff(h, attempt);
	}
	give_handle(h, c);
	int failed = err == HL_UNAVAILABLE || (!err && resp->status >= 500);
	if (failed)
		atomic_fetch_add(&h->failed, 1);
	breaker_result(h, failed, trial, rq, why);
	if (!err && s.len && !(resp->body = hl_buf_copy(s.data, s.len)))
		err = ENOMEM;
	free(s.data);
	return err;
}

void hl_http_resp_clear(hl_http_resp *resp)
{
	hl_buf_unref(resp->body);
	resp->body = NULL;
}

void hl_http_stats_get(hl_http *h, hl_http_stats *out)
{
	out->requests = atomic_load(&h->requests);
	out->retries = atomic_load(&h->retries);
	out->failures = atomic_load(&h->failed);
	out->breaker_opens = atomic_load(&h->opens);
	out->breaker_rejects = atomic_load(&h->rejects);
	pthread_mutex_lock(&h->mu);
	out->breaker_open = h->open_until != 0;
	pthread_mutex_unlock(&h->mu);
}

static __thread long last_refusal; /* the status hl_http_status_err saw last on this thread */
long hl_http_last_status(int clear)
{
	long st = last_refusal;
	if (clear)
		last_refusal = 0, last_failure[0] = 0;
	return st;
}

int hl_http_status_err(const char *who, const char *what, long status)
{
	last_refusal = status;
	if (status >= 500)
		return status == 507 ? HL_NOSPACE : HL_UNAVAILABLE;
	hl_log(HL_LOG_WARN, "%s: %s: unexpected HTTP status %ld", who, what, status);
	if (status == 401 || status == 403)
		return EACCES;
	return status == 413 ? HL_TOOBIG : EPROTO;
}

int hl_http_object(const char *who, const hl_id *id, hl_http_resp *r, hl_buf **out)
{
	int err;
	if (r->status == 404) {
		err = HL_NOTFOUND;
	} else if (r->status != 200) {
		err = hl_http_status_err(who, "get", r->status);
	} else {
		if (!r->body && !(r->body = hl_buf_alloc(0)))
			return ENOMEM;
		if (r->zstd) { /* stored compressed: decoded to the size it names, then verified */
			unsigned long long want = ZSTD_getFrameContentSize(r->body->data, r->body->len);
			hl_buf *d = want < (UINT64_C(1) << 40) && (!r->has_size || r->size == want)
			            ? hl_buf_alloc((size_t)want) : NULL;
			size_t got = d ? ZSTD_decompress(d->data, (size_t)want, r->body->data, r->body->len) : 0;
			if (!d || ZSTD_isError(got) || got != want) {
				hl_buf_unref(d);
				char hex[HL_ID_HEX_LEN + 1];
				hl_id_format(id, hex);
				hl_log(HL_LOG_ERROR, "%s: object %s: the encoded bytes fetched do not decode", who, hex);
				hl_http_resp_clear(r);
				return HL_CORRUPT;
			}
			hl_buf_unref(r->body);
			r->body = d;
		}
		hl_id got;
		hl_hash(r->body->data, r->body->len, &got);
		if (hl_id_equal(&got, id)) {
			*out = r->body;
			r->body = NULL;
			return 0;
		}
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(id, hex);
		hl_log(HL_LOG_ERROR, "%s: object %s: the bytes fetched do not hash to the id", who, hex);
		err = HL_CORRUPT;
	}
	hl_http_resp_clear(r);
	return err;
}

int hl_http_presence(const char *who, const hl_http_resp *r)
{
	return r->status == 200 ? 0 : r->status == 404 ? HL_NOTFOUND : hl_http_status_err(who, "has", r->status);
}

int hl_http_escape(const char *s, int keep_slash, char *out, size_t cap)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t o = 0;
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;
		int plain = (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
		            ch == '-' || ch == '_' || ch == '.' || ch == '~' || (keep_slash && ch == '/');
		if (o + (plain ? 1 : 3) >= cap)
			return -1;
		if (plain) {
			out[o++] = (char)ch;
		} else {
			out[o++] = '%';
			out[o++] = hex[ch >> 4];
			out[o++] = hex[ch & 15];
		}
	}
	out[o] = 0;
	return 0;
}
