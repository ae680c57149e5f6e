/* fs: the FUSE glue, and the one state struct of the daemon.
 *
 * Owns: the inode table (stored files and directories, and the virtual result
 * files), open handles (and their write-behind streams, writebehind.h), the
 * low-level operations table, read requests parked until a run produces
 * more output or ends, or the mount is detached, and the pollers of result
 * files waiting for the same.
 * Everything else it asks of the engine (saves, runs, result files) and of
 * names.h (what is a script, what is a result).
 */
#ifndef AGENTBAYFS_FS_H
#define AGENTBAYFS_FS_H

#define FUSE_USE_VERSION 312
#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdbool.h>

#include "engine.h"
#include "mount_watch.h"
#include "options.h"
#include "poll_notify.h"
#include "writebehind.h"

struct handle;
struct node;
struct open_link;
struct waiter;

struct node_table {
	struct node **buckets;
	size_t n_buckets;
	size_t count;
};

struct afs {
	struct config cfg;
	struct engine *eng;
	struct backend *backend;
	struct fuse_session *se;
	struct node *root;
	struct node *overview;      /* "/.agentbayfs/" and its "status" */
	struct node *overview_file;
	struct node_table nodes;
	struct waiter *waiters;     /* parked reads of result files */
	struct handle *pollers;     /* result handles with a poll to wake (engine lock) */
	struct poll_notify pn;      /* sends the wake-ups */
	struct node *graveyard;     /* forgotten directories, freed at exit */
	struct rglue *rglues;       /* per-record glue, freed at exit */
	bool detached;              /* the mount is gone: no read waits (engine lock) */
	pthread_mutex_t open_lock;  /* guards the two lists below */
	struct open_link *open_files; /* handles the kernel has not released */
	struct open_link *open_dirs;
	struct mount_watch watch;
	struct wb *wb;               /* large writes finished behind the writer */
	uid_t uid;
	gid_t gid;
};

extern const struct fuse_lowlevel_ops afs_ops;

/* Opens the store root. 0, or -errno. */
int afs_init_root(struct afs *fs, const char *store);
/* The engine's hooks, with FS as their user data. */
extern const struct engine_hooks afs_hooks;
/* The mount was detached and the engine shut down: answers the reads still
 * waiting, and from now on a read never waits (a caught-up reader of .out
 * or .err gets end-of-file). Call without the engine lock, from a thread
 * of the daemon's own, never from a FUSE handler. */
void afs_detached(struct afs *fs);
/* The FUSE loop has ended (a signal, or the unmount): answers the reads
 * still waiting with ENOTCONN, so that no reply is sent once the session's
 * descriptor is closed, and from now on a read never waits. Call before
 * fuse_session_unmount(), without the engine lock. */
void afs_loop_ended(struct afs *fs);
/* Frees the inode table and whatever else the glue holds. */
void afs_free(struct afs *fs);

#endif
