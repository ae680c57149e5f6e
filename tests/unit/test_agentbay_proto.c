/* Unit tests for agentbay_proto.h: the AgentBay OpenAPI wire format (URL and
 * form encoding, timestamps, nonces, endpoints, action URLs, run_code Args),
 * how replies are read (HTTP errors, the business envelope, Data as an object
 * or a JSON string) and every run_code result variant of the protocol notes.
 * Every test frees what it allocates (run under valgrind for leaks). */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <cjson/cJSON.h>

#include "agentbay_proto.h"
#include "result.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* ---- helpers ------------------------------------------------------------ */

/* Encodes S (all of it, as a C string) and checks the result. */
static void check_url_encode(const char *s, size_t len, const char *expect)
{
	char *enc = ab_url_encode(s, len);
	assert_non_null(enc);
	assert_string_equal(enc, expect);
	free(enc);
}

static void check_form(const struct ab_param *p, size_t n, const char *expect)
{
	char *form = ab_form_encode(p, n);
	assert_non_null(form);
	assert_string_equal(form, expect);
	free(form);
}

static void check_timestamp(time_t t, const char *expect)
{
	char buf[32];

	memset(buf, 'x', sizeof(buf));
	ab_timestamp(t, buf, sizeof(buf));
	assert_string_equal(buf, expect);
}

static void check_base_url(const char *endpoint, const char *expect)
{
	char out[256];

	assert_int_equal(ab_base_url(endpoint, out, sizeof(out)), 0);
	assert_string_equal(out, expect);
}

static void check_base_url_rejected(const char *endpoint)
{
	char out[256];

	assert_int_equal(ab_base_url(endpoint, out, sizeof(out)), -EINVAL);
}

/* Parses BODY as a reply with HTTP STATUS; the parser itself must not fail. */
static void parse(long status, const char *body, struct ab_reply *r)
{
	assert_int_equal(ab_parse_reply(status, body, body ? strlen(body) : 0, r), 0);
	assert_int_equal(r->http_status, status);
	assert_non_null(r->request_id);
	assert_non_null(r->code);
	assert_non_null(r->message);
}

/* The data of the entry of type MIME in RR, or NULL. */
static const char *entry(const struct rich_result *rr, const char *mime)
{
	for (size_t i = 0; i < rr->n; i++)
		if (strcmp(rr->entries[i].mime, mime) == 0)
			return rr->entries[i].data;
	return NULL;
}

static const char *or_empty(const char *s)
{
	return s ? s : "";
}

/* A CallMcpTool reply (the envelope of notes §3.2) whose Data.content[0].text
 * is TEXT; DATA_AS_STRING sends Data as a JSON string. malloc'd. */
static char *tool_reply(const char *text, bool is_error, bool data_as_string)
{
	cJSON *env = cJSON_CreateObject(), *data = cJSON_CreateObject();
	cJSON *content = cJSON_AddArrayToObject(data, "content");
	cJSON *item = cJSON_CreateObject();
	char *body;

	cJSON_AddStringToObject(item, "type", "text");
	cJSON_AddStringToObject(item, "text", text);
	cJSON_AddItemToArray(content, item);
	cJSON_AddBoolToObject(data, "isError", is_error);
	cJSON_AddStringToObject(data, "parsedToolName", "run_code");
	cJSON_AddStringToObject(env, "RequestId", "557DCB66-03AA-1907-AFBC-4B62939AC4A9");
	cJSON_AddBoolToObject(env, "Success", true);
	cJSON_AddStringToObject(env, "Code", "ok");
	cJSON_AddStringToObject(env, "Message", "");
	cJSON_AddNumberToObject(env, "HttpStatusCode", 200);
	if (data_as_string) {
		char *d = cJSON_PrintUnformatted(data);
		assert_non_null(d);
		cJSON_AddStringToObject(env, "Data", d);
		free(d);
		cJSON_Delete(data);
	} else {
		cJSON_AddItemToObject(env, "Data", data);
	}
	body = cJSON_PrintUnformatted(env);
	cJSON_Delete(env);
	assert_non_null(body);
	return body;
}

/* One ab_parse_run_code call and everything it fills. */
struct run {
	struct ab_reply rep;
	struct exec_result res;
	struct ab_output out;
	char err[256];
	int rc;
};

/* Reads BODY as an HTTP 200 CallMcpTool reply and parses its tool result. */
static void run_body(struct run *x, const char *body)
{
	memset(x, 0, sizeof(*x));
	exec_result_init(&x->res);
	parse(200, body, &x->rep);
	assert_true(x->rep.ok);
	x->rc = ab_parse_run_code(&x->rep, &x->res, &x->out, x->err, sizeof(x->err));
}

/* The same, with TEXT as content[0].text of a standard reply. */
static void run_text(struct run *x, const char *text, bool is_error)
{
	char *body = tool_reply(text, is_error, false);

	run_body(x, body);
	free(body);
}

static void run_free(struct run *x)
{
	ab_reply_free(&x->rep);
	exec_result_free(&x->res);
	ab_output_free(&x->out);
}

/* ---- ab_url_encode ------------------------------------------------------ */

/* RFC 3986 unreserved characters (letters, digits, "-_.~") are left alone. */
static void test_url_encode_unreserved_kept(void **state)
{
	const char *s = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.~";
	(void)state;

	check_url_encode(s, strlen(s), s);
	check_url_encode("", 0, "");
}

/* Space, '+', '/', '=', '&', '%' and other reserved bytes become uppercase %XX. */
static void test_url_encode_reserved(void **state)
{
	(void)state;

	check_url_encode(" ", 1, "%20");
	check_url_encode("+/=&%", 5, "%2B%2F%3D%26%25");
	check_url_encode("a b+c", 5, "a%20b%2Bc");
	check_url_encode("2026-01-29T09:21:48Z", 20, "2026-01-29T09%3A21%3A48Z");
	check_url_encode("{\"k\":[1]}?#@!*'()", 17, "%7B%22k%22%3A%5B1%5D%7D%3F%23%40%21%2A%27%28%29");
	check_url_encode("\n\t", 2, "%0A%09");
}

/* UTF-8 bytes and binary bytes are encoded one by one, uppercase; LEN counts. */
static void test_url_encode_utf8_and_binary(void **state)
{
	(void)state;

	check_url_encode("\xc3\xa9", 2, "%C3%A9");                  /* é */
	check_url_encode("\xe2\x9c\x93 ok", 6, "%E2%9C%93%20ok");  /* ✓ */
	check_url_encode("\xf0\x9f\x98\x80", 4, "%F0%9F%98%80");    /* emoji */
	check_url_encode("\x01\x7f\x80\xff", 4, "%01%7F%80%FF");
	/* Only LEN bytes are read, so an embedded NUL is encoded too. */
	check_url_encode("a\0b", 3, "a%00b");
	check_url_encode("abcdef", 3, "abc");
}

/* ---- ab_form_encode ----------------------------------------------------- */

/* Parameters stay in the given order, keys and values percent-encoded. */
static void test_form_encode_order_and_encoding(void **state)
{
	const struct ab_param p[] = {
		{ "SessionId", "session-04bdwfj7u688ec96t" },
		{ "Name", "run_code" },
		{ "Args", "{\"code\":\"print('hi')\\n1+1\",\"language\":\"python\",\"timeout_s\":60}" },
		{ "AutoGenSession", "false" },
		{ "Odd Key", "a&b=c" },
	};
	(void)state;

	check_form(p, ARRAY_LEN(p),
		   "SessionId=session-04bdwfj7u688ec96t&Name=run_code"
		   "&Args=%7B%22code%22%3A%22print%28%27hi%27%29%5Cn1%2B1%22%2C%22language%22%3A%22python%22"
		   "%2C%22timeout_s%22%3A60%7D"
		   "&AutoGenSession=false&Odd%20Key=a%26b%3Dc");
}

/* NULL values are left out (first, middle and last); an empty value stays as "k=". */
static void test_form_encode_null_and_empty(void **state)
{
	const struct ab_param p[] = {
		{ "ImageId", NULL },
		{ "Name", "run_code" },
		{ "Labels", NULL },
		{ "Server", "" },
		{ "SessionId", "s-1" },
		{ "McpPolicyId", NULL },
	};
	const struct ab_param all_null[] = { { "A", NULL }, { "B", NULL } };
	(void)state;

	check_form(p, ARRAY_LEN(p), "Name=run_code&Server=&SessionId=s-1");
	check_form(all_null, ARRAY_LEN(all_null), "");
	check_form(p, 0, "");
}

/* The Authorization parameter reads "Authorization=Bearer%20KEY". */
static void test_form_encode_authorization(void **state)
{
	const struct ab_param p[] = {
		{ "Authorization", "Bearer akm-EXAMPLEKEY" },
		{ "ImageId", "code_latest" },
	};
	(void)state;

	check_form(p, ARRAY_LEN(p), "Authorization=Bearer%20akm-EXAMPLEKEY&ImageId=code_latest");
}

/* ---- ab_timestamp, ab_nonce_hex ----------------------------------------- */

/* Timestamps are "YYYY-MM-DDTHH:MM:SSZ" (20 characters). */
static void test_timestamp_format(void **state)
{
	char buf[21];
	(void)state;

	check_timestamp(0, "1970-01-01T00:00:00Z");
	check_timestamp(1769678508, "2026-01-29T09:21:48Z");
	check_timestamp(951868799, "2000-02-29T23:59:59Z");
	/* The documented minimum buffer of 21 bytes is enough. */
	ab_timestamp(1769678508, buf, sizeof(buf));
	assert_int_equal(strlen(buf), 20);
	assert_string_equal(buf, "2026-01-29T09:21:48Z");
}

/* Timestamps are UTC whatever the local time zone is. */
static void test_timestamp_utc(void **state)
{
	const char *old = getenv("TZ");
	char *saved = old ? strdup(old) : NULL;
	char buf[32];
	(void)state;

	setenv("TZ", "CST-8", 1);   /* POSIX rule: 8 hours east, no tzdata needed */
	tzset();
	ab_timestamp(1769678508, buf, sizeof(buf));
	if (saved)
		setenv("TZ", saved, 1);
	else
		unsetenv("TZ");
	tzset();
	free(saved);
	assert_string_equal(buf, "2026-01-29T09:21:48Z");
}

/* A nonce is the 16 bytes as 32 lowercase hex digits. */
static void test_nonce_hex(void **state)
{
	const unsigned char rnd[16] = { 0x6a, 0x1f, 0x0c, 0x2e, 0x9b, 0x7d, 0x4e, 0x3f,
					0x8a, 0x5b, 0x2c, 0x1d, 0x0e, 0x9f, 0x8a, 0x7b };
	const unsigned char edge[16] = { 0x00, 0x01, 0x0a, 0x0f, 0x10, 0xab, 0xcd, 0xef,
					 0xf0, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00 };
	char out[33];
	(void)state;

	memset(out, 'X', sizeof(out));
	ab_nonce_hex(rnd, out);
	assert_string_equal(out, "6a1f0c2e9b7d4e3f8a5b2c1d0e9f8a7b");
	ab_nonce_hex(edge, out);
	assert_string_equal(out, "00010a0f10abcdeff0ff000000000000");
	assert_int_equal(strlen(out), 32);
	for (int i = 0; i < 32; i++)
		assert_true(isdigit((unsigned char)out[i]) || (out[i] >= 'a' && out[i] <= 'f'));
}

/* ---- ab_base_url -------------------------------------------------------- */

/* A bare host (with a port, an IPv6 literal, blanks around) becomes https://host. */
static void test_base_url_bare_host(void **state)
{
	(void)state;

	check_base_url(AB_DEFAULT_ENDPOINT, "https://wuyingai.cn-shanghai.aliyuncs.com");
	check_base_url("wuyingai.ap-southeast-1.aliyuncs.com", "https://wuyingai.ap-southeast-1.aliyuncs.com");
	check_base_url("localhost:8443", "https://localhost:8443");
	check_base_url("[::1]:8443", "https://[::1]:8443");
	check_base_url("  wuyingai.cn-shanghai.aliyuncs.com \n", "https://wuyingai.cn-shanghai.aliyuncs.com");
	check_base_url("wuyingai.cn-shanghai.aliyuncs.com/", "https://wuyingai.cn-shanghai.aliyuncs.com");
}

/* http:// and https:// URLs are kept, trailing slashes removed. */
static void test_base_url_urls_kept(void **state)
{
	(void)state;

	check_base_url("http://127.0.0.1:18080", "http://127.0.0.1:18080");
	check_base_url("https://wuyingai.cn-shanghai.aliyuncs.com", "https://wuyingai.cn-shanghai.aliyuncs.com");
	check_base_url("https://wuyingai.cn-shanghai.aliyuncs.com/", "https://wuyingai.cn-shanghai.aliyuncs.com");
	check_base_url("http://localhost:8080///", "http://localhost:8080");
	check_base_url(" https://example.com/ ", "https://example.com");
}

/* Empty, blank, scheme-only, and hosts with spaces or slashes are refused. */
static void test_base_url_rejected(void **state)
{
	(void)state;

	check_base_url_rejected(NULL);
	check_base_url_rejected("");
	check_base_url_rejected("   ");
	check_base_url_rejected("\t\n");
	check_base_url_rejected("/");
	check_base_url_rejected("http://");
	check_base_url_rejected("https://");
	check_base_url_rejected("https:///");
	check_base_url_rejected(" http:// ");
	check_base_url_rejected("my host.example.com");
	check_base_url_rejected("example.com/api");
	check_base_url_rejected("ftp://example.com");
	check_base_url_rejected("example.com?x=1");
}

/* A URL whose host has a space ("https://exa mple.com") is malformed and is
 * refused like the bare host "exa mple.com". */
static void test_base_url_url_with_space_rejected(void **state)
{
	char out[256];
	int rc_space = ab_base_url("https://exa mple.com", out, sizeof(out));
	int rc_http = ab_base_url("http://local host:8080", out, sizeof(out));
	(void)state;

	assert_int_equal(rc_space, -EINVAL);
	assert_int_equal(rc_http, -EINVAL);
}

/* A result that does not fit the buffer is an error, not a truncated URL. */
static void test_base_url_small_buffer(void **state)
{
	char out[16];
	(void)state;

	assert_int_equal(ab_base_url("wuyingai.cn-shanghai.aliyuncs.com", out, sizeof(out)), -EINVAL);
	assert_int_equal(ab_base_url("a.cn", out, sizeof(out)), 0);
	assert_string_equal(out, "https://a.cn");
}

/* ---- ab_action_url ------------------------------------------------------ */

/* The query is exactly Action, Format=json, Version, Timestamp (encoded), SignatureNonce. */
static void test_action_url_exact(void **state)
{
	char *url = ab_action_url("https://wuyingai.cn-shanghai.aliyuncs.com", "CallMcpTool",
				  "2026-01-29T09:21:48Z", "6a1f0c2e9b7d4e3f8a5b2c1d0e9f8a7b", NULL, 0);
	(void)state;

	assert_non_null(url);
	assert_string_equal(url, "https://wuyingai.cn-shanghai.aliyuncs.com/?Action=CallMcpTool&Format=json"
				 "&Version=2025-05-06&Timestamp=2026-01-29T09%3A21%3A48Z"
				 "&SignatureNonce=6a1f0c2e9b7d4e3f8a5b2c1d0e9f8a7b");
	free(url);
}

/* Extra query parameters follow, in order, encoded; NULL values are left out. */
static void test_action_url_extras(void **state)
{
	const struct ab_param extra[] = {
		{ "SessionId", "session-04bdwfj7u688ec96t" },
		{ "Skip", NULL },
		{ "Note", "a b/c" },
	};
	char *url = ab_action_url("http://127.0.0.1:18080", "GetSessionDetail", "2000-02-29T23:59:59Z",
				  "00010a0f10abcdeff0ff000000000000", extra, ARRAY_LEN(extra));
	(void)state;

	assert_non_null(url);
	assert_string_equal(url, "http://127.0.0.1:18080/?Action=GetSessionDetail&Format=json"
				 "&Version=2025-05-06&Timestamp=2000-02-29T23%3A59%3A59Z"
				 "&SignatureNonce=00010a0f10abcdeff0ff000000000000"
				 "&SessionId=session-04bdwfj7u688ec96t&Note=a%20b%2Fc");
	free(url);
}

/* ---- ab_run_code_args --------------------------------------------------- */

/* Parses the Args text and checks its three keys. */
static void check_args(const char *text, const char *code, const char *language, double timeout)
{
	cJSON *o = cJSON_Parse(text);
	const cJSON *c, *l, *t;

	assert_non_null(o);
	assert_true(cJSON_IsObject(o));
	assert_int_equal(cJSON_GetArraySize(o), 3);
	c = cJSON_GetObjectItemCaseSensitive(o, "code");
	l = cJSON_GetObjectItemCaseSensitive(o, "language");
	t = cJSON_GetObjectItemCaseSensitive(o, "timeout_s");
	assert_true(cJSON_IsString(c));
	assert_true(cJSON_IsString(l));
	assert_true(cJSON_IsNumber(t));
	assert_string_equal(c->valuestring, code);
	assert_string_equal(l->valuestring, language);
	assert_true(t->valuedouble == timeout);
	cJSON_Delete(o);
}

/* Args is valid JSON with code, language and an integer timeout_s. */
static void test_run_code_args_basic(void **state)
{
	const char *code = "print('hi')\n1+1";
	char *text = ab_run_code_args(code, strlen(code), "python", 60);
	(void)state;

	assert_non_null(text);
	check_args(text, code, "python", 60);
	assert_non_null(strstr(text, "\"timeout_s\":60"));
	free(text);
}

/* Quotes, newlines, tabs, backslashes, control bytes and UTF-8 round-trip. */
static void test_run_code_args_escaping(void **state)
{
	const char *code = "s = \"quoted \\\"inner\\\"\"\n"
			   "path = 'C:\\\\Users\\\\x'\n"
			   "\tprint(s, path, '\xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80 \xe6\x97\xa5\xe6\x9c\xac')\r\n"
			   "x = '\x01\x1f' # </script>\n";
	char *text = ab_run_code_args(code, strlen(code), "javascript", 600);
	(void)state;

	assert_non_null(text);
	/* One line: every newline of the code is escaped. */
	assert_null(strchr(text, '\n'));
	assert_null(strchr(text, '\r'));
	check_args(text, code, "javascript", 600);
	free(text);
}

/* Only CODE_LEN bytes of the code are sent. */
static void test_run_code_args_code_len(void **state)
{
	char *text = ab_run_code_args("x = 1\ngarbage", 5, "r", 1);
	(void)state;

	assert_non_null(text);
	check_args(text, "x = 1", "r", 1);
	free(text);
}

/* ---- ab_parse_reply ----------------------------------------------------- */

static const char spec_session_reply[] =
	"{\"RequestId\":\"1C3B5E8A-2F4D-4A6B-9C7D-0E1F2A3B4C5D\",\"Success\":true,\"Code\":\"ok\","
	"\"Message\":\"\",\"HttpStatusCode\":200,\"Data\":{\"SessionId\":\"session-04bdwfj7u688ec96t\","
	"\"Success\":true,\"ErrMsg\":\"\",\"ResourceUrl\":\"https://pre-myspace-wuying.aliyun.com/app/"
	"InnoArchClub/mcp_container/mcp.html?authcode=abc&resourceId=p-xyz\",\"AppInstanceId\":\"ai-0a1b2c3d\","
	"\"ResourceId\":\"p-0a1b2c3d\",\"HttpPort\":\"\",\"NetworkInterfaceIp\":\"\",\"VpcResource\":false,"
	"\"LinkUrl\":\"\",\"Token\":\"\",\"ToolList\":\"[{\\\"name\\\":\\\"run_code\\\",\\\"server\\\":"
	"\\\"wuying_codespace\\\",\\\"tool\\\":\\\"run_code\\\",\\\"description\\\":\\\"Run code\\\","
	"\\\"inputSchema\\\":{\\\"type\\\":\\\"object\\\"}}]\"}}";

/* A 200 success envelope is ok, with its request id, code and Data object. */
static void test_reply_success_data_object(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(200, spec_session_reply, &r);
	assert_true(r.ok);
	assert_false(r.malformed);
	assert_false(r.throttled);
	assert_false(r.session_gone);
	assert_string_equal(r.request_id, "1C3B5E8A-2F4D-4A6B-9C7D-0E1F2A3B4C5D");
	assert_string_equal(r.code, "ok");
	assert_string_equal(r.message, "");
	assert_non_null(r.root);
	assert_null(r.data_owned);
	assert_true(cJSON_IsObject(r.data));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r.data, "SessionId")),
			    "session-04bdwfj7u688ec96t");
	ab_reply_free(&r);
	/* Freeing twice is harmless. */
	ab_reply_free(&r);
}

/* Data sent as a JSON string is parsed into an object. */
static void test_reply_data_as_string(void **state)
{
	const char *body = "{\"RequestId\":\"R-2\",\"Success\":true,\"Code\":\"ok\",\"Data\":\"{\\\"content\\\":"
			   "[{\\\"type\\\":\\\"text\\\",\\\"text\\\":\\\"hello\\\"}],\\\"isError\\\":false}\"}";
	struct ab_reply r;
	const cJSON *content;
	(void)state;

	parse(200, body, &r);
	assert_true(r.ok);
	assert_non_null(r.data_owned);
	assert_ptr_equal(r.data, r.data_owned);
	assert_true(cJSON_IsObject(r.data));
	content = cJSON_GetObjectItemCaseSensitive(r.data, "content");
	assert_true(cJSON_IsArray(content));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(content, 0),
										"text")),
			    "hello");
	ab_reply_free(&r);
}

/* No Data (absent or null) is still a success, with data NULL. */
static void test_reply_data_absent(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(200, "{\"Code\":\"ok\",\"HttpStatusCode\":200,\"RequestId\":\"557DCB66-03AA-1907-AFBC-4B62939AC4A9\","
		   "\"Success\":true}", &r);
	assert_true(r.ok);
	assert_false(r.malformed);
	assert_null(r.data);
	assert_string_equal(r.request_id, "557DCB66-03AA-1907-AFBC-4B62939AC4A9");
	ab_reply_free(&r);

	parse(200, "{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":null}", &r);
	assert_true(r.ok);
	assert_null(r.data);
	ab_reply_free(&r);
}

/* Success:false with a Code is not ok, and carries code, message and request id. */
static void test_reply_business_failure(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(200, "{\"RequestId\":\"9D1B6F4A-1111-2222-3333-444455556666\",\"Success\":false,"
		   "\"Code\":\"InvalidParameter.ImageId\",\"Message\":\"The specified image does not exist\","
		   "\"HttpStatusCode\":400}", &r);
	assert_false(r.ok);
	assert_false(r.malformed);
	assert_string_equal(r.code, "InvalidParameter.ImageId");
	assert_string_equal(r.message, "The specified image does not exist");
	assert_string_equal(r.request_id, "9D1B6F4A-1111-2222-3333-444455556666");
	assert_null(r.data);
	ab_reply_free(&r);
}

/* Success:false without a Code is not ok either. */
static void test_reply_failure_without_code(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(200, "{\"RequestId\":\"R-3\",\"Success\":false,\"Message\":\"internal error\","
		   "\"Data\":{\"SessionId\":\"session-x\"}}", &r);
	assert_false(r.ok);
	assert_false(r.malformed);
	assert_string_equal(r.message, "internal error");
	assert_string_equal(r.request_id, "R-3");
	ab_reply_free(&r);
}

/* HTTP 400 NOT_LOGIN: a hard error with the POP body's code, message and request id. */
static void test_reply_http_not_login(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(400, "{\"RequestId\":\"8A3C1D2E-0000-0000-0000-000000000000\","
		   "\"HostId\":\"wuyingai.cn-shanghai.aliyuncs.com\",\"Code\":\"NOT_LOGIN\","
		   "\"Message\":\"You are not logged in or your login token has expired\","
		   "\"Recommend\":\"https://api.aliyun.com/troubleshoot?q=NOT_LOGIN&product=wuyingai\"}", &r);
	assert_false(r.ok);
	assert_false(r.malformed);
	assert_false(r.throttled);
	assert_false(r.session_gone);
	assert_string_equal(r.code, "NOT_LOGIN");
	assert_string_equal(r.message, "You are not logged in or your login token has expired");
	assert_string_equal(r.request_id, "8A3C1D2E-0000-0000-0000-000000000000");
	ab_reply_free(&r);
}

/* Throttling, Throttling.User and Throttling.Api are marked throttled. */
static void test_reply_http_throttled(void **state)
{
	static const char *const codes[] = { "Throttling.User", "Throttling", "Throttling.Api" };
	char body[256];
	struct ab_reply r;
	(void)state;

	for (size_t i = 0; i < ARRAY_LEN(codes); i++) {
		snprintf(body, sizeof(body),
			 "{\"RequestId\":\"5E3F0A1B-7C2D-4E5F-8A9B-0C1D2E3F4A5B\",\"HostId\":\"wuyingai.cn-shanghai.aliyuncs.com\","
			 "\"Code\":\"%s\",\"Message\":\"Request was denied due to user flow control.\"}",
			 codes[i]);
		parse(400, body, &r);
		assert_false(r.ok);
		assert_true(r.throttled);
		assert_false(r.session_gone);
		assert_false(r.malformed);
		assert_string_equal(r.code, codes[i]);
		assert_string_equal(r.message, "Request was denied due to user flow control.");
		ab_reply_free(&r);
	}
}

/* InvalidMcpSession.NotFound marks the session as gone. */
static void test_reply_http_session_gone(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(400, "{\"RequestId\":\"0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0\",\"HostId\":\"wuyingai.cn-shanghai.aliyuncs.com\","
		   "\"Code\":\"InvalidMcpSession.NotFound\",\"Message\":\"The specified session does not exist.\"}", &r);
	assert_false(r.ok);
	assert_true(r.session_gone);
	assert_false(r.throttled);
	assert_string_equal(r.code, "InvalidMcpSession.NotFound");
	assert_string_equal(r.message, "The specified session does not exist.");
	assert_string_equal(r.request_id, "0F1E2D3C-4B5A-6978-8796-A5B4C3D2E1F0");
	ab_reply_free(&r);
}

/* Lowercase code, message and requestId keys are read too (HTTP error and envelope). */
static void test_reply_lowercase_keys(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(400, "{\"requestId\":\"lower-1\",\"code\":\"InvalidMcpSession.NotFound\","
		   "\"message\":\"session not found\"}", &r);
	assert_false(r.ok);
	assert_true(r.session_gone);
	assert_string_equal(r.request_id, "lower-1");
	assert_string_equal(r.code, "InvalidMcpSession.NotFound");
	assert_string_equal(r.message, "session not found");
	ab_reply_free(&r);

	parse(200, "{\"requestId\":\"lower-2\",\"success\":false,\"code\":\"Throttling.User\","
		   "\"message\":\"slow down\"}", &r);
	assert_false(r.ok);
	assert_true(r.throttled);
	assert_string_equal(r.request_id, "lower-2");
	assert_string_equal(r.code, "Throttling.User");
	assert_string_equal(r.message, "slow down");
	ab_reply_free(&r);

	parse(200, "{\"requestId\":\"lower-3\",\"success\":true,\"code\":\"ok\",\"data\":{\"SessionId\":\"s\"}}", &r);
	assert_true(r.ok);
	assert_true(cJSON_IsObject(r.data));
	assert_string_equal(r.request_id, "lower-3");
	ab_reply_free(&r);
}

/* Every byte of S is printable. */
static void assert_printable(const char *s)
{
	for (; *s; s++)
		assert_true(isprint((unsigned char)*s));
}

/* HTTP 500 with an HTML body: not ok, and the message is a printable excerpt. */
static void test_reply_http_500_not_json(void **state)
{
	const char *body = "<html>\r\n<head><title>502 Bad Gateway</title></head>\n\t<body>\xe2\x9c\x97</body>\n</html>\n";
	struct ab_reply r;
	(void)state;

	parse(500, body, &r);
	assert_false(r.ok);
	assert_false(r.malformed);
	assert_string_equal(r.code, "");
	assert_string_equal(r.request_id, "");
	assert_int_equal(strlen(r.message), strlen(body));
	assert_printable(r.message);
	assert_non_null(strstr(r.message, "502 Bad Gateway"));
	assert_int_equal(strncmp(r.message, "<html>", 6), 0);
	ab_reply_free(&r);
}

/* A long non-JSON body is cut and ends with "...". */
static void test_reply_long_body_cut(void **state)
{
	char body[4096];
	struct ab_reply r;
	size_t n;
	(void)state;

	for (size_t i = 0; i < sizeof(body) - 1; i++)
		body[i] = (char)('a' + i % 26);
	body[sizeof(body) - 1] = '\0';
	body[10] = '\n';
	parse(503, body, &r);
	assert_false(r.ok);
	n = strlen(r.message);
	assert_true(n > 3 && n < 1024);
	assert_string_equal(r.message + n - 3, "...");
	assert_printable(r.message);
	/* It is the start of the body. */
	assert_int_equal(strncmp(r.message, "abcdefghij", 10), 0);
	assert_int_equal(strncmp(r.message + 11, body + 11, n - 3 - 11), 0);
	ab_reply_free(&r);
}

/* HTTP 200 with a body that is not JSON is malformed, not ok. */
static void test_reply_200_not_json(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(200, "Service Unavailable", &r);
	assert_false(r.ok);
	assert_true(r.malformed);
	assert_null(r.data);
	assert_string_equal(r.message, "Service Unavailable");
	ab_reply_free(&r);

	/* JSON, but not an object. */
	parse(200, "[\"ok\"]", &r);
	assert_false(r.ok);
	assert_true(r.malformed);
	ab_reply_free(&r);
}

/* An empty body (NULL or zero length) is malformed with HTTP 200, empty message. */
static void test_reply_empty_body(void **state)
{
	struct ab_reply r;
	(void)state;

	parse(200, "", &r);
	assert_false(r.ok);
	assert_true(r.malformed);
	assert_string_equal(r.message, "");
	assert_null(r.root);
	ab_reply_free(&r);

	assert_int_equal(ab_parse_reply(200, NULL, 0, &r), 0);
	assert_false(r.ok);
	assert_true(r.malformed);
	assert_string_equal(r.message, "");
	ab_reply_free(&r);

	/* With an error status it is a plain failure. */
	parse(502, "", &r);
	assert_false(r.ok);
	assert_false(r.malformed);
	ab_reply_free(&r);
}

/* Truncated JSON (a cut connection) is malformed; only LEN bytes are read. */
static void test_reply_truncated_json(void **state)
{
	const char *full = spec_session_reply;
	struct ab_reply r;
	(void)state;

	parse(200, "{\"RequestId\":\"R\",\"Success\":true,\"Data\":{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"std", &r);
	assert_false(r.ok);
	assert_true(r.malformed);
	assert_printable(r.message);
	ab_reply_free(&r);

	/* The full text is there, but LEN stops halfway. */
	assert_int_equal(ab_parse_reply(200, full, strlen(full) / 2, &r), 0);
	assert_false(r.ok);
	assert_true(r.malformed);
	ab_reply_free(&r);
}

/* ---- ab_parse_session_id ------------------------------------------------ */

/* The session id of a normal CreateMcpSession reply. */
static void test_session_id_normal(void **state)
{
	struct ab_reply r;
	char err[128] = "";
	char *sid;
	(void)state;

	parse(200, spec_session_reply, &r);
	sid = ab_parse_session_id(&r, err, sizeof(err));
	assert_non_null(sid);
	assert_string_equal(sid, "session-04bdwfj7u688ec96t");
	free(sid);
	ab_reply_free(&r);
}

/* Data.Success false: no id, ERR is ErrMsg (or a default text when it is empty). */
static void test_session_id_data_failure(void **state)
{
	struct ab_reply r;
	char err[128] = "";
	(void)state;

	parse(200, "{\"RequestId\":\"R-4\",\"Success\":true,\"Code\":\"ok\",\"HttpStatusCode\":200,"
		   "\"Data\":{\"Success\":false,\"ErrMsg\":\"No resources available in region cn-shanghai\","
		   "\"SessionId\":\"\"}}", &r);
	assert_true(r.ok);
	assert_null(ab_parse_session_id(&r, err, sizeof(err)));
	assert_string_equal(err, "No resources available in region cn-shanghai");
	ab_reply_free(&r);

	parse(200, "{\"RequestId\":\"R-5\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"Success\":false,\"ErrMsg\":\"\"}}",
	      &r);
	err[0] = '\0';
	assert_null(ab_parse_session_id(&r, err, sizeof(err)));
	assert_string_equal(err, "Session creation failed");
	ab_reply_free(&r);
}

/* Data without a SessionId (or with an empty one) gives no id and an error. */
static void test_session_id_missing(void **state)
{
	struct ab_reply r;
	char err[128] = "";
	(void)state;

	parse(200, "{\"RequestId\":\"R-6\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"Success\":true,\"ErrMsg\":\"\","
		   "\"ResourceUrl\":\"\"}}", &r);
	assert_null(ab_parse_session_id(&r, err, sizeof(err)));
	assert_non_null(strstr(err, "SessionId"));
	ab_reply_free(&r);

	parse(200, "{\"RequestId\":\"R-7\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"SessionId\":\"\"}}", &r);
	err[0] = '\0';
	assert_null(ab_parse_session_id(&r, err, sizeof(err)));
	assert_non_null(strstr(err, "SessionId"));
	ab_reply_free(&r);

	parse(200, "{\"RequestId\":\"R-8\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"SessionId\":12345}}", &r);
	err[0] = '\0';
	assert_null(ab_parse_session_id(&r, err, sizeof(err)));
	assert_true(err[0] != '\0');
	ab_reply_free(&r);
}

/* Data that is not an object (a string, an array, absent) gives no id and an error. */
static void test_session_id_data_not_object(void **state)
{
	static const char *const bodies[] = {
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":\"session-04bdwfj7u688ec96t\"}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":[{\"SessionId\":\"s\"}]}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\"}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":\"\"}",
	};
	struct ab_reply r;
	char err[128];
	(void)state;

	for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
		parse(200, bodies[i], &r);
		err[0] = '\0';
		assert_null(ab_parse_session_id(&r, err, sizeof(err)));
		assert_true(err[0] != '\0');
		ab_reply_free(&r);
	}
}

/* ---- ab_parse_run_code: the normal format (§3.2, §4.1) ------------------ */

static const char spec_run_reply[] =
	"{\"RequestId\":\"557DCB66-03AA-1907-AFBC-4B62939AC4A9\",\"Success\":true,\"Code\":\"ok\",\"Message\":\"\","
	"\"HttpStatusCode\":200,\"Data\":{\"content\":[{\"type\":\"text\",\"text\":\"{\\\"executionError\\\":\\\"\\\","
	"\\\"result\\\":[\\\"{\\\\\\\"isMainResult\\\\\\\":true,\\\\\\\"text/plain\\\\\\\":\\\\\\\"2\\\\\\\"}\\\"],"
	"\\\"stderr\\\":[],\\\"stdout\\\":[\\\"hi\\\\n\\\"],\\\"traceId\\\":\\\"0bc5e7a117380000000000000e0f0a\\\"}\"}],"
	"\"isError\":false,\"parsedToolName\":\"run_code\"}}";

/* The reply of notes §3.2, verbatim: stdout "hi\n" and the main result "2". */
static void test_run_spec_reply(void **state)
{
	struct run x;
	(void)state;

	run_body(&x, spec_run_reply);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_false(x.res.has_error);
	assert_int_equal(x.out.out_len, 3);
	assert_string_equal(x.out.out, "hi\n");
	assert_int_equal(x.out.err_len, 0);
	assert_string_equal(or_empty(x.out.err), "");
	assert_int_equal(x.res.n_results, 1);
	assert_true(x.res.results[0].is_main);
	assert_int_equal(x.res.results[0].n, 1);
	assert_string_equal(x.res.results[0].entries[0].mime, "text/plain");
	assert_string_equal(x.res.results[0].entries[0].data, "2");
	assert_int_equal(x.res.execution_count, -1);
	run_free(&x);
}

/* stdout chunks are joined, stderr kept, executionCount read. */
static void test_run_chunks_and_count(void **state)
{
	struct run x;
	(void)state;

	run_text(&x,
		 "{\"stdout\":[\"Hello, enhanced world!\\n\",\"line 2\",\"\\n\",\"\xc3\xa9t\xc3\xa9\\n\"],"
		 "\"stderr\":[\"warning: deprecated\\n\",\"second\\n\"],"
		 "\"result\":[\"{\\\"isMainResult\\\":true,\\\"text/plain\\\":\\\"42\\\"}\"],"
		 "\"executionError\":\"\",\"executionCount\":7,\"executionTime\":0.012,"
		 "\"traceId\":\"0bc5e7a117380000000000000e0f0a\"}",
		 false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_string_equal(x.out.out, "Hello, enhanced world!\nline 2\n\xc3\xa9t\xc3\xa9\n");
	assert_int_equal(x.out.out_len, strlen(x.out.out));
	assert_string_equal(x.out.err, "warning: deprecated\nsecond\n");
	assert_int_equal(x.out.err_len, strlen(x.out.err));
	assert_int_equal(x.res.n_results, 1);
	assert_true(x.res.results[0].is_main);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "42");
	assert_int_equal(x.res.execution_count, 7);
	run_free(&x);
}

/* execution_count (snake case) is read too; stdout may be a single string. */
static void test_run_execution_count_snake(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":\"single string\\n\",\"stderr\":[],\"result\":[],\"executionError\":\"\","
		     "\"execution_count\":12,\"execution_time\":1.5}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_string_equal(x.out.out, "single string\n");
	assert_int_equal(x.res.n_results, 0);
	assert_int_equal(x.res.execution_count, 12);
	run_free(&x);
}

/* A double-encoded result item (a JSON string holding a JSON string) is decoded twice. */
static void test_run_item_double_encoded(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[\"\\\"{\\\\\\\"isMainResult\\\\\\\":true,"
		     "\\\\\\\"text/plain\\\\\\\":\\\\\\\"'double'\\\\\\\"}\\\"\"],\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_int_equal(x.res.n_results, 1);
	assert_true(x.res.results[0].is_main);
	assert_int_equal(x.res.results[0].n, 1);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "'double'");
	run_free(&x);
}

/* A result item that is already an object is used as is. */
static void test_run_item_object(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[\"x\\n\"],\"stderr\":[],\"result\":[{\"isMainResult\":true,\"text/plain\":\"3.14\","
		     "\"text/markdown\":\"**pi**\"}],\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.n_results, 1);
	assert_true(x.res.results[0].is_main);
	assert_int_equal(x.res.results[0].n, 2);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "3.14");
	assert_string_equal(entry(&x.res.results[0], "text/markdown"), "**pi**");
	run_free(&x);
}

/* A result item that is an array of items is flattened, as JSON or as a JSON string. */
static void test_run_item_array_flattened(void **state)
{
	struct run x;
	(void)state;

	/* The array as a JSON string of JSON strings. */
	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[\"[\\\"{\\\\\\\"text/plain\\\\\\\":\\\\\\\"1\\\\\\\"}\\\","
		     "\\\"{\\\\\\\"isMainResult\\\\\\\":true,\\\\\\\"text/plain\\\\\\\":\\\\\\\"2\\\\\\\"}\\\"]\"],"
		     "\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.n_results, 2);
	assert_false(x.res.results[0].is_main);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "1");
	assert_true(x.res.results[1].is_main);
	assert_string_equal(entry(&x.res.results[1], "text/plain"), "2");
	run_free(&x);

	/* A JSON array of objects and strings, next to an ordinary item. */
	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[[{\"text/plain\":\"a\"},\"{\\\"text/html\\\":\\\"<i>b</i>\\\"}\"],"
		     "\"{\\\"isMainResult\\\":true,\\\"text/plain\\\":\\\"c\\\"}\"],\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.n_results, 3);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "a");
	assert_string_equal(entry(&x.res.results[1], "text/html"), "<i>b</i>");
	assert_true(x.res.results[2].is_main);
	assert_string_equal(entry(&x.res.results[2], "text/plain"), "c");
	run_free(&x);
}

/* A result item that is plain text (not JSON) becomes a text/plain result. */
static void test_run_item_plain_text(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[\"<matplotlib.figure.Figure at 0x7f>\",\"42\"],"
		     "\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_int_equal(x.res.n_results, 2);
	assert_int_equal(x.res.results[0].n, 1);
	assert_string_equal(x.res.results[0].entries[0].mime, "text/plain");
	assert_string_equal(x.res.results[0].entries[0].data, "<matplotlib.figure.Figure at 0x7f>");
	assert_string_equal(entry(&x.res.results[1], "text/plain"), "42");
	run_free(&x);
}

/* A rich bundle keeps html, png, svg, JSON (serialized), latex and a vega-lite chart. */
static void test_run_rich_bundle(void **state)
{
	struct run x;
	const struct rich_result *rr;
	cJSON *j;
	(void)state;

	run_text(&x,
		 "{\"stdout\":[],\"stderr\":[],\"result\":[\"{\\\"isMainResult\\\":false,\\\"text/html\\\":"
		 "\\\"<table><tr><td>1</td></tr></table>\\\",\\\"image/png\\\":\\\"iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJ"
		 "AAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==\\\",\\\"image/svg+xml\\\":\\\"<svg xmlns=\\\\\\\"http://"
		 "www.w3.org/2000/svg\\\\\\\" width=\\\\\\\"1\\\\\\\"/>\\\",\\\"application/json\\\":{\\\"a\\\":[1,2],\\\"b\\\":"
		 "\\\"x\\\"},\\\"text/latex\\\":\\\"$x^2$\\\",\\\"application/vnd.vegalite.v5+json\\\":{\\\"mark\\\":\\\"bar\\\","
		 "\\\"data\\\":{\\\"values\\\":[{\\\"x\\\":1}]}}}\"],\"executionError\":\"\"}",
		 false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_int_equal(x.res.n_results, 1);
	rr = &x.res.results[0];
	assert_false(rr->is_main);
	assert_int_equal(rr->n, 6);
	assert_string_equal(entry(rr, "text/html"), "<table><tr><td>1</td></tr></table>");
	assert_string_equal(entry(rr, "image/png"),
			    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg==");
	assert_string_equal(entry(rr, "image/svg+xml"), "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"1\"/>");
	assert_string_equal(entry(rr, "text/latex"), "$x^2$");
	assert_null(entry(rr, "text/plain"));
	/* JSON values are stored as JSON text. */
	assert_non_null(entry(rr, "application/json"));
	j = cJSON_Parse(entry(rr, "application/json"));
	assert_true(cJSON_IsObject(j));
	assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(j, "a")), 2);
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "b")), "x");
	cJSON_Delete(j);
	assert_non_null(entry(rr, "application/vnd.vegalite.v5+json"));
	j = cJSON_Parse(entry(rr, "application/vnd.vegalite.v5+json"));
	assert_true(cJSON_IsObject(j));
	assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(j, "mark")), "bar");
	cJSON_Delete(j);
	run_free(&x);
}

/* is_main_result (snake case) marks the main result as well. */
static void test_run_is_main_result_snake(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[\"{\\\"is_main_result\\\":false,\\\"text/plain\\\":\\\"1\\\"}\","
		     "\"{\\\"is_main_result\\\":true,\\\"text/plain\\\":\\\"2\\\"}\"],\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.n_results, 2);
	assert_false(x.res.results[0].is_main);
	assert_true(x.res.results[1].is_main);
	/* The flag is not a MIME entry. */
	assert_int_equal(x.res.results[1].n, 1);
	assert_string_equal(entry(&x.res.results[1], "text/plain"), "2");
	run_free(&x);
}

/* ---- ab_parse_run_code: errors (§4.3) ----------------------------------- */

/* executionError "Name: value" with isError: failed, split in name and value; the
 * traceback the service put in stderr follows it. */
static void test_run_execution_error(void **state)
{
	const char *tb = "Traceback (most recent call last):\n  File \"<stdin>\", line 2, in <module>\n"
			 "ZeroDivisionError: division by zero\n";
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[\"before\\n\"],\"stderr\":[\"Traceback (most recent call last):\\n\","
		     "\"  File \\\"<stdin>\\\", line 2, in <module>\\n\",\"ZeroDivisionError: division by zero\\n\"],"
		     "\"result\":[],\"executionError\":\"ZeroDivisionError: division by zero\","
		     "\"traceId\":\"0bc5e7a117380000000000000e0f0b\"}", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "ZeroDivisionError");
	assert_string_equal(x.res.error.value, "division by zero");
	assert_non_null(x.res.error.traceback);
	assert_string_equal(x.res.error.traceback, tb);
	assert_string_equal(x.out.out, "before\n");
	assert_string_equal(x.out.err, tb);
	assert_int_equal(x.res.n_results, 0);
	run_free(&x);
}

/* A non-empty executionError fails the run even when isError is false. */
static void test_run_execution_error_without_is_error(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[],\"executionError\":\"NameError: name 'x' is not defined\"}",
		 false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_string_equal(x.res.error.name, "NameError");
	assert_string_equal(x.res.error.value, "name 'x' is not defined");
	/* Nothing in stderr: no traceback. */
	assert_null(x.res.error.traceback);
	run_free(&x);
}

/* A multi-line executionError keeps the lines after the first as the traceback
 * (stderr does not replace it). */
static void test_run_execution_error_multiline(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[\"other text\\n\"],\"result\":[],\"executionError\":\"ValueError: invalid literal for int() "
		     "with base 10: 'abc'\\nTraceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, in <module>\\n"
		     "ValueError: invalid literal for int() with base 10: 'abc'\"}", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_string_equal(x.res.error.name, "ValueError");
	assert_string_equal(x.res.error.value, "invalid literal for int() with base 10: 'abc'");
	assert_non_null(x.res.error.traceback);
	assert_string_equal(x.res.error.traceback, "Traceback (most recent call last):\n  File \"<stdin>\", line 1, "
						   "in <module>\nValueError: invalid literal for int() with base 10: 'abc'");
	run_free(&x);
}

/* An executionError that is not "Name: value" is named ExecutionError, text kept. */
static void test_run_execution_error_not_named(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[],\"executionError\":\"Kernel died unexpectedly (exit 137)\"}",
		 true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_string_equal(x.res.error.name, "ExecutionError");
	assert_string_equal(x.res.error.value, "Kernel died unexpectedly (exit 137)");
	run_free(&x);
}

/* isError with an empty executionError: the error is the last stderr line, the traceback all of stderr. */
static void test_run_is_error_traceback_in_stderr(void **state)
{
	const char *tb = "Traceback (most recent call last):\n  File \"<stdin>\", line 1, in <module>\n"
			 "NameError: name 'undefined_variable' is not defined\n";
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[\"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", line 1, "
		     "in <module>\\n\",\"NameError: name 'undefined_variable' is not defined\\n\"],\"result\":[],"
		     "\"executionError\":\"\",\"traceId\":\"0bc5e7a117380000000000000e0f0c\"}", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "NameError");
	assert_string_equal(x.res.error.value, "name 'undefined_variable' is not defined");
	assert_non_null(x.res.error.traceback);
	assert_string_equal(x.res.error.traceback, tb);
	assert_string_equal(x.out.err, tb);
	run_free(&x);
}

/* isError with nothing at all still fails, with an ExecutionError. */
static void test_run_is_error_without_details(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[],\"executionError\":\"\"}", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "ExecutionError");
	assert_true(x.res.error.value[0] != '\0');
	run_free(&x);
}

/* isError false, yet stderr ends in an uncaught exception's traceback: the
 * run failed, and .error gets the exception with its traceback. */
static void test_run_traceback_in_stderr_is_error(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[\"before\\n\"],\"stderr\":[\"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", "
		     "line 1, in <module>\\nZeroDivisionError: division by zero\\n\"],\"result\":[],\"executionError\":\"\"}",
		 false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "ZeroDivisionError");
	assert_string_equal(x.res.error.value, "division by zero");
	assert_non_null(strstr(x.res.error.traceback, "Traceback (most recent call last):"));
	assert_string_equal(x.out.out, "before\n");
	run_free(&x);
}

/* A traceback the script printed itself and then went on (more output
 * after it) is not an uncaught exception: the run succeeded. */
static void test_run_printed_traceback_then_more_is_success(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[\"caught\\n\"],\"stderr\":[\"Traceback (most recent call last):\\n  File \\\"<stdin>\\\", "
		     "line 1, in <module>\\nZeroDivisionError: division by zero\\ncarrying on\\n\"],\"result\":[],"
		     "\"executionError\":\"\"}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_false(x.res.has_error);
	run_free(&x);
}

/* A timeout text in executionError gives RS_TIMED_OUT with a TimeoutError. */
static void test_run_timeout(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"stdout\":[\"started\\n\"],\"stderr\":[],\"result\":[],"
		     "\"executionError\":\"TimeoutError: code execution timed out after 5 seconds\"}", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_TIMED_OUT);
	assert_string_equal(x.res.error.name, "TimeoutError");
	assert_string_equal(x.res.error.value, "code execution timed out after 5 seconds");
	assert_string_equal(x.out.out, "started\n");
	run_free(&x);

	/* Without a name, the default name is TimeoutError. */
	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[],\"executionError\":\"Execution timed out after 60s\"}", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_TIMED_OUT);
	assert_string_equal(x.res.error.name, "TimeoutError");
	assert_string_equal(x.res.error.value, "Execution timed out after 60s");
	run_free(&x);
}

/* A user error that merely contains the word "timeout" is a failure, not a
 * timeout (NameError: name 'timeout' is not defined). */
static void test_run_timeout_word_in_user_error(void **state)
{
	struct run x;
	enum run_state got;
	char name[64];
	(void)state;

	run_text(&x, "{\"stdout\":[],\"stderr\":[],\"result\":[],"
		     "\"executionError\":\"NameError: name 'timeout' is not defined\"}", true);
	assert_int_equal(x.rc, 0);
	got = x.res.state;
	snprintf(name, sizeof(name), "%s", or_empty(x.res.error.name));
	run_free(&x);
	assert_string_equal(name, "NameError");
	assert_int_equal(got, RS_FAILED);
}

/* ---- ab_parse_run_code: legacy and plain layouts (§4.1) ----------------- */

/* The legacy rich layout: logs, results, error object and execution_count. */
static void test_run_legacy_layout(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"logs\":{\"stdout\":[\"line1\\n\",\"line2\\n\"],\"stderr\":[\"warn\\n\"]},"
		     "\"results\":[{\"text\":\"42\",\"html\":\"<b>\",\"is_main_result\":true}],"
		     "\"error\":{\"name\":\"ValueError\",\"value\":\"bad\",\"traceback\":\"Traceback (most recent call last):\\n"
		     "  File \\\"<stdin>\\\", line 1\\nValueError: bad\"},\"execution_count\":3,\"execution_time\":0.5}",
		 false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_string_equal(x.out.out, "line1\nline2\n");
	assert_string_equal(x.out.err, "warn\n");
	assert_int_equal(x.res.n_results, 1);
	assert_true(x.res.results[0].is_main);
	assert_int_equal(x.res.results[0].n, 2);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "42");
	assert_string_equal(entry(&x.res.results[0], "text/html"), "<b>");
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "ValueError");
	assert_string_equal(x.res.error.value, "bad");
	assert_string_equal(x.res.error.traceback, "Traceback (most recent call last):\n  File \"<stdin>\", line 1\n"
						   "ValueError: bad");
	assert_int_equal(x.res.execution_count, 3);
	run_free(&x);
}

/* The legacy layout without an error is a success, its short keys map to MIME
 * types; with isError and no error object it fails. */
static void test_run_legacy_layout_success(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "{\"logs\":{\"stdout\":[\"ok\\n\"],\"stderr\":[]},\"results\":[{\"text\":\"1\",\"markdown\":\"# t\","
		     "\"png\":\"iVBORw0=\",\"jpeg\":\"/9j/4A==\",\"svg\":\"<svg/>\",\"json\":{\"k\":true},\"latex\":\"$a$\","
		     "\"chart\":{\"mark\":\"line\"},\"is_main_result\":false}],\"error\":null,\"execution_count\":1}",
		 false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_false(x.res.has_error);
	assert_int_equal(x.res.n_results, 1);
	assert_false(x.res.results[0].is_main);
	assert_int_equal(x.res.results[0].n, 8);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "1");
	assert_string_equal(entry(&x.res.results[0], "text/markdown"), "# t");
	assert_string_equal(entry(&x.res.results[0], "image/png"), "iVBORw0=");
	assert_string_equal(entry(&x.res.results[0], "image/jpeg"), "/9j/4A==");
	assert_string_equal(entry(&x.res.results[0], "image/svg+xml"), "<svg/>");
	assert_string_equal(entry(&x.res.results[0], "application/json"), "{\"k\":true}");
	assert_string_equal(entry(&x.res.results[0], "text/latex"), "$a$");
	assert_string_equal(entry(&x.res.results[0], "application/vnd.vegalite.v5+json"), "{\"mark\":\"line\"}");
	assert_int_equal(x.res.execution_count, 1);
	run_free(&x);

	/* Its own isError without an error object still fails the run. */
	run_text(&x, "{\"logs\":{\"stdout\":[],\"stderr\":[]},\"results\":[],\"isError\":true}", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "ExecutionError");
	run_free(&x);
}

/* Plain-text content (legacy images): success, stdout is the text, one main text/plain result. */
static void test_run_plain_text_content(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "Hello, world!\n2", false);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_false(x.res.has_error);
	assert_string_equal(x.out.out, "Hello, world!\n2");
	assert_int_equal(x.out.out_len, 15);
	assert_int_equal(x.res.n_results, 1);
	assert_true(x.res.results[0].is_main);
	assert_int_equal(x.res.results[0].n, 1);
	assert_string_equal(x.res.results[0].entries[0].mime, "text/plain");
	assert_string_equal(x.res.results[0].entries[0].data, "Hello, world!\n2");
	run_free(&x);
}

/* Plain text with isError is the tool's own error: failed, named ToolError. */
static void test_run_plain_text_tool_error(void **state)
{
	struct run x;
	(void)state;

	run_text(&x, "tool run_code not found", true);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_FAILED);
	assert_true(x.res.has_error);
	assert_string_equal(x.res.error.name, "ToolError");
	assert_string_equal(x.res.error.value, "tool run_code not found");
	assert_int_equal(x.res.n_results, 0);
	assert_int_equal(x.out.out_len, 0);
	run_free(&x);
}

/* content[0] may be a bare string. */
static void test_run_content_bare_string(void **state)
{
	struct run x;
	(void)state;

	run_body(&x, "{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"content\":[\"{\\\"stdout\\\":"
		     "[\\\"bare\\\\n\\\"],\\\"stderr\\\":[],\\\"result\\\":[],\\\"executionError\\\":\\\"\\\"}\"],"
		     "\"isError\":false}}");
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_string_equal(x.out.out, "bare\n");
	run_free(&x);
}

/* content[0].blob is read when there is no text. */
static void test_run_content_blob(void **state)
{
	struct run x;
	(void)state;

	run_body(&x, "{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"content\":[{\"type\":\"resource\","
		     "\"blob\":\"{\\\"stdout\\\":[\\\"from blob\\\\n\\\"],\\\"stderr\\\":[],\\\"result\\\":[],"
		     "\\\"executionError\\\":\\\"\\\"}\"}],\"isError\":false}}");
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_string_equal(x.out.out, "from blob\n");
	run_free(&x);
}

/* The tool result may be nested as Data.result.content. */
static void test_run_data_result_content(void **state)
{
	struct run x;
	(void)state;

	run_body(&x, "{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"result\":{\"content\":[{\"type\":\"text\","
		     "\"text\":\"{\\\"stdout\\\":[\\\"nested\\\\n\\\"],\\\"stderr\\\":[],\\\"result\\\":[\\\"{\\\\\\\"isMainResult"
		     "\\\\\\\":true,\\\\\\\"text/plain\\\\\\\":\\\\\\\"5\\\\\\\"}\\\"],\\\"executionError\\\":\\\"\\\"}\"}]},"
		     "\"isError\":false}}");
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_string_equal(x.out.out, "nested\n");
	assert_int_equal(x.res.n_results, 1);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "5");
	run_free(&x);
}

/* Data sent as a JSON string holding the tool result parses the same. */
static void test_run_data_as_string(void **state)
{
	char *body = tool_reply("{\"stdout\":[\"hi\\n\"],\"stderr\":[],\"result\":[\"{\\\"isMainResult\\\":true,"
				"\\\"text/plain\\\":\\\"2\\\"}\"],\"executionError\":\"\"}", false, true);
	struct run x;
	(void)state;

	run_body(&x, body);
	free(body);
	assert_non_null(x.rep.data_owned);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_string_equal(x.out.out, "hi\n");
	assert_int_equal(x.res.n_results, 1);
	assert_string_equal(entry(&x.res.results[0], "text/plain"), "2");
	run_free(&x);
}

/* No tool result (Data missing, empty, not an object, no content) is -EINVAL with a message. */
static void test_run_no_tool_result(void **state)
{
	static const char *const bodies[] = {
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\"}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":null}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":\"\"}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":\"not json at all\"}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":42}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":[{\"text\":\"x\"}]}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"isError\":false}}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"content\":[],\"isError\":false}}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"content\":[{\"type\":\"image\"}]}}",
		"{\"RequestId\":\"R\",\"Success\":true,\"Code\":\"ok\",\"Data\":{\"content\":[{\"text\":17}]}}",
	};
	struct run x;
	(void)state;

	for (size_t i = 0; i < ARRAY_LEN(bodies); i++) {
		run_body(&x, bodies[i]);
		assert_int_equal(x.rc, -EINVAL);
		assert_true(x.err[0] != '\0');
		run_free(&x);
	}
}

/* A 1 MiB stdout (in 64 KiB chunks) parses whole. */
static void test_run_huge_stdout(void **state)
{
	const size_t chunk = 64 * 1024, total = 1024 * 1024;
	char *piece = malloc(chunk + 1);
	cJSON *inner = cJSON_CreateObject();
	cJSON *so = cJSON_AddArrayToObject(inner, "stdout");
	char *text, *body;
	struct run x;
	(void)state;

	assert_non_null(piece);
	for (size_t i = 0; i < chunk; i++)
		piece[i] = (i % 80 == 79) ? '\n' : (char)('0' + i % 10);
	piece[chunk] = '\0';
	for (size_t n = 0; n < total; n += chunk)
		cJSON_AddItemToArray(so, cJSON_CreateString(piece));
	cJSON_AddArrayToObject(inner, "stderr");
	cJSON_AddArrayToObject(inner, "result");
	cJSON_AddStringToObject(inner, "executionError", "");
	text = cJSON_PrintUnformatted(inner);
	cJSON_Delete(inner);
	assert_non_null(text);
	body = tool_reply(text, false, false);
	free(text);

	run_body(&x, body);
	free(body);
	assert_int_equal(x.rc, 0);
	assert_int_equal(x.res.state, RS_SUCCEEDED);
	assert_int_equal(x.out.out_len, total);
	assert_int_equal(strlen(x.out.out), total);
	assert_memory_equal(x.out.out, piece, chunk);
	assert_memory_equal(x.out.out + total - chunk, piece, chunk);
	free(piece);
	run_free(&x);
}

/* ---- ab_set_error_from_text --------------------------------------------- */

/* Sets an error from TEXT and checks name, value and traceback (NULL: none). */
static void check_error_text(const char *text, const char *dflt, const char *name, const char *value,
			     const char *traceback)
{
	struct exec_result r;

	exec_result_init(&r);
	assert_int_equal(ab_set_error_from_text(&r, text, dflt), 0);
	assert_true(r.has_error);
	assert_string_equal(r.error.name, name);
	assert_string_equal(r.error.value, value);
	if (traceback) {
		assert_non_null(r.error.traceback);
		assert_string_equal(r.error.traceback, traceback);
	} else {
		assert_null(r.error.traceback);
	}
	exec_result_free(&r);
}

/* "Name: value" splits at the first colon; the following lines are the traceback. */
static void test_error_text_name_value(void **state)
{
	(void)state;

	check_error_text("ZeroDivisionError: division by zero", "ExecutionError", "ZeroDivisionError",
			 "division by zero", NULL);
	check_error_text("ReferenceError: x is not defined\n    at evalmachine.<anonymous>:1:1\n    at Script.runInThisContext",
			 "ExecutionError", "ReferenceError", "x is not defined",
			 "    at evalmachine.<anonymous>:1:1\n    at Script.runInThisContext");
	check_error_text("KeyError: 'a: b'", "E", "KeyError", "'a: b'", NULL);
	check_error_text("Error:no space", "E", "Error", "no space", NULL);
	/* A single trailing newline leaves no traceback. */
	check_error_text("ValueError: bad\n", "E", "ValueError", "bad", NULL);
}

/* A name alone ("KeyboardInterrupt") gives an empty value. */
static void test_error_text_name_alone(void **state)
{
	(void)state;

	check_error_text("KeyboardInterrupt", "ExecutionError", "KeyboardInterrupt", "", NULL);
	check_error_text("MemoryError\n  File \"<stdin>\", line 1", "ExecutionError", "MemoryError", "",
			 "  File \"<stdin>\", line 1");
}

/* A dotted module path is part of the name. */
static void test_error_text_dotted_name(void **state)
{
	(void)state;

	check_error_text("requests.exceptions.ConnectionError: Max retries exceeded", "ExecutionError",
			 "requests.exceptions.ConnectionError", "Max retries exceeded", NULL);
	check_error_text("json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)", "E",
			 "json.decoder.JSONDecodeError", "Expecting value: line 1 column 1 (char 0)", NULL);
}

/* Leading blank lines are skipped before the first line is read. */
static void test_error_text_leading_blank_line(void **state)
{
	(void)state;

	check_error_text("\nNameError: name 'x' is not defined", "ExecutionError", "NameError",
			 "name 'x' is not defined", NULL);
	check_error_text("\r\n\nTypeError: unsupported operand\ndetails", "ExecutionError", "TypeError",
			 "unsupported operand", "details");
}

/* A first line that is not a name gets DEFAULT_NAME and is kept whole as the value. */
static void test_error_text_not_a_name(void **state)
{
	(void)state;

	check_error_text("tool run_code not found", "ToolError", "ToolError", "tool run_code not found", NULL);
	check_error_text("Something went wrong: really", "ExecutionError", "ExecutionError",
			 "Something went wrong: really", NULL);
	check_error_text("Traceback (most recent call last):\n  File \"<stdin>\", line 1", "ExecutionError",
			 "ExecutionError", "Traceback (most recent call last):", "  File \"<stdin>\", line 1");
	check_error_text("3rd: attempt failed", "E", "E", "3rd: attempt failed", NULL);
	check_error_text("", "ExecutionError", "ExecutionError", "", NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_encode_unreserved_kept),
		cmocka_unit_test(test_url_encode_reserved),
		cmocka_unit_test(test_url_encode_utf8_and_binary),
		cmocka_unit_test(test_form_encode_order_and_encoding),
		cmocka_unit_test(test_form_encode_null_and_empty),
		cmocka_unit_test(test_form_encode_authorization),
		cmocka_unit_test(test_timestamp_format),
		cmocka_unit_test(test_timestamp_utc),
		cmocka_unit_test(test_nonce_hex),
		cmocka_unit_test(test_base_url_bare_host),
		cmocka_unit_test(test_base_url_urls_kept),
		cmocka_unit_test(test_base_url_rejected),
		cmocka_unit_test(test_base_url_url_with_space_rejected),
		cmocka_unit_test(test_base_url_small_buffer),
		cmocka_unit_test(test_action_url_exact),
		cmocka_unit_test(test_action_url_extras),
		cmocka_unit_test(test_run_code_args_basic),
		cmocka_unit_test(test_run_code_args_escaping),
		cmocka_unit_test(test_run_code_args_code_len),
		cmocka_unit_test(test_reply_success_data_object),
		cmocka_unit_test(test_reply_data_as_string),
		cmocka_unit_test(test_reply_data_absent),
		cmocka_unit_test(test_reply_business_failure),
		cmocka_unit_test(test_reply_failure_without_code),
		cmocka_unit_test(test_reply_http_not_login),
		cmocka_unit_test(test_reply_http_throttled),
		cmocka_unit_test(test_reply_http_session_gone),
		cmocka_unit_test(test_reply_lowercase_keys),
		cmocka_unit_test(test_reply_http_500_not_json),
		cmocka_unit_test(test_reply_long_body_cut),
		cmocka_unit_test(test_reply_200_not_json),
		cmocka_unit_test(test_reply_empty_body),
		cmocka_unit_test(test_reply_truncated_json),
		cmocka_unit_test(test_session_id_normal),
		cmocka_unit_test(test_session_id_data_failure),
		cmocka_unit_test(test_session_id_missing),
		cmocka_unit_test(test_session_id_data_not_object),
		cmocka_unit_test(test_run_spec_reply),
		cmocka_unit_test(test_run_chunks_and_count),
		cmocka_unit_test(test_run_execution_count_snake),
		cmocka_unit_test(test_run_item_double_encoded),
		cmocka_unit_test(test_run_item_object),
		cmocka_unit_test(test_run_item_array_flattened),
		cmocka_unit_test(test_run_item_plain_text),
		cmocka_unit_test(test_run_rich_bundle),
		cmocka_unit_test(test_run_is_main_result_snake),
		cmocka_unit_test(test_run_execution_error),
		cmocka_unit_test(test_run_execution_error_without_is_error),
		cmocka_unit_test(test_run_execution_error_multiline),
		cmocka_unit_test(test_run_execution_error_not_named),
		cmocka_unit_test(test_run_is_error_traceback_in_stderr),
		cmocka_unit_test(test_run_is_error_without_details),
		cmocka_unit_test(test_run_traceback_in_stderr_is_error),
		cmocka_unit_test(test_run_printed_traceback_then_more_is_success),
		cmocka_unit_test(test_run_timeout),
		cmocka_unit_test(test_run_timeout_word_in_user_error),
		cmocka_unit_test(test_run_legacy_layout),
		cmocka_unit_test(test_run_legacy_layout_success),
		cmocka_unit_test(test_run_plain_text_content),
		cmocka_unit_test(test_run_plain_text_tool_error),
		cmocka_unit_test(test_run_content_bare_string),
		cmocka_unit_test(test_run_content_blob),
		cmocka_unit_test(test_run_data_result_content),
		cmocka_unit_test(test_run_data_as_string),
		cmocka_unit_test(test_run_no_tool_result),
		cmocka_unit_test(test_run_huge_stdout),
		cmocka_unit_test(test_error_text_name_value),
		cmocka_unit_test(test_error_text_name_alone),
		cmocka_unit_test(test_error_text_dotted_name),
		cmocka_unit_test(test_error_text_leading_blank_line),
		cmocka_unit_test(test_error_text_not_a_name),
	};
	return cmocka_run_group_tests_name("agentbay_proto", tests, NULL, NULL);
}
