/* poll_notify: the thread that wakes pollers of result files.
 *
 * Owns: a queue of FUSE poll handles whose file became ready, and a thread
 * of the daemon's own that sends the kernel their notifications (which must
 * never be sent from inside a request handler) and frees them. Who decides
 * that a file is ready is fs.c; this only delivers.
 */
#ifndef AGENTBAYFS_POLL_NOTIFY_H
#define AGENTBAYFS_POLL_NOTIFY_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

struct pn_item;

struct poll_notify {
	pthread_t thread;
	bool started;
	bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct pn_item *head;
	struct pn_item **tail;
};

/* Starts the thread. 0, or -errno (then pushed handles are only freed, and
 * pollers wake at their own timeouts). */
int poll_notify_start(struct poll_notify *pn);
/* Queues PH for a notification; PH is the queue's from now on. Any thread,
 * any lock held. */
void poll_notify_push(struct poll_notify *pn, struct fuse_pollhandle *ph);
/* Sends what is queued, then ends the thread. Call before the session goes. */
void poll_notify_stop(struct poll_notify *pn);

#endif
