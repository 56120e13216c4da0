/* fuzz_rev.c — fuzz target for the revision grammar (hl_rev_parse: a ref, an id or prefix, then
 * ~N, ^, ^N, @{TIME}) against a small store made once: a ref with a history of four commits, a
 * merge, a forgotten commit and a ref naming a tree. Never crash or read out of bounds; the same
 * text resolves the same way twice; what resolves is stored, and a commit's tree is its tree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "helios.h"
#include "dedup/tree.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static hl_store *store;
static char dir[] = "/tmp/helios-fuzz-rev.XXXXXX";

static void done(void)
{
	hl_close(store);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0) {
	}
}

static hl_id tree_of(const char *text)
{
	hl_id blob, tree;
	uint8_t buf[128];
	size_t len;
	if (hl_put(store, text, strlen(text), &blob, NULL))
		abort();
	hl_tree_entry e = {.kind = HL_TREE_FILE, .mode = 0644, .size = strlen(text), .id = blob,
	                   .name = "f", .name_len = 1};
	if (hl_tree_encode(&e, 1, buf, sizeof buf, &len) || hl_put(store, buf, len, &tree, NULL))
		abort();
	return tree;
}

static void setup(void)
{
	if (!mkdtemp(dir) || hl_open(dir, NULL, &store))
		abort();
	atexit(done);
	hl_id c[5], t;
	for (int i = 0; i < 4; i++) {
		char text[16];
		snprintf(text, sizeof text, "v%d", i);
		t = tree_of(text);
		hl_commit_options o = {.message = text, .time_ns = (uint64_t)(1700000000 + i * 3600) * 1000000000u};
		if (hl_commit_ref(store, "main", &t, NULL, &o, &c[i], NULL))
			abort();
	}
	hl_commit m = {.tree = t, .nparents = 2, .time_ns = 1700020000ull * 1000000000u};
	m.parents[0] = c[3], m.parents[1] = c[1];
	if (hl_commit_put(store, &m, &c[4]) || hl_ref_cas(store, "main", &c[3], &c[4]) ||
	    hl_ref_set(store, "trees/one", &t))
		abort();
	hl_forget_policy p = {.last = 3};
	if (hl_forget(store, NULL, &p, 0, NULL, NULL, NULL))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!store)
		setup();
	char text[512];
	if (size >= sizeof text)
		size = sizeof text - 1;
	memcpy(text, data, size);
	text[size] = 0;
	hl_id commit, tree, commit2, tree2;
	int err = hl_rev_parse(store, text, &commit, &tree);
	int again = hl_rev_parse(store, text, &commit2, &tree2);
	if (err != again || (!err && (!hl_id_equal(&commit, &commit2) || !hl_id_equal(&tree, &tree2))))
		abort(); /* one text, one answer */
	if (err)
		return 0;
	if (hl_has(store, &commit) || hl_has(store, &tree))
		abort();
	hl_commit *c;
	if (hl_commit_get(store, &commit, &c) == 0) {
		if (!hl_id_equal(&c->tree, &tree))
			abort();
		hl_commit_free(c);
	} else if (!hl_id_equal(&commit, &tree)) {
		abort(); /* no commit: the object stands for itself */
	}
	return 0;
}
