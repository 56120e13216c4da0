/* nametab.c — see nametab.h. */
#include <string.h>
#include "base/endian.h"
#include "store/index.h"
#include "store/nametab.h"

static int ref_char(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       c == '.' || c == '_' || c == '-';
}

int hl_names_ref_valid(const char *name, size_t len)
{
	if (!name || len == 0 || len > HL_REF_MAX)
		return 0;
	size_t start = 0;
	for (size_t i = 0; i <= len; i++) {
		if (i == len || name[i] == '/') {
			if (i == start || name[start] == '.')
				return 0; /* empty component, or ".", "..", hidden */
			start = i + 1;
		} else if (!ref_char(name[i])) {
			return 0;
		}
	}
	return 1;
}

int hl_names_ns_valid(const char *ns, size_t len)
{
	if (!ns || len == 0 || len > HL_NS_MAX)
		return 0;
	for (size_t i = 0; i < len; i++)
		if (!ref_char(ns[i]) && ns[i] != ':')
			return 0;
	return 1;
}

int hl_names_key_valid(const void *key, size_t len)
{
	return key && len > 0 && len <= HL_KV_KEY_MAX && !memchr(key, 0, len);
}

int hl_names_large_decode(const MDB_val *v, hl_id *manifest, uint64_t *size)
{
	const uint8_t *p = v->mv_data;
	if (v->mv_size != HL_LARGE_ENTRY_LEN || p[0] != 1)
		return HL_CORRUPT;
	memcpy(manifest->b, p + 8, HL_ID_LEN);
	*size = hl_le64(p + 40);
	return 0;
}

int hl_names_large_unmap(MDB_txn *txn, hl_index *ix, const hl_id *id, const hl_id *manifest)
{
	MDB_val k = {HL_ID_LEN, (void *)id->b}, v;
	hl_id m;
	uint64_t size;
	int err = hl_idx_err(mdb_get(txn, ix->large, &k, &v));
	if (!err && (err = hl_names_large_decode(&v, &m, &size)) == 0 && hl_id_equal(&m, manifest))
		err = hl_idx_err(mdb_del(txn, ix->large, &k, NULL));
	return err == HL_NOTFOUND ? 0 : err;
}
