/* agentbay: see agentbay.h */
#define _GNU_SOURCE
#include "agentbay.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "agentbay_http.h"
#include "agentbay_proto.h"
#include "log.h"
#include "threads.h"

#define CREATE_ATTEMPTS 6
#define RELEASE_TIMEOUT_MS 10000

struct run_handle {
	struct lane *lane;
	struct run_handle *next;
	enum lang lang;
	char *script_name;
	char *code;
	size_t code_len;
	unsigned timeout_s;
	struct run_sink sink;
	void *ctx;
	atomic_int cancel;           /* enum cancel_reason, 0 while wanted */
};

struct lane {
	struct ab_backend *ab;
	struct lane *next;
	uint64_t ws_id;
	char *session_id;            /* the lane's thread only */
	struct ab_http http;         /* the lane's thread only */
	struct run_handle *head;     /* queued runs, under ab->lock */
	struct run_handle **tail;
	bool thread_running;         /* under ab->lock */
	bool release_requested;      /* under ab->lock */
};

struct ab_backend {
	struct backend base;
	char *api_key;
	char *base_url;
	char *endpoint;
	char *region_id;
	char *image;
	long timeout_ms;
	unsigned session_idle_s;
	size_t max_reply;
	pthread_mutex_t lock;
	pthread_cond_t wake;         /* lanes wait on it */
	pthread_cond_t idle;         /* destroy waits on it for threads to go */
	struct lane *lanes;
	unsigned threads;
	bool stopping;
};

/* ---- requests ---------------------------------------------------------- */

static void nonce(char out[33])
{
	unsigned char rnd[16];
	ssize_t n = getrandom(rnd, sizeof(rnd), 0);

	if (n != (ssize_t)sizeof(rnd)) {
		/* Not a secret, only unique: time and address will do. */
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		memcpy(rnd, &ts, sizeof(rnd) < sizeof(ts) ? sizeof(rnd) : sizeof(ts));
		rnd[15] ^= (unsigned char)(uintptr_t)out;
	}
	ab_nonce_hex(rnd, out);
}

/* One action: builds the request, posts it, reads the reply. The HTTP
 * outcome is in *http; R is filled when a reply came. */
static void call(struct lane *l, const char *action, const struct ab_param *body_params, size_t n,
		 long total_ms, bool once, atomic_int *cancel, struct ab_http_reply *http, struct ab_reply *r)
{
	struct ab_backend *ab = l->ab;
	char ts[32], nc[33];
	char *url, *body;

	memset(r, 0, sizeof(*r));
	ab_timestamp(time(NULL), ts, sizeof(ts));
	nonce(nc);
	url = ab_action_url(ab->base_url, action, ts, nc, NULL, 0);
	body = ab_form_encode(body_params, n);
	if (!url || !body) {
		memset(http, 0, sizeof(*http));
		http->outcome = AB_HTTP_ERROR;
		snprintf(http->error, sizeof(http->error), "out of memory");
	} else {
		ab_http_post(&l->http, url, action, body, ab->timeout_ms, total_ms, ab->max_reply, once, cancel, http);
	}
	if (body) {
		/* The key travels in the body: leave no copy in freed memory. */
		explicit_bzero(body, strlen(body));
		free(body);
	}
	free(url);
	if (http->outcome == AB_HTTP_DONE && ab_parse_reply(http->status, http->body, http->len, r) < 0) {
		ab_reply_free(r);
		http->outcome = AB_HTTP_ERROR;
		snprintf(http->error, sizeof(http->error), "out of memory");
	}
	/* The body had no request id: the header's will do. */
	if (http->outcome == AB_HTTP_DONE && r->request_id && !r->request_id[0] && http->request_id[0]) {
		char *id = strdup(http->request_id);
		if (id) {
			free(r->request_id);
			r->request_id = id;
		}
	}
}

static void fail(struct exec_result *res, enum run_state state, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));
static void fail(struct exec_result *res, enum run_state state, const char *name, const char *fmt, ...)
{
	char buf[2048];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	res->state = state;
	exec_result_set_error(res, name, buf, NULL);
}

/* "(HTTP 400, request id X)": where the service said no. */
static void where(const struct ab_reply *r, char *buf, size_t sz)
{
	snprintf(buf, sz, "HTTP %ld%s%s", r->http_status, r->request_id[0] ? ", request id " : "", r->request_id);
}

/* Why the gateway refused, with what to do about it. */
static void refused(struct ab_backend *ab, const struct ab_reply *r, const char *what, bool may_have_run,
		    struct exec_result *res)
{
	char w[160];
	const char *code = r->code[0] ? r->code : "no code";

	where(r, w, sizeof(w));
	if (strcmp(r->code, "NOT_LOGIN") == 0)
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: the service refused the API key (NOT_LOGIN: %s; %s). Check AGENTBAY_API_KEY, and that "
		     "AGENTBAY_ENDPOINT (%s) is the gateway of the key's region: keys from China mainland work "
		     "with wuyingai.cn-shanghai.aliyuncs.com, international ones with "
		     "wuyingai.ap-southeast-1.aliyuncs.com", what, r->message, w, ab->endpoint);
	else if (r->throttled)
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: the service is throttling requests (%s: %s; %s). The code did not run: save again in a moment",
		     what, code, r->message, w);
	else if (r->http_status >= 500)
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: the service failed (%s: %s; %s). %s", what, code, r->message, w,
		     may_have_run ? "The code may or may not have run: save again to rerun it"
				  : "Save again to retry");
	else if (r->malformed)
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: the service sent a reply that is not JSON (%s: \"%s\"). %s", what, w, r->message,
		     may_have_run ? "The code may have run: save again to rerun it" : "Save again to retry");
	else
		fail(res, RS_FAILED, "AgentBayError", "%s: the service refused (%s: %s; %s)%s", what, code,
		     r->message, w, may_have_run ? ". The code may have run" : "");
}

/* A transfer that did not end in a reply. */
static void transport_failed(struct ab_backend *ab, const struct ab_http_reply *h, const char *what,
			     unsigned timeout_s, bool may_have_run, struct exec_result *res)
{
	char idbuf[120] = "";

	if (h->request_id[0])
		snprintf(idbuf, sizeof(idbuf), " (request id %s)", h->request_id);
	switch (h->outcome) {
	case AB_HTTP_CANCELLED:
		res->state = RS_CANCELLED;
		return;
	case AB_HTTP_NO_CONNECT:
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: cannot reach AgentBay at %s (%s). The code did not run: check AGENTBAY_ENDPOINT and "
		     "the network, then save again", what, ab->endpoint, h->error);
		return;
	case AB_HTTP_TIMEOUT:
		if (may_have_run)
			fail(res, RS_TIMED_OUT, "TimeoutError",
			     "%s: no answer from AgentBay within the time limit (%u s for the run; %s). The code may "
			     "still be running in this directory's session", what, timeout_s, h->error);
		else
			fail(res, RS_FAILED, "AgentBayError", "%s: no answer from AgentBay at %s (%s); save again to retry",
			     what, ab->endpoint, h->error);
		return;
	case AB_HTTP_BROKEN:
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: the connection broke before the whole reply came (%s)%s. %s", what, h->error, idbuf,
		     may_have_run ? "The code may have run: save again to rerun it" : "Save again to retry");
		return;
	case AB_HTTP_TOO_BIG:
		fail(res, RS_FAILED, "AgentBayError",
		     "%s: %s, so it was dropped%s. %s", what, h->error, idbuf,
		     may_have_run ? "The code ran, but its output is lost" : "Save again to retry");
		return;
	default:
		fail(res, RS_FAILED, "AgentBayError", "%s: %s", what, h->error);
		return;
	}
}

/* Sleeps MS unless the run is cancelled first. */
static bool nap(struct run_handle *r, long ms)
{
	while (ms > 0) {
		if (atomic_load(&r->cancel))
			return false;
		long step = ms < 50 ? ms : 50;
		struct timespec ts = { .tv_sec = 0, .tv_nsec = step * 1000000L };
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return !atomic_load(&r->cancel);
}

/* CreateMcpSession for the lane; throttling is retried with backoff. */
static int create_session(struct lane *l, struct run_handle *r, struct exec_result *res)
{
	struct ab_backend *ab = l->ab;
	char auth[1024], err[256];
	long delay = 500;

	snprintf(auth, sizeof(auth), "Bearer %s", ab->api_key);
	struct ab_param p[] = {
		{ "Authorization", auth },
		{ "ImageId", ab->image },
		{ "LoginRegionId", ab->region_id },
	};
	for (int attempt = 1;; attempt++) {
		struct ab_http_reply h;
		struct ab_reply rep;
		call(l, "CreateMcpSession", p, 3, ab->timeout_ms, false, &r->cancel, &h, &rep);
		if (h.outcome != AB_HTTP_DONE) {
			transport_failed(ab, &h, "cannot create an AgentBay session", r->timeout_s, false, res);
			ab_http_reply_free(&h);
			break;
		}
		ab_http_reply_free(&h);
		if (rep.ok) {
			l->session_id = ab_parse_session_id(&rep, err, sizeof(err));
			if (!l->session_id) {
				char w[160];
				where(&rep, w, sizeof(w));
				fail(res, RS_FAILED, "AgentBayError", "cannot create an AgentBay session: %s (%s)", err, w);
			}
			ab_reply_free(&rep);
			break;
		}
		if (rep.throttled && attempt < CREATE_ATTEMPTS) {
			ab_reply_free(&rep);
			if (!nap(r, delay)) {
				res->state = RS_CANCELLED;
				break;
			}
			delay *= 2;
			continue;
		}
		refused(ab, &rep, "cannot create an AgentBay session", false, res);
		ab_reply_free(&rep);
		break;
	}
	explicit_bzero(auth, sizeof(auth));
	return l->session_id ? 0 : -1;
}

static void release_session(struct lane *l)
{
	struct ab_backend *ab = l->ab;
	char auth[1024];
	struct ab_http_reply h;
	struct ab_reply rep;

	if (!l->session_id)
		return;
	snprintf(auth, sizeof(auth), "Bearer %s", ab->api_key);
	struct ab_param p[] = { { "Authorization", auth }, { "SessionId", l->session_id } };
	long t = ab->timeout_ms < RELEASE_TIMEOUT_MS ? ab->timeout_ms : RELEASE_TIMEOUT_MS;
	call(l, "ReleaseMcpSession", p, 2, t, false, NULL, &h, &rep);
	explicit_bzero(auth, sizeof(auth));
	if (h.outcome != AB_HTTP_DONE)
		log_warn("could not release AgentBay session %s: %s; the service ends it after its idle time",
			 l->session_id, h.error);
	else if (!rep.ok && !rep.session_gone)
		log_warn("could not release AgentBay session %s: %s %s (HTTP %ld); the service ends it after its "
			 "idle time", l->session_id, rep.code, rep.message, rep.http_status);
	ab_http_reply_free(&h);
	ab_reply_free(&rep);
	free(l->session_id);
	l->session_id = NULL;
}

enum call_outcome { CALL_DONE, CALL_SESSION_GONE };

static enum call_outcome run_code(struct lane *l, struct run_handle *r, const char *args,
				  struct exec_result *res, struct ab_output *out)
{
	struct ab_backend *ab = l->ab;
	char auth[1024], err[256], w[160];
	struct ab_http_reply h;
	struct ab_reply rep;
	long total = (long)r->timeout_s * 1000 + 5000;
	enum call_outcome oc = CALL_DONE;

	if (total < ab->timeout_ms)
		total = ab->timeout_ms;
	snprintf(auth, sizeof(auth), "Bearer %s", ab->api_key);
	struct ab_param p[] = {
		{ "Authorization", auth }, { "SessionId", l->session_id }, { "Name", "run_code" },
		{ "Args", args },          { "AutoGenSession", "false" },  { "Server", "" },
	};
	call(l, "CallMcpTool", p, 6, total, true, &r->cancel, &h, &rep);
	explicit_bzero(auth, sizeof(auth));
	if (h.outcome != AB_HTTP_DONE) {
		transport_failed(ab, &h, "run_code failed", r->timeout_s, true, res);
		goto out;
	}
	where(&rep, w, sizeof(w));
	if (rep.session_gone) {
		oc = CALL_SESSION_GONE;
		goto out;
	}
	if (!rep.ok) {
		if (rep.http_status == 504)
			fail(res, RS_TIMED_OUT, "TimeoutError",
			     "the AgentBay gateway gave up on the run (%s: %s; %s). The run may have passed the "
			     "time limit of %u s", rep.code[0] ? rep.code : "no code", rep.message, w, r->timeout_s);
		else
			refused(ab, &rep, "run_code failed", true, res);
		goto out;
	}
	int rc = ab_parse_run_code(&rep, res, out, err, sizeof(err));
	if (rc == -EINVAL) {
		fail(res, RS_FAILED, "AgentBayError", "run_code failed: %s (%s). The code may have run", err, w);
	} else if (rc < 0) {
		fail(res, RS_FAILED, "AgentBayError", "run_code failed: out of memory reading the reply (%s)", w);
	} else if (res->has_error && strcmp(res->error.name, "ToolError") == 0 &&
		   strcasestr(res->error.value, "not found")) {
		char *v = NULL;
		bool code_image = strcmp(ab->image, "code_latest") == 0;
		if (asprintf(&v, "%s (%s): %s", res->error.value, w,
			     code_image ? "the service reports no run_code tool even in a code_latest session; "
					  "save again, and check the service's status if it persists"
					: "the session's image has no run_code tool; mount with -o image=code_latest") >= 0) {
			exec_result_set_error(res, "AgentBayError", v, NULL);
			free(v);
		}
	} else if (res->state == RS_SUCCEEDED) {
		res->exit_code = 0;
	}
out:
	ab_http_reply_free(&h);
	ab_reply_free(&rep);
	return oc;
}

/* Blanks out the key wherever a reply echoed it back. */
static void redact(char *s, size_t len, const char *key)
{
	size_t kl = strlen(key);

	if (!s || kl < 4)
		return;
	for (char *p = memmem(s, len, key, kl); p; p = memmem(p, len - (size_t)(p - s), key, kl))
		memset(p, '*', kl);
}

static void deliver(struct run_handle *r, struct exec_result *res, struct ab_output *out)
{
	const char *key = r->lane->ab->api_key;

	redact(out->out, out->out_len, key);
	redact(out->err, out->err_len, key);
	if (res->has_error) {
		redact(res->error.value, res->error.value ? strlen(res->error.value) : 0, key);
		redact(res->error.traceback, res->error.traceback ? strlen(res->error.traceback) : 0, key);
	}
	if (out->out_len)
		r->sink.out(r->ctx, 1, out->out, out->out_len);
	if (out->err_len)
		r->sink.out(r->ctx, 2, out->err, out->err_len);
	r->sink.end(r->ctx, res);
}

static void free_run(struct run_handle *r)
{
	free(r->script_name);
	free(r->code);
	free(r);
}

static void process(struct lane *l, struct run_handle *r)
{
	struct exec_result res;
	struct ab_output out = { 0 };
	char *args = NULL;

	exec_result_init(&res);
	if (atomic_load(&r->cancel)) {
		res.state = RS_CANCELLED;
		goto end;
	}
	r->sink.started(r->ctx);
	args = ab_run_code_args(r->code, r->code_len, r->lang == LANG_PYTHON ? "python" : "javascript", r->timeout_s);
	if (!args) {
		fail(&res, RS_FAILED, "AgentBayError", "out of memory");
		goto end;
	}
	if (strlen(args) > AB_MAX_ARGS_BYTES) {
		fail(&res, RS_FAILED, "CodeTooLarge",
		     "%s is %zu bytes once encoded, more than the %d that AgentBay's run_code takes in one call "
		     "(its gateway's message limit); it was not sent. Split it, or mount with -o backend=local",
		     r->script_name, strlen(args), AB_MAX_ARGS_BYTES);
		goto end;
	}
	for (int attempt = 0; attempt < 2; attempt++) {
		if (!l->session_id && create_session(l, r, &res) < 0)
			goto end;
		/* A session the service no longer knows: the code did not run,
		 * so one retry in a new session is safe. */
		if (run_code(l, r, args, &res, &out) != CALL_SESSION_GONE)
			goto end;
		free(l->session_id);
		l->session_id = NULL;
		ab_output_free(&out);
		exec_result_free(&res);
	}
	fail(&res, RS_FAILED, "AgentBayError",
	     "run_code failed: the service lost the session twice in a row (InvalidMcpSession.NotFound); "
	     "the code did not run. Save again to retry");
end:
	if (atomic_load(&r->cancel) && res.state != RS_CANCELLED && !run_state_final(res.state))
		res.state = RS_CANCELLED;
	if (args) {
		explicit_bzero(args, strlen(args));
		free(args);
	}
	deliver(r, &res, &out);
	ab_output_free(&out);
	exec_result_free(&res);
	free_run(r);
}

/* ---- lanes ------------------------------------------------------------- */

static void deadline_after(struct timespec *ts, unsigned secs)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_sec += secs;
}

static void *lane_main(void *arg)
{
	struct lane *l = arg;
	struct ab_backend *ab = l->ab;
	struct timespec idle_until;

	deadline_after(&idle_until, ab->session_idle_s);
	pthread_mutex_lock(&ab->lock);
	for (;;) {
		if (l->head) {
			struct run_handle *r = l->head;
			l->head = r->next;
			if (!l->head)
				l->tail = &l->head;
			if (ab->stopping)
				atomic_store(&r->cancel, CANCEL_SHUTDOWN);
			pthread_mutex_unlock(&ab->lock);
			process(l, r);
			pthread_mutex_lock(&ab->lock);
			deadline_after(&idle_until, ab->session_idle_s);
			continue;
		}
		if (ab->stopping || l->release_requested || !l->session_id) {
			pthread_mutex_unlock(&ab->lock);
			release_session(l);
			pthread_mutex_lock(&ab->lock);
			if (l->head && !ab->stopping)
				continue;  /* a run came meanwhile: it needs a session again */
			break;
		}
		int rc = pthread_cond_timedwait(&ab->wake, &ab->lock, &idle_until);
		if (rc == ETIMEDOUT && !l->head) {
			pthread_mutex_unlock(&ab->lock);
			release_session(l);
			pthread_mutex_lock(&ab->lock);
		}
	}
	/* Leaving: the lane goes with its thread. */
	ab_http_close(&l->http);
	for (struct lane **pp = &ab->lanes; *pp; pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			break;
		}
	free(l);
	ab->threads--;
	pthread_cond_broadcast(&ab->idle);
	pthread_mutex_unlock(&ab->lock);
	return NULL;
}

static struct lane *lane_for(struct ab_backend *ab, uint64_t ws_id)
{
	struct lane *l;

	for (l = ab->lanes; l; l = l->next)
		if (l->ws_id == ws_id && !l->release_requested)
			return l;
	l = calloc(1, sizeof(*l));
	if (!l)
		return NULL;
	l->ab = ab;
	l->ws_id = ws_id;
	l->tail = &l->head;
	l->next = ab->lanes;
	ab->lanes = l;
	return l;
}

/* ---- the backend ------------------------------------------------------- */

static int ab_start(struct backend *b, const struct run_request *req, const struct run_sink *sink, void *ctx,
		    struct run_handle **handle)
{
	struct ab_backend *ab = (struct ab_backend *)b;
	struct run_handle *r = calloc(1, sizeof(*r));
	int rc = 0;

	if (!r)
		return -ENOMEM;
	r->lang = req->lang;
	r->script_name = strdup(req->script_name);
	r->code = malloc(req->code_len + 1);
	if (!r->script_name || !r->code) {
		free_run(r);
		return -ENOMEM;
	}
	memcpy(r->code, req->code, req->code_len);
	r->code[req->code_len] = '\0';
	r->code_len = req->code_len;
	r->timeout_s = req->timeout_s > AB_MAX_TIMEOUT_S ? AB_MAX_TIMEOUT_S : req->timeout_s;
	r->sink = *sink;
	r->ctx = ctx;
	atomic_init(&r->cancel, 0);

	pthread_mutex_lock(&ab->lock);
	struct lane *l = ab->stopping ? NULL : lane_for(ab, req->workspace_id);
	if (!l) {
		rc = ab->stopping ? -ESHUTDOWN : -ENOMEM;
		goto unlock;
	}
	if (!l->thread_running) {
		pthread_t t;
		pthread_attr_t attr;
		pthread_attr_init(&attr);
		pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
		rc = -thread_start(&t, &attr, lane_main, l);
		pthread_attr_destroy(&attr);
		if (rc < 0)
			goto unlock;
		l->thread_running = true;
		ab->threads++;
	}
	r->lane = l;
	*l->tail = r;
	l->tail = &r->next;
	*handle = r;
	pthread_cond_broadcast(&ab->wake);
unlock:
	pthread_mutex_unlock(&ab->lock);
	if (rc < 0)
		free_run(r);
	return rc;
}

static void ab_cancel(struct backend *b, struct run_handle *r, enum cancel_reason why)
{
	struct ab_backend *ab = (struct ab_backend *)b;
	int none = 0;

	atomic_compare_exchange_strong(&r->cancel, &none, (int)why);
	pthread_mutex_lock(&ab->lock);
	pthread_cond_broadcast(&ab->wake);
	pthread_mutex_unlock(&ab->lock);
}

static void ab_release_workspace(struct backend *b, uint64_t ws_id)
{
	struct ab_backend *ab = (struct ab_backend *)b;

	pthread_mutex_lock(&ab->lock);
	for (struct lane *l = ab->lanes; l; l = l->next)
		if (l->ws_id == ws_id)
			l->release_requested = true;
	pthread_cond_broadcast(&ab->wake);
	pthread_mutex_unlock(&ab->lock);
}

static void free_backend(struct ab_backend *ab)
{
	if (ab->api_key) {
		explicit_bzero(ab->api_key, strlen(ab->api_key));
		free(ab->api_key);
	}
	free(ab->base_url);
	free(ab->endpoint);
	free(ab->region_id);
	free(ab->image);
	free(ab);
}

static void ab_destroy(struct backend *b)
{
	struct ab_backend *ab = (struct ab_backend *)b;

	pthread_mutex_lock(&ab->lock);
	ab->stopping = true;
	pthread_cond_broadcast(&ab->wake);
	while (ab->threads > 0)
		pthread_cond_wait(&ab->idle, &ab->lock);
	pthread_mutex_unlock(&ab->lock);
	pthread_mutex_destroy(&ab->lock);
	pthread_cond_destroy(&ab->wake);
	pthread_cond_destroy(&ab->idle);
	free_backend(ab);
}

static const struct backend_ops ab_ops = {
	.name = "agentbay",
	.reports_start = true,
	.start = ab_start,
	.cancel = ab_cancel,
	.release_workspace = ab_release_workspace,
	.destroy = ab_destroy,
};

struct backend *agentbay_backend_new(const struct ab_config *cfg, char *err, size_t errsz)
{
	struct ab_backend *ab = calloc(1, sizeof(*ab));
	pthread_condattr_t ca;

	if (!ab) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	ab->base.ops = &ab_ops;
	ab->api_key = strdup(cfg->api_key ? cfg->api_key : "");
	ab->base_url = strdup(cfg->base_url ? cfg->base_url : "");
	ab->endpoint = strdup(cfg->endpoint ? cfg->endpoint : AB_DEFAULT_ENDPOINT);
	ab->region_id = cfg->region_id && *cfg->region_id ? strdup(cfg->region_id) : NULL;
	ab->image = strdup(cfg->image ? cfg->image : "code_latest");
	ab->timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 60000;
	ab->session_idle_s = cfg->session_idle_s ? cfg->session_idle_s : 600;
	ab->max_reply = cfg->max_reply ? cfg->max_reply : (32u << 20);
	if (!ab->api_key || !ab->base_url || !ab->endpoint || !ab->image ||
	    (cfg->region_id && *cfg->region_id && !ab->region_id)) {
		snprintf(err, errsz, "out of memory");
		free_backend(ab);
		return NULL;
	}
	pthread_mutex_init(&ab->lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ab->wake, &ca);
	pthread_condattr_destroy(&ca);
	pthread_cond_init(&ab->idle, NULL);
	return &ab->base;
}
