/* clock.h — monotonic and wall clocks in the units helios uses, deadlines and sleeps, and a cheap
 * stamp for timing short operations (the per-call latency histograms). */
#ifndef HL_BASE_CLOCK_H
#define HL_BASE_CLOCK_H
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

static inline uint64_t hl_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline uint64_t hl_wall_s(void)
{
	return (uint64_t)time(NULL);
}

/* The CLOCK_REALTIME moment ns from now, as pthread_cond_timedwait takes it. */
static inline struct timespec hl_deadline_after(uint64_t ns)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint64_t t = (uint64_t)ts.tv_nsec + ns;
	ts.tv_sec += (time_t)(t / 1000000000u);
	ts.tv_nsec = (long)(t % 1000000000u);
	return ts;
}

/* Sleeps ms milliseconds, the whole of them even when a signal interrupts. */
static inline void hl_sleep_ms(uint64_t ms)
{
	struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) == -1)
		;
}

/* Interval stamps: the CPU's time-stamp counter where it is invariant (x86-64 that says so; a
 * third of the cost of clock_gettime), else hl_now_ns. Call hl_ticks_init once first (it calibrates
 * the counter against the monotonic clock for a millisecond); hl_ticks_ns converts a
 * difference of stamps to nanoseconds. */
extern atomic_int hl_ticks_tsc;            /* set once, by hl_ticks_init */
extern _Atomic uint64_t hl_ticks_mult; /* ns per tick, fixed point 32.32 */
void hl_ticks_init(void);

static inline uint64_t hl_ticks(void)
{
#if defined(__x86_64__)
	if (atomic_load_explicit(&hl_ticks_tsc, memory_order_relaxed))
		return __builtin_ia32_rdtsc();
#endif
	return hl_now_ns();
}

static inline uint64_t hl_ticks_ns(uint64_t d)
{
	if ((int64_t)d < 0)
		return 0; /* stamps from two cores a hair apart */
	if (!atomic_load_explicit(&hl_ticks_tsc, memory_order_acquire))
		return d;
	return (uint64_t)(((unsigned __int128)d * atomic_load_explicit(&hl_ticks_mult, memory_order_relaxed)) >> 32);
}

#endif
