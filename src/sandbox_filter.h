/* sandbox_filter: the seccomp filter every sandboxed run gets.
 *
 * Owns: the list of system calls a script may not make and the classic-BPF
 * program that enforces it, as bubblewrap's --seccomp expects it (a plain
 * array of struct sock_filter). No FUSE, no processes: the program is built
 * in memory and can be loaded and tried by a test.
 *
 * What it refuses (EPERM unless said): tracing and reading other processes
 * (ptrace, process_vm_readv/writev, kcmp, pidfd_getfd), the kernel's larger
 * attack surfaces a script has no use for (bpf, perf_event_open,
 * userfaultfd, keyctl/add_key/request_key, io_uring: ENOSYS so runtimes fall
 * back), mounts and namespaces (mount and the new mount API, pivot_root,
 * unshare, setns), modules, kexec, reboot, swap, accounting, the kernel log,
 * quotas, and pushing input into a terminal (ioctl TIOCSTI, TIOCLINUX).
 * System calls of another ABI than the daemon's own (i386 through int 0x80,
 * x32) are refused with ENOSYS, so none of the above slips through them.
 */
#ifndef AGENTBAYFS_SANDBOX_FILTER_H
#define AGENTBAYFS_SANDBOX_FILTER_H

#include <linux/filter.h>
#include <stddef.h>

/* Most instructions sandbox_filter_build() writes. */
#define SANDBOX_FILTER_MAX 160

/* Writes the program into PROG (room for CAP instructions). The number of
 * instructions, or -ENOSPC when CAP is too small, or -ENOTSUP when the
 * daemon's architecture is not one it knows. */
int sandbox_filter_build(struct sock_filter *prog, size_t cap);

/* A memfd holding the program at offset 0, for bwrap --seccomp (which reads
 * it to the end): one per run, since runs would share a file offset. The fd,
 * or -errno. */
int sandbox_filter_memfd(void);

#endif
