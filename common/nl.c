/* rtnetlink requests built with libnl's message API: each kernel step is one request
 * and one reply, parsed in place; nothing fills a cache. */
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
#include <linux/neighbour.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

struct req {
	int err;
	int done;
};

static int on_err(struct sockaddr_nl *nla, struct nlmsgerr *err, void *arg)
{
	struct req *r = arg;
	(void)nla;
	r->err = err->error;
	r->done = 1;
	return NL_STOP;
}

static int on_done(struct nl_msg *m, void *arg)
{
	struct req *r = arg;
	(void)m;
	r->done = 1;
	return NL_STOP;
}

/* Send msg (consumed), run `valid` on each reply message; returns 0 or -errno. A dump
 * interrupted by concurrent changes (NLM_F_DUMP_INTR) is retried by the callers that dump. */
static int request(struct nl_sock *sk, struct nl_msg *msg, nl_recvmsg_msg_cb_t valid, void *arg)
{
	struct req r = { 0, 0 };
	struct nl_cb *cb = nl_cb_alloc(NL_CB_DEFAULT);
	int rc;
	if (!cb) {
		nlmsg_free(msg);
		return -ENOMEM;
	}
	nl_cb_err(cb, NL_CB_CUSTOM, on_err, &r);
	nl_cb_set(cb, NL_CB_ACK, NL_CB_CUSTOM, on_done, &r);
	nl_cb_set(cb, NL_CB_FINISH, NL_CB_CUSTOM, on_done, &r);
	if (valid)
		nl_cb_set(cb, NL_CB_VALID, NL_CB_CUSTOM, valid, arg);
	rc = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	if (rc < 0) {
		nl_cb_put(cb);
		return -EIO;
	}
	while (!r.done) {
		rc = nl_recvmsgs(sk, cb);
		if (rc < 0 && !r.done) {
			nl_cb_put(cb);
			return rc == -NLE_DUMP_INTR ? -EINTR : -EIO;
		}
	}
	nl_cb_put(cb);
	return r.err;
}

int cnl_open(struct nl_sock **out, struct cni_error *e)
{
	struct nl_sock *sk = nl_socket_alloc();
	if (!sk)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (nl_connect(sk, NETLINK_ROUTE) < 0) {
		nl_socket_free(sk);
		return cni_errf(e, CNI_ERR_KERNEL, "cannot open a netlink socket");
	}
	/* Replies can be large (dumps with many links). */
	nl_socket_set_msg_buf_size(sk, 32768);
	*out = sk;
	return 0;
}

void cnl_close(struct nl_sock *sk)
{
	if (sk)
		nl_socket_free(sk);
}

static struct nl_msg *link_msg(int type, int flags, int family, int index, unsigned ifflags, unsigned change)
{
	struct ifinfomsg ifi = { .ifi_family = (unsigned char)family, .ifi_index = index, .ifi_flags = ifflags,
				 .ifi_change = change };
	struct nl_msg *m = nlmsg_alloc_simple(type, flags);
	if (m && nlmsg_append(m, &ifi, sizeof(ifi), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	return m;
}

/* ---- links ---- */

static void parse_linkinfo(struct nlattr *li, struct cnl_link *l)
{
	struct nlattr *tb[IFLA_INFO_MAX + 1], *d[IFLA_VXLAN_MAX + 1];
	if (nla_parse_nested(tb, IFLA_INFO_MAX, li, NULL) < 0 || !tb[IFLA_INFO_KIND])
		return;
	snprintf(l->kind, sizeof(l->kind), "%s", (char *)nla_data(tb[IFLA_INFO_KIND]));
	if (!tb[IFLA_INFO_DATA])
		return;
	if (strcmp(l->kind, "vxlan") == 0 && nla_parse_nested(d, IFLA_VXLAN_MAX, tb[IFLA_INFO_DATA], NULL) == 0) {
		if (d[IFLA_VXLAN_ID])
			l->vni = nla_get_u32(d[IFLA_VXLAN_ID]);
		if (d[IFLA_VXLAN_PORT])
			l->port = ntohs(nla_get_u16(d[IFLA_VXLAN_PORT]));
		if (d[IFLA_VXLAN_LINK])
			l->vx_link = (int)nla_get_u32(d[IFLA_VXLAN_LINK]);
		if (d[IFLA_VXLAN_LEARNING])
			l->learning = nla_get_u8(d[IFLA_VXLAN_LEARNING]);
		if (d[IFLA_VXLAN_LOCAL]) {
			l->local.len = 4;
			memcpy(l->local.b, nla_data(d[IFLA_VXLAN_LOCAL]), 4);
		}
		if (d[IFLA_VXLAN_LOCAL6]) {
			l->local.len = 16;
			memcpy(l->local.b, nla_data(d[IFLA_VXLAN_LOCAL6]), 16);
		}
		if (d[IFLA_VXLAN_GROUP]) {
			l->group.len = 4;
			memcpy(l->group.b, nla_data(d[IFLA_VXLAN_GROUP]), 4);
		}
		if (d[IFLA_VXLAN_GROUP6]) {
			l->group.len = 16;
			memcpy(l->group.b, nla_data(d[IFLA_VXLAN_GROUP6]), 16);
		}
	} else if (strcmp(l->kind, "vlan") == 0) {
		struct nlattr *v[IFLA_VLAN_MAX + 1];
		if (nla_parse_nested(v, IFLA_VLAN_MAX, tb[IFLA_INFO_DATA], NULL) == 0 && v[IFLA_VLAN_ID])
			l->vlan_id = nla_get_u16(v[IFLA_VLAN_ID]);
	} else if (strcmp(l->kind, "bridge") == 0) {
		struct nlattr *b[IFLA_BR_MAX + 1];
		if (nla_parse_nested(b, IFLA_BR_MAX, tb[IFLA_INFO_DATA], NULL) == 0 && b[IFLA_BR_VLAN_FILTERING])
			l->vlan_filtering = nla_get_u8(b[IFLA_BR_VLAN_FILTERING]);
	}
}

static int parse_link(struct nl_msg *msg, struct cnl_link *l)
{
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct ifinfomsg *ifi = nlmsg_data(h);
	struct nlattr *tb[IFLA_MAX + 1];
	memset(l, 0, sizeof(*l));
	l->link_netnsid = -1;
	if (nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0)
		return -1;
	l->index = ifi->ifi_index;
	l->flags = ifi->ifi_flags;
	l->promisc = (ifi->ifi_flags & IFF_PROMISC) != 0;
	if (tb[IFLA_IFNAME])
		snprintf(l->name, sizeof(l->name), "%s", (char *)nla_data(tb[IFLA_IFNAME]));
	if (tb[IFLA_MASTER])
		l->master = (int)nla_get_u32(tb[IFLA_MASTER]);
	if (tb[IFLA_MTU])
		l->mtu = (int)nla_get_u32(tb[IFLA_MTU]);
	if (tb[IFLA_ADDRESS] && nla_len(tb[IFLA_ADDRESS]) == 6) {
		memcpy(l->mac, nla_data(tb[IFLA_ADDRESS]), 6);
		l->has_mac = true;
	}
	if (tb[IFLA_LINK])
		l->link = (int)nla_get_u32(tb[IFLA_LINK]);
	if (tb[IFLA_LINK_NETNSID])
		l->link_netnsid = (int)nla_get_s32(tb[IFLA_LINK_NETNSID]);
	if (tb[IFLA_OPERSTATE])
		l->operstate = nla_get_u8(tb[IFLA_OPERSTATE]);
	if (tb[IFLA_IFALIAS])
		snprintf(l->alias, sizeof(l->alias), "%s", (char *)nla_data(tb[IFLA_IFALIAS]));
	if (tb[IFLA_LINKINFO])
		parse_linkinfo(tb[IFLA_LINKINFO], l);
	return 0;
}

static int link_one_cb(struct nl_msg *msg, void *arg)
{
	parse_link(msg, arg);
	return NL_OK;
}

int cnl_link_get(struct nl_sock *sk, const char *name, int index, struct cnl_link *out, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_GETLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	memset(out, 0, sizeof(*out));
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (name && !index && nla_put_string(m, IFLA_IFNAME, name) < 0) {
		nlmsg_free(m);
		return cni_errf(e, CNI_ERR_INTERNAL, "link name \"%s\" too long", name);
	}
	nla_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
	rc = request(sk, m, link_one_cb, out);
	if (rc == -ENODEV || rc == -ENOENT)
		return 0;
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "looking up link %s: %s", name ? name : "", strerror(-rc));
	return out->index ? 1 : 0;
}

struct dump_arg {
	int master;
	int (*cb)(const struct cnl_link *l, void *arg);
	void *arg;
	int stop;
};

static int link_dump_cb(struct nl_msg *msg, void *arg)
{
	struct dump_arg *d = arg;
	struct cnl_link l;
	if (d->stop || parse_link(msg, &l) < 0)
		return NL_OK;
	if (d->master && l.master != d->master)
		return NL_OK;
	if (d->cb(&l, d->arg) < 0)
		d->stop = 1;
	return NL_OK;
}

int cnl_link_dump(struct nl_sock *sk, int master, int (*cb)(const struct cnl_link *l, void *arg), void *arg,
		 struct cni_error *e)
{
	for (int tries = 0; tries < 5; tries++) {
		struct dump_arg d = { master, cb, arg, 0 };
		struct nl_msg *m = link_msg(RTM_GETLINK, NLM_F_DUMP, AF_UNSPEC, 0, 0, 0);
		if (!m)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		if (master)
			nla_put_u32(m, IFLA_MASTER, (uint32_t)master); /* kernel-side filter */
		nla_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_SKIP_STATS);
		int rc = request(sk, m, link_dump_cb, &d);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "listing links: %s", strerror(-rc));
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing links: interrupted by concurrent changes");
}

int cnl_bridge_create(struct nl_sock *sk, const char *name, int mtu, const uint8_t mac[6], bool vlan_filtering,
		     struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, IFF_UP, IFF_UP);
	struct nlattr *li, *data;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_string(m, IFLA_IFNAME, name);
	if (mtu > 0)
		nla_put_u32(m, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		nla_put(m, IFLA_ADDRESS, 6, mac);
	li = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "bridge");
	if (vlan_filtering) {
		data = nla_nest_start(m, IFLA_INFO_DATA);
		nla_put_u8(m, IFLA_BR_VLAN_FILTERING, 1);
		nla_nest_end(m, data);
	}
	nla_nest_end(m, li);
	rc = request(sk, m, NULL, NULL);
	if (rc == -EEXIST)
		return 0;
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating bridge %s: %s", name, strerror(-rc));
		return rc;
	}
	return 1;
}

int cnl_bridge_set_vlan_filtering(struct nl_sock *sk, int index, bool on, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	struct nlattr *li, *data;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	li = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "bridge");
	data = nla_nest_start(m, IFLA_INFO_DATA);
	nla_put_u8(m, IFLA_BR_VLAN_FILTERING, on);
	nla_nest_end(m, data);
	nla_nest_end(m, li);
	if ((rc = request(sk, m, NULL, NULL)) < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "setting vlan_filtering on bridge %d: %s", index, strerror(-rc));
		return rc;
	}
	return 0;
}

int cnl_veth_create(struct nl_sock *sk, const struct cnl_veth *v, struct cni_error *e)
{
	unsigned up = v->up ? IFF_UP : 0;
	struct nl_msg *m = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, up, up);
	struct ifinfomsg peer = { .ifi_family = AF_UNSPEC, .ifi_flags = v->peer_up ? IFF_UP : 0,
				  .ifi_change = v->peer_up ? IFF_UP : 0 };
	struct nlattr *li, *data, *p;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_string(m, IFLA_IFNAME, v->name);
	if (v->mac)
		nla_put(m, IFLA_ADDRESS, 6, v->mac);
	if (v->mtu > 0)
		nla_put_u32(m, IFLA_MTU, (uint32_t)v->mtu);
	if (v->master > 0)
		nla_put_u32(m, IFLA_MASTER, (uint32_t)v->master);
	li = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "veth");
	data = nla_nest_start(m, IFLA_INFO_DATA);
	p = nla_nest_start(m, VETH_INFO_PEER);
	/* VETH_INFO_PEER is an ifinfomsg followed by attributes, not a plain nest: the kernel
	 * rejects it flagged NLA_F_NESTED (libnl sets the flag on every nest). */
	p->nla_type &= (uint16_t)~NLA_F_NESTED;
	/* the peer's ifinfomsg header sits first inside VETH_INFO_PEER */
	if (nlmsg_append(m, &peer, sizeof(peer), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	nla_put_string(m, IFLA_IFNAME, v->peer_name);
	if (v->peer_mac)
		nla_put(m, IFLA_ADDRESS, 6, v->peer_mac);
	if (v->mtu > 0)
		nla_put_u32(m, IFLA_MTU, (uint32_t)v->mtu);
	if (v->peer_netns_fd >= 0)
		nla_put_u32(m, IFLA_NET_NS_FD, (uint32_t)v->peer_netns_fd);
	nla_nest_end(m, p);
	nla_nest_end(m, data);
	nla_nest_end(m, li);
	rc = request(sk, m, NULL, NULL);
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating veth pair %s/%s: %s", v->name, v->peer_name, strerror(-rc));
		return rc == -EEXIST ? -EEXIST : -1;
	}
	return 0;
}

int cnl_link_modify(struct nl_sock *sk, int index, unsigned flags, unsigned mask, int mtu, const uint8_t *mac,
		   int master, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, index, flags, mask);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (mtu > 0)
		nla_put_u32(m, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		nla_put(m, IFLA_ADDRESS, 6, mac);
	if (master >= 0)
		nla_put_u32(m, IFLA_MASTER, (uint32_t)master);
	if ((rc = request(sk, m, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "changing link %d: %s", index, strerror(-rc));
	return 0;
}

int cnl_link_set_alias(struct nl_sock *sk, int index, const char *alias, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_string(m, IFLA_IFALIAS, alias);
	if ((rc = request(sk, m, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "setting the alias of link %d: %s", index, strerror(-rc));
	return 0;
}

int cnl_link_del(struct nl_sock *sk, int index, const char *name, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_DELLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (!index && name)
		nla_put_string(m, IFLA_IFNAME, name);
	rc = request(sk, m, NULL, NULL);
	if (rc == -ENODEV || rc == -ENOENT)
		return 1;
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "deleting link %s: %s", name ? name : "", strerror(-rc));
	return 0;
}

int cnl_brport_set(struct nl_sock *sk, int index, int hairpin, int isolated, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_SETLINK, 0, AF_BRIDGE, index, 0, 0);
	struct nlattr *pi;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	pi = nla_nest_start(m, IFLA_PROTINFO | NLA_F_NESTED);
	if (hairpin >= 0)
		nla_put_u8(m, IFLA_BRPORT_MODE, (uint8_t)hairpin);
	if (isolated >= 0)
		nla_put_u8(m, IFLA_BRPORT_ISOLATED, (uint8_t)isolated);
	nla_nest_end(m, pi);
	if ((rc = request(sk, m, NULL, NULL)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "setting bridge port flags on link %d: %s", index, strerror(-rc));
	return 0;
}

int cnl_bridge_vlan(struct nl_sock *sk, int index, bool add, uint16_t vid, uint16_t vid_end, bool pvid, bool untagged,
		   bool self, struct cni_error *e)
{
	struct nl_msg *m = link_msg(add ? RTM_SETLINK : RTM_DELLINK, 0, AF_BRIDGE, index, 0, 0);
	struct bridge_vlan_info vi = { .flags = 0, .vid = vid };
	struct nlattr *af;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	af = nla_nest_start(m, IFLA_AF_SPEC);
	if (self)
		nla_put_u16(m, IFLA_BRIDGE_FLAGS, BRIDGE_FLAGS_SELF);
	if (pvid)
		vi.flags |= BRIDGE_VLAN_INFO_PVID;
	if (untagged)
		vi.flags |= BRIDGE_VLAN_INFO_UNTAGGED;
	if (vid_end > vid) {
		vi.flags |= BRIDGE_VLAN_INFO_RANGE_BEGIN;
		nla_put(m, IFLA_BRIDGE_VLAN_INFO, sizeof(vi), &vi);
		vi.flags &= (uint16_t)~BRIDGE_VLAN_INFO_RANGE_BEGIN;
		vi.flags |= BRIDGE_VLAN_INFO_RANGE_END;
		vi.vid = vid_end;
	}
	nla_put(m, IFLA_BRIDGE_VLAN_INFO, sizeof(vi), &vi);
	nla_nest_end(m, af);
	rc = request(sk, m, NULL, NULL);
	if (rc < 0 && !(rc == -ENOENT && !add))
		return cni_errf(e, CNI_ERR_KERNEL, "%s VLAN %u on link %d: %s", add ? "adding" : "removing", vid, index,
				strerror(-rc));
	return 0;
}

struct vlan_arg {
	int index;
	uint16_t *vids;
	size_t max, n;
	int pvid;
};

static int vlan_cb(struct nl_msg *msg, void *arg)
{
	struct vlan_arg *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct ifinfomsg *ifi = nlmsg_data(h);
	struct nlattr *tb[IFLA_MAX + 1], *it;
	int rem;
	if (ifi->ifi_index != a->index || nlmsg_parse(h, sizeof(*ifi), tb, IFLA_MAX, NULL) < 0 || !tb[IFLA_AF_SPEC])
		return NL_OK;
	nla_for_each_nested(it, tb[IFLA_AF_SPEC], rem) {
		struct bridge_vlan_info *vi;
		if (nla_type(it) != IFLA_BRIDGE_VLAN_INFO || nla_len(it) < (int)sizeof(*vi))
			continue;
		vi = nla_data(it);
		if (vi->flags & BRIDGE_VLAN_INFO_PVID)
			a->pvid = vi->vid;
		if (a->n < a->max)
			a->vids[a->n++] = vi->vid;
	}
	return NL_OK;
}

int cnl_bridge_vlan_list(struct nl_sock *sk, int index, uint16_t *vids, size_t max, size_t *n, int *pvid,
			struct cni_error *e)
{
	struct vlan_arg a = { index, vids, max, 0, 0 };
	struct nl_msg *m = link_msg(RTM_GETLINK, NLM_F_DUMP, AF_BRIDGE, 0, 0, 0);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_u32(m, IFLA_EXT_MASK, RTEXT_FILTER_BRVLAN);
	if ((rc = request(sk, m, vlan_cb, &a)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "listing bridge VLANs: %s", strerror(-rc));
	*n = a.n;
	*pvid = a.pvid;
	return 0;
}

/* ---- addresses ---- */

static struct nl_msg *addr_msg(int type, int flags, int index, const struct ipnet *a, unsigned ifa_flags)
{
	struct ifaddrmsg ifa = { .ifa_family = (unsigned char)(ip_is_v4(&a->ip) ? AF_INET : AF_INET6),
				 .ifa_prefixlen = (unsigned char)a->prefix,
				 .ifa_flags = (unsigned char)(ifa_flags & 0xff),
				 .ifa_scope = RT_SCOPE_UNIVERSE,
				 .ifa_index = (unsigned)index };
	struct nl_msg *m = nlmsg_alloc_simple(type, flags);
	if (!m)
		return NULL;
	if (nlmsg_append(m, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	nla_put(m, IFA_LOCAL, a->ip.len, a->ip.b);
	nla_put(m, IFA_ADDRESS, a->ip.len, a->ip.b);
	if (ifa_flags)
		nla_put_u32(m, IFA_FLAGS, ifa_flags);
	return m;
}

int cnl_addr_add(struct nl_sock *sk, int index, const struct ipnet *a, bool nodad, struct cni_error *e)
{
	char b[IPNET_STRLEN];
	struct nl_msg *m = addr_msg(RTM_NEWADDR, NLM_F_CREATE | NLM_F_EXCL, index, a,
				    nodad && !ip_is_v4(&a->ip) ? IFA_F_NODAD : 0);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (ip_is_v4(&a->ip) && a->prefix < 31) {
		struct ip bc = ipnet_last(a);
		nla_put(m, IFA_BROADCAST, 4, bc.b);
	}
	rc = request(sk, m, NULL, NULL);
	if (rc < 0 && rc != -EEXIST)
		return cni_errf(e, CNI_ERR_KERNEL, "adding address %s to link %d: %s", ipnet_fmt(a, b), index, strerror(-rc));
	return 0;
}

int cnl_addr_del(struct nl_sock *sk, int index, const struct ipnet *a, struct cni_error *e)
{
	char b[IPNET_STRLEN];
	struct nl_msg *m = addr_msg(RTM_DELADDR, 0, index, a, 0);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	rc = request(sk, m, NULL, NULL);
	if (rc < 0 && rc != -EADDRNOTAVAIL && rc != -ENOENT)
		return cni_errf(e, CNI_ERR_KERNEL, "removing address %s from link %d: %s", ipnet_fmt(a, b), index,
				strerror(-rc));
	return 0;
}

struct addr_arg {
	int index;
	struct cnl_addr_info *v;
	size_t n;
	int oom;
};

static int addr_cb(struct nl_msg *msg, void *arg)
{
	struct addr_arg *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct ifaddrmsg *ifa = nlmsg_data(h);
	struct nlattr *tb[IFA_MAX + 1], *addr;
	struct cnl_addr_info info = { 0 };
	if ((a->index && (int)ifa->ifa_index != a->index) || nlmsg_parse(h, sizeof(*ifa), tb, IFA_MAX, NULL) < 0)
		return NL_OK;
	addr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	if (!addr || (nla_len(addr) != 4 && nla_len(addr) != 16))
		return NL_OK;
	info.addr.ip.len = (uint8_t)nla_len(addr);
	memcpy(info.addr.ip.b, nla_data(addr), info.addr.ip.len);
	info.addr.prefix = ifa->ifa_prefixlen;
	info.flags = tb[IFA_FLAGS] ? nla_get_u32(tb[IFA_FLAGS]) : ifa->ifa_flags;
	info.scope = ifa->ifa_scope;
	struct cnl_addr_info *v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v) {
		a->oom = 1;
		return NL_STOP;
	}
	a->v = v;
	a->v[a->n++] = info;
	return NL_OK;
}

int cnl_addr_list(struct nl_sock *sk, int index, int family, struct cnl_addr_info **out, size_t *n, struct cni_error *e)
{
	for (int tries = 0; tries < 5; tries++) {
		struct ifaddrmsg ifa = { .ifa_family = (unsigned char)family, .ifa_index = (unsigned)index };
		struct addr_arg a = { index, NULL, 0, 0 };
		struct nl_msg *m = nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP);
		int rc;
		if (!m || nlmsg_append(m, &ifa, sizeof(ifa), NLMSG_ALIGNTO) < 0) {
			nlmsg_free(m);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		rc = request(sk, m, addr_cb, &a);
		if (rc == -EINTR) {
			free(a.v);
			continue;
		}
		if (rc < 0 || a.oom) {
			free(a.v);
			return cni_errf(e, CNI_ERR_KERNEL, "listing addresses: %s", a.oom ? "out of memory" : strerror(-rc));
		}
		*out = a.v;
		*n = a.n;
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing addresses: interrupted by concurrent changes");
}

/* ---- routes ---- */

static struct nl_msg *route_msg(int type, int flags, const struct cni_route *r, const struct ip *gw, int index)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(ip_is_v4(&r->dst.ip) ? AF_INET : AF_INET6),
			    .rtm_dst_len = (unsigned char)r->dst.prefix,
			    .rtm_table = RT_TABLE_MAIN,
			    .rtm_protocol = RTPROT_BOOT,
			    .rtm_scope = (unsigned char)(r->has_scope ? r->scope
						       : (gw && gw->len) ? RT_SCOPE_UNIVERSE
									 : RT_SCOPE_LINK),
			    .rtm_type = RTN_UNICAST };
	struct nl_msg *m = nlmsg_alloc_simple(type, flags);
	if (!m)
		return NULL;
	if (r->has_table && r->table < 256)
		rt.rtm_table = (unsigned char)r->table;
	if (nlmsg_append(m, &rt, sizeof(rt), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return NULL;
	}
	struct ip dst = ipnet_network(&r->dst);
	nla_put(m, RTA_DST, dst.len, dst.b);
	if (gw && gw->len)
		nla_put(m, RTA_GATEWAY, gw->len, gw->b);
	if (index)
		nla_put_u32(m, RTA_OIF, (uint32_t)index);
	if (r->priority)
		nla_put_u32(m, RTA_PRIORITY, (uint32_t)r->priority);
	if (r->has_table)
		nla_put_u32(m, RTA_TABLE, (uint32_t)r->table);
	if (r->mtu || r->advmss) {
		struct nlattr *mx = nla_nest_start(m, RTA_METRICS);
		if (r->mtu)
			nla_put_u32(m, RTAX_MTU, (uint32_t)r->mtu);
		if (r->advmss)
			nla_put_u32(m, RTAX_ADVMSS, (uint32_t)r->advmss);
		nla_nest_end(m, mx);
	}
	return m;
}

int cnl_route_add(struct nl_sock *sk, int index, const struct cni_route *r, const struct ip *gw, struct cni_error *e)
{
	char b[IPNET_STRLEN], g[IP_STRLEN];
	struct nl_msg *m = route_msg(RTM_NEWROUTE, NLM_F_CREATE | NLM_F_EXCL, r, gw, index);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	rc = request(sk, m, NULL, NULL);
	if (rc < 0 && rc != -EEXIST)
		return cni_errf(e, CNI_ERR_KERNEL, "adding route %s via %s: %s", ipnet_fmt(&r->dst, b),
				gw && gw->len ? ip_fmt(gw, g) : "(link)", strerror(-rc));
	return 0;
}

struct route_arg {
	const struct cni_route *r;
	const struct ip *gw;
	int found;
};

static int route_cb(struct nl_msg *msg, void *arg)
{
	struct route_arg *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct rtmsg *rt = nlmsg_data(h);
	struct nlattr *tb[RTA_MAX + 1];
	struct ip dst = { 0 }, want = ipnet_network(&a->r->dst);
	unsigned table;
	if (nlmsg_parse(h, sizeof(*rt), tb, RTA_MAX, NULL) < 0 || rt->rtm_dst_len != a->r->dst.prefix)
		return NL_OK;
	table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rt->rtm_table;
	if (table != (a->r->has_table ? (unsigned)a->r->table : RT_TABLE_MAIN))
		return NL_OK;
	dst.len = want.len;
	if (tb[RTA_DST] && nla_len(tb[RTA_DST]) == want.len)
		memcpy(dst.b, nla_data(tb[RTA_DST]), want.len);
	if (!ip_equal(&dst, &want))
		return NL_OK;
	if (a->gw && a->gw->len) {
		if (!tb[RTA_GATEWAY] || nla_len(tb[RTA_GATEWAY]) != a->gw->len ||
		    memcmp(nla_data(tb[RTA_GATEWAY]), a->gw->b, a->gw->len) != 0)
			return NL_OK;
	}
	a->found = 1;
	return NL_OK;
}

int cnl_route_exists(struct nl_sock *sk, const struct cni_route *r, const struct ip *gw, struct cni_error *e)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(ip_is_v4(&r->dst.ip) ? AF_INET : AF_INET6) };
	for (int tries = 0; tries < 5; tries++) {
		struct route_arg a = { r, gw, 0 };
		struct nl_msg *m = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_DUMP);
		int rc;
		if (!m || nlmsg_append(m, &rt, sizeof(rt), NLMSG_ALIGNTO) < 0) {
			nlmsg_free(m);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		rc = request(sk, m, route_cb, &a);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "listing routes: %s", strerror(-rc));
		return a.found;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing routes: interrupted by concurrent changes");
}

/* ---- vlan ---- */

int cnl_vlan_create(struct nl_sock *sk, const char *name, int parent, uint16_t vid, int mtu, const uint8_t *mac,
		   int netns_fd, bool up, struct cni_error *e)
{
	unsigned f = up ? IFF_UP : 0;
	struct nl_msg *m = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, f, f);
	struct nlattr *li, *data;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_string(m, IFLA_IFNAME, name);
	nla_put_u32(m, IFLA_LINK, (uint32_t)parent);
	if (mtu > 0)
		nla_put_u32(m, IFLA_MTU, (uint32_t)mtu);
	if (mac)
		nla_put(m, IFLA_ADDRESS, 6, mac);
	if (netns_fd >= 0)
		nla_put_u32(m, IFLA_NET_NS_FD, (uint32_t)netns_fd);
	li = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "vlan");
	data = nla_nest_start(m, IFLA_INFO_DATA);
	nla_put_u16(m, IFLA_VLAN_ID, vid);
	nla_nest_end(m, data);
	nla_nest_end(m, li);
	rc = request(sk, m, NULL, NULL);
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating VLAN %u sub-interface %s: %s", vid, name, strerror(-rc));
		return rc;
	}
	return 0;
}

int cnl_link_rename(struct nl_sock *sk, int index, const char *name, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_NEWLINK, 0, AF_UNSPEC, index, 0, 0);
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_string(m, IFLA_IFNAME, name);
	rc = request(sk, m, NULL, NULL);
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "renaming link %d to %s: %s", index, name, strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- vxlan ---- */

int cnl_vxlan_create(struct nl_sock *sk, const struct cnl_vxlan *v, struct cni_error *e)
{
	struct nl_msg *m = link_msg(RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, AF_UNSPEC, 0, IFF_UP, IFF_UP);
	struct nlattr *li, *data;
	int rc;
	if (!m)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nla_put_string(m, IFLA_IFNAME, v->name);
	if (v->mtu > 0)
		nla_put_u32(m, IFLA_MTU, (uint32_t)v->mtu);
	li = nla_nest_start(m, IFLA_LINKINFO);
	nla_put_string(m, IFLA_INFO_KIND, "vxlan");
	data = nla_nest_start(m, IFLA_INFO_DATA);
	nla_put_u32(m, IFLA_VXLAN_ID, v->vni);
	nla_put_u16(m, IFLA_VXLAN_PORT, htons(v->port));
	nla_put_u8(m, IFLA_VXLAN_LEARNING, v->learning);
	if (v->link)
		nla_put_u32(m, IFLA_VXLAN_LINK, (uint32_t)v->link);
	if (v->local.len)
		nla_put(m, v->local.len == 4 ? IFLA_VXLAN_LOCAL : IFLA_VXLAN_LOCAL6, v->local.len, v->local.b);
	if (v->group.len)
		nla_put(m, v->group.len == 4 ? IFLA_VXLAN_GROUP : IFLA_VXLAN_GROUP6, v->group.len, v->group.b);
	nla_nest_end(m, data);
	nla_nest_end(m, li);
	rc = request(sk, m, NULL, NULL);
	if (rc == -EEXIST)
		return 0;
	if (rc < 0) {
		cni_errf(e, CNI_ERR_KERNEL, "creating VXLAN device %s (VNI %u): %s", v->name, v->vni, strerror(-rc));
		return rc;
	}
	return 1;
}

struct dflt_arg {
	int oif;
	unsigned metric;
};

static int dflt_cb(struct nl_msg *msg, void *arg)
{
	struct dflt_arg *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct rtmsg *rt = nlmsg_data(h);
	struct nlattr *tb[RTA_MAX + 1];
	unsigned table, metric;
	if (rt->rtm_dst_len != 0 || rt->rtm_type != RTN_UNICAST || nlmsg_parse(h, sizeof(*rt), tb, RTA_MAX, NULL) < 0)
		return NL_OK;
	table = tb[RTA_TABLE] ? nla_get_u32(tb[RTA_TABLE]) : rt->rtm_table;
	metric = tb[RTA_PRIORITY] ? nla_get_u32(tb[RTA_PRIORITY]) : 0;
	if (table != RT_TABLE_MAIN || !tb[RTA_OIF] || (a->oif && metric >= a->metric))
		return NL_OK;
	a->oif = (int)nla_get_u32(tb[RTA_OIF]);
	a->metric = metric;
	return NL_OK;
}

int cnl_default_route_oif(struct nl_sock *sk, int family_len, int *oif, struct cni_error *e)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(family_len == 4 ? AF_INET : AF_INET6) };
	for (int tries = 0; tries < 5; tries++) {
		struct dflt_arg a = { 0, 0 };
		struct nl_msg *m = nlmsg_alloc_simple(RTM_GETROUTE, NLM_F_DUMP);
		int rc;
		if (!m || nlmsg_append(m, &rt, sizeof(rt), NLMSG_ALIGNTO) < 0) {
			nlmsg_free(m);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		rc = request(sk, m, dflt_cb, &a);
		if (rc == -EINTR)
			continue;
		if (rc < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "listing routes: %s", strerror(-rc));
		if (!a.oif)
			return cni_errf(e, CNI_ERR_KERNEL, "no IPv%d default route", family_len == 4 ? 4 : 6);
		*oif = a.oif;
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing routes: interrupted by concurrent changes");
}

static int rtget_cb(struct nl_msg *msg, void *arg)
{
	int *oif = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[RTA_MAX + 1];
	if (h->nlmsg_type == RTM_NEWROUTE && nlmsg_parse(h, sizeof(struct rtmsg), tb, RTA_MAX, NULL) == 0 && tb[RTA_OIF])
		*oif = (int)nla_get_u32(tb[RTA_OIF]);
	return NL_OK;
}

int cnl_route_get_oif(struct nl_sock *sk, const struct ip *dst, int *oif, struct cni_error *e)
{
	struct rtmsg rt = { .rtm_family = (unsigned char)(ip_is_v4(dst) ? AF_INET : AF_INET6),
			    .rtm_dst_len = (unsigned char)(dst->len * 8) };
	struct nl_msg *m = nlmsg_alloc_simple(RTM_GETROUTE, 0);
	char a[IP_STRLEN];
	int rc;

	*oif = 0;
	if (!m || nlmsg_append(m, &rt, sizeof(rt), NLMSG_ALIGNTO) < 0 || nla_put(m, RTA_DST, dst->len, dst->b) < 0) {
		nlmsg_free(m);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	rc = request(sk, m, rtget_cb, oif);
	if (rc < 0 || !*oif)
		return cni_errf(e, CNI_ERR_KERNEL, "no route to %s%s%s", ip_fmt(dst, a), rc < 0 ? ": " : "",
				rc < 0 ? strerror(-rc) : "");
	return 0;
}

struct fdb_arg {
	int index;
	struct ip *v;
	size_t n;
	int oom;
};

static int fdb_cb(struct nl_msg *msg, void *arg)
{
	static const uint8_t zero[6];
	struct fdb_arg *a = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct ndmsg *nd = nlmsg_data(h);
	struct nlattr *tb[NDA_MAX + 1];
	if (nd->ndm_ifindex != a->index || nlmsg_parse(h, sizeof(*nd), tb, NDA_MAX, NULL) < 0 || !tb[NDA_LLADDR] ||
	    !tb[NDA_DST] || nla_len(tb[NDA_LLADDR]) != 6 || memcmp(nla_data(tb[NDA_LLADDR]), zero, 6) != 0)
		return NL_OK;
	int l = nla_len(tb[NDA_DST]);
	if (l != 4 && l != 16)
		return NL_OK;
	struct ip *v = realloc(a->v, (a->n + 1) * sizeof(*v));
	if (!v) {
		a->oom = 1;
		return NL_STOP;
	}
	a->v = v;
	memset(&a->v[a->n], 0, sizeof(struct ip));
	a->v[a->n].len = (uint8_t)l;
	memcpy(a->v[a->n].b, nla_data(tb[NDA_DST]), (size_t)l);
	a->n++;
	return NL_OK;
}

int cnl_fdb_zero_dsts(struct nl_sock *sk, int index, struct ip **out, size_t *n, struct cni_error *e)
{
	for (int tries = 0; tries < 5; tries++) {
		struct ndmsg nd = { .ndm_family = AF_BRIDGE, .ndm_ifindex = index };
		struct fdb_arg a = { index, NULL, 0, 0 };
		struct nl_msg *m = nlmsg_alloc_simple(RTM_GETNEIGH, NLM_F_DUMP);
		int rc;
		if (!m || nlmsg_append(m, &nd, sizeof(nd), NLMSG_ALIGNTO) < 0) {
			nlmsg_free(m);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		rc = request(sk, m, fdb_cb, &a);
		if (rc == -EINTR) {
			free(a.v);
			continue;
		}
		if (rc < 0 || a.oom) {
			free(a.v);
			return cni_errf(e, CNI_ERR_KERNEL, "listing fdb entries: %s", a.oom ? "out of memory" : strerror(-rc));
		}
		*out = a.v;
		*n = a.n;
		return 0;
	}
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "listing fdb entries: interrupted by concurrent changes");
}

/* ---- fdb ---- */

int cnl_fdb(struct nl_sock *sk, bool add, int index, const uint8_t *mac, const struct ip *dst, struct cni_error *e)
{
	static const uint8_t zero[6];
	char b[IP_STRLEN];
	struct ndmsg nd = { .ndm_family = AF_BRIDGE, .ndm_ifindex = index, .ndm_state = NUD_PERMANENT | NUD_NOARP,
			    .ndm_flags = NTF_SELF };
	struct nl_msg *m = nlmsg_alloc_simple(add ? RTM_NEWNEIGH : RTM_DELNEIGH,
					      add ? NLM_F_CREATE | NLM_F_APPEND : 0);
	int rc;
	if (!m || nlmsg_append(m, &nd, sizeof(nd), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	nla_put(m, NDA_LLADDR, 6, mac ? mac : zero);
	if (dst && dst->len)
		nla_put(m, NDA_DST, dst->len, dst->b);
	rc = request(sk, m, NULL, NULL);
	if (rc < 0 && !(add && rc == -EEXIST) && !(!add && rc == -ENOENT))
		return cni_errf(e, CNI_ERR_KERNEL, "%s fdb entry to %s on link %d: %s", add ? "adding" : "removing",
				dst && dst->len ? ip_fmt(dst, b) : "?", index, strerror(-rc));
	return 0;
}

/* ---- MAC ---- */

int cnl_mac_parse(const char *s, uint8_t mac[6])
{
	unsigned v[6];
	char tail;
	if (strlen(s) != 17 || sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)v[i];
	return 0;
}

const char *cnl_mac_fmt(const uint8_t mac[6], char buf[18])
{
	snprintf(buf, 18, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
	return buf;
}

void cnl_mac_random(uint8_t mac[6])
{
	if (getrandom(mac, 6, 0) != 6) {
		/* getrandom on a booted kernel does not fail for 6 bytes; keep something unique anyway */
		for (int i = 0; i < 6; i++)
			mac[i] = (uint8_t)(rand() & 0xff);
	}
	mac[0] = (uint8_t)((mac[0] & 0xfe) | 0x02);
}
