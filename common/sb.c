/* The one string builder of the suite (see sb.h). */
#include "sb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Room for `more` bytes and a NUL after what b holds; false (b->oom) when there is none. */
static bool room(struct sb *b, size_t more)
{
	if (b->oom)
		return false;
	if (b->n + more + 1 <= b->cap)
		return true;
	size_t cap = b->cap ? b->cap : 256;
	while (cap < b->n + more + 1)
		cap *= 2;
	char *s = realloc(b->s, cap);
	if (!s) {
		b->oom = true;
		return false;
	}
	b->s = s;
	b->cap = cap;
	return true;
}

void sb_add(struct sb *b, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (b->oom)
		return;
	for (;;) {
		size_t left = b->cap - b->n;
		va_start(ap, fmt);
		w = vsnprintf(b->s ? b->s + b->n : NULL, left, fmt, ap);
		va_end(ap);
		if (w < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)w < left) {
			b->n += (size_t)w;
			return;
		}
		if (!room(b, (size_t)w))
			return;
	}
}

void sb_put(struct sb *b, const void *s, size_t n)
{
	if (!room(b, n))
		return;
	memcpy(b->s + b->n, s, n);
	b->n += n;
	b->s[b->n] = '\0';
}

void sb_puts(struct sb *b, const char *s)
{
	sb_put(b, s, strlen(s));
}

char *sb_take(struct sb *b, size_t *len)
{
	char *s;
	sb_put(b, "", 0);
	if (b->oom) {
		sb_free(b);
		return NULL;
	}
	s = b->s;
	if (len)
		*len = b->n;
	memset(b, 0, sizeof(*b));
	return s;
}

void sb_free(struct sb *b)
{
	free(b->s);
	memset(b, 0, sizeof(*b));
}
