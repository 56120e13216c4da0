/* progress.c — a one-line progress bar on stderr for long puts and verifies. It appears only on a
 * terminal, once the work has run $HELIOS_PROGRESS_AFTER_MS (default 500) milliseconds. */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>
#include "cli/cli.h"

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void progress_begin(progress *p, const cli *c, const char *label, uint64_t total)
{
	p->label = label;
	p->total = total;
	const char *after = getenv("HELIOS_PROGRESS_AFTER_MS");
	p->start_ns = now_ns();
	p->last_ns = 0;
	p->after_ns = (uint64_t)(after && *after ? strtoull(after, NULL, 10) : 500) * 1000000u;
	p->enabled = !c->quiet && !c->json && isatty(STDERR_FILENO);
	p->shown = 0;
}

void progress_update(progress *p, uint64_t done)
{
	if (!p->enabled)
		return;
	uint64_t t = now_ns();
	if (t - p->start_ns < p->after_ns || t - p->last_ns < 100000000u)
		return;
	p->last_ns = t;
	p->shown = 1;
	double frac = p->total ? (double)done / (double)p->total : 0;
	if (frac > 1)
		frac = 1;
	int width = 30, fill = (int)(frac * width);
	double secs = (double)(t - p->start_ns) / 1e9;
	fprintf(stderr, "\r%s [%.*s%*s] %3d%%  %.1f MiB/s ", p->label, fill,
	        "##############################", width - fill, "", (int)(frac * 100),
	        (double)done / 1048576.0 / secs);
	fflush(stderr);
}

void progress_end(progress *p)
{
	if (p->shown)
		fprintf(stderr, "\r\033[K");
	p->shown = 0;
}
