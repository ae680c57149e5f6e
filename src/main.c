/* main: command line, checks before mounting, and the daemon's lifecycle.
 *
 * Owns: turning argv into a configuration (our "-o" options via options.h,
 * FUSE's own via libfuse), the checks that give clear errors before anything
 * is mounted (mountpoint, store, sandbox, interpreters), and the order of
 * start and stop: session, signals, mount, daemonize, backend and engine,
 * loop, then unmount, finishing the runs, and freeing everything.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentbay.h"
#include "agentbay_http.h"
#include "agentbay_proto.h"
#include "detach.h"
#include "fs.h"
#include "mount_watch.h"
#include "local.h"
#include "log.h"

#ifndef AGENTBAYFS_VERSION
#define AGENTBAYFS_VERSION "0.0.0"
#endif

/* What the agentbay backend is set up with. */
struct agentbay_setup {
	char *key;                   /* the API key; wiped at exit */
	const char *key_source;      /* for the start message */
	char base_url[1024];
	char endpoint[1024];
	long timeout_ms;
	const char *region;
};

struct paths {
	char store[PATH_MAX];
	char python[PATH_MAX];
	char node[PATH_MAX];
	char bwrap[PATH_MAX];
	bool have_python, have_node, have_bwrap;
};

/* What the command line gives besides options: [SOURCE] MOUNTPOINT. */
struct cmdline {
	struct afs *fs;
	const char *pos[3];
	unsigned npos;
};

static int opt_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct cmdline *cl = data;
	char err[512];
	int r;

	(void)outargs;
	if (key == FUSE_OPT_KEY_NONOPT) {
		/* Kept for later: libfuse takes one, mount.fuse3 gives two. */
		if (cl->npos < 3)
			cl->pos[cl->npos] = arg;
		cl->npos++;
		return 0;
	}
	if (key != FUSE_OPT_KEY_OPT)
		return 1;
	r = config_apply(&cl->fs->cfg, arg, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "agentbayfs: %s\n", err);
		return -1;
	}
	return r == 1 ? 0 : 1;
}

/* The configuration file: $XDG_CONFIG_HOME/agentbayfs/config (else
 * ~/.config/agentbayfs/config), or if there is none /etc/agentbayfs.conf.
 * The first that exists is read; none at all is fine. 0 or -1 (said). */
static int load_config_file(struct config *c)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	char paths[2][PATH_MAX], err[1024], *text = NULL;
	int n = 0, rc = -1;

	if (xdg && xdg[0] == '/')
		snprintf(paths[n++], PATH_MAX, "%s/agentbayfs/config", xdg);
	else if (home && home[0] == '/')
		snprintf(paths[n++], PATH_MAX, "%s/.config/agentbayfs/config", home);
	snprintf(paths[n++], PATH_MAX, "%s", "/etc/agentbayfs.conf");
	for (int i = 0; i < n; i++) {
		struct stat st;
		size_t len = 0;
		int fd = open(paths[i], O_RDONLY | O_CLOEXEC | O_NOCTTY);
		if (fd < 0 && errno == ENOENT)
			continue;
		if (fd < 0 || fstat(fd, &st) < 0) {
			fprintf(stderr, "agentbayfs: cannot read the configuration file %s: %s\n", paths[i],
				strerror(errno));
			goto out;
		}
		if (!S_ISREG(st.st_mode) || st.st_size > 65536) {
			fprintf(stderr, "agentbayfs: the configuration file %s is %s\n", paths[i],
				S_ISREG(st.st_mode) ? "larger than 64 KiB" : "not a regular file");
			close(fd);
			goto out;
		}
		text = malloc((size_t)st.st_size + 1);
		while (text && len < (size_t)st.st_size) {
			ssize_t r = read(fd, text + len, (size_t)st.st_size - len);
			if (r < 0 && errno == EINTR)
				continue;
			if (r <= 0)
				break;
			len += (size_t)r;
		}
		close(fd);
		if (!text) {
			fprintf(stderr, "agentbayfs: out of memory\n");
			goto out;
		}
		if (config_apply_file(c, text, len, paths[i], err, sizeof(err)) < 0) {
			fprintf(stderr, "agentbayfs: %s\n", err);
			goto out;
		}
		break;
	}
	rc = 0;
out:
	free(text);
	return rc;
}

/* The SOURCE of "agentbayfs SOURCE MOUNTPOINT", which is how mount(8) and
 * mount.fuse3 call a file system (fstab's first field): the store, unless
 * it is a placeholder. A store given both ways must be the same one. */
static int apply_source(struct config *c, const char *source)
{
	char a[PATH_MAX], b[PATH_MAX];

	if (!source[0] || strcmp(source, "none") == 0 || strcmp(source, "agentbayfs") == 0)
		return 0;
	if (!c->store) {
		c->store = strdup(source);
		if (!c->store) {
			fprintf(stderr, "agentbayfs: out of memory\n");
			return -1;
		}
		return 0;
	}
	if (strcmp(c->store, source) == 0 ||
	    (realpath(c->store, a) && realpath(source, b) && strcmp(a, b) == 0))
		return 0;
	fprintf(stderr, "agentbayfs: two stores given: %s (before the mountpoint) and -o store=%s; "
		"give one\n", source, c->store);
	return -1;
}

static void usage(const char *prog)
{
	printf("usage: %s [options] [STORE] MOUNTPOINT\n\n"
	       "Save a .py or .js file into the mount and it runs once; its results appear\n"
	       "beside it as STEM.out, STEM.err, STEM.error and STEM.status.\n"
	       "STORE, a directory, is the same as -o store=STORE; \"none\" or \"agentbayfs\"\n"
	       "there (as mount -t fuse.agentbayfs and fstab give it) means the default.\n\n", prog);
	fuse_cmdline_help();
	printf("\n%s", config_help());
	printf("\nFUSE options:\n");
	fuse_lowlevel_help();
}

static int mkdir_p(const char *path, mode_t mode)
{
	char buf[PATH_MAX];

	if (snprintf(buf, sizeof(buf), "%s", path) >= (int)sizeof(buf))
		return -ENAMETOOLONG;
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, mode) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	if (mkdir(buf, mode) < 0 && errno != EEXIST)
		return -errno;
	return 0;
}

/* $XDG_STATE_HOME/agentbayfs/<mountpoint with '/' as '-'>. */
static int default_store(const char *mnt, char *out, size_t outsz)
{
	const char *xdg = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
	char base[PATH_MAX], name[PATH_MAX];
	size_t j = 0;

	if (xdg && xdg[0] == '/')
		snprintf(base, sizeof(base), "%s/agentbayfs", xdg);
	else if (home && home[0] == '/')
		snprintf(base, sizeof(base), "%s/.local/state/agentbayfs", home);
	else
		return -ENOENT;
	for (const char *p = mnt + 1; *p && j + 1 < sizeof(name); p++)
		name[j++] = *p == '/' ? '-' : *p;
	name[j] = '\0';
	if (j == 0)
		snprintf(name, sizeof(name), "-");
	if (snprintf(out, outsz, "%s/%s", base, name) >= (int)outsz)
		return -ENAMETOOLONG;
	return 0;
}

static int check_mountpoint(const char *mnt, char *real, size_t realsz)
{
	struct stat st, pst;
	char parent[PATH_MAX + 4];

	if (stat(mnt, &st) < 0) {
		if (errno == ENOTCONN)
			log_error("%s is a dead FUSE mount (its daemon is gone): run 'fusermount3 -u %s' first",
				  mnt, mnt);
		else if (errno == ENOENT)
			log_error("mountpoint %s does not exist: create it first (mkdir -p %s)", mnt, mnt);
		else
			log_error("cannot use mountpoint %s: %s", mnt, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		log_error("mountpoint %s is not a directory", mnt);
		return -1;
	}
	if (!realpath(mnt, real) || strlen(real) >= realsz) {
		log_error("cannot resolve mountpoint %s: %s", mnt, strerror(errno));
		return -1;
	}
	snprintf(parent, sizeof(parent), "%s/..", real);
	if (strcmp(real, "/") != 0 && stat(parent, &pst) == 0 && pst.st_dev != st.st_dev) {
		log_error("%s is already a mountpoint: unmount it first (fusermount3 -u %s)", real, real);
		return -1;
	}
	return 0;
}

static int prepare_store(struct afs *fs, const char *mnt, struct paths *p)
{
	int rc;

	if (fs->cfg.store) {
		rc = mkdir_p(fs->cfg.store, 0700);
		if (rc < 0) {
			log_error("cannot create the store directory %s: %s", fs->cfg.store, strerror(-rc));
			return -1;
		}
		if (!realpath(fs->cfg.store, p->store)) {
			log_error("cannot use the store directory %s: %s", fs->cfg.store, strerror(errno));
			return -1;
		}
	} else {
		rc = default_store(mnt, p->store, sizeof(p->store));
		if (rc == 0)
			rc = mkdir_p(p->store, 0700);
		if (rc < 0) {
			log_error("cannot create the default store for %s (%s): %s; give one with -o store=DIR", mnt,
				  p->store[0] ? p->store : "no $XDG_STATE_HOME or $HOME", strerror(-rc));
			return -1;
		}
	}
	struct stat st;
	if (stat(p->store, &st) < 0 || !S_ISDIR(st.st_mode)) {
		log_error("the store %s is not a directory", p->store);
		return -1;
	}
	if (access(p->store, W_OK | X_OK) < 0) {
		log_error("the store directory %s is not writable: %s", p->store, strerror(errno));
		return -1;
	}
	if (strcmp(p->store, mnt) == 0) {
		log_error("the store %s cannot be the mountpoint itself: give another -o store=DIR", p->store);
		return -1;
	}
	return 0;
}

static int find_programs(struct afs *fs, struct paths *p)
{
	int rc;

	rc = local_find_program(fs->cfg.python ? fs->cfg.python : "/usr/bin/python3", p->python, sizeof(p->python));
	p->have_python = rc == 0;
	if (rc < 0)
		log_warn("no Python interpreter at %s (%s): .py scripts will fail until one is installed "
			 "(apt-get install python3) or given with -o python=PATH",
			 fs->cfg.python ? fs->cfg.python : "/usr/bin/python3", strerror(-rc));
	rc = local_find_program(fs->cfg.node ? fs->cfg.node : "node", p->node, sizeof(p->node));
	if (rc < 0 && !fs->cfg.node)
		rc = local_find_program("nodejs", p->node, sizeof(p->node));
	p->have_node = rc == 0;
	if (rc < 0)
		log_warn("no Node.js interpreter %s%s (%s): .js scripts will fail until one is installed "
			 "(apt-get install nodejs) or given with -o node=PATH",
			 fs->cfg.node ? "at " : "on PATH", fs->cfg.node ? fs->cfg.node : "", strerror(-rc));
	if (fs->cfg.sandbox == SANDBOX_NONE) {
		log_warn("scripts run WITHOUT a sandbox (-o sandbox=none): they can read, write and "
			 "reach everything this user can");
		return 0;
	}
	rc = local_find_program(fs->cfg.bwrap ? fs->cfg.bwrap : "bwrap", p->bwrap, sizeof(p->bwrap));
	p->have_bwrap = rc == 0;
	if (rc < 0) {
		log_error("bubblewrap (bwrap) is needed to sandbox runs and was not found%s%s: install it "
			  "(apt-get install bubblewrap), or mount with -o sandbox=none to run scripts "
			  "without a sandbox", fs->cfg.bwrap ? " at " : "", fs->cfg.bwrap ? fs->cfg.bwrap : "");
		return -1;
	}
	return 0;
}

/* Reads the API key from PATH: the first line, trimmed. Refused when others
 * may read the file. malloc'd, or NULL after an error message. */
static char *read_key_file(const char *path)
{
	struct stat st;
	char buf[1024];
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	ssize_t n;

	if (fd < 0) {
		log_error("cannot read the API key file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		log_error("the API key file %s is not a regular file", path);
		close(fd);
		return NULL;
	}
	if (st.st_mode & 077) {
		log_error("the API key file %s can be read by others (mode %04o): run 'chmod 600 %s' first",
			  path, (unsigned)(st.st_mode & 07777), path);
		close(fd);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n < 0) {
		log_error("cannot read the API key file %s: %s", path, strerror(errno));
		return NULL;
	}
	buf[n] = '\0';
	char *start = buf;
	while (*start == ' ' || *start == '\t')
		start++;
	size_t len = strcspn(start, "\r\n");
	while (len > 0 && (start[len - 1] == ' ' || start[len - 1] == '\t'))
		len--;
	char *key = len ? strndup(start, len) : NULL;
	explicit_bzero(buf, sizeof(buf));
	if (!len)
		log_error("the API key file %s is empty", path);
	return key;
}

/* Takes AGENTBAY_API_KEY out of the environment, wiping the original bytes
 * too, so that /proc/PID/environ does not show it. */
static char *take_env_key(void)
{
	extern char **environ;
	const char *name = "AGENTBAY_API_KEY=";
	size_t nl = strlen(name);
	char *key = NULL;

	for (char **e = environ; e && *e; e++) {
		if (strncmp(*e, name, nl) != 0)
			continue;
		if (!key && (*e)[nl])
			key = strdup(*e + nl);
		explicit_bzero(*e + nl, strlen(*e + nl));
	}
	unsetenv("AGENTBAY_API_KEY");
	return key;
}

/* Picks the backend (auto: agentbay when a key is configured) and reads the
 * AgentBay configuration. 0, or -1 after an error message. */
static int choose_backend(struct afs *fs, struct agentbay_setup *ab)
{
	const char *v;

	if (fs->cfg.api_key_file) {
		ab->key = read_key_file(fs->cfg.api_key_file);
		if (!ab->key)
			return -1;
		ab->key_source = "-o api_key_file";
		free(take_env_key());
	} else {
		ab->key = take_env_key();
		ab->key_source = "AGENTBAY_API_KEY";
	}
	bool automatic = fs->cfg.backend == BACKEND_AUTO;
	if (automatic)
		fs->cfg.backend = ab->key ? BACKEND_AGENTBAY : BACKEND_LOCAL;
	/* Said before daemonizing, while stderr still reaches the user. */
	if (automatic && ab->key)
		log_info("backend agentbay: an API key is configured (%s)", ab->key_source);
	else if (automatic)
		log_info("backend local: no AgentBay API key is configured (AGENTBAY_API_KEY, -o api_key_file)");
	else
		log_info("backend %s: chosen with -o backend", fs->cfg.backend == BACKEND_LOCAL ? "local" : "agentbay");
	if (fs->cfg.backend == BACKEND_LOCAL)
		return 0;
	if (!ab->key) {
		log_error("-o backend=agentbay needs an AgentBay API key: set AGENTBAY_API_KEY or give "
			  "-o api_key_file=PATH");
		return -1;
	}
	/* The configuration file, then the environment, then -o: see main(). */
	v = fs->cfg.endpoint;
	snprintf(ab->endpoint, sizeof(ab->endpoint), "%s", v && *v ? v : AB_DEFAULT_ENDPOINT);
	if (ab_base_url(ab->endpoint, ab->base_url, sizeof(ab->base_url)) < 0) {
		log_error("bad AgentBay endpoint '%s' (AGENTBAY_ENDPOINT, -o endpoint or the configuration "
			  "file): give a host name (%s) or an http(s):// URL", ab->endpoint, AB_DEFAULT_ENDPOINT);
		return -1;
	}
	ab->timeout_ms = fs->cfg.request_timeout_ms;
	ab->region = fs->cfg.region_id;
	if (fs->cfg.timeout_s > AB_MAX_TIMEOUT_S) {
		log_warn("-o timeout=%u is above AgentBay's gateway limit of %d s: runs are limited to %d s",
			 fs->cfg.timeout_s, AB_MAX_TIMEOUT_S, AB_MAX_TIMEOUT_S);
		fs->cfg.timeout_s = AB_MAX_TIMEOUT_S;
	}
	/* The cloud runs the sandboxes: more directories at once than cores. */
	if (!fs->cfg.jobs_set)
		fs->cfg.jobs = 16;
	/* No core dump, no ptrace and no /proc/PID/environ or mem for others:
	 * the key lives in this process. */
	prctl(PR_SET_DUMPABLE, 0);
	return 0;
}

static void free_setup(struct agentbay_setup *ab)
{
	if (ab->key) {
		explicit_bzero(ab->key, strlen(ab->key));
		free(ab->key);
	}
	ab->key = NULL;
}

static void raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* fds 0-2 must be open, so that nothing of ours lands on them. */
static void sane_stdio(void)
{
	int fd;

	do {
		fd = open("/dev/null", O_RDWR);
	} while (fd >= 0 && fd <= 2);
	if (fd > 2)
		close(fd);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts opts;
	struct fuse_loop_config *loop_cfg = NULL;
	struct afs fs;
	struct cmdline cl = { 0 };
	struct paths paths;
	struct agentbay_setup abs;
	struct detach detached;
	char mnt[PATH_MAX], err[512];
	int ret = 1;

	memset(&fs, 0, sizeof(fs));
	cl.fs = &fs;
	memset(&paths, 0, sizeof(paths));
	memset(&abs, 0, sizeof(abs));
	memset(&opts, 0, sizeof(opts));
	sane_stdio();
	config_defaults(&fs.cfg);

	/* Lowest first: the configuration file, the environment, then -o.
	 * Help and version come whatever the file says. */
	bool asks = false;
	for (int i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		asks = asks || !strcmp(argv[i], "-h") || !strcmp(argv[i], "--help") || !strcmp(argv[i], "-V") ||
		       !strcmp(argv[i], "--version");
	if (!asks && load_config_file(&fs.cfg) < 0)
		goto out_args;
	if (!asks && config_apply_env(&fs.cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "agentbayfs: %s\n", err);
		goto out_args;
	}
	if (fuse_opt_parse(&args, &cl, NULL, opt_proc) != 0)
		goto out_args;
	if (cl.npos > 2) {
		fprintf(stderr, "agentbayfs: too many arguments (%s): give [STORE] MOUNTPOINT\n", cl.pos[2]);
		goto out_args;
	}
	if (cl.npos == 2 && apply_source(&fs.cfg, cl.pos[0]) < 0)
		goto out_args;
	if (cl.npos > 0 && fuse_opt_add_arg(&args, cl.pos[cl.npos - 1]) != 0)
		goto out_args;
	if (fuse_parse_cmdline(&args, &opts) != 0)
		goto out_args;
	if (opts.show_help) {
		usage("agentbayfs");
		ret = 0;
		goto out_args;
	}
	if (opts.show_version) {
		printf("agentbayfs %s\n", AGENTBAYFS_VERSION);
		printf("FUSE library version %s\n", fuse_pkgversion());
		fuse_lowlevel_version();
		ret = 0;
		goto out_args;
	}
	if (!opts.mountpoint) {
		fprintf(stderr, "usage: %s [options] [STORE] MOUNTPOINT\n       %s --help for the options\n", argv[0],
			argv[0]);
		goto out_args;
	}
	if (check_mountpoint(opts.mountpoint, mnt, sizeof(mnt)) < 0)
		goto out_args;
	if (choose_backend(&fs, &abs) < 0 || prepare_store(&fs, mnt, &paths) < 0)
		goto out_args;
	if (fs.cfg.backend == BACKEND_LOCAL && find_programs(&fs, &paths) < 0)
		goto out_args;
	int rc = afs_init_root(&fs, paths.store);
	if (rc < 0) {
		log_error("cannot open the store %s: %s", paths.store, strerror(-rc));
		goto out_args;
	}
	raise_nofile();

	/* To the background now, before the mount and any thread: the command
	 * returns once the filesystem is ready, or fails with its error. */
	rc = detach_begin(&detached, opts.foreground);
	if (rc < 0) {
		log_error("cannot go to the background: %s", strerror(-rc));
		goto out_root;
	}
	fs.se = fuse_session_new(&args, &afs_ops, sizeof(afs_ops), &fs);
	if (!fs.se)
		goto out_root;
	if (fuse_set_signal_handlers(fs.se) != 0)
		goto out_session;
	if (fuse_session_mount(fs.se, mnt) != 0) {
		log_error("cannot mount on %s: is /dev/fuse there (modprobe fuse), and fuse3 installed "
			  "(apt-get install fuse3)?", mnt);
		goto out_signals;
	}
	/* Killed, the daemon leaves the connection to the write-behind
	 * helper: the mount dies once every answered write is stored. */
	wb_hold(fs.wb, fuse_session_fd(fs.se));
	if (fs.cfg.backend == BACKEND_AGENTBAY) {
		struct ab_config ac = {
			.api_key = abs.key,
			.base_url = abs.base_url,
			.endpoint = abs.endpoint,
			.timeout_ms = abs.timeout_ms,
			.region_id = abs.region,
			.image = fs.cfg.image ? fs.cfg.image : "code_latest",
			.session_idle_s = fs.cfg.session_idle_s,
		};
		if (ab_http_global_init() < 0) {
			log_error("cannot set up libcurl");
			goto out_unmount;
		}
		fs.backend = agentbay_backend_new(&ac, err, sizeof(err));
		free_setup(&abs);
	} else {
		struct local_config lc = {
			.sandbox = fs.cfg.sandbox,
			.python = paths.have_python ? paths.python : fs.cfg.python,
			/* A path that was given but does not work is still named in errors. */
			.node = paths.have_node ? paths.node : fs.cfg.node,
			.bwrap = paths.have_bwrap ? paths.bwrap : NULL,
			.memory = fs.cfg.memory,
			.max_file_size = fs.cfg.max_file_size,
			.tmp_size = fs.cfg.tmp_size,
			.max_procs = fs.cfg.max_procs,
			.max_open_files = fs.cfg.max_open_files,
			.slots = fs.cfg.jobs,
			.timeout_s = fs.cfg.timeout_s,
			.warm = fs.cfg.warm,
			.warm_idle_s = fs.cfg.warm_idle_s,
			.forkserver = fs.cfg.forkserver,
			/* Without a sandbox a script runs as the daemon's user, in a private directory. */
			.drop_uid = geteuid() == 0 && fs.cfg.sandbox == SANDBOX_BWRAP,
			.uid_base = LOCAL_UID_BASE,
		};
		fs.backend = local_backend_new(&lc, err, sizeof(err));
	}
	if (!fs.backend) {
		log_error("%s", err);
		goto out_unmount;
	}
	struct engine_config ec = {
		.jobs = fs.cfg.jobs,
		.timeout_s = fs.cfg.timeout_s,
		.max_output = fs.cfg.max_output,
		.max_script_size = fs.cfg.max_script_size,
		.history = fs.cfg.history,
		.backend_name = fs.backend->ops->name,
	};
	fs.eng = engine_new(&ec, fs.backend, &afs_hooks, &fs);
	if (!fs.eng) {
		log_error("out of memory");
		goto out_backend;
	}
	if (opts.foreground && fs.cfg.backend == BACKEND_AGENTBAY)
		log_info("mounted %s on %s (backend agentbay at %s)", paths.store, mnt, abs.endpoint);
	else if (opts.foreground)
		log_info("mounted %s on %s (backend local, %s)", paths.store, mnt,
			 fs.cfg.sandbox == SANDBOX_BWRAP ? "sandbox bwrap" : "NO sandbox");

	mount_watch_start(&fs, mnt);
	if (poll_notify_start(&fs.pn, fs.se) < 0)
		log_warn("cannot start the notifier thread: poll() on .out and .err waits for its timeout");
	detach_ready(&detached);
	if (opts.singlethread) {
		ret = fuse_session_loop(fs.se);
	} else {
		loop_cfg = fuse_loop_cfg_create();
		if (!loop_cfg) {
			log_error("out of memory");
			goto out_engine;
		}
		fuse_loop_cfg_set_clone_fd(loop_cfg, opts.clone_fd);
		/* -1 means "keep idle threads": 3.14 warns when handed that. */
		if (opts.max_idle_threads <= 100000)
			fuse_loop_cfg_set_idle_threads(loop_cfg, opts.max_idle_threads);
		if (opts.max_threads > 0 && opts.max_threads <= 100000)
			fuse_loop_cfg_set_max_threads(loop_cfg, opts.max_threads);
		ret = fuse_session_loop_mt(fs.se, loop_cfg);
	}
	/* A signal or an unmount ends the loop: both are a clean stop. */
	ret = ret < 0 ? 1 : 0;

out_engine:
	/* Before the unmount, which the watcher would take for a lazy one. */
	mount_watch_stop(&fs);
	/* Before the unmount too: it closes the descriptor that wake-ups and
	 * replies are written to, and its number may be reused at once. A
	 * run ending after this has no reader or poller left to reach. */
	poll_notify_stop(&fs.pn);
	afs_loop_ended(&fs);
	fuse_session_unmount(fs.se);
	engine_shutdown(fs.eng);
	fs.backend->ops->destroy(fs.backend);
	fs.backend = NULL;
	afs_free(&fs);
	engine_free(fs.eng);
	fs.eng = NULL;
	poll_notify_free(&fs.pn);
	goto out_signals;
	/* Only the paths that fail before the loop fall through from here. */
out_backend:
	fs.backend->ops->destroy(fs.backend);
out_unmount:
	fuse_session_unmount(fs.se);
out_signals:
	fuse_remove_signal_handlers(fs.se);
out_session:
	fuse_session_destroy(fs.se);
out_root:
	afs_free(&fs);
out_args:
	if (loop_cfg)
		fuse_loop_cfg_destroy(loop_cfg);
	free(opts.mountpoint);
	fuse_opt_free_args(&args);
	if (fs.cfg.backend == BACKEND_AGENTBAY)
		ab_http_global_cleanup();
	config_free(&fs.cfg);
	free_setup(&abs);
	return ret;
}
