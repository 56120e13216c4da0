/* gen_seeds.c — writes the seed corpora under fuzz/corpus/ (valid encodings plus a few near
 * misses). Run by hand when a format changes: build/fuzz/gen-seeds fuzz/corpus */
#include <stdio.h>
#include <string.h>
#include "api/dircache.h"
#include "hash/hash.h"
#include "dedup/commit.h"
#include "dedup/forgotten.h"
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

static void commit_seeds(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/fuzz_commit", root);
	hl_commit c = {.nparents = 1, .time_ns = 1796534632285459111ull, .author = "agent-7",
	               .message = "fix the build", .nmeta = 2, .files = 700, .bytes = 1 << 20,
	               .new_bytes = 4096, .added = 3, .changed = 5, .deleted = 1};
	hl_hash("tree", 4, &c.tree);
	hl_hash("parent", 6, &c.parents[0]);
	c.meta[0] = (hl_commit_meta){"task", "HEL-42"};
	c.meta[1] = (hl_commit_meta){"model", "m-1"};
	uint8_t b[1024];
	size_t len;
	hl_commit_encode(&c, b, sizeof b, &len);
	put(dir, "commit", b, len);
	put(dir, "commit-truncated", b, len - 3);
	c.nparents = 0, c.nmeta = 0, c.author = c.message = "";
	hl_commit_encode(&c, b, sizeof b, &len);
	put(dir, "root-commit", b, len);
	hl_forgotten f = {0};
	hl_forgotten_add(&f, &c.tree, HL_FORGOT_TREE);
	hl_forgotten_add(&f, &c.parents[0], HL_FORGOT_TREE | HL_FORGOT_PARENTS);
	hl_forgotten_encode(&f, b, sizeof b, &len);
	put(dir, "forgotten", b, len);
	b[HL_FORGOTTEN_HDR + HL_ID_LEN] = 0; /* an entry without flags */
	put(dir, "forgotten-bad", b, len);
	hl_forgotten_free(&f);
}

static void dircache_seeds(const char *root)
{
	char dir[4096];
	snprintf(dir, sizeof dir, "%s/fuzz_dircache", root);
	hl_dircache_file f[3] = {{0, 1000, 1700000000000000000ull, 1700000000500000000ull},
	                         {1, 1001, 1700000000000000000ull, 1700000000500000001ull},
	                         {5, 998, 1690000000000000000ull, 1700000000400000000ull}};
	hl_dircache c = {.cached_ns = 1700000003000000000ull, .f = f, .n = 3};
	hl_hash("tree", 4, &c.tree);
	uint8_t b[256];
	size_t len;
	hl_dircache_encode(&c, b, sizeof b, &len);
	put(dir, "three-files", b, len);
	put(dir, "truncated", b, len - 3);
	c.n = 0;
	hl_dircache_encode(&c, b, sizeof b, &len);
	put(dir, "empty", b, len);
	b[0] = 2;
	put(dir, "version-2", b, len);
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
	uint8_t dp[HL_DELTA_PREFIX_LEN + 4] = {0};
	hl_delta_prefix d = {h.id, {0}, 2};
	memcpy(dp + HL_DELTA_PREFIX_LEN, "\x28\xb5\x2f\xfd", 4); /* a frame's first bytes */
	hl_delta_prefix_encode(&d, dp);
	hl_delta_check(dp, sizeof dp, d.check);
	hl_delta_prefix_encode(&d, dp);
	put(rec, "delta-prefix", dp, sizeof dp);
	h.flags = HL_REC_F_DELTA | HL_REC_F_LINKS;
	h.stored_len = HL_DELTA_PREFIX_LEN + 4;
	h.raw_len = 4096;
	hl_rec_encode(&h, b);
	put(rec, "delta", b, HL_REC_HDR_LEN);
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
	commit_seeds(root);
	dircache_seeds(root);
	return 0;
}
