/* run_uids: claims are exclusive between holders, come back when released,
 * refuse a lock directory others could write; as root, the sweep and the
 * guard take down processes of the claimed uids and no others. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "run_uids.h"

/* Far above the uids real daemons take first (chunk 0 up), so that a mount
 * running meanwhile is not swept. */
#define BASE (2147352576u + 49152u)

struct fixture {
	char dir[64];
	char locks[96];
};

static int setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));

	snprintf(f->dir, sizeof(f->dir), "/tmp/abfs-uids-XXXXXX");
	if (!mkdtemp(f->dir))
		return -1;
	snprintf(f->locks, sizeof(f->locks), "%s/locks", f->dir);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[160];

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", f->dir);
	if (system(cmd) != 0)
		return -1;
	free(f);
	return 0;
}

static bool overlap(const struct run_uids *a, const struct run_uids *b)
{
	for (unsigned i = 0; i < a->count; i++)
		for (unsigned j = 0; j < b->count; j++)
			if (a->uid[i] == b->uid[j])
				return true;
	return false;
}

static void test_claims_are_exclusive(void **state)
{
	struct fixture *f = *state;
	struct run_uids a, b, c;
	char err[256];

	assert_int_equal(run_uids_claim(&a, BASE, 100, f->locks, err, sizeof(err)), 0);
	assert_int_equal(a.count, 100);
	assert_int_equal(a.nlocks, 2);
	for (unsigned i = 0; i < a.count; i++) {
		assert_true(a.uid[i] >= BASE && a.uid[i] < BASE + RUN_UIDS_SPAN);
		for (unsigned j = 0; j < i; j++)
			assert_true(a.uid[i] != a.uid[j]);
	}
	assert_int_equal(run_uids_claim(&b, BASE, 10, f->locks, err, sizeof(err)), 0);
	assert_false(overlap(&a, &b));
	/* Released chunks are free again. */
	run_uids_release(&a);
	assert_int_equal(run_uids_claim(&c, BASE, 64, f->locks, err, sizeof(err)), 0);
	assert_int_equal(c.uid[0], BASE);
	assert_false(overlap(&b, &c));
	run_uids_release(&b);
	run_uids_release(&c);
	struct stat st;
	assert_int_equal(stat(f->locks, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0700);
}

static void test_lock_dir_others_can_write_is_refused(void **state)
{
	struct fixture *f = *state;
	struct run_uids a;
	char err[256];

	assert_int_equal(mkdir(f->locks, 0700), 0);
	assert_int_equal(chmod(f->locks, 0777), 0);
	assert_int_equal(run_uids_claim(&a, BASE, 4, f->locks, err, sizeof(err)), -EPERM);
	assert_non_null(strstr(err, f->locks));
	assert_int_equal(a.count, 0);
}

static void test_too_many(void **state)
{
	struct fixture *f = *state;
	struct run_uids a;
	char err[256];

	assert_int_equal(run_uids_claim(&a, BASE, RUN_UIDS_SPAN + 1, f->locks, err, sizeof(err)), -EINVAL);
	assert_int_equal(run_uids_claim(&a, BASE, 0, f->locks, err, sizeof(err)), -EINVAL);
}

/* A process running as UID (root only). */
static pid_t as_uid(uid_t uid)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			_exit(3);
		for (;;)
			pause();
	}
	return pid;
}

static bool killed_within(pid_t pid, int ms)
{
	int st;

	for (int i = 0; i < ms; i += 10) {
		pid_t r = waitpid(pid, &st, WNOHANG);
		if (r == pid)
			return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
		struct timespec ts = { 0, 10 * 1000 * 1000 };
		nanosleep(&ts, NULL);
	}
	return false;
}

static void test_guard_sweeps_when_released(void **state)
{
	struct fixture *f = *state;
	struct run_uids a;
	char err[256];

	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_int_equal(run_uids_claim(&a, BASE, 2, f->locks, err, sizeof(err)), 0);
	/* One uid outside the claim: never touched. */
	uid_t outside = a.uid[0] + RUN_UIDS_CHUNK;
	pid_t mine = as_uid(a.uid[1]);
	pid_t other = as_uid(outside);
	assert_true(mine > 0 && other > 0);
	assert_int_equal(run_uids_start_guard(&a), 0);
	assert_false(killed_within(mine, 100));
	run_uids_release(&a);    /* the guard sees the daemon go */
	assert_true(killed_within(mine, 2000));
	assert_false(killed_within(other, 100));
	kill(other, SIGKILL);
	waitpid(other, NULL, 0);
}

static void test_claim_sweeps_leftovers(void **state)
{
	struct fixture *f = *state;
	struct run_uids a, b;
	char err[256];

	if (geteuid() != 0) {
		skip();
		return;
	}
	assert_int_equal(run_uids_claim(&a, BASE, 1, f->locks, err, sizeof(err)), 0);
	uid_t u = a.uid[0];
	run_uids_release(&a);
	pid_t left = as_uid(u);
	assert_false(killed_within(left, 100));
	assert_int_equal(run_uids_claim(&b, BASE, 1, f->locks, err, sizeof(err)), 0);
	assert_int_equal(b.uid[0], u);
	assert_true(killed_within(left, 2000));
	run_uids_release(&b);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_claims_are_exclusive, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lock_dir_others_can_write_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_too_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_guard_sweeps_when_released, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claim_sweeps_leftovers, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
