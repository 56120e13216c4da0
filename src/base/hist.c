/* hist.c — see hist.h. */
#include <stdlib.h>
#include <string.h>
#include "base/hist.h"
#include "base/slot.h"
#include "base/alloc.h"

static const uint64_t pow10_[12] = {
	1ull, 10ull, 100ull, 1000ull, 10000ull, 100000ull, 1000000ull, 10000000ull,
	100000000ull, 1000000000ull, 10000000000ull, 100000000000ull,
};

size_t hl_hist_bucket(uint64_t ns)
{
	if (ns < 100)
		return (size_t)ns;
	/* decade d ≥ 1: 10^(d+1) ≤ ns < 10^(d+2); bucket by the two leading digits (10..99). */
	for (size_t d = 1; d <= 9; d++)
		if (ns < pow10_[d + 2])
			return 100 + (d - 1) * 90 + (size_t)(ns / pow10_[d] - 10);
	return HL_HIST_BUCKETS - 1;
}

uint64_t hl_hist_upper(size_t b)
{
	if (b < 100)
		return b;
	if (b >= HL_HIST_BUCKETS - 1)
		return UINT64_MAX;
	size_t d = (b - 100) / 90 + 1, m = (b - 100) % 90 + 10;
	return (m + 1) * pow10_[d] - 1;
}

hl_hist *hl_hist_new(void)
{
	hl_hist *h = hl_aligned_alloc(64, (sizeof(hl_hist) + 63) & ~(size_t)63);
	if (h)
		memset(h, 0, sizeof(*h));
	return h;
}

void hl_hist_free(hl_hist *h) { free(h); }

void hl_hist_record(hl_hist *h, uint64_t ns)
{
	hl_hist_stripe *s = &h->stripe[hl_thread_slot(HL_HIST_STRIPE_BITS)];
	atomic_fetch_add_explicit(&s->n[hl_hist_bucket(ns)], 1, memory_order_relaxed);
	atomic_fetch_add_explicit(&s->sum_ns, ns, memory_order_relaxed);
}

void hl_hist_snapshot(const hl_hist *h, hl_hist_snap *out)
{
	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < (1u << HL_HIST_STRIPE_BITS); i++) {
		const hl_hist_stripe *s = &h->stripe[i];
		for (size_t b = 0; b < HL_HIST_BUCKETS; b++)
			out->n[b] += atomic_load_explicit(&s->n[b], memory_order_relaxed);
		out->sum_ns += atomic_load_explicit(&s->sum_ns, memory_order_relaxed);
	}
	for (size_t b = 0; b < HL_HIST_BUCKETS; b++)
		out->count += out->n[b];
}

void hl_hist_snap_sub(hl_hist_snap *a, const hl_hist_snap *b)
{
	for (size_t i = 0; i < HL_HIST_BUCKETS; i++)
		a->n[i] = a->n[i] >= b->n[i] ? a->n[i] - b->n[i] : 0;
	a->count = a->count >= b->count ? a->count - b->count : 0;
	a->sum_ns = a->sum_ns >= b->sum_ns ? a->sum_ns - b->sum_ns : 0;
}

uint64_t hl_hist_quantile(const hl_hist_snap *s, double q)
{
	if (!s->count)
		return 0;
	uint64_t rank = (uint64_t)(q * (double)s->count);
	if (rank >= s->count)
		rank = s->count - 1;
	uint64_t seen = 0;
	for (size_t b = 0; b < HL_HIST_BUCKETS; b++) {
		seen += s->n[b];
		if (seen > rank)
			return hl_hist_upper(b);
	}
	return hl_hist_upper(HL_HIST_BUCKETS - 1);
}

uint64_t hl_hist_count_le(const hl_hist_snap *s, uint64_t ns)
{
	uint64_t c = 0;
	for (size_t b = 0; b < HL_HIST_BUCKETS && hl_hist_upper(b) <= ns; b++)
		c += s->n[b];
	return c;
}
