/* options: see options.h */
#define _GNU_SOURCE
#include "options.h"

#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void config_defaults(struct config *c)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	memset(c, 0, sizeof(*c));
	c->backend = BACKEND_AUTO;
	c->session_idle_s = 600;
	c->request_timeout_ms = 60000;
	c->sandbox = SANDBOX_BWRAP;
	c->timeout_s = 60;
	c->max_output = 16u << 20;
	c->memory = 2ull << 30;
	c->max_procs = 64;
	c->max_file_size = 64u << 20;
	c->max_open_files = 256;
	c->tmp_size = 64u << 20;
	c->max_script_size = 1u << 20;
	c->history = 20;
	/* Twice the CPUs: a sandboxed run spends part of its life waiting
	 * (namespaces, exec, the kernel's teardown), and with one run per CPU
	 * a burst of saves left a third of the CPU idle. */
	c->jobs = n > 0 ? 2 * (unsigned)n : 2;
	c->warm = 1;
	c->warm_idle_s = 300;
	c->forkserver = true;
	c->writebehind = true;
}

void config_free(struct config *c)
{
	free(c->store);
	free(c->python);
	free(c->node);
	free(c->bwrap);
	free(c->image);
	free(c->api_key_file);
	free(c->endpoint);
	free(c->region_id);
	memset(c, 0, sizeof(*c));
}

int parse_size(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;
	uint64_t mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno)
		return -1;
	switch (toupper((unsigned char)*end)) {
	case '\0': break;
	case 'K': mul = 1ull << 10; end++; break;
	case 'M': mul = 1ull << 20; end++; break;
	case 'G': mul = 1ull << 30; end++; break;
	case 'T': mul = 1ull << 40; end++; break;
	default: return -1;
	}
	if (mul > 1 && (strcasecmp(end, "iB") == 0 || strcasecmp(end, "B") == 0))
		end += strlen(end);
	if (*end)
		return -1;
	if (v > UINT64_MAX / mul)
		return -1;
	*out = (uint64_t)v * mul;
	return 0;
}

int parse_uint(const char *s, unsigned min, unsigned max, unsigned *out)
{
	char *end;
	unsigned long v;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = (unsigned)v;
	return 0;
}

int parse_seconds(const char *s, unsigned *out)
{
	char *end;
	unsigned long v;
	unsigned long mul = 1;

	if (!s || !isdigit((unsigned char)*s))
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno)
		return -1;
	if (strcmp(end, "m") == 0 || strcmp(end, "min") == 0)
		mul = 60;
	else if (strcmp(end, "h") == 0)
		mul = 3600;
	else if (*end && strcmp(end, "s") != 0)
		return -1;
	if (v == 0 || v > UINT_MAX / mul || v * mul > 7 * 24 * 3600)
		return -1;
	*out = (unsigned)(v * mul);
	return 0;
}

/* "on", "yes" or "1"; "off", "no" or "0". */
static int parse_on_off(const char *s, bool *out)
{
	if (strcmp(s, "on") == 0 || strcmp(s, "1") == 0 || strcmp(s, "yes") == 0)
		*out = true;
	else if (strcmp(s, "off") == 0 || strcmp(s, "0") == 0 || strcmp(s, "no") == 0)
		*out = false;
	else
		return -1;
	return 0;
}

static int set_str(char **dst, const char *v)
{
	char *s = strdup(v);
	if (!s)
		return -1;
	free(*dst);
	*dst = s;
	return 0;
}

#define BAD(...) do { snprintf(err, errsz, __VA_ARGS__); return -1; } while (0)

int config_apply(struct config *c, const char *opt, char *err, size_t errsz)
{
	const char *eq = strchr(opt, '=');
	size_t klen = eq ? (size_t)(eq - opt) : strlen(opt);
	const char *v = eq ? eq + 1 : NULL;
	char key[32];

	if (klen >= sizeof(key))
		return 0;
	memcpy(key, opt, klen);
	key[klen] = '\0';

#define NEED_VALUE() do { if (!v || !*v) BAD("option '%s' needs a value: -o %s=...", key, key); } while (0)
	if (strcmp(key, "store") == 0) {
		NEED_VALUE();
		if (set_str(&c->store, v) < 0)
			BAD("out of memory");
	} else if (strcmp(key, "backend") == 0) {
		NEED_VALUE();
		if (strcmp(v, "local") == 0)
			c->backend = BACKEND_LOCAL;
		else if (strcmp(v, "agentbay") == 0)
			c->backend = BACKEND_AGENTBAY;
		else if (strcmp(v, "auto") == 0)
			c->backend = BACKEND_AUTO;
		else
			BAD("unknown backend '%s': use -o backend=local, agentbay or auto", v);
	} else if (strcmp(key, "image") == 0) {
		NEED_VALUE();
		for (const char *p = v; *p; p++)
			if (!isalnum((unsigned char)*p) && !strchr("_-.:", *p))
				BAD("bad image '%s': an AgentBay image id is letters, digits and _-.: (e.g. code_latest)", v);
		if (set_str(&c->image, v) < 0)
			BAD("out of memory");
	} else if (strcmp(key, "api_key_file") == 0) {
		NEED_VALUE();
		if (set_str(&c->api_key_file, v) < 0)
			BAD("out of memory");
		c->key_file_from_file = false;
	} else if (strcmp(key, "endpoint") == 0) {
		NEED_VALUE();
		for (const char *p = v; *p; p++)
			if (isspace((unsigned char)*p) || !isprint((unsigned char)*p))
				BAD("bad endpoint '%s': give a host name or an http(s):// URL, without spaces", v);
		if (set_str(&c->endpoint, v) < 0)
			BAD("out of memory");
	} else if (strcmp(key, "region_id") == 0) {
		NEED_VALUE();
		for (const char *p = v; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-')
				BAD("bad region_id '%s': a region id is letters, digits and - (e.g. cn-shanghai)", v);
		if (set_str(&c->region_id, v) < 0)
			BAD("out of memory");
	} else if (strcmp(key, "request_timeout_ms") == 0) {
		NEED_VALUE();
		if (parse_uint(v, 100, 3600000, &c->request_timeout_ms) < 0)
			BAD("bad request_timeout_ms '%s': give milliseconds from 100 to 3600000", v);
	} else if (strcmp(key, "session_idle") == 0) {
		NEED_VALUE();
		if (parse_seconds(v, &c->session_idle_s) < 0)
			BAD("bad session_idle '%s': give seconds from 1 to 604800 (e.g. 600, 10m)", v);
	} else if (strcmp(key, "sandbox") == 0) {
		NEED_VALUE();
		if (strcmp(v, "bwrap") == 0)
			c->sandbox = SANDBOX_BWRAP;
		else if (strcmp(v, "none") == 0)
			c->sandbox = SANDBOX_NONE;
		else
			BAD("unknown sandbox '%s': use -o sandbox=bwrap or -o sandbox=none", v);
	} else if (strcmp(key, "python") == 0 || strcmp(key, "node") == 0 || strcmp(key, "bwrap") == 0) {
		NEED_VALUE();
		if (v[0] != '/')
			BAD("-o %s= needs an absolute path, not '%s'", key, v);
		char **dst = key[0] == 'p' ? &c->python : key[0] == 'n' ? &c->node : &c->bwrap;
		if (set_str(dst, v) < 0)
			BAD("out of memory");
	} else if (strcmp(key, "timeout") == 0) {
		NEED_VALUE();
		if (parse_seconds(v, &c->timeout_s) < 0)
			BAD("bad timeout '%s': give seconds from 1 to 604800 (e.g. 60, 90s, 5m)", v);
	} else if (strcmp(key, "jobs") == 0) {
		NEED_VALUE();
		if (parse_uint(v, 1, 1024, &c->jobs) < 0)
			BAD("bad jobs '%s': give a number of parallel runs from 1 to 1024", v);
		c->jobs_set = true;
	} else if (strcmp(key, "history") == 0) {
		NEED_VALUE();
		if (parse_uint(v, 0, 10000, &c->history) < 0)
			BAD("bad history '%s': give how many runs to keep per script, from 0 (none) to 10000", v);
	} else if (strcmp(key, "warm") == 0) {
		NEED_VALUE();
		if (parse_uint(v, 0, 64, &c->warm) < 0)
			BAD("bad warm '%s': give a number of spare sandboxes per language from 0 (none) to 64", v);
	} else if (strcmp(key, "forkserver") == 0) {
		NEED_VALUE();
		if (parse_on_off(v, &c->forkserver) < 0)
			BAD("bad forkserver '%s': use -o forkserver=on or -o forkserver=off", v);
	} else if (strcmp(key, "writebehind") == 0) {
		NEED_VALUE();
		if (parse_on_off(v, &c->writebehind) < 0)
			BAD("bad writebehind '%s': use -o writebehind=on or -o writebehind=off", v);
	} else if (strcmp(key, "warm_idle") == 0) {
		NEED_VALUE();
		if (parse_seconds(v, &c->warm_idle_s) < 0)
			BAD("bad warm_idle '%s': give seconds from 1 to 604800 (e.g. 300, 5m)", v);
	} else if (strcmp(key, "max_procs") == 0) {
		NEED_VALUE();
		if (parse_uint(v, 1, 65536, &c->max_procs) < 0)
			BAD("bad max_procs '%s': give a number from 1 to 65536", v);
	} else if (strcmp(key, "max_open_files") == 0) {
		NEED_VALUE();
		if (parse_uint(v, 16, 1048576, &c->max_open_files) < 0)
			BAD("bad max_open_files '%s': give a number from 16 to 1048576", v);
	} else if (strcmp(key, "max_output") == 0 || strcmp(key, "memory") == 0 ||
		   strcmp(key, "max_file_size") == 0 || strcmp(key, "tmp_size") == 0 ||
		   strcmp(key, "max_script_size") == 0) {
		uint64_t n;
		NEED_VALUE();
		if (parse_size(v, &n) < 0)
			BAD("bad size '%s' for -o %s: give bytes, optionally with K, M or G (e.g. 16M)", v, key);
		if (strcmp(key, "memory") == 0) {
			if (n != 0 && n < (16u << 20))
				BAD("-o memory=%s is too small to start an interpreter: give at least 16M, or 0 for no limit", v);
			c->memory = n;
		} else if (n == 0) {
			BAD("-o %s must be more than 0", key);
		} else if (strcmp(key, "max_output") == 0) {
			c->max_output = n;
		} else if (strcmp(key, "max_file_size") == 0) {
			c->max_file_size = n;
		} else if (strcmp(key, "tmp_size") == 0) {
			c->tmp_size = n;
		} else {
			c->max_script_size = n;
		}
	} else {
		return 0;
	}
	return 1;
#undef NEED_VALUE
}

static char *trim(char *s, char **end)
{
	while (*s == ' ' || *s == '\t')
		s++;
	*end = s + strlen(s);
	while (*end > s && ((*end)[-1] == ' ' || (*end)[-1] == '\t' || (*end)[-1] == '\r'))
		(*end)--;
	**end = '\0';
	return s;
}

int config_apply_file(struct config *c, const char *text, size_t len, const char *path,
		      char *err, size_t errsz)
{
	unsigned lineno = 0;

	if (memchr(text, '\0', len))
		BAD("%s: a NUL byte: this is not a text file", path);
	for (size_t off = 0; off < len;) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;
		char line[1024], opt[1100], why[512], *end;
		lineno++;
		if (n >= sizeof(line))
			BAD("%s:%u: the line is longer than %zu bytes", path, lineno, sizeof(line) - 1);
		memcpy(line, text + off, n);
		line[n] = '\0';
		off += n + (nl ? 1 : 0);
		char *l = trim(line, &end);
		if (!*l || *l == '#')
			continue;
		char *eq = strchr(line, '=');
		if (!eq)
			BAD("%s:%u: '%s' is not a setting: write key = value (the keys are the -o options)",
			    path, lineno, l);
		*eq = '\0';
		const char *key = trim(l, &end), *val = trim(eq + 1, &end);
		if (!*key)
			BAD("%s:%u: a value without a key: write key = value", path, lineno);
		snprintf(opt, sizeof(opt), "%s=%s", key, val);
		int r = config_apply(c, opt, why, sizeof(why));
		if (r < 0)
			BAD("%s:%u: %s", path, lineno, why);
		if (r == 0)
			BAD("%s:%u: unknown setting '%s' (the settings are the -o options of agentbayfs, "
			    "see --help)", path, lineno, key);
		if (strcmp(key, "api_key_file") == 0)
			c->key_file_from_file = true;
	}
	return 0;
}

int config_apply_env(struct config *c, char *err, size_t errsz)
{
	static const struct { const char *var, *key; } map[] = {
		{ "AGENTBAY_ENDPOINT", "endpoint" },
		{ "AGENTBAY_TIMEOUT_MS", "request_timeout_ms" },
		{ "AGENTBAY_REGION_ID", "region_id" },
	};
	const char *key = getenv("AGENTBAY_API_KEY");

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
		const char *v = getenv(map[i].var);
		char opt[1100], why[512];
		if (!v || !*v)
			continue;
		snprintf(opt, sizeof(opt), "%s=%s", map[i].key, v);
		if (config_apply(c, opt, why, sizeof(why)) < 0)
			BAD("bad %s '%s': %s", map[i].var, v, why);
	}
	if (key && *key && c->key_file_from_file) {
		free(c->api_key_file);
		c->api_key_file = NULL;
		c->key_file_from_file = false;
	}
	return 0;
}

const char *config_help(void)
{
	return
"agentbayfs options:\n"
"    -o store=DIR           where files and results are kept (default: one folder\n"
"                           per mountpoint under $XDG_STATE_HOME/agentbayfs/)\n"
"    -o backend=auto|local|agentbay  where scripts run: locally, in AgentBay\n"
"                           cloud sessions, or (auto, the default) AgentBay when an\n"
"                           API key is configured and locally otherwise\n"
"    -o sandbox=bwrap|none  isolate runs with bubblewrap (default), or not at all\n"
"    -o python=PATH         Python interpreter (default /usr/bin/python3)\n"
"    -o node=PATH           Node.js interpreter (default: node found on PATH)\n"
"    -o bwrap=PATH          bubblewrap binary (default: bwrap found on PATH)\n"
"    -o timeout=SECONDS     wall time limit per run (default 60)\n"
"    -o max_output=BYTES    limit per output stream; more stops the run (default 16M)\n"
"    -o memory=BYTES        address space per process, 0 for none (default 2G)\n"
"    -o max_procs=N         processes per run (default 64)\n"
"    -o max_file_size=BYTES largest file a run may write (default 64M)\n"
"    -o max_open_files=N    open files per process (default 256)\n"
"    -o tmp_size=BYTES      size of the run's private /tmp and work dir (default 64M)\n"
"    -o max_script_size=BYTES  larger scripts are not run (default 1M)\n"
"    -o jobs=N              runs at once (default: twice the CPUs; 16 for agentbay)\n"
"    -o history=N           runs kept per script under .runs/, 0 for none (default 20)\n"
"    -o warm=N              sandboxes started ahead per language in use, 0 for none (default 1)\n"
"    -o warm_idle=SECONDS   drop a language's warm sandboxes after this long unused (default 300)\n"
"    -o forkserver=on|off   fork each Python run from a prepared sandbox (default on)\n"
"    -o writebehind=on|off  answer large writes while a helper process stores them\n"
"                           (default on; off: each write waits for the store)\n"
"    -o image=ID            AgentBay image for sessions (default code_latest)\n"
"    -o api_key_file=PATH   read the AgentBay API key from PATH (mode 0600 or stricter)\n"
"    -o session_idle=SECONDS  release a directory's idle AgentBay session (default 600)\n"
"    -o endpoint=HOST|URL   AgentBay gateway (default wuyingai.cn-shanghai.aliyuncs.com)\n"
"    -o region_id=ID        AgentBay LoginRegionId of new sessions (default none)\n"
"    -o request_timeout_ms=N  connect and read timeout of AgentBay requests (default 60000)\n"
"\nAgentBay environment: AGENTBAY_API_KEY, AGENTBAY_ENDPOINT (a host, or an http(s) URL),\n"
"AGENTBAY_TIMEOUT_MS (default 60000), AGENTBAY_REGION_ID.\n"
"\nConfiguration file: $XDG_CONFIG_HOME/agentbayfs/config (~/.config/...), else\n"
"/etc/agentbayfs.conf: lines of key = value with the -o names above. The\n"
"environment overrides it, and -o overrides both.\n";
}
