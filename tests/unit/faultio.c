/* faultio.c — the fault-injecting I/O table of faultio.h. */
#include <errno.h>
#include <sys/file.h>
#include <unistd.h>
#include "faultio.h"

const char *const tu_fault_names[] = {"ENOSPC", "EIO", "short write"};
tu_fault tu_faults;

void tu_fault_arm(int kind, long fail_at, int persist, int syncs_only)
{
	tu_faults.calls = 0;
	tu_faults.injected = 0;
	tu_faults.kind = kind;
	tu_faults.fail_at = fail_at;
	tu_faults.persist = persist;
	tu_faults.syncs_only = syncs_only;
}

int tu_fault_count(int is_write, int is_sync)
{
	if (tu_faults.syncs_only && !is_sync)
		return 0;
	long n = ++tu_faults.calls;
	if (tu_faults.persist ? n < tu_faults.fail_at : n != tu_faults.fail_at)
		return 0;
	if (tu_faults.kind == TU_F_SHORT) {
		if (!is_write)
			return 0;
		tu_faults.injected = 1;
		return 2;
	}
	tu_faults.injected = 1;
	errno = tu_faults.kind == TU_F_ENOSPC ? ENOSPC : EIO;
	return 1;
}

int tu_fault_alloc(void)
{
	return tu_fault_count(0, 0);
}

static int hit(void) { return tu_fault_count(0, 0); }
static int f_open(const char *p, int fl, mode_t m) { return hit() ? -1 : hl_io_system.open(p, fl, m); }
static ssize_t f_pread(int fd, void *b, size_t n, off_t o) { return hit() ? -1 : hl_io_system.pread(fd, b, n, o); }
static ssize_t f_preadv(int fd, const struct iovec *v, int c, off_t o) { return hit() ? -1 : hl_io_system.preadv(fd, v, c, o); }
static ssize_t f_pwrite(int fd, const void *b, size_t n, off_t o)
{
	int h = tu_fault_count(1, 0);
	if (h == 1)
		return -1;
	if (h == 2 && n > 1)
		n /= 2; /* short write: half now, the rest on the retry */
	return hl_io_system.pwrite(fd, b, n, o);
}
static ssize_t f_pwritev(int fd, const struct iovec *v, int c, off_t o)
{
	int h = tu_fault_count(1, 0);
	if (h == 1)
		return -1;
	if (h == 2 && v[0].iov_len > 1)
		return hl_io_system.pwrite(fd, v[0].iov_base, v[0].iov_len / 2, o);
	return hl_io_system.pwritev(fd, v, c, o);
}
static int f_fdatasync(int fd) { return tu_fault_count(0, 1) ? -1 : hl_io_system.fdatasync(fd); }
static int f_fsync(int fd) { return tu_fault_count(0, 1) ? -1 : hl_io_system.fsync(fd); }
static int f_ftruncate(int fd, off_t l) { return hit() ? -1 : hl_io_system.ftruncate(fd, l); }
static int f_fstat(int fd, struct stat *st) { return hit() ? -1 : hl_io_system.fstat(fd, st); }
static int f_mkdir(const char *p, mode_t m) { return hit() ? -1 : hl_io_system.mkdir(p, m); }
static int f_unlink(const char *p) { return hit() ? -1 : hl_io_system.unlink(p); }
static int f_rmdir(const char *p) { return hit() ? -1 : hl_io_system.rmdir(p); }
static int f_rename(const char *a, const char *b) { return hit() ? -1 : hl_io_system.rename(a, b); }
static int f_flock(int fd, int op) { return hit() ? -1 : hl_io_system.flock(fd, op); }

const hl_io tu_faulty_io = {
	.open = f_open, .close = close, .pread = f_pread, .preadv = f_preadv, .pwrite = f_pwrite,
	.pwritev = f_pwritev, .fdatasync = f_fdatasync, .fsync = f_fsync, .ftruncate = f_ftruncate,
	.fstat = f_fstat, .mkdir = f_mkdir, .unlink = f_unlink, .rmdir = f_rmdir, .rename = f_rename,
	.flock = f_flock,
};
