/* local: see local.h */
#define _GNU_SOURCE
#include "local.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fds.h"
#include "log.h"
#include "pycode.h"
#include "report.h"
#include "run_uids.h"
#include "sandbox_filter.h"
#include "storefile.h"
#include "strvec.h"
#include "threads.h"

extern const char bootstrap_python[];
extern const char bootstrap_javascript[];

/* W_STATUS: bwrap's --json-status-fd, which names the sandbox's init.
 * W_CODE: the pipe the bootstrap reads the script from (we write). */
enum wkind { W_OUT, W_ERR, W_REP, W_STATUS, W_PID, W_TIMER, W_CODE, W_COUNT };

struct watch {
	struct run_handle *run;
	enum wkind kind;
};

#define ERRHEAD_MAX 2048
/* A spare died before it was used (not by our hand), or a fork server
 * failed to start a run: after a few in a row, cold starts only, and the
 * daemon says why once. */
#define SPARE_FAILURES_MAX 3
#define DRAIN_SECONDS 2

struct run_handle {
	struct local_backend *lb;
	struct run_handle *next;
	struct watch w[W_COUNT];
	int fd[W_COUNT];
	pid_t pid;
	pid_t child_pid;             /* the sandbox's init, as bwrap reports it */
	char status_buf[256];        /* what bwrap's status fd said so far */
	size_t status_len;
	int slot;
	bool spare;                  /* a warm sandbox waiting for a run */
	bool ready;                  /* a spare whose bootstrap said it waits */
	bool from_spare;             /* the run took a spare */
	bool retried;                /* and started again cold: see retry_cold() */
	bool zygote;                 /* stands for a fork server being started */
	bool no_zygote;              /* a cold start: every fork server is busy */
	bool forked;                 /* from a fork server: W_STATUS is its answer socket */
	int fork_code;               /* what the fork server answered, or -1 */
	bool delivered;              /* its end went to the sink: only the sandbox is left */
	/* the request, copied */
	enum lang lang;
	char *feed;                  /* what the bootstrap reads: name, script */
	size_t feed_len, feed_off;
	unsigned timeout_s;
	struct run_sink sink;
	void *ctx;
	/* progress */
	enum cancel_reason cancel;   /* under lb->lock */
	bool killed;                 /* under lb->lock */
	bool exited;
	bool timed_out;
	bool draining;
	int wstatus;
	int spawn_errno;
	int spawn_stage;             /* where the child failed: enum spawn_stage */
	char *tmpdir;                /* without a sandbox: the private work dir */
	struct report rp;            /* what the bootstrap said (fd 3) */
	char errhead[ERRHEAD_MAX];
	size_t errhead_len;
};

/* Processes of a fork server's uid besides a run's own: its two bwrap, the
 * server, and the run's A, B and C (C is the script). */
#define ZYGOTE_PROCS 6

/* A fork server (-o forkserver=on): a Python sandbox that forks runs, each
 * into namespaces and file systems of its own (see _agentbayfs_zygote() in
 * bootstrap/run.py). One per slot when slots have uids of their own (at
 * most zyg_max of them), else one in all (zygote_of()). */
struct zygote {
	pid_t pid;                    /* its outer bwrap, our child; 0: none */
	int sock;                     /* requests go here */
	struct timespec last_use;
};

/* The warm sandboxes of one language: started once the language is used,
 * dropped after cfg.warm_idle_s without a run of it. */
struct pool {
	bool active;
	bool off;                     /* spares kept dying: cold starts only */
	unsigned failures;            /* spares in a row that died unused */
	struct timespec last_use;
};

struct local_backend {
	struct backend base;
	struct local_config cfg;
	char *python, *node, *bwrap;
	pthread_mutex_t lock;
	pthread_t thread;
	int epfd;
	int evfd;
	struct run_handle *starting;  /* queued for the thread to fork; under lock */
	struct run_handle *runs;      /* forked or finishing; thread only */
	bool stopping;                /* under lock */
	struct timespec reap_until;   /* thread only: poll for orphans until then */
	unsigned char *slot_used;     /* thread only */
	struct pool pool[3];          /* by enum lang; thread only */
	struct run_uids uids;         /* with drop_uid: the uid of each slot */
	bool filter;                  /* a seccomp filter for every sandbox */
	struct pycode pycode;         /* the Python bootstrap, compiled */
	struct zygote *zyg;           /* by zygote_of(); thread only */
	unsigned zyg_max;             /* most fork servers at once: cfg.jobs */
	unsigned zyg_failures;        /* forked runs in a row that did not start */
	bool zyg_off;                 /* they kept failing: cold starts only */
};

static const struct backend_ops local_ops;
static bool later_than(const struct timespec *a, const struct timespec *b);
static void feed(struct local_backend *lb, struct run_handle *r);
static void spare_gone(struct local_backend *lb, struct run_handle *r);

int local_find_program(const char *name, char *out, size_t outsz)
{
	char cand[PATH_MAX];
	const char *path;

	if (strchr(name, '/')) {
		snprintf(cand, sizeof(cand), "%s", name);
	} else {
		path = getenv("PATH");
		if (!path || !*path)
			path = "/usr/local/bin:/usr/bin:/bin";
		const char *p = path;
		bool found = false;
		while (*p && !found) {
			const char *e = strchrnul(p, ':');
			int n = snprintf(cand, sizeof(cand), "%.*s/%s", (int)(e - p), p, name);
			if (n > 0 && (size_t)n < sizeof(cand) && access(cand, X_OK) == 0)
				found = true;
			p = *e ? e + 1 : e;
		}
		if (!found)
			return -ENOENT;
	}
	char real[PATH_MAX];
	if (!realpath(cand, real))
		return -errno;
	if (access(real, X_OK) != 0)
		return -errno;
	if (strlen(real) >= outsz)
		return -ENAMETOOLONG;
	snprintf(out, outsz, "%s", real);
	return 0;
}

/* A new handle's process and watch state: nothing forked, nothing open. */
static void handle_init(struct local_backend *lb, struct run_handle *r)
{
	r->lb = lb;
	r->pid = -1;
	r->slot = -1;
	report_init(&r->rp);
	for (int i = 0; i < W_COUNT; i++) {
		r->fd[i] = -1;
		r->w[i] = (struct watch){ .run = r, .kind = (enum wkind)i };
	}
}

static void wake(struct local_backend *lb)
{
	uint64_t one = 1;
	ssize_t n = write(lb->evfd, &one, sizeof(one));
	(void)n;
}

/* ---- starting ---------------------------------------------------------- */

static int local_start(struct backend *b, const struct run_request *req, const struct run_sink *sink,
		       void *ctx, struct run_handle **handle)
{
	struct local_backend *lb = (struct local_backend *)b;
	struct run_handle *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	r->lang = req->lang;
	/* The bootstrap reads the name's length, a newline, the name and the
	 * script (see src/bootstrap/). */
	size_t nlen = strlen(req->script_name);
	char head[24];
	int hlen = snprintf(head, sizeof(head), "%zu\n", nlen);
	r->feed_len = (size_t)hlen + nlen + req->code_len;
	r->feed = malloc(r->feed_len);
	if (!r->feed) {
		free(r);
		return -ENOMEM;
	}
	memcpy(r->feed, head, (size_t)hlen);
	memcpy(r->feed + hlen, req->script_name, nlen);
	memcpy(r->feed + hlen + nlen, req->code, req->code_len);
	r->timeout_s = req->timeout_s;
	r->sink = *sink;
	r->ctx = ctx;
	handle_init(lb, r);
	pthread_mutex_lock(&lb->lock);
	r->next = lb->starting;
	lb->starting = r;
	pthread_mutex_unlock(&lb->lock);
	wake(lb);
	*handle = r;
	return 0;
}

static void local_cancel(struct backend *b, struct run_handle *r, enum cancel_reason why)
{
	struct local_backend *lb = (struct local_backend *)b;

	pthread_mutex_lock(&lb->lock);
	if (!r->cancel)
		r->cancel = why;
	pthread_mutex_unlock(&lb->lock);
	wake(lb);
}

/* Kills the run's processes. The child leads its own process group (it
 * called setsid), and so does everything of the run that has not yet made a
 * session of its own: with a sandbox, both bwrap processes. Killing only the
 * outer bwrap while the inner one still waits for it during setup would
 * leave the inner one waiting forever, holding a copy of the host's mounts
 * (this mount's among them, so it could never be torn down). The script
 * itself dies with the sandbox's pid namespace when its init goes. The group
 * cannot be another's: the child is not reaped yet. Thread only. */
static void kill_run(struct run_handle *r)
{
	if (r->pid <= 0 || r->killed)
		return;
	r->killed = true;
	/* Once set up, the sandbox's init has left the group: kill it by pid,
	 * and its pid namespace goes with it. It is our grandchild and cannot
	 * have been reaped and reused while our child still lives. */
	if (!r->exited && r->child_pid > 0)
		kill(r->child_pid, SIGKILL);
	if (!r->exited)
		kill(-r->pid, SIGKILL);
	if (r->fd[W_PID] >= 0)
		syscall(SYS_pidfd_send_signal, r->fd[W_PID], SIGKILL, NULL, 0);
	else if (!r->exited)
		kill(r->pid, SIGKILL);
	/* A forked run: with the helper's copy, ours of the answer socket
	 * closed tells the fork server to kill the run. */
	if (r->forked && r->fd[W_STATUS] >= 0) {
		epoll_ctl(r->lb->epfd, EPOLL_CTL_DEL, r->fd[W_STATUS], NULL);
		close(r->fd[W_STATUS]);
		r->fd[W_STATUS] = -1;
	}
}

/* Builds the command line. Strings are owned by V. */
static int build_argv(struct local_backend *lb, struct run_handle *r, const char *interp, struct strvec *v)
{
	const char *boot = r->lang == LANG_PYTHON ? bootstrap_python : bootstrap_javascript;
	int rc = 0;

	if (lb->cfg.sandbox == SANDBOX_BWRAP) {
		char size[32];
		snprintf(size, sizeof(size), "%llu", (unsigned long long)lb->cfg.tmp_size);
		rc |= strvec_pushv(v, lb->bwrap, "--unshare-all", "--unshare-user", "--disable-userns",
				   "--die-with-parent", "--new-session", NULL);
		/* A zygote makes each run's namespaces and mounts itself. */
		if (r->zygote)
			rc |= strvec_pushv(v, "--cap-add", "CAP_SYS_ADMIN", "--cap-add", "CAP_SETPCAP", "--cap-add",
					   "CAP_NET_ADMIN", NULL);
		else
			rc |= strvec_pushv(v, "--cap-drop", "ALL", NULL);
		rc |= strvec_pushv(v, "--hostname", "sandbox",
				   "--ro-bind", "/usr", "/usr",
				   "--symlink", "usr/lib", "/lib", "--symlink", "usr/lib64", "/lib64",
				   "--symlink", "usr/bin", "/bin", "--symlink", "usr/sbin", "/sbin",
				   "--ro-bind-try", "/etc/alternatives", "/etc/alternatives",
				   "--ro-bind-try", "/etc/localtime", "/etc/localtime",
				   "--ro-bind-try", "/etc/ld.so.cache", "/etc/ld.so.cache",
				   "--ro-bind-try", "/etc/mime.types", "/etc/mime.types",
				   "--ro-bind-try", "/etc/fonts", "/etc/fonts",
				   "--ro-bind-try", "/etc/matplotlibrc", "/etc/matplotlibrc",
				   NULL);
		/* An interpreter installed outside /usr: its prefix, read-only. */
		if (strncmp(interp, "/usr/", 5) != 0) {
			char prefix[PATH_MAX];
			snprintf(prefix, sizeof(prefix), "%s", interp);
			for (int up = 0; up < 2; up++) {
				char *slash = strrchr(prefix, '/');
				if (slash && slash != prefix)
					*slash = '\0';
			}
			rc |= strvec_pushv(v, "--ro-bind", prefix, prefix, NULL);
		}
		/* /proc/1 is bubblewrap's init, of the script's own uid and
		 * dumpable: hidden, or /proc/1/mem would let a script rewrite the
		 * process that takes the sandbox down. */
		if (r->zygote)
			/* Its runs mount /proc, /tmp, /work, /dev/shm and /dev/pts
			 * afresh each, and apply the filter themselves. */
			rc |= strvec_pushv(v, "--proc", "/proc", "--dev", "/dev", "--remount-ro", "/dev",
					   "--tmpfs", "/tmp", "--tmpfs", "/work", "--remount-ro", "/",
					   "--chdir", "/", NULL);
		else
			rc |= strvec_pushv(v, "--proc", "/proc", "--tmpfs", "/proc/1", "--remount-ro", "/proc/1",
					   "--dev", "/dev",
					   "--size", size, "--tmpfs", "/tmp",
					   "--size", size, "--tmpfs", "/work",
					   "--remount-ro", "/", "--chdir", "/work",
					   "--json-status-fd", "5", NULL);
		if (lb->filter && !r->zygote)
			rc |= strvec_pushv(v, "--seccomp", "6", NULL);
		rc |= strvec_pushv(v, "--", NULL);
	}
	/* "warm": the bootstrap imports ahead what a cold one imports lazily. */
	const char *mode = r->zygote ? "zygote" : r->spare ? "warm" : NULL;
	if (r->lang == LANG_PYTHON && lb->pycode.fd >= 0)
		rc |= strvec_pushv(v, interp, "-I", "-u", "-c", lb->pycode.stub, boot, mode, NULL);
	else if (r->lang == LANG_PYTHON)
		rc |= strvec_pushv(v, interp, "-I", "-u", "-c", boot, mode, NULL);
	else
		rc |= strvec_pushv(v, interp, "-e", boot, r->spare ? "warm" : NULL, NULL);
	return rc ? -ENOMEM : 0;
}

static int build_env(struct run_handle *r, const char *workdir, struct strvec *v)
{
	char home[PATH_MAX + 8];
	int rc;

	snprintf(home, sizeof(home), "HOME=%s", workdir);
	rc = strvec_pushv(v, "PATH=/usr/local/bin:/usr/bin:/bin", home, "LANG=C.UTF-8",
			  "TMPDIR=/tmp", "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1",
			  "MPLBACKEND=Agg", NULL);
	(void)r;
	return rc ? -ENOMEM : 0;
}

/* In the child, between fork and exec: only async-signal-safe calls. */
enum spawn_stage { STAGE_SETUP = 1, STAGE_EXEC = 2 };

static void child_fail(int repfd, int err, enum spawn_stage stage)
{
	char msg[96] = "{\"event\":\"spawn_error\",\"stage\":0,\"errno\":";
	size_t n = strlen(msg);
	char digits[12];

	msg[strlen("{\"event\":\"spawn_error\",\"stage\":")] = (char)('0' + stage);
	int d = 0;

	if (err <= 0)
		err = EIO;
	while (err > 0 && d < (int)sizeof(digits)) {
		digits[d++] = (char)('0' + err % 10);
		err /= 10;
	}
	while (d > 0)
		msg[n++] = digits[--d];
	msg[n++] = '}';
	msg[n++] = '\n';
	if (write(repfd, msg, n) < 0)
		_exit(127);
	_exit(127);
}

static void set_limit(int res, rlim_t v)
{
	struct rlimit rl = { v, v };
	setrlimit(res, &rl);
}

/* The child's fds: 0-2 stdio, 3 the bootstrap's report, 4 the script, 5
 * bwrap's status, 6 the seccomp filter, 7 the compiled Python bootstrap
 * (PYCODE_FD), 8 a fork server's requests; the last three may be missing. */
#define CHILD_FDS 9

static void child(struct local_backend *lb, struct run_handle *r, int fds[CHILD_FDS], char **argv,
		  char **envp, const char *chdir_to, pid_t parent)
{
	int hi[CHILD_FDS];
	sigset_t all;

	sigemptyset(&all);
	sigprocmask(SIG_SETMASK, &all, NULL);
	for (int i = 0; i < CHILD_FDS; i++) {
		hi[i] = fds[i] < 0 ? -1 : fcntl(fds[i], F_DUPFD_CLOEXEC, 64);
		if (fds[i] >= 0 && hi[i] < 0)
			child_fail(fds[3], errno, STAGE_SETUP);
	}
	for (int i = 0; i < CHILD_FDS; i++)
		if (hi[i] < 0)
			close(i);
		else if (dup2(hi[i], i) < 0)
			child_fail(hi[3], errno, STAGE_SETUP);
	syscall(SYS_close_range, (unsigned)CHILD_FDS, ~0u, 0u);
	if (setsid() < 0)
		child_fail(3, errno, STAGE_SETUP);
	set_limit(RLIMIT_CORE, 0);
	set_limit(RLIMIT_NOFILE, lb->cfg.max_open_files);
	set_limit(RLIMIT_FSIZE, lb->cfg.max_file_size);
	/* A fork server lives on across runs: each run sets its own. */
	if (!r->zygote)
		set_limit(RLIMIT_CPU, (rlim_t)r->timeout_s + 5);
	if (lb->cfg.memory)
		set_limit(RLIMIT_AS, lb->cfg.memory);
	if (lb->cfg.drop_uid) {
		uid_t uid = lb->uids.uid[r->slot];
		/* bwrap's two processes come on top of the script's own; with
		 * a fork server, it and the run's two of its own too. */
		set_limit(RLIMIT_NPROC, lb->cfg.max_procs + (r->zygote ? ZYGOTE_PROCS : 3));
		if (setgroups(0, NULL) < 0 || setresgid(uid, uid, uid) < 0 || setresuid(uid, uid, uid) < 0)
			child_fail(3, errno, STAGE_SETUP);
	}
	/* After the uid change, which clears it. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	if (chdir_to && chdir(chdir_to) < 0)
		child_fail(3, errno, STAGE_SETUP);
	execve(argv[0], argv, envp);
	child_fail(3, errno, STAGE_EXEC);
}

/* Closes both ends of P that are open. */
static void close_pair(const int p[2])
{
	for (int i = 0; i < 2; i++)
		if (p[i] >= 0)
			close(p[i]);
}

static int make_pipe(int p[2])
{
	return pipe2(p, O_CLOEXEC) < 0 ? -errno : 0;
}

static void watch_fd(struct local_backend *lb, struct run_handle *r, enum wkind k)
{
	struct epoll_event ev = { .events = k == W_CODE ? EPOLLOUT : EPOLLIN, .data.ptr = &r->w[k] };
	epoll_ctl(lb->epfd, EPOLL_CTL_ADD, r->fd[k], &ev);
}

static void close_watch(struct local_backend *lb, struct run_handle *r, enum wkind k)
{
	if (r->fd[k] < 0)
		return;
	epoll_ctl(lb->epfd, EPOLL_CTL_DEL, r->fd[k], NULL);
	close(r->fd[k]);
	r->fd[k] = -1;
}

static void arm_timer(struct run_handle *r, unsigned secs)
{
	struct itimerspec its = { .it_value = { .tv_sec = secs } };
	timerfd_settime(r->fd[W_TIMER], 0, &its, NULL);
}

/* ---- the fork server -------------------------------------------------- */

/* Whether R goes to a fork server: not a run that one already failed. */
static bool forked_run(const struct local_backend *lb, const struct run_handle *r)
{
	return lb->zyg && !lb->zyg_off && r->lang == LANG_PYTHON && !r->spare && !r->zygote && !r->retried &&
	       !r->no_zygote;
}

/* The fork server of SLOT: its own when slots have uids of their own,
 * else the one of all. */
static struct zygote *zygote_of(struct local_backend *lb, int slot)
{
	return &lb->zyg[lb->cfg.drop_uid ? slot : 0];
}

/* A forked run that did not start goes again cold (retry_cold()); after
 * a few in a row, every run does, and the daemon says why once. */
static void zygote_failed(struct local_backend *lb, struct run_handle *r)
{
	if (++lb->zyg_failures < SPARE_FAILURES_MAX || lb->zyg_off)
		return;
	lb->zyg_off = true;
	const char *m = r->errhead, *end = r->errhead + r->errhead_len;
	const char *nl = memchr(m, '\n', (size_t)(end - m));
	int n = (int)((nl ? nl : end) - m);
	log_warn("the Python fork server keeps failing to start runs%s%.*s; starting every run cold "
		 "from now on (-o forkserver=off turns it off)", n ? ": " : "", n, m);
}

/* Ends the fork server of SLOT: its runs are killed with it. It is
 * reaped by reap() like any child. Thread only. */
static void zygote_stop(struct local_backend *lb, struct zygote *z)
{

	if (z->sock >= 0)
		close(z->sock);
	z->sock = -1;
	if (z->pid > 0)
		kill(-z->pid, SIGKILL);
	z->pid = 0;
}

/* Starts Z, the fork server of SLOT. 0 or -errno. Thread only. */
static int zygote_start(struct local_backend *lb, struct zygote *z, int slot)
{
	struct run_handle zr = { .lb = lb, .slot = slot, .zygote = true, .lang = LANG_PYTHON };
	struct strvec argv = { 0 }, envp = { 0 };
	int sp[2] = { -1, -1 }, devnull = -1, filter = -1;
	int rc = 0;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) < 0)
		return -errno;
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0)
		rc = -errno;
	else if (lb->filter && (filter = sandbox_filter_memfd()) < 0)
		rc = filter;
	else if ((rc = build_argv(lb, &zr, lb->python, &argv)) == 0)
		rc = build_env(&zr, "/work", &envp);
	if (rc == 0) {
		/* Its stderr is the daemon's: what bwrap says if it fails. */
		int fds[CHILD_FDS] = { devnull, devnull, STDERR_FILENO, devnull, devnull, -1, filter, lb->pycode.fd,
				       sp[1] };
		pid_t parent = getpid();
		pid_t pid = fork();
		if (pid == 0)
			child(lb, &zr, fds, argv.v, envp.v, NULL, parent);
		if (pid < 0) {
			rc = -errno;
		} else {
			z->pid = pid;
			z->sock = sp[0];
			sp[0] = -1;
		}
	}
	if (sp[0] >= 0)
		close(sp[0]);
	close(sp[1]);
	if (devnull >= 0)
		close(devnull);
	if (filter >= 0)
		close(filter);
	strvec_free(&argv);
	strvec_free(&envp);
	return rc;
}

/* Asks SLOT's fork server for a run with FDS (stdin, stdout, stderr,
 * report, script, the answer socket). 0 or -errno. Thread only. */
static int zygote_request(struct local_backend *lb, struct run_handle *r, const int fds[6])
{
	struct zygote *z = zygote_of(lb, r->slot);
	char text[96];
	int rc = -EPIPE;

	int len = snprintf(text, sizeof(text), "%u %u %llu", r->timeout_s + 5, lb->cfg.max_procs + ZYGOTE_PROCS,
			   (unsigned long long)lb->cfg.tmp_size);
	/* A server that died since its last run is started again, once. */
	for (int attempt = 0; attempt < 2; attempt++) {
		if (z->sock < 0 && (rc = zygote_start(lb, z, r->slot)) < 0)
			return rc;
		ssize_t n;
		do
			n = fds_send(z->sock, text, (size_t)len, fds, 6, MSG_NOSIGNAL);
		while (n < 0 && errno == EINTR);
		if (n == len) {
			clock_gettime(CLOCK_MONOTONIC, &z->last_use);
			return 0;
		}
		rc = n < 0 ? -errno : -EIO;
		zygote_stop(lb, z);
	}
	return rc;
}

/* The run's process on our side: lives until the fork server hangs up the
 * run's answer socket (it wrote how the run ended, which the daemon reads
 * on its own copy, W_STATUS), so that the run is watched, timed and killed
 * like any other. Its own exit status means nothing: a tool such as
 * valgrind may set it. In the child: async-signal-safe calls only. */
static void forked_helper(int conn, pid_t parent)
{
	sigset_t none;
	struct pollfd p = { .fd = 0, .events = 0 };

	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (dup2(conn, 0) < 0)
		_exit(127);
	syscall(SYS_close_range, 1u, ~0u, 0u);
	setsid();
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (getppid() != parent)
		_exit(127);
	while (poll(&p, 1, -1) < 0 || !(p.revents & (POLLHUP | POLLERR | POLLNVAL)))
		;
	_exit(0);
}

/* How forked run R ended, as the fork server said on W_STATUS: read now
 * if not yet (it wrote before it hung up, and the helper ends only then);
 * 127 when it said nothing (it died). Thread only. */
static int forked_wstatus(struct run_handle *r)
{
	unsigned char code;

	if (r->fork_code < 0 && r->fd[W_STATUS] >= 0 && recv(r->fd[W_STATUS], &code, 1, MSG_DONTWAIT) == 1)
		r->fork_code = code;
	return W_EXITCODE(r->fork_code >= 0 ? r->fork_code : 127, 0);
}

/* spawn() through the slot's fork server. */
static void spawn_forked(struct local_backend *lb, struct run_handle *r)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 }, code[2] = { -1, -1 };
	int conn[2] = { -1, -1 }, devnull = -1;
	int rc;

	if ((rc = make_pipe(out)) || (rc = make_pipe(err)) || (rc = make_pipe(rep)) || (rc = make_pipe(code)))
		goto fail;
	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, conn) < 0 ||
	    (devnull = open("/dev/null", O_RDWR | O_CLOEXEC)) < 0) {
		rc = -errno;
		goto fail;
	}
	fcntl(code[1], F_SETFL, O_NONBLOCK);
	int fds[6] = { devnull, out[1], err[1], rep[1], code[0], conn[1] };
	if ((rc = zygote_request(lb, r, fds)) < 0)
		goto fail;
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0)
		forked_helper(conn[0], parent);
	if (pid < 0) {
		rc = -errno;
		goto fail;   /* the server sees conn[0] close and kills the run */
	}
	r->pid = pid;
	r->from_spare = true;   /* see retry_cold() */
	r->forked = true;
	r->fork_code = -1;
	r->fd[W_OUT] = out[0];
	r->fd[W_ERR] = err[0];
	r->fd[W_REP] = rep[0];
	r->fd[W_CODE] = code[1];
	r->fd[W_STATUS] = conn[0];
	r->fd[W_PID] = (int)syscall(SYS_pidfd_open, pid, 0);
	r->fd[W_TIMER] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	out[0] = err[0] = rep[0] = code[1] = conn[0] = -1;
	for (int k = 0; k < W_COUNT; k++)
		if (r->fd[k] >= 0 && k != W_CODE)
			watch_fd(lb, r, k);
	rc = 0;
fail:
	if (rc)
		r->spawn_errno = -rc;
	close_pair(out);
	close_pair(err);
	close_pair(rep);
	close_pair(code);
	close_pair(conn);
	if (devnull >= 0)
		close(devnull);
}

/* Ends the fork servers unused for cfg.warm_idle_s. The time until the
 * next, in ms, or -1. Thread only. */
static int zygotes_tend(struct local_backend *lb)
{
	struct timespec now;
	int next = -1;

	if (!lb->zyg)
		return -1;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (unsigned s = 0; s < lb->cfg.slots; s++) {
		struct zygote *z = &lb->zyg[s];
		if (z->sock < 0)
			continue;
		struct timespec until = z->last_use;
		until.tv_sec += lb->cfg.warm_idle_s;
		if (!later_than(&until, &now)) {
			/* Not while it serves a run: the next look is soon. */
			bool serving = lb->cfg.drop_uid ? lb->slot_used[s] : false;
			for (unsigned u = 0; !lb->cfg.drop_uid && u < lb->cfg.slots; u++)
				serving |= lb->slot_used[u];
			if (!serving)
				zygote_stop(lb, z);
			else if (next < 0 || next > 1000)
				next = 1000;
			continue;
		}
		long ms = (until.tv_sec - now.tv_sec) * 1000 + (until.tv_nsec - now.tv_nsec) / 1000000 + 1;
		if (next < 0 || ms < next)
			next = ms > INT_MAX ? INT_MAX : (int)ms;
	}
	return next;
}

/* Forks the run. On failure sets r->spawn_errno and leaves r->pid < 0. */
static void spawn(struct local_backend *lb, struct run_handle *r)
{
	int out[2] = { -1, -1 }, err[2] = { -1, -1 }, rep[2] = { -1, -1 }, st[2] = { -1, -1 };
	int code[2] = { -1, -1 };
	int devnull = -1, filter = -1;
	struct strvec argv = { 0 }, envp = { 0 };
	char tmpdir[] = "/tmp/agentbayfs-run-XXXXXX";
	const char *interp = r->lang == LANG_PYTHON ? lb->python : lb->node;
	const char *workdir = "/work";
	int rc;

	/* With fork servers per slot, one that is up saves starting one. */
	for (int s = 0; forked_run(lb, r) && lb->cfg.drop_uid && s < (int)lb->cfg.slots; s++)
		if (!lb->slot_used[s] && lb->zyg[s].sock >= 0) {
			r->slot = s;
			lb->slot_used[s] = 1;
			break;
		}
	for (int s = 0; r->slot < 0 && s < (int)lb->cfg.slots; s++)
		if (!lb->slot_used[s]) {
			r->slot = s;
			lb->slot_used[s] = 1;
			break;
		}
	/* No more fork servers than runs at once (each holds an interpreter
	 * and a run set up ahead): beyond, a run starts cold. */
	if (r->slot >= 0 && forked_run(lb, r) && lb->cfg.drop_uid && lb->zyg[r->slot].sock < 0) {
		unsigned up = 0;
		for (unsigned s = 0; s < lb->cfg.slots; s++)
			up += lb->zyg[s].sock >= 0;
		r->no_zygote = up >= lb->zyg_max;
	}
	if (r->slot < 0) {
		r->spawn_errno = EAGAIN;
		return;
	}
	if (forked_run(lb, r)) {
		spawn_forked(lb, r);
		return;
	}
	if ((rc = make_pipe(out)) || (rc = make_pipe(err)) || (rc = make_pipe(rep)) || (rc = make_pipe(st)) ||
	    (rc = make_pipe(code)))
		goto fail;
	/* Never blocks this thread: the script goes in as the pipe drains. */
	fcntl(code[1], F_SETFL, O_NONBLOCK);
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		rc = -errno;
		goto fail;
	}
	if (lb->filter && (filter = sandbox_filter_memfd()) < 0) {
		rc = filter;
		goto fail;
	}
	if (lb->cfg.sandbox == SANDBOX_NONE) {
		/* No sandbox: a private directory stands in for /work. */
		if (!mkdtemp(tmpdir)) {
			rc = -errno;
			goto fail;
		}
		workdir = tmpdir;
	}
	if ((rc = build_argv(lb, r, interp, &argv)) || (rc = build_env(r, workdir, &envp)))
		goto fail;
	int fds[CHILD_FDS] = { devnull, out[1], err[1], rep[1], code[0], st[1], filter,
			       r->lang == LANG_PYTHON ? lb->pycode.fd : -1, -1 };
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto fail;
	}
	if (pid == 0)
		child(lb, r, fds, argv.v, envp.v, lb->cfg.sandbox == SANDBOX_NONE ? tmpdir : NULL, parent);
	r->pid = pid;
	r->fd[W_OUT] = out[0];
	r->fd[W_ERR] = err[0];
	r->fd[W_REP] = rep[0];
	r->fd[W_STATUS] = st[0];
	r->fd[W_CODE] = code[1];
	r->fd[W_PID] = (int)syscall(SYS_pidfd_open, pid, 0);
	r->fd[W_TIMER] = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	close(out[1]);
	close(err[1]);
	close(rep[1]);
	close(st[1]);
	close(devnull);
	close(code[0]);
	if (filter >= 0)
		close(filter);
	strvec_free(&argv);
	strvec_free(&envp);
	/* The script pipe is watched once there is a script to write. */
	for (int k = 0; k < W_COUNT; k++)
		if (r->fd[k] >= 0 && k != W_CODE)
			watch_fd(lb, r, k);
	/* Without a sandbox the private directory goes when the run ends. */
	if (lb->cfg.sandbox == SANDBOX_NONE)
		r->tmpdir = strdup(tmpdir);
	return;
fail:
	r->spawn_errno = rc < 0 ? -rc : EIO;
	close_pair(out);
	close_pair(err);
	close_pair(rep);
	close_pair(st);
	close_pair(code);
	if (devnull >= 0)
		close(devnull);
	if (filter >= 0)
		close(filter);
	strvec_free(&argv);
	strvec_free(&envp);
	if (lb->cfg.sandbox == SANDBOX_NONE && strcmp(tmpdir, "/tmp/agentbayfs-run-XXXXXX") != 0)
		rmdir(tmpdir);
}

/* ---- finishing --------------------------------------------------------- */

/* Whether R was cancelled (the flag is set by other threads). */
static bool is_cancelled(struct local_backend *lb, struct run_handle *r)
{
	pthread_mutex_lock(&lb->lock);
	bool c = r->cancel != 0;
	pthread_mutex_unlock(&lb->lock);
	return c;
}

/* What R's bootstrap said so far (its first error to RES, unless NULL);
 * a spawn error it reported becomes R's. */
static struct report_events heard(struct run_handle *r, struct exec_result *res)
{
	struct report_events ev;

	report_read(&r->rp, &ev, res);
	if (ev.spawn_errno >= 0)
		r->spawn_errno = ev.spawn_errno;
	if (ev.spawn_stage >= 0)
		r->spawn_stage = ev.spawn_stage;
	return ev;
}

static void set_errorf(struct exec_result *res, const char *name, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void set_errorf(struct exec_result *res, const char *name, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	exec_result_set_error(res, name, buf, NULL);
}

static void interpreter_missing(struct local_backend *lb, struct run_handle *r, struct exec_result *res)
{
	bool py = r->lang == LANG_PYTHON;
	const char *path = py ? lb->python : lb->node;

	res->state = RS_FAILED;
	if (path)
		set_errorf(res, "InterpreterNotFound",
			   "%s cannot be run (%s); install it or point -o %s=PATH at an interpreter",
			   path, strerror(r->spawn_errno ? r->spawn_errno : ENOENT), py ? "python" : "node");
	else
		set_errorf(res, "InterpreterNotFound",
			   "no %s interpreter was found on PATH; install it (apt-get install %s) or give -o %s=PATH",
			   py ? "python3" : "node", py ? "python3" : "nodejs", py ? "python" : "node");
}

static void build_result(struct local_backend *lb, struct run_handle *r, struct exec_result *res)
{
	char sig[32];
	struct report_events ev = heard(r, res);
	bool started = ev.started;
	int exit_event = ev.exit_code;

	report_move_results(&r->rp, res);
	if (r->pid < 0 && r->spawn_errno == 0 && r->cancel) {
		res->state = RS_CANCELLED;
		return;
	}
	if (r->pid < 0 || r->spawn_errno) {
		bool missing = r->spawn_errno == ENOENT || r->spawn_errno == EACCES || r->spawn_errno == ENOEXEC;
		res->state = RS_FAILED;
		if (r->pid < 0 && missing) {
			/* The interpreter failed our check before the fork. */
			interpreter_missing(lb, r, res);
		} else if (r->spawn_stage == STAGE_EXEC && missing && lb->cfg.sandbox == SANDBOX_BWRAP) {
			set_errorf(res, "SandboxError", "%s cannot be run (%s); install bubblewrap "
				   "(apt-get install bubblewrap) or mount with -o sandbox=none",
				   lb->bwrap, strerror(r->spawn_errno));
		} else if (r->spawn_stage == STAGE_EXEC && missing) {
			interpreter_missing(lb, r, res);
		} else {
			set_errorf(res, "SandboxError", "the run could not be set up: %s; check the daemon's log",
				   strerror(r->spawn_errno));
		}
		return;
	}
	if (WIFEXITED(r->wstatus))
		res->exit_code = WEXITSTATUS(r->wstatus);
	else if (WIFSIGNALED(r->wstatus))
		res->signal = WTERMSIG(r->wstatus);
	/* bwrap reports a killed child as 128 + signal. */
	if (lb->cfg.sandbox == SANDBOX_BWRAP && res->exit_code > 128 && res->exit_code < 128 + 65 &&
	    exit_event < 0 && !res->has_error) {
		res->signal = res->exit_code - 128;
		res->exit_code = -1;
	}
	if (r->cancel) {
		res->state = RS_CANCELLED;
		return;
	}
	if (r->timed_out) {
		res->state = RS_TIMED_OUT;
		res->exit_code = -1;
		res->signal = SIGKILL;
		set_errorf(res, "TimeoutError",
			   "the run took longer than the time limit of %u s and was stopped; "
			   "raise the limit with -o timeout=SECONDS", r->timeout_s);
		return;
	}
	if (!started && !res->has_error && (res->exit_code != 0 || res->signal)) {
		/* Nothing of ours ran: the sandbox or the interpreter failed to start. */
		size_t n = r->errhead_len;
		while (n > 0 && (r->errhead[n - 1] == '\n' || r->errhead[n - 1] == '\r'))
			n--;
		const char *msg = r->errhead;
		while (n > 0 && (*msg == '\n' || *msg == '#' || *msg == ' ')) {
			msg++;
			n--;
		}
		res->state = RS_FAILED;
		if (memmem(r->errhead, r->errhead_len, "bwrap:", 6) || lb->cfg.sandbox == SANDBOX_NONE) {
			set_errorf(res, "SandboxError",
				   "the %s could not start (%s%d)%s%.*s; check that bubblewrap works for this "
				   "user (user namespaces enabled, processes to spare for the run), or mount with "
				   "-o sandbox=none", lb->cfg.sandbox == SANDBOX_BWRAP ? "sandbox" : "interpreter",
				   res->signal ? "signal " : "exit status ", res->signal ? res->signal : res->exit_code,
				   n ? ": " : "", (int)n, msg);
		} else if (memmem(r->errhead, r->errhead_len, "OOM", 3) || memmem(r->errhead, r->errhead_len, "memory", 6)) {
			set_errorf(res, "MemoryError",
				   "the interpreter could not start within the memory limit of %llu MiB (%.*s); "
				   "raise it with -o memory=BYTES", (unsigned long long)(lb->cfg.memory >> 20), (int)n, msg);
		} else {
			set_errorf(res, "InterpreterError", "the interpreter failed before running the script (%s%d)%s%.*s",
				   res->signal ? "signal " : "exit status ", res->signal ? res->signal : res->exit_code,
				   n ? ": " : "", (int)n, msg);
		}
		return;
	}
	if (res->signal) {
		res->state = RS_FAILED;
		if (!res->has_error) {
			const char *hint = "";
			if (res->signal == SIGXFSZ)
				hint = "; it wrote a file larger than -o max_file_size";
			else if (res->signal == SIGXCPU)
				hint = "; it used more CPU time than the time limit";
			else if (res->signal == SIGKILL || res->signal == SIGSEGV || res->signal == SIGABRT)
				hint = "; it may have run out of memory (-o memory=BYTES)";
			set_errorf(res, "KilledBySignal", "the script was killed by %s%s",
				   signal_name(res->signal, sig, sizeof(sig)), hint);
		}
		return;
	}
	if (res->exit_code != 0) {
		res->state = RS_FAILED;
		if (!res->has_error)
			set_errorf(res, "NonZeroExit", "the script exited with status %d", res->exit_code);
		return;
	}
	res->state = res->has_error ? RS_FAILED : RS_SUCCEEDED;
}

static void release_slot(struct local_backend *lb, struct run_handle *r)
{
	if (r->slot >= 0)
		lb->slot_used[r->slot] = 0;
	r->slot = -1;
}

static void free_run(struct run_handle *r)
{
	free(r->feed);
	report_free(&r->rp);
	free(r->tmpdir);
	free(r);
}

/* Sends the end of the run to its sink. Thread only, no lock held. */
static void deliver(struct local_backend *lb, struct run_handle *r)
{
	struct exec_result res;

	exec_result_init(&res);
	pthread_mutex_lock(&lb->lock);
	build_result(lb, r, &res);
	pthread_mutex_unlock(&lb->lock);
	r->delivered = true;
	r->sink.end(r->ctx, &res);
	exec_result_free(&res);
}

/* Once every process of the run is gone: delivers its end if not done
 * yet, frees its slot and the run. Thread only, no lock held. */
static void finish(struct local_backend *lb, struct run_handle *r)
{
	for (int k = 0; k < W_COUNT; k++)
		close_watch(lb, r, k);
	release_slot(lb, r);
	if (r->tmpdir) {
		storefile_remove_tree(AT_FDCWD, r->tmpdir);
	}
	if (r->spare)
		spare_gone(lb, r);
	else if (!r->delivered)
		deliver(lb, r);
	free_run(r);
}

/* The bootstrap said how the script exited and closed the output: the run
 * is over as far as anyone can see, though the interpreter and the sandbox
 * may still be tearing down (node's teardown alone takes longer than a
 * small script's run). Something of the script holding the output open
 * keeps the run going as before. Thread only. */
static bool over_early(struct local_backend *lb, struct run_handle *r)
{
	if (r->spare || r->delivered || r->exited || r->pid < 0 || is_cancelled(lb, r) || r->timed_out ||
	    r->fd[W_OUT] >= 0 || r->fd[W_ERR] >= 0 || r->fd[W_REP] >= 0 || !report_has_event(&r->rp, "exit"))
		return false;
	int code = heard(r, NULL).exit_code;
	if (code < 0 || code > 255)
		return false;
	r->wstatus = W_EXITCODE(code, 0);
	return true;
}

static bool run_done(struct run_handle *r)
{
	bool pipes_closed = r->fd[W_OUT] < 0 && r->fd[W_ERR] < 0 && r->fd[W_REP] < 0;

	if (r->pid < 0)
		return true;
	/* Without pidfds (kernels before 5.3, valgrind) the exit is seen once
	 * the output is closed: the process is ending then, so wait for it. */
	if (!r->exited && pipes_closed && r->fd[W_PID] < 0) {
		int st = 0;
		pid_t p;
		do
			p = waitpid(r->pid, &st, 0);
		while (p < 0 && errno == EINTR);
		r->exited = true;
		r->wstatus = r->forked ? forked_wstatus(r) : p == r->pid ? st : 0;
		if (r->lb->cfg.sandbox == SANDBOX_NONE)
			kill(-r->pid, SIGKILL);
	}
	return r->exited && pipes_closed;
}

/* bwrap's status fd: keeps the pid of the sandbox's init once named. */
static void note_status(struct local_backend *lb, struct run_handle *r, const char *buf, size_t n)
{
	size_t room = sizeof(r->status_buf) - 1 - r->status_len;
	size_t c = n < room ? n : room;

	memcpy(r->status_buf + r->status_len, buf, c);
	r->status_len += c;
	r->status_buf[r->status_len] = '\0';
	const char *p = strstr(r->status_buf, "\"child-pid\"");
	if (!p || r->child_pid)
		return;
	p = strchr(p, ':');
	long v = p ? strtol(p + 1, NULL, 10) : 0;
	if (v <= 1)
		return;
	r->child_pid = (pid_t)v;
	/* Cancelled while it was being set up: finish the job. */
	pthread_mutex_lock(&lb->lock);
	if (r->killed && !r->exited)
		kill(r->child_pid, SIGKILL);
	pthread_mutex_unlock(&lb->lock);
}

/* The run's child has exited: note how, and let its output drain. */
static void child_exited(struct local_backend *lb, struct run_handle *r, int wstatus)
{
	r->exited = true;
	r->wstatus = r->forked ? forked_wstatus(r) : wstatus;
	close_watch(lb, r, W_PID);
	if (lb->cfg.sandbox == SANDBOX_NONE)
		kill(-r->pid, SIGKILL); /* what the script left running */
	/* Output still held open by something: give it a moment. */
	r->draining = true;
	arm_timer(r, DRAIN_SECONDS);
}

/* Reaps every child that has ended. The daemon is a child subreaper, so a
 * sandbox's init orphaned by a cancel lands here too and is reaped at once:
 * left as a zombie it would still count against its uid's process limit
 * and make the next run of that slot fail to start. All reaping is done
 * here, so no exit status is taken from under its run. Thread only. */
static void reap(struct local_backend *lb)
{
	int st;
	pid_t p;

	while ((p = waitpid(-1, &st, WNOHANG)) > 0)
		for (struct run_handle *r = lb->runs; r; r = r->next)
			if (r->pid == p && !r->exited) {
				child_exited(lb, r, st);
				break;
			}
}


static void on_readable(struct local_backend *lb, struct run_handle *r, enum wkind k)
{
	char buf[65536];

	switch (k) {
	case W_CODE:
		feed(lb, r);
		return;
	case W_OUT:
	case W_ERR:
	case W_REP:
	case W_STATUS: {
		ssize_t n = read(r->fd[k], buf, sizeof(buf));
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (n <= 0) {
			if (k == W_REP)
				report_end(&r->rp);
			close_watch(lb, r, k);
			return;
		}
		if (k == W_STATUS && r->forked) {
			if (r->fork_code < 0)
				r->fork_code = (unsigned char)buf[0];
			return;
		}
		if (k == W_STATUS) {
			note_status(lb, r, buf, (size_t)n);
			return;
		}
		if (k == W_REP) {
			report_bytes(&r->rp, buf, (size_t)n);
			if (r->spare && report_has_event(&r->rp, "ready"))
				r->ready = true;
			return;
		}
		if (r->spare && k == W_OUT)
			return;   /* nothing of a script yet: not the run's */
		if (k == W_ERR && r->errhead_len < ERRHEAD_MAX) {
			size_t c = (size_t)n < ERRHEAD_MAX - r->errhead_len ? (size_t)n : ERRHEAD_MAX - r->errhead_len;
			memcpy(r->errhead + r->errhead_len, buf, c);
			r->errhead_len += c;
		}
		if (!r->spare)
			r->sink.out(r->ctx, k == W_OUT ? 1 : 2, buf, (size_t)n);
		return;
	}
	case W_PID:
		reap(lb);
		return;
	case W_TIMER: {
		uint64_t ticks;
		if (read(r->fd[W_TIMER], &ticks, sizeof(ticks)) < 0)
			return;
		if (r->draining) {
			close_watch(lb, r, W_OUT);
			close_watch(lb, r, W_ERR);
			close_watch(lb, r, W_REP);
		} else if (!r->exited) {
			r->timed_out = true;
			pthread_mutex_lock(&lb->lock);
			kill_run(r);
			pthread_mutex_unlock(&lb->lock);
		}
		return;
	}
	default:
		return;
	}
}

/* ---- the warm pool ----------------------------------------------------- */


static bool later_than(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec > b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec > b->tv_nsec);
}

static void spare_gone(struct local_backend *lb, struct run_handle *r)
{
	struct pool *p = &lb->pool[r->lang];

	if (r->killed || p->off)
		return;
	if (++p->failures >= SPARE_FAILURES_MAX) {
		/* The first line of what it said, without node's '#' frame. */
		const char *m = r->errhead, *end = r->errhead + r->errhead_len;
		while (m < end && (*m == '\n' || *m == '\r' || *m == '#' || *m == ' '))
			m++;
		const char *nl = memchr(m, '\n', (size_t)(end - m));
		int n = (int)((nl ? nl : end) - m);
		p->off = true;
		log_warn("warm %s sandboxes keep ending before use%s%.*s; starting every run cold "
			 "from now on (-o warm=0 turns the pool off)",
			 r->lang == LANG_PYTHON ? "python" : "node", n ? ": " : "", n, m);
	}
}

/* Writes what the pipe takes of the run's script; closes it when all is in
 * (the bootstrap reads to the end) or the reader is gone. Thread only. */
static void feed(struct local_backend *lb, struct run_handle *r)
{
	while (r->fd[W_CODE] >= 0 && r->feed_off < r->feed_len) {
		ssize_t n = write(r->fd[W_CODE], r->feed + r->feed_off, r->feed_len - r->feed_off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			close_watch(lb, r, W_CODE);   /* EPIPE: it died; its exit says why */
			return;
		}
		r->feed_off += (size_t)n;
	}
	close_watch(lb, r, W_CODE);
}

/* Hands R's script to its sandbox, which now counts as the run's. */
static void begin(struct local_backend *lb, struct run_handle *r)
{
	if (r->fd[W_CODE] >= 0)
		watch_fd(lb, r, W_CODE);
	feed(lb, r);
	if (r->fd[W_TIMER] >= 0)
		arm_timer(r, r->timeout_s);
}

/* Whether anyone still reads the spare's script pipe: an interpreter that
 * died a moment ago may not have been reaped yet, and a run given to it
 * would fail where a cold start works. */
static bool spare_alive(const struct run_handle *s)
{
	struct pollfd p = { .fd = s->fd[W_CODE], .events = 0 };

	return poll(&p, 1, 0) == 0;
}

/* A ready spare for R, taken off the run list, or NULL. One still
 * starting would make the run wait longer than a cold start (it imports
 * ahead what a cold run imports only on an error). Thread only. */
static struct run_handle *take_spare(struct local_backend *lb, const struct run_handle *r)
{
	struct run_handle **pp, **best = NULL;

	for (pp = &lb->runs; *pp; pp = &(*pp)->next) {
		struct run_handle *s = *pp;
		/* Spares are started with the mount's time limit as their CPU
		 * limit: a longer one needs a cold start. */
		if (s->spare && s->lang == r->lang && !s->killed && !s->exited && s->fd[W_CODE] >= 0 &&
		    s->timeout_s >= r->timeout_s && s->ready && spare_alive(s))
			best = pp;   /* spares are added at the head: the last is the oldest */
	}
	if (!best)
		return NULL;
	struct run_handle *s = *best;
	*best = s->next;
	return s;
}

/* Moves the sandbox of spare S into run R, and frees S. Thread only. */
static void adopt(struct local_backend *lb, struct run_handle *r, struct run_handle *s)
{
	for (int k = 0; k < W_COUNT; k++) {
		r->fd[k] = s->fd[k];
		s->fd[k] = -1;
		if (r->fd[k] >= 0 && k != W_CODE) {
			struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &r->w[k] };
			epoll_ctl(lb->epfd, EPOLL_CTL_MOD, r->fd[k], &ev);
		}
	}
	r->pid = s->pid;
	r->child_pid = s->child_pid;
	memcpy(r->status_buf, s->status_buf, sizeof(r->status_buf));
	r->status_len = s->status_len;
	r->slot = s->slot;
	r->tmpdir = s->tmpdir;
	r->rp = s->rp;
	report_init(&s->rp);
	memcpy(r->errhead, s->errhead, s->errhead_len);
	r->errhead_len = s->errhead_len;
	s->tmpdir = NULL;
	lb->pool[r->lang].failures = 0;
	r->from_spare = true;
	free_run(s);
}

/* A run whose spare died before the script started (an OOM kill, say, in
 * the moment before the daemon could notice) starts again, once, cold:
 * the pool must never fail a run that a cold start would have run. True
 * when it did. Thread only. */
static bool retry_cold(struct local_backend *lb, struct run_handle *r)
{
	if (!r->from_spare || r->retried || r->delivered || is_cancelled(lb, r) || r->timed_out)
		return false;
	bool forked = forked_run(lb, r);
	if (heard(r, NULL).started) {
		if (forked)
			lb->zyg_failures = 0;
		return false;
	}
	if (forked)
		zygote_failed(lb, r);
	for (int k = 0; k < W_COUNT; k++)
		close_watch(lb, r, k);
	release_slot(lb, r);
	if (r->tmpdir) {
		storefile_remove_tree(AT_FDCWD, r->tmpdir);
		free(r->tmpdir);
		r->tmpdir = NULL;
	}
	report_free(&r->rp);
	r->errhead_len = r->status_len = r->feed_off = 0;
	r->pid = -1;
	r->child_pid = 0;
	pthread_mutex_lock(&lb->lock);
	r->killed = false;
	pthread_mutex_unlock(&lb->lock);
	r->exited = r->draining = false;
	r->wstatus = r->spawn_errno = r->spawn_stage = 0;
	r->retried = true;
	r->from_spare = false;
	r->forked = false;
	r->fork_code = -1;
	spawn(lb, r);
	if (r->pid > 0)
		begin(lb, r);
	return true;
}

static unsigned spares_of(struct local_backend *lb, enum lang lang)
{
	unsigned n = 0;

	for (struct run_handle *r = lb->runs; r; r = r->next)
		n += r->spare && r->lang == lang && !r->killed;
	return n;
}

static void start_spare(struct local_backend *lb, enum lang lang)
{
	struct run_handle *r = calloc(1, sizeof(*r));

	if (!r)
		return;
	r->spare = true;
	r->lang = lang;
	r->timeout_s = lb->cfg.timeout_s;
	handle_init(lb, r);
	spawn(lb, r);
	if (r->pid < 0) {
		release_slot(lb, r);
		spare_gone(lb, r);
		free_run(r);
		return;
	}
	r->next = lb->runs;
	lb->runs = r;
}

/* Tops up the pools of the languages in use, and drops those idle for
 * cfg.warm_idle_s. The time until the next drop, in ms, or -1. Thread
 * only, never while stopping. */
static int pool_tend(struct local_backend *lb)
{
	struct timespec now;
	int next = -1;

	if (lb->cfg.warm == 0)
		return -1;
	/* Spares start while no run goes: starting one costs as much CPU as a
	 * cold run, which it would take from the runs. */
	bool busy = false;
	for (struct run_handle *r = lb->runs; r && !busy; r = r->next)
		busy = !r->spare;
	clock_gettime(CLOCK_MONOTONIC, &now);
	for (int l = LANG_PYTHON; l <= LANG_JAVASCRIPT; l++) {
		struct pool *p = &lb->pool[l];
		if (!p->active)
			continue;
		struct timespec until = p->last_use;
		until.tv_sec += lb->cfg.warm_idle_s;
		if (!later_than(&until, &now)) {
			p->active = false;
			pthread_mutex_lock(&lb->lock);
			for (struct run_handle *r = lb->runs; r; r = r->next)
				if (r->spare && r->lang == (enum lang)l)
					kill_run(r);
			pthread_mutex_unlock(&lb->lock);
			continue;
		}
		long ms = (until.tv_sec - now.tv_sec) * 1000 + (until.tv_nsec - now.tv_nsec) / 1000000 + 1;
		if (next < 0 || ms < next)
			next = ms > INT_MAX ? INT_MAX : (int)ms;
		/* Python runs come from the fork servers then, unless they
		 * failed. */
		if (p->off || busy || (l == LANG_PYTHON && lb->zyg && !lb->zyg_off))
			continue;
		for (unsigned n = spares_of(lb, (enum lang)l); n < lb->cfg.warm; n++) {
			unsigned before = p->failures;
			start_spare(lb, (enum lang)l);
			if (p->failures != before || p->off)
				break;
		}
	}
	return next;
}

/* A run of R's language: the pool of that language is in use. */
static void pool_used(struct local_backend *lb, enum lang lang)
{
	if (lb->cfg.warm == 0)
		return;
	lb->pool[lang].active = true;
	clock_gettime(CLOCK_MONOTONIC, &lb->pool[lang].last_use);
}

static void *loop(void *arg)
{
	struct local_backend *lb = arg;
	struct epoll_event evs[32];
	int pool_ms = -1;

	for (;;) {
		/* After a run ended or was killed, its sandbox's init may come to
		 * us as an orphan with no event to say so: look every 50 ms for a
		 * while. */
		struct timespec now;
		clock_gettime(CLOCK_MONOTONIC, &now);
		bool polling = later_than(&lb->reap_until, &now);
		int wait_ms = polling ? 50 : -1;
		if (pool_ms >= 0 && (wait_ms < 0 || pool_ms < wait_ms))
			wait_ms = pool_ms;
		int n = epoll_wait(lb->epfd, evs, 32, wait_ms);
		if (n < 0 && errno != EINTR)
			break;
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) {
				uint64_t v;
				if (read(lb->evfd, &v, sizeof(v)) < 0)
					continue;
				continue;
			}
			struct watch *w = evs[i].data.ptr;
			if (w->run->fd[w->kind] >= 0)
				on_readable(lb, w->run, w->kind);
		}

		/* New runs: fork them here, from this long-lived thread, so that
		 * the parent-death signal is tied to a thread that stays. */
		pthread_mutex_lock(&lb->lock);
		struct run_handle *todo = lb->starting;
		lb->starting = NULL;
		bool stopping = lb->stopping;
		pthread_mutex_unlock(&lb->lock);
		while (todo) {
			struct run_handle *r = todo;
			todo = r->next;
			pthread_mutex_lock(&lb->lock);
			bool cancelled = r->cancel || stopping;
			if (stopping && !r->cancel)
				r->cancel = CANCEL_SHUTDOWN;
			pthread_mutex_unlock(&lb->lock);
			const char *interp = r->lang == LANG_PYTHON ? lb->python : lb->node;
			if (!cancelled) {
				struct run_handle *spare = NULL;
				if (!interp || access(interp, X_OK) != 0)
					r->spawn_errno = interp ? errno : ENOENT;
				else if ((spare = take_spare(lb, r)) != NULL)
					adopt(lb, r, spare);
				else
					spawn(lb, r);
				if (r->pid > 0)
					begin(lb, r);
				if (interp)
					pool_used(lb, r->lang);
			}
			r->next = lb->runs;
			lb->runs = r;
		}

		/* Orphaned sandbox inits, then cancels, kills, and finished runs. */
		reap(lb);
		struct run_handle **pp = &lb->runs;
		while (*pp) {
			struct run_handle *r = *pp;
			pthread_mutex_lock(&lb->lock);
			if ((r->cancel || lb->stopping) && !r->exited) {
				if (!r->cancel)
					r->cancel = CANCEL_SHUTDOWN;
				kill_run(r);
			}
			pthread_mutex_unlock(&lb->lock);
			if (over_early(lb, r)) {
				deliver(lb, r);
				/* Nothing of it may outlive its end: the sandbox goes
				 * now, the slot once it is reaped. */
				pthread_mutex_lock(&lb->lock);
				kill_run(r);
				pthread_mutex_unlock(&lb->lock);
			}
			if (run_done(r) && !retry_cold(lb, r)) {
				*pp = r->next;
				clock_gettime(CLOCK_MONOTONIC, &lb->reap_until);
				lb->reap_until.tv_sec += 3;
				finish(lb, r);
			} else {
				pp = &r->next;
			}
		}

		pthread_mutex_lock(&lb->lock);
		bool done = lb->stopping && !lb->runs && !lb->starting;
		stopping = lb->stopping;
		pthread_mutex_unlock(&lb->lock);
		if (done)
			break;
		pool_ms = stopping ? -1 : pool_tend(lb);
		int zyg_ms = stopping ? -1 : zygotes_tend(lb);
		if (zyg_ms >= 0 && (pool_ms < 0 || zyg_ms < pool_ms))
			pool_ms = zyg_ms;
	}
	for (unsigned s = 0; lb->zyg && s < lb->cfg.slots; s++)
		zygote_stop(lb, &lb->zyg[s]);
	return NULL;
}

static void local_destroy(struct backend *b)
{
	struct local_backend *lb = (struct local_backend *)b;

	pthread_mutex_lock(&lb->lock);
	lb->stopping = true;
	pthread_mutex_unlock(&lb->lock);
	wake(lb);
	pthread_join(lb->thread, NULL);
	close(lb->epfd);
	close(lb->evfd);
	pthread_mutex_destroy(&lb->lock);
	run_uids_release(&lb->uids);
	pycode_free(&lb->pycode);
	free(lb->python);
	free(lb->node);
	free(lb->bwrap);
	free(lb->slot_used);
	free(lb->zyg);
	free(lb);
}

static const struct backend_ops local_ops = {
	.name = "local",
	.start = local_start,
	.cancel = local_cancel,
	.destroy = local_destroy,
};

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

struct backend *local_backend_new(const struct local_config *cfg, char *err, size_t errsz)
{
	struct local_backend *lb = calloc(1, sizeof(*lb));
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };

	if (!lb) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	lb->base.ops = &local_ops;
	lb->cfg = *cfg;
	if (lb->cfg.slots == 0)
		lb->cfg.slots = 1;
	lb->python = dup_or_null(cfg->python);
	lb->node = dup_or_null(cfg->node);
	lb->bwrap = dup_or_null(cfg->bwrap);
	lb->cfg.python = lb->cfg.node = lb->cfg.bwrap = NULL;
	/* Runs beyond the job limit may still be finishing: room for twice,
	 * and for the spares of both languages. */
	lb->zyg_max = lb->cfg.slots;
	lb->cfg.slots = lb->cfg.slots * 2 + lb->cfg.warm * 2;
	lb->slot_used = calloc(lb->cfg.slots, 1);
	if (lb->cfg.forkserver && lb->cfg.sandbox == SANDBOX_BWRAP) {
		lb->zyg = calloc(lb->cfg.slots, sizeof(*lb->zyg));
		for (unsigned s = 0; lb->zyg && s < lb->cfg.slots; s++)
			lb->zyg[s].sock = -1;
	}
	lb->epfd = epoll_create1(EPOLL_CLOEXEC);
	lb->evfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	pthread_mutex_init(&lb->lock, NULL);
	lb->uids.guard_fd = -1;
	lb->pycode.fd = -1;
	if (!lb->slot_used || lb->epfd < 0 || lb->evfd < 0 ||
	    epoll_ctl(lb->epfd, EPOLL_CTL_ADD, lb->evfd, &ev) < 0) {
		snprintf(err, errsz, "cannot set up the local backend: %s", strerror(errno));
		goto fail;
	}
	if (lb->cfg.sandbox == SANDBOX_BWRAP) {
		struct sock_filter probe[SANDBOX_FILTER_MAX];
		lb->filter = sandbox_filter_build(probe, SANDBOX_FILTER_MAX) > 0;
		if (!lb->filter)
			log_warn("no seccomp filter for this architecture: sandboxed scripts may use "
				 "every system call the kernel allows them");
	}
	/* Once, rather than in every run's interpreter. Without an interpreter
	 * the runs say so themselves. */
	if (lb->python && access(lb->python, X_OK) == 0) {
		char why[256];
		if (pycode_build(&lb->pycode, lb->python, bootstrap_python, why, sizeof(why)) < 0)
			log_warn("cannot compile the Python bootstrap ahead with %s (%s): every run "
				 "compiles it", lb->python, why);
	}
	/* Uids of this daemon's own, and a guard that takes their processes
	 * down if the daemon dies without doing it. */
	if (lb->cfg.drop_uid) {
		char why[256];
		int e = run_uids_claim(&lb->uids, lb->cfg.uid_base, lb->cfg.slots, RUN_UIDS_LOCK_DIR,
				       why, sizeof(why));
		if (e < 0) {
			snprintf(err, errsz, "%s", why);
			goto fail;
		}
		if ((e = run_uids_start_guard(&lb->uids)) < 0) {
			snprintf(err, errsz, "cannot start the process guard of the runs: %s", strerror(-e));
			goto fail;
		}
	}
	/* A sandbox's init orphaned by a cancel is reparented to the daemon,
	 * which reaps it (see reap()). */
	prctl(PR_SET_CHILD_SUBREAPER, 1);
	int rc = thread_start(&lb->thread, NULL, loop, lb);
	if (rc) {
		snprintf(err, errsz, "cannot start the local backend's thread: %s", strerror(rc));
		goto fail;
	}
	return &lb->base;
fail:
	if (lb->epfd >= 0)
		close(lb->epfd);
	if (lb->evfd >= 0)
		close(lb->evfd);
	run_uids_release(&lb->uids);
	pycode_free(&lb->pycode);
	free(lb->python);
	free(lb->node);
	free(lb->bwrap);
	free(lb->slot_used);
	free(lb->zyg);
	free(lb);
	return NULL;
}
