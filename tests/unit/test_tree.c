/* test_tree.c — the tree encoding (round trip, canonical order, every rejection) and, through the
 * public API, snapshot → restore → walk → diff, plus restores that must refuse: an unsafe entry
 * name in a stored tree, a subtree that is no tree, a non-empty target directory. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "testutil.h"
#include "base/endian.h"
#include "dedup/tree.h"

static hl_tree_entry ent(const char *name, int kind, uint32_t mode, uint64_t size, uint8_t idbyte)
{
	hl_tree_entry e = {.kind = kind, .mode = mode, .size = size, .name = name, .name_len = strlen(name)};
	memset(e.id.b, idbyte, HL_ID_LEN);
	return e;
}

static void encode_roundtrip(void **st)
{
	hl_tree_entry e[4] = {ent("zeta", HL_TREE_FILE, 0644, 10, 1), ent("alpha", HL_TREE_DIR, 0755, 0, 2),
	                      ent("link", HL_TREE_SYMLINK, 0, 4, 3), ent("alpha.txt", HL_TREE_FILE, 0755, 0, 4)};
	uint8_t buf[1024];
	size_t len;
	assert_int_equal(hl_tree_encode(e, 4, buf, sizeof buf, &len), HL_INVALID); /* unsorted */
	hl_tree_sort(e, 4);
	assert_string_equal(e[0].name, "alpha");
	assert_string_equal(e[1].name, "alpha.txt");
	assert_int_equal(hl_tree_encode(e, 4, buf, sizeof buf, &len), 0);
	assert_int_equal(len, hl_tree_size(e, 4));
	assert_int_equal(hl_tree_encode(e, 4, buf, len - 1, &len), HL_TOOBIG);
	assert_int_equal(hl_tree_encode(e, 4, buf, sizeof buf, &len), 0);
	uint32_t n;
	assert_int_equal(hl_tree_check(buf, len, &n), 0);
	assert_int_equal(n, 4);
	size_t pos = 0;
	hl_tree_entry d;
	for (int i = 0; i < 4; i++) {
		assert_true(hl_tree_next(buf, len, &pos, &d));
		assert_int_equal(d.name_len, e[i].name_len);
		assert_memory_equal(d.name, e[i].name, d.name_len);
		assert_int_equal(d.kind, e[i].kind);
		assert_int_equal(d.mode, e[i].mode);
		assert_int_equal(d.size, e[i].size);
		assert_memory_equal(d.id.b, e[i].id.b, HL_ID_LEN);
	}
	assert_false(hl_tree_next(buf, len, &pos, &d));
	/* the empty tree */
	assert_int_equal(hl_tree_encode(NULL, 0, buf, sizeof buf, &len), 0);
	assert_int_equal(len, HL_TREE_HDR);
	assert_int_equal(hl_tree_check(buf, len, &n), 0);
	assert_int_equal(n, 0);
}

static void encode_rejects(void **st)
{
	uint8_t buf[1024];
	size_t len;
	const char *bad_names[] = {"", ".", "..", "a/b", "/"};
	for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
		hl_tree_entry e = ent(bad_names[i], HL_TREE_FILE, 0644, 1, 1);
		assert_int_equal(hl_tree_encode(&e, 1, buf, sizeof buf, &len), HL_INVALID);
	}
	hl_tree_entry nul = {.kind = HL_TREE_FILE, .mode = 0644, .name = "a\0b", .name_len = 3};
	assert_int_equal(hl_tree_encode(&nul, 1, buf, sizeof buf, &len), HL_INVALID);
	hl_tree_entry dup[2] = {ent("same", HL_TREE_FILE, 0644, 1, 1), ent("same", HL_TREE_FILE, 0644, 1, 2)};
	assert_int_equal(hl_tree_encode(dup, 2, buf, sizeof buf, &len), HL_INVALID);
	hl_tree_entry kind = ent("k", 4, 0644, 1, 1), mode = ent("m", HL_TREE_FILE, 010000, 1, 1),
	              lmode = ent("l", HL_TREE_SYMLINK, 0777, 1, 1), dsize = ent("d", HL_TREE_DIR, 0755, 5, 1);
	assert_int_equal(hl_tree_encode(&kind, 1, buf, sizeof buf, &len), HL_INVALID);
	assert_int_equal(hl_tree_encode(&mode, 1, buf, sizeof buf, &len), HL_INVALID);
	assert_int_equal(hl_tree_encode(&lmode, 1, buf, sizeof buf, &len), HL_INVALID);
	assert_int_equal(hl_tree_encode(&dsize, 1, buf, sizeof buf, &len), HL_INVALID);
	char longname[HL_TREE_NAME_MAX + 2];
	memset(longname, 'n', sizeof longname - 1);
	longname[HL_TREE_NAME_MAX + 1] = 0;
	hl_tree_entry lng = ent(longname, HL_TREE_FILE, 0644, 1, 1);
	assert_int_equal(hl_tree_encode(&lng, 1, buf, sizeof buf, &len), HL_INVALID);
	longname[HL_TREE_NAME_MAX] = 0;
	lng = ent(longname, HL_TREE_FILE, 0644, 1, 1);
	assert_int_equal(hl_tree_encode(&lng, 1, buf, sizeof buf, &len), 0);
}

/* Writes a one-entry tree by hand, bypassing the encoder's checks. */
static size_t raw_tree(uint8_t *buf, const char *name, size_t nlen, int kind, uint32_t mode, const hl_id *id)
{
	memset(buf, 0, HL_TREE_HDR + HL_TREE_ENTRY);
	memcpy(buf, "HLTR", 4);
	buf[4] = 1, buf[5] = 1;
	hl_put_le32(buf + 8, 1);
	uint8_t *p = buf + HL_TREE_HDR;
	p[0] = (uint8_t)kind;
	hl_put_le16(p + 2, (uint16_t)nlen);
	hl_put_le32(p + 4, mode);
	hl_put_le64(p + 8, 1);
	memcpy(p + 16, id->b, HL_ID_LEN);
	memcpy(p + HL_TREE_ENTRY, name, nlen);
	return HL_TREE_HDR + HL_TREE_ENTRY + nlen;
}

static void check_rejects(void **st)
{
	uint8_t buf[512], good[512];
	hl_id id;
	hl_hash("x", 1, &id);
	uint32_t n;
	size_t len = raw_tree(good, "ok", 2, HL_TREE_FILE, 0644, &id);
	assert_int_equal(hl_tree_check(good, len, &n), 0);
	const char *names[] = {"..", ".", "a/b", "/etc"};
	for (size_t i = 0; i < 4; i++) {
		size_t l = raw_tree(buf, names[i], strlen(names[i]), HL_TREE_FILE, 0644, &id);
		assert_int_equal(hl_tree_check(buf, l, &n), HL_CORRUPT);
	}
	size_t l = raw_tree(buf, "a\0b", 3, HL_TREE_FILE, 0644, &id);
	assert_int_equal(hl_tree_check(buf, l, &n), HL_CORRUPT);
	l = raw_tree(buf, "", 0, HL_TREE_FILE, 0644, &id);
	assert_int_equal(hl_tree_check(buf, l, &n), HL_CORRUPT);
	l = raw_tree(buf, "k", 1, 9, 0644, &id);
	assert_int_equal(hl_tree_check(buf, l, &n), HL_CORRUPT);
	/* truncated anywhere, or a byte too many */
	for (size_t cut = 0; cut < len; cut++)
		assert_int_not_equal(hl_tree_check(good, cut, &n), 0);
	good[len] = 0;
	assert_int_equal(hl_tree_check(good, len + 1, &n), HL_CORRUPT);
	/* another kind of object; a newer version */
	memcpy(buf, good, len);
	buf[0] = 'X';
	assert_int_equal(hl_tree_check(buf, len, &n), HL_INVALID);
	memcpy(buf, good, len);
	buf[4] = 2;
	assert_int_equal(hl_tree_check(buf, len, &n), HL_VERSION);
	/* an entry count that promises more than there is */
	memcpy(buf, good, len);
	hl_put_le32(buf + 8, 2);
	assert_int_equal(hl_tree_check(buf, len, &n), HL_CORRUPT);
}

static void write_file(const char *path, const char *text, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	fchmod(fd, mode);
	close(fd);
}

typedef struct changes {
	char lines[16][256];
	int n;
} changes;

static int collect_change(const char *path, const hl_tree_entry *a, const hl_tree_entry *b, void *ctx)
{
	changes *c = ctx;
	if (c->n < 16)
		snprintf(c->lines[c->n++], sizeof c->lines[0], "%c %s", !a ? 'A' : !b ? 'D' : 'M', path);
	return 0;
}

static int count_entries(const char *path, const hl_tree_entry *e, void *ctx)
{
	(*(int *)ctx)++;
	return 0;
}

static void snapshot_restore_diff(void **st)
{
	char *dir = tu_tmpdir("tree");
	char p[4096], q[4096];
	snprintf(p, sizeof p, "%s/store", dir);
	hl_store *s = tu_open(p, HL_SYNC_NONE, 0);
	snprintf(p, sizeof p, "%s/src", dir);
	mkdir(p, 0755);
	snprintf(q, sizeof q, "%s/src/sub", dir);
	mkdir(q, 0700);
	snprintf(q, sizeof q, "%s/src/sub/x.c", dir);
	write_file(q, "int x;\n", 0640);
	snprintf(q, sizeof q, "%s/src/run", dir);
	write_file(q, "#!/bin/sh\n", 0755);
	snprintf(q, sizeof q, "%s/src/link", dir);
	assert_int_equal(symlink("sub/x.c", q), 0);
	hl_id a, b;
	hl_snapshot_stats ss;
	assert_int_equal(hl_snapshot(s, p, 2, &a, &ss), 0);
	assert_int_equal(ss.files, 2);
	assert_int_equal(ss.symlinks, 1);
	assert_int_equal(ss.dirs, 2);
	int n = 0;
	assert_int_equal(hl_tree_walk(s, &a, count_entries, &n), 0);
	assert_int_equal(n, 4); /* link, run, sub, sub/x.c */
	/* the same content snapshots to the same id, storing nothing new */
	hl_id again;
	assert_int_equal(hl_snapshot(s, p, 1, &again, &ss), 0);
	assert_true(hl_id_equal(&a, &again));
	assert_int_equal(ss.new_objects, 0);

	snprintf(q, sizeof q, "%s/out", dir);
	assert_int_equal(hl_restore(s, &a, q), 0);
	struct stat sb;
	snprintf(q, sizeof q, "%s/out/run", dir);
	assert_int_equal(stat(q, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0755);
	snprintf(q, sizeof q, "%s/out/sub", dir);
	assert_int_equal(stat(q, &sb), 0);
	assert_int_equal(sb.st_mode & 07777, 0700);
	char target[64] = {0};
	snprintf(q, sizeof q, "%s/out/link", dir);
	assert_int_equal(readlink(q, target, sizeof target), 7);
	assert_string_equal(target, "sub/x.c");
	/* restoring over a non-empty directory is refused */
	snprintf(q, sizeof q, "%s/out", dir);
	assert_int_equal(hl_restore(s, &a, q), ENOTEMPTY);

	/* change one file, add one, remove one */
	snprintf(q, sizeof q, "%s/src/sub/x.c", dir);
	write_file(q, "int y;\n", 0640);
	snprintf(q, sizeof q, "%s/src/new", dir);
	write_file(q, "", 0644);
	snprintf(q, sizeof q, "%s/src/link", dir);
	unlink(q);
	assert_int_equal(hl_snapshot(s, p, 0, &b, NULL), 0);
	changes c = {0};
	assert_int_equal(hl_tree_diff(s, &a, &b, collect_change, &c), 0);
	assert_int_equal(c.n, 3);
	assert_string_equal(c.lines[0], "D link");
	assert_string_equal(c.lines[1], "A new");
	assert_string_equal(c.lines[2], "M sub/x.c");
	memset(&c, 0, sizeof c);
	assert_int_equal(hl_tree_diff(s, &a, &a, collect_change, &c), 0);
	assert_int_equal(c.n, 0);

	/* a stored tree naming ".." is refused before anything is written */
	uint8_t raw[512];
	hl_id blob, evil, outer;
	assert_int_equal(hl_put(s, "x", 1, &blob, NULL), 0);
	assert_int_equal(hl_put(s, raw, raw_tree(raw, "..", 2, HL_TREE_FILE, 0644, &blob), &evil, NULL), 0);
	snprintf(q, sizeof q, "%s/evil", dir);
	assert_int_equal(hl_restore(s, &evil, q), HL_CORRUPT);
	snprintf(q, sizeof q, "%s/x", dir);
	assert_int_equal(access(q, F_OK), -1); /* nothing appeared beside the target */
	/* ...also when it is a subtree, after a safe sibling */
	hl_tree_entry two[2] = {ent("a", HL_TREE_FILE, 0644, 1, 0), ent("b", HL_TREE_DIR, 0755, 0, 0)};
	two[0].id = blob;
	two[1].id = evil;
	size_t len;
	assert_int_equal(hl_tree_encode(two, 2, raw, sizeof raw, &len), 0);
	assert_int_equal(hl_put(s, raw, len, &outer, NULL), 0);
	snprintf(q, sizeof q, "%s/evil2", dir);
	assert_int_equal(hl_restore(s, &outer, q), HL_CORRUPT);
	snprintf(q, sizeof q, "%s/evil2/a", dir);
	assert_int_equal(access(q, F_OK), -1);
	/* a blob where a subtree belongs; a blob given as a root */
	two[1].id = blob;
	assert_int_equal(hl_tree_encode(two, 2, raw, sizeof raw, &len), 0);
	assert_int_equal(hl_put(s, raw, len, &outer, NULL), 0);
	n = 0;
	assert_int_equal(hl_tree_walk(s, &outer, count_entries, &n), HL_CORRUPT);
	assert_int_equal(hl_tree_walk(s, &blob, count_entries, &n), HL_INVALID);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* A chain of 40 directories with 250-byte names: paths longer than the walk's and the diff's path
 * buffers are refused with HL_TOOBIG, never written past them. */
static hl_id deep_chain(hl_store *s, const char *leaf)
{
	char name[251];
	memset(name, 'd', 250);
	name[250] = 0;
	hl_id id, blob;
	assert_int_equal(hl_put(s, leaf, strlen(leaf), &blob, NULL), 0);
	hl_tree_entry e = ent("leaf", HL_TREE_FILE, 0644, strlen(leaf), 0);
	e.id = blob;
	uint8_t buf[512];
	size_t len;
	assert_int_equal(hl_tree_encode(&e, 1, buf, sizeof buf, &len), 0);
	assert_int_equal(hl_put(s, buf, len, &id, NULL), 0);
	for (int i = 0; i < 40; i++) {
		e = ent(name, HL_TREE_DIR, 0755, 0, 0);
		e.id = id;
		assert_int_equal(hl_tree_encode(&e, 1, buf, sizeof buf, &len), 0);
		assert_int_equal(hl_put(s, buf, len, &id, NULL), 0);
	}
	return id;
}

static void deep_paths(void **st)
{
	char *dir = tu_tmpdir("tree");
	char p[4096];
	snprintf(p, sizeof p, "%s/store", dir);
	hl_store *s = tu_open(p, HL_SYNC_NONE, 0);
	hl_id a = deep_chain(s, "one"), b = deep_chain(s, "two");
	int n = 0;
	assert_int_equal(hl_tree_walk(s, &a, count_entries, &n), HL_TOOBIG);
	changes ch = {0};
	assert_int_equal(hl_tree_diff(s, &a, &b, collect_change, &ch), HL_TOOBIG);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* Files unchanged since they were hashed (and stable for 2 s before that) are not read again; a
 * change of content, even of the same size, is seen; a renamed directory keeps its cache, a renamed
 * file does not. */
static void stat_cache(void **st)
{
	char *dir = tu_tmpdir("tree");
	char p[4096], f[4096];
	snprintf(p, sizeof p, "%s/store", dir);
	hl_store *s = tu_open(p, HL_SYNC_NONE, 0);
	snprintf(p, sizeof p, "%s/w", dir);
	mkdir(p, 0755);
	for (int i = 0; i < 20; i++) {
		snprintf(f, sizeof f, "%s/w/f%02d", dir, i);
		write_file(f, "content\n", 0644);
	}
	hl_id a, b, c;
	hl_snapshot_stats ss;
	assert_int_equal(hl_snapshot(s, p, 2, &a, &ss), 0);
	assert_int_equal(ss.cached, 0);
	assert_int_equal(hl_snapshot(s, p, 2, &b, &ss), 0);
	assert_int_equal(ss.cached, 0); /* written just before they were cached: racily clean */
	sleep(3);
	assert_int_equal(hl_snapshot(s, p, 2, &b, &ss), 0); /* cached, now with a stable history */
	assert_int_equal(hl_snapshot(s, p, 2, &b, &ss), 0);
	assert_int_equal(ss.cached, 20);
	assert_true(hl_id_equal(&a, &b));
	snprintf(f, sizeof f, "%s/w/f07", dir);
	write_file(f, "CONTENT\n", 0644); /* same size */
	assert_int_equal(hl_snapshot(s, p, 2, &c, &ss), 0);
	assert_int_equal(ss.cached, 19);
	assert_false(hl_id_equal(&b, &c));
	changes ch = {0};
	assert_int_equal(hl_tree_diff(s, &b, &c, collect_change, &ch), 0);
	assert_int_equal(ch.n, 1);
	assert_string_equal(ch.lines[0], "M f07");
	/* the cache has a row per directory, found by its inode: a renamed directory keeps its hits;
	 * a renamed file (its name no longer in the tree the row names) is read again */
	sleep(3);
	assert_int_equal(hl_snapshot(s, p, 2, &c, &ss), 0);
	assert_int_equal(ss.cached, 19); /* f07 was changed just before the last row: read again */
	char p2[4096], g[4096];
	snprintf(p2, sizeof p2, "%s/w2", dir);
	assert_int_equal(rename(p, p2), 0);
	assert_int_equal(hl_snapshot(s, p2, 2, &c, &ss), 0);
	assert_int_equal(ss.cached, 20);
	snprintf(f, sizeof f, "%s/w2/f03", dir);
	snprintf(g, sizeof g, "%s/w2/g03", dir);
	assert_int_equal(rename(f, g), 0);
	assert_int_equal(hl_snapshot(s, p2, 2, &c, &ss), 0);
	assert_int_equal(ss.cached, 19);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* A restore is a scan: it reads files through the L1 but does not fill it (each is read about
 * once; filling the cache cost a page fault per 4 KiB, twice a restore's time). Trees and
 * manifests still fill it, and a file the L1 already holds is taken from there. */
static void restore_does_not_fill_l1(void **st)
{
	char *dir = tu_tmpdir("tree");
	char p[4096], q[4096];
	snprintf(p, sizeof p, "%s/src", dir);
	mkdir(p, 0755);
	snprintf(p, sizeof p, "%s/src/sub", dir);
	mkdir(p, 0755);
	for (int i = 0; i < 20; i++) {
		char text[32];
		snprintf(q, sizeof q, "%s/src/sub/f%02d", dir, i);
		snprintf(text, sizeof text, "file %d\n", i);
		write_file(q, text, 0644);
	}
	size_t big = 3u << 20; /* above the chunking threshold: restored chunk by chunk */
	uint8_t *data = malloc(big);
	uint64_t seed = 7;
	tu_fill(&seed, data, big);
	snprintf(q, sizeof q, "%s/src/big", dir);
	FILE *fp = fopen(q, "wb");
	assert_non_null(fp);
	assert_int_equal(fwrite(data, 1, big, fp), big);
	fclose(fp);
	snprintf(p, sizeof p, "%s/store", dir);
	hl_store *s = tu_open(p, HL_SYNC_NONE, 0);
	snprintf(q, sizeof q, "%s/src", dir);
	hl_id root;
	assert_int_equal(hl_snapshot(s, q, 2, &root, NULL), 0);
	hl_close(s);

	s = tu_open(p, HL_SYNC_NONE, 0); /* an empty L1 */
	snprintf(q, sizeof q, "%s/out1", dir);
	assert_int_equal(hl_restore(s, &root, q), 0);
	hl_stats a;
	assert_int_equal(hl_stats_get(s, &a), 0);
	assert_int_equal(a.l1_entries, 3); /* the two trees and the big file's manifest, no file */
	snprintf(q, sizeof q, "%s/out1/big", dir);
	fp = fopen(q, "rb");
	assert_non_null(fp);
	uint8_t *back = malloc(big + 1);
	assert_int_equal(fread(back, 1, big + 1, fp), big);
	fclose(fp);
	assert_memory_equal(back, data, big);
	snprintf(q, sizeof q, "%s/out1/sub/f07", dir);
	fp = fopen(q, "r");
	char line[32] = "";
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof line, fp));
	fclose(fp);
	assert_string_equal(line, "file 7\n");

	/* a file read by a get is in the L1; the next restore takes it from there */
	hl_id small;
	hl_hash("file 3\n", 7, &small);
	hl_buf *b;
	assert_int_equal(hl_get(s, &small, &b), 0);
	hl_buf_unref(b);
	hl_stats c;
	assert_int_equal(hl_stats_get(s, &c), 0);
	assert_int_equal(c.l1_entries, 4);
	snprintf(q, sizeof q, "%s/out2", dir);
	assert_int_equal(hl_restore(s, &root, q), 0);
	hl_stats d;
	assert_int_equal(hl_stats_get(s, &d), 0);
	assert_int_equal(d.l1_entries, 4);
	assert_true(d.l1_hits >= c.l1_hits + 1);
	hl_close(s);
	free(back);
	free(data);
	tu_rmrf(dir);
	free(dir);
}

/* A tree of more new files than a worker holds before it stores a batch (4096): every file is
 * stored and reads back; on a read-only handle the snapshot is refused and stores nothing. */
static void many_new_files(void **st)
{
	char *dir = tu_tmpdir("tree");
	char p[4096], f[4096];
	snprintf(p, sizeof p, "%s/store", dir);
	hl_store *s = tu_open(p, HL_SYNC_NONE, 0);
	snprintf(p, sizeof p, "%s/w", dir);
	mkdir(p, 0755);
	enum { N = 9000 };
	for (int i = 0; i < N; i++) {
		char text[32];
		snprintf(f, sizeof f, "%s/w/f%05d", dir, i);
		snprintf(text, sizeof text, "file %d\n", i);
		write_file(f, text, 0644);
	}
	hl_id a;
	hl_snapshot_stats ss;
	assert_int_equal(hl_snapshot(s, p, 2, &a, &ss), 0);
	assert_int_equal(ss.files, N);
	assert_int_equal(ss.new_objects, N + 1); /* the files and the one tree */
	int n = 0;
	assert_int_equal(hl_tree_walk(s, &a, count_entries, &n), 0);
	assert_int_equal(n, N);
	snprintf(f, sizeof f, "%s/out", dir);
	assert_int_equal(hl_restore(s, &a, f), 0);
	snprintf(f, sizeof f, "%s/out/f08999", dir);
	FILE *fp = fopen(f, "r");
	char line[32] = "";
	assert_non_null(fp);
	assert_non_null(fgets(line, sizeof line, fp));
	fclose(fp);
	assert_string_equal(line, "file 8999\n");
	hl_stats before, after;
	assert_int_equal(hl_stats_get(s, &before), 0);
	hl_close(s);
	snprintf(f, sizeof f, "%s/w/new", dir);
	write_file(f, "not stored\n", 0644);
	hl_options o;
	hl_options_init(&o);
	o.read_only = 1;
	char sp[4096];
	snprintf(sp, sizeof sp, "%s/store", dir);
	assert_int_equal(hl_open(sp, &o, &s), 0);
	hl_id b;
	assert_int_equal(hl_snapshot(s, p, 2, &b, NULL), HL_READONLY);
	assert_int_equal(hl_stats_get(s, &after), 0);
	assert_int_equal(after.objects, before.objects);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(encode_roundtrip),
		cmocka_unit_test(encode_rejects),
		cmocka_unit_test(check_rejects),
		cmocka_unit_test(snapshot_restore_diff),
		cmocka_unit_test(stat_cache),
		cmocka_unit_test(deep_paths),
		cmocka_unit_test(many_new_files),
		cmocka_unit_test(restore_does_not_fill_l1),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
