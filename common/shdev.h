/* Devices a network's attachments share on the host: its bridge, and the device that carries the
 * bridge off the node (vlan's sub-interface, vxlan's VTEP). One lock per network serialises
 * making and removing them (shared while an ADD uses them, exclusive to remove); a device is
 * enslaved to the bridge, and both go once no container port is left. bridge, vlan's bridged
 * mode and vxlan all use this (the bridge itself is made by attach_ensure_bridge). */
#ifndef CNI_SHDEV_H
#define CNI_SHDEV_H

#include <stdbool.h>

#include "err.h"
#include "nl.h"

/* The lock of shared device `kind`/`name` (/run/cni-c/<kind>-<name>.lock): an ADD that may use
 * the device holds it LOCK_SH; whoever removes the device once nothing uses it holds it LOCK_EX,
 * so no port is added between the count and the removal. Its fd (close to release), or -1. */
int shdev_lock(const char *kind, const char *name, int how, struct cni_error *e);
/* dev a port of bridge br and up: enslaved when it is a port of none, refused (code 9) when it is
 * another master's. `what` names dev in the error ("vxlan: VTEP vxlan42"). */
int shdev_enslave(struct nlsock *sk, const struct cnl_link *dev, const struct cnl_link *br, const char *what,
		  struct cni_error *e);
/* Remove dev (ours, or NULL) and then the bridge br (NULL: none; only when br_removable) once br
 * has no port left but dev: the last attachment is gone. Call it under the exclusive lock. */
int shdev_release(struct nlsock *sk, const struct cnl_link *br, const struct cnl_link *dev, bool br_removable,
		  struct cni_error *e);
/* Remove bridge br once no port is left but `keep` (a host interface that stays, bridge's uplink;
 * NULL: none): 1 removed, 0 still in use. Under the exclusive lock. */
int shdev_release_bridge(struct nlsock *sk, const struct cnl_link *br, const struct cnl_link *keep, struct cni_error *e);

#endif
