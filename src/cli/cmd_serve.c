/* cmd_serve.c — `helios serve`: parses the server's options, opens the store read-write and runs
 * the HTTP server until SIGTERM or SIGINT. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"
#include "server/server.h"

static const char serve_help[] =
	"usage: helios [--store DIR] serve [OPTIONS]\n"
	"\n"
	"Serves the store over HTTP/1.1 (endpoints: docs/DESIGN.md, \"HTTP\"). Stops on SIGTERM or\n"
	"SIGINT: no new connections, requests in flight answered, everything synced, exit 0.\n"
	"\n"
	"options:\n"
	"  --listen ADDR:PORT    where to listen (default 127.0.0.1:8080; [::1]:PORT for IPv6;\n"
	"                        port 0 picks a free port, printed on the first line)\n"
	"  --token-file FILE     require tokens: lines '<token> <read|write|admin>' (16+ characters);\n"
	"                        clients send 'Authorization: Bearer <token>' or Basic with the token\n"
	"                        as password. Required when ADDR is not loopback.\n"
	"  --tls-cert FILE       serve HTTPS (TLS 1.2 and 1.3): the PEM certificate chain, and\n"
	"  --tls-key FILE        its unencrypted PEM key; SIGHUP loads both files again\n"
	"  --insecure-http       allow tokens over plain HTTP beyond loopback (behind a TLS proxy)\n"
	"  --sync MODE           always (default) | batch | none\n"
	"  --threads N           event-loop threads (default: one per core, at least 2)\n"
	"  --write-threads N     threads that answer writes, so syncs never stall the event loops;\n"
	"                        on a local store the first stores the blob PUTs, all those waiting\n"
	"                        in one batch, the others the other writes (default 4 with --sync\n"
	"                        always, else 0: writes answered on the event loops)\n"
	"  --max-conns N         open connections at most (default 4096)\n"
	"  --idle-timeout SECS   close idle connections; a request's headers must arrive within it\n"
	"                        and its body at 64 KiB/s or more (default 30)\n"
	"  --max-body BYTES      largest request body, 413 past it (default 64M); blob uploads over\n"
	"                        1 MiB stream into the store and are bounded by its largest object\n"
	"  --max-header BYTES    request line and headers, 431 past it (default 12K)\n"
	"  --drain SECS          on stop, wait this long for requests in flight (default 30)\n"
	"  --l1-bytes BYTES      in-memory cache of verified objects (default 256M)\n"
	"  --kv-max-bytes BYTES  bytes each kv namespace holds before evicting least recently used\n"
	"                        keys (default 8G)\n"
	"  --index-memory on|off a copy of the object index in memory, ~110 bytes an object, so a\n"
	"                        lookup costs the same at 10 M objects as at 10 k (default on)\n"
	"  --gc-grace DURATION   an unreachable object is collected (POST /v1/admin/gc) only once\n"
	"                        it has been neither written nor found present for this long\n"
	"                        (default 24h)\n"
	"  --gc-every DURATION   also collect in the background this often (default 0: only when\n"
	"                        asked); each report is logged\n"
	"  --gc-repack LEVEL     and repack each time at zstd LEVEL, 1..22 (19 is the usual; default\n"
	"                        0: no): records re-encoded, as deltas where that pays\n"
	"  --gc-rate BYTES       the background compaction moves this many bytes a second at most\n"
	"                        (default 32M; 0 = unpaced)\n"
	"tiers (docs/DESIGN.md, \"Tiers\"):\n"
	"  --backend local|s3|helios  where objects are kept durably (default local: this store)\n"
	"  --remote-url URL      backend helios: another helios serve (token: the config's [tier]\n"
	"                        remote-token or $HELIOS_TOKEN)\n"
	"  --s3-endpoint URL     the S3-compatible server, e.g. https://s3.eu-west-1.amazonaws.com\n"
	"  --s3-bucket NAME      the bucket (shared by every node pointing at it; refs live there)\n"
	"  --s3-prefix P         keys under P/ (default none)\n"
	"  --s3-region R         signing region (default us-east-1, or $AWS_REGION)\n"
	"  --s3-access-key K     (default $AWS_ACCESS_KEY_ID); the secret key only from the config\n"
	"                        file's [s3] secret-key or $AWS_SECRET_ACCESS_KEY\n"
	"  --l2-bytes BYTES      the L2 disk cache in front of the bucket (default 1G; 0 = none)\n"
	"  --l2-region BYTES     its region size (default 4M)\n"
	"  --remote-timeout DURATION  one request to the bucket (default 30s)\n"
	"  --remote-retries N    attempts after a transient failure (default 3)\n"
	"  --fleet-lease DURATION  on a shared bucket: how stale this node's view of a running\n"
	"                        collection may be before it relies on nothing (default 10s)\n"
	"Every option can also live in the config file (helios --config FILE): [serve] for the\n"
	"server's, [store]/[tier] for the others, [s3] without the s3- prefix.\n"
	"  --scrub-rate BYTES    the background scrubber re-reads and re-hashes this many bytes a\n"
	"                        second, resting an hour after each whole pass, resuming where it\n"
	"                        stopped after a restart; corrupt objects go to <store>/corruption.log\n"
	"                        (on a bucket: the whole bucket each pass, corrupt objects logged)\n"
	"                        and are repaired from --repair-from (default 16M; 0 = off)\n"
	"  --repair-from SRC     s3 (the [s3] bucket as a replica) or http://host:port (another\n"
	"                        helios; token as remote-token)\n"
	"  -q                    no banner\n"
	"BYTES take K, M, G or T suffixes (powers of 1024); DURATION s, m, h or d (seconds if none).\n";

static int parse_uint(const char *v, unsigned lo, unsigned hi, unsigned *out)
{
	char *end;
	if (!v || *v == '-')
		return HL_INVALID;
	unsigned long n = strtoul(v, &end, 10);
	if (*end || end == v || n < lo || n > hi)
		return HL_INVALID;
	*out = (unsigned)n;
	return 0;
}

typedef struct serve_opts {
	hl_server_config cfg;
	hl_options o;
	uint64_t scrub_rate; /* bytes/s of the background scrubber; 0: off */
	uint64_t gc_every_s; /* background collections; 0: off */
	hl_gc_options gc;    /* theirs (repack, compact_rate) */
	int write_threads_set;
	int from_flags;
} serve_opts;

/* One option of serve, from the command line or the config's [serve]: 0, CLI_OPT_UNKNOWN, or
 * HL_INVALID for a bad value. */
static int serve_option(const char *a, const char *v, void *arg)
{
	serve_opts *so = arg;
	hl_server_config *cfg = &so->cfg;
	uint64_t bytes;
	if (so->from_flags && (!strcmp(a, "--s3-secret-key") || !strcmp(a, "--remote-token")))
		return CLI_OPT_UNKNOWN; /* visible to every user in ps: the config or $AWS_SECRET_ACCESS_KEY */
	int r = cli_store_option(a, v, &so->o);
	if (r != CLI_OPT_UNKNOWN)
		return r;
	if (!strcmp(a, "--listen"))
		cfg->listen = v;
	else if (!strcmp(a, "--token-file"))
		cfg->token_file = v;
	else if (!strcmp(a, "--tls-cert"))
		cfg->tls_cert = v;
	else if (!strcmp(a, "--tls-key"))
		cfg->tls_key = v;
	else if (!strcmp(a, "--insecure-http")) {
		if (strcmp(v, "true") && strcmp(v, "false"))
			return HL_INVALID;
		cfg->insecure_http = !strcmp(v, "true");
	}
	else if (!strcmp(a, "--threads"))
		return parse_uint(v, 1, 1024, &cfg->threads);
	else if (!strcmp(a, "--write-threads")) {
		so->write_threads_set = 1;
		return parse_uint(v, 0, 4096, &cfg->write_threads);
	} else if (!strcmp(a, "--max-conns"))
		return parse_uint(v, 1, 1000000, &cfg->max_conns);
	else if (!strcmp(a, "--idle-timeout"))
		return parse_uint(v, 1, 86400, &cfg->idle_timeout_s);
	else if (!strcmp(a, "--drain"))
		return parse_uint(v, 0, 86400, &cfg->drain_s);
	else if (!strcmp(a, "--gc-every"))
		return cli_parse_duration(v, &so->gc_every_s) || so->gc_every_s > UINT32_MAX ? HL_INVALID : 0;
	else if (!strcmp(a, "--gc-repack")) {
		unsigned l;
		if (parse_uint(v, 0, HL_REPACK_LEVEL_MAX, &l))
			return HL_INVALID;
		so->gc.repack = (int)l;
	} else if (!strcmp(a, "--gc-rate"))
		return cli_parse_bytes(v, &so->gc.compact_rate);
	else if (!strcmp(a, "--scrub-rate"))
		return cli_parse_bytes(v, &so->scrub_rate) || (so->scrub_rate && so->scrub_rate < (64u << 10)) ? HL_INVALID : 0;
	else if (!strcmp(a, "--max-body"))
		return cli_parse_bytes(v, &cfg->max_body) || cfg->max_body == 0 ? HL_INVALID : 0;
	else if (!strcmp(a, "--max-header")) {
		if (cli_parse_bytes(v, &bytes) || bytes < 1024 || bytes > (1u << 20))
			return HL_INVALID;
		cfg->max_header = (unsigned)bytes;
	} else
		return CLI_OPT_UNKNOWN;
	return 0;
}

int cmd_serve(cli *c)
{
	serve_opts so = {.scrub_rate = 16u << 20};
	hl_server_config_init(&so.cfg);
	hl_gc_options_init(&so.gc);
	so.gc.compact_rate = 32u << 20;
	int code = cli_options(c, &so.o);
	static const char *const serve_section[] = {"serve", NULL};
	if (code || (code = cli_config_each(c, serve_section, serve_option, &so)) != 0)
		return code;
	hl_server_config *cfg = &so.cfg;
	hl_options *o = &so.o;
	cfg->quiet = c->quiet;
	so.from_flags = 1;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i], *v = i + 1 < c->argc ? c->argv[i + 1] : NULL;
		if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(serve_help, stdout);
			return EXIT_OK;
		} else if (!strcmp(a, "-q")) {
			cfg->quiet = 1;
			continue;
		} else if (!strcmp(a, "--insecure-http")) { /* a flag here; "= true" in the config */
			cfg->insecure_http = 1;
			continue;
		} else if (!v) {
			return cli_usage("serve: '%s' needs a value or is unknown", a);
		}
		int r = serve_option(a, v, &so);
		if (r == CLI_OPT_UNKNOWN)
			return cli_usage("serve: unknown option '%s'%s", a,
			                 strcmp(a, "--s3-secret-key") && strcmp(a, "--remote-token") ? "" :
			                 " (secrets go in the config file, or $AWS_SECRET_ACCESS_KEY / $HELIOS_TOKEN)");
		if (r)
			return cli_usage("serve: bad value '%s' for %s", v, a);
		i++;
	}
	if (so.gc.repack && !so.gc_every_s)
		return cli_usage("serve: --gc-repack needs --gc-every (how often to collect and repack)");
	int write_threads_set = so.write_threads_set;
	if (!write_threads_set)
		cfg->write_threads = o->sync == HL_SYNC_ALWAYS ? 4 : 0;
	o->create = 1;
	const char *why;
	int err = hl_server_check(cfg, &why);
	if (err) {
		fprintf(stderr, "helios: serve: %s%s%s\n", why, err == HL_INVALID ? "" : ": ",
		        err == HL_INVALID ? "" : hl_strerror(err));
		return EXIT_USAGE;
	}
	hl_store *s;
	if ((code = cli_open_with(c, o, &s)) != 0)
		return code;
	if (so.scrub_rate && (err = hl_scrub_background(s, so.scrub_rate, 3600)) != 0 && err != HL_INVALID) {
		hl_close(s);
		return cli_fail("serve: starting the scrubber", err);
	} /* (HL_INVALID: a remote backend; the local store holds no objects to scrub) */
	if (so.gc_every_s && (err = hl_gc_background(s, (unsigned)so.gc_every_s, &so.gc)) != 0) {
		hl_close(s);
		if (err == HL_INVALID) /* (logged why) */
			return cli_usage("serve: --gc-repack: a bucket keeps whole objects");
		return cli_fail("serve: starting the background collection", err);
	}
	err = hl_server_run(s, cfg, &why);
	hl_close(s);
	if (err) {
		fprintf(stderr, "helios: serve: %s: %s\n", why ? why : "failed", hl_strerror(err));
		return err == HL_INVALID ? EXIT_USAGE : cli_exit_code(err) == EXIT_USAGE ? EXIT_FAIL : cli_exit_code(err);
	}
	return EXIT_OK;
}
