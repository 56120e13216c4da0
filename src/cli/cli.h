/* cli.h — shared pieces of the helios command line: parsed arguments, exit codes, store opening,
 * output helpers and the progress bar. The CLI sees only include/helios.h below it (and the
 * server's entry point, server/server.h, for `helios serve`). */
#ifndef HL_CLI_CLI_H
#define HL_CLI_CLI_H
#include <stdint.h>
#include <stdio.h>
#include "helios.h"

enum { EXIT_OK = 0, EXIT_MISSING = 1, EXIT_USAGE = 2, EXIT_CORRUPT = 3, EXIT_CONFLICT = 4, EXIT_FAIL = 5 };

typedef struct cli {
	const char *store;   /* resolved store directory */
	int json, quiet;
	int argc;            /* command arguments (globals removed), argv[0] is the command */
	char **argv;
	const char *config_path; /* helios.conf, when there is one (config.c) */
	char *config_text;
	size_t config_len;
	int config_world_readable;
} cli;

/* ---- helios.conf (config.c) ---- */
#define CLI_OPT_UNKNOWN 1
/* Applies one option ("--name", value): 0, CLI_OPT_UNKNOWN, or an error for a bad value. */
typedef int (*cli_option_fn)(const char *name, const char *value, void *ctx);
/* Reads the config file (path, else $HELIOS_CONFIG, else <store>/helios.conf if present); an exit
 * code on failure, with the reason printed. */
int cli_config_load(cli *c, const char *path);
void cli_config_free(cli *c);
/* Calls fn for every entry of the given sections (NULL-terminated list) as "--key" (in [s3]:
 * "--s3-key"); an exit code, with file and line printed, when the file or an entry is bad. */
int cli_config_each(const cli *c, const char *const *sections, cli_option_fn fn, void *ctx);
/* The options of the store and its tiers (--sync, --l1-bytes, --backend, --s3-endpoint…);
 * ctx is an hl_options. */
int cli_store_option(const char *name, const char *value, void *ctx);
/* hl_options_init, then [store], [tier] and [s3] of the config, then AWS_ACCESS_KEY_ID,
 * AWS_SECRET_ACCESS_KEY, AWS_REGION and HELIOS_TOKEN where the file is silent. An exit code on
 * failure. */
int cli_options(const cli *c, hl_options *o);
/* Opens the store (with the config's options; write: read-write, creating it; sync unless it is
 * CLI_SYNC_CONFIG: the config's, else always); on failure prints why and returns the exit code
 * (0 on success). */
#define CLI_SYNC_CONFIG ((hl_sync_mode)-1)
int cli_open(const cli *c, int write, hl_sync_mode sync, hl_store **out);
int cli_open_with(const cli *c, const hl_options *o, hl_store **out);

/* ---- shared by every command (util.c; calls nothing of the other files) ---- */
/* Exit code for an hl_* / errno result. */
int cli_exit_code(int err);
/* One-line error on stderr: "helios: <what>: <cause>". Returns the exit code for err. */
int cli_fail(const char *what, int err);
int cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Resolves a revision (hl_rev_parse) to a commit (or a tree) and its root tree; prints why not
 * and returns the exit code otherwise. */
int cli_rev(hl_store *s, const char *rev, hl_id *commit, hl_id *tree);
/* ns since the epoch as RFC 3339 UTC ("2026-12-06T05:40:04Z"; 21 bytes with the NUL). */
void cli_format_time(uint64_t ns, char *out, size_t cap);
/* Parses a byte count with an optional K, M, G or T suffix (powers of 1024). */
int cli_parse_bytes(const char *v, uint64_t *out);
/* "90", "90s", "15m", "24h", "7d" → seconds. HL_INVALID otherwise. */
int cli_parse_duration(const char *v, uint64_t *seconds);
/* Parses --sync always|batch|none. */
int cli_parse_sync(const char *v, hl_sync_mode *out);
/* Prints "<hex>  <name>" exactly as b3sum does (escaping backslashes and newlines). */
void cli_print_sum(const hl_id *id, const char *name);
/* Reads a whole file (or "-" for stdin) into memory; *data is malloc'd or mmap'd, release with
 * cli_release. Returns 0 or an errno. */
typedef struct cli_blob {
	void *data;
	size_t len;
	int mapped;
} cli_blob;
int cli_load(const char *path, cli_blob *b);
void cli_release(cli_blob *b);

/* Progress bar on stderr, shown only when stderr is a terminal, -q is off, and the work has
 * already taken $HELIOS_PROGRESS_AFTER_MS (default 500) milliseconds. */
typedef struct progress {
	const char *label;
	uint64_t total, start_ns, last_ns, after_ns;
	int enabled, shown;
} progress;
void progress_begin(progress *p, const cli *c, const char *label, uint64_t total);
void progress_update(progress *p, uint64_t done);
void progress_end(progress *p);

int cmd_init(cli *c);
int cmd_put(cli *c);
int cmd_get(cli *c);
int cmd_has(cli *c);
int cmd_hash(cli *c);
int cmd_verify(cli *c);
int cmd_fsck(cli *c);
int cmd_stats(cli *c);
int cmd_serve(cli *c);
int cmd_ref(cli *c);
int cmd_snapshot(cli *c);
int cmd_restore(cli *c);
int cmd_ls(cli *c);
int cmd_diff(cli *c);
int cmd_push(cli *c);
int cmd_pull(cli *c);
int cmd_gc(cli *c);
int cmd_log(cli *c);
int cmd_show(cli *c);
int cmd_forget(cli *c);
int cmd_mount(cli *c);

#endif
