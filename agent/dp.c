/* The data plane's devices: VTEP vxlan<vni> (learning, local = the underlay address) enslaved to
 * bridge vxbr<vni> with the block's gateway address (docs/cluster.md "Data plane"). The bridge
 * carries the vxlan plugin's mark, so the plugin adopts it as its own. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "agent.h"
#include "attach.h"
#include "shdev.h"

static int underlay_link(struct agent *a, struct anet *n, struct cnl_link *ul, struct cni_error *e)
{
	int oif, r, fam = n->local.len ? n->local.len : 4;
	if (n->underlay[0]) {
		if ((r = cnl_link_get(a->nl, n->underlay, 0, ul, e)) <= 0)
			return r < 0 ? -1
				     : cni_errf(e, CNI_ERR_INVALID_CONFIG,
						"invalid config: field \"networks[%d].underlayDevice\": %s does not exist",
						(int)(n - a->nets), n->underlay);
		return 0;
	}
	if (cnl_default_route_oif(a->nl, fam, &oif, e) < 0) {
		e->code = CNI_ERR_INVALID_CONFIG;
		cni_err_prefix(e, "network %s: no \"underlayDevice\" given and no default route to take it from: ", n->name);
		return -1;
	}
	if (cnl_link_get(a->nl, NULL, oif, ul, e) <= 0)
		return cni_errf(e, CNI_ERR_KERNEL, "network %s: default route's interface %d vanished", n->name, oif);
	snprintf(n->underlay, sizeof(n->underlay), "%s", ul->name);
	return 0;
}

int dp_resolve(struct agent *a, struct anet *n, struct cni_error *e)
{
	struct cnl_link ul;
	if (underlay_link(a, n, &ul, e) < 0)
		return -1;
	if (!n->local.len) {
		struct cnl_addr_info *ai = NULL;
		size_t k = 0;
		if (cnl_addr_list(a->nl, ul.index, AF_INET, &ai, &k, e) < 0)
			return -1;
		for (size_t i = k; i-- > 0;) /* the oldest global address: the kernel lists the newest first */
			if (ai[i].scope == RT_SCOPE_UNIVERSE) {
				n->local = ai[i].addr.ip;
				break;
			}
		free(ai);
		if (!n->local.len)
			return cni_errf(
				e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"networks[%d].local\" not given and underlay %s has no IPv4 address",
				(int)(n - a->nets), ul.name);
	}
	if (!n->mtu_given)
		n->mtu = ul.mtu - (n->local.len == 4 ? 50 : 70);
	return 0;
}

static int ensure_bridge(struct agent *a, struct anet *n, struct cnl_link *br, struct cni_error *e)
{
	struct attach_conf ac = { .bridge = n->bridge, .mtu = (int)n->mtu };
	bool created;
	if (attach_ensure_bridge(a->nl, &ac, br, &created, e) < 0)
		return -1;
	if (created) {
		char mark[64]; /* the vxlan plugin's mark of the bridge of a VNI */
		snprintf(mark, sizeof(mark), "cni-c vxlan vni %lld", n->vni);
		if (cnl_link_set_alias(a->nl, br->index, mark, e) < 0)
			return -1;
		vlog(a, "network %s: created bridge %s", n->name, n->bridge);
	}
	return 0;
}

static int ensure_vtep(struct agent *a, struct anet *n, struct cnl_link *vt, struct cni_error *e)
{
	struct cnl_link ul;
	int r;
	if ((r = cnl_link_get(a->nl, n->vtep, 0, vt, e)) < 0)
		return -1;
	if (r == 0) {
		if (underlay_link(a, n, &ul, e) < 0)
			return -1;
		struct cnl_vxlan x = { .name = n->vtep,
				       .vni = (uint32_t)n->vni,
				       .port = (uint16_t)n->port,
				       .local = n->local,
				       .link = ul.index,
				       .learning = true,
				       .mtu = (int)n->mtu };
		if (cnl_vxlan_create(a->nl, &x, e) < 0 || cnl_link_get(a->nl, n->vtep, 0, vt, e) <= 0)
			return e->code ? -1 : cni_errf(e, CNI_ERR_EXISTS, "VNI %lld is taken by another VXLAN device", n->vni);
		alog("network %s: created VTEP %s", n->name, n->vtep);
	}
	if (strcmp(vt->kind, "vxlan") != 0 || vt->vni != (uint32_t)n->vni || vt->port != n->port)
		return cni_errf(e, CNI_ERR_EXISTS,
				"%s exists and is not the VTEP of VNI %lld port %lld (kind \"%s\", VNI %u, port %u)", n->vtep,
				n->vni, n->port, vt->kind, vt->vni, vt->port);
	return 0;
}

int dp_ensure(struct agent *a, struct anet *n, struct cni_error *e)
{
	struct cnl_link br, vt;
	char what[40];
	if (ensure_bridge(a, n, &br, e) < 0 || ensure_vtep(a, n, &vt, e) < 0)
		return -1;
	snprintf(what, sizeof(what), "VTEP %s", n->vtep);
	if (shdev_enslave(a->nl, &vt, &br, what, e) < 0)
		return -1;
	if (vt.has_mac)
		memcpy(n->mac, vt.mac, 6);
	return 0;
}

static struct ipnet gateway(const struct anet *n, const struct ipnet *block)
{
	struct ipnet gw = { ipnet_network(block), n->subnet.prefix };
	gw.ip = ip_next(&gw.ip);
	return gw;
}

int dp_gateway(struct agent *a, struct anet *n, const struct ipnet *old, struct cni_error *e)
{
	struct cnl_link br;
	struct ipnet gw = gateway(n, &n->block);
	if (cnl_link_get(a->nl, n->bridge, 0, &br, e) <= 0)
		return e->code ? -1 : cni_errf(e, CNI_ERR_KERNEL, "bridge %s vanished", n->bridge);
	if (old && old->prefix && !(old->prefix == n->block.prefix && ip_equal(&old->ip, &n->block.ip))) {
		struct ipnet og = gateway(n, old); /* the block changed: its old gateway goes */
		struct cni_error ig = { 0 };
		cnl_addr_del(a->nl, br.index, &og, &ig);
	}
	return cnl_addr_add(a->nl, br.index, &gw, true, e);
}

int dp_vtep_mac(struct agent *a, const struct anet *n, uint8_t mac[6])
{
	struct cnl_link vt;
	struct cni_error e = { 0 };
	int r = cnl_link_get(a->nl, n->vtep, 0, &vt, &e);
	if (r <= 0)
		return r;
	if (!vt.has_mac)
		return -1;
	memcpy(mac, vt.mac, 6);
	return 1;
}
