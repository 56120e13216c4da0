/* chunker.c — see chunker.h. */
#include <pthread.h>
#include "helios.h"
#include "dedup/chunker.h"

/* 256 fixed pseudo-random words (splitmix64 from a constant seed): part of the chunk format. */
static uint64_t gear[256];
static pthread_once_t gear_once = PTHREAD_ONCE_INIT;

static void gear_fill(void)
{
	uint64_t x = 0x68656c696f73ull; /* "helios" */
	for (int i = 0; i < 256; i++) {
		uint64_t z = (x += 0x9e3779b97f4a7c15ull);
		z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
		z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
		gear[i] = z ^ (z >> 31);
	}
}

/* k one-bits spread evenly over bits 63..16. */
static uint64_t spread_mask(unsigned k)
{
	uint64_t m = 0;
	for (unsigned i = 0; i < k; i++)
		m |= 1ull << (63 - (i * 48) / k);
	return m;
}

int hl_cdc_init(hl_cdc *c, uint32_t min, uint32_t avg, uint32_t max)
{
	if (min < 64 || min >= avg || avg >= max || max > (64u << 20) || (avg & (avg - 1)))
		return HL_INVALID;
	pthread_once(&gear_once, gear_fill);
	unsigned bits = (unsigned)__builtin_ctz(avg);
	c->min = min;
	c->avg = avg;
	c->max = max;
	c->mask_s = spread_mask(bits + 2);
	c->mask_l = spread_mask(bits > 2 ? bits - 2 : 1);
	return 0;
}

size_t hl_cdc_next(const hl_cdc *c, const uint8_t *data, size_t len)
{
	if (len <= c->min)
		return len;
	size_t end = len < c->max ? len : c->max;
	size_t normal = end < c->avg ? end : c->avg;
	uint64_t fp = 0;
	size_t i = c->min;
	for (; i < normal; i++) {
		fp = (fp << 1) + gear[data[i]];
		if (!(fp & c->mask_s))
			return i + 1;
	}
	for (; i < end; i++) {
		fp = (fp << 1) + gear[data[i]];
		if (!(fp & c->mask_l))
			return i + 1;
	}
	return end;
}
