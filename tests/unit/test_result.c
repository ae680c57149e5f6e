/* Unit tests for result.h: run states, the ".error" text, signal names and
 * the ownership rules of struct exec_result (run under valgrind for leaks). */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "result.h"

/* Renders R's error text, checks it against EXPECT and frees it. */
static void check_render(const struct exec_result *r, const char *expect)
{
	char *text = exec_error_render(r);
	assert_non_null(text);
	assert_string_equal(text, expect);
	free(text);
}

/* A fresh result has no error, unknown exit code and count, and renders "". */
static void test_init_defaults(void **state)
{
	struct exec_result r;
	(void)state;

	memset(&r, 0x5a, sizeof(r));
	exec_result_init(&r);
	assert_int_equal(r.state, RS_NONE);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.signal, 0);
	assert_false(r.truncated);
	assert_false(r.has_error);
	assert_null(r.error.name);
	assert_null(r.error.value);
	assert_null(r.error.traceback);
	assert_null(r.results);
	assert_int_equal(r.n_results, 0);
	assert_int_equal(r.execution_count, -1);
	check_render(&r, "");
	exec_result_free(&r);
}

/* Without an error the ".error" text is empty, whatever the state. */
static void test_render_empty_without_error(void **state)
{
	struct exec_result r;
	(void)state;

	exec_result_init(&r);
	r.state = RS_FAILED;
	r.exit_code = 3;
	check_render(&r, "");
	exec_result_free(&r);
}

/* The first line is "Name: value". */
static void test_render_name_value(void **state)
{
	struct exec_result r;
	(void)state;

	exec_result_init(&r);
	assert_int_equal(exec_result_set_error(&r, "ZeroDivisionError", "division by zero", NULL), 0);
	assert_true(r.has_error);
	check_render(&r, "ZeroDivisionError: division by zero\n");
	exec_result_free(&r);
}

/* A multi-line value keeps only its first line on line 1; the rest follows. */
static void test_render_multiline_value(void **state)
{
	struct exec_result r;
	char *text, *nl;
	(void)state;

	exec_result_init(&r);
	assert_int_equal(exec_result_set_error(&r, "SyntaxError", "invalid syntax\n  x = (\n      ^", NULL), 0);
	text = exec_error_render(&r);
	assert_non_null(text);
	nl = strchr(text, '\n');
	assert_non_null(nl);
	assert_int_equal(nl - text, strlen("SyntaxError: invalid syntax"));
	assert_memory_equal(text, "SyntaxError: invalid syntax\n", strlen("SyntaxError: invalid syntax\n"));
	assert_string_equal(text, "SyntaxError: invalid syntax\n  x = (\n      ^\n");
	free(text);

	/* A value that only ends in a newline is a one-line value. */
	assert_int_equal(exec_result_set_error(&r, "E", "v\n", NULL), 0);
	check_render(&r, "E: v\n");
	/* A value that already ends its last line is not given a second newline. */
	assert_int_equal(exec_result_set_error(&r, "E", "a\nb\n", NULL), 0);
	check_render(&r, "E: a\nb\n");
	exec_result_free(&r);
}

/* The traceback follows the first line, newline-terminated, never doubled. */
static void test_render_traceback(void **state)
{
	static const char tb[] =
		"Traceback (most recent call last):\n"
		"  File \"/x.py\", line 1, in <module>\n"
		"    1/0\n"
		"ZeroDivisionError: division by zero";
	struct exec_result r;
	char *text;
	(void)state;

	exec_result_init(&r);
	assert_int_equal(exec_result_set_error(&r, "ZeroDivisionError", "division by zero", tb), 0);
	text = exec_error_render(&r);
	assert_non_null(text);
	assert_int_equal(strncmp(text, "ZeroDivisionError: division by zero\n", 36), 0);
	assert_string_equal(text + 36, "Traceback (most recent call last):\n"
				       "  File \"/x.py\", line 1, in <module>\n"
				       "    1/0\n"
				       "ZeroDivisionError: division by zero\n");
	assert_int_equal(text[strlen(text) - 1], '\n');
	assert_int_not_equal(text[strlen(text) - 2], '\n');
	free(text);

	/* Already newline-terminated: kept as is. */
	assert_int_equal(exec_result_set_error(&r, "E", "v", "tb line\n"), 0);
	check_render(&r, "E: v\ntb line\n");
	/* An empty traceback adds nothing. */
	assert_int_equal(exec_result_set_error(&r, "E", "v", ""), 0);
	check_render(&r, "E: v\n");
	/* Multi-line value, then traceback. */
	assert_int_equal(exec_result_set_error(&r, "E", "one\ntwo", "tb"), 0);
	check_render(&r, "E: one\ntwo\ntb\n");
	exec_result_free(&r);
}

/* set_error copies its strings, defaults a NULL name to "Error" and a NULL value to "" (rendered "Name\n"). */
static void test_set_error_copies_and_defaults(void **state)
{
	struct exec_result r;
	char name[] = "KeyError", value[] = "'k'";
	(void)state;

	exec_result_init(&r);
	assert_int_equal(exec_result_set_error(&r, name, value, NULL), 0);
	name[0] = 'X';
	value[0] = 'X';
	assert_string_equal(r.error.name, "KeyError");
	assert_string_equal(r.error.value, "'k'");
	assert_null(r.error.traceback);

	assert_int_equal(exec_result_set_error(&r, NULL, NULL, NULL), 0);
	assert_true(r.has_error);
	assert_string_equal(r.error.name, "Error");
	assert_string_equal(r.error.value, "");
	/* An empty value renders the name alone, as Python prints it. */
	check_render(&r, "Error\n");
	assert_int_equal(exec_result_set_error(&r, "MemoryError", "", "tb"), 0);
	check_render(&r, "MemoryError\ntb\n");

	/* Replacing an error with a traceback by one without: no traceback left. */
	assert_int_equal(exec_result_set_error(&r, "A", "b", "tb\n"), 0);
	assert_int_equal(exec_result_set_error(&r, "C", "d", NULL), 0);
	assert_null(r.error.traceback);
	check_render(&r, "C: d\n");
	exec_result_free(&r);
	assert_false(r.has_error);
	assert_null(r.error.name);
}

/* Every run state's name maps back to it; unknown names are RS_NONE. */
static void test_run_state_names(void **state)
{
	static const struct {
		enum run_state s;
		const char *name;
	} names[] = {
		{ RS_NONE, "none" },           { RS_PENDING, "pending" },
		{ RS_RUNNING, "running" },     { RS_SUCCEEDED, "succeeded" },
		{ RS_FAILED, "failed" },       { RS_TIMED_OUT, "timed_out" },
		{ RS_CANCELLED, "cancelled" }, { RS_INTERRUPTED, "interrupted" },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		assert_string_equal(run_state_name(names[i].s), names[i].name);
		assert_int_equal(run_state_from_name(names[i].name), names[i].s);
		assert_int_equal(run_state_from_name(run_state_name(names[i].s)), names[i].s);
	}
	assert_int_equal(run_state_from_name(NULL), RS_NONE);
	assert_int_equal(run_state_from_name(""), RS_NONE);
	assert_int_equal(run_state_from_name("RUNNING"), RS_NONE);
	assert_int_equal(run_state_from_name("timed out"), RS_NONE);
	assert_int_equal(run_state_from_name("bogus"), RS_NONE);
	assert_string_equal(run_state_name((enum run_state)99), "none");
}

/* Only succeeded, failed, timed_out, cancelled and interrupted are final. */
static void test_run_state_final(void **state)
{
	(void)state;
	assert_false(run_state_final(RS_NONE));
	assert_false(run_state_final(RS_PENDING));
	assert_false(run_state_final(RS_RUNNING));
	assert_true(run_state_final(RS_SUCCEEDED));
	assert_true(run_state_final(RS_FAILED));
	assert_true(run_state_final(RS_TIMED_OUT));
	assert_true(run_state_final(RS_CANCELLED));
	assert_true(run_state_final(RS_INTERRUPTED));
}

/* Signals get their SIG name; unknown numbers read "signal N". */
static void test_signal_name(void **state)
{
	char buf[32];
	(void)state;

	assert_string_equal(signal_name(SIGKILL, buf, sizeof(buf)), "SIGKILL");
	assert_string_equal(signal_name(SIGTERM, buf, sizeof(buf)), "SIGTERM");
	assert_string_equal(signal_name(SIGINT, buf, sizeof(buf)), "SIGINT");
	assert_string_equal(signal_name(SIGSEGV, buf, sizeof(buf)), "SIGSEGV");
	assert_string_equal(signal_name(SIGXCPU, buf, sizeof(buf)), "SIGXCPU");
	assert_string_equal(signal_name(SIGXFSZ, buf, sizeof(buf)), "SIGXFSZ");
	assert_ptr_equal(signal_name(SIGKILL, buf, sizeof(buf)), buf);
	assert_string_equal(signal_name(0, buf, sizeof(buf)), "signal 0");
	assert_string_equal(signal_name(200, buf, sizeof(buf)), "signal 200");
	assert_string_equal(signal_name(-1, buf, sizeof(buf)), "signal -1");
	/* A short buffer is truncated, still terminated. */
	assert_string_equal(signal_name(SIGKILL, buf, 4), "SIG");
}

static struct mime_entry *entries(size_t n, const char *const *mime, const char *const *data)
{
	struct mime_entry *e = calloc(n, sizeof(*e));
	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		e[i].mime = strdup(mime[i]);
		e[i].data = strdup(data[i]);
		assert_non_null(e[i].mime);
		assert_non_null(e[i].data);
	}
	return e;
}

/* exec_result_add takes ownership of the entries; free releases everything and re-inits. */
static void test_add_and_free(void **state)
{
	static const char *const m1[] = { "text/plain", "image/png" };
	static const char *const d1[] = { "<Figure>", "iVBORw0KGgo=" };
	static const char *const m2[] = { "application/json" };
	static const char *const d2[] = { "{\"a\": 1}" };
	struct exec_result r;
	(void)state;

	exec_result_init(&r);
	assert_int_equal(exec_result_add(&r, entries(2, m1, d1), 2, false), 0);
	assert_int_equal(exec_result_add(&r, entries(1, m2, d2), 1, true), 0);
	assert_int_equal(exec_result_add(&r, NULL, 0, false), 0);
	assert_int_equal(r.n_results, 3);
	assert_int_equal(r.results[0].n, 2);
	assert_false(r.results[0].is_main);
	assert_string_equal(r.results[0].entries[1].mime, "image/png");
	assert_string_equal(r.results[0].entries[1].data, "iVBORw0KGgo=");
	assert_true(r.results[1].is_main);
	assert_string_equal(r.results[1].entries[0].data, "{\"a\": 1}");
	assert_int_equal(r.results[2].n, 0);
	assert_int_equal(exec_result_set_error(&r, "E", "v", "tb"), 0);
	r.state = RS_FAILED;
	r.exit_code = 1;
	r.execution_count = 4;

	exec_result_free(&r);
	assert_null(r.results);
	assert_int_equal(r.n_results, 0);
	assert_false(r.has_error);
	assert_int_equal(r.exit_code, -1);
	assert_int_equal(r.execution_count, -1);
	assert_int_equal(r.state, RS_NONE);
	/* Freeing twice is harmless. */
	exec_result_free(&r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init_defaults),
		cmocka_unit_test(test_render_empty_without_error),
		cmocka_unit_test(test_render_name_value),
		cmocka_unit_test(test_render_multiline_value),
		cmocka_unit_test(test_render_traceback),
		cmocka_unit_test(test_set_error_copies_and_defaults),
		cmocka_unit_test(test_run_state_names),
		cmocka_unit_test(test_run_state_final),
		cmocka_unit_test(test_signal_name),
		cmocka_unit_test(test_add_and_free),
	};
	return cmocka_run_group_tests_name("result", tests, NULL, NULL);
}
