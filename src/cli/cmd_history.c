/* cmd_history.c — history: `helios log REV`, `helios show REV` and `helios forget --keep-…`
 * (retention by restic's rules; `helios gc` then frees what only forgotten commits reached). */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "cli/cli.h"

/* A commit as a JSON value (hl_commit_json's text). */
static json_t *commit_json(const hl_id *id, const hl_commit *c, unsigned flags)
{
	char *text = hl_commit_json(id, c, flags);
	json_t *o = text ? json_loads(text, 0, NULL) : NULL;
	free(text);
	return o ? o : json_null();
}

static void print_commit(const hl_id *id, const hl_commit *c, unsigned flags, int oneline)
{
	char hex[HL_ID_HEX_LEN + 1], when[32];
	hl_id_format(id, hex);
	cli_format_time(c->time_ns, when, sizeof when);
	size_t first = strcspn(c->message, "\n");
	if (oneline) {
		printf("%.12s %s %-16s +%u ~%u -%u %8llu  %.*s%s\n", hex, when, c->author, c->added,
		       c->changed, c->deleted, (unsigned long long)c->new_bytes, (int)first, c->message,
		       flags & HL_HIST_CUT ? "  [older history forgotten]" :
		       flags & HL_HIST_GAP ? "  [parent forgotten]" : "");
		return;
	}
	printf("commit %s\n", hex);
	if (c->nparents > 1) {
		printf("Merge: ");
		for (unsigned i = 0; i < c->nparents; i++) {
			hl_id_format(&c->parents[i], hex);
			printf("%s%.12s", i ? " " : "", hex);
		}
		printf("\n");
	}
	printf("Date:    %s\nAuthor:  %s\nFiles:   %llu (%llu bytes); %u added, %u changed, %u deleted; "
	       "%llu bytes new\n", when, c->author, (unsigned long long)c->files,
	       (unsigned long long)c->bytes, c->added, c->changed, c->deleted,
	       (unsigned long long)c->new_bytes);
	for (unsigned i = 0; i < c->nmeta; i++)
		printf("Meta:    %s=%s\n", c->meta[i].key, c->meta[i].value);
	if (flags & HL_HIST_CUT)
		printf("         (older history forgotten)\n");
	else if (flags & HL_HIST_GAP)
		printf("         (its parent was forgotten: the next commit shown is older)\n");
	if (flags & HL_HIST_MISSING)
		printf("         (a parent is not in this store)\n");
	printf("\n");
	for (const char *m = c->message; *m;) {
		size_t n = strcspn(m, "\n");
		printf("    %.*s\n", (int)n, m);
		m += n + (m[n] == '\n');
	}
	if (*c->message)
		printf("\n");
}

/* Opens the store read-only and resolves rev; an exit code (the store closed) when either fails. */
static int open_rev(cli *c, const char *rev, hl_store **s, hl_id *id, hl_id *tree)
{
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, s);
	if (!code && (code = cli_rev(*s, rev, id, tree)) != 0)
		hl_close(*s);
	return code;
}

typedef struct log_ctx {
	cli *c;
	json_t *list;
	int oneline;
} log_ctx;

static int log_one(const hl_id *id, const hl_commit *c, unsigned flags, void *arg)
{
	log_ctx *l = arg;
	if (l->list)
		json_array_append_new(l->list, commit_json(id, c, flags));
	else
		print_commit(id, c, flags, l->oneline);
	return 0;
}

/* --before TIME takes what @{TIME} takes: resolved through a revision of the commit itself. */
static int parse_before(const char *v, uint64_t *ns)
{
	char *end;
	unsigned long long x = strtoull(v, &end, 10);
	if (v[0] == '@' && end != v + 1) {
		x = strtoull(v + 1, &end, 10);
		if (!*end) {
			*ns = x * 1000000000ull;
			return 0;
		}
	}
	struct tm tm = {0};
	const char *rest = strptime(v, "%Y-%m-%d", &tm);
	if (rest && (*rest == 'T' || *rest == ' '))
		rest = strptime(rest + 1, "%H:%M:%S", &tm);
	if (!rest || (*rest && strcmp(rest, "Z")))
		return HL_INVALID;
	*ns = (uint64_t)timegm(&tm) * 1000000000ull;
	return 0;
}

int cmd_log(cli *c)
{
	const char *rev = NULL;
	uint64_t limit = 0, before = 0;
	int oneline = 0;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--limit") && i + 1 < c->argc) {
			char *end;
			limit = strtoull(c->argv[++i], &end, 10);
			if (*end || !limit)
				return cli_usage("log: --limit takes a positive count");
		} else if (!strcmp(a, "--before") && i + 1 < c->argc) {
			if (parse_before(c->argv[++i], &before))
				return cli_usage("log: --before takes YYYY-MM-DD[THH:MM:SS][Z] or @UNIXSECONDS");
		} else if (!strcmp(a, "--oneline")) {
			oneline = 1;
		} else if (a[0] == '-' || rev) {
			return cli_usage("usage: helios log REV [--limit N] [--before TIME] [--oneline]");
		} else {
			rev = a;
		}
	}
	if (!rev)
		return cli_usage("usage: helios log REV [--limit N] [--before TIME] [--oneline]");
	hl_store *s;
	hl_id id, tree;
	int code = open_rev(c, rev, &s, &id, &tree);
	if (code)
		return code;
	log_ctx l = {c, c->json ? json_array() : NULL, oneline};
	int err = hl_id_equal(&id, &tree) ? HL_INVALID : hl_history(s, &id, before, limit, log_one, &l);
	if (err == HL_INVALID) {
		fprintf(stderr, "helios: log: %s names a tree, which has no history\n", rev);
		code = EXIT_USAGE;
	} else if (err) {
		code = cli_fail("log", err);
	} else if (l.list) {
		json_dumpf(l.list, stdout, JSON_INDENT(1));
		printf("\n");
	}
	json_decref(l.list);
	hl_close(s);
	return code;
}

typedef struct show_ctx {
	json_t *changes;
} show_ctx;

static int show_change(const char *path, const hl_tree_entry *a, const hl_tree_entry *b, void *ctx)
{
	show_ctx *x = ctx;
	char what = !a ? 'A' : !b ? 'D' : 'M';
	const hl_tree_entry *e = b ? b : a;
	if (x->changes) {
		json_t *o = json_object();
		json_object_set_new(o, "change", json_stringn(&what, 1));
		json_object_set_new(o, "path", json_string(path));
		json_array_append_new(x->changes, o);
	} else {
		printf("%c  %s%s\n", what, path, e->kind == HL_TREE_DIR ? "/" : "");
	}
	return 0;
}

static int show_added(const char *path, const hl_tree_entry *e, void *ctx)
{
	return e->kind == HL_TREE_DIR ? 0 : show_change(path, NULL, e, ctx);
}

/* The changes against the first parent's snapshot (a first commit: every file added). */
static int show_changes(hl_store *s, const hl_commit *cm, show_ctx *x)
{
	if (!cm->nparents)
		return hl_tree_walk(s, &cm->tree, show_added, x);
	char hex[HL_ID_HEX_LEN + 1];
	hl_id ptree;
	hl_id_format(&cm->parents[0], hex);
	int err = hl_rev_parse(s, hex, NULL, &ptree);
	if (err == HL_FORGOTTEN || err == HL_NOTFOUND) {
		if (!x->changes)
			printf("(the parent's snapshot is not kept here: no changes to list)\n");
		return 0;
	}
	return err ? err : hl_tree_diff(s, &ptree, &cm->tree, show_change, x);
}

int cmd_show(cli *c)
{
	if (c->argc != 2)
		return cli_usage("usage: helios show REV");
	hl_store *s;
	hl_id id, tree;
	hl_commit *cm = NULL;
	int code = open_rev(c, c->argv[1], &s, &id, &tree);
	if (code)
		return code;
	int err = hl_id_equal(&id, &tree) ? HL_INVALID : hl_commit_get(s, &id, &cm);
	if (err == HL_INVALID) {
		fprintf(stderr, "helios: show: %s names a tree, not a commit (helios ls lists it)\n", c->argv[1]);
		code = EXIT_USAGE;
	} else if (err) {
		code = cli_fail("show", err);
	}
	if (cm) {
		show_ctx x = {c->json ? json_array() : NULL};
		json_t *o = c->json ? commit_json(&id, cm, 0) : NULL;
		if (!o)
			print_commit(&id, cm, 0, 0);
		if ((err = show_changes(s, cm, &x)) != 0)
			code = cli_fail("show: changes against the parent", err);
		if (o) {
			json_object_set_new(o, "changes", x.changes);
			json_dumpf(o, stdout, JSON_INDENT(1));
			printf("\n");
			json_decref(o);
		}
		hl_commit_free(cm);
	}
	hl_close(s);
	return code;
}

/* ---- forget ---- */

/* restic's duration: any of <N>y <N>m <N>d <N>h in that order ("1y2m3d4h", "7d", "36h"). */
static int parse_within(const char *v, hl_forget_policy *p)
{
	const char *units = "ymdh";
	int *field[4] = {&p->within_years, &p->within_months, &p->within_days, &p->within_hours};
	int next = 0, any = 0;
	while (*v) {
		char *end;
		long n = strtol(v, &end, 10);
		const char *u = end != v && *end ? strchr(units + next, *end) : NULL;
		if (!u || n < 0 || n > 100000)
			return HL_INVALID;
		*field[u - units] = (int)n;
		next = (int)(u - units) + 1;
		v = end + 1;
		any = 1;
	}
	return any ? 0 : HL_INVALID;
}

typedef struct forget_ctx {
	cli *c;
	json_t *list;
	const char *last_ref;
} forget_ctx;

static int forget_one(const char *ref, const hl_id *id, const hl_commit *cm, int keep, const char *why,
                      void *arg)
{
	forget_ctx *f = arg;
	char hex[HL_ID_HEX_LEN + 1], when[32];
	hl_id_format(id, hex);
	cli_format_time(cm->time_ns, when, sizeof when);
	if (f->list) {
		json_t *o = json_object();
		json_object_set_new(o, "ref", json_string(ref));
		json_object_set_new(o, "id", json_string(hex));
		json_object_set_new(o, "time", json_string(when));
		json_object_set_new(o, "keep", json_boolean(keep));
		json_object_set_new(o, "reasons", json_string(why));
		json_array_append_new(f->list, o);
		return 0;
	}
	if (f->c->quiet)
		return 0;
	if (!f->last_ref || strcmp(f->last_ref, ref))
		printf("%sref %s\n", f->last_ref ? "\n" : "", ref);
	f->last_ref = ref; /* the ref's name lives as long as the forget call */
	size_t first = strcspn(cm->message, "\n");
	printf("  %-6s %.12s %s  %-22s %.*s\n", keep ? "keep" : "forget", hex, when, why, (int)first,
	       cm->message);
	return 0;
}

int cmd_forget(cli *c)
{
	static const char usage[] = "usage: helios forget [--prefix P] [--keep-last N] [--keep-hourly N] "
		"[--keep-daily N] [--keep-weekly N] [--keep-monthly N] [--keep-yearly N] "
		"[--keep-within 1y2m3d4h] [--dry-run]";
	static const char *const rules[6] = {"--keep-last", "--keep-hourly", "--keep-daily",
	                                     "--keep-weekly", "--keep-monthly", "--keep-yearly"};
	hl_forget_policy p = {0};
	int *counts[6] = {&p.last, &p.hourly, &p.daily, &p.weekly, &p.monthly, &p.yearly};
	const char *prefix = NULL;
	int dry_run = 0;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i], *v = i + 1 < c->argc ? c->argv[i + 1] : NULL;
		int rule = -1;
		for (int r = 0; r < 6; r++)
			if (!strcmp(a, rules[r]))
				rule = r;
		if (rule >= 0 && v) {
			char *end;
			long n = strtol(v, &end, 10);
			if (*end || !*v || n < -1 || n > 1000000000)
				return cli_usage("forget: %s takes a count (-1: unlimited)", a);
			*counts[rule] = (int)n;
			i++;
		} else if (!strcmp(a, "--keep-within") && v) {
			if (parse_within(v, &p))
				return cli_usage("forget: --keep-within takes a duration like 1y2m3d4h, 7d or 36h");
			i++;
		} else if (!strcmp(a, "--prefix") && v) {
			prefix = v;
			i++;
		} else if (!strcmp(a, "--dry-run") || !strcmp(a, "-n")) {
			dry_run = 1;
		} else {
			return cli_usage("forget: unexpected argument '%s'; %s", a, usage);
		}
	}
	hl_forget_policy none = {0};
	if (!memcmp(&p, &none, sizeof p))
		return cli_usage("forget: no policy given: nothing would be forgotten; %s", usage);
	hl_store *s;
	int code = cli_open(c, !dry_run, HL_SYNC_ALWAYS, &s);
	if (code)
		return code;
	forget_ctx f = {c, c->json ? json_array() : NULL, NULL};
	hl_forget_report r;
	int err = hl_forget(s, prefix, &p, dry_run, forget_one, &f, &r);
	hl_close(s);
	if (err) {
		json_decref(f.list);
		return cli_fail("forget", err);
	}
	if (f.list) {
		json_t *o = json_pack("{s:o, s:I, s:I, s:I, s:I, s:I, s:b}", "commits_decided", f.list,
		                      "refs", (json_int_t)r.refs, "commits", (json_int_t)r.commits,
		                      "kept", (json_int_t)r.kept, "forgotten", (json_int_t)r.forgotten,
		                      "cut", (json_int_t)r.cut, "dry_run", dry_run);
		json_dumpf(o, stdout, JSON_INDENT(1));
		printf("\n");
		json_decref(o);
	} else if (!c->quiet) {
		printf("%s%llu refs, %llu commits: %llu kept, %llu %sforgotten, history cut at %llu%s\n",
		       f.last_ref ? "\n" : "", (unsigned long long)r.refs, (unsigned long long)r.commits,
		       (unsigned long long)r.kept, (unsigned long long)r.forgotten, dry_run ? "would be " : "",
		       (unsigned long long)r.cut,
		       dry_run ? " (dry run: nothing changed)" : r.forgotten || r.cut ?
		       "; 'helios gc' frees what only they kept" : "");
	}
	return EXIT_OK;
}
