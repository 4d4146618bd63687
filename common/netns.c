/* Network namespace handles: a netns is an nsfs file; setns(2) moves this (single) thread. */
#include "netns.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>
#include <linux/magic.h>
#include <linux/nsfs.h>

int netns_open(const char *path, int *fd, struct cni_error *e)
{
	struct statfs sf;
	/* O_NONBLOCK: a FIFO or device at that path must not hang us before the check below */
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (*fd < 0) {
		if (errno == ENOENT)
			return 1;
		return cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_NETNS \"%s\": %s", path, cni_strerror(errno));
	}
	if (fstatfs(*fd, &sf) < 0 || sf.f_type != NSFS_MAGIC || ioctl(*fd, NS_GET_NSTYPE) != CLONE_NEWNET) {
		close(*fd);
		*fd = -1;
		return cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_NETNS \"%s\" is not a network namespace", path);
	}
	return 0;
}

int netns_current(int *fd, struct cni_error *e)
{
	*fd = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "opening our own network namespace: %s", cni_strerror(errno));
	return 0;
}

int netns_enter(int fd, const char *what, struct cni_error *e)
{
	if (setns(fd, CLONE_NEWNET) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "entering network namespace %s: %s", what, cni_strerror(errno));
	return 0;
}

bool netns_same(int a, int b)
{
	struct stat x, y;
	return fstat(a, &x) == 0 && fstat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}
