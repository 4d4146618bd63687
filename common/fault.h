/* Fault injection for test builds only (-DCNI_TESTING; compiled out of release builds):
 *   CNI_TEST_FAIL_AT=N      the Nth fault point reached fails (or crashes)
 *   CNI_TEST_FAIL_MODE=crash   _exit(99) there instead of failing: a plugin killed mid-ADD
 *   CNI_TEST_TRACE=1        name every fault point reached on stderr ("cni-fault: N name")
 * so a test can walk N over every step of an ADD and check what is left behind. */
#ifndef CNI_FAULT_H
#define CNI_FAULT_H

#include "err.h"

#ifdef CNI_TESTING
int cni_fault(const char *step, struct cni_error *e);
#define FAULT(e, step) cni_fault(step, e)
#else
#define FAULT(e, step) 0
#endif

#endif
