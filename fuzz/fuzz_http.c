/* fuzz_http.c — fuzz target for the HTTP server's parsers (src/server/parse.h). The first byte
 * picks the parser, the rest is its input. Properties beyond "no crash, no out-of-bounds read":
 * a satisfiable range lies inside the object; batch records lie inside the body, back to back; a
 * kv key has no '/'; parsed tokens are printable with a valid scope; a raw path that passes
 * holds no escape that decodes to NUL. */
#include <stdlib.h>
#include <string.h>
#include "server/parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 1)
		return 0;
	const char *in = (const char *)data + 1;
	size_t n = size - 1;
	switch (data[0] % 7) {
	case 0: {
		uint64_t sizes[] = {0, 1, 100, 10000, UINT64_MAX};
		for (size_t i = 0; i < 5; i++) {
			uint64_t off = 0, len = 0;
			if (srv_range_parse(in, n, sizes[i], &off, &len) == SRV_RANGE_OK &&
			    (len == 0 || off >= sizes[i] || len > sizes[i] - off))
				__builtin_trap();
		}
		break;
	}
	case 1: {
		hl_put_item items[64];
		size_t count, where;
		if (hl_batch_decode((const uint8_t *)in, n, items, 64, &count, &where) == 0) {
			const uint8_t *p = (const uint8_t *)in;
			for (size_t i = 0; i < count; i++) {
				const uint8_t *d = items[i].data;
				if (d < p || d + items[i].len > (const uint8_t *)in + n || !items[i].check_id)
					__builtin_trap();
				p = d + items[i].len;
			}
			if (p != (const uint8_t *)in + n)
				__builtin_trap();
			/* one encoding per list of items: encoding what was decoded gives the input back */
			static uint8_t again[1 << 20];
			size_t len;
			if (hl_batch_size(items, count) != n || hl_batch_encode(items, count, again, sizeof again, &len) ||
			    len != n || memcmp(again, in, n))
				__builtin_trap();
		}
		break;
	}
	case 2: {
		hl_id id;
		srv_etag_id(in, n, &id);
		break;
	}
	case 3: {
		char key[HL_KV_KEY_MAX + 1];
		size_t klen;
		if (srv_kv_key(in, n, key, sizeof key, &klen) == 0 && (klen == 0 || memchr(key, '/', klen) || key[klen]))
			__builtin_trap();
		break;
	}
	case 4: {
		srv_token *t = malloc(16 * sizeof(*t));
		size_t count, bad;
		if (t && srv_tokens_parse(in, n, t, 16, &count, &bad) == 0)
			for (size_t i = 0; i < count; i++)
				if (t[i].len < 16 || t[i].len != strlen(t[i].token) || t[i].scope < SRV_SCOPE_READ ||
				    t[i].scope > SRV_SCOPE_ADMIN)
					__builtin_trap();
		free(t);
		break;
	}
	case 6: {
		if (srv_raw_path_check(in, n) == 0)
			for (size_t i = 0; i < n && in[i] != '?'; i++)
				if (in[i] == 0 || (in[i] == '%' && i + 2 < n && in[i + 1] == '0' && in[i + 2] == '0'))
					__builtin_trap();
		break;
	}
	default: {
		char cred[SRV_TOKEN_MAX + 1];
		size_t len;
		if (srv_auth_credential(in, n, cred, sizeof cred, &len) == 0 && (len == 0 || len != strlen(cred)))
			__builtin_trap();
		break;
	}
	}
	return 0;
}
