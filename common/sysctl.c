/* /proc/sys access. Note: /proc/sys/net reflects the netns of the thread that opens it. */
#include "sysctl.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int sysctl_get(const char *path, char *buf, size_t n)
{
	char full[256];
	ssize_t r;
	int fd;
	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	if ((fd = open(full, O_RDONLY | O_CLOEXEC)) < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r < 0)
		return -1;
	while (r > 0 && (buf[r - 1] == '\n' || buf[r - 1] == ' '))
		r--;
	buf[r] = '\0';
	return 0;
}

int sysctl_set(const char *path, const char *val, struct cni_error *e)
{
	char full[256], cur[64];
	size_t len = strlen(val);
	int fd;
	snprintf(full, sizeof(full), "/proc/sys/%s", path);
	if ((fd = open(full, O_RDWR | O_CLOEXEC)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "sysctl %s: %s", path, cni_strerror(errno));
	ssize_t r = read(fd, cur, sizeof(cur) - 1);
	if (r > 0) {
		while (r > 0 && cur[r - 1] == '\n')
			r--;
		cur[r] = '\0';
		if (strcmp(cur, val) == 0) {
			close(fd);
			return 0;
		}
	}
	if (pwrite(fd, val, len, 0) != (ssize_t)len) {
		int se = errno;
		close(fd);
		return cni_errf(e, CNI_ERR_KERNEL, "sysctl %s=%s: %s", path, val, cni_strerror(se));
	}
	close(fd);
	return 0;
}
