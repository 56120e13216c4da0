/* log.c — level-filtered, one line per call, safe from any thread. */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/log.h"

/* Both read by every thread that logs; the level is settled on first use (any thread may do it:
 * all compute the same value). */
static _Atomic(hl_log_sink) current_sink;
static atomic_int max_level = -1;

static int level_from_env(void)
{
	const char *e = getenv("HELIOS_LOG");
	if (!e)
		return HL_LOG_WARN;
	static const char *names[] = {"error", "warn", "info", "debug"};
	for (int i = 0; i < 4; i++)
		if (!strcmp(e, names[i]))
			return i;
	return HL_LOG_WARN;
}

void hl_log_set_sink(hl_log_sink sink) { current_sink = sink; }

void hl_log(int level, const char *fmt, ...)
{
	int max = atomic_load_explicit(&max_level, memory_order_relaxed);
	if (max < 0) {
		max = level_from_env();
		atomic_store_explicit(&max_level, max, memory_order_relaxed);
	}
	if (level > max)
		return;
	char line[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	hl_log_sink sink = atomic_load(&current_sink);
	if (sink) {
		sink(level, line);
		return;
	}
	static const char *tags[] = {"error", "warning", "info", "debug"};
	fprintf(stderr, "helios: %s: %s\n", tags[level & 3], line);
}
