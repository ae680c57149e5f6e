/* Fuzz target: a bootstrap's report (report.h), which a script can write
 * to itself (fd 3 is in its sandbox).
 *
 * Input: the first byte picks the size of the pieces the rest comes in (as
 * a pipe would cut it). The report is read, ended, read for its events and
 * its results moved out. Invariants: the bounds hold (events kept within
 * REPORT_MAX, results within RESULTS_MAX), results moved out are whole
 * (a MIME type with a slash, data), and nothing leaks. */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct report rp;
	struct report_events ev;
	struct exec_result res;

	if (size < 1)
		return 0;
	size_t step = (size_t)data[0] + 1;
	const char *text = (const char *)data + 1;
	size_t len = size - 1;

	report_init(&rp);
	for (size_t off = 0; off < len; off += step)
		report_bytes(&rp, text + off, len - off < step ? len - off : step);
	report_end(&rp);
	FUZZ_CHECK(rp.events_len <= REPORT_MAX);
	FUZZ_CHECK(rp.rich_bytes <= RESULTS_MAX);
	FUZZ_CHECK(rp.line == NULL && rp.line_len == 0);

	exec_result_init(&res);
	report_read(&rp, &ev, &res);
	/* A cheap look only: it may miss an event spelt with escapes, or see
	 * the word in a value, and is used only to end a run early. */
	(void)report_has_event(&rp, "exit");
	size_t n = rp.rich.n_results;
	report_move_results(&rp, &res);
	FUZZ_CHECK(res.n_results == n || res.truncated);
	for (size_t i = 0; i < res.n_results; i++) {
		FUZZ_CHECK(res.results[i].n > 0);
		for (size_t j = 0; j < res.results[i].n; j++)
			FUZZ_CHECK(res.results[i].entries[j].mime && strchr(res.results[i].entries[j].mime, '/') &&
				   res.results[i].entries[j].data);
	}
	exec_result_free(&res);
	report_free(&rp);
	return 0;
}
