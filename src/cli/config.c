/* config.c — helios.conf: the options of the commands in one INI file (README, "Configuration").
 * Keys are the long options without their "--", in sections: [store] and [tier] apply to every
 * command that opens the store, [s3] too (as --s3-KEY), [serve] to `helios serve`. Options given
 * on the command line win over the file. The file is --config FILE, else $HELIOS_CONFIG, else
 * <store>/helios.conf when it exists. A key that is not an option, or a bad value, is an error
 * naming the file and line: a typo is never silently ignored. Opening the store with the options
 * so gathered is here too (cli_open). */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>
#include "cli/cli.h"

/* Values handed out stay valid until exit (hl_options points at them). */
static char **kept;
static size_t nkept;

static const char *keep(const char *v)
{
	char **k = realloc(kept, (nkept + 1) * sizeof(*k));
	char *d = strdup(v);
	if (!k || !d) {
		free(d);
		if (k)
			kept = k;
		return NULL;
	}
	kept = k;
	kept[nkept++] = d;
	return d;
}

int cli_config_load(cli *c, const char *path)
{
	char def[4200];
	int required = path != NULL;
	if (!path && (path = getenv("HELIOS_CONFIG")) != NULL && *path)
		required = 1;
	else if (!path) {
		snprintf(def, sizeof def, "%s/helios.conf", c->store);
		path = def;
	}
	FILE *f = fopen(path, "rb");
	if (!f) {
		if (!required && errno == ENOENT)
			return 0;
		int e = errno;
		char what[4300];
		snprintf(what, sizeof what, "config %s", path);
		cli_fail(what, e);
		return e == ENOENT ? EXIT_USAGE : EXIT_FAIL; /* a path the user named that is not there */
	}
	struct stat st;
	if (fstat(fileno(f), &st) == 0 && (st.st_mode & 044) && st.st_size < (1 << 20)) {
		c->config_world_readable = 1; /* judged when a secret is found in it */
	}
	char *text = NULL;
	size_t len = 0, cap = 0, n;
	char chunk[8192];
	while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
		if (len + n > (1u << 20)) {
			fclose(f);
			free(text);
			fprintf(stderr, "helios: config %s: larger than 1 MiB\n", path);
			return EXIT_USAGE;
		}
		if (len + n > cap) {
			cap = (len + n) * 2;
			char *t = realloc(text, cap);
			if (!t) {
				fclose(f);
				free(text);
				return cli_fail("reading the config", ENOMEM);
			}
			text = t;
		}
		memcpy(text + len, chunk, n);
		len += n;
	}
	int rerr = ferror(f);
	fclose(f);
	if (rerr) {
		free(text);
		return cli_fail("reading the config", EIO);
	}
	c->config_path = keep(path);
	c->config_text = text;
	c->config_len = len;
	return 0;
}

void cli_config_free(cli *c)
{
	free(c->config_text);
	c->config_text = NULL;
	for (size_t i = 0; i < nkept; i++)
		free(kept[i]);
	free(kept);
	kept = NULL;
	nkept = 0;
}

typedef struct each_ctx {
	const cli *c;
	const char *const *sections; /* NULL-terminated: the sections this walk applies */
	cli_option_fn fn;
	void *ctx;
	int code;                    /* the exit code of a usage error */
} each_ctx;

static int on_entry(const char *section, const char *key, const char *value, unsigned line, void *arg)
{
	each_ctx *e = arg;
	static const char *const known[] = {"store", "tier", "s3", "serve"};
	int is_known = 0, applies = 0;
	for (size_t i = 0; i < sizeof known / sizeof known[0]; i++)
		is_known |= !strcmp(section, known[i]);
	for (size_t i = 0; e->sections[i]; i++)
		applies |= !strcmp(section, e->sections[i]);
	if (!is_known) {
		fprintf(stderr, "helios: %s:%u: unknown section [%s] (known: store, tier, s3, serve)\n",
		        e->c->config_path, line, section);
		e->code = EXIT_USAGE;
		return HL_INVALID;
	}
	if (!applies)
		return 0;
	char name[160];
	snprintf(name, sizeof name, "--%s%s", strcmp(section, "s3") ? "" : "s3-", key);
	if ((!strcmp(name, "--s3-secret-key") || !strcmp(name, "--remote-token")) && e->c->config_world_readable)
		fprintf(stderr, "helios: warning: %s holds a secret and others may read it (chmod 600)\n",
		        e->c->config_path);
	const char *v = keep(value);
	int r = v ? e->fn(name, v, e->ctx) : ENOMEM;
	if (r == CLI_OPT_UNKNOWN)
		fprintf(stderr, "helios: %s:%u: unknown key '%s' in [%s]\n", e->c->config_path, line, key, section);
	else if (r)
		fprintf(stderr, "helios: %s:%u: bad value '%s' for %s\n", e->c->config_path, line, value, key);
	if (r)
		e->code = EXIT_USAGE;
	return r ? HL_INVALID : 0;
}

int cli_config_each(const cli *c, const char *const *sections, cli_option_fn fn, void *ctx)
{
	if (!c->config_text)
		return 0;
	each_ctx e = {c, sections, fn, ctx, 0};
	unsigned line;
	int err = hl_config_parse(c->config_text, c->config_len, on_entry, &e, &line);
	if (err && e.code) /* on_entry said why */
		return e.code;
	if (err == HL_INVALID) {
		fprintf(stderr, "helios: %s:%u: not a [section], a 'key = value' or a comment (or too long)\n",
		        c->config_path, line);
		return EXIT_USAGE;
	}
	if (err) {
		fprintf(stderr, "helios: %s: %s\n", c->config_path, hl_strerror(err));
		return EXIT_FAIL;
	}
	return 0;
}

int cli_store_option(const char *name, const char *v, void *arg)
{
	hl_options *o = arg;
	uint64_t n;
	if (!strcmp(name, "--sync"))
		return cli_parse_sync(v, &o->sync);
	if (!strcmp(name, "--l1-bytes"))
		return cli_parse_bytes(v, &o->l1_bytes);
	if (!strcmp(name, "--kv-max-bytes"))
		return cli_parse_bytes(v, &o->kv_max_bytes) || o->kv_max_bytes == 0 ? HL_INVALID : 0;
	if (!strcmp(name, "--gc-grace"))
		return cli_parse_duration(v, &o->gc_grace_s);
	if (!strcmp(name, "--index-memory")) {
		if (strcmp(v, "on") && strcmp(v, "off"))
			return HL_INVALID;
		o->index_in_memory = !strcmp(v, "on");
		return 0;
	}
	if (!strcmp(name, "--backend")) {
		if (strcmp(v, "local") && strcmp(v, "s3") && strcmp(v, "helios"))
			return HL_INVALID;
		o->backend = v;
		return 0;
	}
	if (!strcmp(name, "--l2-bytes"))
		return cli_parse_bytes(v, &o->l2_bytes);
	if (!strcmp(name, "--cacert")) {
		if (access(v, R_OK) != 0)
			return HL_INVALID;
		o->tls_cacert = v;
		return 0;
	}
	if (!strcmp(name, "--l2-region")) {
		if (cli_parse_bytes(v, &n) || n < HL_L2_REGION_MIN || n > HL_L2_REGION_MAX || n % HL_L2_REGION_ALIGN)
			return HL_INVALID;
		o->l2_region_size = (uint32_t)n;
		return 0;
	}
	if (!strcmp(name, "--remote-timeout")) {
		if (cli_parse_duration(v, &n) || n == 0 || n > 3600)
			return HL_INVALID;
		o->remote_timeout_ms = (unsigned)n * 1000;
		return 0;
	}
	if (!strcmp(name, "--fleet-lease")) {
		if (cli_parse_duration(v, &n) || n == 0 || n > 3600)
			return HL_INVALID;
		o->fleet_lease_ms = (unsigned)n * 1000;
		return 0;
	}
	if (!strcmp(name, "--remote-retries")) {
		char *end;
		unsigned long r = strtoul(v, &end, 10);
		if (*v == '-' || *end || end == v || r > 20)
			return HL_INVALID;
		o->remote_retries = (unsigned)r;
		return 0;
	}
	static const struct { const char *name; size_t off; } s3[] = {
		{"--s3-endpoint", offsetof(hl_options, s3_endpoint)},
		{"--s3-bucket", offsetof(hl_options, s3_bucket)},
		{"--s3-prefix", offsetof(hl_options, s3_prefix)},
		{"--s3-region", offsetof(hl_options, s3_region)},
		{"--s3-access-key", offsetof(hl_options, s3_access_key)},
		{"--s3-secret-key", offsetof(hl_options, s3_secret_key)},
		{"--remote-url", offsetof(hl_options, remote_url)},
		{"--repair-from", offsetof(hl_options, repair_from)},
		{"--remote-token", offsetof(hl_options, remote_token)},
	};
	for (size_t i = 0; i < sizeof s3 / sizeof s3[0]; i++)
		if (!strcmp(name, s3[i].name)) {
			if (!*v)
				return HL_INVALID;
			*(const char **)((char *)o + s3[i].off) = v;
			return 0;
		}
	return CLI_OPT_UNKNOWN;
}

int cli_options(const cli *c, hl_options *o)
{
	hl_options_init(o);
	static const char *const sections[] = {"store", "tier", "s3", NULL};
	int code = cli_config_each(c, sections, cli_store_option, o);
	if (code)
		return code;
	/* the usual environment of S3 tools, when the file does not say */
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *region = getenv("AWS_REGION");
	if (!o->s3_access_key && ak && *ak)
		o->s3_access_key = ak;
	if (!o->s3_secret_key && sk && *sk)
		o->s3_secret_key = sk;
	if (!o->s3_region && region && *region)
		o->s3_region = region;
	const char *token = getenv("HELIOS_TOKEN");
	if (!o->remote_token && token && *token)
		o->remote_token = token;
	return 0;
}

int cli_open(const cli *c, int write, hl_sync_mode sync, hl_store **out)
{
	hl_options o;
	int code = cli_options(c, &o);
	if (code)
		return code;
	o.read_only = !write;
	o.create = write;
	if (sync != CLI_SYNC_CONFIG)
		o.sync = sync;
	if (o.backend && *o.backend && strcmp(o.backend, "local")) {
		/* the objects are the bucket's; the directory is this node's (caches, kv): made when
		 * missing, read-only beside a server that holds it */
		o.read_only = 0;
		o.create = 1;
		int err = hl_open(c->store, &o, out);
		if (err != HL_LOCKED)
			return err ? cli_open_with(c, &o, out) : 0;
		o.read_only = 1;
	}
	return cli_open_with(c, &o, out);
}

int cli_open_with(const cli *c, const hl_options *o, hl_store **out)
{
	int err = hl_open(c->store, o, out);
	if (!err)
		return 0;
	char what[4200];
	if (err == HL_NOSTORE) {
		fprintf(stderr, "helios: %s: no store here yet (helios init or helios put creates one)\n", c->store);
		return EXIT_MISSING;
	}
	if (err == HL_LOCKED) {
		fprintf(stderr, "helios: %s: store is open read-write by another process (a running "
		                "'helios serve'?); send writes to it\n", c->store);
		return EXIT_FAIL;
	}
	if (err == HL_CORRUPT) {
		fprintf(stderr, "helios: cannot open store %s: %s; when its index is damaged, 'helios fsck "
		                "--rebuild-index' rebuilds it from the segment files\n", c->store, hl_strerror(err));
		return EXIT_CORRUPT;
	}
	snprintf(what, sizeof what, "cannot open store %s", c->store);
	int code = cli_fail(what, err);
	return code == EXIT_USAGE ? EXIT_FAIL : code;
}
