/* io.h — the one table of file-system calls that all of helios's own file I/O goes through
 * (SQLite's VFS idea): segments, the marker, the L2 file, the scrub log and cursor, creating,
 * renaming and removing files and directories, and directory syncs. Tests replace it to fail any
 * call with ENOSPC, EIO or a short write, or to simulate a power cut (tests/powerloss.c).
 * Helpers return 0 or a positive errno and retry EINTR and short transfers. LMDB performs its own
 * I/O on the index file; it tells the table when that file is durable (outside_synced). */
#ifndef HL_BASE_IO_H
#define HL_BASE_IO_H
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/uio.h>

typedef struct hl_io {
	int (*open)(const char *path, int flags, mode_t mode);
	int (*close)(int fd);
	ssize_t (*pread)(int fd, void *buf, size_t n, off_t off);
	ssize_t (*preadv)(int fd, const struct iovec *iov, int cnt, off_t off);
	ssize_t (*pwrite)(int fd, const void *buf, size_t n, off_t off);
	ssize_t (*pwritev)(int fd, const struct iovec *iov, int cnt, off_t off);
	int (*fdatasync)(int fd);
	int (*fsync)(int fd);
	int (*ftruncate)(int fd, off_t len);
	int (*fstat)(int fd, struct stat *st);
	int (*mkdir)(const char *path, mode_t mode);
	int (*unlink)(const char *path);
	int (*rmdir)(const char *path);
	int (*rename)(const char *from, const char *to);
	int (*flock)(int fd, int op);
	/* Told, when not NULL, that a file written outside this table (the LMDB index under dir) has
	 * just been made durable; called with that index's writers stopped. */
	void (*outside_synced)(const char *dir);
} hl_io;

/* The table in use; the default calls the system directly. */
extern const hl_io *hl_io_cur;
extern const hl_io hl_io_system;
/* Installs a table (tests); NULL restores the system table. Not thread-safe against running I/O. */
void hl_io_set(const hl_io *io);

/* Helpers over hl_io_cur. All return 0 or a positive errno. */
int hl_io_open(const char *path, int flags, mode_t mode, int *fd);
int hl_io_close(int fd);
/* Reads exactly n bytes at off; EIO-free short read at end of file yields HL_IO_SHORT. */
#define HL_IO_SHORT (-1)
int hl_io_pread_full(int fd, void *buf, size_t n, uint64_t off);
int hl_io_preadv_full(int fd, struct iovec *iov, int cnt, uint64_t off);
int hl_io_pwrite_full(int fd, const void *buf, size_t n, uint64_t off);
int hl_io_pwritev_full(int fd, struct iovec *iov, int cnt, uint64_t off);
int hl_io_datasync(int fd);
int hl_io_truncate(int fd, uint64_t len);
int hl_io_size(int fd, uint64_t *size);
int hl_io_mkdir(const char *path, mode_t mode); /* EEXIST is success */
int hl_io_unlink(const char *path);            /* ENOENT is success */
int hl_io_rmdir(const char *path);             /* ENOENT is success */
int hl_io_rename(const char *from, const char *to);
/* Reads a small file whole: up to cap bytes of path into buf, *n of them. */
int hl_io_read_file(const char *path, void *buf, size_t cap, size_t *n);
/* Writes data to path durably: a temporary file beside it, synced, renamed over path, and the
 * directory synced; a crash leaves the old file or the new one, never a mix. */
int hl_io_replace_file(const char *path, const void *data, size_t len);
/* fsyncs the directory so a created or removed name is durable. */
int hl_io_sync_dir(const char *dir);

#endif
