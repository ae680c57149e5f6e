/* storefile: see storefile.h */
#define _GNU_SOURCE
#include "storefile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int open_dst(int dir, const char *name)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);

	return fd < 0 ? -errno : fd;
}

int storefile_write_all(int fd, const void *buf, size_t len)
{
	const char *data = buf;

	for (size_t off = 0; off < len;) {
		ssize_t n = write(fd, data + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		off += (size_t)n;
	}
	return 0;
}

static int close_keep(int fd, int rc)
{
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

int storefile_write(int dir, const char *name, const char *data, size_t len)
{
	int fd = open_dst(dir, name);

	if (fd < 0)
		return fd;
	return close_keep(fd, storefile_write_all(fd, data, len));
}

int storefile_copy(int in, int dst_dir, const char *dst_name)
{
	int out = open_dst(dst_dir, dst_name), rc = 0;
	off_t pos = 0;
	char buf[65536];

	if (out < 0)
		return out;
	for (;;) {
		ssize_t n = copy_file_range(in, &pos, out, NULL, 1 << 30, 0);
		if (n > 0)
			continue;
		if (n == 0)
			break;
		if (errno == EINTR)
			continue;
		if (errno != EXDEV && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP) {
			rc = -errno;
			break;
		}
		/* No in-kernel copy here: read and write. */
		while (rc == 0 && (n = pread(in, buf, sizeof(buf), pos)) != 0) {
			if (n < 0 && errno == EINTR)
				continue;
			rc = n < 0 ? -errno : storefile_write_all(out, buf, (size_t)n);
			pos += n > 0 ? n : 0;
		}
		break;
	}
	return close_keep(out, rc);
}

int storefile_remove_tree(int dir, const char *name)
{
	int fd, rc = 0;
	DIR *d;
	struct dirent *de;

	if (unlinkat(dir, name, 0) == 0 || errno == ENOENT)
		return 0;
	if (errno != EISDIR && errno != EPERM)
		return -errno;
	fd = openat(dir, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	d = fdopendir(fd);
	if (!d) {
		rc = -errno;
		close(fd);
		return rc;
	}
	while ((de = readdir(d)) != NULL) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		int r = storefile_remove_tree(dirfd(d), de->d_name);
		if (r < 0 && rc == 0)
			rc = r;
	}
	closedir(d);
	if (unlinkat(dir, name, AT_REMOVEDIR) < 0 && errno != ENOENT && rc == 0)
		rc = -errno;
	return rc;
}
