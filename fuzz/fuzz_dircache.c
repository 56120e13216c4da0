/* fuzz_dircache.c — fuzz target for the snapshot stat cache's row decoder: never crash or read out
 * of bounds, and whatever decodes encodes again to a row that decodes to the same files. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "api/dircache.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	hl_dircache c, d;
	int err = hl_dircache_decode(data, size, &c);
	if (err == HL_NOTFOUND || err == HL_CORRUPT || err == ENOMEM)
		return 0;
	if (err)
		__builtin_trap();
	size_t cap = hl_dircache_size_max(c.n), len;
	uint8_t *buf = malloc(cap);
	if (!buf || hl_dircache_encode(&c, buf, cap, &len) != 0 || hl_dircache_decode(buf, len, &d) != 0 ||
	    d.n != c.n || d.cached_ns != c.cached_ns || memcmp(&d.tree, &c.tree, sizeof d.tree))
		__builtin_trap();
	for (size_t i = 0; i < c.n; i++)
		if (d.f[i].index != c.f[i].index || d.f[i].ino != c.f[i].ino ||
		    d.f[i].mtime_ns != c.f[i].mtime_ns || d.f[i].ctime_ns != c.f[i].ctime_ns)
			__builtin_trap();
	free(d.f);
	free(c.f);
	free(buf);
	return 0;
}
