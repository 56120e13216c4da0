/* mkhistory.c — helios-mkhistory STORE REF N: records N commits on REF (each a one-file snapshot
 * that differs from the last, one second apart), for the history benchmark's long log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "helios.h"
#include "dedup/tree.h"

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: helios-mkhistory STORE REF N\n");
		return 2;
	}
	long n = strtol(argv[3], NULL, 10);
	hl_options o;
	hl_options_init(&o);
	o.sync = HL_SYNC_BATCH;
	hl_store *s;
	int err = hl_open(argv[1], &o, &s);
	uint64_t t0 = (uint64_t)time(NULL) - (uint64_t)n - 60;
	for (long i = 0; !err && i < n; i++) {
		char text[64], msg[64];
		snprintf(text, sizeof text, "state %ld\n", i);
		snprintf(msg, sizeof msg, "commit %ld", i);
		hl_id blob, tree, commit;
		hl_tree_entry e = {.kind = HL_TREE_FILE, .mode = 0644, .size = strlen(text), .name = "state",
		                   .name_len = 5};
		uint8_t buf[128];
		size_t len;
		if ((err = hl_put(s, text, strlen(text), &blob, NULL)) != 0)
			break;
		e.id = blob;
		if ((err = hl_tree_encode(&e, 1, buf, sizeof buf, &len)) != 0 ||
		    (err = hl_put(s, buf, len, &tree, NULL)) != 0)
			break;
		hl_commit_options co = {.author = "bench", .message = msg,
		                        .time_ns = (t0 + (uint64_t)i) * 1000000000ull};
		err = hl_commit_ref(s, argv[2], &tree, NULL, &co, &commit, NULL);
	}
	hl_close(s);
	if (err)
		fprintf(stderr, "helios-mkhistory: %s\n", hl_strerror(err));
	return err ? 1 : 0;
}
