/* Fuzz target: the ".status" record (status.h).
 *
 * Input: any text. status_parse reads it into a record; when it is accepted,
 * status_render writes the record and status_parse must read the same
 * fields back, and rendering that must give the same text (a fixed point).
 * The input, as a C string, also goes to parse_rfc3339; a time it accepts
 * must come back unchanged through format_rfc3339. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "fuzz_util.h"
#include "status.h"

/* The fields of A and B agree, as far as the JSON form can tell: a
 * negative exit code, a signal <= 0 and a time <= 0 are all "null". */
static void check_same(const struct run_record *a, const struct run_record *b)
{
	if (a->run != b->run || a->stdout_bytes != b->stdout_bytes || a->stderr_bytes != b->stderr_bytes ||
	    a->execution_count != b->execution_count)
		fprintf(stderr, "read back: run %llu -> %llu, stdout_bytes %llu -> %llu, stderr_bytes %llu -> %llu, "
			"execution_count %lld -> %lld\n",
			(unsigned long long)a->run, (unsigned long long)b->run,
			(unsigned long long)a->stdout_bytes, (unsigned long long)b->stdout_bytes,
			(unsigned long long)a->stderr_bytes, (unsigned long long)b->stderr_bytes,
			(long long)a->execution_count, (long long)b->execution_count);
	FUZZ_CHECK(strcmp(a->script, b->script) == 0);
	FUZZ_CHECK(a->lang == b->lang);
	FUZZ_CHECK(strcmp(a->backend, b->backend) == 0);
	FUZZ_CHECK(a->run == b->run);
	FUZZ_CHECK(a->state == b->state);
	FUZZ_CHECK((a->exit_code >= 0 ? a->exit_code : -1) == b->exit_code);
	FUZZ_CHECK((a->signal > 0 ? a->signal : 0) == b->signal);
	FUZZ_CHECK((a->saved_at_ms > 0 ? a->saved_at_ms : 0) == b->saved_at_ms);
	FUZZ_CHECK((a->started_at_ms > 0 ? a->started_at_ms : 0) == b->started_at_ms);
	FUZZ_CHECK((a->finished_at_ms > 0 ? a->finished_at_ms : 0) == b->finished_at_ms);
	FUZZ_CHECK(a->stdout_bytes == b->stdout_bytes);
	FUZZ_CHECK(a->stderr_bytes == b->stderr_bytes);
	FUZZ_CHECK(a->truncated == b->truncated);
	FUZZ_CHECK(a->execution_count == b->execution_count);
	FUZZ_CHECK(fuzz_streq(a->error_name, b->error_name));
	FUZZ_CHECK(fuzz_streq(a->error_value, b->error_value));
	FUZZ_CHECK(fuzz_streq(a->results_json, b->results_json));
}

/* What status_parse may leave in a record it accepted. */
static void check_record(const struct run_record *r)
{
	FUZZ_CHECK(memchr(r->script, '\0', sizeof(r->script)) != NULL);
	FUZZ_CHECK(memchr(r->backend, '\0', sizeof(r->backend)) != NULL);
	FUZZ_CHECK(r->lang == LANG_NONE || r->lang == LANG_PYTHON || r->lang == LANG_JAVASCRIPT);
	FUZZ_CHECK(r->state >= RS_NONE && r->state <= RS_INTERRUPTED);
	FUZZ_CHECK(r->saved_at_ms >= 0 && r->started_at_ms >= 0 && r->finished_at_ms >= 0);
	FUZZ_CHECK(r->execution_count >= -1);
	FUZZ_CHECK((r->error_name == NULL) == (r->error_value == NULL));
	if (r->results_json) {
		cJSON *a = cJSON_Parse(r->results_json);
		FUZZ_CHECK(cJSON_IsArray(a) && cJSON_GetArraySize(a) > 0);
		cJSON_Delete(a);
	}
}

static void check_status(const uint8_t *data, size_t size)
{
	struct run_record r1, r2;
	char *text, *again;
	int rc;

	run_record_init(&r1);
	rc = status_parse((const char *)data, size, &r1);
	FUZZ_CHECK(rc == 0 || rc == -EINVAL);
	if (rc != 0) {
		run_record_free(&r1);
		return;
	}
	check_record(&r1);

	text = status_render(&r1);
	FUZZ_CHECK(text != NULL);
	size_t len = strlen(text);
	FUZZ_CHECK(len > 0 && text[len - 1] == '\n');

	run_record_init(&r2);
	FUZZ_CHECK(status_parse(text, len, &r2) == 0);
	check_record(&r2);
	check_same(&r1, &r2);

	again = status_render(&r2);
	FUZZ_CHECK(again != NULL && strcmp(again, text) == 0);
	free(again);

	/* Parsing into a record that holds strings replaces them (no leak). */
	FUZZ_CHECK(status_parse((const char *)data, size, &r2) == 0);
	run_record_free(&r2);
	run_record_free(&r1);
	free(text);
}

static void check_time(const uint8_t *data, size_t size)
{
	char *s = fuzz_strndup0(data, size);
	int64_t ms = parse_rfc3339(s);
	char buf[64];

	if (ms != -1) {
		/* YYYY-MM-DDTHH:MM:SS[.fff...]Z, and the same instant back. */
		FUZZ_CHECK(strlen(s) >= 20 && s[10] == 'T' && s[strlen(s) - 1] == 'Z');
		memset(buf, 'x', sizeof(buf));
		format_rfc3339(ms, buf, sizeof(buf));
		buf[sizeof(buf) - 1] = '\0';
		if (strlen(buf) != 24 || parse_rfc3339(buf) != ms)
			fprintf(stderr, "parse_rfc3339(\"%s\") = %lld; format_rfc3339 of it: \"%s\"\n", s,
				(long long)ms, buf);
		FUZZ_CHECK(strlen(buf) == 24 && buf[19] == '.' && buf[23] == 'Z');
		FUZZ_CHECK(memcmp(buf, s, 19) == 0);
		FUZZ_CHECK(parse_rfc3339(buf) == ms);
	}
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	check_status(data, size);
	check_time(data, size);
	return 0;
}
