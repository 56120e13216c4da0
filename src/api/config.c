/* config.c — hl_config_parse: INI text (helios.conf) to section/key/value entries, through
 * Debian's libinih, fed line by line so each entry knows its line number. */
#include <errno.h>
#include <ini.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"

typedef struct feed {
	const char *p, *end;
	unsigned line;     /* the line last handed to the parser */
	int too_long;
	hl_config_fn fn;
	void *ctx;
	int err;           /* fn's answer that stopped the parse */
} feed;

/* ini_reader: the next line of the buffer, NUL-terminated, newline kept. */
static char *next_line(char *str, int num, void *arg)
{
	feed *f = arg;
	if (f->p >= f->end || f->too_long || f->err)
		return NULL;
	const char *nl = memchr(f->p, '\n', (size_t)(f->end - f->p));
	size_t len = nl ? (size_t)(nl - f->p) + 1 : (size_t)(f->end - f->p);
	f->line++;
	if (len >= (size_t)num || memchr(f->p, 0, len)) { /* too long, or a NUL inside */
		f->too_long = 1;
		str[0] = '#'; /* parsed as nothing; the error is ours */
		str[1] = 0;
		f->p = f->end;
		return str;
	}
	memcpy(str, f->p, len);
	str[len] = 0;
	f->p += len;
	return str;
}

static int on_entry(void *arg, const char *section, const char *key, const char *value)
{
	feed *f = arg;
	if (f->err)
		return 0;
	/* Debian's libinih strips inline comments that start with ';' only; '#' after whitespace
	 * starts one too (the documented format) */
	char v[256];
	size_t n = value ? strlen(value) : 0;
	if (n >= sizeof v) {
		f->err = HL_INVALID;
		return 0;
	}
	memcpy(v, value ? value : "", n + 1);
	for (size_t i = 1; i < n; i++)
		if (v[i] == '#' && (v[i - 1] == ' ' || v[i - 1] == '\t')) {
			v[i] = 0;
			n = i;
			break;
		}
	while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
		v[--n] = 0;
	f->err = f->fn(section, key, v, f->line, f->ctx);
	return !f->err;
}

int hl_config_parse(const char *text, size_t len, hl_config_fn fn, void *ctx, unsigned *line)
{
	feed f = {text, text + len, 0, 0, fn, ctx, 0};
	unsigned dummy;
	if (!line)
		line = &dummy;
	*line = 0;
	if ((!text && len) || !fn)
		return HL_INVALID;
	int rc = ini_parse_stream(next_line, &f, on_entry, &f);
	if (f.err) {
		*line = f.line;
		return f.err;
	}
	if (f.too_long) {
		*line = f.line;
		return HL_INVALID;
	}
	if (rc) {
		*line = rc > 0 ? (unsigned)rc : 0;
		return rc == -2 ? ENOMEM : HL_INVALID;
	}
	return 0;
}
