/* agentbay_http: see agentbay_http.h */
#define _GNU_SOURCE
#include "agentbay_http.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agentbay_proto.h"

struct sink {
	char *buf;
	size_t len;
	size_t cap;
	size_t max;
	bool too_big;
	atomic_int *cancel;
};

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *ud)
{
	struct sink *s = ud;
	size_t n = size * nmemb;

	if (s->len + n > s->max) {
		s->too_big = true;
		return 0;
	}
	if (s->len + n + 1 > s->cap) {
		/* Grow geometrically: a big reply comes in many small pieces. */
		size_t cap = s->cap ? s->cap : 16384;
		while (cap < s->len + n + 1)
			cap *= 2;
		char *nb = realloc(s->buf, cap);
		if (!nb)
			return 0;
		s->buf = nb;
		s->cap = cap;
	}
	memcpy(s->buf + s->len, ptr, n);
	s->len += n;
	s->buf[s->len] = '\0';
	return n;
}

/* Keeps the request id the gateway puts in a header: a reply too big or
 * too broken to read still has one to quote. */
static size_t on_header(char *buf, size_t size, size_t nitems, void *ud)
{
	struct ab_http_reply *out = ud;
	size_t n = size * nitems;
	static const char name[] = "x-acs-request-id:";
	size_t nl = sizeof(name) - 1;

	if (n > nl && strncasecmp(buf, name, nl) == 0) {
		const char *v = buf + nl;
		size_t vl = n - nl;
		while (vl > 0 && (*v == ' ' || *v == '\t')) {
			v++;
			vl--;
		}
		while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n' || v[vl - 1] == ' '))
			vl--;
		if (vl >= sizeof(out->request_id))
			vl = sizeof(out->request_id) - 1;
		memcpy(out->request_id, v, vl);
		out->request_id[vl] = '\0';
	}
	return n;
}

static int on_progress(void *ud, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow)
{
	struct sink *s = ud;

	(void)dltotal;
	(void)dlnow;
	(void)ultotal;
	(void)ulnow;
	return s->cancel && atomic_load(s->cancel) ? 1 : 0;
}

int ab_http_global_init(void)
{
	return curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK ? 0 : -1;
}

void ab_http_global_cleanup(void)
{
	curl_global_cleanup();
}

static enum ab_http_outcome classify(CURLcode cc, const struct sink *s)
{
	switch (cc) {
	case CURLE_OK:
		return AB_HTTP_DONE;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
		return AB_HTTP_NO_CONNECT;
	case CURLE_OPERATION_TIMEDOUT:
		return AB_HTTP_TIMEOUT;
	case CURLE_ABORTED_BY_CALLBACK:
		return AB_HTTP_CANCELLED;
	case CURLE_WRITE_ERROR:
		return s->too_big ? AB_HTTP_TOO_BIG : AB_HTTP_ERROR;
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_RECV_ERROR:
	case CURLE_SEND_ERROR:
		return AB_HTTP_BROKEN;
	default:
		return AB_HTTP_ERROR;
	}
}

void ab_http_post(struct ab_http *h, const char *url, const char *action, const char *body,
		  long connect_timeout_ms, long total_timeout_ms, size_t max_reply, bool once,
		  atomic_int *cancel, struct ab_http_reply *out)
{
	struct sink s = { .max = max_reply, .cancel = cancel };
	struct curl_slist *hdrs = NULL;
	char hdr_action[128], errbuf[CURL_ERROR_SIZE] = "";
	CURL *c;
	CURLcode cc;

	memset(out, 0, sizeof(*out));
	if (!h->curl)
		h->curl = curl_easy_init();
	c = h->curl;
	if (!c) {
		out->outcome = AB_HTTP_ERROR;
		snprintf(out->error, sizeof(out->error), "cannot set up an HTTP client (libcurl)");
		return;
	}
	curl_easy_reset(c);
	snprintf(hdr_action, sizeof(hdr_action), "x-acs-action: %s", action);
	hdrs = curl_slist_append(hdrs, hdr_action);
	hdrs = curl_slist_append(hdrs, "x-acs-version: " AB_API_VERSION);
	hdrs = curl_slist_append(hdrs, "Content-Type: application/x-www-form-urlencoded");
	hdrs = curl_slist_append(hdrs, "Accept: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_POST, 1L);
	curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "agentbayfs/0.1 (libcurl) TeaDSL/2");
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, total_timeout_ms);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &s);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, &s);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
	curl_easy_setopt(c, CURLOPT_FRESH_CONNECT, once ? 1L : 0L);
	cc = curl_easy_perform(c);
	curl_slist_free_all(hdrs);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
	out->outcome = classify(cc, &s);
	if (cc == CURLE_OK) {
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
		out->body = s.buf ? s.buf : strdup("");
		out->len = s.len;
		return;
	}
	free(s.buf);
	if (out->outcome == AB_HTTP_TOO_BIG)
		snprintf(out->error, sizeof(out->error), "the reply was larger than %zu bytes", max_reply);
	else
		snprintf(out->error, sizeof(out->error), "%s", errbuf[0] ? errbuf : curl_easy_strerror(cc));
	/* A connection in an unknown state is not reused. */
	curl_easy_cleanup(c);
	h->curl = NULL;
}

void ab_http_reply_free(struct ab_http_reply *r)
{
	free(r->body);
	r->body = NULL;
}

void ab_http_close(struct ab_http *h)
{
	if (h->curl)
		curl_easy_cleanup(h->curl);
	h->curl = NULL;
}
