/* options: the mount's configuration and its "-o key=value" options.
 *
 * Owns: every setting of agentbayfs with its default, parsing and checking of
 * option values (sizes, durations, counts, choices), and the help text.
 * FUSE's own options are not here: main.c hands those to libfuse.
 * Pure: no I/O beyond reading the environment (defaults, the AgentBay
 * variables); main.c reads the configuration file and hands its text here.
 */
#ifndef AGENTBAYFS_OPTIONS_H
#define AGENTBAYFS_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum backend_kind { BACKEND_AUTO = 0, BACKEND_LOCAL, BACKEND_AGENTBAY };
enum sandbox_mode { SANDBOX_BWRAP = 0, SANDBOX_NONE };

struct config {
	char *store;               /* store directory; NULL: derive from the mountpoint */
	enum backend_kind backend;
	enum sandbox_mode sandbox;
	char *python;              /* interpreter paths as given; NULL: defaults */
	char *node;
	char *bwrap;
	unsigned timeout_s;        /* wall time per run */
	uint64_t max_output;       /* bytes per stream */
	uint64_t memory;           /* bytes of address space per process; 0: no limit */
	unsigned max_procs;        /* processes per run */
	uint64_t max_file_size;    /* bytes per file written by a run */
	unsigned max_open_files;
	uint64_t tmp_size;         /* bytes of the run's private tmpfs */
	uint64_t max_script_size;  /* scripts larger than this are not run */
	unsigned jobs;             /* runs at once */
	unsigned history;          /* runs kept per script under ".runs/"; 0: none */
	bool jobs_set;             /* -o jobs= was given */
	unsigned warm;             /* local: spare sandboxes per language in use */
	unsigned warm_idle_s;      /* local: spares go after this long without a run */
	bool forkserver;           /* local: Python runs forked from a prepared sandbox */
	bool writebehind;          /* large writes answered before the store has them */
	char *image;               /* AgentBay image; NULL: code_latest */
	char *api_key_file;        /* AgentBay API key from a file */
	bool key_file_from_file;   /* api_key_file came from the configuration file */
	unsigned session_idle_s;   /* release an idle directory's AgentBay session */
	char *endpoint;            /* AgentBay gateway, a host or an http(s) URL; NULL: default */
	char *region_id;           /* sent as LoginRegionId; NULL: none */
	unsigned request_timeout_ms; /* each AgentBay request */
};

void config_defaults(struct config *c);
void config_free(struct config *c);

/* Applies one "key=value" (or bare "key") option. Returns 1 when it is one of
 * ours and was applied, 0 when the key is not ours (leave it to FUSE), and -1
 * when it is ours but the value is bad (ERR then says why). */
int config_apply(struct config *c, const char *opt, char *err, size_t errsz);

/* The configuration file (read first; the environment overrides it, and
 * "-o" both): TEXT of LEN bytes, one "key = value" per line, keys being the
 * "-o" option names; blank lines and lines starting with '#' are skipped.
 * 0, or -1 with ERR naming PATH and the line ("PATH:3: ..."). */
int config_apply_file(struct config *c, const char *text, size_t len, const char *path,
		      char *err, size_t errsz);
/* The AgentBay environment, over what a file said: AGENTBAY_ENDPOINT,
 * AGENTBAY_TIMEOUT_MS, AGENTBAY_REGION_ID; AGENTBAY_API_KEY set means a key
 * file named by the configuration file no longer applies. 0 or -1 (ERR). */
int config_apply_env(struct config *c, char *err, size_t errsz);

/* Parsers shared with tests. 0 on success, -1 on a bad value. */
int parse_size(const char *s, uint64_t *out);          /* 123, 64K, 16M, 1G, 1GiB */
int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out);
int parse_seconds(const char *s, unsigned *out);       /* 60, 60s, 2m, 1h */

/* The "-o" part of --help. */
const char *config_help(void);

#endif
