/* macspoofchk: frames entering the bridge from a container's host-side veth must carry
 * the container's MAC. Table "bridge cni_c_spoof" of ours: base chain "prerouting"
 * (filter hook, priority -300) doing "iifname vmap @ports"; per attachment a chain
 * "s-<16 hex>" (sha512 of "<containerID>-<ifname>") with "ether saddr <mac> return" then
 * "drop", and one map element host-veth-name → jump to it. */
#ifndef CNI_SPOOFCHK_H
#define CNI_SPOOFCHK_H

#include <stddef.h>

#include "err.h"
#include "skel.h"

int spoofchk_add(const char *container_id, const char *ifname, const char *host_veth, const char *mac, struct cni_error *e);
/* Absent is success; needs neither the veth name nor the MAC. */
int spoofchk_del(const char *container_id, const char *ifname, struct cni_error *e);
/* GC: the chains of attachments not in `valid` whose host veth is gone (the one named by the
 * chain's drop rule, or by a map element leading to it): they guard nothing any more. A chain
 * whose veth still exists stays, whatever network it is of: the chain names carry no network. */
int spoofchk_gc(const struct cni_attachment *valid, size_t n_valid, struct cni_error *e);
int spoofchk_check(const char *container_id, const char *ifname, const char *host_veth, const char *mac, struct cni_error *e);

#endif
