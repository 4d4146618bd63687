/* bridge plugin: a veth pair from the container to a Linux bridge on the host (the reference
 * plugin's options and behaviour), plus an optional physical uplink (the seed's flat network). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sys/file.h>
#include <linux/capability.h>
#include <linux/rtnetlink.h>

#include "attach.h"
#include "ipam.h"
#include "conf.h"
#include "nl.h"
#include "shdev.h"

struct bridge_conf {
	struct attach_conf a;
	const char *uplink;
	bool uplink_force;
	bool remove_unused; /* removeUnusedBridge: DEL of the last port removes the bridge */
	bool mtu_from_route; /* mtuFromDefaultRoute: no "mtu": the default route's link's */
};

static int parse(struct cni_ctx *c, void *conf)
{
	struct bridge_conf *b = conf;
	struct cni_error *e = &c->err;
	if (attach_conf_parse(c, &b->a, "cni0", e) < 0)
		return -1;
	if (conf_string(c->conf, "", "uplink", &b->uplink, e) < 0 ||
	    conf_bool(c->conf, "", "uplinkForce", &b->uplink_force, e) < 0 ||
	    conf_bool(c->conf, "", "removeUnusedBridge", &b->remove_unused, e) < 0 ||
	    conf_bool(c->conf, "", "mtuFromDefaultRoute", &b->mtu_from_route, e) < 0)
		return -1;
	return 0;
}

static int verify(struct cni_ctx *c, void *conf)
{
	const struct bridge_conf *b = conf;
	struct cni_error *e = &c->err;
	if (b->uplink && !conf_valid_ifname(b->uplink))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"uplink\": \"%s\" is not a valid interface name", b->uplink);
	if (b->uplink && strcmp(b->uplink, b->a.bridge) == 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"uplink\" names the bridge itself");
	return 0;
}

static void free_conf(void *conf)
{
	attach_conf_free(&((struct bridge_conf *)conf)->a);
}

/* The flat network: a host interface enslaved to the bridge. An interface carrying the
 * host's own addresses would lose them to the bridge, so that needs uplinkForce. */
static int ensure_uplink(struct nlsock *sk, const struct bridge_conf *b, const struct cnl_link *br, struct cni_error *e)
{
	struct cnl_link up;
	int r = cnl_link_get(sk, b->uplink, 0, &up, e);
	if (r <= 0)
		return r < 0 ? -1
			     : cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"uplink\": interface %s does not exist", b->uplink);
	if (up.master == br->index)
		return (up.flags & IFF_UP) ? 0 : cnl_link_modify(sk, up.index, IFF_UP, IFF_UP, 0, NULL, -1, e);
	if (up.master)
		return cni_errf(e, CNI_ERR_EXISTS, "uplink %s is already a port of another master (ifindex %d)", b->uplink,
				up.master);
	if (!b->uplink_force) {
		struct cnl_addr_info *v = NULL;
		size_t n = 0;
		char a[IPNET_STRLEN];
		if (cnl_addr_list(sk, up.index, 0, &v, &n, e) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (v[i].scope != RT_SCOPE_LINK && v[i].scope != RT_SCOPE_HOST) {
				cni_errf(
					e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"uplink\": %s carries the host address %s; enslaving it to bridge %s would cut it off (set \"uplinkForce\": true to do it anyway)",
					b->uplink, ipnet_fmt(&v[i].addr, a), br->name);
				free(v);
				return -1;
			}
		free(v);
	}
	return cnl_link_modify(sk, up.index, IFF_UP, IFF_UP, 0, NULL, br->index, e);
}

static void remove_if_unused(struct nlsock *sk, const struct cnl_link *br)
{
	struct cni_error ig = { 0 };
	shdev_release(sk, br, NULL, true, &ig);
}

struct bridge_undo {
	struct nlsock *sk;
	int lock;
	const struct cnl_link *br;
};

/* A failed ADD leaves no bridge it made, unless another ADD uses it meanwhile. */
static void undo_bridge(void *arg)
{
	struct bridge_undo *b = arg;
	if (flock(b->lock, LOCK_EX) == 0)
		remove_if_unused(b->sk, b->br);
}

/* mtuFromDefaultRoute: the MTU of the link the host's default route leaves by (IPv4's, else
 * IPv6's, the lowest metric), so a bridge behind an uplink of 1400 or 9000 follows it. No default
 * route: 0, the kernel's default, as without the option. */
static int default_route_mtu(struct nlsock *sk, int *mtu, struct cni_error *e)
{
	static const int fams[] = { 4, 16 };
	*mtu = 0;
	for (size_t i = 0; i < 2 && !*mtu; i++) {
		struct cni_error none = { 0 };
		struct cnl_link l;
		int oif, r;
		if (cnl_default_route_oif(sk, fams[i], &oif, &none) < 0)
			continue;
		if ((r = cnl_link_get(sk, NULL, oif, &l, e)) < 0)
			return -1;
		if (r == 1)
			*mtu = l.mtu;
	}
	return 0;
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	const struct bridge_conf *b = conf;
	struct attach_conf a = b->a;
	struct nlsock *sk = NULL;
	struct cnl_link br;
	struct undo u = { 0 };
	bool created = false;
	int rc = -1, lock;

	/* shared while the ADD may use the bridge; exclusive to remove one this ADD made */
	if ((lock = shdev_lock("bridge", b->a.bridge, LOCK_SH, &c->err)) < 0)
		return -1;
	if (cnl_open(&sk, &c->err) < 0 || (b->mtu_from_route && !a.mtu && default_route_mtu(sk, &a.mtu, &c->err) < 0) ||
	    attach_ensure_bridge(sk, &a, &br, &created, &c->err) < 0)
		goto out;
	if (created &&
	    undo_push(&u, undo_bridge, &(struct bridge_undo){ sk, lock, &br }, sizeof(struct bridge_undo), &c->err) < 0)
		goto out;
	if ((!b->uplink || ensure_uplink(sk, b, &br, &c->err) == 0) && attach_add(c, &a, sk, &br, out) == 0)
		rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	close(lock);
	cnl_close(sk);
	return rc;
}

/* removeUnusedBridge: once the attachment is gone, the bridge goes too when no port is left but
 * the uplink (which stays, a host interface). The count and the removal hold the bridge's lock
 * exclusively, and every ADD holds it shared from finding the bridge to enslaving its veth, so no
 * ADD ever adds a port to a bridge being removed: it finds the bridge gone and makes it again. */
static int remove_unused_bridge(struct nlsock *sk, const struct bridge_conf *b, struct cni_error *e)
{
	struct cnl_link br, up;
	int lock, r, rc = -1;
	if ((lock = shdev_lock("bridge", b->a.bridge, LOCK_EX, e)) < 0)
		return -1;
	if ((r = cnl_link_get(sk, b->a.bridge, 0, &br, e)) <= 0 || strcmp(br.kind, "bridge") != 0) {
		rc = r < 0 ? -1 : 0;
		goto out;
	}
	if (b->uplink && (r = cnl_link_get(sk, b->uplink, 0, &up, e)) < 0)
		goto out;
	rc = shdev_release_bridge(sk, &br, b->uplink && r == 1 ? &up : NULL, e) < 0 ? -1 : 0;
out:
	close(lock);
	return rc;
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	const struct bridge_conf *b = conf;
	struct nlsock *sk = NULL;
	int rc = -1;
	if (cnl_open(&sk, &c->err) == 0) {
		rc = attach_del(c, &b->a, sk);
		if (rc == 0 && b->remove_unused)
			rc = remove_unused_bridge(sk, b, &c->err);
	}
	cnl_close(sk);
	return rc;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	const struct bridge_conf *b = conf;
	struct nlsock *sk = NULL;
	int rc = -1;
	if (cnl_open(&sk, &c->err) == 0 && attach_check(c, &b->a, sk) == 0) {
		rc = 0;
		if (b->uplink) {
			struct cnl_link up, br;
			if (cnl_link_get(sk, b->uplink, 0, &up, &c->err) != 1 ||
			    cnl_link_get(sk, b->a.bridge, 0, &br, &c->err) != 1 || up.master != br.index)
				rc = cni_check_fail(&c->err, "uplink %s is not a port of bridge %s", b->uplink, b->a.bridge);
		}
	}
	cnl_close(sk);
	return rc;
}

static int cmd_gc(struct cni_ctx *c, void *conf)
{
	const struct bridge_conf *b = conf;
	struct nlsock *sk = NULL;
	int rc = attach_gc(c, &b->a);
	if (rc == 0 && b->remove_unused && (rc = cnl_open(&sk, &c->err)) == 0)
		rc = remove_unused_bridge(sk, b, &c->err);
	cnl_close(sk);
	return rc;
}
static int cmd_status(struct cni_ctx *c, void *conf)
{
	return attach_status(c, &((const struct bridge_conf *)conf)->a);
}

static int cmd_reload(struct cni_ctx *c, void *conf)
{
	return attach_reload(c, &((const struct bridge_conf *)conf)->a);
}

static const char *const bridge_args[] = { "MAC", "IP", NULL };
/* netlink needs CAP_NET_ADMIN, setns(2) into the container CAP_SYS_ADMIN, and opening a
 * CNI_NETNS of the form /proc/<pid>/ns/net (what ctr and some runtimes pass) CAP_SYS_PTRACE. */
static const int bridge_caps[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1 };

int main(void)
{
	static const struct cni_plugin p = {
		.name = "bridge",
		.inproc_ipam = &hostlocal_plugin,
		.cni_args = bridge_args,
		.caps = bridge_caps,
		.conf_size = sizeof(struct bridge_conf),
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
