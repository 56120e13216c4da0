/* hremote.h — another `helios serve` as this node's durable tier (docs/DESIGN.md, "Tiers"): objects
 * by GET/HEAD /v1/blobs/{id} (every fetched byte re-hashed: HL_CORRUPT, never data), uploads as
 * /v1/batch bodies (all or nothing, one sync on the far side; objects over 8 MiB by PUT
 * /v1/blobs/{id}), refs by the server's own compare-and-swap (If-Match / If-None-Match: *). */
#ifndef HL_REMOTE_HREMOTE_H
#define HL_REMOTE_HREMOTE_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "remote/http.h"

typedef struct hl_hremote hl_hremote;

typedef struct hl_hremote_config {
	const char *url;   /* "http://host:8080" */
	const char *token; /* bearer token, or NULL */
	hl_http_config http;
} hl_hremote_config;

/* Checks the URL and, when the server answers, the token (EACCES when refused). An unreachable
 * server does not fail the open (caches serve; calls say HL_UNAVAILABLE). */
int hl_hremote_open(const hl_hremote_config *cfg, hl_hremote **out);
void hl_hremote_close(hl_hremote *r);

int hl_hremote_get(hl_hremote *r, const hl_id *id, hl_buf **out);
/* The commit a revision names on the server (GET /v1/commits/{rev}): HL_NOTFOUND, HL_INVALID (a
 * malformed revision, or one naming a tree), HL_FORGOTTEN. */
int hl_hremote_commit_id(hl_hremote *r, const char *rev, hl_id *out);
int hl_hremote_has(hl_hremote *r, const hl_id *id);
int hl_hremote_stat(hl_hremote *r, const hl_id *id, uint64_t *size); /* HEAD: the object's size */
/* Stores every item (ids computed or checked by the caller); sets each item's created. */
int hl_hremote_put_batch(hl_hremote *r, hl_put_item *items, size_t n);
/* Sets missing[i] to 1 for each of ids[0..n) the server lacks, else 0 (POST /v1/missing). */
int hl_hremote_missing(hl_hremote *r, const hl_id *ids, size_t n, uint8_t *missing);
int hl_hremote_ref_get(hl_hremote *r, const char *name, hl_id *out);
/* The semantics of hl_names_ref_set (expect / force / target NULL to delete). */
int hl_hremote_ref_set(hl_hremote *r, const char *name, const hl_id *expect, const hl_id *target, int force);
int hl_hremote_ref_list(hl_hremote *r, const char *prefix, hl_ref_fn fn, void *ctx);
/* kv entries on the server (/kv/{ns}/{key}): get reads the value's id (the ETag) and size by HEAD;
 * set points the key at an object the server has (PUT with X-Helios-Object: <id>, no body;
 * HL_INCOMPLETE when the server does not have it). */
int hl_hremote_kv_get(hl_hremote *r, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size);
int hl_hremote_kv_set(hl_hremote *r, const char *ns, const void *key, size_t klen, const hl_id *id);
int hl_hremote_kv_delete(hl_hremote *r, const char *ns, const void *key, size_t klen);
/* One collection on the server (POST /v1/admin/gc; its token needs the admin scope), with opt's
 * dry_run, repack and compact_rate. */
int hl_hremote_gc(hl_hremote *r, const hl_gc_options *opt, hl_gc_report *out);
void hl_hremote_stats_get(hl_hremote *r, hl_http_stats *out);

#endif
