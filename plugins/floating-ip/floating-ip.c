/* floating-ip: 1:1 NAT of an external address (the floating IP) to the container's address,
 * chained after bridge, vlan or vxlan, on nf_tables. Traffic to the floating IP is DNATed to the
 * container; the container's traffic leaving its subnet is SNATed to the floating IP, so the
 * outside sees the floating IP both ways. One floating IP per family, from the config
 * ("floatingIP") or the runtime (capability "floatingIPs").
 *
 * Table "inet cni_c_fip" of ours, O(1) per packet and per operation:
 *   prerouting, output (nat, priority -110: before portmap's dstnat chains, so a floating IP is
 *          the container's whole address, host ports included):
 *          ip daddr vmap @dnat4, ip6 daddr vmap @dnat6
 *   postrouting (nat, priority 90: before the ipMasq table's srcnat chain, so a container with
 *          ipMasq still leaves with its floating IP): multicast returns, then
 *          ip saddr vmap @snat4, ip6 saddr vmap @snat6
 *   dnat4/dnat6: floating IP -> goto d-<16 hex sha512(network)>-<16 hex sha512(ifname:containerID)>,
 *          the attachment's DNAT rules: "ip daddr F dnat ip to C", commented "F to C addr DEV"
 *          (DEV: the host interface this plugin added F to, "-" when it added none), so DEL,
 *          and GC, need no config at all
 *   snat4/snat6: container address -> goto s-<same hashes>, the attachment's SNAT rules:
 *          "ip daddr != SUBNET snat ip to F", commented "C/PREFIX as F"
 * With "addAddress", F/32 (F/128) is added to the host interface "interface" (so the node
 * answers ARP/ND for it) and removed by DEL. Conntrack entries of the floating IP and of the
 * container address are flushed when a mapping appears, changes or goes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <linux/netfilter.h>

#include "conf.h"
#include "conntrack.h"
#include "fault.h"
#include "nft.h"
#include "nfttab.h"
#include "nl.h"
#include "sb.h"
#include "skel.h"
#include "undo.h"

#define TABLE_NAME "cni_c_fip"
#define TABLE "inet " TABLE_NAME
#define CHAIN_LEN NFTTAB_CHAIN_LEN
#define COMMENT_MAX NFT_COMMENT_MAX
#define MAX_ENT 8
#define MAX_EXCL 32

/* One mapping as an attachment's DNAT rule comment records it. */
struct fip_ent {
	struct ip fip, cip;
	char dev[16]; /* "" when this plugin added no address */
};

struct fip_conf {
	struct ip fip[2]; /* [0] IPv4, [1] IPv6; len 0: none */
	struct ipnet cip[2]; /* the container's address of that family on CNI_IFNAME */
	bool has_cip[2];
	char iface[16];
	bool add_addr;
	struct ipnet excl[MAX_EXCL]; /* destinations not SNATed (excludeSubnets), network addresses */
	size_t n_excl;
	char dchain[CHAIN_LEN], schain[CHAIN_LEN];
	char comment[COMMENT_MAX + 1];
};

static bool any_fip(const struct fip_conf *p)
{
	return p->fip[0].len || p->fip[1].len;
}

/* ---- the table ---- */

static const struct nfttab_map fip_maps[] = {
	{ "dnat4", "ipv4_addr" }, { "dnat6", "ipv6_addr" }, { "snat4", "ipv4_addr" }, { "snat6", "ipv6_addr" }, { "", "" },
};
static const struct nfttab_chain fip_chains[] = {
	{ "prerouting", "type nat hook prerouting priority -110; policy accept;" },
	{ "output", "type nat hook output priority -110; policy accept;" },
	{ "postrouting", "type nat hook postrouting priority 90; policy accept;" },
	{ "", NULL },
};
static const struct nfttab_rule fip_rules[] = {
	{ "prerouting", "ip daddr vmap @dnat4", "floating IPs (IPv4)" },
	{ "prerouting", "ip6 daddr vmap @dnat6", "floating IPs (IPv6)" },
	{ "output", "ip daddr vmap @dnat4", "floating IPs (IPv4, local)" },
	{ "output", "ip6 daddr vmap @dnat6", "floating IPs (IPv6, local)" },
	{ "postrouting", "ip daddr 224.0.0.0/4 return", "multicast: no SNAT (IPv4)" },
	{ "postrouting", "ip6 daddr ff00::/8 return", "multicast: no SNAT (IPv6)" },
	{ "postrouting", "ip saddr vmap @snat4", "container addresses (IPv4)" },
	{ "postrouting", "ip6 saddr vmap @snat6", "container addresses (IPv6)" },
	{ "", NULL, NULL },
};
/* The DNAT chains and the SNAT chains of the attachments differ in their prefix only; the first
 * descriptor builds and checks the table. */
#define FIP_TAB(prefix)                                                                                                \
	{                                                                                                              \
		.family = NFPROTO_INET, .ref = TABLE, .name = TABLE_NAME,                                              \
		.comment = "CNI floating IPs, 1:1 NAT (cni-c floating-ip)", .maps = fip_maps, .chains = fip_chains,    \
		.rules = fip_rules, .chain_prefix = prefix, .naming = NFTTAB_NET_ATTACHMENT, .who = "floating-ip",     \
		.altered = "a hook chain of table " TABLE " was altered (its rules are not those this plugin writes)", \
		.missing = "table " TABLE " or its hook chains are missing",                                           \
	}
static const struct nfttab tab = FIP_TAB("d-");
static const struct nfttab stab = FIP_TAB("s-");

static const char *dmap(int f)
{
	return f ? "dnat6" : "dnat4";
}
static const char *smap(int f)
{
	return f ? "snat6" : "snat4";
}

/* ---- config ---- */

/* Addresses that cannot stand for a container: unspecified, loopback, multicast, link-local,
 * IPv4 broadcast. */
static bool fip_usable(const struct ip *a)
{
	static const uint8_t zero[16];
	if (memcmp(a->b, zero, a->len) == 0)
		return false;
	if (a->len == 4)
		return a->b[0] != 127 && (a->b[0] & 0xf0) != 0xe0 && !(a->b[0] == 169 && a->b[1] == 254) &&
		       !(a->b[0] == 255 && a->b[1] == 255 && a->b[2] == 255 && a->b[3] == 255);
	static const uint8_t one[16] = { [15] = 1 };
	return memcmp(a->b, one, 16) != 0 && a->b[0] != 0xff && !(a->b[0] == 0xfe && (a->b[1] & 0xc0) == 0x80);
}

static int add_fip(struct cni_ctx *c, struct fip_conf *p, const cJSON *v, const char *path)
{
	struct ip a;
	if (conf_val_ip(v, path, &a, &c->err) < 0)
		return -1;
	int f = ip_is_v4(&a) ? 0 : 1;
	if (!fip_usable(&a))
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s\": \"%s\" cannot be a floating IP (unspecified, loopback, "
				"multicast, link-local or broadcast)",
				path, v->valuestring);
	if (p->fip[f].len)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s\": a second IPv%c floating IP (one per family)", path, f ? '6' : '4');
	p->fip[f] = a;
	return 0;
}

/* A string or an array of strings at obj.key (path names it). */
static int parse_fip_list(struct cni_ctx *c, struct fip_conf *p, const cJSON *v, const char *path, bool string_ok)
{
	char sub[CONF_PATH_MAX];
	const cJSON *x;
	size_t i = 0;

	if (string_ok && cJSON_IsString(v))
		return add_fip(c, p, v, path);
	if (!cJSON_IsArray(v))
		return cni_errf(&c->err, CNI_ERR_DECODE, "invalid config: field \"%s\" must be %s", path,
				string_ok ? "an IP address or an array of them" : "an array of IP addresses");
	if (cJSON_GetArraySize(v) > 2)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s\": more than two floating IPs (one per family)", path);
	cJSON_ArrayForEach (x, v)
		if (add_fip(c, p, x, conf_path_idx(sub, path, i++)) < 0)
			return -1;
	return 0;
}

/* excludeSubnets: prefixes the container reaches with its own address (no SNAT). */
static int parse_excl(struct cni_ctx *c, struct fip_conf *p)
{
	const cJSON *arr = NULL, *x;
	char path[CONF_PATH_MAX];
	size_t i = 0;
	int r;

	if ((r = conf_array(c->conf, NULL, "excludeSubnets", &arr, &c->err)) <= 0)
		return r;
	if (cJSON_GetArraySize(arr) > MAX_EXCL)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"excludeSubnets\": more than %d prefixes", MAX_EXCL);
	cJSON_ArrayForEach (x, arr) {
		const char *v;
		struct ipnet n;
		conf_path_idx(path, "excludeSubnets", i++);
		if (conf_val_string(x, path, &v, &c->err) < 0)
			return -1;
		if (ipnet_parse(v, &n) < 0)
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\": \"%s\" is not a prefix (address/length)", path, v);
		n.ip = ipnet_network(&n);
		bool dup = false;
		for (size_t k = 0; k < p->n_excl && !dup; k++)
			dup = p->excl[k].prefix == n.prefix && ip_equal(&p->excl[k].ip, &n.ip);
		if (!dup)
			p->excl[p->n_excl++] = n;
	}
	return 0;
}

/* The container's first IPv4 and first IPv6 address on CNI_IFNAME (as portmap picks them). */
static void container_ips(struct cni_ctx *c, struct fip_conf *p)
{
	for (size_t i = 0; i < c->prev.n_ips; i++) {
		const struct cni_ipcfg *ip = &c->prev.ips[i];
		int f = ip_is_v4(&ip->address.ip) ? 0 : 1;
		if (p->has_cip[f])
			continue;
		if (ip->iface >= 0 && (size_t)ip->iface < c->prev.n_ifaces) {
			const struct cni_iface *x = &c->prev.ifaces[ip->iface];
			if (strcmp(x->name, c->ifname) != 0 || !x->sandbox || !*x->sandbox)
				continue;
		}
		p->cip[f] = ip->address;
		p->has_cip[f] = true;
	}
}

static int parse_fields(struct cni_ctx *c, struct fip_conf *p, bool need_prev)
{
	const cJSON *v, *rc = conf_runtime_config(c->conf), *arr = NULL;
	const char *iface = NULL;
	char a[IP_STRLEN];
	int r;

	if ((v = conf_item(c->conf, "floatingIP")) && parse_fip_list(c, p, v, "floatingIP", true) < 0)
		return -1;
	if (rc && (r = conf_array(rc, "runtimeConfig", "floatingIPs", &arr, &c->err)) != 0) {
		if (r < 0)
			return -1;
		/* the runtime's floating IPs, when it passes any, replace the config's */
		if (cJSON_GetArraySize(arr) > 0) {
			memset(p->fip, 0, sizeof(p->fip));
			if (parse_fip_list(c, p, arr, "runtimeConfig.floatingIPs", false) < 0)
				return -1;
		}
	}
	if (parse_excl(c, p) < 0 || conf_string(c->conf, NULL, "interface", &iface, &c->err) < 0)
		return -1;
	if (iface && *iface) {
		if (!conf_valid_ifname(iface))
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"interface\": \"%s\" is not a valid interface name", iface);
		snprintf(p->iface, sizeof(p->iface), "%s", iface);
	}
	p->add_addr = p->iface[0] != '\0';
	if (conf_bool(c->conf, NULL, "addAddress", &p->add_addr, &c->err) < 0)
		return -1;
	if (p->add_addr && !p->iface[0])
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"interface\" is required when \"addAddress\" is true");
	if (c->has_prev)
		container_ips(c, p);
	if (need_prev && any_fip(p)) {
		if (!c->has_prev)
			return cni_errf(
				&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"prevResult\" is required: floating-ip must be called as a chained plugin");
		for (int f = 0; f < 2; f++) {
			if (!p->fip[f].len)
				continue;
			if (!p->has_cip[f])
				return cni_errf(
					&c->err, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"prevResult\": no IPv%c address on %s to map floating IP %s to",
					f ? '6' : '4', c->ifname ? c->ifname : "the container interface", ip_fmt(&p->fip[f], a));
			if (ip_equal(&p->fip[f], &p->cip[f].ip))
				return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
						"invalid config: floating IP %s is the container's own address",
						ip_fmt(&p->fip[f], a));
		}
	}
	/* GC and STATUS have no attachment */
	if (!c->ifname || !c->container_id)
		return 0;
	if (nfttab_chain_name(&tab, c->name, c->ifname, c->container_id, p->dchain, &c->err) < 0 ||
	    nfttab_chain_name(&stab, c->name, c->ifname, c->container_id, p->schain, &c->err) < 0)
		return -1;
	snprintf(p->comment, sizeof(p->comment), "net=%s if=%s id=%s", c->name, c->ifname, c->container_id);
	nft_comment_clean(p->comment);
	return 0;
}

/* ADD, CHECK and RELOAD need a valid config; DEL needs the attachment's identity only (the rules'
 * comments say what to undo), so it converges whatever the config says. */
static int parse(struct cni_ctx *c, void *conf)
{
	struct fip_conf *p = conf;
	if (parse_fields(c, p, c->verb == CNI_ADD || c->verb == CNI_CHECK || c->verb == CNI_RELOAD) == 0)
		return 0;
	if (c->verb != CNI_DEL)
		return -1;
	cni_err_clear(&c->err);
	memset(p, 0, sizeof(*p));
	if (nfttab_chain_name(&tab, c->name, c->ifname, c->container_id, p->dchain, &c->err) < 0 ||
	    nfttab_chain_name(&stab, c->name, c->ifname, c->container_id, p->schain, &c->err) < 0)
		return -1;
	return 0;
}

/* ---- reading what is there ---- */

/* "F to C addr DEV" -> e; false when the comment is not of that form. */
static bool ent_parse(const char *s, struct fip_ent *e)
{
	char f[IP_STRLEN], cc[IP_STRLEN], dev[17];
	if (sscanf(s, "%45s to %45s addr %16s", f, cc, dev) != 3 || ip_parse(f, &e->fip) < 0 || ip_parse(cc, &e->cip) < 0 ||
	    e->fip.len != e->cip.len)
		return false;
	if (strcmp(dev, "-") == 0)
		e->dev[0] = '\0';
	else if (conf_valid_ifname(dev))
		snprintf(e->dev, sizeof(e->dev), "%s", dev);
	else
		return false;
	return true;
}

/* The mappings an attachment's DNAT chain records: 1 (*cnt of them), 0 no such chain, -1. */
static int chain_ents(struct nft *n, const char *dchain, struct fip_ent ent[MAX_ENT], size_t *cnt, size_t *nrules,
		      struct cni_error *e)
{
	struct nft_rule_info *r = NULL;
	size_t nr = 0;
	int rc = nfttab_rules(n, &tab, dchain, &r, &nr, e);

	*cnt = 0;
	if (nrules)
		*nrules = nr;
	for (size_t i = 0; rc == 1 && i < nr && *cnt < MAX_ENT; i++)
		if (ent_parse(r[i].comment, &ent[*cnt]))
			(*cnt)++;
	free(r);
	return rc;
}

/* ---- the host address ---- */

/* Is a/32 (a/128) on link `dev`? 1/0, -1; *index the link's (0 when there is no such link). */
static int addr_on(struct nlsock *sk, const char *dev, const struct ip *a, int *index, struct cni_error *e)
{
	struct cnl_link l;
	struct cnl_addr_info *ai = NULL;
	size_t n = 0;
	int r, found = 0;

	*index = 0;
	if ((r = cnl_link_get(sk, dev, 0, &l, e)) <= 0)
		return r;
	*index = l.index;
	if (cnl_addr_list(sk, l.index, a->len == 4 ? AF_INET : AF_INET6, &ai, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n && !found; i++)
		found = ip_equal(&ai[i].addr.ip, a);
	free(ai);
	return found;
}

/* Remove a/32 (a/128) from dev; a link or an address already gone is success. */
static int addr_remove(const char *dev, const struct ip *a, struct cni_error *e)
{
	struct nlsock *sk = NULL;
	int idx, r, rc = -1;
	char s[IP_STRLEN];

	if (cnl_open(&sk, e) < 0)
		return -1;
	if ((r = addr_on(sk, dev, a, &idx, e)) < 0)
		goto out;
	if (r) {
		struct ipnet net = { *a, a->len * 8 };
		if (cnl_addr_del(sk, idx, &net, e) < 0) {
			cni_err_prefix(e, "floating-ip: removing %s from %s: ", ip_fmt(a, s), dev);
			goto out;
		}
	}
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

static int ct_flush_ents(const struct fip_ent *ent, size_t cnt, struct cni_error *e)
{
	int removed;
	for (size_t i = 0; i < cnt; i++)
		if (ct_flush_addr(&ent[i].fip, &removed, e) < 0 || ct_flush_addr(&ent[i].cip, &removed, e) < 0) {
			cni_err_prefix(e, "floating-ip: flushing conntrack entries: ");
			return -1;
		}
	return 0;
}

/* ---- writing ---- */

/* The commands removing an attachment's two chains and the map elements leading to them. */
static int drop_cmds(struct nft *n, const char *dchain, const char *schain, struct sb *b, struct cni_error *e)
{
	int r;
	if ((r = nfttab_chain(n, &tab, dchain, NULL, 0, e)) < 0 || (r && nfttab_drop_chain_refs(n, b, &tab, dchain, e) < 0))
		return -1;
	if ((r = nfttab_chain(n, &stab, schain, NULL, 0, e)) < 0 || (r && nfttab_drop_chain_refs(n, b, &stab, schain, e) < 0))
		return -1;
	return 0;
}

/* Everything of an attachment: its chains and elements (one batch), the addresses it added, its
 * flows. The entries' addresses are removed after the rules, so nothing maps an address gone. */
static int drop_attachment(struct nft *n, const char *dchain, const char *schain, const char *what, struct cni_error *e)
{
	struct fip_ent ent[MAX_ENT];
	struct sb b = { 0 };
	size_t cnt = 0;
	int rc = -1;

	if (chain_ents(n, dchain, ent, &cnt, NULL, e) < 0 || drop_cmds(n, dchain, schain, &b, e) < 0 ||
	    nfttab_run(n, &b, e, "floating-ip: removing %s: ", what) < 0)
		goto out;
	for (size_t i = 0; i < cnt; i++)
		if (ent[i].dev[0] && addr_remove(ent[i].dev, &ent[i].fip, e) < 0)
			goto out;
	if (ct_flush_ents(ent, cnt, e) < 0)
		goto out;
	rc = 0;
out:
	free(b.s);
	return rc;
}

/* The rules of family f of an attachment, into b. */
static void map_rules(struct sb *b, const struct fip_conf *p, int f, const char *dev)
{
	const char *fam = f ? "ip6" : "ip";
	char fs[IP_STRLEN], cs[IP_STRLEN], cn[IPNET_STRLEN], sub[IPNET_STRLEN];
	struct ipnet net = { ipnet_network(&p->cip[f]), p->cip[f].prefix };

	ip_fmt(&p->fip[f], fs);
	ip_fmt(&p->cip[f].ip, cs);
	sb_add(b, "add rule " TABLE " %s %s daddr %s dnat %s to %s comment \"%s to %s addr %s\"\n", p->dchain, fam, fs, fam, cs,
	       fs, cs, dev[0] ? dev : "-");
	for (size_t i = 0; i < p->n_excl; i++)
		if (ip_is_v4(&p->excl[i].ip) == !f)
			sb_add(b, "add rule " TABLE " %s %s daddr %s return comment \"exclude %s\"\n", p->schain, fam,
			       ipnet_fmt(&p->excl[i], sub), sub);
	sb_add(b, "add rule " TABLE " %s %s daddr != %s snat %s to %s comment \"%s as %s\"\n", p->schain, fam,
	       ipnet_fmt(&net, sub), fam, fs, ipnet_fmt(&p->cip[f], cn), fs);
}

struct chain_undo {
	struct nft *n;
	const char *dchain, *schain;
};

static void undo_chains(void *arg)
{
	struct chain_undo *x = arg;
	struct cni_error ig = { 0 };
	struct sb rb = { 0 };
	if (drop_cmds(x->n, x->dchain, x->schain, &rb, &ig) == 0 && rb.n && !rb.oom)
		nft_run(x->n, rb.s, &ig);
	free(rb.s);
}

struct addr_undo {
	struct ip a;
	char dev[16];
};

static void undo_addr(void *arg)
{
	struct addr_undo *x = arg;
	struct cni_error ig = { 0 };
	addr_remove(x->dev, &x->a, &ig);
}

/* Refuse a floating IP another attachment maps: 0, or -1 with code 103 naming it. */
static int taken(struct nft *n, struct cni_ctx *c, const struct fip_conf *p)
{
	char tgt[NFT_NAME_LEN], cm[COMMENT_MAX + 1] = "", a[IP_STRLEN];
	for (int f = 0; f < 2; f++) {
		int r;
		if (!p->fip[f].len)
			continue;
		if ((r = nfttab_elem(n, &tab, dmap(f), p->fip[f].b, p->fip[f].len, tgt, sizeof(tgt), &c->err)) < 0)
			return -1;
		if (!r || strcmp(tgt, p->dchain) == 0)
			continue;
		if (tgt[0] && nfttab_chain(n, &tab, tgt, cm, sizeof(cm), &c->err) < 0)
			return -1;
		return cni_errf(&c->err, CNI_ERR_IP_TAKEN, "floating-ip: %s is already mapped to another attachment (%s%s)",
				ip_fmt(&p->fip[f], a), cm[0] ? "" : "chain ", cm[0] ? cm : tgt);
	}
	return 0;
}

static bool same_ents(const struct fip_ent *x, size_t nx, const struct fip_ent *y, size_t ny)
{
	if (nx != ny)
		return false;
	for (size_t i = 0; i < nx; i++) {
		bool found = false;
		for (size_t k = 0; k < ny && !found; k++)
			found = ip_equal(&x[i].fip, &y[k].fip) && ip_equal(&x[i].cip, &y[k].cip);
		if (!found)
			return false;
	}
	return true;
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	struct fip_conf *p = conf;
	struct nft *n = NULL;
	struct nlsock *sk = NULL;
	struct sb b = { 0 };
	struct undo u = { 0 };
	struct fip_ent old[MAX_ENT], now[2];
	size_t n_old = 0, n_now = 0;
	int lock = -1, rc = -1, r;
	char a[IP_STRLEN];

	if (!any_fip(p))
		goto done; /* nothing asked: prevResult passes through */
	if ((lock = nft_lock(&c->err)) < 0 || nft_open(&n, &c->err) < 0 || cnl_open(&sk, &c->err) < 0)
		goto out;
	if (taken(n, c, p) < 0 || chain_ents(n, p->dchain, old, &n_old, NULL, &c->err) < 0)
		goto out;
	/* what each mapping records: the interface when this plugin adds (or added) the address */
	for (int f = 0; f < 2; f++) {
		struct fip_ent *x = &now[n_now];
		if (!p->fip[f].len)
			continue;
		memset(x, 0, sizeof(*x));
		x->fip = p->fip[f];
		x->cip = p->cip[f].ip;
		n_now++;
		if (!p->add_addr)
			continue;
		bool ours = false;
		for (size_t i = 0; i < n_old && !ours; i++)
			ours = ip_equal(&old[i].fip, &x->fip) && strcmp(old[i].dev, p->iface) == 0;
		int idx;
		if ((r = addr_on(sk, p->iface, &x->fip, &idx, &c->err)) < 0)
			goto out;
		if (!idx) {
			cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				 "invalid config: field \"interface\": there is no interface %s on the host", p->iface);
			goto out;
		}
		/* an address someone else put there stays theirs: used, never removed */
		if (ours || !r)
			snprintf(x->dev, sizeof(x->dev), "%s", p->iface);
	}
	/* one batch: the skeleton if needed, this attachment's chains recreated (nftables keeps a
	 * chain's first comment), its elements; a container address's element leading elsewhere is
	 * stale (host-local gave the address to this container) */
	if (drop_cmds(n, p->dchain, p->schain, &b, &c->err) < 0 || nfttab_ensure(n, &tab, &b, NULL, &c->err) < 0)
		goto out;
	sb_add(&b, "add chain " TABLE " %s { comment \"%s\"; }\n", p->dchain, p->comment);
	sb_add(&b, "add chain " TABLE " %s { comment \"%s\"; }\n", p->schain, p->comment);
	for (int f = 0, k = 0; f < 2; f++) {
		char tgt[NFT_NAME_LEN], cs[IP_STRLEN];
		if (!p->fip[f].len)
			continue;
		map_rules(&b, p, f, now[k++].dev);
		ip_fmt(&p->cip[f].ip, cs);
		if ((r = nfttab_elem(n, &tab, smap(f), p->cip[f].ip.b, p->cip[f].ip.len, tgt, sizeof(tgt), &c->err)) < 0)
			goto out;
		if (r && strcmp(tgt, p->dchain) != 0 && strcmp(tgt, p->schain) != 0)
			sb_add(&b, "delete element " TABLE " %s { %s }\n", smap(f), cs);
		sb_add(&b, "add element " TABLE " %s { %s : goto %s }\n", dmap(f), ip_fmt(&p->fip[f], a), p->dchain);
		sb_add(&b, "add element " TABLE " %s { %s : goto %s }\n", smap(f), cs, p->schain);
	}
	if (nfttab_run(n, &b, &c->err, "floating-ip: ") < 0)
		goto out;
	if (undo_push(&u, undo_chains, &(struct chain_undo){ n, p->dchain, p->schain }, sizeof(struct chain_undo), &c->err) < 0 ||
	    FAULT(&c->err, "floating-ip rules") < 0)
		goto out;
	/* addresses the previous mapping added and this one does not keep */
	for (size_t i = 0; i < n_old; i++) {
		bool kept = false;
		for (size_t k = 0; k < n_now && !kept; k++)
			kept = ip_equal(&old[i].fip, &now[k].fip) && strcmp(old[i].dev, now[k].dev) == 0;
		if (old[i].dev[0] && !kept && addr_remove(old[i].dev, &old[i].fip, &c->err) < 0)
			goto out;
	}
	for (size_t k = 0; k < n_now; k++) {
		int idx;
		if (!now[k].dev[0])
			continue;
		if ((r = addr_on(sk, now[k].dev, &now[k].fip, &idx, &c->err)) < 0)
			goto out;
		if (r)
			continue;
		struct ipnet net = { now[k].fip, now[k].fip.len * 8 };
		struct addr_undo au = { now[k].fip, "" };
		snprintf(au.dev, sizeof(au.dev), "%s", now[k].dev);
		if (!idx || cnl_addr_add(sk, idx, &net, true, &c->err) < 0) {
			if (!idx)
				cni_errf(&c->err, CNI_ERR_KERNEL, "interface %s is gone", now[k].dev);
			cni_err_prefix(&c->err, "floating-ip: adding %s to %s: ", ip_fmt(&now[k].fip, a), now[k].dev);
			goto out;
		}
		if (undo_push(&u, undo_addr, &au, sizeof(au), &c->err) < 0)
			goto out;
	}
	if (FAULT(&c->err, "floating-ip address") < 0)
		goto out;
	/* flows of a mapping that appeared or changed were set up without it */
	if (!same_ents(old, n_old, now, n_now) &&
	    (ct_flush_ents(old, n_old, &c->err) < 0 || ct_flush_ents(now, n_now, &c->err) < 0))
		goto out;
done:
	/* the result is prevResult, unchanged (moved: skel frees both) */
	*out = c->prev;
	memset(&c->prev, 0, sizeof(c->prev));
	c->has_prev = false;
	rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	free(b.s);
	cnl_close(sk);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

/* RELOAD: what ADD makes, made again (the result is not printed). */
static int cmd_reload(struct cni_ctx *c, void *conf)
{
	struct cni_result out = { 0 };
	int rc = cmd_add(c, conf, &out);
	cni_result_free(&out);
	return rc;
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	struct fip_conf *p = conf;
	struct nft *n = NULL;
	int lock = -1, rc = -1;

	if ((lock = nft_lock(&c->err)) < 0 || nft_open(&n, &c->err) < 0)
		goto out;
	if (drop_attachment(n, p->dchain, p->schain, p->dchain, &c->err) < 0)
		goto out;
	rc = 0;
out:
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

static int check_family(struct nft *n, struct nlsock *sk, struct cni_ctx *c, const struct fip_conf *p, int f,
			const struct fip_ent *ent, size_t cnt, const struct nft_rule_info *srules, size_t ns, size_t *spos)
{
	char fs[IP_STRLEN], cs[IP_STRLEN], cn[IPNET_STRLEN], want[COMMENT_MAX + 1], tgt[NFT_NAME_LEN];
	const struct fip_ent *e = NULL;
	int r, idx;

	ip_fmt(&p->fip[f], fs);
	ip_fmt(&p->cip[f].ip, cs);
	for (size_t i = 0; i < cnt && !e; i++)
		if (ip_equal(&ent[i].fip, &p->fip[f]) && ip_equal(&ent[i].cip, &p->cip[f].ip))
			e = &ent[i];
	if (!e)
		return cni_check_fail(&c->err, "floating-ip: chain %s of table " TABLE " does not map %s to %s", p->dchain, fs,
				      cs);
	if ((r = nfttab_elem(n, &tab, dmap(f), p->fip[f].b, p->fip[f].len, tgt, sizeof(tgt), &c->err)) < 0)
		return -1;
	if (!r || strcmp(tgt, p->dchain) != 0)
		return cni_check_fail(&c->err, "floating-ip: map %s of table " TABLE " does not send %s to chain %s", dmap(f), fs,
				      p->dchain);
	/* the SNAT chain: this family's exclusions, then the SNAT, in that order after what came before */
	for (size_t i = 0; i <= p->n_excl; i++) {
		char sub[IPNET_STRLEN];
		if (i < p->n_excl && ip_is_v4(&p->excl[i].ip) != !f)
			continue;
		if (i < p->n_excl)
			snprintf(want, sizeof(want), "exclude %s", ipnet_fmt(&p->excl[i], sub));
		else
			snprintf(want, sizeof(want), "%s as %s", ipnet_fmt(&p->cip[f], cn), fs);
		while (*spos < ns && strcmp(srules[*spos].comment, want) != 0)
			(*spos)++;
		if (*spos == ns)
			return i < p->n_excl ? cni_check_fail(&c->err,
							      "floating-ip: chain %s of table " TABLE
							      " does not exclude %s from SNAT (before its SNAT rule)",
							      p->schain, sub)
					     : cni_check_fail(&c->err,
							      "floating-ip: chain %s of table " TABLE " does not SNAT %s to %s",
							      p->schain, cs, fs);
		(*spos)++;
	}
	if ((r = nfttab_elem(n, &tab, smap(f), p->cip[f].ip.b, p->cip[f].ip.len, tgt, sizeof(tgt), &c->err)) < 0)
		return -1;
	if (!r || strcmp(tgt, p->schain) != 0)
		return cni_check_fail(&c->err, "floating-ip: map %s of table " TABLE " does not send %s to chain %s", smap(f), cs,
				      p->schain);
	if (p->add_addr) {
		if ((r = addr_on(sk, p->iface, &p->fip[f], &idx, &c->err)) < 0)
			return -1;
		if (!r)
			return cni_check_fail(&c->err, "floating-ip: address %s/%d is missing from interface %s", fs,
					      p->fip[f].len * 8, p->iface);
	}
	return 0;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	struct fip_conf *p = conf;
	struct nft *n = NULL;
	struct nlsock *sk = NULL;
	struct fip_ent ent[MAX_ENT];
	struct nft_rule_info *srules = NULL;
	size_t cnt = 0, nd = 0, ns = 0, want = 0, swant = 0, spos = 0;
	int rc = -1, r;

	if (!any_fip(p))
		return 0;
	if (nft_open(&n, &c->err) < 0 || cnl_open(&sk, &c->err) < 0 || nfttab_check(n, &tab, &c->err) < 0)
		goto out;
	if ((r = chain_ents(n, p->dchain, ent, &cnt, &nd, &c->err)) <= 0) {
		if (!r)
			cni_check_fail(&c->err, "floating-ip: chain %s of container %s (%s) is missing from table " TABLE,
				       p->dchain, c->container_id, c->ifname);
		goto out;
	}
	if (nfttab_rules(n, &stab, p->schain, &srules, &ns, &c->err) < 0)
		goto out;
	for (int f = 0; f < 2; f++) {
		if (!p->fip[f].len)
			continue;
		want++;
		swant++;
		for (size_t i = 0; i < p->n_excl; i++)
			swant += ip_is_v4(&p->excl[i].ip) == !f;
		if (check_family(n, sk, c, p, f, ent, cnt, srules, ns, &spos) < 0)
			goto out;
	}
	if (nd != want || ns != swant) {
		cni_check_fail(&c->err, "floating-ip: chain %s has %zu rules, expected %zu", nd != want ? p->dchain : p->schain,
			       nd != want ? nd : ns, nd != want ? want : swant);
		goto out;
	}
	rc = 0;
out:
	free(srules);
	cnl_close(sk);
	nft_close(n);
	return rc;
}

static int cmd_gc(struct cni_ctx *c, void *conf)
{
	(void)conf; /* the network name and the valid attachments are all GC needs */
	struct nft *n = NULL;
	struct nft_chain_info *dch = NULL, *sch = NULL;
	size_t nd = 0, ns = 0;
	int lock = -1, rc = -1;

	if ((lock = nft_lock(&c->err)) < 0 || nft_open(&n, &c->err) < 0)
		goto out;
	if (nfttab_stale(n, &tab, c->name, c->valid, c->n_valid, &dch, &nd, &c->err) < 0 ||
	    nfttab_stale(n, &stab, c->name, c->valid, c->n_valid, &sch, &ns, &c->err) < 0)
		goto out;
	/* a stale DNAT chain with its SNAT twin (same hashes), then SNAT chains left alone */
	for (size_t k = 0; k < nd; k++) {
		char twin[CHAIN_LEN];
		snprintf(twin, sizeof(twin), "s-%s", dch[k].name + 2);
		if (drop_attachment(n, dch[k].name, twin, dch[k].name, &c->err) < 0) {
			cni_err_prefix(&c->err, "GC of network %s: ", c->name);
			goto out;
		}
	}
	for (size_t k = 0; k < ns; k++) {
		struct sb b = { 0 };
		int r = nfttab_chain(n, &stab, sch[k].name, NULL, 0, &c->err);
		if (r < 0 || (r && nfttab_drop_chain_refs(n, &b, &stab, sch[k].name, &c->err) < 0) ||
		    nfttab_run(n, &b, &c->err, "floating-ip: GC of network %s: ", c->name) < 0) {
			free(b.s);
			goto out;
		}
		free(b.s);
	}
	rc = 0;
out:
	free(dch);
	free(sch);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	(void)conf;
	return nfttab_probe(&tab, "the NAT table", &c->err);
}

/* nf_tables, addresses and conntrack need CAP_NET_ADMIN only: it never enters the container. */
static const int fip_caps[] = { CAP_NET_ADMIN, -1 };

int main(void)
{
	static const struct cni_plugin pl = {
		.name = "floating-ip",
		.any_cni_args = true,
		.caps = fip_caps,
		.conf_size = sizeof(struct fip_conf),
		.parse = parse,
		.add = cmd_add,
		.check = cmd_check,
		.del = cmd_del,
		.gc = cmd_gc,
		.status = cmd_status,
		.reload = cmd_reload,
	};
	return cni_plugin_main(&pl);
}
