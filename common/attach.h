/* A container joined to a Linux bridge by a veth pair: the steps bridge, vlan (bridged mode)
 * and vxlan share. The plugin makes sure its bridge (and lower device) exist; these do the
 * rest: veth into CNI_NETNS, port settings, IPAM, addresses and routes in the container,
 * gateway on the bridge, SNAT, and their undo, CHECK, DEL, GC and STATUS. */
#ifndef CNI_ATTACH_H
#define CNI_ATTACH_H

#include <stdbool.h>
#include <stdint.h>

#include "masq.h"
#include "nl.h"
#include "result.h"
#include "skel.h"
#include "undo.h"

#define ATTACH_MAX_TRUNK 4094

struct attach_conf {
	const char *bridge; /* "bridge", default cni0 */
	bool is_gw, is_default_gw, force_address;
	bool ip_masq; /* SNAT for some family: */
	bool masq_v4, masq_v6; /* ipMasq true: both; "ipv4" or "ipv6": that one */
	enum masq_backend masq_backend;
	int mtu; /* 0: kernel default */
	bool hairpin, promisc, port_isolation, macspoofchk, enable_dad, disable_container_iface;
	int vlan; /* 0: none */
	uint16_t *trunk; /* vlanTrunk ids, sorted */
	size_t n_trunk;
	bool preserve_default_vlan;
	bool has_mac; /* container MAC from runtimeConfig / args / CNI_ARGS */
	uint8_t mac[6];
	bool has_ipam;
	bool has_dns; /* the config's own "dns" overrides IPAM's */
	struct cni_dns dns;
};

/* The options every bridge-joining plugin shares, under the reference bridge plugin's names:
 * bridge, isGateway, isDefaultGateway, forceAddress, ipMasq (ours also takes "ipv4" or "ipv6"),
 * ipMasqBackend, mtu, hairpinMode,
 * promiscMode, vlan, vlanTrunk, preserveDefaultVlan, macspoofchk, enabledad,
 * disableContainerInterface, portIsolation, dns; runtimeConfig.mac, args.cni.mac, CNI_ARGS MAC. */
int attach_conf_parse(const struct cni_ctx *c, struct attach_conf *a, const char *default_bridge, struct cni_error *e);
void attach_conf_free(struct attach_conf *a);
/* Does ipMasq cover this address's family? */
bool attach_masq_covers(const struct attach_conf *a, const struct ip *ip);

/* The host end's name: "veth" + 11 hex of sha512(containerID + ifname): stable across
 * retries, so DEL finds it even when the netns is gone. */
void attach_host_veth_name(const char *container_id, const char *ifname, char out[16]);

/* The container's network namespace, entered only long enough to open a netlink socket
 * there (it stays bound to that netns) and to write per-interface sysctls. */
struct attach_ns {
	int nsfd, selffd;
	struct nlsock *csk;
};
/* 0 ok, 1 the netns does not exist, -1 error (the plugin's own netns: code 8, as libcni). */
int attach_ns_prepare(struct attach_ns *n, const char *path, struct cni_error *e);
/* Open n->csk if needed and write sysctls (pairs path, value; best effort) inside the netns. */
int attach_ns_sock(struct attach_ns *n, const char *what, const char *const *sysctls, size_t n_sysctls, struct cni_error *e);
void attach_ns_close(struct attach_ns *n);

/* The container side of an ADD for any plugin: the IPAM result becomes out's ips (on result
 * interface iface_idx, gateways defaulted with isGateway) and routes (a default route per family
 * with isDefaultGateway); then sysctls, addresses, link up and routes on CNI_IFNAME. */
int attach_ctr_apply(struct cni_ctx *c, const struct attach_conf *a, struct attach_ns *ns, struct cni_result *ires, int iface_idx,
		     struct cni_result *out);

/* CHECK of the container side for any plugin: prevResult's addresses on interface iface_idx
 * are on link `index`, its routes exist (code 104 naming what differs). */
int attach_check_ctr(struct cni_ctx *c, struct attach_ns *ns, int index, int iface_idx);

/* ADD: br is the (existing, up) bridge in the host netns reached by sk. Each step that makes
 * something records its undo; a failed ADD runs them in reverse and leaves nothing of this
 * attachment behind (the caller undoes what it made itself: a bridge, a VTEP). Like a deferred
 * call, an undo list belongs to the function whose steps it records. */
int attach_add(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br,
	       struct cni_result *out);
/* DEL: idempotent; releases IPAM even when the netns is gone. */
int attach_del(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk);
/* CHECK against prevResult. */
int attach_check(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk);
/* GC: IPAM GC plus SNAT rules of attachments not valid. */
int attach_gc(struct cni_ctx *c, const struct attach_conf *a);
/* RELOAD: the SNAT and spoof check rules of prevResult's attachment, again (idempotent); nothing
 * else is looked at or changed. */
int attach_reload(struct cni_ctx *c, const struct attach_conf *a);
/* STATUS: IPAM STATUS plus the SNAT backend's availability. */
int attach_status(struct cni_ctx *c, const struct attach_conf *a);

/* Make sure the network's bridge exists and is up (create it race-safely; adopt an existing one;
 * refuse a non-bridge of that name), with VLAN filtering when the config asks for VLANs. Returns
 * its link in *br; *created tells if we made it. The shared-device side (lock, release) is shdev.h. */
int attach_ensure_bridge(struct nlsock *sk, const struct attach_conf *a, struct cnl_link *br, bool *created, struct cni_error *e);

#endif
