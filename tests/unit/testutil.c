/* testutil.c — see testutil.h. */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "s3/spawn.h"
#include "testutil.h"

char *tu_tmpdir(const char *tag)
{
	const char *base = getenv("TMPDIR");
	char tmpl[4096];
	snprintf(tmpl, sizeof tmpl, "%s/helios-%s-XXXXXX", base && *base ? base : "/tmp", tag);
	char *d = mkdtemp(tmpl);
	assert_non_null(d);
	return strdup(d);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)st; (void)flag; (void)f;
	return remove(p);
}

void tu_rmrf(const char *path)
{
	nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static const char *copy_from, *copy_to;

static int copy_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
	(void)f;
	char dst[8192];
	snprintf(dst, sizeof dst, "%s%s", copy_to, p + strlen(copy_from));
	if (flag == FTW_D)
		return mkdir(dst, st->st_mode & 07777) && errno != EEXIST;
	if (flag != FTW_F)
		return 0;
	int in = open(p, O_RDONLY | O_CLOEXEC), out = open(dst, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st->st_mode & 07777);
	int bad = in < 0 || out < 0;
	char buf[1 << 16];
	ssize_t n;
	while (!bad && (n = read(in, buf, sizeof buf)) != 0)
		bad = n < 0 || write(out, buf, (size_t)n) != n;
	if (in >= 0)
		close(in);
	if (out >= 0)
		close(out);
	return bad;
}

void tu_copy_tree(const char *from, const char *to)
{
	tu_rmrf(to);
	copy_from = from, copy_to = to;
	assert_int_equal(nftw(from, copy_one, 16, FTW_PHYS), 0);
}

uint64_t tu_rand(uint64_t *s)
{
	uint64_t x = *s ? *s : 0x9e3779b97f4a7c15ull;
	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*s = x;
	return x * 0x2545f4914f6cdd1dull;
}

void tu_fill(uint64_t *state, void *buf, size_t len)
{
	uint8_t *p = buf;
	while (len >= 8) {
		uint64_t r = tu_rand(state);
		memcpy(p, &r, 8);
		p += 8;
		len -= 8;
	}
	uint64_t r = tu_rand(state);
	memcpy(p, &r, len);
}

hl_store *tu_open(const char *dir, hl_sync_mode sync, uint64_t segment_size)
{
	hl_options o;
	hl_options_init(&o);
	o.sync = sync;
	if (segment_size)
		o.segment_size = segment_size;
	hl_store *s = NULL;
	int err = hl_open(dir, &o, &s);
	if (err)
		fprintf(stderr, "hl_open(%s): %s\n", dir, hl_strerror(err));
	assert_int_equal(err, 0);
	return s;
}

void tu_seg_path(const char *dir, uint32_t segno, char *buf, size_t cap)
{
	snprintf(buf, cap, "%s/segments/%08u.seg", dir, segno);
}

void tu_flip_bit(const char *path, uint64_t off, int bit)
{
	int fd = open(path, O_RDWR);
	assert_true(fd >= 0);
	uint8_t b;
	assert_int_equal(pread(fd, &b, 1, (off_t)off), 1);
	b ^= (uint8_t)(1u << bit);
	assert_int_equal(pwrite(fd, &b, 1, (off_t)off), 1);
	close(fd);
}

int tu_env_int(const char *name, int def)
{
	const char *v = getenv(name);
	return v && *v ? atoi(v) : def;
}

void tu_test_filter(void)
{
	const char *f = getenv("HELIOS_TEST_FILTER");
	if (f && *f)
		cmocka_set_test_filter(f);
}

void tu_s3_start(tu_s3 *v, const char *dir, int port, int plain)
{
	char msg[300];
	if (s3_spawn(HELIOS_S3_SERVER, dir, port, plain, &v->pid, &v->port, msg, sizeof msg))
		fail_msg("%s", msg);
}

void tu_s3_stop(tu_s3 *v)
{
	s3_kill(v->pid);
	v->pid = 0;
}

void tu_s3_options(hl_options *o, const tu_s3 *v, char *endpoint)
{
	snprintf(endpoint, 64, "http://127.0.0.1:%d", v->port);
	o->backend = "s3";
	o->s3_endpoint = endpoint;
	o->s3_bucket = "helios";
	o->s3_prefix = "fleet";
	o->s3_access_key = "helios-test";
	o->s3_secret_key = "helios-secret";
	o->remote_timeout_ms = 5000;
	o->remote_retries = 1;
}
