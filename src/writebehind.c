/* writebehind: see writebehind.h */
#define _GNU_SOURCE
#include "writebehind.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/vfs.h>
#include <unistd.h>

#define PAGE 4096
#define COPY_CHUNK (64 * 1024)   /* the fallback copy's buffer */
#define PIPES 4                  /* per stream: writes pending at once */
#define ROOM_MARGIN ((uint64_t)256 << 20)

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
	pthread_cond_t work;     /* for the thread: a job was queued, or stop */
	pthread_cond_t done;     /* for waiters: a job was done */
	struct wb_job *head, *tail;
	uint64_t queued;         /* sequence number of the newest queued job */
	uint64_t finished;       /* ... of the newest done (jobs end in order) */
	pthread_t thread;
	bool started;
	bool stop;
	char *buf;               /* the fallback copy's, the thread's own */
};

int wb_new(struct wb **out)
{
	struct wb *wb = calloc(1, sizeof(*wb));

	if (!wb)
		return -ENOMEM;
	pthread_mutex_init(&wb->mu, NULL);
	pthread_cond_init(&wb->work, NULL);
	pthread_cond_init(&wb->done, NULL);
	*out = wb;
	return 0;
}

void wb_free(struct wb *wb)
{
	if (!wb)
		return;
	pthread_mutex_lock(&wb->mu);
	wb->stop = true;
	pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->mu);
	if (wb->started)
		pthread_join(wb->thread, NULL);
	pthread_cond_destroy(&wb->work);
	pthread_cond_destroy(&wb->done);
	pthread_mutex_destroy(&wb->mu);
	free(wb->buf);
	free(wb);
}

/* Writes what splice() could not (a target opened O_APPEND, a file system
 * without splice): through a buffer. */
static int copy_through(struct wb *wb, int in, int fd, off_t *off, size_t *left)
{
	while (*left) {
		ssize_t r = read(in, wb->buf, *left < COPY_CHUNK ? *left : COPY_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? errno : EIO;
		for (ssize_t at = 0; at < r;) {
			ssize_t w = pwrite(fd, wb->buf + at, (size_t)(r - at), *off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return w < 0 ? errno : EIO;
			at += w;
			*off += w;
			*left -= (size_t)w;
		}
	}
	return 0;
}

/* Empties IN of LEFT bytes that will not be written, so that the pipe is
 * clean for the stream's next write. False if it could not. */
static bool discard(struct wb *wb, int in, size_t left)
{
	while (left) {
		ssize_t r = read(in, wb->buf, left < COPY_CHUNK ? left : COPY_CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return false;
		left -= (size_t)r;
	}
	return true;
}

/* The job's data into the store file; 0 or an errno. *STUCK when what
 * failed could not be emptied out of the pipe. */
static int do_job(struct wb *wb, struct wb_job *j, bool *stuck)
{
	int in = j->s->pipe[j->pi][0], err = 0;
	off_t off = j->off;
	size_t left = j->len;

	while (left) {
		ssize_t r = splice(in, NULL, j->s->fd, &off, left, SPLICE_F_MOVE);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && errno == EINVAL) {
			err = copy_through(wb, in, j->s->fd, &off, &left);
			break;
		}
		if (r <= 0) {
			err = r < 0 ? errno : EIO;
			break;
		}
		left -= (size_t)r;
	}
	*stuck = err && !discard(wb, in, left);
	return err;
}

static void *writer_main(void *arg)
{
	struct wb *wb = arg;

	pthread_setname_np(pthread_self(), "writebehind");

	pthread_mutex_lock(&wb->mu);
	for (;;) {
		while (!wb->head && !wb->stop)
			pthread_cond_wait(&wb->work, &wb->mu);
		struct wb_job *j = wb->head;
		if (!j)
			break;
		wb->head = j->next;
		if (!wb->head)
			wb->tail = NULL;
		pthread_mutex_unlock(&wb->mu);
		bool stuck;
		int err = do_job(wb, j, &stuck);
		pthread_mutex_lock(&wb->mu);
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
	pthread_mutex_unlock(&wb->mu);
	return NULL;
}

/* Under the lock. */
static int start_thread(struct wb *wb)
{
	pthread_attr_t attr;
	sigset_t all, old;
	int rc;

	if (wb->started)
		return 0;
	if (!wb->buf && !(wb->buf = malloc(COPY_CHUNK)))
		return -ENOMEM;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, &old);
	rc = pthread_create(&wb->thread, &attr, writer_main, wb);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	pthread_attr_destroy(&attr);
	if (rc)
		return -rc;
	wb->started = true;
	return 0;
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
		rc = start_thread(wb);
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
	if (s->broken) {
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
	*j = (struct wb_job){ .s = s, .pi = pi, .off = off, .len = (size_t)n, .seq = ++wb->queued };
	if (wb->tail)
		wb->tail->next = j;
	else
		wb->head = j;
	wb->tail = j;
	s->group->last = j->seq;
	pthread_cond_signal(&wb->work);
	pthread_mutex_unlock(&wb->mu);
	return n;
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
