/* names: the naming rules of the mount, and nothing else.
 *
 * Owns: which file names are scripts (and in which language), how a script's
 * stem maps to its result files, and which names are reserved for the daemon.
 * Pure functions of strings: no I/O, no state, no FUSE.
 */
#ifndef AGENTBAYFS_NAMES_H
#define AGENTBAYFS_NAMES_H

#include <stdbool.h>
#include <stddef.h>

enum lang { LANG_NONE = 0, LANG_PYTHON, LANG_JAVASCRIPT };

/* The result files of a script, by kind. */
enum result_kind { RK_OUT = 0, RK_ERR, RK_ERROR, RK_STATUS, RK_COUNT };

/* What a directory shows read-only from its meta folder, besides the result
 * files: a run's main result "<stem>.result", its other rich results in
 * "<stem>.results/", and the history of its scripts' runs in ".runs/". */
enum view_kind { VK_NONE = 0, VK_RESULT, VK_RESULTS, VK_RUNS };

#define NAMES_RUNS_DIR ".runs"

/* Name of the hidden per-directory folder in the store that holds results.
 * It never appears in the mount. */
#define NAMES_META_DIR ".agentbayfs"

/* True when NAME is an eligible script name: ^[^.#][^/]*\.(py|js)$, and
 * short enough that its result names, and the temporary names they are
 * written under (".<stem>.status.tmp"), fit in NAME_MAX.
 * Sets *lang (if not NULL) to its language. */
bool name_is_script(const char *name, enum lang *lang);

/* True when NAME matches the script pattern but its result names would be
 * longer than NAME_MAX: it is kept as a file and never run. */
bool name_script_too_long(const char *name);

/* Length of the stem of a script name ("a.b.py" -> 3), or 0 if not a script. */
size_t name_stem_len(const char *name);

/* True when STEM could be the stem of a script (non-empty, no '/', does not
 * start with '.' or '#'). */
bool name_is_stem(const char *stem, size_t len);

/* True when NAME is the name of a result file "<stem>.<suffix>"; sets *kind
 * and *stem_len (the stem is name[0..stem_len)). */
bool name_is_result(const char *name, enum result_kind *kind, size_t *stem_len);

/* The view NAME names (VK_NONE if none); *stem_len is the stem's length
 * for VK_RESULT and VK_RESULTS. */
enum view_kind name_view(const char *name, size_t *stem_len);

/* ".out", ".err", ".error", ".status" */
const char *result_suffix(enum result_kind kind);

/* Writes "<stem><suffix>" into buf; returns false if it does not fit. */
bool result_name(char *buf, size_t bufsz, const char *stem, enum result_kind kind);

/* True for names the daemon keeps for itself (the meta folder). */
bool name_is_reserved(const char *name);

const char *lang_name(enum lang lang);          /* "python", "javascript" */
enum lang lang_from_name(const char *name);     /* inverse; LANG_NONE if unknown */

#endif
