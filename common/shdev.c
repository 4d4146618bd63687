/* See shdev.h. */
#include "shdev.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

int shdev_lock(const char *kind, const char *name, int how, struct cni_error *e)
{
	char path[96];
	int fd;
	snprintf(path, sizeof(path), "/run/cni-c/%s-%s.lock", kind, name);
	/* the directory exists on every call but the first after a boot */
	if ((fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0 && errno == ENOENT &&
	    (mkdir("/run/cni-c", 0755) == 0 || errno == EEXIST))
		fd = open(path, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cni_errf(e, CNI_ERR_IO, "opening %s: %s", path, cni_strerror(errno));
	while (flock(fd, how) < 0)
		if (errno != EINTR) {
			close(fd);
			return cni_errf(e, CNI_ERR_IO, "locking %s: %s", path, cni_strerror(errno));
		}
	return fd;
}

int shdev_enslave(struct nlsock *sk, const struct cnl_link *dev, const struct cnl_link *br, const char *what, struct cni_error *e)
{
	if (dev->master == br->index && (dev->flags & IFF_UP))
		return 0;
	if (dev->master && dev->master != br->index)
		return cni_errf(e, CNI_ERR_EXISTS, "%s is a port of another master (ifindex %d), not %s", what, dev->master,
				br->name);
	return cnl_link_modify(sk, dev->index, IFF_UP, IFF_UP, 0, NULL, br->index, e);
}

static int count_port(const struct cnl_link *l, void *arg)
{
	(void)l;
	(*(int *)arg)++;
	return 0;
}

int shdev_release(struct nlsock *sk, const struct cnl_link *br, const struct cnl_link *dev, bool br_removable,
		  struct cni_error *e)
{
	int ports = 0;
	if (br && cnl_link_dump(sk, br->index, count_port, &ports, e) < 0)
		return -1;
	if (ports - (dev && br && dev->master == br->index ? 1 : 0) > 0)
		return 0;
	if (dev && cnl_link_del(sk, dev->index, dev->name, e) < 0)
		return -1;
	return br && br_removable && cnl_link_del(sk, br->index, br->name, e) < 0 ? -1 : 0;
}

int shdev_release_bridge(struct nlsock *sk, const struct cnl_link *br, const struct cnl_link *keep, struct cni_error *e)
{
	int ports = 0;
	if (cnl_link_dump(sk, br->index, count_port, &ports, e) < 0)
		return -1;
	if (ports - (keep && keep->master == br->index ? 1 : 0) > 0)
		return 0;
	return cnl_link_del(sk, br->index, br->name, e) < 0 ? -1 : 1;
}
