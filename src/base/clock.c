/* clock.c — calibration of the interval stamps of clock.h. */
#include <pthread.h>
#include "base/clock.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

atomic_int hl_ticks_tsc;
_Atomic uint64_t hl_ticks_mult;

#if defined(__x86_64__)
/* One (clock, counter) pair: the clock read between two counter reads, taking the tightest of a
 * few tries, so a preemption at the wrong moment cannot skew the calibration. */
static void pair(uint64_t *ns, uint64_t *tsc)
{
	uint64_t best = UINT64_MAX;
	for (int i = 0; i < 16; i++) {
		uint64_t c0 = __builtin_ia32_rdtsc(), t = hl_now_ns(), c1 = __builtin_ia32_rdtsc();
		if (c1 >= c0 && c1 - c0 < best) {
			best = c1 - c0;
			*ns = t;
			*tsc = c0 + (c1 - c0) / 2;
		}
	}
}
#endif

static void calibrate(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
		return; /* no invariant TSC: stay on clock_gettime */
	uint64_t t0 = 0, c0 = 0, t1 = 0, c1 = 0;
	pair(&t0, &c0);
	while (hl_now_ns() - t0 < 1000000)
		;
	pair(&t1, &c1);
	if (c1 <= c0 || t1 <= t0)
		return;
	atomic_store(&hl_ticks_mult, (uint64_t)((((unsigned __int128)(t1 - t0)) << 32) / (c1 - c0)));
	atomic_store(&hl_ticks_tsc, 1); /* after the multiplier: a thread that sees the TSC on sees it */
#endif
}

void hl_ticks_init(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	pthread_once(&once, calibrate);
}
