/* cmd_tree.c — work trees: `helios snapshot DIR [--ref NAME -m MSG …] [--like REV | --no-like]`
 * (a commit in NAME's history; new files stored as deltas against a similar snapshot's), `helios restore REV DIR`, `helios ls REV`, `helios diff REV REV`. A REV is any
 * revision (hl_rev_parse): a ref, a commit or tree id or prefix, R~N, R^, R@{TIME}. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "cli/cli.h"

/* The root tree a revision names (a commit's, or a tree itself). */
static int resolve(hl_store *s, const char *arg, hl_id *tree)
{
	return cli_rev(s, arg, NULL, tree);
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

/* The author of a commit when --author is not given: $HELIOS_AUTHOR, else user@host. */
static const char *default_author(char *buf, size_t cap)
{
	const char *a = getenv("HELIOS_AUTHOR"), *u = getenv("USER");
	if (a && *a)
		return a;
	char host[256] = "";
	gethostname(host, sizeof host - 1);
	snprintf(buf, cap, "%s@%s", u && *u ? u : "unknown", host[0] ? host : "localhost");
	return buf;
}

typedef struct snapshot_args {
	const char *dir, *ref, *like;
	int no_like;
	unsigned threads;
	hl_sync_mode sync;
	hl_commit_options co;
	hl_commit_meta meta[HL_COMMIT_META_MAX];
} snapshot_args;

static int snapshot_args_parse(cli *c, snapshot_args *a)
{
	for (int i = 1; i < c->argc; i++) {
		const char *o = c->argv[i], *v = i + 1 < c->argc ? c->argv[i + 1] : NULL;
		if (!strcmp(o, "--ref") && v) {
			a->ref = c->argv[++i];
			if (!hl_ref_valid(a->ref))
				return cli_usage("snapshot: '%s' is not a ref name", a->ref);
		} else if ((!strcmp(o, "-m") || !strcmp(o, "--message")) && v) {
			a->co.message = c->argv[++i];
		} else if (!strcmp(o, "--author") && v) {
			a->co.author = c->argv[++i];
		} else if (!strcmp(o, "--meta") && v) {
			char *eq = strchr(c->argv[++i], '=');
			if (!eq || eq == v || a->co.nmeta == HL_COMMIT_META_MAX)
				return cli_usage("snapshot: --meta takes KEY=VALUE (at most %d)", HL_COMMIT_META_MAX);
			*eq = 0;
			a->meta[a->co.nmeta++] = (hl_commit_meta){v, eq + 1};
		} else if (!strcmp(o, "--like") && v) {
			a->like = c->argv[++i];
		} else if (!strcmp(o, "--no-like")) {
			a->no_like = 1;
		} else if (!strcmp(o, "--retry")) {
			a->co.retry = 1;
		} else if (!strcmp(o, "--threads") && v) {
			char *end;
			long n = strtol(c->argv[++i], &end, 10);
			if (*end || n < 1 || n > 1024)
				return cli_usage("snapshot: --threads takes 1..1024");
			a->threads = (unsigned)n;
		} else if (!strcmp(o, "--sync") && v) {
			if (cli_parse_sync(c->argv[++i], &a->sync))
				return cli_usage("snapshot: --sync takes always, batch or none");
		} else if (o[0] == '-' && o[1]) {
			return cli_usage("snapshot: unknown option '%s'", o);
		} else if (!a->dir) {
			a->dir = o;
		} else {
			return cli_usage("snapshot: one directory at a time");
		}
	}
	if (!a->dir)
		return cli_usage("snapshot: which directory?");
	if (a->like && a->no_like)
		return cli_usage("snapshot: --like and --no-like contradict each other");
	if (!a->ref && (a->co.message || a->co.author || a->co.nmeta || a->co.retry))
		return cli_usage("snapshot: -m, --author, --meta and --retry describe a commit: give --ref");
	a->co.meta = a->meta;
	return 0;
}

int cmd_snapshot(cli *c)
{
	snapshot_args a = {.sync = CLI_SYNC_CONFIG};
	char author[512];
	int code = snapshot_args_parse(c, &a);
	if (code)
		return code;
	if (!a.co.author)
		a.co.author = default_author(author, sizeof author);
	hl_store *s;
	if ((code = cli_open(c, 1, a.sync, &s)) != 0)
		return code;
	hl_id root, commit, like;
	hl_snapshot_stats st;
	int has_like = 0, err;
	if (a.like) { /* stored as deltas against this revision's tree where that saves space */
		if ((code = resolve(s, a.like, &like)) != 0) {
			hl_close(s);
			return code;
		}
		has_like = 1;
	} else if (a.ref && !a.no_like) { /* else against the ref's snapshot, or its newest sibling's */
		has_like = hl_snapshot_like_for(s, a.ref, &like) == 0;
	}
	err = hl_snapshot_like(s, a.dir, a.threads, has_like ? &like : NULL, &root, &st);
	if (!err && a.ref) /* the ref moves only if nobody else moved it meanwhile (or --retry) */
		err = hl_commit_ref(s, a.ref, &root, &st, &a.co, &commit, NULL);
	hl_close(s);
	if (err == HL_CONFLICT) {
		fprintf(stderr, "helios: snapshot: ref %s was moved by someone else meanwhile; not updated "
		        "(--retry records it on top of theirs)\n", a.ref);
		return EXIT_CONFLICT;
	}
	if (err == HL_INVALID && a.ref) {
		fprintf(stderr, "helios: snapshot: the commit breaks a rule: author ≤ %d bytes, message ≤ %d, "
		        "meta keys of [A-Za-z0-9._-] (1..64, each once), values ≤ %d\n", HL_COMMIT_AUTHOR_MAX,
		        HL_COMMIT_MESSAGE_MAX, HL_COMMIT_VALUE_MAX);
		return EXIT_USAGE;
	}
	if (err) {
		char what[4200];
		snprintf(what, sizeof what, "snapshot %s", a.dir);
		return cli_fail(what, err);
	}
	char hex[HL_ID_HEX_LEN + 1], chex[HL_ID_HEX_LEN + 1] = "";
	hl_id_format(&root, hex);
	if (a.ref)
		hl_id_format(&commit, chex);
	if (c->json)
		printf("{\"id\": \"%s\", \"commit\": %s%s%s, \"files\": %llu, \"dirs\": %llu, \"symlinks\": %llu, "
		       "\"bytes\": %llu, \"new_objects\": %llu, \"new_bytes\": %llu, \"skipped\": %llu}\n", hex,
		       a.ref ? "\"" : "", a.ref ? chex : "null", a.ref ? "\"" : "",
		       (unsigned long long)st.files, (unsigned long long)st.dirs, (unsigned long long)st.symlinks,
		       (unsigned long long)st.bytes, (unsigned long long)st.new_objects,
		       (unsigned long long)st.new_bytes, (unsigned long long)st.skipped);
	else
		printf("%s\n", a.ref ? chex : hex);
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
		return cli_usage("usage: helios restore REV DIR");
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
	int code = open_with_ids(c, 1, "ls REV", &s, &root);
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
	int changes = 0, code = open_with_ids(c, 2, "diff REV REV", &s, ids);
	if (code)
		return code;
	int err = hl_tree_diff(s, &ids[0], &ids[1], print_change, &changes);
	hl_close(s);
	return err ? tree_fail("diff", c->argv[1], err) : EXIT_OK;
}
