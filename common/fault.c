/* Fault points of test builds (see fault.h); an empty object in release builds. */
#include "fault.h"

#ifdef CNI_TESTING
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int cni_fault(const char *step, struct cni_error *e)
{
	static int n; /* the one piece of global state: a step counter for this process */
	const char *at = getenv("CNI_TEST_FAIL_AT"), *mode = getenv("CNI_TEST_FAIL_MODE");
	n++;
	if (getenv("CNI_TEST_TRACE"))
		fprintf(stderr, "cni-fault: %d %s\n", n, step);
	if (!at || atoi(at) != n)
		return 0;
	if (mode && strcmp(mode, "crash") == 0)
		_exit(99);
	return cni_errf(e, CNI_ERR_INTERNAL, "injected fault at step %d (%s)", n, step);
}
#else
typedef int cni_fault_unused;
#endif
