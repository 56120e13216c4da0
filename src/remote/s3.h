/* s3.h — an S3-compatible bucket as helios's durable tier: objects at `<prefix>/blobs/<ab>/<id>`
 * (ab = the id's first two hex digits), refs at `<prefix>/refs/<name>`. Requests are signed with
 * AWS Signature V4 (libcurl), path-style URLs. Every fetched object is re-hashed: bytes that do not
 * hash to their id are never returned (HL_CORRUPT).
 *
 * Objects are put with `If-None-Match: *`, so an existing object is never rewritten (412 means
 * present). Refs change only by conditional PUT: the ref's object is read with its ETag and
 * replaced with `If-Match: <etag>`, so nodes sharing the bucket never lose an update; a deleted
 * ref is a tombstone written the same way. Every ref body carries a random nonce, so the same
 * value written twice has two ETags (S3's ETag is the MD5 of the body: without the nonce an
 * A→B→A change would go unseen). At open the bucket is probed for conditional writes; where they
 * are missing, objects are still stored (HEAD before PUT) and ref updates are refused.
 *
 * Ref body: "<64 hex id>\n<nonce>\n" or, for a tombstone, "-\n<nonce>\n".
 *
 * An object of 512 bytes or more that zstd (level 3) shrinks by an eighth or more is stored as
 * the zstd frame, with Content-Encoding: zstd and X-Amz-Meta-Helios-Size: <size>; reads decode it
 * before they verify, and HEAD answers the decoded size. Listings give the stored (encoded) size. */
#ifndef HL_REMOTE_S3_H
#define HL_REMOTE_S3_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"
#include "remote/http.h"

typedef struct hl_s3 hl_s3;

typedef struct hl_s3_config {
	const char *endpoint;   /* "http://127.0.0.1:9000" or "https://s3.eu-west-1.amazonaws.com" */
	const char *bucket;
	const char *prefix;     /* key prefix, "" or NULL for none; no leading or trailing '/' */
	const char *region;     /* default "us-east-1" */
	const char *access_key, *secret_key;
	hl_http_config http;    /* timeouts, retries, breaker; sigv4 and keys are filled in here */
} hl_s3_config;

/* Checks the configuration and probes the bucket: EACCES if the credentials are refused,
 * HL_NOTFOUND if the bucket does not exist. A bucket that cannot be reached is probed again on the
 * first write (a node restarting during an outage still serves its caches). */
int hl_s3_open(const hl_s3_config *cfg, hl_s3 **out);
void hl_s3_close(hl_s3 *s);
int hl_s3_conditional_writes(hl_s3 *s); /* 1 if the bucket honours If-None-Match/If-Match */

int hl_s3_get(hl_s3 *s, const hl_id *id, hl_buf **out);
int hl_s3_has(hl_s3 *s, const hl_id *id);
/* created: 1 if this call stored it, 0 if it was there. The caller vouches that data hashes to id. */
int hl_s3_put(hl_s3 *s, const hl_id *id, const void *data, size_t len, int *created);

int hl_s3_ref_get(hl_s3 *s, const char *name, hl_id *out);
/* The semantics of the local index's refs: unless force, expect must hold (expect NULL: the ref
 * must not exist), else HL_CONFLICT; target NULL deletes (HL_NOTFOUND if there is nothing). A race
 * lost to another node is retried while expect still holds. HL_INVALID where the bucket has no
 * conditional writes. */
int hl_s3_ref_set(hl_s3 *s, const char *name, const hl_id *expect, const hl_id *target, int force);
/* Every live ref whose name starts with prefix, in name order. */
int hl_s3_ref_list(hl_s3 *s, const char *prefix, hl_ref_fn fn, void *ctx);

void hl_s3_stats_get(hl_s3 *s, hl_http_stats *out);

/* Objects: their size (HEAD), listings, deletion. */
typedef int (*hl_s3_id_fn)(const hl_id *id, uint64_t size, void *ctx);
int hl_s3_blob_stat(hl_s3 *s, const hl_id *id, uint64_t *size);
/* Every stored object (large: every large-blob map entry instead) in id order, with its size
 * (an entry's: the pointer's) and LastModified (the bucket's clock). */
typedef int (*hl_s3_aged_fn)(const hl_id *id, uint64_t size, int64_t mtime_ms, void *ctx);
int hl_s3_list(hl_s3 *s, int large, hl_s3_aged_fn fn, void *ctx);
int hl_s3_blob_delete(hl_s3 *s, const hl_id *id);
/* Puts data over id unconditionally: only to replace bytes that failed verification (the caller
 * vouches that data hashes to id). */
int hl_s3_rewrite(hl_s3 *s, const hl_id *id, const void *data, size_t len);

/* Names other than refs are small pointer objects "<64 hex id>\n<decimal size>\n":
 *  - the large-blob map at `<prefix>/large/<ab>/<blob id>` → the manifest's id and the blob's
 *    size; written once (If-None-Match: *: every writer's manifest describes the same bytes);
 *  - kv entries at `<prefix>/kv/<ns>/<base64url key>` → the value object's id and size; a cache,
 *    so the last writer wins; bounded by the collector (hl_s3_kv_each with a bound), not on write.
 * hl_s3_kv_each (ns NULL: every namespace) gets each value's id and size. With a bound (0: none),
 * the keys of a namespace past its newest `bound` bytes of values, by write time (as the bucket
 * lists it: S3 gives whole seconds; keys written in one second are taken in key order), are removed
 * first (only counted when dry_run) and fn gets the others only; *evicted (may be NULL) counts
 * the removed. */
int hl_s3_large_get(hl_s3 *s, const hl_id *id, hl_id *manifest, uint64_t *size);
int hl_s3_large_put(hl_s3 *s, const hl_id *id, const hl_id *manifest, uint64_t size);
int hl_s3_large_del(hl_s3 *s, const hl_id *id);
int hl_s3_kv_get(hl_s3 *s, const char *ns, const void *key, size_t klen, hl_id *id, uint64_t *size);
int hl_s3_kv_set(hl_s3 *s, const char *ns, const void *key, size_t klen, const hl_id *id, uint64_t size);
int hl_s3_kv_delete(hl_s3 *s, const char *ns, const void *key, size_t klen); /* HL_NOTFOUND if none */
int hl_s3_kv_each(hl_s3 *s, const char *ns, uint64_t bound, int dry_run, hl_s3_id_fn fn, void *ctx,
                  uint64_t *evicted);

/* Control objects at `<prefix>/<key>` (the collection protocol's, under "gc/"). get: the body
 * and ETag, HL_NOTFOUND. put: cond NULL writes unconditionally, "*" only if absent, else only if
 * the ETag is cond (HL_CONFLICT when the condition fails; HL_INVALID where the bucket has no
 * conditional writes); the new ETag in etag (may be NULL). list: every key under <prefix><under>
 * (keys given without the prefix), with sizes and LastModified. */
int hl_s3_key_get(hl_s3 *s, const char *key, hl_buf **body, char etag[96]);
int hl_s3_key_put(hl_s3 *s, const char *key, const void *body, size_t len, const char *cond,
                  char etag[96]);
int hl_s3_key_delete(hl_s3 *s, const char *key);
typedef struct hl_s3_entry hl_s3_entry;
typedef int (*hl_s3_key_fn)(const hl_s3_entry *e, void *ctx);
int hl_s3_key_list(hl_s3 *s, const char *under, hl_s3_key_fn fn, void *ctx);

/* Parses one page of a ListObjectsV2 answer: calls fn for every <Key>…</Key> (entities decoded)
 * (with its <Size> and <LastModified>) and returns 1 in *truncated with the continuation token copied out when there is more.
 * HL_CORRUPT when the body is not such an answer. */
struct hl_s3_entry {
	const char *key;  /* NUL-terminated */
	size_t len;
	uint64_t size;
	int64_t mtime_ms; /* LastModified, ms since the epoch (0 when absent) */
};
int hl_s3_parse_list(const char *body, size_t len, hl_s3_key_fn fn, void *ctx, int *truncated,
                     char *token, size_t token_cap);

/* Parses a ref body (see above): 0 with *live 1 and the id, or *live 0 for a tombstone;
 * HL_CORRUPT otherwise. */
int hl_s3_parse_ref(const uint8_t *b, size_t len, int *live, hl_id *id);
/* Parses an S3 time ("2026-12-05T20:42:25.000Z") into ms since the epoch; HL_CORRUPT otherwise. */
int hl_s3_parse_time(const char *t, size_t len, int64_t *ms);
/* Parses a pointer body (above): exactly one text per value; HL_CORRUPT otherwise. */
int hl_s3_parse_pointer(const uint8_t *b, size_t len, hl_id *id, uint64_t *size);

#endif
