/* mountinfo: reading the kernel's mount table (/proc/self/mountinfo).
 *
 * Owns: parsing its lines ("ID PARENT MAJ:MIN ROOT POINT OPTIONS [...] -
 * TYPE SOURCE SUPER", with octal escapes) to find a FUSE mount by its mount
 * point, and a mount by its device. No FUSE, no threads: see mount_watch.h
 * for who watches the table.
 */
#ifndef AGENTBAYFS_MOUNTINFO_H
#define AGENTBAYFS_MOUNTINFO_H

#include <sys/types.h>

/* All of the file FD from its start, NUL terminated and malloc'd, or NULL
 * with errno set. */
char *mountinfo_read(int fd);

/* Looks through TEXT (a whole mount table; changed in place). With MNT:
 * *DEV becomes the device of the newest FUSE mount on MNT (listed last).
 * Without: whether a mount of *DEV is there. 1 found, 0 not. */
int mountinfo_scan(char *text, const char *mnt, dev_t *dev);

/* mountinfo_scan() of what FD holds: 1, 0, or -errno. */
int mountinfo_scan_fd(int fd, const char *mnt, dev_t *dev);

#endif
