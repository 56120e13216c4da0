/* io.c — the system file-call table and the retrying helpers every helios file access uses. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>
#include "base/io.h"
#include "base/alloc.h"

static int sys_open(const char *p, int f, mode_t m) { return open(p, f | O_CLOEXEC, m); }

const hl_io hl_io_system = {
	.open = sys_open,
	.close = close,
	.pread = pread,
	.preadv = preadv,
	.pwrite = pwrite,
	.pwritev = pwritev,
	.fdatasync = fdatasync,
	.fsync = fsync,
	.ftruncate = ftruncate,
	.fstat = fstat,
	.mkdir = mkdir,
	.unlink = unlink,
	.rmdir = rmdir,
	.rename = rename,
	.flock = flock,
};
const hl_io *hl_io_cur = &hl_io_system;

void hl_io_set(const hl_io *io) { hl_io_cur = io ? io : &hl_io_system; }

int hl_io_open(const char *path, int flags, mode_t mode, int *fd)
{
	int r;
	do
		r = hl_io_cur->open(path, flags, mode);
	while (r < 0 && errno == EINTR);
	if (r < 0)
		return errno ? errno : EIO;
	*fd = r;
	return 0;
}

int hl_io_close(int fd)
{
	return hl_io_cur->close(fd) < 0 && errno != EINTR ? errno : 0;
}

/* Advances an iovec array past n transferred bytes. */
static void iov_advance(struct iovec **iov, int *cnt, size_t n)
{
	while (*cnt > 0 && n >= (*iov)->iov_len) {
		n -= (*iov)->iov_len;
		(*iov)++;
		(*cnt)--;
	}
	if (*cnt > 0) {
		(*iov)->iov_base = (char *)(*iov)->iov_base + n;
		(*iov)->iov_len -= n;
	}
}

/* Moves all of iov at off, retrying EINTR and short transfers. A read that meets the end of the
 * file returns HL_IO_SHORT; a write that makes no progress returns EIO. */
static int transfer_full(int fd, struct iovec *iov, int cnt, uint64_t off, int is_write)
{
	while (cnt > 0 && iov->iov_len == 0)
		iov++, cnt--;
	while (cnt > 0) {
		int n = cnt > IOV_MAX ? IOV_MAX : cnt;
		ssize_t r = is_write ? hl_io_cur->pwritev(fd, iov, n, (off_t)off)
		                  : hl_io_cur->preadv(fd, iov, n, (off_t)off);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			return errno ? errno : EIO;
		}
		if (r == 0)
			return is_write ? EIO : HL_IO_SHORT;
		off += (uint64_t)r;
		iov_advance(&iov, &cnt, (size_t)r);
	}
	return 0;
}

int hl_io_preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	return transfer_full(fd, iov, cnt, off, 0);
}

int hl_io_pread_full(int fd, void *buf, size_t n, uint64_t off)
{
	struct iovec v = {buf, n};
	return hl_io_preadv_full(fd, &v, 1, off);
}

int hl_io_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off)
{
	return transfer_full(fd, iov, cnt, off, 1);
}

int hl_io_pwrite_full(int fd, const void *buf, size_t n, uint64_t off)
{
	struct iovec v = {(void *)buf, n};
	return hl_io_pwritev_full(fd, &v, 1, off);
}

int hl_io_datasync(int fd)
{
	int r;
	do
		r = hl_io_cur->fdatasync(fd);
	while (r < 0 && errno == EINTR);
	return r < 0 ? (errno ? errno : EIO) : 0;
}

int hl_io_truncate(int fd, uint64_t len)
{
	int r;
	do
		r = hl_io_cur->ftruncate(fd, (off_t)len);
	while (r < 0 && errno == EINTR);
	return r < 0 ? (errno ? errno : EIO) : 0;
}

int hl_io_size(int fd, uint64_t *size)
{
	struct stat st;
	if (hl_io_cur->fstat(fd, &st) < 0)
		return errno ? errno : EIO;
	*size = (uint64_t)st.st_size;
	return 0;
}

int hl_io_mkdir(const char *path, mode_t mode)
{
	if (hl_io_cur->mkdir(path, mode) < 0 && errno != EEXIST)
		return errno ? errno : EIO;
	return 0;
}

int hl_io_sync_dir(const char *dir)
{
	int fd, err = hl_io_open(dir, O_RDONLY | O_DIRECTORY, 0, &fd);
	if (err)
		return err;
	int r;
	do
		r = hl_io_cur->fsync(fd);
	while (r < 0 && errno == EINTR);
	err = r < 0 ? (errno ? errno : EIO) : 0;
	hl_io_close(fd);
	return err;
}

int hl_io_unlink(const char *path)
{
	return hl_io_cur->unlink(path) < 0 && errno != ENOENT ? (errno ? errno : EIO) : 0;
}

int hl_io_rmdir(const char *path)
{
	return hl_io_cur->rmdir(path) < 0 && errno != ENOENT ? (errno ? errno : EIO) : 0;
}

int hl_io_rename(const char *from, const char *to)
{
	return hl_io_cur->rename(from, to) < 0 ? (errno ? errno : EIO) : 0;
}

int hl_io_read_file(const char *path, void *buf, size_t cap, size_t *n)
{
	int fd, err = hl_io_open(path, O_RDONLY, 0, &fd);
	*n = 0;
	if (err)
		return err;
	while (!err && *n < cap) {
		ssize_t r = hl_io_cur->pread(fd, (char *)buf + *n, cap - *n, (off_t)*n);
		if (r < 0 && errno != EINTR)
			err = errno ? errno : EIO;
		else if (r == 0)
			break;
		else if (r > 0)
			*n += (size_t)r;
	}
	hl_io_close(fd);
	return err;
}

int hl_io_replace_file(const char *path, const void *data, size_t len)
{
	size_t n = strlen(path);
	char *tmp = hl_malloc(n + 5), *dir = hl_malloc(n + 2);
	if (!tmp || !dir) {
		free(tmp);
		free(dir);
		return ENOMEM;
	}
	snprintf(tmp, n + 5, "%s.tmp", path);
	memcpy(dir, path, n + 1);
	char *slash = strrchr(dir, '/');
	if (slash)
		slash[slash == dir] = '\0'; /* "/x" keeps "/" */
	else
		strcpy(dir, ".");
	int fd, err = hl_io_open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644, &fd);
	if (!err) {
		err = hl_io_pwrite_full(fd, data, len, 0);
		if (!err)
			err = hl_io_datasync(fd);
		int cerr = hl_io_close(fd);
		err = err ? err : cerr;
	}
	if (!err)
		err = hl_io_rename(tmp, path);
	if (err)
		hl_io_unlink(tmp);
	else
		err = hl_io_sync_dir(dir);
	free(tmp);
	free(dir);
	return err;
}
