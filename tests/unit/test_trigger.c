/* Unit tests for trigger.h: the per-file save detection state machine, driven
 * by the FUSE request sequences that real tools send (research notes,
 * fuse-anchors §3.2 and Appendix A).
 *
 * A small simulator plays the part of the FUSE glue: it keeps inodes (each
 * with its struct trigger and its current name) and open handles, and maps
 * the requests onto the trigger the way the notes' model says:
 *   CREATE                       -> trigger_open_write(changes = true)
 *   OPEN writable with O_TRUNC   -> trigger_open_write(true)
 *   OPEN writable without it     -> trigger_open_write(false)
 *   OPEN read-only               -> nothing (the trigger is never touched)
 *   WRITE, SETATTR size (fh)     -> trigger_changed
 *   FLUSH of a writable handle   -> trigger_flush: "mark pending" on a script
 *   RELEASE of a writable handle -> trigger_release_write: "run" on a script
 *   RENAME src -> script name    -> trigger_renamed_onto on src's trigger:
 *                                   "run", or "mark pending" while writers
 *                                   are still open
 * Only regular files whose current name is a script (names.h) count. Each
 * request in a table states what it must produce: nothing, PENDING or RUN.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"
#include "trigger.h"

/* ---- the simulator ------------------------------------------------------ */

enum op_kind {
	END = 0,
	CREATE,         /* name, flags, h: a new inode under NAME, opened for writing */
	OPEN,           /* name, flags, h */
	WRITE,          /* h */
	TRUNC,          /* h: SETATTR size through a handle (ftruncate) */
	SETATTR,        /* name: chmod / chown / utimens, no size */
	SETXATTR,       /* name */
	FSYNC,          /* h */
	READ,           /* h */
	IOCTL,          /* h */
	FLUSH,          /* h */
	RELEASE,        /* h */
	RENAME,         /* name -> to */
	RENAME_EINVAL,  /* name -> to with RENAME_NOREPLACE, refused: nothing moves */
	UNLINK,         /* name */
	SYMLINK,        /* name: a symlink (not a regular file) */
};

enum outcome { NOTHING = 0, PENDING, RUN };

struct op {
	enum op_kind kind;
	const char *name;
	const char *to;
	int flags;
	int h;
	enum outcome expect;
};

#define MAX_OPS 64
#define MAX_INODES 32
#define MAX_HANDLES 16

struct trace_case {
	const char *existing[4];  /* files present (content settled) before the trace */
	struct op ops[MAX_OPS];
	unsigned runs;            /* runs expected over the whole trace */
	unsigned pendings;        /* "mark pending" results expected */
	const char *script;       /* at the end: the eligible name, settled (not dirty) */
	bool same_inode;          /* ... and still the inode it had before the trace */
	bool untouched;           /* ... whose trigger was never touched at all */
};

struct inode {
	struct trigger trig;
	char name[64];            /* "" once unlinked or renamed over */
	bool reg;
	bool used;
};

struct handle {
	struct inode *ino;
	bool writable;
	bool open;
};

struct sim {
	struct inode inodes[MAX_INODES];
	struct handle handles[MAX_HANDLES];
	size_t n_inodes;
};

static struct inode *lookup(struct sim *s, const char *name)
{
	for (size_t i = 0; i < s->n_inodes; i++)
		if (s->inodes[i].used && strcmp(s->inodes[i].name, name) == 0)
			return &s->inodes[i];
	return NULL;
}

static struct inode *new_inode(struct sim *s, const char *name, bool reg)
{
	struct inode *old = lookup(s, name);
	struct inode *ino;

	if (old)
		old->name[0] = '\0';
	assert_true(s->n_inodes < MAX_INODES);
	ino = &s->inodes[s->n_inodes++];
	memset(ino, 0, sizeof(*ino));
	ino->used = true;
	ino->reg = reg;
	snprintf(ino->name, sizeof(ino->name), "%s", name);
	return ino;
}

/* What the glue checks before it involves the engine. */
static bool eligible(const struct inode *ino)
{
	return ino->reg && ino->name[0] && name_is_script(ino->name, NULL);
}

static struct handle *handle_open(struct sim *s, int h, struct inode *ino, bool writable)
{
	assert_in_range(h, 0, MAX_HANDLES - 1);
	assert_false(s->handles[h].open);
	s->handles[h] = (struct handle){ .ino = ino, .writable = writable, .open = true };
	return &s->handles[h];
}

static struct handle *handle_get(struct sim *s, int h)
{
	assert_in_range(h, 0, MAX_HANDLES - 1);
	assert_true(s->handles[h].open);
	return &s->handles[h];
}

static enum outcome sim_step(struct sim *s, const struct op *op)
{
	struct inode *ino;
	struct handle *hd;

	switch (op->kind) {
	case CREATE:
		ino = new_inode(s, op->name, true);
		handle_open(s, op->h, ino, true);
		trigger_open_write(&ino->trig, true);
		return NOTHING;
	case OPEN:
		ino = lookup(s, op->name);
		assert_non_null(ino);
		hd = handle_open(s, op->h, ino, (op->flags & O_ACCMODE) != O_RDONLY);
		if (hd->writable)
			trigger_open_write(&ino->trig, (op->flags & O_TRUNC) != 0);
		return NOTHING;
	case WRITE:
	case TRUNC:
		hd = handle_get(s, op->h);
		assert_true(hd->writable);
		trigger_changed(&hd->ino->trig);
		return NOTHING;
	case FLUSH:
		hd = handle_get(s, op->h);
		if (hd->writable && eligible(hd->ino) && trigger_flush(&hd->ino->trig))
			return PENDING;
		return NOTHING;
	case RELEASE: {
		bool run = false;
		hd = handle_get(s, op->h);
		hd->open = false;
		if (hd->writable)
			run = trigger_release_write(&hd->ino->trig);
		return run && eligible(hd->ino) ? RUN : NOTHING;
	}
	case RENAME: {
		struct inode *dst;
		ino = lookup(s, op->name);
		assert_non_null(ino);
		dst = lookup(s, op->to);
		if (dst)
			dst->name[0] = '\0';
		snprintf(ino->name, sizeof(ino->name), "%s", op->to);
		if (!eligible(ino))
			return NOTHING;
		return trigger_renamed_onto(&ino->trig) ? RUN : PENDING;
	}
	case UNLINK:
		ino = lookup(s, op->name);
		assert_non_null(ino);
		ino->name[0] = '\0';
		return NOTHING;
	case SYMLINK:
		new_inode(s, op->name, false);
		return NOTHING;
	case SETATTR:
	case SETXATTR:
	case RENAME_EINVAL:
		assert_non_null(lookup(s, op->name));
		return NOTHING;
	case FSYNC:
	case READ:
	case IOCTL:
		handle_get(s, op->h);
		return NOTHING;
	case END:
		break;
	}
	fail_msg("bad op %d", (int)op->kind);
	return NOTHING;
}

static const char *outcome_name(enum outcome o)
{
	return o == RUN ? "RUN" : o == PENDING ? "PENDING" : "nothing";
}

/* Each recorded trace gives exactly the expected pending marks and runs, request by request. */
static void run_case(void **state)
{
	const struct trace_case *c = *state;
	struct sim s;
	struct inode *orig = NULL, *fin;
	unsigned runs = 0, pendings = 0;

	memset(&s, 0, sizeof(s));
	for (size_t i = 0; i < 4 && c->existing[i]; i++)
		new_inode(&s, c->existing[i], true);
	if (c->script)
		orig = lookup(&s, c->script);

	for (size_t i = 0; i < MAX_OPS && c->ops[i].kind != END; i++) {
		enum outcome got = sim_step(&s, &c->ops[i]);
		if (got != c->ops[i].expect)
			fail_msg("request %zu (kind %d on '%s'): expected %s, got %s", i,
				 (int)c->ops[i].kind, c->ops[i].name ? c->ops[i].name : "handle",
				 outcome_name(c->ops[i].expect), outcome_name(got));
		runs += got == RUN;
		pendings += got == PENDING;
	}
	assert_int_equal(runs, c->runs);
	assert_int_equal(pendings, c->pendings);
	for (int h = 0; h < MAX_HANDLES; h++)
		if (s.handles[h].open)
			fail_msg("handle %d is still open at the end of the trace", h);
	if (c->script) {
		fin = lookup(&s, c->script);
		assert_non_null(fin);
		assert_false(trigger_dirty(&fin->trig));
		assert_int_equal(fin->trig.writers, 0);
		if (c->untouched) {
			assert_int_equal(fin->trig.gen, 0);
			assert_int_equal(fin->trig.sched_gen, 0);
		}
		if (c->same_inode)
			assert_ptr_equal(fin, orig);
		else if (orig)
			assert_ptr_not_equal(fin, orig);
	}
}

/* ---- the recorded traces ------------------------------------------------ */

/* Flags as recorded (hex in Appendix A, O_LARGEFILE left out). */
#define F_CREATE_EXCL (O_CREAT | O_EXCL | O_WRONLY)   /* 0x80c1 */
#define F_CREATE_TRUNC (O_CREAT | O_TRUNC | O_WRONLY) /* 0x8241 */
#define F_TRUNC (O_TRUNC | O_WRONLY)                  /* 0x8201 */
#define F_APPEND (O_APPEND | O_WRONLY)                /* 0x8401 */
#define F_WRONLY O_WRONLY                             /* 0x8001 */
#define F_RDONLY O_RDONLY                             /* 0x8000 */

/* cp a.py m/ (new): CREATE 0x80c1 | WRITE | FLUSH | RELEASE */
static struct trace_case cp_new = {
	.ops = {
		{ CREATE, .name = "script.py", .flags = F_CREATE_EXCL, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "script.py",
};

/* cp over an existing file: OPEN 0x8201 | WRITE | FLUSH | RELEASE */
static struct trace_case cp_over = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* echo > f: the FLUSH before any WRITE (dup2 + close) already marks pending,
 * because the O_TRUNC open changed the content. */
static struct trace_case echo_truncate = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 2, .script = "script.py", .same_inode = true,
};

/* echo >> f: the first FLUSH comes before any change, so it marks nothing. */
static struct trace_case echo_append = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_APPEND, .h = 1 },
		{ FLUSH, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* touch: opened for writing but never written: no pending, no run. */
static struct trace_case touch_existing = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = O_WRONLY | O_NONBLOCK, .h = 1 }, /* 0x8801 */
		{ FLUSH, .h = 1 },
		{ SETATTR, .name = "script.py" },  /* utimens */
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
	},
	.runs = 0, .pendings = 0, .script = "script.py", .same_inode = true,
};

/* Python open('w') / node writeFileSync: CREATE 0x8241 | IOCTL | WRITE | FLUSH | RELEASE */
static struct trace_case python_write = {
	.ops = {
		{ CREATE, .name = "p.py", .flags = F_CREATE_TRUNC, .h = 1 },
		{ IOCTL, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "p.py",
};

/* vim 9, backupcopy=auto: swap files, the 4913 probe, x.py renamed away to
 * x.py~, a new inode created as x.py: one run, at its RELEASE. */
static struct trace_case vim_auto = {
	.existing = { "script.py" },
	.ops = {
		{ CREATE, .name = ".script.py.swp", .flags = O_CREAT | O_EXCL | O_RDWR, .h = 1 },
		{ RELEASE, .h = 1 },
		{ UNLINK, .name = ".script.py.swp" },
		{ CREATE, .name = ".script.py.swx", .flags = O_CREAT | O_EXCL | O_RDWR, .h = 1 },
		{ RELEASE, .h = 1 },
		{ UNLINK, .name = ".script.py.swx" },
		{ CREATE, .name = ".script.py.swp", .flags = O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW, .h = 2 },
		{ WRITE, .h = 2 },
		{ WRITE, .h = 2 },
		{ CREATE, .name = "4913", .flags = O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, .h = 3 },
		{ SETATTR, .name = "4913" },  /* chown 0 0 */
		{ FLUSH, .h = 3 },
		{ RELEASE, .h = 3 },
		{ UNLINK, .name = "4913" },
		{ RENAME, .name = "script.py", .to = "script.py~" },
		{ CREATE, .name = "script.py", .flags = O_CREAT | O_WRONLY, .h = 4 },  /* 0x8041 */
		{ TRUNC, .h = 4 },
		{ WRITE, .h = 4 },
		{ FSYNC, .h = 4 },
		{ SETATTR, .name = "script.py" },  /* chmod 100644 */
		{ FLUSH, .h = 4, .expect = PENDING },
		{ RELEASE, .h = 4, .expect = RUN },
		{ SETXATTR, .name = "script.py" },
		{ UNLINK, .name = "script.py~" },
		{ WRITE, .h = 2 },
		{ FLUSH, .h = 2 },
		{ RELEASE, .h = 2 },
		{ UNLINK, .name = ".script.py.swp" },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = false,
};

/* vim backupcopy=yes: the backup is a copy; the same inode is opened without
 * O_TRUNC, ftruncate'd and written: one run. */
static struct trace_case vim_bkc_yes = {
	.existing = { "script.py" },
	.ops = {
		{ CREATE, .name = "script.py~", .flags = O_CREAT | O_EXCL | O_WRONLY | O_NOFOLLOW, .h = 1 },
		{ OPEN, .name = "script.py", .flags = F_RDONLY, .h = 2 },
		{ READ, .h = 2 },
		{ FLUSH, .h = 2 },
		{ RELEASE, .h = 2 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ OPEN, .name = "script.py", .flags = F_WRONLY, .h = 3 },
		{ TRUNC, .h = 3 },
		{ WRITE, .h = 3 },
		{ FSYNC, .h = 3 },
		{ SETATTR, .name = "script.py" },  /* chmod */
		{ FLUSH, .h = 3, .expect = PENDING },
		{ RELEASE, .h = 3, .expect = RUN },
		{ UNLINK, .name = "script.py~" },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* vim when the path matches backupskip: OPEN | ftruncate | WRITE | FSYNC | close */
static struct trace_case vim_backupskip = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_WRONLY, .h = 1 },
		{ TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FSYNC, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* nano 7.2: reads the file, then OPEN 0x8201 | WRITE | FSYNC | FLUSH | RELEASE */
static struct trace_case nano = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_RDONLY, .h = 1 },
		{ READ, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 2 },
		{ WRITE, .h = 2 },
		{ FSYNC, .h = 2 },
		{ FLUSH, .h = 2, .expect = PENDING },
		{ RELEASE, .h = 2, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* Emacs 28, first save: lock symlink, x.py renamed to x.py~, new x.py written,
 * then a second open for writing with no write: it must not run again. */
static struct trace_case emacs_first = {
	.existing = { "script.py" },
	.ops = {
		{ SYMLINK, .name = ".#script.py" },
		{ RENAME, .name = "script.py", .to = "script.py~" },
		{ CREATE, .name = "script.py", .flags = F_CREATE_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
		{ OPEN, .name = "script.py", .flags = F_WRONLY, .h = 2 },
		{ FLUSH, .h = 2 },
		{ RELEASE, .h = 2 },
		{ UNLINK, .name = ".#script.py" },
		{ SETATTR, .name = "script.py" },  /* chmod */
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = false,
};

/* Emacs, later saves: lock, OPEN 0x8201 | WRITE | close, unlock. */
static struct trace_case emacs_later = {
	.existing = { "script.py", "script.py~" },
	.ops = {
		{ SYMLINK, .name = ".#script.py" },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
		{ UNLINK, .name = ".#script.py" },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* The whole recorded Emacs session (first save, then a second save): two runs. */
static struct trace_case emacs_session = {
	.existing = { "script.py" },
	.ops = {
		{ SYMLINK, .name = ".#script.py" },
		{ RENAME, .name = "script.py", .to = "script.py~" },
		{ CREATE, .name = "script.py", .flags = F_CREATE_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
		{ OPEN, .name = "script.py", .flags = F_WRONLY, .h = 2 },
		{ FLUSH, .h = 2 },
		{ RELEASE, .h = 2 },
		{ UNLINK, .name = ".#script.py" },
		{ SETATTR, .name = "script.py" },
		{ SYMLINK, .name = ".#script.py" },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 3 },
		{ WRITE, .h = 3 },
		{ FLUSH, .h = 3, .expect = PENDING },
		{ RELEASE, .h = 3, .expect = RUN },
		{ UNLINK, .name = ".#script.py" },
	},
	.runs = 2, .pendings = 2, .script = "script.py", .same_inode = false,
};

/* Emacs on a filesystem without symlinks: the lock is a regular file ".#x.py",
 * written and closed, and must never run. */
static struct trace_case emacs_regular_lock = {
	.existing = { "script.py" },
	.ops = {
		{ CREATE, .name = ".#script.py", .flags = F_CREATE_EXCL, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 2 },
		{ WRITE, .h = 2 },
		{ FLUSH, .h = 2, .expect = PENDING },
		{ RELEASE, .h = 2, .expect = RUN },
		{ UNLINK, .name = ".#script.py" },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* GNU sed -i: the temp file sedXXXXXX is written and closed (no run: not a
 * script), then renamed onto x.py: the run happens at the RENAME. */
static struct trace_case sed_inplace = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_RDONLY, .h = 1 },
		{ IOCTL, .h = 1 },
		{ CREATE, .name = "sedINTJV6", .flags = O_CREAT | O_EXCL | O_RDWR, .h = 2 },  /* 0x80c2 */
		{ READ, .h = 1 },
		{ SETATTR, .name = "sedINTJV6" },  /* chown */
		{ SETATTR, .name = "sedINTJV6" },  /* chmod */
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ WRITE, .h = 2 },
		{ FLUSH, .h = 2 },
		{ RELEASE, .h = 2 },
		{ RENAME, .name = "sedINTJV6", .to = "script.py", .expect = RUN },
	},
	.runs = 1, .pendings = 0, .script = "script.py", .same_inode = false,
};

/* rsync: CREATE .r.py.XXXXXX, write, close, reopen read-only for chmod, close,
 * RENAME onto r.py: one run at the RENAME. */
static struct trace_case rsync_copy = {
	.ops = {
		{ CREATE, .name = ".r.py.sENeL4", .flags = O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW, .h = 1 },
		{ SETATTR, .name = ".r.py.sENeL4" },  /* chmod */
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ OPEN, .name = ".r.py.sENeL4", .flags = O_RDONLY | O_NONBLOCK | O_NOFOLLOW, .h = 2 },  /* 0x28800 */
		{ SETATTR, .name = ".r.py.sENeL4" },  /* chmod 0644 */
		{ FLUSH, .h = 2 },
		{ RELEASE, .h = 2 },
		{ RENAME, .name = ".r.py.sENeL4", .to = "r.py", .expect = RUN },
	},
	.runs = 1, .pendings = 0, .script = "r.py",
};

/* rsync over an existing r.py: the replaced inode is gone, the new one runs once. */
static struct trace_case rsync_over = {
	.existing = { "r.py" },
	.ops = {
		{ CREATE, .name = ".r.py.sENeL4", .flags = O_CREAT | O_EXCL | O_RDWR | O_NOFOLLOW, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ RENAME, .name = ".r.py.sENeL4", .to = "r.py", .expect = RUN },
	},
	.runs = 1, .pendings = 0, .script = "r.py", .same_inode = false,
};

/* mv note.txt note.py of an unchanged file: RENAME2(NOREPLACE) refused, then a
 * plain RENAME; a rename onto a script name is a save by itself. */
static struct trace_case mv_unchanged = {
	.existing = { "note.txt" },
	.ops = {
		{ RENAME_EINVAL, .name = "note.txt", .to = "note.py" },
		{ RENAME, .name = "note.txt", .to = "note.py", .expect = RUN },
	},
	.runs = 1, .pendings = 0, .script = "note.py",
};

/* mv of a script away from its name (x.py -> x.py~, x.py -> x.txt) runs nothing. */
static struct trace_case mv_away = {
	.existing = { "a.py", "b.py" },
	.ops = {
		{ RENAME, .name = "a.py", .to = "a.py~" },
		{ RENAME, .name = "b.py", .to = "b.txt" },
		{ RENAME, .name = "b.txt", .to = ".b.py" },
	},
	.runs = 0, .pendings = 0,
};

/* mv a.py b.py renames a settled script onto another script name: one run. */
static struct trace_case mv_script_to_script = {
	.existing = { "a.py", "b.py" },
	.ops = {
		{ RENAME, .name = "a.py", .to = "b.py", .expect = RUN },
	},
	.runs = 1, .pendings = 0, .script = "b.py",
};

/* gedit / GIO g_file_replace: .goutputstream-XXXXXX written, renamed over x.py. */
static struct trace_case gedit = {
	.existing = { "script.py" },
	.ops = {
		{ CREATE, .name = ".goutputstream-ABC123", .flags = F_CREATE_EXCL, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ RENAME, .name = ".goutputstream-ABC123", .to = "script.py", .expect = RUN },
	},
	.runs = 1, .pendings = 0, .script = "script.py", .same_inode = false,
};

/* JetBrains safe write: x.py___jb_tmp___ written, x.py -> x.py___jb_old___,
 * tmp -> x.py, old deleted: one run at the second RENAME. */
static struct trace_case jetbrains = {
	.existing = { "script.py" },
	.ops = {
		{ CREATE, .name = "script.py___jb_tmp___", .flags = F_CREATE_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ RENAME, .name = "script.py", .to = "script.py___jb_old___" },
		{ RENAME, .name = "script.py___jb_tmp___", .to = "script.py", .expect = RUN },
		{ UNLINK, .name = "script.py___jb_old___" },
	},
	.runs = 1, .pendings = 0, .script = "script.py", .same_inode = false,
};

/* A rename onto the name while the temp file still has a writer: no run at the
 * RENAME (only pending), the run comes with its last RELEASE. */
static struct trace_case rename_with_writer = {
	.ops = {
		{ CREATE, .name = "tmp.txt", .flags = F_CREATE_EXCL, .h = 1 },
		{ WRITE, .h = 1 },
		{ RENAME, .name = "tmp.txt", .to = "x.py", .expect = PENDING },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 2, .script = "x.py",
};

/* exec 3>>note.txt; mv note.txt note.py; exec 3>&-: a rename onto the name is a
 * save even when nothing was written, so the writer's last RELEASE runs it. */
static struct trace_case rename_unchanged_with_writer = {
	.existing = { "note.txt" },
	.ops = {
		{ OPEN, .name = "note.txt", .flags = F_APPEND, .h = 1 },
		{ RENAME, .name = "note.txt", .to = "note.py", .expect = PENDING },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 1, .pendings = 2, .script = "note.py",
};

/* echo 1 > f; echo 2 > f with the first (asynchronous) RELEASE arriving after
 * the second OPEN: exactly one run, at the last RELEASE. */
static struct trace_case overlapping_writers = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 2 },
		{ FLUSH, .h = 2, .expect = PENDING },
		{ WRITE, .h = 2 },
		{ RELEASE, .h = 1 },
		{ FLUSH, .h = 2, .expect = PENDING },
		{ RELEASE, .h = 2, .expect = RUN },
	},
	.runs = 1, .pendings = 4, .script = "script.py", .same_inode = true,
};

/* Two saves one after the other, each released before the next open: two runs. */
static struct trace_case sequential_saves = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1, .expect = PENDING },
		{ RELEASE, .h = 1, .expect = RUN },
	},
	.runs = 2, .pendings = 2, .script = "script.py", .same_inode = true,
};

/* A writer and a reader at once: only the writer's RELEASE counts. */
static struct trace_case reader_and_writer = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_RDONLY, .h = 1 },
		{ OPEN, .name = "script.py", .flags = F_TRUNC, .h = 2 },
		{ WRITE, .h = 2 },
		{ READ, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ FLUSH, .h = 2, .expect = PENDING },
		{ RELEASE, .h = 2, .expect = RUN },
	},
	.runs = 1, .pendings = 1, .script = "script.py", .same_inode = true,
};

/* open + close read-only (cat, an editor's read) never touches the trigger. */
static struct trace_case read_only = {
	.existing = { "script.py" },
	.ops = {
		{ OPEN, .name = "script.py", .flags = F_RDONLY, .h = 1 },
		{ READ, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ OPEN, .name = "script.py", .flags = O_RDONLY | O_NONBLOCK, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
	},
	.runs = 0, .pendings = 0, .script = "script.py", .same_inode = true, .untouched = true,
};

/* Writing a file that is not a script (x.txt, x.py~) never marks or runs. */
static struct trace_case not_a_script = {
	.ops = {
		{ CREATE, .name = "notes.txt", .flags = F_CREATE_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
		{ CREATE, .name = "x.py~", .flags = F_CREATE_TRUNC, .h = 1 },
		{ WRITE, .h = 1 },
		{ FLUSH, .h = 1 },
		{ RELEASE, .h = 1 },
	},
	.runs = 0, .pendings = 0,
};

/* ---- the trigger on its own --------------------------------------------- */

/* A fresh trigger is settled: flush marks nothing, release runs nothing. */
static void test_fresh_trigger(void **state)
{
	struct trigger t = { 0 };
	(void)state;

	assert_false(trigger_dirty(&t));
	assert_false(trigger_flush(&t));
	trigger_open_write(&t, false);
	assert_int_equal(t.writers, 1);
	assert_false(trigger_flush(&t));
	assert_false(trigger_release_write(&t));
	assert_int_equal(t.writers, 0);
	assert_false(trigger_dirty(&t));
}

/* A change makes it dirty until the last RELEASE schedules the run. */
static void test_change_then_release(void **state)
{
	struct trigger t = { 0 };
	(void)state;

	trigger_open_write(&t, true);
	assert_true(trigger_dirty(&t));
	assert_true(trigger_flush(&t));
	assert_true(trigger_flush(&t));         /* flush does not consume the save */
	assert_true(trigger_release_write(&t));
	assert_false(trigger_dirty(&t));
	assert_int_equal(t.sched_gen, t.gen);
	/* A stray extra RELEASE neither runs again nor underflows. */
	assert_false(trigger_release_write(&t));
	assert_int_equal(t.writers, 0);
}

/* With two writers only the last RELEASE runs. */
static void test_two_writers(void **state)
{
	struct trigger t = { 0 };
	(void)state;

	trigger_open_write(&t, false);
	trigger_open_write(&t, false);
	trigger_changed(&t);
	assert_false(trigger_release_write(&t));
	assert_true(trigger_dirty(&t));
	assert_true(trigger_release_write(&t));
	assert_false(trigger_dirty(&t));
}

/* A rename onto the name runs at once without writers, and bumps the generation. */
static void test_renamed_onto(void **state)
{
	struct trigger t = { 0 };
	uint64_t gen;
	(void)state;

	assert_true(trigger_renamed_onto(&t));
	assert_false(trigger_dirty(&t));
	gen = t.gen;
	assert_true(trigger_renamed_onto(&t));  /* every rename onto it is a save */
	assert_true(t.gen > gen);

	trigger_open_write(&t, false);
	assert_false(trigger_renamed_onto(&t));
	assert_true(trigger_dirty(&t));
	assert_true(trigger_flush(&t));
	assert_true(trigger_release_write(&t));
	assert_false(trigger_dirty(&t));
}

#define TRACE(c) { #c, run_case, NULL, NULL, &(c) }

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fresh_trigger),
		cmocka_unit_test(test_change_then_release),
		cmocka_unit_test(test_two_writers),
		cmocka_unit_test(test_renamed_onto),
		TRACE(cp_new),
		TRACE(cp_over),
		TRACE(echo_truncate),
		TRACE(echo_append),
		TRACE(touch_existing),
		TRACE(python_write),
		TRACE(vim_auto),
		TRACE(vim_bkc_yes),
		TRACE(vim_backupskip),
		TRACE(nano),
		TRACE(emacs_first),
		TRACE(emacs_later),
		TRACE(emacs_session),
		TRACE(emacs_regular_lock),
		TRACE(sed_inplace),
		TRACE(rsync_copy),
		TRACE(rsync_over),
		TRACE(mv_unchanged),
		TRACE(mv_away),
		TRACE(mv_script_to_script),
		TRACE(gedit),
		TRACE(jetbrains),
		TRACE(rename_with_writer),
		TRACE(rename_unchanged_with_writer),
		TRACE(overlapping_writers),
		TRACE(sequential_saves),
		TRACE(reader_and_writer),
		TRACE(read_only),
		TRACE(not_a_script),
	};
	return cmocka_run_group_tests_name("trigger", tests, NULL, NULL);
}
