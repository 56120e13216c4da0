/* server.c — `helios serve`: libmicrohttpd (epoll, one event-loop thread per core, HTTP/1.1
 * keep-alive) in front of the public API; this file starts, runs and stops it (graceful stop on
 * SIGTERM/SIGINT). The rest of the server: server_int.h. Uses only include/helios.h below it. */
#include "server/server_int.h"

void hl_server_config_init(hl_server_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->listen = "127.0.0.1:8080";
	cfg->max_conns = 4096;
	cfg->idle_timeout_s = 30;
	cfg->max_body = UINT64_C(64) << 20;
	/* the connection's memory in libmicrohttpd, its read buffer too: at 12 KiB a 4 KiB PUT arrives
	 * in one recv (two at 8 KiB); libmicrohttpd clears this much per request */
	cfg->max_header = 12 * 1024;
	cfg->drain_s = 30;
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

/* systemd's readiness protocol (sd_notify, without libsystemd): one datagram to $NOTIFY_SOCKET
 * ("@name": the abstract namespace) when the service manager asked for it; nothing otherwise. */
static void notify_manager(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t n = path ? strlen(path) : 0;
	if (n < 2 || n >= sizeof a.sun_path || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(a.sun_path, path, n);
	if (path[0] == '@')
		a.sun_path[0] = 0;
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&a,
	           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n)) < 0) {
	} /* a manager that went away: nothing to tell */
	close(fd);
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
	if (!cfg->tls_cert != !cfg->tls_key) {
		*why = "--tls-cert and --tls-key go together";
		return HL_INVALID;
	}
	if (!loopback && !cfg->tls_cert && !cfg->insecure_http) {
		*why = "beyond loopback the tokens would travel in clear text: give --tls-cert and "
		       "--tls-key (or --insecure-http, behind a TLS proxy)";
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
	sv_tls_cert *c;
	if (!err && cfg->tls_cert && (err = hl_sv_tls_load(cfg->tls_cert, cfg->tls_key, &c, why)) == 0)
		hl_sv_tls_free(c);
	return err;
}

/* The listen socket, shared by every event loop: non-blocking (each loop accepts when its epoll
 * set says so, and one that comes second finds nothing), address reuse for a quick restart but not
 * port sharing (a second server on the same port is refused). */
static int listen_on(server *sv, const struct sockaddr_storage *ss, socklen_t sl)
{
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	int one = 1;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) ||
	    (ss->ss_family == AF_INET6 && setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one)) ||
	    bind(fd, (const struct sockaddr *)ss, sl) || listen(fd, 1024)) {
		int err = errno;
		close(fd);
		return err;
	}
	sv->listen_fd = fd;
	return 0;
}

/* n event loops, each a daemon on the shared listen socket with its share of the connection
 * limit, and its thread. */
static int loops_start(server *sv, unsigned n, int ipv6)
{
	if (!(sv->loops = calloc(n, sizeof(*sv->loops))))
		return ENOMEM;
	unsigned limit = accept_limit(sv->cfg.max_conns), share = (limit + n - 1) / n;
	for (unsigned i = 0; i < n; i++) {
		sv_loop *l = &sv->loops[i];
		l->sv = sv;
		l->epfd = -1;
		sv->nloops++;
		if ((l->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0)
			return errno;
		int tls = sv->cfg.tls_cert != NULL;
		/* with TLS: the certificate from the reloadable callback, TLS 1.2 and 1.3 only */
		struct MHD_OptionItem tls_opts[] = {
			{MHD_OPTION_HTTPS_CERT_CALLBACK, 0, hl_sv_tls_callback()},
			{MHD_OPTION_HTTPS_PRIORITIES, 0, (void *)HL_SV_TLS_PRIORITIES},
			{MHD_OPTION_END, 0, NULL},
		};
		l->d = MHD_start_daemon(
			MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | (ipv6 ? MHD_USE_IPv6 : 0) |
			(tls ? MHD_USE_TLS : 0),
			0, NULL, NULL, hl_sv_on_request, sv,
			MHD_OPTION_LISTEN_SOCKET, sv->listen_fd,
			MHD_OPTION_ARRAY, tls ? tls_opts : &tls_opts[2],
			MHD_OPTION_CONNECTION_LIMIT, share,
			MHD_OPTION_CONNECTION_TIMEOUT, sv->cfg.idle_timeout_s,
			MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)sv->cfg.max_header,
			MHD_OPTION_URI_LOG_CALLBACK, hl_sv_on_uri, sv,
			MHD_OPTION_NOTIFY_COMPLETED, hl_sv_on_completed, sv,
			MHD_OPTION_NOTIFY_CONNECTION, hl_sv_on_connection, sv,
			MHD_OPTION_END);
		if (!l->d)
			return errno ? errno : ENOMEM;
		const union MHD_DaemonInfo *di = MHD_get_daemon_info(l->d, MHD_DAEMON_INFO_EPOLL_FD);
		struct epoll_event daemon_ev = {.events = EPOLLIN, .data.fd = di ? di->epoll_fd : -1},
		                   wake_ev = {.events = EPOLLIN, .data.fd = l->wake_fd};
		if (!di || (l->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 ||
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, di->epoll_fd, &daemon_ev) ||
		    epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wake_fd, &wake_ev))
			return errno ? errno : EINVAL;
		int err = pthread_create(&l->thread, NULL, hl_sv_loop_main, l);
		if (err)
			return err;
		l->running = 1;
		pthread_setname_np(l->thread, "helios-http");
	}
	return 0;
}

static void loops_wake(server *sv)
{
	for (unsigned i = 0; i < sv->nloops; i++)
		if (sv->loops[i].wake_fd >= 0)
			hl_sv_loop_wake(&sv->loops[i]);
}

/* No new connections: every loop takes the listen socket out of its epoll set, then it is closed
 * (pending connections in its backlog are refused rather than left waiting). */
static void loops_quiesce(server *sv)
{
	atomic_store(&sv->quiescing, 1);
	loops_wake(sv);
	unsigned running = 0;
	for (unsigned i = 0; i < sv->nloops; i++)
		running += sv->loops[i].running;
	while ((unsigned)atomic_load(&sv->loops_quiesced) < running)
		usleep(1000);
	if (sv->listen_fd >= 0 && running == sv->nloops) {
		close(sv->listen_fd);
		sv->listen_fd = -1;
	}
}

/* Stops and joins the loops, then their daemons (which close their connections). */
static void loops_stop(server *sv)
{
	atomic_store(&sv->loops_stop, 1);
	loops_wake(sv);
	for (unsigned i = 0; i < sv->nloops; i++) {
		sv_loop *l = &sv->loops[i];
		if (l->running)
			pthread_join(l->thread, NULL);
		l->running = 0;
		if (l->d) {
			MHD_quiesce_daemon(l->d); /* the listen socket is ours to close, once */
			MHD_stop_daemon(l->d);
		}
		if (l->epfd >= 0)
			close(l->epfd);
		if (l->wake_fd >= 0)
			close(l->wake_fd);
	}
	free(sv->loops);
	sv->loops = NULL;
	sv->nloops = 0;
	if (sv->listen_fd >= 0)
		close(sv->listen_fd);
	sv->listen_fd = -1;
}

int hl_server_run(hl_store *s, const hl_server_config *cfg, const char **why)
{
	static server sv_static; /* signal handling is process-wide: one server per process */
	server *sv = &sv_static;
	memset(sv, 0, sizeof(*sv));
	sv->listen_fd = -1;
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
	pthread_cond_init(&sv->jobs[0].cv, NULL);
	pthread_cond_init(&sv->jobs[1].cv, NULL);
	hl_backend_info bi;
	sv->blobs_to_one = cfg->write_threads > 1 && hl_backend_get(s, 0, &bi) == 0 &&
	                   !strcmp(bi.kind, "local"); /* offload() */
	if (cfg->write_threads && !(sv->writers = calloc(cfg->write_threads, sizeof(pthread_t)))) {
		err = ENOMEM;
		goto out;
	}
	for (unsigned i = 0; i < cfg->write_threads; i++) {
		if ((err = pthread_create(&sv->writers[i], NULL, hl_sv_writer_main, sv)) != 0)
			goto out;
		pthread_setname_np(sv->writers[i], "helios-write");
		sv->nwriters++;
	}
	signal(SIGPIPE, SIG_IGN);
	struct sigaction sa = {.sa_handler = on_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (cfg->tls_cert && (err = hl_sv_tls_start(sv, why)) != 0)
		goto out;
	sigaction(SIGHUP, &sa, NULL);
	if ((err = listen_on(sv, &ss, sl)) != 0) {
		*why = "cannot listen there (address in use, or not allowed)";
		goto out;
	}
	if ((err = loops_start(sv, threads, ss.ss_family == AF_INET6)) != 0) {
		*why = "cannot start the event loops";
		goto out;
	}
	if ((err = pthread_create(&sv->sweeper, NULL, hl_sv_sweeper_main, sv)) != 0)
		goto out;
	sv->sweeper_running = 1;
	pthread_setname_np(sv->sweeper, "helios-sweep");
	struct sockaddr_storage bound;
	socklen_t bl = sizeof bound;
	unsigned port = 0;
	if (getsockname(sv->listen_fd, (struct sockaddr *)&bound, &bl) == 0)
		port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
		                                         : ((struct sockaddr_in *)&bound)->sin_port);
	char shown[160];
	snprintf(shown, sizeof shown, "%.*s:%u", (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen, port);
	printf("helios: serving %s://%s\n", cfg->tls_cert ? "https" : "http", shown);
	fflush(stdout);
	char ready[256];
	snprintf(ready, sizeof ready, "READY=1\nSTATUS=serving %s://%s", cfg->tls_cert ? "https" : "http", shown);
	notify_manager(ready);

	char sig = 0;
	for (;;) { /* SIGHUP: new certificate files; SIGTERM, SIGINT: stop */
		ssize_t got = read(sig_pipe[0], &sig, 1);
		if (got < 0 && errno == EINTR)
			continue;
		if (got == 1 && sig == SIGHUP) {
			notify_manager("RELOADING=1");
			if (cfg->tls_cert)
				hl_sv_tls_reload(sv);
			notify_manager("READY=1");
			continue;
		}
		break;
	}
	/* graceful stop: no new connections, requests in flight answered, then everything synced */
	notify_manager("STOPPING=1");
	atomic_store(&sv->stopping, 1);
	loops_quiesce(sv);
	uint64_t until = now_ns() + (uint64_t)cfg->drain_s * 1000000000u;
	while (atomic_load(&sv->inflight) > 0 && now_ns() < until)
		usleep(10000);
	long left = atomic_load(&sv->inflight);
	hl_sv_writers_stop(sv); /* answers whatever is still queued, resuming its connection */
	loops_stop(sv);
	pthread_join(sv->sweeper, NULL);
	sv->sweeper_running = 0;
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
	atomic_store(&sv->stopping, 1);
	if (sv->sweeper_running)
		pthread_join(sv->sweeper, NULL);
	hl_sv_writers_stop(sv);
	loops_stop(sv);
	pthread_mutex_destroy(&sv->jobs_mu);
	pthread_cond_destroy(&sv->jobs[0].cv);
	pthread_cond_destroy(&sv->jobs[1].cv);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	hl_sv_tls_stop();
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	pthread_mutex_destroy(&sv->conns_mu);
	free(sv->tokens);
	sv->tokens = NULL;
	return err;
}
