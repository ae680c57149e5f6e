/* writebehind: see writebehind.h */
#define _GNU_SOURCE
#include "writebehind.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"

#define PAGE 4096
#define COPY_CHUNK (64 * 1024)   /* the fallback copy's buffer */
#define PIPES 4                  /* per stream: writes pending at once */
#define ROOM_MARGIN ((uint64_t)256 << 20)

/* What the daemon asks of the helper, with the store file's and the pipe's
 * read end's descriptors (SCM_RIGHTS, in that order) ... */
struct wb_ask {
	uint64_t seq;
	int64_t off;
	uint64_t len;
};

/* ... and what the helper answers, in the same order. */
struct wb_answer {
	uint64_t seq;
	int32_t err;             /* 0 or the errno of the failed write */
	int32_t stuck;           /* what failed is still in the pipe */
};

struct wb_job {
	struct wb_job *next;
	struct wb_stream *s;
	int pi;                  /* which of the stream's pipes holds the data */
	off_t off;
	size_t len;
	uint64_t seq;
};

struct wb_stream {
	struct wb *wb;
	int fd;
	struct wb_group *group;
	int pipe[PIPES][2];
	size_t cap;              /* bytes each pipe holds */
	bool busy[PIPES];        /* the pipe is being filled, or its job pending */
	unsigned next;           /* the pipe to try first */
	struct wb_job job[PIPES];
	int err;                 /* a failed job's errno, not yet given */
	bool broken;             /* a pipe could not be emptied */
};

struct wb {
	pthread_mutex_t mu;
	pthread_cond_t done;     /* for waiters: a job was done */
	struct wb_job *head, *tail;  /* asked of the helper, in order */
	uint64_t queued;         /* sequence number of the newest queued job */
	uint64_t finished;       /* ... of the newest done (jobs end in order) */
	int hold;                /* what the helper keeps open, or -1 */
	int sock;                /* to the helper, or -1 */
	pid_t helper;
	pthread_t thread;        /* reads the helper's answers */
	bool started;
	bool stop;
	bool dead;               /* the helper is gone: nothing more goes behind */
	char *buf;               /* the helper's fallback copy buffer */
};

int wb_new(struct wb **out)
{
	struct wb *wb = calloc(1, sizeof(*wb));

	if (!wb)
		return -ENOMEM;
	pthread_mutex_init(&wb->mu, NULL);
	pthread_cond_init(&wb->done, NULL);
	wb->hold = -1;
	wb->sock = -1;
	*out = wb;
	return 0;
}

void wb_hold(struct wb *wb, int fd)
{
	pthread_mutex_lock(&wb->mu);
	wb->hold = fd;
	pthread_mutex_unlock(&wb->mu);
}

pid_t wb_helper(struct wb *wb)
{
	pthread_mutex_lock(&wb->mu);
	pid_t pid = wb->started ? wb->helper : 0;
	pthread_mutex_unlock(&wb->mu);
	return pid;
}

void wb_free(struct wb *wb)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->mu);
	wb->stop = true;
	pthread_mutex_unlock(&wb->mu);
	if (wb->started) {
		/* The helper does what it was asked, sees the end and exits;
		 * then the answer thread sees the end. */
		shutdown(wb->sock, SHUT_WR);
		pthread_join(wb->thread, NULL);
		close(wb->sock);
		while (waitpid(wb->helper, NULL, 0) < 0 && errno == EINTR)
			;
	}
	pthread_cond_destroy(&wb->done);
	pthread_mutex_destroy(&wb->mu);
	free(wb->buf);
	free(wb);
}

/* Writes what splice() could not (a target opened O_APPEND, a file system
 * without splice): through BUF, or one of its own when BUF is NULL. */
static int copy_through(char *buf, int in, int fd, off_t *off, size_t *left)
{
	char *own = buf ? NULL : malloc(COPY_CHUNK);
	int err = 0;

	if (!buf && !(buf = own))
		return ENOMEM;
	while (*left && !err) {
		ssize_t r = read(in, buf, *left < COPY_CHUNK ? *left : COPY_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? errno : EIO;
			break;
		}
		for (ssize_t at = 0; at < r;) {
			ssize_t w = pwrite(fd, buf + at, (size_t)(r - at), *off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				/* What was read and not written is gone from the pipe. */
				err = w < 0 ? errno : EIO;
				*left -= (size_t)(r - at);
				break;
			}
			at += w;
			*off += w;
			*left -= (size_t)w;
		}
	}
	free(own);
	return err;
}

/* Empties IN of LEFT bytes that will not be written, so that the pipe is
 * clean for the stream's next write. False if it could not. */
static bool discard(int in, size_t left)
{
	char sink[4096];

	while (left) {
		ssize_t r = read(in, sink, left < sizeof(sink) ? left : sizeof(sink));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		left -= (size_t)r;
	}
	return true;
}

/* LEN bytes from the pipe IN into FD at OFF; 0 or an errno. *STUCK when
 * what failed could not be emptied out of the pipe. BUF as copy_through's. */
static int do_job(char *buf, int in, int fd, off_t off, size_t len, bool *stuck)
{
	size_t left = len;
	int err = 0;

	while (left) {
		ssize_t r = splice(in, NULL, fd, &off, left, SPLICE_F_MOVE);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL) {
			err = copy_through(buf, in, fd, &off, &left);
			break;
		}
		if (r <= 0) {
			err = r < 0 ? errno : EIO;
			break;
		}
		left -= (size_t)r;
	}
	*stuck = err && !discard(in, left);
	return err;
}

/* ---- the helper process ------------------------------------------------ */

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

/* Closes every descriptor but A and B (B may be -1). */
static void close_all_but(int a, int b)
{
	int keep[2] = { a < b ? a : b, a < b ? b : a };
	unsigned from = 0;

	for (int i = 0; i < 2; i++) {
		if (keep[i] < 0)
			continue;
		if ((unsigned)keep[i] > from)
			close_span(from, (unsigned)keep[i] - 1);
		from = (unsigned)keep[i] + 1;
	}
	close_span(from, ~0u);
}

/* The helper: a copy of the daemon that only does the writes it is asked,
 * in order, and answers each. Forked from a threaded process, it uses
 * system calls only (no allocation, no locks). Signals are blocked: a ^C
 * meant for the daemon must not cut it short; it ends when the daemon's end
 * of SOCK closes, dead or alive, after doing everything asked before. */
static _Noreturn void helper_main(int sock, int hold, char *buf)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_NAME, "agentbayfs-wb", 0, 0, 0);
	close_all_but(sock, hold);
	for (;;) {
		struct wb_ask q;
		union {
			char b[CMSG_SPACE(2 * sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				      .msg_controllen = sizeof(u.b) };
		int fds[2] = { -1, -1 };

		ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			_exit(r < 0);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(2 * sizeof(int)))
			memcpy(fds, CMSG_DATA(c), sizeof(fds));
		struct wb_answer a = { .seq = q.seq, .err = EIO, .stuck = 1 };
		if (r == sizeof(q) && fds[0] >= 0 && fds[1] >= 0 && !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC))) {
			bool stuck;
			a.err = do_job(buf, fds[1], fds[0], (off_t)q.off, (size_t)q.len, &stuck);
			a.stuck = stuck;
		}
		for (int i = 0; i < 2; i++)
			if (fds[i] >= 0)
				close(fds[i]);
		/* Gone with the daemon: nobody to tell. */
		send(sock, &a, sizeof(a), MSG_NOSIGNAL);
	}
}

/* Under the lock: a finished job. */
static void job_done(struct wb *wb, struct wb_job *j, int err, bool stuck)
{
	if (err && !j->s->err)
		j->s->err = err;
	/* A pipe left holding data would put it in front of the next
	 * write's: then the stream writes no more behind. */
	if (stuck)
		j->s->broken = true;
	j->s->busy[j->pi] = false;
	wb->finished = j->seq;
	pthread_cond_broadcast(&wb->done);
}

/* Under the lock: the helper is gone. What it had not written is still in
 * the pipes (it takes from the front as it writes): the rest of each job
 * is written here, in order, so nothing answered is lost. */
static void take_over(struct wb *wb)
{
	wb->dead = true;
	while (wb->head) {
		struct wb_job *j = wb->head;
		int in = j->s->pipe[j->pi][0], left = 0, err = 0;
		bool stuck = false;

		wb->head = j->next;
		if (ioctl(in, FIONREAD, &left) < 0)
			err = errno, stuck = true;
		else if ((size_t)left > j->len)
			err = EIO, stuck = true;
		else if (left > 0)
			err = do_job(NULL, in, j->s->fd, j->off + (off_t)(j->len - (size_t)left), (size_t)left,
				     &stuck);
		job_done(wb, j, err, stuck);
	}
	wb->tail = NULL;
}

static void *answers_main(void *arg)
{
	struct wb *wb = arg;

	pthread_setname_np(pthread_self(), "writebehind");
	for (;;) {
		struct wb_answer a;
		ssize_t r = recv(wb->sock, &a, sizeof(a), 0);
		if (r < 0 && errno == EINTR)
			continue;
		pthread_mutex_lock(&wb->mu);
		struct wb_job *j = wb->head;
		if (r != sizeof(a) || !j || j->seq != a.seq) {
			bool stopping = wb->stop && !j;
			if (!stopping)
				log_warn("the write-behind helper (pid %d) %s%s; large writes are "
					 "synchronous from now on", (int)wb->helper,
					 r == 0 ? "ended" : r < 0 ? "is gone: " : "answered out of order",
					 r < 0 ? strerror(errno) : "");
			take_over(wb);
			pthread_mutex_unlock(&wb->mu);
			break;
		}
		wb->head = j->next;
		if (!wb->head)
			wb->tail = NULL;
		job_done(wb, j, a.err, a.stuck);
		pthread_mutex_unlock(&wb->mu);
	}
	return NULL;
}

/* Under the lock: the helper and the thread reading its answers. */
static int start_helper(struct wb *wb)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int sp[2], rc;

	if (wb->dead)
		return -EPIPE;
	if (wb->started)
		return 0;
	if (!wb->buf && !(wb->buf = malloc(COPY_CHUNK)))
		return -ENOMEM;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid == 0)
		helper_main(sp[1], wb->hold, wb->buf);
	rc = pid < 0 ? -errno : 0;
	close(sp[1]);
	if (rc) {
		close(sp[0]);
		return rc;
	}
	wb->sock = sp[0];
	wb->helper = pid;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&wb->thread, &attr, answers_main, wb);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc) {
		/* The helper ends when its socket closes. */
		close(wb->sock);
		wb->sock = -1;
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
		wb->dead = true;
		return -rc;
	}
	wb->started = true;
	return 0;
}

/* Under the lock: asks the helper to do J. False when it cannot be asked
 * (its socket full, or the helper gone). */
static bool ask(struct wb *wb, const struct wb_job *j)
{
	struct wb_ask q = { .seq = j->seq, .off = (int64_t)j->off, .len = (uint64_t)j->len };
	int fds[2] = { j->s->fd, j->s->pipe[j->pi][0] };
	union {
		char b[CMSG_SPACE(sizeof(fds))];
		struct cmsghdr align;
	} u;
	struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b, .msg_controllen = sizeof(u.b) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	if (wb->dead)
		return false;
	memset(u.b, 0, sizeof(u.b));
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(fds));
	memcpy(CMSG_DATA(c), fds, sizeof(fds));
	return sendmsg(wb->sock, &msg, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(q);
}

/* The store holds LEN more bytes and ROOM_MARGIN besides (what other
 * streams may have pending, and other writers' doing meanwhile). */
static bool room_to_spare(int fd, size_t len)
{
	struct statfs sf;

	if (fstatfs(fd, &sf) < 0)
		return false;
	return (uint64_t)sf.f_bavail * (uint64_t)sf.f_frsize >= (uint64_t)len + ROOM_MARGIN;
}

static void close_pipes(struct wb_stream *s)
{
	for (int i = 0; i < PIPES; i++)
		for (int e = 0; e < 2; e++)
			if (s->pipe[i][e] >= 0)
				close(s->pipe[i][e]);
}

int wb_stream_new(struct wb *wb, int fd, struct wb_group *group, size_t pipe_bytes,
		  struct wb_stream **out)
{
	struct wb_stream *s = calloc(1, sizeof(*s));
	int rc = 0;

	if (!s)
		return -ENOMEM;
	s->wb = wb;
	s->fd = fd;
	s->group = group;
	for (int i = 0; i < PIPES; i++)
		s->pipe[i][0] = s->pipe[i][1] = -1;
	for (int i = 0; i < PIPES && !rc; i++) {
		if (pipe2(s->pipe[i], O_CLOEXEC) < 0) {
			rc = -errno;
			break;
		}
		int cap = fcntl(s->pipe[i][1], F_GETPIPE_SZ);
		if (cap >= 0 && (size_t)cap < pipe_bytes) {
			int want = pipe_bytes > (size_t)INT32_MAX ? INT32_MAX : (int)pipe_bytes;
			int got = fcntl(s->pipe[i][1], F_SETPIPE_SZ, want);
			cap = got >= 0 ? got : cap;
		}
		if (cap < 0)
			rc = -errno;
		else if (!s->cap || (size_t)cap < s->cap)
			s->cap = (size_t)cap;
	}
	/* Smaller pipes (the user's pipe-user-pages-soft used up) would cut
	 * every write in two: then none go behind. */
	if (!rc && (s->cap < pipe_bytes || s->cap <= 2 * PAGE))
		rc = -ENOBUFS;
	if (!rc) {
		pthread_mutex_lock(&wb->mu);
		rc = start_helper(wb);
		pthread_mutex_unlock(&wb->mu);
	}
	if (rc) {
		close_pipes(s);
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* Under the lock. */
static unsigned busy_pipes(const struct wb_stream *s)
{
	unsigned n = 0;

	for (int i = 0; i < PIPES; i++)
		n += s->busy[i];
	return n;
}

/* Under the lock. */
static void wait_idle(struct wb_stream *s)
{
	while (busy_pipes(s))
		pthread_cond_wait(&s->wb->done, &s->wb->mu);
}

int wb_stream_free(struct wb_stream *s)
{
	int err;

	if (!s)
		return 0;
	pthread_mutex_lock(&s->wb->mu);
	wait_idle(s);
	err = s->err;
	pthread_mutex_unlock(&s->wb->mu);
	close_pipes(s);
	free(s);
	return -err;
}

size_t wb_stream_max(const struct wb_stream *s)
{
	return s->cap - PAGE;
}

int wb_stream_take_error(struct wb_stream *s)
{
	int err;

	pthread_mutex_lock(&s->wb->mu);
	wait_idle(s);
	err = s->err;
	s->err = 0;
	pthread_mutex_unlock(&s->wb->mu);
	return -err;
}

ssize_t wb_stream_write(struct wb_stream *s, off_t off, size_t len, wb_fill_fn fill, void *arg)
{
	struct wb *wb = s->wb;
	ssize_t n;
	int pi, rc;

	if (len > wb_stream_max(s))
		len = wb_stream_max(s);
	/* Only with room to spare: near a full store, a write is answered by
	 * the store itself, so that ENOSPC comes from the write that did not
	 * fit and what was accepted is stored. */
	if (!room_to_spare(s->fd, len))
		return 0;
	pthread_mutex_lock(&wb->mu);
	if (s->err) {
		rc = -s->err;
		s->err = 0;
		pthread_mutex_unlock(&wb->mu);
		return rc;
	}
	if (s->broken || wb->dead) {
		pthread_mutex_unlock(&wb->mu);
		return 0;
	}
	while (busy_pipes(s) == PIPES)
		pthread_cond_wait(&wb->done, &wb->mu);
	for (pi = (int)(s->next % PIPES); s->busy[pi]; pi = (pi + 1) % PIPES)
		;
	s->busy[pi] = true;
	s->next = (unsigned)pi + 1;
	pthread_mutex_unlock(&wb->mu);

	/* The pipe is empty and ours: filling it needs no lock. */
	n = fill(arg, s->pipe[pi][1], len);

	pthread_mutex_lock(&wb->mu);
	if (n <= 0) {
		s->busy[pi] = false;
		pthread_cond_broadcast(&wb->done);
		pthread_mutex_unlock(&wb->mu);
		return n;
	}
	struct wb_job *j = &s->job[pi];
	*j = (struct wb_job){ .s = s, .pi = pi, .off = off, .len = (size_t)n, .seq = wb->queued + 1 };
	if (ask(wb, j)) {
		wb->queued = j->seq;
		if (wb->tail)
			wb->tail->next = j;
		else
			wb->head = j;
		wb->tail = j;
		s->group->last = j->seq;
		pthread_mutex_unlock(&wb->mu);
		return n;
	}
	/* Not asked: written here, after what its file has pending. */
	uint64_t until = s->group->last;
	while (wb->finished < until && !wb->dead)
		pthread_cond_wait(&wb->done, &wb->mu);
	pthread_mutex_unlock(&wb->mu);
	bool stuck;
	int err = do_job(NULL, s->pipe[pi][0], s->fd, off, (size_t)n, &stuck);
	pthread_mutex_lock(&wb->mu);
	if (stuck)
		s->broken = true;
	s->busy[pi] = false;
	pthread_cond_broadcast(&wb->done);
	pthread_mutex_unlock(&wb->mu);
	return err ? -err : n;
}

void wb_settle(struct wb *wb, const struct wb_group *group)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->mu);
	uint64_t until = group ? group->last : wb->queued;
	while (wb->finished < until)
		pthread_cond_wait(&wb->done, &wb->mu);
	pthread_mutex_unlock(&wb->mu);
}
