/* Unit tests for writebehind.h: writes queued from pipes land in the file
 * in the order they were queued, settling waits for them, and a failed
 * write's error reaches the writer once. Real pipes, files and the real
 * thread; no mount. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "writebehind.h"

#define CHUNK (64 * 1024)

/* A source pipe holding one write's data, as libfuse's would. */
struct src {
	int p[2];
	int fail;                /* fill returns -fail instead */
	size_t limit;            /* fill moves at most this much (0: all) */
};

static void src_open(struct src *s, const char *data, size_t len)
{
	memset(s, 0, sizeof(*s));
	assert_int_equal(pipe2(s->p, O_CLOEXEC), 0);
	assert_true(fcntl(s->p[1], F_SETPIPE_SZ, 1 << 20) >= (int)len);
	for (size_t at = 0; at < len;) {
		ssize_t w = write(s->p[1], data + at, len - at);
		assert_true(w > 0);
		at += (size_t)w;
	}
}

static void src_close(struct src *s)
{
	close(s->p[0]);
	close(s->p[1]);
}

static ssize_t fill(void *arg, int pipe_fd, size_t len)
{
	struct src *s = arg;

	if (s->fail)
		return -s->fail;
	if (s->limit && len > s->limit)
		len = s->limit;
	ssize_t n = splice(s->p[0], NULL, pipe_fd, NULL, len, SPLICE_F_NONBLOCK);
	return n < 0 ? (errno == EAGAIN ? 0 : -errno) : n;
}

/* Queues LEN bytes of C at OFF; returns what wb_stream_write returned. */
static ssize_t put(struct wb_stream *st, off_t off, char c, size_t len)
{
	char *data = malloc(len);
	struct src s;
	ssize_t n;

	assert_non_null(data);
	memset(data, c, len);
	src_open(&s, data, len);
	n = wb_stream_write(st, off, len, fill, &s);
	src_close(&s);
	free(data);
	return n;
}

/* A removed temporary file, open read-write, or reopened with FLAGS when
 * FLAGS is not -1. */
static int tmpfile_fd(int flags)
{
	char path[] = "/tmp/wbtest-XXXXXX";
	int fd = mkostemp(path, O_CLOEXEC);

	assert_true(fd >= 0);
	if (flags != -1) {
		int fd2 = open(path, flags | O_CLOEXEC);
		assert_true(fd2 >= 0);
		close(fd);
		fd = fd2;
	}
	unlink(path);
	return fd;
}

static void expect_content(int fd, off_t off, char c, size_t len)
{
	char *buf = malloc(len);

	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, len, off), (ssize_t)len);
	for (size_t i = 0; i < len; i++)
		if (buf[i] != c)
			fail_msg("byte %zu at %lld is %d, not %d", i, (long long)off, buf[i], c);
	free(buf);
}

static void test_writes_land_in_order_after_settle(void **state)
{
	struct wb *wb;
	struct wb_stream *st;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(-1);
	struct stat sb;

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &st), 0);
	assert_true(wb_stream_max(st) >= CHUNK);
	for (int i = 0; i < 64; i++)
		assert_int_equal(put(st, (off_t)i * CHUNK, (char)('A' + i % 26), CHUNK), CHUNK);
	/* The same bytes again: the later write wins. */
	assert_int_equal(put(st, 5 * CHUNK, 'z', CHUNK), CHUNK);
	wb_settle(wb, &g);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, 64 * CHUNK);
	for (int i = 0; i < 64; i++)
		expect_content(fd, (off_t)i * CHUNK, i == 5 ? 'z' : (char)('A' + i % 26), CHUNK);
	assert_int_equal(wb_stream_take_error(st), 0);
	assert_int_equal(wb_stream_free(st), 0);
	wb_free(wb);
	close(fd);
}

static void test_two_streams_one_group_keep_order(void **state)
{
	struct wb *wb;
	struct wb_stream *a, *b;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(-1), fd2 = dup(fd);

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &a), 0);
	assert_int_equal(wb_stream_new(wb, fd2, &g, 1 << 20, &b), 0);
	for (int i = 0; i < 20; i++) {
		assert_int_equal(put(a, 0, 'a', CHUNK), CHUNK);
		assert_int_equal(put(b, 0, 'b', CHUNK), CHUNK);
	}
	assert_int_equal(put(a, CHUNK, 'c', CHUNK), CHUNK);
	wb_settle(wb, &g);
	expect_content(fd, 0, 'b', CHUNK);
	expect_content(fd, CHUNK, 'c', CHUNK);
	assert_int_equal(wb_stream_free(a), 0);
	assert_int_equal(wb_stream_free(b), 0);
	wb_free(wb);
	close(fd);
	close(fd2);
}

static void test_settle_all_and_other_groups(void **state)
{
	struct wb *wb;
	struct wb_stream *a, *b;
	struct wb_group ga = { 0 }, gb = { 0 }, none = { 0 };
	int fa = tmpfile_fd(-1), fb = tmpfile_fd(-1);

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	wb_settle(wb, NULL);          /* nothing queued: at once */
	wb_settle(wb, &none);
	assert_int_equal(wb_stream_new(wb, fa, &ga, 1 << 20, &a), 0);
	assert_int_equal(wb_stream_new(wb, fb, &gb, 1 << 20, &b), 0);
	for (int i = 0; i < 8; i++) {
		assert_int_equal(put(a, (off_t)i * CHUNK, 'x', CHUNK), CHUNK);
		assert_int_equal(put(b, (off_t)i * CHUNK, 'y', CHUNK), CHUNK);
	}
	wb_settle(wb, NULL);
	expect_content(fa, 0, 'x', 8 * CHUNK);
	expect_content(fb, 0, 'y', 8 * CHUNK);
	wb_settle(wb, &none);
	assert_int_equal(wb_stream_free(a), 0);
	assert_int_equal(wb_stream_free(b), 0);
	wb_free(wb);
	close(fa);
	close(fb);
}

/* A write the file refuses (here: a descriptor not open for writing)
 * fails in the thread; the stream's next write gives the error, once, and
 * the stream works again after it. */
static void test_failed_write_reported_at_next_write(void **state)
{
	struct wb *wb;
	struct wb_stream *st;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(O_RDONLY);

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &st), 0);
	assert_int_equal(put(st, 0, 'q', CHUNK), CHUNK);
	wb_settle(wb, &g);
	assert_int_equal(put(st, CHUNK, 'q', CHUNK), -EBADF);
	/* Given once; the pipe was emptied of the failed data. */
	assert_int_equal(put(st, 0, 'q', CHUNK), CHUNK);
	assert_int_equal(wb_stream_take_error(st), -EBADF);
	assert_int_equal(wb_stream_take_error(st), 0);
	/* Not taken: freeing the stream gives it. */
	assert_int_equal(put(st, 0, 'q', CHUNK), CHUNK);
	assert_int_equal(wb_stream_free(st), -EBADF);
	wb_free(wb);
	close(fd);
}

/* splice() cannot write to a file open with O_APPEND: the data goes
 * through a buffer instead, and is not lost. */
static void test_append_mode_falls_back_to_copy(void **state)
{
	struct wb *wb;
	struct wb_stream *st;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(O_WRONLY | O_APPEND), rfd;
	char path[64];

	(void)state;
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	rfd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(rfd >= 0);
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &st), 0);
	assert_int_equal(put(st, 0, 'm', 3 * CHUNK), 3 * CHUNK);
	assert_int_equal(put(st, 0, 'n', CHUNK), CHUNK);
	assert_int_equal(wb_stream_free(st), 0);
	expect_content(rfd, 0, 'm', 3 * CHUNK);
	expect_content(rfd, 3 * CHUNK, 'n', CHUNK);
	wb_free(wb);
	close(rfd);
	close(fd);
}

/* What the fill could not move is the caller's: a short fill queues what
 * moved, an empty one nothing, a failed one gives its error. */
static void test_short_and_failed_fills(void **state)
{
	struct wb *wb;
	struct wb_stream *st;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(-1);
	char data[CHUNK];
	struct src s;
	struct stat sb;

	(void)state;
	memset(data, 'k', sizeof(data));
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &st), 0);
	src_open(&s, data, sizeof(data));
	s.limit = 4096;
	assert_int_equal(wb_stream_write(st, 0, sizeof(data), fill, &s), 4096);
	s.limit = 0;
	s.fail = EIO;
	assert_int_equal(wb_stream_write(st, 4096, sizeof(data) - 4096, fill, &s), -EIO);
	src_close(&s);
	src_open(&s, data, 0);       /* an empty source: nothing moves */
	assert_int_equal(wb_stream_write(st, 4096, 4096, fill, &s), 0);
	src_close(&s);
	wb_settle(wb, &g);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, 4096);
	expect_content(fd, 0, 'k', 4096);
	assert_int_equal(wb_stream_free(st), 0);
	wb_free(wb);
	close(fd);
}

/* A write larger than a pipe holds is queued in part, never blocked on. */
static void test_write_larger_than_a_pipe_is_cut(void **state)
{
	struct wb *wb;
	struct wb_stream *st;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(-1);
	size_t max;

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 64 * 1024, &st), 0);
	max = wb_stream_max(st);
	assert_true(max > 0 && max < 1 << 20);
	ssize_t n = put(st, 0, 'w', 1 << 20);
	assert_true(n > 0 && (size_t)n <= max);
	wb_settle(wb, &g);
	expect_content(fd, 0, 'w', (size_t)n);
	assert_int_equal(wb_stream_free(st), 0);
	wb_free(wb);
	close(fd);
}

/* Chunk I of the kill tests: a byte pattern that shows order and place. */
static char chunk_byte(int i)
{
	return (char)('a' + i % 23);
}

/* The writer (here a forked copy of the test) is killed with writes still
 * queued: the helper finishes them, and lets go of the held descriptor
 * only then. So once the held pipe reads end-of-file, the file holds every
 * write that was answered. */
static void test_helper_finishes_after_the_writer_is_killed(void **state)
{
	int fd = tmpfile_fd(-1), held[2], st;
	enum { N = 24 };
	size_t len = 0;

	(void)state;
	assert_int_equal(pipe2(held, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct wb *wb;
		struct wb_stream *s;
		struct wb_group g = { 0 };
		close(held[0]);
		if (wb_new(&wb) < 0)
			_exit(2);
		wb_hold(wb, held[1]);
		if (wb_stream_new(wb, fd, &g, 1 << 20, &s) < 0)
			_exit(3);
		len = wb_stream_max(s);
		for (int i = 0; i < N; i++)
			if (put(s, (off_t)i * (off_t)len, chunk_byte(i), len) != (ssize_t)len)
				_exit(4);
		/* No settle, no free: the daemon's kill -9. */
		kill(getpid(), SIGKILL);
		_exit(5);
	}
	close(held[1]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	char c;
	assert_int_equal(read(held[0], &c, 1), 0);   /* the helper is done */
	close(held[0]);
	len = (1 << 20) - 4096;
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)(N * len));
	for (int i = 0; i < N; i++)
		expect_content(fd, (off_t)i * (off_t)len, chunk_byte(i), len);
	close(fd);
}

/* The helper is killed while writes are queued: the daemon writes what it
 * had not (the rest of each pipe), writes synchronously after that, and no
 * byte is lost or misplaced. */
static void test_helper_killed_daemon_takes_over(void **state)
{
	struct wb *wb;
	struct wb_stream *s, *s2;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(-1), st;
	enum { N = 40 };
	size_t len;

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &s), 0);
	len = wb_stream_max(s);
	pid_t helper = wb_helper(wb);
	assert_true(helper > 0);
	for (int i = 0; i < N; i++) {
		if (i == N / 2)
			assert_int_equal(kill(helper, SIGKILL), 0);
		ssize_t n = put(s, (off_t)i * (off_t)len, chunk_byte(i), len);
		if (n == 0) {
			/* Refused once the helper is known gone: the caller's. */
			char *data = malloc(len);
			assert_non_null(data);
			memset(data, chunk_byte(i), len);
			wb_settle(wb, &g);
			assert_int_equal(pwrite(fd, data, len, (off_t)i * (off_t)len), (ssize_t)len);
			free(data);
		} else {
			assert_int_equal(n, (ssize_t)len);
		}
	}
	wb_settle(wb, &g);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)(N * len));
	for (int i = 0; i < N; i++)
		expect_content(fd, (off_t)i * (off_t)len, chunk_byte(i), len);
	assert_int_equal(wb_stream_take_error(s), 0);
	/* No new helper: a new stream is refused (its writes go synchronous). */
	assert_int_equal(wb_stream_new(wb, fd, &g, 1 << 20, &s2), -EPIPE);
	assert_int_equal(wb_stream_free(s), 0);
	assert_int_equal(waitpid(helper, &st, 0), helper);
	wb_free(wb);
	close(fd);
}

static void test_free_without_streams(void **state)
{
	struct wb *wb;

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	wb_settle(wb, NULL);
	wb_free(wb);
	wb_free(NULL);
	wb_settle(NULL, NULL);
	assert_int_equal(wb_stream_free(NULL), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_writes_land_in_order_after_settle),
		cmocka_unit_test(test_two_streams_one_group_keep_order),
		cmocka_unit_test(test_settle_all_and_other_groups),
		cmocka_unit_test(test_failed_write_reported_at_next_write),
		cmocka_unit_test(test_append_mode_falls_back_to_copy),
		cmocka_unit_test(test_short_and_failed_fills),
		cmocka_unit_test(test_write_larger_than_a_pipe_is_cut),
		cmocka_unit_test(test_helper_finishes_after_the_writer_is_killed),
		cmocka_unit_test(test_helper_killed_daemon_takes_over),
		cmocka_unit_test(test_free_without_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
