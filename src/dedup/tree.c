/* tree.c — the tree encoding of tree.h. */
#include <stdlib.h>
#include <string.h>
#include "base/endian.h"
#include "dedup/tree.h"

int hl_tree_name_ok(const char *name, size_t len)
{
	if (!name || len == 0 || len > HL_TREE_NAME_MAX)
		return 0;
	if ((len == 1 && name[0] == '.') || (len == 2 && name[0] == '.' && name[1] == '.'))
		return 0;
	return !memchr(name, '/', len) && !memchr(name, 0, len);
}

int hl_tree_entry_cmp(const hl_tree_entry *a, const hl_tree_entry *b)
{
	size_t n = a->name_len < b->name_len ? a->name_len : b->name_len;
	int c = memcmp(a->name, b->name, n);
	return c ? c : (a->name_len > b->name_len) - (a->name_len < b->name_len);
}

static int entry_cmp(const void *x, const void *y)
{
	return hl_tree_entry_cmp(x, y);
}

void hl_tree_sort(hl_tree_entry *e, size_t n)
{
	if (n > 1)
		qsort(e, n, sizeof(*e), entry_cmp);
}

size_t hl_tree_size(const hl_tree_entry *e, size_t n)
{
	size_t len = HL_TREE_HDR;
	for (size_t i = 0; i < n; i++)
		len += HL_TREE_ENTRY + e[i].name_len;
	return len;
}

static int entry_ok(int kind, uint32_t mode)
{
	if (kind == HL_TREE_SYMLINK)
		return mode == 0;
	return (kind == HL_TREE_FILE || kind == HL_TREE_DIR) && (mode & ~07777u) == 0;
}

int hl_tree_encode(const hl_tree_entry *e, size_t n, uint8_t *out, size_t cap, size_t *len)
{
	if (n > UINT32_MAX)
		return HL_INVALID;
	for (size_t i = 0; i < n; i++) {
		if (!hl_tree_name_ok(e[i].name, e[i].name_len) || !entry_ok(e[i].kind, e[i].mode) ||
		    (e[i].kind == HL_TREE_DIR && e[i].size != 0))
			return HL_INVALID;
		if (i && hl_tree_entry_cmp(&e[i - 1], &e[i]) >= 0)
			return HL_INVALID;
	}
	size_t need = hl_tree_size(e, n);
	if (need > cap)
		return HL_TOOBIG;
	memcpy(out, "HLTR", 4);
	out[4] = HL_TREE_VERSION;
	out[5] = 1; /* BLAKE3-256 */
	hl_put_le16(out + 6, 0);
	hl_put_le32(out + 8, (uint32_t)n);
	hl_put_le32(out + 12, 0);
	uint8_t *p = out + HL_TREE_HDR;
	for (size_t i = 0; i < n; i++) {
		p[0] = (uint8_t)e[i].kind;
		p[1] = 0;
		hl_put_le16(p + 2, (uint16_t)e[i].name_len);
		hl_put_le32(p + 4, e[i].mode);
		hl_put_le64(p + 8, e[i].size);
		memcpy(p + 16, e[i].id.b, HL_ID_LEN);
		memcpy(p + HL_TREE_ENTRY, e[i].name, e[i].name_len);
		p += HL_TREE_ENTRY + e[i].name_len;
	}
	*len = need;
	return 0;
}

/* Reads the entry at *pos (bounds already checked by the caller or not: it checks). */
static int read_entry(const uint8_t *buf, size_t len, size_t *pos, hl_tree_entry *e)
{
	if (len - *pos < HL_TREE_ENTRY)
		return HL_CORRUPT;
	const uint8_t *p = buf + *pos;
	size_t nl = hl_le16(p + 2);
	if (p[1] != 0 || len - *pos - HL_TREE_ENTRY < nl)
		return HL_CORRUPT;
	e->kind = p[0];
	e->mode = hl_le32(p + 4);
	e->size = hl_le64(p + 8);
	memcpy(e->id.b, p + 16, HL_ID_LEN);
	e->name = (const char *)p + HL_TREE_ENTRY;
	e->name_len = nl;
	*pos += HL_TREE_ENTRY + nl;
	return 0;
}

int hl_tree_check(const uint8_t *buf, size_t len, uint32_t *count)
{
	if (len < HL_TREE_HDR || memcmp(buf, "HLTR", 4))
		return HL_INVALID;
	if (buf[4] > HL_TREE_VERSION || buf[5] != 1)
		return HL_VERSION;
	if (buf[4] == 0 || hl_le16(buf + 6) || hl_le32(buf + 12))
		return HL_CORRUPT;
	uint32_t n = hl_le32(buf + 8);
	size_t pos = HL_TREE_HDR;
	hl_tree_entry prev = {0}, e;
	for (uint32_t i = 0; i < n; i++) {
		if (read_entry(buf, len, &pos, &e))
			return HL_CORRUPT;
		if (!hl_tree_name_ok(e.name, e.name_len) || !entry_ok(e.kind, e.mode) ||
		    (e.kind == HL_TREE_DIR && e.size != 0))
			return HL_CORRUPT;
		if (i && hl_tree_entry_cmp(&prev, &e) >= 0)
			return HL_CORRUPT;
		prev = e;
	}
	if (pos != len)
		return HL_CORRUPT;
	*count = n;
	return 0;
}

int hl_tree_next(const uint8_t *buf, size_t len, size_t *pos, hl_tree_entry *e)
{
	if (*pos == 0)
		*pos = HL_TREE_HDR;
	if (*pos >= len)
		return 0;
	return read_entry(buf, len, pos, e) == 0;
}
