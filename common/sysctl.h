/* sysctl values under /proc/sys, written only when they differ (a write can be costly:
 * ip_forward resets interface settings, and every write is a syscall on the hot path). */
#ifndef CNI_SYSCTL_H
#define CNI_SYSCTL_H

#include <stddef.h>

#include "err.h"

/* path relative to /proc/sys, e.g. "net/ipv4/ip_forward". Reads into buf (trimmed). */
int sysctl_get(const char *path, char *buf, size_t n);
/* Write val unless the current value already equals it. */
int sysctl_set(const char *path, const char *val, struct cni_error *e);

#endif
