#define _GNU_SOURCE
#include "run_uids.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fds.h"

/* Rounds of kill(-1) a sweep makes. Linux's kill(-1) reports success as
 * long as any other process exists, so "until none is left" cannot be
 * asked of it. One round suffices (a fork racing it fails, since the
 * parent has a fatal signal pending); more are cheap insurance. */
#define SWEEP_ROUNDS 3

/* Raw system calls only: the guard runs this in a forked copy of a threaded
 * process, where glibc's fork() could wait on a lock another thread held at
 * the time of the copy, and its setresuid() would try to reach threads that
 * are not there. */
void run_uids_sweep(const struct run_uids *ru)
{
	for (unsigned s = 0; s < ru->count; s++) {
		pid_t pid = (pid_t)syscall(SYS_clone, (unsigned long)SIGCHLD, 0UL, 0UL, 0UL, 0UL);
		if (pid < 0)
			continue;
		if (pid == 0) {
			uid_t u = ru->uid[s];
			/* As the uid itself, kill(-1) reaches exactly its
			 * processes, in every pid namespace below ours. */
			if (syscall(SYS_setresgid, u, u, u) < 0 || syscall(SYS_setresuid, u, u, u) < 0)
				syscall(SYS_exit_group, 1);
			for (int i = 0; i < SWEEP_ROUNDS; i++)
				syscall(SYS_kill, -1, SIGKILL);
			syscall(SYS_exit_group, 0);
		}
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
	}
}

static void close_lock_fds(struct run_uids *ru)
{
	for (unsigned i = 0; i < ru->nlocks; i++)
		close(ru->lock_fd[i]);
	ru->nlocks = 0;
}

int run_uids_claim(struct run_uids *ru, uid_t base, unsigned count, const char *lock_dir,
		   char *err, size_t errsz)
{
	unsigned need = (count + RUN_UIDS_CHUNK - 1) / RUN_UIDS_CHUNK;
	unsigned *chunk = NULL;
	struct stat st;
	int dfd = -1, rc = 0;

	memset(ru, 0, sizeof(*ru));
	ru->guard_fd = -1;
	if (count == 0 || need > RUN_UIDS_SPAN / RUN_UIDS_CHUNK) {
		snprintf(err, errsz, "cannot give %u runs a uid each: at most %u", count, RUN_UIDS_SPAN);
		return -EINVAL;
	}
	ru->uid = calloc(count, sizeof(*ru->uid));
	ru->lock_fd = calloc(need, sizeof(*ru->lock_fd));
	chunk = calloc(need, sizeof(*chunk));
	if (!ru->uid || !ru->lock_fd || !chunk) {
		snprintf(err, errsz, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	if (mkdir(lock_dir, 0700) < 0 && errno != EEXIST) {
		rc = -errno;
		snprintf(err, errsz, "cannot create %s for the run uid locks: %s", lock_dir, strerror(-rc));
		goto out;
	}
	dfd = open(lock_dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (dfd < 0 || fstat(dfd, &st) < 0) {
		rc = -errno;
		snprintf(err, errsz, "cannot open %s for the run uid locks: %s", lock_dir, strerror(-rc));
		goto out;
	}
	/* Whoever could write here could hold every chunk, or swap a lock. */
	if (st.st_uid != geteuid() || (st.st_mode & (S_IWGRP | S_IWOTH))) {
		snprintf(err, errsz, "refusing the run uid locks in %s: it must belong to uid %u and be "
			 "writable by it alone", lock_dir, (unsigned)geteuid());
		rc = -EPERM;
		goto out;
	}
	for (unsigned c = 0; c < RUN_UIDS_SPAN / RUN_UIDS_CHUNK && ru->nlocks < need; c++) {
		char name[32];
		snprintf(name, sizeof(name), "uids-%u.lock", c);
		int fd = openat(dfd, name, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd < 0) {
			rc = -errno;
			snprintf(err, errsz, "cannot open %s/%s: %s", lock_dir, name, strerror(-rc));
			goto out;
		}
		if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
			int e = errno;
			close(fd);
			if (e == EWOULDBLOCK)
				continue;   /* another daemon's */
			rc = -e;
			snprintf(err, errsz, "cannot lock %s/%s: %s", lock_dir, name, strerror(e));
			goto out;
		}
		chunk[ru->nlocks] = c;
		ru->lock_fd[ru->nlocks++] = fd;
	}
	if (ru->nlocks < need) {
		snprintf(err, errsz, "all run uids are taken by other agentbayfs mounts (%u uids from %u)",
			 RUN_UIDS_SPAN, (unsigned)base);
		rc = -EBUSY;
		goto out;
	}
	ru->count = count;
	for (unsigned s = 0; s < count; s++)
		ru->uid[s] = base + chunk[s / RUN_UIDS_CHUNK] * RUN_UIDS_CHUNK + s % RUN_UIDS_CHUNK;
	/* Whatever a daemon killed before left running as these uids. */
	run_uids_sweep(ru);
out:
	if (dfd >= 0)
		close(dfd);
	free(chunk);
	if (rc < 0) {
		close_lock_fds(ru);
		free(ru->uid);
		free(ru->lock_fd);
		memset(ru, 0, sizeof(*ru));
		ru->guard_fd = -1;
	}
	return rc;
}

int run_uids_start_guard(struct run_uids *ru)
{
	int p[2];
	int *keep = calloc(ru->nlocks + 1, sizeof(*keep));

	if (!keep)
		return -ENOMEM;
	if (pipe2(p, O_CLOEXEC) < 0) {
		int e = errno;
		free(keep);
		return -e;
	}
	keep[0] = p[0];
	for (unsigned i = 0; i < ru->nlocks; i++)
		keep[i + 1] = ru->lock_fd[i];
	pid_t pid = fork();
	if (pid < 0) {
		int e = errno;
		close(p[0]);
		close(p[1]);
		free(keep);
		return -e;
	}
	if (pid == 0) {
		struct sigaction ign = { .sa_handler = SIG_IGN };
		char c;
		/* A Ctrl-C meant for the daemon must not take the guard too. */
		sigaction(SIGINT, &ign, NULL);
		sigaction(SIGTERM, &ign, NULL);
		sigaction(SIGHUP, &ign, NULL);
		sigaction(SIGQUIT, &ign, NULL);
		prctl(PR_SET_NAME, "agentbayfs-gd");
		/* Holding the locks (inherited) until the sweep is done. */
		fds_close_all_but(keep, ru->nlocks + 1);
		for (;;) {
			ssize_t n = read(p[0], &c, 1);
			if (n == 0 || (n < 0 && errno != EINTR))
				break;
		}
		run_uids_sweep(ru);
		_exit(0);
	}
	free(keep);
	close(p[0]);
	ru->guard = pid;
	ru->guard_fd = p[1];
	return 0;
}

void run_uids_release(struct run_uids *ru)
{
	if (ru->guard_fd >= 0) {
		close(ru->guard_fd);
		ru->guard_fd = -1;
	}
	if (ru->guard > 0) {
		while (waitpid(ru->guard, NULL, 0) < 0 && errno == EINTR)
			;
		ru->guard = 0;
	}
	close_lock_fds(ru);
	free(ru->uid);
	free(ru->lock_fd);
	ru->uid = NULL;
	ru->lock_fd = NULL;
	ru->count = 0;
}
