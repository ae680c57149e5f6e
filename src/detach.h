/* detach: going to the background the way a mount command should.
 *
 * Owns: the fork that puts the daemon in the background and the pipe that
 * tells the command it is done. Unlike fuse_daemonize(), which lets the
 * command return as soon as it has forked, the command that started the
 * daemon returns only when the filesystem is ready to serve: with status 0,
 * or, when the daemon fails to start (no backend, no uids to run scripts
 * as, ...), with the daemon's own exit status after its error went to the
 * command's stderr. So `agentbayfs ... && use the mount` and systemd's
 * Type=forking (which takes the command's exit as "started") hold.
 */
#ifndef AGENTBAYFS_DETACH_H
#define AGENTBAYFS_DETACH_H

#include <stdbool.h>

struct detach {
	int ready_fd;   /* the daemon's end of the pipe; -1 in the foreground or once told */
};

/* Unless foreground, forks: the parent waits for detach_ready() or the
 * daemon's exit and exits with the matching status; it never returns. The
 * daemon returns 0 and goes on with its start. Call before any thread is
 * started. Returns 0, or -errno when it cannot fork (nothing changed). */
int detach_begin(struct detach *d, bool foreground);

/* The filesystem is ready: leaves the caller's session and directory,
 * points stdin, stdout and stderr at /dev/null (when detached) and lets the
 * command exit 0. Messages go to syslog from then on (see log.c). */
void detach_ready(struct detach *d);

#endif
