/* server_int.h — the private header of `helios serve` (src/server/server*.c): the server, its
 * connections and requests, and the functions its files share. Routing, authentication with scoped
 * tokens, limits (header and body size, connections, idle time, slow clients), error bodies,
 * /metrics. Only include/helios.h is used below it. */
#ifndef HL_SERVER_INT_H
#define HL_SERVER_INT_H
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
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/un.h>
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
	R_METRICS, R_HEALTHZ, R_READYZ, R_ADMIN_SYNC, R_ADMIN_STATS, R_ADMIN_GC, R_LOG, R_COMMIT,
	R_ADMIN_FORGET
};
enum method { M_GET = 1, M_HEAD = 2, M_PUT = 4, M_POST = 8, M_DELETE = 16, M_OTHER = 32 };

/* One TCP connection: the deadline by which its current request must have arrived (0: none). */
typedef struct conn {
	int fd;
	int over;    /* opened past --max-conns: answered 503 (health probes 200) and closed */
	_Atomic uint64_t deadline_ns;
	struct conn *prev, *next;
} conn;

/* One event loop: a libmicrohttpd daemon in external-epoll mode and the thread that runs it. All
 * loops share the server's listen socket (server_loop.c says why not libmicrohttpd's own pool). */
typedef struct sv_loop {
	struct server *sv;
	struct MHD_Daemon *d;
	int epfd;     /* waits on the daemon's epoll set and the loop's wake_fd */
	int wake_fd;  /* eventfd: written to wake the loop (a resumed connection, a stop) */
	int running;  /* its thread was started */
	int quiesced; /* the listen socket is out of its epoll set */
	pthread_t thread;
	struct req *puts[128]; /* blob PUTs held until this round of MHD_run ends (sync=batch) */
	size_t nputs;
} sv_loop;

typedef struct server {
	hl_store *store;
	hl_server_config cfg;
	srv_token *tokens; /* NULL: no authentication (loopback only) */
	size_t ntokens;
	int listen_fd;
	sv_loop *loops;
	unsigned nloops;
	atomic_int quiescing, loops_quiesced, loops_stop;
	pthread_mutex_t conns_mu;
	conn *conns;
	pthread_t sweeper;
	int sweeper_running;
	atomic_int stopping;
	atomic_long inflight, open_conns;
	atomic_ulong conns_refused; /* requests answered 503 because --max-conns were open */
	atomic_ullong status[6]; /* answers by class: [1] 1xx … [5] 5xx */
	atomic_ullong cut;       /* connections cut off for sending too slowly */
	atomic_ullong shed;      /* answered 503 because the store was busy */
	/* writers: requests that may block on a sync are answered here, their connection suspended,
	 * so the event loops keep serving reads while group commit gathers writes. On a local store
	 * with more than one writer (blobs_to_one) the first writer takes the blob PUTs whose bodies
	 * are whole (queue 0), the others every other write (queue 1). Otherwise (a writer alone, a
	 * remote backend) every writer takes everything from queue 0. */
	pthread_t *writers;
	unsigned nwriters;
	atomic_uint writer_ids;
	int blobs_to_one;
	pthread_mutex_t jobs_mu;
	struct jobq {
		pthread_cond_t cv;
		struct req *head, *tail;
	} jobs[2];
	int jobs_stop;
} server;

typedef struct req { /* one request, from its headers to its completion */
	enum route route;
	enum method method;
	conn *c;
	hl_id id;
	char name[HL_REF_MAX + 1];  /* ref name, or kv namespace */
	char key[HL_KV_KEY_MAX + 1]; /* kv key, or a revision (log, commits) */
	size_t klen;
	uint8_t *body;
	size_t len, cap;
	int started, too_big, counted, checked;
	int nul_in_path;           /* the raw path held %00 (on_uri): refused by hl_sv_route() */
	hl_writer *w;              /* a blob upload streamed into the store as it arrives */
	int stream_err;
	uint64_t body_t0, received; /* when the body began, and how much of it has come */
	/* a request answered by a writer thread */
	struct MHD_Connection *mc;
	struct sv_loop *loop;      /* the event loop to wake when the answer is ready */
	struct req *next_job;
	int suspended;             /* asleep until a writer thread has answered it */
	int held;                  /* held by its event loop (not suspended) until the round ends */
	int answered;              /* the answer is ready (held requests) */
	unsigned answer_status;
	struct MHD_Response *answer;
} req;

static inline enum MHD_Result keep_answer(req *q, unsigned status, struct MHD_Response *r)
{
	q->answer_status = status;
	q->answer = r;
	return MHD_YES;
}

static inline uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Set on a writer thread while it answers a suspended request: the answer is kept in the request
 * and queued by the event loop once the connection is resumed (server_respond.c). */
extern __thread struct req *hl_sv_deferred;

/* responses: statuses, error bodies, streams (server_respond.c) */
void hl_sv_etag_of(const hl_id *id, char out[HL_ID_HEX_LEN + 3]);
json_t *hl_sv_id_json(const hl_id *id);
enum MHD_Result hl_sv_queue(server *sv, struct MHD_Connection *mc, unsigned status,
                            struct MHD_Response *r);
enum MHD_Result hl_sv_send_405(server *sv, struct MHD_Connection *mc, unsigned allow,
                               const char *fmt, ...);
enum MHD_Result hl_sv_send_buf(server *sv, struct MHD_Connection *mc, hl_buf *b, const char *etag,
                               int immutable);
enum MHD_Result hl_sv_send_err(server *sv, struct MHD_Connection *mc, int err, const char *what);
enum MHD_Result hl_sv_send_error(server *sv, struct MHD_Connection *mc, unsigned status,
                                 const char *code, const char *fmt, ...);
enum MHD_Result hl_sv_send_head(server *sv, struct MHD_Connection *mc, uint64_t size,
                                const char *etag);
enum MHD_Result hl_sv_send_json(server *sv, struct MHD_Connection *mc, unsigned status, json_t *j,
                                const char *etag);
enum MHD_Result hl_sv_send_put_result(server *sv, struct MHD_Connection *mc, const hl_id *id,
                                      size_t size, int created);
enum MHD_Result hl_sv_send_stream(server *sv, struct MHD_Connection *mc, hl_reader *r,
                                  uint64_t size, const char *etag);
struct MHD_Response *hl_sv_text_response(char *text, size_t len, const char *type);

/* routing, scopes and the handlers (server_routes.c) */
const char *hl_sv_allow_header(unsigned m);
unsigned hl_sv_allowed_methods(enum route r);
enum MHD_Result hl_sv_dispatch(server *sv, struct MHD_Connection *mc, req *q);
int hl_sv_granted(server *sv, struct MHD_Connection *mc);
unsigned hl_sv_route(const char *url, req *q, const char **why);
int hl_sv_scope_needed(enum route r, enum method m);

/* writer threads, the access handler, connections (server_loop.c) */
void hl_sv_on_completed(void *cls, struct MHD_Connection *mc, void **ctx,
                        enum MHD_RequestTerminationCode toe);
void hl_sv_on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
                         enum MHD_ConnectionNotificationCode code);
enum MHD_Result hl_sv_on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **ctx);
void *hl_sv_on_uri(void *cls, const char *uri, struct MHD_Connection *mc);
void *hl_sv_loop_main(void *arg);
void hl_sv_loop_wake(sv_loop *l);
void *hl_sv_sweeper_main(void *arg);
void *hl_sv_writer_main(void *arg);
void hl_sv_writers_stop(server *sv);

/* HTTPS (server_tls.c): the certificate and key of --tls-cert/--tls-key, given to each handshake
 * by a callback so that SIGHUP can load new ones while the server runs. */
typedef struct sv_tls_cert sv_tls_cert;
int hl_sv_tls_load(const char *cert_file, const char *key_file, sv_tls_cert **out, const char **why);
void hl_sv_tls_free(sv_tls_cert *c);
int hl_sv_tls_start(server *sv, const char **why); /* loads them; the callback serves them */
void hl_sv_tls_reload(server *sv);                  /* SIGHUP: the old pair stays on failure */
void hl_sv_tls_stop(void);
void *hl_sv_tls_callback(void); /* for MHD_OPTION_HTTPS_CERT_CALLBACK */
#define HL_SV_TLS_PRIORITIES "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2"

#endif
