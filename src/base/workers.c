/* workers.c — see workers.h. */
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>
#include "base/alloc.h"
#include "base/workers.h"

unsigned hl_cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (unsigned)n : 1;
}

void hl_run_workers(void *(*fn)(void *), void *arg, unsigned n)
{
	pthread_t *th = n > 1 ? hl_malloc((n - 1) * sizeof(*th)) : NULL;
	unsigned started = 0;
	for (; th && started + 1 < n; started++)
		if (pthread_create(&th[started], NULL, fn, arg))
			break;
	fn(arg);
	for (unsigned i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	free(th);
}
