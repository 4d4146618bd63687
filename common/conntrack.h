/* Conntrack entries, over ctnetlink. */
#ifndef CNI_CONNTRACK_H
#define CNI_CONNTRACK_H

#include <stdint.h>

#include "err.h"
#include "ip.h"

/* Delete the entries of this netns whose original tuple has this L4 protocol and destination
 * port (family AF_INET or AF_INET6): what a stale UDP "connection" to a host port is. 0 (with
 * *removed counted) also when conntrack is not loaded; -1 on a kernel error. */
int ct_flush_dport(int family, uint8_t proto, uint16_t port, int *removed, struct cni_error *e);

/* Delete the entries whose original or reply tuple has address a as source or destination: the
 * flows a changed 1:1 NAT (floating IP) of a makes stale. 0 (*removed counted) also when
 * conntrack is not loaded; -1 on a kernel error. */
int ct_flush_addr(const struct ip *a, int *removed, struct cni_error *e);

#endif
