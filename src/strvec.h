/* strvec: a NULL-terminated vector of owned strings, for argv and envp.
 * Owns nothing beyond its strings. */
#ifndef AGENTBAYFS_STRVEC_H
#define AGENTBAYFS_STRVEC_H

#include <stddef.h>

struct strvec {
	char **v;     /* NULL-terminated once anything was pushed */
	size_t n;
	size_t cap;
};

/* Appends copies of the strings up to a NULL. 0, or -1 on ENOMEM. */
int strvec_pushv(struct strvec *s, ...) __attribute__((sentinel));
int strvec_push(struct strvec *s, const char *str);
/* Replaces the last string with a copy of STR. 0, or -1. */
int strvec_replace_last(struct strvec *s, const char *str);
void strvec_free(struct strvec *s);

#endif
