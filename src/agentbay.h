/* agentbay: the AgentBay backend, run_code in Alibaba Cloud AgentBay sessions.
 *
 * Owns: one cloud session per directory of the mount (created at its first
 * run, reused, released at unmount, at rmdir and after an idle time), the
 * order of runs (one at a time per directory, in save order; directories in
 * parallel, each on a thread of its own), the calls (CreateMcpSession,
 * CallMcpTool, ReleaseMcpSession), retries where they are safe (a session
 * that is gone; throttling on create), and turning every failure into a
 * clear error. The API key stays in this module's memory and in request
 * bodies, nowhere else.
 */
#ifndef AGENTBAYFS_AGENTBAY_H
#define AGENTBAYFS_AGENTBAY_H

#include <stddef.h>

#include "backend.h"

/* AgentBay's gateway ends a request after about 60 s. */
#define AB_MAX_TIMEOUT_S 60
/* Tool calls travel in messages of about 63 KB: bigger Args are refused. */
#define AB_MAX_ARGS_BYTES 60000

struct ab_config {
	const char *api_key;      /* required */
	const char *base_url;     /* from ab_base_url() */
	const char *endpoint;     /* as configured, for messages */
	long timeout_ms;          /* connect and read timeout (AGENTBAY_TIMEOUT_MS) */
	const char *region_id;    /* LoginRegionId, or NULL */
	const char *image;        /* ImageId, "code_latest" */
	unsigned session_idle_s;  /* release a directory's session after this idle time */
	size_t max_reply;         /* bytes; a bigger reply is an error */
};

struct backend *agentbay_backend_new(const struct ab_config *cfg, char *err, size_t errsz);

#endif
