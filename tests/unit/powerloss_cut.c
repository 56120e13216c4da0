/* powerloss_cut.c — helios-plcut JOURNAL STASH ROOT SEED: applies the power cut a journal of
 * tests/powerloss.h describes to the files under ROOT (for tests/server_crash.py). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "powerloss.h"

int main(int argc, char **argv)
{
	if (argc != 5) {
		fprintf(stderr, "usage: helios-plcut JOURNAL STASH ROOT SEED\n");
		return 2;
	}
	pl_report r;
	int err = pl_cut(argv[1], argv[2], argv[3], strtoull(argv[4], NULL, 10), &r);
	if (err) {
		fprintf(stderr, "helios-plcut: %s\n", strerror(err));
		return 1;
	}
	printf("%u-byte blocks, %llu files: kept %llu, reverted %llu, garbled %llu, %llu resized, %llu names "
	       "undone, index rolled back %d\n", r.block, (unsigned long long)r.files, (unsigned long long)r.kept,
	       (unsigned long long)r.reverted, (unsigned long long)r.garbled, (unsigned long long)r.resized,
	       (unsigned long long)r.names_undone, r.index_rolled_back);
	return 0;
}
