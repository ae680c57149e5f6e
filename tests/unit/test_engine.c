/* Unit tests for engine.h: the save -> run machine and the result files it
 * keeps in a temporary store, driven through a fake backend.
 *
 * The fake backend records every start (copying the request) and every
 * cancel, and never produces events by itself: the tests deliver output and
 * end events by calling the recorded sink, without the engine lock, as a
 * real backend thread would. Engine functions are called with the lock held,
 * as engine.h requires.
 *
 * A full store is faked by this executable's own write() and pwrite(), which
 * take the place of libc's for the engine linked into it: see "a full store".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cmocka.h>

#include "backend.h"
#include "engine.h"
#include "names.h"
#include "result.h"
#include "status.h"

/* ---- the fake backend --------------------------------------------------- */

#define MAX_RUNS 16

struct run_handle {
	size_t idx;
};

struct fake_run {
	char *code;
	size_t code_len;
	char *script;
	char *workspace;
	enum lang lang;
	unsigned timeout_s;
	const struct run_sink *sink;
	void *ctx;
	struct run_handle *handle;
	int n_cancel;
	enum cancel_reason why;
	bool ended;
};

struct fake_backend {
	struct backend base;
	pthread_mutex_t lock;
	pthread_cond_t cond;     /* signalled on every cancel */
	struct fake_run runs[MAX_RUNS];
	size_t n;
	int start_calls;
	int start_rc;            /* < 0: start fails with it */
};

static char *dup_mem(const char *p, size_t n)
{
	char *d = malloc(n + 1);
	assert_non_null(d);
	memcpy(d, p, n);
	d[n] = '\0';
	return d;
}

static int fake_start(struct backend *b, const struct run_request *req, const struct run_sink *sink,
		      void *ctx, struct run_handle **handle)
{
	struct fake_backend *fb = (struct fake_backend *)b;
	struct fake_run *r;

	pthread_mutex_lock(&fb->lock);
	fb->start_calls++;
	if (fb->start_rc < 0) {
		pthread_mutex_unlock(&fb->lock);
		return fb->start_rc;
	}
	assert_true(fb->n < MAX_RUNS);
	r = &fb->runs[fb->n];
	memset(r, 0, sizeof(*r));
	r->code = dup_mem(req->code, req->code_len);
	r->code_len = req->code_len;
	r->script = strdup(req->script_name);
	r->workspace = strdup(req->workspace);
	r->lang = req->lang;
	r->timeout_s = req->timeout_s;
	r->sink = sink;
	r->ctx = ctx;
	r->handle = calloc(1, sizeof(*r->handle));
	assert_non_null(r->handle);
	r->handle->idx = fb->n;
	*handle = r->handle;
	fb->n++;
	pthread_mutex_unlock(&fb->lock);
	return 0;
}

static void fake_cancel(struct backend *b, struct run_handle *h, enum cancel_reason why)
{
	struct fake_backend *fb = (struct fake_backend *)b;

	pthread_mutex_lock(&fb->lock);
	assert_true(h->idx < fb->n);
	assert_false(fb->runs[h->idx].ended);
	fb->runs[h->idx].n_cancel++;
	fb->runs[h->idx].why = why;
	pthread_cond_broadcast(&fb->cond);
	pthread_mutex_unlock(&fb->lock);
}

static void fake_destroy(struct backend *b)
{
	(void)b;
}

static const struct backend_ops fake_ops = {
	.name = "fake",
	.start = fake_start,
	.cancel = fake_cancel,
	.destroy = fake_destroy,
};

/* ---- a full store ------------------------------------------------------- */

/* While set, the store's meta folder at this path is full, as a tmpfs is: a
 * write that needs a page the file does not have yet fails with ENOSPC, a
 * write into the pages it has succeeds. Everything else writes as usual. */
static char full_meta[128];

/* True when a write of LEN bytes to FD (at OFF, or at the fd's offset when
 * OFF < 0) needs space the full store does not have. */
static bool no_room(int fd, size_t len, off_t off)
{
	char proc[64], path[PATH_MAX];
	struct stat st;
	ssize_t n;

	if (!full_meta[0] || len == 0)
		return false;
	snprintf(proc, sizeof(proc), "/proc/self/fd/%d", fd);
	n = readlink(proc, path, sizeof(path) - 1);
	if (n < 0)
		return false;
	path[n] = '\0';
	if (strncmp(path, full_meta, strlen(full_meta)) != 0 || fstat(fd, &st) < 0)
		return false;
	if (off < 0)
		off = (fcntl(fd, F_GETFL) & O_APPEND) ? st.st_size : lseek(fd, 0, SEEK_CUR);
	return off + (off_t)len > (st.st_size + 4095) / 4096 * 4096;
}

ssize_t write(int fd, const void *buf, size_t len)
{
	if (no_room(fd, len, -1)) {
		errno = ENOSPC;
		return -1;
	}
	return syscall(SYS_write, fd, buf, len);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	if (no_room(fd, len, off)) {
		errno = ENOSPC;
		return -1;
	}
	return syscall(SYS_pwrite64, fd, buf, len, off);
}

/* ---- the fixture -------------------------------------------------------- */

struct fx {
	char dir[64];
	int store_fd;                /* O_PATH fd of the store directory */
	struct fake_backend fb;
	struct engine_config cfg;
	struct engine *e;
	struct workspace *ws;
	int changed;
};

static void on_changed(void *ud, struct record *rec)
{
	struct fx *f = ud;
	assert_non_null(rec);
	f->changed++;
}

static int setup(void **state)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/agentbayfs-unit-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	f->store_fd = open(f->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(f->store_fd >= 0);
	f->fb.base.ops = &fake_ops;
	pthread_mutex_init(&f->fb.lock, NULL);
	pthread_cond_init(&f->fb.cond, NULL);
	f->cfg = (struct engine_config){
		.jobs = 1,
		.timeout_s = 30,
		.max_output = 1 << 20,
		.max_script_size = 1 << 20,
		.backend_name = "fake",
	};
	*state = f;
	return 0;
}

/* Starts the engine with f->cfg and a workspace for the store's root. */
static void start_engine(struct fx *f)
{
	static const struct engine_hooks hooks = { .changed = on_changed };

	f->e = engine_new(&f->cfg, &f->fb.base, &hooks, f);
	assert_non_null(f->e);
	engine_lock(f->e);
	f->ws = engine_workspace_new(f->e, f->store_fd, "/");
	engine_unlock(f->e);
	assert_non_null(f->ws);
	assert_int_not_equal(f->ws->store_fd, f->store_fd);   /* dup'ed */
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void deliver_end(struct fx *f, size_t i, enum run_state st, int exit_code, int sig,
			const char *err_name, const char *err_value, const char *traceback);

static int teardown(void **state)
{
	struct fx *f = *state;

	if (f->e) {
		/* A real backend ends every run before it goes away. */
		for (;;) {
			size_t i;
			for (i = 0; i < f->fb.n && f->fb.runs[i].ended; i++)
				;
			if (i == f->fb.n)
				break;
			deliver_end(f, i, RS_CANCELLED, -1, 0, NULL, NULL, NULL);
		}
		engine_free(f->e);
	}
	for (size_t i = 0; i < f->fb.n; i++) {
		free(f->fb.runs[i].code);
		free(f->fb.runs[i].script);
		free(f->fb.runs[i].workspace);
	}
	pthread_mutex_destroy(&f->fb.lock);
	pthread_cond_destroy(&f->fb.cond);
	full_meta[0] = '\0';
	close(f->store_fd);
	assert_int_equal(nftw(f->dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS), 0);
	free(f);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static void deliver_out(struct fx *f, size_t i, int stream, const char *data)
{
	struct fake_run *r = &f->fb.runs[i];

	assert_true(i < f->fb.n);
	assert_false(r->ended);
	r->sink->out(r->ctx, stream, data, strlen(data));
}

static void deliver_end(struct fx *f, size_t i, enum run_state st, int exit_code, int sig,
			const char *err_name, const char *err_value, const char *traceback)
{
	struct fake_run *r = &f->fb.runs[i];
	struct exec_result res;

	assert_true(i < f->fb.n);
	assert_false(r->ended);
	exec_result_init(&res);
	res.state = st;
	res.exit_code = exit_code;
	res.signal = sig;
	if (err_name)
		assert_int_equal(exec_result_set_error(&res, err_name, err_value, traceback), 0);
	r->ended = true;
	r->sink->end(r->ctx, &res);
	exec_result_free(&res);
	free(r->handle);
	r->handle = NULL;
}

static void end_ok(struct fx *f, size_t i)
{
	deliver_end(f, i, RS_SUCCEEDED, 0, 0, NULL, NULL, NULL);
}

/* The last RELEASE (or a RENAME onto NAME) of a save of CONTENT. */
static void commit_in(struct fx *f, struct workspace *ws, const char *name, const char *content)
{
	enum lang lang;
	int fd;

	assert_true(name_is_script(name, &lang));
	fd = openat(ws->store_fd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	engine_lock(f->e);
	engine_save_commit(ws, name, lang, 0, fd);
	engine_unlock(f->e);
	close(fd);
}

static void commit(struct fx *f, const char *name, const char *content)
{
	commit_in(f, f->ws, name, content);
}

/* The FLUSH of a save of NAME. */
static struct record *save_begin(struct fx *f, const char *name)
{
	enum lang lang;
	struct record *rec;

	assert_true(name_is_script(name, &lang));
	engine_lock(f->e);
	rec = engine_save_begin(f->ws, name, lang);
	engine_unlock(f->e);
	assert_non_null(rec);
	return rec;
}

static struct record *record_of(struct fx *f, const char *stem)
{
	struct record *rec;

	engine_lock(f->e);
	rec = engine_record(f->ws, stem, strlen(stem), false);
	engine_unlock(f->e);
	return rec;
}

/* Reads .agentbayfs/NAME under DIR_FD; NULL when it does not exist. */
static char *read_meta_in(int dir_fd, const char *name, size_t *len)
{
	char path[256];
	struct stat st;
	char *buf;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", NAMES_META_DIR, name);
	fd = openat(dir_fd, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		assert_int_equal(errno, ENOENT);
		return NULL;
	}
	assert_int_equal(fstat(fd, &st), 0);
	buf = malloc((size_t)st.st_size + 1);
	assert_non_null(buf);
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	buf[st.st_size] = '\0';
	if (len)
		*len = (size_t)st.st_size;
	close(fd);
	return buf;
}

static char *read_meta(struct fx *f, const char *name)
{
	return read_meta_in(f->store_fd, name, NULL);
}

static bool meta_exists(struct fx *f, const char *name)
{
	char *text = read_meta(f, name);
	free(text);
	return text != NULL;
}

static void assert_meta_equal(struct fx *f, const char *name, const char *expect)
{
	char *text = read_meta(f, name);
	if (!text)
		fail_msg(".agentbayfs/%s does not exist", name);
	assert_string_equal(text, expect);
	free(text);
}

static void assert_meta_starts(struct fx *f, const char *name, const char *prefix)
{
	char *text = read_meta(f, name);
	if (!text)
		fail_msg(".agentbayfs/%s does not exist", name);
	if (strncmp(text, prefix, strlen(prefix)) != 0)
		fail_msg(".agentbayfs/%s should start with \"%s\": \"%s\"", name, prefix, text);
	free(text);
}

/* Parses .agentbayfs/<stem>.status into OUT (initialised here; clear its error after). */
static void load_status_in(int dir_fd, const char *stem, struct run_record *out)
{
	char name[128];
	size_t len = 0;
	char *text;

	snprintf(name, sizeof(name), "%s.status", stem);
	text = read_meta_in(dir_fd, name, &len);
	if (!text)
		fail_msg(".agentbayfs/%s does not exist", name);
	run_record_init(out);
	if (status_parse(text, len, out) != 0)
		fail_msg(".agentbayfs/%s does not parse: %s", name, text);
	free(text);
}

static void load_status(struct fx *f, const char *stem, struct run_record *out)
{
	load_status_in(f->store_fd, stem, out);
}

static void write_meta(struct fx *f, const char *name, const char *content)
{
	char path[256];
	int fd;

	if (mkdirat(f->store_fd, NAMES_META_DIR, 0755) < 0)
		assert_int_equal(errno, EEXIST);
	snprintf(path, sizeof(path), "%s/%s", NAMES_META_DIR, name);
	fd = openat(f->store_fd, path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
	close(fd);
}

static bool run_active(struct fx *f, struct record *rec, uint64_t run)
{
	bool active;

	engine_lock(f->e);
	active = engine_run_active(rec, run);
	engine_unlock(f->e);
	return active;
}

/* Makes the store full (or not) from now on. */
static void store_full(struct fx *f, bool full)
{
	if (full)
		snprintf(full_meta, sizeof(full_meta), "%s/%s/", f->dir, NAMES_META_DIR);
	else
		full_meta[0] = '\0';
}

/* Sends stderr, where the engine logs, to a file until log_end(). */
struct log_capture {
	int saved;
	int fd;
};

static void log_begin(struct log_capture *c)
{
	char path[] = "/tmp/agentbayfs-unit-log-XXXXXX";

	fflush(stderr);
	c->fd = mkstemp(path);
	assert_true(c->fd >= 0);
	unlink(path);
	c->saved = dup(2);
	assert_true(c->saved >= 0);
	assert_int_equal(dup2(c->fd, 2), 2);
}

/* Restores stderr; returns what was logged (malloc'd). */
static char *log_end(struct log_capture *c)
{
	struct stat st;
	char *text;

	fflush(stderr);
	assert_int_equal(dup2(c->saved, 2), 2);
	close(c->saved);
	assert_int_equal(fstat(c->fd, &st), 0);
	text = malloc((size_t)st.st_size + 1);
	assert_non_null(text);
	assert_int_equal(pread(c->fd, text, (size_t)st.st_size, 0), st.st_size);
	text[st.st_size] = '\0';
	close(c->fd);
	return text;
}

static int count_of(const char *text, const char *what)
{
	int n = 0;

	for (const char *p = text; (p = strstr(p, what)) != NULL; p += strlen(what))
		n++;
	return n;
}

/* ---- tests -------------------------------------------------------------- */

/* A save's FLUSH makes the record pending as run 1, with a status file and empty outputs. */
static void test_save_begin_pending(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;

	start_engine(f);
	rec = save_begin(f, "x.py");
	assert_string_equal(rec->stem, "x");
	assert_string_equal(rec->rr.script, "x.py");
	assert_int_equal(rec->rr.lang, LANG_PYTHON);
	assert_int_equal(rec->rr.run, 1);
	assert_int_equal(rec->rr.state, RS_PENDING);
	assert_true(rec->rr.saved_at_ms > 0);
	assert_null(rec->job);
	assert_true(f->changed >= 1);
	assert_true(run_active(f, rec, 1));
	assert_false(run_active(f, rec, 2));
	assert_int_equal(f->fb.start_calls, 0);

	load_status(f, "x", &rr);
	assert_string_equal(rr.script, "x.py");
	assert_int_equal(rr.lang, LANG_PYTHON);
	assert_string_equal(rr.backend, "fake");
	assert_int_equal(rr.run, 1);
	assert_int_equal(rr.state, RS_PENDING);
	assert_int_equal(rr.exit_code, -1);
	assert_int_equal(rr.started_at_ms, 0);
	assert_int_equal(rr.finished_at_ms, 0);
	assert_true(rr.saved_at_ms > 0);
	assert_null(rr.error_name);
	assert_meta_equal(f, "x.out", "");
	assert_meta_equal(f, "x.err", "");
	assert_meta_equal(f, "x.error", "");

	engine_lock(f->e);
	for (int k = 0; k < RK_COUNT; k++)
		assert_true(engine_result_exists(rec, (enum result_kind)k));
	/* A second FLUSH of the same save is the same run. */
	assert_ptr_equal(engine_save_begin(f->ws, "x.py", LANG_PYTHON), rec);
	engine_unlock(f->e);
	assert_int_equal(rec->rr.run, 1);
}

/* The commit of a save snapshots the file and starts it: code, language, name, workspace, timeout. */
static void test_commit_starts_run(void **state)
{
	static const char code[] = "print('hi')\n";
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;
	int changed;

	start_engine(f);
	rec = save_begin(f, "x.py");
	changed = f->changed;
	commit(f, "x.py", code);
	assert_int_equal(f->fb.n, 1);
	assert_int_equal(f->fb.runs[0].code_len, strlen(code));
	assert_string_equal(f->fb.runs[0].code, code);
	assert_int_equal(f->fb.runs[0].lang, LANG_PYTHON);
	assert_string_equal(f->fb.runs[0].script, "x.py");
	assert_string_equal(f->fb.runs[0].workspace, "/");
	assert_int_equal(f->fb.runs[0].timeout_s, 30);
	assert_int_equal(f->fb.runs[0].n_cancel, 0);
	/* FLUSH then RELEASE is one save: still run 1. */
	assert_int_equal(rec->rr.run, 1);
	assert_int_equal(rec->rr.state, RS_RUNNING);
	assert_non_null(rec->job);
	assert_true(rec->rr.started_at_ms > 0);
	assert_true(f->changed > changed);
	assert_true(run_active(f, rec, 1));

	/* The store says "pending" until the end (the mount shows the record
	 * in memory); a remount takes pending and running alike for interrupted. */
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_PENDING);
	assert_int_equal(rr.run, 1);
	assert_int_equal(rr.finished_at_ms, 0);
	end_ok(f, 0);
}

/* A commit without a FLUSH first (e.g. a rename onto the name) is a save too; JS keeps its language. */
static void test_commit_without_flush(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	start_engine(f);
	commit(f, "app.js", "console.log(1)\n");
	assert_int_equal(f->fb.n, 1);
	assert_int_equal(f->fb.runs[0].lang, LANG_JAVASCRIPT);
	assert_string_equal(f->fb.runs[0].script, "app.js");
	rec = record_of(f, "app");
	assert_non_null(rec);
	assert_int_equal(rec->rr.run, 1);
	assert_int_equal(rec->rr.lang, LANG_JAVASCRIPT);
	assert_int_equal(rec->rr.state, RS_RUNNING);
	end_ok(f, 0);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
}

/* Output events append to x.out / x.err and count the bytes of each stream. */
static void test_out_events(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;
	char buf[64];
	ssize_t n;
	int changed, fd;

	start_engine(f);
	commit(f, "x.py", "print('hello')\n");
	rec = record_of(f, "x");
	assert_non_null(rec);
	changed = f->changed;
	deliver_out(f, 0, 1, "hello\n");
	deliver_out(f, 0, 2, "oops\n");
	deliver_out(f, 0, 1, "world\n");
	assert_meta_equal(f, "x.out", "hello\nworld\n");
	assert_meta_equal(f, "x.err", "oops\n");
	assert_int_equal(rec->rr.stdout_bytes, 12);
	assert_int_equal(rec->rr.stderr_bytes, 5);
	assert_false(rec->rr.truncated);
	assert_int_equal(f->changed, changed + 3);

	engine_lock(f->e);
	fd = engine_result_open(rec, RK_OUT);
	engine_unlock(f->e);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf));
	assert_int_equal(n, 12);
	assert_memory_equal(buf, "hello\nworld\n", 12);
	close(fd);

	end_ok(f, 0);
	load_status(f, "x", &rr);
	assert_int_equal(rr.stdout_bytes, 12);
	assert_int_equal(rr.stderr_bytes, 5);
	assert_int_equal(rr.state, RS_SUCCEEDED);
	assert_meta_equal(f, "x.out", "hello\nworld\n");
}

/* A successful end makes the record succeeded, the .error file empty and the status final on disk. */
static void test_end_success(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;
	int changed;

	start_engine(f);
	commit(f, "x.py", "pass\n");
	rec = record_of(f, "x");
	changed = f->changed;
	end_ok(f, 0);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_int_equal(rec->rr.exit_code, 0);
	assert_null(rec->rr.error_name);
	assert_null(rec->job);
	assert_true(rec->rr.finished_at_ms >= rec->rr.started_at_ms);
	assert_true(f->changed > changed);
	assert_false(run_active(f, rec, 1));
	assert_meta_equal(f, "x.error", "");

	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_SUCCEEDED);
	assert_true(run_state_final(rr.state));
	assert_int_equal(rr.exit_code, 0);
	assert_int_equal(rr.signal, 0);
	assert_int_equal(rr.run, 1);
	assert_true(rr.finished_at_ms > 0);
	assert_true(rr.started_at_ms > 0);
	assert_null(rr.error_name);
	assert_int_equal(f->fb.runs[0].n_cancel, 0);
}

/* An end with an error writes "Name: value" and the traceback to .error, and the error to .status. */
static void test_end_error(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;
	char *text;

	start_engine(f);
	commit(f, "x.py", "1/0\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 2, "Traceback...\n");
	deliver_end(f, 0, RS_FAILED, 1, 0, "ZeroDivisionError", "division by zero",
		    "Traceback (most recent call last):\n  File \"/x.py\", line 1\nZeroDivisionError: division by zero\n");
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_int_equal(rec->rr.exit_code, 1);
	assert_string_equal(rec->rr.error_name, "ZeroDivisionError");
	assert_meta_starts(f, "x.error", "ZeroDivisionError: division by zero\n");
	text = read_meta(f, "x.error");
	assert_non_null(strstr(text, "Traceback (most recent call last):\n"));
	free(text);

	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_FAILED);
	assert_int_equal(rr.exit_code, 1);
	assert_string_equal(rr.error_name, "ZeroDivisionError");
	assert_string_equal(rr.error_value, "division by zero");
	run_record_clear_error(&rr);
}

/* A run killed by a signal or a timeout keeps the backend's state, signal and error. */
static void test_end_signal_and_timeout(void **state)
{
	struct fx *f = *state;
	struct run_record rr;

	start_engine(f);
	commit(f, "x.py", "import os; os.kill(os.getpid(), 9)\n");
	deliver_end(f, 0, RS_FAILED, -1, 9, "Killed", "killed by SIGKILL", NULL);
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_FAILED);
	assert_int_equal(rr.exit_code, -1);
	assert_int_equal(rr.signal, 9);
	run_record_clear_error(&rr);

	commit(f, "x.py", "while True: pass\n");
	deliver_end(f, 1, RS_TIMED_OUT, -1, 9, "TimeoutError", "ran longer than 30 s", NULL);
	load_status(f, "x", &rr);
	assert_int_equal(rr.run, 2);
	assert_int_equal(rr.state, RS_TIMED_OUT);
	assert_string_equal(rr.error_name, "TimeoutError");
	assert_meta_starts(f, "x.error", "TimeoutError: ran longer than 30 s\n");
	run_record_clear_error(&rr);
}

/* Past max_output only the allowed bytes are kept, the run is cancelled and ends failed. */
static void test_output_limit(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;

	f->cfg.max_output = 10;
	start_engine(f);
	commit(f, "x.py", "print('x' * 25)\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 1, "0123456789abcdefghijklmno");   /* 25 bytes */
	assert_meta_equal(f, "x.out", "0123456789");
	assert_int_equal(rec->rr.stdout_bytes, 10);
	assert_true(rec->rr.truncated);
	assert_int_equal(f->fb.runs[0].n_cancel, 1);
	assert_int_equal(f->fb.runs[0].why, CANCEL_OUTPUT_LIMIT);
	/* Output that still arrives before the end is dropped, on both streams. */
	deliver_out(f, 0, 1, "more");
	deliver_out(f, 0, 2, "err");
	assert_meta_equal(f, "x.out", "0123456789");
	assert_meta_equal(f, "x.err", "");
	assert_int_equal(f->fb.runs[0].n_cancel, 1);

	deliver_end(f, 0, RS_CANCELLED, -1, 15, NULL, NULL, NULL);
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_string_equal(rec->rr.error_name, "OutputLimitExceeded");
	assert_meta_starts(f, "x.error", "OutputLimitExceeded: stdout ");
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_FAILED);
	assert_true(rr.truncated);
	assert_int_equal(rr.stdout_bytes, 10);
	assert_string_equal(rr.error_name, "OutputLimitExceeded");
	run_record_clear_error(&rr);
}

/* Exactly max_output bytes on each stream is within the limit: no cancel, no truncation. */
static void test_output_limit_exact(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	f->cfg.max_output = 10;
	start_engine(f);
	commit(f, "x.py", "pass\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 1, "0123");
	deliver_out(f, 0, 1, "456789");
	deliver_out(f, 0, 2, "abcdefghij");
	assert_int_equal(f->fb.runs[0].n_cancel, 0);
	assert_false(rec->rr.truncated);
	assert_meta_equal(f, "x.out", "0123456789");
	assert_meta_equal(f, "x.err", "abcdefghij");
	end_ok(f, 0);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_false(rec->rr.truncated);
}

/* The stderr limit reports stderr; an output-limited run's later save starts clean. */
static void test_output_limit_stderr(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	f->cfg.max_output = 4;
	start_engine(f);
	commit(f, "x.py", "pass\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 2, "123456");
	assert_meta_equal(f, "x.err", "1234");
	deliver_end(f, 0, RS_CANCELLED, -1, 15, NULL, NULL, NULL);
	assert_meta_starts(f, "x.error", "OutputLimitExceeded: stderr ");

	commit(f, "x.py", "pass\n");
	assert_int_equal(rec->rr.run, 2);
	assert_false(rec->rr.truncated);
	assert_int_equal(rec->rr.stderr_bytes, 0);
	assert_meta_equal(f, "x.err", "");
	/* The stored error is replaced at the end; the mount's .error waits. */
	assert_null(rec->error_text);
	end_ok(f, 1);
	assert_meta_equal(f, "x.error", "");
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_null(rec->rr.error_name);
}

static ino_t meta_ino(struct fx *f, const char *name)
{
	char path[256];
	struct stat st;

	snprintf(path, sizeof(path), "%s/%s", NAMES_META_DIR, name);
	assert_int_equal(fstatat(f->store_fd, path, &st, 0), 0);
	return st.st_ino;
}

static void run_printing(struct fx *f, size_t i, const char *text)
{
	commit(f, "x.py", "pass\n");
	deliver_out(f, i, 1, text);
	end_ok(f, i);
}

/* A script's own time limit (its user.agentbay.timeout) replaces the
 * mount's for its run; 0 means the mount's. A new save before the run
 * started takes the newest limit. */
static void test_commit_timeout(void **state)
{
	struct fx *f = *state;
	int fd;

	start_engine(f);
	fd = openat(f->ws->store_fd, "t.py", O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "pass\n", 5), 5);
	engine_lock(f->e);
	engine_save_commit(f->ws, "t.py", LANG_PYTHON, 7, fd);
	engine_unlock(f->e);
	assert_int_equal(f->fb.runs[0].timeout_s, 7);
	end_ok(f, 0);
	engine_lock(f->e);
	engine_save_commit(f->ws, "t.py", LANG_PYTHON, 0, fd);
	engine_unlock(f->e);
	assert_int_equal(f->fb.runs[1].timeout_s, 30);
	close(fd);
}

/* A new run's output file reuses the one of the run before last, unless a
 * reader has an output file open: a reader of an old run reads it whole. */
static void test_output_files_reused_unless_read(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	char buf[16] = "";
	ino_t first, second;
	int fd;

	start_engine(f);
	run_printing(f, 0, "one\n");
	rec = record_of(f, "x");
	first = meta_ino(f, "x.out");
	run_printing(f, 1, "two\n");
	second = meta_ino(f, "x.out");
	assert_true(second != first);
	run_printing(f, 2, "three\n");
	assert_true(meta_ino(f, "x.out") == first);
	assert_meta_equal(f, "x.out", "three\n");

	/* A reader of run 3 holds its file through runs 4 and 5. */
	fd = engine_result_open(rec, RK_OUT);
	assert_true(fd >= 0);
	run_printing(f, 3, "four\n");
	run_printing(f, 4, "five\n");
	assert_true(pread(fd, buf, sizeof(buf) - 1, 0) == 6);
	assert_string_equal(buf, "three\n");
	engine_result_close(rec, RK_OUT, fd);
	assert_meta_equal(f, "x.out", "five\n");
	assert_int_equal(rec->readers[RK_OUT], 0);
}

/* A save while running cancels the old run (superseded); its events no longer touch the record. */
static void test_save_while_running(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record before, rr;

	f->cfg.jobs = 2;
	start_engine(f);
	commit(f, "x.py", "v1\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 1, "old1\n");
	assert_meta_equal(f, "x.out", "old1\n");

	save_begin(f, "x.py");
	assert_int_equal(f->fb.runs[0].n_cancel, 1);
	assert_int_equal(f->fb.runs[0].why, CANCEL_SUPERSEDED);
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(rec->rr.state, RS_PENDING);
	assert_meta_equal(f, "x.out", "");
	assert_false(run_active(f, rec, 1));
	assert_true(run_active(f, rec, 2));

	/* Late output of run 1 is ignored. */
	deliver_out(f, 0, 1, "old2\n");
	assert_meta_equal(f, "x.out", "");
	assert_int_equal(rec->rr.stdout_bytes, 0);

	commit(f, "x.py", "v2\n");
	assert_int_equal(f->fb.n, 2);
	assert_string_equal(f->fb.runs[1].code, "v2\n");
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(rec->rr.state, RS_RUNNING);

	/* The end of run 1 changes nothing. */
	before = rec->rr;
	deliver_end(f, 0, RS_CANCELLED, -1, 15, "Cancelled", "superseded", NULL);
	assert_int_equal(rec->rr.state, RS_RUNNING);
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(rec->rr.started_at_ms, before.started_at_ms);
	assert_int_equal(rec->rr.finished_at_ms, 0);
	assert_null(rec->rr.error_name);
	assert_non_null(rec->job);
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_PENDING);
	assert_int_equal(rr.run, 2);
	assert_null(rr.error_name);
	assert_null(rec->error_text);

	deliver_out(f, 1, 1, "new\n");
	assert_meta_equal(f, "x.out", "new\n");
	end_ok(f, 1);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(f->fb.n, 2);
}

/* With jobs=1 a save over a running run waits for the old run's end, then runs the new code once. */
static void test_save_while_running_one_job(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	start_engine(f);
	commit(f, "x.py", "v1\n");
	rec = record_of(f, "x");
	commit(f, "x.py", "v2\n");
	assert_int_equal(f->fb.runs[0].why, CANCEL_SUPERSEDED);
	assert_int_equal(f->fb.n, 1);
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(rec->rr.state, RS_PENDING);
	deliver_end(f, 0, RS_CANCELLED, -1, 15, NULL, NULL, NULL);
	assert_int_equal(f->fb.n, 2);
	assert_string_equal(f->fb.runs[1].code, "v2\n");
	assert_int_equal(rec->rr.state, RS_RUNNING);
	assert_int_equal(rec->rr.run, 2);
	end_ok(f, 1);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_int_equal(f->fb.n, 2);
}

/* With jobs=1 a second script's run waits, pending, until the first one ends. */
static void test_jobs_queueing(void **state)
{
	struct fx *f = *state;
	struct record *a, *b;
	struct run_record rr;

	start_engine(f);
	commit(f, "a.py", "A\n");
	commit(f, "b.py", "B\n");
	a = record_of(f, "a");
	b = record_of(f, "b");
	assert_int_equal(f->fb.n, 1);
	assert_string_equal(f->fb.runs[0].script, "a.py");
	assert_int_equal(a->rr.state, RS_RUNNING);
	assert_int_equal(b->rr.state, RS_PENDING);
	assert_non_null(b->job);
	load_status(f, "b", &rr);
	assert_int_equal(rr.state, RS_PENDING);

	end_ok(f, 0);
	assert_int_equal(a->rr.state, RS_SUCCEEDED);
	assert_int_equal(f->fb.n, 2);
	assert_string_equal(f->fb.runs[1].script, "b.py");
	assert_string_equal(f->fb.runs[1].code, "B\n");
	assert_int_equal(b->rr.state, RS_RUNNING);
	end_ok(f, 1);
	assert_int_equal(b->rr.state, RS_SUCCEEDED);
}

/* A commit while the run is still queued replaces its code: one run, of the newest code. */
static void test_commit_while_queued(void **state)
{
	struct fx *f = *state;
	struct record *b;

	start_engine(f);
	commit(f, "a.py", "A\n");
	commit(f, "b.py", "B1\n");
	b = record_of(f, "b");
	assert_int_equal(b->rr.run, 1);
	save_begin(f, "b.py");
	commit(f, "b.py", "B2\n");
	commit(f, "b.py", "B3\n");
	assert_int_equal(b->rr.run, 1);
	assert_int_equal(b->rr.state, RS_PENDING);
	assert_int_equal(f->fb.n, 1);

	end_ok(f, 0);
	assert_int_equal(f->fb.n, 2);
	assert_string_equal(f->fb.runs[1].code, "B3\n");
	end_ok(f, 1);
	assert_int_equal(f->fb.n, 2);
	assert_int_equal(f->fb.start_calls, 2);
	assert_int_equal(b->rr.state, RS_SUCCEEDED);
	assert_int_equal(b->rr.run, 1);
}

/* A script larger than max_script_size fails with ScriptTooLarge and never reaches the backend. */
static void test_script_too_large(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;

	f->cfg.max_script_size = 8;
	start_engine(f);
	commit(f, "x.py", "print('too long')\n");
	rec = record_of(f, "x");
	assert_non_null(rec);
	assert_int_equal(f->fb.start_calls, 0);
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_null(rec->job);
	assert_string_equal(rec->rr.error_name, "ScriptTooLarge");
	assert_non_null(strstr(rec->rr.error_value, "max_script_size"));
	assert_meta_starts(f, "x.error", "ScriptTooLarge: ");
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_FAILED);
	assert_string_equal(rr.error_name, "ScriptTooLarge");
	run_record_clear_error(&rr);

	/* Exactly the limit runs. */
	commit(f, "x.py", "12345678");
	assert_int_equal(f->fb.start_calls, 1);
	assert_int_equal(f->fb.runs[0].code_len, 8);
	assert_int_equal(rec->rr.run, 2);
	end_ok(f, 0);
}

/* A backend that cannot start the run leaves it failed with BackendError. */
static void test_backend_start_failure(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	f->fb.start_rc = -EIO;
	start_engine(f);
	commit(f, "x.py", "pass\n");
	rec = record_of(f, "x");
	assert_int_equal(f->fb.start_calls, 1);
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_string_equal(rec->rr.error_name, "BackendError");
	assert_null(rec->job);
	assert_meta_starts(f, "x.error", "BackendError: ");

	/* The queue moves on: the next save runs. */
	f->fb.start_rc = 0;
	commit(f, "x.py", "pass\n");
	assert_int_equal(f->fb.n, 1);
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(rec->rr.state, RS_RUNNING);
	end_ok(f, 0);
}

/* A save that will not complete ends cancelled; abandoning a queued or running save does nothing. */
static void test_save_abandon(void **state)
{
	struct fx *f = *state;
	struct record *rec;
	struct run_record rr;

	start_engine(f);
	rec = save_begin(f, "x.py");
	engine_lock(f->e);
	engine_save_abandon(rec, "the file went away");
	engine_unlock(f->e);
	assert_int_equal(rec->rr.state, RS_CANCELLED);
	assert_string_equal(rec->rr.error_name, "Cancelled");
	assert_string_equal(rec->rr.error_value, "the file went away");
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_CANCELLED);
	run_record_clear_error(&rr);

	commit(f, "x.py", "pass\n");
	engine_lock(f->e);
	engine_save_abandon(rec, "ignored");
	engine_unlock(f->e);
	assert_int_equal(rec->rr.state, RS_RUNNING);
	end_ok(f, 0);
	engine_lock(f->e);
	engine_save_abandon(rec, "ignored");
	engine_unlock(f->e);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
}

/* Removing the script deletes its four result files; another script of the same stem does not. */
static void test_script_removed(void **state)
{
	static const char *const files[] = { "x.out", "x.err", "x.error", "x.status" };
	struct fx *f = *state;
	struct record *rec;
	int changed;

	start_engine(f);
	commit(f, "x.py", "print(1)\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 1, "1\n");
	end_ok(f, 0);
	for (size_t i = 0; i < 4; i++)
		assert_true(meta_exists(f, files[i]));

	engine_lock(f->e);
	engine_script_removed(f->ws, "x.js");   /* the results belong to x.py */
	engine_unlock(f->e);
	for (size_t i = 0; i < 4; i++)
		assert_true(meta_exists(f, files[i]));

	changed = f->changed;
	engine_lock(f->e);
	engine_script_removed(f->ws, "x.py");
	for (int k = 0; k < RK_COUNT; k++)
		assert_false(engine_result_exists(rec, (enum result_kind)k));
	engine_unlock(f->e);
	for (size_t i = 0; i < 4; i++)
		if (meta_exists(f, files[i]))
			fail_msg(".agentbayfs/%s still exists", files[i]);
	assert_true(f->changed > changed);
}

/* Removing a running script cancels it (removed) and its late end does not bring files back. */
static void test_script_removed_while_running(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	start_engine(f);
	commit(f, "x.py", "pass\n");
	rec = record_of(f, "x");
	engine_lock(f->e);
	engine_script_removed(f->ws, "x.py");
	engine_unlock(f->e);
	assert_int_equal(f->fb.runs[0].n_cancel, 1);
	assert_int_equal(f->fb.runs[0].why, CANCEL_REMOVED);
	assert_null(rec->job);
	deliver_out(f, 0, 1, "late\n");
	deliver_end(f, 0, RS_CANCELLED, -1, 15, NULL, NULL, NULL);
	assert_false(meta_exists(f, "x.out"));
	assert_false(meta_exists(f, "x.err"));
	assert_false(meta_exists(f, "x.error"));
	assert_false(meta_exists(f, "x.status"));
}

/* Removing a script whose run is still queued drops the run: it never starts. */
static void test_script_removed_while_queued(void **state)
{
	struct fx *f = *state;
	struct record *b;

	start_engine(f);
	commit(f, "a.py", "A\n");
	commit(f, "b.py", "B\n");
	b = record_of(f, "b");
	assert_non_null(b->job);
	engine_lock(f->e);
	engine_script_removed(f->ws, "b.py");
	engine_unlock(f->e);
	assert_null(b->job);
	assert_false(meta_exists(f, "b.status"));
	end_ok(f, 0);
	assert_int_equal(f->fb.start_calls, 1);
	assert_false(meta_exists(f, "b.status"));
	assert_true(meta_exists(f, "a.status"));
}

/* Result files can be unlinked one by one; a missing one reports ENOENT. */
static void test_result_unlink(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	start_engine(f);
	commit(f, "x.py", "pass\n");
	rec = record_of(f, "x");
	end_ok(f, 0);
	engine_lock(f->e);
	assert_int_equal(engine_result_unlink(rec, RK_OUT), 0);
	assert_false(engine_result_exists(rec, RK_OUT));
	assert_true(engine_result_exists(rec, RK_ERR));
	assert_int_equal(engine_result_unlink(rec, RK_OUT), -ENOENT);
	assert_int_equal(engine_result_open(rec, RK_OUT), -ENOENT);
	engine_unlock(f->e);
	assert_false(meta_exists(f, "x.out"));
}

/* After a crash a running or pending run loads as interrupted, and the files are rewritten. */
static void test_load_after_crash(void **state)
{
	static const char running[] =
		"{\"script\":\"x.py\",\"language\":\"python\",\"backend\":\"fake\",\"run\":3,"
		"\"state\":\"running\",\"exit_code\":null,\"signal\":null,"
		"\"saved_at\":\"2026-11-22T04:59:59.000Z\",\"started_at\":\"2026-11-22T05:00:00.123Z\","
		"\"finished_at\":null,\"duration_ms\":null,\"stdout_bytes\":5,\"stderr_bytes\":0,"
		"\"truncated\":false,\"error\":null}\n";
	static const char pending[] =
		"{\"script\":\"y.js\",\"language\":\"javascript\",\"run\":1,\"state\":\"pending\"}\n";
	static const char done[] =
		"{\"script\":\"z.py\",\"language\":\"python\",\"run\":7,\"state\":\"succeeded\",\"exit_code\":0}\n";
	struct fx *f = *state;
	struct record *x, *y, *z;
	struct run_record rr;

	write_meta(f, "x.status", running);
	write_meta(f, "x.out", "hello");
	write_meta(f, "x.error", "");
	write_meta(f, "y.status", pending);
	write_meta(f, "z.status", done);
	start_engine(f);

	assert_null(record_of(f, "nothing"));
	x = record_of(f, "x");
	assert_non_null(x);
	assert_int_equal(x->rr.state, RS_INTERRUPTED);
	assert_int_equal(x->rr.run, 3);
	assert_string_equal(x->rr.script, "x.py");
	assert_int_equal(x->rr.stdout_bytes, 5);
	assert_string_equal(x->rr.error_name, "Interrupted");
	assert_null(x->job);
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_INTERRUPTED);
	assert_true(run_state_final(rr.state));
	assert_int_equal(rr.run, 3);
	assert_string_equal(rr.error_name, "Interrupted");
	run_record_clear_error(&rr);
	assert_meta_starts(f, "x.error", "Interrupted: ");
	assert_meta_equal(f, "x.out", "hello");

	y = record_of(f, "y");
	assert_non_null(y);
	assert_int_equal(y->rr.state, RS_INTERRUPTED);
	assert_int_equal(y->rr.lang, LANG_JAVASCRIPT);
	load_status(f, "y", &rr);
	assert_int_equal(rr.state, RS_INTERRUPTED);
	run_record_clear_error(&rr);

	/* A final run is left as it was, file included. */
	z = record_of(f, "z");
	assert_non_null(z);
	assert_int_equal(z->rr.state, RS_SUCCEEDED);
	assert_int_equal(z->rr.run, 7);
	assert_meta_equal(f, "z.status", done);
	assert_false(meta_exists(f, "z.error"));

	/* The run counter carries on. */
	commit(f, "x.py", "pass\n");
	assert_int_equal(x->rr.run, 4);
	assert_int_equal(x->rr.state, RS_RUNNING);
	assert_null(x->rr.error_name);
	end_ok(f, 0);
}

#define FULL_VALUE "No space left on device: the results of this run could not be stored " \
	"(its output is cut short); free space in the store, then save the script again"

/* A run on a full store ends failed with a StoreError that says so, with the
 * run's own error below; every result stays in the mount, on disk they are
 * empty (never stale); the failure is logged once; with room again the next
 * save stores normally. */
static void test_store_full_run_fails(void **state)
{
	struct fx *f = *state;
	struct log_capture c;
	struct record *rec;
	struct run_record rr;
	char buf[4096], *log, *text;
	ssize_t n;
	int fd;

	start_engine(f);
	store_full(f, true);
	log_begin(&c);
	commit(f, "x.py", "print('hello')\n1/0\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 1, "hello\n");
	deliver_out(f, 0, 2, "Traceback...\n");
	deliver_out(f, 0, 1, "more\n");
	deliver_end(f, 0, RS_FAILED, 1, 0, "ZeroDivisionError", "division by zero",
		    "Traceback (most recent call last):\nZeroDivisionError: division by zero\n");
	log = log_end(&c);
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_int_equal(rec->rr.exit_code, 1);
	assert_string_equal(rec->rr.error_name, "StoreError");
	assert_string_equal(rec->rr.error_value, FULL_VALUE);
	assert_true(rec->rr.truncated);
	assert_int_equal(rec->rr.stdout_bytes, 0);
	assert_int_equal(rec->rr.stderr_bytes, 0);
	assert_string_equal(rec->error_text,
			    "StoreError: " FULL_VALUE "\n"
			    "ZeroDivisionError: division by zero\n"
			    "Traceback (most recent call last):\nZeroDivisionError: division by zero\n");
	engine_lock(f->e);
	for (int k = 0; k < RK_COUNT; k++)
		assert_true(engine_result_exists(rec, (enum result_kind)k));
	engine_unlock(f->e);
	for (int k = 0; k < RK_COUNT; k++) {
		char name[NAME_MAX + 1];
		assert_non_null(result_name(name, sizeof(name), "x", (enum result_kind)k));
		assert_meta_equal(f, name, "");
	}
	if (count_of(log, "No space left on device") != 1 || !strstr(log, "cannot store the status of /x: "))
		fail_msg("expected one line on the full store, got:\n%s", log);
	free(log);

	/* Not even an empty file: the text comes from memory, and rm works. */
	assert_int_equal(unlinkat(f->store_fd, NAMES_META_DIR "/x.status", 0), 0);
	engine_lock(f->e);
	assert_true(engine_result_exists(rec, RK_STATUS));
	fd = engine_result_open(rec, RK_STATUS);
	text = status_render(&rec->rr);
	engine_unlock(f->e);
	assert_true(fd >= 0);
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	assert_true(n > 0);
	buf[n] = '\0';
	assert_string_equal(buf, text);
	free(text);
	engine_lock(f->e);
	assert_int_equal(engine_result_unlink(rec, RK_STATUS), 0);
	assert_false(engine_result_exists(rec, RK_STATUS));
	assert_int_equal(engine_result_unlink(rec, RK_STATUS), -ENOENT);
	assert_int_equal(engine_result_open(rec, RK_STATUS), -ENOENT);
	engine_unlock(f->e);

	store_full(f, false);
	commit(f, "x.py", "print('ok')\n");
	deliver_out(f, 1, 1, "ok\n");
	end_ok(f, 1);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_false(rec->rr.truncated);
	assert_null(rec->rr.error_name);
	assert_int_equal(rec->unstored, 0);
	load_status(f, "x", &rr);
	assert_int_equal(rr.run, 2);
	assert_int_equal(rr.state, RS_SUCCEEDED);
	assert_int_equal(rr.stdout_bytes, 3);
	assert_meta_equal(f, "x.out", "ok\n");
	assert_meta_equal(f, "x.error", "");
}

/* A status that had its block is replaced in place when the store is full,
 * so it survives a remount, which also rebuilds the .error text the store
 * could not take. */
static void test_store_full_status_in_place(void **state)
{
	struct fx *f = *state;
	struct log_capture c;
	struct record *rec;
	struct run_record rr;
	char *log;

	start_engine(f);
	commit(f, "x.py", "pass\n");
	end_ok(f, 0);
	store_full(f, true);
	log_begin(&c);
	commit(f, "x.py", "print('hi')\n");
	rec = record_of(f, "x");
	deliver_out(f, 1, 1, "hi\n");
	end_ok(f, 1);
	log = log_end(&c);
	/* The pending status went in place: the first failure is the output's. */
	if (count_of(log, "No space left on device") != 1 || !strstr(log, "cannot store the output of /x: "))
		fail_msg("expected one line on the full store, got:\n%s", log);
	free(log);
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_int_equal(rec->rr.exit_code, 0);
	assert_string_equal(rec->error_text, "StoreError: " FULL_VALUE "\n");
	load_status(f, "x", &rr);
	assert_int_equal(rr.run, 2);
	assert_int_equal(rr.state, RS_FAILED);
	assert_true(rr.truncated);
	assert_string_equal(rr.error_name, "StoreError");
	run_record_clear_error(&rr);
	assert_meta_equal(f, "x.error", "");
	assert_meta_equal(f, "x.out", "");

	/* A remount once there is room. */
	store_full(f, false);
	engine_free(f->e);
	start_engine(f);
	rec = record_of(f, "x");
	assert_non_null(rec);
	assert_int_equal(rec->rr.run, 2);
	assert_int_equal(rec->rr.state, RS_FAILED);
	assert_string_equal(rec->error_text, "StoreError: " FULL_VALUE "\n");
	assert_meta_equal(f, "x.error", "StoreError: " FULL_VALUE "\n");
}

/* The store full only while the save began: the final results are all
 * stored, so the run is what it is. */
static void test_store_full_only_at_save(void **state)
{
	struct fx *f = *state;
	struct log_capture c;
	struct record *rec;
	struct run_record rr;

	start_engine(f);
	store_full(f, true);
	log_begin(&c);
	rec = save_begin(f, "x.py");
	free(log_end(&c));
	assert_int_equal(rec->unstored, 1u << RK_STATUS);
	assert_meta_equal(f, "x.status", "");
	store_full(f, false);
	commit(f, "x.py", "print('hi')\n");
	deliver_out(f, 0, 1, "hi\n");
	end_ok(f, 0);
	assert_int_equal(rec->rr.state, RS_SUCCEEDED);
	assert_false(rec->rr.truncated);
	assert_int_equal(rec->unstored, 0);
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_SUCCEEDED);
	assert_meta_equal(f, "x.out", "hi\n");
}

/* A run that timed out on a full store stays timed out, marked truncated. */
static void test_store_full_timeout(void **state)
{
	struct fx *f = *state;
	struct log_capture c;
	struct record *rec;

	start_engine(f);
	store_full(f, true);
	log_begin(&c);
	commit(f, "x.py", "while True: print(1)\n");
	rec = record_of(f, "x");
	deliver_out(f, 0, 1, "1\n");
	deliver_end(f, 0, RS_TIMED_OUT, -1, 9, "TimeoutError", "the run passed 30 s", NULL);
	free(log_end(&c));
	assert_int_equal(rec->rr.state, RS_TIMED_OUT);
	assert_string_equal(rec->rr.error_name, "TimeoutError");
	assert_true(rec->rr.truncated);
	assert_string_equal(rec->error_text, "TimeoutError: the run passed 30 s\n");
}

/* A status left empty by a full store loads as a failed run whose record
 * was lost, and its files are written again. */
static void test_load_empty_status(void **state)
{
	struct fx *f = *state;
	struct record *x;
	struct run_record rr;

	write_meta(f, "x.status", "");
	write_meta(f, "x.error", "");
	start_engine(f);
	x = record_of(f, "x");
	assert_non_null(x);
	assert_int_equal(x->rr.state, RS_FAILED);
	assert_string_equal(x->rr.error_name, "StoreError");
	assert_meta_starts(f, "x.error", "StoreError: the record of the last run could not be stored");
	load_status(f, "x", &rr);
	assert_int_equal(rr.state, RS_FAILED);
	assert_string_equal(rr.error_name, "StoreError");
	run_record_clear_error(&rr);
}

/* Results of a script in a subdirectory go to that directory's meta folder, and the backend sees its path. */
static void test_sub_workspace(void **state)
{
	struct fx *f = *state;
	struct workspace *sub;
	struct run_record rr;
	int fd;

	start_engine(f);
	assert_int_equal(mkdirat(f->store_fd, "sub", 0755), 0);
	fd = openat(f->store_fd, "sub", O_PATH | O_DIRECTORY | O_CLOEXEC);
	assert_true(fd >= 0);
	engine_lock(f->e);
	sub = engine_workspace_new(f->e, fd, "/sub");
	engine_unlock(f->e);
	assert_non_null(sub);
	commit_in(f, sub, "x.py", "pass\n");
	assert_int_equal(f->fb.n, 1);
	assert_string_equal(f->fb.runs[0].workspace, "/sub");
	end_ok(f, 0);
	load_status_in(fd, "x", &rr);
	assert_int_equal(rr.state, RS_SUCCEEDED);
	assert_false(meta_exists(f, "x.status"));
	close(fd);
}

struct ender {
	struct fx *f;
	size_t idx;
};

/* A backend thread: waits for the run's cancel, then reports its end. */
static void *end_after_cancel(void *arg)
{
	struct ender *en = arg;
	struct fake_backend *fb = &en->f->fb;

	pthread_mutex_lock(&fb->lock);
	while (fb->runs[en->idx].n_cancel == 0)
		pthread_cond_wait(&fb->cond, &fb->lock);
	pthread_mutex_unlock(&fb->lock);
	deliver_end(en->f, en->idx, RS_CANCELLED, -1, 15, NULL, NULL, NULL);
	return NULL;
}

/* Shutdown cancels the running run, waits for its end, and leaves every record final on disk. */
static void test_shutdown(void **state)
{
	struct fx *f = *state;
	struct record *a, *b, *c;
	struct run_record rr;
	struct ender en;
	pthread_t th;

	start_engine(f);
	commit(f, "a.py", "A\n");      /* running */
	commit(f, "b.py", "B\n");      /* queued behind it (jobs=1) */
	save_begin(f, "c.py");         /* flushed, never committed */
	a = record_of(f, "a");
	b = record_of(f, "b");
	c = record_of(f, "c");
	assert_int_equal(a->rr.state, RS_RUNNING);
	assert_int_equal(b->rr.state, RS_PENDING);
	assert_int_equal(c->rr.state, RS_PENDING);

	en = (struct ender){ .f = f, .idx = 0 };
	assert_int_equal(pthread_create(&th, NULL, end_after_cancel, &en), 0);
	engine_shutdown(f->e);
	assert_int_equal(pthread_join(th, NULL), 0);

	assert_int_equal(f->fb.runs[0].n_cancel, 1);
	assert_int_equal(f->fb.runs[0].why, CANCEL_SHUTDOWN);
	assert_true(f->fb.runs[0].ended);
	assert_int_equal(f->fb.start_calls, 1);   /* b never started */

	assert_int_equal(a->rr.state, RS_CANCELLED);
	assert_string_equal(a->rr.error_name, "Cancelled");
	assert_int_equal(b->rr.state, RS_CANCELLED);
	assert_null(b->job);
	assert_int_equal(c->rr.state, RS_CANCELLED);
	load_status(f, "a", &rr);
	assert_int_equal(rr.state, RS_CANCELLED);
	assert_true(rr.finished_at_ms > 0);
	run_record_clear_error(&rr);
	load_status(f, "b", &rr);
	assert_int_equal(rr.state, RS_CANCELLED);
	run_record_clear_error(&rr);
	load_status(f, "c", &rr);
	assert_int_equal(rr.state, RS_CANCELLED);
	run_record_clear_error(&rr);
	assert_meta_starts(f, "a.error", "Cancelled: ");
	assert_meta_starts(f, "b.error", "Cancelled: ");
	assert_meta_starts(f, "c.error", "Cancelled: ");
}

/* Shutdown with nothing running returns at once. */
static void test_shutdown_idle(void **state)
{
	struct fx *f = *state;

	start_engine(f);
	commit(f, "x.py", "pass\n");
	end_ok(f, 0);
	engine_shutdown(f->e);
	assert_int_equal(record_of(f, "x")->rr.state, RS_SUCCEEDED);
	assert_int_equal(f->fb.runs[0].n_cancel, 0);
}


/* ---- rich results, history and the overview ------------------------------ */

static struct mime_entry *bundle(const char *m1, const char *d1, const char *m2, const char *d2)
{
	struct mime_entry *e = calloc(2, sizeof(*e));

	assert_non_null(e);
	e[0].mime = strdup(m1);
	e[0].data = strdup(d1);
	e[1].mime = strdup(m2);
	e[1].data = strdup(d2);
	return e;
}

/* Ends run I as succeeded with a figure (PNG) and a main result (2, with HTML). */
static void end_with_results(struct fx *f, size_t i)
{
	struct fake_run *r = &f->fb.runs[i];
	struct exec_result res;

	exec_result_init(&res);
	res.state = RS_SUCCEEDED;
	res.exit_code = 0;
	/* "\x89PNG" in base64 */
	assert_int_equal(exec_result_add(&res, bundle("text/plain", "<Figure>", "image/png", "iVBORw=="), 2, false), 0);
	assert_int_equal(exec_result_add(&res, bundle("text/plain", "2", "text/html", "<b>2</b>"), 2, true), 0);
	r->ended = true;
	r->sink->end(r->ctx, &res);
	exec_result_free(&res);
	free(r->handle);
	r->handle = NULL;
}

/* The main result is "<stem>.result", the rest "<stem>.results/N.ext";
 * both go when the next run begins. */
static void test_rich_results_stored(void **state)
{
	struct fx *f = *state;
	size_t len = 0;
	char *png;

	start_engine(f);
	commit(f, "x.py", "1+1\n");
	end_with_results(f, 0);
	assert_meta_equal(f, "x.result", "2\n");
	assert_meta_equal(f, "x.results/2.html", "<b>2</b>");
	png = read_meta_in(f->store_fd, "x.results/1.png", &len);
	assert_non_null(png);
	assert_int_equal(len, 4);
	assert_memory_equal(png, "\x89PNG", 4);
	free(png);
	assert_false(meta_exists(f, "x.results/1.txt"));
	assert_false(meta_exists(f, ".x.result.tmp"));

	save_begin(f, "x.py");
	assert_false(meta_exists(f, "x.result"));
	assert_false(meta_exists(f, "x.results/2.html"));
	commit(f, "x.py", "pass\n");
	end_ok(f, 1);
	assert_false(meta_exists(f, "x.result"));
	assert_int_equal(faccessat(f->store_fd, NAMES_META_DIR "/x.results", F_OK, AT_SYMLINK_NOFOLLOW), -1);
}

/* Waits for the history writer to write what has ended. */
static void settle_history(struct fx *f)
{
	engine_lock(f->e);
	engine_history_wait(f->e);
	engine_unlock(f->e);
}

/* The inode of PATH in the meta folder, 0 when missing. */
static ino_t meta_ino_or_0(struct fx *f, const char *path)
{
	char p[256];
	struct stat st;

	snprintf(p, sizeof(p), "%s/%s", NAMES_META_DIR, path);
	if (fstatat(f->store_fd, p, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return 0;
	return st.st_ino;
}

/* Each finished run is kept under .runs/<stem>/<n>/, the last N of them;
 * the oldest folder is taken over by the newest run. */
static void test_history_rotation(void **state)
{
	struct fx *f = *state;
	char code[64], out[64], path[64];
	struct run_record rr;
	ino_t second;

	f->cfg.history = 3;
	start_engine(f);
	for (int i = 1; i <= 5; i++) {
		snprintf(code, sizeof(code), "print(%d)\n", i);
		snprintf(out, sizeof(out), "%d\n", i);
		commit(f, "x.py", code);
		deliver_out(f, (size_t)i - 1, 1, out);
		if (i == 4)
			deliver_end(f, 3, RS_FAILED, 1, 0, "ValueError", "four", "Traceback\n");
		else
			end_ok(f, (size_t)i - 1);
		settle_history(f);
		if (i == 2)
			second = meta_ino_or_0(f, ".runs/x/2");
		if (i == 5)
			assert_int_equal(meta_ino_or_0(f, ".runs/x/5"), second);
	}
	assert_false(meta_exists(f, ".runs/x/1/out"));
	assert_false(meta_exists(f, ".runs/x/2/out"));
	for (int i = 3; i <= 5; i++) {
		snprintf(path, sizeof(path), ".runs/x/%d/out", i);
		snprintf(out, sizeof(out), "%d\n", i);
		assert_meta_equal(f, path, out);
		snprintf(path, sizeof(path), ".runs/x/%d/x.py", i);
		snprintf(code, sizeof(code), "print(%d)\n", i);
		assert_meta_equal(f, path, code);
		snprintf(path, sizeof(path), ".runs/x/%d/status", i);
		char *text = read_meta(f, path);
		assert_non_null(text);
		run_record_init(&rr);
		assert_int_equal(status_parse(text, strlen(text), &rr), 0);
		assert_int_equal(rr.run, i);
		assert_int_equal(rr.state, i == 4 ? RS_FAILED : RS_SUCCEEDED);
		run_record_free(&rr);
		free(text);
	}
	assert_meta_equal(f, ".runs/x/4/error", "ValueError: four\nTraceback\n");
	assert_meta_equal(f, ".runs/x/5/error", "");
	assert_meta_equal(f, ".runs/x/5/err", "");

	/* A script gone takes its history with it. */
	engine_lock(f->e);
	engine_script_removed(f->ws, "x.py");
	engine_unlock(f->e);
	assert_int_equal(meta_ino_or_0(f, ".runs"), 0);
}

/* Without a status (removed by hand), numbering goes on after the history. */
static void test_history_numbering_goes_on(void **state)
{
	struct fx *f = *state;
	struct record *rec;

	f->cfg.history = 5;
	start_engine(f);
	commit(f, "x.py", "1\n");
	end_ok(f, 0);
	commit(f, "x.py", "2\n");
	end_ok(f, 1);
	engine_free(f->e);
	f->e = NULL;
	assert_int_equal(unlinkat(f->store_fd, NAMES_META_DIR "/x.status", 0), 0);
	start_engine(f);
	commit(f, "x.py", "3\n");
	rec = record_of(f, "x");
	assert_int_equal(rec->rr.run, 3);
	end_ok(f, 2);
	settle_history(f);
	assert_meta_equal(f, ".runs/x/3/x.py", "3\n");
	assert_meta_equal(f, ".runs/x/1/x.py", "1\n");
}

/* history=0 keeps nothing. */
static void test_history_off(void **state)
{
	struct fx *f = *state;

	start_engine(f);
	commit(f, "x.py", "1\n");
	end_ok(f, 0);
	assert_int_equal(meta_ino_or_0(f, ".runs"), 0);
}

/* The overview lists running, queued and finished runs. */
static void test_overview(void **state)
{
	struct fx *f = *state;
	char *text;

	start_engine(f);
	commit(f, "done.py", "1\n");
	deliver_end(f, 0, RS_FAILED, 1, 0, "KeyError", "k", NULL);
	commit(f, "busy.py", "2\n");
	commit(f, "later.js", "3\n");
	engine_lock(f->e);
	text = engine_overview(f->e);
	engine_unlock(f->e);
	assert_non_null(text);
	assert_non_null(strstr(text, "1 running, 1 waiting (at most 1 at once, fake backend)\n"));
	assert_non_null(strstr(text, "STATE"));
	const char *run = strstr(text, "running  "), *queued = strstr(text, "queued "),
		   *failed = strstr(text, "failed ");
	assert_non_null(run);
	assert_non_null(queued);
	assert_non_null(failed);
	assert_true(run < queued && queued < failed);
	assert_non_null(strstr(run, "/busy.py\n"));
	assert_non_null(strstr(queued, "/later.js\n"));
	assert_non_null(strstr(failed, "/done.py  (ended 0s ago, KeyError)\n"));
	free(text);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
	const struct CMUnitTest tests[] = {
		T(test_save_begin_pending),
		T(test_commit_starts_run),
		T(test_commit_without_flush),
		T(test_out_events),
		T(test_end_success),
		T(test_end_error),
		T(test_end_signal_and_timeout),
		T(test_output_limit),
		T(test_output_limit_exact),
		T(test_output_limit_stderr),
		T(test_output_files_reused_unless_read),
		T(test_commit_timeout),
		T(test_save_while_running),
		T(test_save_while_running_one_job),
		T(test_jobs_queueing),
		T(test_commit_while_queued),
		T(test_script_too_large),
		T(test_backend_start_failure),
		T(test_save_abandon),
		T(test_script_removed),
		T(test_script_removed_while_running),
		T(test_script_removed_while_queued),
		T(test_result_unlink),
		T(test_load_after_crash),
		T(test_store_full_run_fails),
		T(test_store_full_status_in_place),
		T(test_store_full_only_at_save),
		T(test_store_full_timeout),
		T(test_load_empty_status),
		T(test_sub_workspace),
		T(test_shutdown),
		T(test_shutdown_idle),
		T(test_rich_results_stored),
		T(test_history_rotation),
		T(test_history_numbering_goes_on),
		T(test_history_off),
		T(test_overview),
	};
	return cmocka_run_group_tests_name("engine", tests, NULL, NULL);
}
