/* engine: see engine.h */
#define _GNU_SOURCE
#include "engine.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "history.h"
#include "log.h"
#include "rich_files.h"
#include "storefile.h"
#include "threads.h"

enum job_state { JOB_QUEUED, JOB_RUNNING };

struct job {
	struct engine *eng;
	struct record *rec;        /* NULL once superseded: its events are dropped */
	struct job *next;          /* in the queue */
	enum job_state state;
	enum lang lang;
	char *script;
	char *code;
	size_t code_len;
	unsigned timeout_s;        /* 0: the mount's */
	uint64_t run;
	struct run_handle *handle;
	int limit_stream;          /* 1 or 2 once an output limit was hit */
};

struct engine {
	pthread_mutex_t lock;
	pthread_cond_t idle;       /* signalled when a running job ends */
	struct engine_config cfg;
	char *backend_name;
	struct backend *backend;
	struct engine_hooks hooks;
	void *ud;
	struct job *queue, **queue_tail;
	unsigned running;          /* started, end not yet seen */
	unsigned history_busy;     /* runs ended, their history not written yet */
	pthread_mutex_t history_lock; /* one history write or removal at a time; after lock */
	struct history_job *hq, **hq_tail; /* for the history writer */
	pthread_cond_t hq_cond;
	pthread_t history_thread;
	bool history_thread_up, history_stop;
	bool stopping;
	struct workspace **ws;
	size_t n_ws, cap_ws;
	uint64_t next_ws_id;
};

static void schedule(struct engine *e);
static void *history_writer(void *arg);

/* Runs whose history waits for the writer at most; past that, the end of
 * a run writes its own (and holds its output files open meanwhile). */
#define HISTORY_QUEUE_MAX 64

int64_t engine_now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void engine_lock(struct engine *e)
{
	pthread_mutex_lock(&e->lock);
}

void engine_unlock(struct engine *e)
{
	pthread_mutex_unlock(&e->lock);
}

struct engine *engine_new(const struct engine_config *cfg, struct backend *backend,
			  const struct engine_hooks *hooks, void *ud)
{
	struct engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->cfg = *cfg;
	e->backend_name = strdup(cfg->backend_name ? cfg->backend_name : "local");
	if (!e->backend_name) {
		free(e);
		return NULL;
	}
	e->cfg.backend_name = e->backend_name;
	if (e->cfg.jobs == 0)
		e->cfg.jobs = 1;
	e->backend = backend;
	e->hooks = *hooks;
	e->ud = ud;
	e->queue_tail = &e->queue;
	pthread_mutex_init(&e->lock, NULL);
	pthread_mutex_init(&e->history_lock, NULL);
	pthread_cond_init(&e->idle, NULL);
	pthread_cond_init(&e->hq_cond, NULL);
	e->hq_tail = &e->hq;
	if (e->cfg.history > 0) {
		int rc = thread_start(&e->history_thread, NULL, history_writer, e);
		if (rc == 0)
			e->history_thread_up = true;
		else
			log_warn("no history writer thread (%s): runs end after their history is written",
				 strerror(rc));
	}
	return e;
}

/* ---- the store --------------------------------------------------------- */

static int meta_dir(struct workspace *ws, bool create)
{
	struct stat st;

	/* The folder may have been removed behind our back (the store
	 * emptied by hand): then make it anew. */
	if (ws->meta_fd >= 0 && fstatat(ws->meta_fd, "", &st, AT_EMPTY_PATH) == 0 && st.st_nlink > 0)
		return ws->meta_fd;
	if (ws->meta_fd >= 0) {
		close(ws->meta_fd);
		ws->meta_fd = -1;
	}
	int fd = openat(ws->store_fd, NAMES_META_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(ws->store_fd, NAMES_META_DIR, 0755) < 0 && errno != EEXIST)
			return -errno;
		fd = openat(ws->store_fd, NAMES_META_DIR, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	if (fd < 0)
		return -errno;
	ws->meta_fd = fd;
	return fd;
}

int engine_meta_fd(struct workspace *ws)
{
	return meta_dir(ws, false);
}

static void file_name(char *buf, size_t sz, const struct record *rec, enum result_kind kind)
{
	if (!result_name(buf, sz, rec->stem, kind))
		buf[0] = '\0';
}

/* Overwrites NAME in place: the fallback when the store has no room for a
 * new copy, as this takes no new space when the old content took as much (a
 * status record or an error text fits in the block it had). Not atomic: a
 * crash in the middle can leave a torn file, which a remount ignores. On
 * failure NAME is left empty, never holding an older run's text; either way
 * it exists, so the mount shows it (with the text the engine keeps). */
static int write_in_place(int dir, const char *name, const char *data, size_t len)
{
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644), rc = 0;

	if (fd < 0)
		return -errno;
	for (size_t off = 0; off < len;) {
		ssize_t n = pwrite(fd, data + off, len - off, (off_t)off);
		if (n < 0) {
			rc = -errno;
			break;
		}
		off += (size_t)n;
	}
	if (rc == 0 && ftruncate(fd, (off_t)len) < 0)
		rc = -errno;
	if (rc < 0 && ftruncate(fd, 0) < 0)
		log_error("cannot empty %s after a failed write: %s", name, strerror(errno));
	if (close(fd) < 0 && rc == 0)
		rc = -errno;
	return rc;
}

/* The spare of result file NAME: ".NAME.tmp". */
static void spare_name(char *buf, size_t sz, const char *name)
{
	snprintf(buf, sz, ".%s.tmp", name);
}

/* Puts the complete file SPARE in the place of NAME in one step, so that a
 * crash leaves the old or the new version. Exchanged where the file system
 * can: the replaced version is then the next spare, and a run's results
 * reuse the same few inodes instead of creating and deleting new ones (on
 * ext4 the search for a free inode, which skips recently deleted ones, was
 * the largest cost of a run's bookkeeping). */
static int swap_in(int dir, const char *spare, const char *name)
{
	if (renameat2(dir, spare, dir, name, RENAME_EXCHANGE) == 0)
		return 0;
	/* ENOENT: no NAME yet; EINVAL: a file system without exchange. */
	if (errno != ENOENT && errno != EINVAL && errno != ENOSYS && errno != EOPNOTSUPP)
		return -errno;
	return renameat(dir, spare, dir, name) < 0 ? -errno : 0;
}

/* Writes DATA to NAME in the meta folder so that a crash leaves the old or
 * the new content, never a mix; in place when the store is full. Nobody
 * reads the spare: the mount serves status and error texts from memory. */
static int write_atomic(struct record *rec, enum result_kind kind, const char *data, size_t len)
{
	char name[NAME_MAX + 1], tmp[NAME_MAX + 16];
	int dir = meta_dir(rec->ws, true), rc;

	if (dir < 0)
		return dir;
	file_name(name, sizeof(name), rec, kind);
	spare_name(tmp, sizeof(tmp), name);
	rc = storefile_write(dir, tmp, data, len);
	if (rc == 0)
		rc = swap_in(dir, tmp, name);
	if (rc < 0)
		unlinkat(dir, tmp, 0);
	if ((rc == -ENOSPC || rc == -EDQUOT) && write_in_place(dir, name, data, len) == 0)
		rc = 0;
	return rc;
}

/* A fresh, empty output file swapped in for KIND: readers of the previous
 * run keep the old one. The spare (the output of the run before) is emptied
 * and reused only while no reader has any output file of KIND open, since a
 * reader of that run may hold it; otherwise a new file takes its place.
 * Returns a write fd or -errno. */
static int fresh_output(struct record *rec, enum result_kind kind)
{
	char name[NAME_MAX + 1], tmp[NAME_MAX + 16];
	int dir = meta_dir(rec->ws, true), fd, rc;

	if (dir < 0)
		return dir;
	file_name(name, sizeof(name), rec, kind);
	spare_name(tmp, sizeof(tmp), name);
	if (__atomic_load_n(&rec->readers[kind], __ATOMIC_ACQUIRE) > 0 && unlinkat(dir, tmp, 0) < 0 &&
	    errno != ENOENT)
		return -errno;
	fd = openat(dir, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW | O_APPEND, 0644);
	if (fd < 0)
		return -errno;
	if ((rc = swap_in(dir, tmp, name)) < 0) {
		close(fd);
		unlinkat(dir, tmp, 0);
		return rc;
	}
	return fd;
}

/* Something of REC's current run could not be stored (ERR is an errno):
 * the first failure of a run is logged, the rest would only repeat it. */
static void store_failed(struct record *rec, const char *what, int err)
{
	if (rec->store_err)
		return;
	rec->store_err = err;
	log_error("cannot store %s of %s%s%s: %s (not logged again for this run)", what, rec->ws->path,
		  strcmp(rec->ws->path, "/") ? "/" : "", rec->stem, strerror(err));
}

/* RC of writing the file of KIND: on failure the newest text stays only in
 * memory, and the mount serves it from there. */
static void note_stored(struct record *rec, enum result_kind kind, int rc, const char *what)
{
	if (rc == 0) {
		rec->unstored &= ~(1u << kind);
		return;
	}
	rec->unstored |= 1u << kind;
	store_failed(rec, what, -rc);
}

static void save_status(struct record *rec)
{
	char *text = status_render(&rec->rr);
	int rc = text ? write_atomic(rec, RK_STATUS, text, strlen(text)) : -ENOMEM;

	note_stored(rec, RK_STATUS, rc, "the status");
	free(text);
}

static void save_error_text(struct record *rec)
{
	int rc = write_atomic(rec, RK_ERROR, rec->error_text ? rec->error_text : "",
			      rec->error_text ? strlen(rec->error_text) : 0);

	note_stored(rec, RK_ERROR, rc, "the error file");
}

/* Renders REC's ".error" text from the error of its record, with TRACEBACK
 * (may be NULL) below the first line. */
static void render_error_text(struct record *rec, const char *traceback)
{
	struct exec_result tmp;

	exec_result_init(&tmp);
	if (rec->rr.error_name)
		exec_result_set_error(&tmp, rec->rr.error_name, rec->rr.error_value, traceback);
	free(rec->error_text);
	rec->error_text = exec_error_render(&tmp);
	exec_result_free(&tmp);
}

/* The names of REC's views in the meta folder: "<stem>.result" and
 * "<stem>.results" (SUFFIX), or their temporary ".<stem>.result.tmp". */
static void view_name(char *buf, size_t sz, const struct record *rec, const char *suffix, bool tmp)
{
	snprintf(buf, sz, "%s%s%s%s", tmp ? "." : "", rec->stem, suffix, tmp ? ".tmp" : "");
}

/* The rich results of the previous run go when a new one begins. */
static void drop_rich(struct record *rec)
{
	char name[NAME_MAX + 1];
	int dir = meta_dir(rec->ws, false);

	if (dir < 0)
		return;
	view_name(name, sizeof(name), rec, ".result", false);
	unlinkat(dir, name, 0);
	view_name(name, sizeof(name), rec, ".results", false);
	storefile_remove_tree(dir, name);
}

/* Stores the rich files of DATA under NAME in DIR: made complete under a
 * temporary name, then renamed into place. */
static int store_rich_dir(int dir, const char *tmp, const char *name, const struct rich_files *rf)
{
	int rc = storefile_remove_tree(dir, tmp), fd;

	if (rc < 0)
		return rc;
	if (mkdirat(dir, tmp, 0755) < 0)
		return -errno;
	fd = openat(dir, tmp, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd < 0)
		rc = -errno;
	for (size_t i = 0; rc == 0 && i < rf->n; i++)
		rc = storefile_write(fd, rf->files[i].name, rf->files[i].data, rf->files[i].len);
	if (fd >= 0)
		close(fd);
	if (rc == 0 && (rc = storefile_remove_tree(dir, name)) == 0 && renameat(dir, tmp, dir, name) < 0)
		rc = -errno;
	if (rc < 0)
		storefile_remove_tree(dir, tmp);
	return rc;
}

/* Stores the main result and the other rich results of REC's run, RES, as
 * "<stem>.result" and "<stem>.results/". */
static void store_rich(struct record *rec, const struct exec_result *res)
{
	char name[NAME_MAX + 1], tmp[NAME_MAX + 1];
	struct rich_files rf;
	int dir, rc;

	if (res->n_results == 0)
		return;
	rc = rich_files_make(res, &rf);
	dir = rc < 0 ? rc : meta_dir(rec->ws, true);
	if (dir >= 0 && rf.main_text) {
		view_name(name, sizeof(name), rec, ".result", false);
		view_name(tmp, sizeof(tmp), rec, ".result", true);
		rc = storefile_write(dir, tmp, rf.main_text, rf.main_len);
		if (rc == 0 && renameat(dir, tmp, dir, name) < 0)
			rc = -errno;
		if (rc < 0)
			unlinkat(dir, tmp, 0);
	}
	if (dir >= 0 && rc == 0 && rf.n) {
		view_name(name, sizeof(name), rec, ".results", false);
		view_name(tmp, sizeof(tmp), rec, ".results", true);
		rc = store_rich_dir(dir, tmp, name, &rf);
	}
	if (dir < 0)
		rc = dir;
	if (rc < 0) {
		store_failed(rec, "the rich results", -rc);
		rec->output_lost = true;
	}
	rich_files_free(&rf);
}

static char *read_small(int dir, const char *name, size_t max, size_t *len)
{
	int fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	struct stat st;
	char *buf = NULL;

	if (fd < 0)
		return NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size <= max) {
		buf = malloc((size_t)st.st_size + 1);
		ssize_t n = buf ? pread(fd, buf, (size_t)st.st_size, 0) : -1;
		if (n < 0) {
			free(buf);
			buf = NULL;
		} else {
			buf[n] = '\0';
			*len = (size_t)n;
		}
	}
	close(fd);
	return buf;
}

static void close_outputs(struct record *rec)
{
	if (rec->out_fd >= 0)
		close(rec->out_fd);
	if (rec->err_fd >= 0)
		close(rec->err_fd);
	rec->out_fd = rec->err_fd = -1;
}

/* ---- records ----------------------------------------------------------- */

struct workspace *engine_workspace_new(struct engine *e, int store_fd, const char *path)
{
	struct workspace *ws = calloc(1, sizeof(*ws));

	if (!ws)
		return NULL;
	ws->eng = e;
	ws->meta_fd = -1;
	ws->id = ++e->next_ws_id;
	ws->store_fd = fcntl(store_fd, F_DUPFD_CLOEXEC, 3);
	ws->path = strdup(path ? path : "/");
	if (ws->store_fd < 0 || !ws->path)
		goto fail;
	if (e->n_ws == e->cap_ws) {
		size_t cap = e->cap_ws ? e->cap_ws * 2 : 16;
		struct workspace **n = realloc(e->ws, cap * sizeof(*n));
		if (!n)
			goto fail;
		e->ws = n;
		e->cap_ws = cap;
	}
	e->ws[e->n_ws++] = ws;
	return ws;
fail:
	if (ws->store_fd >= 0)
		close(ws->store_fd);
	free(ws->path);
	free(ws);
	return NULL;
}

void engine_workspace_removed(struct workspace *ws)
{
	struct backend *b = ws->eng->backend;

	if (b->ops->release_workspace)
		b->ops->release_workspace(b, ws->id);
}

static bool any_result_on_disk(struct workspace *ws, const char *stem)
{
	int dir = meta_dir(ws, false);
	char name[NAME_MAX + 1];
	struct stat st;

	if (dir < 0)
		return false;
	for (int k = 0; k < RK_COUNT; k++)
		if (result_name(name, sizeof(name), stem, (enum result_kind)k) &&
		    fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0)
			return true;
	return false;
}

/* After a crash: a run that was pending or running is marked interrupted.
 * After a full store: what write_in_place left empty is made whole again. */
static void load_record(struct record *rec)
{
	int dir = meta_dir(rec->ws, false);
	char name[NAME_MAX + 1];
	size_t len = 0;
	bool lost;
	char *text;

	if (dir < 0)
		return;
	file_name(name, sizeof(name), rec, RK_STATUS);
	text = read_small(dir, name, 1 << 20, &len);
	lost = text && len == 0;
	if (text && !lost && status_parse(text, len, &rec->rr) < 0)
		log_error("ignoring a malformed status file for %s in %s", rec->stem, rec->ws->path);
	free(text);
	/* Without a status, numbering goes on after the runs kept. */
	if (rec->rr.run == 0)
		rec->rr.run = history_last(dir, rec->stem);
	file_name(name, sizeof(name), rec, RK_ERROR);
	rec->error_text = read_small(dir, name, 1 << 20, &len);
	if (lost) {
		rec->rr.state = RS_FAILED;
		run_record_set_error(&rec->rr, "StoreError",
				     "the record of the last run could not be stored (the store was full); "
				     "save the script again to run it");
		render_error_text(rec, NULL);
		save_error_text(rec);
		save_status(rec);
	} else if (rec->rr.state == RS_PENDING || rec->rr.state == RS_RUNNING) {
		/* The crash may have come before the new run's outputs replaced
		 * the old run's: those (older than the save) do not belong to it. */
		for (int k = RK_OUT; k <= RK_ERR; k++) {
			struct stat st;
			char out_name[NAME_MAX + 1];
			file_name(out_name, sizeof(out_name), rec, (enum result_kind)k);
			if (fstatat(dir, out_name, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
			    (int64_t)st.st_mtim.tv_sec * 1000 + st.st_mtim.tv_nsec / 1000000 < rec->rr.saved_at_ms) {
				int fd = fresh_output(rec, (enum result_kind)k);
				if (fd >= 0)
					close(fd);
			}
		}
		rec->rr.state = RS_INTERRUPTED;
		rec->rr.finished_at_ms = 0;
		run_record_set_error(&rec->rr, "Interrupted",
				     "agentbayfs stopped before this run finished (the daemon was killed or crashed); "
				     "save the script again to rerun it");
		render_error_text(rec, NULL);
		save_error_text(rec);
		save_status(rec);
	} else if (rec->rr.error_name && rec->error_text && !rec->error_text[0]) {
		/* The status was stored but the error text was not. */
		render_error_text(rec, NULL);
		save_error_text(rec);
	}
}

struct record *engine_record(struct workspace *ws, const char *stem, size_t stem_len, bool create)
{
	struct record *rec;

	for (rec = ws->records; rec; rec = rec->next)
		if (strlen(rec->stem) == stem_len && memcmp(rec->stem, stem, stem_len) == 0)
			return rec;
	rec = calloc(1, sizeof(*rec));
	if (!rec)
		return NULL;
	rec->stem = strndup(stem, stem_len);
	if (!rec->stem) {
		free(rec);
		return NULL;
	}
	if (!create && !any_result_on_disk(ws, rec->stem)) {
		free(rec->stem);
		free(rec);
		return NULL;
	}
	rec->ws = ws;
	rec->out_fd = rec->err_fd = -1;
	run_record_init(&rec->rr);
	snprintf(rec->rr.backend, sizeof(rec->rr.backend), "%s", ws->eng->backend_name);
	load_record(rec);
	rec->next = ws->records;
	ws->records = rec;
	return rec;
}

bool engine_result_exists(struct record *rec, enum result_kind kind)
{
	char name[NAME_MAX + 1];
	struct stat st;
	int dir = meta_dir(rec->ws, false);

	if (rec->unstored & (1u << kind))
		return true;
	if (dir < 0)
		return false;
	file_name(name, sizeof(name), rec, kind);
	return fstatat(dir, name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISREG(st.st_mode);
}

/* A copy in memory of the text of KIND (status or error) of REC, for when
 * the store could not even take an empty file of it. Returns an fd or -errno. */
static int memory_copy(struct record *rec, enum result_kind kind)
{
	char *text = kind == RK_STATUS ? status_render(&rec->rr) : strdup(rec->error_text ? rec->error_text : "");
	size_t len = text ? strlen(text) : 0;
	int fd, rc = 0;

	if (!text)
		return -ENOMEM;
	fd = memfd_create("agentbayfs-result", MFD_CLOEXEC);
	if (fd < 0)
		rc = -errno;
	for (size_t off = 0; rc == 0 && off < len;) {
		ssize_t n = write(fd, text + off, len - off);
		if (n < 0)
			rc = -errno;
		else
			off += (size_t)n;
	}
	if (rc == 0 && lseek(fd, 0, SEEK_SET) < 0)
		rc = -errno;
	free(text);
	if (rc < 0 && fd >= 0)
		close(fd);
	return rc < 0 ? rc : fd;
}

int engine_result_open(struct record *rec, enum result_kind kind)
{
	char name[NAME_MAX + 1];
	int dir = meta_dir(rec->ws, false), fd = dir;

	if (dir >= 0) {
		file_name(name, sizeof(name), rec, kind);
		fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
		if (fd < 0)
			fd = -errno;
	}
	if (fd == -ENOENT && (rec->unstored & (1u << kind)))
		fd = memory_copy(rec, kind);
	if (fd >= 0)
		__atomic_add_fetch(&rec->readers[kind], 1, __ATOMIC_ACQ_REL);
	return fd;
}

void engine_result_close(struct record *rec, enum result_kind kind, int fd)
{
	close(fd);
	__atomic_sub_fetch(&rec->readers[kind], 1, __ATOMIC_ACQ_REL);
}

int engine_result_unlink(struct record *rec, enum result_kind kind)
{
	char name[NAME_MAX + 1];
	int dir = meta_dir(rec->ws, false), rc = dir < 0 ? dir : 0;

	if (dir >= 0) {
		file_name(name, sizeof(name), rec, kind);
		if (unlinkat(dir, name, 0) < 0)
			rc = -errno;
	}
	/* A text kept only in memory goes as if it had been a file. */
	if (rc == -ENOENT && (rec->unstored & (1u << kind)))
		rc = 0;
	if (rc < 0)
		return rc;
	rec->unstored &= ~(1u << kind);
	rec->ws->eng->hooks.changed(rec->ws->eng->ud, rec);
	return 0;
}

bool engine_run_active(const struct record *rec, uint64_t run)
{
	return rec->rr.run == run && (rec->rr.state == RS_PENDING || rec->rr.state == RS_RUNNING);
}

/* ---- runs -------------------------------------------------------------- */

static void job_free(struct job *j)
{
	free(j->script);
	free(j->code);
	free(j);
}

static void dequeue(struct engine *e, struct job *j)
{
	struct job **pp = &e->queue;

	while (*pp && *pp != j)
		pp = &(*pp)->next;
	if (!*pp)
		return;
	*pp = j->next;
	if (e->queue_tail == &j->next)
		e->queue_tail = pp;
	j->next = NULL;
}

/* Detaches the record's job: a queued one is dropped, a running one is
 * cancelled and its events ignored from now on. */
static void drop_job(struct record *rec, enum cancel_reason why)
{
	struct job *j = rec->job;
	struct engine *e = rec->ws->eng;

	if (!j)
		return;
	rec->job = NULL;
	j->rec = NULL;
	if (j->state == JOB_QUEUED) {
		dequeue(e, j);
		job_free(j);
	} else {
		e->backend->ops->cancel(e->backend, j->handle, why);
	}
}

/* The store did not take all of the run of REC, which ended as RES: it
 * ends failed, saying so, with the run's own error below the first line. */
static void fail_unstored(struct record *rec, const struct exec_result *res)
{
	int err = rec->store_err ? rec->store_err : EIO;
	char msg[256];
	char *own = res->has_error ? exec_error_render(res) : NULL;

	snprintf(msg, sizeof(msg), "%s: the results of this run could not be stored%s; %ssave the script again",
		 strerror(err), rec->rr.truncated ? " (its output is cut short)" : "",
		 err == ENOSPC || err == EDQUOT ? "free space in the store, then " : "");
	rec->rr.state = RS_FAILED;
	run_record_set_error(&rec->rr, "StoreError", msg);
	render_error_text(rec, own);
	free(own);
}

/* Ends the current run of REC with RES (state, error, codes). */
static void finalize(struct record *rec, const struct exec_result *res)
{
	struct engine *e = rec->ws->eng;

	rec->rr.state = res->state;
	rec->rr.exit_code = res->exit_code;
	rec->rr.signal = res->signal;
	rec->rr.finished_at_ms = engine_now_ms();
	if (rec->rr.started_at_ms == 0)
		rec->rr.started_at_ms = rec->rr.finished_at_ms;
	rec->rr.truncated = rec->rr.truncated || res->truncated;
	if (res->has_error)
		run_record_set_error(&rec->rr, res->error.name, res->error.value);
	else
		run_record_clear_error(&rec->rr);
	if (run_record_set_results(&rec->rr, res) < 0)
		log_error("out of memory keeping the results of %s", rec->stem);
	free(rec->error_text);
	rec->error_text = exec_error_render(res);
	close_outputs(rec);
	store_rich(rec, res);
	save_error_text(rec);
	save_status(rec);
	/* A run that lost output or results never passes for a complete one;
	 * timed out, cancelled and interrupted runs keep what they say. */
	if ((rec->output_lost || (rec->unstored & (1u << RK_STATUS | 1u << RK_ERROR))) &&
	    (rec->rr.state == RS_SUCCEEDED || rec->rr.state == RS_FAILED)) {
		fail_unstored(rec, res);
		save_error_text(rec);
		save_status(rec);
	}
	e->hooks.changed(e->ud, rec);
}

static void finalize_error(struct record *rec, enum run_state state, const char *name, const char *value)
{
	struct exec_result res;

	exec_result_init(&res);
	res.state = state;
	exec_result_set_error(&res, name, value, NULL);
	finalize(rec, &res);
	exec_result_free(&res);
}

/* The output file of KIND for a new run of REC: a write fd, or -1 when the
 * store cannot take it (the run's output is lost then). */
static int open_output(struct record *rec, enum result_kind kind)
{
	char name[NAME_MAX + 1];
	int fd = fresh_output(rec, kind), dir;

	if (fd >= 0)
		return fd;
	store_failed(rec, kind == RK_OUT ? "the output file" : "the error output file", -fd);
	rec->output_lost = true;
	/* The previous run's output must not pass for this run's. */
	dir = meta_dir(rec->ws, false);
	file_name(name, sizeof(name), rec, kind);
	if (dir >= 0)
		unlinkat(dir, name, 0);
	return -1;
}

struct record *engine_save_begin(struct workspace *ws, const char *script, enum lang lang)
{
	size_t stem_len = name_stem_len(script);
	struct record *rec = engine_record(ws, script, stem_len, true);

	if (!rec)
		return NULL;
	snprintf(rec->rr.script, sizeof(rec->rr.script), "%s", script);
	rec->rr.lang = lang;
	if (rec->rr.state == RS_PENDING)
		return rec;
	drop_job(rec, CANCEL_SUPERSEDED);
	close_outputs(rec);
	rec->rr.run++;
	rec->rr.state = RS_PENDING;
	rec->rr.exit_code = -1;
	rec->rr.signal = 0;
	rec->rr.saved_at_ms = engine_now_ms();
	rec->rr.started_at_ms = rec->rr.finished_at_ms = 0;
	rec->rr.stdout_bytes = rec->rr.stderr_bytes = 0;
	rec->rr.truncated = false;
	rec->rr.execution_count = -1;
	run_record_free(&rec->rr);
	free(rec->error_text);
	rec->error_text = NULL;
	rec->store_err = 0;
	rec->output_lost = false;
	drop_rich(rec);
	/* The pending status goes first: a crash from here on leaves a run
	 * that shows as interrupted, never the old status over new files. */
	save_status(rec);
	rec->out_fd = open_output(rec, RK_OUT);
	rec->err_fd = open_output(rec, RK_ERR);
	/* The mount serves a running script's .error from memory (it waits
	 * for the end), and a remount rewrites the error of a run cut short:
	 * the stored file need only exist until the run's end replaces it. */
	if (!engine_result_exists(rec, RK_ERROR))
		save_error_text(rec);
	ws->eng->hooks.changed(ws->eng->ud, rec);
	return rec;
}

static char *snapshot(int fd, uint64_t max, size_t *len, int *err)
{
	struct stat st;
	char *buf;
	size_t off = 0;

	if (fstat(fd, &st) < 0) {
		*err = errno;
		return NULL;
	}
	if ((uint64_t)st.st_size > max) {
		*err = EFBIG;
		return NULL;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		*err = ENOMEM;
		return NULL;
	}
	while (off < (size_t)st.st_size) {
		ssize_t n = pread(fd, buf + off, (size_t)st.st_size - off, (off_t)off);
		if (n < 0) {
			*err = errno;
			free(buf);
			return NULL;
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	*len = off;
	return buf;
}

void engine_save_commit(struct workspace *ws, const char *script, enum lang lang, unsigned timeout_s, int fd)
{
	struct engine *e = ws->eng;
	struct record *rec = engine_save_begin(ws, script, lang);
	size_t len = 0;
	int err = 0;
	char *code;
	struct job *j;

	if (!rec)
		return;
	code = snapshot(fd, e->cfg.max_script_size, &len, &err);
	if (!code) {
		char msg[512];
		if (err == EFBIG)
			snprintf(msg, sizeof(msg),
				 "%s is larger than the limit of %llu bytes and was not run; "
				 "raise it with -o max_script_size=BYTES", script,
				 (unsigned long long)e->cfg.max_script_size);
		else
			snprintf(msg, sizeof(msg), "%s could not be read from the store: %s", script, strerror(err));
		drop_job(rec, CANCEL_SUPERSEDED);
		finalize_error(rec, RS_FAILED, err == EFBIG ? "ScriptTooLarge" : "StoreError", msg);
		return;
	}
	if (rec->job && rec->job->state == JOB_QUEUED) {
		/* Saved again before it could start: run the newest content once. */
		j = rec->job;
		free(j->code);
		free(j->script);
		j->script = strdup(script);
		j->code = code;
		j->code_len = len;
		j->lang = lang;
		j->timeout_s = timeout_s;
		if (!j->script) {
			drop_job(rec, CANCEL_SUPERSEDED);
			finalize_error(rec, RS_FAILED, "InternalError", "out of memory");
		}
		return;
	}
	j = calloc(1, sizeof(*j));
	if (!j || !(j->script = strdup(script))) {
		free(j);
		free(code);
		finalize_error(rec, RS_FAILED, "InternalError", "out of memory");
		return;
	}
	j->eng = e;
	j->rec = rec;
	j->state = JOB_QUEUED;
	j->lang = lang;
	j->code = code;
	j->code_len = len;
	j->timeout_s = timeout_s;
	j->run = rec->rr.run;
	rec->job = j;
	*e->queue_tail = j;
	e->queue_tail = &j->next;
	schedule(e);
}

void engine_save_abandon(struct record *rec, const char *why)
{
	if (rec->rr.state != RS_PENDING || rec->job)
		return;
	finalize_error(rec, RS_CANCELLED, "Cancelled", why);
}

void engine_script_removed(struct workspace *ws, const char *script)
{
	struct record *rec = engine_record(ws, script, name_stem_len(script), false);
	int dir;

	if (!rec || strcmp(rec->rr.script, script) != 0)
		return;
	drop_job(rec, CANCEL_REMOVED);
	close_outputs(rec);
	dir = meta_dir(ws, false);
	for (int k = 0; k < RK_COUNT && dir >= 0; k++) {
		char name[NAME_MAX + 1], tmp[NAME_MAX + 16];
		file_name(name, sizeof(name), rec, (enum result_kind)k);
		unlinkat(dir, name, 0);
		spare_name(tmp, sizeof(tmp), name);
		unlinkat(dir, tmp, 0);
	}
	drop_rich(rec);
	if (dir >= 0) {
		pthread_mutex_lock(&ws->eng->history_lock);
		history_remove(dir, rec->stem);
		pthread_mutex_unlock(&ws->eng->history_lock);
	}
	run_record_free(&rec->rr);
	run_record_init(&rec->rr);
	snprintf(rec->rr.backend, sizeof(rec->rr.backend), "%s", ws->eng->backend_name);
	free(rec->error_text);
	rec->error_text = NULL;
	rec->unstored = 0;
	rec->store_err = 0;
	rec->output_lost = false;
	ws->eng->hooks.changed(ws->eng->ud, rec);
}

/* ---- backend events (backend threads, lock not held) -------------------- */

/* Appends DATA to the output file *FD of REC's run and returns how much it
 * took. On a failure the file keeps what it has (a prefix of the stream)
 * and the rest of the stream is dropped. */
static size_t store_output(struct record *rec, int *fd, const char *data, size_t len)
{
	size_t done = 0;

	while (*fd >= 0 && done < len) {
		ssize_t n = write(*fd, data + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			store_failed(rec, "the output", errno);
			close(*fd);
			*fd = -1;
			break;
		}
		done += (size_t)n;
	}
	if (done < len) {
		rec->output_lost = true;
		rec->rr.truncated = true;
	}
	return done;
}

static void sink_out(void *ctx, int stream, const char *data, size_t len)
{
	struct job *j = ctx;
	struct engine *e = j->eng;

	engine_lock(e);
	struct record *rec = j->rec;
	if (rec && !j->limit_stream) {
		uint64_t *count = stream == 1 ? &rec->rr.stdout_bytes : &rec->rr.stderr_bytes;
		int *fd = stream == 1 ? &rec->out_fd : &rec->err_fd;
		uint64_t room = e->cfg.max_output > *count ? e->cfg.max_output - *count : 0;
		size_t keep = len < room ? len : (size_t)room;
		if (keep > 0)
			*count += store_output(rec, fd, data, keep);
		if (keep < len) {
			rec->rr.truncated = true;
			j->limit_stream = stream;
			e->backend->ops->cancel(e->backend, j->handle, CANCEL_OUTPUT_LIMIT);
		}
		e->hooks.changed(e->ud, rec);
	}
	engine_unlock(e);
}

/* The run of REC has begun: the one place a record becomes running. The
 * status is served from memory; the stored one says "pending" until the
 * end, which a remount treats the same as "running" (interrupted). */
static void mark_running(struct record *rec)
{
	rec->rr.state = RS_RUNNING;
	rec->rr.started_at_ms = engine_now_ms();
}

static void sink_started(void *ctx)
{
	struct job *j = ctx;
	struct engine *e = j->eng;

	engine_lock(e);
	struct record *rec = j->rec;
	if (rec && rec->rr.state == RS_PENDING) {
		mark_running(rec);
		e->hooks.changed(e->ud, rec);
	}
	engine_unlock(e);
}

/* A run to keep in the history: taken under the engine lock, written
 * without it, so that neither the readers of the run's end nor other runs
 * wait for the copy (it took about as long as the rest of a run's
 * bookkeeping). The output files are held open as readers, so the engine
 * never reuses them meanwhile. */
struct history_job {
	struct history_job *next;
	struct record *rec;
	int meta;                  /* a dup of the meta folder's fd */
	struct history_run h;
	char *stem, *script, *code, *error, *status, *where;
};

static void history_job_free(struct history_job *hj)
{
	if (hj->h.out_fd >= 0)
		engine_result_close(hj->rec, RK_OUT, hj->h.out_fd);
	if (hj->h.err_fd >= 0)
		engine_result_close(hj->rec, RK_ERR, hj->h.err_fd);
	if (hj->h.result_fd >= 0)
		close(hj->h.result_fd);
	if (hj->meta >= 0)
		close(hj->meta);
	free(hj->stem);
	free(hj->script);
	free(hj->code);
	free(hj->error);
	free(hj->status);
	free(hj->where);
}

/* Takes what the history needs of the run of REC that job J ran, now
 * final (J's code and script name go to HJ). False when there is nothing
 * to keep. Lock held. */
static bool history_take(struct record *rec, struct job *j, struct history_job *hj)
{
	struct engine *e = rec->ws->eng;
	char name[NAME_MAX + 1];
	int dir;

	memset(hj, 0, sizeof(*hj));
	hj->meta = hj->h.out_fd = hj->h.err_fd = hj->h.result_fd = -1;
	if (e->cfg.history == 0)
		return false;
	hj->rec = rec;
	dir = meta_dir(rec->ws, true);
	hj->meta = dir < 0 ? -1 : fcntl(dir, F_DUPFD_CLOEXEC, 3);
	hj->stem = strdup(rec->stem);
	hj->script = j->script;
	j->script = NULL;
	hj->code = j->code;
	j->code = NULL;
	hj->error = strdup(rec->error_text ? rec->error_text : "");
	hj->status = status_render(&rec->rr);
	if (asprintf(&hj->where, "%s%s", rec->ws->path, strcmp(rec->ws->path, "/") ? "/" : "") < 0)
		hj->where = NULL;
	if (hj->meta < 0 || !hj->stem || !hj->script || !hj->error || !hj->status || !hj->where) {
		log_error("cannot keep run %llu of %s in the history: %s", (unsigned long long)rec->rr.run,
			  rec->rr.script, dir < 0 ? strerror(-dir) : strerror(errno ? errno : ENOMEM));
		history_job_free(hj);
		return false;
	}
	int fd = engine_result_open(rec, RK_OUT);
	hj->h.out_fd = fd < 0 ? -1 : fd;
	fd = engine_result_open(rec, RK_ERR);
	hj->h.err_fd = fd < 0 ? -1 : fd;
	view_name(name, sizeof(name), rec, ".result", false);
	hj->h.result_fd = openat(dir, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	hj->h.stem = hj->stem;
	hj->h.n = rec->rr.run;
	hj->h.script = hj->script;
	hj->h.code = hj->code;
	hj->h.code_len = hj->code ? j->code_len : 0;
	hj->h.error = hj->error;
	hj->h.status = hj->status;
	return true;
}

/* Writes HJ into the history and frees it. Lock not held. */
static void history_put(struct engine *e, struct history_job *hj)
{
	int rc = 0;

	/* The script may have been removed (and its history with it) since:
	 * then the run is not kept. The history lock comes before the engine
	 * lock is let go, so a removal from now on waits for this write. */
	engine_lock(e);
	bool gone = hj->rec->rr.run < hj->h.n;
	pthread_mutex_lock(&e->history_lock);
	engine_unlock(e);
	if (!gone)
		rc = history_keep(hj->meta, &hj->h, e->cfg.history);
	pthread_mutex_unlock(&e->history_lock);
	if (rc < 0)
		log_error("cannot keep run %llu of %s%s in the history: %s", (unsigned long long)hj->h.n, hj->where,
			  hj->script, strerror(-rc));
	history_job_free(hj);
}

/* Writes HJ, frees it, and counts it done. Lock not held. */
static void history_done(struct engine *e, struct history_job *hj)
{
	history_put(e, hj);
	free(hj);
	engine_lock(e);
	e->history_busy--;
	pthread_cond_broadcast(&e->idle);
	engine_unlock(e);
}

/* The history writer: a thread of low priority, so that keeping runs
 * never competes with the runs themselves or their readers (on two CPUs
 * it showed in every run's latency, even outside the engine lock). */
static void *history_writer(void *arg)
{
	struct engine *e = arg;

	if (setpriority(PRIO_PROCESS, (id_t)syscall(SYS_gettid), 19) < 0)
		log_warn("the history writer keeps normal priority: %s", strerror(errno));
	engine_lock(e);
	for (;;) {
		while (!e->hq && !e->history_stop)
			pthread_cond_wait(&e->hq_cond, &e->lock);
		if (!e->hq)
			break;
		struct history_job *hj = e->hq;
		e->hq = hj->next;
		if (!e->hq)
			e->hq_tail = &e->hq;
		engine_unlock(e);
		history_done(e, hj);
		engine_lock(e);
	}
	engine_unlock(e);
	return NULL;
}

void engine_history_wait(struct engine *e)
{
	while (e->history_busy > 0)
		pthread_cond_wait(&e->idle, &e->lock);
}

static void sink_end(void *ctx, struct exec_result *res)
{
	struct job *j = ctx;
	struct engine *e = j->eng;
	struct history_job *hj = NULL;

	engine_lock(e);
	struct record *rec = j->rec;
	if (rec) {
		rec->job = NULL;
		if (j->limit_stream) {
			char msg[256];
			res->state = RS_FAILED;
			snprintf(msg, sizeof(msg),
				 "%s passed the limit of %llu bytes; the rest was dropped and the run was stopped "
				 "(raise it with -o max_output=BYTES)",
				 j->limit_stream == 1 ? "stdout" : "stderr", (unsigned long long)e->cfg.max_output);
			exec_result_set_error(res, "OutputLimitExceeded", msg, NULL);
			res->truncated = true;
		} else if (res->state == RS_CANCELLED && e->stopping) {
			exec_result_set_error(res, "Cancelled",
					      "agentbayfs was unmounted or stopped during this run", NULL);
		}
		finalize(rec, res);
		hj = malloc(sizeof(*hj));
		if (hj && !history_take(rec, j, hj)) {
			free(hj);
			hj = NULL;
		}
	}
	e->running--;
	/* The history writer takes it; without one (it could not start, or
	 * too much waits for it), this thread writes it once unlocked. */
	bool queued = hj && e->history_thread_up && e->history_busy < HISTORY_QUEUE_MAX;
	if (hj) {
		e->history_busy++;
		if (queued) {
			*e->hq_tail = hj;
			e->hq_tail = &hj->next;
			pthread_cond_signal(&e->hq_cond);
		}
	}
	job_free(j);
	pthread_cond_broadcast(&e->idle);
	schedule(e);
	engine_unlock(e);
	if (hj && !queued)
		history_done(e, hj);
}

static const struct run_sink engine_sink = {
	.out = sink_out,
	.started = sink_started,
	.end = sink_end,
};

static void schedule(struct engine *e)
{
	while (!e->stopping && e->queue && e->running < e->cfg.jobs) {
		struct job *j = e->queue;
		struct record *rec = j->rec;
		dequeue(e, j);
		struct run_request req = {
			.lang = j->lang,
			.script_name = j->script,
			.code = j->code,
			.code_len = j->code_len,
			.timeout_s = j->timeout_s ? j->timeout_s : e->cfg.timeout_s,
			.workspace = rec->ws->path,
			.workspace_id = rec->ws->id,
		};
		j->state = JOB_RUNNING;
		if (!e->backend->ops->reports_start)
			mark_running(rec);
		e->running++;
		int rc = e->backend->ops->start(e->backend, &req, &engine_sink, j, &j->handle);
		if (rc < 0) {
			e->running--;
			rec->job = NULL;
			job_free(j);
			char msg[256];
			snprintf(msg, sizeof(msg), "the %s backend could not start the run: %s",
				 e->backend_name, strerror(-rc));
			finalize_error(rec, RS_FAILED, "BackendError", msg);
			continue;
		}
		/* The code stays with the job until the end, for the history. */
		e->hooks.changed(e->ud, rec);
	}
}

void engine_shutdown(struct engine *e)
{
	engine_lock(e);
	e->stopping = true;
	/* Queued runs never start: they end cancelled. */
	while (e->queue) {
		struct job *j = e->queue;
		struct record *rec = j->rec;
		dequeue(e, j);
		if (rec) {
			rec->job = NULL;
			finalize_error(rec, RS_CANCELLED, "Cancelled",
				       "agentbayfs was unmounted or stopped before this run started");
		}
		job_free(j);
	}
	for (size_t i = 0; i < e->n_ws; i++)
		for (struct record *rec = e->ws[i]->records; rec; rec = rec->next) {
			if (rec->job && rec->job->state == JOB_RUNNING)
				e->backend->ops->cancel(e->backend, rec->job->handle, CANCEL_SHUTDOWN);
			else if (rec->rr.state == RS_PENDING)
				finalize_error(rec, RS_CANCELLED, "Cancelled",
					       "agentbayfs was unmounted or stopped before this save finished");
		}
	while (e->running > 0 || e->history_busy > 0)
		pthread_cond_wait(&e->idle, &e->lock);
	engine_unlock(e);
}

void engine_free(struct engine *e)
{
	if (!e)
		return;
	/* The writer writes what is queued, then ends. */
	if (e->history_thread_up) {
		engine_lock(e);
		e->history_stop = true;
		pthread_cond_signal(&e->hq_cond);
		engine_unlock(e);
		pthread_join(e->history_thread, NULL);
	}
	for (size_t i = 0; i < e->n_ws; i++) {
		struct workspace *ws = e->ws[i];
		struct record *rec = ws->records;
		while (rec) {
			struct record *next = rec->next;
			close_outputs(rec);
			run_record_free(&rec->rr);
			free(rec->error_text);
			free(rec->stem);
			free(rec);
			rec = next;
		}
		if (ws->meta_fd >= 0)
			close(ws->meta_fd);
		close(ws->store_fd);
		free(ws->path);
		free(ws);
	}
	free(e->ws);
	free(e->backend_name);
	pthread_mutex_destroy(&e->lock);
	pthread_cond_destroy(&e->hq_cond);
	pthread_mutex_destroy(&e->history_lock);
	pthread_cond_destroy(&e->idle);
	free(e);
}

/* ---- the overview -------------------------------------------------------- */

/* How many finished runs the overview lists. */
#define OVERVIEW_RECENT 20

static int cmp_recent(const void *a, const void *b)
{
	const struct record *x = *(struct record *const *)a, *y = *(struct record *const *)b;
	return x->rr.finished_at_ms < y->rr.finished_at_ms ? 1 : x->rr.finished_at_ms > y->rr.finished_at_ms ? -1 : 0;
}

static void put_seconds(FILE *f, int64_t ms)
{
	if (ms < 0)
		ms = 0;
	if (ms < 60000)
		fprintf(f, "%7.2fs", (double)ms / 1000.0);
	else
		fprintf(f, "%4lldm%02llds", (long long)(ms / 60000), (long long)(ms / 1000 % 60));
}

static void overview_line(FILE *f, const struct record *rec, const char *state, int64_t ms, int64_t now)
{
	const struct workspace *ws = rec->ws;

	fprintf(f, "%-12s", state);
	put_seconds(f, ms);
	fprintf(f, " %6llu  %s%s%s", (unsigned long long)rec->rr.run, ws->path, strcmp(ws->path, "/") ? "/" : "",
		rec->rr.script);
	if (run_state_final(rec->rr.state)) {
		int64_t ago = (now - rec->rr.finished_at_ms) / 1000;
		fprintf(f, "  (ended ");
		if (ago < 60)
			fprintf(f, "%llds", (long long)(ago < 0 ? 0 : ago));
		else if (ago < 3600)
			fprintf(f, "%lldm%02llds", (long long)(ago / 60), (long long)(ago % 60));
		else
			fprintf(f, "%lldh%02lldm", (long long)(ago / 3600), (long long)(ago / 60 % 60));
		fprintf(f, " ago%s%s)", rec->rr.error_name ? ", " : "", rec->rr.error_name ? rec->rr.error_name : "");
	}
	fputc('\n', f);
}

char *engine_overview(struct engine *e)
{
	int64_t now = engine_now_ms();
	struct record **recent = NULL;
	size_t n_recent = 0, cap = 0;
	unsigned queued = 0, running = 0;
	char *out = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&out, &len);

	if (!f)
		return NULL;
	for (size_t i = 0; i < e->n_ws; i++)
		for (struct record *rec = e->ws[i]->records; rec; rec = rec->next) {
			if (rec->rr.state == RS_RUNNING) {
				running++;
			} else if (rec->rr.state == RS_PENDING) {
				queued++;
			} else if (run_state_final(rec->rr.state) && rec->rr.finished_at_ms > 0) {
				if (n_recent == cap) {
					size_t c = cap ? cap * 2 : 64;
					struct record **nr = realloc(recent, c * sizeof(*nr));
					if (!nr)
						continue;
					recent = nr;
					cap = c;
				}
				recent[n_recent++] = rec;
			}
		}
	qsort(recent, n_recent, sizeof(*recent), cmp_recent);
	fprintf(f, "%u running, %u waiting (at most %u at once, %s backend)\n", running, queued, e->cfg.jobs,
		e->backend_name);
	fprintf(f, "%-12s%8s %6s  %s\n", "STATE", "ELAPSED", "RUN", "SCRIPT");
	for (size_t i = 0; i < e->n_ws; i++)
		for (struct record *rec = e->ws[i]->records; rec; rec = rec->next)
			if (rec->rr.state == RS_RUNNING)
				overview_line(f, rec, "running", now - rec->rr.started_at_ms, now);
	for (size_t i = 0; i < e->n_ws; i++)
		for (struct record *rec = e->ws[i]->records; rec; rec = rec->next)
			if (rec->rr.state == RS_PENDING)
				/* Queued for a free slot, or a save still being written. */
				overview_line(f, rec, rec->job ? "queued" : "saving", now - rec->rr.saved_at_ms, now);
	for (size_t i = 0; i < n_recent && i < OVERVIEW_RECENT; i++)
		overview_line(f, recent[i], run_state_name(recent[i]->rr.state),
			      recent[i]->rr.finished_at_ms - recent[i]->rr.started_at_ms, now);
	free(recent);
	if (fclose(f) != 0) {
		free(out);
		return NULL;
	}
	return out;
}
