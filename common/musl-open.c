/* open() for the static (musl) binaries. musl's open() follows every open with O_CLOEXEC by an
 * fcntl(F_SETFD, FD_CLOEXEC), for kernels older than 2.6.23 that ignored the flag: one system
 * call more per open, several per ADD, each some microseconds on a virtual machine. Every kernel
 * this suite runs on honours O_CLOEXEC (it needs far newer ones: close_range, veth peers in a
 * netns), so open is openat from the working directory, as the kernel's own open is. Linked into
 * the musl builds only (glibc's open makes no such call). */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/types.h>

int open(const char *path, int flags, ...)
{
	mode_t mode = 0;
	/* O_TMPFILE holds O_DIRECTORY's bit: a mode comes with the whole of it, not with O_DIRECTORY */
	if ((flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE) {
		va_list ap;
		va_start(ap, flags);
		mode = va_arg(ap, mode_t);
		va_end(ap);
	}
	return openat(AT_FDCWD, path, flags, mode);
}
