/* server.c — `helios serve`: libmicrohttpd (epoll, a pool of event-loop threads, HTTP/1.1
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
	cfg->max_header = 16 * 1024;
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
	return err;
}

int hl_server_run(hl_store *s, const hl_server_config *cfg, const char **why)
{
	static server sv_static; /* signal handling is process-wide: one server per process */
	server *sv = &sv_static;
	memset(sv, 0, sizeof(*sv));
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
	pthread_cond_init(&sv->jobs_cv, NULL);
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

	sv->d = MHD_start_daemon(
		MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG |
			(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
		0, NULL, NULL, hl_sv_on_request, sv,
		MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
		MHD_OPTION_THREAD_POOL_SIZE, threads,
		MHD_OPTION_CONNECTION_LIMIT, accept_limit(cfg->max_conns),
		MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)cfg->max_header,
		MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024,
		MHD_OPTION_LISTENING_ADDRESS_REUSE, 1,
		MHD_OPTION_URI_LOG_CALLBACK, hl_sv_on_uri, sv,
		MHD_OPTION_NOTIFY_COMPLETED, hl_sv_on_completed, sv,
		MHD_OPTION_NOTIFY_CONNECTION, hl_sv_on_connection, sv,
		MHD_OPTION_END);
	if (!sv->d) {
		*why = "cannot listen there (address in use, or not allowed)";
		err = errno ? errno : EADDRINUSE;
		goto out;
	}
	if ((err = pthread_create(&sv->sweeper, NULL, hl_sv_sweeper_main, sv)) != 0) {
		MHD_stop_daemon(sv->d);
		goto out;
	}
	pthread_setname_np(sv->sweeper, "helios-sweep");
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(sv->d, MHD_DAEMON_INFO_BIND_PORT);
	char shown[160];
	snprintf(shown, sizeof shown, "%.*s:%u", (int)(strrchr(cfg->listen, ':') - cfg->listen), cfg->listen,
	         di ? di->port : 0);
	printf("helios: serving http://%s\n", shown);
	fflush(stdout);

	char sig = 0;
	while (read(sig_pipe[0], &sig, 1) < 0 && errno == EINTR)
		;
	/* graceful stop: no new connections, requests in flight answered, then everything synced */
	atomic_store(&sv->stopping, 1);
	MHD_socket lfd = MHD_quiesce_daemon(sv->d);
	if (lfd != MHD_INVALID_SOCKET)
		close(lfd);
	uint64_t until = now_ns() + (uint64_t)cfg->drain_s * 1000000000u;
	while (atomic_load(&sv->inflight) > 0 && now_ns() < until)
		usleep(10000);
	long left = atomic_load(&sv->inflight);
	hl_sv_writers_stop(sv); /* answers whatever is still queued, resuming its connection */
	MHD_stop_daemon(sv->d);
	pthread_join(sv->sweeper, NULL);
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
	hl_sv_writers_stop(sv);
	pthread_mutex_destroy(&sv->jobs_mu);
	pthread_cond_destroy(&sv->jobs_cv);
	signal(SIGTERM, SIG_DFL);
	signal(SIGINT, SIG_DFL);
	close(sig_pipe[0]);
	close(sig_pipe[1]);
	sig_pipe[0] = sig_pipe[1] = -1;
	pthread_mutex_destroy(&sv->conns_mu);
	free(sv->tokens);
	sv->tokens = NULL;
	return err;
}
