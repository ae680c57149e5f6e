/* pycode: the Python bootstrap, compiled once per daemon.
 *
 * Owns: compiling the bootstrap with the interpreter that runs the scripts,
 * once, into a sealed memfd that every sandbox gets as fd PYCODE_FD, and the
 * short -c program that runs the code from there. Without it each run's
 * interpreter compiles the 12 KB bootstrap itself: a quarter of the
 * instructions of a cold start, every run. The program falls back to
 * compiling the source (passed after it) when the interpreter is no longer
 * the one that compiled the code. Plain C: no FUSE.
 */
#ifndef AGENTBAYFS_PYCODE_H
#define AGENTBAYFS_PYCODE_H

#include <stddef.h>

/* Where the sandbox finds the compiled bootstrap. */
#define PYCODE_FD 7

struct pycode {
	int fd;          /* the sealed memfd, or -1: runs compile the source */
	char stub[512];  /* the -c program; argv[1] after it is the source */
};

/* Compiles SOURCE with PYTHON (-I -S: no site, no environment) and keeps the
 * result in PC. 0, or -errno with WHY saying what failed; PC->fd is then -1
 * and runs go on without it. SIGPIPE must be ignored (the daemon does). */
int pycode_build(struct pycode *pc, const char *python, const char *source, char *why, size_t whysz);

/* Closes what pycode_build() opened. */
void pycode_free(struct pycode *pc);

#endif
