#define _GNU_SOURCE
#include "sandbox_filter.h"
#include "storefile.h"

#include <endian.h>
#include <errno.h>
#include <linux/audit.h>
#include <linux/seccomp.h>
#include <stdint.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#endif

#ifndef TIOCLINUX
#define TIOCLINUX 0x541C
#endif

struct refusal {
	int nr;
	int err;
};

/* Only the calls this architecture has. */
static const struct refusal refused[] = {
	/* Other processes: tracing, reading and writing their memory. */
	{ __NR_ptrace, EPERM },
	{ __NR_process_vm_readv, EPERM },
	{ __NR_process_vm_writev, EPERM },
	{ __NR_kcmp, EPERM },
#ifdef __NR_pidfd_getfd
	{ __NR_pidfd_getfd, EPERM },
#endif
	/* Kernel surfaces with a record of exploits and no use to a script. */
	{ __NR_bpf, EPERM },
	{ __NR_perf_event_open, EPERM },
	{ __NR_userfaultfd, EPERM },
	{ __NR_keyctl, EPERM },
	{ __NR_add_key, EPERM },
	{ __NR_request_key, EPERM },
#ifdef __NR_io_uring_setup
	/* ENOSYS: runtimes (libuv) treat it as an old kernel and fall back. */
	{ __NR_io_uring_setup, ENOSYS },
	{ __NR_io_uring_enter, ENOSYS },
	{ __NR_io_uring_register, ENOSYS },
#endif
	/* Mounts and namespaces. */
	{ __NR_mount, EPERM },
	{ __NR_umount2, EPERM },
	{ __NR_pivot_root, EPERM },
#ifdef __NR_open_tree
	{ __NR_open_tree, EPERM },
	{ __NR_move_mount, EPERM },
	{ __NR_fsopen, EPERM },
	{ __NR_fsconfig, EPERM },
	{ __NR_fsmount, EPERM },
	{ __NR_fspick, EPERM },
#endif
#ifdef __NR_mount_setattr
	{ __NR_mount_setattr, EPERM },
#endif
	{ __NR_unshare, EPERM },
	{ __NR_setns, EPERM },
	/* The machine itself. */
	{ __NR_init_module, EPERM },
	{ __NR_finit_module, EPERM },
	{ __NR_delete_module, EPERM },
	{ __NR_kexec_load, EPERM },
#ifdef __NR_kexec_file_load
	{ __NR_kexec_file_load, EPERM },
#endif
	{ __NR_reboot, EPERM },
	{ __NR_swapon, EPERM },
	{ __NR_swapoff, EPERM },
	{ __NR_acct, EPERM },
	{ __NR_syslog, EPERM },
	{ __NR_quotactl, EPERM },
#ifdef __NR_quotactl_fd
	{ __NR_quotactl_fd, EPERM },
#endif
#ifdef __NR_uselib
	{ __NR_uselib, EPERM },
#endif
	{ __NR_lookup_dcookie, EPERM },
	{ __NR_open_by_handle_at, EPERM },
	{ __NR_vhangup, EPERM },
};

#if __BYTE_ORDER == __LITTLE_ENDIAN
#define ARG_LOW(n) (offsetof(struct seccomp_data, args) + 8 * (n))
#else
#define ARG_LOW(n) (offsetof(struct seccomp_data, args) + 8 * (n) + 4)
#endif

#define ERRNO_RET(e) (SECCOMP_RET_ERRNO | ((uint32_t)(e) & SECCOMP_RET_DATA))

int sandbox_filter_build(struct sock_filter *prog, size_t cap)
{
#ifndef NATIVE_ARCH
	(void)prog;
	(void)cap;
	return -ENOTSUP;
#else
	size_t n = 0;
	const size_t need = 4 + 2 + 2 * (sizeof(refused) / sizeof(refused[0])) + 6;

	if (need > cap || need > SANDBOX_FILTER_MAX)
		return -ENOSPC;
#define EMIT(insn) (prog[n++] = (struct sock_filter)insn)
	/* Another ABI than ours: nothing of it. */
	EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
	EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0));
	EMIT(BPF_STMT(BPF_RET | BPF_K, ERRNO_RET(ENOSYS)));
	EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
#if defined(__x86_64__)
	/* x32 calls share the arch value and carry this bit in the number. */
	EMIT(BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, 0x40000000u, 0, 1));
	EMIT(BPF_STMT(BPF_RET | BPF_K, ERRNO_RET(ENOSYS)));
#endif
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (uint32_t)refused[i].nr, 0, 1));
		EMIT(BPF_STMT(BPF_RET | BPF_K, ERRNO_RET(refused[i].err)));
	}
	/* ioctl's request is an unsigned int to the kernel: compare the low
	 * 32 bits only, or a request with high bits set would slip past. */
	EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_ioctl, 0, 3));
	EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LOW(1)));
	EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCSTI, 2, 0));
	EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, TIOCLINUX, 1, 0));
	EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
	EMIT(BPF_STMT(BPF_RET | BPF_K, ERRNO_RET(EPERM)));
#undef EMIT
	return (int)n;
#endif
}

int sandbox_filter_memfd(void)
{
	struct sock_filter prog[SANDBOX_FILTER_MAX];
	int n = sandbox_filter_build(prog, SANDBOX_FILTER_MAX);
	int fd;

	if (n < 0)
		return n;
	fd = memfd_create("agentbayfs-seccomp", MFD_CLOEXEC);
	if (fd < 0)
		return -errno;
	int rc = storefile_write_all(fd, prog, (size_t)n * sizeof(prog[0]));
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	return fd;
}
