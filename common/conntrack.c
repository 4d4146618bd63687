/* Removing conntrack entries over ctnetlink (no conntrack binary, no libnetfilter_conntrack). */
#include "conntrack.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>

#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_conntrack.h>

#include "nlmsg.h"

struct ct_match {
	uint8_t proto;
	uint16_t dport; /* network order */
	const struct ip *addr; /* set: match entries with this address anywhere in either tuple instead */
	struct nlattr **tuples; /* copies of CTA_TUPLE_ORIG of the entries to delete */
	uint16_t *zones;
	size_t n;
};

/* Does a tuple (CTA_TUPLE_ORIG or _REPLY) hold address a as its source or destination? */
static bool tuple_has(const struct nlattr *tuple, const struct ip *a)
{
	const struct nlattr *tt[CTA_TUPLE_MAX + 1], *ti[CTA_IP_MAX + 1];
	bool v4 = a->len == 4;
	if (!tuple || nla_index_nested(tuple, tt, CTA_TUPLE_MAX) < 0 || !tt[CTA_TUPLE_IP] ||
	    nla_index_nested(tt[CTA_TUPLE_IP], ti, CTA_IP_MAX) < 0)
		return false;
	for (int k = 0; k < 2; k++) {
		const struct nlattr *x = ti[v4 ? (k ? CTA_IP_V4_DST : CTA_IP_V4_SRC) : (k ? CTA_IP_V6_DST : CTA_IP_V6_SRC)];
		if (x && nla_plen(x) == a->len && memcmp(nla_payload(x), a->b, a->len) == 0)
			return true;
	}
	return false;
}

static int ct_cb(const struct nlmsghdr *h, void *arg)
{
	struct ct_match *m = arg;
	const struct nlattr *tb[CTA_MAX + 1], *tt[CTA_TUPLE_MAX + 1], *tp[CTA_PROTO_MAX + 1];

	if (nlmsg_index(h, sizeof(struct nfgenmsg), tb, CTA_MAX) < 0 || !tb[CTA_TUPLE_ORIG])
		return 0;
	if (m->addr) {
		if (!tuple_has(tb[CTA_TUPLE_ORIG], m->addr) && !tuple_has(tb[CTA_TUPLE_REPLY], m->addr))
			return 0;
	} else if (nla_index_nested(tb[CTA_TUPLE_ORIG], tt, CTA_TUPLE_MAX) < 0 || !tt[CTA_TUPLE_PROTO] ||
		   nla_index_nested(tt[CTA_TUPLE_PROTO], tp, CTA_PROTO_MAX) < 0 || !tp[CTA_PROTO_NUM] ||
		   !tp[CTA_PROTO_DST_PORT] || nla_u8(tp[CTA_PROTO_NUM]) != m->proto ||
		   nla_u16(tp[CTA_PROTO_DST_PORT]) != m->dport)
		return 0;
	struct nlattr **t = realloc(m->tuples, (m->n + 1) * sizeof(*t));
	if (t)
		m->tuples = t;
	uint16_t *z = realloc(m->zones, (m->n + 1) * sizeof(*z));
	if (z)
		m->zones = z;
	size_t size = tb[CTA_TUPLE_ORIG]->nla_len;
	struct nlattr *copy = t && z ? malloc(size) : NULL;
	if (!copy)
		return -ENOMEM;
	memcpy(copy, tb[CTA_TUPLE_ORIG], size);
	m->tuples[m->n] = copy;
	m->zones[m->n] = tb[CTA_ZONE] ? nla_u16(tb[CTA_ZONE]) : 0;
	m->n++;
	return 0;
}

static void ct_msg(struct nlbuf *w, int type, int flags, int family)
{
	struct nfgenmsg g = { .nfgen_family = (uint8_t)family, .version = NFNETLINK_V0, .res_id = 0 };
	nlb_msg(w, (uint16_t)((NFNL_SUBSYS_CTNETLINK << 8) | type), (uint16_t)flags, &g, sizeof(g));
}

/* The entries of `family` whose original tuple has protocol m->proto and destination port m->dport.
 * 0, or -errno (EOPNOTSUPP, ENOENT, EPROTONOSUPPORT: conntrack is not loaded). */
static int ct_collect(struct nlsock *sk, int family, struct ct_match *m)
{
	for (int tries = 0; tries < 5; tries++) {
		struct nlbuf w = { 0 };
		ct_msg(&w, IPCTNL_MSG_CT_GET, NLM_F_DUMP, family);
		int r = nls_request(sk, &w, ct_cb, m);
		nlb_free(&w);
		if (r != -EINTR)
			return r;
		/* interrupted: start over with an empty list */
		for (size_t i = 0; i < m->n; i++)
			free(m->tuples[i]);
		m->n = 0;
	}
	return -EINTR;
}

static int ct_flush(int family, struct ct_match *mp, int *removed, struct cni_error *e)
{
	struct nlsock sk;
	struct ct_match m = *mp;
	int rc = -1, r;

	*removed = 0;
	if ((r = nls_open(&sk, NETLINK_NETFILTER)) < 0) {
		if (r == -ENOMEM)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		return 0; /* no ctnetlink here: nothing can be tracked either */
	}
	r = ct_collect(&sk, family, &m);
	if (r == -EOPNOTSUPP || r == -ENOENT || r == -EPROTONOSUPPORT) {
		rc = 0; /* conntrack is not loaded, so there is nothing to flush */
		goto out;
	}
	if (r < 0) {
		if (r == -ENOMEM)
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		else
			cni_errf(e, CNI_ERR_KERNEL, "listing conntrack entries: %s", cni_strerror(-r));
		goto out;
	}
	for (size_t i = 0; i < m.n; i++) {
		struct nlbuf w = { 0 };
		ct_msg(&w, IPCTNL_MSG_CT_DELETE, 0, family);
		/* the nested flag is part of the attribute type on the wire */
		nlb_put(&w, CTA_TUPLE_ORIG | NLA_F_NESTED, nla_payload(m.tuples[i]), nla_plen(m.tuples[i]));
		if (m.zones[i])
			nlb_u16(&w, CTA_ZONE, m.zones[i]);
		r = nls_request(&sk, &w, NULL, NULL);
		nlb_free(&w);
		if (r == 0)
			(*removed)++;
		else if (r == -ENOMEM) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		} else if (r != -ENOENT) { /* gone meanwhile is fine */
			cni_errf(e, CNI_ERR_KERNEL, "deleting a conntrack entry: %s", cni_strerror(-r));
			goto out;
		}
	}
	rc = 0;
out:
	for (size_t i = 0; i < m.n; i++)
		free(m.tuples[i]);
	free(m.tuples);
	free(m.zones);
	nls_close(&sk);
	return rc;
}

int ct_flush_dport(int family, uint8_t proto, uint16_t port, int *removed, struct cni_error *e)
{
	struct ct_match m = { .proto = proto, .dport = htons(port) };
	return ct_flush(family, &m, removed, e);
}

int ct_flush_addr(const struct ip *a, int *removed, struct cni_error *e)
{
	struct ct_match m = { .addr = a };
	return ct_flush(a->len == 4 ? AF_INET : AF_INET6, &m, removed, e);
}
