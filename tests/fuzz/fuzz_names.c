/* Fuzz target: the naming rules of the mount (names.h).
 *
 * Input: a file name (the bytes up to the first NUL; the input with its NULs
 * also goes to name_is_stem). Checks that the predicates agree with each
 * other: a script's stem plus each result suffix is recognised as that
 * result of that stem, no result name is a script name, result names are
 * rebuilt by result_name, and reserved names are neither. */
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "names.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), k = strlen(suffix);

	return n >= k && strcmp(s + n - k, suffix) == 0;
}

static void check_script(const char *name)
{
	enum lang lang = LANG_NONE;
	bool script = name_is_script(name, &lang);
	size_t len = strlen(name), stem = name_stem_len(name);
	bool too_long = name_script_too_long(name);

	FUZZ_CHECK(!(script && too_long));
	FUZZ_CHECK(script == (stem > 0));
	if (!script) {
		/* Not a script: either not the pattern, or too long for it. */
		FUZZ_CHECK(name_is_script(name, NULL) == false);
		return;
	}
	FUZZ_CHECK(name_is_script(name, NULL));
	FUZZ_CHECK(stem == len - 3 && name_is_stem(name, stem));
	FUZZ_CHECK(name[0] != '.' && name[0] != '#' && strchr(name, '/') == NULL);
	FUZZ_CHECK(lang == (ends_with(name, ".py") ? LANG_PYTHON : LANG_JAVASCRIPT));
	FUZZ_CHECK(lang == LANG_PYTHON || ends_with(name, ".js"));
	FUZZ_CHECK(lang_from_name(lang_name(lang)) == lang);
	FUZZ_CHECK(!name_is_result(name, NULL, NULL));
	FUZZ_CHECK(!name_is_reserved(name));

	/* Every result name of the script fits in NAME_MAX and maps back. */
	char *s = fuzz_strndup0(name, stem);
	for (int k = 0; k < RK_COUNT; k++) {
		char buf[NAME_MAX + 1];
		enum result_kind kind = RK_COUNT;
		size_t sl = 0;
		FUZZ_CHECK(result_name(buf, sizeof(buf), s, (enum result_kind)k));
		FUZZ_CHECK(strlen(buf) == stem + strlen(result_suffix((enum result_kind)k)));
		FUZZ_CHECK(strncmp(buf, name, stem) == 0);
		FUZZ_CHECK(name_is_result(buf, &kind, &sl));
		FUZZ_CHECK(kind == (enum result_kind)k && sl == stem);
		FUZZ_CHECK(!name_is_script(buf, NULL) && !name_script_too_long(buf));
		FUZZ_CHECK(!name_is_reserved(buf));
	}
	free(s);
}

static void check_result(const char *name, size_t small)
{
	enum result_kind kind = RK_COUNT;
	size_t stem = 0, len = strlen(name);

	if (!name_is_result(name, &kind, &stem)) {
		FUZZ_CHECK(!name_is_result(name, NULL, NULL));
		return;
	}
	FUZZ_CHECK(name_is_result(name, NULL, NULL));
	FUZZ_CHECK((int)kind >= 0 && (int)kind < RK_COUNT);
	const char *suffix = result_suffix(kind);
	FUZZ_CHECK(stem > 0 && stem + strlen(suffix) == len && ends_with(name, suffix));
	FUZZ_CHECK(name_is_stem(name, stem));
	FUZZ_CHECK(!name_is_script(name, NULL) && !name_script_too_long(name));
	FUZZ_CHECK(name_stem_len(name) == 0);
	FUZZ_CHECK(!name_is_reserved(name));

	/* result_name rebuilds it, or says it does not fit. */
	char *s = fuzz_strndup0(name, stem);
	char *buf = malloc(len + 1), *little = malloc(small);
	FUZZ_CHECK(buf && little);
	FUZZ_CHECK(result_name(buf, len + 1, s, kind) && strcmp(buf, name) == 0);
	FUZZ_CHECK(!result_name(buf, len, s, kind));
	bool fits = result_name(little, small, s, kind);
	FUZZ_CHECK(fits == (len < small));
	FUZZ_CHECK(strlen(little) < small);
	if (fits)
		FUZZ_CHECK(strcmp(little, name) == 0);
	free(little);
	free(buf);
	free(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *name = fuzz_strndup0(data, size);

	check_script(name);
	check_result(name, 1 + (size % 300));

	/* A stem: non-empty, no '/', no NUL, not starting with '.' or '#'. */
	bool stem = name_is_stem((const char *)data, size);
	FUZZ_CHECK(stem == (size > 0 && data[0] != '.' && data[0] != '#' &&
			    !memchr(data, '/', size) && !memchr(data, '\0', size)));

	/* Reserved names are the daemon's: neither scripts nor results. */
	if (name_is_reserved(name))
		FUZZ_CHECK(!name_is_script(name, NULL) && !name_is_result(name, NULL, NULL));
	FUZZ_CHECK(lang_from_name(name) == LANG_NONE || strcmp(lang_name(lang_from_name(name)), name) == 0);
	free(name);
	return 0;
}
