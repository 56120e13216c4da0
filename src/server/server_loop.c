/* server_loop.c — the libmicrohttpd side: the event loops, writer threads that complete durable
 * writes off them, the access handler (headers, body chunks, answer), connection tracking and the
 * slow-client sweeper. */
#include "server/server_int.h"

/* ---------- event loops ---------- */

/* libmicrohttpd's own thread pool (0.9.75, and 1.0.1 alike) can stall: when one epoll_wait
 * returns a full batch (128 events) it waits again, with the whole connection timeout, before it
 * handles that batch; 128 requests that arrive together then sit unanswered until some other
 * event comes or the idle timeout ends. So each loop runs its daemon in external mode: the loop
 * does the waiting (on the daemon's epoll set, for as long as the daemon's own timeout says) and
 * the daemon only processes what is ready (MHD_run, which never waits). In that mode the daemon
 * has no wake-up channel of its own: whoever resumes a connection or stops the server wakes the
 * loop through its eventfd. */
void hl_sv_loop_wake(sv_loop *l)
{
	uint64_t one = 1;
	if (write(l->wake_fd, &one, sizeof one) < 0) {
	} /* EAGAIN: the counter is full, so the loop is awake already */
}

static __thread sv_loop *this_loop; /* on a loop's thread: that loop */
static void answer_jobs(server *sv, struct req **jobs, size_t n);

/* The blob PUTs the loop holds, stored together and answered (slots of requests whose
 * connection closed meanwhile are empty). */
static void answer_held(server *sv, sv_loop *l)
{
	size_t held = 0;
	for (size_t i = 0; i < l->nputs; i++)
		if (l->puts[i])
			l->puts[held++] = l->puts[i];
	l->nputs = 0;
	if (held)
		answer_jobs(sv, l->puts, held);
}

void *hl_sv_loop_main(void *arg)
{
	sv_loop *l = arg;
	server *sv = l->sv;
	this_loop = l;
	while (!atomic_load(&sv->loops_stop)) {
		if (atomic_load(&sv->quiescing) && !l->quiesced) {
			MHD_quiesce_daemon(l->d); /* on this thread: it changes the daemon's epoll set */
			l->quiesced = 1;
			atomic_fetch_add(&sv->loops_quiesced, 1);
		}
		MHD_UNSIGNED_LONG_LONG ms;
		int wait_ms = MHD_get_timeout(l->d, &ms) != MHD_YES ? -1 : ms > INT_MAX ? INT_MAX : (int)ms;
		struct epoll_event ev[2];
		int n = epoll_wait(l->epfd, ev, 2, wait_ms);
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "helios: event loop: epoll_wait: %s\n", strerror(errno));
			break;
		}
		uint64_t woken;
		for (int i = 0; i < n; i++)
			if (ev[i].data.fd == l->wake_fd && read(l->wake_fd, &woken, sizeof woken) < 0) {
			} /* EAGAIN: another read took it */
		MHD_run(l->d);
		answer_held(sv, l); /* the blob PUTs this round read */
	}
	if (!l->quiesced) { /* so the server's stop never waits for this loop */
		MHD_quiesce_daemon(l->d);
		l->quiesced = 1;
		atomic_fetch_add(&sv->loops_quiesced, 1);
	}
	return NULL;
}

/* ---------- writer threads ---------- */

#define JOBS_AT_ONCE 128 /* a writer takes up to this many queued requests */

/* Whether q is a blob PUT whose body is here whole: such requests are stored together. */
static int batchable(const req *q)
{
	return q->route == R_BLOB && q->method == M_PUT && !q->w;
}

/* The answer of one request, kept in it for its event loop (hl_sv_deferred). */
static void answer_one(server *sv, req *q, const hl_put_item *stored)
{
	hl_sv_deferred = q;
	enum MHD_Result r = stored ? hl_sv_send_put_result(sv, q->mc, &q->id, q->len, stored->created)
	                           : hl_sv_dispatch(sv, q->mc, q);
	if (r != MHD_YES && !q->answer)
		q->answer_status = 0; /* nothing to send: the connection is closed on resume */
	hl_sv_deferred = NULL;
}

/* Answers the requests jobs[0..n): the blob PUTs among them stored in one batch (one sync for
 * all under sync=always, no hand-off per request; bodies that do not hash to their ids are left
 * out of it); when the batch fails otherwise (a full disk) or holds one PUT, each is dispatched
 * alone for its own answer. Then each suspended connection resumes, and each event loop involved
 * is woken once; a request its own loop held is only marked answered (see hl_sv_on_request). */
static void answer_jobs(server *sv, req **jobs, size_t n)
{
	hl_put_item items[JOBS_AT_ONCE];
	req *put[JOBS_AT_ONCE];
	size_t np = 0;
	for (size_t i = 0; i < n; i++)
		if (batchable(jobs[i])) {
			put[np] = jobs[i];
			items[np++] = (hl_put_item){.data = jobs[i]->body ? jobs[i]->body : (const uint8_t *)"",
			                            .len = jobs[i]->len, .check_id = 1, .id = jobs[i]->id};
		}
	int err = np > 1 ? hl_put_batch(sv->store, items, np) : HL_INVALID;
	if (err == HL_MISMATCH) { /* some body does not hash to its id: those answer alone */
		size_t k = 0;
		for (size_t i = 0; i < np; i++) { /* (the failed batch may have written its ids) */
			hl_id got;
			hl_hash(items[i].data, items[i].len, &got);
			if (hl_id_equal(&got, &put[i]->id)) {
				put[k] = put[i];
				items[k] = items[i];
				items[k++].id = put[i]->id;
			}
		}
		np = k;
		err = np > 1 ? hl_put_batch(sv->store, items, np) : HL_INVALID;
	}
	int stored = err == 0;
	for (size_t i = 0, k = 0; i < n; i++) {
		int in_batch = stored && k < np && put[k] == jobs[i];
		answer_one(sv, jobs[i], in_batch ? &items[k] : NULL);
		k += in_batch;
	}
	sv_loop *woken[JOBS_AT_ONCE];
	size_t nw = 0;
	for (size_t i = 0; i < n; i++) {
		sv_loop *l = jobs[i]->loop;
		if (jobs[i]->held) {
			jobs[i]->answered = 1;
			continue;
		}
		MHD_resume_connection(jobs[i]->mc);
		size_t j = 0;
		while (j < nw && woken[j] != l)
			j++;
		if (j == nw)
			woken[nw++] = l;
	}
	for (size_t j = 0; j < nw; j++)
		hl_sv_loop_wake(woken[j]); /* its daemon has no wake-up channel of its own */
}

void *hl_sv_writer_main(void *arg)
{
	server *sv = arg;
	struct jobq *q = &sv->jobs[atomic_fetch_add(&sv->writer_ids, 1) && sv->blobs_to_one ? 1 : 0];
	req *jobs[JOBS_AT_ONCE];
	for (;;) {
		pthread_mutex_lock(&sv->jobs_mu);
		while (!q->head && !sv->jobs_stop)
			pthread_cond_wait(&q->cv, &sv->jobs_mu);
		size_t n = 0;
		while (q->head && n < JOBS_AT_ONCE) {
			jobs[n++] = q->head;
			if (!(q->head = q->head->next_job))
				q->tail = NULL;
		}
		pthread_mutex_unlock(&sv->jobs_mu);
		if (!n)
			return NULL; /* stopping, and nothing left */
		answer_jobs(sv, jobs, n);
	}
}

/* Hands q to a writer thread; its connection sleeps until the answer is ready. On a local store
 * blob PUTs go to the one writer that stores them: those that come while it syncs wait for it and
 * go into its next batch, so a PUT costs no wake-up of its own, nor a thread meeting others in
 * the store's group commit, which runs one sync at a time anyway (measured at 50 connections:
 * 7-15% more PUTs a second than spreading them over four writers, and 5-19% less CPU each). A
 * remote backend's uploads wait on the network, not on one sync: there every writer takes
 * batches, so several are in flight at once. */
static void offload(server *sv, struct MHD_Connection *mc, req *q)
{
	q->mc = mc;
	q->loop = this_loop;
	q->suspended = 1;
	q->next_job = NULL;
	MHD_suspend_connection(mc);
	struct jobq *jq = &sv->jobs[sv->blobs_to_one && !batchable(q) ? 1 : 0];
	pthread_mutex_lock(&sv->jobs_mu);
	if (jq->tail)
		jq->tail->next_job = q;
	else
		jq->head = q;
	jq->tail = q;
	pthread_cond_signal(&jq->cv);
	pthread_mutex_unlock(&sv->jobs_mu);
}

void hl_sv_writers_stop(server *sv)
{
	pthread_mutex_lock(&sv->jobs_mu);
	sv->jobs_stop = 1; /* queued jobs are still answered: each writer drains its queue */
	pthread_cond_broadcast(&sv->jobs[0].cv);
	pthread_cond_broadcast(&sv->jobs[1].cv);
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
	unsigned st = hl_sv_route(url, q, &why);
	if (q->c->over && !(st == 0 && (q->route == R_HEALTHZ || q->route == R_READYZ))) {
		atomic_fetch_add(&sv->conns_refused, 1);
		return hl_sv_send_error(sv, mc, 503, "overloaded", "more than %u connections are open; retry later",
		                  sv->cfg.max_conns);
	}
	if (st)
		return hl_sv_send_error(sv, mc, st, st == 404 ? "not_found" : "invalid", "%s", why);
	unsigned allow = hl_sv_allowed_methods(q->route);
	if (!(allow & q->method))
		return hl_sv_send_405(sv, mc, allow, "%s is not allowed here", method);
	int need = hl_sv_scope_needed(q->route, q->method), have = need ? hl_sv_granted(sv, mc) : SRV_SCOPE_ADMIN;
	if (have < 0)
		return hl_sv_send_error(sv, mc, 401, "unauthorized", "a valid token is required (Authorization: Bearer <token>)");
	if (have < need)
		return hl_sv_send_error(sv, mc, 403, "forbidden", "this token's scope does not allow %s here", method);
	const char *cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
	unsigned long long declared = cl ? strtoull(cl, NULL, 10) : 0;
	int blob_upload = (q->route == R_BLOB && q->method == M_PUT) || (q->route == R_BLOBS && q->method == M_POST);
	if (blob_upload && (!cl || declared > STREAM_MIN)) {
		/* no buffer: the body goes into the store as it arrives, chunk by chunk; its size is
		 * bounded by the store's largest object, not by --max-body */
		int err = hl_writer_open(sv->store, q->route == R_BLOB ? &q->id : NULL, &q->w);
		if (err)
			return hl_sv_send_err(sv, mc, err, "put");
		atomic_store(&q->c->deadline_ns, now_ns() + (uint64_t)sv->cfg.idle_timeout_s * 1000000000u +
		             (cl ? declared : (uint64_t)sv->cfg.max_body) * UINT64_C(1000000000) / MIN_BODY_RATE);
		*answered = 0;
		return MHD_YES;
	}
	if (declared > sv->cfg.max_body)
		return hl_sv_send_error(sv, mc, 413, "too_large", "the body is larger than the %llu-byte limit",
		                  (unsigned long long)sv->cfg.max_body);
	if (declared && !q->body) {
		if (!(q->body = malloc((size_t)declared)))
			return hl_sv_send_err(sv, mc, ENOMEM, "body");
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

enum MHD_Result hl_sv_on_request(void *cls, struct MHD_Connection *mc, const char *url,
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
	if (q->suspended || q->held) { /* resumed, or called again while held: answered yet? */
		if (!q->suspended && !q->answered)
			return MHD_YES;
		q->suspended = q->held = 0;
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
		return hl_sv_send_error(sv, mc, 413, "too_large", "the body is larger than the %llu-byte limit",
		                  (unsigned long long)sv->cfg.max_body);
	if (sv->nwriters && (q->method & (M_PUT | M_POST | M_DELETE))) {
		offload(sv, mc, q);
		return MHD_YES;
	}
	if (this_loop && batchable(q)) {
		/* stored when this round of the loop ends, with the others, and answered in the next.
		 * The connection is not suspended: libmicrohttpd keeps a request that has no answer
		 * yet among those ready (its next round does not wait) and calls this handler again.
		 * That spares the two epoll_ctl of a suspension and the empty read after a resume. */
		sv_loop *l = this_loop;
		if (l->nputs == sizeof l->puts / sizeof l->puts[0])
			answer_held(sv, l);
		q->mc = mc;
		q->loop = l;
		q->held = 1;
		l->puts[l->nputs++] = q;
		return MHD_YES;
	}
	return hl_sv_dispatch(sv, mc, q);
}

void hl_sv_on_completed(void *cls, struct MHD_Connection *mc, void **ctx,
                        enum MHD_RequestTerminationCode toe)
{
	server *sv = cls;
	req *q = *ctx;
	(void)mc, (void)toe;
	if (!q)
		return;
	if (q->c && q->c->fd >= 0) /* the next request's headers must arrive within the idle limit */
		atomic_store(&q->c->deadline_ns, now_ns() + (uint64_t)sv->cfg.idle_timeout_s * 1000000000u);
	/* a held request whose connection closed before its round ended leaves its loop's list
	 * (libmicrohttpd 0.9.75 handles a connection once a round, so this does not happen there;
	 * it would otherwise leave a freed request in the list) */
	if (q->held && !q->answered)
		for (size_t i = 0; i < q->loop->nputs; i++)
			if (q->loop->puts[i] == q)
				q->loop->puts[i] = NULL;
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
void *hl_sv_on_uri(void *cls, const char *uri, struct MHD_Connection *mc)
{
	(void)cls, (void)mc;
	req *q = calloc(1, sizeof(*q));
	if (q && uri)
		q->nul_in_path = srv_raw_path_check(uri, strlen(uri)) != 0;
	return q; /* NULL: on_request allocates it (and cannot see the raw path) */
}

/* ---------- connections and the slow-client sweeper ---------- */

void hl_sv_on_connection(void *cls, struct MHD_Connection *mc, void **socket_ctx,
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
void *hl_sv_sweeper_main(void *arg)
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
