/* Unit tests for rich_files.h: how rich results become files. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rich_files.h"

static void test_base64(void **state)
{
	static const struct { const char *in; const char *out; size_t len; } ok[] = {
		{ "", "", 0 },           { "YQ==", "a", 1 },       { "YWI=", "ab", 2 },
		{ "YWJj", "abc", 3 },    { "YWJj\nZA", "abcd", 4 }, { "iVBORw==", "\x89PNG", 4 },
		{ "_-8=", "\xff\xef", 2 },
	};
	static const char *const bad[] = { "Y", "YQ=a", "Y*==", "YWJjZ" };
	size_t len;

	(void)state;
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		char *d = base64_decode(ok[i].in, &len);
		assert_non_null(d);
		assert_int_equal(len, ok[i].len);
		assert_memory_equal(d, ok[i].out, len);
		free(d);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		assert_null(base64_decode(bad[i], &len));
}

static void test_mime_ext(void **state)
{
	int b64;

	(void)state;
	assert_string_equal(rich_mime_ext("image/png", &b64), "png");
	assert_int_equal(b64, 1);
	assert_string_equal(rich_mime_ext("text/html", &b64), "html");
	assert_int_equal(b64, 0);
	assert_string_equal(rich_mime_ext("image/svg+xml", &b64), "svg");
	assert_int_equal(b64, 0);
	assert_string_equal(rich_mime_ext("application/vnd.vegalite.v5+json", &b64), "json");
	assert_int_equal(b64, 0);
	assert_string_equal(rich_mime_ext("text/x-weird", &b64), "txt");
	assert_string_equal(rich_mime_ext("image/tiff", &b64), "img");
	assert_int_equal(b64, 1);
}

static struct mime_entry *entries(size_t n, const char *const *kv)
{
	struct mime_entry *e = calloc(n, sizeof(*e));

	assert_non_null(e);
	for (size_t i = 0; i < n; i++) {
		e[i].mime = strdup(kv[2 * i]);
		e[i].data = strdup(kv[2 * i + 1]);
	}
	return e;
}

static void test_make(void **state)
{
	static const char *const fig[] = { "text/plain", "<Figure>", "image/png", "iVBORw==" };
	static const char *const note[] = { "text/plain", "just text" };
	static const char *const bad[] = { "image/png", "not base64!" };
	static const char *const main_r[] = { "text/markdown", "**2**", "text/plain", "2" };
	struct exec_result r;
	struct rich_files rf;

	(void)state;
	exec_result_init(&r);
	assert_int_equal(exec_result_add(&r, entries(2, fig), 2, false), 0);
	assert_int_equal(exec_result_add(&r, entries(1, note), 1, false), 0);
	assert_int_equal(exec_result_add(&r, entries(1, bad), 1, false), 0);
	assert_int_equal(exec_result_add(&r, entries(2, main_r), 2, true), 0);
	assert_int_equal(rich_files_make(&r, &rf), 0);
	assert_string_equal(rf.main_text, "2\n");
	assert_int_equal(rf.main_len, 2);
	assert_int_equal(rf.n, 3);
	assert_string_equal(rf.files[0].name, "1.png");
	assert_int_equal(rf.files[0].len, 4);
	assert_string_equal(rf.files[1].name, "2.txt");
	assert_memory_equal(rf.files[1].data, "just text", 9);
	assert_string_equal(rf.files[2].name, "3.md");
	rich_files_free(&rf);
	exec_result_free(&r);

	/* Nothing at all: nothing made. */
	exec_result_init(&r);
	assert_int_equal(rich_files_make(&r, &rf), 0);
	assert_null(rf.main_text);
	assert_int_equal(rf.n, 0);
	rich_files_free(&rf);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_base64),
		cmocka_unit_test(test_mime_ext),
		cmocka_unit_test(test_make),
	};
	return cmocka_run_group_tests_name("rich_files", tests, NULL, NULL);
}
