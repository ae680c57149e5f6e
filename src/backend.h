/* backend: the interface between the run engine and whatever executes code.
 *
 * Owns: the shape of a run request, the events a backend reports while a run
 * goes on, and the three calls every backend offers (start, cancel, destroy).
 * A backend knows nothing of files or FUSE; it reports events to a sink and
 * the engine turns them into result files.
 *
 * Threads: start() and cancel() may be called with the engine's lock held,
 * so a backend must never call the sink from inside them. The sink may be
 * called from any thread of the backend, never with a backend lock held.
 * After sink->end() a run's handle is gone and no more events come for it.
 */
#ifndef AGENTBAYFS_BACKEND_H
#define AGENTBAYFS_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "names.h"
#include "result.h"

struct run_request {
	enum lang lang;
	const char *script_name;  /* "a.py": what tracebacks show */
	const char *code;         /* the snapshot of the saved content */
	size_t code_len;
	unsigned timeout_s;
	const char *workspace;    /* directory of the script inside the mount ("/" or "/sub") */
	uint64_t workspace_id;    /* stable while the directory lives; never reused */
};

/* Why the engine cancels a run; the backend reports it back in the result. */
enum cancel_reason { CANCEL_SUPERSEDED = 1, CANCEL_OUTPUT_LIMIT, CANCEL_REMOVED, CANCEL_SHUTDOWN };

struct run_sink {
	void (*out)(void *ctx, int stream /* 1 stdout, 2 stderr */, const char *data, size_t len);
	void (*started)(void *ctx);
	/* The final result; the backend frees it after the call returns. */
	void (*end)(void *ctx, struct exec_result *result);
};

struct backend;
struct run_handle;

struct backend_ops {
	const char *name;
	/* The backend queues runs itself and calls sink->started when a run
	 * really begins; until then the engine shows the run as pending. When
	 * false, a run counts as started once start() returns. */
	bool reports_start;
	/* Starts a run. 0 and *handle set, or -errno (then no event comes). The
	 * request's strings may be freed once start returns. */
	int (*start)(struct backend *b, const struct run_request *req, const struct run_sink *sink,
		     void *ctx, struct run_handle **handle);
	/* Asks a run to stop; its end event still comes, with state cancelled
	 * (or as the reason implies). Safe on a run that already ended but whose
	 * end event has not been delivered yet. */
	void (*cancel)(struct backend *b, struct run_handle *h, enum cancel_reason why);
	/* The directory WORKSPACE_ID is gone (rmdir): whatever the backend keeps
	 * for it (a cloud session) can go. Optional. */
	void (*release_workspace)(struct backend *b, uint64_t workspace_id);
	/* Stops every run, waits for their end events, frees the backend. */
	void (*destroy)(struct backend *b);
};

struct backend {
	const struct backend_ops *ops;
};

#endif
