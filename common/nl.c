/* rtnetlink requests over our own netlink code (nlmsg.h): each kernel step is one request and
 * one reply, parsed in place; nothing fills a cache. */
#include "nl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <linux/if_addr.h>
#include <linux/if_bridge.h>
#include <linux/if_link.h>
#include <linux/ip.h>
#include <linux/neighbour.h>
#include <linux/netconf.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>

#include "nlmsg.h"

/* Send the message in w (freed here) and run `valid` on each reply message; 0 or -errno. A dump
 * interrupted by concurrent changes (NLM_F_DUMP_INTR) gives -EINTR: the callers that dump retry. */
static int request(struct nlsock *sk, struct nlbuf *w, nls_cb valid, void *arg)
{
	int rc = nls_request(sk, w, valid, arg);
	nlb_free(w);
	return rc;
}

int cnl_open(struct nlsock **out, struct cni_error *e)
{
	struct nlsock *sk = malloc(sizeof(*sk));
	int rc;
	if (!sk)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if ((rc = nls_open(sk, NETLINK_ROUTE)) < 0) {
		free(sk);
		if (rc == -ENOMEM)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		return cni_errf(e, CNI_ERR_KERNEL, "cannot open a netlink socket: %s", cni_strerror(-rc));
	}
	*out = sk;
	return 0;
}

void cnl_close(struct nlsock *sk)
{
	if (sk) {
		nls_close(sk);
		free(sk);
	}
}

static void link_msg(struct nlbuf *w, int type, int flags, int family, int index, unsigned ifflags, unsigned change)
{
	struct ifinfomsg ifi = {
		.ifi_family = (unsigned char)family, .ifi_index = index, .ifi_flags = ifflags, .ifi_change = change
	};
	nlb_msg(w, (uint16_t)type, (uint16_t)flags, &ifi, sizeof(ifi));
}

/* ---- links ---- */

/* IFLA_LINKINFO { IFLA_INFO_KIND kind, IFLA_INFO_DATA { ... } }: info_begin opens both nests,
 * info_end closes them. */
struct linkinfo {
	size_t li, data;
};

static struct linkinfo info_begin(struct nlbuf *w, const char *kind)
{
	struct linkinfo i;
	i.li = nlb_nest(w, IFLA_LINKINFO | NLA_F_NESTED);
	nlb_str(w, IFLA_INFO_KIND, kind);
	i.data = nlb_nest(w, IFLA_INFO_DATA | NLA_F_NESTED);
	return i;
}

static void info_end(struct nlbuf *w, struct linkinfo i)
{
	nlb_nest_end(w, i.data);
	nlb_nest_end(w, i.li);
}

static void parse_linkinfo(const struct nlattr *li, struct cnl_link *l)
{
	const struct nlattr *tb[IFLA_INFO_MAX + 1], *d[IFLA_VXLAN_MAX + 1];
	if (nla_index_nested(li, tb, IFLA_INFO_MAX) < 0 || !tb[IFLA_INFO_KIND])
		return;
	snprintf(l->kind, sizeof(l->kind), "%s", (char *)nla_payload(tb[IFLA_INFO_KIND]));
	if (!tb[IFLA_INFO_DATA])
		return;
	if (strcmp(l->kind, "vxlan") == 0 && nla_index_nested(tb[IFLA_INFO_DATA], d, IFLA_VXLAN_MAX) == 0) {
		if (d[IFLA_VXLAN_ID])
			l->vni = nla_u32(d[IFLA_VXLAN_ID]);
		if (d[IFLA_VXLAN_PORT])
			l->port = ntohs(nla_u16(d[IFLA_VXLAN_PORT]));
		if (d[IFLA_VXLAN_LINK])
			l->vx_link = (int)nla_u32(d[IFLA_VXLAN_LINK]);
		if (d[IFLA_VXLAN_LEARNING])
			l->learning = nla_u8(d[IFLA_VXLAN_LEARNING]);
		if (d[IFLA_VXLAN_LOCAL]) {
			l->local.len = 4;
			memcpy(l->local.b, nla_payload(d[IFLA_VXLAN_LOCAL]), 4);
		}
		if (d[IFLA_VXLAN_LOCAL6]) {
			l->local.len = 16;
			memcpy(l->local.b, nla_payload(d[IFLA_VXLAN_LOCAL6]), 16);
		}
		if (d[IFLA_VXLAN_GROUP]) {
			l->group.len = 4;
			memcpy(l->group.b, nla_payload(d[IFLA_VXLAN_GROUP]), 4);
		}
		if (d[IFLA_VXLAN_GROUP6]) {
			l->group.len = 16;
			memcpy(l->group.b, nla_payload(d[IFLA_VXLAN_GROUP6]), 16);
		}
	} else if (strcmp(l->kind, "vlan") == 0) {
		const struct nlattr *v[IFLA_VLAN_MAX + 1];
		if (nla_index_nested(tb[IFLA_INFO_DATA], v, IFLA_VLAN_MAX) == 0 && v[IFLA_VLAN_ID])
			l->vlan_id = nla_u16(v[IFLA_VLAN_ID]);
	} else if (strcmp(l->kind, "bridge") == 0) {
		const struct nlattr *b[IFLA_BR_MAX + 1];
		if (nla_index_nested(tb[IFLA_INFO_DATA], b, IFLA_BR_MAX) == 0 && b[IFLA_BR_VLAN_FILTERING])
			l->vlan_filtering = nla_u8(b[IFLA_BR_VLAN_FILTERING]);
	} else if (strcmp(l->kind, "tun") == 0) {
		const struct nlattr *t[IFLA_TUN_MAX + 1];
		if (nla_index_nested(tb[IFLA_INFO_DATA], t, IFLA_TUN_MAX) < 0)
			return;
		l->tun_owner = t[IFLA_TUN_OWNER] ? (long long)nla_u32(t[IFLA_TUN_OWNER]) : -1;
		l->tun_group = t[IFLA_TUN_GROUP] ? (long long)nla_u32(t[IFLA_TUN_GROUP]) : -1;
		l->tun_type = t[IFLA_TUN_TYPE] ? nla_u8(t[IFLA_TUN_TYPE]) : 0;
		l->tun_pi = t[IFLA_TUN_PI] && nla_u8(t[IFLA_TUN_PI]);
		l->tun_vnet_hdr = t[IFLA_TUN_VNET_HDR] && nla_u8(t[IFLA_TUN_VNET_HDR]);
		l->tun_persist = t[IFLA_TUN_PERSIST] && nla_u8(t[IFLA_TUN_PERSIST]);
		l->tun_multi_queue = t[IFLA_TUN_MULTI_QUEUE] && nla_u8(t[IFLA_TUN_MULTI_QUEUE]);
	}
}

static int parse_link(const struct nlmsghdr *h, struct cnl_link *l)
{
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1];
	memset(l, 0, sizeof(*l));
	l->link_netnsid = -1;
	if (nlmsg_index(h, sizeof(*ifi), tb, IFLA_MAX) < 0)
		return -1;
	l->index = ifi->ifi_index;
	l->flags = ifi->ifi_flags;
	l->promisc = (ifi->ifi_flags & IFF_PROMISC) != 0;
	if (tb[IFLA_IFNAME])
		snprintf(l->name, sizeof(l->name), "%s", (char *)nla_payload(tb[IFLA_IFNAME]));
	if (tb[IFLA_MASTER])
		l->master = (int)nla_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_MTU])
		l->mtu = (int)nla_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && (int)nla_plen(tb[IFLA_ADDRESS]) == 6) {
		memcpy(l->mac, nla_payload(tb[IFLA_ADDRESS]), 6);
		l->has_mac = true;
	}
	if (tb[IFLA_LINK])
		l->link = (int)nla_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID])
		l->link_netnsid = (int)(int32_t)nla_u32(tb[IFLA_LINK_NETNSID]);
	if (tb[IFLA_OPERSTATE])
		l->operstate = nla_u8(tb[IFLA_OPERSTATE]);
	if (tb[IFLA_IFALIAS])
		snprintf(l->alias, sizeof(l->alias), "%s", (char *)nla_payload(tb[IFLA_IFALIAS]));
	if (tb[IFLA_LINKINFO])
		parse_linkinfo(tb[IFLA_LINKINFO], l);
	return 0;
}

static int link_one_cb(const struct nlmsghdr *h, void *arg)
{
	parse_link(h, arg);
	return 0;
}

int cnl_link_get(struct nlsock *sk, const char *name, int index, struct cnl_link *out, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_GETLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	memset(out, 0, sizeof(*out));
	if (name && !index)
		nlb_str(&w, IFLA_IFNAME, name);
	nlb_u32(&w, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	rc = request(sk, &w, link_one_cb, out);
	if (rc == -ENODEV || rc == -ENOENT)
		return 0;
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "looking up link %s: %s", name ? name : "", cni_strerror(-rc));
	return out->index ? 1 : 0;
}

struct dump_arg {
	int master;
	struct cnl_link *v;
	size_t n, cap;
};

static int link_dump_cb(const struct nlmsghdr *h, void *arg)
{
	struct dump_arg *d = arg;
	struct cnl_link l;
	if (parse_link(h, &l) < 0 || (d->master && l.master != d->master))
		return 0;
	if (d->n == d->cap) {
		size_t cap = d->cap ? 2 * d->cap : 16;
		struct cnl_link *v = realloc(d->v, cap * sizeof(*v));
		if (!v)
			return -ENOMEM;
		d->v = v;
		d->cap = cap;
	}
	d->v[d->n++] = l;
	return 0;
}

/* The whole dump is read before cb runs: a callback may make requests of its own on the same
 * socket (GC deletes ports), which would otherwise swallow the rest of the dump. */
int cnl_link_dump(struct nlsock *sk, int master, int (*cb)(const struct cnl_link *l, void *arg), void *arg, struct cni_error *e)
{
	for (int tries = 0; tries < 5; tries++) {
		struct dump_arg d = { master, NULL, 0, 0 };
		struct nlbuf w = { 0 };
		link_msg(&w, RTM_GETLINK, NLM_F_DUMP, AF_UNSPEC, 0, 0, 0);
		if (master)
			nlb_u32(&w, IFLA_MASTER, (uint32_t)master); /* kernel-side filter */
		nlb_u32(&w, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
		int rc = request(sk, &w, link_dump_cb, &d);
		if (rc == -EINTR) {
			free(d.v);
			continue;
		}
		if (rc < 0) {
			free(d.v);
			if (rc == -ENOMEM)
				return cni_errf(e, CNI_ERR_INTERNAL, "listing links: out of memory");
			return cni_errf(e, CNI_ERR_KERNEL, "listing links: %s", cni_strerror(-rc));
		}
		for (size_t i = 0; i < d.n && cb(&d.v[i], arg) >= 0; i++)
			;
		free(d.v);
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing links: interrupted by concurrent changes");
}

int cnl_bridge_create(struct nlsock *sk, const char *name, int mtu, const uint8_t mac[6], bool vlan_filtering,
		      struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, IFF_UP, IFF_UP);
	size_t li, data;
	int rc;
	nlb_str(&w, IFLA_IFNAME, name);
	if (mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		nlb_put(&w, IFLA_ADDRESS, mac, 6);
	li = nlb_nest(&w, IFLA_LINKINFO | NLA_F_NESTED);
	nlb_str(&w, IFLA_INFO_KIND, "bridge");
	if (vlan_filtering) {
		data = nlb_nest(&w, IFLA_INFO_DATA | NLA_F_NESTED);
		nlb_u8(&w, IFLA_BR_VLAN_FILTERING, 1);
		nlb_nest_end(&w, data);
	}
	nlb_nest_end(&w, li);
	rc = request(sk, &w, NULL, NULL);
	if (rc == -EEXIST)
		return 0;
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating bridge %s: %s", name, cni_strerror(-rc));
		return rc;
	}
	return 1;
}

int cnl_bridge_set_vlan_filtering(struct nlsock *sk, int index, bool on, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	struct linkinfo info = info_begin(&w, "bridge");
	nlb_u8(&w, IFLA_BR_VLAN_FILTERING, on);
	info_end(&w, info);
	if ((rc = request(sk, &w, NULL, NULL)) < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "setting vlan_filtering on bridge %d: %s", index, cni_strerror(-rc));
		return rc;
	}
	return 0;
}

int cnl_veth_create(struct nlsock *sk, const struct cnl_veth *v, struct cni_error *e)
{
	unsigned up = v->up ? IFF_UP : 0;
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, up, up);
	struct ifinfomsg peer = { .ifi_family = AF_UNSPEC,
				  .ifi_flags = v->peer_up ? IFF_UP : 0,
				  .ifi_change = v->peer_up ? IFF_UP : 0 };
	size_t p;
	int rc;
	nlb_str(&w, IFLA_IFNAME, v->name);
	if (v->mac)
		nlb_put(&w, IFLA_ADDRESS, v->mac, 6);
	if (v->mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)v->mtu);
	if (v->master > 0)
		nlb_u32(&w, IFLA_MASTER, (uint32_t)v->master);
	struct linkinfo info = info_begin(&w, "veth");
	/* VETH_INFO_PEER is an ifinfomsg followed by attributes, not a plain nest: the kernel
	 * rejects it flagged NLA_F_NESTED. The peer's ifinfomsg sits first inside it. */
	p = nlb_nest(&w, VETH_INFO_PEER);
	nlb_raw(&w, &peer, sizeof(peer));
	nlb_str(&w, IFLA_IFNAME, v->peer_name);
	if (v->peer_mac)
		nlb_put(&w, IFLA_ADDRESS, v->peer_mac, 6);
	if (v->mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)v->mtu);
	if (v->peer_netns_fd >= 0)
		nlb_u32(&w, IFLA_NET_NS_FD, (uint32_t)v->peer_netns_fd);
	nlb_nest_end(&w, p);
	info_end(&w, info);
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating veth pair %s/%s: %s", v->name, v->peer_name, cni_strerror(-rc));
		return rc == -EEXIST ? -EEXIST : -1;
	}
	return 0;
}

int cnl_link_modify(struct nlsock *sk, int index, unsigned flags, unsigned mask, int mtu, const uint8_t *mac, int master,
		    struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, 0, AF_UNSPEC, index, flags, mask);
	int rc;
	if (mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		nlb_put(&w, IFLA_ADDRESS, mac, 6);
	if (master >= 0)
		nlb_u32(&w, IFLA_MASTER, (uint32_t)master);
	if ((rc = request(sk, &w, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "changing link %d: %s", index, cni_strerror(-rc));
	return 0;
}

int cnl_link_set_ipv4_conf(struct nlsock *sk, int index, int id, uint32_t value, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	size_t spec = nlb_nest(&w, IFLA_AF_SPEC), inet = nlb_nest(&w, AF_INET), conf = nlb_nest(&w, IFLA_INET_CONF);
	int rc;
	nlb_u32(&w, (uint16_t)id, value);
	nlb_nest_end(&w, conf);
	nlb_nest_end(&w, inet);
	nlb_nest_end(&w, spec);
	if ((rc = request(sk, &w, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "setting IPv4 setting %d of link %d: %s", id, index, cni_strerror(-rc));
	return 0;
}

static int netconf_cb(const struct nlmsghdr *h, void *arg)
{
	const struct nlattr *tb[NETCONFA_MAX + 1];
	if (h->nlmsg_type == RTM_NEWNETCONF && nlmsg_index(h, sizeof(struct netconfmsg), tb, NETCONFA_MAX) == 0 &&
	    tb[NETCONFA_FORWARDING] && nla_plen(tb[NETCONFA_FORWARDING]) >= 4)
		*(int *)arg = nla_u32(tb[NETCONFA_FORWARDING]) ? 1 : 0;
	return 0;
}

int cnl_forwarding(struct nlsock *sk, int family)
{
	struct nlbuf w = { 0 };
	struct netconfmsg ncm = { .ncm_family = (unsigned char)family };
	int v = -1;
	nlb_msg(&w, RTM_GETNETCONF, 0, &ncm, sizeof(ncm));
	nlb_u32(&w, NETCONFA_IFINDEX, (uint32_t)NETCONFA_IFINDEX_ALL);
	return request(sk, &w, netconf_cb, &v) < 0 ? -1 : v;
}

int cnl_link_set_alias(struct nlsock *sk, int index, const char *alias, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	nlb_str(&w, IFLA_IFALIAS, alias);
	if ((rc = request(sk, &w, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "setting the alias of link %d: %s", index, cni_strerror(-rc));
	return 0;
}

int cnl_link_del(struct nlsock *sk, int index, const char *name, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_DELLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	if (!index && name)
		nlb_str(&w, IFLA_IFNAME, name);
	rc = request(sk, &w, NULL, NULL);
	if (rc == -ENODEV || rc == -ENOENT)
		return 1;
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "deleting link %s: %s", name ? name : "", cni_strerror(-rc));
	return 0;
}

int cnl_brport_set(struct nlsock *sk, int index, int hairpin, int isolated, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_SETLINK, 0, AF_BRIDGE, index, 0, 0);
	size_t pi;
	int rc;
	pi = nlb_nest(&w, IFLA_PROTINFO | NLA_F_NESTED);
	if (hairpin >= 0)
		nlb_u8(&w, IFLA_BRPORT_MODE, (uint8_t)hairpin);
	if (isolated >= 0)
		nlb_u8(&w, IFLA_BRPORT_ISOLATED, (uint8_t)isolated);
	nlb_nest_end(&w, pi);
	if ((rc = request(sk, &w, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "setting bridge port flags on link %d: %s", index, cni_strerror(-rc));
	return 0;
}

int cnl_bridge_vlan(struct nlsock *sk, int index, bool add, uint16_t vid, uint16_t vid_end, bool pvid, bool untagged, bool self,
		    struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, add ? RTM_SETLINK : RTM_DELLINK, 0, AF_BRIDGE, index, 0, 0);
	struct bridge_vlan_info vi = { .flags = 0, .vid = vid };
	size_t af;
	int rc;
	af = nlb_nest(&w, IFLA_AF_SPEC | NLA_F_NESTED);
	if (self)
		nlb_u16(&w, IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
	if (pvid)
		vi.flags |= BRIDGE_VLAN_INFO_PVID;
	if (untagged)
		vi.flags |= BRIDGE_VLAN_INFO_UNTAGGED;
	if (vid_end > vid) {
		vi.flags |= BRIDGE_VLAN_INFO_RANGE_BEGIN;
		nlb_put(&w, IFLA_BRIDGE_VLAN_INFO, &vi, sizeof(vi));
		vi.flags &= (uint16_t)~BRIDGE_VLAN_INFO_RANGE_BEGIN;
		vi.flags |= BRIDGE_VLAN_INFO_RANGE_END;
		vi.vid = vid_end;
	}
	nlb_put(&w, IFLA_BRIDGE_VLAN_INFO, &vi, sizeof(vi));
	nlb_nest_end(&w, af);
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0 && !(rc == -ENOENT && !add))
		return cni_errf(e, CNI_ERR_KERNEL, "%s VLAN %u on link %d: %s", add ? "adding" : "removing", vid, index,
				cni_strerror(-rc));
	return 0;
}

struct vlan_arg {
	int index;
	uint16_t *vids;
	size_t max, n;
	int pvid;
};

static int vlan_cb(const struct nlmsghdr *h, void *arg)
{
	struct vlan_arg *a = arg;
	const struct ifinfomsg *ifi = NLMSG_DATA(h);
	const struct nlattr *tb[IFLA_MAX + 1];
	if (ifi->ifi_index != a->index || nlmsg_index(h, sizeof(*ifi), tb, IFLA_MAX) < 0 || !tb[IFLA_AF_SPEC])
		return 0;
	nla_each (it, tb[IFLA_AF_SPEC]) {
		struct bridge_vlan_info vi;
		if ((it->nla_type & NLA_TYPE_MASK) != IFLA_BRIDGE_VLAN_INFO || nla_plen(it) < sizeof(vi))
			continue;
		memcpy(&vi, nla_payload(it), sizeof(vi));
		if (vi.flags & BRIDGE_VLAN_INFO_PVID)
			a->pvid = vi.vid;
		if (a->n < a->max)
			a->vids[a->n++] = vi.vid;
	}
	return 0;
}

int cnl_bridge_vlan_list(struct nlsock *sk, int index, uint16_t *vids, size_t max, size_t *n, int *pvid, struct cni_error *e)
{
	struct vlan_arg a = { index, vids, max, 0, 0 };
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_GETLINK, NLM_F_DUMP, AF_BRIDGE, 0, 0, 0);
	int rc;
	nlb_u32(&w, IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN);
	if ((rc = request(sk, &w, vlan_cb, &a)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "listing bridge VLANs: %s", cni_strerror(-rc));
	*n = a.n;
	*pvid = a.pvid;
	return 0;
}

/* ---- addresses ---- */

static void addr_msg(struct nlbuf *w, int type, int flags, int index, const struct ipnet *a, unsigned ifa_flags)
{
	struct ifaddrmsg ifa = { .ifa_family = (unsigned char)(ip_is_v4(&a->ip) ? AF_INET : AF_INET6),
				 .ifa_prefixlen = (unsigned char)a->prefix,
				 .ifa_flags = (unsigned char)(ifa_flags & 0xff),
				 .ifa_scope = RT_SCOPE_UNIVERSE,
				 .ifa_index = (unsigned)index };
	nlb_msg(w, (uint16_t)type, (uint16_t)flags, &ifa, sizeof(ifa));
	nlb_put(w, IFA_LOCAL, a->ip.b, a->ip.len);
	nlb_put(w, IFA_ADDRESS, a->ip.b, a->ip.len);
	if (ifa_flags)
		nlb_u32(w, IFA_FLAGS, ifa_flags);
}

int cnl_addr_add(struct nlsock *sk, int index, const struct ipnet *a, bool nodad, struct cni_error *e)
{
	char b[IPNET_STRLEN];
	struct nlbuf w = { 0 };
	addr_msg(&w, RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, a, nodad && !ip_is_v4(&a->ip) ? IFA_F_NODAD : 0);
	int rc;
	if (ip_is_v4(&a->ip) && a->prefix < 31) {
		struct ip bc = ipnet_last(a);
		nlb_put(&w, IFA_BROADCAST, bc.b, 4);
	}
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0 && rc != -EEXIST)
		return cni_errf(e, CNI_ERR_KERNEL, "adding address %s to link %d: %s", ipnet_fmt(a, b), index, cni_strerror(-rc));
	return 0;
}

int cnl_addr_del(struct nlsock *sk, int index, const struct ipnet *a, struct cni_error *e)
{
	char b[IPNET_STRLEN];
	struct nlbuf w = { 0 };
	addr_msg(&w, RTM_DELADDR, 0, index, a, 0);
	int rc;
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0 && rc != -EADDRNOTAVAIL && rc != -ENOENT)
		return cni_errf(e, CNI_ERR_KERNEL, "removing address %s from link %d: %s", ipnet_fmt(a, b), index,
				cni_strerror(-rc));
	return 0;
}

struct addr_arg {
	int index;
	struct cnl_addr_info *v;
	size_t n;
	int oom;
};

static int addr_cb(const struct nlmsghdr *h, void *arg)
{
	struct addr_arg *a = arg;
	const struct ifaddrmsg *ifa = NLMSG_DATA(h);
	const struct nlattr *tb[IFA_MAX + 1], *addr;
	struct cnl_addr_info info = { 0 };
	if ((a->index && (int)ifa->ifa_index != a->index) || nlmsg_index(h, sizeof(*ifa), tb, IFA_MAX) < 0)
		return 0;
	addr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!addr || ((int)nla_plen(addr) != 4 && (int)nla_plen(addr) != 16))
		return 0;
	info.addr.ip.len = (uint8_t)(int)nla_plen(addr);
	memcpy(info.addr.ip.b, nla_payload(addr), info.addr.ip.len);
	info.addr.prefix = ifa->ifa_prefixlen;
	info.flags = tb[IFA_FLAGS] ? nla_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	info.scope = ifa->ifa_scope;
	struct cnl_addr_info *v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v) {
		a->oom = 1;
		return -ENOMEM;
	}
	a->v = v;
	a->v[a->n++] = info;
	return 0;
}

int cnl_addr_list(struct nlsock *sk, int index, int family, struct cnl_addr_info **out, size_t *n, struct cni_error *e)
{
	for (int tries = 0; tries < 5; tries++) {
		struct ifaddrmsg ifa = { .ifa_family = (unsigned char)family, .ifa_index = (unsigned)index };
		struct addr_arg a = { index, NULL, 0, 0 };
		struct nlbuf w = { 0 };
		int rc;
		nlb_msg(&w, RTM_GETADDR, NLM_F_DUMP, &ifa, sizeof(ifa));
		rc = request(sk, &w, addr_cb, &a);
		if (rc == -EINTR) {
			free(a.v);
			continue;
		}
		if (rc < 0 || a.oom) {
			free(a.v);
			return cni_errf(e, CNI_ERR_KERNEL, "listing addresses: %s", a.oom ? "out of memory" : cni_strerror(-rc));
		}
		*out = a.v;
		*n = a.n;
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing addresses: interrupted by concurrent changes");
}

/* ---- routes ---- */

static void route_msg(struct nlbuf *w, int type, int flags, const struct cni_route *r, const struct ip *gw, int index)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(ip_is_v4(&r->dst.ip) ? AF_INET : AF_INET6),
			    .rtm_dst_len = (unsigned char)r->dst.prefix,
			    .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = (unsigned char)(r->has_scope	   ? r->scope
							 : (gw && gw->len) ? RT_SCOPE_UNIVERSE
									   : RT_SCOPE_LINK),
			    .rtm_type = RTN_UNICAST };
	if (r->has_table && r->table < 256)
		rt.rtm_table = (unsigned char)r->table;
	nlb_msg(w, (uint16_t)type, (uint16_t)flags, &rt, sizeof(rt));
	struct ip dst = ipnet_network(&r->dst);
	nlb_put(w, RTA_DST, dst.b, dst.len);
	if (gw && gw->len)
		nlb_put(w, RTA_GATEWAY, gw->b, gw->len);
	if (index)
		nlb_u32(w, RTA_OIF, (uint32_t)index);
	if (r->priority)
		nlb_u32(w, RTA_PRIORITY, (uint32_t)r->priority);
	if (r->has_table)
		nlb_u32(w, RTA_TABLE, (uint32_t)r->table);
	if (r->mtu || r->advmss) {
		size_t mx = nlb_nest(w, RTA_METRICS | NLA_F_NESTED);
		if (r->mtu)
			nlb_u32(w, RTAX_MTU, (uint32_t)r->mtu);
		if (r->advmss)
			nlb_u32(w, RTAX_ADVMSS, (uint32_t)r->advmss);
		nlb_nest_end(w, mx);
	}
}

int cnl_route_add(struct nlsock *sk, int index, const struct cni_route *r, const struct ip *gw, struct cni_error *e)
{
	char b[IPNET_STRLEN], g[IP_STRLEN];
	struct nlbuf w = { 0 };
	route_msg(&w, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r, gw, index);
	int rc;
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0 && rc != -EEXIST)
		return cni_errf(e, CNI_ERR_KERNEL, "adding route %s via %s: %s", ipnet_fmt(&r->dst, b),
				gw && gw->len ? ip_fmt(gw, g) : "(link)", cni_strerror(-rc));
	return 0;
}

struct route_arg {
	const struct cni_route *r;
	const struct ip *gw;
	int found;
};

static int route_cb(const struct nlmsghdr *h, void *arg)
{
	struct route_arg *a = arg;
	const struct rtmsg *rt = NLMSG_DATA(h);
	const struct nlattr *tb[RTA_MAX + 1];
	struct ip dst = { 0 }, want = ipnet_network(&a->r->dst);
	unsigned table;
	if (nlmsg_index(h, sizeof(*rt), tb, RTA_MAX) < 0 || rt->rtm_dst_len != a->r->dst.prefix)
		return 0;
	table = tb[RTA_TABLE] ? nla_u32(tb[RTA_TABLE]) : rt->rtm_table;
	if (table != (a->r->has_table ? (unsigned)a->r->table : RT_TABLE_MAIN))
		return 0;
	dst.len = want.len;
	if (tb[RTA_DST] && (int)nla_plen(tb[RTA_DST]) == want.len)
		memcpy(dst.b, nla_payload(tb[RTA_DST]), want.len);
	if (!ip_equal(&dst, &want))
		return 0;
	if (a->gw && a->gw->len) {
		if (!tb[RTA_GATEWAY] || (int)nla_plen(tb[RTA_GATEWAY]) != a->gw->len ||
		    memcmp(nla_payload(tb[RTA_GATEWAY]), a->gw->b, a->gw->len) != 0)
			return 0;
	}
	a->found = 1;
	return 0;
}

int cnl_route_exists(struct nlsock *sk, const struct cni_route *r, const struct ip *gw, struct cni_error *e)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(ip_is_v4(&r->dst.ip) ? AF_INET : AF_INET6) };
	for (int tries = 0; tries < 5; tries++) {
		struct route_arg a = { r, gw, 0 };
		struct nlbuf w = { 0 };
		int rc;
		nlb_msg(&w, RTM_GETROUTE, NLM_F_DUMP, &rt, sizeof(rt));
		rc = request(sk, &w, route_cb, &a);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "listing routes: %s", cni_strerror(-rc));
		return a.found;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing routes: interrupted by concurrent changes");
}

/* ---- vlan ---- */

int cnl_vlan_create(struct nlsock *sk, const char *name, int parent, uint16_t vid, int mtu, const uint8_t *mac, int netns_fd,
		    bool up, struct cni_error *e)
{
	unsigned f = up ? IFF_UP : 0;
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, f, f);

	int rc;
	nlb_str(&w, IFLA_IFNAME, name);
	nlb_u32(&w, IFLA_LINK, (uint32_t)parent);
	if (mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		nlb_put(&w, IFLA_ADDRESS, mac, 6);
	if (netns_fd >= 0)
		nlb_u32(&w, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	struct linkinfo info = info_begin(&w, "vlan");
	nlb_u16(&w, IFLA_VLAN_ID, vid);
	info_end(&w, info);
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating VLAN %u sub-interface %s: %s", vid, name, cni_strerror(-rc));
		return rc;
	}
	return 0;
}

int cnl_link_rename(struct nlsock *sk, int index, const char *name, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	nlb_str(&w, IFLA_IFNAME, name);
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "renaming link %d to %s: %s", index, name, cni_strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- vxlan ---- */

int cnl_vxlan_create(struct nlsock *sk, const struct cnl_vxlan *v, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	link_msg(&w, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, IFF_UP, IFF_UP);

	int rc;
	nlb_str(&w, IFLA_IFNAME, v->name);
	if (v->mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)v->mtu);
	struct linkinfo info = info_begin(&w, "vxlan");
	nlb_u32(&w, IFLA_VXLAN_ID, v->vni);
	nlb_u16(&w, IFLA_VXLAN_PORT, htons(v->port));
	nlb_u8(&w, IFLA_VXLAN_LEARNING, v->learning);
	if (v->link)
		nlb_u32(&w, IFLA_VXLAN_LINK, (uint32_t)v->link);
	if (v->local.len)
		nlb_put(&w, v->local.len == 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, v->local.b, v->local.len);
	if (v->group.len)
		nlb_put(&w, v->group.len == 4 ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, v->group.b, v->group.len);
	info_end(&w, info);
	rc = request(sk, &w, NULL, NULL);
	if (rc == -EEXIST)
		return 0;
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating VXLAN device %s (VNI %u): %s", v->name, v->vni, cni_strerror(-rc));
		return rc;
	}
	return 1;
}

struct dflt_arg {
	int oif;
	unsigned metric;
};

static int dflt_cb(const struct nlmsghdr *h, void *arg)
{
	struct dflt_arg *a = arg;
	const struct rtmsg *rt = NLMSG_DATA(h);
	const struct nlattr *tb[RTA_MAX + 1];
	unsigned table, metric;
	if (rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST || nlmsg_index(h, sizeof(*rt), tb, RTA_MAX) < 0)
		return 0;
	table = tb[RTA_TABLE] ? nla_u32(tb[RTA_TABLE]) : rt->rtm_table;
	metric = tb[RTA_PRIORITY] ? nla_u32(tb[RTA_PRIORITY]) : 0;
	if (table != RT_TABLE_MAIN || !tb[RTA_OIF] || (a->oif && metric >= a->metric))
		return 0;
	a->oif = (int)nla_u32(tb[RTA_OIF]);
	a->metric = metric;
	return 0;
}

int cnl_default_route_oif(struct nlsock *sk, int family_len, int *oif, struct cni_error *e)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(family_len == 4 ? AF_INET : AF_INET6) };
	for (int tries = 0; tries < 5; tries++) {
		struct dflt_arg a = { 0, 0 };
		struct nlbuf w = { 0 };
		int rc;
		nlb_msg(&w, RTM_GETROUTE, NLM_F_DUMP, &rt, sizeof(rt));
		rc = request(sk, &w, dflt_cb, &a);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "listing routes: %s", cni_strerror(-rc));
		if (!a.oif)
			return cni_errf(e, CNI_ERR_KERNEL, "no IPv%d default route", family_len == 4 ? 4 : 6);
		*oif = a.oif;
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing routes: interrupted by concurrent changes");
}

static int rtget_cb(const struct nlmsghdr *h, void *arg)
{
	int *oif = arg;
	const struct nlattr *tb[RTA_MAX + 1];
	if (h->nlmsg_type == RTM_NEWROUTE && nlmsg_index(h, sizeof(struct rtmsg), tb, RTA_MAX) == 0 && tb[RTA_OIF])
		*oif = (int)nla_u32(tb[RTA_OIF]);
	return 0;
}

int cnl_route_get_oif(struct nlsock *sk, const struct ip *dst, int *oif, struct cni_error *e)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(ip_is_v4(dst) ? AF_INET : AF_INET6),
			    .rtm_dst_len = (unsigned char)(dst->len * 8) };
	struct nlbuf w = { 0 };
	char a[IP_STRLEN];
	int rc;

	*oif = 0;
	nlb_msg(&w, RTM_GETROUTE, 0, &rt, sizeof(rt));
	nlb_put(&w, RTA_DST, dst->b, dst->len);
	rc = request(sk, &w, rtget_cb, oif);
	if (rc < 0 || !*oif)
		return cni_errf(e, CNI_ERR_KERNEL, "no route to %s%s%s", ip_fmt(dst, a), rc < 0 ? ": " : "",
				rc < 0 ? cni_strerror(-rc) : "");
	return 0;
}

struct fdb_arg {
	int index;
	bool all; /* every entry with a dst (else the all-zero MAC ones) */
	struct cnl_fdb_entry *v;
	size_t n;
	int oom;
};

static int fdb_cb(const struct nlmsghdr *h, void *arg)
{
	static const uint8_t zero[6];
	struct fdb_arg *a = arg;
	const struct ndmsg *nd = NLMSG_DATA(h);
	const struct nlattr *tb[NDA_MAX + 1];
	if (nd->ndm_ifindex != a->index || nlmsg_index(h, sizeof(*nd), tb, NDA_MAX) < 0 || !tb[NDA_LLADDR] || !tb[NDA_DST] ||
	    (int)nla_plen(tb[NDA_LLADDR]) != 6 || (!a->all && memcmp(nla_payload(tb[NDA_LLADDR]), zero, 6) != 0))
		return 0;
	int l = (int)nla_plen(tb[NDA_DST]);
	if (l != 4 && l != 16)
		return 0;
	struct cnl_fdb_entry *v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v) {
		a->oom = 1;
		return -ENOMEM;
	}
	a->v = v;
	memset(&a->v[a->n], 0, sizeof(*v));
	memcpy(a->v[a->n].mac, nla_payload(tb[NDA_LLADDR]), 6);
	a->v[a->n].state = nd->ndm_state;
	a->v[a->n].dst.len = (uint8_t)l;
	memcpy(a->v[a->n].dst.b, nla_payload(tb[NDA_DST]), (size_t)l);
	a->n++;
	return 0;
}

static int fdb_dump(struct nlsock *sk, int index, bool all, struct cnl_fdb_entry **out, size_t *n, struct cni_error *e)
{
	for (int tries = 0; tries < 5; tries++) {
		struct ndmsg nd = { .ndm_family = AF_BRIDGE, .ndm_ifindex = index };
		struct fdb_arg a = { index, all, NULL, 0, 0 };
		struct nlbuf w = { 0 };
		int rc;
		nlb_msg(&w, RTM_GETNEIGH, NLM_F_DUMP, &nd, sizeof(nd));
		rc = request(sk, &w, fdb_cb, &a);
		if (rc == -EINTR) {
			free(a.v);
			continue;
		}
		if (rc < 0 || a.oom) {
			free(a.v);
			return cni_errf(e, CNI_ERR_KERNEL, "listing fdb entries: %s",
					a.oom ? "out of memory" : cni_strerror(-rc));
		}
		*out = a.v;
		*n = a.n;
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing fdb entries: interrupted by concurrent changes");
}

int cnl_fdb_list(struct nlsock *sk, int index, struct cnl_fdb_entry **out, size_t *n, struct cni_error *e)
{
	return fdb_dump(sk, index, true, out, n, e);
}

int cnl_fdb_zero_dsts(struct nlsock *sk, int index, struct ip **out, size_t *n, struct cni_error *e)
{
	struct cnl_fdb_entry *v;
	if (fdb_dump(sk, index, false, &v, n, e) < 0)
		return -1;
	*out = calloc(*n ? *n : 1, sizeof(**out));
	if (!*out) {
		free(v);
		return cni_errf(e, CNI_ERR_KERNEL, "listing fdb entries: out of memory");
	}
	for (size_t i = 0; i < *n; i++)
		(*out)[i] = v[i].dst;
	free(v);
	return 0;
}

int cnl_fdb_set(struct nlsock *sk, int index, const uint8_t mac[6], const struct ip *dst, struct cni_error *e)
{
	char b[IP_STRLEN];
	struct ndmsg nd = {
		.ndm_family = AF_BRIDGE, .ndm_ifindex = index, .ndm_state = NUD_PERMANENT | NUD_NOARP, .ndm_flags = NTF_SELF
	};
	struct nlbuf w = { 0 };
	nlb_msg(&w, RTM_NEWNEIGH, NLM_F_CREATE | NLM_F_REPLACE, &nd, sizeof(nd));
	nlb_put(&w, NDA_LLADDR, mac, 6);
	nlb_put(&w, NDA_DST, dst->b, dst->len);
	int rc = request(sk, &w, NULL, NULL);
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "setting fdb entry to %s on link %d: %s", ip_fmt(dst, b), index,
				cni_strerror(-rc));
	return 0;
}

/* ---- fdb ---- */

int cnl_fdb(struct nlsock *sk, bool add, int index, const uint8_t *mac, const struct ip *dst, struct cni_error *e)
{
	static const uint8_t zero[6];
	char b[IP_STRLEN];
	struct ndmsg nd = {
		.ndm_family = AF_BRIDGE, .ndm_ifindex = index, .ndm_state = NUD_PERMANENT | NUD_NOARP, .ndm_flags = NTF_SELF
	};
	struct nlbuf w = { 0 };
	int rc;
	nlb_msg(&w, add ? RTM_NEWNEIGH : RTM_DELNEIGH, add ? NLM_F_CREATE | NLM_F_APPEND : 0, &nd, sizeof(nd));
	nlb_put(&w, NDA_LLADDR, mac ? mac : zero, 6);
	if (dst && dst->len)
		nlb_put(&w, NDA_DST, dst->b, dst->len);
	rc = request(sk, &w, NULL, NULL);
	if (rc < 0 && !(add && rc == -EEXIST) && !(!add && rc == -ENOENT))
		return cni_errf(e, CNI_ERR_KERNEL, "%s fdb entry to %s on link %d: %s", add ? "adding" : "removing",
				dst && dst->len ? ip_fmt(dst, b) : "?", index, cni_strerror(-rc));
	return 0;
}

/* ---- MAC ---- */

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int cnl_mac_parse(const char *s, uint8_t mac[6])
{
	uint8_t v[6];
	if (strlen(s) != 17)
		return -1;
	for (int i = 0; i < 6; i++) {
		int hi = hexval(s[3 * i]), lo = hexval(s[3 * i + 1]);
		if (hi < 0 || lo < 0 || (i < 5 && s[3 * i + 2] != ':'))
			return -1;
		v[i] = (uint8_t)(hi << 4 | lo);
	}
	memcpy(mac, v, 6);
	return 0;
}

const char *cnl_mac_fmt(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

void cnl_mac_random(uint8_t *macs, size_t n)
{
	if (getrandom(macs, n * 6, 0) != (ssize_t)(n * 6)) {
		/* getrandom on a booted kernel does not fail for a few bytes; keep something unique anyway */
		for (size_t i = 0; i < n * 6; i++)
			macs[i] = (uint8_t)(rand() & 0xff);
	}
	for (size_t i = 0; i < n; i++)
		macs[i * 6] = (uint8_t)((macs[i * 6] & 0xfe) | 0x02);
}
