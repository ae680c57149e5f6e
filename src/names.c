/* names: see names.h */
#include "names.h"

#include <limits.h>
#include <stdio.h>
#include <string.h>

static const char *const suffixes[RK_COUNT] = {
	[RK_OUT] = ".out", [RK_ERR] = ".err", [RK_ERROR] = ".error", [RK_STATUS] = ".status",
};

bool name_is_stem(const char *stem, size_t len)
{
	if (len == 0 || stem[0] == '.' || stem[0] == '#')
		return false;
	return memchr(stem, '/', len) == NULL && memchr(stem, '\0', len) == NULL;
}

/* The longest name made from a stem: ".<stem>.status.tmp", the temporary
 * name under which a result file is written before it replaces the old. */
#define LONGEST_SUFFIX 12

static bool matches_pattern(const char *name, enum lang *lang)
{
	size_t n = strlen(name);
	enum lang l = LANG_NONE;

	if (n < 4)
		return false;
	if (strcmp(name + n - 3, ".py") == 0)
		l = LANG_PYTHON;
	else if (strcmp(name + n - 3, ".js") == 0)
		l = LANG_JAVASCRIPT;
	else
		return false;
	if (!name_is_stem(name, n - 3))
		return false;
	if (lang)
		*lang = l;
	return true;
}

bool name_is_script(const char *name, enum lang *lang)
{
	return strlen(name) - 3 + LONGEST_SUFFIX <= NAME_MAX && matches_pattern(name, lang);
}

bool name_script_too_long(const char *name)
{
	return matches_pattern(name, NULL) && strlen(name) - 3 + LONGEST_SUFFIX > NAME_MAX;
}

size_t name_stem_len(const char *name)
{
	return name_is_script(name, NULL) ? strlen(name) - 3 : 0;
}

bool name_is_result(const char *name, enum result_kind *kind, size_t *stem_len)
{
	size_t n = strlen(name);

	for (int k = 0; k < RK_COUNT; k++) {
		size_t s = strlen(suffixes[k]);
		if (n > s && strcmp(name + n - s, suffixes[k]) == 0 && name_is_stem(name, n - s)) {
			if (kind)
				*kind = (enum result_kind)k;
			if (stem_len)
				*stem_len = n - s;
			return true;
		}
	}
	return false;
}

enum view_kind name_view(const char *name, size_t *stem_len)
{
	static const struct { const char *suffix; enum view_kind kind; } v[] = {
		{ ".result", VK_RESULT }, { ".results", VK_RESULTS },
	};
	size_t n = strlen(name);

	if (strcmp(name, NAMES_RUNS_DIR) == 0)
		return VK_RUNS;
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		size_t s = strlen(v[i].suffix);
		if (n > s && strcmp(name + n - s, v[i].suffix) == 0 && name_is_stem(name, n - s)) {
			if (stem_len)
				*stem_len = n - s;
			return v[i].kind;
		}
	}
	return VK_NONE;
}

const char *result_suffix(enum result_kind kind)
{
	return (kind >= 0 && kind < RK_COUNT) ? suffixes[kind] : "";
}

bool result_name(char *buf, size_t bufsz, const char *stem, enum result_kind kind)
{
	int n = snprintf(buf, bufsz, "%s%s", stem, result_suffix(kind));
	return n > 0 && (size_t)n < bufsz;
}

bool name_is_reserved(const char *name)
{
	return strcmp(name, NAMES_META_DIR) == 0;
}

const char *lang_name(enum lang lang)
{
	switch (lang) {
	case LANG_PYTHON: return "python";
	case LANG_JAVASCRIPT: return "javascript";
	default: return "none";
	}
}

enum lang lang_from_name(const char *name)
{
	if (name && strcmp(name, "python") == 0)
		return LANG_PYTHON;
	if (name && strcmp(name, "javascript") == 0)
		return LANG_JAVASCRIPT;
	return LANG_NONE;
}
