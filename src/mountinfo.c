#define _GNU_SOURCE
#include "mountinfo.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sysmacros.h>
#include <unistd.h>

char *mountinfo_read(int fd)
{
	size_t cap = 0, len = 0;
	char *buf = NULL;

	if (lseek(fd, 0, SEEK_SET) < 0)
		return NULL;
	for (;;) {
		if (cap - len < 4096) {
			size_t ncap = cap ? cap * 2 : 65536;
			char *nbuf = realloc(buf, ncap);
			if (!nbuf) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = nbuf;
			cap = ncap;
		}
		ssize_t n = read(fd, buf + len, cap - len - 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			int err = errno;
			free(buf);
			errno = err;
			return NULL;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	return buf;
}

/* Undoes mountinfo's octal escapes ("\040" for a space), in place. */
static void unescape_octal(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' && s[3] >= '0' &&
		    s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* Splits LINE of mountinfo ("ID PARENT MAJ:MIN ROOT POINT OPTIONS [...] -
 * TYPE SOURCE SUPER") into the device, the mount point and the type.
 * false when it does not parse. */
static bool mountinfo_line(char *line, dev_t *dev, char **point, char **type)
{
	char *f[6], *save = NULL, *t;
	unsigned maj, min;

	for (int i = 0; i < 6; i++) {
		f[i] = strtok_r(i ? NULL : line, " ", &save);
		if (!f[i])
			return false;
	}
	while ((t = strtok_r(NULL, " ", &save)) != NULL && strcmp(t, "-") != 0)
		;
	*type = t ? strtok_r(NULL, " ", &save) : NULL;
	if (!*type || sscanf(f[2], "%u:%u", &maj, &min) != 2)
		return false;
	*dev = makedev(maj, min);
	unescape_octal(f[4]);
	*point = f[4];
	return true;
}

int mountinfo_scan(char *text, const char *mnt, dev_t *dev)
{
	char *line, *save = NULL;
	int found = 0;

	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *point, *type;
		dev_t d;
		if (!mountinfo_line(line, &d, &point, &type))
			continue;
		if (mnt && strcmp(point, mnt) == 0 && strncmp(type, "fuse", 4) == 0) {
			*dev = d;
			found = 1;
		} else if (!mnt && d == *dev) {
			found = 1;
			break;
		}
	}
	return found;
}

int mountinfo_scan_fd(int fd, const char *mnt, dev_t *dev)
{
	char *text = mountinfo_read(fd);
	int found;

	if (!text)
		return -errno;
	found = mountinfo_scan(text, mnt, dev);
	free(text);
	return found;
}
