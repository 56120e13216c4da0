/* parse.h — the parsers of the HTTP server, each over a buffer and a length, free of I/O so the
 * fuzz target (fuzz/fuzz_http.c) drives them directly: Range headers, entity tags, kv keys in either ccache layout, token files, and Authorization headers. */
#ifndef HL_SERVER_PARSE_H
#define HL_SERVER_PARSE_H
#include <stddef.h>
#include <stdint.h>
#include "helios.h"

/* "bytes=A-B", "bytes=A-", "bytes=-N" against an object of size bytes.
 * Returns SRV_RANGE_OK (*off, *len set), SRV_RANGE_FULL (absent, malformed or several ranges:
 * serve the whole object, as RFC 9110 allows) or SRV_RANGE_UNSATISFIABLE (416). */
enum { SRV_RANGE_OK, SRV_RANGE_FULL, SRV_RANGE_UNSATISFIABLE };
int srv_range_parse(const char *h, size_t hlen, uint64_t size, uint64_t *off, uint64_t *len);

/* An entity tag naming an id: "\"<64 hex>\"" (the quotes required, W/ refused). 0 or HL_INVALID. */
int srv_etag_id(const char *h, size_t hlen, hl_id *out);

/* The key of /kv/{ns}/{key}: the path after the namespace with every '/' removed, so the subdirs
 * layout ("ab/cdef…") and the flat one ("abcdef…") name one entry. 0 or HL_INVALID (empty, too
 * long, NUL, or a "." / ".." segment). */
int srv_kv_key(const char *path, size_t len, char *out, size_t cap, size_t *outlen);

/* The request target as the client sent it, before libmicrohttpd decodes its path: 0, or
 * HL_INVALID when the path (the part before '?') holds "%00", which decodes to a NUL byte that
 * would cut every name and key after it short. No name or key in helios may hold a NUL. */
int srv_raw_path_check(const char *uri, size_t len);

/* Token file: lines "<token> <read|write|admin>", '#' comments and blank lines ignored; a token is
 * 16..256 printable non-space bytes. Returns 0, or HL_INVALID with *bad_line (1-based) set. */
enum { SRV_SCOPE_NONE = 0, SRV_SCOPE_READ = 1, SRV_SCOPE_WRITE = 2, SRV_SCOPE_ADMIN = 3 };
#define SRV_TOKEN_MAX 256
typedef struct srv_token {
	char token[SRV_TOKEN_MAX + 1];
	size_t len;
	int scope;
} srv_token;
int srv_tokens_parse(const char *text, size_t len, srv_token *out, size_t cap, size_t *n,
                     size_t *bad_line);

/* The credential of an Authorization header: "Bearer <token>", or "Basic <base64(user:token)>"
 * (the password is the token). Writes it into out (NUL-terminated). 0 or HL_INVALID. */
int srv_auth_credential(const char *h, size_t hlen, char *out, size_t cap, size_t *outlen);

#endif
