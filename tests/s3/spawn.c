/* spawn.c — the S3 test server as a child process (see spawn.h). */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>
#include "spawn.h"

int s3_spawn(const char *server_js, const char *dir, int port, int plain, int *pid, int *bound,
             char *msg, unsigned msg_cap)
{
	int p[2];
	if (pipe(p))
		return snprintf(msg, msg_cap, "pipe failed"), -1;
	pid_t child = fork();
	if (child < 0)
		return snprintf(msg, msg_cap, "fork failed"), -1;
	if (child == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlives its parent */
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		char ps[16];
		snprintf(ps, sizeof ps, "%d", port);
		execlp("node", "node", server_js, dir, ps, plain ? "plain" : NULL, (char *)NULL);
		perror("node");
		_exit(127);
	}
	close(p[1]);
	FILE *f = fdopen(p[0], "r");
	char line[128] = "";
	int ok = f && fgets(line, sizeof line, f) && sscanf(line, "listening %d", bound) == 1;
	if (f)
		fclose(f);
	if (!ok) {
		s3_kill(child);
		snprintf(msg, msg_cap, "the S3 test server did not start (is node installed, and "
		         "tests/s3/node_modules? `make test` installs both): %s", line);
		return -1;
	}
	*pid = child;
	return 0;
}

void s3_kill(int pid)
{
	if (pid > 0) {
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
	}
}
