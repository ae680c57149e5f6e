/* fds: descriptors handed to another process, or kept by a forked one.
 *
 * Both are used in children forked from the threaded daemon, so they make
 * system calls only: no allocation, no locks. Owns nothing. */
#ifndef AGENTBAYFS_FDS_H
#define AGENTBAYFS_FDS_H

#include <stddef.h>
#include <sys/types.h>

/* The most descriptors fds_send() passes in one message. */
#define FDS_SEND_MAX 8

/* Closes every descriptor of the process but the N in KEEP (sorted in
 * place; negative ones are ignored). */
void fds_close_all_but(int *keep, unsigned n);

/* sendmsg() of LEN bytes of DATA on the unix socket SOCK with the N
 * descriptors FDS (SCM_RIGHTS, at most FDS_SEND_MAX) and FLAGS: its
 * result, errno set when -1. */
ssize_t fds_send(int sock, const void *data, size_t len, const int *fds, unsigned n, int flags);

#endif
