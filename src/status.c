/* status: see status.h */
#define _GNU_SOURCE
#include "status.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void run_record_init(struct run_record *r)
{
	memset(r, 0, sizeof(*r));
	r->exit_code = -1;
	r->execution_count = -1;
	snprintf(r->backend, sizeof(r->backend), "local");
}

void run_record_clear_error(struct run_record *r)
{
	free(r->error_name);
	free(r->error_value);
	r->error_name = r->error_value = NULL;
}

void run_record_free(struct run_record *r)
{
	run_record_clear_error(r);
	free(r->results_json);
	r->results_json = NULL;
}

int run_record_set_results(struct run_record *r, const struct exec_result *res)
{
	cJSON *arr;
	char *text;

	free(r->results_json);
	r->results_json = NULL;
	r->execution_count = res->execution_count;
	if (res->n_results == 0)
		return 0;
	arr = cJSON_CreateArray();
	for (size_t i = 0; arr && i < res->n_results; i++) {
		const struct rich_result *rr = &res->results[i];
		cJSON *o = cJSON_CreateObject(), *types = cJSON_CreateArray();
		const char *plain = NULL;
		if (!o || !types) {
			cJSON_Delete(o);
			cJSON_Delete(types);
			cJSON_Delete(arr);
			return -ENOMEM;
		}
		for (size_t k = 0; k < rr->n; k++) {
			cJSON_AddItemToArray(types, cJSON_CreateString(rr->entries[k].mime));
			if (strcmp(rr->entries[k].mime, "text/plain") == 0)
				plain = rr->entries[k].data;
		}
		cJSON_AddBoolToObject(o, "is_main_result", rr->is_main);
		cJSON_AddItemToObject(o, "types", types);
		if (plain)
			cJSON_AddStringToObject(o, "text", plain);
		else
			cJSON_AddNullToObject(o, "text");
		cJSON_AddItemToArray(arr, o);
	}
	text = arr ? cJSON_PrintUnformatted(arr) : NULL;
	cJSON_Delete(arr);
	if (!text)
		return -ENOMEM;
	r->results_json = text;
	return 0;
}

int run_record_set_error(struct run_record *r, const char *name, const char *value)
{
	char *n = NULL, *v = NULL;

	if (name) {
		n = strdup(name);
		v = strdup(value ? value : "");
		if (!n || !v) {
			free(n);
			free(v);
			return -ENOMEM;
		}
	}
	run_record_clear_error(r);
	r->error_name = n;
	r->error_value = v;
	return 0;
}

void format_rfc3339(int64_t ms, char *buf, size_t bufsz)
{
	/* Floor division: times before 1970 keep a positive millisecond part. */
	int64_t secs = ms / 1000, frac = ms % 1000;
	if (frac < 0) {
		frac += 1000;
		secs--;
	}
	time_t t = (time_t)secs;
	struct tm tm;

	gmtime_r(&t, &tm);
	snprintf(buf, bufsz, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
		 tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
}

/* Reads N digits at S into *out; false unless all N are digits. */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

int64_t parse_rfc3339(const char *s)
{
	struct tm tm, back;
	int year, mon, day, hour, min, sec, ms = 0;
	const char *p;
	time_t t;

	/* Exactly YYYY-MM-DDTHH:MM:SS[.fff...]Z */
	if (!s || strlen(s) < 20 || !digits(s, 4, &year) || s[4] != '-' || !digits(s + 5, 2, &mon) ||
	    s[7] != '-' || !digits(s + 8, 2, &day) || s[10] != 'T' || !digits(s + 11, 2, &hour) ||
	    s[13] != ':' || !digits(s + 14, 2, &min) || s[16] != ':' || !digits(s + 17, 2, &sec))
		return -1;
	p = s + 19;
	if (*p == '.') {
		int n = 0;
		for (p++; *p >= '0' && *p <= '9'; p++, n++)
			if (n < 3)
				ms = ms * 10 + (*p - '0');
		if (n == 0)
			return -1;
		for (; n < 3; n++)
			ms *= 10;
	}
	if (*p != 'Z' || p[1] != '\0')
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	/* A date that does not exist (Feb 30) comes back as another one
	 * (timegm normalises tm itself, so compare with the fields read). */
	if (!gmtime_r(&t, &back) || back.tm_year != year - 1900 || back.tm_mon != mon - 1 ||
	    back.tm_mday != day || back.tm_hour != hour || back.tm_min != min || back.tm_sec != sec)
		return -1;
	return (int64_t)t * 1000 + ms;
}

static cJSON *time_or_null(int64_t ms)
{
	char buf[40];

	if (ms <= 0)
		return cJSON_CreateNull();
	format_rfc3339(ms, buf, sizeof(buf));
	return cJSON_CreateString(buf);
}

/* Counters are written as exact integers: cJSON prints doubles with 15
 * significant digits, which changes values past 2^53. */
static void add_count(cJSON *o, const char *key, uint64_t v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%llu", (unsigned long long)v);
	cJSON_AddRawToObject(o, key, buf);
}

char *status_render(const struct run_record *r)
{
	cJSON *o = cJSON_CreateObject();
	char *text = NULL, *out = NULL;
	int64_t duration = -1;

	if (!o)
		return NULL;
	if (r->started_at_ms > 0 && r->finished_at_ms >= r->started_at_ms)
		duration = r->finished_at_ms - r->started_at_ms;

	cJSON_AddStringToObject(o, "script", r->script);
	cJSON_AddStringToObject(o, "language", lang_name(r->lang));
	cJSON_AddStringToObject(o, "backend", r->backend);
	add_count(o, "run", r->run);
	cJSON_AddStringToObject(o, "state", run_state_name(r->state));
	if (r->exit_code >= 0)
		cJSON_AddNumberToObject(o, "exit_code", r->exit_code);
	else
		cJSON_AddNullToObject(o, "exit_code");
	if (r->signal > 0)
		cJSON_AddNumberToObject(o, "signal", r->signal);
	else
		cJSON_AddNullToObject(o, "signal");
	cJSON_AddItemToObject(o, "saved_at", time_or_null(r->saved_at_ms));
	cJSON_AddItemToObject(o, "started_at", time_or_null(r->started_at_ms));
	cJSON_AddItemToObject(o, "finished_at", time_or_null(r->finished_at_ms));
	if (duration >= 0)
		add_count(o, "duration_ms", (uint64_t)duration);
	else
		cJSON_AddNullToObject(o, "duration_ms");
	add_count(o, "stdout_bytes", r->stdout_bytes);
	add_count(o, "stderr_bytes", r->stderr_bytes);
	cJSON_AddBoolToObject(o, "truncated", r->truncated);
	cJSON *results = r->results_json ? cJSON_Parse(r->results_json) : NULL;
	const char *main_text = NULL;
	const cJSON *it;
	cJSON_ArrayForEach(it, results)
		if (!main_text && cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(it, "is_main_result")))
			main_text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(it, "text"));
	if (main_text)
		cJSON_AddStringToObject(o, "main_result", main_text);
	else
		cJSON_AddNullToObject(o, "main_result");
	if (cJSON_IsArray(results))
		cJSON_AddItemToObject(o, "results", results);
	else {
		cJSON_Delete(results);
		cJSON_AddItemToObject(o, "results", cJSON_CreateArray());
	}
	if (r->execution_count >= 0)
		add_count(o, "execution_count", (uint64_t)r->execution_count);
	else
		cJSON_AddNullToObject(o, "execution_count");
	if (r->error_name) {
		cJSON *e = cJSON_AddObjectToObject(o, "error");
		if (e) {
			cJSON_AddStringToObject(e, "name", r->error_name);
			cJSON_AddStringToObject(e, "value", r->error_value ? r->error_value : "");
		}
	} else {
		cJSON_AddNullToObject(o, "error");
	}
	text = cJSON_Print(o);
	cJSON_Delete(o);
	if (!text)
		return NULL;
	if (asprintf(&out, "%s\n", text) < 0)
		out = NULL;
	cJSON_free(text);
	return out;
}

static int64_t get_time(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	int64_t ms = cJSON_IsString(v) ? parse_rfc3339(v->valuestring) : -1;
	return ms > 0 ? ms : 0;
}

static double get_num(const cJSON *o, const char *key, double dflt)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
	return cJSON_IsNumber(v) ? v->valuedouble : dflt;
}

/* A non-negative integer field; out-of-range or odd values read as 0. The
 * renderer writes these as exact integers, not doubles. */
static uint64_t get_count(const cJSON *o, const char *key)
{
	double v = get_num(o, key, 0);
	return v >= 1 && v < 9.0e18 ? (uint64_t)v : 0;
}

int status_parse(const char *text, size_t len, struct run_record *r)
{
	cJSON *o = cJSON_ParseWithLength(text, len);
	const cJSON *script, *state, *err, *backend;
	int rc = -EINVAL;

	if (!cJSON_IsObject(o))
		goto out;
	script = cJSON_GetObjectItemCaseSensitive(o, "script");
	state = cJSON_GetObjectItemCaseSensitive(o, "state");
	if (!cJSON_IsString(script) || !cJSON_IsString(state) ||
	    strlen(script->valuestring) >= sizeof(r->script))
		goto out;
	snprintf(r->script, sizeof(r->script), "%s", script->valuestring);
	r->state = run_state_from_name(state->valuestring);
	r->lang = lang_from_name(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "language")));
	backend = cJSON_GetObjectItemCaseSensitive(o, "backend");
	if (cJSON_IsString(backend) && strlen(backend->valuestring) < sizeof(r->backend))
		snprintf(r->backend, sizeof(r->backend), "%s", backend->valuestring);
	r->run = get_count(o, "run");
	double code = get_num(o, "exit_code", -1), sig = get_num(o, "signal", 0);
	r->exit_code = code >= 0 && code <= 255 ? (int)code : -1;
	r->signal = sig > 0 && sig < 128 ? (int)sig : 0;
	r->saved_at_ms = get_time(o, "saved_at");
	r->started_at_ms = get_time(o, "started_at");
	r->finished_at_ms = get_time(o, "finished_at");
	r->stdout_bytes = get_count(o, "stdout_bytes");
	r->stderr_bytes = get_count(o, "stderr_bytes");
	r->truncated = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(o, "truncated"));
	const cJSON *ec = cJSON_GetObjectItemCaseSensitive(o, "execution_count");
	r->execution_count = cJSON_IsNumber(ec) && ec->valuedouble >= 0 ? (int64_t)get_count(o, "execution_count") : -1;
	err = cJSON_GetObjectItemCaseSensitive(o, "error");
	if (cJSON_IsObject(err)) {
		const char *n = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "name"));
		const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(err, "value"));
		if (run_record_set_error(r, n ? n : "Error", v) < 0) {
			rc = -ENOMEM;
			goto out;
		}
	} else {
		run_record_clear_error(r);
	}
	const cJSON *results = cJSON_GetObjectItemCaseSensitive(o, "results");
	free(r->results_json);
	r->results_json = cJSON_IsArray(results) && cJSON_GetArraySize(results) > 0
				  ? cJSON_PrintUnformatted(results) : NULL;
	rc = 0;
out:
	cJSON_Delete(o);
	return rc;
}
