/* rich_files: how a run's rich results become files.
 *
 * Owns: the rule that turns the MIME bundles of a run (struct exec_result)
 * into the text of "<stem>.result" (the main result's text/plain, as a
 * notebook shows it) and the files of "<stem>.results/" ("1.png",
 * "2.html", ...: every other representation, numbered in the order the run
 * made them), with base64 decoded for binary types. Pure: no I/O.
 */
#ifndef AGENTBAYFS_RICH_FILES_H
#define AGENTBAYFS_RICH_FILES_H

#include <stddef.h>

#include "result.h"

struct rich_file {
	char name[32];   /* "1.png" */
	char *data;
	size_t len;
};

struct rich_files {
	char *main_text;          /* NULL: no main result with a text form */
	size_t main_len;
	struct rich_file *files;
	size_t n;
};

/* Fills OUT from R. A representation that cannot be decoded (bad base64)
 * is left out. 0 or -ENOMEM (then OUT holds nothing). */
int rich_files_make(const struct exec_result *r, struct rich_files *out);
void rich_files_free(struct rich_files *f);

/* The file name extension for MIME ("png"), and whether its data is base64. */
const char *rich_mime_ext(const char *mime, int *base64);

/* Decodes base64 text (whitespace ignored, padding optional). The bytes in
 * a malloc'd buffer and *len, or NULL when malformed or out of memory. */
char *base64_decode(const char *text, size_t *len);

#endif
