/* rtnetlink over our own netlink code (nlmsg.h): one request per kernel step (no cache fills), errors carry
 * the kernel's errno and name the object. A socket is bound to the netns it was opened in. */
#ifndef CNI_NL_H
#define CNI_NL_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "err.h"
#include "ip.h"
#include "result.h"

struct nlsock;

struct cnl_link {
	int index;
	char name[16];
	char kind[16]; /* "bridge", "veth", "vxlan", "vlan", "" */
	int master; /* ifindex of the master (bridge), 0 */
	unsigned flags; /* IFF_* */
	int mtu;
	uint8_t mac[6];
	bool has_mac;
	int link; /* IFLA_LINK: a veth's peer index, a vlan's parent */
	int link_netnsid; /* -1 when the peer/parent is in this netns */
	uint8_t operstate;
	char alias[256];
	bool promisc;
	/* vlan */
	int vlan_id;
	/* vxlan */
	uint32_t vni;
	uint16_t port;
	struct ip local, group;
	int vx_link;
	bool learning;
	/* bridge */
	bool vlan_filtering;
	/* tun (kind "tun"): IFF_TUN or IFF_TAP, the flags, owner and group (-1: none) */
	int tun_type;
	bool tun_pi, tun_vnet_hdr, tun_persist, tun_multi_queue;
	long long tun_owner, tun_group;
};

int cnl_open(struct nlsock **sk, struct cni_error *e);
void cnl_close(struct nlsock *sk);

/* By name (index 0) or index: 1 found, 0 absent, -1 error. */
int cnl_link_get(struct nlsock *sk, const char *name, int index, struct cnl_link *out, struct cni_error *e);
/* Every link (optionally only the ports of master `master`); cb returns <0 to stop. */
int cnl_link_dump(struct nlsock *sk, int master, int (*cb)(const struct cnl_link *l, void *arg), void *arg, struct cni_error *e);

/* Create a bridge; 1 created, 0 a link of that name already existed (caller checks kind),
 * -errno with e filled (so callers can tell EOPNOTSUPP: no VLAN filtering in this kernel). */
int cnl_bridge_create(struct nlsock *sk, const char *name, int mtu, const uint8_t mac[6], bool vlan_filtering,
		      struct cni_error *e);
int cnl_bridge_set_vlan_filtering(struct nlsock *sk, int index, bool on, struct cni_error *e);

struct cnl_veth {
	const char *name; /* host end */
	const uint8_t *mac; /* NULL: kernel's */
	int mtu; /* 0: default */
	int master; /* bridge ifindex, 0 none */
	const char *alias; /* IFLA_IFALIAS of the host end, NULL none */
	bool up;
	const char *peer_name;
	const uint8_t *peer_mac;
	int peer_netns_fd; /* -1: same netns */
	bool peer_up;
};
/* -EEXIST (with e filled) when a name is taken, so callers can tell which side. */
int cnl_veth_create(struct nlsock *sk, const struct cnl_veth *v, struct cni_error *e);

/* Generic link changes. flags/mask as in ifinfomsg; mtu 0, mac NULL and master -1 leave
 * those (master 0 releases the link from its master). */
int cnl_link_modify(struct nlsock *sk, int index, unsigned flags, unsigned mask, int mtu, const uint8_t *mac, int master,
		    struct cni_error *e);
/* One IPv4 setting of a link (IPV4_DEVCONF_*, as under /proc/sys/net/ipv4/conf/<link>/) over
 * netlink, in the socket's namespace: no /proc lookup and no trip into the namespace. */
int cnl_link_set_ipv4_conf(struct nlsock *sk, int index, int id, uint32_t value, struct cni_error *e);
/* The namespace's forwarding switch for a family (AF_INET: net.ipv4.ip_forward; AF_INET6:
 * net.ipv6.conf.all.forwarding), read over netlink (RTM_GETNETCONF): 1 or 0, -1 when the
 * kernel does not say (read /proc/sys then). */
int cnl_forwarding(struct nlsock *sk, int family);
/* IFLA_IFALIAS: the mark of a device we created and may remove. */
int cnl_link_set_alias(struct nlsock *sk, int index, const char *alias, struct cni_error *e);
/* 0 deleted, 1 absent. */
int cnl_link_del(struct nlsock *sk, int index, const char *name, struct cni_error *e);

/* Bridge port flags: -1 leaves a flag alone. */
int cnl_brport_set(struct nlsock *sk, int index, int hairpin, int isolated, struct cni_error *e);
/* Bridge VLAN on a port (or the bridge itself with self=true). */
int cnl_bridge_vlan(struct nlsock *sk, int index, bool add, uint16_t vid, uint16_t vid_end, bool pvid, bool untagged, bool self,
		    struct cni_error *e);
/* The VLANs of a port: vids[] (up to max), pvid out. */
int cnl_bridge_vlan_list(struct nlsock *sk, int index, uint16_t *vids, size_t max, size_t *n, int *pvid, struct cni_error *e);

struct cnl_addr_info {
	struct ipnet addr;
	unsigned flags; /* IFA_F_* */
	int scope;
};
/* Add an address (EEXIST is success). nodad: IFA_F_NODAD for IPv6. */
int cnl_addr_add(struct nlsock *sk, int index, const struct ipnet *a, bool nodad, struct cni_error *e);
int cnl_addr_del(struct nlsock *sk, int index, const struct ipnet *a, struct cni_error *e);
/* family AF_INET/AF_INET6/0; caller frees *out. */
int cnl_addr_list(struct nlsock *sk, int index, int family, struct cnl_addr_info **out, size_t *n, struct cni_error *e);

/* Route via an interface; gw may be unset (link scope). EEXIST is success. */
int cnl_route_add(struct nlsock *sk, int index, const struct cni_route *r, const struct ip *gw, struct cni_error *e);
/* Is there a route to dst (exact prefix) via gw (if set) in table (0: main)? 1/0/-1. */
int cnl_route_exists(struct nlsock *sk, const struct cni_route *r, const struct ip *gw, struct cni_error *e);

struct cnl_vxlan {
	const char *name;
	uint32_t vni;
	uint16_t port;
	struct ip local; /* len 0: none */
	struct ip group; /* multicast group, len 0: none */
	int link; /* underlay ifindex, 0: none */
	bool learning;
	int mtu;
};
/* Create a VXLAN device (up). 1 created, 0 the name exists, -errno with e filled. */
int cnl_vxlan_create(struct nlsock *sk, const struct cnl_vxlan *v, struct cni_error *e);

/* An 802.1Q sub-interface of `parent` (down unless up), created in netns_fd (-1: here).
 * 0 created, -errno with e filled (EOPNOTSUPP: no 8021q in this kernel; EEXIST: the name, or
 * that VLAN ID on that parent, is taken). */
int cnl_vlan_create(struct nlsock *sk, const char *name, int parent, uint16_t vid, int mtu, const uint8_t *mac, int netns_fd,
		    bool up, struct cni_error *e);
/* Rename a (down) link. -EEXIST when the name is taken. */
int cnl_link_rename(struct nlsock *sk, int index, const char *name, struct cni_error *e);

/* The output interface of the main table's default route of a family (4 or 16), lowest metric. */
int cnl_default_route_oif(struct nlsock *sk, int family_len, int *oif, struct cni_error *e);

/* The output interface of the route the kernel picks for dst (RTM_GETROUTE). */
int cnl_route_get_oif(struct nlsock *sk, const struct ip *dst, int *oif, struct cni_error *e);

/* Remote destinations of the all-zero-MAC FDB entries of a VXLAN device (head-end replication
 * list); caller frees *out. */
int cnl_fdb_zero_dsts(struct nlsock *sk, int index, struct ip **out, size_t *n, struct cni_error *e);

/* Every FDB entry with a remote destination of a VXLAN device (NTF_SELF: zero, static and
 * learned alike); caller frees *out. */
struct cnl_fdb_entry {
	uint8_t mac[6];
	struct ip dst;
	uint16_t state; /* NUD_*: NUD_PERMANENT for static entries, NUD_REACHABLE/STALE learned */
};
int cnl_fdb_list(struct nlsock *sk, int index, struct cnl_fdb_entry **out, size_t *n, struct cni_error *e);
/* A permanent per-MAC entry mac → dst, replacing one of that MAC (NLM_F_REPLACE). */
int cnl_fdb_set(struct nlsock *sk, int index, const uint8_t mac[6], const struct ip *dst, struct cni_error *e);

/* Forwarding database entry (vxlan): mac (NULL = all-zero) → dst on device index. */
int cnl_fdb(struct nlsock *sk, bool add, int index, const uint8_t *mac, const struct ip *dst, struct cni_error *e);

/* "aa:bb:cc:dd:ee:ff" */
int cnl_mac_parse(const char *s, uint8_t mac[6]);
const char *cnl_mac_fmt(const uint8_t mac[6], char buf[18]);
/* n random locally administered unicast MACs, one after another (6 bytes each). */
void cnl_mac_random(uint8_t *macs, size_t n);

#endif
