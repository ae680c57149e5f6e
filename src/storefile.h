/* storefile: small whole-file and whole-tree operations at a directory fd.
 *
 * Owns nothing but the loops every caller would otherwise write again:
 * writing a buffer into a file or an fd, copying one file into another,
 * removing a tree. Never follows a symlink. Each returns 0 or -errno.
 */
#ifndef AGENTBAYFS_STOREFILE_H
#define AGENTBAYFS_STOREFILE_H

#include <stddef.h>

/* All LEN bytes of BUF written to FD at its offset (a pipe, a memfd),
 * through short writes and EINTR. */
int storefile_write_all(int fd, const void *buf, size_t len);

/* DATA (LEN bytes) as the whole content of NAME in DIR, created 0644 if
 * missing, else truncated and overwritten in place. */
int storefile_write(int dir, const char *name, const char *data, size_t len);

/* The content of the file open as IN (read from offset 0, IN's own offset
 * untouched) as the whole content of DST_NAME in DST_DIR (created or
 * overwritten in place). */
int storefile_copy(int in, int dst_dir, const char *dst_name);

/* Removes NAME in DIR, and everything under it when it is a directory.
 * A missing NAME is not an error. */
int storefile_remove_tree(int dir, const char *name);

#endif
