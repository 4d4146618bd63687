/* loopback plugin: brings "lo" up in the container (containerd's CRI calls it for every pod),
 * as the reference plugin does: CNI_IFNAME is ignored, prevResult passes through. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <net/if.h>
#include <linux/capability.h>

#include "attach.h"
#include "nl.h"

static bool loopback_addr(const struct ip *a)
{
	static const uint8_t v6lo[16] = { [15] = 1 };
	return ip_is_v4(a) ? a->b[0] == 127 : memcmp(a->b, v6lo, 16) == 0;
}

/* 0 with *lo filled, 1 when the netns is gone, -1 error */
static int open_lo(struct cni_ctx *c, struct attach_ns *ns, struct cnl_link *lo)
{
	int r = attach_ns_prepare(ns, c->netns, &c->err);
	if (r != 0)
		return r;
	if (attach_ns_sock(ns, c->netns, NULL, 0, &c->err) < 0)
		return -1;
	if ((r = cnl_link_get(ns->csk, "lo", 0, lo, &c->err)) <= 0)
		return r < 0 ? -1 : cni_errf(&c->err, CNI_ERR_KERNEL, "loopback: no \"lo\" in CNI_NETNS %s", c->netns);
	return 0;
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	(void)conf; /* loopback reads nothing past what skel parses */
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link lo;
	struct cnl_addr_info *a = NULL;
	size_t n = 0;
	int rc = -1, r;
	char b[IPNET_STRLEN];

	if ((r = open_lo(c, &ns, &lo)) != 0) {
		if (r == 1)
			cni_errf(&c->err, CNI_ERR_INVALID_ENV, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if (cnl_link_modify(ns.csk, lo.index, IFF_UP, IFF_UP, 0, NULL, -1, &c->err) < 0 ||
	    cnl_addr_list(ns.csk, lo.index, 0, &a, &n, &c->err) < 0)
		goto out;
	for (size_t i = 0; i < n; i++)
		if (!loopback_addr(&a[i].addr.ip)) {
			cni_errf(&c->err, CNI_ERR_INVALID_CONFIG, "loopback interface found with non-loopback address %s",
				 ipnet_fmt(&a[i].addr, b));
			goto out;
		}
	if (c->has_prev) {
		/* pass prevResult through (moved: skel frees both) */
		*out = c->prev;
		memset(&c->prev, 0, sizeof(c->prev));
		c->has_prev = false;
		rc = 0;
		goto out;
	}
	if (cni_result_add_iface(out, "lo", "00:00:00:00:00:00", c->netns) < 0)
		goto oom;
	bool have4 = false, have6 = false;
	for (size_t i = 0; i < n; i++) {
		bool v4 = ip_is_v4(&a[i].addr.ip);
		if ((v4 && have4) || (!v4 && have6))
			continue;
		struct cni_ipcfg ipc = { .address = a[i].addr, .iface = 0 };
		if (cni_result_add_ip(out, &ipc) < 0)
			goto oom;
		have4 |= v4;
		have6 |= !v4;
	}
	rc = 0;
	goto out;
oom:
	cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
out:
	free(a);
	attach_ns_close(&ns);
	return rc;
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	(void)conf;
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link lo;
	int rc = 0, r;
	if (!c->netns)
		return 0;
	if ((r = open_lo(c, &ns, &lo)) == 0)
		rc = cnl_link_modify(ns.csk, lo.index, 0, IFF_UP, 0, NULL, -1, &c->err);
	else if (r < 0 && c->err.code != CNI_ERR_INVALID_ENV)
		rc = -1; /* a netns that is gone, or no netns any more: nothing to do */
	if (rc == 0)
		cni_err_clear(&c->err);
	attach_ns_close(&ns);
	return rc;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	(void)conf;
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link lo;
	int rc = -1, r;
	if ((r = open_lo(c, &ns, &lo)) != 0) {
		if (r == 1)
			cni_check_fail(&c->err, "CNI_NETNS %s does not exist", c->netns);
	} else if (!(lo.flags & IFF_UP)) {
		cni_check_fail(&c->err, "loopback interface is down");
	} else {
		rc = 0;
	}
	attach_ns_close(&ns);
	return rc;
}

/* GC: loopback keeps no state anywhere (no store, no host link, no rule): lo lives and dies with
 * the container's namespace. There is nothing to collect. The input is still validated as every
 * plugin's GC validates it: skel has refused a cniVersion below 1.1.0 and parsed
 * cni.dev/valid-attachments (and the legacy cni.dev/attachments) into c->valid, refusing a wrong
 * shape with the field named; a GC that got here has well-formed input and succeeds, printing
 * nothing (the spec's answer to a successful GC). */
static int cmd_gc(struct cni_ctx *c, void *conf)
{
	(void)c;
	(void)conf;
	return 0;
}

/* STATUS: ready. What an ADD needs is the container's own namespace (its lo, netlink in it,
 * setns into it), which STATUS is not given: there is no CNI_NETNS to probe. Nothing on the node
 * (no store, no bridge, no kernel module past core networking, no nftables) can be missing or full
 * in a way that would make the next ADD fail, so there is nothing STATUS could honestly check;
 * claiming more (opening a netlink socket in our own namespace, say) would only prove something
 * unrelated to the container's lo. As for GC, skel has already refused a cniVersion below 1.1.0. */
static int cmd_status(struct cni_ctx *c, void *conf)
{
	(void)c;
	(void)conf;
	return 0;
}

static const int lo_caps[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1 };

int main(void)
{
	static const struct cni_plugin p = {
		.name = "loopback",
		.any_cni_args = true,
		.caps = lo_caps,
		.add = cmd_add,
		.check = cmd_check,
		.del = cmd_del,
		.gc = cmd_gc,
		.status = cmd_status,
	};
	return cni_plugin_main(&p);
}
