/* metrics.c — what a store says about itself: statistics, the backend's figures, latency,
 * health, the Prometheus text, sync, the logger. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"
#include "base/log.h"
#include "hash/hash.h"
#include "cache/l1.h"
#include "cache/l2.h"
#include "coord/coord.h"
#include "dedup/fleetgc.h"
#include "dedup/gc.h"
#include "dedup/links.h"
#include "integrity/bscrub.h"
#include "integrity/scrub.h"
#include "remote/hremote.h"
#include "remote/s3.h"
#include "store/names.h"
#include "store/store.h"
#include "tier/fleet.h"
#include "tier/tier.h"
#include "api/api.h"
#include "base/alloc.h"

int hl_stats_get(hl_store *s, hl_stats *out)
{
	if (!out)
		return HL_INVALID;
	int err = hl_local_stats(s->local, out);
	if (!err && !(s->be.ops->caps & HL_BE_SHARED)) /* a bucket's are counted by verify --backend */
		err = hl_names_large_count(s->local, &out->chunked);
	if (!err && s->l1) {
		hl_l1_stats l;
		hl_l1_stats_get(s->l1, &l);
		out->l1_hits = l.hits;
		out->l1_misses = l.misses;
		out->l1_evictions = l.evictions;
		out->l1_bytes = l.bytes;
		out->l1_entries = l.entries;
		out->l1_capacity = l.capacity;
	}
	if (!err) {
		hl_coord_stats c;
		hl_coord_stats_get(s->coord, &c);
		out->busy = c.busy;
		out->joined = c.joined;
		out->limit_get = c.limit[HL_CLASS_READ];
		out->limit_has = c.limit[HL_CLASS_HAS];
		out->limit_write = c.limit[HL_CLASS_WRITE];
		out->inflight = c.inflight[HL_CLASS_READ] + c.inflight[HL_CLASS_HAS] + c.inflight[HL_CLASS_WRITE];
		hl_health h;
		hl_metrics_health(hl_coord_metrics(s->coord), 1000000000u, &h);
		out->health_score = h.score;
	}
	if (!err && (s->scrub || s->bscrub)) {
		hl_scrub_stats ss;
		if (s->scrub)
			hl_scrub_stats_get(s->scrub, &ss);
		else
			hl_bscrub_stats_get(s->bscrub, &ss);
		out->scrub_objects = ss.objects;
		out->scrub_bytes = ss.bytes;
		out->scrub_passes = ss.passes;
		out->scrub_corrupt = ss.corrupt;
		out->repaired = ss.repaired;
		out->unrepairable = ss.unrepairable;
	}
	if (!err && s->l2) {
		hl_l2_stats l;
		hl_l2_stats_get(s->l2, &l);
		out->l2_hits = l.hits, out->l2_misses = l.misses, out->l2_corrupt = l.corrupt;
		out->l2_bytes = l.bytes, out->l2_entries = l.entries, out->l2_capacity = l.capacity;
	}
	if (!err && s->stack)
		out->l2_promoted = hl_tier_stack_promoted(s->stack);
	if (!err && s->be.ops->remote_stats) {
		hl_http_stats h;
		s->be.ops->remote_stats(s->be.self, &h);
		out->remote_requests = h.requests, out->remote_retries = h.retries;
		out->remote_failures = h.failures, out->remote_breaker_opens = h.breaker_opens;
		out->remote_breaker_open = h.breaker_open;
	}
	return err;
}

typedef struct counting {
	uint64_t objects, bytes, chunked;
} counting;

static int count_object(const hl_id *id, const hl_stat *st, void *arg)
{
	(void)id;
	counting *c = arg;
	c->objects++;
	c->bytes += st->stored_size ? st->stored_size : st->size;
	return 0;
}

static int count_large(const hl_id *id, const hl_id *manifest, uint64_t size, void *arg)
{
	(void)id, (void)manifest, (void)size;
	((counting *)arg)->chunked++;
	return 0;
}

int hl_backend_get(hl_store *s, int count, hl_backend_info *out)
{
	if (!out)
		return HL_INVALID;
	memset(out, 0, sizeof(*out));
	snprintf(out->kind, sizeof out->kind, "%s", s->be.ops->kind);
	out->shared = !!(s->be.ops->caps & HL_BE_SHARED);
	if (!count || !s->be.ops->list)
		return 0;
	counting c = {0, 0, 0};
	int err = s->be.ops->list(s->be.self, count_object, &c);
	if (!err && s->be.ops->large_each)
		err = s->be.ops->large_each(s->be.self, count_large, &c);
	if (err)
		return err;
	out->counted = 1;
	out->objects = c.objects, out->bytes = c.bytes, out->chunked = c.chunked;
	return 0;
}

int hl_latency_get(hl_store *s, int op, int at, hl_latency *out)
{
	if (!out || op < 0 || op >= HL_OP_COUNT_ || at < HL_AT_L1 || at > HL_AT_ALL)
		return HL_INVALID;
	hl_metrics_latency(hl_coord_metrics(s->coord), op, at, out);
	return 0;
}

int hl_health_get(hl_store *s, hl_health *out)
{
	if (!out)
		return HL_INVALID;
	/* re-evaluated when asked, at most once a second (a window shorter than that is noise) */
	hl_metrics_health(hl_coord_metrics(s->coord), 1000000000u, out);
	return 0;
}

int hl_metrics_text(hl_store *s, char **text, size_t *len)
{
	if (!text)
		return HL_INVALID;
	*text = NULL;
	hl_stats st;
	int err = hl_stats_get(s, &st);
	if (err)
		return err;
	hl_text t = {0};
	const struct { const char *name, *type, *help; uint64_t v; } m[] = {
		{"helios_objects", "gauge", "Stored objects.", st.objects},
		{"helios_logical_bytes", "gauge", "Sum of stored object sizes.", st.logical_bytes},
		{"helios_stored_bytes", "gauge", "Bytes in records of stored objects (headers, payloads).", st.stored_bytes},
		{"helios_segment_bytes", "gauge", "Size of all segment files, dead space included.", st.segment_bytes},
		{"helios_segments", "gauge", "Segment files.", st.segments},
		{"helios_quarantined", "gauge", "Records quarantined as corrupt.", st.quarantined},
		{"helios_chunked_objects", "gauge", "Large objects stored as chunks and a manifest.", st.chunked},
		{"helios_delta_objects", "gauge", "Objects stored as deltas against a similar object.", st.deltas},
		{"helios_delta_logical_bytes", "gauge", "Sum of the sizes of objects stored as deltas.", st.delta_raw_bytes},
		{"helios_delta_stored_bytes", "gauge", "Bytes in records of objects stored as deltas.", st.delta_stored_bytes},
		{"helios_store_puts_total", "counter", "Objects offered to the store.", st.puts},
		{"helios_store_puts_new_total", "counter", "Objects the store wrote (not already present).", st.puts_new},
		{"helios_store_reads_total", "counter", "Reads from the store (below the L1).", st.gets},
		{"helios_corrupt_reads_total", "counter", "Reads that failed verification.", st.corrupt_reads},
		{"helios_syncs_total", "counter", "Segment syncs.", st.syncs},
		{"helios_commits_total", "counter", "Group commits.", st.commits},
		{"helios_index_flushes_total", "counter", "Memtable flushes into the index.", st.index_flushes},
		{"helios_index_memory_bytes", "gauge", "The index's copy in memory (0 while it is built, or off).",
		 st.index_memory_bytes},
		{"helios_unindexed_objects", "gauge", "Objects durable in segment files, not yet in the index.", st.unindexed},
		{"helios_disk_bytes", "gauge", "Size of the file system the store is on.", st.disk_bytes},
		{"helios_disk_free_bytes", "gauge", "Bytes still free to the store on its file system.", st.disk_free_bytes},
		{"helios_l1_hits_total", "counter", "L1 memory cache hits.", st.l1_hits},
		{"helios_l1_misses_total", "counter", "L1 memory cache misses.", st.l1_misses},
		{"helios_l1_evictions_total", "counter", "L1 evictions.", st.l1_evictions},
		{"helios_l1_bytes", "gauge", "Bytes held by the L1 (with per-entry overhead).", st.l1_bytes},
		{"helios_l1_entries", "gauge", "Objects held by the L1.", st.l1_entries},
		{"helios_l1_capacity_bytes", "gauge", "The L1's byte bound.", st.l1_capacity},
		{"helios_scrub_objects_total", "counter", "Objects re-read and re-hashed by the scrubber.", st.scrub_objects},
		{"helios_scrub_bytes_total", "counter", "Record bytes re-read by the scrubber.", st.scrub_bytes},
		{"helios_scrub_passes_total", "counter", "Whole passes of the scrubber over the store.", st.scrub_passes},
		{"helios_scrub_corrupt_total", "counter", "Corrupt objects found by the scrubber or given to repair.", st.scrub_corrupt},
		{"helios_repaired_total", "counter", "Corrupt objects replaced by a verified copy from another tier.", st.repaired},
		{"helios_unrepairable_total", "counter", "Corrupt objects no repair source had.", st.unrepairable},
		{"helios_l2_hits_total", "counter", "L2 disk cache hits (verified).", st.l2_hits},
		{"helios_l2_misses_total", "counter", "L2 disk cache misses.", st.l2_misses},
		{"helios_l2_corrupt_total", "counter", "L2 entries that failed verification (counted as misses).", st.l2_corrupt},
		{"helios_l2_bytes", "gauge", "Bytes held by the L2.", st.l2_bytes},
		{"helios_l2_entries", "gauge", "Objects held by the L2.", st.l2_entries},
		{"helios_l2_capacity_bytes", "gauge", "The L2's byte bound.", st.l2_capacity},
		{"helios_l2_promoted_total", "counter", "Objects the warm-up moved from the L2 into the L1.", st.l2_promoted},
		{"helios_remote_requests_total", "counter", "Requests sent to the remote backend.", st.remote_requests},
		{"helios_remote_retries_total", "counter", "Requests resent after a transient failure.", st.remote_retries},
		{"helios_remote_failures_total", "counter", "Calls to the remote backend that failed after their retries.", st.remote_failures},
		{"helios_remote_breaker_opens_total", "counter", "Times the circuit breaker opened.", st.remote_breaker_opens},
		{"helios_remote_breaker_open", "gauge", "1 while the circuit breaker is open (calls fail at once).", (uint64_t)st.remote_breaker_open},
		{"helios_busy_total", "counter", "Calls refused with HL_BUSY (admission control).", st.busy},
		{"helios_joined_total", "counter", "Calls that shared a concurrent identical read or write.", st.joined},
		{"helios_inflight", "gauge", "Operations in flight below the L1.", st.inflight},
	};
	for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
		hl_text_printf(&t, "# HELP %s %s\n# TYPE %s %s\n%s %llu\n", m[i].name, m[i].help, m[i].name,
		               m[i].type, m[i].name, (unsigned long long)m[i].v);
	hl_text_printf(&t, "# HELP helios_sync_seconds_total Time spent in segment syncs (over helios_syncs_total: "
	                   "the disk's sync latency).\n# TYPE helios_sync_seconds_total counter\n"
	                   "helios_sync_seconds_total %.6f\n", (double)st.sync_ns / 1e9);
	hl_text_printf(&t, "# HELP helios_inflight_limit Current admission bound per class (0: unbounded).\n"
	                   "# TYPE helios_inflight_limit gauge\n"
	                   "helios_inflight_limit{class=\"get\"} %llu\nhelios_inflight_limit{class=\"has\"} %llu\n"
	                   "helios_inflight_limit{class=\"write\"} %llu\n",
	               (unsigned long long)st.limit_get, (unsigned long long)st.limit_has,
	               (unsigned long long)st.limit_write);
	hl_text_printf(&t, "# HELP helios_backend_info The durable backend (shared: other nodes write it too; "
	                   "the object figures above are then this node's local store's).\n"
	                   "# TYPE helios_backend_info gauge\nhelios_backend_info{kind=\"%s\",shared=\"%s\"} 1\n",
	               s->be.ops->kind, s->be.ops->caps & HL_BE_SHARED ? "true" : "false");
	hl_metrics_prometheus(hl_coord_metrics(s->coord), &t);
	if (t.oom) {
		free(t.p);
		return ENOMEM;
	}
	*text = t.p;
	if (len)
		*len = t.len;
	return 0;
}

int hl_sync(hl_store *s)
{
	return hl_local_sync(s->local);
}

void hl_set_logger(hl_log_fn fn)
{
	hl_log_set_sink(fn);
}
