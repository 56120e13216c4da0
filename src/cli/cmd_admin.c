/* cmd_admin.c — store-wide commands: init, verify, stats. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "cli/cli.h"

int cmd_init(cli *c)
{
	hl_sync_mode sync = HL_SYNC_ALWAYS;
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
}

static void on_progress(uint64_t done, uint64_t total, void *arg)
{
	vctx *v = arg;
	v->pg.total = total;
	progress_update(&v->pg, done);
}

int cmd_verify(cli *c)
{
	unsigned threads = 0;
	for (int i = 1; i < c->argc; i++) {
		char *end;
		if (!strcmp(c->argv[i], "--threads") && i + 1 < c->argc) {
			unsigned long t = strtoul(c->argv[++i], &end, 10);
			if (*end || t > 256)
				return cli_usage("--threads takes a number from 0 (all cores) to 256");
			threads = (unsigned)t;
		} else {
			return cli_usage("verify: unexpected argument '%s'", c->argv[i]);
		}
	}
	/* Read-write when possible so corrupt records get quarantined; read-only beside a server. */
	hl_store *s;
	hl_options o;
	hl_options_init(&o);
	o.create = 0;
	int err = hl_open(c->store, &o, &s), code;
	if (err == HL_LOCKED || err == EACCES || err == EROFS)
		err = (o.read_only = 1, hl_open(c->store, &o, &s));
	if (err) {
		if ((code = cli_open(c, 0, HL_SYNC_ALWAYS, &s)) != 0)
			return code;
	}
	vctx v = {.c = c};
	progress_begin(&v.pg, c, "verify", 0);
	if (c->json)
		printf("{\"bad\": [");
	hl_verify_report rep;
	err = hl_verify(s, threads, on_bad, on_progress, &v, &rep);
	progress_end(&v.pg);
	hl_close(s);
	if (err && err != HL_CORRUPT && !rep.objects)
		return cli_fail("verify", err);
	if (c->json)
		printf("], \"objects\": %llu, \"bytes\": %llu, \"corrupt\": %llu, \"quarantined\": %llu, "
		       "\"io_errors\": %llu}\n", (unsigned long long)rep.objects,
		       (unsigned long long)rep.bytes, (unsigned long long)rep.corrupt,
		       (unsigned long long)rep.quarantined, (unsigned long long)rep.io_errors);
	else if (!c->quiet)
		fprintf(stderr, "helios: verified %llu objects (%.1f MiB): %s%llu corrupt, %llu already "
		                "quarantined, %llu unreadable\n", (unsigned long long)rep.objects,
		        (double)rep.bytes / 1048576.0, err ? "" : "all good; ",
		        (unsigned long long)rep.corrupt, (unsigned long long)rep.quarantined,
		        (unsigned long long)rep.io_errors);
	return cli_exit_code(err);
}

int cmd_stats(cli *c)
{
	if (c->argc > 1)
		return cli_usage("stats: unexpected argument '%s'", c->argv[1]);
	hl_store *s;
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, &s);
	if (code)
		return code;
	hl_stats st;
	int err = hl_stats_get(s, &st);
	hl_close(s);
	if (err)
		return cli_fail("stats", err);
	double saved = st.logical_bytes ? 100.0 * (1.0 - (double)st.stored_bytes / (double)st.logical_bytes) : 0;
	if (c->json) {
		printf("{\"store\": \"%s\", \"objects\": %llu, \"logical_bytes\": %llu, \"stored_bytes\": %llu, "
		       "\"segment_bytes\": %llu, \"segments\": %llu, \"compressed_objects\": %llu, "
		       "\"quarantined\": %llu}\n", c->store, (unsigned long long)st.objects,
		       (unsigned long long)st.logical_bytes, (unsigned long long)st.stored_bytes,
		       (unsigned long long)st.segment_bytes, (unsigned long long)st.segments,
		       (unsigned long long)st.compressed, (unsigned long long)st.quarantined);
		return EXIT_OK;
	}
	printf("store               %s\n", c->store);
	printf("objects             %llu\n", (unsigned long long)st.objects);
	printf("logical bytes       %llu\n", (unsigned long long)st.logical_bytes);
	printf("stored bytes        %llu (%.1f%% saved by compression, after record headers)\n",
	       (unsigned long long)st.stored_bytes, saved);
	printf("segment files       %llu, %llu bytes\n", (unsigned long long)st.segments,
	       (unsigned long long)st.segment_bytes);
	printf("compressed objects  %llu\n", (unsigned long long)st.compressed);
	printf("quarantined         %llu\n", (unsigned long long)st.quarantined);
	return EXIT_OK;
}
