/* util.c — what the commands of the CLI share: exit codes and one-line failure messages, the
 * parsers of option values (sync modes, sizes, durations), printing an id, loading an input file
 * (mapped when it can be). Called from main.c, config.c and the cmd_*.c files; calls nothing of
 * theirs (opening the store with the options is config.c's). */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include "cli/cli.h"

int cli_exit_code(int err)
{
	switch (err) {
	case 0: return EXIT_OK;
	case HL_NOTFOUND: case HL_NOSTORE: case HL_FORGOTTEN: return EXIT_MISSING;
	case HL_CORRUPT: case HL_MISMATCH: return EXIT_CORRUPT;
	case HL_CONFLICT: return EXIT_CONFLICT;
	case HL_INVALID: case HL_AMBIGUOUS: return EXIT_USAGE;
	default: return EXIT_FAIL;
	}
}

int cli_fail(const char *what, int err)
{
	fprintf(stderr, "helios: %s: %s\n", what, hl_strerror(err));
	return cli_exit_code(err);
}

int cli_usage(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fputs("helios: ", stderr);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs(" (see 'helios --help')\n", stderr);
	return EXIT_USAGE;
}

int cli_parse_sync(const char *v, hl_sync_mode *out)
{
	static const char *names[] = {"always", "batch", "none"};
	for (int i = 0; i < 3; i++)
		if (v && !strcmp(v, names[i])) {
			*out = (hl_sync_mode)i;
			return 0;
		}
	return HL_INVALID;
}

void cli_print_sum(const hl_id *id, const char *name)
{
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(id, hex);
	int escape = strchr(name, '\\') || strchr(name, '\n');
	if (escape)
		putchar('\\');
	fputs(hex, stdout);
	fputs("  ", stdout);
	for (const char *p = name; *p; p++) {
		if (escape && *p == '\\')
			fputs("\\\\", stdout);
		else if (escape && *p == '\n')
			fputs("\\n", stdout);
		else
			putchar(*p);
	}
	putchar('\n');
}

int cli_load(const char *path, cli_blob *b)
{
	memset(b, 0, sizeof(*b));
	int fd = strcmp(path, "-") ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	if (fd < 0)
		return errno;
	struct stat st;
	int err = 0;
	if (fstat(fd, &st) < 0) {
		err = errno;
	} else if (S_ISDIR(st.st_mode)) {
		err = EISDIR;
	} else if (S_ISREG(st.st_mode) && st.st_size > 0) {
		void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (m == MAP_FAILED) {
			err = errno;
		} else {
			b->data = m;
			b->len = (size_t)st.st_size;
			b->mapped = 1;
		}
	} else if (!S_ISREG(st.st_mode)) { /* pipe, terminal, device: read to the end */
		size_t cap = 1 << 16;
		char *buf = malloc(cap);
		ssize_t r;
		while (buf && (r = read(fd, buf + b->len, cap - b->len)) != 0) {
			if (r < 0) {
				if (errno == EINTR)
					continue;
				err = errno;
				break;
			}
			b->len += (size_t)r;
			if (b->len == cap) {
				char *nb = realloc(buf, cap *= 2);
				if (!nb) {
					free(buf);
					buf = NULL;
				} else {
					buf = nb;
				}
			}
		}
		if (!buf)
			err = ENOMEM;
		b->data = buf;
	}
	if (fd != STDIN_FILENO)
		close(fd);
	if (err)
		cli_release(b);
	return err;
}

void cli_release(cli_blob *b)
{
	if (b->mapped)
		munmap(b->data, b->len);
	else
		free(b->data);
	memset(b, 0, sizeof(*b));
}

/* A number with an optional one-letter unit from units ("K1024…"-style pairs of letter and
 * multiplier), at most limit in all. HL_INVALID for anything else. */
typedef struct unit {
	char letter;
	uint64_t mult;
} unit;

static int parse_scaled(const char *v, const unit *units, size_t nunits, uint64_t limit,
                        uint64_t *out)
{
	char *end;
	if (!v || !*v || *v == '-')
		return HL_INVALID;
	unsigned long long n = strtoull(v, &end, 10);
	uint64_t mult = 1;
	for (size_t i = 0; i < nunits && *end; i++)
		if (*end == units[i].letter) {
			mult = units[i].mult;
			end++;
			break;
		}
	if (*end || end == v || n > limit / mult)
		return HL_INVALID;
	*out = (uint64_t)n * mult;
	return 0;
}

int cli_parse_duration(const char *v, uint64_t *seconds)
{
	static const unit units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	return parse_scaled(v, units, 4, UINT64_MAX / 2, seconds);
}

int cli_parse_bytes(const char *v, uint64_t *out)
{
	static const unit units[] = {{'K', 1ull << 10}, {'k', 1ull << 10}, {'M', 1ull << 20},
	                             {'m', 1ull << 20}, {'G', 1ull << 30}, {'g', 1ull << 30},
	                             {'T', 1ull << 40}, {'t', 1ull << 40}};
	return parse_scaled(v, units, 8, UINT64_MAX, out);
}

int cli_rev(hl_store *s, const char *rev, hl_id *commit, hl_id *tree)
{
	int err = hl_rev_parse(s, rev, commit, tree);
	if (err == HL_INVALID)
		return cli_usage("'%s' is no revision: a ref, an id or a unique prefix of one (4+ hex), "
		                 "then ~N, ^, ^N or @{TIME}; or it names no commit or tree", rev);
	if (err) {
		char what[HL_REF_MAX + 64];
		snprintf(what, sizeof what, "revision %s", rev);
		return cli_fail(what, err);
	}
	return 0;
}

void cli_format_time(uint64_t ns, char *out, size_t cap)
{
	time_t t = (time_t)(ns / 1000000000u);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm);
}
