/* Network namespaces: open one by path (checked to be a netns), enter it, compare two. */
#ifndef CNI_NETNS_H
#define CNI_NETNS_H

#include <stdbool.h>

#include "err.h"

/* 0 = opened, 1 = the path does not exist, -1 = error (code 4 naming CNI_NETNS when the
 * path is not a network namespace). */
int netns_open(const char *path, int *fd, struct cni_error *e);
/* The calling thread's current network namespace. */
int netns_current(int *fd, struct cni_error *e);
int netns_enter(int fd, const char *what, struct cni_error *e);
bool netns_same(int a, int b);

#endif
