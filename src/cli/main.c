/* main.c — the helios command line: global options, store location, dispatch. What the commands
 * share (exit codes, messages, opening the store, loading inputs) is util.c. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

static const char usage_text[] =
	"usage: helios [--store DIR] [--config FILE] [--json] [-q] COMMAND [ARGS]\n"
	"\n"
	"commands:\n"
	"  init [--sync MODE]           create the store (put creates it too)\n"
	"  put [--sync MODE] FILE...|-  store files, print '<id>  <name>' per file\n"
	"  get ID [-o FILE]             write an object to stdout or FILE\n"
	"  has ID...                    exit 0 if all are stored; else print the missing ids, exit 1\n"
	"  hash [FILE...|-]             print BLAKE3 ids exactly as b3sum does, storing nothing\n"
	"  verify [--threads N] [--deep] [--repair [--repair-from SRC]]   re-hash every stored object;\n"
	"                               list the corrupt ones; --deep: and check that the index and\n"
	"                               the segment files agree; --repair replaces corrupt objects by\n"
	"                               verified copies from the L1 and SRC (s3: the config's bucket, or a helios\n"
	"                               URL; default the config's repair-from) and says which could not\n"
	"  fsck --rebuild-index         a new index from the segment files (after 'verify' says the\n"
	"                               index is damaged; the store must not be open)\n"
	"  stats [--prometheus]         object count, sizes, cache, admission, health, latency\n"
	"  stats --backend              ...and what a shared backend (a bucket) holds, by listing it\n"
	"  stats --dedup                logical bytes the refs name, dedup and compression savings\n"
	"  ref get|set|list|delete ...  refs: names for objects, changed by compare-and-swap\n"
	"  snapshot DIR [--ref NAME [-m MSG] [--author A] [--meta K=V]... [--retry]]   store a work\n"
	"                               tree, print its root tree id; --ref: record it as a commit on\n"
	"                               NAME's history, moved by compare-and-swap (exit 4 when NAME\n"
	"                               moved meanwhile; --retry re-parents), print the commit id\n"
	"                               (--threads N, --sync MODE); new files are stored as deltas\n"
	"                               against NAME's snapshot or its newest sibling's (the refs of\n"
	"                               NAME's folder), or --like REV's, where that saves space;\n"
	"                               --no-like: never\n"
	"  log REV [--limit N] [--before TIME] [--oneline]   history, newest first\n"
	"  show REV                     one commit and what it changed against its parent\n"
	"  forget [--prefix P] --keep-last|hourly|daily|weekly|monthly|yearly N\n"
	"         [--keep-within 1y2m3d4h] [--dry-run]   retention by restic's rules; then gc frees\n"
	"  mount DIR [--ref NAME | --commit REV]   a read-only file system of the snapshots\n"
	"  restore REV DIR              recreate a snapshot in a new or empty directory\n"
	"  ls REV                       list a snapshot: mode, kind, id, size, path\n"
	"  diff REV REV                 A/D/M per path that differs\n"
	"  push DIR|REV --remote URL [--ref NAME]   upload what the server lacks of a work tree\n"
	"                               (snapshotted first) or a snapshot, move the ref by\n"
	"                               compare-and-swap (--token T or $HELIOS_TOKEN)\n"
	"  pull REV --remote URL DIR    fetch what the local store lacks, restore into DIR\n"
	"                 REV: a ref, an id or a unique prefix (4+ hex), then ~N ^ ^N @{TIME}\n"
	"  gc [--grace DURATION] [--compact-below F] [--repack[=LEVEL]] [--repack-threads N]\n"
	"     [--compact-rate BYTES] [--dry-run]\n"
	"                               delete what no ref, kv value or recent object reaches and\n"
	"                               nobody touched within the grace period (default 24h);\n"
	"                               compact sparse segments (default 0.5); --repack: re-encode\n"
	"                               records at zstd LEVEL (default 19), as deltas against\n"
	"                               similar objects where that pays (online, like compaction;\n"
	"                               on half the CPUs unless --repack-threads says);\n"
	"                               --compact-rate: move at most BYTES a second (paced)\n"
	"  serve [OPTIONS]              the HTTP server (helios serve --help)\n"
	"\n"
	"global options:\n"
	"  --store DIR   the store (default $HELIOS_STORE, else $XDG_DATA_HOME/helios,\n"
	"                else ~/.local/share/helios)\n"
	"  --config FILE options in INI sections [store] [tier] [s3] [serve]: the tiers (backend,\n"
	"                bucket, L2 cache) and serve's options (default $HELIOS_CONFIG, else\n"
	"                DIR/helios.conf if present; the README shows one)\n"
	"  --json        machine-readable output\n"
	"  -q            no progress bars or summaries\n"
	"  MODE          always (default: acknowledged = on stable storage) | batch | none\n"
	"\n"
	"exit codes: 0 ok, 1 not found, 2 usage, 3 corruption, 4 conflict, 5 other failure\n";

static char *default_store(void)
{
	const char *e = getenv("HELIOS_STORE");
	if (e && *e)
		return strdup(e);
	char buf[4096];
	const char *x = getenv("XDG_DATA_HOME"), *home = getenv("HOME");
	if (x && *x)
		snprintf(buf, sizeof buf, "%s/helios", x);
	else if (home && *home)
		snprintf(buf, sizeof buf, "%s/.local/share/helios", home);
	else
		return NULL;
	return strdup(buf);
}

/* The CLI reports failures itself, one line each; the library's own log lines show only when
 * $HELIOS_LOG asks for them. */
static void quiet_logger(int level, const char *line)
{
	(void)level;
	(void)line;
}

static const struct {
	const char *name;
	int (*fn)(cli *);
} commands[] = {
	{"init", cmd_init}, {"put", cmd_put}, {"get", cmd_get}, {"has", cmd_has},
	{"hash", cmd_hash}, {"verify", cmd_verify}, {"fsck", cmd_fsck}, {"stats", cmd_stats}, {"serve", cmd_serve},
	{"ref", cmd_ref}, {"snapshot", cmd_snapshot}, {"restore", cmd_restore}, {"ls", cmd_ls},
	{"diff", cmd_diff}, {"push", cmd_push}, {"pull", cmd_pull}, {"gc", cmd_gc},
	{"log", cmd_log}, {"show", cmd_show}, {"forget", cmd_forget}, {"mount", cmd_mount},
};

#define HANDLED (-1) /* parse_globals answered the call itself (--help, --version) */

/* Splits argv into global options (anywhere before "--") and the command with its arguments.
 * Returns 0, HANDLED, or an exit code for a usage error. */
static int parse_globals(int argc, char **argv, cli *c, char **store, char **config, char **rest,
                         int *nrest)
{
	int dashdash = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (dashdash || a[0] != '-' || !strcmp(a, "-")) {
			rest[(*nrest)++] = argv[i];
		} else if (!strcmp(a, "--")) {
			dashdash = 1;
			rest[(*nrest)++] = argv[i];
		} else if (!strcmp(a, "--store") || !strncmp(a, "--store=", 8)) {
			const char *v = a[7] == '=' ? a + 8 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !*v)
				return cli_usage("--store needs a directory");
			free(*store);
			*store = strdup(v);
		} else if (!strcmp(a, "--config") || !strncmp(a, "--config=", 9)) {
			const char *v = a[8] == '=' ? a + 9 : (i + 1 < argc ? argv[++i] : NULL);
			if (!v || !*v)
				return cli_usage("--config needs a file");
			free(*config);
			*config = strdup(v);
		} else if (!strcmp(a, "--json")) {
			c->json = 1;
		} else if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
			c->quiet = 1;
		} else if ((!strcmp(a, "-h") || !strcmp(a, "--help")) && *nrest && !strcmp(rest[0], "serve")) {
			rest[(*nrest)++] = argv[i]; /* serve has options enough for a page of its own */
		} else if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
			fputs(usage_text, stdout);
			return HANDLED;
		} else if (!strcmp(a, "--version")) {
			printf("helios %s\n", HL_VERSION_STRING);
			return HANDLED;
		} else {
			rest[(*nrest)++] = argv[i]; /* a command option; the command parses it */
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	cli c = {0};
	char *store = NULL, *config = NULL;
	char **rest = calloc((size_t)argc + 1, sizeof(char *));
	int nrest = 0, code;
	if (!rest)
		return EXIT_FAIL;
	if (!getenv("HELIOS_LOG"))
		hl_set_logger(quiet_logger);
	code = parse_globals(argc, argv, &c, &store, &config, rest, &nrest);
	if (code) {
		code = code == HANDLED ? EXIT_OK : code;
		goto out;
	}
	if (nrest == 0) {
		fputs(usage_text, stderr);
		code = EXIT_USAGE;
		goto out;
	}
	if (!store && !(store = default_store())) {
		code = cli_usage("no store: pass --store DIR or set HELIOS_STORE");
		goto out;
	}
	c.store = store;
	if ((code = cli_config_load(&c, config)) != 0)
		goto out;
	c.argc = nrest;
	c.argv = rest;
	code = -1;
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(rest[0], commands[i].name))
			code = commands[i].fn(&c);
	if (code < 0)
		code = cli_usage("unknown command '%s'", rest[0]);
	if (fflush(stdout) != 0 && code == EXIT_OK)
		code = cli_fail("writing output", errno);
out:
	cli_config_free(&c);
	free(rest);
	free(store);
	free(config);
	return code;
}
