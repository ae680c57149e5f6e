/* mountinfo: finding our FUSE mount by its mount point, and then by its
 * device only, in tables like the kernel writes them. */
#define _GNU_SOURCE
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <unistd.h>
#include <errno.h>
#include <cmocka.h>

#include "mountinfo.h"

static const char table[] =
	"22 1 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw\n"
	"97 29 0:44 / /mnt/a\\040b rw,nosuid,nodev,relatime shared:50 - fuse.agentbayfs agentbayfs rw,user_id=0\n"
	"98 29 0:45 / /mnt/agentbay rw,nosuid,nodev,relatime shared:51 - fuse.agentbayfs agentbayfs rw\n"
	"99 98 0:46 / /mnt/agentbay rw,relatime - tmpfs tmpfs rw\n"
	"100 29 0:47 / /mnt/agentbay rw,nosuid,nodev,relatime - fuse.agentbayfs agentbayfs rw\n"
	"not a mount line\n"
	"101 29 0:48 / /short rw\n";

static int scan(const char *mnt, dev_t *dev)
{
	char *copy = strdup(table);
	int rc = mountinfo_scan(copy, mnt, dev);

	free(copy);
	return rc;
}

static void test_finds_the_newest_fuse_mount_on_a_path(void **state)
{
	dev_t dev = 0;

	(void)state;
	/* The tmpfs on top of the first is not FUSE; the last FUSE one wins. */
	assert_int_equal(scan("/mnt/agentbay", &dev), 1);
	assert_int_equal(major(dev), 0);
	assert_int_equal(minor(dev), 47);
}

static void test_unescapes_the_mount_point(void **state)
{
	dev_t dev = 0;

	(void)state;
	assert_int_equal(scan("/mnt/a b", &dev), 1);
	assert_int_equal(minor(dev), 44);
	assert_int_equal(scan("/mnt/a\\040b", &dev), 0);
}

static void test_finds_by_device(void **state)
{
	dev_t dev = makedev(0, 45);

	(void)state;
	assert_int_equal(scan(NULL, &dev), 1);
	dev = makedev(0, 49);
	assert_int_equal(scan(NULL, &dev), 0);
	/* A line cut short (no " - TYPE") is skipped, not misread. */
	dev = makedev(0, 48);
	assert_int_equal(scan(NULL, &dev), 0);
}

static void test_not_mounted(void **state)
{
	dev_t dev = 0;

	(void)state;
	assert_int_equal(scan("/proc", &dev), 0);   /* not FUSE */
	assert_int_equal(scan("/nowhere", &dev), 0);
}

static void test_reads_a_file_from_its_start(void **state)
{
	int fd = memfd_create("mountinfo", MFD_CLOEXEC);
	dev_t dev = 0;
	char *big;
	size_t n = 0;

	(void)state;
	assert_true(fd >= 0);
	/* Larger than the first buffer, and read twice. */
	big = malloc(200000);
	while (n + sizeof(table) < 200000) {
		memcpy(big + n, table, sizeof(table) - 1);
		n += sizeof(table) - 1;
	}
	assert_int_equal(write(fd, big, n), (ssize_t)n);
	for (int i = 0; i < 2; i++) {
		assert_int_equal(mountinfo_scan_fd(fd, "/mnt/agentbay", &dev), 1);
		assert_int_equal(minor(dev), 47);
	}
	char *text = mountinfo_read(fd);
	assert_non_null(text);
	assert_int_equal(strlen(text), n);
	free(text);
	free(big);
	close(fd);
	assert_int_equal(mountinfo_scan_fd(fd, "/mnt/agentbay", &dev), -EBADF);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_finds_the_newest_fuse_mount_on_a_path),
		cmocka_unit_test(test_unescapes_the_mount_point),
		cmocka_unit_test(test_finds_by_device),
		cmocka_unit_test(test_not_mounted),
		cmocka_unit_test(test_reads_a_file_from_its_start),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
