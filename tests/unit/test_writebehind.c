/* Unit tests for writebehind.h: queued writes land in the file in the
 * order they were queued, settling waits for them, a failed write's error
 * reaches the writer once, and nothing answered is lost when the writer or
 * the helper is killed. Real files and the real helper process; no mount. */
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

/* One write's data, as libfuse hands it over. */
struct src {
	const char *data;
	size_t len, at;
	int fail;                /* fill returns -fail instead */
	size_t limit;            /* fill copies at most this much (0: all) */
};

static ssize_t fill(void *arg, void *dst, size_t len)
{
	struct src *s = arg;

	if (s->fail)
		return -s->fail;
	if (s->limit && len > s->limit)
		len = s->limit;
	if (len > s->len - s->at)
		len = s->len - s->at;
	memcpy(dst, s->data + s->at, len);
	s->at += len;
	return (ssize_t)len;
}

/* Queues LEN bytes of C at OFF; returns what wb_stream_write returned. */
static ssize_t put(struct wb_stream *st, off_t off, char c, size_t len)
{
	char *data = malloc(len);
	struct src s = { .data = data, .len = len };
	ssize_t n;

	assert_non_null(data);
	memset(data, c, len);
	n = wb_stream_write(st, off, len, fill, &s);
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
	assert_int_equal(wb_stream_new(wb, fd, &g, &st), 0);
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
	assert_int_equal(wb_stream_new(wb, fd, &g, &a), 0);
	assert_int_equal(wb_stream_new(wb, fd2, &g, &b), 0);
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
	assert_int_equal(wb_stream_new(wb, fa, &ga, &a), 0);
	assert_int_equal(wb_stream_new(wb, fb, &gb, &b), 0);
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
	assert_int_equal(wb_stream_new(wb, fd, &g, &st), 0);
	assert_int_equal(put(st, 0, 'q', CHUNK), CHUNK);
	wb_settle(wb, &g);
	assert_int_equal(put(st, CHUNK, 'q', CHUNK), -EBADF);
	/* Given once; the stream works again after it. */
	assert_int_equal(put(st, 0, 'q', CHUNK), CHUNK);
	assert_int_equal(wb_stream_take_error(st), -EBADF);
	assert_int_equal(wb_stream_take_error(st), 0);
	/* Not taken: freeing the stream gives it. */
	assert_int_equal(put(st, 0, 'q', CHUNK), CHUNK);
	assert_int_equal(wb_stream_free(st), -EBADF);
	wb_free(wb);
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
	assert_int_equal(wb_stream_new(wb, fd, &g, &st), 0);
	s = (struct src){ .data = data, .len = sizeof(data), .limit = 4096 };
	assert_int_equal(wb_stream_write(st, 0, sizeof(data), fill, &s), 4096);
	s.limit = 0;
	s.fail = EIO;
	assert_int_equal(wb_stream_write(st, 4096, sizeof(data) - 4096, fill, &s), -EIO);
	s = (struct src){ .data = data, .len = 0 };   /* an empty source: nothing moves */
	assert_int_equal(wb_stream_write(st, 4096, 4096, fill, &s), 0);
	wb_settle(wb, &g);
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, 4096);
	expect_content(fd, 0, 'k', 4096);
	assert_int_equal(wb_stream_free(st), 0);
	wb_free(wb);
	close(fd);
}

/* A write larger than a slot is queued in part, never blocked on. */
static void test_write_larger_than_a_slot_is_cut(void **state)
{
	struct wb *wb;
	struct wb_stream *st;
	struct wb_group g = { 0 };
	int fd = tmpfile_fd(-1);
	size_t max;

	(void)state;
	assert_int_equal(wb_new(&wb), 0);
	assert_int_equal(wb_stream_new(wb, fd, &g, &st), 0);
	max = wb_stream_max(st);
	assert_int_equal(max, 1 << 20);
	ssize_t n = put(st, 0, 'w', max + 4096);
	assert_int_equal(n, (ssize_t)max);
	wb_settle(wb, &g);
	expect_content(fd, 0, 'w', (size_t)n);
	assert_int_equal(wb_stream_free(st), 0);
	wb_free(wb);
	close(fd);
}

/* Six files written in turns share the four slots: each gets its own
 * bytes, in order. */
static void test_more_streams_than_slots(void **state)
{
	enum { FILES = 6, ROUNDS = 10 };
	struct wb *wb;
	struct wb_stream *st[FILES];
	struct wb_group g[FILES];
	int fd[FILES];

	(void)state;
	memset(g, 0, sizeof(g));
	assert_int_equal(wb_new(&wb), 0);
	for (int f = 0; f < FILES; f++) {
		fd[f] = tmpfile_fd(-1);
		assert_int_equal(wb_stream_new(wb, fd[f], &g[f], &st[f]), 0);
	}
	for (int r = 0; r < ROUNDS; r++)
		for (int f = 0; f < FILES; f++)
			assert_int_equal(put(st[f], (off_t)r * CHUNK, (char)('a' + f + r), CHUNK), CHUNK);
	for (int f = 0; f < FILES; f++) {
		wb_settle(wb, &g[f]);
		for (int r = 0; r < ROUNDS; r++)
			expect_content(fd[f], (off_t)r * CHUNK, (char)('a' + f + r), CHUNK);
		assert_int_equal(wb_stream_free(st[f]), 0);
		close(fd[f]);
	}
	wb_free(wb);
}

/* Chunk I of the kill tests: a byte pattern that shows order and place. */
static char chunk_byte(int i)
{
	return (char)('a' + i % 23);
}

/* Process state of PID from /proc (R, S, T, ...), or 0. */
static char proc_state(pid_t pid)
{
	char path[64], buf[256];
	ssize_t n;
	int f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = open(path, O_RDONLY | O_CLOEXEC);
	if (f < 0)
		return 0;
	n = read(f, buf, sizeof(buf) - 1);
	close(f);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	char *p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* The writer (here a forked copy of the test) is killed with writes still
 * queued: the helper finishes them, and lets go of the held descriptor
 * only then. So once the held pipe reads end-of-file, the file holds every
 * write that was answered.
 *
 * Made the hard way: the writer dies with answers of the helper unread and
 * writes the helper has not taken yet (it was stopped while waiting for
 * them). The kernel then gives the helper's next read a reset ahead of
 * those writes, which must not end it. */
static void test_helper_finishes_after_the_writer_is_killed(void **state)
{
	int fd = tmpfile_fd(-1), held[2], tell[2], st;
	enum { N = 4 };
	size_t len = 1 << 20;
	pid_t helper;

	(void)state;
	assert_int_equal(pipe2(held, O_CLOEXEC), 0);
	assert_int_equal(pipe2(tell, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct wb *wb;
		struct wb_stream *s;
		struct wb_group g = { 0 };
		struct stat sb;
		close(held[0]);
		close(tell[0]);
		if (wb_new(&wb) < 0)
			_exit(2);
		wb_hold(wb, held[1]);
		if (wb_stream_new(wb, fd, &g, &s) < 0 || wb_stream_max(s) != len)
			_exit(3);
		helper = wb_helper(wb);
		/* Two writes done and answered (nobody reads the answers:
		 * the slots are not short), the helper asleep waiting for
		 * more; held there. */
		for (int i = 0; i < N / 2; i++)
			if (put(s, (off_t)i * (off_t)len, chunk_byte(i), len) != (ssize_t)len)
				_exit(4);
		while (fstat(fd, &sb) == 0 && (sb.st_size < (off_t)(N / 2) * (off_t)len || proc_state(helper) != 'S'))
			;
		if (kill(helper, SIGSTOP) < 0 || waitpid(helper, &st, WUNTRACED) != helper)
			_exit(5);
		/* Two more, which the stopped helper cannot take yet. */
		for (int i = N / 2; i < N; i++)
			if (put(s, (off_t)i * (off_t)len, chunk_byte(i), len) != (ssize_t)len)
				_exit(6);
		if (write(tell[1], &helper, sizeof(helper)) != sizeof(helper))
			_exit(7);
		/* No settle, no free: the daemon's kill -9. */
		kill(getpid(), SIGKILL);
		_exit(8);
	}
	close(held[1]);
	close(tell[1]);
	assert_int_equal(read(tell[0], &helper, sizeof(helper)), sizeof(helper));
	close(tell[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
	assert_int_equal(kill(helper, SIGCONT), 0);
	char c;
	assert_int_equal(read(held[0], &c, 1), 0);   /* the helper is done */
	close(held[0]);
	struct stat sb;
	assert_int_equal(fstat(fd, &sb), 0);
	assert_int_equal(sb.st_size, (off_t)(N * len));
	for (int i = 0; i < N; i++)
		expect_content(fd, (off_t)i * (off_t)len, chunk_byte(i), len);
	close(fd);
}

/* The helper is killed while writes are queued: the daemon writes the
 * slots it had not answered for, writes synchronously after that, and no
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
	assert_int_equal(wb_stream_new(wb, fd, &g, &s), 0);
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
	assert_int_equal(wb_stream_new(wb, fd, &g, &s2), -EPIPE);
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
		cmocka_unit_test(test_short_and_failed_fills),
		cmocka_unit_test(test_write_larger_than_a_slot_is_cut),
		cmocka_unit_test(test_more_streams_than_slots),
		cmocka_unit_test(test_helper_finishes_after_the_writer_is_killed),
		cmocka_unit_test(test_helper_killed_daemon_takes_over),
		cmocka_unit_test(test_free_without_streams),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
