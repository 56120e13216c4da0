/* server_respond.c — the server's answers: status counting, JSON error bodies (one per hl_*
 * code), buffers, streams of large objects, HEAD and Range, and answers kept for a request a writer
 * thread completes (queued by the event loop when the connection resumes). */
#include "server/server_int.h"

__thread struct req *hl_sv_deferred;

/* ---------- responses ---------- */



enum MHD_Result hl_sv_queue(server *sv, struct MHD_Connection *mc, unsigned status,
                            struct MHD_Response *r)
{
	if (!r)
		return MHD_NO;
	atomic_fetch_add(&sv->status[status / 100 <= 5 ? status / 100 : 5], 1);
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	if (ci && ci->socket_context && ((conn *)ci->socket_context)->over)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONNECTION, "close");
	if (hl_sv_deferred)
		return keep_answer(hl_sv_deferred, status, r);
	enum MHD_Result ok = MHD_queue_response(mc, status, r);
	MHD_destroy_response(r);
	return ok;
}

struct MHD_Response *hl_sv_text_response(char *text, size_t len, const char *type)
{
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE);
	if (r && type)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, type);
	return r;
}

enum MHD_Result hl_sv_send_json(server *sv, struct MHD_Connection *mc, unsigned status, json_t *j,
                                const char *etag)
{
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (!text)
		return MHD_NO;
	struct MHD_Response *r = hl_sv_text_response(text, strlen(text), "application/json");
	if (r && etag)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	return hl_sv_queue(sv, mc, status, r);
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
	struct MHD_Response *r = hl_sv_text_response(text, strlen(text), "application/json");
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

enum MHD_Result hl_sv_send_error(server *sv, struct MHD_Connection *mc, unsigned status,
                                 const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
enum MHD_Result hl_sv_send_error(server *sv, struct MHD_Connection *mc, unsigned status,
                                 const char *code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct MHD_Response *r = error_response(status, code, fmt, ap);
	va_end(ap);
	return hl_sv_queue(sv, mc, status, r);
}

enum MHD_Result hl_sv_send_405(server *sv, struct MHD_Connection *mc, unsigned allow,
                               const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
enum MHD_Result hl_sv_send_405(server *sv, struct MHD_Connection *mc, unsigned allow,
                               const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	struct MHD_Response *r = error_response(405, "method_not_allowed", fmt, ap);
	va_end(ap);
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, hl_sv_allow_header(allow));
	return hl_sv_queue(sv, mc, 405, r);
}

/* The status and error code for an API result. */
enum MHD_Result hl_sv_send_err(server *sv, struct MHD_Connection *mc, int err, const char *what)
{
	unsigned st = 500;
	const char *code = "internal";
	switch (err) {
	case HL_NOTFOUND: st = 404, code = "not_found"; break;
	case HL_FORGOTTEN: st = 410, code = "forgotten"; break;
	case HL_AMBIGUOUS: st = 400, code = "ambiguous"; break;
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
	return hl_sv_send_error(sv, mc, st, code, "%s: %s", what, hl_strerror(err));
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
	return hl_sv_queue(sv, mc, 416, r);
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
		return hl_sv_queue(sv, mc, 200, r);
	char cr[80];
	snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)off,
	         (unsigned long long)(off + len - 1), (unsigned long long)size);
	MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_RANGE, cr);
	return hl_sv_queue(sv, mc, 206, r);
}

/* Content of b (one reference handed over), from the L1's buffer without a copy; honours Range. */
enum MHD_Result hl_sv_send_buf(server *sv, struct MHD_Connection *mc, hl_buf *b, const char *etag,
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

enum MHD_Result hl_sv_send_stream(server *sv, struct MHD_Connection *mc, hl_reader *r,
                                  uint64_t size, const char *etag)
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
enum MHD_Result hl_sv_send_head(server *sv, struct MHD_Connection *mc, uint64_t size,
                                const char *etag)
{
	struct MHD_Response *r = MHD_create_response_from_callback(size, 4096, no_body, NULL, NULL);
	if (r && etag)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/octet-stream");
	return hl_sv_queue(sv, mc, 200, r);
}

void hl_sv_etag_of(const hl_id *id, char out[HL_ID_HEX_LEN + 3])
{
	out[0] = '"';
	hl_id_format(id, out + 1);
	out[HL_ID_HEX_LEN + 1] = '"';
	out[HL_ID_HEX_LEN + 2] = 0;
}

json_t *hl_sv_id_json(const hl_id *id)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	return json_string(hex);
}

/* The answer to a stored blob, {"id": …, "size": …, "created": …}: formatted directly, since it
 * is the answer to the most frequent write. */
enum MHD_Result hl_sv_send_put_result(server *sv, struct MHD_Connection *mc, const hl_id *id,
                                      size_t size, int created)
{
	char hex[HL_ID_HEX_LEN + 1], etag[HL_ID_HEX_LEN + 3];
	hl_id_format(id, hex);
	hl_sv_etag_of(id, etag);
	char *text = malloc(160);
	if (!text)
		return MHD_NO;
	int n = snprintf(text, 160, "{\"id\":\"%s\",\"size\":%zu,\"created\":%s}", hex, size,
	                 created ? "true" : "false");
	struct MHD_Response *r = hl_sv_text_response(text, (size_t)n, "application/json");
	if (r)
		MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
	return hl_sv_queue(sv, mc, created ? 201 : 200, r);
}
