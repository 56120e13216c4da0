/* clock.h — monotonic and wall clocks in the units helios uses. */
#ifndef HL_BASE_CLOCK_H
#define HL_BASE_CLOCK_H
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

#endif
