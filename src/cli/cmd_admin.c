/* cmd_admin.c — store-wide commands: init, verify, stats. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "cli/cli.h"

int cmd_init(cli *c)
{
	hl_sync_mode sync = CLI_SYNC_CONFIG;
	for (int i = 1; i < c->argc; i++) {
		if (!strcmp(c->argv[i], "--sync") && i + 1 < c->argc && !cli_parse_sync(c->argv[i + 1], &sync))
			i++;
		else
			return cli_usage("init: unexpected argument '%s'", c->argv[i]);
	}
	hl_store *s;
	int code = cli_open(c, 1, sync, &s);
	if (code)
		return code;
	hl_close(s);
	if (c->json)
		printf("{\"store\": \"%s\"}\n", c->store);
	else if (!c->quiet)
		printf("helios store ready at %s\n", c->store);
	return EXIT_OK;
}

typedef struct vctx {
	cli *c;
	progress pg;
	int first;
	int repair;     /* collect the corrupt ones to repair after the walk */
	hl_id *bad;
	size_t nbad, cap;
} vctx;

static void on_bad(const hl_id *id, int err, void *arg)
{
	vctx *v = arg;
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	progress_end(&v->pg);
	if (v->c->json)
		printf("%s{\"id\": \"%s\", \"error\": \"%s\"}", v->first++ ? ", " : "", hex,
		       err == HL_CORRUPT ? "corrupt" : hl_strerror(err));
	else
		printf("%s  %s\n", hex, err == HL_CORRUPT ? "corrupt" : hl_strerror(err));
	if (v->repair && err == HL_CORRUPT) {
		if (v->nbad == v->cap) {
			size_t cap = v->cap ? v->cap * 2 : 64;
			hl_id *b = realloc(v->bad, cap * sizeof(*b));
			if (!b)
				return; /* reported above; left for the next verify */
			v->bad = b, v->cap = cap;
		}
		v->bad[v->nbad++] = *id;
	}
}

/* Repairs what verify found; prints "<id>  repaired from <source>" or "<id>  unrepairable".
 * Returns how many could not be repaired. */
static uint64_t repair_all(hl_store *s, vctx *v)
{
	uint64_t left = 0;
	if (v->c->json)
		printf("], \"repairs\": [");
	for (size_t i = 0; i < v->nbad; i++) {
		const char *from = NULL;
		int err = hl_repair(s, &v->bad[i], &from);
		char hex[HL_ID_HEX_LEN + 1];
		hl_id_format(&v->bad[i], hex);
		left += err != 0;
		if (v->c->json)
			printf("%s{\"id\": \"%s\", \"repaired\": %s, \"from\": \"%s\"}", i ? ", " : "", hex,
			       err ? "false" : "true", err ? (err == HL_NOTFOUND ? "" : hl_strerror(err)) : from);
		else if (err)
			printf("%s  unrepairable (%s)\n", hex,
			       err == HL_NOTFOUND ? "no repair source has a verified copy" : hl_strerror(err));
		else
			printf("%s  repaired from %s\n", hex, from);
	}
	return left;
}

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	vctx *v = arg;
	v->pg.total = total;
	progress_update(&v->pg, done);
}

static int verify_run(cli *c, hl_options *opt, unsigned threads, int repair, int deep);

int cmd_verify(cli *c)
{
	unsigned threads = 0;
	int repair = 0, deep = 0;
	const char *repair_from = NULL;
	for (int i = 1; i < c->argc; i++) {
		char *end;
		if (!strcmp(c->argv[i], "--repair")) {
			repair = 1;
		} else if (!strcmp(c->argv[i], "--deep")) {
			deep = 1;
		} else if (!strcmp(c->argv[i], "--repair-from") && i + 1 < c->argc) {
			repair = 1;
			repair_from = c->argv[++i];
		} else if (!strcmp(c->argv[i], "--threads") && i + 1 < c->argc) {
			unsigned long t = strtoul(c->argv[++i], &end, 10);
			if (*end || t > 256)
				return cli_usage("--threads takes a number from 0 (all cores) to 256");
			threads = (unsigned)t;
		} else {
			return cli_usage("verify: unexpected argument '%s'", c->argv[i]);
		}
	}
	/* Read-write when possible so corrupt records get quarantined; read-only beside a server. */
	hl_options o;
	int code = cli_options(c, &o);
	if (code)
		return code;
	o.create = 0;
	if (repair_from)
		o.repair_from = repair_from;
	if (!o.backend || !*o.backend || !strcmp(o.backend, "local")) {
		/* The walk runs in a child process: LMDB pages carry no checksums, and walking damaged
		 * ones can fault; then this process says so instead of dying with it. */
		fflush(NULL);
		pid_t pid = fork();
		if (pid == 0) {
			code = verify_run(c, &o, threads, repair, deep);
			fflush(NULL);
			_exit(code);
		}
		int status = 0;
		while (pid > 0 && waitpid(pid, &status, 0) < 0 && errno == EINTR)
			;
		if (pid > 0 && WIFSIGNALED(status)) {
			fprintf(stderr, "\nhelios: verify died (signal %d), most likely reading a damaged index; "
			                "'helios fsck --rebuild-index' rebuilds it from the segment files\n",
			        WTERMSIG(status));
			return EXIT_CORRUPT;
		}
		if (pid > 0)
			return WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAIL;
	}
	return verify_run(c, &o, threads, repair, deep);
}

/* verify itself, after its arguments: opens, walks, repairs, reports; returns the exit code. */
static int verify_run(cli *c, hl_options *opt, unsigned threads, int repair, int deep)
{
	hl_options o = *opt;
	hl_store *s;
	int code, err = hl_open(c->store, &o, &s);
	if (repair && err == HL_LOCKED) {
		fprintf(stderr, "helios: verify --repair: %s is open read-write by another process (a running "
		                "'helios serve' scrubs and repairs by itself: --scrub-rate)\n", c->store);
		return EXIT_FAIL;
	}
	if (!repair && (err == HL_LOCKED || err == EACCES || err == EROFS))
		err = (o.read_only = 1, hl_open(c->store, &o, &s));
	if (err) {
		if ((code = cli_open(c, 0, HL_SYNC_ALWAYS, &s)) != 0)
			return code;
	}
	vctx v = {.c = c, .repair = repair};
	progress_begin(&v.pg, c, "verify", 0);
	if (c->json)
		printf("{\"bad\": [");
	hl_verify_report rep;
	err = hl_verify(s, threads, on_bad, on_progress, &v, &rep);
	progress_end(&v.pg);
	uint64_t unrepaired = 0;
	if (repair && (err == 0 || err == HL_CORRUPT)) {
		unrepaired = repair_all(s, &v);
		if (unrepaired)
			err = HL_CORRUPT;
		else if (!rep.io_errors)
			err = 0; /* every corrupt object was replaced by a verified copy */
	}
	uint64_t problems = 0;
	int derr = deep && (err == 0 || err == HL_CORRUPT) ? hl_check_index(s, &problems) : 0;
	hl_close(s);
	free(v.bad);
	if (err && err != HL_CORRUPT && !rep.objects)
		return cli_fail("verify", err);
	if (derr == HL_INVALID)
		fprintf(stderr, "helios: verify --deep: the store's objects live in its remote backend; the deeper "
		                "check is of a local store's index and segment files\n");
	else if (derr && derr != HL_CORRUPT)
		return cli_fail("verify --deep", derr);
	if (derr == HL_CORRUPT)
		err = HL_CORRUPT;
	if (repair && !c->json && !c->quiet)
		fprintf(stderr, "helios: repair: %llu repaired, %llu could not be\n",
		        (unsigned long long)(v.nbad - unrepaired), (unsigned long long)unrepaired);
	if (rep.index_damaged)
		fprintf(stderr, "helios: the index is damaged: its object table could be walked for %llu "
		                "entries and no further, so objects past them were not checked; 'helios fsck "
		                "--rebuild-index' rebuilds it from the segment files\n",
		        (unsigned long long)rep.index_walked);
	if (c->json)
		printf("], \"objects\": %llu, \"bytes\": %llu, \"corrupt\": %llu, \"quarantined\": %llu, "
		       "\"io_errors\": %llu, \"index_damaged\": %s, \"disagreements\": %llu}\n",
		       (unsigned long long)rep.objects, (unsigned long long)rep.bytes, (unsigned long long)rep.corrupt,
		       (unsigned long long)rep.quarantined, (unsigned long long)rep.io_errors,
		       rep.index_damaged ? "true" : "false", (unsigned long long)problems);
	else if (!c->quiet)
		fprintf(stderr, "helios: verified %llu objects (%.1f MiB): %s%llu corrupt, %llu already "
		                "quarantined, %llu unreadable\n", (unsigned long long)rep.objects,
		        (double)rep.bytes / 1048576.0, err ? "" : "all good; ",
		        (unsigned long long)rep.corrupt, (unsigned long long)rep.quarantined,
		        (unsigned long long)rep.io_errors);
	if (deep && !derr && !c->json && !c->quiet)
		fprintf(stderr, "helios: verify --deep: the index and the segment files agree\n");
	else if (derr == HL_CORRUPT && !c->json)
		fprintf(stderr, "helios: verify --deep: %llu disagreements between the index and the segment "
		                "files (above); 'helios fsck --rebuild-index' rebuilds the index\n",
		        (unsigned long long)problems);
	return cli_exit_code(err);
}

/* helios fsck --rebuild-index: a new index from the segment files (the store must not be open) */
int cmd_fsck(cli *c)
{
	int rebuild = 0;
	for (int i = 1; i < c->argc; i++) {
		if (!strcmp(c->argv[i], "--rebuild-index"))
			rebuild = 1;
		else
			return cli_usage("fsck: unexpected argument '%s'", c->argv[i]);
	}
	if (!rebuild)
		return cli_usage("fsck: say what to do: --rebuild-index (then 'helios verify' checks the result)");
	hl_options o;
	int code = cli_options(c, &o);
	if (code)
		return code;
	hl_rebuild_report r;
	int err = hl_rebuild_index(c->store, &o, &r);
	if (err == HL_NOSTORE) {
		fprintf(stderr, "helios: %s: no store here\n", c->store);
		return EXIT_MISSING;
	}
	if (err == HL_LOCKED) {
		fprintf(stderr, "helios: fsck: %s is open read-write by another process; stop it first\n", c->store);
		return EXIT_FAIL;
	}
	if (err == HL_INVALID) {
		fprintf(stderr, "helios: fsck: the store's objects live in its remote backend; there is no "
		                "local index to rebuild\n");
		return EXIT_USAGE;
	}
	if (err)
		return cli_fail("fsck --rebuild-index", err);
	if (c->json) {
		printf("{\"records\": %llu, \"objects\": %llu, \"corrupt\": %llu, \"names_copied\": %llu, "
		       "\"names_damaged\": %s, \"large_derived\": %llu, \"saved\": \"%s\"}\n",
		       (unsigned long long)r.records, (unsigned long long)r.objects, (unsigned long long)r.corrupt,
		       (unsigned long long)r.names_copied, r.names_damaged ? "true" : "false",
		       (unsigned long long)r.large_derived, r.saved);
	} else if (!c->quiet) {
		fprintf(stderr, "helios: index rebuilt: %llu objects from %llu intact records; %llu corrupt "
		                "records or unreadable stretches skipped (corrupt ids quarantined); %llu names "
		                "copied from the old index%s; %llu large blobs mapped again from their "
		                "manifests%s%s\n",
		        (unsigned long long)r.objects, (unsigned long long)r.records, (unsigned long long)r.corrupt,
		        (unsigned long long)r.names_copied,
		        r.names_damaged ? (r.refs_dangling ? " (some names were damaged: refs naming no stored object, "
		                                             "or unreadable rows, are lost)"
		                                           : " (some names could not be read and are lost)")
		                        : "",
		        (unsigned long long)r.large_derived, *r.saved ? "; the old index is kept as " : "", r.saved);
	}
	return r.names_damaged ? EXIT_CORRUPT : EXIT_OK;
}

/* helios gc [--grace DURATION] [--compact-below F] [--repack[=LEVEL]] [--repack-threads N]
 *           [--compact-rate BYTES] [--dry-run] */
int cmd_gc(cli *c)
{
	hl_options o;
	int code = cli_options(c, &o);
	if (code)
		return code;
	o.create = 0;
	hl_gc_options g;
	hl_gc_options_init(&g);
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i], *v = i + 1 < c->argc ? c->argv[i + 1] : NULL;
		char *end = NULL;
		if (!strcmp(a, "--dry-run")) {
			g.dry_run = 1;
		} else if (!strcmp(a, "--grace") && v) {
			if (cli_parse_duration(v, &o.gc_grace_s))
				return cli_usage("gc: bad duration '%s' (e.g. 90s, 15m, 24h, 7d)", v);
			i++;
		} else if (!strcmp(a, "--repack")) {
			g.repack = HL_REPACK_LEVEL;
		} else if (!strncmp(a, "--repack=", 9)) {
			long l = strtol(a + 9, &end, 10);
			if (end == a + 9 || *end || l < 1 || l > HL_REPACK_LEVEL_MAX)
				return cli_usage("gc: --repack=LEVEL takes a zstd level from 1 to %d (default %d)",
				                 HL_REPACK_LEVEL_MAX, HL_REPACK_LEVEL);
			g.repack = (int)l;
		} else if (!strcmp(a, "--repack-threads") && v) {
			unsigned long t = strtoul(v, &end, 10);
			if (end == v || *end || t < 1 || t > 256)
				return cli_usage("gc: --repack-threads takes 1 to 256");
			g.repack_threads = (unsigned)t;
			i++;
		} else if (!strcmp(a, "--compact-rate") && v) {
			if (cli_parse_bytes(v, &g.compact_rate))
				return cli_usage("gc: --compact-rate takes bytes per second (e.g. 50M; 0: unpaced)");
			i++;
		} else if (!strcmp(a, "--compact-below") && v) {
			g.compact_below = strtod(v, &end);
			if (end == v || *end || !(g.compact_below >= 0 && g.compact_below <= 1))
				return cli_usage("gc: --compact-below takes a fraction from 0 (never) to 1");
			i++;
		} else {
			return cli_usage("usage: helios gc [--grace DURATION] [--compact-below F] [--repack[=LEVEL]] "
			                 "[--repack-threads N] [--compact-rate BYTES] [--dry-run]");
		}
	}
	hl_store *s;
	if ((code = cli_open_with(c, &o, &s)) != 0)
		return code;
	hl_gc_report r;
	int err = hl_gc(s, &g, &r);
	if (!err)
		err = hl_sync(s);
	hl_close(s);
	if (err == HL_CORRUPT)
		fprintf(stderr, "helios: gc: an object that may name others cannot be read; nothing was "
		                "collected (helios verify finds it)\n");
	if (err)
		return err == HL_CORRUPT ? EXIT_CORRUPT : cli_fail("gc", err);
	if (c->json)
		printf("{\"dry_run\": %s, \"objects\": %llu, \"reachable\": %llu, \"young\": %llu, "
		       "\"held\": %llu, \"collected\": %llu, \"collected_bytes\": %llu, "
		       "\"segments_removed\": %llu, \"records_moved\": %llu, \"bytes_reclaimed\": %llu, "
		       "\"kv_evicted\": %llu, \"records_repacked\": %llu, \"repack_bytes_before\": %llu, "
		       "\"repack_bytes_after\": %llu, \"seconds\": %.3f}\n", g.dry_run ? "true" : "false",
		       (unsigned long long)r.objects, (unsigned long long)r.reachable,
		       (unsigned long long)r.young, (unsigned long long)r.held, (unsigned long long)r.collected,
		       (unsigned long long)r.collected_bytes, (unsigned long long)r.segments_removed,
		       (unsigned long long)r.records_moved, (unsigned long long)r.bytes_reclaimed,
		       (unsigned long long)r.kv_evicted, (unsigned long long)r.records_repacked,
		       (unsigned long long)r.repack_bytes_before, (unsigned long long)r.repack_bytes_after,
		       (double)r.duration_ns / 1e9);
	else if (!c->quiet)
		fprintf(stderr, "helios: gc%s: %llu objects, %llu reachable (%llu within the grace period), "
		                "%llu %scollected (%.1f MiB); %llu segments compacted (%llu records moved, "
		                "%.1f MiB freed) in %.2f s\n", g.dry_run ? " (dry run)" : "",
		        (unsigned long long)r.objects, (unsigned long long)r.reachable,
		        (unsigned long long)r.young, (unsigned long long)r.collected,
		        g.dry_run ? "would be " : "", (double)r.collected_bytes / 1048576.0,
		        (unsigned long long)r.segments_removed, (unsigned long long)r.records_moved,
		        (double)r.bytes_reclaimed / 1048576.0, (double)r.duration_ns / 1e9);
	if (!c->json && !c->quiet && g.repack && !g.dry_run)
		fprintf(stderr, "helios: gc: %llu records repacked at zstd level %d: %.2f MiB -> %.2f MiB\n",
		        (unsigned long long)r.records_repacked, g.repack,
		        (double)r.repack_bytes_before / 1048576.0, (double)r.repack_bytes_after / 1048576.0);
	if (!c->json && !c->quiet && r.kv_evicted)
		fprintf(stderr, "helios: gc: %llu kv keys %sevicted (their namespace held more than "
		        "kv-max-bytes; oldest writes first)\n", (unsigned long long)r.kv_evicted,
		        g.dry_run ? "would be " : "");
	return EXIT_OK;
}

static const char *level_name(int level)
{
	return level == HL_HEALTH_OK ? "ok" : level == HL_HEALTH_DEGRADED ? "degraded" : "unhealthy";
}

static const char *op_name[HL_OP_COUNT_] = {"get", "has", "put", "batch"};

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf("\\u%04x", *s);
		else
			putchar(*s);
	}
	putchar('"');
}

/* helios stats [--prometheus]: the store's totals, the L1 cache, admission bounds, health and the
 * latency this process has measured (a long-running server's /metrics shows the live ones). */
/* Logical bytes: what every ref names, counted as often as it is named (files of snapshots: a
 * ref to a commit counts its snapshot, not its history; a ref to a plain object its size). */
typedef struct dedup_acc {
	hl_store *s;
	uint64_t refs, logical;
} dedup_acc;

static int add_entry(const char *path, const hl_tree_entry *e, void *ctx)
{
	dedup_acc *a = ctx;
	if (e->kind != HL_TREE_DIR)
		a->logical += e->size;
	return 0;
}

static int add_ref(const char *name, const hl_id *id, void *ctx)
{
	dedup_acc *a = ctx;
	hl_stat st;
	hl_commit *cm;
	hl_id root = *id;
	if (!strncmp(name, "_helios/", 8))
		return 0; /* helios's own (the record of forgotten history) */
	a->refs++;
	if (hl_commit_get(a->s, id, &cm) == 0) {
		root = cm->tree;
		hl_commit_free(cm);
	}
	int err = hl_tree_walk(a->s, &root, add_entry, a);
	if (err == HL_INVALID && (err = hl_stat_object(a->s, id, &st)) == 0)
		a->logical += st.size;
	return err;
}

static void print_dedup(cli *c, const dedup_acc *a, const hl_stats *st)
{
	double dd = a->logical ? 100.0 * (1.0 - (double)st->logical_bytes / (double)a->logical) : 0;
	double cz = st->logical_bytes ? 100.0 * (1.0 - (double)st->stored_bytes / (double)st->logical_bytes) : 0;
	double all = a->logical ? 100.0 * (1.0 - (double)st->stored_bytes / (double)a->logical) : 0;
	if (c->json)
		printf("{\"refs\": %llu, \"logical_bytes\": %llu, \"unique_bytes\": %llu, \"stored_bytes\": %llu, "
		       "\"dedup_savings_pct\": %.2f, \"compression_savings_pct\": %.2f, \"total_savings_pct\": %.2f, "
		       "\"delta_objects\": %llu, \"delta_logical_bytes\": %llu, \"delta_stored_bytes\": %llu}\n",
		       (unsigned long long)a->refs, (unsigned long long)a->logical,
		       (unsigned long long)st->logical_bytes, (unsigned long long)st->stored_bytes, dd, cz, all,
		       (unsigned long long)st->deltas, (unsigned long long)st->delta_raw_bytes,
		       (unsigned long long)st->delta_stored_bytes);
	else
		printf("logical bytes       %llu (what %llu refs name, each file counted every time)\n"
		       "unique bytes        %llu (%.2f%% saved by deduplication)\n"
		       "stored bytes        %llu (%.2f%% saved by compression and deltas; %.2f%% saved in all)\n"
		       "of which deltas     %llu objects, %llu bytes stored as %llu\n",
		       (unsigned long long)a->logical, (unsigned long long)a->refs,
		       (unsigned long long)st->logical_bytes, dd, (unsigned long long)st->stored_bytes, cz, all,
		       (unsigned long long)st->deltas, (unsigned long long)st->delta_raw_bytes,
		       (unsigned long long)st->delta_stored_bytes);
}

int cmd_stats(cli *c)
{
	int prom = 0, dedup = 0, backend = 0;
	for (int i = 1; i < c->argc; i++) {
		if (!strcmp(c->argv[i], "--prometheus"))
			prom = 1;
		else if (!strcmp(c->argv[i], "--backend"))
			backend = 1;
		else if (!strcmp(c->argv[i], "--dedup"))
			dedup = 1;
		else
			return cli_usage("stats: unexpected argument '%s'", c->argv[i]);
	}
	if (dedup) {
		hl_store *s;
		int code = cli_open(c, 0, HL_SYNC_ALWAYS, &s);
		if (code)
			return code;
		dedup_acc a = {s, 0, 0};
		hl_stats st;
		hl_backend_info bi;
		int err = hl_stats_get(s, &st);
		if (!err && (err = hl_backend_get(s, 1, &bi)) == 0 && bi.shared && bi.counted)
			st.logical_bytes = st.stored_bytes = bi.bytes; /* the bucket's objects: stored whole */
		if (!err)
			err = hl_ref_list(s, NULL, add_ref, &a);
		hl_close(s);
		if (err)
			return cli_fail("stats --dedup", err);
		print_dedup(c, &a, &st);
		return EXIT_OK;
	}
	hl_store *s;
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, &s);
	if (code)
		return code;
	hl_stats st;
	hl_health h;
	hl_latency lat[HL_OP_COUNT_];
	char *text = NULL;
	hl_backend_info bi;
	int err = hl_stats_get(s, &st);
	if (!err)
		err = hl_backend_get(s, backend, &bi);
	if (!err)
		err = hl_health_get(s, &h);
	for (int op = 0; !err && op < HL_OP_COUNT_; op++)
		err = hl_latency_get(s, op, HL_AT_ALL, &lat[op]);
	if (!err && prom)
		err = hl_metrics_text(s, &text, NULL);
	hl_close(s);
	if (err)
		return cli_fail("stats", err);
	if (prom) {
		fputs(text, stdout);
		free(text);
		return EXIT_OK;
	}
	double saved = st.logical_bytes ? 100.0 * (1.0 - (double)st.stored_bytes / (double)st.logical_bytes) : 0;
	if (c->json) {
		printf("{\"store\": ");
		print_json_string(c->store);
		printf(", \"backend\": {\"kind\": \"%s\", \"shared\": %s", bi.kind, bi.shared ? "true" : "false");
		if (bi.counted)
			printf(", \"objects\": %llu, \"bytes\": %llu, \"chunked\": %llu", (unsigned long long)bi.objects,
			       (unsigned long long)bi.bytes, (unsigned long long)bi.chunked);
		printf("}");
		printf(", \"objects\": %llu, \"logical_bytes\": %llu, \"stored_bytes\": %llu, "
		       "\"segment_bytes\": %llu, \"segments\": %llu, \"compressed_objects\": %llu, "
		       "\"delta_objects\": %llu, \"delta_logical_bytes\": %llu, \"delta_stored_bytes\": %llu, "
		       "\"quarantined\": %llu, ", (unsigned long long)st.objects,
		       (unsigned long long)st.logical_bytes, (unsigned long long)st.stored_bytes,
		       (unsigned long long)st.segment_bytes, (unsigned long long)st.segments,
		       (unsigned long long)st.compressed, (unsigned long long)st.deltas,
		       (unsigned long long)st.delta_raw_bytes, (unsigned long long)st.delta_stored_bytes,
		       (unsigned long long)st.quarantined);
		printf("\"l1\": {\"capacity_bytes\": %llu, \"bytes\": %llu, \"entries\": %llu, \"hits\": %llu, "
		       "\"misses\": %llu, \"evictions\": %llu}, ", (unsigned long long)st.l1_capacity,
		       (unsigned long long)st.l1_bytes, (unsigned long long)st.l1_entries,
		       (unsigned long long)st.l1_hits, (unsigned long long)st.l1_misses,
		       (unsigned long long)st.l1_evictions);
		printf("\"admission\": {\"limit_get\": %llu, \"limit_has\": %llu, \"limit_write\": %llu, "
		       "\"busy\": %llu, \"joined\": %llu}, ", (unsigned long long)st.limit_get,
		       (unsigned long long)st.limit_has, (unsigned long long)st.limit_write,
		       (unsigned long long)st.busy, (unsigned long long)st.joined);
		printf("\"health\": {\"score\": %d, \"level\": \"%s\", \"alerts\": %llu, \"reason\": ", h.score,
		       level_name(h.level), (unsigned long long)h.alerts);
		print_json_string(h.reason);
		printf("}, \"latency_ns\": {");
		for (int op = 0; op < HL_OP_COUNT_; op++)
			printf("%s\"%s\": {\"count\": %llu, \"p50\": %llu, \"p99\": %llu, \"p999\": %llu}",
			       op ? ", " : "", op_name[op], (unsigned long long)lat[op].count,
			       (unsigned long long)lat[op].p50_ns, (unsigned long long)lat[op].p99_ns,
			       (unsigned long long)lat[op].p999_ns);
		printf("}}\n");
		return EXIT_OK;
	}
	printf("store               %s\n", c->store);
	if (bi.shared)
		printf("backend             %s, shared: the figures down to 'quarantined' are this node's "
		       "local store's%s\n", bi.kind, bi.counted ? "" : " ('stats --backend' counts the backend)");
	if (bi.counted)
		printf("backend holds       %llu objects, %llu bytes, %llu chunked blobs\n",
		       (unsigned long long)bi.objects, (unsigned long long)bi.bytes, (unsigned long long)bi.chunked);
	printf("objects             %llu\n", (unsigned long long)st.objects);
	printf("logical bytes       %llu\n", (unsigned long long)st.logical_bytes);
	printf("stored bytes        %llu (%.1f%% saved by compression, after record headers)\n",
	       (unsigned long long)st.stored_bytes, saved);
	printf("segment files       %llu, %llu bytes\n", (unsigned long long)st.segments,
	       (unsigned long long)st.segment_bytes);
	printf("compressed objects  %llu\n", (unsigned long long)st.compressed);
	printf("delta objects       %llu, %llu bytes stored as %llu\n", (unsigned long long)st.deltas,
	       (unsigned long long)st.delta_raw_bytes, (unsigned long long)st.delta_stored_bytes);
	printf("quarantined         %llu\n", (unsigned long long)st.quarantined);
	printf("health              %d (%s): %s\n", h.score, level_name(h.level), h.reason);
	printf("l1 cache            %llu of %llu bytes, %llu hits, %llu misses\n",
	       (unsigned long long)st.l1_bytes, (unsigned long long)st.l1_capacity,
	       (unsigned long long)st.l1_hits, (unsigned long long)st.l1_misses);
	printf("admission           at most %llu gets, %llu has, %llu writes in flight; %llu refused\n",
	       (unsigned long long)st.limit_get, (unsigned long long)st.limit_has,
	       (unsigned long long)st.limit_write, (unsigned long long)st.busy);
	for (int op = 0; op < HL_OP_COUNT_; op++)
		if (lat[op].count)
			printf("latency %-11s n=%llu p50 %.1f us, p99 %.1f us, p999 %.1f us\n", op_name[op],
			       (unsigned long long)lat[op].count, lat[op].p50_ns / 1e3, lat[op].p99_ns / 1e3,
			       lat[op].p999_ns / 1e3);
	return EXIT_OK;
}
