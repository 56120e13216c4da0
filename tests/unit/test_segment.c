/* test_segment.c — the segment set's descriptors under removal. A hold keeps a removed file's
 * descriptor open and its number naming that file until the hold is released; a new hold of a
 * removed segment fails ENOENT; the descriptor is closed by whichever comes last, the removal or
 * the last release. Readers in four threads hold and read segments while another thread removes
 * them and creates new ones (which would take the closed numbers): every read sees the header of
 * the segment it asked for, never another file's. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sched.h>
#include <unistd.h>
#include "testutil.h"
#include "base/io.h"
#include "store/record.h"
#include "store/segment.h"

static int is_open(int fd)
{
	return fcntl(fd, F_GETFD) != -1;
}

/* The segment number in the header read through fd, or 0 when it does not read as one. */
static uint32_t header_of(int fd)
{
	uint8_t h[HL_SEG_HDR_LEN];
	uint32_t no;
	if (hl_io_pread_full(fd, h, sizeof h, 0) || hl_seg_hdr_decode(h, sizeof h, &no))
		return 0;
	return no;
}

static void hold_outlives_removal(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("segs");
	hl_segset ss;
	assert_int_equal(hl_segs_open(&ss, dir, 0, 1 << 20), 0);
	for (uint32_t n = 1; n <= 3; n++)
		assert_int_equal(hl_segs_activate(&ss, n, HL_SEG_HDR_LEN, 1), 0);
	char path[4096];
	struct stat sb;

	/* held across the removal: still open, still this file; closed by the release */
	int fd, fd2;
	assert_int_equal(hl_segs_hold(&ss, 1, &fd), 0);
	assert_int_equal(hl_segs_hold(&ss, 1, &fd2), 0);
	assert_int_equal(fd, fd2);
	assert_int_equal(hl_segs_remove(&ss, 1), 0);
	hl_segs_path(&ss, 1, path, sizeof path);
	assert_int_equal(stat(path, &sb), -1);
	assert_int_equal(errno, ENOENT);
	assert_true(is_open(fd));
	assert_int_equal(header_of(fd), 1);
	assert_int_equal(hl_segs_hold(&ss, 1, &fd2), ENOENT); /* no new holds */
	hl_segs_release(&ss, 1);
	assert_true(is_open(fd)); /* one hold left */
	hl_segs_release(&ss, 1);
	assert_false(is_open(fd));

	/* not held: closed by the removal itself */
	assert_int_equal(hl_segs_hold(&ss, 2, &fd), 0);
	hl_segs_release(&ss, 2);
	assert_true(is_open(fd));
	assert_int_equal(hl_segs_remove(&ss, 2), 0);
	assert_false(is_open(fd));
	assert_int_equal(hl_segs_hold(&ss, 2, &fd), ENOENT);

	/* a segment never opened, and numbers past the first directory (it grows) */
	assert_int_equal(hl_segs_hold(&ss, 7, &fd), ENOENT);
	assert_int_equal(hl_segs_activate(&ss, 40000, HL_SEG_HDR_LEN, 1), 0);
	assert_int_equal(hl_segs_hold(&ss, 40000, &fd), 0);
	assert_int_equal(header_of(fd), 40000);
	assert_int_equal(hl_segs_hold(&ss, 3, &fd2), 0); /* the chunks before it are still there */
	assert_int_equal(header_of(fd2), 3);
	hl_segs_release(&ss, 3);
	hl_segs_release(&ss, 40000);
	uint64_t bytes, count;
	assert_int_equal(hl_segs_bytes(&ss, &bytes, &count), 0);
	assert_int_equal(count, 2);
	assert_int_equal(bytes, 2 * HL_SEG_HDR_LEN);
	hl_segs_close(&ss);
	assert_false(is_open(fd));
	tu_rmrf(dir);
	free(dir);
}

enum { READERS = 4, ROUNDS = 300 };

typedef struct churn {
	hl_segset ss;
	_Atomic uint32_t newest; /* segments 1..newest were made; those below lowest removed */
	_Atomic uint32_t lowest;
	atomic_int stop;
	atomic_ulong reads, gone, wrong;
} churn;

static void *reader(void *arg)
{
	churn *c = arg;
	uint64_t rng = (uint64_t)(uintptr_t)&rng;
	while (!atomic_load(&c->stop)) {
		uint32_t lo = atomic_load(&c->lowest), hi = atomic_load(&c->newest);
		uint32_t seg = lo + (uint32_t)(tu_rand(&rng) % (hi - lo + 1));
		int fd, err = hl_segs_hold(&c->ss, seg, &fd);
		if (err == ENOENT) {
			atomic_fetch_add(&c->gone, 1);
			continue;
		}
		assert_int_equal(err, 0);
		if (header_of(fd) != seg)
			atomic_fetch_add(&c->wrong, 1);
		hl_segs_release(&c->ss, seg);
		atomic_fetch_add(&c->reads, 1);
	}
	return NULL;
}

static void removal_under_readers(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("segs-churn");
	static churn c;
	memset(&c, 0, sizeof c);
	assert_int_equal(hl_segs_open(&c.ss, dir, 0, 1 << 20), 0);
	for (uint32_t n = 1; n <= 8; n++)
		assert_int_equal(hl_segs_activate(&c.ss, n, HL_SEG_HDR_LEN, 1), 0);
	atomic_store(&c.newest, 8);
	atomic_store(&c.lowest, 1);
	pthread_t t[READERS];
	for (int i = 0; i < READERS; i++)
		assert_int_equal(pthread_create(&t[i], NULL, reader, &c), 0);
	/* each round: a new segment (it takes the lowest free descriptor number, often the one the
	 * last removal closed), then the oldest removed while readers may hold it */
	for (uint32_t r = 0; r < ROUNDS; r++) {
		uint32_t n = atomic_load(&c.newest) + 1;
		assert_int_equal(hl_segs_activate(&c.ss, n, HL_SEG_HDR_LEN, 1), 0);
		atomic_store(&c.newest, n);
		uint32_t old = atomic_load(&c.lowest);
		assert_int_equal(hl_segs_remove(&c.ss, old), 0);
		atomic_store(&c.lowest, old + 1);
		sched_yield();
	}
	atomic_store(&c.stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(t[i], NULL);
	fprintf(stderr, "segments: %lu reads, %lu found removed, %lu of another file\n",
	        (unsigned long)c.reads, (unsigned long)c.gone, (unsigned long)c.wrong);
	assert_true(c.reads > 0);
	assert_int_equal(c.wrong, 0);
	hl_segs_close(&c.ss);
	tu_rmrf(dir);
	free(dir);
}

/* Bytes the file system has allocated to segment segno. */
static uint64_t allocated(hl_segset *ss, uint32_t segno)
{
	char path[4200];
	struct stat sb;
	hl_segs_path(ss, segno, path, sizeof path);
	assert_int_equal(stat(path, &sb), 0);
	return (uint64_t)sb.st_blocks * 512;
}

/* Appends len bytes at the position the writer hands out, as a commit does. */
static void append(hl_segset *ss, uint64_t len, uint32_t *segno)
{
	uint64_t off;
	static uint8_t zero[64 << 10];
	assert_int_equal(hl_segs_reserve(ss, len, segno, &off), 0);
	int fd;
	assert_int_equal(hl_segs_hold(ss, *segno, &fd), 0);
	for (uint64_t done = 0; done < len; done += sizeof zero)
		assert_int_equal(hl_io_pwrite_full(fd, zero, len - done < sizeof zero ? len - done : sizeof zero, off + done), 0);
	hl_segs_release(ss, *segno);
}

/* The writer reserves the active segment's space ahead of its tail without changing its size, and
 * gives back what it did not use when the segment is sealed, when the set closes, and when a
 * segment that a crash left with a reservation is made active again. Skipped where the file
 * system refuses fallocate. */
static void reservation_given_back(void **st)
{
	(void)st;
	char *dir = tu_tmpdir("segres");
	hl_segset ss;
	uint32_t segno, first;
	uint64_t size, seg = 64 << 20;
	char probe[4200];
	snprintf(probe, sizeof probe, "%s/probe", dir);
	int pfd = open(probe, O_RDWR | O_CREAT, 0644);
	assert_true(pfd >= 0);
	int can = fallocate(pfd, FALLOC_FL_KEEP_SIZE, 0, 1 << 20) == 0;
	close(pfd);
	if (!can) {
		fprintf(stderr, "segments: this file system refuses fallocate: skipped\n");
		tu_rmrf(dir);
		free(dir);
		skip();
	}
	assert_int_equal(hl_segs_open(&ss, dir, 0, seg), 0);
	append(&ss, 100 << 10, &first);
	assert_int_equal(hl_segs_size(&ss, first, &size), 0);
	assert_int_equal(size, HL_SEG_HDR_LEN + (100 << 10)); /* the size is what was written */
	assert_true(allocated(&ss, first) >= (4u << 20));      /* the space ahead of it is reserved */
	for (int i = 0; i < 700; i++) /* past the segment's size: the writer rolls to the next */
		append(&ss, 100 << 10, &segno);
	assert_int_not_equal(segno, first);
	assert_true(allocated(&ss, first) <= seg + (1 << 20)); /* sealed: nothing reserved past it */
	assert_true(allocated(&ss, segno) >= (4u << 20));
	pid_t pid = fork(); /* a writer that dies with space reserved */
	if (pid == 0) {
		append(&ss, 100 << 10, &segno);
		_exit(allocated(&ss, segno) >= (4u << 20) ? 0 : 1);
	}
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	uint64_t tail;
	assert_int_equal(hl_segs_size(&ss, segno, &tail), 0);
	ss.active = 0; /* closed as the dead writer left it: without giving its reservation back */
	hl_segs_close(&ss);
	assert_int_equal(hl_segs_open(&ss, dir, 0, seg), 0);
	assert_true(allocated(&ss, segno) >= (4u << 20)); /* the child's reservation outlived it */
	assert_int_equal(hl_segs_activate(&ss, segno, tail, 0), 0);
	assert_true(allocated(&ss, segno) <= tail + (1 << 20)); /* given back when made active again */
	append(&ss, 100 << 10, &segno);
	assert_true(allocated(&ss, segno) >= (4u << 20));
	char path[4200];
	hl_segs_path(&ss, segno, path, sizeof path);
	hl_segs_close(&ss);
	struct stat sb;
	assert_int_equal(stat(path, &sb), 0);
	assert_true((uint64_t)sb.st_blocks * 512 <= tail + (100 << 10) + (1 << 20)); /* and at close */
	tu_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(hold_outlives_removal),
		cmocka_unit_test(removal_under_readers),
		cmocka_unit_test(reservation_given_back),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
