/* test_l1.c — the L1 memory cache: hits hand out references (no copies), the byte bound holds,
 * big objects bypass it, eviction keeps recently hit entries (SIEVE and LRU), buffers outlive
 * eviction and the cache, and 16 threads mixing gets, borrows and puts only ever see the right
 * bytes; a borrow stays valid through evictions and table growth until unpinned, and evicted
 * memory is freed once no reader can see it. */
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <unistd.h>
#include "testutil.h"
#include "base/buf.h"
#include "cache/l1.h"

static hl_id id_of(int i)
{
	hl_id id;
	hl_hash(&i, sizeof i, &id);
	return id;
}

/* Content derived from the id, so any reader can check what it got. */
static hl_buf *buf_for(const hl_id *id, size_t len)
{
	hl_buf *b = hl_buf_alloc(len);
	uint8_t *p = hl_buf_wdata(b);
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(id->b[i % HL_ID_LEN] + i / HL_ID_LEN);
	return b;
}

static int buf_ok(const hl_id *id, hl_buf *b)
{
	const uint8_t *p = hl_buf_data(b);
	for (size_t i = 0; i < hl_buf_len(b); i++)
		if (p[i] != (uint8_t)(id->b[i % HL_ID_LEN] + i / HL_ID_LEN))
			return 0;
	return 1;
}

static void hit_is_a_reference(void **st)
{
	(void)st;
	hl_l1 *c = hl_l1_new(1 << 20, 1 << 16, HL_L1_SIEVE, 2);
	hl_id a = id_of(1), b = id_of(2);
	hl_buf *in = buf_for(&a, 1000), *out = NULL;
	assert_int_equal(hl_l1_get(c, &a, &out), HL_NOTFOUND);
	hl_l1_put(c, &a, in);
	assert_int_equal(hl_l1_get(c, &a, &out), 0);
	assert_ptr_equal(out, in); /* the same buffer: no copy */
	hl_buf_unref(out);
	assert_int_equal(hl_l1_get(c, &b, &out), HL_NOTFOUND);
	hl_l1_stats s;
	hl_l1_stats_get(c, &s);
	assert_int_equal(s.hits, 1);
	assert_int_equal(s.misses, 2);
	assert_int_equal(s.entries, 1);
	hl_l1_remove(c, &a);
	assert_int_equal(hl_l1_get(c, &a, &out), HL_NOTFOUND);
	hl_l1_free(c);
	assert_true(buf_ok(&a, in)); /* the caller's reference survives the cache */
	hl_buf_unref(in);
	assert_null(hl_l1_new(1 << 20, 1 << 16, 7, 2)); /* unknown policy */
}

static void bound_and_bypass(void **st)
{
	(void)st;
	for (int policy = HL_L1_SIEVE; policy <= HL_L1_LRU; policy++) {
		hl_l1 *c = hl_l1_new(256 << 10, 8 << 10, policy, 3);
		hl_l1_stats s;
		for (int i = 0; i < 2000; i++) {
			hl_id id = id_of(i);
			hl_buf *b = buf_for(&id, 100 + (size_t)(i * 37) % 4000);
			hl_l1_put(c, &id, b);
			hl_buf_unref(b);
			hl_l1_stats_get(c, &s);
			assert_true(s.bytes <= s.capacity);
		}
		assert_true(s.evictions > 0);
		hl_id big = id_of(-1);
		hl_buf *b = buf_for(&big, 9 << 10); /* above max_object */
		hl_l1_put(c, &big, b);
		hl_buf_unref(b);
		hl_buf *out;
		assert_int_equal(hl_l1_get(c, &big, &out), HL_NOTFOUND);
		hl_l1_free(c);
	}
}

/* One shard holding ten 1000-byte objects: after hits on five of them, five new inserts evict the
 * five that were not hit. */
static void eviction_keeps_hot(void **st)
{
	(void)st;
	for (int policy = HL_L1_SIEVE; policy <= HL_L1_LRU; policy++) {
		hl_l1 *c = hl_l1_new(10 * (1000 + 96), 4096, policy, 0);
		hl_buf *out;
		for (int i = 0; i < 10; i++) {
			hl_id id = id_of(i);
			hl_buf *b = buf_for(&id, 1000);
			hl_l1_put(c, &id, b);
			hl_buf_unref(b);
		}
		hl_buf *held = NULL;
		hl_id victim = id_of(7);
		assert_int_equal(hl_l1_get(c, &victim, &held), 0); /* held across its eviction */
		hl_l1_remove(c, &victim);
		hl_l1_put(c, &victim, held);
		for (int i = 0; i < 5; i++) {
			hl_id id = id_of(i);
			assert_int_equal(hl_l1_get(c, &id, &out), 0);
			hl_buf_unref(out);
		}
		for (int i = 10; i < 15; i++) {
			hl_id id = id_of(i);
			hl_buf *b = buf_for(&id, 1000);
			hl_l1_put(c, &id, b);
			hl_buf_unref(b);
		}
		for (int i = 0; i < 15; i++) {
			hl_id id = id_of(i);
			int hot = i < 5 || i >= 10;
			assert_int_equal(hl_l1_get(c, &id, &out), hot ? 0 : HL_NOTFOUND);
			if (hot)
				hl_buf_unref(out);
		}
		assert_true(buf_ok(&victim, held)); /* evicted, still valid for its holder */
		hl_buf_unref(held);
		hl_l1_free(c);
	}
}

typedef struct warg {
	hl_l1 *c;
	int t, bad;
} warg;

static void *worker(void *p)
{
	warg *a = p;
	uint64_t seed = (uint64_t)a->t + 1;
	for (int i = 0; i < 20000; i++) {
		int k = (int)(tu_rand(&seed) % 500);
		hl_id id = id_of(k);
		hl_buf *b;
		hl_l1_pin pin;
		const uint8_t *data;
		size_t len;
		if (i & 1 && hl_l1_borrow(a->c, &id, &pin, &data, &len) == 0) {
			hl_buf *copy = hl_buf_copy(data, len);
			hl_l1_unpin(a->c, &pin);
			if (!buf_ok(&id, copy) || len != 200 + (size_t)k * 7)
				a->bad++;
			hl_buf_unref(copy);
		} else if (hl_l1_get(a->c, &id, &b) == 0) {
			if (!buf_ok(&id, b) || hl_buf_len(b) != 200 + (size_t)k * 7)
				a->bad++;
			hl_buf_unref(b);
		} else {
			b = buf_for(&id, 200 + (size_t)k * 7);
			hl_l1_put(a->c, &id, b);
			hl_buf_unref(b);
		}
		if (i % 1000 == 0)
			hl_l1_remove(a->c, &id);
	}
	return NULL;
}

/* Holds a borrow for a while, again and again, until the workers are done: garbage piles up past
 * the point where writers wait for readers (the wait must never close a cycle with a writer
 * that retires under its shard's lock and an LRU reader waiting for that lock). */
typedef struct slow_arg {
	hl_l1 *c;
	atomic_int stop;
} slow_arg;

static void *slow_borrower(void *p)
{
	slow_arg *a = p;
	hl_id id = id_of(0);
	while (!atomic_load(&a->stop)) {
		hl_l1_pin pin;
		const uint8_t *data;
		size_t len;
		if (hl_l1_borrow(a->c, &id, &pin, &data, &len) == 0) {
			usleep(20000);
			hl_l1_unpin(a->c, &pin);
		} else {
			hl_buf *b = buf_for(&id, 200);
			hl_l1_put(a->c, &id, b);
			hl_buf_unref(b);
		}
	}
	return NULL;
}

static void concurrent_mix(void **st)
{
	(void)st;
	for (int policy = HL_L1_SIEVE; policy <= HL_L1_LRU; policy++) {
		hl_l1 *c = hl_l1_new(300 << 10, 8 << 10, policy, 4);
		enum { T = 16 };
		pthread_t th[T], slow;
		warg a[T];
		slow_arg sa = {c, 0};
		pthread_create(&slow, NULL, slow_borrower, &sa);
		for (int t = 0; t < T; t++) {
			a[t] = (warg){c, t, 0};
			pthread_create(&th[t], NULL, worker, &a[t]);
		}
		for (int t = 0; t < T; t++) {
			pthread_join(th[t], NULL);
			assert_int_equal(a[t].bad, 0);
		}
		atomic_store(&sa.stop, 1);
		pthread_join(slow, NULL);
		hl_l1_stats s;
		hl_l1_stats_get(c, &s);
		assert_true(s.bytes <= s.capacity);
		assert_true(s.hits > 0 && s.evictions > 0);
		hl_l1_free(c); /* LeakSanitizer checks every reference was released */
	}
}

/* A borrowed entry is removed while others fill the cache far past its budget and grow every
 * shard's table: its bytes stay readable until the unpin, after which memory comes back. */
typedef struct garg {
	hl_l1 *c;
	int from, n;
} garg;

static void *filler(void *p)
{
	garg *a = p;
	for (int k = a->from; k < a->from + a->n; k++) {
		hl_id id = id_of(k);
		hl_buf *b = buf_for(&id, 1000);
		hl_l1_put(a->c, &id, b);
		hl_buf_unref(b);
	}
	return NULL;
}

static void borrow_outlives_eviction(void **st)
{
	(void)st;
	long base = hl_buf_live();
	hl_l1 *c = hl_l1_new(256 << 10, 8 << 10, HL_L1_SIEVE, 2);
	hl_id id = id_of(-1);
	hl_buf *b = buf_for(&id, 4000);
	hl_l1_put(c, &id, b);
	hl_buf_unref(b);
	hl_l1_pin pin;
	const uint8_t *data;
	size_t len;
	assert_int_equal(hl_l1_borrow(c, &id, &pin, &data, &len), 0);
	hl_l1_remove(c, &id);
	enum { T = 4, PER = 5000 };
	pthread_t th[T];
	garg a[T];
	for (int t = 0; t < T; t++) {
		a[t] = (garg){c, t * PER, PER};
		pthread_create(&th[t], NULL, filler, &a[t]);
	}
	for (int t = 0; t < T; t++)
		pthread_join(th[t], NULL);
	hl_buf *copy = hl_buf_copy(data, len); /* removed long ago, still readable: pinned */
	assert_true(buf_ok(&id, copy));
	hl_buf_unref(copy);
	assert_true(hl_buf_live() - base > 1000); /* the evicted buffers wait for the pin */
	hl_l1_unpin(c, &pin);
	garg more = {c, T * PER, 200}; /* writers poll again: the garbage goes */
	filler(&more);
	hl_l1_stats s;
	hl_l1_stats_get(c, &s);
	assert_true(hl_buf_live() - base <= (long)s.entries + 2 * 32);
	hl_l1_free(c);
	assert_int_equal(hl_buf_live(), base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hit_is_a_reference),
		cmocka_unit_test(bound_and_bypass),
		cmocka_unit_test(eviction_keeps_hot),
		cmocka_unit_test(concurrent_mix),
		cmocka_unit_test(borrow_outlives_eviction),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
