/* poll_notify: the thread that sends the kernel our notifications.
 *
 * Owns: a queue of FUSE notifications and a thread of the daemon's own that
 * sends them (they must never be sent from inside a request handler) and
 * frees what they hold: poll handles whose file became ready, and inodes
 * whose cached pages went stale because they were written around the page
 * cache. Who decides that a file is ready or stale is fs.c; this only
 * delivers.
 */
#ifndef AGENTBAYFS_POLL_NOTIFY_H
#define AGENTBAYFS_POLL_NOTIFY_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

struct pn_item;

struct poll_notify {
	struct fuse_session *se;    /* for inode notifications */
	pthread_t thread;
	bool started;
	bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pn_item *head;
	struct pn_item **tail;
};

/* Starts the thread, which notifies SE. 0, or -errno (then pushed handles
 * are only freed, pollers wake at their own timeouts, and caches are
 * dropped only at the next open). */
int poll_notify_start(struct poll_notify *pn, struct fuse_session *se);
/* Queues PH for a notification; PH is the queue's from now on. Any thread,
 * any lock held. */
void poll_notify_push(struct poll_notify *pn, struct fuse_pollhandle *ph);
/* Queues a notification that the cached pages and attributes of INO are
 * stale. Any thread, any lock held; dropped when memory is short. */
void poll_notify_inval(struct poll_notify *pn, fuse_ino_t ino);
/* Sends what is queued, then ends the thread; what is pushed later is only
 * freed. Call before fuse_session_unmount(), which closes the descriptor
 * the notifications are written to (its number may be reused at once). */
void poll_notify_stop(struct poll_notify *pn);
/* Frees the queue's lock: once nothing can push any more. */
void poll_notify_free(struct poll_notify *pn);

#endif
