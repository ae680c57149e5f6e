/* Fuzz target: what goes on the wire (agentbay_proto.h): percent-encoding,
 * form bodies, the base URL from AGENTBAY_ENDPOINT, action URLs and the
 * run_code Args JSON.
 *
 * Input: the whole input is what ab_url_encode and ab_run_code_args get.
 * Cut at its NUL bytes, its pieces p0, p1, ... are C strings: p0 is the
 * endpoint for ab_base_url; p1 the action and the language, p2 the
 * timestamp, p3 the nonce, and p4... the extra query parameters (key,
 * value) of ab_action_url; all pieces, as (key, value) pairs, make the form
 * of ab_form_encode (a value of a lone 0xFF byte, or a key without a value,
 * stands for NULL). The first bytes also give the timeout and the time for
 * ab_timestamp. */
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "agentbay_proto.h"
#include "fuzz_util.h"
#include "status.h"

#define MAX_PIECES 40
#define MAX_PAIRS (MAX_PIECES / 2)

static int hexval(char c)
{
	static const char hex[] = "0123456789ABCDEF";
	const char *p = c ? strchr(hex, c) : NULL;

	return p ? (int)(p - hex) : -1;
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '-' || c == '_' || c == '.' || c == '~';
}

/* Decodes ENC[0..LEN), which must be what ab_url_encode writes (unreserved
 * characters and %XX with uppercase hex, nothing else). malloc'd; *OUT_LEN
 * is set. */
static char *url_decode(const char *enc, size_t len, size_t *out_len)
{
	char *out = malloc(len + 1);
	size_t n = 0;

	FUZZ_CHECK(out != NULL);
	for (size_t i = 0; i < len; i++) {
		if (enc[i] == '%') {
			FUZZ_CHECK(i + 2 < len);
			int hi = hexval(enc[i + 1]), lo = hexval(enc[i + 2]);
			FUZZ_CHECK(hi >= 0 && lo >= 0);
			unsigned char c = (unsigned char)(hi << 4 | lo);
			/* Unreserved characters are never escaped. */
			FUZZ_CHECK(!unreserved(c));
			out[n++] = (char)c;
			i += 2;
		} else {
			FUZZ_CHECK(unreserved((unsigned char)enc[i]));
			out[n++] = enc[i];
		}
	}
	out[n] = '\0';
	*out_len = n;
	return out;
}

static void check_url_encode(const uint8_t *data, size_t size)
{
	char *enc = ab_url_encode((const char *)data, size), *dec;
	size_t enc_len, dec_len, expect = 0;

	FUZZ_CHECK(enc != NULL);
	enc_len = strlen(enc);
	for (size_t i = 0; i < size; i++)
		expect += unreserved(data[i]) ? 1 : 3;
	FUZZ_CHECK(enc_len == expect);
	dec = url_decode(enc, enc_len, &dec_len);
	FUZZ_CHECK(dec_len == size && (size == 0 || memcmp(dec, data, size) == 0));
	free(dec);
	free(enc);
}

/* FORM (or a query) must be the pairs of P with a value, in order, each
 * "key=value" percent-encoded, joined with '&'. */
static void check_form(const char *form, const struct ab_param *p, size_t n)
{
	const char *at = form;
	size_t seen = 0;

	for (size_t i = 0; i < n; i++) {
		if (!p[i].value)
			continue;
		if (seen++ > 0) {
			FUZZ_CHECK(*at == '&');
			at++;
		}
		size_t len = strcspn(at, "&");
		const char *eq = memchr(at, '=', len);
		FUZZ_CHECK(eq != NULL);
		FUZZ_CHECK(memchr(eq + 1, '=', len - (size_t)(eq + 1 - at)) == NULL);
		size_t kl, vl;
		char *k = url_decode(at, (size_t)(eq - at), &kl);
		char *v = url_decode(eq + 1, len - (size_t)(eq + 1 - at), &vl);
		FUZZ_CHECK(kl == strlen(p[i].key) && memcmp(k, p[i].key, kl) == 0);
		FUZZ_CHECK(vl == strlen(p[i].value) && memcmp(v, p[i].value, vl) == 0);
		free(k);
		free(v);
		at += len;
	}
	FUZZ_CHECK(*at == '\0');
}

/* Trimmed as ab_base_url documents it: leading blanks, trailing blanks and
 * slashes go. */
static void trimmed(const char *s, const char **start, size_t *len)
{
	size_t n;

	while (isspace((unsigned char)*s))
		s++;
	n = strlen(s);
	while (n > 0 && (isspace((unsigned char)s[n - 1]) || s[n - 1] == '/'))
		n--;
	*start = s;
	*len = n;
}

/* Returns the base URL (malloc'd) when ENDPOINT is accepted, else NULL. */
static char *check_base_url(const char *endpoint, size_t small)
{
	size_t big_sz = strlen(endpoint) + 16;
	char *big = malloc(big_sz), *little = malloc(small);
	int rc_big, rc_small;

	FUZZ_CHECK(big && little);
	rc_big = ab_base_url(endpoint, big, big_sz);
	rc_small = ab_base_url(endpoint, little, small);
	FUZZ_CHECK(rc_big == 0 || rc_big == -EINVAL);
	FUZZ_CHECK(rc_small == 0 || rc_small == -EINVAL);
	if (rc_small == 0)
		FUZZ_CHECK(rc_big == 0 && strcmp(little, big) == 0);
	free(little);
	if (rc_big != 0) {
		free(big);
		return NULL;
	}
	if (strlen(big) < small)
		FUZZ_CHECK(rc_small == 0);

	size_t len = strlen(big), scheme = 0;
	FUZZ_CHECK(len < big_sz);
	if (strncmp(big, "https://", 8) == 0)
		scheme = 8;
	else if (strncmp(big, "http://", 7) == 0)
		scheme = 7;
	FUZZ_CHECK(scheme > 0);  /* http:// or https:// */
	FUZZ_CHECK(len > scheme && big[scheme] != '/' && big[len - 1] != '/');
	for (size_t i = 0; i < len; i++)
		FUZZ_CHECK(isgraph((unsigned char)big[i]));

	/* It is the endpoint, trimmed, with "https://" before a bare host. */
	const char *t;
	size_t tl;
	trimmed(endpoint, &t, &tl);
	bool url = (tl >= 7 && strncmp(t, "http://", 7) == 0) || (tl >= 8 && strncmp(t, "https://", 8) == 0);
	size_t prefix = url ? 0 : 8;
	FUZZ_CHECK(len == prefix + tl && memcmp(big + prefix, t, tl) == 0);
	if (!url)
		FUZZ_CHECK(strncmp(big, "https://", 8) == 0);
	return big;
}

static void check_action_url(const char *base, const char *action, const char *ts, const char *nonce,
			     const struct ab_param *extra, size_t n_extra)
{
	char *url = ab_action_url(base, action, ts, nonce, extra, n_extra);
	struct ab_param q[5 + MAX_PAIRS];
	size_t n = 0, bl = strlen(base);

	if (n_extra > 11) {
		FUZZ_CHECK(url == NULL);
		return;
	}
	FUZZ_CHECK(url != NULL);
	FUZZ_CHECK(strncmp(url, base, bl) == 0 && url[bl] == '/' && url[bl + 1] == '?');
	q[n++] = (struct ab_param){ "Action", action };
	q[n++] = (struct ab_param){ "Format", "json" };
	q[n++] = (struct ab_param){ "Version", AB_API_VERSION };
	q[n++] = (struct ab_param){ "Timestamp", ts };
	q[n++] = (struct ab_param){ "SignatureNonce", nonce };
	for (size_t i = 0; i < n_extra; i++)
		q[n++] = extra[i];
	check_form(url + bl + 2, q, n);
	free(url);
}

static void check_run_code_args(const uint8_t *data, size_t size, const char *language, unsigned timeout)
{
	char *text = ab_run_code_args((const char *)data, size, language, timeout);
	cJSON *o;

	FUZZ_CHECK(text != NULL);
	o = cJSON_Parse(text);
	FUZZ_CHECK(cJSON_IsObject(o));
	const cJSON *code = cJSON_GetObjectItemCaseSensitive(o, "code");
	const cJSON *lang = cJSON_GetObjectItemCaseSensitive(o, "language");
	const cJSON *to = cJSON_GetObjectItemCaseSensitive(o, "timeout_s");
	FUZZ_CHECK(cJSON_IsString(code) && cJSON_IsString(lang) && cJSON_IsNumber(to));
	FUZZ_CHECK(to->valuedouble == (double)timeout);
	if (!memchr(data, '\0', size) && fuzz_valid_utf8(data, size))
		FUZZ_CHECK(strlen(code->valuestring) == size &&
			   (size == 0 || memcmp(code->valuestring, data, size) == 0));
	if (fuzz_valid_utf8((const unsigned char *)language, strlen(language)))
		FUZZ_CHECK(strcmp(lang->valuestring, language) == 0);
	cJSON_Delete(o);
	free(text);
}

/* ab_timestamp for a time T in years 1970..9999, read back with
 * parse_rfc3339 (status.h), which accepts the form without a fraction. */
static void check_timestamp(uint64_t bits)
{
	time_t t = (time_t)(bits % 253402300800ULL);
	char buf[32];

	memset(buf, 'x', sizeof(buf));
	ab_timestamp(t, buf, sizeof(buf));
	FUZZ_CHECK(strlen(buf) == 20 && buf[4] == '-' && buf[10] == 'T' && buf[19] == 'Z');
	FUZZ_CHECK(parse_rfc3339(buf) == (int64_t)t * 1000);
}

static void check_nonce(const uint8_t *data, size_t size)
{
	unsigned char rnd[16] = { 0 };
	char out[33];

	memcpy(rnd, data, size < 16 ? size : 16);
	memset(out, 'x', sizeof(out));
	ab_nonce_hex(rnd, out);
	FUZZ_CHECK(out[32] == '\0' && strlen(out) == 32);
	for (int i = 0; i < 32; i++)
		FUZZ_CHECK(strchr("0123456789abcdef", out[i]) != NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = fuzz_strndup0(data, size);
	const char *piece[MAX_PIECES];
	size_t n_pieces = 0;
	struct ab_param form[MAX_PAIRS];
	size_t n_form = 0;
	uint64_t bits = 0;

	/* The NUL-separated pieces (the copy's final NUL ends the last one). */
	for (size_t at = 0; at <= size && n_pieces < MAX_PIECES;) {
		piece[n_pieces++] = copy + at;
		at += strlen(copy + at) + 1;
	}
	for (size_t i = 0; i < 8 && i < size; i++)
		bits = bits << 8 | data[i];

	check_url_encode(data, size);

	for (size_t i = 0; i < n_pieces; i += 2) {
		const char *v = i + 1 < n_pieces ? piece[i + 1] : NULL;
		if (v && strcmp(v, "\xff") == 0)
			v = NULL;
		form[n_form++] = (struct ab_param){ piece[i], v };
	}
	char *body = ab_form_encode(form, n_form);
	FUZZ_CHECK(body != NULL);
	check_form(body, form, n_form);
	free(body);

	char *base = check_base_url(piece[0], 1 + (size_t)(bits % 48));
	char none[8];
	FUZZ_CHECK(ab_base_url(NULL, none, sizeof(none)) == -EINVAL);
	const char *action = n_pieces > 1 ? piece[1] : "CallMcpTool";
	const char *ts = n_pieces > 2 ? piece[2] : "2026-01-29T09:21:48Z";
	const char *nonce = n_pieces > 3 ? piece[3] : "6a1f0c2e9b7d4e3f8a5b2c1d0e9f8a7b";
	size_t n_extra = 0;
	struct ab_param extra[MAX_PAIRS];
	for (size_t i = 4; i < n_pieces; i += 2)
		extra[n_extra++] = (struct ab_param){ piece[i], i + 1 < n_pieces ? piece[i + 1] : NULL };
	check_action_url(base ? base : piece[0], action, ts, nonce, extra, n_extra);
	free(base);

	check_run_code_args(data, size, n_pieces > 1 ? piece[1] : "python", (unsigned)(bits >> 32));
	check_timestamp(bits);
	check_nonce(data, size);

	free(copy);
	return 0;
}
