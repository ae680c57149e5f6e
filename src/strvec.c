/* strvec: see strvec.h */
#include "strvec.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

int strvec_push(struct strvec *s, const char *str)
{
	if (s->n + 2 > s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 16;
		char **nv = realloc(s->v, cap * sizeof(*nv));
		if (!nv)
			return -1;
		s->v = nv;
		s->cap = cap;
	}
	s->v[s->n] = strdup(str);
	if (!s->v[s->n])
		return -1;
	s->v[++s->n] = NULL;
	return 0;
}

int strvec_pushv(struct strvec *s, ...)
{
	va_list ap;
	const char *str;
	int rc = 0;

	va_start(ap, s);
	while (rc == 0 && (str = va_arg(ap, const char *)) != NULL)
		rc = strvec_push(s, str);
	va_end(ap);
	return rc;
}

int strvec_replace_last(struct strvec *s, const char *str)
{
	char *c;

	if (s->n == 0 || !(c = strdup(str)))
		return -1;
	free(s->v[s->n - 1]);
	s->v[s->n - 1] = c;
	return 0;
}

void strvec_free(struct strvec *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->v[i]);
	free(s->v);
	memset(s, 0, sizeof(*s));
}
