/* Unit tests for report.h: reading a bootstrap's report as it comes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "report.h"

/* Feeds TEXT in pieces of STEP bytes (0: whole). */
static void feed(struct report *rp, const char *text, size_t step)
{
	size_t len = strlen(text);

	for (size_t off = 0; off < len;) {
		size_t n = step && step < len - off ? step : len - off;
		report_bytes(rp, text + off, n);
		off += n;
	}
}

/* A malloc'd line of LEN bytes before TAIL: HEAD, then FILL up to LEN. */
static char *long_line(const char *head, char fill, size_t len, const char *tail)
{
	size_t hl = strlen(head), tl = strlen(tail);
	char *line = malloc(len + tl + 1);

	assert_non_null(line);
	assert_true(hl <= len);
	memcpy(line, head, hl);
	memset(line + hl, fill, len - hl);
	memcpy(line + len, tail, tl + 1);
	return line;
}

static const char *const sample =
	"{\"event\": \"ready\"}\n"
	"{\"event\": \"start\"}\n"
	"{\"event\": \"result\", \"main\": false, \"data\": {\"image/png\": \"iVBORw==\"}}\n"
	"{\"event\": \"result\", \"main\": true, \"data\": {\"text/plain\": \"42\", \"application/json\": {\"a\": 1}}}\n"
	"{\"event\": \"error\", \"name\": \"ValueError\", \"value\": \"bad\", \"traceback\": \"tb\"}\n"
	"{\"event\": \"error\", \"name\": \"Second\", \"value\": \"ignored\"}\n"
	"{\"event\": \"exit\", \"code\": 3}\n";

/* Whatever the pieces the pipe gives, the same events and results. */
static void test_events_and_results_in_any_pieces(void **state)
{
	static const size_t steps[] = { 0, 1, 2, 7, 64, 4096 };

	(void)state;
	for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
		struct report rp;
		struct report_events ev;
		struct exec_result res;

		report_init(&rp);
		exec_result_init(&res);
		feed(&rp, sample, steps[i]);
		report_end(&rp);
		assert_true(report_has_event(&rp, "exit"));
		assert_true(report_has_event(&rp, "ready"));
		assert_false(report_has_event(&rp, "spawn_error"));
		report_read(&rp, &ev, &res);
		assert_true(ev.ready && ev.started);
		assert_int_equal(ev.exit_code, 3);
		assert_int_equal(ev.spawn_errno, -1);
		assert_int_equal(ev.spawn_stage, -1);
		assert_true(res.has_error);
		assert_string_equal(res.error.name, "ValueError");
		assert_string_equal(res.error.value, "bad");
		assert_string_equal(res.error.traceback, "tb");
		report_move_results(&rp, &res);
		assert_false(res.truncated);
		assert_int_equal(res.n_results, 2);
		assert_false(res.results[0].is_main);
		assert_int_equal(res.results[0].n, 1);
		assert_string_equal(res.results[0].entries[0].mime, "image/png");
		assert_true(res.results[1].is_main);
		assert_int_equal(res.results[1].n, 2);
		assert_string_equal(res.results[1].entries[0].data, "42");
		assert_string_equal(res.results[1].entries[1].data, "{\"a\":1}");
		exec_result_free(&res);
		report_free(&rp);
	}
}

/* A last line without its newline counts once the report ends; garbage
 * lines and objects that are not events are ignored. */
static void test_last_line_and_garbage(void **state)
{
	struct report rp;
	struct report_events ev;

	(void)state;
	report_init(&rp);
	feed(&rp, "not json\n{\"no\": \"event\"}\n\n{\"event\": \"spawn_error\", \"errno\": 2, \"stage\": 1}\n"
		  "{\"event\": \"exit\", \"code\": 0}", 5);
	report_read(&rp, &ev, NULL);
	assert_int_equal(ev.exit_code, -1);
	assert_int_equal(ev.spawn_errno, 2);
	assert_int_equal(ev.spawn_stage, 1);
	report_end(&rp);
	report_read(&rp, &ev, NULL);
	assert_int_equal(ev.exit_code, 0);
	assert_false(ev.started);
	report_free(&rp);
}

/* Neither a long error event that would take the last REPORT_RESERVE of
 * the room nor one longer than all of it pushes the exit event out, and
 * what was dropped marks the results truncated. */
static void test_huge_lines_keep_the_exit_event(void **state)
{
	static const char head[] = "{\"event\": \"error\", \"name\": \"E\", \"value\": \"";
	struct report rp;
	struct report_events ev;
	struct exec_result res;

	(void)state;
	report_init(&rp);
	exec_result_init(&res);
	/* Nearly filling the room for events first, with short lines. */
	while (rp.events_len + 2 * REPORT_RESERVE < REPORT_MAX) {
		char filler[200];
		int n = snprintf(filler, sizeof(filler), "{\"event\": \"log\", \"pad\": \"%0*d\"}\n", 160, 0);
		assert_true(n > 0 && (size_t)n < sizeof(filler));
		report_bytes(&rp, filler, (size_t)n);
	}
	assert_true(rp.events_len + 2 * REPORT_RESERVE < REPORT_MAX + 200);
	/* One that fits, but in the reserve; one over all the room. */
	char *reserve = long_line(head, 'x', strlen(head) + REPORT_RESERVE, "\"}\n");
	char *huge = long_line(head, 'x', REPORT_MAX + 10, "\"}\n");
	feed(&rp, reserve, 1000);
	feed(&rp, huge, 65536);
	feed(&rp, "{\"event\": \"exit\", \"code\": 1}\n", 3);
	report_end(&rp);
	report_read(&rp, &ev, &res);
	assert_int_equal(ev.exit_code, 1);
	assert_false(res.has_error);   /* the error line was too long to keep */
	report_move_results(&rp, &res);
	assert_true(res.truncated);
	exec_result_free(&res);
	report_free(&rp);
	free(reserve);
	free(huge);
}

/* Results beyond RESULTS_MAX in all are dropped (truncated), and once the
 * budget is spent only short lines are looked at. */
static void test_results_cap_and_budget(void **state)
{
	size_t len = (1u << 20);
	char *line = long_line("{\"event\": \"result\", \"main\": false, \"data\": {\"text/html\": \"", 'h', len,
			       "\"}}\n");
	struct report rp;
	struct report_events ev;
	struct exec_result res;
	unsigned sent = 0;

	(void)state;
	report_init(&rp);
	exec_result_init(&res);
	while ((size_t)sent * len < 2 * (size_t)REPORT_BUDGET) {
		report_bytes(&rp, line, strlen(line));
		sent++;
	}
	assert_true(rp.rich_bytes <= RESULTS_MAX);
	assert_true(rp.seen <= REPORT_BUDGET + len + 1);
	feed(&rp, "{\"event\": \"exit\", \"code\": 0}\n", 0);
	report_read(&rp, &ev, &res);
	assert_int_equal(ev.exit_code, 0);
	report_move_results(&rp, &res);
	assert_true(res.truncated);
	assert_true(res.n_results > 0 && res.n_results < sent);
	exec_result_free(&res);
	report_free(&rp);
	free(line);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events_and_results_in_any_pieces),
		cmocka_unit_test(test_last_line_and_garbage),
		cmocka_unit_test(test_huge_lines_keep_the_exit_event),
		cmocka_unit_test(test_results_cap_and_budget),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
