/* cmd_remote.c — `helios push DIR|REV --remote URL [--ref NAME]` and `helios pull REV --remote URL
 * DIR`: the command line of hl_push and hl_pull (include/helios.h), which move snapshots between
 * the local store and a `helios serve`, only what the other side lacks. push snapshots DIR first
 * (or sends the snapshot of a local revision); pull resolves the revision on the server and
 * restores into DIR after. Token: --token or $HELIOS_TOKEN. */
#include <sys/stat.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

/* --remote URL [--token T] [--cacert FILE] and the one or two positional arguments; 0 or an
 * exit code. */
static int remote_args(cli *c, const char *cmd, const char **pos, int npos, const char **url,
                       const char **token, const char **ref, const char **cacert)
{
	int got = 0;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--remote") && i + 1 < c->argc)
			*url = c->argv[++i];
		else if (!strcmp(a, "--token") && i + 1 < c->argc)
			*token = c->argv[++i];
		else if (!strcmp(a, "--cacert") && i + 1 < c->argc)
			*cacert = c->argv[++i];
		else if (ref && !strcmp(a, "--ref") && i + 1 < c->argc)
			*ref = c->argv[++i];
		else if (a[0] == '-' && a[1])
			return cli_usage("%s: unknown option '%s'", cmd, a);
		else if (got < npos)
			pos[got++] = a;
		else
			return cli_usage("%s: unexpected argument '%s'", cmd, a);
	}
	if (got < npos || !*url)
		return cli_usage(ref ? "usage: helios push DIR|REV --remote URL [--ref NAME] [--token T] [--cacert FILE]"
		                     : "usage: helios pull REV --remote URL DIR [--token T] [--cacert FILE]");
	if (strncmp(*url, "http://", 7) && strncmp(*url, "https://", 8))
		return cli_usage("--remote needs an http:// or https:// URL");
	if (!*token)
		*token = getenv("HELIOS_TOKEN");
	return 0;
}

/* Opens the store read-write for a transfer, with --cacert over the config's. */
static int open_for_transfer(cli *c, const char *cacert, hl_store **s)
{
	hl_options o;
	int code = cli_options(c, &o);
	if (code)
		return code;
	o.sync = HL_SYNC_BATCH;
	o.create = 1;
	if (cacert) {
		if (access(cacert, R_OK) != 0) {
			fprintf(stderr, "helios: --cacert %s: %s\n", cacert, strerror(errno));
			return EXIT_USAGE;
		}
		o.tls_cacert = cacert;
	}
	return cli_open_with(c, &o, s);
}

/* What a failed transfer means, said once. */
static int transfer_fail(const char *cmd, const char *url, int err, const hl_transfer_report *rep)
{
	long status = rep->status;
	if (err == HL_UNTRUSTED)
		fprintf(stderr, "helios: %s: %s: the server's certificate is not trusted (%s); --cacert FILE "
		        "names the CA that signed it\n", cmd, url, rep->detail[0] ? rep->detail : "TLS");
	else if (err == HL_UNAVAILABLE && !status && rep->detail[0])
		fprintf(stderr, "helios: %s: %s: %s\n", cmd, url, rep->detail);
	else if (err == EACCES)
		fprintf(stderr, "helios: %s: the server answered %ld: %s\n", cmd, status,
		        status == 403 ? "this token's scope does not allow it (--token or $HELIOS_TOKEN)"
		                      : "a valid token is required (--token or $HELIOS_TOKEN)");
	else if (err == HL_UNAVAILABLE && !status)
		fprintf(stderr, "helios: %s: cannot connect to %s, or it stopped answering\n", cmd, url);
	else if (err == HL_CORRUPT)
		fprintf(stderr, "helios: %s: %s sent bytes that do not hash to the id asked for; refused\n",
		        cmd, url);
	else if (status)
		fprintf(stderr, "helios: %s: the server answered %ld (%s)\n", cmd, status, hl_strerror(err));
	else
		return cli_fail(cmd, err);
	return cli_exit_code(err);
}

int cmd_push(cli *c)
{
	const char *dir = NULL, *url = NULL, *ref = NULL, *token = NULL, *cacert = NULL;
	int code = remote_args(c, "push", &dir, 1, &url, &token, &ref, &cacert);
	if (code)
		return code;
	if (ref && !hl_ref_valid(ref))
		return cli_usage("push: '%s' is not a ref name", ref);
	hl_store *s = NULL;
	if ((code = open_for_transfer(c, cacert, &s)) != 0)
		return code;
	hl_id root;
	hl_transfer_report rep = {0};
	struct stat sb;
	int err = 0;
	if (stat(dir, &sb) == 0 && S_ISDIR(sb.st_mode)) { /* a work tree: snapshot it first */
		if ((err = hl_snapshot(s, dir, 0, &root, NULL)) != 0) {
			hl_close(s);
			return cli_fail("push: snapshot", err);
		}
	} else if ((code = cli_rev(s, dir, NULL, &root)) != 0) { /* a revision: its snapshot */
		hl_close(s);
		return code;
	}
	err = hl_push(s, &root, url, token, ref, &rep);
	hl_close(s);
	if (err == HL_CONFLICT) {
		fprintf(stderr, "helios: push: ref %s was moved by someone else meanwhile; not updated\n", ref);
		return EXIT_CONFLICT;
	}
	if (err)
		return transfer_fail("push", url, err, &rep);
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&root, hex);
	if (c->json)
		printf("{\"id\": \"%s\", \"objects\": %llu, \"uploaded\": %llu, \"uploaded_bytes\": %llu, "
		       "\"batches\": %llu}\n", hex, (unsigned long long)rep.objects, (unsigned long long)rep.moved,
		       (unsigned long long)rep.moved_bytes, (unsigned long long)rep.batches);
	else
		printf("%s\n", hex);
	if (!c->quiet && !c->json)
		fprintf(stderr, "%llu objects in the snapshot; %llu were missing on the server, uploaded (%llu bytes)\n",
		        (unsigned long long)rep.objects, (unsigned long long)rep.moved,
		        (unsigned long long)rep.moved_bytes);
	return EXIT_OK;
}

int cmd_pull(cli *c)
{
	const char *pos[2] = {NULL, NULL}, *url = NULL, *token = NULL, *cacert = NULL;
	int code = remote_args(c, "pull", pos, 2, &url, &token, NULL, &cacert);
	if (code)
		return code;
	const char *arg = pos[0], *dir = pos[1];
	hl_id root;
	hl_store *s;
	if ((code = open_for_transfer(c, cacert, &s)) != 0)
		return code;
	hl_transfer_report rep = {0};
	int err = hl_pull(s, url, token, arg, &root, &rep);
	if (err == HL_INVALID) {
		fprintf(stderr, "helios: pull: %s is not a snapshot (no tree or commit), or no revision\n", arg);
		hl_close(s);
		return EXIT_CORRUPT;
	}
	if (err == HL_NOTFOUND)
		fprintf(stderr, "helios: pull: %s has no %s (or not every object it names)\n", url, arg);
	if (!err)
		err = hl_restore(s, &root, dir);
	hl_close(s);
	if (err == ENOTEMPTY) {
		fprintf(stderr, "helios: pull: %s must be a new or empty directory\n", dir);
		return EXIT_USAGE;
	}
	if (err == HL_NOTFOUND)
		return EXIT_MISSING;
	if (err)
		return transfer_fail("pull", url, err, &rep);
	if (c->json)
		printf("{\"fetched\": %llu, \"fetched_bytes\": %llu}\n", (unsigned long long)rep.moved,
		       (unsigned long long)rep.moved_bytes);
	else if (!c->quiet)
		fprintf(stderr, "fetched %llu objects (%llu bytes) the local store did not have\n",
		        (unsigned long long)rep.moved, (unsigned long long)rep.moved_bytes);
	return EXIT_OK;
}
