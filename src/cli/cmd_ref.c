/* cmd_ref.c — `helios ref get|set|list|delete`: refs, the store's mutable names for objects. */
#include <stdio.h>
#include <string.h>
#include "cli/cli.h"

static const char ref_usage[] =
	"ref get NAME | ref set NAME ID [--expect OLD|--create] | ref list [PREFIX] | ref delete NAME [--expect OLD]";

static int parse_id_arg(const char *hex, hl_id *id)
{
	if (hl_id_parse(hex, strlen(hex), id))
		return cli_usage("ref: '%s' is not an id (64 lowercase hex characters)", hex);
	return 0;
}

typedef struct list_ctx {
	cli *c;
	int n;
} list_ctx;

static int print_ref(const char *name, const hl_id *id, void *arg)
{
	list_ctx *l = arg;
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	if (l->c->json)
		printf("%s{\"name\": \"%s\", \"id\": \"%s\"}", l->n ? ", " : "", name, hex);
	else
		printf("%s  %s\n", hex, name);
	l->n++;
	return 0;
}

int cmd_ref(cli *c)
{
	if (c->argc < 2)
		return cli_usage("usage: helios %s", ref_usage);
	const char *sub = c->argv[1], *name = c->argc > 2 ? c->argv[2] : NULL;
	int write = !strcmp(sub, "set") || !strcmp(sub, "delete");
	if (!write && strcmp(sub, "get") && strcmp(sub, "list"))
		return cli_usage("ref: unknown subcommand '%s'; usage: helios %s", sub, ref_usage);
	if (strcmp(sub, "list") && (!name || !hl_ref_valid(name)))
		return cli_usage("ref %s: %s'%s' is not a ref name (components of [A-Za-z0-9._-] joined by '/')",
		                 sub, name ? "" : "missing NAME; ", name ? name : "");
	hl_id id, expect;
	int has_expect = 0, create = 0, code = 0;
	int first_opt = !strcmp(sub, "set") ? 4 : 3;
	if (!strcmp(sub, "set") && (c->argc < 4 || (code = parse_id_arg(c->argv[3], &id)) != 0))
		return c->argc < 4 ? cli_usage("ref set: missing ID") : code;
	for (int i = first_opt; i < c->argc; i++) {
		if (write && !strcmp(c->argv[i], "--expect") && i + 1 < c->argc) {
			if ((code = parse_id_arg(c->argv[++i], &expect)) != 0)
				return code;
			has_expect = 1;
		} else if (!strcmp(sub, "set") && !strcmp(c->argv[i], "--create")) {
			create = 1;
		} else {
			return cli_usage("ref %s: unexpected argument '%s'", sub, c->argv[i]);
		}
	}
	if (create && has_expect)
		return cli_usage("ref set: --create and --expect exclude each other");
	hl_store *s;
	if ((code = cli_open(c, write, HL_SYNC_ALWAYS, &s)) != 0)
		return code;
	int err = 0;
	char what[HL_REF_MAX + 64];
	snprintf(what, sizeof what, "ref %s", name ? name : "");
	if (!strcmp(sub, "get")) {
		if ((err = hl_ref_get(s, name, &id)) == 0) {
			list_ctx l = {c, 0};
			if (c->json)
				printf("[");
			print_ref(name, &id, &l);
			if (c->json)
				printf("]\n");
		}
	} else if (!strcmp(sub, "list")) {
		list_ctx l = {c, 0};
		if (c->json)
			printf("[");
		err = hl_ref_list(s, name, print_ref, &l);
		if (c->json)
			printf("]\n");
	} else if (!strcmp(sub, "set")) {
		err = has_expect || create ? hl_ref_cas(s, name, has_expect ? &expect : NULL, &id) : hl_ref_set(s, name, &id);
		if (err == HL_CONFLICT)
			fprintf(stderr, "helios: %s: %s\n", what, create ? "already exists" : "does not point at the expected id");
		else if (err == HL_INCOMPLETE)
			fprintf(stderr, "helios: %s: the target %s is not stored\n", what, c->argv[3]);
	} else {
		err = hl_ref_delete(s, name, has_expect ? &expect : NULL);
		if (err == HL_CONFLICT)
			fprintf(stderr, "helios: %s: does not point at the expected id\n", what);
	}
	hl_close(s);
	if (err == HL_CONFLICT || err == HL_INCOMPLETE)
		return err == HL_CONFLICT ? EXIT_CONFLICT : EXIT_FAIL;
	return err ? cli_fail(what, err) : EXIT_OK;
}
