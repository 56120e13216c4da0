/* server.h — `helios serve`: the HTTP/1.1 interface to a store (docs/DESIGN.md, "HTTP"). */
#ifndef HL_SERVER_SERVER_H
#define HL_SERVER_SERVER_H
#include <stdint.h>
#include "helios.h"

typedef struct hl_server_config {
	const char *listen;        /* "ADDR:PORT" (IPv4, or [IPv6]:PORT); port 0 picks a free one */
	const char *token_file;    /* lines "<token> <read|write|admin>"; required beyond loopback */
	unsigned threads;          /* event-loop threads; 0: one per core, at least 2 */
	unsigned write_threads;    /* requests that write are answered by this many threads of their
	                              own (so a sync never stalls an event loop); each takes every
	                              request waiting (up to 128) and stores their blob PUTs in one
	                              batch; 0: on the event loop. The CLI uses 4 with sync=always,
	                              else 0 */
	unsigned max_conns;        /* open connections at most; default 4096 */
	unsigned idle_timeout_s;   /* a connection idle this long is closed, and a request's headers
	                              must arrive within it; default 30 */
	uint64_t max_body;         /* largest request body (413 past it); default 64 MiB */
	unsigned max_header;       /* bytes per connection for the request line and headers
	                              (431 past it); default 8 KiB */
	unsigned drain_s;          /* on SIGTERM/SIGINT, wait this long for requests in flight;
	                              default 30 */
	int quiet;                 /* no startup banner */
	const char *tls_cert;      /* PEM certificate chain and unencrypted PEM key: serve HTTPS */
	const char *tls_key;       /* (TLS 1.2+; SIGHUP loads them again) */
	int insecure_http;         /* allow tokens over plain HTTP beyond loopback */
} hl_server_config;

void hl_server_config_init(hl_server_config *cfg);

/* Checks the listen address, the token file and the certificate without starting anything (so a
 * bad option is refused before the store is opened): tokens beyond loopback need TLS (or
 * insecure_http). 0, or an error with *why set. */
int hl_server_check(const hl_server_config *cfg, const char **why);

/* Serves s until SIGTERM or SIGINT, then stops accepting, finishes the requests in flight, syncs
 * and returns 0; SIGHUP reloads the TLS certificate. Prints "helios: serving http://ADDR:PORT"
 * (https:// with TLS) on stdout once listening (the real port when 0 was asked for). Returns an HL_* code or errno when it cannot start; *why (static
 * text or NULL) says what failed. */
int hl_server_run(hl_store *s, const hl_server_config *cfg, const char **why);

#endif
