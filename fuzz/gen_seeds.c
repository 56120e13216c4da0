/* gen_seeds.c — writes the seed corpora under fuzz/corpus/ (valid encodings plus a few near
 * misses). Run by hand when a format changes: build/fuzz/gen-seeds fuzz/corpus */
#include <stdio.h>
#include <string.h>
#include "hash/hash.h"
#include "dedup/manifest.h"
#include "store/index.h"
#include "store/record.h"

static void put(const char *dir, const char *name, const void *b, size_t n)
{
	char p[4096];
	snprintf(p, sizeof p, "%s/%s", dir, name);
	FILE *f = fopen(p, "wb");
	if (!f) {
		perror(p);
		return;
	}
	fwrite(b, 1, n, f);
	fclose(f);
}

int main(int argc, char **argv)
{
	const char *root = argc > 1 ? argv[1] : "fuzz/corpus";
	char rec[4096], idx[4096], man[4096];
	snprintf(rec, sizeof rec, "%s/fuzz_record", root);
	snprintf(idx, sizeof idx, "%s/fuzz_index", root);
	snprintf(man, sizeof man, "%s/fuzz_manifest", root);
	uint8_t b[HL_REC_HDR_LEN + 8];
	hl_rec_hdr h = {HL_REC_VERSION, HL_HASHFN_BLAKE3_256, 0, {{0}}, 11, 11};
	hl_hash("hello world", 11, &h.id);
	hl_rec_encode(&h, b);
	put(rec, "raw", b, HL_REC_HDR_LEN);
	h.flags = HL_REC_F_ZSTD;
	h.stored_len = 5;
	hl_rec_encode(&h, b);
	put(rec, "zstd", b, HL_REC_HDR_LEN);
	b[7] ^= 1;
	put(rec, "badcheck", b, HL_REC_HDR_LEN);
	put(rec, "short", b, 20);
	hl_seg_hdr_encode(3, 1700000000, b);
	put(rec, "segment", b, HL_SEG_HDR_LEN);
	uint8_t e[HL_IDX_ENTRY_LEN];
	hl_idx_entry ent = {2, 4096, 100, 300, HL_REC_F_ZSTD, 1, 1700000000};
	hl_idx_entry_encode(&ent, e);
	put(idx, "entry", e, sizeof e);
	put(idx, "entry-short", e, sizeof e - 3);
	char hex[HL_ID_HEX_LEN + 1];
	hl_id_format(&h.id, hex);
	put(idx, "id", hex, HL_ID_HEX_LEN);
	hex[5] = 'Q';
	put(idx, "id-bad", hex, HL_ID_HEX_LEN);
	hl_chunk_ref c[3];
	for (int i = 0; i < 3; i++) {
		hl_hash(&i, sizeof i, &c[i].id);
		c[i].len = 65536u + (uint32_t)i;
	}
	uint8_t m[24 + 3 * 36];
	size_t mlen;
	hl_manifest_encode(c, 1, m, sizeof m, &mlen);
	put(man, "one-chunk", m, mlen);
	hl_manifest_encode(c, 3, m, sizeof m, &mlen);
	put(man, "three-chunks", m, mlen);
	m[8] ^= 1;
	put(man, "bad-total", m, mlen);
	put(man, "truncated", m, mlen - 5);
	return 0;
}
