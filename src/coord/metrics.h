/* metrics.h — what the coordinator measures: per-operation result counters, latency histograms
 * per operation and tier (L1 hit / below the L1), a health score 0–100 computed from the error
 * rate, load shedding, latency and corruption over a sliding window, with alerts (a log line and
 * a counter) when the health level worsens and when it clears, and the Prometheus text
 * exposition of all of it. Counters are striped per thread: recording never writes a shared line. */
#ifndef HL_COORD_METRICS_H
#define HL_COORD_METRICS_H
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include "helios.h"
#include "base/hist.h"

/* REJECTED: the caller's input was refused (mismatch, invalid, too big): not the store's error */
enum { HL_M_OK, HL_M_NOTFOUND, HL_M_BUSY, HL_M_CORRUPT, HL_M_ERROR, HL_M_REJECTED, HL_M_RESULTS_ };

typedef struct hl_metrics_stripe {
	atomic_uint_fast64_t results[HL_OP_COUNT_][HL_M_RESULTS_];
	char pad[64];
} hl_metrics_stripe;

typedef struct hl_health_thresholds {
	uint64_t read_p99_ns;  /* slower p99 below the L1 costs health; default 50 ms */
	uint64_t write_p99_ns; /* same for puts and batches; default 1 s */
} hl_health_thresholds;

typedef struct hl_metrics {
	hl_hist *lat[HL_OP_COUNT_][2]; /* [op][HL_AT_L1 or HL_AT_BELOW]; HL_AT_ALL is their sum */
	hl_metrics_stripe stripe[1u << HL_HIST_STRIPE_BITS];
	hl_health_thresholds thr;
	int (*stopped)(void *ctx); /* writes stopped (a failed sync): score 0 */
	void *stopped_ctx;
	atomic_uint_fast64_t corrupt_noted; /* corruption found outside the request path (verify) */
	/* health: evaluated over the window since the previous evaluation */
	pthread_mutex_t health_mu;
	uint64_t last_eval_ns, last_corrupt_ns;
	uint64_t prev_results[HL_OP_COUNT_][HL_M_RESULTS_], prev_corrupt_noted;
	hl_hist_snap *prev_lat[HL_OP_COUNT_]; /* below-L1 histograms at the last evaluation */
	hl_health health;
	atomic_uint_fast64_t alerts;
} hl_metrics;

int hl_metrics_init(hl_metrics *m, const hl_health_thresholds *thr);
void hl_metrics_destroy(hl_metrics *m);
int hl_metrics_result_class(int err);
void hl_metrics_record(hl_metrics *m, int op, int at, int err, uint64_t ns);
uint64_t hl_metrics_count(hl_metrics *m, int op, int result_class);
void hl_metrics_latency(hl_metrics *m, int op, int at, hl_latency *out);
/* Re-evaluates health if min_interval_ns has passed since the last evaluation (0: always), logs
 * and counts level changes, and copies the current health out. */
void hl_metrics_health(hl_metrics *m, uint64_t min_interval_ns, hl_health *out);

/* A growing text buffer for the exposition. */
typedef struct hl_text {
	char *p;
	size_t len, cap;
	int oom;
} hl_text;
void hl_text_printf(hl_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Appends the coordinator's families (ops, latency histograms, health) in Prometheus text format. */
void hl_metrics_prometheus(hl_metrics *m, hl_text *t);

#endif
