/* faultio.h — a fault-injecting I/O table (src/base/io.h) for the fault tests: it counts the
 * store's file calls and fails the fail_at-th one, or every one from it on, with ENOSPC, EIO or a
 * short write (write calls only: half the bytes, the rest left to the caller's retry); it can
 * count syncs only. tu_fault_count is the same counter for the allocation hook (base/alloc.h).
 * calls and injected are atomic: the store's background threads call too. */
#ifndef HL_TESTS_FAULTIO_H
#define HL_TESTS_FAULTIO_H
#include <stdatomic.h>
#include "base/io.h"

enum { TU_F_ENOSPC, TU_F_EIO, TU_F_SHORT };
extern const char *const tu_fault_names[]; /* "ENOSPC", "EIO", "short write" */

typedef struct tu_fault {
	_Atomic long calls;  /* counted so far */
	long fail_at;        /* the call to fail (1-based) */
	int kind;            /* TU_F_* */
	int persist;         /* fail every call from fail_at on */
	int syncs_only;      /* count and fail syncs (fdatasync, fsync) only */
	_Atomic int injected; /* a fault was injected since arming */
} tu_fault;
extern tu_fault tu_faults;
extern const hl_io tu_faulty_io;

/* Resets the counters and sets what fails; the table still has to be installed (hl_io_set). */
void tu_fault_arm(int kind, long fail_at, int persist, int syncs_only);
/* Counts one call; 1 when it is one to fail (errno set for ENOSPC/EIO), 2 for a short write. */
int tu_fault_count(int is_write, int is_sync);
/* The allocation hook's form: counts one allocation, nonzero when it is to fail. */
int tu_fault_alloc(void);

#endif
