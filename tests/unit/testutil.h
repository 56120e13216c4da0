/* testutil.h — helpers shared by the cmocka tests: temporary stores, deterministic random bytes,
 * file surgery on segment files. */
#ifndef HL_TESTUTIL_H
#define HL_TESTUTIL_H
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include "helios.h"

/* A fresh directory under $TMPDIR (or /tmp); removed by tu_rmrf. Caller frees. */
char *tu_tmpdir(const char *tag);
void tu_rmrf(const char *path);
/* Replaces the tree at to with a copy of the tree at from (regular files and directories). */
void tu_copy_tree(const char *from, const char *to);
/* Deterministic pseudo-random bytes (xorshift64*) from *state. */
void tu_fill(uint64_t *state, void *buf, size_t len);
uint64_t tu_rand(uint64_t *state);
/* Opens dir read-write with sync mode and small segments (for rolling), asserting success. */
hl_store *tu_open(const char *dir, hl_sync_mode sync, uint64_t segment_size);
/* Path of segment segno of the store at dir into buf. */
void tu_seg_path(const char *dir, uint32_t segno, char *buf, size_t cap);
/* Flips bit `bit` of byte `off` in file path. */
void tu_flip_bit(const char *path, uint64_t off, int bit);
/* Returns the iteration count from env var name, or def. */
int tu_env_int(const char *name, int def);
/* Runs only the tests whose names match $HELIOS_TEST_FILTER (a cmocka pattern), when it is set. */
void tu_test_filter(void);

/* The S3 test server (tests/s3/server.js: s3rver with SigV4 checked and conditional writes) on
 * 127.0.0.1 over directory dir, port 0 for a free one; plain: without conditional writes. It
 * dies with the test process. Bucket "helios", key "helios-test", secret "helios-secret". */
typedef struct tu_s3 {
	int pid;
	int port;
} tu_s3;
void tu_s3_start(tu_s3 *v, const char *dir, int port, int plain);
void tu_s3_stop(tu_s3 *v);
/* Options of a store on that bucket (backend "s3", prefix "fleet"); endpoint is a buffer of 64
 * bytes that must outlive the options. */
void tu_s3_options(hl_options *o, const tu_s3 *v, char *endpoint);

#endif
