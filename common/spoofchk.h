/* macspoofchk: frames entering the bridge from a container's host-side veth must carry
 * the container's MAC. Table "bridge cni_c_spoof" of ours: base chain "prerouting"
 * (filter hook, priority -300) doing "iifname vmap @ports"; per attachment a chain
 * "s-<16 hex>" (sha512 of "<containerID>-<ifname>") with "ether saddr <mac> return" then
 * "drop", and one map element host-veth-name → jump to it. */
#ifndef CNI_SPOOFCHK_H
#define CNI_SPOOFCHK_H

#include "err.h"

int spoofchk_add(const char *container_id, const char *ifname, const char *host_veth, const char *mac, struct cni_error *e);
/* Absent is success; needs neither the veth name nor the MAC. */
int spoofchk_del(const char *container_id, const char *ifname, struct cni_error *e);
int spoofchk_check(const char *container_id, const char *ifname, const char *host_veth, const char *mac, struct cni_error *e);

#endif
