/* agentbay_proto: the AgentBay OpenAPI wire protocol, as plain C.
 *
 * Owns: how a request looks on the wire (the action URL with its query,
 * the form-encoded body, the timestamp and nonce formats), how a reply is
 * read (HTTP errors with a POP error body, the business envelope, Data as an
 * object or as a JSON string), and how a run_code tool result in any of its
 * variants becomes our result model: stdout and stderr text, the error, the
 * rich results and the execution count.
 * No I/O and no libcurl here: agentbay_http.c moves the bytes.
 */
#ifndef AGENTBAYFS_AGENTBAY_PROTO_H
#define AGENTBAYFS_AGENTBAY_PROTO_H

#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "result.h"

#define AB_API_VERSION "2025-05-06"
#define AB_DEFAULT_ENDPOINT "wuyingai.cn-shanghai.aliyuncs.com"

struct ab_param {
	const char *key;
	const char *value;
};

/* Percent-encodes S (LEN bytes): RFC 3986 unreserved characters stay, every
 * other byte becomes %XX. malloc'd; NULL on ENOMEM. */
char *ab_url_encode(const char *s, size_t len);

/* "k1=v1&k2=v2" with keys and values percent-encoded; NULL values are left
 * out. malloc'd; NULL on ENOMEM. */
char *ab_form_encode(const struct ab_param *p, size_t n);

/* UTC "YYYY-MM-DDTHH:MM:SSZ" (BUF of at least 21 bytes). */
void ab_timestamp(time_t t, char *buf, size_t bufsz);

/* 32 lowercase hex digits from 16 random bytes. */
void ab_nonce_hex(const unsigned char rnd[16], char out[33]);

/* The base URL from AGENTBAY_ENDPOINT: a bare host becomes "https://host";
 * an http:// or https:// URL is kept, without a trailing '/'. 0, or -EINVAL
 * for an empty or malformed endpoint. */
int ab_base_url(const char *endpoint, char *out, size_t outsz);

/* "{base}/?Action=A&Format=json&Version=...&Timestamp=...&SignatureNonce=..."
 * plus at most 11 EXTRA query parameters. malloc'd; NULL on ENOMEM or when
 * there are more extras. */
char *ab_action_url(const char *base, const char *action, const char *timestamp, const char *nonce,
		    const struct ab_param *extra, size_t n_extra);

/* The JSON text of run_code's Args: {"code","language","timeout_s"}. */
char *ab_run_code_args(const char *code, size_t code_len, const char *language, unsigned timeout_s);

/* A reply, read. */
struct ab_reply {
	long http_status;
	bool ok;              /* HTTP 2xx and the envelope says success */
	bool throttled;       /* Code Throttling* */
	bool session_gone;    /* Code InvalidMcpSession.NotFound */
	bool malformed;       /* the body is not what the protocol says */
	char *request_id;     /* "" when none */
	char *code;           /* "" when none; "Failed" for Success:false without one */
	char *message;        /* "" when none */
	cJSON *root;          /* the parsed body, when it was JSON */
	cJSON *data_owned;    /* Data parsed from a JSON string */
	const cJSON *data;    /* Data, whichever form it came in; NULL if absent */
};

/* Reads an HTTP reply. Always fills R (free it with ab_reply_free); never
 * fails but for ENOMEM (-ENOMEM). */
int ab_parse_reply(long http_status, const char *body, size_t len, struct ab_reply *r);
void ab_reply_free(struct ab_reply *r);

/* CreateMcpSession: the session id, or NULL and ERR. */
char *ab_parse_session_id(const struct ab_reply *r, char *err, size_t errsz);

/* What a run printed, as the service returned it. */
struct ab_output {
	char *out;
	size_t out_len;
	char *err;
	size_t err_len;
};
void ab_output_free(struct ab_output *o);

/* Turns an envelope-level successful CallMcpTool reply into RES (state,
 * error, rich results, execution count) and OUT. Handles every variant of
 * the protocol notes: isError with the run_code JSON inside, result items
 * as JSON strings, double-encoded strings, objects, arrays or plain text,
 * the legacy rich layout, and plain-text content. Returns 0, or -EINVAL when
 * there is no tool result at all (ERR says why), or -ENOMEM. */
int ab_parse_run_code(const struct ab_reply *r, struct exec_result *res, struct ab_output *out,
		      char *err, size_t errsz);

/* Splits "Name: value\ntraceback" into an error the way Python and Node
 * print them; anything else becomes DEFAULT_NAME with the text as value. */
int ab_set_error_from_text(struct exec_result *res, const char *text, const char *default_name);

#endif
