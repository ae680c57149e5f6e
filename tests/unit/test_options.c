/* Unit tests for options.h: value parsers and "-o key=value" handling. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"

struct fixture {
	struct config c;
	char err[1024];
};

static int setup(void **state)
{
	static struct fixture f;

	memset(&f, 0, sizeof(f));
	config_defaults(&f.c);
	*state = &f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	config_free(&f->c);
	return 0;
}

/* Applies OPT expecting 1 (ours, applied). */
static void apply_ok(struct fixture *f, const char *opt)
{
	f->err[0] = '\0';
	int rc = config_apply(&f->c, opt, f->err, sizeof(f->err));
	if (rc != 1)
		fail_msg("'%s' should be applied, got %d (%s)", opt, rc, f->err);
}

/* Applies OPT expecting -1 with a message that contains NEEDLE. */
static void apply_bad(struct fixture *f, const char *opt, const char *needle)
{
	f->err[0] = '\0';
	int rc = config_apply(&f->c, opt, f->err, sizeof(f->err));
	if (rc != -1)
		fail_msg("'%s' should be refused, got %d", opt, rc);
	if (!strstr(f->err, needle))
		fail_msg("the message for '%s' should name '%s': \"%s\"", opt, needle, f->err);
}

/* parse_size takes bytes with K, M, G (and KiB/KB style) suffixes. */
static void test_parse_size_good(void **state)
{
	static const struct {
		const char *s;
		uint64_t v;
	} good[] = {
		{ "0", 0 },
		{ "123", 123 },
		{ "64K", 64u << 10 },
		{ "64k", 64u << 10 },
		{ "16M", 16u << 20 },
		{ "1G", 1u << 30 },
		{ "2GiB", 2ull << 30 },
		{ "1MB", 1u << 20 },
		{ "4KiB", 4u << 10 },
		{ "1T", 1ull << 40 },
		{ "18446744073709551615", UINT64_MAX },
		{ "16777215T", 16777215ull << 40 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint64_t v = 7;
		if (parse_size(good[i].s, &v) != 0)
			fail_msg("'%s' should parse", good[i].s);
		assert_int_equal(v, good[i].v);
	}
}

/* parse_size rejects empty, negative, unknown suffixes, bare suffixes and overflow. */
static void test_parse_size_bad(void **state)
{
	static const char *const bad[] = {
		"", "-1", "1X", "K", "M", " 1", "1 K", "1K ", "1KX", "1iB", "1.5M", "0x10", "1e3",
		"18446744073709551616",          /* 2^64 */
		"99999999999999999999999",
		"16777216T",                     /* 2^64 after the suffix */
		"17179869184G",
	};
	uint64_t v = 7;
	(void)state;

	assert_int_equal(parse_size(NULL, &v), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_size(bad[i], &v) != -1)
			fail_msg("'%s' should be rejected", bad[i]);
}

/* parse_uint accepts exactly the numbers within [min, max]. */
static void test_parse_uint(void **state)
{
	unsigned v = 0;
	(void)state;

	assert_int_equal(parse_uint("5", 1, 10, &v), 0);
	assert_int_equal(v, 5);
	assert_int_equal(parse_uint("1", 1, 10, &v), 0);
	assert_int_equal(v, 1);
	assert_int_equal(parse_uint("10", 1, 10, &v), 0);
	assert_int_equal(v, 10);
	assert_int_equal(parse_uint("0", 0, 0, &v), 0);
	assert_int_equal(v, 0);
	assert_int_equal(parse_uint("4294967295", 0, 4294967295u, &v), 0);
	assert_int_equal(v, 4294967295u);

	v = 99;
	assert_int_equal(parse_uint("0", 1, 10, &v), -1);
	assert_int_equal(parse_uint("11", 1, 10, &v), -1);
	assert_int_equal(parse_uint("", 1, 10, &v), -1);
	assert_int_equal(parse_uint(NULL, 1, 10, &v), -1);
	assert_int_equal(parse_uint("-1", 0, 10, &v), -1);
	assert_int_equal(parse_uint("+1", 0, 10, &v), -1);
	assert_int_equal(parse_uint(" 1", 0, 10, &v), -1);
	assert_int_equal(parse_uint("5x", 1, 10, &v), -1);
	assert_int_equal(parse_uint("5K", 1, 100000, &v), -1);
	assert_int_equal(parse_uint("4294967296", 0, 4294967295u, &v), -1);
	assert_int_equal(parse_uint("99999999999999999999999", 0, 4294967295u, &v), -1);
	assert_int_equal(v, 99);
}

/* parse_seconds takes seconds, "s", "m" and "h", from 1 s to 7 days. */
static void test_parse_seconds_good(void **state)
{
	static const struct {
		const char *s;
		unsigned v;
	} good[] = {
		{ "60", 60 }, { "90s", 90 }, { "5m", 300 }, { "1h", 3600 }, { "1", 1 },
		{ "2min", 120 }, { "604800", 604800 }, { "168h", 604800 }, { "10080m", 604800 },
	};
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		unsigned v = 0;
		if (parse_seconds(good[i].s, &v) != 0)
			fail_msg("'%s' should parse", good[i].s);
		assert_int_equal(v, good[i].v);
	}
}

/* parse_seconds rejects 0, junk, unknown units and more than 7 days. */
static void test_parse_seconds_bad(void **state)
{
	static const char *const bad[] = {
		"0", "0s", "0h", "x", "", "5d", "1w", "10ms", "-5", " 5", "5 s", "1.5h", "s",
		"604801", "169h", "10081m", "4294967296", "99999999999999999999999", "1193047h",
	};
	unsigned v = 7;
	(void)state;

	assert_int_equal(parse_seconds(NULL, &v), -1);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		if (parse_seconds(bad[i], &v) != -1)
			fail_msg("'%s' should be rejected", bad[i]);
	assert_int_equal(v, 7);
}

/* The defaults are the documented ones. */
static void test_defaults(void **state)
{
	struct fixture *f = *state;

	assert_null(f->c.store);
	assert_int_equal(f->c.backend, BACKEND_AUTO);
	assert_int_equal(f->c.sandbox, SANDBOX_BWRAP);
	assert_null(f->c.python);
	assert_null(f->c.node);
	assert_null(f->c.bwrap);
	assert_int_equal(f->c.timeout_s, 60);
	assert_int_equal(f->c.max_output, 16u << 20);
	assert_int_equal(f->c.memory, 2ull << 30);
	assert_int_equal(f->c.max_procs, 64);
	assert_int_equal(f->c.max_file_size, 64u << 20);
	assert_int_equal(f->c.max_open_files, 256);
	assert_int_equal(f->c.tmp_size, 64u << 20);
	assert_int_equal(f->c.max_script_size, 1u << 20);
	assert_true(f->c.jobs >= 2 && f->c.jobs % 2 == 0);
	assert_int_equal(f->c.warm, 1);
	assert_int_equal(f->c.warm_idle_s, 300);
	assert_true(f->c.forkserver);
	assert_true(f->c.writebehind);
	assert_non_null(config_help());
	assert_non_null(strstr(config_help(), "writebehind"));
	assert_non_null(strstr(config_help(), "warm_idle"));
	assert_non_null(strstr(config_help(), "max_script_size"));
}

/* Good values of every key are applied. */
static void test_apply_good(void **state)
{
	struct fixture *f = *state;

	apply_ok(f, "store=/srv/store");
	assert_string_equal(f->c.store, "/srv/store");
	apply_ok(f, "store=relative/dir");
	assert_string_equal(f->c.store, "relative/dir");
	apply_ok(f, "backend=local");
	assert_int_equal(f->c.backend, BACKEND_LOCAL);
	apply_ok(f, "sandbox=none");
	assert_int_equal(f->c.sandbox, SANDBOX_NONE);
	apply_ok(f, "sandbox=bwrap");
	assert_int_equal(f->c.sandbox, SANDBOX_BWRAP);
	apply_ok(f, "python=/opt/py/bin/python3");
	assert_string_equal(f->c.python, "/opt/py/bin/python3");
	apply_ok(f, "python=/usr/bin/python3");
	assert_string_equal(f->c.python, "/usr/bin/python3");
	apply_ok(f, "node=/usr/local/bin/node");
	assert_string_equal(f->c.node, "/usr/local/bin/node");
	apply_ok(f, "bwrap=/usr/bin/bwrap");
	assert_string_equal(f->c.bwrap, "/usr/bin/bwrap");
	apply_ok(f, "timeout=90s");
	assert_int_equal(f->c.timeout_s, 90);
	apply_ok(f, "timeout=5m");
	assert_int_equal(f->c.timeout_s, 300);
	apply_ok(f, "jobs=3");
	assert_int_equal(f->c.jobs, 3);
	apply_ok(f, "jobs=1024");
	assert_int_equal(f->c.jobs, 1024);
	apply_ok(f, "warm=0");
	assert_int_equal(f->c.warm, 0);
	apply_ok(f, "warm=64");
	assert_int_equal(f->c.warm, 64);
	apply_ok(f, "warm_idle=2m");
	assert_int_equal(f->c.warm_idle_s, 120);
	apply_ok(f, "forkserver=off");
	assert_false(f->c.forkserver);
	apply_ok(f, "forkserver=on");
	assert_true(f->c.forkserver);
	apply_ok(f, "forkserver=0");
	assert_false(f->c.forkserver);
	apply_ok(f, "forkserver=yes");
	assert_true(f->c.forkserver);
	assert_true(f->c.writebehind);
	apply_ok(f, "writebehind=off");
	assert_false(f->c.writebehind);
	apply_ok(f, "writebehind=yes");
	assert_true(f->c.writebehind);
	apply_ok(f, "writebehind=no");
	assert_false(f->c.writebehind);
	apply_ok(f, "max_procs=16");
	assert_int_equal(f->c.max_procs, 16);
	apply_ok(f, "max_open_files=16");
	assert_int_equal(f->c.max_open_files, 16);
	apply_ok(f, "max_output=1K");
	assert_int_equal(f->c.max_output, 1024);
	apply_ok(f, "memory=512M");
	assert_int_equal(f->c.memory, 512u << 20);
	apply_ok(f, "memory=16M");
	assert_int_equal(f->c.memory, 16u << 20);
	apply_ok(f, "max_file_size=1G");
	assert_int_equal(f->c.max_file_size, 1u << 30);
	apply_ok(f, "tmp_size=128MiB");
	assert_int_equal(f->c.tmp_size, 128u << 20);
	apply_ok(f, "max_script_size=100");
	assert_int_equal(f->c.max_script_size, 100);
}

/* memory=0 means no limit; a limit too small to start an interpreter is refused. */
static void test_apply_memory(void **state)
{
	struct fixture *f = *state;

	apply_ok(f, "memory=0");
	assert_int_equal(f->c.memory, 0);
	apply_bad(f, "memory=1M", "memory");
	apply_bad(f, "memory=1", "memory");
	apply_bad(f, "memory=16777215", "memory");
	assert_int_equal(f->c.memory, 0);
}

/* The three backends are accepted; anything else is refused and names the choices. */
static void test_apply_backend(void **state)
{
	struct fixture *f = *state;

	apply_ok(f, "backend=agentbay");
	assert_int_equal(f->c.backend, BACKEND_AGENTBAY);
	apply_ok(f, "backend=auto");
	assert_int_equal(f->c.backend, BACKEND_AUTO);
	apply_ok(f, "backend=local");
	apply_bad(f, "backend=docker", "backend");
	assert_non_null(strstr(f->err, "local, agentbay or auto"));
	apply_bad(f, "backend=", "backend");
	apply_bad(f, "backend", "backend");
	assert_int_equal(f->c.backend, BACKEND_LOCAL);
}

/* AgentBay settings: image ids are checked, idle times parse as durations,
 * and jobs= remembers that it was given. */
static void test_apply_agentbay_settings(void **state)
{
	struct fixture *f = *state;

	apply_ok(f, "image=code_latest");
	assert_string_equal(f->c.image, "code_latest");
	apply_bad(f, "image=bad image", "image");
	apply_bad(f, "image=a/b", "image");
	assert_string_equal(f->c.image, "code_latest");
	apply_ok(f, "api_key_file=/etc/agentbay.key");
	assert_string_equal(f->c.api_key_file, "/etc/agentbay.key");
	apply_bad(f, "api_key_file=", "api_key_file");
	assert_int_equal(f->c.session_idle_s, 600);
	apply_ok(f, "session_idle=5m");
	assert_int_equal(f->c.session_idle_s, 300);
	apply_bad(f, "session_idle=0", "session_idle");
	assert_false(f->c.jobs_set);
	apply_ok(f, "jobs=3");
	assert_true(f->c.jobs_set);
}

/* The AgentBay connection settings: endpoint, region and request timeout. */
static void test_apply_agentbay_connection(void **state)
{
	struct fixture *f = *state;

	assert_null(f->c.endpoint);
	assert_int_equal(f->c.request_timeout_ms, 60000);
	apply_ok(f, "endpoint=http://127.0.0.1:8080");
	assert_string_equal(f->c.endpoint, "http://127.0.0.1:8080");
	apply_bad(f, "endpoint=a b", "endpoint");
	apply_ok(f, "region_id=cn-shanghai");
	assert_string_equal(f->c.region_id, "cn-shanghai");
	apply_bad(f, "region_id=a;b", "region_id");
	apply_ok(f, "request_timeout_ms=2000");
	assert_int_equal(f->c.request_timeout_ms, 2000);
	apply_bad(f, "request_timeout_ms=5", "request_timeout_ms");
}

static int file(struct fixture *f, const char *text)
{
	f->err[0] = '\0';
	return config_apply_file(&f->c, text, strlen(text), "/etc/agentbayfs.conf", f->err, sizeof(f->err));
}

/* A configuration file: key = value lines with the -o names, comments and
 * blank lines skipped, spaces around both sides and CRLF endings allowed. */
static void test_file_good(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(file(f, "# agentbayfs\n\n  timeout = 30s\r\nwarm=2\n\tbackend =local\n"
				 "store = /srv/agentbay store\nendpoint = example.com\n# memory = 1G\n"
				 "api_key_file = /etc/agentbay.key"), 0);
	assert_int_equal(f->c.timeout_s, 30);
	assert_int_equal(f->c.warm, 2);
	assert_int_equal(f->c.backend, BACKEND_LOCAL);
	assert_string_equal(f->c.store, "/srv/agentbay store");
	assert_string_equal(f->c.endpoint, "example.com");
	assert_int_equal(f->c.memory, 2ull << 30);
	assert_string_equal(f->c.api_key_file, "/etc/agentbay.key");
	assert_true(f->c.key_file_from_file);
	/* -o after the file wins, and a key file given with -o is no longer the file's. */
	apply_ok(f, "timeout=5");
	assert_int_equal(f->c.timeout_s, 5);
	apply_ok(f, "api_key_file=/root/key");
	assert_false(f->c.key_file_from_file);
	assert_int_equal(file(f, ""), 0);
}

/* A bad line: an error that names the file and the line, and says why. */
static void test_file_bad(void **state)
{
	struct fixture *f = *state;
	static const struct { const char *text, *needle; } cases[] = {
		{ "timeout = 30\ntimeout = soon\n", "/etc/agentbayfs.conf:2: bad timeout 'soon'" },
		{ "\n\nbogus = 1\n", "/etc/agentbayfs.conf:3: unknown setting 'bogus'" },
		{ "# x\nwarm\n", "/etc/agentbayfs.conf:2: 'warm' is not a setting" },
		{ " = 3\n", "/etc/agentbayfs.conf:1: a value without a key" },
		{ "store =\n", "/etc/agentbayfs.conf:1: option 'store' needs a value" },
		{ "allow_other = 1\n", "unknown setting 'allow_other'" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (file(f, cases[i].text) != -1)
			fail_msg("case %zu should be refused", i);
		if (!strstr(f->err, cases[i].needle))
			fail_msg("case %zu: the message should say \"%s\": \"%s\"", i, cases[i].needle, f->err);
	}
	char nul[] = "warm = 1\0\n";
	assert_int_equal(config_apply_file(&f->c, nul, sizeof(nul) - 1, "c", f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "NUL"));
	char longline[1100];
	memset(longline, 'x', sizeof(longline) - 1);
	longline[sizeof(longline) - 1] = '\0';
	assert_int_equal(file(f, longline), -1);
	assert_non_null(strstr(f->err, ":1: the line is longer"));
}

/* The environment over the file: AGENTBAY_ENDPOINT, AGENTBAY_TIMEOUT_MS and
 * AGENTBAY_REGION_ID replace the file's values; AGENTBAY_API_KEY puts aside
 * the file's key file (but not one given with -o, which comes later). */
static void test_env_over_file(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(file(f, "endpoint = file.example\nrequest_timeout_ms = 5000\n"
				 "api_key_file = /etc/agentbay.key\n"), 0);
	setenv("AGENTBAY_ENDPOINT", "http://127.0.0.1:9", 1);
	setenv("AGENTBAY_TIMEOUT_MS", "2000", 1);
	setenv("AGENTBAY_REGION_ID", "ap-southeast-1", 1);
	setenv("AGENTBAY_API_KEY", "akm-test", 1);
	assert_int_equal(config_apply_env(&f->c, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->c.endpoint, "http://127.0.0.1:9");
	assert_int_equal(f->c.request_timeout_ms, 2000);
	assert_string_equal(f->c.region_id, "ap-southeast-1");
	assert_null(f->c.api_key_file);
	apply_ok(f, "api_key_file=/root/key");
	assert_int_equal(config_apply_env(&f->c, f->err, sizeof(f->err)), 0);
	assert_string_equal(f->c.api_key_file, "/root/key");
	setenv("AGENTBAY_TIMEOUT_MS", "fast", 1);
	assert_int_equal(config_apply_env(&f->c, f->err, sizeof(f->err)), -1);
	assert_non_null(strstr(f->err, "bad AGENTBAY_TIMEOUT_MS 'fast'"));
	unsetenv("AGENTBAY_ENDPOINT");
	unsetenv("AGENTBAY_TIMEOUT_MS");
	unsetenv("AGENTBAY_REGION_ID");
	unsetenv("AGENTBAY_API_KEY");
}

/* Interpreter paths must be absolute; a refused value leaves the old one. */
static void test_apply_paths(void **state)
{
	struct fixture *f = *state;

	apply_ok(f, "python=/usr/bin/python3");
	apply_bad(f, "python=python3", "python");
	apply_bad(f, "python=./python3", "python");
	apply_bad(f, "python=bin/python3", "python");
	apply_bad(f, "python=", "python");
	assert_string_equal(f->c.python, "/usr/bin/python3");
	apply_bad(f, "node=node", "node");
	apply_bad(f, "bwrap=bwrap", "bwrap");
	assert_null(f->c.node);
	assert_null(f->c.bwrap);
}

/* Bad values of every key give -1 with a message that names the option. */
static void test_apply_bad_values(void **state)
{
	static const struct {
		const char *opt;
		const char *needle;
	} bad[] = {
		{ "store", "store" },
		{ "store=", "store" },
		{ "sandbox=docker", "sandbox" },
		{ "sandbox=", "sandbox" },
		{ "timeout=0", "timeout" },
		{ "timeout=x", "timeout" },
		{ "timeout=5d", "timeout" },
		{ "timeout=604801", "timeout" },
		{ "timeout", "timeout" },
		{ "jobs=0", "jobs" },
		{ "jobs=1025", "jobs" },
		{ "jobs=two", "jobs" },
		{ "jobs=-1", "jobs" },
		{ "warm=65", "warm" },
		{ "warm=-1", "warm" },
		{ "warm=", "warm" },
		{ "warm=some", "warm" },
		{ "warm_idle=0", "warm_idle" },
		{ "forkserver=maybe", "forkserver" },
		{ "forkserver=", "forkserver" },
		{ "forkserver", "forkserver" },
		{ "writebehind=fast", "writebehind" },
		{ "writebehind", "writebehind" },
		{ "warm_idle=x", "warm_idle" },
		{ "max_procs=0", "max_procs" },
		{ "max_procs=65537", "max_procs" },
		{ "max_open_files=15", "max_open_files" },
		{ "max_open_files=1048577", "max_open_files" },
		{ "max_output=0", "max_output" },
		{ "max_output=1X", "max_output" },
		{ "max_output=", "max_output" },
		{ "memory=lots", "memory" },
		{ "memory=-1", "memory" },
		{ "max_file_size=0", "max_file_size" },
		{ "max_file_size=1Q", "max_file_size" },
		{ "tmp_size=0", "tmp_size" },
		{ "tmp_size=K", "tmp_size" },
		{ "max_script_size=0", "max_script_size" },
		{ "max_script_size=-5", "max_script_size" },
		{ "max_script_size=18446744073709551616", "max_script_size" },
	};
	struct fixture *f = *state;
	struct config before = f->c;

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		apply_bad(f, bad[i].opt, bad[i].needle);
	/* Nothing was changed by the refused values. */
	assert_int_equal(f->c.timeout_s, before.timeout_s);
	assert_int_equal(f->c.jobs, before.jobs);
	assert_int_equal(f->c.max_procs, before.max_procs);
	assert_int_equal(f->c.max_open_files, before.max_open_files);
	assert_int_equal(f->c.max_output, before.max_output);
	assert_int_equal(f->c.memory, before.memory);
	assert_int_equal(f->c.max_file_size, before.max_file_size);
	assert_int_equal(f->c.tmp_size, before.tmp_size);
	assert_int_equal(f->c.max_script_size, before.max_script_size);
	assert_int_equal(f->c.sandbox, before.sandbox);
	assert_null(f->c.store);
}

/* Keys that are not ours, FUSE's own options included, are left alone (0). */
static void test_apply_not_ours(void **state)
{
	static const char *const others[] = {
		"allow_other", "allow_root", "auto_unmount", "default_permissions", "ro", "rw",
		"fsname=x", "subtype=agentbayfs", "max_read=131072", "foo=bar", "timeouts=5",
		"Timeout=5", "jobs2=1", "", "=value",
		"a_very_long_option_name_that_is_not_ours_at_all=1",
	};
	struct fixture *f = *state;
	struct config before;

	memcpy(&before, &f->c, sizeof(before));
	for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++) {
		int rc = config_apply(&f->c, others[i], f->err, sizeof(f->err));
		if (rc != 0)
			fail_msg("'%s' is not ours and should give 0, got %d", others[i], rc);
	}
	assert_memory_equal(&f->c, &before, sizeof(before));
}

/* Setting a string option twice replaces it (the old value is freed: see valgrind). */
static void test_apply_twice(void **state)
{
	struct fixture *f = *state;

	apply_ok(f, "store=/a");
	apply_ok(f, "store=/b");
	apply_ok(f, "node=/x/node");
	apply_ok(f, "node=/y/node");
	assert_string_equal(f->c.store, "/b");
	assert_string_equal(f->c.node, "/y/node");
	/* Only the first '=' separates key and value. */
	apply_ok(f, "store=/c=d");
	assert_string_equal(f->c.store, "/c=d");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_size_good),
		cmocka_unit_test(test_parse_size_bad),
		cmocka_unit_test(test_parse_uint),
		cmocka_unit_test(test_parse_seconds_good),
		cmocka_unit_test(test_parse_seconds_bad),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_memory, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_backend, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_agentbay_settings, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_agentbay_connection, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_good, setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_bad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_over_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_paths, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_bad_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_not_ours, setup, teardown),
		cmocka_unit_test_setup_teardown(test_apply_twice, setup, teardown),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
