/* batch.c — the /v1/batch body, both ways (declared in include/helios.h): records
 * "<64 lowercase hex id> <decimal length>\n<length bytes>" back to back. One encoding per list
 * of items (lowercase hex, no leading zeros), so decoding and encoding again gives the same
 * bytes (fuzz/fuzz_http.c checks it). The server decodes uploads with it, the remote-helios client
 * and push encode them. */
#include <stdio.h>
#include <string.h>
#include "helios.h"
#include "base/dec.h"

#define LEN_DIGITS_MAX 20

static size_t digits(uint64_t v)
{
	size_t n = 1;
	while (v >= 10)
		v /= 10, n++;
	return n;
}

size_t hl_batch_size(const hl_put_item *items, size_t n)
{
	size_t total = 0;
	for (size_t i = 0; i < n; i++)
		total += HL_ID_HEX_LEN + 2 + digits(items[i].len) + items[i].len;
	return total;
}

int hl_batch_encode(const hl_put_item *items, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	size_t off = 0;
	for (size_t i = 0; i < n; i++) {
		if ((!items[i].data && items[i].len) || cap - off < HL_ID_HEX_LEN + 2 + digits(items[i].len) ||
		    cap - off - HL_ID_HEX_LEN - 2 - digits(items[i].len) < items[i].len)
			return items[i].data || !items[i].len ? HL_TOOBIG : HL_INVALID;
		char head[HL_ID_HEX_LEN + 3 + LEN_DIGITS_MAX];
		hl_id_format(&items[i].id, head);
		int hn = snprintf(head + HL_ID_HEX_LEN, sizeof head - HL_ID_HEX_LEN, " %zu\n", items[i].len);
		memcpy(out + off, head, HL_ID_HEX_LEN + (size_t)hn);
		off += HL_ID_HEX_LEN + (size_t)hn;
		if (items[i].len)
			memcpy(out + off, items[i].data, items[i].len);
		off += items[i].len;
	}
	*len = off;
	return 0;
}

int hl_batch_decode(const uint8_t *body, size_t len, hl_put_item *items, size_t cap, size_t *n,
                    size_t *where)
{
	size_t pos = 0, count = 0;
	*n = 0;
	*where = 0;
	if (!body || len == 0)
		return HL_INVALID;
	while (pos < len) {
		*where = pos;
		if (len - pos < HL_ID_HEX_LEN + 3 || body[pos + HL_ID_HEX_LEN] != ' ')
			return HL_INVALID;
		hl_put_item it = {0};
		if (hl_id_parse((const char *)body + pos, HL_ID_HEX_LEN, &it.id)) /* lowercase only */
			return HL_INVALID;
		size_t d = pos + HL_ID_HEX_LEN + 1, e = d;
		while (e < len && e - d <= LEN_DIGITS_MAX && body[e] != '\n')
			e++;
		uint64_t rec;
		if (e == len || body[e] != '\n' || hl_dec_u64((const char *)body + d, e - d, &rec) ||
		    (body[d] == '0' && e - d > 1)) /* no leading zeros: one spelling per length */
			return HL_INVALID;
		if (len - e - 1 < rec) {
			*where = e;
			return HL_INVALID; /* the record runs past the body */
		}
		if (count == cap)
			return HL_TOOBIG;
		it.data = body + e + 1;
		it.len = (size_t)rec;
		it.check_id = 1;
		items[count++] = it;
		pos = e + 1 + (size_t)rec;
	}
	*n = count;
	return 0;
}
