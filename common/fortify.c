/* The run-time half of common/fortify.h (musl builds only): the __*_chk functions that GCC's
 * __builtin___*_chk call when a length is known only at run time. Each checks the length against
 * the destination's size and aborts on overflow, as glibc's do. */
/* built with -DCNI_FORTIFY_IMPL (Makefile): the force-included wrappers stay out of this file */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void __chk_fail(void) __attribute__((__noreturn__));

void __chk_fail(void)
{
	static const char msg[] = "*** buffer overflow detected ***: terminated\n";
	ssize_t w = write(2, msg, sizeof(msg) - 1);
	(void)w;
	abort();
}

#define CHK(cond)                     \
	do {                          \
		if (cond)             \
			__chk_fail(); \
	} while (0)

void *__memcpy_chk(void *d, const void *s, size_t n, size_t dlen);
void *__memcpy_chk(void *d, const void *s, size_t n, size_t dlen)
{
	CHK(n > dlen);
	return memcpy(d, s, n);
}

void *__memmove_chk(void *d, const void *s, size_t n, size_t dlen);
void *__memmove_chk(void *d, const void *s, size_t n, size_t dlen)
{
	CHK(n > dlen);
	return memmove(d, s, n);
}

void *__mempcpy_chk(void *d, const void *s, size_t n, size_t dlen);
void *__mempcpy_chk(void *d, const void *s, size_t n, size_t dlen)
{
	CHK(n > dlen);
	return (char *)memcpy(d, s, n) + n;
}

void *__memset_chk(void *d, int c, size_t n, size_t dlen);
void *__memset_chk(void *d, int c, size_t n, size_t dlen)
{
	CHK(n > dlen);
	return memset(d, c, n);
}

char *__strcpy_chk(char *d, const char *s, size_t dlen);
char *__strcpy_chk(char *d, const char *s, size_t dlen)
{
	size_t n = strlen(s);
	CHK(n >= dlen);
	return memcpy(d, s, n + 1);
}

char *__stpcpy_chk(char *d, const char *s, size_t dlen);
char *__stpcpy_chk(char *d, const char *s, size_t dlen)
{
	size_t n = strlen(s);
	CHK(n >= dlen);
	memcpy(d, s, n + 1);
	return d + n;
}

char *__strncpy_chk(char *d, const char *s, size_t n, size_t dlen);
char *__strncpy_chk(char *d, const char *s, size_t n, size_t dlen)
{
	CHK(n > dlen);
	return strncpy(d, s, n);
}

char *__strcat_chk(char *d, const char *s, size_t dlen);
char *__strcat_chk(char *d, const char *s, size_t dlen)
{
	size_t dl = strlen(d), sl = strlen(s);
	CHK(dl >= dlen || sl >= dlen - dl);
	memcpy(d + dl, s, sl + 1);
	return d;
}

char *__strncat_chk(char *d, const char *s, size_t n, size_t dlen);
char *__strncat_chk(char *d, const char *s, size_t n, size_t dlen)
{
	size_t dl = strlen(d), sl = strnlen(s, n);
	CHK(dl >= dlen || sl >= dlen - dl);
	memcpy(d + dl, s, sl);
	d[dl + sl] = '\0';
	return d;
}

int __vsnprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap);
int __vsnprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, va_list ap)
{
	(void)flag;
	CHK(n > slen);
	return vsnprintf(s, n, fmt, ap);
}

int __snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, ...);
int __snprintf_chk(char *s, size_t n, int flag, size_t slen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = __vsnprintf_chk(s, n, flag, slen, fmt, ap);
	va_end(ap);
	return r;
}

int __vsprintf_chk(char *s, int flag, size_t slen, const char *fmt, va_list ap);
int __vsprintf_chk(char *s, int flag, size_t slen, const char *fmt, va_list ap)
{
	(void)flag;
	/* (size_t)-1: the compiler does not know the object's size */
	if (slen == (size_t)-1)
		return vsprintf(s, fmt, ap);
	/* the whole output must fit: format into the object's size and fail when it did not */
	CHK(slen == 0 || slen > (size_t)0x7fffffff);
	int r = vsnprintf(s, slen, fmt, ap);
	CHK(r < 0 || (size_t)r >= slen);
	return r;
}

int __sprintf_chk(char *s, int flag, size_t slen, const char *fmt, ...);
int __sprintf_chk(char *s, int flag, size_t slen, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int r = __vsprintf_chk(s, flag, slen, fmt, ap);
	va_end(ap);
	return r;
}
