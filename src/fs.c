/* fs: see fs.h */
#define _GNU_SOURCE
#include "fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "log.h"
#include "names.h"
#include "storefile.h"
#include "trigger.h"

#if defined(__SANITIZE_THREAD__)
#define AFS_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define AFS_TSAN 1
#endif
#endif

/* Stored files change only through the mount: the kernel may cache them.
 * Result files change behind its back: never cached. */
#define REAL_TIMEOUT 1.0

/* The root's window on the daemon, "/.agentbayfs/", and the file in it. */
#define OVERVIEW_FILE "status"

/* N_REAL: a file or directory of the store (a view when it lies in a meta
 * folder: read-only, shown as "<stem>.result", "<stem>.results/" or
 * ".runs/"). N_RESULT: a result file of a record. N_OVERVIEW: the root's
 * ".agentbayfs/" and its "status". */
enum ntype { N_REAL, N_RESULT, N_OVERVIEW };

struct node {
	enum ntype type;
	uint64_t nlookup;
	struct node *hnext;
	/* N_REAL */
	int fd;                  /* O_PATH */
	ino_t ino;
	dev_t dev;
	mode_t fmt;              /* S_IFMT bits */
	struct node *parent;     /* where it was last seen; directories are never freed */
	char *name;
	struct trigger trig;
	struct workspace *ws;    /* directories that hold scripts */
	bool dead;
	bool view;               /* in a meta folder: read-only, no name kept */
	bool cache_stale;        /* written around the page cache since the last
	                          * open that dropped it (engine lock) */
	struct wb_group behind;  /* its writes not yet in the store */
	/* N_RESULT */
	struct record *rec;
	enum result_kind kind;
};

/* Per-record glue: the result nodes, made on first lookup. */
struct rglue {
	struct node *rnode[RK_COUNT];
	struct rglue *next;
};

/* Open file and directory handles, so that those the kernel never
 * released (it drops releases at unmount) are freed at exit. */
struct open_link {
	struct open_link *prev, *next;
	bool linked;
};

struct handle {
	struct open_link link;   /* first: the list holds handles by it */
	int fd;
	bool writable;
	bool nonblock;
	bool direct;             /* write-only plain file: no page cache */
	bool wrote;              /* ... and written through (engine lock) */
	bool no_behind;          /* ... and its writes may not go behind (open_lock) */
	struct wb_stream *behind; /* ... and its large writes go behind (open_lock) */
	struct node *node;
	uint64_t run;            /* result readers: the run they read */
	char *snap;              /* .error/.status text, fixed once taken */
	size_t snap_len;
	struct record *pending;  /* the save this handle began at FLUSH */
	off_t read_to;           /* .out/.err: where the last read ended */
	struct fuse_pollhandle *ph; /* a poll to wake once readable (engine lock) */
	struct handle *poll_next;   /* in fs->pollers while ph is set */
};

struct waiter {
	struct waiter *next;
	fuse_req_t req;
	struct handle *h;
	size_t size;
	off_t off;
};

struct dirent_snap {
	char *name;
	ino_t ino;
	unsigned char type;
};

struct dir_handle {
	struct open_link link;   /* first */
	struct dirent_snap *e;
	size_t n;
};

static struct afs *FS(fuse_req_t req)
{
	return fuse_req_userdata(req);
}

static struct node *N(struct afs *fs, fuse_ino_t ino)
{
	return ino == FUSE_ROOT_ID ? fs->root : (struct node *)(uintptr_t)ino;
}

static fuse_ino_t INO(struct afs *fs, struct node *n)
{
	return n == fs->root ? FUSE_ROOT_ID : (fuse_ino_t)(uintptr_t)n;
}

static struct handle *H(struct fuse_file_info *fi)
{
	return (struct handle *)(uintptr_t)fi->fh;
}

static void proc_path(char *buf, size_t sz, int fd)
{
	snprintf(buf, sz, "/proc/self/fd/%d", fd);
}

/* ---- the inode table --------------------------------------------------- */

static size_t hash(dev_t dev, ino_t ino, size_t n)
{
	uint64_t h = (uint64_t)ino * 0x9E3779B97F4A7C15ull ^ (uint64_t)dev;
	return (size_t)(h >> 16) % n;
}

static int table_grow(struct node_table *t)
{
	size_t n = t->n_buckets ? t->n_buckets * 2 : 1024;
	struct node **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i < t->n_buckets; i++) {
		struct node *x = t->buckets[i];
		while (x) {
			struct node *next = x->hnext;
			size_t k = hash(x->dev, x->ino, n);
			x->hnext = b[k];
			b[k] = x;
			x = next;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->n_buckets = n;
	return 0;
}

static struct node *table_find(struct node_table *t, dev_t dev, ino_t ino)
{
	if (!t->n_buckets)
		return NULL;
	for (struct node *x = t->buckets[hash(dev, ino, t->n_buckets)]; x; x = x->hnext)
		if (x->dev == dev && x->ino == ino)
			return x;
	return NULL;
}

static int table_add(struct node_table *t, struct node *n)
{
	if (t->count + 1 > t->n_buckets && table_grow(t) < 0)
		return -ENOMEM;
	size_t k = hash(n->dev, n->ino, t->n_buckets);
	n->hnext = t->buckets[k];
	t->buckets[k] = n;
	t->count++;
	return 0;
}

static void table_del(struct node_table *t, struct node *n)
{
	if (!t->n_buckets)
		return;
	struct node **pp = &t->buckets[hash(n->dev, n->ino, t->n_buckets)];
	while (*pp && *pp != n)
		pp = &(*pp)->hnext;
	if (*pp) {
		*pp = n->hnext;
		t->count--;
	}
}

static void set_name(struct node *n, struct node *parent, const char *name)
{
	if (n == NULL || n->type != N_REAL)
		return;
	if (n->parent == parent && n->name && name && strcmp(n->name, name) == 0)
		return;
	free(n->name);
	n->name = name ? strdup(name) : NULL;
	n->parent = name ? parent : NULL;
}

/* Plain stored files and directories: what the user may change. */
static bool plain(const struct node *n)
{
	return n->type == N_REAL && !n->view;
}

/* What a view looks like: read-only. */
static void view_stat(struct stat *st)
{
	st->st_mode &= ~(mode_t)0222;
}

/* Finds or makes the node for the file at NAME in DIR, which is PARENT's
 * (a view's when VIEW: it keeps no name). Lock held. */
static int store_node(struct afs *fs, int dir, struct node *parent, const char *name, bool view,
		      struct node **out, struct stat *st)
{
	int fd = openat(dir, name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
	struct node *n;

	if (fd < 0)
		return -errno;
	if (fstatat(fd, "", st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0) {
		int err = -errno;
		close(fd);
		return err;
	}
	n = table_find(&fs->nodes, st->st_dev, st->st_ino);
	if (n) {
		close(fd);
	} else {
		n = calloc(1, sizeof(*n));
		if (!n) {
			close(fd);
			return -ENOMEM;
		}
		n->type = N_REAL;
		n->fd = fd;
		n->dev = st->st_dev;
		n->ino = st->st_ino;
		n->fmt = st->st_mode & S_IFMT;
		n->view = view;
		if (table_add(&fs->nodes, n) < 0) {
			close(fd);
			free(n);
			return -ENOMEM;
		}
	}
	if (view)
		view_stat(st);
	else
		set_name(n, parent, name);
	*out = n;
	return 0;
}

/* Finds or makes the node for the file at NAME in PARENT. Lock held. */
static int real_node(struct afs *fs, struct node *parent, const char *name, struct node **out,
		     struct stat *st)
{
	return store_node(fs, parent->fd, parent, name, parent->view, out, st);
}

static char *node_path(struct afs *fs, struct node *n)
{
	char buf[PATH_MAX] = "";
	char tmp[PATH_MAX];

	for (; n && n != fs->root; n = n->parent) {
		int len = snprintf(tmp, sizeof(tmp), "/%s%s", n->name ? n->name : "?", buf);
		if (len < 0 || (size_t)len >= sizeof(tmp))
			break;   /* too deep to name: the part that fits */
		memcpy(buf, tmp, (size_t)len + 1);
	}
	return strdup(buf[0] ? buf : "/");
}

/* The workspace of a directory node, made on first use. Lock held. */
static struct workspace *dir_ws(struct afs *fs, struct node *dir)
{
	if (!dir->ws) {
		char *path = node_path(fs, dir);
		dir->ws = engine_workspace_new(fs->eng, dir->fd, path);
		free(path);
	}
	return dir->ws;
}

static struct rglue *rglue_of(struct afs *fs, struct record *rec)
{
	if (!rec->glue) {
		struct rglue *g = calloc(1, sizeof(*g));
		if (!g)
			return NULL;
		g->next = fs->rglues;
		fs->rglues = g;
		rec->glue = g;
	}
	return rec->glue;
}

static struct node *result_node(struct afs *fs, struct record *rec, enum result_kind kind)
{
	struct rglue *g = rglue_of(fs, rec);

	if (!g)
		return NULL;
	if (!g->rnode[kind]) {
		struct node *n = calloc(1, sizeof(*n));
		if (!n)
			return NULL;
		n->type = N_RESULT;
		n->fd = -1;
		n->rec = rec;
		n->kind = kind;
		g->rnode[kind] = n;
	}
	return g->rnode[kind];
}

/* ---- result files ------------------------------------------------------ */

static char *status_text(struct record *rec)
{
	return status_render(&rec->rr);
}

/* The .error text a reader bound to RUN sees once that run is over. */
static char *error_text(struct record *rec, uint64_t run)
{
	if (rec->rr.run != run) {
		char *s = NULL;
		if (asprintf(&s, "Cancelled: a newer save of %s replaced this run before it finished\n",
			     rec->rr.script) < 0)
			return NULL;
		return s;
	}
	return strdup(rec->error_text ? rec->error_text : "");
}

static int result_stat(struct afs *fs, struct node *n, struct stat *st)
{
	struct record *rec = n->rec;
	int fd = engine_result_open(rec, n->kind);

	memset(st, 0, sizeof(*st));
	if (fd >= 0) {
		fstat(fd, st);
		engine_result_close(rec, n->kind, fd);
	} else if (fd != -ENOENT) {
		return fd;
	} else {
		return -ENOENT;
	}
	st->st_ino = (ino_t)((uintptr_t)n | (1ull << 63));
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	if (n->kind == RK_STATUS) {
		char *s = status_text(rec);
		st->st_size = s ? (off_t)strlen(s) : 0;
		free(s);
	} else if (n->kind == RK_ERROR) {
		st->st_size = engine_run_active(rec, rec->rr.run) || !rec->error_text
				      ? 0 : (off_t)strlen(rec->error_text);
	}
	st->st_blocks = (st->st_size + 511) / 512;
	return 0;
}

static void reply_entry(struct afs *fs, fuse_req_t req, struct node *n, const struct stat *st, double timeout)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = INO(fs, n);
	e.attr = *st;
	e.attr_timeout = timeout;
	e.entry_timeout = timeout;
	n->nlookup++;
	fuse_reply_entry(req, &e);
}

/* Looks NAME up as a result file of PARENT. 1 and *out when it is one. */
static int lookup_result(struct afs *fs, struct node *parent, const char *name, struct node **out)
{
	enum result_kind kind;
	size_t stem_len;
	struct workspace *ws;
	struct record *rec;

	if (!name_is_result(name, &kind, &stem_len))
		return 0;
	ws = dir_ws(fs, parent);
	if (!ws)
		return -ENOMEM;
	rec = engine_record(ws, name, stem_len, false);
	if (!rec || !engine_result_exists(rec, kind))
		return 0;
	*out = result_node(fs, rec, kind);
	return *out ? 1 : -ENOMEM;
}

/* The meta folder of directory PARENT when NAME is a view that it holds
 * ("<stem>.result", "<stem>.results", ".runs"), else -1. Lock held. */
static int view_dir(struct afs *fs, struct node *parent, const char *name)
{
	enum view_kind kind = name_view(name, NULL);
	struct workspace *ws;
	struct stat st;
	int meta;

	if (kind == VK_NONE || !plain(parent) || !(ws = dir_ws(fs, parent)) || (meta = engine_meta_fd(ws)) < 0)
		return -1;
	if (fstatat(meta, name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
	    (kind == VK_RESULT ? !S_ISREG(st.st_mode) : !S_ISDIR(st.st_mode)))
		return -1;
	return meta;
}

/* Looks NAME up as a view of PARENT. 1 and *out when it is one. Lock held. */
static int lookup_view(struct afs *fs, struct node *parent, const char *name, struct node **out,
		       struct stat *st)
{
	int meta = view_dir(fs, parent, name), rc;

	if (meta < 0)
		return 0;
	rc = store_node(fs, meta, parent, name, true, out, st);
	return rc == -ENOENT ? 0 : rc < 0 ? rc : 1;
}

/* ---- the overview -------------------------------------------------------- */

static void overview_stat(struct afs *fs, struct node *n, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = (ino_t)((uintptr_t)n | (1ull << 63));
	st->st_mode = n->fmt == S_IFDIR ? S_IFDIR | 0555 : S_IFREG | 0444;
	st->st_nlink = n->fmt == S_IFDIR ? 2 : 1;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	/* Made at each open, like a file of /proc: no size ahead. */
	st->st_mtim = st->st_ctim = st->st_atim = (struct timespec){ .tv_sec = engine_now_ms() / 1000 };
}

/* Answers a lookup of the overview's folder or file N. Under the lock, as
 * every count of lookups is (forget takes it). */
static void overview_entry(struct afs *fs, fuse_req_t req, struct node *n)
{
	struct stat st;

	overview_stat(fs, n, &st);
	engine_lock(fs->eng);
	reply_entry(fs, req, n, &st, 0);
	engine_unlock(fs->eng);
}

/* Serves a read from the text H took at open. The reply goes from a copy:
 * the kernel ends the read while our writev of the reply is still inside
 * the syscall, so the reader's close (and our release, freeing H->snap on
 * another thread) can come before writev returns to us. */
static void reply_snap(fuse_req_t req, const struct handle *h, size_t size, off_t off)
{
	size_t len = (size_t)off >= h->snap_len ? 0 : h->snap_len - (size_t)off;
	char *copy;

	if (len > size)
		len = size;
	if (len == 0)
		return (void)fuse_reply_buf(req, NULL, 0);
	copy = malloc(len);
	if (!copy)
		return (void)fuse_reply_err(req, ENOMEM);
	memcpy(copy, h->snap + off, len);
	fuse_reply_buf(req, copy, len);
	free(copy);
}

/* Serves a read of a result file, or returns false when it has to wait.
 * Once the mount is detached nothing waits: a caught-up .out or .err reader
 * gets end-of-file, a .error reader of a run that will never end here gets
 * ENOTCONN (what the kernel says of a mount whose daemon is gone). */
static bool try_serve(struct afs *fs, fuse_req_t req, struct handle *h, size_t size, off_t off, bool *wait_ok)
{
	struct record *rec = h->node->rec;
	bool active = engine_run_active(rec, h->run);

	*wait_ok = !h->nonblock;
	if (h->node->kind == RK_OUT || h->node->kind == RK_ERR) {
		char *buf = malloc(size ? size : 1);
		if (!buf) {
			fuse_reply_err(req, ENOMEM);
			return true;
		}
		ssize_t n = h->fd >= 0 ? pread(h->fd, buf, size, off) : 0;
		if (n < 0) {
			fuse_reply_err(req, errno);
		} else if (n == 0 && active && !fs->detached) {
			free(buf);
			return false;
		} else {
			h->read_to = off + n;
			fuse_reply_buf(req, buf, (size_t)n);
		}
		free(buf);
		return true;
	}
	if (!h->snap) {
		if (h->node->kind == RK_ERROR && active && fs->detached) {
			fuse_reply_err(req, ENOTCONN);
			return true;
		}
		if (h->node->kind == RK_ERROR && active)
			return false;
		h->snap = h->node->kind == RK_ERROR ? error_text(rec, h->run) : status_text(rec);
		h->snap_len = h->snap ? strlen(h->snap) : 0;
		if (!h->snap) {
			fuse_reply_err(req, ENOMEM);
			return true;
		}
	}
	reply_snap(req, h, size, off);
	return true;
}

static void on_interrupt(fuse_req_t req, void *data)
{
	struct afs *fs = data;

	engine_lock(fs->eng);
	for (struct waiter **pp = &fs->waiters; *pp; pp = &(*pp)->next) {
		if ((*pp)->req == req) {
			struct waiter *w = *pp;
			*pp = w->next;
			fuse_reply_err(req, EINTR);
			free(w);
			break;
		}
	}
	engine_unlock(fs->eng);
}

/* Would a read of H return at once (data, end-of-file or an error)? A poll
 * has no offset: .out and .err count from where H's last read ended.
 * Engine lock held. */
static bool readable(struct afs *fs, struct handle *h)
{
	struct stat st;

	if (fs->detached || !engine_run_active(h->node->rec, h->run))
		return true;
	switch (h->node->kind) {
	case RK_OUT:
	case RK_ERR:
		return h->fd < 0 || fstat(h->fd, &st) < 0 || st.st_size > h->read_to;
	case RK_ERROR:
		return false;
	default:
		return true;
	}
}

/* Wakes the pollers that can read now (all of them when ALL). Lock held. */
static void wake_pollers(struct afs *fs, const struct record *rec, bool all)
{
	for (struct handle **pp = &fs->pollers; *pp;) {
		struct handle *h = *pp;
		if (all || (h->node->rec == rec && readable(fs, h))) {
			*pp = h->poll_next;
			poll_notify_push(&fs->pn, h->ph);
			h->ph = NULL;
			h->poll_next = NULL;
		} else {
			pp = &h->poll_next;
		}
	}
}

/* H is going: its poll, if any, with it. Lock held. */
static void drop_poller(struct afs *fs, struct handle *h)
{
	if (!h->ph)
		return;
	for (struct handle **pp = &fs->pollers; *pp; pp = &(*pp)->poll_next)
		if (*pp == h) {
			*pp = h->poll_next;
			break;
		}
	fuse_pollhandle_destroy(h->ph);
	h->ph = NULL;
}

/* Engine hook: REC changed, serve the reads waiting on it and wake its
 * pollers. Lock held. */
static void hook_changed(void *ud, struct record *rec)
{
	struct afs *fs = ud;
	struct waiter **pp = &fs->waiters;

	while (*pp) {
		struct waiter *w = *pp;
		bool wait_ok;
		if (w->h->node->rec == rec && try_serve(fs, w->req, w->h, w->size, w->off, &wait_ok)) {
			*pp = w->next;
			free(w);
		} else {
			pp = &w->next;
		}
	}
	wake_pollers(fs, rec, false);
}

const struct engine_hooks afs_hooks = { .changed = hook_changed };

void afs_detached(struct afs *fs)
{
	bool wait_ok;

	engine_lock(fs->eng);
	fs->detached = true;
	wake_pollers(fs, NULL, true);
	/* The engine has ended every run it had, and those answered their
	 * readers; what is left waits on a save that came after it stopped. */
	while (fs->waiters) {
		struct waiter *w = fs->waiters;
		fs->waiters = w->next;
		try_serve(fs, w->req, w->h, w->size, w->off, &wait_ok);
		free(w);
	}
	engine_unlock(fs->eng);
}

void afs_loop_ended(struct afs *fs)
{
	engine_lock(fs->eng);
	fs->detached = true;
	while (fs->waiters) {
		struct waiter *w = fs->waiters;
		fs->waiters = w->next;
		fuse_reply_err(w->req, ENOTCONN);
		free(w);
	}
	engine_unlock(fs->eng);
}

/* N's writes not yet in the store (every file's when N is NULL):
 * whoever reads, stats, truncates or runs it waits for them first. With
 * -o writebehind=off none are ever queued, and no lock is taken. */
static void settle(struct afs *fs, struct node *n)
{
	if (fs->cfg.writebehind && (!n || n->type == N_REAL))
		wb_settle(fs->wb, n ? &n->behind : NULL);
}

/* ---- operations -------------------------------------------------------- */

static void afs_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* Saves are detected on FLUSH and RELEASE of each handle: no writeback
	 * cache, which would merge and defer writes. */
	conn->want &= ~FUSE_CAP_WRITEBACK_CACHE;
	/* Plain files in requests of 1 MiB rather than 128 KiB ones: a FUSE
	 * round trip costs more than the copy. libfuse splices a request in
	 * only when header (4 KiB) and data fit its pipe, at most
	 * pipe-max-size (1 MiB by default) unless it has CAP_SYS_RESOURCE;
	 * else it reads each request into its buffer. Read so, one 1 MiB
	 * request took less time than a spliced 1 MiB less 4 KiB and the
	 * 4 KiB after it (the kernel copies a direct write's pages into the
	 * pipe's anyway, fresh pages each time). */
	conn->max_write = 1u << 20;
	conn->max_readahead = 1u << 20;
#ifndef AFS_TSAN
	if (conn->capable & FUSE_CAP_SPLICE_READ)
		conn->want |= FUSE_CAP_SPLICE_READ;
	if (conn->capable & FUSE_CAP_SPLICE_WRITE)
		conn->want |= FUSE_CAP_SPLICE_WRITE;
	if (conn->capable & FUSE_CAP_SPLICE_MOVE)
		conn->want |= FUSE_CAP_SPLICE_MOVE;
#else
	/* ThreadSanitizer learns that the kernel orders a handle's requests
	 * (none after its RELEASE) from read() and write() on /dev/fuse, as
	 * it does for pipes; a request spliced in through a pipe, or a reply
	 * spliced out, hides that, and a handle freed at RELEASE would pass
	 * for a race with its last READ or FLUSH. */
	conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE);
#endif
}

static void afs_lookup(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino), *n = NULL;
	struct stat st;
	int rc;

	if (parent == fs->overview && strcmp(name, OVERVIEW_FILE) == 0)
		return overview_entry(fs, req, fs->overview_file);
	if (parent->type != N_REAL || parent->fmt != S_IFDIR)
		return (void)fuse_reply_err(req, parent->type == N_OVERVIEW ? ENOENT : ENOTDIR);
	if (parent == fs->root && strcmp(name, NAMES_META_DIR) == 0)
		return overview_entry(fs, req, fs->overview);
	if (name_is_reserved(name))
		return (void)fuse_reply_err(req, ENOENT);
	/* Its size must count the writes still behind (its node is not known
	 * before the stat). */
	settle(fs, NULL);
	engine_lock(fs->eng);
	if (parent->view || name_view(name, NULL) == VK_RUNS)
		engine_history_wait(fs->eng);
	rc = parent->view ? 0 : lookup_result(fs, parent, name, &n);
	if (rc == 0 && !parent->view) {
		/* Views are rewritten in place (a history folder taken over
		 * by a newer run): never cached. */
		rc = lookup_view(fs, parent, name, &n, &st);
		if (rc > 0) {
			reply_entry(fs, req, n, &st, 0);
			rc = 0;
			n = NULL;
			goto out;
		}
	}
	if (rc > 0) {
		rc = result_stat(fs, n, &st);
		if (rc == 0)
			reply_entry(fs, req, n, &st, 0);
	} else if (rc == 0 && parent->view) {
		rc = real_node(fs, parent, name, &n, &st);
		if (rc == 0)
			reply_entry(fs, req, n, &st, 0);
	} else if (rc == 0) {
		rc = real_node(fs, parent, name, &n, &st);
		if (rc == 0)
			reply_entry(fs, req, n, &st, REAL_TIMEOUT);
	}
out:
	engine_unlock(fs->eng);
	if (rc < 0)
		fuse_reply_err(req, -rc);
}

static void forget_one(struct afs *fs, fuse_ino_t ino, uint64_t nlookup)
{
	struct node *n = N(fs, ino);

	if (n == fs->root)
		return;
	n->nlookup = nlookup > n->nlookup ? 0 : n->nlookup - nlookup;
	if (n->nlookup || n->type != N_REAL)
		return;
	table_del(&fs->nodes, n);
	close(n->fd);
	n->fd = -1;
	if (n->fmt == S_IFDIR && !n->view) {
		/* Children may still point here, and the workspace lives on. */
		n->dead = true;
		n->hnext = fs->graveyard;
		fs->graveyard = n;
		return;
	}
	free(n->name);
	free(n);
}

static void afs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct afs *fs = FS(req);

	engine_lock(fs->eng);
	forget_one(fs, ino, nlookup);
	engine_unlock(fs->eng);
	fuse_reply_none(req);
}

static void afs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *f)
{
	struct afs *fs = FS(req);

	engine_lock(fs->eng);
	for (size_t i = 0; i < count; i++)
		forget_one(fs, f[i].ino, f[i].nlookup);
	engine_unlock(fs->eng);
	fuse_reply_none(req);
}

static void afs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	struct stat st;
	int rc;

	(void)fi;
	if (n->type == N_RESULT) {
		engine_lock(fs->eng);
		rc = result_stat(fs, n, &st);
		engine_unlock(fs->eng);
		if (rc < 0)
			return (void)fuse_reply_err(req, -rc);
		return (void)fuse_reply_attr(req, &st, 0);
	}
	if (n->type == N_OVERVIEW) {
		overview_stat(fs, n, &st);
		return (void)fuse_reply_attr(req, &st, 0);
	}
	settle(fs, n);
	if (fstatat(n->fd, "", &st, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW) < 0)
		return (void)fuse_reply_err(req, errno);
	if (n->view)
		view_stat(&st);
	fuse_reply_attr(req, &st, n->view ? 0 : REAL_TIMEOUT);
}

static void content_changed(struct afs *fs, struct node *n)
{
	engine_lock(fs->eng);
	trigger_changed(&n->trig);
	engine_unlock(fs->eng);
}

/* Write-only opens of plain files write around the page cache, in
 * requests as large as the writer's (up to max_write) and without a copy
 * into it, which made writes through the mount several times slower than
 * the store's own. No mapping can use such a handle (mmap needs read
 * access); others' cached pages are dropped when it is released, and at
 * the next open if it wrote meanwhile. */
static void write_around(struct fuse_file_info *fi, struct handle *h)
{
	if ((fi->flags & O_ACCMODE) == O_WRONLY) {
		fi->direct_io = 1;
		h->direct = true;
	}
}

/* H wrote to its file. */
static void written(struct afs *fs, struct handle *h)
{
	engine_lock(fs->eng);
	trigger_changed(&h->node->trig);
	if (h->direct)
		h->wrote = h->node->cache_stale = true;
	engine_unlock(fs->eng);
}

static void afs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64];
	int rc = 0;

	if (!plain(n))
		return (void)fuse_reply_err(req, EACCES);
	settle(fs, n);
	proc_path(path, sizeof(path), n->fd);
	if (to_set & FUSE_SET_ATTR_MODE) {
		rc = fi ? fchmod(H(fi)->fd, attr->st_mode) : chmod(path, attr->st_mode);
		if (rc < 0)
			goto err;
	}
	if (to_set & (FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID)) {
		uid_t u = (to_set & FUSE_SET_ATTR_UID) ? attr->st_uid : (uid_t)-1;
		gid_t g = (to_set & FUSE_SET_ATTR_GID) ? attr->st_gid : (gid_t)-1;
		rc = fchownat(n->fd, "", u, g, AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW);
		if (rc < 0)
			goto err;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		rc = fi ? ftruncate(H(fi)->fd, attr->st_size) : truncate(path, attr->st_size);
		if (rc < 0)
			goto err;
		content_changed(fs, n);
	}
	if (to_set & (FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME)) {
		struct timespec tv[2] = { { .tv_nsec = UTIME_OMIT }, { .tv_nsec = UTIME_OMIT } };
		if (to_set & FUSE_SET_ATTR_ATIME_NOW)
			tv[0].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_ATIME)
			tv[0] = attr->st_atim;
		if (to_set & FUSE_SET_ATTR_MTIME_NOW)
			tv[1].tv_nsec = UTIME_NOW;
		else if (to_set & FUSE_SET_ATTR_MTIME)
			tv[1] = attr->st_mtim;
		if (n->fmt == S_IFLNK)
			rc = utimensat(n->fd, "", tv, AT_EMPTY_PATH);
		else
			rc = fi ? futimens(H(fi)->fd, tv) : utimensat(AT_FDCWD, path, tv, 0);
		if (rc < 0)
			goto err;
	}
	return afs_getattr(req, ino, fi);
err:
	fuse_reply_err(req, errno);
}

/* Whether a new NAME may be made in PARENT: 0 when it may; EEXIST when a
 * result or a view holds the name; else the errno (the meta folder's name,
 * a read-only directory). */
static int name_taken(struct afs *fs, struct node *parent, const char *name)
{
	struct node *r = NULL;
	int rc;

	if (name_is_reserved(name))
		return EPERM;
	if (!plain(parent))
		return EACCES;
	engine_lock(fs->eng);
	rc = lookup_result(fs, parent, name, &r);
	if (rc == 0 && view_dir(fs, parent, name) >= 0)
		rc = 1;
	engine_unlock(fs->eng);
	return rc > 0 ? EEXIST : rc < 0 ? -rc : 0;
}

static void reply_new(struct afs *fs, fuse_req_t req, struct node *parent, const char *name)
{
	struct node *n;
	struct stat st;
	int rc;

	engine_lock(fs->eng);
	rc = real_node(fs, parent, name, &n, &st);
	if (rc == 0)
		reply_entry(fs, req, n, &st, REAL_TIMEOUT);
	engine_unlock(fs->eng);
	if (rc < 0)
		fuse_reply_err(req, -rc);
}

static void afs_mkdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino);
	int taken = name_taken(fs, parent, name);

	if (taken)
		return (void)fuse_reply_err(req, taken);
	if (mkdirat(parent->fd, name, mode) < 0)
		return (void)fuse_reply_err(req, errno);
	reply_new(fs, req, parent, name);
}

static void afs_mknod(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode, dev_t rdev)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino);
	int taken = name_taken(fs, parent, name);

	if (taken)
		return (void)fuse_reply_err(req, taken);
	if (mknodat(parent->fd, name, mode, rdev) < 0)
		return (void)fuse_reply_err(req, errno);
	reply_new(fs, req, parent, name);
}

static void afs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent_ino, const char *name)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino);
	int taken = name_taken(fs, parent, name);

	if (taken)
		return (void)fuse_reply_err(req, taken);
	if (symlinkat(link, parent->fd, name) < 0)
		return (void)fuse_reply_err(req, errno);
	reply_new(fs, req, parent, name);
}

static void afs_readlink(fuse_req_t req, fuse_ino_t ino)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char buf[PATH_MAX + 1];
	ssize_t len;

	if (n->type != N_REAL)
		return (void)fuse_reply_err(req, EINVAL);
	len = readlinkat(n->fd, "", buf, sizeof(buf));
	if (len < 0)
		return (void)fuse_reply_err(req, errno);
	if ((size_t)len >= sizeof(buf))
		return (void)fuse_reply_err(req, ENAMETOOLONG);
	buf[len] = '\0';
	fuse_reply_readlink(req, buf);
}

static void afs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	(void)ino;
	(void)newparent;
	(void)newname;
	/* A script has one name: that name decides what runs and where results go. */
	fuse_reply_err(req, EPERM);
}

/* The node known for NAME in PARENT, if any, without making one. Lock held. */
static struct node *known_node(struct afs *fs, struct node *parent, const char *name)
{
	struct stat st;

	if (fstatat(parent->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
		return NULL;
	return table_find(&fs->nodes, st.st_dev, st.st_ino);
}

static void afs_unlink(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino), *r = NULL, *n;
	int rc;

	if (name_is_reserved(name))
		return (void)fuse_reply_err(req, ENOENT);
	if (parent->type == N_OVERVIEW)
		return (void)fuse_reply_err(req, EACCES);
	engine_lock(fs->eng);
	/* Views are read-only, but they may go. */
	if (parent->view) {
		rc = unlinkat(parent->fd, name, 0) < 0 ? errno : 0;
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, rc);
	}
	rc = lookup_result(fs, parent, name, &r);
	if (rc > 0) {
		rc = engine_result_unlink(r->rec, r->kind);
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, rc < 0 ? -rc : 0);
	}
	int meta = view_dir(fs, parent, name);
	if (meta >= 0) {
		rc = unlinkat(meta, name, 0) < 0 ? errno : 0;
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, rc);
	}
	n = known_node(fs, parent, name);
	if (unlinkat(parent->fd, name, 0) < 0) {
		rc = errno;
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, rc);
	}
	if (n && n->parent == parent && n->name && strcmp(n->name, name) == 0)
		set_name(n, NULL, NULL);
	if (name_is_script(name, NULL)) {
		struct workspace *ws = dir_ws(fs, parent);
		if (ws)
			engine_script_removed(ws, name);
	}
	engine_unlock(fs->eng);
	fuse_reply_err(req, 0);
}

/* A directory whose only entry is its meta folder, holding no result (only
 * leftovers of interrupted writes), looks empty in the mount: remove the meta
 * folder so that rmdir can go on. Anything else is left alone. */
static void drop_empty_meta(int parentfd, const char *name)
{
	int fd = openat(parentfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	int mfd = -1;
	DIR *d = NULL, *m = NULL;
	struct dirent *de;
	bool empty = true;

	if (fd < 0)
		return;
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return;
	}
	while (empty && (de = readdir(d)) != NULL)
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && !name_is_reserved(de->d_name))
			empty = false;
	if (empty)
		mfd = openat(dirfd(d), NAMES_META_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	m = mfd >= 0 ? fdopendir(mfd) : NULL;
	if (mfd >= 0 && !m)
		close(mfd);
	while (m && empty && (de = readdir(m)) != NULL)
		if (de->d_name[0] != '.')
			empty = false;
	if (m && empty) {
		rewinddir(m);
		while ((de = readdir(m)) != NULL)
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
				storefile_remove_tree(dirfd(m), de->d_name);
		unlinkat(dirfd(d), NAMES_META_DIR, AT_REMOVEDIR);
	}
	if (m)
		closedir(m);
	closedir(d);
}

static void afs_rmdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino);

	if (name_is_reserved(name))
		return (void)fuse_reply_err(req, ENOENT);
	if (parent->type == N_OVERVIEW)
		return (void)fuse_reply_err(req, EACCES);
	engine_lock(fs->eng);
	int meta = parent->view ? parent->fd : view_dir(fs, parent, name);
	if (meta >= 0) {
		int rc = unlinkat(meta, name, AT_REMOVEDIR) < 0 ? errno : 0;
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, rc);
	}
	struct node *dir = known_node(fs, parent, name);
	engine_unlock(fs->eng);
	if (unlinkat(parent->fd, name, AT_REMOVEDIR) < 0) {
		int err = errno;
		if (err != ENOTEMPTY && err != EEXIST)
			return (void)fuse_reply_err(req, err);
		drop_empty_meta(parent->fd, name);
		if (unlinkat(parent->fd, name, AT_REMOVEDIR) < 0)
			return (void)fuse_reply_err(req, errno);
	}
	engine_lock(fs->eng);
	if (dir && dir->ws)
		engine_workspace_removed(dir->ws);
	engine_unlock(fs->eng);
	fuse_reply_err(req, 0);
}

/* ---- per-script settings (extended attributes) --------------------------- */

#define XA_PREFIX "user.agentbay."
#define XA_TIMEOUT XA_PREFIX "timeout"
#define XA_LANGUAGE XA_PREFIX "language"
#define XA_STATE XA_PREFIX "state"
#define XA_RUN XA_PREFIX "run"

/* Whether N is a stored script with a place in a directory (its language
 * by name in *LANG). */
static bool script_node(const struct node *n, enum lang *lang)
{
	return plain(n) && n->fmt == S_IFREG && n->name && n->parent && name_is_script(n->name, lang);
}

/* A script's own settings, stored as extended attributes of its file in the
 * store: the language (over the name's) and, unless TIMEOUT_S is NULL, the
 * time limit (0: the mount's). */
static void script_settings(struct node *n, enum lang *lang, unsigned *timeout_s)
{
	char path[64], v[32];
	ssize_t len;

	proc_path(path, sizeof(path), n->fd);
	len = getxattr(path, XA_LANGUAGE, v, sizeof(v) - 1);
	if (len > 0) {
		v[len] = '\0';
		if (strcmp(v, "python") == 0)
			*lang = LANG_PYTHON;
		else if (strcmp(v, "javascript") == 0)
			*lang = LANG_JAVASCRIPT;
	}
	if (!timeout_s)
		return;
	*timeout_s = 0;
	len = getxattr(path, XA_TIMEOUT, v, sizeof(v) - 1);
	if (len > 0) {
		v[len] = '\0';
		if (parse_seconds(v, timeout_s) < 0)
			*timeout_s = 0;
	}
}

/* The save of script N (named NAME) in WS is complete: run what the store
 * holds, with the script's settings. The record, or NULL. Lock held. */
static struct record *commit_save(struct workspace *ws, struct node *n, const char *name, enum lang lang)
{
	char path[64];
	unsigned timeout_s;
	int fd;

	script_settings(n, &lang, &timeout_s);
	proc_path(path, sizeof(path), n->fd);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		struct record *rec = engine_save_begin(ws, name, lang);
		if (rec)
			engine_save_abandon(rec, "the saved file could not be read back from the store");
		return NULL;
	}
	engine_save_commit(ws, name, lang, timeout_s, fd);
	close(fd);
	return engine_record(ws, name, name_stem_len(name), false);
}

/* After NODE became NAME in PARENT through a rename: a rename onto a script
 * name is a save. Lock held. */
static void renamed_onto(struct afs *fs, struct node *n, struct node *parent, const char *name)
{
	enum lang lang;

	set_name(n, parent, name);
	if (n->fmt != S_IFREG || !name_is_script(name, &lang))
		return;
	struct workspace *ws = dir_ws(fs, parent);
	if (!ws)
		return;
	if (!trigger_renamed_onto(&n->trig)) {
		/* Still open for writing: its last close runs it. */
		script_settings(n, &lang, NULL);
		engine_save_begin(ws, name, lang);
		return;
	}
	commit_save(ws, n, name, lang);
}

static void afs_rename(fuse_req_t req, fuse_ino_t parent_ino, const char *name, fuse_ino_t newparent_ino,
		       const char *newname, unsigned int flags)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino), *newparent = N(fs, newparent_ino);
	struct node *r = NULL, *moved, *replaced;
	int rc;

	if (name_is_reserved(name) || name_is_reserved(newname))
		return (void)fuse_reply_err(req, EPERM);
	if (!plain(parent) || !plain(newparent))
		return (void)fuse_reply_err(req, EACCES);
	engine_lock(fs->eng);
	if (lookup_result(fs, parent, name, &r) > 0 || lookup_result(fs, newparent, newname, &r) > 0 ||
	    view_dir(fs, parent, name) >= 0 || view_dir(fs, newparent, newname) >= 0) {
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, EACCES);
	}
	moved = known_node(fs, parent, name);
	replaced = known_node(fs, newparent, newname);
	rc = renameat2(parent->fd, name, newparent->fd, newname, flags) < 0 ? errno : 0;
	if ((rc == ENOTEMPTY || rc == EEXIST) && replaced && replaced->fmt == S_IFDIR) {
		/* A directory that looks empty may still hold its meta folder. */
		drop_empty_meta(newparent->fd, newname);
		rc = renameat2(parent->fd, name, newparent->fd, newname, flags) < 0 ? errno : 0;
	}
	if (rc) {
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, rc);
	}
	if (flags & RENAME_EXCHANGE) {
		if (replaced)
			renamed_onto(fs, replaced, parent, name);
	} else if (replaced && replaced != moved) {
		set_name(replaced, NULL, NULL);
	}
	if (moved)
		renamed_onto(fs, moved, newparent, newname);
	engine_unlock(fs->eng);
	fuse_reply_err(req, 0);
}

static void link_open(struct afs *fs, struct open_link *l, struct open_link **head)
{
	pthread_mutex_lock(&fs->open_lock);
	l->prev = NULL;
	l->next = *head;
	if (*head)
		(*head)->prev = l;
	*head = l;
	l->linked = true;
	pthread_mutex_unlock(&fs->open_lock);
}

static void unlink_open(struct afs *fs, struct open_link *l, struct open_link **head)
{
	pthread_mutex_lock(&fs->open_lock);
	if (l->linked) {
		if (l->prev)
			l->prev->next = l->next;
		else
			*head = l->next;
		if (l->next)
			l->next->prev = l->prev;
		l->linked = false;
	}
	pthread_mutex_unlock(&fs->open_lock);
}

static struct handle *handle_new(struct afs *fs, struct node *n, int fd, int flags)
{
	struct handle *h = calloc(1, sizeof(*h));

	if (!h)
		return NULL;
	h->fd = fd;
	h->node = n;
	h->writable = (flags & O_ACCMODE) != O_RDONLY;
	h->nonblock = (flags & O_NONBLOCK) != 0;
	link_open(fs, &h->link, &fs->open_files);
	return h;
}

/* Closes H's fd and frees H. */
static void handle_free(struct afs *fs, struct handle *h)
{
	wb_stream_free(h->behind);
	if (h->fd >= 0 && h->node && h->node->type == N_RESULT)
		engine_result_close(h->node->rec, h->node->kind, h->fd);
	else if (h->fd >= 0)
		close(h->fd);
	unlink_open(fs, &h->link, &fs->open_files);
	free(h->snap);
	free(h);
}

static void open_result(struct afs *fs, fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct handle *h;
	int fd = -1;

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EACCES);
	engine_lock(fs->eng);
	if (n->kind == RK_OUT || n->kind == RK_ERR) {
		fd = engine_result_open(n->rec, n->kind);
		if (fd < 0) {
			engine_unlock(fs->eng);
			return (void)fuse_reply_err(req, -fd);
		}
	}
	h = handle_new(fs, n, fd, fi->flags);
	if (!h) {
		engine_unlock(fs->eng);
		if (fd >= 0)
			engine_result_close(n->rec, n->kind, fd);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	h->run = n->rec->rr.run;
	if (n->kind == RK_STATUS) {
		h->snap = status_text(n->rec);
		h->snap_len = h->snap ? strlen(h->snap) : 0;
	}
	engine_unlock(fs->eng);
	fi->fh = (uint64_t)(uintptr_t)h;
	/* Results grow and change behind the page cache's back. */
	fi->direct_io = 1;
	fi->keep_cache = 0;
	if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free(fs, h);
}

static void open_overview(struct afs *fs, fuse_req_t req, struct node *n, struct fuse_file_info *fi)
{
	struct handle *h;

	if (n->fmt == S_IFDIR)
		return (void)fuse_reply_err(req, EISDIR);
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		return (void)fuse_reply_err(req, EACCES);
	h = handle_new(fs, n, -1, fi->flags);
	if (!h)
		return (void)fuse_reply_err(req, ENOMEM);
	engine_lock(fs->eng);
	h->snap = engine_overview(fs->eng);
	engine_unlock(fs->eng);
	if (!h->snap) {
		handle_free(fs, h);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	h->snap_len = strlen(h->snap);
	fi->fh = (uint64_t)(uintptr_t)h;
	fi->direct_io = 1;
	if (fuse_reply_open(req, fi) == -ENOENT)
		handle_free(fs, h);
}

static void afs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64];
	struct handle *h;
	int fd;

	if (n->type == N_RESULT)
		return open_result(fs, req, n, fi);
	if (n->type == N_OVERVIEW)
		return open_overview(fs, req, n, fi);
	if (n->view && ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)))
		return (void)fuse_reply_err(req, EACCES);
	settle(fs, n);
	proc_path(path, sizeof(path), n->fd);
	fd = open(path, (fi->flags & ~(O_NOFOLLOW | O_CREAT | O_EXCL)) | O_CLOEXEC);
	if (fd < 0)
		return (void)fuse_reply_err(req, errno);
	h = handle_new(fs, n, fd, fi->flags);
	if (!h) {
		close(fd);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	fi->fh = (uint64_t)(uintptr_t)h;
	/* The store changes only through the mount (nodes are the store's
	 * inodes, held open): the page cache stays good across opens. Views
	 * change behind the kernel's back. */
	fi->keep_cache = !n->view;
	write_around(fi, h);
	engine_lock(fs->eng);
	if (h->writable)
		trigger_open_write(&n->trig, (fi->flags & O_TRUNC) != 0);
	if (!h->direct && n->cache_stale) {
		fi->keep_cache = 0;
		n->cache_stale = false;
	}
	engine_unlock(fs->eng);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		/* The opener went away: no release will come. */
		if (h->writable) {
			engine_lock(fs->eng);
			trigger_release_write(&n->trig);
			engine_unlock(fs->eng);
		}
		handle_free(fs, h);
	}
}

static void afs_create(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode,
		       struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct node *parent = N(fs, parent_ino), *n;
	struct stat st;
	struct handle *h;
	int fd, rc, taken = name_taken(fs, parent, name);

	if (taken)
		return (void)fuse_reply_err(req, (taken == EEXIST && !(fi->flags & O_EXCL)) ? EACCES : taken);
	fd = openat(parent->fd, name, (fi->flags | O_CREAT | O_CLOEXEC) & ~O_NOFOLLOW, mode);
	if (fd < 0)
		return (void)fuse_reply_err(req, errno);
	h = handle_new(fs, NULL, fd, fi->flags);
	if (!h) {
		close(fd);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	engine_lock(fs->eng);
	rc = real_node(fs, parent, name, &n, &st);
	if (rc == 0) {
		struct fuse_entry_param e;
		h->node = n;
		if (h->writable)
			trigger_open_write(&n->trig, true);
		memset(&e, 0, sizeof(e));
		e.ino = INO(fs, n);
		e.attr = st;
		e.attr_timeout = e.entry_timeout = REAL_TIMEOUT;
		n->nlookup++;
		fi->fh = (uint64_t)(uintptr_t)h;
		fi->keep_cache = 1;
		write_around(fi, h);
		if (fuse_reply_create(req, &e, fi) == -ENOENT) {
			if (h->writable)
				trigger_release_write(&n->trig);
			handle_free(fs, h);
		}
	}
	engine_unlock(fs->eng);
	if (rc < 0) {
		handle_free(fs, h);
		fuse_reply_err(req, -rc);
	}
}

static void afs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct handle *h = H(fi);
	bool wait_ok;

	(void)ino;
	if (h->node->type == N_OVERVIEW)
		return reply_snap(req, h, size, off);
	if (h->node->type == N_REAL) {
		struct fuse_bufvec buf = FUSE_BUFVEC_INIT(size);
		settle(fs, h->node);
		buf.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		buf.buf[0].fd = h->fd;
		buf.buf[0].pos = off;
		fuse_reply_data(req, &buf, FUSE_BUF_SPLICE_MOVE);
		return;
	}
	/* Ctrl-C on a waiting reader ends the wait with EINTR. Registered
	 * before taking the lock: libfuse calls back at once, under its own
	 * request lock, if the interrupt came already, and the callback takes
	 * ours. */
	fuse_req_interrupt_func(req, on_interrupt, fs);
	engine_lock(fs->eng);
	if (try_serve(fs, req, h, size, off, &wait_ok)) {
		engine_unlock(fs->eng);
		return;
	}
	if (!wait_ok) {
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, EAGAIN);
	}
	if (fuse_req_interrupted(req)) {
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, EINTR);
	}
	struct waiter *w = calloc(1, sizeof(*w));
	if (!w) {
		engine_unlock(fs->eng);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	*w = (struct waiter){ .req = req, .h = h, .size = size, .off = off };
	w->next = fs->waiters;
	fs->waiters = w;
	engine_unlock(fs->eng);
}

/* Writes go to the store file from libfuse's buffer (or, spliced in, from
 * its pipe). Large ones are answered first, unless -o writebehind=off
 * (writebehind.h). */
#define BEHIND_MIN (64 * 1024)

/* H's write-behind stream if its write of SIZE may go behind: unless
 * -o writebehind=off, a large write (or any once H has a stream) on a
 * write-only handle (no page cache to keep coherent) not
 * in append mode (where the store file's end, not OFF, places the data). */
static struct wb_stream *behind_stream(struct afs *fs, struct handle *h, size_t size, int flags)
{
	struct wb_stream *s;

	if (!fs->cfg.writebehind || !h->direct || (flags & O_APPEND))
		return NULL;
	pthread_mutex_lock(&fs->open_lock);
	if (!h->behind && !h->no_behind && size >= BEHIND_MIN) {
		int rc = wb_stream_new(fs->wb, h->fd, &h->node->behind, &h->behind);
		if (rc < 0)
			h->no_behind = true;   /* then its writes are synchronous */
	}
	s = h->behind;
	pthread_mutex_unlock(&fs->open_lock);
	return s;
}

/* The error of a write of H that went behind and failed, not yet given
 * (0 or -errno), once H's writes are done. */
static int behind_error(struct afs *fs, struct handle *h)
{
	struct wb_stream *s;

	pthread_mutex_lock(&fs->open_lock);
	s = h->behind;
	pthread_mutex_unlock(&fs->open_lock);
	return s ? wb_stream_take_error(s) : 0;
}

/* Copies the write's data (from libfuse's buffer or pipe) into a slot. */
static ssize_t fill_from(void *arg, void *dst, size_t len)
{
	struct fuse_bufvec out = FUSE_BUFVEC_INIT(len);

	out.buf[0].mem = dst;
	return fuse_buf_copy(&out, arg, 0);
}

static void afs_write_buf(fuse_req_t req, fuse_ino_t ino, struct fuse_bufvec *in, off_t off,
			  struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct handle *h = H(fi);
	size_t size = fuse_buf_size(in), done = 0;
	struct wb_stream *behind;
	ssize_t n;

	(void)ino;
	if (h->node->type != N_REAL)
		return (void)fuse_reply_err(req, EACCES);
	behind = behind_stream(fs, h, size, fi->flags);
	if (behind) {
		n = wb_stream_write(behind, off, size, fill_from, in);
		if (n < 0)
			return (void)fuse_reply_err(req, (int)-n);
		done = (size_t)n;
	}
	if (done < size) {
		/* After what went behind: the writes land in order. */
		struct fuse_bufvec out = FUSE_BUFVEC_INIT(size - done);
		settle(fs, h->node);
		out.buf[0].flags = FUSE_BUF_IS_FD | FUSE_BUF_FD_SEEK;
		out.buf[0].fd = h->fd;
		out.buf[0].pos = off + (off_t)done;
		n = fuse_buf_copy(&out, in, 0);
		if (n < 0 && !done)
			return (void)fuse_reply_err(req, (int)-n);
		done += n > 0 ? (size_t)n : 0;
	}
	written(fs, h);
	fuse_reply_write(req, done);
}

static void afs_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct handle *h = H(fi);
	struct node *n = h->node;
	enum lang lang;
	int rc = 0;

	(void)ino;
	/* close(2) gives the error of a write that went behind and failed. */
	rc = -behind_error(fs, h);
	settle(fs, n);
	/* close(2) waits for this: mark the results pending now, so that a
	 * read right after the writer's close sees the new run. */
	if (n->type == N_REAL && h->writable) {
		engine_lock(fs->eng);
		if (script_node(n, &lang) && trigger_flush(&n->trig)) {
			struct workspace *ws = dir_ws(fs, n->parent);
			script_settings(n, &lang, NULL);
			if (ws)
				h->pending = engine_save_begin(ws, n->name, lang);
		}
		engine_unlock(fs->eng);
	}
	fuse_reply_err(req, rc);
}

static void afs_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct handle *h = H(fi);
	struct node *n = h->node;
	enum lang lang;

	(void)ino;
	settle(fs, n);
	if (n->type == N_REAL && h->writable) {
		engine_lock(fs->eng);
		bool run = trigger_release_write(&n->trig);
		if (run && n->name && name_script_too_long(n->name))
			log_warn("%.40s...: the name is too long for its result files (\"<stem>.status\" must fit "
				 "in %d bytes); the file is stored but not run", n->name, NAME_MAX);
		bool eligible = script_node(n, &lang);
		struct record *committed = NULL;
		if (run && eligible) {
			struct workspace *ws = dir_ws(fs, n->parent);
			if (ws)
				committed = commit_save(ws, n, n->name, lang);
		}
		if (h->pending && h->pending != committed && n->trig.writers == 0)
			engine_save_abandon(h->pending, "the file was renamed or removed before its save finished");
		bool wrote = h->wrote;
		engine_unlock(fs->eng);
		/* Readers still open see what it wrote from their next read. */
		if (wrote)
			poll_notify_inval(&fs->pn, INO(fs, n));
	} else if (n->type == N_RESULT) {
		engine_lock(fs->eng);
		free(h->snap);
		h->snap = NULL;
		drop_poller(fs, h);
		engine_unlock(fs->eng);
	}
	handle_free(fs, h);
	fuse_reply_err(req, 0);
}

/* Answers a getxattr or listxattr of SIZE with the LEN bytes of VALUE. */
static void reply_xattr_value(fuse_req_t req, size_t size, const char *value, size_t len)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (len > size)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

/* The record of script N, when it has one and N's script owns it. Lock held. */
static struct record *script_record(struct afs *fs, struct node *n)
{
	enum lang lang;
	struct workspace *ws;
	struct record *rec;

	if (!script_node(n, &lang) || !(ws = dir_ws(fs, n->parent)))
		return NULL;
	rec = engine_record(ws, n->name, name_stem_len(n->name), false);
	return rec && strcmp(rec->rr.script, n->name) == 0 ? rec : NULL;
}

/* Extended attributes: the user namespace of stored files and directories
 * is the store's, but for user.agentbay.*: timeout and language (a
 * script's settings, checked, stored in the store), state (read-only, the
 * state of the script's last run) and run (write-only: any value reruns
 * the script). Result files have none; other namespaces are not offered. */
static bool xattr_target(struct node *n)
{
	return n->type == N_REAL && (n->fmt == S_IFREG || n->fmt == S_IFDIR);
}

static void afs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64], *buf;
	ssize_t len;

	if (!xattr_target(n) || strncmp(name, "user.", 5) != 0 || strcmp(name, XA_RUN) == 0)
		return (void)fuse_reply_err(req, ENODATA);
	if (strcmp(name, XA_STATE) == 0) {
		engine_lock(fs->eng);
		struct record *rec = script_record(fs, n);
		const char *st = rec && rec->rr.run > 0 ? run_state_name(rec->rr.state) : NULL;
		if (st)
			reply_xattr_value(req, size, st, strlen(st));
		engine_unlock(fs->eng);
		if (!st)
			fuse_reply_err(req, ENODATA);
		return;
	}
	proc_path(path, sizeof(path), n->fd);
	if (size == 0) {
		len = getxattr(path, name, NULL, 0);
		return (void)(len < 0 ? fuse_reply_err(req, errno) : fuse_reply_xattr(req, (size_t)len));
	}
	buf = malloc(size);
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	len = getxattr(path, name, buf, size);
	if (len < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)len);
	free(buf);
}

static void afs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64], *all = NULL, *out = NULL;
	ssize_t len;
	size_t outlen = 0;

	if (!xattr_target(n))
		return (void)reply_xattr_value(req, size, "", 0);
	proc_path(path, sizeof(path), n->fd);
	len = listxattr(path, NULL, 0);
	if (len < 0 && errno != ENOTSUP)
		return (void)fuse_reply_err(req, errno);
	/* Room for a few more in case one came meanwhile, and for the state. */
	size_t cap = (len > 0 ? (size_t)len : 0) + 256;
	all = malloc(cap);
	out = malloc(cap + sizeof(XA_STATE));
	if (!all || !out) {
		free(all);
		free(out);
		return (void)fuse_reply_err(req, ENOMEM);
	}
	len = len < 0 ? 0 : listxattr(path, all, cap);
	if (len < 0) {
		int e = errno;
		free(all);
		free(out);
		return (void)fuse_reply_err(req, e == ERANGE ? EAGAIN : e);
	}
	for (ssize_t off = 0; off < len;) {
		size_t l = strlen(all + off) + 1;
		if (strncmp(all + off, "user.", 5) == 0) {
			memcpy(out + outlen, all + off, l);
			outlen += l;
		}
		off += (ssize_t)l;
	}
	engine_lock(fs->eng);
	struct record *rec = script_record(fs, n);
	if (rec && rec->rr.run > 0) {
		memcpy(out + outlen, XA_STATE, sizeof(XA_STATE));
		outlen += sizeof(XA_STATE);
	}
	engine_unlock(fs->eng);
	reply_xattr_value(req, size, out, outlen);
	free(all);
	free(out);
}

/* A checked value of one of the settings: "python", "javascript", or
 * seconds. 0, or -EINVAL. */
static int setting_value(const char *name, const char *value, size_t size, char *out, size_t outsz)
{
	char v[32];
	unsigned secs;

	while (size > 0 && (value[size - 1] == '\n' || value[size - 1] == '\0'))
		size--;
	if (size == 0 || size >= sizeof(v) || memchr(value, '\0', size))
		return -EINVAL;
	memcpy(v, value, size);
	v[size] = '\0';
	if (strcmp(name, XA_TIMEOUT) == 0) {
		if (parse_seconds(v, &secs) < 0)
			return -EINVAL;
		snprintf(out, outsz, "%u", secs);
	} else if (!strcmp(v, "python") || !strcmp(v, "py")) {
		snprintf(out, outsz, "python");
	} else if (!strcmp(v, "javascript") || !strcmp(v, "js") || !strcmp(v, "node")) {
		snprintf(out, outsz, "javascript");
	} else {
		return -EINVAL;
	}
	return 0;
}

/* setfattr -n user.agentbay.run: runs script N again, as a save would. */
static int rerun(struct afs *fs, struct node *n)
{
	enum lang lang;
	struct workspace *ws;

	if (!script_node(n, &lang) || name_script_too_long(n->name))
		return -EINVAL;
	engine_lock(fs->eng);
	ws = dir_ws(fs, n->parent);
	if (ws)
		commit_save(ws, n, n->name, lang);
	engine_unlock(fs->eng);
	return ws ? 0 : -ENOMEM;
}

static void afs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
			 int flags)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64], v[32];

	if (!plain(n))
		return (void)fuse_reply_err(req, EACCES);
	if (!xattr_target(n) || strncmp(name, "user.", 5) != 0)
		return (void)fuse_reply_err(req, EOPNOTSUPP);
	if (strcmp(name, XA_STATE) == 0)
		return (void)fuse_reply_err(req, EPERM);
	if (strcmp(name, XA_RUN) == 0)
		return (void)fuse_reply_err(req, -rerun(fs, n));
	proc_path(path, sizeof(path), n->fd);
	if (strcmp(name, XA_TIMEOUT) == 0 || strcmp(name, XA_LANGUAGE) == 0) {
		if (n->fmt != S_IFREG || setting_value(name, value, size, v, sizeof(v)) < 0)
			return (void)fuse_reply_err(req, EINVAL);
		value = v;
		size = strlen(v);
	} else if (strncmp(name, XA_PREFIX, strlen(XA_PREFIX)) == 0) {
		return (void)fuse_reply_err(req, EINVAL);
	}
	fuse_reply_err(req, setxattr(path, name, value, size, flags) < 0 ? errno : 0);
}

static void afs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64];

	if (!plain(n))
		return (void)fuse_reply_err(req, EACCES);
	if (!xattr_target(n) || strncmp(name, "user.", 5) != 0 || strcmp(name, XA_RUN) == 0)
		return (void)fuse_reply_err(req, ENODATA);
	if (strcmp(name, XA_STATE) == 0)
		return (void)fuse_reply_err(req, EPERM);
	proc_path(path, sizeof(path), n->fd);
	fuse_reply_err(req, removexattr(path, name) < 0 ? errno : 0);
}

/* poll(2) and select(2) on a result file: readable when a read would not
 * wait; otherwise the kernel is told once it would not (see
 * wake_pollers()). Stored files are always ready. */
static void afs_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct afs *fs = FS(req);
	struct handle *h = H(fi);
	unsigned revents = POLLIN | POLLRDNORM;

	(void)ino;
	if (h->node->type != N_RESULT) {
		if (ph)
			fuse_pollhandle_destroy(ph);
		return (void)fuse_reply_poll(req, revents | (h->writable ? POLLOUT | POLLWRNORM : 0));
	}
	engine_lock(fs->eng);
	if (!readable(fs, h)) {
		revents = 0;
		if (ph) {
			if (!h->ph) {
				h->poll_next = fs->pollers;
				fs->pollers = h;
			} else {
				fuse_pollhandle_destroy(h->ph);
			}
			h->ph = ph;
			ph = NULL;
		}
	}
	engine_unlock(fs->eng);
	if (ph)
		fuse_pollhandle_destroy(ph);
	fuse_reply_poll(req, revents);
}

static void afs_fsync(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct handle *h = H(fi);
	int rc;

	(void)ino;
	if (h->node->type != N_REAL)
		return (void)fuse_reply_err(req, 0);
	if ((rc = behind_error(fs, h)) < 0)
		return (void)fuse_reply_err(req, -rc);
	settle(fs, h->node);
	rc = datasync ? fdatasync(h->fd) : fsync(h->fd);
	fuse_reply_err(req, rc < 0 ? errno : 0);
}

static int cmp_snap(const void *a, const void *b)
{
	return strcmp(((const struct dirent_snap *)a)->name, ((const struct dirent_snap *)b)->name);
}

static int snap_add(struct dir_handle *d, size_t *cap, const char *name, ino_t ino, unsigned char type)
{
	if (d->n == *cap) {
		size_t c = *cap ? *cap * 2 : 64;
		struct dirent_snap *e = realloc(d->e, c * sizeof(*e));
		if (!e)
			return -ENOMEM;
		d->e = e;
		*cap = c;
	}
	d->e[d->n].name = strdup(name);
	if (!d->e[d->n].name)
		return -ENOMEM;
	d->e[d->n].ino = ino;
	d->e[d->n].type = type;
	d->n++;
	return 0;
}

static void dir_handle_free(struct dir_handle *d)
{
	for (size_t i = 0; i < d->n; i++)
		free(d->e[i].name);
	free(d->e);
	free(d);
}

/* Lists the results of the directory DIRFD: the files in its meta folder. */
static int list_results(int dirfd, struct dir_handle *d, size_t *cap)
{
	int fd = openat(dirfd, NAMES_META_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	DIR *dir;
	struct dirent *de;
	int rc = 0;

	if (fd < 0)
		return errno == ENOENT ? 0 : -errno;
	dir = fdopendir(fd);
	if (!dir) {
		close(fd);
		return -errno;
	}
	while (rc == 0 && (de = readdir(dir)) != NULL) {
		enum view_kind v = name_view(de->d_name, NULL);
		/* The history, like ZFS's ".zfs", is there by name only. */
		if ((name_is_result(de->d_name, NULL, NULL) || v == VK_RESULT) && de->d_type == DT_REG)
			rc = snap_add(d, cap, de->d_name, de->d_ino, DT_REG);
		else if (v == VK_RESULTS && de->d_type == DT_DIR)
			rc = snap_add(d, cap, de->d_name, de->d_ino, DT_DIR);
	}
	closedir(dir);
	return rc;
}

static void afs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	struct dir_handle *d = calloc(1, sizeof(*d));
	size_t cap = 0, n_results;
	int fd, rc;
	DIR *dir;
	struct dirent *de;

	if (!d)
		return (void)fuse_reply_err(req, ENOMEM);
	if (n->fmt != S_IFDIR) {
		free(d);
		return (void)fuse_reply_err(req, ENOTDIR);
	}
	rc = snap_add(d, &cap, ".", 1, DT_DIR);
	if (rc == 0)
		rc = snap_add(d, &cap, "..", 1, DT_DIR);
	if (n->type == N_OVERVIEW) {
		if (rc == 0)
			rc = snap_add(d, &cap, OVERVIEW_FILE, (ino_t)((uintptr_t)fs->overview_file | (1ull << 63)), DT_REG);
		goto done;
	}
	if (rc == 0 && !n->view) {
		engine_lock(fs->eng);
		rc = list_results(n->fd, d, &cap);
		engine_unlock(fs->eng);
	}
	n_results = d->n;
	if (rc == 0)
		qsort(d->e + 2, n_results - 2, sizeof(*d->e), cmp_snap);
	if (rc == 0 && n->view) {
		engine_lock(fs->eng);
		engine_history_wait(fs->eng);
		engine_unlock(fs->eng);
	}
	fd = rc == 0 ? openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC) : -1;
	if (rc == 0 && fd < 0)
		rc = -errno;
	dir = fd >= 0 ? fdopendir(fd) : NULL;
	if (fd >= 0 && !dir) {
		rc = -errno;
		close(fd);
	}
	while (rc == 0 && dir && (de = readdir(dir)) != NULL) {
		struct dirent_snap key = { .name = de->d_name };
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..") ||
		    (!n->view && name_is_reserved(de->d_name)))
			continue;
		/* A result owns its name: a stored file of the same name is hidden. */
		if (n_results > 2 && bsearch(&key, d->e + 2, n_results - 2, sizeof(*d->e), cmp_snap))
			continue;
		rc = snap_add(d, &cap, de->d_name, de->d_ino, de->d_type);
	}
	if (dir)
		closedir(dir);
done:
	if (rc < 0) {
		dir_handle_free(d);
		return (void)fuse_reply_err(req, -rc);
	}
	fi->fh = (uint64_t)(uintptr_t)d;
	link_open(fs, &d->link, &fs->open_dirs);
	if (fuse_reply_open(req, fi) == -ENOENT) {
		unlink_open(fs, &d->link, &fs->open_dirs);
		dir_handle_free(d);
	}
}

static void afs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;
	char *buf = malloc(size ? size : 1);
	size_t used = 0;

	(void)ino;
	if (!buf)
		return (void)fuse_reply_err(req, ENOMEM);
	for (size_t i = (size_t)off; i < d->n; i++) {
		struct stat st = { .st_ino = d->e[i].ino, .st_mode = (mode_t)d->e[i].type << 12 };
		size_t len = fuse_add_direntry(req, buf + used, size - used, d->e[i].name, &st, (off_t)(i + 1));
		if (len > size - used)
			break;
		used += len;
	}
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void afs_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct dir_handle *d = (struct dir_handle *)(uintptr_t)fi->fh;

	(void)ino;
	unlink_open(FS(req), &d->link, &FS(req)->open_dirs);
	dir_handle_free(d);
	fuse_reply_err(req, 0);
}

static void afs_fsyncdir(fuse_req_t req, fuse_ino_t ino, int datasync, struct fuse_file_info *fi)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	int fd = openat(n->fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc;

	(void)fi;
	if (fd < 0)
		return (void)fuse_reply_err(req, errno);
	rc = datasync ? fdatasync(fd) : fsync(fd);
	rc = rc < 0 ? errno : 0;
	close(fd);
	fuse_reply_err(req, rc);
}

static void afs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct afs *fs = FS(req);
	struct statvfs sv;
	char path[64];

	(void)ino;
	proc_path(path, sizeof(path), fs->root->fd);
	if (statvfs(path, &sv) < 0)
		return (void)fuse_reply_err(req, errno);
	fuse_reply_statfs(req, &sv);
}

static void afs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct afs *fs = FS(req);
	struct node *n = N(fs, ino);
	char path[64];

	if (n->type == N_RESULT || (n->type == N_OVERVIEW && n->fmt == S_IFREG))
		return (void)fuse_reply_err(req, (mask & (W_OK | X_OK)) ? EACCES : 0);
	if (n->type == N_OVERVIEW || (n->view && (mask & W_OK)))
		return (void)fuse_reply_err(req, (mask & W_OK) ? EACCES : 0);
	proc_path(path, sizeof(path), n->fd);
	fuse_reply_err(req, access(path, mask) < 0 ? errno : 0);
}

const struct fuse_lowlevel_ops afs_ops = {
	.init = afs_init,
	.lookup = afs_lookup,
	.forget = afs_forget,
	.forget_multi = afs_forget_multi,
	.getattr = afs_getattr,
	.setattr = afs_setattr,
	.readlink = afs_readlink,
	.mknod = afs_mknod,
	.mkdir = afs_mkdir,
	.unlink = afs_unlink,
	.rmdir = afs_rmdir,
	.symlink = afs_symlink,
	.rename = afs_rename,
	.link = afs_link,
	.open = afs_open,
	.read = afs_read,
	.write_buf = afs_write_buf,
	.poll = afs_poll,
	.getxattr = afs_getxattr,
	.listxattr = afs_listxattr,
	.setxattr = afs_setxattr,
	.removexattr = afs_removexattr,
	.flush = afs_flush,
	.release = afs_release,
	.fsync = afs_fsync,
	.opendir = afs_opendir,
	.readdir = afs_readdir,
	.releasedir = afs_releasedir,
	.fsyncdir = afs_fsyncdir,
	.statfs = afs_statfs,
	.access = afs_access,
	.create = afs_create,
};

int afs_init_root(struct afs *fs, const char *store)
{
	struct node *root = calloc(1, sizeof(*root));
	struct stat st;

	if (!root || wb_new(&fs->wb) < 0) {
		free(root);
		return -ENOMEM;
	}
	pthread_mutex_init(&fs->open_lock, NULL);
	root->type = N_REAL;
	root->fd = open(store, O_PATH | O_DIRECTORY | O_CLOEXEC);
	if (root->fd < 0 || fstat(root->fd, &st) < 0) {
		int err = -errno;
		if (root->fd >= 0)
			close(root->fd);
		free(root);
		return err;
	}
	root->dev = st.st_dev;
	root->ino = st.st_ino;
	root->fmt = S_IFDIR;
	root->nlookup = 2;
	fs->root = root;
	fs->overview = calloc(1, sizeof(struct node));
	fs->overview_file = calloc(1, sizeof(struct node));
	if (!fs->overview || !fs->overview_file)
		return -ENOMEM;
	fs->overview->type = fs->overview_file->type = N_OVERVIEW;
	fs->overview->fd = fs->overview_file->fd = -1;
	fs->overview->fmt = S_IFDIR;
	fs->overview_file->fmt = S_IFREG;
	fs->uid = getuid();
	fs->gid = getgid();
	return 0;
}

static void free_node(struct node *n)
{
	if (n->fd >= 0)
		close(n->fd);
	free(n->name);
	free(n);
}

void afs_free(struct afs *fs)
{
	/* What the kernel never released (it drops releases at unmount). */
	while (fs->open_files) {
		struct handle *h = (struct handle *)fs->open_files;
		if (h->ph)
			fuse_pollhandle_destroy(h->ph);
		handle_free(fs, h);
	}
	while (fs->open_dirs) {
		struct dir_handle *d = (struct dir_handle *)fs->open_dirs;
		unlink_open(fs, &d->link, &fs->open_dirs);
		dir_handle_free(d);
	}
	wb_free(fs->wb);
	fs->wb = NULL;
	/* No read waits here: afs_loop_ended() answered them while the
	 * session could still take a reply. */
	for (size_t i = 0; i < fs->nodes.n_buckets; i++) {
		struct node *n = fs->nodes.buckets[i];
		while (n) {
			struct node *next = n->hnext;
			free_node(n);
			n = next;
		}
	}
	free(fs->nodes.buckets);
	memset(&fs->nodes, 0, sizeof(fs->nodes));
	while (fs->graveyard) {
		struct node *n = fs->graveyard;
		fs->graveyard = n->hnext;
		free_node(n);
	}
	while (fs->rglues) {
		struct rglue *g = fs->rglues;
		fs->rglues = g->next;
		for (int k = 0; k < RK_COUNT; k++)
			free(g->rnode[k]);
		free(g);
	}
	if (fs->root)
		free_node(fs->root);
	fs->root = NULL;
	free(fs->overview);
	free(fs->overview_file);
	fs->overview = fs->overview_file = NULL;
}
