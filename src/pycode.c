/* pycode: see pycode.h */
#define _GNU_SOURCE
#include "pycode.h"
#include "storefile.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define OUT_MAX (4u << 20)
#define BUILD_TIMEOUT_MS 20000

/* Run with -I -S -c: the bootstrap's source on stdin; on stdout the
 * interpreter's cache tag (what a .pyc of it is valid for), a newline, and
 * the marshalled code. */
static const char compiler[] =
	"import marshal,sys\n"
	"c=compile(sys.stdin.buffer.read(),'<string>','exec')\n"
	"sys.stdout.buffer.write(sys.implementation.cache_tag.encode()+b'\\n'+marshal.dumps(c))\n";

/* The -c program of a run: loads the code from PYCODE_FD, or compiles the
 * source in argv[1] when the tag is not this interpreter's (it was replaced
 * since) or the code is not there. Either way argv[1] goes, so that the
 * bootstrap sees the arguments it always did. %zu: the code's size. */
static const char stub_fmt[] =
	"import marshal,os,sys\n"
	"def _agentbayfs_load(s=sys.argv.pop(1)):\n"
	" try:d=os.pread(%d,%zu,0);os.close(%d)\n"
	" except OSError:d=b''\n"
	" t,_,d=d.partition(b'\\n')\n"
	" return marshal.loads(d)if t==sys.implementation.cache_tag.encode()else compile(s,'<string>','exec')\n"
	"exec(_agentbayfs_load())\n";

static long ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - t0->tv_sec) * 1000 + (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/* Reads FD to its end into *OUT (malloc'd), within the deadline from T0. */
static int drain(int fd, const struct timespec *t0, char **out, size_t *len)
{
	size_t cap = 64 << 10;
	char *buf = malloc(cap);

	*len = 0;
	if (!buf)
		return -ENOMEM;
	for (;;) {
		long left = BUILD_TIMEOUT_MS - ms_since(t0);
		struct pollfd p = { .fd = fd, .events = POLLIN };
		if (left <= 0) {
			free(buf);
			return -ETIMEDOUT;
		}
		int r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (r == 0)
			continue;
		if (*len == cap) {
			char *more = cap < OUT_MAX ? realloc(buf, cap * 2) : NULL;
			if (!more) {
				free(buf);
				return cap < OUT_MAX ? -ENOMEM : -EFBIG;
			}
			buf = more;
			cap *= 2;
		}
		ssize_t n = read(fd, buf + *len, cap - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int e = errno;
			free(buf);
			return -e;
		}
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	*out = buf;
	return 0;
}

/* The code in a sealed memfd: readable by every run, changed by none. */
static int seal(const char *data, size_t len)
{
	int fd = memfd_create("agentbayfs-bootstrap", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0)
		return -errno;
	int rc = storefile_write_all(fd, data, len);
	if (rc == 0 && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}

/* Whether OUT is a tag line and some code, and not an error message. */
static bool well_formed(const char *out, size_t len)
{
	const char *nl = memchr(out, '\n', len < 64 ? len : 64);

	if (!nl || nl == out || (size_t)(nl - out) + 1 >= len)
		return false;
	for (const char *p = out; p < nl; p++)
		if (*p <= ' ' || *p > '~')
			return false;
	return true;
}

/* The last line of what failed, for WHY. */
static void last_line(char *why, size_t whysz, const char *out, size_t len)
{
	while (len > 0 && (out[len - 1] == '\n' || out[len - 1] == '\r'))
		len--;
	size_t start = len;
	while (start > 0 && out[start - 1] != '\n')
		start--;
	snprintf(why, whysz, "%.*s", (int)(len - start > 200 ? 200 : len - start), out + start);
}

int pycode_build(struct pycode *pc, const char *python, const char *source, char *why, size_t whysz)
{
	int in[2] = { -1, -1 }, out[2] = { -1, -1 }, rc, status = 0;
	char *text = NULL;
	size_t len = 0;
	pid_t pid = -1;
	posix_spawn_file_actions_t fa;
	struct timespec t0;
	char flag_i[] = "-I", flag_s[] = "-S", flag_c[] = "-c";
	char *const argv[] = { (char *)python, flag_i, flag_s, flag_c, (char *)compiler, NULL };
	char *const envp[] = { NULL };

	pc->fd = -1;
	pc->stub[0] = '\0';
	snprintf(why, whysz, "?");
	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		rc = -errno;
		snprintf(why, whysz, "pipe: %s", strerror(-rc));
		goto out;
	}
	if ((rc = -posix_spawn_file_actions_init(&fa)) < 0) {
		snprintf(why, whysz, "posix_spawn: %s", strerror(-rc));
		goto out;
	}
	posix_spawn_file_actions_adddup2(&fa, in[0], 0);
	posix_spawn_file_actions_adddup2(&fa, out[1], 1);
	posix_spawn_file_actions_adddup2(&fa, out[1], 2);
	rc = -posix_spawn(&pid, python, &fa, NULL, argv, envp);
	posix_spawn_file_actions_destroy(&fa);
	if (rc < 0) {
		pid = -1;
		snprintf(why, whysz, "cannot start %s: %s", python, strerror(-rc));
		goto out;
	}
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	/* The compiler reads all of its input before it writes: no deadlock. */
	rc = storefile_write_all(in[1], source, strlen(source));
	close(in[1]);
	in[1] = -1;
	if (rc == 0 || rc == -EPIPE)
		rc = drain(out[0], &t0, &text, &len);
	if (rc < 0) {
		snprintf(why, whysz, "reading from %s: %s", python, strerror(-rc));
		kill(pid, SIGKILL);
	}
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (rc == 0 && (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !well_formed(text, len))) {
		rc = -EINVAL;
		if (WIFSIGNALED(status))
			snprintf(why, whysz, "%s ended by signal %d", python, WTERMSIG(status));
		else if (len > 0 && WEXITSTATUS(status) != 0)
			last_line(why, whysz, text, len);
		else
			snprintf(why, whysz, "%s exited with status %d and %zu bytes of output that are "
				 "not compiled code", python, WEXITSTATUS(status), len);
	}
	if (rc == 0 && (rc = seal(text, len)) < 0)
		snprintf(why, whysz, "memfd: %s", strerror(-rc));
	if (rc >= 0) {
		pc->fd = rc;
		snprintf(pc->stub, sizeof(pc->stub), stub_fmt, PYCODE_FD, len, PYCODE_FD);
		rc = 0;
	}
out:
	for (int i = 0; i < 2; i++) {
		if (in[i] >= 0)
			close(in[i]);
		if (out[i] >= 0)
			close(out[i]);
	}
	free(text);
	return rc;
}

void pycode_free(struct pycode *pc)
{
	if (pc->fd >= 0)
		close(pc->fd);
	pc->fd = -1;
}
