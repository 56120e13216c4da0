/* test_batch.c — the /v1/batch codec: encode then decode gives the items back (ids, lengths,
 * bytes, empty records too), decode then encode gives the same body, and malformed bodies are
 * refused with the offset of the fault: uppercase hex, leading zeros, a length past the end, a
 * missing newline, too many records for the caller's room, an empty body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "testutil.h"

static void test_round_trip(void **state)
{
	(void)state;
	uint64_t rng = 5;
	static uint8_t data[5][3000];
	size_t lens[5] = {0, 1, 9, 10, 3000};
	hl_put_item items[5];
	for (int i = 0; i < 5; i++) {
		tu_fill(&rng, data[i], lens[i]);
		items[i] = (hl_put_item){.data = data[i], .len = lens[i]};
		hl_hash(data[i], lens[i], &items[i].id);
	}
	size_t size = hl_batch_size(items, 5), len;
	uint8_t *body = malloc(size);
	assert_int_equal(hl_batch_encode(items, 5, body, size - 1, &len), HL_TOOBIG);
	assert_int_equal(hl_batch_encode(items, 5, body, size, &len), 0);
	assert_int_equal(len, size);
	hl_put_item back[5];
	size_t n, where;
	assert_int_equal(hl_batch_decode(body, len, back, 4, &n, &where), HL_TOOBIG);
	assert_int_equal(hl_batch_decode(body, len, back, 5, &n, &where), 0);
	assert_int_equal(n, 5);
	for (int i = 0; i < 5; i++) {
		assert_true(hl_id_equal(&back[i].id, &items[i].id));
		assert_int_equal(back[i].len, lens[i]);
		assert_true(back[i].check_id);
		if (lens[i])
			assert_memory_equal(back[i].data, data[i], lens[i]);
	}
	uint8_t *again = malloc(size);
	assert_int_equal(hl_batch_encode(back, n, again, size, &len), 0);
	assert_int_equal(len, size);
	assert_memory_equal(again, body, size);
	free(again);
	free(body);
}

static void test_malformed(void **state)
{
	(void)state;
	const char *id = "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262";
	char body[256];
	hl_put_item items[4];
	size_t n, where;
	snprintf(body, sizeof body, "%s 3\nabc", id);
	assert_int_equal(hl_batch_decode((uint8_t *)body, strlen(body), items, 4, &n, &where), 0);
	assert_int_equal(n, 1);
	struct {
		const char *text;
		size_t where;
	} bad[] = {
		{"AF1349B9F5F9A1A6A0404DEA36DCC9499BCB25C9ADC112B7CC9A93CAE41F3262 3\nabc", 0},
		{"%s 03\nabc", 0},
		{"%s 4\nabc", 66},
		{"%s 3abc", 0},
		{"%s 3\nabc%s", 70},
		{"%s  3\nabc", 0},
		{"%s 123456789012345678901\nabc", 0},
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		snprintf(body, sizeof body, bad[i].text, id, "x");
		assert_int_equal(hl_batch_decode((uint8_t *)body, strlen(body), items, 4, &n, &where), HL_INVALID);
		assert_int_equal(where, bad[i].where);
	}
	assert_int_equal(hl_batch_decode((uint8_t *)"", 0, items, 4, &n, &where), HL_INVALID);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_malformed),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
