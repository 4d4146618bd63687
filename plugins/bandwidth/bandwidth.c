/* bandwidth: shapes a container's traffic with token bucket filters, chained after a plugin that
 * gives it a veth pair (bridge, ptp). Laid out in tc as the reference plugin lays it out, so a node
 * can move between the two:
 *   ingress (to the container): tbf, handle 1:, root qdisc of the host end of the veth;
 *   egress (from the container): an ifb device "bwp" + 12 hex of sha512(network name + container
 *          ID) with a tbf root qdisc (handle 1:), fed by an ingress qdisc (ffff:) on the host end
 *          whose u32 filter (priority 1, all protocols, match all) redirects every packet to it
 *          (mirred egress redirect).
 * The tbf parameters are the reference's: rate in bytes/s (TCA_TBF_RATE64 from 4 GiB/s), buffer
 * the burst's time at that rate in scheduler ticks, limit the burst plus 25 ms at that rate.
 * The ifb carries an alias naming the network and the container, so GC tells ours apart. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <linux/tc_act/tc_mirred.h>

#include "attach.h"
#include "conf.h"
#include "fault.h"
#include "nl.h"
#include "nlmsg.h"
#include "sha512.h"
#include "skel.h"
#include "undo.h"

#define LATENCY_US 25000.0 /* the reference's fixed tbf latency */
#define ALIAS_PREFIX "cni-c bandwidth net="
#define H_ROOT_TBF 0x10000u /* 1: */
#define H_INGRESS 0xffff0000u /* ffff: */
#define CLASSID 0x10001u /* 1:1, as the reference's filter */

struct bw_conf {
	uint64_t in_rate, in_burst, eg_rate, eg_burst; /* bits/s, bits */
	char ifb[16];
	char alias[256];
};

static bool shaping(const struct bw_conf *p)
{
	return p->in_rate || p->eg_rate;
}

/* ---- config ---- */

static const char *const keys[] = { "ingressRate", "ingressBurst", "egressRate", "egressBurst" };

static int get_u64(const cJSON *obj, const char *parent, const char *key, uint64_t *out, struct cni_error *e)
{
	long long v = 0;
	/* 2^53: the largest integer a JSON number carries exactly */
	if (conf_int(obj, parent, key, 0, 9007199254740992LL, &v, e) < 0)
		return -1;
	*out = (uint64_t)v;
	return 0;
}

/* The scheduler's ticks per microsecond (/proc/net/psched), as the reference's netlink library
 * reads it. */
static double tick_in_usec(void)
{
	static double t;
	unsigned v[4];
	if (t > 0)
		return t;
	t = 15.625; /* 1000/64: every kernel since 2.6.24 */
	FILE *f = fopen("/proc/net/psched", "re");
	if (f) {
		if (fscanf(f, "%x %x %x %x", &v[0], &v[1], &v[2], &v[3]) == 4 && v[1] && v[2]) {
			if (v[2] == 1000000000u)
				v[0] = v[1];
			t = (double)v[0] / (double)v[1] * ((double)v[2] / 1000000.0);
		}
		fclose(f);
	}
	return t;
}

struct tbf_params {
	uint64_t rate; /* bytes/s */
	uint32_t buffer, limit;
};

/* The reference's arithmetic (float64, truncating conversions). */
static void tbf_compute(uint64_t rate_bits, uint64_t burst_bits, struct tbf_params *t)
{
	uint64_t rate = rate_bits / 8;
	uint32_t burst = (uint32_t)(burst_bits / 8);
	double us = (double)burst * 1000000.0 / (double)rate;
	t->rate = rate;
	t->buffer = (uint32_t)((double)(uint32_t)us * tick_in_usec());
	t->limit = (uint32_t)((double)rate * LATENCY_US / 1000000.0) + burst;
}

static int check_pair(struct cni_ctx *c, const char *parent, const char *dir, uint64_t rate, uint64_t burst)
{
	char p[CONF_PATH_MAX];
	snprintf(p, sizeof(p), "%s%s%s", parent ? parent : "", parent ? "." : "", dir);
	if (burst == 0 && rate != 0)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%sBurst\": if rate is set, burst must also be set", p);
	if (rate == 0 && burst != 0)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%sRate\": if burst is set, rate must also be set", p);
	if (burst / 8 >= UINT32_MAX)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%sBurst\": burst cannot be more than 4GB", p);
	if (rate == 0)
		return 0;
	if (rate < 8)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%sRate\": %llu bit/s is less than a byte per second", p,
				(unsigned long long)rate);
	/* the burst's time at that rate, in scheduler ticks, must fit tbf's 32-bit buffer */
	double us = (double)(burst / 8) * 1000000.0 / (double)(rate / 8);
	if (us >= 4294967295.0 || us * tick_in_usec() >= 4294967295.0)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%sBurst\": a burst of %llu bits takes too long at %llu bit/s", p,
				(unsigned long long)burst, (unsigned long long)rate);
	if ((double)(rate / 8) * LATENCY_US / 1000000.0 + (double)(burst / 8) >= 4294967295.0)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%sRate\": the queue of %llu bit/s over 25 ms plus the burst exceeds 4GB",
				p, (unsigned long long)rate);
	return 0;
}

static int parse_fields(struct cni_ctx *c, struct bw_conf *p)
{
	const cJSON *src = c->conf, *rc, *bw = NULL;
	const char *parent = NULL;
	bool top = false;
	uint64_t *dst[4] = { &p->in_rate, &p->in_burst, &p->eg_rate, &p->eg_burst };

	/* as the reference: the config's own keys, when any is there; else the runtime's */
	for (size_t i = 0; i < 4; i++)
		top |= conf_item(c->conf, keys[i]) != NULL;
	if (!top && (rc = conf_runtime_config(c->conf))) {
		int r = conf_object(rc, "runtimeConfig", "bandwidth", &bw, &c->err);
		if (r < 0)
			return -1;
		if (r) {
			src = bw;
			parent = "runtimeConfig.bandwidth";
		}
	}
	for (size_t i = 0; i < 4; i++)
		if (get_u64(src, parent, keys[i], dst[i], &c->err) < 0)
			return -1;
	if (check_pair(c, parent, "ingress", p->in_rate, p->in_burst) < 0 ||
	    check_pair(c, parent, "egress", p->eg_rate, p->eg_burst) < 0)
		return -1;
	return 0;
}

static void names(struct cni_ctx *c, struct bw_conf *p)
{
	char h[13];
	sha512_hexf(h, 12, "%s%s", c->name ? c->name : "", c->container_id ? c->container_id : "");
	snprintf(p->ifb, sizeof(p->ifb), "bwp%s", h);
	snprintf(p->alias, sizeof(p->alias), ALIAS_PREFIX "%s id=%s", c->name ? c->name : "",
		 c->container_id ? c->container_id : "");
}

/* DEL needs the attachment's identity only, so it converges whatever the config says. */
static int parse(struct cni_ctx *c, void *conf)
{
	struct bw_conf *p = conf;
	if (parse_fields(c, p) < 0) {
		if (c->verb != CNI_DEL)
			return -1;
		cni_err_clear(&c->err);
		memset(p, 0, sizeof(*p));
	}
	if (c->container_id)
		names(c, p);
	if ((c->verb == CNI_ADD || c->verb == CNI_CHECK) && shaping(p) && !c->has_prev)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"prevResult\" is required: bandwidth must be called as a chained plugin");
	return 0;
}

/* ---- tc over netlink ---- */

struct qdisc_info {
	uint32_t handle, parent;
	char kind[16];
	bool has_tbf;
	struct tbf_params tbf;
};

struct qlist {
	int ifindex;
	struct qdisc_info q[16];
	size_t n;
};

static int qdisc_cb(const struct nlmsghdr *h, void *arg)
{
	struct qlist *l = arg;
	const struct tcmsg *t = NLMSG_DATA(h);
	const struct nlattr *tb[TCA_MAX + 1], *o[TCA_TBF_MAX + 1];

	if (h->nlmsg_type != RTM_NEWQDISC || h->nlmsg_len < NLMSG_LENGTH(sizeof(*t)) || t->tcm_ifindex != l->ifindex ||
	    l->n >= sizeof(l->q) / sizeof(l->q[0]))
		return 0;
	if (nlmsg_index(h, sizeof(*t), tb, TCA_MAX) < 0)
		return 0;
	struct qdisc_info *q = &l->q[l->n++];
	memset(q, 0, sizeof(*q));
	q->handle = t->tcm_handle;
	q->parent = t->tcm_parent;
	if (tb[TCA_KIND])
		snprintf(q->kind, sizeof(q->kind), "%.*s", (int)nla_plen(tb[TCA_KIND]), (const char *)nla_payload(tb[TCA_KIND]));
	if (strcmp(q->kind, "tbf") == 0 && tb[TCA_OPTIONS] && nla_index_nested(tb[TCA_OPTIONS], o, TCA_TBF_MAX) == 0 &&
	    o[TCA_TBF_PARMS] && nla_plen(o[TCA_TBF_PARMS]) >= sizeof(struct tc_tbf_qopt)) {
		struct tc_tbf_qopt qo;
		memcpy(&qo, nla_payload(o[TCA_TBF_PARMS]), sizeof(qo));
		q->has_tbf = true;
		q->tbf.rate = qo.rate.rate;
		q->tbf.buffer = qo.buffer;
		q->tbf.limit = qo.limit;
		if (o[TCA_TBF_RATE64] && nla_plen(o[TCA_TBF_RATE64]) >= 8)
			memcpy(&q->tbf.rate, nla_payload(o[TCA_TBF_RATE64]), 8);
	}
	return 0;
}

static int qdisc_list(struct nlsock *sk, int ifindex, struct qlist *l, struct cni_error *e)
{
	int rc;
	for (int tries = 0; tries < 5; tries++) {
		struct nlbuf w = { 0 };
		struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex };
		memset(l, 0, sizeof(*l));
		l->ifindex = ifindex;
		nlb_msg(&w, RTM_GETQDISC, NLM_F_DUMP, &t, sizeof(t));
		rc = nls_request(sk, &w, qdisc_cb, l);
		nlb_free(&w);
		if (rc != -EINTR)
			break;
	}
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "listing the qdiscs of interface %d: %s", ifindex, cni_strerror(-rc));
	return 0;
}

static const struct qdisc_info *qdisc_find(const struct qlist *l, uint32_t parent, const char *kind)
{
	for (size_t i = 0; i < l->n; i++)
		if (l->q[i].parent == parent && strcmp(l->q[i].kind, kind) == 0)
			return &l->q[i];
	return NULL;
}

static int tc_request(struct nlsock *sk, struct nlbuf *w)
{
	int rc = nls_request(sk, w, NULL, NULL);
	nlb_free(w);
	return rc;
}

/* tbf 1: as the root qdisc of ifindex (replacing what is there). */
static int tbf_set(struct nlsock *sk, int ifindex, const struct tbf_params *tp, const char *dev, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = H_ROOT_TBF, .tcm_parent = TC_H_ROOT };
	struct tc_tbf_qopt qo = { 0 };
	int rc;

	qo.rate.rate = (uint32_t)tp->rate;
	qo.limit = tp->limit;
	qo.buffer = tp->buffer;
	nlb_msg(&w, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_REPLACE, &t, sizeof(t));
	nlb_str(&w, TCA_KIND, "tbf");
	size_t o = nlb_nest(&w, TCA_OPTIONS);
	nlb_put(&w, TCA_TBF_PARMS, &qo, sizeof(qo));
	if (tp->rate >= (1ull << 32))
		nlb_put(&w, TCA_TBF_RATE64, &tp->rate, sizeof(tp->rate));
	nlb_nest_end(&w, o);
	if ((rc = tc_request(sk, &w)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "bandwidth: adding tbf qdisc to %s: %s", dev, cni_strerror(-rc));
	return 0;
}

static int qdisc_del(struct nlsock *sk, int ifindex, uint32_t handle, uint32_t parent, const char *dev, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = handle, .tcm_parent = parent };
	int rc;
	nlb_msg(&w, RTM_DELQDISC, 0, &t, sizeof(t));
	rc = tc_request(sk, &w);
	if (rc < 0 && rc != -ENOENT && rc != -EINVAL && rc != -ENODEV)
		return cni_errf(e, CNI_ERR_KERNEL, "bandwidth: removing a qdisc of %s: %s", dev, cni_strerror(-rc));
	return 0;
}

static int ingress_add(struct nlsock *sk, int ifindex, const char *dev, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_handle = H_INGRESS, .tcm_parent = TC_H_INGRESS };
	int rc;
	nlb_msg(&w, RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, &t, sizeof(t));
	nlb_str(&w, TCA_KIND, "ingress");
	if ((rc = tc_request(sk, &w)) < 0 && rc != -EEXIST)
		return cni_errf(e, CNI_ERR_KERNEL, "bandwidth: adding an ingress qdisc to %s: %s", dev, cni_strerror(-rc));
	return 0;
}

/* u32 match-all on ffff: (priority 1, all protocols) redirecting to ifb_index. */
static int redirect_add(struct nlsock *sk, int ifindex, int ifb_index, const char *dev, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	struct tcmsg t = { .tcm_family = AF_UNSPEC,
			   .tcm_ifindex = ifindex,
			   .tcm_parent = H_INGRESS,
			   .tcm_info = TC_H_MAKE(1u << 16, htons(ETH_P_ALL)) };
	struct {
		struct tc_u32_sel sel;
		struct tc_u32_key key;
	} s = { 0 };
	struct tc_mirred m = { .action = TC_ACT_STOLEN, .eaction = TCA_EGRESS_REDIR, .ifindex = (uint32_t)ifb_index };
	int rc;

	s.sel.flags = TC_U32_TERMINAL;
	s.sel.nkeys = 1;
	nlb_msg(&w, RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_EXCL, &t, sizeof(t));
	nlb_str(&w, TCA_KIND, "u32");
	size_t o = nlb_nest(&w, TCA_OPTIONS);
	nlb_put(&w, TCA_U32_SEL, &s, sizeof(s));
	nlb_u32(&w, TCA_U32_CLASSID, CLASSID);
	size_t acts = nlb_nest(&w, TCA_U32_ACT);
	size_t a1 = nlb_nest(&w, 1);
	nlb_str(&w, TCA_ACT_KIND, "mirred");
	size_t ao = nlb_nest(&w, TCA_ACT_OPTIONS);
	nlb_put(&w, TCA_MIRRED_PARMS, &m, sizeof(m));
	nlb_nest_end(&w, ao);
	nlb_nest_end(&w, a1);
	nlb_nest_end(&w, acts);
	nlb_nest_end(&w, o);
	if ((rc = tc_request(sk, &w)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "bandwidth: adding the redirect filter to %s: %s", dev, cni_strerror(-rc));
	return 0;
}

struct filt_scan {
	int ifb_index;
	bool found;
};

/* A u32 filter whose mirred action redirects (egress) to the ifb. */
static int filter_cb(const struct nlmsghdr *h, void *arg)
{
	struct filt_scan *f = arg;
	const struct tcmsg *t = NLMSG_DATA(h);
	const struct nlattr *tb[TCA_MAX + 1], *u[TCA_U32_MAX + 1];

	if (h->nlmsg_type != RTM_NEWTFILTER || h->nlmsg_len < NLMSG_LENGTH(sizeof(*t)) ||
	    nlmsg_index(h, sizeof(*t), tb, TCA_MAX) < 0 || !tb[TCA_KIND] || !tb[TCA_OPTIONS] ||
	    strncmp(nla_payload(tb[TCA_KIND]), "u32", nla_plen(tb[TCA_KIND])) != 0 ||
	    nla_index_nested(tb[TCA_OPTIONS], u, TCA_U32_MAX) < 0 || !u[TCA_U32_ACT])
		return 0;
	nla_each (act, u[TCA_U32_ACT]) {
		const struct nlattr *kind = nla_child(act, TCA_ACT_KIND),
				    *parms = nla_child(nla_child(act, TCA_ACT_OPTIONS), TCA_MIRRED_PARMS);
		struct tc_mirred m;
		if (!kind || strncmp(nla_payload(kind), "mirred", nla_plen(kind)) != 0 || !parms || nla_plen(parms) < sizeof(m))
			continue;
		memcpy(&m, nla_payload(parms), sizeof(m));
		if (m.eaction == TCA_EGRESS_REDIR && (int)m.ifindex == f->ifb_index)
			f->found = true;
	}
	return 0;
}

static int redirect_present(struct nlsock *sk, int ifindex, int ifb_index, bool *found, struct cni_error *e)
{
	struct filt_scan f = { ifb_index, false };
	int rc;
	for (int tries = 0; tries < 5; tries++) {
		struct nlbuf w = { 0 };
		struct tcmsg t = { .tcm_family = AF_UNSPEC, .tcm_ifindex = ifindex, .tcm_parent = H_INGRESS };
		f.found = false;
		nlb_msg(&w, RTM_GETTFILTER, NLM_F_DUMP, &t, sizeof(t));
		rc = nls_request(sk, &w, filter_cb, &f);
		nlb_free(&w);
		if (rc != -EINTR)
			break;
	}
	if (rc < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "listing the filters of interface %d: %s", ifindex, cni_strerror(-rc));
	*found = f.found;
	return 0;
}

static int ifb_create(struct nlsock *sk, const char *name, int mtu, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	struct ifinfomsg ifi = { .ifi_family = AF_UNSPEC, .ifi_flags = IFF_UP, .ifi_change = IFF_UP };
	int rc;
	nlb_msg(&w, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, &ifi, sizeof(ifi));
	nlb_str(&w, IFLA_IFNAME, name);
	if (mtu > 0)
		nlb_u32(&w, IFLA_MTU, (uint32_t)mtu);
	nlb_u32(&w, IFLA_TXQLEN, 0);
	size_t li = nlb_nest(&w, IFLA_LINKINFO | NLA_F_NESTED);
	nlb_str(&w, IFLA_INFO_KIND, "ifb");
	nlb_nest_end(&w, li);
	if ((rc = tc_request(sk, &w)) < 0) {
		cni_errf(e, rc == -EEXIST ? CNI_ERR_EXISTS : CNI_ERR_KERNEL, "bandwidth: adding ifb device %s: %s", name,
			 cni_strerror(-rc));
		return rc;
	}
	return 0;
}

/* ---- the host end of the container's veth ---- */

/* The host link that is CNI_IFNAME's veth peer and a host-side interface of prevResult. */
static int host_iface(struct cni_ctx *c, struct nlsock *sk, struct cnl_link *host)
{
	struct attach_ns ns;
	struct cnl_link cl;
	int r, rc = -1;

	if ((r = attach_ns_prepare(&ns, c->netns, &c->err)) != 0) {
		if (r > 0)
			cni_errf(&c->err, CNI_ERR_INVALID_NETNS, "bandwidth: network namespace %s does not exist", c->netns);
		goto out;
	}
	if (attach_ns_sock(&ns, c->netns, NULL, 0, &c->err) < 0)
		goto out;
	if ((r = cnl_link_get(ns.csk, c->ifname, 0, &cl, &c->err)) <= 0) {
		if (r == 0)
			cni_errf(&c->err, CNI_ERR_INVALID_CONFIG, "bandwidth: there is no interface %s in the container",
				 c->ifname);
		goto out;
	}
	/* the peer must be in another namespace (the host): an index alone names a link of the
	 * container's own when both ends are in it */
	if (strcmp(cl.kind, "veth") != 0 || cl.link <= 0 || cl.link_netnsid < 0) {
		cni_errf(&c->err, CNI_ERR_INVALID_CONFIG, "bandwidth: container interface %s has no veth peer", c->ifname);
		goto out;
	}
	if ((r = cnl_link_get(sk, NULL, cl.link, host, &c->err)) <= 0) {
		if (r == 0)
			cni_errf(&c->err, CNI_ERR_INVALID_CONFIG, "bandwidth: veth peer with index %d is not in host ns",
				 cl.link);
		goto out;
	}
	for (size_t i = 0; i < c->prev.n_ifaces; i++)
		if ((!c->prev.ifaces[i].sandbox || !*c->prev.ifaces[i].sandbox) &&
		    strcmp(c->prev.ifaces[i].name, host->name) == 0)
			rc = 0;
	if (rc < 0)
		cni_errf(
			&c->err, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"prevResult\": no host interface is the veth peer (%s) of container interface %s",
			host->name, c->ifname);
out:
	attach_ns_close(&ns);
	return rc;
}

/* ---- verbs ---- */

struct tc_undo {
	struct nlsock *sk;
	int ifindex;
	uint32_t handle, parent;
	char dev[16];
};

static void undo_qdisc(void *arg)
{
	struct tc_undo *x = arg;
	struct cni_error ig = { 0 };
	qdisc_del(x->sk, x->ifindex, x->handle, x->parent, x->dev, &ig);
}

static void undo_link(void *arg)
{
	struct tc_undo *x = arg;
	struct cni_error ig = { 0 };
	cnl_link_del(x->sk, 0, x->dev, &ig);
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	struct bw_conf *p = conf;
	struct nlsock *sk = NULL;
	struct cnl_link host, ifb;
	struct undo u = { 0 };
	struct tbf_params tp;
	int rc = -1;

	if (!shaping(p))
		goto done; /* nothing asked: prevResult passes through */
	if (cnl_open(&sk, &c->err) < 0 || host_iface(c, sk, &host) < 0)
		goto out;
	if (p->in_rate) {
		struct tc_undo x = { sk, host.index, H_ROOT_TBF, TC_H_ROOT, "" };
		snprintf(x.dev, sizeof(x.dev), "%s", host.name);
		tbf_compute(p->in_rate, p->in_burst, &tp);
		if (tbf_set(sk, host.index, &tp, host.name, &c->err) < 0 ||
		    undo_push(&u, undo_qdisc, &x, sizeof(x), &c->err) < 0 || FAULT(&c->err, "bandwidth ingress tbf") < 0)
			goto out;
	}
	if (p->eg_rate) {
		int r;
		struct tc_undo x = { sk, 0, 0, 0, "" };
		snprintf(x.dev, sizeof(x.dev), "%s", p->ifb);
		/* a repeated ADD finds the ifb it made */
		if ((r = cnl_link_get(sk, p->ifb, 0, &ifb, &c->err)) < 0)
			goto out;
		if (r && (strcmp(ifb.kind, "ifb") != 0 || strcmp(ifb.alias, p->alias) != 0)) {
			cni_errf(&c->err, CNI_ERR_EXISTS, "bandwidth: a device named %s exists and is not this attachment's ifb",
				 p->ifb);
			goto out;
		}
		if (!r) {
			if (ifb_create(sk, p->ifb, host.mtu, &c->err) < 0 || undo_push(&u, undo_link, &x, sizeof(x), &c->err) < 0)
				goto out;
			if (cnl_link_get(sk, p->ifb, 0, &ifb, &c->err) <= 0 ||
			    cnl_link_set_alias(sk, ifb.index, p->alias, &c->err) < 0)
				goto out;
		}
		if (FAULT(&c->err, "bandwidth ifb") < 0)
			goto out;
		struct tc_undo xi = { sk, host.index, H_INGRESS, TC_H_INGRESS, "" };
		bool have = false;
		snprintf(xi.dev, sizeof(xi.dev), "%s", host.name);
		if (ingress_add(sk, host.index, host.name, &c->err) < 0 ||
		    undo_push(&u, undo_qdisc, &xi, sizeof(xi), &c->err) < 0 || FAULT(&c->err, "bandwidth ingress qdisc") < 0)
			goto out;
		if (redirect_present(sk, host.index, ifb.index, &have, &c->err) < 0 ||
		    (!have && redirect_add(sk, host.index, ifb.index, host.name, &c->err) < 0) ||
		    FAULT(&c->err, "bandwidth redirect") < 0)
			goto out;
		tbf_compute(p->eg_rate, p->eg_burst, &tp);
		if (tbf_set(sk, ifb.index, &tp, p->ifb, &c->err) < 0 || FAULT(&c->err, "bandwidth egress tbf") < 0)
			goto out;
	}
done:
	/* the result is prevResult (moved: skel frees both), plus the ifb */
	*out = c->prev;
	memset(&c->prev, 0, sizeof(c->prev));
	c->has_prev = false;
	if (p->eg_rate) {
		struct cni_iface *n = realloc(out->ifaces, (out->n_ifaces + 1) * sizeof(*n));
		char mac[18];
		if (!n) {
			cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		}
		out->ifaces = n;
		memset(&n[out->n_ifaces], 0, sizeof(*n));
		snprintf(n[out->n_ifaces].name, sizeof(n->name), "%s", p->ifb);
		if (ifb.has_mac)
			snprintf(n[out->n_ifaces].mac, sizeof(n->mac), "%s", cnl_mac_fmt(ifb.mac, mac));
		out->n_ifaces++;
	}
	rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	cnl_close(sk);
	return rc;
}

/* The host end's qdiscs of ours: the tbf root and the ingress qdisc. */
static int host_qdiscs_del(struct nlsock *sk, const struct cnl_link *host, struct cni_error *e)
{
	struct qlist l;
	const struct qdisc_info *q;
	if (qdisc_list(sk, host->index, &l, e) < 0)
		return -1;
	if ((q = qdisc_find(&l, TC_H_ROOT, "tbf")) && q->handle == H_ROOT_TBF &&
	    qdisc_del(sk, host->index, H_ROOT_TBF, TC_H_ROOT, host->name, e) < 0)
		return -1;
	if (qdisc_find(&l, TC_H_INGRESS, "ingress") && qdisc_del(sk, host->index, H_INGRESS, TC_H_INGRESS, host->name, e) < 0)
		return -1;
	return 0;
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	struct bw_conf *p = conf;
	struct nlsock *sk = NULL;
	struct cnl_link host, ifb;
	int rc = -1, r;

	if (cnl_open(&sk, &c->err) < 0)
		goto out;
	/* the host end, while the container's netns and the veth are there (with them gone, the
	 * qdiscs went with the veth) */
	if (c->has_prev && c->netns && *c->netns) {
		if (host_iface(c, sk, &host) == 0) {
			if (host_qdiscs_del(sk, &host, &c->err) < 0)
				goto out;
		} else {
			cni_err_clear(&c->err);
		}
	}
	if ((r = cnl_link_get(sk, p->ifb, 0, &ifb, &c->err)) < 0)
		goto out;
	if (r && strcmp(ifb.kind, "ifb") == 0 && cnl_link_del(sk, ifb.index, p->ifb, &c->err) < 0)
		goto out;
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

static int tbf_check(struct cni_ctx *c, struct nlsock *sk, int ifindex, const char *dev, const char *what, uint64_t rate,
		     uint64_t burst)
{
	struct qlist l;
	struct tbf_params want;
	const struct qdisc_info *q;

	if (qdisc_list(sk, ifindex, &l, &c->err) < 0)
		return -1;
	tbf_compute(rate, burst, &want);
	if (!(q = qdisc_find(&l, TC_H_ROOT, "tbf")) || !q->has_tbf)
		return cni_check_fail(&c->err, "bandwidth: %s: there is no tbf root qdisc on %s", what, dev);
	if (q->tbf.rate != want.rate)
		return cni_check_fail(&c->err, "bandwidth: %s: the tbf rate on %s is %llu bytes/s, expected %llu", what, dev,
				      (unsigned long long)q->tbf.rate, (unsigned long long)want.rate);
	if (q->tbf.limit != want.limit)
		return cni_check_fail(&c->err, "bandwidth: %s: the tbf limit on %s is %u bytes, expected %u", what, dev,
				      q->tbf.limit, want.limit);
	if (q->tbf.buffer != want.buffer)
		return cni_check_fail(&c->err, "bandwidth: %s: the tbf buffer on %s is %u ticks, expected %u", what, dev,
				      q->tbf.buffer, want.buffer);
	return 0;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	struct bw_conf *p = conf;
	struct nlsock *sk = NULL;
	struct cnl_link host, ifb;
	int rc = -1, r;

	if (!shaping(p))
		return 0;
	if (cnl_open(&sk, &c->err) < 0 || host_iface(c, sk, &host) < 0)
		goto out;
	if (p->in_rate && tbf_check(c, sk, host.index, host.name, "ingress", p->in_rate, p->in_burst) < 0)
		goto out;
	if (p->eg_rate) {
		struct qlist l;
		bool have = false;
		if ((r = cnl_link_get(sk, p->ifb, 0, &ifb, &c->err)) < 0)
			goto out;
		if (!r || strcmp(ifb.kind, "ifb") != 0) {
			cni_check_fail(&c->err, "bandwidth: egress: ifb device %s is missing", p->ifb);
			goto out;
		}
		if (!(ifb.flags & IFF_UP)) {
			cni_check_fail(&c->err, "bandwidth: egress: ifb device %s is down", p->ifb);
			goto out;
		}
		if (tbf_check(c, sk, ifb.index, p->ifb, "egress", p->eg_rate, p->eg_burst) < 0 ||
		    qdisc_list(sk, host.index, &l, &c->err) < 0)
			goto out;
		if (!qdisc_find(&l, TC_H_INGRESS, "ingress")) {
			cni_check_fail(&c->err, "bandwidth: egress: there is no ingress qdisc on %s", host.name);
			goto out;
		}
		if (redirect_present(sk, host.index, ifb.index, &have, &c->err) < 0)
			goto out;
		if (!have) {
			cni_check_fail(&c->err, "bandwidth: egress: no filter on %s redirects its traffic to %s", host.name,
				       p->ifb);
			goto out;
		}
	}
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

struct gc_scan {
	struct cni_ctx *c;
	char prefix[300];
	int idx[256];
	char names[256][16];
	size_t n;
};

static int gc_cb(const struct cnl_link *l, void *arg)
{
	struct gc_scan *g = arg;
	size_t pl = strlen(g->prefix);
	if (strcmp(l->kind, "ifb") != 0 || strncmp(l->alias, g->prefix, pl) != 0 || g->n >= 256)
		return 0;
	const char *id = l->alias + pl;
	for (size_t i = 0; i < g->c->n_valid; i++)
		if (g->c->valid[i].container_id && strcmp(g->c->valid[i].container_id, id) == 0)
			return 0;
	g->idx[g->n] = l->index;
	snprintf(g->names[g->n], sizeof(g->names[0]), "%s", l->name);
	g->n++;
	return 0;
}

/* The ifb devices this plugin made for this network whose container is not in the valid set
 * (their alias names both; those of other networks, and unmarked ones, are left alone). */
static int cmd_gc(struct cni_ctx *c, void *conf)
{
	(void)conf;
	struct nlsock *sk = NULL;
	struct gc_scan *g = calloc(1, sizeof(*g));
	int rc = -1;

	if (!g) {
		cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
		return -1;
	}
	g->c = c;
	snprintf(g->prefix, sizeof(g->prefix), ALIAS_PREFIX "%s id=", c->name ? c->name : "");
	if (cnl_open(&sk, &c->err) < 0 || cnl_link_dump(sk, 0, gc_cb, g, &c->err) < 0)
		goto out;
	for (size_t i = 0; i < g->n; i++)
		if (cnl_link_del(sk, g->idx[i], g->names[i], &c->err) < 0) {
			cni_err_prefix(&c->err, "bandwidth: GC of network %s: ", c->name);
			goto out;
		}
	rc = 0;
out:
	free(g);
	cnl_close(sk);
	return rc;
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	(void)conf;
	struct nlsock *sk = NULL;
	int rc = cnl_open(&sk, &c->err);
	cnl_close(sk);
	return rc;
}

/* setns into the container (SYS_ADMIN, with SYS_PTRACE for a netns of another process's), tc
 * and links (NET_ADMIN). */
static const int bw_caps[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1 };

int main(void)
{
	static const struct cni_plugin pl = {
		.name = "bandwidth",
		.any_cni_args = true,
		.caps = bw_caps,
		.conf_size = sizeof(struct bw_conf),
		.parse = parse,
		.add = cmd_add,
		.check = cmd_check,
		.del = cmd_del,
		.gc = cmd_gc,
		.status = cmd_status,
	};
	return cni_plugin_main(&pl);
}
