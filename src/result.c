/* result: see result.h */
#define _GNU_SOURCE
#include "result.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const state_names[] = {
	[RS_NONE] = "none",           [RS_PENDING] = "pending",   [RS_RUNNING] = "running",
	[RS_SUCCEEDED] = "succeeded", [RS_FAILED] = "failed",     [RS_TIMED_OUT] = "timed_out",
	[RS_CANCELLED] = "cancelled", [RS_INTERRUPTED] = "interrupted",
};

const char *run_state_name(enum run_state s)
{
	if ((size_t)s < sizeof(state_names) / sizeof(state_names[0]))
		return state_names[s];
	return "none";
}

enum run_state run_state_from_name(const char *name)
{
	if (!name)
		return RS_NONE;
	for (size_t i = 0; i < sizeof(state_names) / sizeof(state_names[0]); i++)
		if (strcmp(state_names[i], name) == 0)
			return (enum run_state)i;
	return RS_NONE;
}

bool run_state_final(enum run_state s)
{
	return s >= RS_SUCCEEDED;
}

void exec_result_init(struct exec_result *r)
{
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
	r->execution_count = -1;
}

static void mime_free(struct mime_entry *e, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(e[i].mime);
		free(e[i].data);
	}
	free(e);
}

void exec_result_free(struct exec_result *r)
{
	free(r->error.name);
	free(r->error.value);
	free(r->error.traceback);
	for (size_t i = 0; i < r->n_results; i++)
		mime_free(r->results[i].entries, r->results[i].n);
	free(r->results);
	exec_result_init(r);
}

static int dup_opt(char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return 0;
	*dst = strdup(src);
	return *dst ? 0 : -ENOMEM;
}

int exec_result_set_error(struct exec_result *r, const char *name, const char *value,
			  const char *traceback)
{
	struct exec_error e;

	if (dup_opt(&e.name, name ? name : "Error") || dup_opt(&e.value, value ? value : "") ||
	    dup_opt(&e.traceback, traceback)) {
		free(e.name);
		free(e.value);
		return -ENOMEM;
	}
	free(r->error.name);
	free(r->error.value);
	free(r->error.traceback);
	r->error = e;
	r->has_error = true;
	return 0;
}

int exec_result_add(struct exec_result *r, struct mime_entry *entries, size_t n, bool is_main)
{
	struct rich_result *nr = realloc(r->results, (r->n_results + 1) * sizeof(*nr));

	if (!nr) {
		mime_free(entries, n);
		return -ENOMEM;
	}
	r->results = nr;
	nr[r->n_results++] = (struct rich_result){ .entries = entries, .n = n, .is_main = is_main };
	return 0;
}

char *exec_error_render(const struct exec_result *r)
{
	char *out = NULL;
	size_t len = 0;
	FILE *f;

	if (!r->has_error)
		return strdup("");
	f = open_memstream(&out, &len);
	if (!f)
		return NULL;
	/* The first line holds the value's first line only; the rest of a
	 * multi-line value goes below it, before the traceback. */
	const char *v = r->error.value ? r->error.value : "";
	const char *nl = strchr(v, '\n');
	int first = (int)(nl ? (size_t)(nl - v) : strlen(v));
	/* As Python prints it: "MemoryError" alone when there is no message. */
	fprintf(f, "%s%s%.*s\n", r->error.name ? r->error.name : "Error", first ? ": " : "", first, v);
	if (nl && nl[1])
		fprintf(f, "%s%s", nl + 1, nl[strlen(nl) - 1] == '\n' ? "" : "\n");
	const char *tb = r->error.traceback;
	if (tb && *tb)
		fprintf(f, "%s%s", tb, tb[strlen(tb) - 1] == '\n' ? "" : "\n");
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}

const char *signal_name(int sig, char *buf, size_t bufsz)
{
	const char *abbrev = sigabbrev_np(sig);

	if (abbrev)
		snprintf(buf, bufsz, "SIG%s", abbrev);
	else
		snprintf(buf, bufsz, "signal %d", sig);
	return buf;
}
