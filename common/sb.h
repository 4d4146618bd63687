/* A growing string: nft command text, JSON bytes, joined messages. An allocation failure is
 * remembered (oom, sticky) and reported once, at the end, by the caller. The text is kept
 * NUL-terminated once anything was added. */
#ifndef CNI_SB_H
#define CNI_SB_H

#include <stdbool.h>
#include <stddef.h>

struct sb {
	char *s;
	size_t n, cap;
	bool oom;
};

/* printf-style text at the end */
void sb_add(struct sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* n bytes at the end (any bytes; with n 0 it still makes s an empty string) */
void sb_put(struct sb *b, const void *s, size_t n);
void sb_puts(struct sb *b, const char *s);
/* Hand over the NUL-terminated bytes (their length into *len when len): NULL after an
 * allocation failure. b is emptied either way. */
char *sb_take(struct sb *b, size_t *len);
void sb_free(struct sb *b);

#endif
