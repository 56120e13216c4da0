/* cmd_remote.c — `helios push DIR --remote URL [--ref NAME]` and `helios pull ID --remote URL DIR`:
 * work trees between the local store and a `helios serve`, moving only what the other side lacks.
 * push: snapshot into the local store, ask the server which of the snapshot's objects it is missing
 * (POST /v1/missing), upload those children first (POST /v1/batch; large files by PUT), then move
 * the ref by compare-and-swap. pull: fetch every object of the snapshot the local store lacks,
 * depth first, each verified against its id and each tree stored after what it names (a store
 * keeps only complete trees), then restore. Token: --token or $HELIOS_TOKEN. */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

#define BATCH_BYTES (4u << 20) /* upload batches of about this size */
#define ASK_IDS 10000          /* ids per /v1/missing question */

typedef struct remote {
	CURL *curl;
	char base[2048];
	char auth[600];
} remote;

typedef struct body {
	char *p;
	size_t len, cap;
} body;

static size_t on_data(char *d, size_t sz, size_t n, void *ctx)
{
	body *b = ctx;
	size_t k = sz * n;
	if (b->len + k + 1 > b->cap) {
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->len + k + 1)
			cap *= 2;
		char *p = realloc(b->p, cap);
		if (!p)
			return 0;
		b->p = p, b->cap = cap;
	}
	memcpy(b->p + b->len, d, k);
	b->len += k;
	b->p[b->len] = 0;
	return k;
}

typedef struct hdrs {
	char etag[128];
} hdrs;

static size_t on_header(char *d, size_t sz, size_t n, void *ctx)
{
	hdrs *h = ctx;
	size_t k = sz * n;
	if (k > 5 && !strncasecmp(d, "ETag:", 5)) {
		size_t i = 5, j;
		while (i < k && d[i] == ' ')
			i++;
		for (j = i; j < k && d[j] != '\r' && d[j] != '\n'; j++)
			;
		snprintf(h->etag, sizeof h->etag, "%.*s", (int)(j - i), d + i);
	}
	return k;
}

/* One request. Returns the HTTP status (0 when the transfer failed: *why says why). */
static long request(remote *r, const char *method, const char *path, const void *data, size_t len,
                    const char *extra, body *out, hdrs *h, const char **why)
{
	char url[4096];
	snprintf(url, sizeof url, "%s%s", r->base, path);
	curl_easy_reset(r->curl);
	curl_easy_setopt(r->curl, CURLOPT_URL, url);
	curl_easy_setopt(r->curl, CURLOPT_CUSTOMREQUEST, method);
	curl_easy_setopt(r->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(r->curl, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_LIMIT, 1024L); /* give up below 1 KiB/s … */
	curl_easy_setopt(r->curl, CURLOPT_LOW_SPEED_TIME, 60L);    /* … for a minute */
	if (!strcmp(method, "HEAD"))
		curl_easy_setopt(r->curl, CURLOPT_NOBODY, 1L);
	if (data) {
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDS, data);
		curl_easy_setopt(r->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	}
	struct curl_slist *hl = NULL;
	if (r->auth[0])
		hl = curl_slist_append(hl, r->auth);
	if (extra)
		hl = curl_slist_append(hl, extra);
	hl = curl_slist_append(hl, "Expect:");
	curl_easy_setopt(r->curl, CURLOPT_HTTPHEADER, hl);
	body sink = {0};
	curl_easy_setopt(r->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(r->curl, CURLOPT_WRITEDATA, out ? out : &sink);
	hdrs hsink;
	curl_easy_setopt(r->curl, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(r->curl, CURLOPT_HEADERDATA, h ? h : &hsink);
	CURLcode rc = curl_easy_perform(r->curl);
	curl_slist_free_all(hl);
	free(sink.p);
	long status = 0;
	if (rc != CURLE_OK) {
		*why = curl_easy_strerror(rc);
		return 0;
	}
	curl_easy_getinfo(r->curl, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* The server's error message from a JSON error body, or the status alone. */
static void say_http(const char *what, long status, const body *b, const char *why)
{
	if (!status) {
		fprintf(stderr, "helios: %s: %s\n", what, why);
		return;
	}
	json_t *j = b && b->p ? json_loads(b->p, 0, NULL) : NULL;
	const char *msg = json_string_value(json_object_get(j, "message"));
	fprintf(stderr, "helios: %s: the server answered %ld%s%s\n", what, status, msg ? ": " : "", msg ? msg : "");
	json_decref(j);
}

static int remote_open(remote *r, const char *url, const char *token)
{
	if (!url || (strncmp(url, "http://", 7) && strncmp(url, "https://", 8)))
		return cli_usage("--remote needs an http:// or https:// URL");
	snprintf(r->base, sizeof r->base, "%s", url);
	size_t n = strlen(r->base);
	while (n && r->base[n - 1] == '/')
		r->base[--n] = 0;
	if (!token)
		token = getenv("HELIOS_TOKEN");
	r->auth[0] = 0;
	if (token && *token)
		snprintf(r->auth, sizeof r->auth, "Authorization: Bearer %s", token);
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (!(r->curl = curl_easy_init())) {
		fprintf(stderr, "helios: cannot start an HTTP client\n");
		return EXIT_FAIL;
	}
	return 0;
}

static void remote_close(remote *r)
{
	if (r->curl)
		curl_easy_cleanup(r->curl);
	curl_global_cleanup();
}

/* ---- push ---- */

typedef struct obj {
	hl_id id;
	uint64_t size;
} obj;

typedef struct objs {
	obj *v;
	size_t n, cap;
} objs;

static int add_obj(objs *o, const hl_id *id, uint64_t size)
{
	if (o->n == o->cap) {
		size_t cap = o->cap ? o->cap * 2 : 1024;
		obj *v = realloc(o->v, cap * sizeof(*v));
		if (!v)
			return ENOMEM;
		o->v = v, o->cap = cap;
	}
	o->v[o->n].id = *id;
	o->v[o->n++].size = size;
	return 0;
}

static int collect(const char *path, const hl_tree_entry *e, void *ctx)
{
	return add_obj(ctx, &e->id, e->kind == HL_TREE_DIR ? 0 : e->size);
}

typedef struct slot {
	hl_id id;
	size_t at;
} slot;

static int slot_cmp(const void *x, const void *y)
{
	const slot *a = x, *b = y;
	int c = memcmp(a->id.b, b->id.b, HL_ID_LEN);
	return c ? c : (a->at < b->at) - (a->at > b->at); /* the last occurrence first */
}

static int slot_id_cmp(const void *x, const void *y)
{
	return memcmp(((const slot *)x)->id.b, ((const slot *)y)->id.b, HL_ID_LEN);
}

/* Content listed more than once (the same file in two places) is kept once, at its last place in
 * the walk: uploading in reverse, that is before any tree that names it. */
static void drop_repeats(objs *o)
{
	slot *sl = malloc((o->n ? o->n : 1) * sizeof(*sl));
	char *drop = calloc(o->n ? o->n : 1, 1);
	if (!sl || !drop) {
		free(sl);
		free(drop);
		return; /* then repeats are asked about and sent twice: harmless */
	}
	for (size_t i = 0; i < o->n; i++)
		sl[i] = (slot){o->v[i].id, i};
	qsort(sl, o->n, sizeof(*sl), slot_cmp);
	for (size_t i = 1; i < o->n; i++)
		if (hl_id_equal(&sl[i].id, &sl[i - 1].id))
			drop[sl[i].at] = 1;
	size_t k = 0;
	for (size_t i = 0; i < o->n; i++)
		if (!drop[i])
			o->v[k++] = o->v[i];
	o->n = k;
	free(sl);
	free(drop);
}

/* Asks which of ids[0..n) the server lacks; marks them in missing[]. */
static int ask_missing(remote *r, const obj *v, size_t n, char *missing, const char **why, long *status)
{
	json_t *ids = json_array();
	char hex[HL_ID_HEX_LEN + 1];
	for (size_t i = 0; i < n; i++) {
		hl_id_format(&v[i].id, hex);
		json_array_append_new(ids, json_string(hex));
	}
	json_t *q = json_pack("{s:o}", "ids", ids);
	char *text = json_dumps(q, JSON_COMPACT);
	json_decref(q);
	body b = {0};
	*status = request(r, "POST", "/v1/missing", text, text ? strlen(text) : 0, "Content-Type: application/json", &b, NULL, why);
	free(text);
	int err = 0;
	if (*status == 200) {
		json_t *j = json_loads(b.p ? b.p : "", 0, NULL), *m = json_object_get(j, "missing");
		slot *sl = malloc((n ? n : 1) * sizeof(*sl)); /* the batch by id, to look answers up */
		for (size_t k = 0; sl && k < n; k++)
			sl[k] = (slot){v[k].id, k};
		if (sl)
			qsort(sl, n, sizeof(*sl), slot_cmp);
		size_t i;
		json_t *x;
		if (!sl)
			err = ENOMEM;
		else if (!json_is_array(m))
			err = HL_CORRUPT;
		json_array_foreach(m, i, x) {
			const char *h = json_string_value(x);
			slot key;
			if (err || !h || hl_id_parse(h, strlen(h), &key.id)) {
				err = err ? err : HL_CORRUPT;
				break;
			}
			const slot *hit = bsearch(&key, sl, n, sizeof(*sl), slot_id_cmp);
			if (hit)
				missing[hit->at] = 1;
		}
		if (err == HL_CORRUPT)
			fprintf(stderr, "helios: the server's answer to /v1/missing is not {\"missing\": [<ids>]}\n");
		free(sl);
		json_decref(j);
	} else {
		say_http("asking which objects are missing", *status, &b, *why);
		err = EIO;
	}
	free(b.p);
	return err;
}

static int flush_batch(remote *r, body *batch, size_t *sent_batches)
{
	if (!batch->len)
		return 0;
	const char *why = NULL;
	body b = {0};
	long st = request(r, "POST", "/v1/batch", batch->p, batch->len, "Content-Type: application/octet-stream", &b, NULL, &why);
	int err = 0;
	if (st != 200) {
		say_http("uploading a batch", st, &b, why);
		err = EIO;
	}
	free(b.p);
	batch->len = 0;
	(*sent_batches)++;
	return err;
}

int cmd_push(cli *c)
{
	const char *dir = NULL, *url = NULL, *ref = NULL, *token = NULL;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--remote") && i + 1 < c->argc)
			url = c->argv[++i];
		else if (!strcmp(a, "--ref") && i + 1 < c->argc)
			ref = c->argv[++i];
		else if (!strcmp(a, "--token") && i + 1 < c->argc)
			token = c->argv[++i];
		else if (a[0] == '-' && a[1])
			return cli_usage("push: unknown option '%s'", a);
		else if (!dir)
			dir = a;
		else
			return cli_usage("push: one directory at a time");
	}
	if (!dir || !url)
		return cli_usage("usage: helios push DIR --remote URL [--ref NAME] [--token T]");
	if (ref && !hl_ref_valid(ref))
		return cli_usage("push: '%s' is not a ref name", ref);
	remote r = {0};
	int code = remote_open(&r, url, token);
	if (code)
		return code;
	hl_store *s = NULL;
	objs o = {0};
	char *missing = NULL;
	body batch = {0};
	hl_id root;
	if ((code = cli_open(c, 1, HL_SYNC_BATCH, &s)) != 0)
		goto out;
	int err = hl_snapshot(s, dir, 0, &root, NULL);
	if (err) {
		code = cli_fail("push: snapshot", err);
		goto out;
	}
	/* every object of the snapshot, parents before children; uploaded in reverse */
	if ((err = add_obj(&o, &root, 0)) || (err = hl_tree_walk(s, &root, collect, &o))) {
		code = cli_fail("push: reading the snapshot", err);
		goto out;
	}
	drop_repeats(&o);
	missing = calloc(o.n ? o.n : 1, 1);
	const char *why = "";
	long status = 0;
	for (size_t at = 0; at < o.n && !err; at += ASK_IDS)
		err = ask_missing(&r, o.v + at, o.n - at < ASK_IDS ? o.n - at : ASK_IDS, missing + at, &why, &status);
	if (err) {
		code = EXIT_FAIL;
		goto out;
	}
	uint64_t n_missing = 0, up_bytes = 0;
	size_t batches = 0;
	for (size_t k = o.n; k-- > 0 && !err;) {
		if (!missing[k])
			continue;
		hl_buf *b;
		if ((err = hl_get(s, &o.v[k].id, &b)) != 0) {
			code = cli_fail("push: reading an object", err);
			goto out;
		}
		char hex[HL_ID_HEX_LEN + 1], head[HL_ID_HEX_LEN + 32];
		hl_id_format(&o.v[k].id, hex);
		size_t len = hl_buf_len(b);
		n_missing++;
		up_bytes += len;
		if (len > BATCH_BYTES) { /* a large file: on its own */
			char path[100];
			snprintf(path, sizeof path, "/v1/blobs/%s", hex);
			body rb = {0};
			long st = request(&r, "PUT", path, hl_buf_data(b), len, "Content-Type: application/octet-stream", &rb, NULL, &why);
			if (st != 200 && st != 201) {
				say_http("uploading a large object", st, &rb, why);
				err = EIO;
			}
			free(rb.p);
		} else {
			int hn = snprintf(head, sizeof head, "%s %zu\n", hex, len);
			if (batch.len + (size_t)hn + len > BATCH_BYTES)
				err = flush_batch(&r, &batch, &batches);
			if (!err && (on_data(head, 1, (size_t)hn, &batch) != (size_t)hn ||
			             (len && on_data((char *)hl_buf_data(b), 1, len, &batch) != len)))
				err = ENOMEM;
		}
		hl_buf_unref(b);
	}
	if (!err)
		err = flush_batch(&r, &batch, &batches);
	if (err) {
		code = EXIT_FAIL;
		goto out;
	}
	/* the ref, by compare-and-swap against what the server holds now */
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&root, hex);
	if (ref) {
		char path[HL_REF_MAX + 16], cond[200], payload[100];
		snprintf(path, sizeof path, "/v1/refs/%s", ref);
		hdrs h = {{0}};
		body rb = {0};
		long st = request(&r, "GET", path, NULL, 0, NULL, &rb, &h, &why);
		free(rb.p);
		rb = (body){0};
		if (st == 200 && h.etag[0])
			snprintf(cond, sizeof cond, "If-Match: %s", h.etag);
		else if (st == 404)
			snprintf(cond, sizeof cond, "If-None-Match: *");
		else {
			say_http("reading the ref", st, NULL, why);
			code = EXIT_FAIL;
			goto out;
		}
		snprintf(payload, sizeof payload, "{\"id\":\"%s\"}", hex);
		st = request(&r, "PUT", path, payload, strlen(payload), cond, &rb, NULL, &why);
		if (st == 412) {
			fprintf(stderr, "helios: push: ref %s was moved by someone else meanwhile; not updated\n", ref);
			code = EXIT_CONFLICT;
		} else if (st != 200 && st != 201) {
			say_http("moving the ref", st, &rb, why);
			code = EXIT_FAIL;
		}
		free(rb.p);
		if (code)
			goto out;
	}
	if (c->json)
		printf("{\"id\": \"%s\", \"objects\": %zu, \"uploaded\": %llu, \"uploaded_bytes\": %llu, \"batches\": %zu}\n",
		       hex, o.n, (unsigned long long)n_missing, (unsigned long long)up_bytes, batches);
	else
		printf("%s\n", hex);
	if (!c->quiet && !c->json)
		fprintf(stderr, "%zu objects in the snapshot; %llu were missing on the server, uploaded (%llu bytes)\n",
		        o.n, (unsigned long long)n_missing, (unsigned long long)up_bytes);
out:
	free(batch.p);
	free(missing);
	free(o.v);
	hl_close(s);
	remote_close(&r);
	return code;
}

/* ---- pull ---- */

typedef struct puller {
	remote *r;
	hl_store *s;
	uint64_t fetched, bytes;
	int depth;
} puller;

#define PULL_MAX_DEPTH 1024

static int pull_object(puller *p, const hl_id *id, int is_tree, int depth);

static int pull_child(const hl_tree_entry *e, void *ctx)
{
	puller *p = ctx;
	return pull_object(p, &e->id, e->kind == HL_TREE_DIR, p->depth + 1);
}

/* Stores id from the server unless the local store has it (then it has everything it names),
 * verified against its id; a tree only after everything it names (depth first). */
static int pull_object(puller *p, const hl_id *id, int is_tree, int depth)
{
	if (hl_has(p->s, id) == 0)
		return 0;
	if (depth > PULL_MAX_DEPTH)
		return HL_TOOBIG;
	char hex[HL_ID_HEX_LEN + 1], path[100];
	hl_id_format(id, hex);
	snprintf(path, sizeof path, "/v1/blobs/%s", hex);
	body b = {0};
	const char *why = NULL;
	long st = request(p->r, "GET", path, NULL, 0, NULL, &b, NULL, &why);
	int err = 0, lied = 0;
	const char *data = b.p ? b.p : "";
	hl_id got;
	if (st != 200) {
		say_http("fetching an object", st, &b, why);
		err = st == 404 ? HL_NOTFOUND : EIO;
	} else if (is_tree && (hl_hash(data, b.len, &got), !hl_id_equal(&got, id))) {
		err = HL_MISMATCH, lied = 1; /* a tree is looked inside only once verified */
	} else {
		p->fetched++;
		p->bytes += b.len;
		if (is_tree) {
			int saved = p->depth;
			p->depth = depth;
			err = hl_tree_parse(data, b.len, pull_child, p);
			p->depth = saved;
		}
		if (!err) { /* verifies a blob (the only hash of its bytes here) */
			err = hl_put_expect(p->s, id, data, b.len, NULL);
			lied = err == HL_MISMATCH;
		}
	}
	if (lied) /* (a child's mismatch is reported where it was found) */
		fprintf(stderr, "helios: pull: the server sent bytes that do not hash to %s; refused\n", hex);
	free(b.p);
	return err;
}

int cmd_pull(cli *c)
{
	const char *arg = NULL, *dir = NULL, *url = NULL, *token = NULL;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--remote") && i + 1 < c->argc)
			url = c->argv[++i];
		else if (!strcmp(a, "--token") && i + 1 < c->argc)
			token = c->argv[++i];
		else if (a[0] == '-' && a[1])
			return cli_usage("pull: unknown option '%s'", a);
		else if (!arg)
			arg = a;
		else if (!dir)
			dir = a;
		else
			return cli_usage("pull: unexpected argument '%s'", a);
	}
	if (!arg || !dir || !url)
		return cli_usage("usage: helios pull ID|REF --remote URL DIR [--token T]");
	remote r = {0};
	int code = remote_open(&r, url, token);
	if (code)
		return code;
	hl_id root;
	const char *why = NULL;
	if (hl_id_parse(arg, strlen(arg), &root)) { /* a ref name, resolved by the server */
		if (!hl_ref_valid(arg)) {
			remote_close(&r);
			return cli_usage("pull: '%s' is neither an id nor a ref name", arg);
		}
		char path[HL_REF_MAX + 16];
		snprintf(path, sizeof path, "/v1/refs/%s", arg);
		body b = {0};
		long st = request(&r, "GET", path, NULL, 0, NULL, &b, NULL, &why);
		json_t *j = st == 200 && b.p ? json_loads(b.p, 0, NULL) : NULL;
		const char *hex = json_string_value(json_object_get(j, "id"));
		int bad = !hex || hl_id_parse(hex, strlen(hex), &root);
		json_decref(j);
		if (bad) {
			say_http("reading the ref", st, &b, why);
			free(b.p);
			remote_close(&r);
			return st == 404 ? EXIT_MISSING : EXIT_FAIL;
		}
		free(b.p);
	}
	hl_store *s;
	if ((code = cli_open(c, 1, HL_SYNC_BATCH, &s)) != 0) {
		remote_close(&r);
		return code;
	}
	puller p = {&r, s, 0, 0, 0};
	int err = pull_object(&p, &root, 1, 0);
	if (err == HL_INVALID) {
		fprintf(stderr, "helios: pull: %s is not a snapshot (not a tree)\n", arg);
		err = HL_CORRUPT;
	}
	if (!err)
		err = hl_sync(s);
	if (!err)
		err = hl_restore(s, &root, dir);
	hl_close(s);
	remote_close(&r);
	if (err == ENOTEMPTY) {
		fprintf(stderr, "helios: pull: %s must be a new or empty directory\n", dir);
		return EXIT_USAGE;
	}
	if (err == HL_NOTFOUND)
		return EXIT_MISSING;
	if (err)
		return err == EIO ? EXIT_FAIL : cli_fail("pull", err);
	if (c->json)
		printf("{\"fetched\": %llu, \"fetched_bytes\": %llu}\n", (unsigned long long)p.fetched,
		       (unsigned long long)p.bytes);
	else if (!c->quiet)
		fprintf(stderr, "fetched %llu objects (%llu bytes) the local store did not have\n",
		        (unsigned long long)p.fetched, (unsigned long long)p.bytes);
	return EXIT_OK;
}
