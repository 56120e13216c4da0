/* metrics.c — see metrics.h. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "base/clock.h"
#include "base/log.h"
#include "base/slot.h"
#include "coord/metrics.h"
#include "base/alloc.h"

static const char *op_names[HL_OP_COUNT_] = {"get", "has", "put", "batch"};
static const char *result_names[HL_M_RESULTS_] = {"ok", "notfound", "busy", "corrupt", "error", "rejected"};
static const char *level_names[] = {"ok", "degraded", "unhealthy"};

int hl_metrics_init(hl_metrics *m, const hl_health_thresholds *thr)
{
	memset(m, 0, sizeof(*m));
	m->thr = *thr;
	if (!m->thr.read_p99_ns)
		m->thr.read_p99_ns = 50u * 1000000u;
	if (!m->thr.write_p99_ns)
		m->thr.write_p99_ns = 1000u * 1000000u;
	for (int op = 0; op < HL_OP_COUNT_; op++) {
		for (int at = 0; at < 2; at++)
			if (!(m->lat[op][at] = hl_hist_new()))
				return hl_metrics_destroy(m), ENOMEM;
		if (!(m->prev_lat[op] = hl_calloc(1, sizeof(hl_hist_snap))))
			return hl_metrics_destroy(m), ENOMEM;
	}
	pthread_mutex_init(&m->health_mu, NULL);
	m->health.score = 100;
	m->health.level = HL_HEALTH_OK;
	snprintf(m->health.reason, sizeof m->health.reason, "no problems seen");
	m->last_eval_ns = hl_now_ns();
	return 0;
}

void hl_metrics_destroy(hl_metrics *m)
{
	for (int op = 0; op < HL_OP_COUNT_; op++) {
		for (int at = 0; at < 2; at++)
			hl_hist_free(m->lat[op][at]);
		free(m->prev_lat[op]);
	}
	pthread_mutex_destroy(&m->health_mu);
}

int hl_metrics_result_class(int err)
{
	switch (err) {
	case 0: return HL_M_OK;
	case HL_NOTFOUND: return HL_M_NOTFOUND;
	case HL_BUSY: return HL_M_BUSY;
	case HL_CORRUPT: return HL_M_CORRUPT;
	case HL_MISMATCH: case HL_INVALID: case HL_TOOBIG: case HL_READONLY: return HL_M_REJECTED;
	default: return HL_M_ERROR;
	}
}

void hl_metrics_record(hl_metrics *m, int op, int at, int err, uint64_t ns)
{
	hl_metrics_stripe *s = &m->stripe[hl_thread_slot(HL_HIST_STRIPE_BITS)];
	int rc = hl_metrics_result_class(err);
	atomic_fetch_add_explicit(&s->results[op][rc], 1, memory_order_relaxed);
	if (rc != HL_M_BUSY) /* a refusal is not a latency sample of the work */
		hl_hist_record(m->lat[op][at], ns);
}

uint64_t hl_metrics_count(hl_metrics *m, int op, int rc)
{
	uint64_t n = 0;
	for (size_t i = 0; i < (1u << HL_HIST_STRIPE_BITS); i++)
		n += atomic_load_explicit(&m->stripe[i].results[op][rc], memory_order_relaxed);
	return n;
}

/* The op's latency at `at`, HL_AT_ALL summing both. */
static void snap_at(hl_metrics *m, int op, int at, hl_hist_snap *out)
{
	if (at != HL_AT_ALL) {
		hl_hist_snapshot(m->lat[op][at], out);
		return;
	}
	hl_hist_snap *b = hl_malloc(sizeof(*b));
	hl_hist_snapshot(m->lat[op][HL_AT_L1], out);
	if (!b)
		return;
	hl_hist_snapshot(m->lat[op][HL_AT_BELOW], b);
	for (size_t i = 0; i < HL_HIST_BUCKETS; i++)
		out->n[i] += b->n[i];
	out->count += b->count;
	out->sum_ns += b->sum_ns;
	free(b);
}

static void latency_of(const hl_hist_snap *s, hl_latency *out)
{
	memset(out, 0, sizeof(*out));
	out->count = s->count;
	if (!s->count)
		return;
	out->mean_ns = s->sum_ns / s->count;
	out->p50_ns = hl_hist_quantile(s, 0.50);
	out->p90_ns = hl_hist_quantile(s, 0.90);
	out->p99_ns = hl_hist_quantile(s, 0.99);
	out->p999_ns = hl_hist_quantile(s, 0.999);
	out->max_ns = hl_hist_quantile(s, 1.0);
}

void hl_metrics_latency(hl_metrics *m, int op, int at, hl_latency *out)
{
	hl_hist_snap *s = hl_malloc(sizeof(*s));
	if (!s) {
		memset(out, 0, sizeof(*out));
		return;
	}
	snap_at(m, op, at, s);
	latency_of(s, out);
	free(s);
}

/* ---------- health ---------- */

#define CORRUPT_MEMORY_NS (300ull * 1000000000u) /* corruption weighs on health for 5 minutes */

static int level_of(int score)
{
	return score >= 80 ? HL_HEALTH_OK : score >= 50 ? HL_HEALTH_DEGRADED : HL_HEALTH_UNHEALTHY;
}

/* Appends "; text" (or "text" first) to the reason. */
static void reason_add(char *r, size_t cap, const char *fmt, ...)
{
	size_t n = strlen(r);
	if (n && n + 2 < cap) {
		memcpy(r + n, "; ", 3);
		n += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r + n, cap - n, fmt, ap);
	va_end(ap);
}

static void evaluate_locked(hl_metrics *m, uint64_t now)
{
	uint64_t cur[HL_OP_COUNT_][HL_M_RESULTS_], ops = 0, errs = 0, busy = 0, corrupt = 0;
	for (int op = 0; op < HL_OP_COUNT_; op++)
		for (int rc = 0; rc < HL_M_RESULTS_; rc++) {
			cur[op][rc] = hl_metrics_count(m, op, rc);
			uint64_t d = cur[op][rc] - m->prev_results[op][rc];
			ops += d;
			errs += rc == HL_M_ERROR ? d : 0;
			busy += rc == HL_M_BUSY ? d : 0;
			corrupt += rc == HL_M_CORRUPT ? d : 0;
		}
	uint64_t noted = atomic_load(&m->corrupt_noted);
	corrupt += noted - m->prev_corrupt_noted;
	m->prev_corrupt_noted = noted;
	memcpy(m->prev_results, cur, sizeof cur);
	if (corrupt)
		m->last_corrupt_ns = now;

	char reason[sizeof m->health.reason] = "";
	double penalty = 0;
	if (m->stopped && m->stopped(m->stopped_ctx)) {
		penalty += 100;
		reason_add(reason, sizeof reason, "writes stopped after a failed sync (reopen the store)");
	}
	if (ops && errs) {
		double rate = (double)errs / (double)ops;
		penalty += rate * 600 < 60 ? rate * 600 : 60;
		reason_add(reason, sizeof reason, "error rate %.1f%%", rate * 100);
	}
	if (ops && busy) {
		double rate = (double)busy / (double)ops;
		penalty += rate * 50 < 25 ? rate * 50 : 25;
		reason_add(reason, sizeof reason, "%.1f%% of calls shed (busy)", rate * 100);
	}
	if (m->last_corrupt_ns && now - m->last_corrupt_ns < CORRUPT_MEMORY_NS) {
		uint64_t age = now - m->last_corrupt_ns;
		penalty += age < CORRUPT_MEMORY_NS / 5 ? 30 : 30.0 * (double)(CORRUPT_MEMORY_NS - age) /
		                                                  (double)(CORRUPT_MEMORY_NS * 4 / 5);
		reason_add(reason, sizeof reason, "corruption found %llu s ago",
		           (unsigned long long)(age / 1000000000u));
	}
	hl_hist_snap *s = hl_malloc(sizeof(*s));
	for (int op = 0; s && op < HL_OP_COUNT_; op++) {
		hl_hist_snapshot(m->lat[op][HL_AT_BELOW], s);
		hl_hist_snap *prev = m->prev_lat[op];
		hl_hist_snap window = *s;
		hl_hist_snap_sub(&window, prev);
		*prev = *s;
		if (window.count < 10)
			continue;
		uint64_t p99 = hl_hist_quantile(&window, 0.99);
		uint64_t thr = op == HL_OP_PUT || op == HL_OP_BATCH ? m->thr.write_p99_ns : m->thr.read_p99_ns;
		if (p99 > thr) {
			double p = 10.0 * (double)p99 / (double)thr;
			penalty += p < 20 ? p : 20;
			reason_add(reason, sizeof reason, "p99 %s %.1f ms (threshold %.0f ms)", op_names[op],
			           (double)p99 / 1e6, (double)thr / 1e6);
		}
	}
	free(s);
	int score = penalty >= 100 ? 0 : 100 - (int)(penalty + 0.5);
	int level = level_of(score);
	if (level != m->health.level) {
		atomic_fetch_add(&m->alerts, 1);
		if (level > m->health.level)
			hl_log(HL_LOG_WARN, "health %s (score %d): %s", level_names[level], score, reason);
		else
			hl_log(HL_LOG_WARN, "health back to %s (score %d)%s%s", level_names[level], score,
			       *reason ? ": " : "", reason);
	}
	m->health.score = score;
	m->health.level = level;
	snprintf(m->health.reason, sizeof m->health.reason, "%s", *reason ? reason : "no problems seen");
	m->last_eval_ns = now;
}

void hl_metrics_health(hl_metrics *m, uint64_t min_interval_ns, hl_health *out)
{
	pthread_mutex_lock(&m->health_mu);
	uint64_t now = hl_now_ns();
	int stopped_now = m->stopped && m->health.score && m->stopped(m->stopped_ctx);
	if (now - m->last_eval_ns >= min_interval_ns || stopped_now)
		evaluate_locked(m, now);
	if (out) {
		*out = m->health;
		out->alerts = atomic_load(&m->alerts);
	}
	pthread_mutex_unlock(&m->health_mu);
}

/* ---------- Prometheus text exposition ---------- */

void hl_text_printf(hl_text *t, const char *fmt, ...)
{
	if (t->oom)
		return;
	for (;;) {
		va_list ap;
		va_start(ap, fmt);
		int n = vsnprintf(t->p ? t->p + t->len : NULL, t->p ? t->cap - t->len : 0, fmt, ap);
		va_end(ap);
		if (n < 0) {
			t->oom = 1;
			return;
		}
		if (t->p && t->len + (size_t)n < t->cap) {
			t->len += (size_t)n;
			return;
		}
		size_t cap = t->cap ? t->cap * 2 : 4096;
		while (cap < t->len + (size_t)n + 1)
			cap *= 2;
		char *p = hl_realloc(t->p, cap);
		if (!p) {
			t->oom = 1;
			return;
		}
		t->p = p;
		t->cap = cap;
	}
}

/* Bucket bounds shown to Prometheus: 1-2.5-5 steps from 1 µs to 10 s. Each is an exact bucket
 * edge of the histogram, so the cumulative counts are exact. */
static const uint64_t le_ns[] = {
	1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000, 5000000,
	10000000, 25000000, 50000000, 100000000, 250000000, 500000000, 1000000000, 2500000000u,
	5000000000u, 10000000000u,
};

void hl_metrics_prometheus(hl_metrics *m, hl_text *t)
{
	hl_text_printf(t, "# HELP helios_ops_total Operations through the coordinator by result.\n"
	                  "# TYPE helios_ops_total counter\n");
	for (int op = 0; op < HL_OP_COUNT_; op++)
		for (int rc = 0; rc < HL_M_RESULTS_; rc++)
			hl_text_printf(t, "helios_ops_total{op=\"%s\",result=\"%s\"} %llu\n", op_names[op],
			               result_names[rc], (unsigned long long)hl_metrics_count(m, op, rc));
	hl_text_printf(t, "# HELP helios_op_duration_seconds Latency by operation and where it was "
	                  "served (l1: memory cache hit; below: the coordinator and the tiers).\n"
	                  "# TYPE helios_op_duration_seconds histogram\n");
	hl_hist_snap *s = hl_malloc(sizeof(*s));
	if (!s) {
		t->oom = 1;
		return;
	}
	static const char *at_names[2] = {"l1", "below"};
	for (int op = 0; op < HL_OP_COUNT_; op++)
		for (int at = 0; at < 2; at++) {
			if (at == HL_AT_L1 && op != HL_OP_GET)
				continue;
			hl_hist_snapshot(m->lat[op][at], s);
			for (size_t i = 0; i < sizeof le_ns / sizeof le_ns[0]; i++)
				hl_text_printf(t, "helios_op_duration_seconds_bucket{op=\"%s\",at=\"%s\",le=\"%g\"} %llu\n",
				               op_names[op], at_names[at], (double)le_ns[i] / 1e9,
				               (unsigned long long)hl_hist_count_le(s, le_ns[i] - 1));
			hl_text_printf(t, "helios_op_duration_seconds_bucket{op=\"%s\",at=\"%s\",le=\"+Inf\"} %llu\n"
			                  "helios_op_duration_seconds_sum{op=\"%s\",at=\"%s\"} %.9f\n"
			                  "helios_op_duration_seconds_count{op=\"%s\",at=\"%s\"} %llu\n",
			               op_names[op], at_names[at], (unsigned long long)s->count, op_names[op],
			               at_names[at], (double)s->sum_ns / 1e9, op_names[op], at_names[at],
			               (unsigned long long)s->count);
		}
	free(s);
	hl_health h;
	hl_metrics_health(m, 1000000000u, &h);
	hl_text_printf(t, "# HELP helios_health_score Health 0-100 from errors, shedding, latency and corruption.\n"
	                  "# TYPE helios_health_score gauge\nhelios_health_score %d\n"
	                  "# HELP helios_health_level 0 ok, 1 degraded, 2 unhealthy.\n"
	                  "# TYPE helios_health_level gauge\nhelios_health_level %d\n"
	                  "# HELP helios_health_alerts_total Health level changes (raised and cleared).\n"
	                  "# TYPE helios_health_alerts_total counter\nhelios_health_alerts_total %llu\n",
	               h.score, h.level, (unsigned long long)h.alerts);
}
