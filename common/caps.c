/* Least privilege: after parsing, a plugin keeps only what its verb needs. capget/capset
 * directly (what libcap wraps): no library, and no probing of the bounding set at start-up. */
#include "caps.h"

#include <errno.h>
#include <linux/capability.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int cni_caps_limit(const int *keep, struct cni_error *e)
{
	struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3, .pid = 0 };
	struct __user_cap_data_struct cur[_LINUX_CAPABILITY_U32S_3], want[_LINUX_CAPABILITY_U32S_3];

	memset(cur, 0, sizeof(cur));
	memset(want, 0, sizeof(want));
	if (syscall(SYS_capget, &h, cur) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "capabilities: %s", strerror(errno));
	for (const int *k = keep; k && *k >= 0; k++) {
		unsigned i = (unsigned)*k / 32, bit = 1u << ((unsigned)*k % 32);
		if (i >= _LINUX_CAPABILITY_U32S_3 || !(cur[i].permitted & bit))
			continue; /* never had it */
		want[i].permitted |= bit;
		want[i].effective |= bit;
	}
	/* the inheritable set is cleared as well, as cap_init() + cap_set_proc() did */
	if (syscall(SYS_capset, &h, want) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "capabilities: dropping: %s", strerror(errno));
	return 0;
}
