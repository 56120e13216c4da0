/* remote.c — the remote durable tiers presented as tiers: an S3-compatible bucket
 * (src/remote/s3.h), whose batches are uploaded by up to 16 requests in flight and acknowledged
 * once every object is in the bucket (a bucket cannot store several objects atomically: a failed
 * batch may leave some of its objects stored, harmless for immutable, content-addressed objects
 * nothing names yet); and another helios server (src/remote/hremote.h), whose batches are atomic. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include "remote/hremote.h"
#include "remote/s3.h"
#include "tier/tier.h"

#define PUT_PARALLEL 16

static int r_get(void *s, const hl_id *id, hl_buf **out) { return hl_s3_get(s, id, out); }
static int r_has(void *s, const hl_id *id) { return hl_s3_has(s, id); }

typedef struct uploads {
	hl_s3 *s;
	hl_put_item *items;
	size_t n;
	atomic_size_t next;
	atomic_int err;
} uploads;

static void *upload_some(void *arg)
{
	uploads *u = arg;
	for (size_t i; atomic_load(&u->err) == 0 && (i = atomic_fetch_add(&u->next, 1)) < u->n;) {
		int err = hl_s3_put(u->s, &u->items[i].id, u->items[i].data, u->items[i].len, &u->items[i].created);
		if (err) {
			int zero = 0;
			atomic_compare_exchange_strong(&u->err, &zero, err);
		}
	}
	return NULL;
}

/* Every item checked (and hashed unless trusted) before anything is sent. */
static int check_items(hl_put_item *items, size_t n, int ids_trusted)
{
	for (size_t i = 0; i < n; i++) {
		if (!items[i].data && items[i].len)
			return HL_INVALID;
		if (!ids_trusted) {
			hl_id got;
			hl_hash(items[i].data, items[i].len, &got);
			if (items[i].check_id && !hl_id_equal(&got, &items[i].id))
				return HL_MISMATCH;
			items[i].id = got;
		}
		items[i].created = 0;
	}
	return 0;
}

static int r_put_batch(void *s, hl_put_item *items, size_t n, int ids_trusted)
{
	int err = check_items(items, n, ids_trusted);
	if (err)
		return err;
	uploads u = {.s = s, .items = items, .n = n};
	pthread_t th[PUT_PARALLEL];
	size_t nth = n < 4 ? 0 : n / 2 < PUT_PARALLEL ? n / 2 : PUT_PARALLEL, started = 0;
	for (; started < nth; started++)
		if (pthread_create(&th[started], NULL, upload_some, &u))
			break;
	upload_some(&u); /* this thread too (alone when the batch is small or no thread started) */
	for (size_t i = 0; i < started; i++)
		pthread_join(th[i], NULL);
	return atomic_load(&u.err);
}

static const hl_tier_ops s3_ops = {
	.name = "s3", .get = r_get, .has = r_has, .put_batch = r_put_batch,
};

hl_tier hl_tier_s3(struct hl_s3 *s)
{
	return (hl_tier){&s3_ops, s};
}

static int h_get(void *r, const hl_id *id, hl_buf **out) { return hl_hremote_get(r, id, out); }
static int h_has(void *r, const hl_id *id) { return hl_hremote_has(r, id); }
static int h_put_batch(void *r, hl_put_item *items, size_t n, int ids_trusted)
{
	int err = check_items(items, n, ids_trusted);
	return err ? err : hl_hremote_put_batch(r, items, n);
}

static const hl_tier_ops hremote_ops = {
	.name = "helios", .get = h_get, .has = h_has, .put_batch = h_put_batch,
};

hl_tier hl_tier_hremote(struct hl_hremote *r)
{
	return (hl_tier){&hremote_ops, r};
}
