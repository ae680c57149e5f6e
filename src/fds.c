/* fds: see fds.h */
#define _GNU_SOURCE
#include "fds.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Closes the descriptors from LO to HI. */
static void close_span(unsigned lo, unsigned hi)
{
	if (lo > hi || syscall(SYS_close_range, lo, hi, 0u) == 0 || errno != ENOSYS)
		return;
	/* Kernels before 5.9. */
	long max = sysconf(_SC_OPEN_MAX);
	for (long fd = lo; fd <= (long)hi && fd < max; fd++)
		close((int)fd);
}

void fds_close_all_but(int *keep, unsigned n)
{
	/* Sorted, few: insertion sort. */
	for (unsigned i = 1; i < n; i++)
		for (unsigned j = i; j > 0 && keep[j - 1] > keep[j]; j--) {
			int t = keep[j];
			keep[j] = keep[j - 1];
			keep[j - 1] = t;
		}
	unsigned from = 0;
	for (unsigned i = 0; i < n; i++) {
		if (keep[i] < 0)
			continue;
		if ((unsigned)keep[i] > from)
			close_span(from, (unsigned)keep[i] - 1);
		from = (unsigned)keep[i] + 1;
	}
	close_span(from, ~0u);
}

ssize_t fds_send(int sock, const void *data, size_t len, const int *fds, unsigned n, int flags)
{
	union {
		char b[CMSG_SPACE(FDS_SEND_MAX * sizeof(int))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = (void *)data, .iov_len = len };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
			      .msg_controllen = CMSG_SPACE(n * sizeof(int)) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	if (n == 0 || n > FDS_SEND_MAX) {
		errno = EINVAL;
		return -1;
	}
	memset(u.b, 0, sizeof(u.b));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(n * sizeof(int));
	memcpy(CMSG_DATA(c), fds, n * sizeof(int));
	return sendmsg(sock, &msg, flags);
}
