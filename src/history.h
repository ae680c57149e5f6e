/* history: the past runs of each script, kept in the store.
 *
 * Owns: ".runs/<stem>/<n>/" in a directory's meta folder, which the mount
 * shows read-only as ".runs/<stem>/<n>/": for run N of the script with that
 * stem, the code that ran (under the script's name), "out", "err", "error",
 * "status", and "result" when the run had a main result. The last KEEP runs
 * of each stem stay. Once a stem has KEEP, its oldest run's folder is renamed
 * to the new run's number and its files overwritten, so that a run creates
 * and deletes no inodes. Plain file operations on directory fds: no FUSE.
 */
#ifndef AGENTBAYFS_HISTORY_H
#define AGENTBAYFS_HISTORY_H

#include <stddef.h>
#include <stdint.h>

struct history_run {
	const char *stem;
	uint64_t n;              /* the run's number, from 1 */
	const char *script;      /* "a.py" */
	const char *code;
	size_t code_len;
	int out_fd, err_fd;      /* the run's output files, open for reading; -1: none */
	const char *error;       /* the texts of the run's ".error" and ".status" */
	const char *status;
	int result_fd;           /* its main result, open for reading; -1: none */
};

/* Keeps run R in the history of META (the meta folder), dropping older
 * runs of its stem beyond KEEP (KEEP 0: does nothing). 0 or -errno. */
int history_keep(int meta, const struct history_run *r, unsigned keep);

/* The highest run number kept for STEM, 0 when none. */
uint64_t history_last(int meta, const char *stem);

/* Drops the history of STEM, and ".runs" once it is empty. */
void history_remove(int meta, const char *stem);

#endif
