/* cmd_tree.c — work trees: `helios snapshot DIR [--ref NAME]`, `helios restore ID DIR`,
 * `helios ls ID`, `helios diff ID ID`. Where an ID is asked for, a ref name works too. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

/* An id, or the id a ref points at. Prints why not and returns the exit code otherwise. */
static int resolve(hl_store *s, const char *arg, hl_id *id)
{
	if (hl_id_parse(arg, strlen(arg), id) == 0)
		return 0;
	if (!hl_ref_valid(arg))
		return cli_usage("'%s' is neither an id (64 lowercase hex) nor a ref name", arg);
	int err = hl_ref_get(s, arg, id);
	if (err) {
		char what[HL_REF_MAX + 8];
		snprintf(what, sizeof what, "ref %s", arg);
		return cli_fail(what, err);
	}
	return 0;
}

static int tree_fail(const char *what, const char *arg, int err)
{
	char msg[512];
	snprintf(msg, sizeof msg, "%s %s", what, arg);
	if (err == HL_INVALID)
		fprintf(stderr, "helios: %s: not a tree\n", msg);
	else if (err == HL_CORRUPT)
		fprintf(stderr, "helios: %s: a tree in it is corrupt or names an unsafe entry; refused\n", msg);
	else
		return cli_fail(msg, err);
	return err == HL_INVALID ? EXIT_USAGE : EXIT_CORRUPT;
}

int cmd_snapshot(cli *c)
{
	const char *dir = NULL, *ref = NULL;
	unsigned threads = 0;
	hl_sync_mode sync = CLI_SYNC_CONFIG;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--ref") && i + 1 < c->argc) {
			ref = c->argv[++i];
			if (!hl_ref_valid(ref))
				return cli_usage("snapshot: '%s' is not a ref name", ref);
		} else if (!strcmp(a, "--threads") && i + 1 < c->argc) {
			char *end;
			long n = strtol(c->argv[++i], &end, 10);
			if (*end || n < 1 || n > 1024)
				return cli_usage("snapshot: --threads takes 1..1024");
			threads = (unsigned)n;
		} else if (!strcmp(a, "--sync") && i + 1 < c->argc) {
			if (cli_parse_sync(c->argv[++i], &sync))
				return cli_usage("snapshot: --sync takes always, batch or none");
		} else if (a[0] == '-' && a[1]) {
			return cli_usage("snapshot: unknown option '%s'", a);
		} else if (!dir) {
			dir = a;
		} else {
			return cli_usage("snapshot: one directory at a time");
		}
	}
	if (!dir)
		return cli_usage("snapshot: which directory?");
	hl_store *s;
	int code = cli_open(c, 1, sync, &s);
	if (code)
		return code;
	hl_id before, root;
	int had = ref ? hl_ref_get(s, ref, &before) : HL_NOTFOUND;
	if (had != 0 && had != HL_NOTFOUND) {
		hl_close(s);
		return cli_fail("ref", had);
	}
	hl_snapshot_stats st;
	int err = hl_snapshot(s, dir, threads, &root, &st);
	if (!err && ref) /* moved only if nobody else moved it meanwhile */
		err = hl_ref_cas(s, ref, had == 0 ? &before : NULL, &root);
	hl_close(s);
	if (err == HL_CONFLICT) {
		fprintf(stderr, "helios: snapshot: ref %s was moved by someone else meanwhile; not updated\n", ref);
		return EXIT_CONFLICT;
	}
	if (err) {
		char what[4200];
		snprintf(what, sizeof what, "snapshot %s", dir);
		return cli_fail(what, err);
	}
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&root, hex);
	if (c->json)
		printf("{\"id\": \"%s\", \"files\": %llu, \"dirs\": %llu, \"symlinks\": %llu, \"bytes\": %llu, "
		       "\"new_objects\": %llu, \"new_bytes\": %llu, \"skipped\": %llu}\n", hex,
		       (unsigned long long)st.files, (unsigned long long)st.dirs, (unsigned long long)st.symlinks,
		       (unsigned long long)st.bytes, (unsigned long long)st.new_objects,
		       (unsigned long long)st.new_bytes, (unsigned long long)st.skipped);
	else
		printf("%s\n", hex);
	if (!c->quiet && !c->json)
		fprintf(stderr, "%llu files, %llu directories, %llu symlinks, %llu bytes; %llu new objects "
		        "(%llu bytes)%s\n", (unsigned long long)st.files, (unsigned long long)st.dirs,
		        (unsigned long long)st.symlinks, (unsigned long long)st.bytes,
		        (unsigned long long)st.new_objects, (unsigned long long)st.new_bytes,
		        st.skipped ? "; sockets, FIFOs and devices skipped" : "");
	return EXIT_OK;
}

int cmd_restore(cli *c)
{
	if (c->argc != 3)
		return cli_usage("usage: helios restore ID DIR");
	hl_store *s;
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, &s);
	if (code)
		return code;
	hl_id root;
	if ((code = resolve(s, c->argv[1], &root)) == 0) {
		int err = hl_restore(s, &root, c->argv[2]);
		if (err == ENOTEMPTY || err == ENOTDIR) {
			fprintf(stderr, "helios: restore: %s must be a new or empty directory\n", c->argv[2]);
			code = EXIT_USAGE;
		} else if (err) {
			code = tree_fail("restore", c->argv[1], err);
		}
	}
	hl_close(s);
	return code;
}

static const char *kind_name(int kind)
{
	return kind == HL_TREE_DIR ? "dir" : kind == HL_TREE_SYMLINK ? "link" : "file";
}

static int print_entry(const char *path, const hl_tree_entry *e, void *ctx)
{
	cli *c = ctx;
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&e->id, hex);
	if (c->json)
		printf("{\"path\": \"%s\", \"kind\": \"%s\", \"mode\": \"%04o\", \"size\": %llu, \"id\": \"%s\"}\n",
		       path, kind_name(e->kind), e->mode, (unsigned long long)e->size, hex);
	else
		printf("%04o %-4s %s %12llu  %s%s\n", e->mode, kind_name(e->kind), hex,
		       (unsigned long long)e->size, path, e->kind == HL_TREE_DIR ? "/" : "");
	return 0;
}

/* Opens the store read-only and resolves the n arguments after the command into ids. */
static int open_with_ids(cli *c, int n, const char *usage, hl_store **s, hl_id *ids)
{
	if (c->argc != n + 1)
		return cli_usage("usage: helios %s", usage);
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, s);
	for (int i = 0; !code && i < n; i++)
		code = resolve(*s, c->argv[i + 1], &ids[i]);
	if (code && *s) {
		hl_close(*s);
		*s = NULL;
	}
	return code;
}

int cmd_ls(cli *c)
{
	hl_store *s = NULL;
	hl_id root;
	int code = open_with_ids(c, 1, "ls ID", &s, &root);
	if (code)
		return code;
	int err = hl_tree_walk(s, &root, print_entry, c);
	hl_close(s);
	return err ? tree_fail("ls", c->argv[1], err) : EXIT_OK;
}

static int print_change(const char *path, const hl_tree_entry *a, const hl_tree_entry *b, void *ctx)
{
	int *n = ctx;
	char what = !a ? 'A' : !b ? 'D' : 'M';
	const hl_tree_entry *e = b ? b : a;
	printf("%c  %s%s\n", what, path, e->kind == HL_TREE_DIR ? "/" : "");
	(*n)++;
	return 0;
}

int cmd_diff(cli *c)
{
	hl_store *s = NULL;
	hl_id ids[2];
	int changes = 0, code = open_with_ids(c, 2, "diff ID ID", &s, ids);
	if (code)
		return code;
	int err = hl_tree_diff(s, &ids[0], &ids[1], print_change, &changes);
	hl_close(s);
	return err ? tree_fail("diff", c->argv[1], err) : EXIT_OK;
}
