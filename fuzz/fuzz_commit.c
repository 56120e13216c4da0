/* fuzz_commit.c — fuzz target for the history formats: the commit decoder and the record of
 * forgotten history. Never crash or read out of bounds; whatever decodes re-encodes to exactly the
 * same bytes (one encoding per content); the collector sees a commit name its tree and parents,
 * a put its tree alone, and a buffer that is no valid commit names nothing. */
#include <stdlib.h>
#include <string.h>
#include "dedup/commit.h"
#include "dedup/forgotten.h"
#include "dedup/links.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int count_link(const hl_id *id, void *ctx)
{
	(void)id;
	++*(size_t *)ctx;
	return 0;
}

static void commit_identity(const uint8_t *data, size_t size)
{
	hl_commit *c = NULL;
	int err = hl_commit_decode(data, size, &c);
	size_t links = 0, needed = 0;
	if (hl_links_each(data, size, count_link, &links) || hl_links_needed_each(data, size, count_link, &needed))
		__builtin_trap();
	hl_commit *parsed = NULL;
	if ((hl_commit_parse(data, size, &parsed) == 0) != (err == 0))
		__builtin_trap();
	hl_commit_free(parsed);
	if (err) {
		if (size >= 4 && !memcmp(data, "HLCM", 4) && (links || needed))
			__builtin_trap();
		return;
	}
	if (links != 1 + c->nparents || needed != 1)
		__builtin_trap();
	size_t cap = hl_commit_size(c), len = 0;
	uint8_t *again = malloc(cap ? cap : 1);
	if (!again || hl_commit_encode(c, again, cap, &len) || len != size || memcmp(again, data, size))
		__builtin_trap();
	free(again);
	hl_commit_free(c);
}

static void forgotten_identity(const uint8_t *data, size_t size)
{
	hl_forgotten f = {0};
	if (hl_forgotten_decode(data, size, &f))
		return;
	size_t cap = hl_forgotten_size(&f), len = 0;
	uint8_t *again = malloc(cap);
	if (!again || hl_forgotten_encode(&f, again, cap, &len) || len != size || memcmp(again, data, size))
		__builtin_trap();
	for (size_t i = 0; i < f.n; i++)
		if (hl_forgotten_flags(&f, &f.v[i].id) != f.v[i].flags)
			__builtin_trap();
	free(again);
	hl_forgotten_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	commit_identity(data, size);
	forgotten_identity(data, size);
	return 0;
}
