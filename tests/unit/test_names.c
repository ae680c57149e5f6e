/* Unit tests for names.h: which names are scripts, their stems, the result
 * files of a stem, the reserved meta folder and language names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <limits.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

static const char *const python_scripts[] = {
	"x.py",
	"script.py",
	"my script.py",         /* spaces */
	" leading space.py",
	"ñandú.py",             /* unicode */
	"データ.py",
	"a.b.py",               /* dots inside the stem */
	"x..py",
	"-x.py",                /* leading dash */
	"x.py.py",
	"x.js.py",
	"x~.py",
	"1.py",
	"x#.py",                /* '#' is only refused at the start */
};

static const char *const javascript_scripts[] = {
	"x.js",
	"app server.js",
	"файл.js",
	"a.b.js",
	"-x.js",
	"x.py.js",
};

/* Every name an editor or tool writes next to the script, and other near misses. */
static const char *const not_scripts[] = {
	"",
	".py",
	".js",
	"py",
	"x.py.swp",
	".x.py.swp",            /* vim swap */
	".x.py.swx",            /* vim swap probe */
	".x.py.swo",
	"4913",                 /* vim's write probe */
	"5036",
	"x.py~",                /* vim / emacs / nano backup */
	"#x.py#",               /* emacs auto-save */
	"#x.py",
	".#x.py",               /* emacs lock (symlink or regular file) */
	"sedAbC123",            /* GNU sed -i temp file */
	"sedINTJV6",
	".r.py.sENeL4",         /* rsync temp file */
	".x.py.AbCdEf",
	".goutputstream-ABC",   /* gedit / GIO */
	"x.py___jb_tmp___",     /* JetBrains safe write */
	"x.py___jb_old___",
	"x.vsctmp",             /* VS Code atomic write */
	"x.py.vsctmp",
	".x.py",                /* hidden files never qualify */
	".hidden.js",
	"x.PY",                 /* case matters */
	"x.Py",
	"x.JS",
	"x.pyc",
	"x.pyw",
	"x.json",
	"x.jsx",
	"x.mjs",
	"x.py ",
	"x.py.bak",
	"x.txt",
	"xpy",
	"x_py",
	"dir/x.py",             /* never a single component */
	"/x.py",
	".agentbayfs",
};

/* Python names are scripts of language python, with any stem the regex allows. */
static void test_python_scripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(python_scripts) / sizeof(python_scripts[0]); i++) {
		enum lang lang = LANG_NONE;
		if (!name_is_script(python_scripts[i], &lang))
			fail_msg("'%s' should be a script", python_scripts[i]);
		assert_int_equal(lang, LANG_PYTHON);
		assert_true(name_is_script(python_scripts[i], NULL));
	}
}

/* JavaScript names are scripts of language javascript. */
static void test_javascript_scripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(javascript_scripts) / sizeof(javascript_scripts[0]); i++) {
		enum lang lang = LANG_NONE;
		if (!name_is_script(javascript_scripts[i], &lang))
			fail_msg("'%s' should be a script", javascript_scripts[i]);
		assert_int_equal(lang, LANG_JAVASCRIPT);
	}
}

/* Editor temp files and other near misses are never scripts, and *lang is untouched. */
static void test_not_scripts(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(not_scripts) / sizeof(not_scripts[0]); i++) {
		enum lang lang = (enum lang)42;
		if (name_is_script(not_scripts[i], &lang))
			fail_msg("'%s' must not be a script", not_scripts[i]);
		assert_int_equal(lang, 42);
		assert_int_equal(name_stem_len(not_scripts[i]), 0);
	}
}

/* The stem is the name without ".py"/".js", dots inside it included. */
static void test_stem_len(void **state)
{
	(void)state;
	assert_int_equal(name_stem_len("x.py"), 1);
	assert_int_equal(name_stem_len("x.js"), 1);
	assert_int_equal(name_stem_len("a.b.py"), 3);
	assert_int_equal(name_stem_len("my script.js"), 9);
	assert_int_equal(name_stem_len("ñ.py"), strlen("ñ"));
	assert_int_equal(name_stem_len("x.py.py"), 4);
	assert_int_equal(name_stem_len("x.py~"), 0);
	assert_int_equal(name_stem_len(".x.py"), 0);
}

/* A stem is non-empty, has no '/' or NUL, and does not start with '.' or '#'. */
static void test_is_stem(void **state)
{
	(void)state;
	assert_true(name_is_stem("x", 1));
	assert_true(name_is_stem("a.b", 3));
	assert_true(name_is_stem("a b", 3));
	assert_true(name_is_stem("-x", 2));
	assert_true(name_is_stem("x/y", 1));     /* only the first LEN bytes count */
	assert_false(name_is_stem("", 0));
	assert_false(name_is_stem("x", 0));
	assert_false(name_is_stem(".x", 2));
	assert_false(name_is_stem("#x", 2));
	assert_false(name_is_stem("a/b", 3));
	assert_false(name_is_stem("a\0b", 3));
}

/* x.out, x.err, x.error and x.status are result names with their kind and stem. */
static void test_result_names_and_kinds(void **state)
{
	static const struct {
		const char *name;
		enum result_kind kind;
		size_t stem_len;
	} ok[] = {
		{ "x.out", RK_OUT, 1 },
		{ "x.err", RK_ERR, 1 },
		{ "x.error", RK_ERROR, 1 },
		{ "x.status", RK_STATUS, 1 },
		{ "a.b.status", RK_STATUS, 3 },
		{ "a.b.out", RK_OUT, 3 },
		{ "my script.err", RK_ERR, 9 },
		{ "x.err.error", RK_ERROR, 5 },
		{ "x.out.out", RK_OUT, 5 },
		{ "-x.out", RK_OUT, 2 },
	};
	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		enum result_kind kind = RK_COUNT;
		size_t stem_len = 0;
		if (!name_is_result(ok[i].name, &kind, &stem_len))
			fail_msg("'%s' should be a result name", ok[i].name);
		assert_int_equal(kind, ok[i].kind);
		assert_int_equal(stem_len, ok[i].stem_len);
		assert_true(name_is_result(ok[i].name, NULL, NULL));
	}
}

/* A bare suffix, a hidden stem or another suffix is not a result name. */
static void test_not_result_names(void **state)
{
	static const char *const bad[] = {
		".out", ".err", ".error", ".status", "out", "x.outx", "x.OUT", "x.stat",
		"x.stderr", ".x.out", "#x.err", "dir/x.out", "x.py", "x.status~", "",
	};
	(void)state;
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		enum result_kind kind = RK_COUNT;
		size_t stem_len = 77;
		if (name_is_result(bad[i], &kind, &stem_len))
			fail_msg("'%s' must not be a result name", bad[i]);
		assert_int_equal(kind, RK_COUNT);
		assert_int_equal(stem_len, 77);
	}
}

/* result_name builds "<stem><suffix>" for every kind and refuses a short buffer. */
static void test_result_name_build(void **state)
{
	char buf[64];
	(void)state;

	assert_string_equal(result_suffix(RK_OUT), ".out");
	assert_string_equal(result_suffix(RK_ERR), ".err");
	assert_string_equal(result_suffix(RK_ERROR), ".error");
	assert_string_equal(result_suffix(RK_STATUS), ".status");
	assert_string_equal(result_suffix(RK_COUNT), "");

	for (int k = 0; k < RK_COUNT; k++) {
		enum result_kind kind = RK_COUNT;
		size_t stem_len = 0;
		assert_true(result_name(buf, sizeof(buf), "a.b", (enum result_kind)k));
		assert_true(name_is_result(buf, &kind, &stem_len));
		assert_int_equal(kind, k);
		assert_int_equal(stem_len, 3);
		assert_memory_equal(buf, "a.b", 3);
	}
	assert_true(result_name(buf, sizeof(buf), "x", RK_STATUS));
	assert_string_equal(buf, "x.status");
	/* "x.out" needs 6 bytes with its NUL. */
	assert_true(result_name(buf, 6, "x", RK_OUT));
	assert_string_equal(buf, "x.out");
	assert_false(result_name(buf, 5, "x", RK_OUT));
	assert_false(result_name(buf, 1, "x", RK_OUT));
}

/* The stem of a script maps to result names whose stem is the same. */
static void test_script_to_results(void **state)
{
	static const char *const scripts[] = { "x.py", "a.b.py", "my script.js", "ñandú.py" };
	char stem[64], buf[80];
	(void)state;

	for (size_t i = 0; i < sizeof(scripts) / sizeof(scripts[0]); i++) {
		size_t n = name_stem_len(scripts[i]);
		assert_true(n > 0 && n < sizeof(stem));
		memcpy(stem, scripts[i], n);
		stem[n] = '\0';
		assert_true(name_is_stem(stem, n));
		for (int k = 0; k < RK_COUNT; k++) {
			size_t stem_len = 0;
			assert_true(result_name(buf, sizeof(buf), stem, (enum result_kind)k));
			assert_true(name_is_result(buf, NULL, &stem_len));
			assert_int_equal(stem_len, n);
			assert_false(name_is_script(buf, NULL));
		}
	}
}

/* Only the meta folder's exact name is reserved. */
static void test_reserved(void **state)
{
	(void)state;
	assert_string_equal(NAMES_META_DIR, ".agentbayfs");
	assert_true(name_is_reserved(".agentbayfs"));
	assert_true(name_is_reserved(NAMES_META_DIR));
	assert_false(name_is_reserved("agentbayfs"));
	assert_false(name_is_reserved(".agentbayfs2"));
	assert_false(name_is_reserved(".agentbayf"));
	assert_false(name_is_reserved(".AGENTBAYFS"));
	assert_false(name_is_reserved("x.py"));
	assert_false(name_is_reserved(""));
}

/* lang_name and lang_from_name are inverses; anything else is LANG_NONE. */
static void test_lang_names(void **state)
{
	(void)state;
	assert_string_equal(lang_name(LANG_PYTHON), "python");
	assert_string_equal(lang_name(LANG_JAVASCRIPT), "javascript");
	assert_int_equal(lang_from_name("python"), LANG_PYTHON);
	assert_int_equal(lang_from_name("javascript"), LANG_JAVASCRIPT);
	for (int l = LANG_NONE; l <= LANG_JAVASCRIPT; l++)
		assert_int_equal(lang_from_name(lang_name((enum lang)l)), l);
	assert_int_equal(lang_from_name(NULL), LANG_NONE);
	assert_int_equal(lang_from_name(""), LANG_NONE);
	assert_int_equal(lang_from_name("Python"), LANG_NONE);
	assert_int_equal(lang_from_name("js"), LANG_NONE);
	assert_int_equal(lang_from_name("python3"), LANG_NONE);
}

/* A name whose result names ("<stem>.status") cannot fit in NAME_MAX is not
 * a script, and is reported as too long; one byte shorter is a script. */
static void test_script_name_too_long_for_results(void **state)
{
	char name[NAME_MAX + 1];
	(void)state;

	/* stem 243 + ".status.tmp" + leading dot = 255: fits. */
	memset(name, 'a', 243);
	strcpy(name + 243, ".py");
	assert_true(name_is_script(name, NULL));
	assert_false(name_script_too_long(name));
	/* stem 244: does not. */
	memset(name, 'a', 244);
	strcpy(name + 244, ".js");
	assert_false(name_is_script(name, NULL));
	assert_true(name_script_too_long(name));
	assert_false(name_script_too_long("short.py"));
	assert_false(name_script_too_long(".hidden-but-very-long.py"));
}

static void test_views(void **state)
{
	size_t stem_len = 0;

	(void)state;
	assert_int_equal(name_view("a.result", &stem_len), VK_RESULT);
	assert_int_equal(stem_len, 1);
	assert_int_equal(name_view("a.b.results", &stem_len), VK_RESULTS);
	assert_int_equal(stem_len, 3);
	assert_int_equal(name_view(".runs", NULL), VK_RUNS);
	assert_int_equal(name_view(".result", NULL), VK_NONE);
	assert_int_equal(name_view(".x.result", NULL), VK_NONE);
	assert_int_equal(name_view("a.resultz", NULL), VK_NONE);
	assert_int_equal(name_view("runs", NULL), VK_NONE);
	assert_int_equal(name_view("a.out", NULL), VK_NONE);
	assert_false(name_is_result("a.result", NULL, NULL));
	assert_false(name_is_result("a.results", NULL, NULL));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_script_name_too_long_for_results),
		cmocka_unit_test(test_python_scripts),
		cmocka_unit_test(test_javascript_scripts),
		cmocka_unit_test(test_not_scripts),
		cmocka_unit_test(test_stem_len),
		cmocka_unit_test(test_is_stem),
		cmocka_unit_test(test_result_names_and_kinds),
		cmocka_unit_test(test_not_result_names),
		cmocka_unit_test(test_result_name_build),
		cmocka_unit_test(test_script_to_results),
		cmocka_unit_test(test_reserved),
		cmocka_unit_test(test_views),
		cmocka_unit_test(test_lang_names),
	};
	return cmocka_run_group_tests_name("names", tests, NULL, NULL);
}
