/* The veth-into-bridge attachment shared by bridge, vlan (bridged mode) and vxlan: what ADD
 * creates, how it is undone when a later step fails, and how DEL, CHECK, GC find it again. */
#include "attach.h"

#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <linux/if_addr.h>
#include <linux/ip.h>
#include <linux/rtnetlink.h>

#include "conf.h"
#include "fault.h"
#include "ipam.h"
#include "netns.h"
#include "sha512.h"
#include "spoofchk.h"
#include "sysctl.h"

/* ---- config ---- */

static int mac_field(const cJSON *obj, const char *parent, const char *key, struct attach_conf *a, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const char *s = NULL;
	int r = obj ? conf_string(obj, parent, key, &s, e) : 0;
	if (r <= 0 || !*s)
		return r;
	if (cnl_mac_parse(s, a->mac) < 0 || (a->mac[0] & 1))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": \"%s\" is not a unicast MAC address",
				conf_path(p, parent, key), s);
	a->has_mac = true;
	return 1;
}

static int add_trunk(struct attach_conf *a, long long lo, long long hi, struct cni_error *e)
{
	for (long long v = lo; v <= hi; v++) {
		bool dup = false;
		for (size_t i = 0; i < a->n_trunk && !dup; i++)
			dup = a->trunk[i] == v;
		if (dup)
			continue;
		if (!a->trunk && !(a->trunk = calloc(ATTACH_MAX_TRUNK, sizeof(*a->trunk))))
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		a->trunk[a->n_trunk++] = (uint16_t)v;
	}
	return 0;
}

static int cmp_u16(const void *x, const void *y)
{
	return (int)*(const uint16_t *)x - (int)*(const uint16_t *)y;
}

static int parse_trunk(const cJSON *root, struct attach_conf *a, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *arr = NULL, *it;
	size_t i = 0;
	if (conf_array(root, "", "vlanTrunk", &arr, e) <= 0)
		return e->code ? -1 : 0;
	cJSON_ArrayForEach (it, arr) {
		long long id = 0, lo = 0, hi = 0;
		int has_id, has_lo, has_hi;
		conf_path_idx(p, "vlanTrunk", i++);
		if (!cJSON_IsObject(it))
			return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be an object", p);
		if ((has_id = conf_int(it, p, "id", 1, 4094, &id, e)) < 0 ||
		    (has_lo = conf_int(it, p, "minID", 1, 4094, &lo, e)) < 0 ||
		    (has_hi = conf_int(it, p, "maxID", 1, 4094, &hi, e)) < 0)
			return -1;
		if (has_lo != has_hi)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": minID and maxID go together",
					p);
		if (has_lo && lo > hi)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\": minID %lld is greater than maxID %lld", p, lo, hi);
		if ((has_lo && add_trunk(a, lo, hi, e) < 0) || (has_id && add_trunk(a, id, id, e) < 0))
			return -1;
	}
	if (a->n_trunk)
		qsort(a->trunk, a->n_trunk, sizeof(*a->trunk), cmp_u16);
	return 0;
}

/* ipMasq: true or false as the reference; ours also takes "ipv4" or "ipv6", SNAT for that family
 * only (a config with a string fails on the reference plugin, rather than masquerading both). */
static int masq_field(const cJSON *root, struct attach_conf *a, struct cni_error *e)
{
	const cJSON *v = conf_item(root, "ipMasq");
	if (!v)
		return 0;
	if (cJSON_IsBool(v))
		a->masq_v4 = a->masq_v6 = cJSON_IsTrue(v);
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "ipv4") == 0)
		a->masq_v4 = true;
	else if (cJSON_IsString(v) && strcmp(v->valuestring, "ipv6") == 0)
		a->masq_v6 = true;
	else if (cJSON_IsString(v))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"ipMasq\": \"%s\" is not true, false, \"ipv4\" or \"ipv6\"",
				v->valuestring);
	else
		return cni_errf(e, CNI_ERR_DECODE,
				"invalid config: field \"ipMasq\" must be true, false, \"ipv4\" or \"ipv6\", not %s",
				cJSON_IsNumber(v)  ? "a number"
				: cJSON_IsArray(v) ? "an array"
						   : "an object");
	a->ip_masq = a->masq_v4 || a->masq_v6;
	return 0;
}

bool attach_masq_covers(const struct attach_conf *a, const struct ip *ip)
{
	return ip_is_v4(ip) ? a->masq_v4 : a->masq_v6;
}

int attach_conf_parse(const struct cni_ctx *c, struct attach_conf *a, const char *default_bridge, struct cni_error *e)
{
	const cJSON *root = c->conf, *dns = NULL;
	const char *backend = NULL, *ipam_type = NULL;
	long long v;
	int r;

	memset(a, 0, sizeof(*a));
	a->bridge = default_bridge;
	if (conf_string(root, "", "bridge", &a->bridge, e) < 0)
		return -1;
	if (!conf_valid_ifname(a->bridge))
		return cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"bridge\": \"%s\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)",
			a->bridge);
	static const struct {
		const char *key;
		size_t off;
	} bools[] = {
		{ "isGateway", offsetof(struct attach_conf, is_gw) },
		{ "isDefaultGateway", offsetof(struct attach_conf, is_default_gw) },
		{ "forceAddress", offsetof(struct attach_conf, force_address) },
		{ "hairpinMode", offsetof(struct attach_conf, hairpin) },
		{ "promiscMode", offsetof(struct attach_conf, promisc) },
		{ "portIsolation", offsetof(struct attach_conf, port_isolation) },
		{ "macspoofchk", offsetof(struct attach_conf, macspoofchk) },
		{ "enabledad", offsetof(struct attach_conf, enable_dad) },
		{ "disableContainerInterface", offsetof(struct attach_conf, disable_container_iface) },
		{ "preserveDefaultVlan", offsetof(struct attach_conf, preserve_default_vlan) },
	};
	for (size_t i = 0; i < sizeof(bools) / sizeof(bools[0]); i++)
		if (conf_bool(root, "", bools[i].key, (bool *)((char *)a + bools[i].off), e) < 0)
			return -1;
	if (masq_field(root, a, e) < 0)
		return -1;
	if (conf_string(root, "", "ipMasqBackend", &backend, e) < 0 || masq_backend_parse(backend, &a->masq_backend, e) < 0)
		return -1;
	if ((r = conf_int(root, "", "mtu", 0, 65535, &v, e)) < 0)
		return -1;
	if (r && v && v < 68)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"mtu\": %lld out of range 68..65535", v);
	a->mtu = r ? (int)v : 0;
	if ((r = conf_int(root, "", "vlan", 0, 4094, &v, e)) < 0)
		return -1;
	a->vlan = r ? (int)v : 0;
	if (parse_trunk(root, a, e) < 0)
		return -1;
	if (a->is_default_gw)
		a->is_gw = true;
	if (a->hairpin && a->promisc)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: fields \"hairpinMode\" and \"promiscMode\" cannot both be true");
	if ((r = cni_ipam_type(c, &ipam_type, e)) < 0)
		return -1;
	a->has_ipam = r > 0;
	if (a->has_ipam && a->disable_container_iface)
		return cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"disableContainerInterface\" cannot be used with IPAM (\"ipam.type\" is set)");
	/* MAC: CNI_ARGS, then args.cni.mac, then the `mac` capability, the later winning. */
	const char *envmac = cni_arg(c, "MAC");
	if (envmac && *envmac) {
		if (cnl_mac_parse(envmac, a->mac) < 0 || (a->mac[0] & 1))
			return cni_errf(e, CNI_ERR_DECODE, "CNI_ARGS: MAC=\"%s\" is not a unicast MAC address", envmac);
		a->has_mac = true;
	}
	if (mac_field(conf_args_cni(root), "args.cni", "mac", a, e) < 0 ||
	    mac_field(conf_runtime_config(root), "runtimeConfig", "mac", a, e) < 0)
		return -1;
	if (conf_object(root, "", "dns", &dns, e) < 0)
		return -1;
	if (dns) {
		if (cni_dns_parse(dns, "dns", &a->dns, e) < 0)
			return -1;
		a->has_dns = !cni_dns_empty(&a->dns);
	}
	return 0;
}

void attach_conf_free(struct attach_conf *a)
{
	free(a->trunk);
	cni_dns_free(&a->dns);
	a->trunk = NULL;
}

void attach_host_veth_name(const char *container_id, const char *ifname, char out[16])
{
	char hex[12];
	sha512_hexf(hex, 11, "%s%s", container_id, ifname); /* under 2048 bytes: cannot fail */
	snprintf(out, 16, "veth%s", hex);
}

/* ---- bridge ---- */

static int no_vlan_filtering(const struct attach_conf *a, struct cni_error *e)
{
	char what[32];
	if (a->vlan)
		snprintf(what, sizeof(what), "\"vlan\": %d", a->vlan);
	else
		snprintf(what, sizeof(what), "\"vlanTrunk\"");
	return cni_errf_force(
		e, CNI_ERR_UNSUPPORTED_FIELD,
		"unsupported field %s: bridge %s needs VLAN filtering, which this kernel lacks (CONFIG_BRIDGE_VLAN_FILTERING)",
		what, a->bridge);
}

int attach_ensure_bridge(struct nlsock *sk, const struct attach_conf *a, struct cnl_link *br, bool *created, struct cni_error *e)
{
	bool vf = a->vlan || a->n_trunk;
	char path[64];
	int r;

	*created = false;
	if ((r = cnl_link_get(sk, a->bridge, 0, br, e)) < 0)
		return -1;
	if (r == 0) {
		uint8_t mac[6];
		/* A MAC set at creation stays: the bridge does not take its lowest port's address as
		 * ports come and go (the reference re-sets it after every ADD for that). */
		cnl_mac_random(mac, 1);
		if ((r = cnl_bridge_create(sk, a->bridge, a->mtu, mac, vf, e)) < 0)
			return r == -EOPNOTSUPP && vf ? no_vlan_filtering(a, e) : -1;
		*created = r == 1;
		if (cnl_link_get(sk, a->bridge, 0, br, e) <= 0)
			return e->code ? -1 : cni_errf(e, CNI_ERR_KERNEL, "bridge %s vanished after creation", a->bridge);
		if (*created) {
			/* we own the routes of this interface */
			struct cni_error ignored = { 0 };
			snprintf(path, sizeof(path), "net/ipv6/conf/%s/accept_ra", a->bridge);
			sysctl_set(path, "0", &ignored);
		}
	}
	if (strcmp(br->kind, "bridge") != 0)
		return cni_errf(e, CNI_ERR_EXISTS, "bridge \"%s\": a link of that name exists and is not a bridge (kind \"%s\")",
				a->bridge, br->kind[0] ? br->kind : "device");
	if (vf && !br->vlan_filtering) {
		if ((r = cnl_bridge_set_vlan_filtering(sk, br->index, true, e)) < 0)
			return r == -EOPNOTSUPP ? no_vlan_filtering(a, e) : -1;
		br->vlan_filtering = true;
	}
	unsigned want = IFF_UP | (a->promisc ? IFF_PROMISC : 0);
	if ((br->flags & want) != want) {
		if (cnl_link_modify(sk, br->index, want, want, 0, NULL, -1, e) < 0)
			return -1;
		br->flags |= want;
	}
	return 0;
}

/* ---- helpers ---- */

int attach_ns_sock(struct attach_ns *n, const char *what, const char *const *sysctls, size_t n_sysctls, struct cni_error *e)
{
	int rc = 0;
	if (!n->csk || n_sysctls) {
		if (netns_enter(n->nsfd, what, e) < 0)
			return -1;
		if (!n->csk && cnl_open(&n->csk, e) < 0)
			rc = -1;
		for (size_t i = 0; rc == 0 && i + 1 < n_sysctls * 2; i += 2) {
			struct cni_error ignored = { 0 };
			/* best effort, as the reference: a kernel without the knob is no reason to fail */
			sysctl_set(sysctls[i], sysctls[i + 1], &ignored);
		}
		if (netns_enter(n->selffd, "of the plugin", e) < 0)
			rc = -1;
	}
	return rc;
}

void attach_ns_close(struct attach_ns *n)
{
	cnl_close(n->csk);
	if (n->nsfd >= 0)
		close(n->nsfd);
	if (n->selffd >= 0)
		close(n->selffd);
	n->csk = NULL;
	n->nsfd = n->selffd = -1;
}

int attach_ns_prepare(struct attach_ns *n, const char *path, struct cni_error *e)
{
	int r;
	n->nsfd = n->selffd = -1;
	n->csk = NULL;
	if ((r = netns_open(path, &n->nsfd, e)) != 0)
		return r;
	if (netns_current(&n->selffd, e) < 0)
		return -1;
	if (netns_same(n->nsfd, n->selffd))
		return cni_errf(e, CNI_ERR_INVALID_NETNS, "CNI_NETNS %s is the plugin's own network namespace", path);
	return 0;
}

static bool ipnet_same(const struct ipnet *a, const struct ipnet *b)
{
	return a->prefix == b->prefix && ip_equal(&a->ip, &b->ip);
}

/* The gateway address on the bridge (or the VLAN gateway link), as the reference's ensureAddr:
 * an IPv4 bridge has one address; IPv6 ones may coexist unless their subnets overlap. */
static int ensure_gw_addr(struct nlsock *sk, int index, const char *name, const struct ipnet *gw, bool force, bool nodad,
			  struct cni_error *e)
{
	struct cnl_addr_info *have = NULL;
	size_t n = 0;
	char a[IPNET_STRLEN], b[IPNET_STRLEN];
	int fam = ip_is_v4(&gw->ip) ? AF_INET : AF_INET6;
	if (cnl_addr_list(sk, index, fam, &have, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n; i++) {
		struct ipnet *x = &have[i].addr;
		if (ipnet_same(x, gw)) {
			free(have);
			return 0;
		}
		if (have[i].scope == RT_SCOPE_LINK)
			continue;
		if (fam == AF_INET || ipnet_contains(x, &gw->ip) || ipnet_contains(gw, &x->ip)) {
			if (!force) {
				cni_errf(
					e, CNI_ERR_EXISTS,
					"bridge \"%s\" already has an IP address %s different from %s (set forceAddress to replace it)",
					name, ipnet_fmt(x, a), ipnet_fmt(gw, b));
				free(have);
				return -1;
			}
			if (cnl_addr_del(sk, index, x, e) < 0) {
				free(have);
				return -1;
			}
		}
	}
	free(have);
	return cnl_addr_add(sk, index, gw, nodad, e);
}

static int wait_dad(struct nlsock *csk, int index, const char *ifname, struct cni_error *e)
{
	struct timespec start, now;
	clock_gettime(CLOCK_MONOTONIC, &start);
	for (;;) {
		struct cnl_addr_info *v = NULL;
		size_t n = 0;
		bool tentative = false;
		char b[IPNET_STRLEN];
		if (cnl_addr_list(csk, index, AF_INET6, &v, &n, e) < 0)
			return -1;
		for (size_t i = 0; i < n; i++) {
			if (v[i].flags & IFA_F_DADFAILED) {
				cni_errf(e, CNI_ERR_EXISTS, "address %s on %s failed duplicate address detection",
					 ipnet_fmt(&v[i].addr, b), ifname);
				free(v);
				return -1;
			}
			tentative |= (v[i].flags & IFA_F_TENTATIVE) != 0;
		}
		free(v);
		if (!tentative)
			return 0;
		clock_gettime(CLOCK_MONOTONIC, &now);
		if (now.tv_sec - start.tv_sec >= 5)
			return cni_errf(e, CNI_ERR_KERNEL, "addresses on %s still tentative after 5 s of DAD", ifname);
		usleep(10000);
	}
}

/* The gateway of the first address of a family, for routes given without one. */
static const struct ip *family_gw(const struct cni_result *r, int len)
{
	for (size_t i = 0; i < r->n_ips; i++)
		if (r->ips[i].address.ip.len == len && r->ips[i].gateway.len)
			return &r->ips[i].gateway;
	return NULL;
}

/* Port VLANs, as the reference: without preserveDefaultVlan the port leaves the default
 * VLAN; `vlan` is the port's untagged PVID; vlanTrunk adds tagged VLANs (and VLAN 1 as
 * native when no `vlan` is given). */
static int port_vlans(struct nlsock *sk, int port, const struct attach_conf *a, struct cni_error *e)
{
	if (!a->preserve_default_vlan) {
		uint16_t vids[64];
		size_t n = 0;
		int pvid = 0;
		if (cnl_bridge_vlan_list(sk, port, vids, 64, &n, &pvid, e) < 0)
			return -1;
		for (size_t i = 0; i < n; i++)
			if (cnl_bridge_vlan(sk, port, false, vids[i], 0, false, false, false, e) < 0)
				return -1;
	}
	if (a->vlan && cnl_bridge_vlan(sk, port, true, (uint16_t)a->vlan, 0, true, true, false, e) < 0)
		return -1;
	for (size_t i = 0; i < a->n_trunk; i++)
		if (cnl_bridge_vlan(sk, port, true, a->trunk[i], 0, false, false, false, e) < 0)
			return -1;
	if (!a->vlan && a->n_trunk && cnl_bridge_vlan(sk, port, true, 1, 0, true, true, false, e) < 0)
		return -1;
	return 0;
}

/* With vlan and isGateway the gateway lives on "<bridge>.<vlan>", a veth whose peer is an
 * access port of that VLAN on the bridge (the reference's layout). */
static int ensure_vlan_gw(struct nlsock *sk, const struct attach_conf *a, const struct cnl_link *br, struct cnl_link *gw,
			  struct cni_error *e)
{
	char name[32], peer[16], hex[12];
	int r;
	if ((size_t)snprintf(name, sizeof(name), "%s.%d", a->bridge, a->vlan) > 15)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: VLAN gateway interface name \"%s\" is longer than 15 bytes (shorten \"bridge\")",
				name);
	if ((r = cnl_link_get(sk, name, 0, gw, e)) != 0)
		return r < 0 ? -1 : 0;
	sha512_hexf(hex, 11, "%s.%d", a->bridge, a->vlan); /* under 2048 bytes: cannot fail */
	snprintf(peer, sizeof(peer), "vgw%s", hex);
	uint8_t m1[6], m2[6];
	cnl_mac_random(m1, 1);
	cnl_mac_random(m2, 1);
	struct cnl_veth v = { .name = peer,
			      .mac = m1,
			      .mtu = br->mtu,
			      .master = br->index,
			      .up = true,
			      .peer_name = name,
			      .peer_mac = m2,
			      .peer_netns_fd = -1,
			      .peer_up = false };
	if (cnl_veth_create(sk, &v, e) < 0) {
		if (!(e->code && cnl_link_get(sk, name, 0, gw, &(struct cni_error){ 0 }) == 1))
			return -1;
		cni_err_clear(e); /* another ADD made it first */
		return 0;
	}
	struct cnl_link p;
	if (cnl_link_get(sk, peer, 0, &p, e) <= 0 || port_vlans(sk, p.index, a, e) < 0)
		return -1;
	/* the peer comes up after the pair exists: the kernel refuses a veth end made up in the
	 * request that creates it (ENOTCONN), as for the container end */
	if (cnl_link_get(sk, name, 0, gw, e) != 1 || cnl_link_modify(sk, gw->index, IFF_UP, IFF_UP, 0, NULL, -1, e) < 0)
		return -1;
	return cnl_link_get(sk, name, 0, gw, e) == 1 ? 0 : -1;
}

/* ---- ADD ---- */

/* The container's part of the result from IPAM's: its addresses on interface iface_idx, with
 * isGateway's gateways and isDefaultGateway's default routes added. */
static int ctr_result(const struct attach_conf *a, struct cni_result *ires, int iface_idx, struct cni_result *out, bool *has_v6,
		      struct cni_error *e)
{
	bool dflt[2] = { false, false };
	for (size_t i = 0; i < ires->n_routes; i++)
		if (ires->routes[i].dst.prefix == 0 && ires->routes[i].gw.len)
			dflt[ip_is_v4(&ires->routes[i].dst.ip) ? 0 : 1] = true;
	for (size_t i = 0; i < ires->n_ips; i++) {
		struct cni_ipcfg ipc = ires->ips[i];
		int fam = ip_is_v4(&ipc.address.ip) ? 0 : 1;
		ipc.iface = iface_idx;
		if (!ipc.gateway.len && a->is_gw) {
			struct ip net = ipnet_network(&ipc.address);
			ipc.gateway = ip_next(&net);
		}
		*has_v6 |= fam == 1;
		if (a->is_default_gw && !dflt[fam] && ipc.gateway.len) {
			struct cni_route def = { .dst = { .ip = { .len = ipc.address.ip.len }, .prefix = 0 }, .gw = ipc.gateway };
			if (cni_result_add_route(ires, &def) < 0)
				return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			dflt[fam] = true;
		}
		if (cni_result_add_ip(out, &ipc) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < ires->n_routes; i++)
		if (cni_result_add_route(out, &ires->routes[i]) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	return 0;
}

/* The container interface's IPv6 sysctls (netlink sets none of them): name/value pairs in
 * kv[0..2n), written through /proc/sys inside the namespace. */
struct ctr_sysctls {
	char s_dad[96], s_edad[96], s_keep[96], s_dis[96];
	const char *kv[8];
	size_t n;
};

static void ctr_sysctls(struct ctr_sysctls *s, const char *ifname, bool has_v6, bool dad)
{
	const char **sc = s->kv;
	size_t n = 0;
	if (has_v6) {
		snprintf(s->s_dis, sizeof(s->s_dis), "net/ipv6/conf/%s/disable_ipv6", ifname);
		snprintf(s->s_keep, sizeof(s->s_keep), "net/ipv6/conf/%s/keep_addr_on_down", ifname);
		sc[n * 2] = s->s_dis, sc[n * 2 + 1] = "0", n++;
		sc[n * 2] = s->s_keep, sc[n * 2 + 1] = "1", n++;
		if (dad) {
			snprintf(s->s_dad, sizeof(s->s_dad), "net/ipv6/conf/%s/accept_dad", ifname);
			snprintf(s->s_edad, sizeof(s->s_edad), "net/ipv6/conf/%s/enhanced_dad", ifname);
			sc[n * 2] = s->s_dad, sc[n * 2 + 1] = "1", n++;
			sc[n * 2] = s->s_edad, sc[n * 2 + 1] = "1", n++;
		}
	}
	s->n = n;
}

/* Inside the container: sysctls, link up, addresses, routes. */
static int ctr_configure(struct cni_ctx *c, const struct attach_conf *a, struct attach_ns *ns, const struct cni_result *out,
			 bool has_v6, struct cni_error *e)
{
	struct ctr_sysctls sc;
	struct cnl_link cont_link;
	int r;

	ctr_sysctls(&sc, c->ifname, has_v6, a->enable_dad);
	if (attach_ns_sock(ns, c->netns, sc.kv, sc.n, e) < 0)
		return -1;
	if ((r = cnl_link_get(ns->csk, c->ifname, 0, &cont_link, e)) <= 0) {
		if (!r)
			cni_errf(e, CNI_ERR_KERNEL, "interface %s vanished from CNI_NETNS %s", c->ifname, c->netns);
		return -1;
	}
	/* arp_notify before the link comes up (the kernel's gratuitous ARP then), as the reference
	 * sets it: over netlink in the container's namespace, which spares a trip into it and a /proc
	 * lookup (every kernel since 2.6.39 takes it; one without an IPv4 device has no /proc/sys
	 * entry either). Best effort, as the reference. */
	if (out->n_ips) {
		struct cni_error ignored = { 0 };
		cnl_link_set_ipv4_conf(ns->csk, cont_link.index, IPV4_DEVCONF_ARP_NOTIFY, 1, &ignored);
	}
	/* the kernel refuses IPv6 on a link below 1280 with a bare EINVAL: say what is wrong */
	if (has_v6 && cont_link.mtu > 0 && cont_link.mtu < 1280)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: IPv6 needs an MTU of at least 1280, but %s has %d (\"mtu\", or an overlay's "
				"underlay MTU less its encapsulation)",
				c->ifname, cont_link.mtu);
	for (size_t i = 0; i < out->n_ips; i++)
		if (cnl_addr_add(ns->csk, cont_link.index, &out->ips[i].address, !a->enable_dad, e) < 0)
			return -1;
	if (!a->disable_container_iface && cnl_link_modify(ns->csk, cont_link.index, IFF_UP, IFF_UP, 0, NULL, -1, e) < 0)
		return -1;
	if (has_v6 && a->enable_dad && wait_dad(ns->csk, cont_link.index, c->ifname, e) < 0)
		return -1;
	for (size_t i = 0; i < out->n_routes; i++) {
		const struct cni_route *rt = &out->routes[i];
		const struct ip *gw = rt->gw.len ? &rt->gw : family_gw(out, rt->dst.ip.len);
		if (cnl_route_add(ns->csk, cont_link.index, rt, gw, e) < 0)
			return -1;
	}
	return 0;
}

int attach_ctr_apply(struct cni_ctx *c, const struct attach_conf *a, struct attach_ns *ns, struct cni_result *ires, int iface_idx,
		     struct cni_result *out)
{
	bool has_v6 = false;
	if (ctr_result(a, ires, iface_idx, out, &has_v6, &c->err) < 0)
		return -1;
	if (out->n_ips || !a->disable_container_iface)
		return ctr_configure(c, a, ns, out, has_v6, &c->err);
	return 0;
}

/* ---- ADD: undo steps ---- */

struct link_undo {
	struct nlsock *sk;
	char name[16];
};

static void undo_link(void *arg)
{
	struct link_undo *l = arg;
	struct cni_error ig = { 0 };
	cnl_link_del(l->sk, 0, l->name, &ig);
}

/* Both rule sets are named by the attachment (network, container ID, ifname). */
static void undo_spoofchk(void *arg)
{
	struct masq_id *id = arg;
	struct cni_error ig = { 0 };
	spoofchk_del(id->container_id, id->ifname, &ig);
}

static void undo_masq(void *arg)
{
	struct cni_error ig = { 0 };
	masq_del(arg, &ig);
}

struct held;
static int held_read(struct attach_ns *ns, int index, struct held *h, struct cni_error *e);

/* An ADD repeated for an attachment whose veth pair is still there (a runtime restarted, or retried
 * after a timeout): the container's interface is one end of a pair whose other end is our host end
 * (its name derives from the container ID and ifname), a port of br or of no bridge. The pair is
 * adopted as it is, made a port of br and up again, and its MACs reported; the ADD then restores what else is missing. It made
 * nothing, so it records nothing to undo. 1 = adopted, 0 = the interface is not ours, -1 = error. */
static int adopt_pair(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br,
		      const struct cnl_link *cont, struct attach_ns *ns, const char *host, uint8_t hostmac[6], uint8_t contmac[6])
{
	struct cni_error *e = &c->err;
	struct cnl_link h;
	int r;
	if (strcmp(cont->kind, "veth") != 0 || (r = cnl_link_get(sk, host, 0, &h, e)) == 0)
		return 0;
	if (r < 0)
		return -1;
	/* a port of another bridge is another network's attachment of the same container ID and ifname */
	if (strcmp(h.kind, "veth") != 0 || h.link != cont->index || cont->link != h.index || h.link_netnsid < 0 ||
	    (h.master && h.master != br->index))
		return 0;
	if ((h.master != br->index || !(h.flags & IFF_UP)) &&
	    cnl_link_modify(sk, h.index, IFF_UP, IFF_UP, 0, NULL, h.master != br->index ? br->index : -1, e) < 0)
		return -1;
	memcpy(hostmac, h.mac, 6);
	if (a->has_mac && memcmp(cont->mac, a->mac, 6) != 0 && cnl_link_modify(ns->csk, cont->index, 0, 0, 0, a->mac, -1, e) < 0)
		return -1;
	memcpy(contmac, a->has_mac ? a->mac : cont->mac, 6);
	return 1;
}

/* The container's interface, before IPAM is asked for anything: 0 = absent (the pair is to be
 * made), 1 = the attachment's own pair, adopted; an interface of that name that is not ours fails
 * the ADD with code 106 here, as the reference's does before its IPAM runs, so that the refusal
 * releases nothing (the address IPAM would hand back may be the live attachment's own). */
static int existing_iface(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br,
			  struct attach_ns *ns, const char *host, uint8_t hostmac[6], uint8_t contmac[6], struct held *h)
{
	struct cnl_link l;
	int r;
	if (attach_ns_sock(ns, c->netns, NULL, 0, &c->err) < 0 || (r = cnl_link_get(ns->csk, c->ifname, 0, &l, &c->err)) < 0)
		return -1;
	if (r == 0)
		return 0;
	if ((r = adopt_pair(c, a, sk, br, &l, ns, host, hostmac, contmac)) < 0)
		return -1;
	if (r == 1)
		return held_read(ns, l.index, h, &c->err) < 0 ? -1 : 1;
	return cni_errf(&c->err, CNI_ERR_EXISTS, "interface \"%s\" already exists in CNI_NETNS %s", c->ifname, c->netns);
}

/* The veth pair, its host end a port of br. An EEXIST on our host end's name alone is a veth left
 * by a crashed ADD of this same attachment (the name derives from it): it is reclaimed. */
static int make_veth(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br,
		     struct attach_ns *ns, const char *host, const uint8_t hostmac[6], const uint8_t contmac[6], struct undo *u)
{
	struct cni_error *e = &c->err;
	struct cnl_link l;
	struct link_undo lu = { sk, "" };
	int r;
	/* The peer cannot be created up (the kernel opens it before it has its pair: ENOTCONN);
	 * it goes up from inside the container later. */
	struct cnl_veth v = { .name = host,
			      .mac = hostmac,
			      .mtu = a->mtu,
			      .master = br->index,
			      .up = true,
			      .peer_name = c->ifname,
			      .peer_mac = contmac,
			      .peer_netns_fd = ns->nsfd,
			      .peer_up = false };
	snprintf(lu.name, sizeof(lu.name), "%s", host);
	for (int attempt = 0;; attempt++) {
		if ((r = cnl_veth_create(sk, &v, e)) == 0)
			return undo_push(u, undo_link, &lu, sizeof(lu), e);
		if (r != -EEXIST || attempt)
			break;
		/* Which name is taken? The container's: the spec's error. Only our host end: reclaim. */
		cni_err_clear(e);
		if (attach_ns_sock(ns, c->netns, NULL, 0, e) < 0 || (r = cnl_link_get(ns->csk, c->ifname, 0, &l, e)) < 0)
			break;
		if (r == 1) {
			cni_errf(e, CNI_ERR_EXISTS, "interface \"%s\" already exists in CNI_NETNS %s", c->ifname, c->netns);
			break;
		}
		if ((r = cnl_link_get(sk, host, 0, &l, e)) < 0)
			break;
		if (r == 0 || strcmp(l.kind, "veth") != 0) {
			cni_errf(e, CNI_ERR_EXISTS, "cannot create veth %s: the name is taken%s", host,
				 r ? " by a link that is not a veth" : "");
			break;
		}
		if (cnl_link_del(sk, l.index, host, e) < 0)
			break;
	}
	return -1;
}

/* Hairpin, isolation and VLANs of the host end. */
static int port_setup(const struct attach_conf *a, struct nlsock *sk, const char *host, struct cni_error *e)
{
	struct cnl_link l;
	if (!(a->hairpin || a->port_isolation || a->vlan || a->n_trunk))
		return 0;
	if (cnl_link_get(sk, host, 0, &l, e) <= 0)
		return e->code ? -1 : cni_errf(e, CNI_ERR_KERNEL, "veth %s vanished after creation", host);
	if ((a->hairpin || a->port_isolation) &&
	    cnl_brport_set(sk, l.index, a->hairpin ? 1 : -1, a->port_isolation ? 1 : -1, e) < 0)
		return -1;
	if ((a->vlan || a->n_trunk) && port_vlans(sk, l.index, a, e) < 0)
		return -1;
	return 0;
}

/* The gateway side on the host: the gateway addresses on the bridge (or its VLAN interface),
 * forwarding on. */
static int host_gateway(const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br, struct cni_result *out,
			struct cni_error *e)
{
	struct cnl_link gwlink = *br;
	bool has_v4 = false, has_v6 = false;
	if (!a->is_gw || !out->n_ips)
		return 0;
	for (size_t i = 0; i < out->n_ips; i++) {
		has_v4 |= ip_is_v4(&out->ips[i].address.ip);
		has_v6 |= !ip_is_v4(&out->ips[i].address.ip);
	}
	if (a->vlan) {
		if (ensure_vlan_gw(sk, a, br, &gwlink, e) < 0)
			return -1;
		if (cni_result_add_iface(out, gwlink.name, gwlink.has_mac ? cnl_mac_fmt(gwlink.mac, (char[18]){ 0 }) : "", NULL) <
		    0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < out->n_ips; i++) {
		struct ipnet gw = { .ip = out->ips[i].gateway, .prefix = out->ips[i].address.prefix };
		if (gw.ip.len && ensure_gw_addr(sk, gwlink.index, gwlink.name, &gw, a->force_address, !a->enable_dad, e) < 0)
			return -1;
	}
	/* read over netlink (no /proc lookup); written through /proc/sys only when off */
	if ((has_v4 && cnl_forwarding(sk, AF_INET) != 1 && sysctl_set("net/ipv4/ip_forward", "1", e) < 0) ||
	    (has_v6 && cnl_forwarding(sk, AF_INET6) != 1 && sysctl_set("net/ipv6/conf/all/forwarding", "1", e) < 0))
		return -1;
	return 0;
}

/* The IPAM result, which must hold an address. */
static int ipam_result(struct cni_ctx *c, struct cni_ipam_add *ia, struct cni_result *ires)
{
	struct cni_error *e = &c->err;
	const char *t = NULL;
	if (cni_ipam_add_finish(ia, ires, e) < 0 || FAULT(e, "ipam") < 0)
		return -1;
	if (ires->n_ips)
		return 0;
	cni_ipam_type(c, &t, e);
	return cni_errf(e, CNI_ERR_PLUGIN_EXEC, "IPAM plugin \"%s\" returned no IP configuration", t ? t : "?");
}

/* The result's interfaces: bridge (0), host veth (1), container veth (2). The bridge's MAC is read
 * again: a bridge without a MAC of its own takes its lowest port's, so the first port changes it. */
static int result_ifaces(struct cni_ctx *c, struct nlsock *sk, const struct cnl_link *br, const char *host,
			 const uint8_t hostmac[6], const uint8_t contmac[6], struct cni_result *out)
{
	char hm[18], cm[18];
	struct cnl_link now;
	int r = cnl_link_get(sk, NULL, br->index, &now, &c->err);
	if (r < 0)
		return -1;
	if (r == 0 || strcmp(now.name, br->name) != 0)
		now = *br;
	if (cni_result_add_iface(out, br->name, now.has_mac ? cnl_mac_fmt(now.mac, (char[18]){ 0 }) : "", NULL) < 0 ||
	    cni_result_add_iface(out, host, cnl_mac_fmt(hostmac, hm), NULL) < 0 ||
	    cni_result_add_iface(out, c->ifname, cnl_mac_fmt(contmac, cm), c->netns) < 0)
		return cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
	return 0;
}

/* SNAT of the container's addresses, recorded for undo. */
static int add_masq(struct cni_ctx *c, const struct attach_conf *a, const struct cni_result *out, const struct masq_id *id,
		    struct undo *u)
{
	struct ipnet addrs[16];
	size_t n = 0;
	if (!a->ip_masq || !out->n_ips)
		return 0;
	for (size_t i = 0; i < out->n_ips && n < 16; i++)
		if (attach_masq_covers(a, &out->ips[i].address.ip))
			addrs[n++] = out->ips[i].address;
	if (!n)
		return 0;
	if (masq_add(a->masq_backend, id, addrs, n, &c->err) < 0)
		return -1;
	return undo_push(u, undo_masq, id, sizeof(*id), &c->err);
}

/* A repeated ADD adopting the pair asks host-local for the global addresses the container's
 * interface still has, through the `ips` runtime config (it reserves a requested address again
 * when its reservation was lost, and confirms it when it is still held), unless the config
 * requests addresses itself. Whatever the result does
 * not hold any more is removed from the interface afterwards: a lost reservation's address left
 * there would be handed to another container too. */
struct held {
	struct cni_ctx sub; /* c, its config asking for the addresses */
	struct ipnet addr[8];
	size_t n;
	int index; /* of the container's interface */
	bool requested;
	char *buf;
	cJSON *conf;
};

static void held_free(struct held *h)
{
	free(h->buf);
	cJSON_Delete(h->conf);
}

/* The interface's global addresses into h. */
static int held_read(struct attach_ns *ns, int index, struct held *h, struct cni_error *e)
{
	struct cnl_addr_info *addrs = NULL;
	size_t n = 0;
	if (cnl_addr_list(ns->csk, index, 0, &addrs, &n, e) < 0)
		return -1;
	h->index = index;
	for (size_t i = 0; i < n && h->n < sizeof(h->addr) / sizeof(h->addr[0]); i++)
		if (addrs[i].scope == RT_SCOPE_UNIVERSE)
			h->addr[h->n++] = addrs[i].addr;
	free(addrs);
	return 0;
}

/* h->sub: c with runtimeConfig.ips naming the held addresses, when there are some and the config
 * requests none (runtimeConfig.ips, args.cni.ips, CNI_ARGS IP). */
static int held_request(const struct cni_ctx *c, struct held *h, struct cni_error *e)
{
	const cJSON *rc = conf_runtime_config(c->conf), *args = conf_args_cni(c->conf);
	const char *ip = cni_arg(c, "IP"), *type = NULL;
	cJSON *r, *ips;
	char b[IPNET_STRLEN];
	/* host-local only: static takes runtime ips in place of its configured addresses */
	if (cni_ipam_type(c, &type, e) <= 0 || strcmp(type, "host-local") != 0)
		return e->code ? -1 : 0;
	if (!h->n || (rc && cJSON_GetObjectItemCaseSensitive(rc, "ips")) ||
	    (args && cJSON_GetObjectItemCaseSensitive(args, "ips")) || (ip && *ip))
		return 0;
	if (!(h->conf = cJSON_Duplicate(c->conf, true)))
		goto oom;
	r = cJSON_GetObjectItemCaseSensitive(h->conf, "runtimeConfig");
	if (!cJSON_IsObject(r)) {
		cJSON_DeleteItemFromObjectCaseSensitive(h->conf, "runtimeConfig");
		if (!(r = cJSON_AddObjectToObject(h->conf, "runtimeConfig")))
			goto oom;
	}
	if (!(ips = cJSON_AddArrayToObject(r, "ips")))
		goto oom;
	for (size_t i = 0; i < h->n; i++)
		if (!cJSON_AddItemToArray(ips, cJSON_CreateString(ipnet_fmt(&h->addr[i], b))))
			goto oom;
	if (!(h->buf = cJSON_PrintUnformatted(h->conf)))
		goto oom;
	h->sub = *c;
	h->sub.conf = h->conf;
	h->sub.stdin_buf = h->buf;
	h->sub.stdin_len = strlen(h->buf);
	h->requested = true;
	return 0;
oom:
	return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
}

/* The held addresses the result does not hold, removed from the interface. */
static int held_drop_stale(struct attach_ns *ns, const struct held *h, const struct cni_result *out, struct cni_error *e)
{
	for (size_t i = 0; i < h->n; i++) {
		bool kept = false;
		for (size_t k = 0; k < out->n_ips && !kept; k++)
			kept = ipnet_same(&out->ips[k].address, &h->addr[i]);
		if (!kept && cnl_addr_del(ns->csk, h->index, &h->addr[i], e) < 0)
			return -1;
	}
	return 0;
}

/* IPAM's result; when it refused the held addresses (another container's now, or outside its
 * ranges after a config change), asked again without them, as a first ADD would. */
static int ipam_result_held(struct cni_ctx *c, struct cni_ipam_add *ia, struct held *h, struct undo *u, struct cni_result *ires)
{
	if (!h->requested)
		return ipam_result(c, ia, ires);
	if (ipam_result(c, ia, ires) == 0)
		return 0;
	/* only a refusal of the held addresses (taken meanwhile, or out of the ranges now) is retried */
	if (c->err.code != CNI_ERR_IP_TAKEN)
		return -1;
	cni_result_free(ires);
	memset(ires, 0, sizeof(*ires));
	cni_err_clear(&c->err);
	h->requested = false;
	bool keep = ia->keep;
	if (cni_ipam_add_start(ia, c, u, &c->err) < 0)
		return -1;
	ia->keep = keep;
	return ipam_result(c, ia, ires);
}

/* The DNS of the result: the config's, else the IPAM plugin's. */
static int result_dns(const struct attach_conf *a, struct cni_result *ires, struct cni_result *out, struct cni_error *e)
{
	if (!a->has_dns) {
		out->dns = ires->dns;
		memset(&ires->dns, 0, sizeof(ires->dns));
		return 0;
	}
	return cni_dns_copy(&out->dns, &a->dns) < 0 ? cni_errf(e, CNI_ERR_INTERNAL, "out of memory") : 0;
}

int attach_add(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br,
	       struct cni_result *out)
{
	struct undo undo = { 0 }, *u = &undo;
	struct cni_error *e = &c->err;
	struct attach_ns ns = { -1, -1, NULL };
	struct cni_ipam_add ipam;
	struct cni_result ires = { 0 };
	struct held h = { 0 };
	struct masq_id id = { c->name, c->container_id, c->ifname };
	char host[16], contmac_s[18];
	uint8_t hostmac[6], contmac[6];
	int r, rc = -1, adopted;

	attach_host_veth_name(c->container_id, c->ifname, host);
	if ((r = attach_ns_prepare(&ns, c->netns, e)) != 0) {
		if (r == 1)
			cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if ((adopted = existing_iface(c, a, sk, br, &ns, host, hostmac, contmac, &h)) < 0 ||
	    (a->has_ipam && held_request(c, &h, e) < 0))
		goto out;
	/* IPAM runs while we do the kernel work. */
	if (a->has_ipam && cni_ipam_add_start(&ipam, h.requested ? &h.sub : c, u, e) < 0)
		goto out;
	/* a failed repair leaves the live attachment as it was: its address stays reserved */
	ipam.keep = adopted;
	if (FAULT(e, "ipam-start") < 0)
		goto out;
	if (!adopted) {
		uint8_t two[12];
		cnl_mac_random(two, 2); /* one getrandom for both */
		memcpy(hostmac, two, 6);
		memcpy(contmac, a->has_mac ? a->mac : two + 6, 6);
	}
	if ((!adopted && make_veth(c, a, sk, br, &ns, host, hostmac, contmac, u) < 0) || FAULT(e, "veth") < 0)
		goto out;
	if (port_setup(a, sk, host, e) < 0 || FAULT(e, "port") < 0)
		goto out;
	if (a->macspoofchk && (spoofchk_add(c->container_id, c->ifname, host, cnl_mac_fmt(contmac, contmac_s), e) < 0 ||
			       undo_push(u, undo_spoofchk, &id, sizeof(id), e) < 0))
		goto out;
	if (FAULT(e, "spoofchk") < 0 || (a->has_ipam && ipam_result_held(c, &ipam, &h, u, &ires) < 0))
		goto out;
	/* a stale address goes first: removing a primary address takes the kernel's secondaries along */
	if (held_drop_stale(&ns, &h, &ires, e) < 0 || result_ifaces(c, sk, br, host, hostmac, contmac, out) < 0 ||
	    attach_ctr_apply(c, a, &ns, &ires, 2, out) < 0 || FAULT(e, "container") < 0)
		goto out;
	if (host_gateway(a, sk, br, out, e) < 0 || FAULT(e, "gateway") < 0)
		goto out;
	if (add_masq(c, a, out, &id, u) < 0 || FAULT(e, "masq") < 0 || result_dns(a, &ires, out, e) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		undo_run(u);
	cni_result_free(&ires);
	held_free(&h);
	attach_ns_close(&ns);
	return rc;
}

/* ---- DEL ---- */

int attach_del(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk)
{
	struct cni_error *e = &c->err, first = { 0 };
	struct cni_exec ipam = { 0 };
	bool ipam_running = false;
	char host[16];
	struct masq_id mid = { c->name, c->container_id, c->ifname };
	int r;

	/* IPAM releases while the kernel deletes the link (which waits for RCU). */
	if (a->has_ipam) {
		if (cni_ipam_start(c, CNI_DEL, &ipam, &first) == 0)
			ipam_running = true;
	}
	/* The host end, by the name derived from container ID and ifname, when it is a port of this
	 * network's bridge (or of none: the bridge was deleted). The same container ID and ifname in
	 * another network (cnitool derives the ID from the netns path; a second ADD was refused) name
	 * a veth on another bridge: that attachment is not this DEL's. */
	struct cnl_link hl = { 0 }, br;
	int br_index = -1;
	attach_host_veth_name(c->container_id, c->ifname, host);
	if ((r = cnl_link_get(sk, a->bridge, 0, &br, e)) == 1)
		br_index = br.index;
	if (r >= 0)
		r = cnl_link_get(sk, host, 0, &hl, e);
	if (r == 1 && (strcmp(hl.kind, "veth") != 0 || (hl.master && hl.master != br_index)))
		r = 2; /* someone else's */
	else if (r == 1)
		r = cnl_link_del(sk, hl.index, host, e);
	else if (r == 0)
		r = 1;
	if (r < 0) {
		if (!first.code)
			first = *e;
		cni_err_clear(e);
	} else if (r == 1 && c->netns) {
		/* Not made by us (the reference names host ends at random): delete the container's
		 * end by name, if the netns is still there and its peer is a port of this network's
		 * bridge or of none. */
		struct attach_ns ns;
		struct cnl_link l, peer;
		struct cni_error ne = { 0 };
		if (attach_ns_prepare(&ns, c->netns, &ne) == 0 && attach_ns_sock(&ns, c->netns, NULL, 0, &ne) == 0 &&
		    cnl_link_get(ns.csk, c->ifname, 0, &l, &ne) == 1 && strcmp(l.kind, "veth") == 0 &&
		    !(l.link && cnl_link_get(sk, NULL, l.link, &peer, &ne) == 1 && peer.master && peer.master != br_index))
			cnl_link_del(ns.csk, l.index, c->ifname, &ne);
		if (ne.code && ne.code != CNI_ERR_INVALID_ENV && !first.code)
			first = ne;
		attach_ns_close(&ns);
	}
	if (a->ip_masq && masq_del(&mid, e) < 0) {
		if (!first.code)
			first = *e;
		cni_err_clear(e);
	}
	if (a->macspoofchk && spoofchk_del(c->container_id, c->ifname, e) < 0) {
		if (!first.code)
			first = *e;
		cni_err_clear(e);
	}
	if (ipam_running && cni_exec_finish(&ipam, NULL, e) < 0) {
		if (!first.code)
			first = *e;
		cni_err_clear(e);
	}
	if (first.code) {
		*e = first;
		return -1;
	}
	return 0;
}

/* ---- CHECK ---- */

/* prevResult's addresses of interface iface_idx present on `index` in the container, and every
 * route of prevResult present there (code 104 naming what is missing). */
int attach_check_ctr(struct cni_ctx *c, struct attach_ns *ns, int index, int iface_idx)
{
	struct cni_error *e = &c->err;
	const struct cni_result *p = &c->prev;
	struct cnl_addr_info *addrs = NULL;
	size_t n_addrs = 0;
	char b1[IPNET_STRLEN], b2[IP_STRLEN];
	int rc = -1, r;
	if (cnl_addr_list(ns->csk, index, 0, &addrs, &n_addrs, e) < 0)
		return -1;
	for (size_t i = 0; i < p->n_ips; i++) {
		bool found = false;
		if (p->ips[i].iface != iface_idx)
			continue;
		for (size_t k = 0; k < n_addrs && !found; k++)
			found = ipnet_same(&addrs[k].addr, &p->ips[i].address);
		if (!found) {
			cni_check_fail(e, "address %s is missing from %s in the container", ipnet_fmt(&p->ips[i].address, b1),
				       c->ifname);
			goto out;
		}
	}
	for (size_t i = 0; i < p->n_routes; i++) {
		const struct cni_route *rt = &p->routes[i];
		const struct ip *gw = rt->gw.len ? &rt->gw : family_gw(p, rt->dst.ip.len);
		if ((r = cnl_route_exists(ns->csk, rt, gw, e)) < 0)
			goto out;
		if (!r) {
			cni_check_fail(e, "route to %s via %s is missing in the container", ipnet_fmt(&rt->dst, b1),
				       gw ? ip_fmt(gw, b2) : "(link)");
			goto out;
		}
	}
	rc = 0;
out:
	free(addrs);
	return rc;
}

/* The bridge: there, a bridge, prevResult's MAC, the config's promiscuous mode. */
static int check_bridge(struct nlsock *sk, const struct attach_conf *a, const struct cni_iface *pbr, struct cnl_link *br,
			struct cni_error *e)
{
	char m[18];
	int r;
	if ((r = cnl_link_get(sk, a->bridge, 0, br, e)) <= 0)
		return r < 0 ? -1 : cni_check_fail(e, "bridge %s not found", a->bridge);
	if (strcmp(br->kind, "bridge") != 0)
		return cni_check_fail(e, "interface %s is not a bridge (kind %s)", a->bridge, br->kind);
	if (pbr && pbr->mac[0] && strcmp(pbr->mac, cnl_mac_fmt(br->mac, m)) != 0)
		return cni_check_fail(e, "bridge %s MAC differs from prevResult (%s)", a->bridge, pbr->mac);
	if (a->promisc != br->promisc)
		return cni_check_fail(e, "bridge %s promiscuous mode is %s, config says otherwise", a->bridge,
				      br->promisc ? "on" : "off");
	return 0;
}

/* The container end (in ns): a veth with prevResult's MAC, up; its host end an up port of br. */
static int check_veth(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, struct attach_ns *ns,
		      const struct cni_iface *pcont, const struct cnl_link *br, struct cnl_link *cont, struct cnl_link *host)
{
	struct cni_error *e = &c->err;
	char m[18];
	int r;
	if ((r = cnl_link_get(ns->csk, c->ifname, 0, cont, e)) <= 0)
		return r < 0 ? -1 : cni_check_fail(e, "interface %s not found in CNI_NETNS %s", c->ifname, c->netns);
	if (strcmp(cont->kind, "veth") != 0)
		return cni_check_fail(e, "interface %s in the container is not a veth (kind %s)", c->ifname, cont->kind);
	if (pcont->mac[0] && strcmp(pcont->mac, cnl_mac_fmt(cont->mac, m)) != 0)
		return cni_check_fail(e, "interface %s MAC %s differs from prevResult", c->ifname, m);
	if (!a->disable_container_iface && !(cont->flags & IFF_UP))
		return cni_check_fail(e, "interface %s in the container is down", c->ifname);
	if ((r = cnl_link_get(sk, NULL, cont->link, host, e)) <= 0 || strcmp(host->kind, "veth") != 0)
		return e->code ? -1 : cni_check_fail(e, "the host end of %s's veth pair is gone", c->ifname);
	if (host->master != br->index)
		return cni_check_fail(e, "host veth %s is not a port of bridge %s", host->name, a->bridge);
	if (!(host->flags & IFF_UP))
		return cni_check_fail(e, "host veth %s is down", host->name);
	return 0;
}

/* SNAT for prevResult's addresses of the container interface; the MAC spoof check. */
static int check_filters(struct cni_ctx *c, const struct attach_conf *a, int cont_idx, const struct cnl_link *cont,
			 const struct cnl_link *host)
{
	const struct cni_result *p = &c->prev;
	char m[18];
	if (a->ip_masq) {
		struct ipnet v[16];
		size_t n = 0;
		struct masq_id mid = { c->name, c->container_id, c->ifname };
		for (size_t i = 0; i < p->n_ips && n < 16; i++)
			if (p->ips[i].iface == cont_idx && attach_masq_covers(a, &p->ips[i].address.ip))
				v[n++] = p->ips[i].address;
		if (n && masq_check(a->masq_backend, &mid, v, n, &c->err) < 0)
			return -1;
	}
	if (a->macspoofchk && spoofchk_check(c->container_id, c->ifname, host->name, cnl_mac_fmt(cont->mac, m), &c->err) < 0)
		return -1;
	return 0;
}

/* isGateway: each gateway of prevResult's addresses is on the bridge (or on its VLAN interface),
 * with the address's prefix, as ADD put it there. */
static int check_gateways(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk, const struct cnl_link *br)
{
	struct cni_error *e = &c->err;
	struct cnl_link gwl = *br;
	char name[32], g[IPNET_STRLEN];
	int r;
	if (!a->is_gw)
		return 0;
	if (a->vlan) {
		snprintf(name, sizeof(name), "%s.%d", a->bridge, a->vlan);
		if ((r = cnl_link_get(sk, name, 0, &gwl, e)) <= 0)
			return r < 0 ? -1 : cni_check_fail(e, "the VLAN gateway interface %s is missing", name);
	}
	for (size_t i = 0; i < c->prev.n_ips; i++) {
		const struct cni_ipcfg *ip = &c->prev.ips[i];
		struct ipnet gw = { .ip = ip->gateway, .prefix = ip->address.prefix };
		struct cnl_addr_info *have = NULL;
		size_t n = 0;
		bool found = false;
		if (!gw.ip.len)
			continue;
		if (cnl_addr_list(sk, gwl.index, ip_is_v4(&gw.ip) ? AF_INET : AF_INET6, &have, &n, e) < 0)
			return -1;
		for (size_t k = 0; k < n && !found; k++)
			found = ipnet_same(&have[k].addr, &gw);
		free(have);
		if (!found)
			return cni_check_fail(e, "gateway %s is missing from %s", ipnet_fmt(&gw, g), gwl.name);
	}
	return 0;
}

int attach_check(struct cni_ctx *c, const struct attach_conf *a, struct nlsock *sk)
{
	struct cni_error *e = &c->err;
	const struct cni_result *p = &c->prev;
	const struct cni_iface *pbr = NULL, *pcont = NULL;
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link br, cont, host;
	int rc = -1, r, cont_idx = -1;

	if (!c->has_prev)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: CHECK needs \"prevResult\"");
	if (a->has_ipam && cni_ipam_exec(c, CNI_CHECK, NULL, e) < 0)
		return -1;
	for (size_t i = 0; i < p->n_ifaces; i++) {
		if (strcmp(p->ifaces[i].name, a->bridge) == 0 && !p->ifaces[i].sandbox)
			pbr = &p->ifaces[i];
		else if (strcmp(p->ifaces[i].name, c->ifname) == 0 && p->ifaces[i].sandbox &&
			 strcmp(p->ifaces[i].sandbox, c->netns) == 0) {
			pcont = &p->ifaces[i];
			cont_idx = (int)i;
		}
	}
	if (!pcont)
		return cni_check_fail(e, "prevResult has no interface %s in sandbox %s", c->ifname, c->netns);
	if (check_bridge(sk, a, pbr, &br, e) < 0 || check_gateways(c, a, sk, &br) < 0)
		return -1;
	if ((r = attach_ns_prepare(&ns, c->netns, e)) != 0) {
		if (r == 1)
			cni_check_fail(e, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if (attach_ns_sock(&ns, c->netns, NULL, 0, e) < 0 || check_veth(c, a, sk, &ns, pcont, &br, &cont, &host) < 0 ||
	    attach_check_ctr(c, &ns, cont.index, cont_idx) < 0 || check_filters(c, a, cont_idx, &cont, &host) < 0)
		goto out;
	rc = 0;
out:
	attach_ns_close(&ns);
	return rc;
}

/* ---- GC, STATUS ---- */

int attach_gc(struct cni_ctx *c, const struct attach_conf *a)
{
	struct cni_error first = { 0 };
	if (a->has_ipam && cni_ipam_exec(c, CNI_GC, NULL, &first) < 0) {
		/* continue: the spec asks GC to go on and report */
	}
	if (a->ip_masq) {
		struct cni_error me = { 0 };
		if ((masq_gc(c->name, c->valid, c->n_valid, &me) < 0 ||
		     (a->masq_backend == MASQ_IPTABLES && masq_gc_iptables(c->name, c->valid, c->n_valid, &me) < 0)) &&
		    !first.code)
			first = me;
	}
	if (a->macspoofchk) {
		struct cni_error se = { 0 };
		if (spoofchk_gc(c->valid, c->n_valid, &se) < 0 && !first.code)
			first = se;
	}
	if (first.code) {
		c->err = first;
		return -1;
	}
	return 0;
}

int attach_status(struct cni_ctx *c, const struct attach_conf *a)
{
	if (a->has_ipam && cni_ipam_exec(c, CNI_STATUS, NULL, &c->err) < 0)
		return -1;
	if (a->ip_masq && masq_available(a->masq_backend, &c->err) < 0)
		return -1;
	return 0;
}

/* ---- RELOAD ---- */

int attach_reload(struct cni_ctx *c, const struct attach_conf *a)
{
	struct cni_error *e = &c->err;
	const struct cni_result *p = &c->prev;
	const struct cni_iface *pcont = NULL;
	struct masq_id id = { c->name, c->container_id, c->ifname };
	struct ipnet v[16];
	size_t n = 0;
	int cont_idx = -1;
	char host[16];

	for (size_t i = 0; i < p->n_ifaces && !pcont; i++)
		if (strcmp(p->ifaces[i].name, c->ifname) == 0 && p->ifaces[i].sandbox && *p->ifaces[i].sandbox) {
			pcont = &p->ifaces[i];
			cont_idx = (int)i;
		}
	if (!pcont)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: prevResult has no interface %s in a sandbox",
				c->ifname);
	/* ADD masquerades every address of its result; they all sit on the container's interface */
	for (size_t i = 0; i < p->n_ips && n < 16; i++)
		if ((p->ips[i].iface == cont_idx || p->ips[i].iface < 0) && attach_masq_covers(a, &p->ips[i].address.ip))
			v[n++] = p->ips[i].address;
	if (a->ip_masq && n && masq_add(a->masq_backend, &id, v, n, e) < 0)
		return -1;
	if (!a->macspoofchk)
		return 0;
	if (!pcont->mac[0])
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: prevResult's interface %s has no mac", c->ifname);
	attach_host_veth_name(c->container_id, c->ifname, host);
	return spoofchk_add(c->container_id, c->ifname, host, pcont->mac, e);
}
