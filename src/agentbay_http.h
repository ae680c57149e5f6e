/* agentbay_http: one HTTP POST to the AgentBay gateway, with libcurl.
 *
 * Owns: the curl handle of a connection (kept alive between calls), the
 * headers every action carries, the time limits, the cap on the size of a
 * reply, and aborting a transfer when its run is cancelled. Knows nothing of
 * what the bytes mean (agentbay_proto.h does). Never logs a body: the API key
 * travels in it.
 */
#ifndef AGENTBAYFS_AGENTBAY_HTTP_H
#define AGENTBAYFS_AGENTBAY_HTTP_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct ab_http {
	void *curl;            /* CURL *, made on first use */
};

enum ab_http_outcome {
	AB_HTTP_DONE = 0,      /* a reply came, any status */
	AB_HTTP_NO_CONNECT,    /* the request never reached the service */
	AB_HTTP_TIMEOUT,       /* no whole reply within the time limit */
	AB_HTTP_BROKEN,        /* the connection broke or the reply was cut */
	AB_HTTP_TOO_BIG,       /* the reply passed the size cap */
	AB_HTTP_CANCELLED,     /* the caller's cancel flag was raised */
	AB_HTTP_ERROR,         /* anything else (TLS, out of memory, ...) */
};

struct ab_http_reply {
	enum ab_http_outcome outcome;
	long status;
	char *body;            /* NUL-terminated; NULL when no reply */
	size_t len;
	char error[256];       /* what went wrong, for people */
	char request_id[80];   /* from the x-acs-request-id header; "" when none */
};

/* Once per process, before any thread: curl's global setup. */
int ab_http_global_init(void);
void ab_http_global_cleanup(void);

/* POSTs BODY (form-encoded) to URL with the x-acs-* headers of ACTION.
 * CANCEL, when not NULL, aborts the transfer as soon as it becomes non-zero.
 * ONCE: the request must never be sent twice. libcurl resends a request
 * whose reused connection dies before any reply; ONCE takes a fresh
 * connection so that this cannot happen (for actions that run code). */
void ab_http_post(struct ab_http *h, const char *url, const char *action, const char *body,
		  long connect_timeout_ms, long total_timeout_ms, size_t max_reply, bool once,
		  atomic_int *cancel, struct ab_http_reply *out);
void ab_http_reply_free(struct ab_http_reply *r);
void ab_http_close(struct ab_http *h);

#endif
