/* vlan plugin: an 802.1Q sub-interface of `master`. Without `bridge`, the reference plugin's
 * behaviour: a new sub-interface moved into the container as CNI_IFNAME. With `bridge` (the
 * seed's virtual switch): the host keeps one sub-interface master.vlanId per VLAN, a port of a
 * per-VLAN bridge, and containers join that bridge by veth (common/attach.c), so any number of
 * containers share one VLAN on one host. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>
#include <net/if.h>
#include <linux/capability.h>

#include "attach.h"
#include "conf.h"
#include "fault.h"
#include "ipam.h"
#include "nl.h"
#include "shdev.h"
#include "sha512.h"

struct vlan_conf {
	struct attach_conf a;
	const char *master;
	long long vid;
	bool link_in_container;
	bool bridged;
	char sub[16]; /* bridged mode: the host's sub-interface */
};

static int parse(struct cni_ctx *c, void *conf)
{
	struct vlan_conf *v = conf;
	struct cni_error *e = &c->err;
	const char *br = NULL;
	int r;
	if (conf_string(c->conf, "", "master", &v->master, e) < 0)
		return -1;
	if (!v->master || !*v->master)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"master\" (the parent link) is required");
	if ((r = conf_int(c->conf, "", "vlanId", 1, 4094, &v->vid, e)) < 0)
		return -1;
	if (!r)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"vlanId\" (1..4094) is required");
	if (conf_bool(c->conf, "", "linkInContainer", &v->link_in_container, e) < 0 ||
	    conf_string(c->conf, "", "bridge", &br, e) < 0)
		return -1;
	v->bridged = br != NULL;
	if (attach_conf_parse(c, &v->a, "cni0", e) < 0)
		return -1;
	if ((size_t)snprintf(v->sub, sizeof(v->sub), "%s.%lld", v->master, v->vid) >= sizeof(v->sub)) {
		char h[9];
		sha512_hexf(h, 8, "%s", v->master); /* an interface name: cannot fail */
		snprintf(v->sub, sizeof(v->sub), "vl%s.%lld", h, v->vid);
	}
	return 0;
}

static int verify(struct cni_ctx *c, void *conf)
{
	const struct vlan_conf *v = conf;
	struct cni_error *e = &c->err;
	if (!conf_valid_ifname(v->master))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"master\": \"%s\" is not a valid interface name", v->master);
	if (v->bridged && v->link_in_container)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: fields \"bridge\" and \"linkInContainer\" exclude each other");
	return 0;
}

static void free_conf(void *conf)
{
	attach_conf_free(&((struct vlan_conf *)conf)->a);
}

static int no_8021q(int r, const struct vlan_conf *v, struct cni_error *e)
{
	if (r == -EOPNOTSUPP)
		return cni_errf_force(e, CNI_ERR_KERNEL, "the kernel has no 8021q support: load module 8021q (VLAN %lld on %s)",
				      v->vid, v->master);
	return -1;
}

static int master_link(struct nlsock *sk, const struct vlan_conf *v, const char *where, struct cnl_link *m, struct cni_error *e)
{
	int r = cnl_link_get(sk, v->master, 0, m, e);
	if (r <= 0)
		return r < 0 ? -1
			     : cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"master\": %s does not exist %s",
					v->master, where);
	if (v->a.mtu > m->mtu)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"mtu\": %d is above master %s's MTU %d",
				v->a.mtu, v->master, m->mtu);
	return 0;
}

/* ---- reference mode: the sub-interface moves into the container ---- */

static void tmp_name(const struct cni_ctx *c, char out[16])
{
	char h[12];
	sha512_hexf(h, 11, "%s%s", c->container_id, c->ifname); /* under 2048 bytes: cannot fail */
	snprintf(out, 16, "vlt%s", h);
}

struct ref_undo {
	struct attach_ns *ns;
	const char *ifname, *tmp;
	const struct cnl_link *l;
};

/* The sub-interface this ADD made in the container: under its name or its temporary one. */
static void undo_ref_link(void *arg)
{
	struct ref_undo *x = arg;
	struct cni_error ig = { 0 };
	struct cnl_link k;
	if (!x->ns->csk)
		return;
	if (cnl_link_get(x->ns->csk, x->ifname, 0, &k, &ig) == 1 && strcmp(k.kind, "vlan") == 0 && k.index == x->l->index)
		cnl_link_del(x->ns->csk, k.index, x->ifname, &ig);
	else if (cnl_link_get(x->ns->csk, x->tmp, 0, &k, &ig) == 1)
		cnl_link_del(x->ns->csk, k.index, x->tmp, &ig);
}

/* The sub-interface of master m, made under a temporary name straight into the netns (a name
 * taken on the host must not get in the way); *l is it. */
static int ref_create(struct cni_ctx *c, struct vlan_conf *v, struct nlsock *msk, struct attach_ns *ns, const struct cnl_link *m,
		      const char *tmp, struct cnl_link *l)
{
	struct cni_error *e = &c->err;
	for (int attempt = 0;; attempt++) {
		int r = cnl_vlan_create(msk, tmp, m->index, (uint16_t)v->vid, v->a.mtu ? v->a.mtu : m->mtu,
					v->a.has_mac ? v->a.mac : NULL, v->link_in_container ? -1 : ns->nsfd, false, e);
		if (r == 0)
			return 0;
		if (r != -EEXIST || attempt)
			return no_8021q(r, v, e);
		/* our own temporary link left by a crash, or this VLAN already used on the master */
		cni_err_clear(e);
		if (cnl_link_get(ns->csk, tmp, 0, l, e) == 1 && strcmp(l->kind, "vlan") == 0) {
			cnl_link_del(ns->csk, l->index, tmp, e);
			continue;
		}
		return cni_errf(
			e, CNI_ERR_EXISTS,
			"master %s already has a VLAN %lld sub-interface (used by another container or the host); use \"bridge\" to share a VLAN between containers",
			v->master, v->vid);
	}
}

static int ref_add(struct cni_ctx *c, struct vlan_conf *v, struct nlsock *sk, struct cni_result *out)
{
	struct cni_error *e = &c->err;
	struct attach_ns ns = { -1, -1, NULL };
	struct cni_ipam_add ipam;
	struct cni_result ires = { 0 };
	struct cnl_link m, l = { 0 };
	struct undo u = { 0 };
	int r, rc = -1;
	char tmp[16], mac[18];

	tmp_name(c, tmp);
	if ((r = attach_ns_prepare(&ns, c->netns, e)) != 0) {
		if (r == 1)
			cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if (attach_ns_sock(&ns, c->netns, NULL, 0, e) < 0)
		goto out;
	/* The master: in the host, or (linkInContainer) already in the container. */
	struct nlsock *msk = v->link_in_container ? ns.csk : sk;
	if (master_link(msk, v, v->link_in_container ? "in the container" : "on the host", &m, e) < 0)
		goto out;
	if ((r = cnl_link_get(ns.csk, c->ifname, 0, &l, e)) != 0) {
		if (r == 1)
			cni_errf(e, CNI_ERR_EXISTS, "interface \"%s\" already exists in CNI_NETNS %s", c->ifname, c->netns);
		goto out;
	}
	/* IPAM first: its errors (a bad ipam config, an exhausted range) come before the kernel's */
	if (v->a.has_ipam && (cni_ipam_add_start(&ipam, c, &u, e) < 0 || cni_ipam_add_finish(&ipam, &ires, e) < 0))
		goto out;
	if (ref_create(c, v, msk, &ns, &m, tmp, &l) < 0 ||
	    undo_push(&u, undo_ref_link, &(struct ref_undo){ &ns, c->ifname, tmp, &l }, sizeof(struct ref_undo), e) < 0 ||
	    FAULT(e, "vlan created") < 0)
		goto out;
	if (cnl_link_get(ns.csk, tmp, 0, &l, e) <= 0 || cnl_link_rename(ns.csk, l.index, c->ifname, e) < 0) {
		if (!e->code)
			cni_errf(e, CNI_ERR_KERNEL, "VLAN link %s vanished after creation", tmp);
		goto out;
	}
	if (cni_result_add_iface(out, c->ifname, cnl_mac_fmt(l.mac, mac), c->netns) < 0) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (attach_ctr_apply(c, &v->a, &ns, &ires, 0, out) < 0)
		goto out;
	if (v->a.has_dns) {
		if (cni_dns_copy(&out->dns, &v->a.dns) < 0) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		}
	} else {
		out->dns = ires.dns;
		memset(&ires.dns, 0, sizeof(ires.dns));
	}
	rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	cni_result_free(&ires);
	attach_ns_close(&ns);
	return rc;
}

static int ref_del(struct cni_ctx *c, struct vlan_conf *v)
{
	struct cni_error *e = &c->err, first = { 0 };
	struct attach_ns ns = { -1, -1, NULL };
	struct cni_exec ipam;
	bool running = false;
	if (v->a.has_ipam && cni_ipam_start(c, CNI_DEL, &ipam, &first) == 0)
		running = true;
	if (c->netns && attach_ns_prepare(&ns, c->netns, e) == 0 && attach_ns_sock(&ns, c->netns, NULL, 0, e) == 0) {
		struct cnl_link l;
		char tmp[16];
		if (cnl_link_get(ns.csk, c->ifname, 0, &l, e) == 1 && strcmp(l.kind, "vlan") == 0)
			cnl_link_del(ns.csk, l.index, c->ifname, e);
		/* and the sub-interface under its temporary name, if an ADD died before renaming it */
		tmp_name(c, tmp);
		if (!e->code && cnl_link_get(ns.csk, tmp, 0, &l, e) == 1 && strcmp(l.kind, "vlan") == 0)
			cnl_link_del(ns.csk, l.index, tmp, e);
	}
	/* a netns that is gone or not a netns any more: nothing of ours is left in it */
	if (e->code && e->code != CNI_ERR_INVALID_ENV && !first.code)
		first = *e;
	cni_err_clear(e);
	attach_ns_close(&ns);
	if (running && cni_exec_finish(&ipam, NULL, e) < 0 && !first.code)
		first = *e;
	if (first.code) {
		*e = first;
		return -1;
	}
	cni_err_clear(e);
	return 0;
}

static int ref_check(struct cni_ctx *c, struct vlan_conf *v, struct nlsock *sk)
{
	struct cni_error *e = &c->err;
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link l, m;
	int idx = -1, rc = -1, r;
	char mac[18];
	if (!c->has_prev)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: CHECK needs \"prevResult\"");
	if (v->a.has_ipam && cni_ipam_exec(c, CNI_CHECK, NULL, e) < 0)
		return -1;
	for (size_t i = 0; i < c->prev.n_ifaces; i++)
		if (strcmp(c->prev.ifaces[i].name, c->ifname) == 0 && c->prev.ifaces[i].sandbox &&
		    strcmp(c->prev.ifaces[i].sandbox, c->netns) == 0)
			idx = (int)i;
	if (idx < 0)
		return cni_check_fail(e, "prevResult has no interface %s in sandbox %s", c->ifname, c->netns);
	if ((r = attach_ns_prepare(&ns, c->netns, e)) != 0 || attach_ns_sock(&ns, c->netns, NULL, 0, e) < 0) {
		if (r == 1)
			cni_check_fail(e, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if ((r = cnl_link_get(ns.csk, c->ifname, 0, &l, e)) <= 0) {
		if (!r)
			cni_check_fail(e, "interface %s not found in CNI_NETNS %s", c->ifname, c->netns);
		goto out;
	}
	if (strcmp(l.kind, "vlan") != 0 || l.vlan_id != v->vid) {
		cni_check_fail(e, "interface %s is not VLAN %lld (kind %s, id %d)", c->ifname, v->vid, l.kind, l.vlan_id);
		goto out;
	}
	if (c->prev.ifaces[idx].mac[0] && strcmp(c->prev.ifaces[idx].mac, cnl_mac_fmt(l.mac, mac)) != 0) {
		cni_check_fail(e, "interface %s MAC %s differs from prevResult", c->ifname, mac);
		goto out;
	}
	if (!(l.flags & IFF_UP)) {
		cni_check_fail(e, "interface %s in the container is down", c->ifname);
		goto out;
	}
	struct nlsock *msk = v->link_in_container ? ns.csk : sk;
	if (cnl_link_get(msk, NULL, l.link, &m, e) != 1 || strcmp(m.name, v->master) != 0) {
		cni_check_fail(e, "interface %s's parent is not master %s", c->ifname, v->master);
		goto out;
	}
	rc = attach_check_ctr(c, &ns, l.index, idx);
out:
	attach_ns_close(&ns);
	return rc;
}

/* ---- bridged mode: one sub-interface per VLAN on a per-VLAN bridge ---- */

static int vlan_lock(const struct vlan_conf *v, int how, struct cni_error *e)
{
	char n[64];
	snprintf(n, sizeof(n), "%s-%lld", v->master, v->vid);
	return shdev_lock("vlan", n, how, e);
}

static int sub_matches(const struct vlan_conf *v, const struct cnl_link *s, const struct cnl_link *m, struct cni_error *e)
{
	if (strcmp(s->kind, "vlan") != 0)
		return cni_errf(e, CNI_ERR_EXISTS, "%s exists and is not a VLAN sub-interface (kind \"%s\")", v->sub, s->kind);
	if (s->vlan_id != v->vid || s->link != m->index)
		return cni_errf(e, CNI_ERR_EXISTS,
				"existing %s is VLAN %d of ifindex %d, not VLAN %lld of %s; refusing to reconfigure it", v->sub,
				s->vlan_id, s->link, v->vid, v->master);
	return 0;
}

/* The bridge is gone (deleted by someone): the VLAN's sub-interface, ours when it is that VLAN of
 * the master and a port of nothing, has no attachment left to serve and goes too. */
static int remove_orphan_sub(struct nlsock *sk, const struct vlan_conf *v, struct cni_error *e)
{
	struct cnl_link s, m;
	struct cni_error ig = { 0 };
	int r;
	if ((r = cnl_link_get(sk, v->sub, 0, &s, e)) <= 0 || (r = cnl_link_get(sk, v->master, 0, &m, e)) <= 0)
		return r < 0 ? -1 : 0;
	if (s.master || sub_matches(v, &s, &m, &ig) < 0)
		return 0;
	return cnl_link_del(sk, s.index, NULL, e) < 0 ? -1 : 0;
}

/* With the last container gone, the sub-interface and the bridge go too. */
static int remove_if_unused(struct nlsock *sk, const struct vlan_conf *v, struct cni_error *e)
{
	struct cnl_link br, s;
	int r;
	if ((r = cnl_link_get(sk, v->a.bridge, 0, &br, e)) < 0)
		return -1;
	if (r == 0)
		return remove_orphan_sub(sk, v, e);
	if (strcmp(br.kind, "bridge") != 0)
		return 0;
	if ((r = cnl_link_get(sk, v->sub, 0, &s, e)) < 0)
		return -1;
	bool sub_here = r == 1 && s.master == br.index && strcmp(s.kind, "vlan") == 0;
	return shdev_release(sk, &br, sub_here ? &s : NULL, true, e);
}

struct vlan_undo {
	struct vlan_conf *v;
	struct nlsock *sk;
	int *lock;
};

/* A failed ADD removes the bridge and sub-interface it made, only if no other container uses
 * them meanwhile: under the VLAN's lock taken exclusive. */
static void undo_shared(void *arg)
{
	struct vlan_undo *x = arg;
	struct cni_error ig = { 0 };
	close(*x->lock);
	if ((*x->lock = vlan_lock(x->v, LOCK_EX, &ig)) >= 0)
		remove_if_unused(x->sk, x->v, &ig);
}

/* The host's sub-interface of the VLAN, a port of br and up: made when missing (*created). */
static int ensure_sub(struct vlan_conf *v, struct nlsock *sk, const struct cnl_link *m, const struct cnl_link *br,
		      struct cnl_link *s, bool exists, bool *created, struct cni_error *e)
{
	int r;
	if (!exists) {
		if ((r = cnl_vlan_create(sk, v->sub, m->index, (uint16_t)v->vid, v->a.mtu, NULL, -1, true, e)) < 0 &&
		    r != -EEXIST)
			return no_8021q(r, v, e);
		*created = r == 0;
		cni_err_clear(e);
		if (cnl_link_get(sk, v->sub, 0, s, e) <= 0 || sub_matches(v, s, m, e) < 0)
			return e->code ? -1 : cni_errf(e, CNI_ERR_KERNEL, "%s vanished after creation", v->sub);
	}
	return shdev_enslave(sk, s, br, v->sub, e);
}

static int bridged_add(struct cni_ctx *c, struct vlan_conf *v, struct nlsock *sk, struct cni_result *out)
{
	struct cni_error *e = &c->err;
	struct cnl_link m, s, br;
	struct undo u = { 0 };
	int lock, r, rc = -1;
	struct vlan_undo x = { v, sk, &lock };
	bool br_created = false, sub_created = false;
	if (master_link(sk, v, "on the host", &m, e) < 0)
		return -1;
	if (!v->a.mtu)
		v->a.mtu = m.mtu;
	if ((lock = vlan_lock(v, LOCK_SH, e)) < 0)
		return -1;
	if ((r = cnl_link_get(sk, v->sub, 0, &s, e)) < 0 || (r == 1 && sub_matches(v, &s, &m, e) < 0))
		goto out;
	int made = attach_ensure_bridge(sk, &v->a, &br, &br_created, e);
	if ((br_created && undo_push(&u, undo_shared, &x, sizeof(x), e) < 0) || made < 0 || FAULT(e, "vlan bridge") < 0)
		goto out;
	made = ensure_sub(v, sk, &m, &br, &s, r == 1, &sub_created, e);
	if ((sub_created && !br_created && undo_push(&u, undo_shared, &x, sizeof(x), e) < 0) || made < 0)
		goto out;
	if ((!(m.flags & IFF_UP) && cnl_link_modify(sk, m.index, IFF_UP, IFF_UP, 0, NULL, -1, e) < 0) ||
	    FAULT(e, "vlan sub-interface") < 0)
		goto out;
	if (attach_add(c, &v->a, sk, &br, out) < 0)
		goto out;
	cni_result_add_iface(out, s.name, s.has_mac ? cnl_mac_fmt(s.mac, (char[18]){ 0 }) : "", NULL);
	rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	if (lock >= 0)
		close(lock);
	return rc;
}

/* ---- verbs ---- */

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	struct vlan_conf *v = conf;
	struct nlsock *sk = NULL;
	int rc = -1;
	if (cnl_open(&sk, &c->err) == 0)
		rc = v->bridged ? bridged_add(c, v, sk, out) : ref_add(c, v, sk, out);
	cnl_close(sk);
	return rc;
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	struct vlan_conf *v = conf;
	struct nlsock *sk = NULL;
	int rc = -1, lock;
	if (cnl_open(&sk, &c->err) < 0)
		goto out;
	if (!v->bridged) {
		rc = ref_del(c, v);
		goto out;
	}
	rc = attach_del(c, &v->a, sk);
	if ((lock = vlan_lock(v, LOCK_EX, &c->err)) < 0 || remove_if_unused(sk, v, &c->err) < 0)
		rc = -1;
	if (lock >= 0)
		close(lock);
out:
	cnl_close(sk);
	return rc;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	struct vlan_conf *v = conf;
	struct nlsock *sk = NULL;
	struct cnl_link m, s, br;
	int rc = -1;
	if (cnl_open(&sk, &c->err) < 0)
		goto out;
	if (!v->bridged) {
		rc = ref_check(c, v, sk);
		goto out;
	}
	if (attach_check(c, &v->a, sk) < 0)
		goto out;
	if (cnl_link_get(sk, v->master, 0, &m, &c->err) != 1 || cnl_link_get(sk, v->sub, 0, &s, &c->err) != 1 ||
	    cnl_link_get(sk, v->a.bridge, 0, &br, &c->err) != 1 || sub_matches(v, &s, &m, &c->err) < 0 || s.master != br.index ||
	    !(s.flags & IFF_UP)) {
		cni_errf_force(&c->err, CNI_ERR_CHECK_FAILED, "%s is not an up VLAN %lld sub-interface of %s on bridge %s",
			       v->sub, v->vid, v->master, v->a.bridge);
		goto out;
	}
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

static int cmd_gc(struct cni_ctx *c, void *conf)
{
	const struct vlan_conf *v = conf;
	return v->bridged ? attach_gc(c, &v->a) : (v->a.has_ipam ? cni_ipam_exec(c, CNI_GC, NULL, &c->err) : 0);
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	struct vlan_conf *v = conf;
	struct nlsock *sk = NULL;
	struct cnl_link m;
	int rc = -1;
	if (attach_status(c, &v->a) < 0)
		goto out;
	if (!v->link_in_container) {
		if (cnl_open(&sk, &c->err) < 0)
			goto out;
		if (cnl_link_get(sk, v->master, 0, &m, &c->err) != 1) {
			cni_errf_force(&c->err, CNI_ERR_NOT_AVAILABLE, "vlan: master %s does not exist", v->master);
			goto out;
		}
		if (!(m.flags & IFF_UP) && v->bridged) {
			cni_errf(&c->err, CNI_ERR_LIMITED_CONNECTIVITY, "vlan: master %s is down", v->master);
			goto out;
		}
	}
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

/* reference mode has no host-side rules */
static int cmd_reload(struct cni_ctx *c, void *conf)
{
	const struct vlan_conf *v = conf;
	return v->bridged ? attach_reload(c, &v->a) : 0;
}

static const char *const vlan_args[] = { "MAC", "IP", NULL };
static const int vlan_caps[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1 };

int main(void)
{
	static const struct cni_plugin p = {
		.name = "vlan",
		.inproc_ipam = &hostlocal_plugin,
		.cni_args = vlan_args,
		.caps = vlan_caps,
		.conf_size = sizeof(struct vlan_conf),
		.parse = parse,
		.verify = verify,
		.free_conf = free_conf,
		.add = cmd_add,
		.check = cmd_check,
		.del = cmd_del,
		.gc = cmd_gc,
		.status = cmd_status,
		.reload = cmd_reload,
	};
	return cni_plugin_main(&p);
}
