/* Least privilege with libcap: after parsing, a plugin keeps only what its verb needs. */
#include "caps.h"

#include <errno.h>
#include <string.h>
#include <sys/capability.h>

int cni_caps_limit(const int *keep, struct cni_error *e)
{
	cap_t cur = cap_get_proc(), want = cap_init();
	int rc = 0;

	if (!cur || !want) {
		rc = cni_errf(e, CNI_ERR_INTERNAL, "capabilities: %s", strerror(errno));
		goto out;
	}
	for (const int *k = keep; k && *k >= 0; k++) {
		cap_flag_value_t have = CAP_CLEAR;
		cap_value_t v = *k;
		if (cap_get_flag(cur, v, CAP_PERMITTED, &have) < 0 || have != CAP_SET)
			continue;
		cap_set_flag(want, CAP_PERMITTED, 1, &v, CAP_SET);
		cap_set_flag(want, CAP_EFFECTIVE, 1, &v, CAP_SET);
	}
	if (cap_set_proc(want) < 0)
		rc = cni_errf(e, CNI_ERR_INTERNAL, "capabilities: dropping: %s", strerror(errno));
out:
	if (cur)
		cap_free(cur);
	if (want)
		cap_free(want);
	return rc;
}
