/* Unit tests for pycode.h: the bootstrap compiled once, loaded by the stub,
 * and the stub's fallback to compiling the source. Needs python3. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "pycode.h"

static const char *python(void)
{
	return access("/usr/bin/python3", X_OK) == 0 ? "/usr/bin/python3" : NULL;
}

/* Runs PY -I -c STUB SOURCE ARG with FD as PYCODE_FD (-1: none); its
 * stdout and stderr, malloc'd. */
static char *run_stub(const char *py, const char *stub, const char *source, int fd)
{
	int p[2];
	char buf[4096];
	size_t len = 0;

	assert_int_equal(pipe(p), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		dup2(p[1], 1);
		dup2(p[1], 2);
		if (fd >= 0)
			dup2(fd, PYCODE_FD);
		else
			close(PYCODE_FD);
		execl(py, py, "-I", "-c", stub, source, "arg", (char *)NULL);
		_exit(127);
	}
	close(p[1]);
	for (ssize_t n; (n = read(p[0], buf + len, sizeof(buf) - 1 - len)) > 0;)
		len += (size_t)n;
	close(p[0]);
	buf[len] = '\0';
	int status;
	assert_int_equal(waitpid(pid, &status, 0), pid);
	return strdup(buf);
}

static void test_compiled_code_runs_from_the_memfd(void **state)
{
	struct pycode pc;
	char why[256];
	const char *py = python();

	(void)state;
	if (!py)
		skip();
	assert_int_equal(pycode_build(&pc, py, "import sys\nprint('compiled', sys.argv[1:])\n", why,
				      sizeof(why)), 0);
	assert_true(pc.fd >= 0);
	/* The source after the stub is not what runs: the compiled code is. */
	char *out = run_stub(py, pc.stub, "print('compiled the source')", pc.fd);
	assert_string_equal(out, "compiled ['arg']\n");
	free(out);
	/* Sealed: no run can change what the next one runs. */
	assert_int_equal(write(pc.fd, "x", 1), -1);
	assert_int_equal(errno, EPERM);
	pycode_free(&pc);
	assert_int_equal(pc.fd, -1);
}

static void test_stub_compiles_the_source_without_the_code(void **state)
{
	struct pycode pc;
	char why[256];
	const char *py = python();

	(void)state;
	if (!py)
		skip();
	assert_int_equal(pycode_build(&pc, py, "print('compiled')\n", why, sizeof(why)), 0);
	/* No fd: the source. */
	char *out = run_stub(py, pc.stub, "import sys\nprint('source', sys.argv[1:])", -1);
	assert_string_equal(out, "source ['arg']\n");
	free(out);
	/* Code of another interpreter (another cache tag): the source. */
	int other = memfd_create("other", MFD_CLOEXEC);
	assert_true(other >= 0);
	assert_int_equal(write(other, "cpython-27\nXXXX", 15), 15);
	out = run_stub(py, pc.stub, "print('source again')", other);
	assert_string_equal(out, "source again\n");
	free(out);
	close(other);
	pycode_free(&pc);
}

static void test_failures_say_why(void **state)
{
	struct pycode pc;
	char why[256];
	const char *py = python();

	(void)state;
	assert_true(pycode_build(&pc, "/nonexistent/python3", "pass\n", why, sizeof(why)) < 0);
	assert_int_equal(pc.fd, -1);
	assert_non_null(strstr(why, "/nonexistent/python3"));
	assert_true(pycode_build(&pc, "/bin/false", "pass\n", why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "status 1"));
	/* Output that is not a tag line and code. */
	assert_true(pycode_build(&pc, "/bin/true", "pass\n", why, sizeof(why)) < 0);
	assert_int_equal(pc.fd, -1);
	if (!py)
		skip();
	assert_true(pycode_build(&pc, py, "def (:\n", why, sizeof(why)) < 0);
	assert_non_null(strstr(why, "SyntaxError"));
	assert_int_equal(pc.fd, -1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compiled_code_runs_from_the_memfd),
		cmocka_unit_test(test_stub_compiles_the_source_without_the_code),
		cmocka_unit_test(test_failures_say_why),
	};
	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
