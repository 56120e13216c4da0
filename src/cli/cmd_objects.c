/* cmd_objects.c — the object commands: put, get, has, hash. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"

#define GROUP_FILES 64
#define GROUP_BYTES (64u << 20)

/* Parses an object id argument; prints a usage error when it is not one. */
static int parse_id_arg(const char *arg, hl_id *id)
{
	if (hl_id_parse(arg, strlen(arg), id) == 0)
		return 0;
	cli_usage("'%s' is not an object id (64 lowercase hex characters)", arg);
	return EXIT_USAGE;
}

static int is_option(const char *a) { return a[0] == '-' && a[1] != 0; }

int cmd_put(cli *c)
{
	hl_sync_mode sync = CLI_SYNC_CONFIG;
	char **files = calloc((size_t)c->argc, sizeof(char *));
	int n = 0, stdin_seen = 0, code = EXIT_OK;
	if (!files)
		return cli_fail("put", ENOMEM);
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--sync")) {
			if (i + 1 >= c->argc || cli_parse_sync(c->argv[++i], &sync))
				return free(files), cli_usage("--sync takes always, batch or none");
		} else if (!strcmp(a, "--")) {
			for (i++; i < c->argc; i++)
				files[n++] = c->argv[i];
		} else if (is_option(a)) {
			return free(files), cli_usage("put: unknown option '%s'", a);
		} else {
			if (!strcmp(a, "-") && stdin_seen++)
				return free(files), cli_usage("put: '-' (standard input) given twice");
			files[n++] = c->argv[i];
		}
	}
	if (!n)
		return free(files), cli_usage("put needs FILE... or - for standard input");
	/* Check every input before storing anything, so a bad argument changes nothing. */
	uint64_t total = 0;
	for (int i = 0; i < n; i++) {
		struct stat st;
		if (!strcmp(files[i], "-"))
			continue;
		int err = stat(files[i], &st) < 0 ? errno : S_ISDIR(st.st_mode) ? EISDIR : access(files[i], R_OK) < 0 ? errno : 0;
		if (err) {
			cli_fail(files[i], err);
			free(files);
			return EXIT_FAIL;
		}
		total += (uint64_t)st.st_size;
	}
	hl_store *s;
	if ((code = cli_open(c, 1, sync, &s)) != 0)
		return free(files), code;
	progress pg;
	progress_begin(&pg, c, "put", total);
	hl_put_item items[GROUP_FILES];
	cli_blob blobs[GROUP_FILES];
	uint64_t done = 0;
	for (int i = 0; i < n && code == EXIT_OK;) {
		int k = 0, start = i;
		uint64_t bytes = 0;
		while (i < n && k < GROUP_FILES && (k == 0 || bytes < GROUP_BYTES)) {
			int err = cli_load(files[i], &blobs[k]);
			if (err) {
				progress_end(&pg);
				cli_fail(files[i], err);
				code = EXIT_FAIL;
				break;
			}
			items[k] = (hl_put_item){.data = blobs[k].data, .len = blobs[k].len};
			bytes += blobs[k].len;
			k++, i++;
		}
		if (code == EXIT_OK) {
			int err = hl_put_batch(s, items, (size_t)k);
			if (err) {
				progress_end(&pg);
				char what[4200];
				snprintf(what, sizeof what, "storing %s%s", files[start], k > 1 ? " and the files after it" : "");
				code = cli_fail(what, err);
			} else {
				done += bytes;
				progress_update(&pg, done);
				for (int j = 0; j < k; j++) {
					if (c->json) {
						char hex[HL_ID_HEX_LEN + 1];
						hl_id_format(&items[j].id, hex);
						printf("{\"id\": \"%s\", \"size\": %zu, \"created\": %s}\n", hex,
						       items[j].len, items[j].created ? "true" : "false");
					} else {
						cli_print_sum(&items[j].id, files[start + j]);
					}
				}
			}
		}
		for (int j = 0; j < k; j++)
			cli_release(&blobs[j]);
	}
	progress_end(&pg);
	hl_close(s);
	free(files);
	return code;
}

/* Writes all of buf to fd. */
static int write_all(int fd, const uint8_t *buf, size_t len)
{
	while (len) {
		ssize_t w = write(fd, buf, len);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			return errno;
		}
		buf += w;
		len -= (size_t)w;
	}
	return 0;
}

int cmd_get(cli *c)
{
	const char *out = NULL, *idarg = NULL;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "-o") || !strcmp(a, "--output")) {
			if (i + 1 >= c->argc)
				return cli_usage("-o needs a file name");
			out = c->argv[++i];
		} else if (is_option(a)) {
			return cli_usage("get: unknown option '%s'", a);
		} else if (idarg) {
			return cli_usage("get takes one id");
		} else {
			idarg = a;
		}
	}
	if (!idarg)
		return cli_usage("get needs an object id");
	hl_id id;
	int code = parse_id_arg(idarg, &id);
	if (code)
		return code;
	hl_store *s;
	if ((code = cli_open(c, 0, HL_SYNC_ALWAYS, &s)) != 0)
		return code;
	hl_buf *b;
	int err = hl_get(s, &id, &b);
	hl_close(s);
	if (err) {
		char what[100];
		snprintf(what, sizeof what, "object %s", idarg);
		return cli_fail(what, err);
	}
	if (!out || !strcmp(out, "-")) {
		err = write_all(STDOUT_FILENO, hl_buf_data(b), hl_buf_len(b));
		hl_buf_unref(b);
		return err ? cli_fail("writing to standard output", err) : EXIT_OK;
	}
	/* Write beside the target, then rename: a failed get never leaves a partial file. */
	size_t plen = strlen(out) + 32;
	char *tmp = malloc(plen);
	if (!tmp)
		return hl_buf_unref(b), cli_fail(out, ENOMEM);
	snprintf(tmp, plen, "%s.helios-tmp-%d", out, (int)getpid());
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	err = fd < 0 ? errno : write_all(fd, hl_buf_data(b), hl_buf_len(b));
	if (fd >= 0 && close(fd) < 0 && !err)
		err = errno;
	if (!err && rename(tmp, out) < 0)
		err = errno;
	if (err && fd >= 0)
		unlink(tmp);
	free(tmp);
	hl_buf_unref(b);
	return err ? cli_fail(out, err) : EXIT_OK;
}

int cmd_has(cli *c)
{
	int n = c->argc - 1;
	if (n < 1)
		return cli_usage("has needs one or more object ids");
	hl_id *ids = calloc((size_t)n, sizeof(hl_id));
	if (!ids)
		return cli_fail("has", ENOMEM);
	for (int i = 0; i < n; i++) {
		int code = parse_id_arg(c->argv[i + 1], &ids[i]);
		if (code)
			return free(ids), code;
	}
	hl_store *s;
	int code = cli_open(c, 0, HL_SYNC_ALWAYS, &s);
	if (code) {
		free(ids);
		return code;
	}
	int missing = 0;
	for (int i = 0; i < n && code == EXIT_OK; i++) {
		int err = hl_has(s, &ids[i]);
		if (err == HL_NOTFOUND) {
			puts(c->argv[i + 1]);
			missing++;
		} else if (err) {
			code = cli_fail(c->argv[i + 1], err);
		}
	}
	hl_close(s);
	free(ids);
	return code ? code : missing ? EXIT_MISSING : EXIT_OK;
}

int cmd_hash(cli *c)
{
	int code = EXIT_OK, n = 0;
	for (int i = 1; i < c->argc; i++) {
		const char *a = c->argv[i];
		if (!strcmp(a, "--"))
			continue;
		if (is_option(a))
			return cli_usage("hash: unknown option '%s'", a);
	}
	for (int i = 1; i < c->argc || (n == 0 && i == c->argc); i++) {
		const char *name = i < c->argc ? c->argv[i] : "-";
		if (i < c->argc && !strcmp(name, "--"))
			continue;
		n++;
		cli_blob b;
		int err = cli_load(name, &b);
		if (err) {
			cli_fail(name, err);
			code = EXIT_FAIL;
			continue;
		}
		hl_id id;
		hl_hash(b.data, b.len, &id);
		cli_print_sum(&id, name);
		cli_release(&b);
	}
	return code;
}
