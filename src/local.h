/* local: the local backend, python3 and node under bubblewrap on this machine.
 *
 * Owns: turning a run request into a sandboxed process (bwrap arguments,
 * scrubbed environment, resource limits, a dedicated uid when the daemon is
 * root), watching it (output pipes, the bootstrap's report pipe, exit, time
 * limit) from one thread of its own, and turning how it ended into an
 * exec_result. Every process of a run is gone when the run ends.
 *
 * Also owns the warm pool: per language in use, up to cfg.warm sandboxes
 * started ahead (bwrap and the interpreter up, the bootstrap waiting for a
 * script on a pipe). A run takes one if there is one and otherwise starts
 * cold at once; each is used for exactly one run, with the same isolation
 * and limits as a cold one, and replaced in the background.
 *
 * And the fork servers (cfg.forkserver): Python sandboxes that fork each
 * Python run, with namespaces, file systems and limits of its own, from an
 * interpreter that never ran a script (see bootstrap/run.py), keeping the
 * next run set up ahead; one per slot uid, or one in all without uids. The
 * daemon's side of such a run is a forked helper that exits with the run's
 * status, so it is watched, timed and killed like any other.
 */
#ifndef AGENTBAYFS_LOCAL_H
#define AGENTBAYFS_LOCAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "backend.h"
#include "options.h"

struct local_config {
	enum sandbox_mode sandbox;
	const char *python;     /* absolute paths; NULL or missing: runs fail clearly */
	const char *node;
	const char *bwrap;      /* required with SANDBOX_BWRAP */
	uint64_t memory;
	uint64_t max_file_size;
	uint64_t tmp_size;
	unsigned max_procs;
	unsigned max_open_files;
	unsigned slots;         /* most runs at once (sizes the uid range) */
	unsigned timeout_s;     /* the mount's time limit (spares' CPU limit) */
	unsigned warm;          /* spare sandboxes per language in use; 0: none */
	unsigned warm_idle_s;   /* a language's spares go after this long unused */
	bool drop_uid;          /* run as uid_base + slot (needs root) */
	bool forkserver;        /* Python runs forked from a zygote per slot */
	uid_t uid_base;
};

/* First uid of the range runs use when the daemon is root. */
#define LOCAL_UID_BASE 2147352576u

/* Finds NAME on PATH (or takes it as a path when it has a '/'), resolves
 * symlinks, and checks it is executable. 0 and OUT filled, or -errno. */
int local_find_program(const char *name, char *out, size_t outsz);

/* Creates the backend and starts its thread. NULL and ERR on failure. */
struct backend *local_backend_new(const struct local_config *cfg, char *err, size_t errsz);

#endif
