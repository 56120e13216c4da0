/* clock.c — calibration of the interval stamps of clock.h. */
#include <pthread.h>
#include "base/clock.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

atomic_int hl_ticks_tsc;
_Atomic uint64_t hl_ticks_mult;

static void calibrate(void)
{
#if defined(__x86_64__)
	unsigned a, b, c, d;
	if (!__get_cpuid(0x80000007, &a, &b, &c, &d) || !(d & (1u << 8)))
		return; /* no invariant TSC: stay on clock_gettime */
	uint64_t t0 = hl_now_ns(), c0 = __builtin_ia32_rdtsc(), t1, c1;
	do {
		t1 = hl_now_ns();
		c1 = __builtin_ia32_rdtsc();
	} while (t1 - t0 < 500000);
	if (c1 <= c0)
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
