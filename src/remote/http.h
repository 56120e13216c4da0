/* http.h — the HTTP client the remote backends share (libcurl): a pool of reusable handles (kept
 * connections), timeouts, retries with exponential backoff and jitter for transient failures, and a
 * circuit breaker that fails calls at once while the far end is down, so callers fall back to
 * their caches instead of waiting out timeouts. Requests are signed with AWS Signature V4 by
 * libcurl when configured, or carry a bearer token. */
#ifndef HL_REMOTE_HTTP_H
#define HL_REMOTE_HTTP_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

typedef struct hl_http hl_http;

typedef struct hl_http_config {
	const char *sigv4;        /* libcurl's CURLOPT_AWS_SIGV4 provider, e.g. "aws:amz:us-east-1:s3"; NULL: none */
	const char *access_key;   /* with sigv4 */
	const char *secret_key;
	const char *bearer;       /* Authorization: Bearer, when not signing; NULL: none */
	unsigned connect_timeout_ms; /* default 2000 */
	unsigned timeout_ms;      /* whole request, default 30000 */
	unsigned retries;         /* extra attempts after a transient failure, default 3 */
	unsigned backoff_ms;      /* first retry delay, doubled each time (with jitter), default 50 */
	unsigned breaker_failures; /* consecutive failed calls that open the breaker, default 5 */
	unsigned breaker_cooldown_ms; /* open this long, then one trial call, default 2000 */
	const char *cainfo;       /* PEM CA certificates https servers must chain to; NULL: the system's */
} hl_http_config;

typedef struct hl_http_req {
	const char *method;       /* GET, HEAD, PUT, POST, DELETE */
	const char *url;
	const char *headers[6];   /* "Name: value", NULL-terminated early */
	const void *body;         /* PUT/POST */
	size_t body_len;
	uint64_t max_response;    /* a longer body fails the call with HL_TOOBIG; 0: 64 MiB */
	int not_idempotent;       /* never retried after the request may have reached the server */
} hl_http_req;

typedef struct hl_http_resp {
	long status;
	hl_buf *body;             /* NULL for an empty body or HEAD; the caller unrefs it */
	char etag[96];            /* the ETag header as sent, quotes included; "" if none */
	uint64_t content_length;  /* from the header (HEAD), else the body length */
	unsigned attempts;        /* how many times the request was sent */
	int zstd;                 /* Content-Encoding: zstd (the body is a zstd frame) */
	int has_size;             /* X-Amz-Meta-Helios-Size: the object's size before encoding */
	uint64_t size;
} hl_http_resp;

typedef struct hl_http_stats {
	uint64_t requests, retries, failures, breaker_opens, breaker_rejects;
	int breaker_open;
} hl_http_stats;

/* Fills the defaults above (zero means default for every numeric field). */
int hl_http_new(const hl_http_config *cfg, hl_http **out);
void hl_http_free(hl_http *h);

/* Sends the request; 0 with a status in resp (any status: the caller judges it), or
 * HL_UNAVAILABLE when the far end cannot be reached (after the retries, or at once while the
 * breaker is open), HL_TOOBIG, ENOMEM. A 5xx or 429 answer is retried; if the last attempt still
 * gets one it is returned as a status (and counts against the breaker). */
int hl_http_do(hl_http *h, const hl_http_req *rq, hl_http_resp *resp);
void hl_http_resp_clear(hl_http_resp *resp);
void hl_http_stats_get(hl_http *h, hl_http_stats *out);

/* What an HTTP status that is not one of the call's expected answers means to the caller: 5xx
 * HL_UNAVAILABLE (507: HL_NOSPACE), 401/403 EACCES, 413 HL_TOOBIG, anything else EPROTO (logged
 * as "<who>: <what>: unexpected HTTP status N", except the 5xx). */
/* The HTTP status that hl_http_status_err turned into an error last on this thread (0: none);
 * clear: reset it. Lets a caller say which refusal ended a sequence of calls (401 or 403). */
long hl_http_last_status(int clear); /* clear: also forgets hl_http_last_failure */
/* What the last call on this thread that could not get an answer met (libcurl's reason, with a
 * hint where one helps: plain HTTP to an HTTPS port, a TLS handshake that failed); "" if none. */
const char *hl_http_last_failure(void);
int hl_http_status_err(const char *who, const char *what, long status);
/* The outcome of a GET of object id (a zstd-encoded body decoded first): 0 with its body in *out when it hashes to id; HL_NOTFOUND
 * on 404; HL_CORRUPT (logged, bytes dropped) when it does not hash to id; else as
 * hl_http_status_err. Takes the response's body either way. */
int hl_http_object(const char *who, const hl_id *id, hl_http_resp *r, hl_buf **out);
/* The outcome of a HEAD of an object: 0 (200), HL_NOTFOUND (404), else as hl_http_status_err. */
int hl_http_presence(const char *who, const hl_http_resp *r);

/* Percent-encodes s (RFC 3986 unreserved characters kept, '/' too when keep_slash) into out;
 * -1 if it does not fit. */
int hl_http_escape(const char *s, int keep_slash, char *out, size_t cap);

#endif
