/* server.c — `helios serve`: libmicrohttpd (epoll, a pool of event-loop threads, HTTP/1.1
 * keep-alive) in front of the public API. Routing, authentication with scoped tokens, limits
 * (header and body size, connections, idle time, slow clients), error bodies, /metrics, and a
 * graceful stop on SIGTERM/SIGINT. Uses only include/helios.h below it. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "server/parse.h"
#include "server/server.h"

#define MIN_BODY_RATE (64 * 1024) /* bytes/s a body must at least arrive at */
#define STREAM_MIN (1u << 20)     /* blob uploads larger than this (or of unknown length) stream */
#define MAX_TOKENS 1024
#define MAX_LIST 10000            /* refs listed per request at most */
#define NS_BAZEL_AC "bazel:ac"
#define NS_BAZEL_CAS "bazel:cas"

enum route {
	R_NONE, R_BLOB, R_BLOBS, R_MISSING, R_BATCH, R_REF, R_REFS, R_KV, R_BAZEL_AC, R_BAZEL_CAS,
	R_METRICS, R_HEALTHZ, R_READYZ, R_ADMIN_SYNC, R_ADMIN_STATS, R_ADMIN_GC
};
enum method { M_GET = 1, M_HEAD = 2, M_PUT = 4, M_POST = 8, M_DELETE = 16, M_OTHER = 32 };

/* One TCP connection: the deadline by which its current request must have arrived (0: none). */
typedef struct conn {
	int fd;
	int over;    /* opened past --max-conns: answered 503 (health probes 200) and closed */
	_Atomic uint64_t deadline_ns;
	struct conn *prev, *next;
} conn;

typedef struct server {
	hl_store *store;
	hl_server_config cfg;
	srv_token *tokens; /* NULL: no authentication (loopback only) */
	size_t ntokens;
	struct MHD_Daemon *d;
	pthread_mutex_t conns_mu;
	conn *conns;
	pthread_t sweeper;
	atomic_int stopping;
	atomic_long inflight, open_conns;
	atomic_ulong conns_refused; /* requests answered 503 because --max-conns were open */
	atomic_ullong status[6]; /* answers by class: [1] 1xx … [5] 5xx */
	atomic_ullong cut;       /* connections cut off for sending too slowly */
	atomic_ullong shed;      /* answered 503 because the store was busy */
	/* writers: requests that may block on a sync are answered here, their connection suspended,
	 * so the event loops keep serving reads while group commit gathers writes */
	pthread_t *writers;
	unsigned nwriters;
	pthread_mutex_t jobs_mu;
	pthread_cond_t jobs_cv;
	struct req *jobs_head, *jobs_tail;
	int jobs_stop;
} server;

typedef struct req { /* one request, from its headers to its completion */
	enum route route;
	enum method method;
	conn *c;
	hl_id id;
	char name[HL_REF_MAX + 1];  /* ref name, or kv namespace */
	char key[HL_KV_KEY_MAX + 1];
	size_t klen;
	uint8_t *body;
	size_t len, cap;
	int started, too_big, counted, checked;
	int nul_in_path;           /* the raw path held %00 (on_uri): refused by route() */
	hl_writer *w;              /* a blob upload streamed into the store as it arrives */
	int stream_err;
	uint64_t body_t0, received; /* when the body began, and how much of it has come */
	/* a request answered by a writer thread */
	struct MHD_Connection *mc;
	struct req *next_job;
	int suspended;
	unsigned answer_status;
	struct MHD_Response *answer;
} req;

static enum MHD_Result keep_answer(req *q, unsigned status, struct MHD_Response *r)
{
	q->answer_status = status;
	q->answer = r;
	return MHD_YES;
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void hl_server_config_init(hl_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:8080";
	cfg->max_conns = 4096;
	cfg->idle_timeout_s = 30;
	cfg->max_body = UINT64_C(64) << 20;
	cfg->max_header = 16 * 1024;
	cfg->drain_s = 30;
}

/* ---------- responses ---------- */

static const char *allow_header(unsigned m);

/* Set on a writer thread while it answers a suspended request: the answer is kept in the request
 * and queued by the event loop once the connection is resumed. */
static __thread struct req *deferred;

static enum MHD_Result queue(server *sv, struct MHD_Connection *mc, unsigned status,
                             struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	atomic_fetch_add(&sv->status[status / 100 <= 5 ? status / 100 : 5], 1);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context && ((conn *)ci->socket_context)->over)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (deferred)
		return keep_answer(deferred, status, r);
	enum MHD_Result ok = MHD_queue_response(mc, status, r);
	MHD_destroy_response(r);
	return ok;
}

static struct MHD_Response *text_response(char *text, size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r && type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	return r;
}

static enum MHD_Result send_json(server *sv, struct MHD_Connection *mc, unsigned status, json_t *j,
                                 const char *etag)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return MHD_NO;
	struct MHD_Response *r = text_response(text, strlen(text), "application/json");
	if (r && etag)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	return queue(sv, mc, status, r);
}

/* An error body {"error": code, "message": …} with the headers its status calls for. */
static struct MHD_Response *error_response(unsigned status, const char *code, const char *fmt, va_list ap)
{
	char msg[512];
	vsnprintf(msg, sizeof msg, fmt, ap);
	json_t *j = json_pack("{s:s, s:s}", "error", code, "message", msg);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return NULL;
	struct MHD_Response *r = text_response(text, strlen(text), "application/json");
	if (!r)
		return NULL;
	if (status == 401)
		MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"helios\"");
	if (status == 503 || status == 429)
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
	if (status == 413 || status == 431 || status == 408)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	return r;
}

static enum MHD_Result send_error(server *sv, struct MHD_Connection *mc, unsigned status,
                                  const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(server *sv, struct MHD_Connection *mc, unsigned status,
                                  const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct MHD_Response *r = error_response(status, code, fmt, ap);
	va_end(ap);
	return queue(sv, mc, status, r);
}

static enum MHD_Result send_405(server *sv, struct MHD_Connection *mc, unsigned allow, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static enum MHD_Result send_405(server *sv, struct MHD_Connection *mc, unsigned allow, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct MHD_Response *r = error_response(405, "method_not_allowed", fmt, ap);
	va_end(ap);
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow_header(allow));
	return queue(sv, mc, 405, r);
}

/* The status and error code for an API result. */
static enum MHD_Result send_err(server *sv, struct MHD_Connection *mc, int err, const char *what)
{
	unsigned st = 500;
	const char *code = "internal";
	switch (err) {
	case HL_NOTFOUND: st = 404, code = "not_found"; break;
	case HL_INVALID: st = 400, code = "invalid"; break;
	case HL_MISMATCH: st = 422, code = "mismatch"; break;
	case HL_CONFLICT: st = 412, code = "conflict"; break;
	case HL_INCOMPLETE: st = 409, code = "incomplete"; break;
	case HL_TOOBIG: st = 413, code = "too_large"; break;
	case HL_BUSY: st = 503, code = "busy", atomic_fetch_add(&sv->shed, 1); break;
	case HL_CLOSED: st = 503, code = "closing"; break;
	case HL_UNAVAILABLE: st = 503, code = "unavailable"; break;
	case HL_STOPPED: st = 503, code = "writes_stopped"; break;
	case HL_NOSPACE: st = 507, code = "no_space"; break;
	case HL_READONLY: st = 403, code = "read_only"; break;
	case HL_CORRUPT: st = 500, code = "corrupt"; break;
	default: break;
	}
	return send_error(sv, mc, st, code, "%s: %s", what, hl_strerror(err));
}

static void unref_buf(void *cls)
{
	hl_buf_unref(cls);
}

static enum MHD_Result send_416(server *sv, struct MHD_Connection *mc, uint64_t size)
{
	char cr[48];
	struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
	snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	return queue(sv, mc, 416, r);
}

/* The Range a request asks of an object of size bytes (SRV_RANGE_*), into *off and *len. */
static int range_of(struct MHD_Connection *mc, uint64_t size, uint64_t *off, uint64_t *len)
{
	const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_RANGE);
	*off = 0;
	*len = size;
	return h ? srv_range_parse(h, strlen(h), size, off, len) : SRV_RANGE_FULL;
}

/* Queues an object's answer: type, ranges, ETag and caching (an object never changes; a kv value,
 * whose ETag is its object's id, may: not immutable), 200 or 206. */
static enum MHD_Result send_object(server *sv, struct MHD_Connection *mc, struct MHD_Response *r,
                                   const char *etag, int immutable, int rr, uint64_t off, uint64_t len,
                                   uint64_t size)
{
	if (!r)
		return MHD_NO;
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	MHD_add_response_header(r, MHD_HTTP_HEADER_ACCEPT_RANGES, "bytes");
	if (etag) {
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
		if (immutable)
			MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "public, max-age=31536000, immutable");
	}
	if (rr != SRV_RANGE_OK)
		return queue(sv, mc, 200, r);
	char cr[80];
	snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1), (unsigned long long)size);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	return queue(sv, mc, 206, r);
}

/* Content of b (one reference handed over), from the L1's buffer without a copy; honours Range. */
static enum MHD_Result send_buf(server *sv, struct MHD_Connection *mc, hl_buf *b, const char *etag,
                                int immutable)
{
	uint64_t size = hl_buf_len(b), off, len;
	int rr = range_of(mc, size, &off, &len);
	if (rr == SRV_RANGE_UNSATISFIABLE) {
		hl_buf_unref(b);
		return send_416(sv, mc, size);
	}
	struct MHD_Response *r = MHD_create_response_from_buffer_with_free_callback_cls(
		(size_t)len, (void *)(uintptr_t)(hl_buf_data(b) + off), unref_buf, b);
	if (!r)
		hl_buf_unref(b);
	return send_object(sv, mc, r, etag, immutable, rr, off, len, size);
}

/* A chunked object's bytes [base, base + len), read as the connection drains. A chunk that fails
 * verification ends the response early (the client sees a short body, never wrong bytes). */
typedef struct stream {
	hl_reader *r;
	uint64_t base;
} stream;

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
	stream *st = cls;
	size_t n;
	if (hl_reader_read(st->r, st->base + pos, buf, max, &n) || n == 0)
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return (ssize_t)n;
}

static void stream_free(void *cls)
{
	stream *st = cls;
	hl_reader_close(st->r);
	free(st);
}

static enum MHD_Result send_stream(server *sv, struct MHD_Connection *mc, hl_reader *r, uint64_t size,
                                   const char *etag)
{
	uint64_t off, len;
	int rr = range_of(mc, size, &off, &len);
	stream *st = rr == SRV_RANGE_UNSATISFIABLE ? NULL : malloc(sizeof(*st));
	if (!st) {
		hl_reader_close(r);
		return rr == SRV_RANGE_UNSATISFIABLE ? send_416(sv, mc, size) : MHD_NO;
	}
	st->r = r;
	st->base = off;
	struct MHD_Response *resp = MHD_create_response_from_callback(len, 256 * 1024, stream_read, st, stream_free);
	if (!resp)
		stream_free(st);
	return send_object(sv, mc, resp, etag, 1, rr, off, len, size);
}

static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls, (void)pos, (void)buf, (void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* HEAD: the length of an object without reading it. */
static enum MHD_Result send_head(server *sv, struct MHD_Connection *mc, uint64_t size, const char *etag)
{
	struct MHD_Response *r = MHD_create_response_from_callback(size, 4096, no_body, NULL, NULL);
	if (r && etag)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	return queue(sv, mc, 200, r);
}

static void etag_of(const hl_id *id, char out[HL_ID_HEX_LEN + 3])
{
	out[0] = '"';
	hl_id_format(id, out + 1);
	out[HL_ID_HEX_LEN + 1] = '"';
	out[HL_ID_HEX_LEN + 2] = 0;
}

static json_t *id_json(const hl_id *id)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	return json_string(hex);
}

/* The answer to a stored blob, {"id": …, "size": …, "created": …}: formatted directly, since it
 * is the answer to the most frequent write. */
static enum MHD_Result send_put_result(server *sv, struct MHD_Connection *mc, const hl_id *id,
                                       size_t size, int created)
{
	char hex[HL_ID_HEX_LEN + 1], etag[HL_ID_HEX_LEN + 3];
	hl_id_format(id, hex);
	etag_of(id, etag);
	char *text = malloc(160);
	if (!text)
		return MHD_NO;
	int n = snprintf(text, 160, "{\"id\":\"%s\",\"size\":%zu,\"created\":%s}", hex, size,
	                 created ? "true" : "false");
	struct MHD_Response *r = text_response(text, (size_t)n, "application/json");
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	return queue(sv, mc, created ? 201 : 200, r);
}

/* ---------- routing ---------- */

static int seg_is(const char *p, const char *s)
{
	size_t n = strlen(s);
	return !strncmp(p, s, n) && (p[n] == '/' || p[n] == 0);
}

static int ns_valid(const char *ns, size_t n)
{
	if (n == 0 || n > 64)
		return 0;
	for (size_t i = 0; i < n; i++) {
		char c = ns[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
		      c == '_' || c == '-') || (i == 0 && c == '.'))
			return 0;
	}
	return 1;
}

/* Parses url into q's route and arguments. Returns 0, or an HTTP status with *why set. */
static unsigned route(const char *url, req *q, const char **why)
{
	if (q->nul_in_path) {
		*why = "the path holds %00: no name, key or id may contain a NUL byte";
		return 400;
	}
	static const struct {
		const char *path;
		enum route route;
	} exact[] = {
		{"/metrics", R_METRICS}, {"/healthz", R_HEALTHZ}, {"/readyz", R_READYZ},
		{"/v1/admin/sync", R_ADMIN_SYNC}, {"/v1/admin/stats", R_ADMIN_STATS},
		{"/v1/admin/gc", R_ADMIN_GC}, {"/v1/missing", R_MISSING}, {"/v1/batch", R_BATCH},
		{"/v1/blobs", R_BLOBS}, {"/v1/blobs/", R_BLOBS}, {"/v1/refs", R_REFS}, {"/v1/refs/", R_REFS},
	};
	*why = "no such resource";
	for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
		if (!strcmp(url, exact[i].path))
			return q->route = exact[i].route, 0;
	if (!strncmp(url, "/v1/blobs/", 10)) {
		q->route = R_BLOB;
		*why = "malformed id: expected 64 lowercase hex characters";
		return hl_id_parse(url + 10, strlen(url + 10), &q->id) ? 400 : 0;
	}
	if (!strncmp(url, "/v1/refs/", 9)) {
		q->route = R_REF;
		*why = "malformed ref name: components of [A-Za-z0-9._-] joined by '/', none starting "
		       "with '.', at most 255 bytes";
		if (!hl_ref_valid(url + 9))
			return 400;
		snprintf(q->name, sizeof q->name, "%s", url + 9);
		return 0;
	}
	if (!strncmp(url, "/bazel/", 7)) {
		const char *p = url + 7;
		q->route = seg_is(p, "ac") ? R_BAZEL_AC : seg_is(p, "cas") ? R_BAZEL_CAS : R_NONE;
		if (q->route == R_NONE)
			return 404;
		p += q->route == R_BAZEL_AC ? 3 : 4;
		*why = "malformed key: expected a SHA-256 as 64 lowercase hex characters";
		if (p[-1] != '/' || hl_id_parse(p, strlen(p), &q->id))
			return 400;
		memcpy(q->key, p, HL_ID_HEX_LEN + 1);
		q->klen = HL_ID_HEX_LEN;
		return 0;
	}
	if (!strncmp(url, "/kv/", 4)) {
		const char *ns = url + 4, *slash = strchr(ns, '/');
		q->route = R_KV;
		*why = "malformed namespace: 1 to 64 of [A-Za-z0-9._-], not starting with '.'";
		if (!slash || !ns_valid(ns, (size_t)(slash - ns)))
			return 400;
		memcpy(q->name, ns, (size_t)(slash - ns));
		q->name[slash - ns] = 0;
		*why = "malformed key: 1 to 400 bytes, no '.' or '..' segment";
		return srv_kv_key(slash + 1, strlen(slash + 1), q->key, sizeof q->key, &q->klen) ? 400 : 0;
	}
	return 404;
}

static unsigned allowed_methods(enum route r)
{
	switch (r) {
	case R_BLOB: return M_GET | M_HEAD | M_PUT;
	case R_BLOBS: return M_POST;
	case R_MISSING: case R_BATCH: case R_ADMIN_SYNC: case R_ADMIN_GC: return M_POST;
	case R_REF: return M_GET | M_HEAD | M_PUT | M_DELETE;
	case R_REFS: return M_GET | M_HEAD;
	case R_KV: return M_GET | M_HEAD | M_PUT | M_DELETE;
	case R_BAZEL_AC: case R_BAZEL_CAS: return M_GET | M_HEAD | M_PUT;
	default: return M_GET | M_HEAD;
	}
}

static const char *allow_header(unsigned m)
{
	static const char *names[] = {"GET", "HEAD", "PUT", "POST", "DELETE"};
	static __thread char buf[64];
	buf[0] = 0;
	for (int i = 0; i < 5; i++)
		if (m & (1u << i)) {
			if (buf[0])
				strcat(buf, ", ");
			strcat(buf, names[i]);
		}
	return buf;
}

static int scope_needed(enum route r, enum method m)
{
	if (r == R_HEALTHZ || r == R_READYZ)
		return SRV_SCOPE_NONE;
	if (r == R_ADMIN_SYNC || r == R_ADMIN_STATS || r == R_ADMIN_GC)
		return SRV_SCOPE_ADMIN;
	if (r == R_MISSING)
		return SRV_SCOPE_READ; /* a question, though it is a POST */
	return (m & (M_GET | M_HEAD)) ? SRV_SCOPE_READ : SRV_SCOPE_WRITE;
}

/* The scope the request's credentials grant (SRV_SCOPE_ADMIN when authentication is off), or
 * -1 when credentials are absent or wrong. Tokens are compared in constant time. */
static int granted(server *sv, struct MHD_Connection *mc)
{
	if (!sv->tokens)
		return SRV_SCOPE_ADMIN;
	const char *h = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_AUTHORIZATION);
	char cred[SRV_TOKEN_MAX + 1];
	size_t n;
	if (!h || srv_auth_credential(h, strlen(h), cred, sizeof cred, &n))
		return -1;
	int scope = -1;
	for (size_t i = 0; i < sv->ntokens; i++) {
		const srv_token *t = &sv->tokens[i];
		unsigned char diff = (unsigned char)(t->len != n);
		for (size_t k = 0; k < SRV_TOKEN_MAX; k++)
			diff |= (unsigned char)((k < t->len ? t->token[k] : 0) ^ (k < n ? cred[k] : 0));
		if (!diff && t->scope > scope)
			scope = t->scope;
	}
	return scope;
}

/* ---------- handlers (body complete) ---------- */

/* The end of a streamed upload: the writer closed (stored, or found stored) or its error. */
static enum MHD_Result finish_stream(server *sv, struct MHD_Connection *mc, req *q)
{
	hl_writer *w = q->w;
	hl_id id;
	int created = 0, err = q->stream_err;
	q->w = NULL;
	uint64_t size = 0;
	if (err)
		hl_writer_abort(w);
	else
		err = hl_writer_close(w, &id, &created);
	if (err == HL_MISMATCH) {
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(&q->id, hex);
		return send_error(sv, mc, 422, "mismatch", "the body does not hash to %s; the object is not stored", hex);
	}
	if (err == HL_TOOBIG)
		return send_error(sv, mc, 413, "too_large", "the object is larger than the store accepts");
	if (err)
		return send_err(sv, mc, err, "put");
	hl_stat st;
	if (hl_stat_object(sv->store, &id, &st) == 0)
		size = st.size;
	return send_put_result(sv, mc, &id, (size_t)size, created);
}

static enum MHD_Result h_blob(server *sv, struct MHD_Connection *mc, req *q)
{
	char etag[HL_ID_HEX_LEN + 3];
	etag_of(&q->id, etag);
	if (q->w)
		return finish_stream(sv, mc, q);
	if (q->method == M_PUT) {
		int created = 0, err = hl_put_expect(sv->store, &q->id, q->body ? q->body : (uint8_t *)"", q->len, &created);
		if (err == HL_MISMATCH)
			return send_error(sv, mc, 422, "mismatch", "the body does not hash to %s; nothing stored", etag);
		if (err)
			return send_err(sv, mc, err, "put");
		return send_put_result(sv, mc, &q->id, q->len, created);
	}
	const char *inm = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (q->method == M_HEAD) {
		hl_stat st;
		int err = hl_stat_object(sv->store, &q->id, &st);
		return err ? send_err(sv, mc, err, "head") : send_head(sv, mc, st.size, etag);
	}
	if (inm && !strcmp(inm, etag) && hl_has(sv->store, &q->id) == 0) {
		struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		if (r)
			MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
		return queue(sv, mc, 304, r);
	}
	hl_reader *r;
	uint64_t size;
	int err = hl_reader_open(sv->store, &q->id, &r, &size);
	if (err)
		return send_err(sv, mc, err, "get");
	hl_buf *b = hl_reader_whole(r);
	if (b) {
		hl_reader_close(r);
		return send_buf(sv, mc, b, etag, 1);
	}
	return send_stream(sv, mc, r, size, etag); /* a chunked object: streamed, chunk by chunk */
}

static enum MHD_Result h_blobs(server *sv, struct MHD_Connection *mc, req *q)
{
	if (q->w)
		return finish_stream(sv, mc, q);
	hl_id id;
	int created = 0, err = hl_put(sv->store, q->body ? q->body : (uint8_t *)"", q->len, &id, &created);
	if (err)
		return send_err(sv, mc, err, "put");
	return send_put_result(sv, mc, &id, q->len, created);
}

static enum MHD_Result h_missing(server *sv, struct MHD_Connection *mc, req *q)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)q->body, q->len, JSON_REJECT_DUPLICATES, &je);
	json_t *ids = j ? json_object_get(j, "ids") : NULL;
	if (!j || !json_is_array(ids)) {
		json_decref(j);
		return send_error(sv, mc, 400, "invalid", "expected {\"ids\": [\"<id>\", ...]}%s%s",
		                  j ? "" : ": ", j ? "" : je.text);
	}
	json_t *missing = json_array();
	size_t i;
	json_t *v;
	json_array_foreach(ids, i, v) {
		hl_id id;
		const char *hex = json_string_value(v);
		if (!hex || hl_id_parse(hex, strlen(hex), &id)) {
			json_decref(j);
			json_decref(missing);
			return send_error(sv, mc, 400, "invalid", "ids[%zu] is not 64 lowercase hex characters", i);
		}
		int err = hl_has(sv->store, &id);
		if (err == HL_NOTFOUND || err == HL_CORRUPT)
			json_array_append_new(missing, json_string(hex));
		else if (err) {
			json_decref(j);
			json_decref(missing);
			return send_err(sv, mc, err, "has");
		}
	}
	json_decref(j);
	return send_json(sv, mc, 200, json_pack("{s:o}", "missing", missing), NULL);
}

static enum MHD_Result h_batch(server *sv, struct MHD_Connection *mc, req *q)
{
	size_t cap = q->len / (HL_ID_HEX_LEN + 3) + 1, n, where;
	hl_put_item *items = calloc(cap, sizeof(*items));
	if (!items)
		return send_err(sv, mc, ENOMEM, "batch");
	int err = srv_batch_parse(q->body, q->len, items, cap, &n, &where);
	if (err) {
		free(items);
		return send_error(sv, mc, 400, "invalid",
		                  "malformed batch record at byte %zu: expected \"<64 hex id> <length>\\n<bytes>\"", where);
	}
	if ((err = hl_put_batch(sv->store, items, n)) != 0) {
		free(items);
		if (err == HL_MISMATCH)
			return send_error(sv, mc, 422, "mismatch", "a record's bytes do not hash to its id; nothing stored");
		return send_err(sv, mc, err, "batch");
	}
	json_t *res = json_array();
	size_t created = 0;
	for (size_t i = 0; i < n; i++) {
		created += items[i].created != 0;
		json_array_append_new(res, json_pack("{s:o, s:b}", "id", id_json(&items[i].id), "created", items[i].created));
	}
	free(items);
	return send_json(sv, mc, 200, json_pack("{s:I, s:I, s:o}", "records", (json_int_t)n, "created",
	                                        (json_int_t)created, "results", res), NULL);
}

static enum MHD_Result h_ref(server *sv, struct MHD_Connection *mc, req *q)
{
	hl_id cur, target, expect;
	char etag[HL_ID_HEX_LEN + 3];
	const char *im = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_MATCH);
	const char *inm = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (q->method & (M_GET | M_HEAD)) {
		int err = hl_ref_get(sv->store, q->name, &cur);
		if (err)
			return send_err(sv, mc, err, q->name);
		etag_of(&cur, etag);
		return send_json(sv, mc, 200, json_pack("{s:s, s:o}", "name", q->name, "id", id_json(&cur)), etag);
	}
	if (im && srv_etag_id(im, strlen(im), &expect))
		return send_error(sv, mc, 400, "invalid", "If-Match must be \"<64 hex id>\" in quotes");
	if (inm && strcmp(inm, "*"))
		return send_error(sv, mc, 400, "invalid", "If-None-Match on a ref must be *");
	if (q->method == M_DELETE) {
		if (!im)
			return send_error(sv, mc, 428, "precondition_required", "DELETE of a ref needs If-Match: \"<current id>\"");
		int err = hl_ref_delete(sv->store, q->name, &expect);
		if (err)
			return send_err(sv, mc, err, q->name);
		return queue(sv, mc, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
	}
	if (!im == !inm)
		return send_error(sv, mc, 428, "precondition_required",
		                  "PUT of a ref needs exactly one of If-Match: \"<current id>\" and If-None-Match: *");
	json_error_t je;
	json_t *j = json_loadb((const char *)q->body, q->len, JSON_REJECT_DUPLICATES, &je);
	const char *v = j ? json_string_value(json_object_get(j, "id")) : NULL;
	int bad = !v || hl_id_parse(v, strlen(v), &target);
	json_decref(j);
	if (bad)
		return send_error(sv, mc, 400, "invalid", "expected {\"id\": \"<64 lowercase hex>\"}");
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&target, hex);
	int err = hl_ref_cas(sv->store, q->name, im ? &expect : NULL, &target);
	if (err == HL_CONFLICT)
		return send_error(sv, mc, 412, "conflict", "%s: %s", q->name,
		                  im ? "it does not point at the If-Match id" : "it already exists");
	if (err == HL_INCOMPLETE)
		return send_error(sv, mc, 409, "incomplete", "%s: target %s is not stored", q->name, hex);
	if (err)
		return send_err(sv, mc, err, q->name);
	etag_of(&target, etag);
	return send_json(sv, mc, inm ? 201 : 200, json_pack("{s:s, s:o}", "name", q->name, "id", id_json(&target)), etag);
}

typedef struct ref_acc {
	json_t *arr;
	size_t n;
} ref_acc;

static int add_ref(const char *name, const hl_id *id, void *ctx)
{
	ref_acc *a = ctx;
	if (a->n == MAX_LIST)
		return 1;
	a->n++;
	return json_array_append_new(a->arr, json_pack("{s:s, s:o}", "name", name, "id", id_json(id))) ? ENOMEM : 0;
}

static enum MHD_Result h_refs(server *sv, struct MHD_Connection *mc)
{
	const char *prefix = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "prefix");
	ref_acc a = {json_array(), 0};
	int err = hl_ref_list(sv->store, prefix, add_ref, &a);
	if (err && err != 1) {
		json_decref(a.arr);
		return send_err(sv, mc, err, "list");
	}
	return send_json(sv, mc, 200, json_pack("{s:o, s:b}", "refs", a.arr, "truncated", err == 1), NULL);
}

/* Whether stored object id's SHA-256 is sha (HL_MISMATCH when not). */
static int cas_matches(server *sv, const hl_id *id, const uint8_t sha[32])
{
	hl_buf *b;
	uint8_t got[32];
	int err = hl_get(sv->store, id, &b);
	if (err)
		return err;
	hl_sha256(hl_buf_data(b), hl_buf_len(b), got);
	hl_buf_unref(b);
	return memcmp(got, sha, 32) ? HL_MISMATCH : 0;
}

/* kv, and the Bazel cache which is two kv namespaces. The ETag of a value is its object's id; a
 * PUT with X-Helios-Object: <id> and no body points the key at a stored object (the helios
 * backend's kv calls). */
static enum MHD_Result h_kv(server *sv, struct MHD_Connection *mc, req *q)
{
	const char *ns = q->route == R_BAZEL_AC ? NS_BAZEL_AC : q->route == R_BAZEL_CAS ? NS_BAZEL_CAS : q->name;
	char etag[HL_ID_HEX_LEN + 3];
	hl_id id;
	uint64_t size;
	int err;
	switch (q->method) {
	case M_PUT: {
		const uint8_t *data = q->body ? q->body : (const uint8_t *)"";
		const char *obj = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, "X-Helios-Object");
		if (obj) {
			if (q->len || hl_id_parse(obj, strlen(obj), &id))
				return send_error(sv, mc, 400, "invalid", "X-Helios-Object needs a 64 hex id and an empty body");
			if (q->route == R_BAZEL_CAS && (err = cas_matches(sv, &id, q->id.b)) != 0)
				return err == HL_MISMATCH
				       ? send_error(sv, mc, 422, "mismatch", "object %s's SHA-256 is not %s; nothing stored", obj, q->key)
				       : err == HL_NOTFOUND ? send_error(sv, mc, 409, "incomplete", "object %s is not stored", obj)
				                            : send_err(sv, mc, err, "put");
			if ((err = hl_kv_link(sv->store, ns, q->key, q->klen, &id)) == HL_INCOMPLETE)
				return send_error(sv, mc, 409, "incomplete", "object %s is not stored", obj);
			if (err || (err = hl_kv_stat(sv->store, ns, q->key, q->klen, &size)) != 0)
				return send_err(sv, mc, err, "put");
			return send_json(sv, mc, 201, json_pack("{s:I}", "size", (json_int_t)size), NULL);
		}
		if (q->route == R_BAZEL_CAS) {
			uint8_t sha[32];
			hl_sha256(data, q->len, sha);
			if (memcmp(sha, q->id.b, 32))
				return send_error(sv, mc, 422, "mismatch", "the body's SHA-256 is not %s; nothing stored", q->key);
		}
		if ((err = hl_kv_put(sv->store, ns, q->key, q->klen, data, q->len)) != 0)
			return send_err(sv, mc, err, "put");
		return send_json(sv, mc, 201, json_pack("{s:I}", "size", (json_int_t)q->len), NULL);
	}
	case M_DELETE:
		if ((err = hl_kv_delete(sv->store, ns, q->key, q->klen)) != 0)
			return send_err(sv, mc, err, "delete");
		return queue(sv, mc, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
	case M_HEAD:
		if ((err = hl_kv_lookup(sv->store, ns, q->key, q->klen, &id, &size)) != 0)
			return send_err(sv, mc, err, "head");
		etag_of(&id, etag);
		return send_head(sv, mc, size, etag);
	default: {
		hl_buf *b;
		if ((err = hl_kv_lookup(sv->store, ns, q->key, q->klen, &id, NULL)) == 0)
			err = hl_get(sv->store, &id, &b);
		if (err == HL_CORRUPT) /* a cache: a value that fails verification is a miss */
			err = HL_NOTFOUND;
		etag_of(&id, etag);
		return err ? send_err(sv, mc, err, "get") : send_buf(sv, mc, b, etag, 0);
	}
	}
}

static enum MHD_Result h_metrics(server *sv, struct MHD_Connection *mc)
{
	char *text;
	size_t len;
	int err = hl_metrics_text(sv->store, &text, &len);
	if (err)
		return send_err(sv, mc, err, "metrics");
	char extra[4096];
	int n = snprintf(extra, sizeof extra,
		"# HELP helios_http_responses_total HTTP responses sent, by status class.\n"
		"# TYPE helios_http_responses_total counter\n"
		"helios_http_responses_total{class=\"2xx\"} %llu\n"
		"helios_http_responses_total{class=\"3xx\"} %llu\n"
		"helios_http_responses_total{class=\"4xx\"} %llu\n"
		"helios_http_responses_total{class=\"5xx\"} %llu\n"
		"# HELP helios_http_connections Open HTTP connections.\n"
		"# TYPE helios_http_connections gauge\n"
		"helios_http_connections %ld\n"
		"# HELP helios_http_requests_in_flight HTTP requests being answered.\n"
		"# TYPE helios_http_requests_in_flight gauge\n"
		"helios_http_requests_in_flight %ld\n"
		"# HELP helios_http_slow_clients_cut_total Connections closed for sending a request too slowly.\n"
		"# TYPE helios_http_slow_clients_cut_total counter\n"
		"helios_http_slow_clients_cut_total %llu\n"
		"# HELP helios_http_shed_total Requests answered 503 because the store was at its admission bound.\n"
		"# TYPE helios_http_shed_total counter\n"
		"helios_http_shed_total %llu\n"
		"# HELP helios_http_over_limit_total Requests answered 503 because --max-conns connections were open.\n"
		"# TYPE helios_http_over_limit_total counter\n"
		"helios_http_over_limit_total %llu\n",
		(unsigned long long)sv->status[2], (unsigned long long)sv->status[3],
		(unsigned long long)sv->status[4], (unsigned long long)sv->status[5],
		(long)sv->open_conns, (long)sv->inflight, (unsigned long long)sv->cut,
		(unsigned long long)sv->shed, (unsigned long long)sv->conns_refused);
	char *all = malloc(len + (size_t)n + 1);
	if (!all) {
		free(text);
		return MHD_NO;
	}
	memcpy(all, text, len);
	memcpy(all + len, extra, (size_t)n + 1);
	free(text);
	return queue(sv, mc, 200, text_response(all, len + (size_t)n, "text/plain; version=0.0.4; charset=utf-8"));
}

static enum MHD_Result h_ready(server *sv, struct MHD_Connection *mc)
{
	hl_health h;
	int err = hl_health_get(sv->store, &h);
	if (err)
		return send_err(sv, mc, err, "health");
	int ready = !atomic_load(&sv->stopping) && h.level != HL_HEALTH_UNHEALTHY;
	static const char *levels[] = {"ok", "degraded", "unhealthy"};
	return send_json(sv, mc, ready ? 200 : 503,
	                 json_pack("{s:s, s:i, s:s, s:s}", "status", ready ? "ready" : "not_ready", "score", h.score,
	                           "level", levels[h.level], "reason", atomic_load(&sv->stopping) ? "shutting down" : h.reason),
	                 NULL);
}

static enum MHD_Result h_admin(server *sv, struct MHD_Connection *mc, req *q)
{
	if (q->route == R_ADMIN_SYNC) {
		int err = hl_sync(sv->store);
		return err ? send_err(sv, mc, err, "sync") : send_json(sv, mc, 200, json_pack("{s:b}", "synced", 1), NULL);
	}
	hl_stats st;
	hl_backend_info bi;
	const char *count = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "backend");
	int err = hl_stats_get(sv->store, &st);
	if (!err)
		err = hl_backend_get(sv->store, count && (!strcmp(count, "1") || !strcmp(count, "true")), &bi);
	if (err)
		return send_err(sv, mc, err, "stats");
	json_t *be = json_pack("{s:s, s:b}", "kind", bi.kind, "shared", bi.shared);
	if (bi.counted) {
		json_object_set_new(be, "objects", json_integer((json_int_t)bi.objects));
		json_object_set_new(be, "bytes", json_integer((json_int_t)bi.bytes));
		json_object_set_new(be, "chunked", json_integer((json_int_t)bi.chunked));
	}
	return send_json(sv, mc, 200,
	                 json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "backend", be,
	                           "objects", (json_int_t)st.objects,
	                           "logical_bytes", (json_int_t)st.logical_bytes, "stored_bytes", (json_int_t)st.stored_bytes,
	                           "quarantined", (json_int_t)st.quarantined, "l1_hits", (json_int_t)st.l1_hits,
	                           "l1_misses", (json_int_t)st.l1_misses, "busy", (json_int_t)st.busy,
	                           "health_score", st.health_score),
	                 NULL);
}

/* POST /v1/admin/gc[?dry_run=1]: one collection, answered with its report (on a writer thread
 * when there are any, so event loops keep serving meanwhile). */
static enum MHD_Result h_gc(server *sv, struct MHD_Connection *mc)
{
	hl_gc_options o;
	hl_gc_options_init(&o);
	const char *dry = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "dry_run");
	o.dry_run = dry && (!strcmp(dry, "1") || !strcmp(dry, "true"));
	hl_gc_report r;
	int err = hl_gc(sv->store, &o, &r);
	if (err == HL_BUSY)
		return send_error(sv, mc, 409, "busy", "a collection is already running");
	if (err)
		return send_err(sv, mc, err, "gc");
	return send_json(sv, mc, 200,
	                 json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}", "dry_run", o.dry_run,
	                           "objects", (json_int_t)r.objects, "reachable", (json_int_t)r.reachable,
	                           "young", (json_int_t)r.young, "held", (json_int_t)r.held,
	                           "collected", (json_int_t)r.collected,
	                           "collected_bytes", (json_int_t)r.collected_bytes,
	                           "segments_removed", (json_int_t)r.segments_removed,
	                           "records_moved", (json_int_t)r.records_moved,
	                           "bytes_reclaimed", (json_int_t)r.bytes_reclaimed,
	                           "seconds", (double)r.duration_ns / 1e9),
	                 NULL);
}

static enum MHD_Result dispatch(server *sv, struct MHD_Connection *mc, req *q)
{
	switch (q->route) {
	case R_BLOB: return h_blob(sv, mc, q);
	case R_BLOBS: return h_blobs(sv, mc, q);
	case R_MISSING: return h_missing(sv, mc, q);
	case R_BATCH: return h_batch(sv, mc, q);
	case R_REF: return h_ref(sv, mc, q);
	case R_REFS: return h_refs(sv, mc);
	case R_KV: case R_BAZEL_AC: case R_BAZEL_CAS: return h_kv(sv, mc, q);
	case R_METRICS: return h_metrics(sv, mc);
	case R_HEALTHZ: return send_json(sv, mc, 200, json_pack("{s:s}", "status", "ok"), NULL);
	case R_READYZ: return h_ready(sv, mc);
	case R_ADMIN_SYNC: case R_ADMIN_STATS: return h_admin(sv, mc, q);
	case R_ADMIN_GC: return h_gc(sv, mc);
	default: return send_error(sv, mc, 404, "not_found", "no such resource");
	}
}

/* ---------- writer threads ---------- */

static void *writer_main(void *arg)
{
	server *sv = arg;
	for (;;) {
		pthread_mutex_lock(&sv->jobs_mu);
		while (!sv->jobs_head && !sv->jobs_stop)
			pthread_cond_wait(&sv->jobs_cv, &sv->jobs_mu);
		req *q = sv->jobs_head;
		if (q && !(sv->jobs_head = q->next_job))
			sv->jobs_tail = NULL;
		pthread_mutex_unlock(&sv->jobs_mu);
		if (!q)
			return NULL; /* stopping, and nothing left */
		deferred = q;
		if (dispatch(sv, q->mc, q) != MHD_YES && !q->answer)
			q->answer_status = 0; /* nothing to send: the connection is closed on resume */
		deferred = NULL;
		MHD_resume_connection(q->mc);
	}
}

/* Hands q to a writer thread; its connection sleeps until the answer is ready. */
static void offload(server *sv, struct MHD_Connection *mc, req *q)
{
	q->mc = mc;
	q->suspended = 1;
	q->next_job = NULL;
	MHD_suspend_connection(mc);
	pthread_mutex_lock(&sv->jobs_mu);
	if (sv->jobs_tail)
		sv->jobs_tail->next_job = q;
	else
		sv->jobs_head = q;
	sv->jobs_tail = q;
	pthread_cond_signal(&sv->jobs_cv);
	pthread_mutex_unlock(&sv->jobs_mu);
}

static void writers_stop(server *sv)
{
	pthread_mutex_lock(&sv->jobs_mu);
	sv->jobs_stop = 1; /* queued jobs are still answered: each writer drains the queue */
	pthread_cond_broadcast(&sv->jobs_cv);
	pthread_mutex_unlock(&sv->jobs_mu);
	for (unsigned i = 0; i < sv->nwriters; i++)
		pthread_join(sv->writers[i], NULL);
	free(sv->writers);
	sv->writers = NULL;
	sv->nwriters = 0;
}

/* ---------- the access handler: headers, then body chunks, then the answer ---------- */

static enum method method_of(const char *m)
{
	if (!strcmp(m, "GET")) return M_GET;
	if (!strcmp(m, "HEAD")) return M_HEAD;
	if (!strcmp(m, "PUT")) return M_PUT;
	if (!strcmp(m, "POST")) return M_POST;
	if (!strcmp(m, "DELETE")) return M_DELETE;
	return M_OTHER;
}

/* The headers are in: routes, authenticates and checks the declared length. Returns 0 to go on,
 * or sets *answered and returns what queueing the error gave. An error queued on the first call
 * (before the body) closes the connection afterwards, so requests without a body are checked on
 * their second call, which keeps keep-alive for them. */
static enum MHD_Result check(server *sv, struct MHD_Connection *mc, const char *url,
                             const char *method, req *q, int *answered)
{
	*answered = 1;
	const char *why;
	unsigned st = route(url, q, &why);
	if (q->c->over && !(st == 0 && (q->route == R_HEALTHZ || q->route == R_READYZ))) {
		atomic_fetch_add(&sv->conns_refused, 1);
		return send_error(sv, mc, 503, "overloaded", "more than %u connections are open; retry later",
		                  sv->cfg.max_conns);
	}
	if (st)
		return send_error(sv, mc, st, st == 404 ? "not_found" : "invalid", "%s", why);
	unsigned allow = allowed_methods(q->route);
	if (!(allow & q->method))
		return send_405(sv, mc, allow, "%s is not allowed here", method);
	int need = scope_needed(q->route, q->method), have = need ? granted(sv, mc) : SRV_SCOPE_ADMIN;
	if (have < 0)
		return send_error(sv, mc, 401, "unauthorized", "a valid token is required (Authorization: Bearer <token>)");
	if (have < need)
		return send_error(sv, mc, 403, "forbidden", "this token's scope does not allow %s here", method);
	const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
	int blob_upload = (q->route == R_BLOB && q->method == M_PUT) || (q->route == R_BLOBS && q->method == M_POST);
	if (blob_upload && (!cl || declared > STREAM_MIN)) {
		/* no buffer: the body goes into the store as it arrives, chunk by chunk; its size is
		 * bounded by the store's largest object, not by --max-body */
		int err = hl_writer_open(sv->store, q->route == R_BLOB ? &q->id : NULL, &q->w);
		if (err)
			return send_err(sv, mc, err, "put");
		atomic_store(&q->c->deadline_ns, now_ns() + (uint64_t)sv->cfg.idle_timeout_s * 1000000000u +
		             (cl ? declared : (uint64_t)sv->cfg.max_body) * UINT64_C(1000000000) / MIN_BODY_RATE);
		*answered = 0;
		return MHD_YES;
	}
	if (declared > sv->cfg.max_body)
		return send_error(sv, mc, 413, "too_large", "the body is larger than the %llu-byte limit",
		                  (unsigned long long)sv->cfg.max_body);
	if (declared && !q->body) {
		if (!(q->body = malloc((size_t)declared)))
			return send_err(sv, mc, ENOMEM, "body");
		q->cap = (size_t)declared;
	}
	uint64_t body_ns = (cl ? declared : sv->cfg.max_body) * UINT64_C(1000000000) / MIN_BODY_RATE;
	atomic_store(&q->c->deadline_ns, now_ns() + (uint64_t)sv->cfg.idle_timeout_s * 1000000000u + body_ns);
	*answered = 0;
	return MHD_YES;
}

static int has_body(struct MHD_Connection *mc, enum method m)
{
	return (m & (M_PUT | M_POST)) ||
	       MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH) ||
	       MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
}

static int take_body(server *sv, req *q, const char *data, size_t n)
{
	/* a body must keep up MIN_BODY_RATE on average once the idle time is used up (a client
	 * trickling bytes just within the idle timeout would otherwise hold the connection for as
	 * long as its declared length allows) */
	uint64_t now = now_ns(), idle = (uint64_t)sv->cfg.idle_timeout_s * 1000000000u;
	if (!q->body_t0)
		q->body_t0 = now;
	q->received += n;
	if (now - q->body_t0 > idle &&
	    q->received < (now - q->body_t0 - idle) / 1000000000u * MIN_BODY_RATE) {
		atomic_fetch_add(&sv->cut, 1);
		return ETIMEDOUT; /* the connection is closed */
	}
	if (q->w) {
		if (!q->stream_err)
			q->stream_err = hl_writer_write(q->w, data, n); /* after an error: read and dropped */
		return 0;
	}
	if (q->too_big || q->len + n > sv->cfg.max_body) {
		q->too_big = 1; /* the rest is read and dropped; the answer is 413 */
		return 0;
	}
	if (q->len + n > q->cap) {
		size_t cap = q->cap ? q->cap : 4096;
		while (cap < q->len + n)
			cap *= 2;
		if (cap > sv->cfg.max_body)
			cap = (size_t)sv->cfg.max_body;
		uint8_t *p = realloc(q->body, cap);
		if (!p)
			return ENOMEM;
		q->body = p;
		q->cap = cap;
	}
	memcpy(q->body + q->len, data, n);
	q->len += n;
	return 0;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **ctx)
{
	server *sv = cls;
	(void)version;
	req *q = *ctx;
	int answered;
	enum MHD_Result r;
	if (!q || !q->started) {
		if (!q && !(q = calloc(1, sizeof(*q))))
			return MHD_NO;
		*ctx = q;
		q->started = 1;
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
		static conn none = {.fd = -1};
		q->c = ci && ci->socket_context ? ci->socket_context : &none;
		q->method = method_of(method);
		atomic_fetch_add(&sv->inflight, 1);
		q->counted = 1;
		if (!has_body(mc, q->method))
			return MHD_YES; /* checked on the next call */
		q->checked = 1;
		r = check(sv, mc, url, method, q, &answered);
		return answered ? r : MHD_YES;
	}
	if (q->suspended) { /* resumed: a writer thread has the answer */
		q->suspended = 0;
		if (!q->answer_status)
			return MHD_NO;
		enum MHD_Result ok = MHD_queue_response(mc, q->answer_status, q->answer);
		MHD_destroy_response(q->answer);
		q->answer = NULL;
		return ok;
	}
	if (*upload_size) {
		if (take_body(sv, q, upload, *upload_size))
			return MHD_NO;
		*upload_size = 0;
		return MHD_YES;
	}
	if (!q->checked) {
		q->checked = 1;
		r = check(sv, mc, url, method, q, &answered);
		if (answered)
			return r;
	}
	atomic_store(&q->c->deadline_ns, 0); /* the request is in: answering has no deadline */
	if (q->too_big)
		return send_error(sv, mc, 413, "too_large", "the body is larger than the %llu-byte limit",
		                  (unsigned long long)sv->cfg.max_body);
	if (sv->nwriters && (q->method & (M_PUT | M_POST | M_DELETE))) {
		offload(sv, mc, q);
		return MHD_YES;
	}
	return dispatch(sv, mc, q);
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **ctx,
                         enum MHD_RequestTerminationCode toe)
{
	server *sv = cls;
	req *q = *ctx;
	(void)mc, (void)toe;
	if (!q)
		return;
	if (q->c && q->c->fd >= 0) /* the next request's headers must arrive within the idle limit */
		atomic_store(&q->c->deadline_ns, now_ns() + (uint64_t)sv->cfg.idle_timeout_s * 1000000000u);
	if (q->counted)
		atomic_fetch_sub(&sv->inflight, 1);
	if (q->answer)
		MHD_destroy_response(q->answer);
	hl_writer_abort(q->w); /* the client went away mid-upload */
	free(q->body);
	free(q);
	*ctx = NULL;
}

/* The request's state, made when its request line arrives, while the path is still as the client
 * sent it: libmicrohttpd decodes %00 into a NUL that would silently cut the name short. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	(void)cls, (void)mc;
	req *q = calloc(1, sizeof(*q));
	if (q && uri)
		q->nul_in_path = srv_raw_path_check(uri, strlen(uri)) != 0;
	return q; /* NULL: on_request allocates it (and cannot see the raw path) */
}

/* ---------- connections and the slow-client sweeper ---------- */

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode code)
{
	server *sv = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		conn *c = calloc(1, sizeof(*c));
		if (!c)
			return;
		const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
		c->fd = ci ? ci->connect_fd : -1;
		/* past the limit a connection is still taken (libmicrohttpd's own limit is higher; see
		 * hl_server_run), its first request answered at once and the connection closed, so a
		 * client learns of the overload instead of waiting in the listen backlog */
		c->over = atomic_load(&sv->open_conns) >= (long)sv->cfg.max_conns;
		uint64_t idle_s = c->over && sv->cfg.idle_timeout_s > 10 ? 10 : sv->cfg.idle_timeout_s;
		atomic_store(&c->deadline_ns, now_ns() + idle_s * 1000000000u);
		pthread_mutex_lock(&sv->conns_mu);
		c->next = sv->conns;
		if (c->next)
			c->next->prev = c;
		sv->conns = c;
		pthread_mutex_unlock(&sv->conns_mu);
		atomic_fetch_add(&sv->open_conns, 1);
		*socket_ctx = c;
	} else if (code == MHD_CONNECTION_NOTIFY_CLOSED && *socket_ctx) {
		conn *c = *socket_ctx;
		pthread_mutex_lock(&sv->conns_mu); /* the sweeper never touches a closed socket */
		if (c->prev)
			c->prev->next = c->next;
		else
			sv->conns = c->next;
		if (c->next)
			c->next->prev = c->prev;
		pthread_mutex_unlock(&sv->conns_mu);
		atomic_fetch_sub(&sv->open_conns, 1);
		free(c);
		*socket_ctx = NULL;
	}
}

/* MHD's idle timeout restarts with every byte, so a client sending a byte a second would hold a
 * connection forever; this thread shuts down connections whose request is overdue (MHD then
 * closes them as it would on a reset). */
static void *sweeper_main(void *arg)
{
	server *sv = arg;
	while (!atomic_load(&sv->stopping)) {
		usleep(200000);
		uint64_t now = now_ns();
		pthread_mutex_lock(&sv->conns_mu);
		for (conn *c = sv->conns; c; c = c->next) {
			uint64_t dl = atomic_load(&c->deadline_ns);
			if (dl && now > dl && c->fd >= 0) {
				shutdown(c->fd, SHUT_RDWR);
				atomic_store(&c->deadline_ns, 0);
				atomic_fetch_add(&sv->cut, 1);
			}
		}
		pthread_mutex_unlock(&sv->conns_mu);
	}
	return NULL;
}

/* ---------- start, run, stop ---------- */

static int sig_pipe[2] = {-1, -1};

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;
	if (write(sig_pipe[1], &c, 1) < 0) {
	}
	errno = saved;
}

/* "ADDR:PORT" or "[ADDR6]:PORT" into a socket address; *loopback says whether it is one. */
static int parse_listen(const char *s, struct sockaddr_storage *ss, socklen_t *sl, int *loopback)
{
	char host[128];
	const char *colon = strrchr(s, ':');
	if (!colon || colon == s || (size_t)(colon - s) >= sizeof host)
		return HL_INVALID;
	char *end;
	unsigned long port = strtoul(colon + 1, &end, 10);
	if (*end || end == colon + 1 || port > 65535)
		return HL_INVALID;
	memcpy(host, s, (size_t)(colon - s));
	host[colon - s] = 0;
	memset(ss, 0, sizeof(*ss));
	if (host[0] == '[') {
		size_t n = strlen(host);
		if (n < 3 || host[n - 1] != ']')
			return HL_INVALID;
		host[n - 1] = 0;
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, host + 1, &a->sin6_addr) != 1)
			return HL_INVALID;
		*loopback = IN6_IS_ADDR_LOOPBACK(&a->sin6_addr);
		*sl = sizeof(*a);
		return 0;
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;
	a->sin_family = AF_INET;
	a->sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, !strcmp(host, "localhost") ? "127.0.0.1" : host, &a->sin_addr) != 1)
		return HL_INVALID;
	*loopback = (ntohl(a->sin_addr.s_addr) >> 24) == 127;
	*sl = sizeof(*a);
	return 0;
}

static int load_tokens(server *sv, const char *path, const char **why, int warn)
{
	FILE *f = fopen(path, "re");
	if (!f) {
		*why = "cannot read the token file";
		return errno;
	}
	struct stat st;
	if (warn && fstat(fileno(f), &st) == 0 && (st.st_mode & 077))
		fprintf(stderr, "helios: warning: token file %s is readable by others (chmod 600 it)\n", path);
	char *text = malloc(1 << 20);
	size_t len = text ? fread(text, 1, 1 << 20, f) : 0;
	int big = text && !feof(f);
	fclose(f);
	if (!text)
		return ENOMEM;
	sv->tokens = calloc(MAX_TOKENS, sizeof(*sv->tokens));
	size_t bad = 0;
	int err = !sv->tokens ? ENOMEM : big ? HL_TOOBIG :
	          srv_tokens_parse(text, len, sv->tokens, MAX_TOKENS, &sv->ntokens, &bad);
	free(text);
	if (err) {
		static char msg[160];
		snprintf(msg, sizeof msg, "token file: line %zu is not \"<token of 16+ characters> <read|write|admin>\"", bad);
		*why = err == HL_INVALID ? msg : "token file: too large";
		return err;
	}
	if (sv->ntokens == 0) {
		*why = "token file: no tokens";
		return HL_INVALID;
	}
	return 0;
}

/* Where to listen, and who may ask: the address parsed into *ss, the tokens loaded into sv; a
 * non-loopback address without tokens is refused. On failure *why says why (tokens freed). */
static int access_setup(const hl_server_config *cfg, server *sv, struct sockaddr_storage *ss,
                        socklen_t *sl, int warn, const char **why)
{
	int loopback, err;
	*why = NULL;
	if (parse_listen(cfg->listen, ss, sl, &loopback)) {
		*why = "--listen must be ADDR:PORT or [ADDR6]:PORT";
		return HL_INVALID;
	}
	if (!loopback && !cfg->token_file) {
		*why = "listening beyond loopback needs --token-file";
		return HL_INVALID;
	}
	if (cfg->token_file && (err = load_tokens(sv, cfg->token_file, why, warn)) != 0) {
		free(sv->tokens);
		sv->tokens = NULL;
		return err;
	}
	return 0;
}

/* libmicrohttpd stops accepting at its own limit, and clients past it would wait unanswered in
 * the listen backlog; so it gets room past --max-conns for connections that are answered 503 and
 * closed: as many again (at least 256), within the open-file limit (raised to its maximum). */
static unsigned accept_limit(unsigned max_conns)
{
	uint64_t want = (uint64_t)max_conns + (max_conns > 256 ? max_conns : 256);
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		if (rl.rlim_cur < rl.rlim_max) {
			rl.rlim_cur = rl.rlim_max;
			if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
				getrlimit(RLIMIT_NOFILE, &rl);
		}
		if (rl.rlim_cur != RLIM_INFINITY) {
			uint64_t room = rl.rlim_cur > 512 ? (uint64_t)rl.rlim_cur - 256 : 256; /* the store's files */
			if (want > room)
				want = room > max_conns ? room : max_conns;
		}
	}
	return want > UINT_MAX ? UINT_MAX : (unsigned)want;
}

int hl_server_check(const hl_server_config *cfg, const char **why)
{
	struct sockaddr_storage ss;
	socklen_t sl;
	server probe;
	memset(&probe, 0, sizeof probe);
	int err = access_setup(cfg, &probe, &ss, &sl, 0, why);
	free(probe.tokens);
	return err;
}

int hl_server_run(hl_store *s, const hl_server_config *cfg, const char **why)
{
	static server sv_static; /* signal handling is process-wide: one server per process */
	server *sv = &sv_static;
	memset(sv, 0, sizeof(*sv));
	sv->store = s;
	sv->cfg = *cfg;
	struct sockaddr_storage ss;
	socklen_t sl;
	int err = access_setup(cfg, sv, &ss, &sl, 1, why);
	if (err)
		return err;
	unsigned threads = cfg->threads;
	if (!threads) {
		long cores = sysconf(_SC_NPROCESSORS_ONLN);
		threads = cores > 2 ? (unsigned)cores : 2;
	}
	if (pipe2(sig_pipe, O_CLOEXEC)) {
		free(sv->tokens);
		return errno;
	}
	pthread_mutex_init(&sv->conns_mu, NULL);
	pthread_mutex_init(&sv->jobs_mu, NULL);
	pthread_cond_init(&sv->jobs_cv, NULL);
	if (cfg->write_threads && !(sv->writers = calloc(cfg->write_threads, sizeof(pthread_t)))) {
		err = ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < cfg->write_threads; i++) {
		if ((err = pthread_create(&sv->writers[i], NULL, writer_main, sv)) != 0)
			goto out;
		pthread_setname_np(sv->writers[i], "helios-write");
		sv->nwriters++;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	sv->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, on_request, sv,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_LIMIT, accept_limit(cfg->max_conns),
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
		MHD_OPTION_URI_LOG_CALLBACK, on_uri, sv,
		MHD_OPTION_NOTIFY_COMPLETED, on_completed, sv,
		MHD_OPTION_NOTIFY_CONNECTION, on_connection, sv,
		MHD_OPTION_END);
	if (!sv->d) {
		*why = "cannot listen there (address in use, or not allowed)";
		err = errno ? errno : EADDRINUSE;
		goto out;
	}
	if ((err = pthread_create(&sv->sweeper, NULL, sweeper_main, sv)) != 0) {
		MHD_stop_daemon(sv->d);
		goto out;
	}
	pthread_setname_np(sv->sweeper, "helios-sweep");
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
	char shown[160];
	snprintf(shown, sizeof shown, "%.*s:%u", (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen,
	         di ? di->port : 0);
	printf("helios: serving http://%s\n", shown);
	fflush(stdout);

	char sig = 0;
	while (read(sig_pipe[0], &sig, 1) < 0 && errno == EINTR)
		;
	/* graceful stop: no new connections, requests in flight answered, then everything synced */
	atomic_store(&sv->stopping, 1);
	MHD_socket lfd = MHD_quiesce_daemon(sv->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	uint64_t until = now_ns() + (uint64_t)cfg->drain_s * 1000000000u;
	while (atomic_load(&sv->inflight) > 0 && now_ns() < until)
		usleep(10000);
	long left = atomic_load(&sv->inflight);
	writers_stop(sv); /* answers whatever is still queued, resuming its connection */
	MHD_stop_daemon(sv->d);
	pthread_join(sv->sweeper, NULL);
	err = hl_sync(s);
	hl_stats st;
	if (!err && hl_stats_get(s, &st) == 0 && st.unindexed) /* durable, so no failure: said all the same */
		fprintf(stderr, "helios: %llu objects are durable in the segment files but could not be "
		        "indexed (no space left on device); the next open indexes them\n",
		        (unsigned long long)st.unindexed);
	if (!cfg->quiet)
		fprintf(stderr, "helios: stopped on %s%s\n", sig == SIGINT ? "SIGINT" : "SIGTERM",
		        left ? " (drain time ran out with requests in flight)" : "");
	if (err)
		*why = "final sync failed";
out:
	writers_stop(sv);
	pthread_mutex_destroy(&sv->jobs_mu);
	pthread_cond_destroy(&sv->jobs_cv);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	pthread_mutex_destroy(&sv->conns_mu);
	free(sv->tokens);
	sv->tokens = NULL;
	return err;
}
