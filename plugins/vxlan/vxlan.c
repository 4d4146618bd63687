/* vxlan plugin: an L2 overlay across hosts. Per VNI one VXLAN device (the VTEP) enslaved to one
 * bridge; containers join that bridge by veth exactly as the bridge plugin joins them (common/
 * attach.c). Peers on other hosts by unicast head-end replication (all-zero FDB entries) or a
 * multicast group. */
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
#include <linux/if.h>
#include <linux/rtnetlink.h>

#include "attach.h"
#include "cluster.h"
#include "ipam.h"
#include "conf.h"
#include "fault.h"
#include "nl.h"
#include "shdev.h"

#define MAX_PEERS 256

struct vx_conf {
	struct attach_conf a;
	long long vni;
	const char *underlay; /* underlayDevice */
	struct ip local; /* len 0: from the underlay */
	long long port;
	struct ip peers[MAX_PEERS];
	size_t n_peers;
	struct ip group;
	bool learning, keep_vtep;
	bool mtu_given;
	bool local_given; /* "local" in the config (else chosen from the underlay) */
	int vtep_mtu; /* the containers' MTU, or in cluster mode the state's (the agent's VTEP) */
	char vtep[16];
	char bridge[16];
	struct vx_cluster cl; /* cl.net set: cluster mode (the agent owns the VTEP and its FDB) */
};

/* The VTEP's and the bridge's default names from the VNI, then the attachment's config (whose
 * "bridge" may name another). */
static int names_and_attach(struct cni_ctx *c, struct vx_conf *v)
{
	snprintf(v->vtep, sizeof(v->vtep), "vxlan%lld", v->vni);
	snprintf(v->bridge, sizeof(v->bridge), "vxbr%lld", v->vni);
	return attach_conf_parse(c, &v->a, v->bridge, &c->err);
}

/* Cluster mode: the VTEP as the node's state describes it, kept; no peers (the agent's FDB).
 * Without state (DEL, GC, STATUS) the VNI is unknown: vni 0, the bridge found by DEL. */
static int parse_cluster(struct cni_ctx *c, struct vx_conf *v)
{
	const struct vx_cluster *k = &v->cl;
	v->vni = k->vni;
	v->port = k->have_state ? k->port : 4789;
	v->local = k->local;
	v->local_given = k->have_state;
	v->underlay = k->have_state ? k->underlay : NULL;
	v->keep_vtep = true;
	if (names_and_attach(c, v) < 0)
		return -1;
	v->learning = true;
	if (conf_bool(c->conf, "", "learning", &v->learning, &c->err) < 0)
		return -1;
	v->mtu_given = conf_item(c->conf, "mtu") != NULL;
	return 0;
}

static int parse(struct cni_ctx *c, void *conf)
{
	struct vx_conf *v = conf;
	struct cni_error *e = &c->err;
	const cJSON *root = c->conf, *peers = NULL, *it;
	char p[CONF_PATH_MAX];
	int r;

	if ((r = vx_cluster_parse(c, &v->cl, e)) != 0)
		return r < 0 ? -1 : parse_cluster(c, v);
	if ((r = conf_int(root, "", "vni", 1, 16777215, &v->vni, e)) < 0)
		return -1;
	if (!r)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"vni\" (1..16777215) is required");
	if (names_and_attach(c, v) < 0)
		return -1;
	if (conf_string(root, "", "underlayDevice", &v->underlay, e) < 0 || conf_ip(root, "", "local", &v->local, e) < 0 ||
	    conf_ip(root, "", "group", &v->group, e) < 0 || conf_bool(root, "", "keepVtep", &v->keep_vtep, e) < 0)
		return -1;
	v->port = 4789;
	if (conf_int(root, "", "port", 1, 65535, &v->port, e) < 0)
		return -1;
	v->learning = true;
	if (conf_bool(root, "", "learning", &v->learning, e) < 0)
		return -1;
	v->mtu_given = conf_item(root, "mtu") != NULL;
	v->local_given = v->local.len != 0;
	if (conf_array(root, "", "peers", &peers, e) < 0)
		return -1;
	size_t i = 0;
	cJSON_ArrayForEach (it, peers) {
		struct ip ip;
		if (conf_val_ip(it, conf_path_idx(p, "peers", i++), &ip, e) < 0)
			return -1;
		if (v->n_peers == MAX_PEERS)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"peers\": more than %d peers",
					MAX_PEERS);
		bool dup = false;
		for (size_t k = 0; k < v->n_peers; k++)
			dup |= ip_equal(&v->peers[k], &ip);
		if (!dup)
			v->peers[v->n_peers++] = ip;
	}
	return 0;
}

static int verify(struct cni_ctx *c, void *conf)
{
	const struct vx_conf *v = conf;
	struct cni_error *e = &c->err;
	if (v->underlay && !conf_valid_ifname(v->underlay))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"underlayDevice\": \"%s\" is not a valid interface name", v->underlay);
	if (v->n_peers && v->group.len)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: fields \"peers\" and \"group\" exclude each other");
	if (v->group.len) {
		bool mc = ip_is_v4(&v->group) ? (v->group.b[0] & 0xf0) == 0xe0 : v->group.b[0] == 0xff;
		char b[IP_STRLEN];
		if (!mc)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"group\": %s is not a multicast address", ip_fmt(&v->group, b));
		if (!v->underlay)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"group\" needs \"underlayDevice\"");
	}
	/* one underlay family for all VTEP addresses */
	int fam = v->local.len ? v->local.len : v->group.len ? v->group.len : v->n_peers ? v->peers[0].len : 0;
	for (size_t k = 0; k < v->n_peers; k++)
		if (v->peers[k].len != fam)
			return cni_errf(
				e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"peers[%zu]\": address family differs from the other VTEP addresses", k);
	if (v->group.len && v->group.len != fam)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"group\": address family differs from \"local\"");
	return 0;
}

static void free_conf(void *conf)
{
	attach_conf_free(&((struct vx_conf *)conf)->a);
}

static int underlay_family(const struct vx_conf *v)
{
	return v->local.len ? v->local.len : v->group.len ? v->group.len : v->n_peers ? v->peers[0].len : 4;
}

/* Underlay link (given, or the one of the default route) and the local VTEP address (given, or
 * that link's first global address of the underlay family). */
static int resolve_underlay(struct nlsock *sk, struct vx_conf *v, struct cnl_link *ul, struct cni_error *e)
{
	int fam = underlay_family(v), r;
	if (v->underlay) {
		if ((r = cnl_link_get(sk, v->underlay, 0, ul, e)) <= 0)
			return r < 0 ? -1
				     : cni_errf(e, CNI_ERR_INVALID_CONFIG,
						"invalid config: field \"underlayDevice\": %s does not exist", v->underlay);
	} else {
		int oif;
		if (cnl_default_route_oif(sk, fam, &oif, e) < 0) {
			if (e->code == CNI_ERR_KERNEL)
				e->code = CNI_ERR_INVALID_CONFIG;
			cni_err_prefix(e, "invalid config: no \"underlayDevice\" given and no default route to take it from: ");
			return -1;
		}
		if (cnl_link_get(sk, NULL, oif, ul, e) <= 0)
			return e->code ? -1 : cni_errf(e, CNI_ERR_KERNEL, "vxlan: default route's interface %d vanished", oif);
	}
	if (!v->local.len) {
		struct cnl_addr_info *a = NULL;
		struct cnl_link vt;
		size_t n = 0;
		if (cnl_addr_list(sk, ul->index, fam == 4 ? AF_INET : AF_INET6, &a, &n, e) < 0)
			return -1;
		/* an existing VTEP keeps its local address while that is still on the underlay (the kernel
		 * lists the newest address first: a second one added later must not change the choice) */
		if (cnl_link_get(sk, v->vtep, 0, &vt, &(struct cni_error){ 0 }) == 1 && vt.local.len == fam)
			for (size_t i = 0; i < n && !v->local.len; i++)
				if (a[i].scope == RT_SCOPE_UNIVERSE && ip_equal(&a[i].addr.ip, &vt.local))
					v->local = vt.local;
		for (size_t i = 0; i < n && !v->local.len; i++)
			if (a[i].scope == RT_SCOPE_UNIVERSE)
				v->local = a[i].addr.ip;
		free(a);
		if (!v->local.len)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: underlay %s has no IPv%d address to use as \"local\"", ul->name,
					fam == 4 ? 4 : 6);
	}
	/* This node in "peers" (one list written for every node): flooding to itself would loop
	 * frames back and teach the bridge local MACs at the wrong port. */
	size_t k = 0;
	for (size_t i = 0; i < v->n_peers; i++)
		if (!ip_equal(&v->peers[i], &v->local))
			v->peers[k++] = v->peers[i];
	v->n_peers = k;
	/* Overlay MTU: the underlay's minus VXLAN's headers (50 over IPv4, 70 over IPv6). */
	int fit = ul->mtu - (fam == 4 ? 50 : 70);
	if (!v->mtu_given)
		v->a.mtu = fit;
	else if (v->a.mtu > fit) /* larger frames would leave the VTEP and never arrive */
		return cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"invalid config: \"mtu\": %d does not fit the underlay: %s has MTU %d, less %d for VXLAN over IPv%d leaves %d",
			v->a.mtu, ul->name, ul->mtu, fam == 4 ? 50 : 70, fam == 4 ? 4 : 6, fit);
	v->vtep_mtu = v->cl.net && v->cl.mtu ? (int)v->cl.mtu : v->a.mtu;
	if (v->a.mtu > v->vtep_mtu)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: \"mtu\": %d is larger than the cluster VTEP's MTU %d (cni-c-agent's)", v->a.mtu,
				v->vtep_mtu);
	return 0;
}

/* Per-VNI lock: ADDs share it (they create idempotently); the DEL that may remove the VTEP and
 * bridge with the last port takes it exclusively, so no ADD is half-way when that happens. */
static int vni_lock(long long vni, int how, struct cni_error *e)
{
	char n[24];
	snprintf(n, sizeof(n), "%lld", vni);
	return shdev_lock("vxlan", n, how, e);
}

/* An existing VTEP must be the one the config describes: never reconfigured silently. */
static int vtep_matches(const struct vx_conf *v, const struct cnl_link *l, const struct cnl_link *ul, struct cni_error *e)
{
	char a[IP_STRLEN], b[IP_STRLEN];
	if (strcmp(l->kind, "vxlan") != 0)
		return cni_errf(e, CNI_ERR_EXISTS, "vxlan: %s exists and is not a VXLAN device (kind \"%s\")", v->vtep, l->kind);
	if (l->vni != (uint32_t)v->vni)
		return cni_errf(e, CNI_ERR_EXISTS,
				"vxlan: existing %s has VNI %u, config says \"vni\": %lld; refusing to reconfigure it", v->vtep,
				l->vni, v->vni);
	if (l->port != v->port)
		return cni_errf(e, CNI_ERR_EXISTS,
				"vxlan: existing %s uses port %u, config says \"port\": %lld; refusing to reconfigure it",
				v->vtep, l->port, v->port);
	if (!ip_equal(&l->local, &v->local)) {
		if (v->local_given)
			return cni_errf(
				e, CNI_ERR_EXISTS,
				"vxlan: existing %s has local address %s, config says \"local\": %s; refusing to reconfigure it",
				v->vtep, l->local.len ? ip_fmt(&l->local, a) : "(none)", ip_fmt(&v->local, b));
		return cni_errf(
			e, CNI_ERR_EXISTS,
			"vxlan: existing %s has local address %s, which is not an IPv%d address of underlay %s (the config has no "
			"\"local\"; %s would be chosen); refusing to reconfigure it",
			v->vtep, l->local.len ? ip_fmt(&l->local, a) : "(none)", v->local.len == 4 ? 4 : 6, ul->name,
			ip_fmt(&v->local, b));
	}
	if (!ip_equal(&l->group, &v->group))
		return cni_errf(e, CNI_ERR_EXISTS,
				"vxlan: existing %s has group %s, config says \"group\": %s; refusing to reconfigure it", v->vtep,
				l->group.len ? ip_fmt(&l->group, a) : "(none)", v->group.len ? ip_fmt(&v->group, b) : "(none)");
	if (l->learning != v->learning)
		return cni_errf(e, CNI_ERR_EXISTS,
				"vxlan: existing %s has learning %s, config says \"learning\": %s; refusing to reconfigure it",
				v->vtep, l->learning ? "on" : "off", v->learning ? "true" : "false");
	/* containers get the config's MTU: a VTEP with a smaller one would drop their large frames */
	if (l->mtu != v->vtep_mtu)
		return cni_errf(
			e, CNI_ERR_EXISTS,
			"vxlan: existing %s has MTU %d, the config's is %d (\"mtu\", or the underlay's MTU less VXLAN's headers); refusing to reconfigure it",
			v->vtep, l->mtu, v->vtep_mtu);
	if (l->vx_link && l->vx_link != ul->index) {
		if (v->underlay)
			return cni_errf(
				e, CNI_ERR_EXISTS,
				"vxlan: existing %s sits on another underlay device (ifindex %d), config says \"underlayDevice\": %s",
				v->vtep, l->vx_link, ul->name);
		return cni_errf(
			e, CNI_ERR_EXISTS,
			"vxlan: existing %s sits on another underlay device (ifindex %d), not %s, the default route's link (the "
			"config has no \"underlayDevice\")",
			v->vtep, l->vx_link, ul->name);
	}
	return 0;
}

/* Head-end replication list = the config's peers: add the missing, drop the others. */
static int sync_peers(struct nlsock *sk, const struct vx_conf *v, int index, struct cni_error *e)
{
	struct ip *have = NULL;
	size_t n = 0;
	int rc = -1;
	if (v->group.len)
		return 0;
	if (cnl_fdb_zero_dsts(sk, index, &have, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < v->n_peers; i++) {
		bool present = false;
		for (size_t k = 0; k < n; k++)
			present |= ip_equal(&have[k], &v->peers[i]);
		if (!present && cnl_fdb(sk, true, index, NULL, &v->peers[i], e) < 0)
			goto out;
	}
	for (size_t k = 0; k < n; k++) {
		bool wanted = false;
		for (size_t i = 0; i < v->n_peers; i++)
			wanted |= ip_equal(&have[k], &v->peers[i]);
		if (!wanted && cnl_fdb(sk, false, index, NULL, &have[k], e) < 0)
			goto out;
	}
	rc = 0;
out:
	free(have);
	return rc;
}

static int ensure_vtep(struct nlsock *sk, const struct vx_conf *v, const struct cnl_link *ul, const struct cnl_link *br,
		       struct cnl_link *vt, bool *created, struct cni_error *e)
{
	int r;
	*created = false;
	if ((r = cnl_link_get(sk, v->vtep, 0, vt, e)) < 0)
		return -1;
	if (r == 0) {
		struct cnl_vxlan x = { .name = v->vtep,
				       .vni = (uint32_t)v->vni,
				       .port = (uint16_t)v->port,
				       .local = v->local,
				       .group = v->group,
				       .link = ul->index,
				       .learning = v->learning,
				       .mtu = v->vtep_mtu };
		if ((r = cnl_vxlan_create(sk, &x, e)) < 0) {
			if (r == -EADDRINUSE || r == -EEXIST)
				cni_err_prefix(e, "another VXLAN device already uses VNI %lld on port %lld: ", v->vni, v->port);
			return -1;
		}
		*created = r == 1;
		if ((r = cnl_link_get(sk, v->vtep, 0, vt, e)) < 0)
			return -1;
		if (r == 0) /* EEXIST with our name free: the kernel refused the VNI, in use by another device */
			return cni_errf(e, CNI_ERR_EXISTS, "vxlan: another VXLAN device already uses VNI %lld on port %lld",
					v->vni, v->port);
	}
	if (vtep_matches(v, vt, ul, e) < 0)
		return -1;
	char what[32];
	snprintf(what, sizeof(what), "vxlan: %s", v->vtep);
	if (shdev_enslave(sk, vt, br, what, e) < 0)
		return -1;
	/* the FDB is read, then changed: one ADD at a time (the VNI's lock is shared by ADDs), or two
	 * with different peer lists (a config being rolled out) could each undo the other's adds */
	char n[24];
	snprintf(n, sizeof(n), "%lld", v->vni);
	if (v->cl.net) /* the agent's */
		return 0;
	int fdb_lock = shdev_lock("vxlan-fdb", n, LOCK_EX, e);
	if (fdb_lock < 0)
		return -1;
	r = sync_peers(sk, v, vt->index, e);
	close(fdb_lock);
	return r;
}

/* Remove the VTEP and bridge once no container port is left (unless keepVtep). */
static int remove_if_unused(struct nlsock *sk, const struct vx_conf *v, struct cni_error *e);

/* The mark (IFLA_IFALIAS) of a bridge this plugin created for a VNI: only such a bridge, or one
 * with the default name and no alias (made by an earlier version), is removed with its last port,
 * and only its ports are collected by GC. A bridge of that name made by anyone else (an
 * administrator's, the bridge plugin's) is used, never removed. */
static void bridge_mark(const struct vx_conf *v, char *buf, size_t n)
{
	snprintf(buf, n, "cni-c vxlan vni %lld", v->vni);
}

static bool bridge_ours(const struct vx_conf *v, const struct cnl_link *br)
{
	char mark[64], def[IFNAMSIZ];
	bridge_mark(v, mark, sizeof(mark));
	snprintf(def, sizeof(def), "vxbr%lld", (long long)v->vni); /* the default "bridge" */
	return strcmp(br->kind, "bridge") == 0 && (strcmp(br->alias, mark) == 0 || (!br->alias[0] && strcmp(br->name, def) == 0));
}

/* This VNI's VTEP as the config describes it (kind, VNI, port, group): a device of that name
 * that differs, which ADD refused to use, is not ours to remove either. */
static bool vtep_ours(const struct vx_conf *v, const struct cnl_link *vt)
{
	return strcmp(vt->kind, "vxlan") == 0 && vt->vni == (uint32_t)v->vni && vt->port == v->port &&
	       ip_equal(&vt->group, &v->group);
}

static int remove_if_unused(struct nlsock *sk, const struct vx_conf *v, struct cni_error *e)
{
	struct cnl_link br, vt;
	int r;
	if (v->keep_vtep)
		return 0;
	if ((r = cnl_link_get(sk, v->a.bridge, 0, &br, e)) < 0)
		return -1;
	bool have_br = r == 1 && strcmp(br.kind, "bridge") == 0;
	if ((r = cnl_link_get(sk, v->vtep, 0, &vt, e)) < 0)
		return -1;
	/* our VTEP: this VNI's vxlan device as configured, a port of our bridge or of none (its
	 * bridge deleted, or set nomaster, by someone else); one enslaved elsewhere is not ours */
	bool ours = r == 1 && vtep_ours(v, &vt) && (vt.master == 0 || (have_br && vt.master == br.index));
	return shdev_release(sk, have_br ? &br : NULL, ours ? &vt : NULL, have_br && bridge_ours(v, &br), e);
}

struct vx_undo {
	struct vx_conf *v;
	struct nlsock **sk;
	int *lock;
};

/* A failed ADD removes the bridge and VTEP it created, only if no other container uses them
 * meanwhile: under the VNI's lock taken exclusive. */
static void undo_vtep(void *arg)
{
	struct vx_undo *x = arg;
	struct cni_error ig = { 0 };
	cnl_close(*x->sk);
	*x->sk = NULL;
	close(*x->lock);
	if ((*x->lock = vni_lock(x->v->vni, LOCK_EX, &ig)) >= 0 && cnl_open(x->sk, &ig) == 0) {
		bool keep = x->v->keep_vtep;
		x->v->keep_vtep = false;
		remove_if_unused(*x->sk, x->v, &ig);
		x->v->keep_vtep = keep;
	}
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	struct vx_conf *v = conf;
	struct nlsock *sk = NULL;
	struct cnl_link ul, br, vt, existing;
	struct undo u = { 0 };
	struct vx_undo x = { v, &sk, NULL };
	bool br_created = false, vt_created = false;
	int lock = -1, rc = -1, r;

	x.lock = &lock;
	if (cnl_open(&sk, &c->err) < 0 || resolve_underlay(sk, v, &ul, &c->err) < 0)
		goto out;
	if ((lock = vni_lock(v->vni, LOCK_SH, &c->err)) < 0)
		goto out;
	/* The VTEP first: a mismatching device is refused before anything is created. */
	r = cnl_link_get(sk, v->vtep, 0, &existing, &c->err);
	if (r < 0 || (r == 1 && vtep_matches(v, &existing, &ul, &c->err) < 0))
		goto out;
	if (attach_ensure_bridge(sk, &v->a, &br, &br_created, &c->err) < 0)
		goto out;
	if (br_created && undo_push(&u, undo_vtep, &x, sizeof(x), &c->err) < 0)
		goto out;
	if (br_created) {
		char mark[64];
		bridge_mark(v, mark, sizeof(mark));
		if (cnl_link_set_alias(sk, br.index, mark, &c->err) < 0)
			goto out;
	}
	if (FAULT(&c->err, "vxlan bridge") < 0)
		goto out;
	r = ensure_vtep(sk, v, &ul, &br, &vt, &vt_created, &c->err);
	/* (a VTEP made by a step that failed after creating it is recorded too) */
	if ((vt_created && !br_created && undo_push(&u, undo_vtep, &x, sizeof(x), &c->err) < 0) || r < 0)
		goto out;
	if (FAULT(&c->err, "vxlan vtep") < 0 || attach_add(c, &v->a, sk, &br, out) < 0)
		goto out;
	cni_result_add_iface(out, vt.name, vt.has_mac ? cnl_mac_fmt(vt.mac, (char[18]){ 0 }) : "", NULL);
	rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	if (lock >= 0)
		close(lock);
	cnl_close(sk);
	return rc;
}

/* Cluster mode without the node's state (agent gone, file removed): the VNI and bridge are those
 * of the bridge the container's host veth is a port of, when it is one of ours. */
static void cluster_find_bridge(struct nlsock *sk, struct vx_conf *v, const struct cni_ctx *c)
{
	char host[16];
	struct cnl_link hl, br;
	struct cni_error ig = { 0 };
	long long vni;
	attach_host_veth_name(c->container_id, c->ifname, host);
	if (cnl_link_get(sk, host, 0, &hl, &ig) != 1 || !hl.master || cnl_link_get(sk, NULL, hl.master, &br, &ig) != 1)
		return;
	if (sscanf(br.name, "vxbr%lld", &vni) != 1 && sscanf(br.alias, "cni-c vxlan vni %lld", &vni) != 1)
		return;
	struct vx_conf t = *v;
	t.vni = vni;
	if (!bridge_ours(&t, &br))
		return;
	v->vni = vni;
	snprintf(v->vtep, sizeof(v->vtep), "vxlan%lld", vni);
	if (v->a.bridge == v->bridge) /* the default name, not the config's "bridge" */
		snprintf(v->bridge, sizeof(v->bridge), "%s", br.name);
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	struct vx_conf *v = conf;
	struct nlsock *sk = NULL;
	int lock = -1, rc = -1;
	if (cnl_open(&sk, &c->err) < 0)
		goto out;
	if (v->cl.net && !v->cl.have_state)
		cluster_find_bridge(sk, v, c);
	rc = attach_del(c, &v->a, sk);
	/* cluster mode: the VTEP and bridge stay (the agent's) */
	if (!v->cl.net && ((lock = vni_lock(v->vni, LOCK_EX, &c->err)) < 0 || remove_if_unused(sk, v, &c->err) < 0))
		rc = -1;
out:
	if (lock >= 0)
		close(lock);
	cnl_close(sk);
	return rc;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	struct vx_conf *v = conf;
	struct nlsock *sk = NULL;
	struct cnl_link ul, br, vt;
	struct ip *have = NULL;
	size_t n = 0;
	char b[IP_STRLEN];
	int rc = -1, r;
	if (cnl_open(&sk, &c->err) < 0 || resolve_underlay(sk, v, &ul, &c->err) < 0 || attach_check(c, &v->a, sk) < 0)
		goto out;
	if ((r = cnl_link_get(sk, v->vtep, 0, &vt, &c->err)) <= 0) {
		if (!r)
			cni_check_fail(&c->err, "vxlan: VTEP %s is missing", v->vtep);
		goto out;
	}
	if (vtep_matches(v, &vt, &ul, &c->err) < 0) {
		c->err.code = CNI_ERR_CHECK_FAILED;
		goto out;
	}
	if (cnl_link_get(sk, v->a.bridge, 0, &br, &c->err) != 1 || vt.master != br.index || !(vt.flags & IFF_UP)) {
		cni_check_fail(&c->err, "vxlan: VTEP %s is not an up port of bridge %s", v->vtep, v->a.bridge);
		goto out;
	}
	if (!v->group.len && !v->cl.net) { /* cluster mode: the agent's FDB */
		if (cnl_fdb_zero_dsts(sk, vt.index, &have, &n, &c->err) < 0)
			goto out;
		for (size_t i = 0; i < v->n_peers; i++) {
			bool found = false;
			for (size_t k = 0; k < n; k++)
				found |= ip_equal(&have[k], &v->peers[i]);
			if (!found) {
				cni_check_fail(&c->err, "vxlan: peer %s has no FDB entry on %s", ip_fmt(&v->peers[i], b),
					       v->vtep);
				goto out;
			}
		}
		if (n != v->n_peers) {
			cni_check_fail(&c->err, "vxlan: %s floods to %zu peers, the config lists %zu", v->vtep, n, v->n_peers);
			goto out;
		}
	}
	rc = 0;
out:
	free(have);
	cnl_close(sk);
	return rc;
}

struct gc_arg {
	struct cni_ctx *c;
	struct nlsock *sk;
	const char *vtep;
};

/* A host veth on our per-VNI bridge whose attachment is not valid any more (its container's
 * netns leaked, say): the bridge is this network's alone (bridge_ours), so it can go. */
static int gc_port(const struct cnl_link *l, void *arg)
{
	struct gc_arg *g = arg;
	struct cni_error ig = { 0 };
	if (strcmp(l->kind, "veth") != 0 || strcmp(l->name, g->vtep) == 0)
		return 0;
	for (size_t i = 0; i < g->c->n_valid; i++) {
		char name[16];
		attach_host_veth_name(g->c->valid[i].container_id, g->c->valid[i].ifname, name);
		if (strcmp(name, l->name) == 0)
			return 0;
	}
	if (strncmp(l->name, "veth", 4) == 0)
		cnl_link_del(g->sk, l->index, l->name, &ig);
	return 0;
}

static int cmd_gc(struct cni_ctx *c, void *conf)
{
	struct vx_conf *v = conf;
	struct nlsock *sk = NULL;
	struct cnl_link br;
	int lock = -1, rc = -1;
	if (cnl_open(&sk, &c->err) < 0)
		goto out;
	rc = attach_gc(c, &v->a);
	if (v->cl.net && !v->cl.have_state) /* no VNI: the bridge's ports wait for the state */
		goto out;
	if ((lock = vni_lock(v->vni, LOCK_EX, &c->err)) < 0) {
		rc = -1;
		goto out;
	}
	if (cnl_link_get(sk, v->a.bridge, 0, &br, &c->err) == 1 && bridge_ours(v, &br)) {
		struct gc_arg g = { c, sk, v->vtep };
		if (cnl_link_dump(sk, br.index, gc_port, &g, &c->err) < 0)
			rc = -1;
	}
	/* also when the bridge is gone: a VTEP left without it is collected too */
	if (rc == 0 && remove_if_unused(sk, v, &c->err) < 0)
		rc = -1;
out:
	if (lock >= 0)
		close(lock);
	cnl_close(sk);
	return rc;
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	struct vx_conf *v = conf;
	struct nlsock *sk = NULL;
	struct cnl_link ul;
	int rc = -1;
	if (v->cl.net && !v->cl.have_state)
		return vx_cluster_no_state(&v->cl, CNI_ERR_NOT_AVAILABLE, &c->err);
	if (attach_status(c, &v->a) < 0 || cnl_open(&sk, &c->err) < 0)
		goto out;
	if (resolve_underlay(sk, v, &ul, &c->err) < 0) {
		cni_errf_force(&c->err, CNI_ERR_NOT_AVAILABLE, "vxlan: no usable underlay: %s", c->err.msg);
		goto out;
	}
	if (!(ul.flags & IFF_UP) || (ul.operstate != IF_OPER_UP && ul.operstate != IF_OPER_UNKNOWN)) {
		cni_errf(&c->err, CNI_ERR_LIMITED_CONNECTIVITY,
			 "vxlan: underlay %s is down: containers on other hosts are unreachable", ul.name);
		goto out;
	}
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

static int cmd_reload(struct cni_ctx *c, void *conf)
{
	return attach_reload(c, &((const struct vx_conf *)conf)->a);
}

static const char *const vx_args[] = { "MAC", "IP", NULL };
static const int vx_caps[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1 };

int main(void)
{
	static const struct cni_plugin p = {
		.name = "vxlan",
		.inproc_ipam = &hostlocal_plugin,
		.cni_args = vx_args,
		.caps = vx_caps,
		.conf_size = sizeof(struct vx_conf),
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
