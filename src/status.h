/* status: the run record and its JSON form, the ".status" file.
 *
 * Owns: the fields a run's record holds, rendering them as JSON (valid at
 * every moment, including mid-run) and parsing them back after a remount.
 * Pure: no I/O, no FUSE. Uses cJSON.
 */
#ifndef AGENTBAYFS_STATUS_H
#define AGENTBAYFS_STATUS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "result.h"

struct run_record {
	char script[256];        /* file name of the script that ran, e.g. "a.py" */
	enum lang lang;
	char backend[16];        /* "local", "agentbay" */
	uint64_t run;            /* per-script counter, 1 for the first run */
	enum run_state state;
	int exit_code;           /* -1: null */
	int signal;              /* 0: null */
	int64_t saved_at_ms;     /* wall clock, ms since the epoch; 0: null */
	int64_t started_at_ms;
	int64_t finished_at_ms;
	uint64_t stdout_bytes;
	uint64_t stderr_bytes;
	bool truncated;
	char *error_name;        /* NULL: no error */
	char *error_value;
	char *results_json;      /* JSON array summing up rich results; NULL: none */
	int64_t execution_count; /* the backend's counter, -1: null */
};

void run_record_init(struct run_record *r);
void run_record_clear_error(struct run_record *r);
/* Frees what R holds (error and results); R can be initialised again. */
void run_record_free(struct run_record *r);
/* Copies name and value (NULL name clears). Returns 0 or -ENOMEM. */
int run_record_set_error(struct run_record *r, const char *name, const char *value);

/* Sets R's results summary from RES: for each rich result its MIME types,
 * whether it is the main result, and its text/plain form. 0 or -ENOMEM. */
int run_record_set_results(struct run_record *r, const struct exec_result *res);

/* JSON text ending in a newline; malloc'd; NULL on ENOMEM. */
char *status_render(const struct run_record *r);

/* Parses JSON text into R (which must be initialised; strings it held are
 * replaced). Returns 0, or -EINVAL when the text is not a status record. */
int status_parse(const char *text, size_t len, struct run_record *r);

/* RFC 3339 in UTC with milliseconds: "2026-11-22T05:00:00.123Z". */
void format_rfc3339(int64_t ms, char *buf, size_t bufsz);
/* Inverse of format_rfc3339 (also accepts no fraction). -1 when malformed. */
int64_t parse_rfc3339(const char *s);

#endif
