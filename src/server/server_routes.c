/* server_routes.c — what a request is: the URL routed to a route, the scope a method on it needs
 * and whether the token grants it, and the handlers that answer once the body is complete. */
#include "server/server_int.h"

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
unsigned hl_sv_route(const char *url, req *q, const char **why)
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
		{"/v1/admin/gc", R_ADMIN_GC}, {"/v1/admin/forget", R_ADMIN_FORGET},
		{"/v1/missing", R_MISSING}, {"/v1/batch", R_BATCH},
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
	if (!strncmp(url, "/v1/log/", 8) || !strncmp(url, "/v1/commits/", 12)) {
		const char *rev = url + (url[4] == 'l' ? 8 : 12);
		q->route = url[4] == 'l' ? R_LOG : R_COMMIT;
		*why = "malformed revision: a ref, an id or a prefix of one, then ~N, ^, ^N or @{TIME}";
		if (!*rev || strlen(rev) >= sizeof q->key)
			return 400;
		snprintf(q->key, sizeof q->key, "%s", rev);
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

unsigned hl_sv_allowed_methods(enum route r)
{
	switch (r) {
	case R_BLOB: return M_GET | M_HEAD | M_PUT;
	case R_BLOBS: return M_POST;
	case R_MISSING: case R_BATCH: case R_ADMIN_SYNC: case R_ADMIN_GC: case R_ADMIN_FORGET: return M_POST;
	case R_REF: return M_GET | M_HEAD | M_PUT | M_DELETE;
	case R_REFS: return M_GET | M_HEAD;
	case R_KV: return M_GET | M_HEAD | M_PUT | M_DELETE;
	case R_BAZEL_AC: case R_BAZEL_CAS: return M_GET | M_HEAD | M_PUT;
	default: return M_GET | M_HEAD;
	}
}

const char *hl_sv_allow_header(unsigned m)
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

int hl_sv_scope_needed(enum route r, enum method m)
{
	if (r == R_HEALTHZ || r == R_READYZ)
		return SRV_SCOPE_NONE;
	if (r == R_ADMIN_SYNC || r == R_ADMIN_STATS || r == R_ADMIN_GC || r == R_ADMIN_FORGET)
		return SRV_SCOPE_ADMIN;
	if (r == R_MISSING)
		return SRV_SCOPE_READ; /* a question, though it is a POST */
	return (m & (M_GET | M_HEAD)) ? SRV_SCOPE_READ : SRV_SCOPE_WRITE;
}

/* The scope the request's credentials grant (SRV_SCOPE_ADMIN when authentication is off), or
 * -1 when credentials are absent or wrong. Tokens are compared in constant time. */
int hl_sv_granted(server *sv, struct MHD_Connection *mc)
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
		return hl_sv_send_error(sv, mc, 422, "mismatch", "the body does not hash to %s; the object is not stored", hex);
	}
	if (err == HL_TOOBIG)
		return hl_sv_send_error(sv, mc, 413, "too_large", "the object is larger than the store accepts");
	if (err)
		return hl_sv_send_err(sv, mc, err, "put");
	hl_stat st;
	if (hl_stat_object(sv->store, &id, &st) == 0)
		size = st.size;
	return hl_sv_send_put_result(sv, mc, &id, (size_t)size, created);
}

static enum MHD_Result h_blob(server *sv, struct MHD_Connection *mc, req *q)
{
	char etag[HL_ID_HEX_LEN + 3];
	hl_sv_etag_of(&q->id, etag);
	if (q->w)
		return finish_stream(sv, mc, q);
	if (q->method == M_PUT) {
		int created = 0, err = hl_put_expect(sv->store, &q->id, q->body ? q->body : (uint8_t *)"", q->len, &created);
		if (err == HL_MISMATCH)
			return hl_sv_send_error(sv, mc, 422, "mismatch", "the body does not hash to %s; nothing stored", etag);
		if (err)
			return hl_sv_send_err(sv, mc, err, "put");
		return hl_sv_send_put_result(sv, mc, &q->id, q->len, created);
	}
	const char *inm = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
	if (q->method == M_HEAD) {
		hl_stat st;
		int err = hl_stat_object(sv->store, &q->id, &st);
		return err ? hl_sv_send_err(sv, mc, err, "head") : hl_sv_send_head(sv, mc, st.size, etag);
	}
	if (inm && !strcmp(inm, etag) && hl_has(sv->store, &q->id) == 0) {
		struct MHD_Response *r = MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT);
		if (r)
			MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
		return hl_sv_queue(sv, mc, 304, r);
	}
	hl_reader *r;
	uint64_t size;
	int err = hl_reader_open(sv->store, &q->id, &r, &size);
	if (err)
		return hl_sv_send_err(sv, mc, err, "get");
	hl_buf *b = hl_reader_whole(r);
	if (b) {
		hl_reader_close(r);
		return hl_sv_send_buf(sv, mc, b, etag, 1);
	}
	return hl_sv_send_stream(sv, mc, r, size, etag); /* a chunked object: streamed, chunk by chunk */
}

static enum MHD_Result h_blobs(server *sv, struct MHD_Connection *mc, req *q)
{
	if (q->w)
		return finish_stream(sv, mc, q);
	hl_id id;
	int created = 0, err = hl_put(sv->store, q->body ? q->body : (uint8_t *)"", q->len, &id, &created);
	if (err)
		return hl_sv_send_err(sv, mc, err, "put");
	return hl_sv_send_put_result(sv, mc, &id, q->len, created);
}

static enum MHD_Result h_missing(server *sv, struct MHD_Connection *mc, req *q)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)q->body, q->len, JSON_REJECT_DUPLICATES, &je);
	json_t *ids = j ? json_object_get(j, "ids") : NULL;
	if (!j || !json_is_array(ids)) {
		json_decref(j);
		return hl_sv_send_error(sv, mc, 400, "invalid", "expected {\"ids\": [\"<id>\", ...]}%s%s",
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
			return hl_sv_send_error(sv, mc, 400, "invalid", "ids[%zu] is not 64 lowercase hex characters", i);
		}
		int err = hl_has(sv->store, &id);
		if (err == HL_NOTFOUND || err == HL_CORRUPT)
			json_array_append_new(missing, json_string(hex));
		else if (err) {
			json_decref(j);
			json_decref(missing);
			return hl_sv_send_err(sv, mc, err, "has");
		}
	}
	json_decref(j);
	return hl_sv_send_json(sv, mc, 200, json_pack("{s:o}", "missing", missing), NULL);
}

static enum MHD_Result h_batch(server *sv, struct MHD_Connection *mc, req *q)
{
	size_t cap = q->len / (HL_ID_HEX_LEN + 3) + 1, n, where;
	hl_put_item *items = calloc(cap, sizeof(*items));
	if (!items)
		return hl_sv_send_err(sv, mc, ENOMEM, "batch");
	int err = hl_batch_decode(q->body, q->len, items, cap, &n, &where);
	if (err) {
		free(items);
		return hl_sv_send_error(sv, mc, 400, "invalid",
		                  "malformed batch record at byte %zu: expected \"<64 hex id> <length>\\n<bytes>\"", where);
	}
	if ((err = hl_put_batch(sv->store, items, n)) != 0) {
		free(items);
		if (err == HL_MISMATCH)
			return hl_sv_send_error(sv, mc, 422, "mismatch", "a record's bytes do not hash to its id; nothing stored");
		return hl_sv_send_err(sv, mc, err, "batch");
	}
	json_t *res = json_array();
	size_t created = 0;
	for (size_t i = 0; i < n; i++) {
		created += items[i].created != 0;
		json_array_append_new(res, json_pack("{s:o, s:b}", "id", hl_sv_id_json(&items[i].id), "created", items[i].created));
	}
	free(items);
	return hl_sv_send_json(sv, mc, 200, json_pack("{s:I, s:I, s:o}", "records", (json_int_t)n, "created",
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
			return hl_sv_send_err(sv, mc, err, q->name);
		hl_sv_etag_of(&cur, etag);
		return hl_sv_send_json(sv, mc, 200, json_pack("{s:s, s:o}", "name", q->name, "id", hl_sv_id_json(&cur)), etag);
	}
	if (im && srv_etag_id(im, strlen(im), &expect))
		return hl_sv_send_error(sv, mc, 400, "invalid", "If-Match must be \"<64 hex id>\" in quotes");
	if (inm && strcmp(inm, "*"))
		return hl_sv_send_error(sv, mc, 400, "invalid", "If-None-Match on a ref must be *");
	if (q->method == M_DELETE) {
		if (!im)
			return hl_sv_send_error(sv, mc, 428, "precondition_required", "DELETE of a ref needs If-Match: \"<current id>\"");
		int err = hl_ref_delete(sv->store, q->name, &expect);
		if (err)
			return hl_sv_send_err(sv, mc, err, q->name);
		return hl_sv_queue(sv, mc, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
	}
	if (!im == !inm)
		return hl_sv_send_error(sv, mc, 428, "precondition_required",
		                  "PUT of a ref needs exactly one of If-Match: \"<current id>\" and If-None-Match: *");
	json_error_t je;
	json_t *j = json_loadb((const char *)q->body, q->len, JSON_REJECT_DUPLICATES, &je);
	const char *v = j ? json_string_value(json_object_get(j, "id")) : NULL;
	int bad = !v || hl_id_parse(v, strlen(v), &target);
	json_decref(j);
	if (bad)
		return hl_sv_send_error(sv, mc, 400, "invalid", "expected {\"id\": \"<64 lowercase hex>\"}");
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&target, hex);
	int err = hl_ref_cas(sv->store, q->name, im ? &expect : NULL, &target);
	if (err == HL_CONFLICT)
		return hl_sv_send_error(sv, mc, 412, "conflict", "%s: %s", q->name,
		                  im ? "it does not point at the If-Match id" : "it already exists");
	if (err == HL_INCOMPLETE)
		return hl_sv_send_error(sv, mc, 409, "incomplete", "%s: target %s is not stored", q->name, hex);
	if (err)
		return hl_sv_send_err(sv, mc, err, q->name);
	hl_sv_etag_of(&target, etag);
	return hl_sv_send_json(sv, mc, inm ? 201 : 200, json_pack("{s:s, s:o}", "name", q->name, "id", hl_sv_id_json(&target)), etag);
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
	return json_array_append_new(a->arr, json_pack("{s:s, s:o}", "name", name, "id", hl_sv_id_json(id))) ? ENOMEM : 0;
}

static enum MHD_Result h_refs(server *sv, struct MHD_Connection *mc)
{
	const char *prefix = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "prefix");
	ref_acc a = {json_array(), 0};
	int err = hl_ref_list(sv->store, prefix, add_ref, &a);
	if (err && err != 1) {
		json_decref(a.arr);
		return hl_sv_send_err(sv, mc, err, "list");
	}
	return hl_sv_send_json(sv, mc, 200, json_pack("{s:o, s:b}", "refs", a.arr, "truncated", err == 1), NULL);
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
				return hl_sv_send_error(sv, mc, 400, "invalid", "X-Helios-Object needs a 64 hex id and an empty body");
			if (q->route == R_BAZEL_CAS && (err = cas_matches(sv, &id, q->id.b)) != 0)
				return err == HL_MISMATCH
				       ? hl_sv_send_error(sv, mc, 422, "mismatch", "object %s's SHA-256 is not %s; nothing stored", obj, q->key)
				       : err == HL_NOTFOUND ? hl_sv_send_error(sv, mc, 409, "incomplete", "object %s is not stored", obj)
				                            : hl_sv_send_err(sv, mc, err, "put");
			if ((err = hl_kv_link(sv->store, ns, q->key, q->klen, &id)) == HL_INCOMPLETE)
				return hl_sv_send_error(sv, mc, 409, "incomplete", "object %s is not stored", obj);
			if (err || (err = hl_kv_stat(sv->store, ns, q->key, q->klen, &size)) != 0)
				return hl_sv_send_err(sv, mc, err, "put");
			return hl_sv_send_json(sv, mc, 201, json_pack("{s:I}", "size", (json_int_t)size), NULL);
		}
		if (q->route == R_BAZEL_CAS) {
			uint8_t sha[32];
			hl_sha256(data, q->len, sha);
			if (memcmp(sha, q->id.b, 32))
				return hl_sv_send_error(sv, mc, 422, "mismatch", "the body's SHA-256 is not %s; nothing stored", q->key);
		}
		if ((err = hl_kv_put(sv->store, ns, q->key, q->klen, data, q->len)) != 0)
			return hl_sv_send_err(sv, mc, err, "put");
		return hl_sv_send_json(sv, mc, 201, json_pack("{s:I}", "size", (json_int_t)q->len), NULL);
	}
	case M_DELETE:
		if ((err = hl_kv_delete(sv->store, ns, q->key, q->klen)) != 0)
			return hl_sv_send_err(sv, mc, err, "delete");
		return hl_sv_queue(sv, mc, 204, MHD_create_response_from_buffer(0, "", MHD_RESPMEM_PERSISTENT));
	case M_HEAD:
		if ((err = hl_kv_lookup(sv->store, ns, q->key, q->klen, &id, &size)) != 0)
			return hl_sv_send_err(sv, mc, err, "head");
		hl_sv_etag_of(&id, etag);
		return hl_sv_send_head(sv, mc, size, etag);
	default: {
		hl_buf *b;
		if ((err = hl_kv_lookup(sv->store, ns, q->key, q->klen, &id, NULL)) == 0)
			err = hl_get(sv->store, &id, &b);
		if (err == HL_CORRUPT) /* a cache: a value that fails verification is a miss */
			err = HL_NOTFOUND;
		hl_sv_etag_of(&id, etag);
		return err ? hl_sv_send_err(sv, mc, err, "get") : hl_sv_send_buf(sv, mc, b, etag, 0);
	}
	}
}

static enum MHD_Result h_metrics(server *sv, struct MHD_Connection *mc)
{
	char *text;
	size_t len;
	int err = hl_metrics_text(sv->store, &text, &len);
	if (err)
		return hl_sv_send_err(sv, mc, err, "metrics");
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
	return hl_sv_queue(sv, mc, 200, hl_sv_text_response(all, len + (size_t)n, "text/plain; version=0.0.4; charset=utf-8"));
}

static enum MHD_Result h_ready(server *sv, struct MHD_Connection *mc)
{
	hl_health h;
	int err = hl_health_get(sv->store, &h);
	if (err)
		return hl_sv_send_err(sv, mc, err, "health");
	int ready = !atomic_load(&sv->stopping) && h.level != HL_HEALTH_UNHEALTHY;
	static const char *levels[] = {"ok", "degraded", "unhealthy"};
	return hl_sv_send_json(sv, mc, ready ? 200 : 503,
	                 json_pack("{s:s, s:i, s:s, s:s}", "status", ready ? "ready" : "not_ready", "score", h.score,
	                           "level", levels[h.level], "reason", atomic_load(&sv->stopping) ? "shutting down" : h.reason),
	                 NULL);
}

static enum MHD_Result h_admin(server *sv, struct MHD_Connection *mc, req *q)
{
	if (q->route == R_ADMIN_SYNC) {
		int err = hl_sync(sv->store);
		return err ? hl_sv_send_err(sv, mc, err, "sync") : hl_sv_send_json(sv, mc, 200, json_pack("{s:b}", "synced", 1), NULL);
	}
	hl_stats st;
	hl_backend_info bi;
	const char *count = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "backend");
	int err = hl_stats_get(sv->store, &st);
	if (!err)
		err = hl_backend_get(sv->store, count && (!strcmp(count, "1") || !strcmp(count, "true")), &bi);
	if (err)
		return hl_sv_send_err(sv, mc, err, "stats");
	json_t *be = json_pack("{s:s, s:b}", "kind", bi.kind, "shared", bi.shared);
	if (bi.counted) {
		json_object_set_new(be, "objects", json_integer((json_int_t)bi.objects));
		json_object_set_new(be, "bytes", json_integer((json_int_t)bi.bytes));
		json_object_set_new(be, "chunked", json_integer((json_int_t)bi.chunked));
	}
	return hl_sv_send_json(sv, mc, 200,
	                 json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:i}", "backend", be,
	                           "objects", (json_int_t)st.objects,
	                           "logical_bytes", (json_int_t)st.logical_bytes, "stored_bytes", (json_int_t)st.stored_bytes,
	                           "quarantined", (json_int_t)st.quarantined, "l1_hits", (json_int_t)st.l1_hits,
	                           "l1_misses", (json_int_t)st.l1_misses, "busy", (json_int_t)st.busy,
	                           "health_score", st.health_score),
	                 NULL);
}

/* The unsigned integer query argument name (def when absent); -1 when malformed. */
static int64_t arg_uint(struct MHD_Connection *mc, const char *name, int64_t def)
{
	const char *v = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, name);
	if (!v)
		return def;
	char *end;
	unsigned long long x = strtoull(v, &end, 10);
	return *v && !*end && x <= INT64_MAX ? (int64_t)x : -1;
}

/* POST /v1/admin/gc[?dry_run=1][&repack=LEVEL][&compact_rate=BYTES]: one collection (repacking
 * at LEVEL, 1..22; its compaction moving BYTES a second at most), answered with its report (on a
 * writer thread when there are any, so event loops keep serving meanwhile). */
static enum MHD_Result h_gc(server *sv, struct MHD_Connection *mc)
{
	hl_gc_options o;
	hl_gc_options_init(&o);
	const char *dry = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "dry_run");
	o.dry_run = dry && (!strcmp(dry, "1") || !strcmp(dry, "true"));
	int64_t repack = arg_uint(mc, "repack", 0);
	if (repack < 0 || repack > HL_REPACK_LEVEL_MAX)
		return hl_sv_send_error(sv, mc, 400, "invalid", "repack takes a zstd level, 1..%d (0: none)",
		                        HL_REPACK_LEVEL_MAX);
	o.repack = (int)repack;
	int64_t rate = arg_uint(mc, "compact_rate", 0);
	if (rate < 0)
		return hl_sv_send_error(sv, mc, 400, "invalid", "compact_rate takes bytes per second (0: unpaced)");
	o.compact_rate = (uint64_t)rate;
	hl_gc_report r;
	int err = hl_gc(sv->store, &o, &r);
	if (err == HL_BUSY)
		return hl_sv_send_error(sv, mc, 409, "busy", "a collection is already running");
	if (err)
		return hl_sv_send_err(sv, mc, err, "gc");
	return hl_sv_send_json(sv, mc, 200,
	                 json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:f}",
	                           "dry_run", o.dry_run,
	                           "objects", (json_int_t)r.objects, "reachable", (json_int_t)r.reachable,
	                           "young", (json_int_t)r.young, "held", (json_int_t)r.held,
	                           "collected", (json_int_t)r.collected,
	                           "collected_bytes", (json_int_t)r.collected_bytes,
	                           "segments_removed", (json_int_t)r.segments_removed,
	                           "records_moved", (json_int_t)r.records_moved,
	                           "bytes_reclaimed", (json_int_t)r.bytes_reclaimed,
	                           "kv_evicted", (json_int_t)r.kv_evicted,
	                           "records_repacked", (json_int_t)r.records_repacked,
	                           "repack_bytes_before", (json_int_t)r.repack_bytes_before,
	                           "repack_bytes_after", (json_int_t)r.repack_bytes_after,
	                           "seconds", (double)r.duration_ns / 1e9),
	                 NULL);
}

/* ---------- history ---------- */

static json_t *commit_value(const hl_id *id, const hl_commit *c, unsigned flags)
{
	char *text = hl_commit_json(id, c, flags);
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return o ? o : json_null();
}

typedef struct log_acc {
	json_t *arr;
	uint64_t limit, n, last_time;
} log_acc;

static int add_commit(const hl_id *id, const hl_commit *c, unsigned flags, void *ctx)
{
	log_acc *a = ctx;
	if (a->n == a->limit)
		return 1; /* one more than asked: there is more */
	json_array_append_new(a->arr, commit_value(id, c, flags));
	a->n++;
	a->last_time = c->time_ns;
	return 0;
}

/* GET /v1/log/{rev}?limit=N&before=TIME_NS: newest first, at most limit (default 100, at most
 * MAX_LIST); "before" of the answer continues the listing. GET /v1/commits/{rev}: one commit. */
static enum MHD_Result h_history(server *sv, struct MHD_Connection *mc, req *q)
{
	hl_id id, tree;
	int err = hl_rev_parse(sv->store, q->key, &id, &tree);
	if (!err && hl_id_equal(&id, &tree))
		return hl_sv_send_error(sv, mc, 400, "invalid", "that revision names a tree: it has no history");
	if (err)
		return hl_sv_send_err(sv, mc, err, "revision");
	if (q->route == R_COMMIT) {
		hl_commit *c;
		if ((err = hl_commit_get(sv->store, &id, &c)) != 0)
			return hl_sv_send_err(sv, mc, err, "commit");
		json_t *o = commit_value(&id, c, 0);
		hl_commit_free(c);
		return hl_sv_send_json(sv, mc, 200, o, NULL);
	}
	int64_t limit = arg_uint(mc, "limit", 100), before = arg_uint(mc, "before", 0);
	if (limit <= 0 || limit > MAX_LIST || before < 0)
		return hl_sv_send_error(sv, mc, 400, "invalid", "limit takes 1..10000, before a time in nanoseconds");
	log_acc a = {json_array(), (uint64_t)limit, 0, 0};
	err = hl_history(sv->store, &id, (uint64_t)before, (uint64_t)limit + 1, add_commit, &a);
	if (err && err != 1) {
		json_decref(a.arr);
		return hl_sv_send_err(sv, mc, err, "log");
	}
	json_t *o = json_pack("{s:o}", "commits", a.arr);
	json_object_set_new(o, "before", err == 1 ? json_integer((json_int_t)a.last_time) : json_null());
	return hl_sv_send_json(sv, mc, 200, o, NULL);
}

/* POST /v1/admin/forget?keep_last=&keep_hourly=&keep_daily=&keep_weekly=&keep_monthly=
 * &keep_yearly=&keep_within_days=&keep_within_hours=&prefix=&dry_run=1: hl_forget's report. */
static enum MHD_Result h_forget(server *sv, struct MHD_Connection *mc)
{
	static const char *const names[] = {"keep_last", "keep_hourly", "keep_daily", "keep_weekly",
	                                    "keep_monthly", "keep_yearly", "keep_within_years",
	                                    "keep_within_months", "keep_within_days", "keep_within_hours"};
	hl_forget_policy p = {0};
	int *fields[] = {&p.last, &p.hourly, &p.daily, &p.weekly, &p.monthly, &p.yearly, &p.within_years,
	                 &p.within_months, &p.within_days, &p.within_hours};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
		const char *v = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, names[i]);
		int64_t x = v && i < 6 && !strcmp(v, "-1") ? 0 : arg_uint(mc, names[i], 0);
		if (x < 0 || x > 1000000000)
			return hl_sv_send_error(sv, mc, 400, "invalid", "keep_* take a count (keep_last..keep_yearly "
			                        "also -1: unlimited)");
		*fields[i] = v && i < 6 && !strcmp(v, "-1") ? -1 : (int)x;
	}
	const char *prefix = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "prefix");
	const char *dry = MHD_lookup_connection_value(mc, MHD_GET_ARGUMENT_KIND, "dry_run");
	int dry_run = dry && (!strcmp(dry, "1") || !strcmp(dry, "true"));
	hl_forget_report r;
	int err = hl_forget(sv->store, prefix, &p, dry_run, NULL, NULL, &r);
	if (err == HL_INVALID)
		return hl_sv_send_error(sv, mc, 400, "invalid", "no policy given: nothing would be forgotten");
	if (err)
		return hl_sv_send_err(sv, mc, err, "forget");
	return hl_sv_send_json(sv, mc, 200,
	                 json_pack("{s:b, s:I, s:I, s:I, s:I, s:I}", "dry_run", dry_run, "refs", (json_int_t)r.refs,
	                           "commits", (json_int_t)r.commits, "kept", (json_int_t)r.kept,
	                           "forgotten", (json_int_t)r.forgotten, "cut", (json_int_t)r.cut),
	                 NULL);
}

enum MHD_Result hl_sv_dispatch(server *sv, struct MHD_Connection *mc, req *q)
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
	case R_HEALTHZ: return hl_sv_send_json(sv, mc, 200, json_pack("{s:s}", "status", "ok"), NULL);
	case R_READYZ: return h_ready(sv, mc);
	case R_ADMIN_SYNC: case R_ADMIN_STATS: return h_admin(sv, mc, q);
	case R_ADMIN_GC: return h_gc(sv, mc);
	case R_LOG: case R_COMMIT: return h_history(sv, mc, q);
	case R_ADMIN_FORGET: return h_forget(sv, mc);
	default: return hl_sv_send_error(sv, mc, 404, "not_found", "no such resource");
	}
}
