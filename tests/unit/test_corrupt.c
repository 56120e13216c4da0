/* test_corrupt.c — bit rot: flip bits in segment files, then every read of an affected object
 * returns HL_CORRUPT (never bytes that do not hash to the id), unaffected objects still read back,
 * verify reports exactly the affected ids, a quarantined id stays reported, and putting the same
 * content again repairs it. A flip inside a zstd payload may land on bits the decoder never reads
 * (padding of the last bitstream): the object then still reads back verified, which is correct.
 * The scrubber's pass finds exactly what reads find, header flips included. Readers and the
 * scrubber that meet the same corrupt records at once never leave the index locked. HELIOS_SEED replays a run. */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"

enum { N = 300, MAXLEN = 40000 };

typedef struct obj {
	hl_id id;
	uint8_t *data;
	size_t len;
	int hit; /* a flipped bit lies inside its record */
	int may_survive; /* the flip is in a compressed payload: it may fall on bits zstd never reads */
	int reported;
} obj;

static obj objs[N];

/* The run's seed: HELIOS_SEED if set, else the clock times a per-test factor; printed to replay. */
static uint64_t test_seed(uint64_t factor)
{
	const char *env = getenv("HELIOS_SEED");
	uint64_t seed = env ? strtoull(env, NULL, 10) : (uint64_t)time(NULL) * factor;
	printf("# seed %llu\n", (unsigned long long)seed);
	return seed;
}

/* A store of N objects in segments of seg bytes; every big_every-th object (0: none) up to 1.5 MiB,
 * larger than the scrubber's window. */
static void make_store_sized(const char *dir, uint64_t *seed, uint64_t seg, int big_every)
{
	hl_store *s = tu_open(dir, HL_SYNC_NONE, seg);
	for (int i = 0; i < N; i++) {
		obj *o = &objs[i];
		o->len = (size_t)(tu_rand(seed) % (big_every && i % big_every == 0 ? 1536u << 10 : MAXLEN));
		o->data = malloc(o->len + 1);
		tu_fill(seed, o->data, o->len);
		if (i % 3 == 0) /* a third compress */
			memset(o->data, 'a', o->len * 3 / 4);
		o->hit = o->reported = o->may_survive = 0;
		assert_int_equal(hl_put(s, o->data, o->len, &o->id, NULL), 0);
	}
	hl_close(s);
}

static void make_store(const char *dir, uint64_t *seed) { make_store_sized(dir, seed, 256 << 10, 0); }

static obj *find(const hl_id *id)
{
	for (int i = 0; i < N; i++)
		if (hl_id_equal(&objs[i].id, id))
			return &objs[i];
	return NULL;
}

static void on_bad(const hl_id *id, int err, void *ctx)
{
	(void)ctx;
	obj *o = find(id);
	assert_non_null(o);
	assert_int_equal(err, HL_CORRUPT);
	o->reported++;
}

/* Every object reads back exactly or reports HL_CORRUPT; returns how many are corrupt. */
static int check_reads(hl_store *s, int expect_exact_hits)
{
	int corrupt = 0;
	for (int i = 0; i < N; i++) {
		obj *o = &objs[i];
		hl_buf *b = NULL;
		int err = hl_get(s, &o->id, &b);
		if (err == 0) {
			assert_int_equal(hl_buf_len(b), o->len);
			assert_memory_equal(hl_buf_data(b), o->data, o->len);
			hl_buf_unref(b);
			if (expect_exact_hits && o->hit && o->may_survive)
				o->hit = 0; /* the right bytes, verified: the flip changed nothing they depend on */
			if (expect_exact_hits)
				assert_false(o->hit);
		} else {
			assert_int_equal(err, HL_CORRUPT);
			assert_null(b);
			if (expect_exact_hits)
				assert_true(o->hit);
			corrupt++;
			/* the caller-buffer read never leaves unverified bytes either */
			uint8_t *dst = malloc(o->len + 1);
			memset(dst, 0xEE, o->len + 1);
			size_t len;
			assert_int_equal(hl_get_into(s, &o->id, dst, o->len, &len), HL_CORRUPT);
			for (size_t j = 0; j <= o->len; j++)
				assert_int_equal(dst[j], 0xEE); /* untouched */
			free(dst);
		}
	}
	return corrupt;
}

/* Flips one bit inside K chosen records (header or payload) and checks reads and verify. */
static void targeted_flips(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("corrupt");
	uint64_t seed = test_seed(1);
	make_store(dir, &seed);
	hl_store *s = tu_open(dir, HL_SYNC_NONE, 256 << 10);
	int k = 0;
	for (int i = 0; i < N; i += 1 + (int)(tu_rand(&seed) % 20)) {
		hl_stat sst;
		assert_int_equal(hl_stat_object(s, &objs[i].id, &sst), 0);
		char path[4200];
		tu_seg_path(dir, sst.segment, path, sizeof path);
		uint64_t off = sst.offset + tu_rand(&seed) % sst.stored_size;
		tu_flip_bit(path, off, (int)(tu_rand(&seed) % 8));
		objs[i].hit = 1;
		objs[i].may_survive = (sst.flags & HL_STAT_COMPRESSED) && off >= sst.offset + 64;
		k++;
	}
	hl_close(s);
	s = tu_open(dir, HL_SYNC_NONE, 256 << 10);
	int corrupt = check_reads(s, 1);
	for (int i = 0; i < N; i++)
		k -= objs[i].may_survive && !objs[i].hit; /* flips that changed nothing (seen above) */
	assert_int_equal(corrupt, k);
	hl_verify_report rep;
	assert_int_equal(hl_verify(s, 0, on_bad, NULL, NULL, &rep), HL_CORRUPT);
	for (int i = 0; i < N; i++)
		assert_int_equal(objs[i].reported, objs[i].hit); /* each affected id, once */
	assert_int_equal(rep.quarantined, k); /* the reads above quarantined them */
	hl_stats stats;
	assert_int_equal(hl_stats_get(s, &stats), 0);
	assert_int_equal(stats.quarantined, k);
	assert_int_equal(stats.objects, N - k);
	/* putting the same content again repairs the object */
	for (int i = 0; i < N; i++) {
		if (!objs[i].hit)
			continue;
		int created = 0;
		assert_int_equal(hl_put(s, objs[i].data, objs[i].len, NULL, &created), 0);
		assert_int_equal(created, 1);
		objs[i].hit = 0;
	}
	assert_int_equal(check_reads(s, 1), 0);
	assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &rep), 0);
	hl_close(s);
	for (int i = 0; i < N; i++)
		free(objs[i].data);
	tu_rmrf(dir);
	free(dir);
}

/* The scrubber's sequential walk finds exactly what reads find: bits flipped in payloads and in
 * record headers (a damaged header hides where its record ends: the records the index places in
 * the stretch are checked one by one), one full pass, every corrupt object quarantined. Scrubbed
 * in steps of step bytes (a step ends inside a segment and the next resumes there); a second pass
 * on the same handle finds nothing more. */
static void scrub_flips(uint64_t seg, int big_every, uint64_t step)
{
	char *dir = tu_tmpdir("corrupt");
	uint64_t seed = test_seed(7);
	make_store_sized(dir, &seed, seg, big_every);
	hl_store *s = tu_open(dir, HL_SYNC_NONE, seg);
	int headers = 0;
	for (int i = 0; i < N; i += 1 + (int)(tu_rand(&seed) % 12)) {
		hl_stat sst;
		assert_int_equal(hl_stat_object(s, &objs[i].id, &sst), 0);
		char path[4200];
		tu_seg_path(dir, sst.segment, path, sizeof path);
		int in_header = i % 3 == 1 || sst.stored_size <= 64; /* an empty object is all header */
		uint64_t off = sst.offset + (in_header ? tu_rand(&seed) % 64 : 64 + tu_rand(&seed) % (sst.stored_size - 64));
		tu_flip_bit(path, off, (int)(tu_rand(&seed) % 8));
		objs[i].hit = 1 + in_header;
		headers += in_header;
	}
	hl_close(s);
	s = tu_open(dir, HL_SYNC_NONE, seg);
	hl_stats stats;
	assert_int_equal(hl_stats_get(s, &stats), 0);
	uint64_t records = stats.objects; /* more than N when some were stored as chunks */
	int pass_done = 0, steps = 0;
	uint64_t found = 0;
	do {
		assert_int_equal(hl_scrub(s, step, &pass_done, &found), 0);
		steps++;
	} while (!pass_done);
	assert_int_equal(hl_stats_get(s, &stats), 0);
	assert_int_equal(stats.scrub_objects, records);
	int corrupt = check_reads(s, 0); /* quarantined ones say HL_CORRUPT; the rest read exactly */
	for (int i = 0; i < N; i++) {
		hl_buf *b;
		if (objs[i].hit == 2) /* a header flip always fails its check */
			assert_int_equal(hl_get(s, &objs[i].id, &b), HL_CORRUPT);
	}
	printf("# scrub in %d steps: %d header and some payload flips, %llu corrupt found, %d reads fail\n",
	       steps, headers, (unsigned long long)found, corrupt);
	assert_true(headers > 0);
	assert_int_equal(found, corrupt);
	uint64_t again = 0;
	assert_int_equal(hl_scrub(s, UINT64_MAX, &pass_done, &again), 0);
	assert_int_equal(pass_done, 1);
	assert_int_equal(again, 0);
	hl_close(s);
	for (int i = 0; i < N; i++)
		free(objs[i].data);
	tu_rmrf(dir);
	free(dir);
}

static void scrub_finds_every_flip(void **st)
{
	(void)st;
	scrub_flips(256 << 10, 0, UINT64_MAX);
}

/* Segments of 8 MiB holding objects of up to 1.5 MiB (those past 1 MiB stored as chunks): windows
 * of the walk end inside records (the cut record's start is kept, the rest read) and some records
 * are larger than a window. */
static void scrub_finds_every_flip_in_windows(void **st)
{
	(void)st;
	scrub_flips(8 << 20, 10, 300 << 10);
}

/* Flips random bits anywhere in the segment files: reads are exact or HL_CORRUPT, and verify
 * (run first, before any read) reports exactly the objects whose reads then fail. */
static void random_flips(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("corrupt");
	uint64_t seed = test_seed(31);
	make_store(dir, &seed);
	hl_store *s = tu_open(dir, HL_SYNC_NONE, 256 << 10);
	hl_stats stats;
	assert_int_equal(hl_stats_get(s, &stats), 0);
	hl_close(s);
	for (int f = 0; f < 40; f++) {
		uint32_t seg = 1 + (uint32_t)(tu_rand(&seed) % stats.segments);
		char path[4200];
		tu_seg_path(dir, seg, path, sizeof path);
		FILE *fp = fopen(path, "rb");
		fseek(fp, 0, SEEK_END);
		long size = ftell(fp);
		fclose(fp);
		tu_flip_bit(path, tu_rand(&seed) % (uint64_t)size, (int)(tu_rand(&seed) % 8));
	}
	s = tu_open(dir, HL_SYNC_NONE, 256 << 10);
	hl_verify_report rep;
	int vr = hl_verify(s, 0, on_bad, NULL, NULL, &rep);
	int reported = 0;
	for (int i = 0; i < N; i++)
		reported += objs[i].reported;
	hl_close(s);
	s = tu_open(dir, HL_SYNC_NONE, 256 << 10);
	int corrupt = check_reads(s, 0);
	for (int i = 0; i < N; i++) { /* quarantined by verify, so reads say corrupt too */
		hl_buf *b;
		if (objs[i].reported)
			assert_int_equal(hl_get(s, &objs[i].id, &b), HL_CORRUPT);
	}
	printf("# 40 random flips: %d objects corrupt, %d reported\n", corrupt, reported);
	assert_int_equal(corrupt, reported);
	assert_int_equal(vr, reported ? HL_CORRUPT : 0);
	hl_close(s);
	for (int i = 0; i < N; i++)
		free(objs[i].data);
	tu_rmrf(dir);
	free(dir);
}

/* Appends junk after the last record (as a crash mid-write or a bad disk might leave it): random
 * bytes, a torn copy of a real record, or a valid-looking header with an absurd length. Every
 * reopen drops the junk, keeps every object, and the store takes new writes after it. */
static void junk_after_tail(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("junk");
	uint64_t seed = test_seed(7);
	hl_store *s = tu_open(dir, HL_SYNC_ALWAYS, 0);
	enum { K = 20 };
	static uint8_t data[K][5000];
	hl_id ids[K + 200];
	int n = 0;
	for (; n < K; n++) {
		tu_fill(&seed, data[n], sizeof data[n]);
		assert_int_equal(hl_put(s, data[n], sizeof data[n], &ids[n], NULL), 0);
	}
	hl_close(s);
	char path[4200];
	tu_seg_path(dir, 1, path, sizeof path);
	for (int round = 0; round < 100; round++) {
		FILE *fp = fopen(path, "r+b");
		assert_non_null(fp);
		fseek(fp, 0, SEEK_END);
		long end = ftell(fp);
		uint8_t junk[6000];
		size_t len = 1 + (size_t)(tu_rand(&seed) % sizeof junk);
		int kind = (int)(tu_rand(&seed) % 3);
		tu_fill(&seed, junk, len);
		if (kind > 0) { /* start from a real record header, then tear or inflate it */
			fseek(fp, 64, SEEK_SET);
			size_t got = fread(junk, 1, len < 64 + 5000 ? len : 64 + 5000, fp);
			(void)got;
			if (kind == 2 && len >= 64) {
				junk[40] = 0xff; /* stored length far past the end of the file */
				junk[47] = 0x00;
			}
		}
		fseek(fp, end, SEEK_SET);
		fwrite(junk, 1, len, fp);
		fclose(fp);
		s = tu_open(dir, HL_SYNC_ALWAYS, 0);
		for (int i = 0; i < K; i++) {
			hl_buf *b;
			assert_int_equal(hl_get(s, &ids[i], &b), 0);
			hl_buf_unref(b);
		}
		if (round % 10 == 0) { /* and it still writes after the dropped junk */
			uint8_t fresh[100];
			tu_fill(&seed, fresh, sizeof fresh);
			assert_int_equal(hl_put(s, fresh, sizeof fresh, &ids[n++], NULL), 0);
		}
		hl_verify_report rep;
		assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &rep), 0);
		assert_int_equal(rep.objects, (uint64_t)n);
		hl_close(s);
	}
	tu_rmrf(dir);
	free(dir);
}

/* verify --deep's check: a store at rest agrees with itself; an older segment cut short (an
 * entry now points past its end) is found, while opening and reading the other objects go on. */
static void check_index_finds_cut_segment(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("check");
	hl_store *s = tu_open(dir, HL_SYNC_ALWAYS, 8192);
	uint64_t seed = 3, problems = 9;
	uint8_t data[3000];
	for (int i = 0; i < 12; i++) { /* several segments */
		tu_fill(&seed, data, sizeof data);
		assert_int_equal(hl_put(s, data, sizeof data, NULL, NULL), 0);
	}
	assert_int_equal(hl_check_index(s, &problems), 0);
	assert_int_equal(problems, 0);
	hl_close(s);
	char path[4200];
	tu_seg_path(dir, 1, path, sizeof path);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_int_equal(truncate(path, sb.st_size - 10), 0);
	s = tu_open(dir, HL_SYNC_ALWAYS, 8192);
	assert_int_equal(hl_check_index(s, &problems), HL_CORRUPT);
	assert_int_equal(problems, 1);
	hl_close(s);
	tu_rmrf(dir);
	free(dir);
}

/* Readers racing each other and the scrubber over corrupt records. */
typedef struct racer {
	hl_store *s;
	int start;
	int corrupt;
	pthread_barrier_t *go;
} racer;

static void *race_reads(void *arg)
{
	racer *r = arg;
	pthread_barrier_wait(r->go);
	for (int k = 0; k < N; k++) {
		obj *o = &objs[(r->start + k * 7) % N];
		hl_buf *b = NULL;
		int err = hl_get(r->s, &o->id, &b);
		if (err == 0)
			hl_buf_unref(b);
		else
			r->corrupt++;
	}
	return NULL;
}

static void on_hang(int sig)
{
	(void)sig;
	static const char msg[] = "readers of corrupt records hung (an index transaction left open)\n";
	if (write(2, msg, sizeof msg - 1) < 0) {
	}
	_exit(1);
}

/* Every record corrupt; four readers and the background scrubber meet the same records at once.
 * Each quarantine that finds the entry already moved by another must still release the index:
 * afterwards a put commits, the index flushes, and the store closes (it checks that every
 * transaction it began was ended). A fresh store each round (a quarantined record is not read
 * again); before the fix one round in four hung. A hang is caught by an alarm. */
static void racing_quarantines(void **st)
{
	(void)st;
	uint64_t seed = test_seed(13);
	signal(SIGALRM, on_hang);
	alarm(400);
	for (int round = 0; round < 20; round++) {
		char *dir = tu_tmpdir("corrupt-race");
		make_store(dir, &seed);
		hl_store *s = tu_open(dir, HL_SYNC_NONE, 256 << 10);
		for (int i = 0; i < N; i++) { /* one flip inside each payload */
			hl_stat sst;
			assert_int_equal(hl_stat_object(s, &objs[i].id, &sst), 0);
			char path[4200];
			tu_seg_path(dir, sst.segment, path, sizeof path);
			if (sst.stored_size > 64) /* past the 64-byte record header */
				tu_flip_bit(path, sst.offset + 64 + tu_rand(&seed) % (sst.stored_size - 64), 0);
		}
		hl_close(s);
		hl_options o;
		hl_options_init(&o);
		o.sync = HL_SYNC_NONE;
		o.segment_size = 256 << 10;
		o.l1_bytes = 0; /* every read goes to the store */
		assert_int_equal(hl_open(dir, &o, &s), 0);
		assert_int_equal(hl_scrub_background(s, 1u << 30, 0), 0);
		racer r[4];
		pthread_t t[4];
		pthread_barrier_t go;
		pthread_barrier_init(&go, NULL, 4);
		for (int i = 0; i < 4; i++) {
			r[i] = (racer){s, (int)(tu_rand(&seed) % N), 0, &go};
			assert_int_equal(pthread_create(&t[i], NULL, race_reads, &r[i]), 0);
		}
		for (int i = 0; i < 4; i++)
			pthread_join(t[i], NULL);
		pthread_barrier_destroy(&go);
		uint8_t fresh[64];
		tu_fill(&seed, fresh, sizeof fresh);
		assert_int_equal(hl_put(s, fresh, sizeof fresh, NULL, NULL), 0);
		assert_int_equal(hl_sync(s), 0);
		hl_close(s);
		for (int i = 0; i < N; i++)
			free(objs[i].data);
		tu_rmrf(dir);
		free(dir);
	}
	alarm(0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(targeted_flips),
		cmocka_unit_test(random_flips),
		cmocka_unit_test(scrub_finds_every_flip),
		cmocka_unit_test(scrub_finds_every_flip_in_windows),
		cmocka_unit_test(junk_after_tail),
		cmocka_unit_test(check_index_finds_cut_segment),
		cmocka_unit_test(racing_quarantines),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
