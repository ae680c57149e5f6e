/* rich_files: see rich_files.h */
#define _GNU_SOURCE
#include "rich_files.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
	const char *mime;
	const char *ext;
	int base64;
} known[] = {
	{ "image/png", "png", 1 },         { "image/jpeg", "jpg", 1 },      { "image/gif", "gif", 1 },
	{ "image/webp", "webp", 1 },       { "application/pdf", "pdf", 1 }, { "image/svg+xml", "svg", 0 },
	{ "text/html", "html", 0 },        { "text/markdown", "md", 0 },    { "text/latex", "tex", 0 },
	{ "application/json", "json", 0 }, { "application/javascript", "js", 0 },
	{ "text/plain", "txt", 0 },
};

const char *rich_mime_ext(const char *mime, int *base64)
{
	size_t n = strlen(mime);

	*base64 = 0;
	for (size_t i = 0; i < sizeof(known) / sizeof(known[0]); i++)
		if (strcmp(mime, known[i].mime) == 0) {
			*base64 = known[i].base64;
			return known[i].ext;
		}
	/* Charts and other JSON dialects ("application/vnd.vegalite.v5+json"). */
	if (n > 5 && strcmp(mime + n - 5, "+json") == 0)
		return "json";
	if (strncmp(mime, "image/", 6) == 0) {
		*base64 = 1;
		return "img";
	}
	if (strncmp(mime, "text/", 5) == 0)
		return "txt";
	*base64 = 1;
	return "bin";
}

static int b64_value(unsigned char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

char *base64_decode(const char *text, size_t *len)
{
	size_t cap = strlen(text) / 4 * 3 + 3, n = 0;
	char *out = malloc(cap + 1);
	unsigned acc = 0;
	int bits = 0;
	bool padded = false;

	if (!out)
		return NULL;
	for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
		if (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')
			continue;
		if (*p == '=') {
			padded = true;
			continue;
		}
		int v = b64_value(*p);
		if (v < 0 || padded)
			goto bad;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[n++] = (char)((acc >> bits) & 0xff);
		}
	}
	/* Six leftover bits cannot end a valid encoding. */
	if (bits >= 6)
		goto bad;
	out[n] = '\0';
	*len = n;
	return out;
bad:
	free(out);
	return NULL;
}

static int add_file(struct rich_files *out, size_t *cap, const char *mime, const char *data)
{
	int b64;
	const char *ext = rich_mime_ext(mime, &b64);
	struct rich_file *f;

	if (out->n == *cap) {
		size_t c = *cap ? *cap * 2 : 4;
		struct rich_file *nf = realloc(out->files, c * sizeof(*nf));
		if (!nf)
			return -ENOMEM;
		out->files = nf;
		*cap = c;
	}
	f = &out->files[out->n];
	if (b64) {
		f->data = base64_decode(data, &f->len);
		if (!f->data)
			return 0;   /* not base64 after all: left out */
	} else {
		f->len = strlen(data);
		f->data = strdup(data);
		if (!f->data)
			return -ENOMEM;
	}
	out->n++;
	snprintf(f->name, sizeof(f->name), "%zu.%s", out->n, ext);
	return 0;
}

static const char *bundle_get(const struct rich_result *b, const char *mime)
{
	for (size_t i = 0; i < b->n; i++)
		if (b->entries[i].mime && strcmp(b->entries[i].mime, mime) == 0)
			return b->entries[i].data;
	return NULL;
}

int rich_files_make(const struct exec_result *r, struct rich_files *out)
{
	size_t cap = 0;
	int rc = 0;

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; rc == 0 && i < r->n_results; i++) {
		const struct rich_result *b = &r->results[i];
		const char *plain = bundle_get(b, "text/plain");
		size_t others = 0;

		for (size_t k = 0; k < b->n; k++)
			if (b->entries[k].mime && b->entries[k].data && strcmp(b->entries[k].mime, "text/plain"))
				others++;
		if (b->is_main && plain && !out->main_text) {
			size_t len = strlen(plain);
			bool nl = len > 0 && plain[len - 1] != '\n';
			if (asprintf(&out->main_text, "%s%s", plain, nl ? "\n" : "") < 0) {
				out->main_text = NULL;
				rc = -ENOMEM;
				break;
			}
			out->main_len = len + (nl ? 1 : 0);
		}
		for (size_t k = 0; rc == 0 && k < b->n; k++) {
			const struct mime_entry *e = &b->entries[k];
			if (!e->mime || !e->data)
				continue;
			/* The text form is the file only of what has no other
			 * (the main result's is "<stem>.result"). */
			if (strcmp(e->mime, "text/plain") == 0 && (others || b->is_main))
				continue;
			rc = add_file(out, &cap, e->mime, e->data);
		}
	}
	if (rc < 0)
		rich_files_free(out);
	return rc;
}

void rich_files_free(struct rich_files *f)
{
	free(f->main_text);
	for (size_t i = 0; i < f->n; i++)
		free(f->files[i].data);
	free(f->files);
	memset(f, 0, sizeof(*f));
}
