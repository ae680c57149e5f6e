/* result: the one result model every backend fills in.
 *
 * Owns: the outcome of one run, shaped after the AgentBay SDK's
 * EnhancedCodeExecutionResult (logs are streamed separately, as files), plus
 * what a local process adds: exit code, signal, truncation, final state.
 * Also owns how an error is rendered into the ".error" file.
 * Pure data and formatting: no I/O, no FUSE.
 */
#ifndef AGENTBAYFS_RESULT_H
#define AGENTBAYFS_RESULT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum run_state {
	RS_NONE = 0,     /* no run yet */
	RS_PENDING,      /* saved, waiting to start */
	RS_RUNNING,
	RS_SUCCEEDED,
	RS_FAILED,
	RS_TIMED_OUT,
	RS_CANCELLED,
	RS_INTERRUPTED,  /* the daemon stopped during the run */
};

const char *run_state_name(enum run_state s);
enum run_state run_state_from_name(const char *name);  /* RS_NONE if unknown */
bool run_state_final(enum run_state s);

/* One rich result: a MIME bundle as in Jupyter (text/plain, image/png, ...). */
struct mime_entry {
	char *mime;
	char *data;      /* text, base64 for images, JSON text for JSON types */
};

struct rich_result {
	struct mime_entry *entries;
	size_t n;
	bool is_main;
};

struct exec_error {
	char *name;      /* "ZeroDivisionError", "TimeoutError", ... */
	char *value;     /* the message */
	char *traceback; /* may be NULL */
};

struct exec_result {
	enum run_state state;        /* final state */
	int exit_code;               /* -1 when unknown or killed */
	int signal;                  /* 0 when none */
	bool truncated;
	bool has_error;
	struct exec_error error;
	struct rich_result *results;
	size_t n_results;
	int64_t execution_count;     /* -1 when unknown */
};

void exec_result_init(struct exec_result *r);
void exec_result_free(struct exec_result *r);

/* Sets the error (copies the strings; NULLs allowed). Returns 0 or -ENOMEM. */
int exec_result_set_error(struct exec_result *r, const char *name, const char *value,
			  const char *traceback);

/* Adds a rich result, taking ownership of ENTRIES. Returns 0 or -ENOMEM. */
int exec_result_add(struct exec_result *r, struct mime_entry *entries, size_t n, bool is_main);

/* The text of the ".error" file: empty without error; else "Name: value\n"
 * ("Name\n" when the value is empty) then the traceback, newline-terminated.
 * Returns a malloc'd string. */
char *exec_error_render(const struct exec_result *r);

/* Human name of a signal number ("SIGKILL"), or "signal N". */
const char *signal_name(int sig, char *buf, size_t bufsz);

#endif
