/* report: see report.h */
#define _GNU_SOURCE
#include "report.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

void report_init(struct report *rp)
{
	memset(rp, 0, sizeof(*rp));
	exec_result_init(&rp->rich);
}

void report_free(struct report *rp)
{
	free(rp->events);
	free(rp->line);
	exec_result_free(&rp->rich);
	report_init(rp);
}

/* A result event, LEN bytes long, added to the rich results. Data that is
 * not a string (JSON) is kept as JSON text. */
static void take_result(struct report *rp, const cJSON *o, size_t len)
{
	const cJSON *data = cJSON_GetObjectItemCaseSensitive(o, "data"), *c;
	int cap = cJSON_IsObject(data) ? cJSON_GetArraySize(data) : 0;
	struct mime_entry *e;
	size_t n = 0;

	if (cap <= 0)
		return;
	if (len > RESULTS_MAX - rp->rich_bytes || !(e = calloc((size_t)cap, sizeof(*e)))) {
		rp->dropped = true;
		return;
	}
	cJSON_ArrayForEach(c, data) {
		if (n == (size_t)cap || !c->string || !strchr(c->string, '/') || cJSON_IsNull(c))
			continue;
		e[n].mime = strdup(c->string);
		e[n].data = cJSON_IsString(c) ? strdup(c->valuestring) : cJSON_PrintUnformatted(c);
		if (!e[n].mime || !e[n].data) {
			free(e[n].mime);
			free(e[n].data);
			e[n].mime = e[n].data = NULL;
			rp->dropped = true;
			continue;
		}
		n++;
	}
	if (n == 0) {
		free(e);
		return;
	}
	if (exec_result_add(&rp->rich, e, n, cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "main"))) < 0)
		rp->dropped = true;
	else
		rp->rich_bytes += len;
}

/* One whole line, without its newline: a result goes to the rich results,
 * another event is kept for report_read(). */
static void take_line(struct report *rp, const char *s, size_t len)
{
	bool is_short = len < REPORT_SHORT;

	if (rp->seen > REPORT_BUDGET && !is_short)
		return;
	rp->seen += len + 1;
	cJSON *o = cJSON_ParseWithLength(s, len);
	const char *ev = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "event"));
	if (ev && strcmp(ev, "result") == 0) {
		take_result(rp, o, len);
	} else if (ev) {
		size_t room = REPORT_MAX - (is_short ? 0 : REPORT_RESERVE);
		char *ne = rp->events_len + len + 1 <= room ? realloc(rp->events, rp->events_len + len + 1) : NULL;
		if (ne) {
			memcpy(ne + rp->events_len, s, len);
			ne[rp->events_len + len] = '\n';
			rp->events = ne;
			rp->events_len += len + 1;
		} else {
			rp->dropped = true;
		}
	}
	cJSON_Delete(o);
}

/* The longest line taken now. */
static size_t line_max(const struct report *rp)
{
	size_t results = RESULTS_MAX - rp->rich_bytes;

	if (rp->seen > REPORT_BUDGET)
		return REPORT_SHORT;
	return results > REPORT_MAX ? results : REPORT_MAX;
}

/* The line being gathered is dropped up to its newline. */
static void skip_line(struct report *rp)
{
	rp->line_skip = true;
	rp->dropped = true;
	rp->line_len = 0;
}

/* Adds PART bytes to the line being gathered, or drops it. */
static void gather(struct report *rp, const char *part, size_t len)
{
	if (rp->line_len + len > line_max(rp))
		return skip_line(rp);
	if (rp->line_len + len > rp->line_cap) {
		size_t cap = rp->line_cap ? rp->line_cap : 4096;
		while (cap < rp->line_len + len)
			cap *= 2;
		char *nb = realloc(rp->line, cap);
		if (!nb)
			return skip_line(rp);
		rp->line = nb;
		rp->line_cap = cap;
	}
	memcpy(rp->line + rp->line_len, part, len);
	rp->line_len += len;
}

void report_bytes(struct report *rp, const char *buf, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(buf, '\n', n);
		size_t part = nl ? (size_t)(nl - buf) : n;

		if (!rp->line_skip && rp->line_len == 0 && nl) {
			take_line(rp, buf, part);   /* the usual case: no copy */
		} else if (!rp->line_skip) {
			gather(rp, buf, part);
			if (nl && !rp->line_skip)
				take_line(rp, rp->line, rp->line_len);
		}
		if (!nl)
			return;
		rp->line_len = 0;
		rp->line_skip = false;
		if (rp->line_cap > REPORT_MAX) {   /* a big result's: not kept for the run's life */
			free(rp->line);
			rp->line = NULL;
			rp->line_cap = 0;
		}
		buf = nl + 1;
		n -= part + 1;
	}
}

void report_end(struct report *rp)
{
	if (!rp->line_skip && rp->line_len > 0)
		take_line(rp, rp->line, rp->line_len);
	rp->line_len = 0;
	rp->line_skip = false;
	free(rp->line);
	rp->line = NULL;
	rp->line_cap = 0;
}

bool report_has_event(const struct report *rp, const char *event)
{
	char quoted[32];
	size_t len = strlen(event);

	if (!rp->events || len + 2 >= sizeof(quoted))
		return false;
	quoted[0] = '"';
	memcpy(quoted + 1, event, len);
	quoted[len + 1] = '"';
	return memmem(rp->events, rp->events_len, quoted, len + 2) != NULL;
}

void report_read(const struct report *rp, struct report_events *ev, struct exec_result *res)
{
	const char *line = rp->events, *end = rp->events ? rp->events + rp->events_len : NULL;

	*ev = (struct report_events){ .exit_code = -1, .spawn_errno = -1, .spawn_stage = -1 };
	while (line && line < end) {
		const char *nl = memchr(line, '\n', (size_t)(end - line));
		size_t len = nl ? (size_t)(nl - line) : (size_t)(end - line);
		cJSON *o = cJSON_ParseWithLength(line, len);
		const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "event"));
		if (!name) {
			/* not an event */
		} else if (strcmp(name, "ready") == 0) {
			ev->ready = true;
		} else if (strcmp(name, "start") == 0) {
			ev->started = true;
		} else if (strcmp(name, "error") == 0 && res && !res->has_error) {
			exec_result_set_error(res,
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "name")),
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "value")),
				cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "traceback")));
		} else if (strcmp(name, "exit") == 0) {
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "code");
			if (cJSON_IsNumber(c))
				ev->exit_code = c->valueint;
		} else if (strcmp(name, "spawn_error") == 0) {
			const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "errno");
			const cJSON *st = cJSON_GetObjectItemCaseSensitive(o, "stage");
			if (cJSON_IsNumber(c))
				ev->spawn_errno = c->valueint;
			if (cJSON_IsNumber(st))
				ev->spawn_stage = st->valueint;
		}
		cJSON_Delete(o);
		line = nl ? nl + 1 : end;
	}
}

void report_move_results(struct report *rp, struct exec_result *res)
{
	for (size_t i = 0; i < rp->rich.n_results; i++) {
		struct rich_result *rr = &rp->rich.results[i];
		if (exec_result_add(res, rr->entries, rr->n, rr->is_main) < 0)
			res->truncated = true;
		rr->entries = NULL;
		rr->n = 0;
	}
	if (rp->dropped)
		res->truncated = true;
}
