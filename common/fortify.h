/* _FORTIFY_SOURCE for musl builds (force-included by the Makefile; glibc has its own). musl
 * ships none, so this does what glibc's headers do: each call of a checked function, where the
 * compiler knows the size of the destination object, goes through GCC's __builtin___*_chk, which
 * is checked at compile time when the length is constant and otherwise calls the __*_chk function
 * of common/fortify.c, which aborts on overflow ("*** buffer overflow detected ***"). Level 2
 * sizes strings by their enclosing member (__builtin_object_size type 1), as glibc does.
 * The wrappers are gnu_inline: never emitted, each call is inlined, and a call the compiler
 * cannot size stays a plain call. */
#ifndef CNI_FORTIFY_H
#define CNI_FORTIFY_H

#if defined(_FORTIFY_SOURCE) && _FORTIFY_SOURCE > 0 && defined(__OPTIMIZE__) && defined(__GNUC__) && \
	!defined(CNI_FORTIFY_IMPL) && !defined(__clang__)
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CNI_FORTIFY_FN extern __inline__ __attribute__((__always_inline__, __gnu_inline__, __artificial__))
#define CNI_BOS0(p) __builtin_object_size((p), 0)
#define CNI_BOS(p) __builtin_object_size((p), _FORTIFY_SOURCE > 1)
#define CNI_FLAG (_FORTIFY_SOURCE > 1)

void __chk_fail(void) __attribute__((__noreturn__));

CNI_FORTIFY_FN void *memcpy(void *__restrict d, const void *__restrict s, size_t n)
{
	return __builtin___memcpy_chk(d, s, n, CNI_BOS0(d));
}
CNI_FORTIFY_FN void *memmove(void *d, const void *s, size_t n)
{
	return __builtin___memmove_chk(d, s, n, CNI_BOS0(d));
}
CNI_FORTIFY_FN void *memset(void *d, int c, size_t n)
{
	return __builtin___memset_chk(d, c, n, CNI_BOS0(d));
}
CNI_FORTIFY_FN char *strcpy(char *__restrict d, const char *__restrict s)
{
	return __builtin___strcpy_chk(d, s, CNI_BOS(d));
}
CNI_FORTIFY_FN char *stpcpy(char *__restrict d, const char *__restrict s)
{
	return __builtin___stpcpy_chk(d, s, CNI_BOS(d));
}
CNI_FORTIFY_FN char *strncpy(char *__restrict d, const char *__restrict s, size_t n)
{
	return __builtin___strncpy_chk(d, s, n, CNI_BOS(d));
}
CNI_FORTIFY_FN char *strcat(char *__restrict d, const char *__restrict s)
{
	return __builtin___strcat_chk(d, s, CNI_BOS(d));
}
CNI_FORTIFY_FN char *strncat(char *__restrict d, const char *__restrict s, size_t n)
{
	return __builtin___strncat_chk(d, s, n, CNI_BOS(d));
}
CNI_FORTIFY_FN int sprintf(char *__restrict s, const char *__restrict fmt, ...)
{
	return __builtin___sprintf_chk(s, CNI_FLAG, CNI_BOS(s), fmt, __builtin_va_arg_pack());
}
CNI_FORTIFY_FN int snprintf(char *__restrict s, size_t n, const char *__restrict fmt, ...)
{
	return __builtin___snprintf_chk(s, n, CNI_FLAG, CNI_BOS(s), fmt, __builtin_va_arg_pack());
}
CNI_FORTIFY_FN int vsprintf(char *__restrict s, const char *__restrict fmt, va_list ap)
{
	return __builtin___vsprintf_chk(s, CNI_FLAG, CNI_BOS(s), fmt, ap);
}
CNI_FORTIFY_FN int vsnprintf(char *__restrict s, size_t n, const char *__restrict fmt, va_list ap)
{
	return __builtin___vsnprintf_chk(s, n, CNI_FLAG, CNI_BOS(s), fmt, ap);
}

/* Reads into a buffer: the length must fit the destination (glibc's __read_chk and kin). The
 * libc function is reached through an alias of the same symbol. */
#define CNI_FORTIFY_READ(ret, name, params, args, buf, len)               \
	ret __cni_real_##name params __asm__(#name);                      \
	CNI_FORTIFY_FN ret name params                                    \
	{                                                                 \
		if (CNI_BOS0(buf) != (size_t)-1 && (len) > CNI_BOS0(buf)) \
			__chk_fail();                                     \
		return __cni_real_##name args;                            \
	}
CNI_FORTIFY_READ(ssize_t, read, (int fd, void *buf, size_t n), (fd, buf, n), buf, n)
CNI_FORTIFY_READ(ssize_t, pread, (int fd, void *buf, size_t n, off_t off), (fd, buf, n, off), buf, n)
CNI_FORTIFY_READ(ssize_t, recv, (int fd, void *buf, size_t n, int fl), (fd, buf, n, fl), buf, n)
CNI_FORTIFY_READ(ssize_t, recvfrom,
		 (int fd, void *__restrict buf, size_t n, int fl, struct sockaddr *__restrict a, socklen_t *__restrict al),
		 (fd, buf, n, fl, a, al), buf, n)
CNI_FORTIFY_READ(ssize_t, readlink, (const char *__restrict p, char *__restrict buf, size_t n), (p, buf, n), buf, n)
CNI_FORTIFY_READ(ssize_t, readlinkat, (int dfd, const char *__restrict p, char *__restrict buf, size_t n), (dfd, p, buf, n), buf,
		 n)
CNI_FORTIFY_READ(char *, getcwd, (char *buf, size_t n), (buf, n), buf, n)
CNI_FORTIFY_READ(char *, fgets, (char *__restrict buf, int n, FILE *__restrict f), (buf, n, f), buf, (size_t)n)
#undef CNI_FORTIFY_READ

#endif
#endif
