/* parse.c — the HTTP server's parsers (see parse.h). Every function reads only [buf, buf+len). */
#include <string.h>
#include <strings.h>
#include "server/parse.h"

static int is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/* Decimal digits at *p (at most 19, so no overflow); advances *p. -1 if none. */
static int parse_u64(const char **p, const char *end, uint64_t *out)
{
	uint64_t v = 0;
	int n = 0;
	while (*p < end && is_digit(**p)) {
		if (++n > 19)
			return -1;
		v = v * 10 + (uint64_t)(**p - '0');
		(*p)++;
	}
	*out = v;
	return n ? 0 : -1;
}

static const char *skip_ws(const char *p, const char *end)
{
	while (p < end && (*p == ' ' || *p == '\t'))
		p++;
	return p;
}

int srv_range_parse(const char *h, size_t hlen, uint64_t size, uint64_t *off, uint64_t *len)
{
	if (!h)
		return SRV_RANGE_FULL;
	const char *p = h, *end = h + hlen;
	if (hlen < 6 || memcmp(p, "bytes=", 6))
		return SRV_RANGE_FULL;
	p = skip_ws(p + 6, end);
	uint64_t a = 0, b = 0;
	int has_a = p < end && is_digit(*p);
	if (has_a && parse_u64(&p, end, &a))
		return SRV_RANGE_FULL;
	p = skip_ws(p, end);
	if (p == end || *p != '-')
		return SRV_RANGE_FULL;
	p = skip_ws(p + 1, end);
	int has_b = p < end && is_digit(*p);
	if (has_b && parse_u64(&p, end, &b))
		return SRV_RANGE_FULL;
	p = skip_ws(p, end);
	if (p != end || (!has_a && !has_b))
		return SRV_RANGE_FULL; /* several ranges, or garbage: the whole object */
	if (!has_a) { /* suffix: the last b bytes */
		if (b == 0 || size == 0)
			return SRV_RANGE_UNSATISFIABLE;
		*len = b < size ? b : size;
		*off = size - *len;
		return SRV_RANGE_OK;
	}
	if (has_b && b < a)
		return SRV_RANGE_FULL; /* invalid range-spec: ignored */
	if (a >= size)
		return SRV_RANGE_UNSATISFIABLE;
	uint64_t last = has_b && b < size - 1 ? b : size - 1;
	*off = a;
	*len = last - a + 1;
	return SRV_RANGE_OK;
}

int srv_etag_id(const char *h, size_t hlen, hl_id *out)
{
	if (!h || hlen != HL_ID_HEX_LEN + 2 || h[0] != '"' || h[hlen - 1] != '"')
		return HL_INVALID;
	return hl_id_parse(h + 1, HL_ID_HEX_LEN, out);
}

int srv_kv_key(const char *path, size_t len, char *out, size_t cap, size_t *outlen)
{
	size_t o = 0, seg = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || path[i] == '/') {
			size_t slen = i - seg;
			if ((slen == 1 && path[seg] == '.') || (slen == 2 && path[seg] == '.' && path[seg + 1] == '.'))
				return HL_INVALID;
			seg = i + 1;
			continue;
		}
		if (path[i] == 0 || o + 1 >= cap)
			return HL_INVALID;
		out[o++] = path[i];
	}
	if (o == 0 || o > HL_KV_KEY_MAX)
		return HL_INVALID;
	out[o] = 0;
	*outlen = o;
	return 0;
}

int srv_raw_path_check(const char *uri, size_t len)
{
	const char *query = memchr(uri, '?', len), *end = query ? query : uri + len;
	if (memchr(uri, 0, (size_t)(end - uri)))
		return HL_INVALID;
	for (const char *p = uri; (p = memchr(p, '%', (size_t)(end - p))) != NULL; p++)
		if (end - p >= 3 && p[1] == '0' && p[2] == '0') /* "%00" before the query ('?' is no '0') */
			return HL_INVALID;
	return 0;
}

static int scope_of(const char *w, size_t n)
{
	if (n == 4 && !memcmp(w, "read", 4))
		return SRV_SCOPE_READ;
	if (n == 5 && !memcmp(w, "write", 5))
		return SRV_SCOPE_WRITE;
	if (n == 5 && !memcmp(w, "admin", 5))
		return SRV_SCOPE_ADMIN;
	return SRV_SCOPE_NONE;
}

static int token_char(char c)
{
	return c > ' ' && c < 127;
}

int srv_tokens_parse(const char *text, size_t len, srv_token *out, size_t cap, size_t *n,
                     size_t *bad_line)
{
	const char *p = text, *end = text + len;
	size_t line = 0;
	*n = 0;
	while (p < end) {
		const char *eol = memchr(p, '\n', (size_t)(end - p));
		if (!eol)
			eol = end;
		line++;
		*bad_line = line;
		const char *q = skip_ws(p, eol), *e = eol;
		if (e > q && e[-1] == '\r')
			e--;
		while (e > q && (e[-1] == ' ' || e[-1] == '\t'))
			e--;
		if (q < e && *q != '#') {
			const char *t = q;
			while (q < e && token_char(*q))
				q++;
			size_t tlen = (size_t)(q - t);
			if (tlen < 16 || tlen > SRV_TOKEN_MAX || q == e || (*q != ' ' && *q != '\t'))
				return HL_INVALID;
			q = skip_ws(q, e);
			int scope = scope_of(q, (size_t)(e - q));
			if (!scope || *n == cap)
				return HL_INVALID;
			memcpy(out[*n].token, t, tlen);
			out[*n].token[tlen] = 0;
			out[*n].len = tlen;
			out[*n].scope = scope;
			(*n)++;
		}
		p = eol < end ? eol + 1 : end;
	}
	*bad_line = 0;
	return 0;
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* Standard base64 with padding; out receives at most cap - 1 bytes and a NUL. */
static int b64_decode(const char *s, size_t len, char *out, size_t cap, size_t *outlen)
{
	if (len % 4)
		return HL_INVALID;
	size_t o = 0;
	for (size_t i = 0; i < len; i += 4) {
		int v[4], pad = 0;
		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == len && k >= 2) {
				v[k] = 0;
				pad++;
			} else if (pad || (v[k] = b64_val(s[i + k])) < 0) {
				return HL_INVALID;
			}
		}
		uint32_t w = (uint32_t)v[0] << 18 | (uint32_t)v[1] << 12 | (uint32_t)v[2] << 6 | (uint32_t)v[3];
		for (int k = 0; k < 3 - pad; k++) {
			if (o + 1 >= cap)
				return HL_INVALID;
			out[o++] = (char)(w >> (16 - 8 * k));
		}
	}
	out[o] = 0;
	*outlen = o;
	return 0;
}

int srv_auth_credential(const char *h, size_t hlen, char *out, size_t cap, size_t *outlen)
{
	if (!h || cap == 0)
		return HL_INVALID;
	const char *end = h + hlen;
	if (hlen > 7 && !strncasecmp(h, "Bearer ", 7)) {
		const char *t = skip_ws(h + 7, end);
		size_t n = (size_t)(end - t);
		if (n == 0 || n >= cap)
			return HL_INVALID;
		for (size_t i = 0; i < n; i++)
			if (!token_char(t[i]))
				return HL_INVALID;
		memcpy(out, t, n);
		out[n] = 0;
		*outlen = n;
		return 0;
	}
	if (hlen > 6 && !strncasecmp(h, "Basic ", 6)) {
		const char *t = skip_ws(h + 6, end);
		char dec[2 * SRV_TOKEN_MAX + 4];
		size_t n;
		if (b64_decode(t, (size_t)(end - t), dec, sizeof dec, &n))
			return HL_INVALID;
		const char *colon = memchr(dec, ':', n);
		if (!colon || memchr(dec, 0, n))
			return HL_INVALID;
		size_t plen = n - (size_t)(colon + 1 - dec);
		if (plen == 0 || plen >= cap)
			return HL_INVALID;
		memcpy(out, colon + 1, plen);
		out[plen] = 0;
		*outlen = plen;
		return 0;
	}
	return HL_INVALID;
}
