/* run_uids: the uids this daemon's sandboxed runs use when it is root.
 *
 * Owns: claiming, for this daemon alone on the machine, one uid per run slot
 * from the run range (LOCAL_UID_BASE and the 65,536 uids after it), in
 * chunks of RUN_UIDS_CHUNK held by an flock on a file each in a lock
 * directory (/run/agentbayfs). The kernel drops a lock when the daemon dies,
 * however it dies, so chunks are never lost; and since no two daemons share
 * a uid, the per-uid process limit of one mount's runs cannot be used up by
 * another mount's fork bomb.
 *
 * Also owns taking every process of those uids down ("sweeping"): when the
 * chunks are claimed (what a daemon killed before may have left), and from a
 * guard process forked at claim time, which waits for the daemon to go and
 * then sweeps again, so a run caught half set up by a `kill -9` of the
 * daemon does not outlive it. The guard keeps the chunks locked until it is
 * done, so it never touches the runs of a daemon that claims them next.
 */
#ifndef AGENTBAYFS_RUN_UIDS_H
#define AGENTBAYFS_RUN_UIDS_H

#include <stddef.h>
#include <sys/types.h>

#define RUN_UIDS_CHUNK 64u
#define RUN_UIDS_SPAN 65536u
#define RUN_UIDS_LOCK_DIR "/run/agentbayfs"

struct run_uids {
	unsigned count;   /* slots */
	uid_t *uid;       /* uid[slot] */
	unsigned nlocks;
	int *lock_fd;
	pid_t guard;      /* 0: none */
	int guard_fd;     /* write end the guard waits on; -1: none */
};

/* Claims COUNT uids starting at BASE's range, locking in LOCK_DIR (created
 * mode 0700 when missing), and sweeps them. 0, or -errno with ERR filled. */
int run_uids_claim(struct run_uids *ru, uid_t base, unsigned count, const char *lock_dir,
		   char *err, size_t errsz);

/* Forks the guard. 0 or -errno. Call before the daemon's run thread starts
 * reaping children, or let it reap the guard. */
int run_uids_start_guard(struct run_uids *ru);

/* Kills every process running as one of the claimed uids. Needs root. */
void run_uids_sweep(const struct run_uids *ru);

/* Stops the guard (which sweeps once more), then drops the locks. */
void run_uids_release(struct run_uids *ru);

#endif
