/* mkhistory.c — helios-mkhistory STORE REF N: records N commits on REF (each a one-file snapshot
 * that differs from the last, one second apart), for the history benchmark's long log. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "helios.h"

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
		if ((err = hl_put(s, text, strlen(text), &blob, NULL)) != 0)
			break;
		e.id = blob;
		/* a tree by hand: the encoding of include/helios.h's hl_tree_parse, one entry */
		memcpy(buf, "HLTR\x01\x01\0\0\x01\0\0\0\0\0\0\0", 16);
		buf[16] = HL_TREE_FILE, buf[17] = 0, buf[18] = 5, buf[19] = 0;
		buf[20] = 0xa4, buf[21] = 0x01, buf[22] = 0, buf[23] = 0; /* 0644 */
		memset(buf + 24, 0, 8);
		buf[24] = (uint8_t)e.size;
		memcpy(buf + 32, blob.b, HL_ID_LEN);
		memcpy(buf + 64, "state", 5);
		if ((err = hl_put(s, buf, 69, &tree, NULL)) != 0)
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
