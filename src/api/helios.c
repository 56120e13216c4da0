/* helios.c — implements include/helios.h by composing the layers below: the L1 memory cache in
 * front of the durable local store. Tiers and the coordinator slot in here. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "helios.h"
#include "base/log.h"
#include "cache/l1.h"
#include "store/store.h"

struct hl_store {
	hl_local *local;
	hl_l1 *l1; /* NULL when l1_bytes is 0 */
};

void hl_options_init(hl_options *opt)
{
	memset(opt, 0, sizeof(*opt));
	opt->create = 1;
	opt->sync = HL_SYNC_ALWAYS;
	opt->sync_interval_ms = 50;
	opt->segment_size = UINT64_C(256) << 20;
	opt->compress_level = 3;
	opt->max_object_size = UINT64_C(4) << 30;
	opt->map_size = UINT64_C(1) << 40;
	opt->l1_bytes = UINT64_C(256) << 20;
	opt->l1_max_object = UINT64_C(1) << 20;
	opt->l1_policy = HL_L1_POLICY_SIEVE;
}

int hl_open(const char *dir, const hl_options *opt, hl_store **out)
{
	hl_options def;
	if (!out)
		return HL_INVALID;
	*out = NULL;
	if (!opt) {
		hl_options_init(&def);
		opt = &def;
	}
	hl_store *s = calloc(1, sizeof(*s));
	if (!s)
		return ENOMEM;
	if (opt->l1_policy != HL_L1_POLICY_SIEVE && opt->l1_policy != HL_L1_POLICY_LRU) {
		free(s);
		return HL_INVALID;
	}
	if (opt->l1_bytes && !(s->l1 = hl_l1_new(opt->l1_bytes, opt->l1_max_object,
	                                         opt->l1_policy == HL_L1_POLICY_LRU ? HL_L1_LRU : HL_L1_SIEVE, 6))) {
		free(s);
		return ENOMEM;
	}
	int err = hl_local_open(dir, opt, &s->local);
	if (err) {
		hl_l1_free(s->l1);
		free(s);
		return err;
	}
	*out = s;
	return 0;
}

void hl_close(hl_store *s)
{
	if (!s)
		return;
	hl_local_close(s->local);
	hl_l1_free(s->l1);
	free(s);
}

int hl_put_batch(hl_store *s, hl_put_item *items, size_t n)
{
	return hl_local_put_batch(s->local, items, n);
}

static int put_one(hl_store *s, const hl_id *expect, const void *data, size_t len, hl_id *id, int *created)
{
	hl_put_item it = {.data = data, .len = len, .check_id = expect != NULL};
	if (expect)
		it.id = *expect;
	int err = hl_local_put_batch(s->local, &it, 1);
	if (!err) {
		if (id)
			*id = it.id;
		if (created)
			*created = it.created;
	}
	return err;
}

int hl_put(hl_store *s, const void *data, size_t len, hl_id *id, int *created)
{
	return put_one(s, NULL, data, len, id, created);
}

int hl_put_expect(hl_store *s, const hl_id *id, const void *data, size_t len, int *created)
{
	if (!id)
		return HL_INVALID;
	return put_one(s, id, data, len, NULL, created);
}

int hl_get(hl_store *s, const hl_id *id, hl_buf **out)
{
	if (!id || !out)
		return HL_INVALID;
	if (s->l1 && hl_l1_get(s->l1, id, out) == 0)
		return 0;
	int err = hl_local_get(s->local, id, out);
	if (!err && s->l1)
		hl_l1_put(s->l1, id, *out); /* verified by the read that just returned it */
	return err;
}

int hl_get_into(hl_store *s, const hl_id *id, void *dst, size_t cap, size_t *len)
{
	if (!id || !len || (!dst && cap))
		return HL_INVALID;
	hl_buf *b;
	if (s->l1 && hl_l1_get(s->l1, id, &b) == 0) {
		*len = hl_buf_len(b);
		int err = *len > cap ? HL_TOOBIG : 0;
		if (!err)
			memcpy(dst, hl_buf_data(b), *len);
		hl_buf_unref(b);
		return err;
	}
	return hl_local_get_into(s->local, id, dst, cap, len);
}

int hl_has(hl_store *s, const hl_id *id)
{
	return id ? hl_local_has(s->local, id) : HL_INVALID;
}

int hl_stat_object(hl_store *s, const hl_id *id, hl_stat *out)
{
	return id && out ? hl_local_stat(s->local, id, out) : HL_INVALID;
}

int hl_iterate(hl_store *s, hl_iter_fn fn, void *ctx)
{
	return fn ? hl_local_iterate(s->local, fn, ctx) : HL_INVALID;
}

int hl_verify(hl_store *s, unsigned threads, hl_verify_fn fn, hl_progress_fn progress, void *ctx,
              hl_verify_report *out)
{
	return hl_local_verify(s->local, threads, fn, progress, ctx, out);
}

int hl_stats_get(hl_store *s, hl_stats *out)
{
	if (!out)
		return HL_INVALID;
	int err = hl_local_stats(s->local, out);
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
	return err;
}

int hl_sync(hl_store *s)
{
	return hl_local_sync(s->local);
}

void hl_set_logger(hl_log_fn fn)
{
	hl_log_set_sink(fn);
}
