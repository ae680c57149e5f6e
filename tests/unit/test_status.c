/* Unit tests for status.h: the run record, its JSON rendering (checked with
 * cJSON) and parsing, and the RFC 3339 timestamps it uses. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>
#include <cmocka.h>

#include "status.h"

/* 2026-11-22T05:00:00.123Z */
#define T_2026 INT64_C(1795323600123)

static const char *const required_keys[] = {
	"script", "language", "backend", "run", "state", "exit_code", "signal", "started_at",
	"finished_at", "duration_ms", "stdout_bytes", "stderr_bytes", "truncated", "error",
};

static void full_record(struct run_record *r)
{
	run_record_init(r);
	snprintf(r->script, sizeof(r->script), "%s", "a.b.py");
	r->lang = LANG_PYTHON;
	snprintf(r->backend, sizeof(r->backend), "%s", "agentbay");
	r->run = 42;
	r->state = RS_FAILED;
	r->exit_code = 1;
	r->signal = 9;
	r->saved_at_ms = T_2026 - 2000;
	r->started_at_ms = T_2026 - 1500;
	r->finished_at_ms = T_2026;
	r->stdout_bytes = UINT64_C(123456789012);
	r->stderr_bytes = 17;
	r->truncated = true;
	assert_int_equal(run_record_set_error(r, "ZeroDivisionError", "division by \"zero\"\n\tline 2 ü"), 0);
}

/* Renders R and parses the text into OUT (initialised here). */
static void round_trip(const struct run_record *r, struct run_record *out)
{
	char *text = status_render(r);
	assert_non_null(text);
	run_record_init(out);
	assert_int_equal(status_parse(text, strlen(text), out), 0);
	free(text);
}

static void assert_records_equal(const struct run_record *a, const struct run_record *b)
{
	assert_string_equal(a->script, b->script);
	assert_int_equal(a->lang, b->lang);
	assert_string_equal(a->backend, b->backend);
	assert_int_equal(a->run, b->run);
	assert_int_equal(a->state, b->state);
	assert_int_equal(a->exit_code, b->exit_code);
	assert_int_equal(a->signal, b->signal);
	assert_int_equal(a->saved_at_ms, b->saved_at_ms);
	assert_int_equal(a->started_at_ms, b->started_at_ms);
	assert_int_equal(a->finished_at_ms, b->finished_at_ms);
	assert_int_equal(a->stdout_bytes, b->stdout_bytes);
	assert_int_equal(a->stderr_bytes, b->stderr_bytes);
	assert_int_equal(a->truncated, b->truncated);
	if (a->error_name) {
		assert_non_null(b->error_name);
		assert_string_equal(a->error_name, b->error_name);
		assert_string_equal(a->error_value, b->error_value);
	} else {
		assert_null(b->error_name);
		assert_null(b->error_value);
	}
}

/* Every field, the error object included, survives render -> parse. */
static void test_round_trip_full(void **state)
{
	struct run_record r, back;
	(void)state;

	full_record(&r);
	round_trip(&r, &back);
	assert_records_equal(&r, &back);
	run_record_clear_error(&r);
	run_record_clear_error(&back);
}

/* Nulls (exit code, signal, times, error) survive render -> parse. */
static void test_round_trip_nulls(void **state)
{
	struct run_record r, back;
	(void)state;

	run_record_init(&r);
	snprintf(r.script, sizeof(r.script), "%s", "x.js");
	r.lang = LANG_JAVASCRIPT;
	r.run = 1;
	r.state = RS_PENDING;
	round_trip(&r, &back);
	assert_records_equal(&r, &back);
	assert_int_equal(back.exit_code, -1);
	assert_int_equal(back.signal, 0);
	assert_int_equal(back.saved_at_ms, 0);
	assert_null(back.error_name);
	assert_string_equal(back.backend, "local");
	run_record_clear_error(&back);
}

/* Every state, and exit code 0, round-trip; a record is valid in each state. */
static void test_round_trip_states(void **state)
{
	(void)state;
	for (int s = RS_NONE; s <= RS_INTERRUPTED; s++) {
		struct run_record r, back;
		full_record(&r);
		r.state = (enum run_state)s;
		r.exit_code = 0;
		r.signal = 0;
		if (s == RS_SUCCEEDED)
			run_record_clear_error(&r);
		round_trip(&r, &back);
		assert_records_equal(&r, &back);
		run_record_clear_error(&r);
		run_record_clear_error(&back);
	}
}

/* Parsing replaces the strings a record held: an error is replaced or cleared. */
static void test_parse_replaces_error(void **state)
{
	struct run_record with, without, target;
	char *t_with, *t_without;
	(void)state;

	full_record(&with);
	run_record_init(&without);
	snprintf(without.script, sizeof(without.script), "%s", "x.py");
	without.state = RS_SUCCEEDED;
	t_with = status_render(&with);
	t_without = status_render(&without);
	assert_non_null(t_with);
	assert_non_null(t_without);

	run_record_init(&target);
	assert_int_equal(run_record_set_error(&target, "Old", "old value"), 0);
	assert_int_equal(status_parse(t_with, strlen(t_with), &target), 0);
	assert_string_equal(target.error_name, "ZeroDivisionError");
	assert_int_equal(status_parse(t_without, strlen(t_without), &target), 0);
	assert_null(target.error_name);
	assert_null(target.error_value);
	assert_int_equal(target.state, RS_SUCCEEDED);

	free(t_with);
	free(t_without);
	run_record_clear_error(&with);
	run_record_clear_error(&target);
}

/* run_record_set_error copies, defaults a NULL value to "", and NULL name clears. */
static void test_set_error(void **state)
{
	struct run_record r;
	char name[] = "E";
	(void)state;

	run_record_init(&r);
	assert_int_equal(r.exit_code, -1);
	assert_string_equal(r.backend, "local");
	assert_null(r.error_name);
	assert_int_equal(run_record_set_error(&r, name, NULL), 0);
	name[0] = 'X';
	assert_string_equal(r.error_name, "E");
	assert_string_equal(r.error_value, "");
	assert_int_equal(run_record_set_error(&r, "F", "g"), 0);
	assert_string_equal(r.error_name, "F");
	assert_int_equal(run_record_set_error(&r, NULL, "ignored"), 0);
	assert_null(r.error_name);
	assert_null(r.error_value);
	assert_int_equal(run_record_set_error(&r, "F", "g"), 0);
	run_record_clear_error(&r);
	assert_null(r.error_name);
	run_record_clear_error(&r);
}

/* The rendered text is one JSON object with every required key, of the right types. */
static void test_render_is_valid_json(void **state)
{
	struct run_record r;
	char *text;
	cJSON *o, *e;
	(void)state;

	full_record(&r);
	text = status_render(&r);
	assert_non_null(text);
	assert_int_equal(text[strlen(text) - 1], '\n');
	o = cJSON_Parse(text);
	assert_non_null(o);
	assert_true(cJSON_IsObject(o));
	for (size_t i = 0; i < sizeof(required_keys) / sizeof(required_keys[0]); i++)
		if (!cJSON_HasObjectItem(o, required_keys[i]))
			fail_msg("key '%s' missing from %s", required_keys[i], text);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "script")->valuestring, "a.b.py");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "language")->valuestring, "python");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "backend")->valuestring, "agentbay");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "run")->valuedouble, 42);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "state")->valuestring, "failed");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "exit_code")->valueint, 1);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "signal")->valueint, 9);
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "finished_at")->valuestring,
			    "2026-11-22T05:00:00.123Z");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(o, "started_at")->valuestring,
			    "2026-11-22T04:59:58.623Z");
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "duration_ms")->valuedouble, 1500);
	assert_true(cJSON_GetObjectItemCaseSensitive(o, "stdout_bytes")->valuedouble == 123456789012.0);
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "stderr_bytes")->valuedouble, 17);
	assert_true(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated")));
	e = cJSON_GetObjectItemCaseSensitive(o, "error");
	assert_true(cJSON_IsObject(e));
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "name")->valuestring, "ZeroDivisionError");
	assert_string_equal(cJSON_GetObjectItemCaseSensitive(e, "value")->valuestring,
			    "division by \"zero\"\n\tline 2 ü");
	cJSON_Delete(o);
	free(text);
	run_record_clear_error(&r);
}

/* A record with nothing known yet renders nulls, not made-up values. */
static void test_render_nulls(void **state)
{
	static const char *const null_keys[] = {
		"exit_code", "signal", "saved_at", "started_at", "finished_at", "duration_ms", "error",
	};
	struct run_record r;
	char *text;
	cJSON *o;
	(void)state;

	run_record_init(&r);
	snprintf(r.script, sizeof(r.script), "%s", "x.py");
	r.state = RS_RUNNING;
	r.started_at_ms = T_2026;   /* running: no finish, so no duration */
	text = status_render(&r);
	assert_non_null(text);
	o = cJSON_Parse(text);
	assert_non_null(o);
	for (size_t i = 0; i < sizeof(required_keys) / sizeof(required_keys[0]); i++)
		if (!cJSON_HasObjectItem(o, required_keys[i]))
			fail_msg("key '%s' missing from %s", required_keys[i], text);
	for (size_t i = 0; i < sizeof(null_keys) / sizeof(null_keys[0]); i++)
		if (strcmp(null_keys[i], "started_at") != 0 &&
		    !cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(o, null_keys[i])))
			fail_msg("key '%s' should be null in %s", null_keys[i], text);
	assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(o, "started_at")));
	assert_true(cJSON_IsFalse(cJSON_GetObjectItemCaseSensitive(o, "truncated")));
	assert_int_equal(cJSON_GetObjectItemCaseSensitive(o, "stdout_bytes")->valuedouble, 0);
	cJSON_Delete(o);
	free(text);
}

/* Texts that are not JSON objects, or lack script or state, are rejected. */
static void test_parse_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"   ",
		"null",
		"42",
		"\"x.py\"",
		"[]",
		"[{\"script\":\"x.py\",\"state\":\"running\"}]",
		"{",
		"{\"script\":\"x.py\",\"state\":\"running\"",
		"{}",
		"{\"state\":\"running\"}",
		"{\"script\":\"x.py\"}",
		"{\"script\":null,\"state\":\"running\"}",
		"{\"script\":1,\"state\":\"running\"}",
		"{\"script\":\"x.py\",\"state\":3}",
		"{\"script\":\"x.py\",\"state\":null}",
	};
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct run_record r;
		run_record_init(&r);
		if (status_parse(bad[i], strlen(bad[i]), &r) != -EINVAL)
			fail_msg("'%s' should be rejected with -EINVAL", bad[i]);
		run_record_clear_error(&r);
	}
}

/* A script name that does not fit the record is rejected. */
static void test_parse_rejects_long_script(void **state)
{
	char text[600], name[300];
	struct run_record r;
	(void)state;

	memset(name, 'a', sizeof(name));
	memcpy(name + sizeof(name) - 4, ".py", 4);
	snprintf(text, sizeof(text), "{\"script\":\"%s\",\"state\":\"running\"}", name);
	run_record_init(&r);
	assert_int_equal(status_parse(text, strlen(text), &r), -EINVAL);
}

/* An unknown state parses as RS_NONE; missing optional keys take their null defaults. */
static void test_parse_minimal_and_unknown_state(void **state)
{
	static const char text[] = "{\"script\":\"x.py\",\"state\":\"exploded\"}";
	struct run_record r;
	(void)state;

	run_record_init(&r);
	r.state = RS_RUNNING;
	assert_int_equal(status_parse(text, strlen(text), &r), 0);
	assert_string_equal(r.script, "x.py");
	assert_int_equal(r.state, RS_NONE);
	assert_int_equal(r.lang, LANG_NONE);
	assert_int_equal(r.run, 0);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 0);
	assert_int_equal(r.started_at_ms, 0);
	assert_null(r.error_name);
	/* The length bounds the text: trailing bytes beyond it are not read. */
	assert_int_equal(status_parse("{\"script\":\"y.py\",\"state\":\"failed\"}garbage", 34, &r), 0);
	assert_string_equal(r.script, "y.py");
	assert_int_equal(r.state, RS_FAILED);
}

/* Formatting is RFC 3339 in UTC with exactly three fraction digits. */
static void test_format_rfc3339(void **state)
{
	char buf[40];
	(void)state;

	format_rfc3339(T_2026, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-22T05:00:00.123Z");
	format_rfc3339(0, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-01T00:00:00.000Z");
	format_rfc3339(86400000 + 7, buf, sizeof(buf));
	assert_string_equal(buf, "1970-01-02T00:00:00.007Z");
	format_rfc3339(INT64_C(951782400050), buf, sizeof(buf));     /* leap day */
	assert_string_equal(buf, "2000-02-29T00:00:00.050Z");
	format_rfc3339(INT64_C(4102444799999), buf, sizeof(buf));
	assert_string_equal(buf, "2099-12-31T23:59:59.999Z");
}

/* Formatting and parsing ignore the local time zone. */
static void test_rfc3339_ignores_tz(void **state)
{
	char buf[40];
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;
	(void)state;

	setenv("TZ", "NPT-5:45", 1);   /* POSIX form of UTC+05:45: any offset would show */
	tzset();
	format_rfc3339(T_2026, buf, sizeof(buf));
	assert_string_equal(buf, "2026-11-22T05:00:00.123Z");
	assert_int_equal(parse_rfc3339("2026-11-22T05:00:00.123Z"), T_2026);
	if (saved) {
		setenv("TZ", saved, 1);
		free(saved);
	} else {
		unsetenv("TZ");
	}
	tzset();
}

/* Parsing inverts formatting at ms precision and accepts a missing or shorter fraction. */
static void test_parse_rfc3339(void **state)
{
	static const int64_t samples[] = {
		1, 999, 1000, 86400000 + 7, INT64_C(951782400050), T_2026, INT64_C(4102444799999),
	};
	char buf[40];
	(void)state;

	for (size_t i = 0; i < sizeof(samples) / sizeof(samples[0]); i++) {
		format_rfc3339(samples[i], buf, sizeof(buf));
		assert_int_equal(parse_rfc3339(buf), samples[i]);
	}
	assert_int_equal(parse_rfc3339("2026-11-22T05:00:00Z"), T_2026 - 123);
	assert_int_equal(parse_rfc3339("2026-11-22T05:00:00.1Z"), T_2026 - 23);
	assert_int_equal(parse_rfc3339("2026-11-22T05:00:00.12Z"), T_2026 - 3);
	/* More than three digits: truncated to the millisecond. */
	assert_int_equal(parse_rfc3339("2026-11-22T05:00:00.123987Z"), T_2026);
	assert_int_equal(parse_rfc3339("1970-01-01T00:00:00.000Z"), 0);
}

/* Malformed timestamps give -1. */
static void test_parse_rfc3339_rejects(void **state)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"2026-11-22",
		"2026-11-22T05:00",
		"2026-11-22T05:00:00",           /* no zone */
		"2026-11-22T05:00:00.123",
		"2026-11-22T05:00:00.123Zjunk",
		"2026-11-22T05:00:00.123Z ",
		"2026-11-22T05:00:00.abcZ",
		"2026-13-01T00:00:00Z",           /* month 13 */
		"2026-11-32T00:00:00Z",           /* day 32 */
		"2026-11-22T25:00:00Z",           /* hour 25 */
		"2026-11-22T05:60:00Z",           /* minute 60 */
		"2026/11/22T05:00:00Z",
		"2026-11-22X05:00:00Z",
	};
	(void)state;

	assert_int_equal(parse_rfc3339(NULL), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_rfc3339(bad[i]) != -1)
			fail_msg("'%s' should be rejected", bad[i]);
}

/* Non-RFC 3339 shapes and impossible dates give -1 ("-1 when malformed"). */
static void test_parse_rfc3339_rejects_lenient_forms(void **state)
{
	static const char *const bad[] = {
		"2026-02-30T00:00:00Z",       /* no such day: parses as 2026-03-02 */
		"2026-1-2T3:4:5Z",            /* fields are exactly two digits */
		" 2026-11-22T05:00:00Z",      /* leading blank */
		"2026-11-22T05:00:00.Z",      /* '.' needs at least one digit */
	};
	char msg[512] = "";
	size_t used = 0;
	(void)state;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		long long got = (long long)parse_rfc3339(bad[i]);
		if (got != -1 && used < sizeof(msg))
			used += (size_t)snprintf(msg + used, sizeof(msg) - used, " '%s' -> %lld;", bad[i], got);
	}
	if (used)
		fail_msg("parse_rfc3339 accepts malformed timestamps:%s", msg);
}

/* Timestamps that do not parse load as null (0), not as garbage. */
static void test_parse_bad_times_are_null(void **state)
{
	static const char text[] =
		"{\"script\":\"x.py\",\"state\":\"succeeded\",\"started_at\":\"yesterday\","
		"\"finished_at\":12345,\"saved_at\":null,\"run\":-3,\"stdout_bytes\":-1}";
	struct run_record r;
	(void)state;

	run_record_init(&r);
	r.started_at_ms = r.finished_at_ms = r.saved_at_ms = 77;
	assert_int_equal(status_parse(text, strlen(text), &r), 0);
	assert_int_equal(r.started_at_ms, 0);
	assert_int_equal(r.finished_at_ms, 0);
	assert_int_equal(r.saved_at_ms, 0);
	assert_int_equal(r.run, 0);
	assert_int_equal(r.stdout_bytes, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip_full),
		cmocka_unit_test(test_round_trip_nulls),
		cmocka_unit_test(test_round_trip_states),
		cmocka_unit_test(test_parse_replaces_error),
		cmocka_unit_test(test_set_error),
		cmocka_unit_test(test_render_is_valid_json),
		cmocka_unit_test(test_render_nulls),
		cmocka_unit_test(test_parse_rejects),
		cmocka_unit_test(test_parse_rejects_long_script),
		cmocka_unit_test(test_parse_minimal_and_unknown_state),
		cmocka_unit_test(test_format_rfc3339),
		cmocka_unit_test(test_rfc3339_ignores_tz),
		cmocka_unit_test(test_parse_rfc3339),
		cmocka_unit_test(test_parse_rfc3339_rejects),
		cmocka_unit_test(test_parse_rfc3339_rejects_lenient_forms),
		cmocka_unit_test(test_parse_bad_times_are_null),
	};
	return cmocka_run_group_tests_name("status", tests, NULL, NULL);
}
