/* detach: see detach.h */
#define _GNU_SOURCE
#include "detach.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The command's side: the daemon's status becomes the command's. */
static void wait_for_daemon(int fd, pid_t pid)
{
	char c;
	ssize_t n;
	int st;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	if (n == 1)
		_exit(0);
	/* The daemon ended before it was ready: it has said why on stderr. */
	while (waitpid(pid, &st, 0) < 0) {
		if (errno != EINTR) {
			fprintf(stderr, "agentbayfs: the daemon ended before the mount was ready\n");
			_exit(1);
		}
	}
	if (WIFEXITED(st))
		_exit(WEXITSTATUS(st) ? WEXITSTATUS(st) : 1);
	fprintf(stderr, "agentbayfs: the daemon was killed by signal %d (%s) before the mount was ready\n",
		WTERMSIG(st), strsignal(WTERMSIG(st)));
	_exit(1);
}

int detach_begin(struct detach *d, bool foreground)
{
	int p[2];

	d->ready_fd = -1;
	if (foreground)
		return 0;
	if (pipe2(p, O_CLOEXEC) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		return -e;
	}
	if (pid > 0) {
		close(p[1]);
		wait_for_daemon(p[0], pid);
	}
	close(p[0]);
	d->ready_fd = p[1];
	return 0;
}

void detach_ready(struct detach *d)
{
	char ok = 0;

	/* No directory of the caller's kept busy (an unmount of it would fail). */
	if (chdir("/") < 0) {
		/* "/" is always there; nothing depends on the directory. */
	}
	if (d->ready_fd < 0)
		return;
	/* Out of the caller's session: its terminal's hangup and Ctrl-C are no
	 * longer the daemon's. Until now they were, so an interrupted start
	 * ends both. */
	setsid();
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
		dup2(null, 2);
		if (null > 2)
			close(null);
	}
	while (write(d->ready_fd, &ok, 1) < 0 && errno == EINTR)
		;
	close(d->ready_fd);
	d->ready_fd = -1;
}
