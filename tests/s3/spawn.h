/* spawn.h — starts the S3 test server (server.js beside this file, run by node) on 127.0.0.1 and
 * waits until it listens; used by the tests (through testutil) and the benchmarks. */
#ifndef HL_TESTS_S3_SPAWN_H
#define HL_TESTS_S3_SPAWN_H

/* Serves directory dir on port (0: a free one), without conditional writes when plain. The
 * server dies with the calling process. 0 with *pid and *bound set, or -1 with why in msg. */
int s3_spawn(const char *server_js, const char *dir, int port, int plain, int *pid, int *bound,
             char *msg, unsigned msg_cap);
/* Kills and reaps it. */
void s3_kill(int pid);

#endif
