/* engine: the save -> run machine, and the results it leaves in the store.
 *
 * Owns: the run records of every script (one per directory and stem), the
 * queue of runs and the limit on runs at once, the hand-off to the backend,
 * and the result files in each directory's hidden ".agentbayfs" folder of the
 * store: "<stem>.out" and "<stem>.err" (streamed), "<stem>.error" and
 * "<stem>.status" (replaced atomically); the rich results "<stem>.result"
 * and "<stem>.results/" (rich_files.h), gone when a new run begins and
 * stored at its end; and the history of runs, ".runs/" (history.h). Knows nothing of FUSE: the glue asks
 * it to mark a save pending, to run a save, and to forget a script, and it
 * calls hooks->changed() whenever a record's data or state moved.
 *
 * A full store: when a ".status" or ".error" cannot be replaced, it is
 * overwritten in place, else left empty, and the engine keeps its text (the
 * glue serves both from the record anyway), so it never goes missing. A run
 * that could not store all of its output or results ends failed with a
 * "StoreError" (truncated when output was lost); the first failure of each
 * run is logged, once.
 *
 * Locking: one mutex (engine_lock). Every function here expects it held,
 * except engine_new, engine_shutdown and engine_free. hooks->changed() is
 * called with it held.
 */
#ifndef AGENTBAYFS_ENGINE_H
#define AGENTBAYFS_ENGINE_H

#include <stdbool.h>
#include <stdint.h>

#include "backend.h"
#include "names.h"
#include "status.h"

struct engine;
struct job;

/* A directory of the mount: where its scripts' results are kept. */
struct workspace {
	struct engine *eng;
	int store_fd;            /* O_PATH fd of the directory in the store */
	int meta_fd;             /* O_PATH fd of its ".agentbayfs" folder, or -1 */
	struct record *records;
	char *path;              /* in the mount, for the backend ("/", "/sub") */
	uint64_t id;             /* for the backend: never reused */
};

struct record {
	struct workspace *ws;
	struct record *next;
	char *stem;
	struct run_record rr;    /* what ".status" says */
	char *error_text;        /* what ".error" says once the run is final */
	int out_fd, err_fd;      /* where the current run's output goes; -1 once it cannot */
	unsigned unstored;       /* 1 << kind: the newest text of that kind is only in memory */
	unsigned readers[RK_COUNT]; /* fds of engine_result_open() not yet closed (atomic) */
	int store_err;           /* errno of the current run's first failure to store; 0: none */
	bool output_lost;        /* some of the current run's output could not be stored */
	struct job *job;         /* queued or running; NULL otherwise */
	void *glue;              /* the FUSE layer's own data */
};

struct engine_hooks {
	void (*changed)(void *ud, struct record *rec);
};

struct engine_config {
	unsigned jobs;
	unsigned timeout_s;
	uint64_t max_output;
	uint64_t max_script_size;
	unsigned history;        /* runs kept per script in ".runs/"; 0: none */
	const char *backend_name;
};

struct engine *engine_new(const struct engine_config *cfg, struct backend *backend,
			  const struct engine_hooks *hooks, void *ud);
void engine_lock(struct engine *e);
void engine_unlock(struct engine *e);
/* Cancels queued and running runs and waits until the backend has ended
 * them, leaving every record final on disk. Call without the lock. */
void engine_shutdown(struct engine *e);
void engine_free(struct engine *e);

/* The meta folder of WS (an O_PATH fd the engine owns), or -errno; ENOENT
 * while nothing was stored there. */
int engine_meta_fd(struct workspace *ws);

/* Waits until the runs that ended have their history written (a run's
 * folder appears at its end, for whoever saw the end). Lock held; it is
 * let go while waiting. */
void engine_history_wait(struct engine *e);

/* What runs and what ran lately, for "watch cat": queued, running and
 * the most recent finished runs of this mount, one per line, with their
 * elapsed time. A malloc'd text, NULL on ENOMEM. */
char *engine_overview(struct engine *e);

/* A workspace for a store directory (STORE_FD is dup'ed). NULL on ENOMEM. */
struct workspace *engine_workspace_new(struct engine *e, int store_fd, const char *path);

/* The directory of WS was removed: the backend may drop what it kept for it. */
void engine_workspace_removed(struct workspace *ws);

/* The record of STEM in WS, loaded from the store on first use (a run that
 * was cut off by a crash is marked interrupted then). With CREATE false, NULL
 * when the stem has no results. */
struct record *engine_record(struct workspace *ws, const char *stem, size_t stem_len, bool create);

/* True when the result file of KIND exists for REC (or, for status and
 * error, when its text could not be stored and is kept in memory). */
bool engine_result_exists(struct record *rec, enum result_kind kind);
/* Opens the result file of KIND for reading; -errno on error. A status or
 * error text the store could not take at all comes as a copy in memory. */
int engine_result_open(struct record *rec, enum result_kind kind);
/* Closes FD, which engine_result_open() gave for KIND of REC. Any thread,
 * lock held or not: while an output file is open, the engine never writes
 * over it (see fresh_output() in engine.c). */
void engine_result_close(struct record *rec, enum result_kind kind, int fd);
/* Removes one result file. 0 or -errno. */
int engine_result_unlink(struct record *rec, enum result_kind kind);

/* A save of SCRIPT began (FLUSH of a changed file): results go pending. */
struct record *engine_save_begin(struct workspace *ws, const char *script, enum lang lang);
/* A save of SCRIPT is complete (last RELEASE, or RENAME onto it): snapshot
 * the content from FD and run it, in LANG, with a time limit of TIMEOUT_S
 * seconds (0: the mount's). FD is only read here. */
void engine_save_commit(struct workspace *ws, const char *script, enum lang lang, unsigned timeout_s, int fd);
/* A save begun on REC will not complete (the file went away first). */
void engine_save_abandon(struct record *rec, const char *why);
/* SCRIPT was deleted: if it owns its stem's results, they go too. */
void engine_script_removed(struct workspace *ws, const char *script);

/* True while RUN of REC may still produce output or change state. */
bool engine_run_active(const struct record *rec, uint64_t run);

/* Wall clock in ms since the epoch. */
int64_t engine_now_ms(void);

#endif
