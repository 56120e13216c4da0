/* powerloss_serve.c — linked into helios-powerloss, a build of the helios CLI for the server
 * crash test (tests/server_crash.py): when HELIOS_PL_JOURNAL is set, the journaling I/O table of
 * tests/powerloss.h is installed before main, so `serve` runs under a simulated power cut at file
 * call HELIOS_PL_CRASH_AT (0 = only when the test kills it). */
#include <stdlib.h>
#include "powerloss.h"

__attribute__((constructor)) static void powerloss_from_env(void)
{
	const char *journal = getenv("HELIOS_PL_JOURNAL"), *stash = getenv("HELIOS_PL_STASH");
	const char *index = getenv("HELIOS_PL_INDEX"), *at = getenv("HELIOS_PL_CRASH_AT");
	if (journal && stash && index)
		pl_install(journal, stash, index, at ? strtoull(at, NULL, 10) : 0);
}
