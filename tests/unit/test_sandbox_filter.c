/* The seccomp filter, loaded for real in a forked child: what it refuses is
 * refused with the right errno, and what a script needs still works. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/ptrace.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "sandbox_filter.h"

#define NPROBES 12

/* What each probe returned in the filtered child: 0 or the errno. */
struct outcome {
	int loaded;
	int err[NPROBES];
};

static int probe_errno(long rc)
{
	return rc < 0 ? errno : 0;
}

static void run_probes(struct outcome *o)
{
	int p[2] = { -1, -1 };
	int avail = 0;
	char c = 'x';

	if (pipe(p) < 0 || write(p[1], &c, 1) != 1)
		return;
	o->err[0] = probe_errno(ptrace(PTRACE_TRACEME, 0, NULL, NULL));
	o->err[1] = probe_errno(syscall(SYS_process_vm_readv, getppid(), NULL, 0, NULL, 0, 0));
	o->err[2] = probe_errno(ioctl(p[0], TIOCSTI, &c));
	/* High bits set: the kernel takes only the low 32. */
	o->err[3] = probe_errno(syscall(SYS_ioctl, p[0], (unsigned long)TIOCSTI | 0x100000000ul, &c));
	o->err[4] = probe_errno(syscall(SYS_io_uring_setup, 1, NULL));
	o->err[5] = probe_errno(unshare(CLONE_NEWUSER));
	o->err[6] = probe_errno(syscall(SYS_bpf, 0, NULL, 0));
	o->err[7] = probe_errno(syscall(SYS_keyctl, 0, 0, 0, 0, 0));
	o->err[8] = probe_errno(syscall(SYS_mount, "none", "/", "tmpfs", 0, NULL));
	/* Allowed: an ordinary ioctl, reading, getting one's pid. */
	o->err[9] = probe_errno(ioctl(p[0], FIONREAD, &avail));
	o->err[10] = probe_errno(read(p[0], &c, 1));
	o->err[11] = probe_errno(syscall(SYS_getpid));
	close(p[0]);
	close(p[1]);
}

static struct outcome filtered(void)
{
	struct outcome o;
	int p[2];
	pid_t pid;
	int st;

	memset(&o, 0, sizeof(o));
	assert_int_equal(pipe(p), 0);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct sock_filter prog[SANDBOX_FILTER_MAX];
		int n = sandbox_filter_build(prog, SANDBOX_FILTER_MAX);
		struct sock_fprog fprog = { .len = (unsigned short)n, .filter = prog };
		close(p[0]);
		if (n > 0 && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0 &&
		    prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog) == 0) {
			o.loaded = 1;
			run_probes(&o);
		}
		if (write(p[1], &o, sizeof(o)) != (ssize_t)sizeof(o))
			_exit(2);
		_exit(0);
	}
	close(p[1]);
	assert_int_equal(read(p[0], &o, sizeof(o)), (ssize_t)sizeof(o));
	close(p[0]);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return o;
}

static void test_refuses_tracing_and_kernel_surfaces(void **state)
{
	struct outcome o = filtered();

	(void)state;
	assert_int_equal(o.loaded, 1);
	assert_int_equal(o.err[0], EPERM);   /* ptrace */
	assert_int_equal(o.err[1], EPERM);   /* process_vm_readv */
	assert_int_equal(o.err[2], EPERM);   /* TIOCSTI */
	assert_int_equal(o.err[3], EPERM);   /* TIOCSTI with high bits */
	assert_int_equal(o.err[4], ENOSYS);  /* io_uring: runtimes fall back */
	assert_int_equal(o.err[5], EPERM);   /* unshare */
	assert_int_equal(o.err[6], EPERM);   /* bpf */
	assert_int_equal(o.err[7], EPERM);   /* keyctl */
	assert_int_equal(o.err[8], EPERM);   /* mount */
}

static void test_allows_ordinary_calls(void **state)
{
	struct outcome o = filtered();

	(void)state;
	assert_int_equal(o.loaded, 1);
	assert_int_equal(o.err[9], 0);
	assert_int_equal(o.err[10], 0);
	assert_int_equal(o.err[11], 0);
}

static void test_too_small_a_buffer(void **state)
{
	struct sock_filter prog[8];

	(void)state;
	assert_int_equal(sandbox_filter_build(prog, 8), -ENOSPC);
}

static void test_memfd_holds_the_program(void **state)
{
	struct sock_filter prog[SANDBOX_FILTER_MAX], back[SANDBOX_FILTER_MAX];
	int n = sandbox_filter_build(prog, SANDBOX_FILTER_MAX);
	int fd = sandbox_filter_memfd();

	(void)state;
	assert_true(n > 0);
	assert_true(fd >= 0);
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	assert_int_equal(read(fd, back, sizeof(back)), (ssize_t)(n * sizeof(prog[0])));
	assert_memory_equal(prog, back, (size_t)n * sizeof(prog[0]));
	close(fd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_refuses_tracing_and_kernel_surfaces),
		cmocka_unit_test(test_allows_ordinary_calls),
		cmocka_unit_test(test_too_small_a_buffer),
		cmocka_unit_test(test_memfd_holds_the_program),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
