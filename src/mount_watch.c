#define _GNU_SOURCE
#include "mount_watch.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"
#include "mountinfo.h"
#include "threads.h"

static bool mount_gone(struct mount_watch *w)
{
	dev_t dev = w->dev;
	int rc = mountinfo_scan_fd(w->info_fd, NULL, &dev);

	if (rc < 0)
		log_warn("cannot read /proc/self/mountinfo to look for an unmount of %s: %s", w->mnt, strerror(-rc));
	return rc == 0;
}

/* True when the kernel ends the connection within a moment of the mount
 * leaving the table: an unmount with no file left open, which the FUSE loop
 * sees by itself (main then does the rest). The kernel ends it when the
 * unmounting process returns from umount(2), a little after the table
 * changed. A lazy unmount with files still open keeps it. */
#define CONNECTION_GRACE_MS 500

static bool connection_gone(struct afs *fs)
{
	struct pollfd p = { .fd = fuse_session_fd(fs->se), .events = 0 };
	int rc;

	do
		rc = poll(&p, 1, CONNECTION_GRACE_MS);
	while (rc < 0 && errno == EINTR);
	return rc == 1 && (p.revents & (POLLERR | POLLNVAL));
}

static void *watch_main(void *arg)
{
	struct afs *fs = arg;
	struct mount_watch *w = &fs->watch;
	struct pollfd p[2] = {
		{ .fd = w->stop_fd, .events = POLLIN },
		{ .fd = w->info_fd, .events = POLLPRI },
	};
	bool gone = false;

	while (!gone) {
		if (poll(p, 2, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("cannot watch the mount table for an unmount of %s: %s", w->mnt, strerror(errno));
			return NULL;
		}
		if (p[0].revents)
			return NULL;
		if (p[1].revents & POLLNVAL) {
			log_error("cannot watch the mount table for an unmount of %s: %s", w->mnt, strerror(EBADF));
			return NULL;
		}
		/* Looked at twice: a read that raced a change of the table
		 * must not pass for an unmount. */
		if (p[1].revents & (POLLPRI | POLLERR))
			gone = mount_gone(w) && mount_gone(w);
	}
	if (connection_gone(fs))
		return NULL;
	log_info("%s is no longer mounted (a lazy unmount): cancelling its runs and ending the reads "
		 "waiting on them; the daemon exits once the files still open in it are closed", w->mnt);
	engine_shutdown(fs->eng);
	afs_detached(fs);
	return NULL;
}

void mount_watch_start(struct afs *fs, const char *mnt)
{
	struct mount_watch *w = &fs->watch;
	int rc;

	w->mnt = mnt;
	w->stop_fd = -1;
	w->info_fd = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	if (w->info_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = mountinfo_scan_fd(w->info_fd, mnt, &w->dev);
	if (rc == 0)
		rc = -ENOENT;
	if (rc < 0)
		goto fail;
	w->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (w->stop_fd < 0) {
		rc = -errno;
		goto fail;
	}
	rc = -thread_start(&w->thread, NULL, watch_main, fs);
	if (rc < 0)
		goto fail;
	w->started = true;
	return;
fail:
	log_warn("cannot watch /proc/self/mountinfo for the mount on %s (%s): after a lazy unmount, "
		 "reads waiting on a run end only when the run does", mnt, strerror(-rc));
	if (w->info_fd >= 0)
		close(w->info_fd);
	if (w->stop_fd >= 0)
		close(w->stop_fd);
	w->info_fd = w->stop_fd = -1;
}

void mount_watch_stop(struct afs *fs)
{
	struct mount_watch *w = &fs->watch;
	uint64_t one = 1;

	if (!w->started)
		return;
	/* An eventfd at 0 always takes a 1. */
	if (write(w->stop_fd, &one, sizeof(one)) < 0)
		log_error("cannot stop the mount watcher: %s", strerror(errno));
	pthread_join(w->thread, NULL);
	close(w->info_fd);
	close(w->stop_fd);
	w->info_fd = w->stop_fd = -1;
	w->started = false;
}
