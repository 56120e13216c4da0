/* hist.h — latency histograms: log-linear buckets over nanoseconds (exact below 100 ns, then 90
 * buckets per decade: 10 ns wide from 100 ns, 1 µs wide from 10 µs to 100 µs, 10% at worst), up to
 * 100 s. Recording is one relaxed atomic add into the calling thread's stripe; reading sums the
 * stripes. Percentiles come back as the upper edge of the bucket they fall in. */
#ifndef HL_BASE_HIST_H
#define HL_BASE_HIST_H
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define HL_HIST_BUCKETS 911 /* 100 exact + 9 decades × 90 + overflow */
#define HL_HIST_STRIPE_BITS 4

typedef struct hl_hist_stripe {
	atomic_uint_fast64_t n[HL_HIST_BUCKETS];
	atomic_uint_fast64_t sum_ns;
} hl_hist_stripe;

typedef struct hl_hist {
	hl_hist_stripe stripe[1u << HL_HIST_STRIPE_BITS];
} hl_hist;

/* A plain (non-atomic) copy: the sum of the stripes at one moment, and the arithmetic on it. */
typedef struct hl_hist_snap {
	uint64_t n[HL_HIST_BUCKETS];
	uint64_t count, sum_ns;
} hl_hist_snap;

hl_hist *hl_hist_new(void); /* zeroed; NULL on out-of-memory */
void hl_hist_free(hl_hist *h);
void hl_hist_record(hl_hist *h, uint64_t ns);

size_t hl_hist_bucket(uint64_t ns);
uint64_t hl_hist_upper(size_t bucket); /* largest value (ns) the bucket holds; UINT64_MAX for overflow */

void hl_hist_snapshot(const hl_hist *h, hl_hist_snap *out);
/* a − b, bucket by bucket (b an earlier snapshot of the same histogram): the window between them. */
void hl_hist_snap_sub(hl_hist_snap *a, const hl_hist_snap *b);
/* The value below which a fraction q (0..1) of the samples lie; 0 when empty. */
uint64_t hl_hist_quantile(const hl_hist_snap *s, double q);
/* Samples ≤ ns (whole buckets whose upper edge is ≤ ns). */
uint64_t hl_hist_count_le(const hl_hist_snap *s, uint64_t ns);

#endif
