/* fuzz_config.c — fuzz target for hl_config_parse (helios.conf): never crash or read out of
 * bounds; every entry handed out has NUL-terminated section, key and value and a line number
 * within the text; a callback's refusal stops the parse and is what it returns. */
#include <stdlib.h>
#include <string.h>
#include "helios.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct seen {
	unsigned lines, entries;
	int refuse_at; /* refuse the entry with this index (-1: none) */
} seen;

static int on_entry(const char *section, const char *key, const char *value, unsigned line, void *ctx)
{
	seen *s = ctx;
	if (line == 0 || line > s->lines || strlen(section) > 1000 || strlen(key) > 1000 || strlen(value) > 1000)
		abort();
	return (int)s->entries++ == s->refuse_at ? HL_CONFLICT : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	seen s = {1, 0, -1};
	for (size_t i = 0; i < size; i++)
		s.lines += data[i] == '\n';
	unsigned line;
	int err = hl_config_parse((const char *)data, size, on_entry, &s, &line);
	if (err != 0 && err != HL_INVALID)
		abort();
	if (s.entries) { /* again, refusing the last entry: the refusal must come back */
		unsigned n = s.entries;
		s.entries = 0;
		s.refuse_at = (int)n - 1;
		if (hl_config_parse((const char *)data, size, on_entry, &s, &line) != HL_CONFLICT)
			abort();
	}
	return 0;
}
