/* Fuzz target: reading AgentBay replies (agentbay_proto.h).
 *
 * Input: 2 bytes of HTTP status (big-endian, mapped onto 100..599), then the
 * body. The body goes through ab_parse_reply; an accepted reply then through
 * ab_parse_session_id and ab_parse_run_code, and the error that comes out is
 * rendered with exec_error_render; a run's result also goes into a run record
 * (run_record_set_results) whose ".status" text must read back the same. The
 * body, as text, also goes straight to ab_set_error_from_text. Everything is
 * freed (LeakSanitizer checks).
 *
 * Seed files are "\x00d" (= HTTP 200) or "\x01," (= HTTP 400) followed by
 * a JSON body. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "agentbay_proto.h"
#include "fuzz_util.h"
#include "result.h"
#include "status.h"

static void check_string_buffer(const char *buf, size_t len)
{
	if (!buf) {
		FUZZ_CHECK(len == 0);
		return;
	}
	FUZZ_CHECK(buf[len] == '\0');
	if (!memchr(buf, '\0', len))
		FUZZ_CHECK(strlen(buf) == len);
}

/* What exec_error_render makes of RES. */
static void check_render(const struct exec_result *res)
{
	char *text = exec_error_render(res);

	FUZZ_CHECK(text != NULL);
	if (!res->has_error) {
		FUZZ_CHECK(text[0] == '\0');
	} else {
		size_t len = strlen(text), nl = strlen(res->error.name);
		FUZZ_CHECK(len > 0 && text[len - 1] == '\n');
		FUZZ_CHECK(strncmp(text, res->error.name, nl) == 0);
	}
	free(text);
}

static void check_error(const struct exec_result *res)
{
	if (!res->has_error)
		return;
	FUZZ_CHECK(res->error.name != NULL && res->error.name[0] != '\0');
	FUZZ_CHECK(res->error.value != NULL);
}

static void check_results(const struct exec_result *res)
{
	FUZZ_CHECK(res->n_results == 0 || res->results != NULL);
	for (size_t i = 0; i < res->n_results; i++) {
		const struct rich_result *rr = &res->results[i];
		FUZZ_CHECK(rr->n > 0 && rr->entries != NULL);
		for (size_t k = 0; k < rr->n; k++) {
			FUZZ_CHECK(rr->entries[k].mime != NULL && rr->entries[k].mime[0] != '\0');
			FUZZ_CHECK(rr->entries[k].data != NULL);
		}
	}
}

static void run_session_id(const struct ab_reply *r)
{
	char err[256];
	char *sid;

	memset(err, 0, sizeof(err));
	sid = ab_parse_session_id(r, err, sizeof(err));
	if (sid) {
		const cJSON *v = cJSON_GetObjectItemCaseSensitive(r->data, "SessionId");
		if (!v)
			v = cJSON_GetObjectItemCaseSensitive(r->data, "sessionId");
		FUZZ_CHECK(sid[0] != '\0');
		FUZZ_CHECK(cJSON_IsString(v) && strcmp(v->valuestring, sid) == 0);
		free(sid);
	} else {
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(memchr(err, '\0', sizeof(err)) != NULL);
	}
}

/* RES as the daemon records it: into a run record, rendered as the
 * ".status" text and read back. */
static void check_status_record(const struct exec_result *res)
{
	struct run_record rec, back;
	char *text;

	run_record_init(&rec);
	snprintf(rec.script, sizeof(rec.script), "%s", "cell.py");
	rec.lang = LANG_PYTHON;
	rec.state = res->state;
	FUZZ_CHECK(run_record_set_results(&rec, res) == 0);
	FUZZ_CHECK(rec.execution_count == res->execution_count);
	FUZZ_CHECK((rec.results_json != NULL) == (res->n_results > 0));
	if (res->has_error)
		FUZZ_CHECK(run_record_set_error(&rec, res->error.name, res->error.value) == 0);
	text = status_render(&rec);
	FUZZ_CHECK(text != NULL);
	run_record_init(&back);
	FUZZ_CHECK(status_parse(text, strlen(text), &back) == 0);
	FUZZ_CHECK(back.state == rec.state);
	FUZZ_CHECK(fuzz_streq(back.results_json, rec.results_json));
	FUZZ_CHECK(fuzz_streq(back.error_name, rec.error_name));
	FUZZ_CHECK(fuzz_streq(back.error_value, rec.error_value));
	if (back.execution_count != (rec.execution_count >= 0 ? rec.execution_count : -1))
		fprintf(stderr, "execution_count %lld was read back as %lld\n", (long long)rec.execution_count,
			(long long)back.execution_count);
	FUZZ_CHECK(back.execution_count == (rec.execution_count >= 0 ? rec.execution_count : -1));
	free(text);
	run_record_free(&back);
	run_record_free(&rec);
}

static void run_run_code(const struct ab_reply *r)
{
	struct exec_result res;
	struct ab_output out;
	char err[256];
	int rc;

	exec_result_init(&res);
	memset(&out, 0, sizeof(out));
	memset(err, 0, sizeof(err));
	rc = ab_parse_run_code(r, &res, &out, err, sizeof(err));
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc == -EINVAL) {
		/* No tool result at all: says why, and leaves RES and OUT alone. */
		FUZZ_CHECK(err[0] != '\0');
		FUZZ_CHECK(res.state == RS_NONE && !res.has_error && res.n_results == 0);
		FUZZ_CHECK(out.out == NULL && out.err == NULL);
	} else {
		/* A final state, and an error exactly when the run failed. */
		FUZZ_CHECK(res.state == RS_SUCCEEDED || res.state == RS_FAILED ||
			   res.state == RS_TIMED_OUT);
		FUZZ_CHECK(res.has_error == (res.state != RS_SUCCEEDED));
		FUZZ_CHECK(res.exit_code == -1 && res.signal == 0 && !res.truncated);
		check_status_record(&res);
	}
	check_error(&res);
	check_results(&res);
	check_string_buffer(out.out, out.out_len);
	check_string_buffer(out.err, out.err_len);
	check_render(&res);
	exec_result_free(&res);
	ab_output_free(&out);
	FUZZ_CHECK(out.out == NULL && out.err == NULL);
}

/* The body as the text of an error ("Name: value\ntraceback"). */
static void run_error_text(const uint8_t *body, size_t len)
{
	char *text = fuzz_strndup0(body, len);
	static const char dflt[] = "ToolError";
	struct exec_result res;

	exec_result_init(&res);
	FUZZ_CHECK(ab_set_error_from_text(&res, text, dflt) == 0);
	FUZZ_CHECK(res.has_error);
	check_error(&res);
	/* The name is the default or a name-like word; the value is one line. */
	if (strcmp(res.error.name, dflt) != 0)
		for (const char *c = res.error.name; *c; c++)
			FUZZ_CHECK(isalnum((unsigned char)*c) || *c == '_' || *c == '.');
	FUZZ_CHECK(strchr(res.error.value, '\n') == NULL);
	FUZZ_CHECK(res.error.traceback == NULL || res.error.traceback[0] != '\0');
	check_render(&res);
	exec_result_free(&res);
	free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct ab_reply r;
	long status;
	const char *body;
	size_t len;

	if (size < 2)
		return 0;
	status = 100 + (long)(((unsigned)data[0] << 8 | data[1]) % 500);
	body = (const char *)data + 2;
	len = size - 2;

	FUZZ_CHECK(ab_parse_reply(status, len ? body : NULL, len, &r) == 0);
	FUZZ_CHECK(r.http_status == status);
	FUZZ_CHECK(r.request_id && r.code && r.message);
	FUZZ_CHECK(r.throttled == (strncmp(r.code, "Throttling", 10) == 0));
	FUZZ_CHECK(r.session_gone == (strcmp(r.code, "InvalidMcpSession.NotFound") == 0));
	if (status < 200 || status >= 300)
		FUZZ_CHECK(!r.ok && !r.malformed);
	if (r.malformed)
		FUZZ_CHECK(!cJSON_IsObject(r.root));
	if (r.ok) {
		FUZZ_CHECK(cJSON_IsObject(r.root) && !r.malformed);
		FUZZ_CHECK(!r.data_owned || r.data == r.data_owned);
		run_session_id(&r);
		run_run_code(&r);
	} else {
		FUZZ_CHECK(r.data == NULL);
	}
	ab_reply_free(&r);
	FUZZ_CHECK(r.root == NULL && r.code == NULL);

	run_error_text(data + 2, len);
	return 0;
}
