/* writebehind: see writebehind.h */
#define _GNU_SOURCE
#include "writebehind.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fds.h"
#include "log.h"

#define SLOTS 4                  /* writes pending at once, all streams */
#define SLOT_BYTES ((size_t)1 << 20)
#define ROOM_MARGIN ((uint64_t)256 << 20)

/* What the daemon asks of the helper, with the store file's descriptor
 * (SCM_RIGHTS) ... */
struct wb_ask {
	uint64_t seq;
	int64_t off;
	uint64_t len;
	uint64_t slot;           /* (no padding: every byte sent is set) */
};

/* ... and what the helper answers, in the same order. */
struct wb_answer {
	uint64_t seq;
	int64_t err;             /* 0 or the errno of the failed write */
};

struct wb_job {
	struct wb_job *next;
	struct wb_stream *s;
	off_t off;
	size_t len;
	uint64_t seq;
};

struct wb_stream {
	struct wb *wb;
	int fd;
	struct wb_group *group;
	unsigned busy;           /* slots it is filling or has pending */
	int err;                 /* a failed job's errno, not yet given */
};

struct wb {
	pthread_mutex_t mu;
	pthread_cond_t done;     /* for waiters: a job was done or queued */
	struct wb_job *head, *tail;  /* asked of the helper, in order */
	uint64_t queued;         /* sequence number of the newest queued job */
	uint64_t finished;       /* ... of the newest done (jobs end in order) */
	char *slots;             /* SLOTS of SLOT_BYTES, shared with the helper */
	bool slot_busy[SLOTS];
	struct wb_job job[SLOTS];    /* the job of each slot */
	unsigned streams;
	int hold;                /* what the helper keeps open, or -1 */
	int sock;                /* to the helper, or -1 */
	pid_t helper;
	bool started;
	bool pumping;            /* a thread is reading the helper's answers */
	bool dead;               /* the helper is gone: nothing more goes behind */
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
	if (wb->started) {
		/* Nothing is pending (the streams are gone): the helper sees
		 * the end and exits. */
		close(wb->sock);
		while (waitpid(wb->helper, NULL, 0) < 0 && errno == EINTR)
			;
	}
	if (wb->slots)
		munmap(wb->slots, SLOTS * SLOT_BYTES);
	pthread_cond_destroy(&wb->done);
	pthread_mutex_destroy(&wb->mu);
	free(wb);
}

/* LEN bytes of DATA into FD at OFF; 0 or an errno. */
static int write_all(int fd, const char *data, size_t len, off_t off)
{
	while (len) {
		ssize_t w = pwrite(fd, data, len, off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		data += w;
		len -= (size_t)w;
		off += w;
	}
	return 0;
}

/* ---- the helper process ------------------------------------------------ */

/* The helper: a copy of the daemon that only does the writes it is asked,
 * in order, from the slots it shares with the daemon, and answers each.
 * Forked from a threaded process, it uses system calls only (no
 * allocation, no locks). Signals are blocked: a ^C meant for the daemon
 * must not cut it short; it ends when the daemon's end of SOCK closes, dead
 * or alive, after doing everything asked before. */
static _Noreturn void helper_main(int sock, int hold, const char *slots)
{
	sigset_t all;

	sigfillset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	prctl(PR_SET_NAME, "agentbayfs-wb", 0, 0, 0);
	int keep[2] = { sock, hold };
	fds_close_all_but(keep, 2);
	for (;;) {
		struct wb_ask q;
		union {
			char b[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		struct iovec iov = { .iov_base = &q, .iov_len = sizeof(q) };
		struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.b,
				      .msg_controllen = sizeof(u.b) };
		int fd = -1;

		ssize_t r = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
		/* A daemon that died with answers unread makes the kernel
		 * report a reset here, once, ahead of the writes it had asked
		 * and this helper not yet read: those still come, then the
		 * end. */
		if (r < 0 && (errno == EINTR || errno == ECONNRESET))
			continue;
		if (r <= 0)
			_exit(r < 0);
		struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
		if (c && c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
		    c->cmsg_len == CMSG_LEN(sizeof(int)))
			memcpy(&fd, CMSG_DATA(c), sizeof(fd));
		struct wb_answer a = { .seq = q.seq, .err = EIO };
		if (r == sizeof(q) && fd >= 0 && q.slot < SLOTS && q.len <= SLOT_BYTES &&
		    !(msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)))
			a.err = write_all(fd, slots + q.slot * SLOT_BYTES, (size_t)q.len, (off_t)q.off);
		if (fd >= 0)
			close(fd);
		/* Gone with the daemon: nobody to tell. */
		send(sock, &a, sizeof(a), MSG_NOSIGNAL);
	}
}

static unsigned slot_of(const struct wb *wb, const struct wb_job *j)
{
	return (unsigned)(j - wb->job);
}

/* Under the lock: SLOT, which S was filling or had pending, is free again. */
static void slot_free(struct wb *wb, struct wb_stream *s, unsigned slot)
{
	wb->slot_busy[slot] = false;
	s->busy--;
	pthread_cond_broadcast(&wb->done);
}

/* Under the lock: a finished job; its slot is free again. */
static void job_done(struct wb *wb, struct wb_job *j, int err)
{
	if (err && !j->s->err)
		j->s->err = err;
	wb->finished = j->seq;
	slot_free(wb, j->s, slot_of(wb, j));
}

/* Under the lock: the helper is gone. Each job it had not answered is
 * written here, in order, whole: writing again what it may have written
 * already stores the same bytes, and no later job had started. */
static void take_over(struct wb *wb)
{
	wb->dead = true;
	while (wb->head) {
		struct wb_job *j = wb->head;
		wb->head = j->next;
		job_done(wb, j, write_all(j->s->fd, wb->slots + slot_of(wb, j) * SLOT_BYTES, j->len, j->off));
	}
	wb->tail = NULL;
}

/* Under the lock: the helper is found gone (WHY), once. */
static void gone(struct wb *wb, const char *why)
{
	if (wb->dead)
		return;
	log_warn("the write-behind helper (pid %d) is gone (%s); large writes are synchronous from now on",
		 (int)wb->helper, why);
	take_over(wb);
	pthread_cond_broadcast(&wb->done);
}

/* Under the lock: makes progress towards what the caller waits for. Reads
 * one answer of the helper, waiting for it, when a job is pending and no
 * other thread is reading; else waits for whoever is to say something
 * changed. Whoever waits reads: no thread of ours wakes per write. */
static void pump(struct wb *wb)
{
	struct wb_answer a;
	ssize_t r;

	if (wb->pumping || !wb->head) {
		pthread_cond_wait(&wb->done, &wb->mu);
		return;
	}
	wb->pumping = true;
	pthread_mutex_unlock(&wb->mu);
	do
		r = recv(wb->sock, &a, sizeof(a), 0);
	while (r < 0 && errno == EINTR);
	int err = errno;
	pthread_mutex_lock(&wb->mu);
	wb->pumping = false;
	struct wb_job *j = wb->head;
	if (r == sizeof(a) && j && j->seq == a.seq) {
		wb->head = j->next;
		if (!wb->head)
			wb->tail = NULL;
		job_done(wb, j, (int)a.err);
		return;
	}
	gone(wb, r == 0 ? "ended" : r < 0 ? strerror(err) : "answered out of order");
}

/* Under the lock: the slots, and the helper that shares them. */
static int start_helper(struct wb *wb)
{
	int sp[2], rc;

	if (wb->dead)
		return -EPIPE;
	if (wb->started)
		return 0;
	if (!wb->slots) {
		void *m = mmap(NULL, SLOTS * SLOT_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		if (m == MAP_FAILED)
			return -errno;
		wb->slots = m;
	}
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	pid_t pid = fork();
	if (pid == 0)
		helper_main(sp[1], wb->hold, wb->slots);
	rc = pid < 0 ? -errno : 0;
	close(sp[1]);
	if (rc) {
		close(sp[0]);
		return rc;
	}
	wb->sock = sp[0];
	wb->helper = pid;
	wb->started = true;
	return 0;
}

/* Under the lock: asks the helper to do J. False when it cannot be asked:
 * its socket is full, or the helper is gone (then it is said so). */
static bool ask(struct wb *wb, const struct wb_job *j)
{
	struct wb_ask q = { .seq = j->seq, .off = (int64_t)j->off, .len = (uint64_t)j->len, .slot = slot_of(wb, j) };

	if (wb->dead)
		return false;
	if (fds_send(wb->sock, &q, sizeof(q), &j->s->fd, 1, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)sizeof(q))
		return true;
	if (errno != EAGAIN && errno != ENOBUFS && errno != EINTR)
		gone(wb, strerror(errno));
	return false;
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

int wb_stream_new(struct wb *wb, int fd, struct wb_group *group, struct wb_stream **out)
{
	struct wb_stream *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->wb = wb;
	s->fd = fd;
	s->group = group;
	pthread_mutex_lock(&wb->mu);
	rc = start_helper(wb);
	if (!rc)
		wb->streams++;
	pthread_mutex_unlock(&wb->mu);
	if (rc) {
		free(s);
		return rc;
	}
	*out = s;
	return 0;
}

/* Under the lock. */
static void wait_idle(struct wb_stream *s)
{
	while (s->busy)
		pump(s->wb);
}

int wb_stream_free(struct wb_stream *s)
{
	struct wb *wb;
	int err;

	if (!s)
		return 0;
	wb = s->wb;
	pthread_mutex_lock(&wb->mu);
	wait_idle(s);
	err = s->err;
	/* Idle: the slots' memory goes back to the system until the next
	 * stream writes (it is shared memory, so only punching it out frees
	 * it). */
	if (--wb->streams == 0)
		madvise(wb->slots, SLOTS * SLOT_BYTES, MADV_REMOVE);
	pthread_mutex_unlock(&wb->mu);
	free(s);
	return -err;
}

size_t wb_stream_max(const struct wb_stream *s)
{
	(void)s;
	return SLOT_BYTES;
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

/* Under the lock: a free slot's number, or -1. */
static int free_slot(const struct wb *wb)
{
	for (int i = 0; i < SLOTS; i++)
		if (!wb->slot_busy[i])
			return i;
	return -1;
}

ssize_t wb_stream_write(struct wb_stream *s, off_t off, size_t len, wb_fill_fn fill, void *arg)
{
	struct wb *wb = s->wb;
	ssize_t n;
	int slot, rc;

	if (len > SLOT_BYTES)
		len = SLOT_BYTES;
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
	while (!wb->dead && (slot = free_slot(wb)) < 0)
		pump(wb);
	if (wb->dead) {
		pthread_mutex_unlock(&wb->mu);
		return 0;
	}
	wb->slot_busy[slot] = true;
	s->busy++;
	pthread_mutex_unlock(&wb->mu);

	/* The slot is ours: filling it needs no lock. */
	char *data = wb->slots + (size_t)slot * SLOT_BYTES;
	n = fill(arg, data, len);

	pthread_mutex_lock(&wb->mu);
	if (n <= 0) {
		slot_free(wb, s, (unsigned)slot);
		pthread_mutex_unlock(&wb->mu);
		return n;
	}
	struct wb_job *j = &wb->job[slot];
	*j = (struct wb_job){ .s = s, .off = off, .len = (size_t)n, .seq = wb->queued + 1 };
	if (ask(wb, j)) {
		wb->queued = j->seq;
		if (wb->tail)
			wb->tail->next = j;
		else
			wb->head = j;
		wb->tail = j;
		s->group->last = j->seq;
		/* Waiters with nothing to read before have now. */
		pthread_cond_broadcast(&wb->done);
		pthread_mutex_unlock(&wb->mu);
		return n;
	}
	/* Not asked: written here, after what its file has pending. */
	uint64_t until = s->group->last;
	while (wb->finished < until && !wb->dead)
		pump(wb);
	pthread_mutex_unlock(&wb->mu);
	int err = write_all(s->fd, data, (size_t)n, off);
	pthread_mutex_lock(&wb->mu);
	slot_free(wb, s, (unsigned)slot);
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
		pump(wb);
	pthread_mutex_unlock(&wb->mu);
}
