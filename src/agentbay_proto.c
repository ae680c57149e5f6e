/* agentbay_proto: see agentbay_proto.h */
#define _GNU_SOURCE
#include "agentbay_proto.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *ab_url_encode(const char *s, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	char *out = malloc(len * 3 + 1), *p = out;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];
		if (isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
			*p++ = (char)c;
		} else {
			*p++ = '%';
			*p++ = hex[c >> 4];
			*p++ = hex[c & 15];
		}
	}
	*p = '\0';
	return out;
}

char *ab_form_encode(const struct ab_param *p, size_t n)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);
	bool first = true;

	if (!f)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (!p[i].value)
			continue;
		char *k = ab_url_encode(p[i].key, strlen(p[i].key));
		char *v = ab_url_encode(p[i].value, strlen(p[i].value));
		if (k && v)
			fprintf(f, "%s%s=%s", first ? "" : "&", k, v);
		first = false;
		free(k);
		free(v);
		if (!k || !v) {
			fclose(f);
			free(out);
			return NULL;
		}
	}
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

void ab_timestamp(time_t t, char *buf, size_t bufsz)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, bufsz, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void ab_nonce_hex(const unsigned char rnd[16], char out[33])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 0; i < 16; i++) {
		out[2 * i] = hex[rnd[i] >> 4];
		out[2 * i + 1] = hex[rnd[i] & 15];
	}
	out[32] = '\0';
}

int ab_base_url(const char *endpoint, char *out, size_t outsz)
{
	size_t n;

	if (!endpoint)
		return -EINVAL;
	while (isspace((unsigned char)*endpoint))
		endpoint++;
	n = strlen(endpoint);
	while (n > 0 && (isspace((unsigned char)endpoint[n - 1]) || endpoint[n - 1] == '/'))
		n--;
	if (n == 0)
		return -EINVAL;
	bool url = strncmp(endpoint, "http://", 7) == 0 || strncmp(endpoint, "https://", 8) == 0;
	if (url) {
		const char *host = endpoint + (endpoint[4] == 's' ? 8 : 7);
		if ((size_t)(host - endpoint) >= n || *host == '/')
			return -EINVAL;
		for (const char *c = host; c < endpoint + n; c++)
			if (!isgraph((unsigned char)*c) || strchr("?#\\\"<>{}|^`", *c))
				return -EINVAL;
	} else {
		for (size_t i = 0; i < n; i++)
			if (!isalnum((unsigned char)endpoint[i]) && !strchr(".-:[]", endpoint[i]))
				return -EINVAL;
	}
	if (snprintf(out, outsz, "%s%.*s", url ? "" : "https://", (int)n, endpoint) >= (int)outsz)
		return -EINVAL;
	return 0;
}

char *ab_action_url(const char *base, const char *action, const char *timestamp, const char *nonce,
		    const struct ab_param *extra, size_t n_extra)
{
	struct ab_param q[16];
	size_t n = 0;
	char *query, *url = NULL;

	if (n_extra > 11)
		return NULL;
	q[n++] = (struct ab_param){ "Action", action };
	q[n++] = (struct ab_param){ "Format", "json" };
	q[n++] = (struct ab_param){ "Version", AB_API_VERSION };
	q[n++] = (struct ab_param){ "Timestamp", timestamp };
	q[n++] = (struct ab_param){ "SignatureNonce", nonce };
	for (size_t i = 0; i < n_extra; i++)
		q[n++] = extra[i];
	query = ab_form_encode(q, n);
	if (query && asprintf(&url, "%s/?%s", base, query) < 0)
		url = NULL;
	free(query);
	return url;
}

char *ab_run_code_args(const char *code, size_t code_len, const char *language, unsigned timeout_s)
{
	cJSON *o = cJSON_CreateObject();
	char *copy = strndup(code, code_len), *text = NULL;

	if (o && copy && cJSON_AddStringToObject(o, "code", copy) &&
	    cJSON_AddStringToObject(o, "language", language) &&
	    cJSON_AddNumberToObject(o, "timeout_s", timeout_s))
		text = cJSON_PrintUnformatted(o);
	cJSON_Delete(o);
	free(copy);
	return text;
}

/* ---- replies ----------------------------------------------------------- */

static const cJSON *item_ci(const cJSON *o, const char *a, const char *b)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, a);
	return v ? v : cJSON_GetObjectItemCaseSensitive(o, b);
}

static char *str_or_empty(const cJSON *v)
{
	if (cJSON_IsString(v))
		return strdup(v->valuestring);
	if (cJSON_IsNumber(v)) {
		char *s = NULL;
		if (asprintf(&s, "%g", v->valuedouble) < 0)
			return NULL;
		return s;
	}
	return strdup("");
}

/* A short, printable excerpt of a body that is not JSON. */
static char *excerpt(const char *body, size_t len)
{
	size_t n = len < 120 ? len : 120;
	char *s = malloc(n + 4);

	if (!s)
		return NULL;
	for (size_t i = 0; i < n; i++)
		s[i] = isprint((unsigned char)body[i]) ? body[i] : '?';
	strcpy(s + n, len > n ? "..." : "");
	return s;
}

int ab_parse_reply(long http_status, const char *body, size_t len, struct ab_reply *r)
{
	memset(r, 0, sizeof(*r));
	r->http_status = http_status;
	r->root = body && len ? cJSON_ParseWithLength(body, len) : NULL;

	if (cJSON_IsObject(r->root)) {
		r->request_id = str_or_empty(item_ci(r->root, "RequestId", "requestId"));
		r->code = str_or_empty(item_ci(r->root, "Code", "code"));
		r->message = str_or_empty(item_ci(r->root, "Message", "message"));
	} else {
		r->request_id = strdup("");
		r->code = strdup("");
		r->message = body && len ? excerpt(body, len) : strdup("");
		r->malformed = true;
	}
	if (!r->request_id || !r->code || !r->message)
		return -ENOMEM;
	r->throttled = strncmp(r->code, "Throttling", 10) == 0;
	r->session_gone = strcmp(r->code, "InvalidMcpSession.NotFound") == 0;
	if (http_status < 200 || http_status >= 300) {
		r->malformed = false;
		return 0;
	}
	if (r->malformed)
		return 0;
	const cJSON *success = item_ci(r->root, "Success", "success");
	if (cJSON_IsFalse(success) && r->code[0])
		return 0;
	if (cJSON_IsFalse(success)) {
		/* Success:false without a code: still a failure, say so. */
		free(r->code);
		r->code = strdup("Failed");
		return r->code ? 0 : -ENOMEM;
	}
	const cJSON *data = item_ci(r->root, "Data", "data");
	if (cJSON_IsString(data) && data->valuestring[0]) {
		r->data_owned = cJSON_Parse(data->valuestring);
		r->data = r->data_owned ? r->data_owned : data;
	} else if (data && !cJSON_IsNull(data)) {
		r->data = data;
	}
	r->ok = true;
	return 0;
}

void ab_reply_free(struct ab_reply *r)
{
	free(r->request_id);
	free(r->code);
	free(r->message);
	cJSON_Delete(r->root);
	cJSON_Delete(r->data_owned);
	memset(r, 0, sizeof(*r));
}

char *ab_parse_session_id(const struct ab_reply *r, char *err, size_t errsz)
{
	const cJSON *d = r->data, *sid;

	if (!cJSON_IsObject(d)) {
		snprintf(err, errsz, "the reply to CreateMcpSession has no Data object");
		return NULL;
	}
	if (cJSON_IsFalse(item_ci(d, "Success", "success"))) {
		const char *m = cJSON_GetStringValue(item_ci(d, "ErrMsg", "errMsg"));
		snprintf(err, errsz, "%s", m && *m ? m : "Session creation failed");
		return NULL;
	}
	sid = item_ci(d, "SessionId", "sessionId");
	if (!cJSON_IsString(sid) || !sid->valuestring[0]) {
		snprintf(err, errsz, "the reply to CreateMcpSession has no SessionId");
		return NULL;
	}
	char *s = strdup(sid->valuestring);
	if (!s)
		snprintf(err, errsz, "out of memory");
	return s;
}

void ab_output_free(struct ab_output *o)
{
	free(o->out);
	free(o->err);
	memset(o, 0, sizeof(*o));
}

/* ---- run_code results --------------------------------------------------- */

static int append(char **buf, size_t *len, const char *s, size_t n)
{
	char *nb = realloc(*buf, *len + n + 1);

	if (!nb)
		return -ENOMEM;
	memcpy(nb + *len, s, n);
	*len += n;
	nb[*len] = '\0';
	*buf = nb;
	return 0;
}

/* stdout/stderr: a list of chunks, joined; or a single string. */
static int join_chunks(const cJSON *v, char **buf, size_t *len)
{
	const cJSON *c;

	if (cJSON_IsString(v))
		return append(buf, len, v->valuestring, strlen(v->valuestring));
	cJSON_ArrayForEach(c, v)
		if (cJSON_IsString(c) && append(buf, len, c->valuestring, strlen(c->valuestring)) < 0)
			return -ENOMEM;
	return 0;
}

static const struct {
	const char *key;     /* as the legacy layout and the SDK name them */
	const char *mime;
} mime_names[] = {
	{ "text", "text/plain" },       { "html", "text/html" },       { "markdown", "text/markdown" },
	{ "png", "image/png" },         { "jpeg", "image/jpeg" },      { "svg", "image/svg+xml" },
	{ "json", "application/json" }, { "latex", "text/latex" },     { "chart", "application/vnd.vegalite.v5+json" },
};

static bool is_rich_mime(const char *k)
{
	return strchr(k, '/') != NULL;
}

/* One MIME bundle (an object) into RES. */
static int add_bundle(struct exec_result *res, const cJSON *o)
{
	const cJSON *c;
	size_t n = 0, cap = 0;
	struct mime_entry *e = NULL;
	bool is_main = cJSON_IsTrue(item_ci(o, "isMainResult", "is_main_result"));

	cJSON_ArrayForEach(c, o) {
		const char *mime = NULL;
		if (!c->string)
			continue;
		if (is_rich_mime(c->string)) {
			mime = c->string;
		} else {
			for (size_t i = 0; i < sizeof(mime_names) / sizeof(mime_names[0]); i++)
				if (strcmp(c->string, mime_names[i].key) == 0)
					mime = mime_names[i].mime;
		}
		if (!mime || cJSON_IsNull(c))
			continue;
		char *data = cJSON_IsString(c) ? strdup(c->valuestring) : cJSON_PrintUnformatted(c);
		if (n == cap) {
			cap = cap ? cap * 2 : 4;
			struct mime_entry *ne = realloc(e, cap * sizeof(*ne));
			if (!ne) {
				free(data);
				goto nomem;
			}
			e = ne;
		}
		e[n].mime = strdup(mime);
		e[n].data = data;
		if (!e[n].mime || !e[n].data) {
			free(e[n].mime);
			free(e[n].data);
			goto nomem;
		}
		n++;
	}
	if (n == 0) {
		free(e);
		return 0;
	}
	return exec_result_add(res, e, n, is_main);
nomem:
	for (size_t i = 0; i < n; i++) {
		free(e[i].mime);
		free(e[i].data);
	}
	free(e);
	return -ENOMEM;
}

static int add_plain_result(struct exec_result *res, const char *text, bool is_main)
{
	struct mime_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return -ENOMEM;
	e->mime = strdup("text/plain");
	e->data = strdup(text);
	if (!e->mime || !e->data) {
		free(e->mime);
		free(e->data);
		free(e);
		return -ENOMEM;
	}
	return exec_result_add(res, e, 1, is_main);
}

/* A result item: a JSON string (maybe double-encoded), an object, an array
 * of items, or plain text. DEPTH stops runaway nesting. */
static int add_result_item(struct exec_result *res, const cJSON *item, int depth)
{
	const cJSON *c;

	if (depth > 4)
		return 0;
	if (cJSON_IsObject(item))
		return add_bundle(res, item);
	if (cJSON_IsArray(item)) {
		cJSON_ArrayForEach(c, item) {
			int rc = add_result_item(res, c, depth + 1);
			if (rc < 0)
				return rc;
		}
		return 0;
	}
	if (cJSON_IsString(item)) {
		cJSON *parsed = cJSON_Parse(item->valuestring);
		int rc;
		if (parsed && (cJSON_IsObject(parsed) || cJSON_IsArray(parsed) || cJSON_IsString(parsed)))
			rc = add_result_item(res, parsed, depth + 1);
		else
			rc = add_plain_result(res, item->valuestring, false);
		cJSON_Delete(parsed);
		return rc;
	}
	return 0;
}

static bool looks_like_name(const char *s, size_t n)
{
	if (n == 0 || n > 100 || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != '.')
			return false;
	return true;
}

int ab_set_error_from_text(struct exec_result *res, const char *text, const char *default_name)
{
	const char *nl, *colon;
	size_t first_len;
	char *name = NULL, *value = NULL;
	int rc;

	while (*text == '\n' || *text == '\r')
		text++;
	nl = strchr(text, '\n');
	first_len = nl ? (size_t)(nl - text) : strlen(text);
	colon = memchr(text, ':', first_len);
	if (colon && looks_like_name(text, (size_t)(colon - text))) {
		name = strndup(text, (size_t)(colon - text));
		const char *v = colon + 1;
		while (*v == ' ')
			v++;
		value = strndup(v, first_len - (size_t)(v - text));
	} else if (looks_like_name(text, first_len)) {
		name = strndup(text, first_len);
		value = strdup("");
	} else {
		name = strdup(default_name);
		value = strndup(text, first_len);
	}
	if (!name || !value) {
		free(name);
		free(value);
		return -ENOMEM;
	}
	rc = exec_result_set_error(res, name, value, nl && nl[1] ? nl + 1 : NULL);
	free(name);
	free(value);
	return rc;
}

/* The last line of TEXT that is not blank: where a traceback names the
 * exception. */
static char *last_line(const char *text, size_t len)
{
	size_t end = len;

	while (end > 0 && isspace((unsigned char)text[end - 1]))
		end--;
	size_t start = end;
	while (start > 0 && text[start - 1] != '\n')
		start--;
	return end > start ? strndup(text + start, end - start) : NULL;
}

/* The service's own word that the run passed its time limit ("code
 * execution timed out after 5 seconds"). A user's exception that merely
 * mentions a timeout (NameError: name 'timeout' ..., or a socket's
 * "TimeoutError: timed out") is not one. */
static bool mentions_timeout(const char *s)
{
	return s && (strcasestr(s, "execution timed out") || strcasestr(s, "timed out after") ||
		     strcasestr(s, "execution timeout") || strcasestr(s, "exceeded the timeout"));
}

/* Where a Python traceback that ends TEXT begins, or NULL: the last
 * "Traceback (most recent call last):" line, followed only by indented
 * frame lines and a final "Name: value" line. That is how an uncaught
 * exception looks when a service reports it through stderr alone. */
static const char *trailing_traceback(const char *text, size_t len)
{
	static const char marker[] = "Traceback (most recent call last):";
	const char *start = NULL, *p = text, *end = text + len;

	while ((p = memmem(p, (size_t)(end - p), marker, sizeof(marker) - 1)) != NULL) {
		if (p == text || p[-1] == '\n')
			start = p;
		p += sizeof(marker) - 1;
	}
	if (!start)
		return NULL;
	const char *line = memchr(start, '\n', (size_t)(end - start));
	const char *last = NULL;
	while (line && line + 1 < end) {
		line++;
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t ll = nl ? (size_t)(nl - line) : (size_t)(end - line);
		bool blank = true;
		for (size_t i = 0; i < ll; i++)
			if (!isspace((unsigned char)line[i]))
				blank = false;
		if (!blank) {
			if (last)
				return NULL;  /* an unindented line before the last one */
			if (!isspace((unsigned char)line[0]))
				last = line;
		}
		line = nl;
	}
	if (!last)
		return NULL;
	const char *nl = memchr(last, '\n', (size_t)(end - last));
	size_t ll = nl ? (size_t)(nl - last) : (size_t)(end - last);
	const char *colon = memchr(last, ':', ll);
	return looks_like_name(last, colon ? (size_t)(colon - last) : ll) ? start : NULL;
}

static void set_counts(struct exec_result *res, const cJSON *o)
{
	const cJSON *c = item_ci(o, "executionCount", "execution_count");

	/* From the network: only a count that an int64 can hold. */
	if (cJSON_IsNumber(c) && c->valuedouble >= 0 && c->valuedouble < 9.0e18)
		res->execution_count = (int64_t)c->valuedouble;
}

/* The run_code JSON ({stdout, stderr, result, executionError}). */
static int parse_inner(const cJSON *o, bool is_error, struct exec_result *res, struct ab_output *out)
{
	const cJSON *ee = item_ci(o, "executionError", "execution_error");
	const char *exec_error = cJSON_GetStringValue(ee);
	int rc;

	if ((rc = join_chunks(cJSON_GetObjectItemCaseSensitive(o, "stdout"), &out->out, &out->out_len)) < 0 ||
	    (rc = join_chunks(cJSON_GetObjectItemCaseSensitive(o, "stderr"), &out->err, &out->err_len)) < 0 ||
	    (rc = add_result_item(res, cJSON_GetObjectItemCaseSensitive(o, "result"), 0)) < 0)
		return rc;
	set_counts(res, o);
	if (exec_error && *exec_error) {
		res->state = mentions_timeout(exec_error) ? RS_TIMED_OUT : RS_FAILED;
		rc = ab_set_error_from_text(res, exec_error,
					    res->state == RS_TIMED_OUT ? "TimeoutError" : "ExecutionError");
		/* "Name: value" alone: the traceback, if any, went to stderr. */
		if (rc == 0 && !res->error.traceback && out->err && out->err_len) {
			res->error.traceback = strdup(out->err);
			if (!res->error.traceback)
				rc = -ENOMEM;
		}
		return rc;
	}
	if (is_error) {
		/* isError with an empty executionError: the traceback is in stderr. */
		char *line = out->err ? last_line(out->err, out->err_len) : NULL;
		res->state = RS_FAILED;
		rc = ab_set_error_from_text(res, line ? line : "the tool reported an error without details",
					    "ExecutionError");
		if (rc == 0 && out->err && out->err_len) {
			free(res->error.traceback);
			res->error.traceback = strdup(out->err);
		}
		free(line);
		return rc;
	}
	/* No error reported, yet stderr ends in an uncaught exception's
	 * traceback: the run failed, whatever the flag says. */
	const char *tb = out->err ? trailing_traceback(out->err, out->err_len) : NULL;
	if (tb) {
		char *line = last_line(out->err, out->err_len);
		res->state = RS_FAILED;
		rc = ab_set_error_from_text(res, line ? line : "ExecutionError", "ExecutionError");
		free(line);
		if (rc == 0 && !res->error.traceback && !(res->error.traceback = strndup(tb, out->err_len - (size_t)(tb - out->err))))
			rc = -ENOMEM;
		return rc;
	}
	res->state = RS_SUCCEEDED;
	return 0;
}

/* The legacy rich layout: {logs:{stdout,stderr}, results:[...], error:{...}}. */
static int parse_legacy(const cJSON *o, bool is_error, struct exec_result *res, struct ab_output *out)
{
	const cJSON *logs = cJSON_GetObjectItemCaseSensitive(o, "logs");
	const cJSON *e = cJSON_GetObjectItemCaseSensitive(o, "error");
	int rc;

	if ((rc = join_chunks(cJSON_GetObjectItemCaseSensitive(logs, "stdout"), &out->out, &out->out_len)) < 0 ||
	    (rc = join_chunks(cJSON_GetObjectItemCaseSensitive(logs, "stderr"), &out->err, &out->err_len)) < 0 ||
	    (rc = add_result_item(res, cJSON_GetObjectItemCaseSensitive(o, "results"), 0)) < 0)
		return rc;
	set_counts(res, o);
	is_error = is_error || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "isError"));
	if (cJSON_IsObject(e)) {
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "name"));
		const char *value = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "value"));
		const char *tb = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(e, "traceback"));
		res->state = mentions_timeout(value) || mentions_timeout(name) ? RS_TIMED_OUT : RS_FAILED;
		return exec_result_set_error(res, name && *name ? name : "ExecutionError", value, tb);
	}
	if (is_error) {
		res->state = RS_FAILED;
		return exec_result_set_error(res, "ExecutionError", "the tool reported an error without details", NULL);
	}
	res->state = RS_SUCCEEDED;
	return 0;
}

/* The text of the tool result: content[0].text (or a bare string, or its
 * blob/data), also under result.content. */
static const char *tool_text(const cJSON *data)
{
	const cJSON *content = cJSON_GetObjectItemCaseSensitive(data, "content");
	const cJSON *first;

	if (!cJSON_IsArray(content)) {
		const cJSON *result = cJSON_GetObjectItemCaseSensitive(data, "result");
		content = cJSON_GetObjectItemCaseSensitive(result, "content");
	}
	first = cJSON_GetArrayItem(content, 0);
	if (cJSON_IsString(first))
		return first->valuestring;
	if (!cJSON_IsObject(first))
		return NULL;
	for (const char *const *k = (const char *const[]){ "text", "blob", "data", NULL }; *k; k++) {
		const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(first, *k));
		if (s)
			return s;
	}
	return NULL;
}

int ab_parse_run_code(const struct ab_reply *r, struct exec_result *res, struct ab_output *out,
		      char *err, size_t errsz)
{
	const cJSON *data = r->data;
	const char *text;
	bool is_error;
	cJSON *inner;
	int rc;

	if (!data || (cJSON_IsString(data) && !data->valuestring[0])) {
		snprintf(err, errsz, "the reply to CallMcpTool has no Data (empty response data)");
		return -EINVAL;
	}
	if (!cJSON_IsObject(data)) {
		snprintf(err, errsz, "the reply to CallMcpTool has a Data that is not a tool result");
		return -EINVAL;
	}
	is_error = cJSON_IsTrue(item_ci(data, "isError", "is_error"));
	text = tool_text(data);
	if (!text) {
		snprintf(err, errsz, "the tool result has no text content");
		return -EINVAL;
	}
	inner = cJSON_Parse(text);
	if (cJSON_IsObject(inner)) {
		if (cJSON_GetObjectItemCaseSensitive(inner, "result") ||
		    item_ci(inner, "executionError", "execution_error") ||
		    cJSON_GetObjectItemCaseSensitive(inner, "stdout") ||
		    cJSON_GetObjectItemCaseSensitive(inner, "stderr"))
			rc = parse_inner(inner, is_error, res, out);
		else if (cJSON_GetObjectItemCaseSensitive(inner, "logs") ||
			 cJSON_GetObjectItemCaseSensitive(inner, "results"))
			rc = parse_legacy(inner, is_error, res, out);
		else
			goto plain;
		cJSON_Delete(inner);
		return rc;
	}
plain:
	cJSON_Delete(inner);
	if (is_error) {
		/* An error in plain text: a tool error ("tool run_code not found")
		 * or the run's own output ending in a traceback. Either way it is
		 * what the run printed last that names the error. */
		size_t tl = strlen(text);
		char *line = last_line(text, tl);
		bool multi = memchr(text, '\n', tl) && line && strcmp(line, text) != 0;
		res->state = mentions_timeout(text) ? RS_TIMED_OUT : RS_FAILED;
		if (!multi) {
			free(line);
			return ab_set_error_from_text(res, text, "ToolError");
		}
		rc = ab_set_error_from_text(res, line, "ToolError");
		free(line);
		if (rc == 0 && !res->error.traceback && !(res->error.traceback = strdup(text)))
			rc = -ENOMEM;
		if (rc == 0)
			rc = append(&out->err, &out->err_len, text, tl);
		return rc;
	}
	/* Legacy images answer with plain text: that is the output. */
	if ((rc = append(&out->out, &out->out_len, text, strlen(text))) < 0 ||
	    (rc = add_plain_result(res, text, true)) < 0)
		return rc;
	res->state = RS_SUCCEEDED;
	return 0;
}
