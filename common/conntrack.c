/* Removing conntrack entries over ctnetlink (no conntrack binary, no libnetfilter_conntrack). */
#include "conntrack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/socket.h>
#include <netlink/attr.h>

struct ct_match {
	uint8_t proto;
	uint16_t dport; /* network order */
	struct nlattr **tuples; /* copies of CTA_TUPLE_ORIG of the entries to delete */
	uint16_t *zones;
	size_t n;
	int oom;
};

static int ct_cb(struct nl_msg *msg, void *arg)
{
	struct ct_match *m = arg;
	struct nlmsghdr *h = nlmsg_hdr(msg);
	struct nlattr *tb[CTA_MAX + 1], *tt[CTA_TUPLE_MAX + 1], *tp[CTA_PROTO_MAX + 1];

	if (nlmsg_parse(h, sizeof(struct nfgenmsg), tb, CTA_MAX, NULL) < 0 || !tb[CTA_TUPLE_ORIG] ||
	    nla_parse_nested(tt, CTA_TUPLE_MAX, tb[CTA_TUPLE_ORIG], NULL) < 0 || !tt[CTA_TUPLE_PROTO] ||
	    nla_parse_nested(tp, CTA_PROTO_MAX, tt[CTA_TUPLE_PROTO], NULL) < 0 || !tp[CTA_PROTO_NUM] ||
	    !tp[CTA_PROTO_DST_PORT])
		return NL_OK;
	if (nla_get_u8(tp[CTA_PROTO_NUM]) != m->proto || nla_get_u16(tp[CTA_PROTO_DST_PORT]) != m->dport)
		return NL_OK;
	struct nlattr **t = realloc(m->tuples, (m->n + 1) * sizeof(*t));
	if (t)
		m->tuples = t;
	uint16_t *z = realloc(m->zones, (m->n + 1) * sizeof(*z));
	if (z)
		m->zones = z;
	struct nlattr *copy = t && z ? malloc(nla_total_size(nla_len(tb[CTA_TUPLE_ORIG]))) : NULL;
	if (!copy) {
		m->oom = 1;
		return NL_STOP;
	}
	memcpy(copy, tb[CTA_TUPLE_ORIG], nla_total_size(nla_len(tb[CTA_TUPLE_ORIG])));
	m->tuples[m->n] = copy;
	m->zones[m->n] = tb[CTA_ZONE] ? nla_get_u16(tb[CTA_ZONE]) : 0;
	m->n++;
	return NL_OK;
}

static struct nl_msg *ct_msg(int type, int flags, int family)
{
	struct nfgenmsg g = { .nfgen_family = (uint8_t)family, .version = NFNETLINK_V0, .res_id = 0 };
	struct nl_msg *m = nlmsg_alloc_simple((NFNL_SUBSYS_CTNETLINK << 8) | type, flags);
	if (m && nlmsg_append(m, &g, sizeof(g), NLMSG_ALIGNTO) < 0) {
		nlmsg_free(m);
		m = NULL;
	}
	return m;
}

int ct_flush_dport(int family, uint8_t proto, uint16_t port, int *removed, struct cni_error *e)
{
	struct nl_sock *sk = nl_socket_alloc();
	struct ct_match m = { .proto = proto, .dport = htons(port) };
	struct nl_msg *msg = NULL;
	int rc = -1, r;

	*removed = 0;
	if (!sk)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (nl_connect(sk, NETLINK_NETFILTER) < 0) {
		/* no ctnetlink here: nothing can be tracked either */
		rc = 0;
		goto out;
	}
	if (!(msg = ct_msg(IPCTNL_MSG_CT_GET, NLM_F_DUMP, family))) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_CUSTOM, ct_cb, &m);
	r = nl_send_auto(sk, msg);
	nlmsg_free(msg);
	msg = NULL;
	if (r >= 0)
		r = nl_recvmsgs_default(sk);
	if (m.oom) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (r < 0) {
		/* EOPNOTSUPP/ENOENT: conntrack is not loaded, so there is nothing to flush */
		if (r == -NLE_OPNOTSUPP || r == -NLE_OBJ_NOTFOUND || r == -NLE_PROTO_MISMATCH) {
			rc = 0;
			goto out;
		}
		cni_errf(e, CNI_ERR_KERNEL, "listing conntrack entries: %s", nl_geterror(r));
		goto out;
	}
	nl_socket_modify_cb(sk, NL_CB_VALID, NL_CB_DEFAULT, NULL, NULL);
	for (size_t i = 0; i < m.n; i++) {
		if (!(msg = ct_msg(IPCTNL_MSG_CT_DELETE, NLM_F_ACK, family)) ||
		    nla_put(msg, CTA_TUPLE_ORIG, nla_len(m.tuples[i]), nla_data(m.tuples[i])) < 0 ||
		    (m.zones[i] && nla_put_u16(msg, CTA_ZONE, m.zones[i]) < 0)) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		}
		/* the nested flag is part of the attribute type on the wire */
		struct nlattr *a = nlmsg_find_attr(nlmsg_hdr(msg), sizeof(struct nfgenmsg), CTA_TUPLE_ORIG);
		if (a)
			a->nla_type |= NLA_F_NESTED;
		r = nl_send_sync(sk, msg); /* frees msg */
		msg = NULL;
		if (r == 0)
			(*removed)++;
		else if (r != -NLE_OBJ_NOTFOUND) { /* gone meanwhile is fine */
			cni_errf(e, CNI_ERR_KERNEL, "deleting a conntrack entry: %s", nl_geterror(r));
			goto out;
		}
	}
	rc = 0;
out:
	nlmsg_free(msg);
	for (size_t i = 0; i < m.n; i++)
		free(m.tuples[i]);
	free(m.tuples);
	free(m.zones);
	nl_socket_free(sk);
	return rc;
}
