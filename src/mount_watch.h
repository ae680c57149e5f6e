/* mount_watch: the thread that notices a lazy unmount.
 *
 * Owns: a thread of the daemon's own that watches the mount table. After a
 * lazy unmount (fusermount3 -u -z, umount -l) the kernel tells the daemon
 * nothing until the last file open in the detached mount is closed, and a
 * reader waiting for a run's output keeps its file open until the run ends.
 * When the mount is gone while the kernel still keeps the connection, the
 * thread starts the unmount itself: the runs are cancelled and every waiting
 * read answered (afs_detached()). The FUSE loop goes on serving the detached
 * mount's open files until the kernel drops the connection, and main stops
 * the rest as after any unmount. The mount is known by its device, not its
 * path: another mount may appear on the same path, and a bind mount of ours
 * keeps it alive.
 */
#ifndef AGENTBAYFS_MOUNT_WATCH_H
#define AGENTBAYFS_MOUNT_WATCH_H

#include <pthread.h>
#include <stdbool.h>
#include <sys/types.h>

struct afs;

/* Its fields are set before the thread starts and read after it ended. */
struct mount_watch {
	pthread_t thread;
	bool started;
	int info_fd;                /* /proc/self/mountinfo, polled for changes */
	int stop_fd;                /* eventfd: main asks the thread to end */
	dev_t dev;                  /* the mount's device, as mountinfo shows it */
	const char *mnt;
};

/* Starts watching for the end of the mount on MNT (FS->watch). Without the
 * watcher all works but a lazy unmount, whose waiting readers then wait for
 * their runs (a warning says so). */
void mount_watch_start(struct afs *fs, const char *mnt);

/* Ends the watcher, waiting for the unmount it may have begun. Call before
 * fuse_session_unmount(), which it would take for a lazy unmount. */
void mount_watch_stop(struct afs *fs);

#endif
