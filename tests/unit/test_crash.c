/* test_crash.c — kill -9 at random moments, and torn tails (below). A child writes with
 * sync=always (single puts and batches, objects from 0 B to 300 KiB, and large objects of 1–3
 * MiB stored as chunks, by hl_put and through a streaming writer; small segments so rolls
 * happen) and reports each
 * acknowledged id through a pipe; the parent SIGKILLs it, reopens the store, and checks that every
 * acknowledged id reads back verified and that no partial object is visible (verify finds nothing).
 * Cycles: $HELIOS_CRASH_CYCLES (default 50). */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "testutil.h"

#define SEG_SIZE (1u << 20)

static void child_main(const char *dir, int fd, uint64_t seed)
{
	hl_options o;
	hl_options_init(&o);
	o.segment_size = SEG_SIZE;
	hl_store *s;
	if (hl_open(dir, &o, &s) != 0)
		_exit(3);
	static uint8_t data[16][300 << 10], large[3 << 20];
	for (;;) {
		uint64_t pick = tu_rand(&seed);
		if (pick % 8 == 0) { /* a large object: chunks, manifest, then the id map */
			size_t len = (1u << 20) + 1 + (size_t)(pick >> 8) % (2u << 20);
			tu_fill(&seed, large, len);
			hl_id id;
			if (pick % 16 == 0) { /* streamed through a writer, in pieces */
				hl_writer *w;
				if (hl_writer_open(s, NULL, &w))
					_exit(6);
				for (size_t off = 0; off < len; off += 100000)
					if (hl_writer_write(w, large + off, len - off < 100000 ? len - off : 100000))
						_exit(6);
				if (hl_writer_close(w, &id, NULL))
					_exit(6);
			} else if (hl_put(s, large, len, &id, NULL)) {
				_exit(6);
			}
			if (write(fd, id.b, HL_ID_LEN) != HL_ID_LEN)
				_exit(5);
			continue;
		}
		hl_put_item items[16];
		size_t n = tu_rand(&seed) % 3 == 0 ? 1 + tu_rand(&seed) % 16 : 1;
		for (size_t i = 0; i < n; i++) {
			uint64_t r = tu_rand(&seed);
			size_t len = r % 4 == 0 ? (size_t)(r >> 8) % sizeof data[i] : (size_t)(r >> 8) % 8192;
			tu_fill(&seed, data[i], len);
			if (r % 5 == 0) /* some compressible objects */
				memset(data[i], 'x', len / 2);
			items[i] = (hl_put_item){.data = data[i], .len = len};
		}
		if (hl_put_batch(s, items, n) != 0)
			_exit(4);
		for (size_t i = 0; i < n; i++) /* acknowledged: report it */
			if (write(fd, items[i].id.b, HL_ID_LEN) != HL_ID_LEN)
				_exit(5);
	}
}

typedef struct acked {
	hl_id *ids;
	size_t n, cap;
} acked;

static void add_id(acked *a, const uint8_t *b)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 1024;
		a->ids = realloc(a->ids, a->cap * sizeof(hl_id));
		assert_non_null(a->ids);
	}
	memcpy(a->ids[a->n++].b, b, HL_ID_LEN);
}

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Reads whole ids from the pipe until it closes or timeout_ms have passed (0: until closed). */
static void drain(int fd, acked *a, uint8_t *part, size_t *npart, int timeout_ms)
{
	struct pollfd p = {fd, POLLIN, 0};
	int64_t end = now_ms() + timeout_ms;
	for (;;) {
		int left = timeout_ms ? (int)(end - now_ms()) : -1;
		if (timeout_ms && left <= 0)
			return;
		if (poll(&p, 1, left) <= 0)
			return;
		uint8_t buf[HL_ID_LEN * 64];
		ssize_t r = read(fd, buf, sizeof buf);
		if (r <= 0)
			return;
		for (ssize_t i = 0; i < r; i++) {
			part[(*npart)++] = buf[i];
			if (*npart == HL_ID_LEN) {
				add_id(a, part);
				*npart = 0;
			}
		}
	}
}

static void crash_cycles(void **st)
{
	(void)st;
	int cycles = tu_env_int("HELIOS_CRASH_CYCLES", 50);
	char *dir = tu_tmpdir("crash");
	acked a = {0};
	int cycles_with_acks = 0;
	uint64_t rng = (uint64_t)time(NULL) ^ (uint64_t)getpid() << 20;
	printf("# crash test: %d cycles, seed %llu\n", cycles, (unsigned long long)rng);
	for (int c = 0; c < cycles; c++) {
		int p[2];
		assert_int_equal(pipe(p), 0);
		uint64_t seed = tu_rand(&rng);
		int64_t started = now_ms();
		pid_t pid = fork();
		assert_true(pid >= 0);
		if (pid == 0) {
			close(p[0]);
			child_main(dir, p[1], seed);
		}
		close(p[1]);
		size_t before = a.n;
		uint8_t part[HL_ID_LEN];
		size_t npart = 0;
		/* even cycles: kill at a random moment after fork (open and replay included); odd
		 * cycles: at a random moment after the child's first acknowledgement, so the write
		 * path is hit however slow the machine (or sanitizer) is */
		if (c % 2)
			while (a.n == before && now_ms() - started < 20000)
				drain(p[0], &a, part, &npart, 10);
		int wait_ms = 2 + (int)(tu_rand(&rng) % 60);
		drain(p[0], &a, part, &npart, wait_ms);
		kill(pid, SIGKILL);
		int status;
		assert_int_equal(waitpid(pid, &status, 0), pid);
		if (!(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
			fail_msg("child exited on its own (status %d) in cycle %d", status, c);
		drain(p[0], &a, part, &npart, 0); /* ids written before the kill were acknowledged */
		if (a.n > before)
			cycles_with_acks++;
		close(p[0]);

		hl_options o;
		hl_options_init(&o);
		o.segment_size = SEG_SIZE;
		hl_store *s;
		assert_int_equal(hl_open(dir, &o, &s), 0);
		for (size_t i = 0; i < a.n; i++) {
			hl_buf *b = NULL;
			int err = hl_get(s, &a.ids[i], &b);
			if (err) {
				char hex[65];
				hl_id_format(&a.ids[i], hex);
				fail_msg("cycle %d: acknowledged object %s: %s", c, hex, hl_strerror(err));
			}
			hl_id again;
			hl_hash(hl_buf_data(b), hl_buf_len(b), &again);
			assert_true(hl_id_equal(&again, &a.ids[i]));
			hl_buf_unref(b);
		}
		hl_verify_report rep;
		assert_int_equal(hl_verify(s, 0, NULL, NULL, NULL, &rep), 0);
		assert_int_equal(rep.corrupt + rep.quarantined + rep.io_errors, 0);
		assert_true(rep.objects >= 1 || a.n == 0);
		hl_close(s);
	}
	printf("# %zu acknowledged objects survived %d kills; %d children were killed after their "
	       "first acknowledgement, the rest while opening or before it\n", a.n, cycles, cycles_with_acks);
	assert_true(cycles_with_acks >= cycles / 2); /* the kills land in the write path, not only at open */
	free(a.ids);
	tu_rmrf(dir);
	free(dir);
}

static uint64_t file_size(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	return (uint64_t)st.st_size;
}

/* Torn tails: the newest segment cut short at every byte offset of its last two records, and,
 * keeping its length, zero-filled from every such offset. Each time a read-write open ends the
 * segment at the last whole record (the file is truncated there), the objects before it read
 * back, a torn one is absent, verify finds nothing wrong and counts exactly the whole ones, and
 * the store takes writes again. The two records are not in the index (it is put back as it was
 * before they were written), so recovery finds them by replaying the tail. */
static void torn_tails(void **st)
{
	(void)st;
	char *base = tu_tmpdir("torn");
	char pristine[4200], work[4200], seg[4300];
	snprintf(pristine, sizeof pristine, "%s/pristine", base);
	snprintf(work, sizeof work, "%s/work", base);
	enum { K = 5 };
	static const size_t lens[2] = {40, 70};
	uint64_t seed = 99;
	uint8_t data[K + 2][200];
	hl_id ids[K + 2];
	for (int i = 0; i < K + 2; i++) {
		size_t len = i < K ? 150 : lens[i - K];
		tu_fill(&seed, data[i], len);
		hl_hash(data[i], len, &ids[i]);
	}
	hl_store *s = tu_open(pristine, HL_SYNC_ALWAYS, 0);
	for (int i = 0; i < K; i++)
		assert_int_equal(hl_put(s, data[i], 150, NULL, NULL), 0);
	hl_close(s); /* these are indexed */
	tu_seg_path(pristine, 1, seg, sizeof seg);
	uint64_t end0 = file_size(seg);
	char index[4300], saved[4300];
	snprintf(index, sizeof index, "%s/index", pristine);
	snprintf(saved, sizeof saved, "%s/index.saved", base);
	tu_copy_tree(index, saved);
	fflush(NULL);
	pid_t pid = fork();
	if (pid == 0) { /* two more, then the process dies (its index flush, if any, undone below) */
		hl_store *c = tu_open(pristine, HL_SYNC_ALWAYS, 0);
		for (int i = K; i < K + 2; i++)
			if (hl_put(c, data[i], lens[i - K], NULL, NULL) != 0)
				_exit(1);
		_exit(0);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	/* the index as it was before the two: a flush the child may have made (a slow machine passes
	 * its one-second timer) was never durable as far as this test is concerned */
	tu_copy_tree(saved, index);
	uint64_t end1 = end0 + 64 + lens[0], end2 = end1 + 64 + lens[1]; /* random bytes: stored raw */
	assert_int_equal(file_size(seg), end2);
	unsigned rounds = 0;
	for (int zero = 0; zero < 2; zero++) {
		for (uint64_t off = end0; off < end2; off++) {
			tu_copy_tree(pristine, work);
			tu_seg_path(work, 1, seg, sizeof seg);
			int fd = open(seg, O_RDWR);
			assert_true(fd >= 0);
			if (zero) {
				static const uint8_t zeros[256];
				assert_int_equal(pwrite(fd, zeros, (size_t)(end2 - off), (off_t)off), (ssize_t)(end2 - off));
			} else {
				assert_int_equal(ftruncate(fd, (off_t)off), 0);
			}
			close(fd);
			s = tu_open(work, HL_SYNC_ALWAYS, 0);
			int whole1 = off >= end1;
			if (file_size(seg) != (whole1 ? end1 : end0))
				fail_msg("%s at %llu: the segment ends at %llu, not at the last whole record", zero ? "zeros" : "cut",
				         (unsigned long long)off, (unsigned long long)file_size(seg));
			for (int i = 0; i < K + 2; i++) {
				hl_buf *b = NULL;
				int want = i < K || (i == K && whole1) ? 0 : HL_NOTFOUND, err = hl_get(s, &ids[i], &b);
				if (err != want)
					fail_msg("%s at %llu: object %d: %s", zero ? "zeros" : "cut", (unsigned long long)off, i,
					         hl_strerror(err));
				hl_buf_unref(b);
			}
			hl_verify_report rep;
			assert_int_equal(hl_verify(s, 1, NULL, NULL, NULL, &rep), 0);
			assert_int_equal(rep.objects, (uint64_t)(K + whole1));
			assert_int_equal(hl_put(s, data[K + 1], lens[1], NULL, NULL), 0);
			hl_close(s);
			rounds++;
		}
	}
	printf("# torn tails: %u cuts and zero-filled tails over the last two records, each recovered to the "
	       "last whole record\n", rounds);
	tu_rmrf(base);
	free(base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {cmocka_unit_test(crash_cycles), cmocka_unit_test(torn_tails)};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
