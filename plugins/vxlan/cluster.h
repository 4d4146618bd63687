/* vxlan cluster mode (docs/cluster.md): the VTEP's parameters, the node's block and gateway come
 * from the state file cni-c-agent writes; the config is completed from it before it is used. */
#ifndef VXLAN_CLUSTER_H
#define VXLAN_CLUSTER_H

#include <net/if.h>

#include "ip.h"
#include "skel.h"

struct vx_cluster {
	const char *net; /* "cluster": NULL in static mode */
	const char *dir, *persist_dir;
	bool have_state; /* DEL, GC and STATUS also run without one */
	struct ipnet subnet, block;
	struct ip gw, local;
	long long vni, port, mtu; /* mtu 0: not in the state */
	char underlay[IFNAMSIZ];
};

/* 1: cluster mode, k filled in and c->conf completed (ipam, isGateway, mtu, and the VTEP fields
 * for the static code path); 0: no "cluster"; -1: error in e. */
int vx_cluster_parse(struct cni_ctx *c, struct vx_cluster *k, struct cni_error *e);
/* The error of a verb that needs the state file (ADD, CHECK: code 11; STATUS: code 50). */
int vx_cluster_no_state(const struct vx_cluster *k, int code, struct cni_error *e);

#endif
