/* threads: how the daemon starts a thread of its own.
 *
 * Signals stay with the FUSE loop's threads: libfuse's handlers end the
 * loop only when one of them takes the signal, so a thread of ours starts
 * with every signal blocked (set before it exists, so none slips in).
 * Owns nothing. */
#ifndef AGENTBAYFS_THREADS_H
#define AGENTBAYFS_THREADS_H

#include <pthread.h>

/* pthread_create() with every signal blocked in the new thread: 0 or its
 * error number. ATTR may be NULL. */
int thread_start(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);

#endif
