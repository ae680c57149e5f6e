/* report: what a sandbox's bootstrap says about its run.
 *
 * Owns: reading the bootstrap's report (fd 3 of the sandbox), one JSON
 * object per line, as it comes from the pipe in pieces of any size, and
 * what it holds: the events (ready, start, error, exit, spawn_error) kept
 * as their lines, the rich results ({"event": "result", "main": BOOL,
 * "data": {MIME: TEXT}}) parsed as they come. All of it bounded: a script
 * that writes to fd 3 itself, without end or with huge lines, costs no more
 * than reading it, and never pushes the exit event out. Knows nothing of
 * processes or pipes; local.c feeds it.
 */
#ifndef AGENTBAYFS_REPORT_H
#define AGENTBAYFS_REPORT_H

#include <stdbool.h>
#include <stddef.h>

#include "result.h"

/* The events but results are kept as they came, up to REPORT_MAX; a line of
 * REPORT_SHORT bytes or more may not take the last REPORT_RESERVE of it, so
 * a huge error event never leaves the exit event out. Results are parsed as
 * they come, up to RESULTS_MAX of their lines in all; the rest are dropped
 * (the run says it was truncated). Once REPORT_BUDGET has been read, only
 * short lines are still looked at. */
#define REPORT_MAX (1u << 20)
#define REPORT_RESERVE 4096u
#define REPORT_SHORT 256u
#define RESULTS_MAX (16u << 20)
#define REPORT_BUDGET (REPORT_MAX + RESULTS_MAX)

struct report {
	char *events;              /* the event lines but results, each with its newline */
	size_t events_len;
	size_t seen;               /* bytes of lines looked at */
	char *line;                /* a line cut by a read, waiting for the rest */
	size_t line_len, line_cap;
	bool line_skip;            /* too long: dropped up to its newline */
	bool dropped;              /* a result, or a line, did not fit */
	struct exec_result rich;   /* the rich results, in order */
	size_t rich_bytes;         /* the length of their lines */
};

/* What the events said. */
struct report_events {
	bool ready;          /* a warm sandbox waits for its script */
	bool started;        /* the script started */
	int exit_code;       /* the exit event's code; -1: none */
	int spawn_errno;     /* spawn_error's errno and stage; -1: not said */
	int spawn_stage;
};

void report_init(struct report *rp);
/* Frees what RP holds and makes it empty again. */
void report_free(struct report *rp);
/* N bytes of the report as they came. */
void report_bytes(struct report *rp, const char *buf, size_t n);
/* The report ended: a last line without its newline counts. */
void report_end(struct report *rp);
/* Whether an event named EVENT ("exit", "ready", ...) came, cheaply. */
bool report_has_event(const struct report *rp, const char *event);
/* What the events said; the first error event also goes to RES (NULL:
 * not wanted). */
void report_read(const struct report *rp, struct report_events *ev, struct exec_result *res);
/* Moves the rich results, in order, to RES, which is marked truncated if
 * any part of the report was dropped. */
void report_move_results(struct report *rp, struct exec_result *res);

#endif
