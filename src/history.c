/* history: see history.h */
#define _GNU_SOURCE
#include "history.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "names.h"
#include "storefile.h"

static int open_dir(int parent, const char *name, bool create)
{
	int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (fd < 0 && errno == ENOENT && create) {
		if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
			return -errno;
		fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	}
	return fd < 0 ? -errno : fd;
}

/* A run number: decimal digits, no leading zero. 0 when NAME is not one. */
static uint64_t run_number(const char *name)
{
	uint64_t v = 0;

	if (name[0] < '1' || name[0] > '9')
		return 0;
	for (const char *p = name; *p; p++) {
		if (*p < '0' || *p > '9' || v > (UINT64_MAX - 9) / 10)
			return 0;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	return v;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

/* The run numbers kept in the stem folder SD, sorted. -errno on error. */
static ssize_t list_runs(int sd, uint64_t **out)
{
	int fd = dup(sd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	uint64_t *v = NULL;
	size_t n = 0, cap = 0;

	if (!d) {
		int err = -errno;
		if (fd >= 0)
			close(fd);
		return err;
	}
	rewinddir(d);
	while ((de = readdir(d)) != NULL) {
		uint64_t k = run_number(de->d_name);
		if (!k)
			continue;
		if (n == cap) {
			size_t c = cap ? cap * 2 : 32;
			uint64_t *nv = realloc(v, c * sizeof(*nv));
			if (!nv) {
				free(v);
				closedir(d);
				return -ENOMEM;
			}
			v = nv;
			cap = c;
		}
		v[n++] = k;
	}
	closedir(d);
	if (n > 1)
		qsort(v, n, sizeof(*v), cmp_u64);
	*out = v;
	return (ssize_t)n;
}

/* The folder for run N in SD: its own if it exists, else the oldest one's
 * renamed (once KEEP are kept; older ones beyond that go), else a new one. */
static int run_folder(int sd, uint64_t n, unsigned keep)
{
	uint64_t *runs = NULL;
	ssize_t count = list_runs(sd, &runs);
	char name[24], old[24];
	size_t first = 0;
	bool have = false;
	int rc = 0;

	if (count < 0)
		return (int)count;
	snprintf(name, sizeof(name), "%" PRIu64, n);
	for (ssize_t i = 0; i < count; i++)
		have = have || runs[i] == n;
	if (!have) {
		/* Make room: KEEP - 1 older runs stay beside the new one. */
		while ((size_t)count - first > keep) {
			snprintf(old, sizeof(old), "%" PRIu64, runs[first++]);
			storefile_remove_tree(sd, old);
		}
		if ((size_t)count - first == keep) {
			snprintf(old, sizeof(old), "%" PRIu64, runs[first]);
			if (renameat(sd, old, sd, name) < 0)
				rc = -errno;
		} else if (mkdirat(sd, name, 0755) < 0 && errno != EEXIST) {
			rc = -errno;
		}
	}
	free(runs);
	if (rc < 0)
		return rc;
	return open_dir(sd, name, false);
}

static int keep_rc(int rc, int r)
{
	return rc < 0 ? rc : r;
}

int history_keep(int meta, const struct history_run *r, unsigned keep)
{
	int runs, sd, rd, rc;
	static const char *const exts[] = { ".py", ".js" };

	if (keep == 0 || r->n == 0)
		return 0;
	runs = open_dir(meta, NAMES_RUNS_DIR, true);
	if (runs < 0)
		return runs;
	sd = open_dir(runs, r->stem, true);
	close(runs);
	if (sd < 0)
		return sd;
	rd = run_folder(sd, r->n, keep);
	close(sd);
	if (rd < 0)
		return rd;
	rc = storefile_write(rd, r->script, r->code ? r->code : "", r->code ? r->code_len : 0);
	/* A folder taken over from an older run may hold its code under the
	 * other language's name. */
	for (size_t i = 0; i < sizeof(exts) / sizeof(exts[0]); i++) {
		char other[NAME_MAX + 1];
		snprintf(other, sizeof(other), "%s%s", r->stem, exts[i]);
		if (strcmp(other, r->script) != 0)
			unlinkat(rd, other, 0);
	}
	rc = keep_rc(rc, r->out_fd >= 0 ? storefile_copy(r->out_fd, rd, "out") : storefile_write(rd, "out", "", 0));
	rc = keep_rc(rc, r->err_fd >= 0 ? storefile_copy(r->err_fd, rd, "err") : storefile_write(rd, "err", "", 0));
	rc = keep_rc(rc, storefile_write(rd, "error", r->error ? r->error : "", r->error ? strlen(r->error) : 0));
	rc = keep_rc(rc, storefile_write(rd, "status", r->status ? r->status : "", r->status ? strlen(r->status) : 0));
	if (r->result_fd >= 0)
		rc = keep_rc(rc, storefile_copy(r->result_fd, rd, "result"));
	else
		unlinkat(rd, "result", 0);
	close(rd);
	return rc;
}

uint64_t history_last(int meta, const char *stem)
{
	int runs = openat(meta, NAMES_RUNS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC), sd;
	uint64_t *v = NULL, last = 0;
	ssize_t n;

	if (runs < 0)
		return 0;
	sd = openat(runs, stem, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	close(runs);
	if (sd < 0)
		return 0;
	n = list_runs(sd, &v);
	close(sd);
	if (n > 0)
		last = v[n - 1];
	free(v);
	return last;
}

void history_remove(int meta, const char *stem)
{
	int runs = openat(meta, NAMES_RUNS_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

	if (runs < 0)
		return;
	storefile_remove_tree(runs, stem);
	close(runs);
	/* Fails, as it should, while other stems have history. */
	unlinkat(meta, NAMES_RUNS_DIR, AT_REMOVEDIR);
}
