/* portmap: host ports forwarded to a container (capability "portMappings"), chained after bridge,
 * vlan or vxlan, on nf_tables.
 *
 * Table "inet cni_c_portmap" of ours. Each new connection costs one map lookup, not a walk over
 * every container's rules (the reference's layout, whose docs warn about it):
 *   prerouting, output (nat, dstnat): fib daddr type local meta l4proto . th dport vmap @ports
 *   ports: "<proto> . <port>" -> jump p-<proto>-<port>, a chain per host port in use, holding one
 *          "jump a-<attachment>" per attachment that maps the port (the most recent first)
 *   a-<16 hex sha512(network)>-<16 hex sha512(ifname:containerID)>: the attachment's rules: per
 *          mapping and family, the hairpin and localhost marks (snat) and the DNAT; each rule's
 *          comment starts with its port chain's name, so DEL needs no config at all
 *   postrouting (nat, srcnat): meta mark & <markMasqBit> masquerade, for the marked connections
 * localhost (127.0.0.1, with snat) works as in the reference: route_localnet on the host
 * interface towards the container. UDP conntrack entries of a host port are flushed on ADD and
 * on DEL, so a stale flow cannot keep sending a client's datagrams to a dead container.
 *
 * "backend": "iptables" (or, without "backend", a config only it can take) writes the reference's
 * own iptables chains instead: iptables.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <linux/capability.h>
#include <linux/netfilter.h>

#include "conf.h"
#include "conntrack.h"
#include "fault.h"
#include "masq.h"
#include "nft.h"
#include "nfttab.h"
#include "portmap.h"
#include "sb.h"
#include "nl.h"
#include "sha512.h"
#include "skel.h"
#include "sysctl.h"
#include "undo.h"

#define TABLE_NAME "cni_c_portmap"
#define TABLE "inet " TABLE_NAME

static void pm_free(void *conf)
{
	struct pm_conf *p = conf;
	free(p->maps);
	free(p->cond[0]);
	free(p->cond[1]);
	p->maps = NULL;
	p->cond[0] = p->cond[1] = NULL;
}

/* ---- config ---- */

/* A condition is nftables match syntax, but only of a shape that cannot make nft resolve a
 * hostname (libnftables 1.0.6 has no switch for that: any unknown word in an address position is
 * looked up in DNS, from inside a CNI ADD) or reach past the rule: keywords, operators, numbers,
 * addresses and prefixes, and interface names after iifname/oifname. */
static bool cond_token_ok(const char *t, const char *prev)
{
	static const char *const kw[] = { "ip",	      "ip6",	 "saddr",   "daddr",	 "meta",      "iifname",     "oifname",
					  "iif",      "oif",	 "mark",    "th",	 "tcp",	      "udp",	     "sctp",
					  "sport",    "dport",	 "ct",	    "state",	 "new",	      "established", "related",
					  "fib",      "type",	 "local",   "l4proto",	 "nfproto",   "ipv4",	     "ipv6",
					  "protocol", "nexthdr", "dscp",    "length",	 "skuid",     "skgid",	     "iiftype",
					  "oiftype",  "pkttype", "unicast", "broadcast", "multicast", "and",	     "or",
					  "xor",      "!=",	 "==",	    "<",	 ">",	      "<=",	     ">=",
					  "!",	      "&",	 "|",	    "^",	 NULL };
	struct ipnet n;
	struct ip a;
	bool digits = *t != '\0';

	for (size_t i = 0; kw[i]; i++)
		if (strcmp(t, kw[i]) == 0)
			return true;
	if (prev && (strcmp(prev, "iifname") == 0 || strcmp(prev, "oifname") == 0 || strcmp(prev, "iif") == 0 ||
		     strcmp(prev, "oif") == 0))
		return conf_valid_ifname(t);
	for (const char *c = t; *c; c++)
		digits = digits && (strchr("0123456789-x", *c) || (c > t && strchr("abcdefABCDEF", *c) && t[1] == 'x'));
	if (digits)
		return true;
	/* an address, a prefix, or a comma-separated list of them */
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", t);
	for (char *sv = NULL, *it = strtok_r(buf, ",", &sv); it; it = strtok_r(NULL, ",", &sv))
		if (ip_parse(it, &a) < 0 && ipnet_parse(it, &n) < 0)
			return false;
	return strlen(t) < sizeof(buf) && t[0] != ',' && t[strlen(t) - 1] != ',';
}

static bool cond_ok(const char *s)
{
	char buf[512], *sv = NULL, *prev = NULL;
	bool ok = true, any = false;

	if (strlen(s) >= sizeof(buf))
		return false;
	snprintf(buf, sizeof(buf), "%s", s);
	for (char *t = strtok_r(buf, " \t", &sv); t && ok; prev = t, t = strtok_r(NULL, " \t", &sv)) {
		ok = cond_token_ok(t, prev);
		any = true;
	}
	return ok && any;
}

/* iptables options that would change what a rule is rather than what it matches: refused in
 * iptables-style conditions (which are passed to iptables word for word, as the reference does). */
static bool ipt_word_ok(const char *w)
{
	static const char *const bad[] = { "-j",	 "--jump",    "-g", "--goto",	   "-t", "--table",
					   "-A",	 "--append",  "-I", "--insert",	   "-D", "--delete",
					   "-R",	 "--replace", "-N", "--new-chain", "-X", "--delete-chain",
					   "-F",	 "--flush",   "-P", "--policy",	   "-E", "--rename-chain",
					   "-Z",	 "--zero",    "-L", "--list",	   "-S", "--list-rules",
					   "-C",	 "--check",   "-w", "--wait",	   "-W", "--wait-interval",
					   "--modprobe", NULL };
	if (!*w || strpbrk(w, "\n\r"))
		return false;
	for (size_t i = 0; bad[i]; i++)
		if (strcmp(w, bad[i]) == 0)
			return false;
	return true;
}

/* Are these conditions written for the reference's iptables backend ("!", "-d", "192.0.2.0/24"):
 * a word that is an option? (An nftables match expression never starts with "-".) */
static bool conditions_iptables_style(const cJSON *root, const char *key)
{
	const cJSON *arr = conf_item(root, key), *v;
	if (!cJSON_IsArray(arr))
		return false;
	cJSON_ArrayForEach (v, arr)
		if (cJSON_IsString(v) && v->valuestring[0] == '-')
			return true;
	return false;
}

/* iptables-style conditions: the words, each checked, kept as they are (pointers into the config). */
static int parse_ipt_conditions(const cJSON *root, const char *key, struct pm_conf *p, int fam, struct cni_error *e)
{
	const cJSON *arr, *v;
	char path[CONF_PATH_MAX];
	size_t i = 0;
	int r = conf_array(root, NULL, key, &arr, e);
	if (r <= 0)
		return r;
	cJSON_ArrayForEach (v, arr) {
		const char *s;
		if (i >= MAX_COND)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": more than %d conditions", key,
					MAX_COND);
		if (conf_val_string(v, conf_path_idx(path, key, i), &s, e) < 0)
			return -1;
		if (!ipt_word_ok(s))
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\": \"%s\" cannot be part of an iptables match (a command, "
					"target, table or empty word)",
					path, s);
		p->icond[fam][i++] = s;
	}
	p->n_icond[fam] = i;
	return 0;
}

static int parse_conditions(const cJSON *root, const char *key, char **out, struct cni_error *e)
{
	const cJSON *arr, *v;
	char path[CONF_PATH_MAX];
	size_t len = 0, i = 0;
	int r = conf_array(root, NULL, key, &arr, e);

	*out = strdup("");
	if (!*out)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (r <= 0)
		return r;
	cJSON_ArrayForEach (v, arr) {
		const char *s;
		if (i >= MAX_COND)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": more than %d conditions", key,
					MAX_COND);
		if (conf_val_string(v, conf_path_idx(path, key, i++), &s, e) < 0)
			return -1;
		/* one nft expression each: nothing that ends the command, the rule or a string */
		if (strpbrk(s, "\n\r;#\"{}\\") || !cond_ok(s) || !nft_match_ok(s))
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\": \"%s\" is not an nftables match expression", path, s);
		char *n = realloc(*out, len + strlen(s) + 2);
		if (!n)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		*out = n;
		len += (size_t)sprintf(*out + len, "%s ", s);
	}
	return 0;
}

static int parse_mappings(struct cni_ctx *c, struct pm_conf *p)
{
	const cJSON *rc = conf_runtime_config(c->conf), *arr = NULL, *m;
	char path[CONF_PATH_MAX], sub[CONF_PATH_MAX];
	size_t i = 0;
	int r;

	if (!rc)
		return 0;
	if ((r = conf_array(rc, "runtimeConfig", "portMappings", &arr, &c->err)) <= 0)
		return r;
	if (!(p->maps = calloc((size_t)cJSON_GetArraySize(arr) + 1, sizeof(*p->maps))))
		return cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach (m, arr) {
		struct pm_map *x = &p->maps[p->n_maps];
		long long hp = 0, cp = 0;
		const char *proto = NULL, *hip = NULL;

		conf_path_idx(path, "runtimeConfig.portMappings", i++);
		if (!cJSON_IsObject(m))
			return cni_errf(&c->err, CNI_ERR_DECODE, "field \"%s\": not an object", path);
		if ((r = conf_int(m, path, "hostPort", 1, 65535, &hp, &c->err)) < 0)
			return -1;
		if (!r)
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" is required",
					conf_path(sub, path, "hostPort"));
		if ((r = conf_int(m, path, "containerPort", 1, 65535, &cp, &c->err)) < 0)
			return -1;
		if (!r)
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" is required",
					conf_path(sub, path, "containerPort"));
		if (conf_string(m, path, "protocol", &proto, &c->err) < 0 || conf_string(m, path, "hostIP", &hip, &c->err) < 0)
			return -1;
		if (!proto || !*proto || strcasecmp(proto, "tcp") == 0)
			x->proto = IPPROTO_TCP;
		else if (strcasecmp(proto, "udp") == 0)
			x->proto = IPPROTO_UDP;
		else if (strcasecmp(proto, "sctp") == 0)
			x->proto = IPPROTO_SCTP;
		else
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\": \"%s\" is not tcp, udp or sctp",
					conf_path(sub, path, "protocol"), proto);
		if (hip && *hip) {
			if (ip_parse(hip, &x->host_ip) < 0)
				return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
						"invalid config: field \"%s\": \"%s\" is not an IP address",
						conf_path(sub, path, "hostIP"), hip);
			static const uint8_t zero[16];
			x->host_any = memcmp(x->host_ip.b, zero, x->host_ip.len) == 0;
		}
		x->host = (uint16_t)hp;
		x->cont = (uint16_t)cp;
		/* a repeated mapping counts once */
		bool dup = false;
		for (size_t k = 0; k < p->n_maps && !dup; k++)
			dup = p->maps[k].proto == x->proto && p->maps[k].host == x->host && p->maps[k].cont == x->cont &&
			      p->maps[k].host_any == x->host_any && p->maps[k].host_ip.len == x->host_ip.len &&
			      ip_equal(&p->maps[k].host_ip, &x->host_ip);
		if (dup)
			memset(x, 0, sizeof(*x));
		else
			p->n_maps++;
	}
	return 0;
}

/* The container's first IPv4 and first IPv6 address on CNI_IFNAME, as the reference picks them:
 * addresses of host-side interfaces or of other container interfaces are skipped. */
static void container_ips(struct cni_ctx *c, struct pm_conf *p)
{
	for (size_t i = 0; i < c->prev.n_ips; i++) {
		const struct cni_ipcfg *ip = &c->prev.ips[i];
		bool v4 = ip_is_v4(&ip->address.ip);
		if ((v4 && p->has4) || (!v4 && p->has6))
			continue;
		if (ip->iface >= 0 && (size_t)ip->iface < c->prev.n_ifaces) {
			const struct cni_iface *f = &c->prev.ifaces[ip->iface];
			if (strcmp(f->name, c->ifname) != 0 || !f->sandbox || !*f->sandbox)
				continue;
		}
		if (v4) {
			p->c4 = ip->address;
			p->has4 = true;
		} else {
			p->c6 = ip->address;
			p->has6 = true;
		}
	}
}

/* ---- the table ---- */

/* The hook chains' rules carry comments, so ADD and CHECK can tell they are intact from one
 * read each; postrouting holds one masquerade rule per mark in use (no base rule). */
static const struct nfttab_map pm_maps[] = { { "ports", "inet_proto . inet_service" }, { "", "" } };
static const struct nfttab_chain pm_chains[] = {
	{ "prerouting", "type nat hook prerouting priority dstnat; policy accept;" },
	{ "output", "type nat hook output priority -100; policy accept;" },
	{ "postrouting", "type nat hook postrouting priority srcnat; policy accept;" },
	{ "", NULL },
};
static const struct nfttab_rule pm_rules[] = {
	{ "prerouting", "fib daddr type local meta l4proto . th dport vmap @ports", "host ports" },
	{ "output", "fib daddr type local meta l4proto . th dport vmap @ports", "host ports (local)" },
	{ "", NULL, NULL },
};
static const struct nfttab tab = {
	.family = NFPROTO_INET,
	.ref = TABLE,
	.name = TABLE_NAME,
	.comment = "CNI host ports (cni-c portmap)",
	.maps = pm_maps,
	.chains = pm_chains,
	.rules = pm_rules,
	.chain_prefix = "a-",
	.naming = NFTTAB_NET_ATTACHMENT,
	.who = "portmap",
	.altered = "the prerouting or output chain of table " TABLE " was altered",
	.missing = "table " TABLE " or its hook chains are missing",
};

static int chain_name(const char *network, const char *ifname, const char *cid, char out[CHAIN_LEN], struct cni_error *e)
{
	return nfttab_chain_name(&tab, network, ifname, cid, out, e);
}

static int parse_fields(struct cni_ctx *c, struct pm_conf *p, bool need_prev)
{
	const char *backend = NULL, *ext = NULL;
	long long bit = 13;
	int has_bit;

	p->snat = true;
	if (conf_string(c->conf, NULL, "backend", &backend, &c->err) < 0 ||
	    conf_bool(c->conf, NULL, "snat", &p->snat, &c->err) < 0 ||
	    conf_bool(c->conf, NULL, "masqAll", &p->masq_all, &c->err) < 0 ||
	    (has_bit = conf_int(c->conf, NULL, "markMasqBit", 0, 31, &bit, &c->err)) < 0 ||
	    conf_string(c->conf, NULL, "externalSetMarkChain", &ext, &c->err) < 0)
		return -1;
	bool ipt_style = conditions_iptables_style(c->conf, "conditionsV4") || conditions_iptables_style(c->conf, "conditionsV6");
	if (backend && *backend && strcmp(backend, "nftables") != 0 && strcmp(backend, "iptables") != 0)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"backend\": \"%s\" is not \"nftables\" or \"iptables\"", backend);
	/* Without "backend", a config only the iptables backend can take (iptables-style conditions,
	 * externalSetMarkChain) gets it, as the reference's default backend is iptables. */
	p->ipt = backend && *backend ? strcmp(backend, "iptables") == 0 : (ipt_style || (ext && *ext));
	if (ext && *ext) {
		if (!p->ipt)
			return cni_errf(
				&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"externalSetMarkChain\" needs the iptables backend (\"backend\": \"iptables\")");
		if (has_bit)
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
					"invalid config: fields \"externalSetMarkChain\" and \"markMasqBit\" cannot both be set");
		if (strlen(ext) > 28 || !ipt_word_ok(ext) || ext[0] == '-' || strpbrk(ext, " \t!\"'"))
			return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"externalSetMarkChain\": \"%s\" is not an iptables chain name",
					ext);
		p->ext_mark = ext;
	}
	p->mark = 1u << bit;
	if (p->ipt) {
		p->cond[0] = strdup("");
		p->cond[1] = strdup("");
		if (!p->cond[0] || !p->cond[1])
			return cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
		if (parse_ipt_conditions(c->conf, "conditionsV4", p, 0, &c->err) < 0 ||
		    parse_ipt_conditions(c->conf, "conditionsV6", p, 1, &c->err) < 0 || parse_mappings(c, p) < 0)
			return -1;
	} else if (parse_conditions(c->conf, "conditionsV4", &p->cond[0], &c->err) < 0 ||
		   parse_conditions(c->conf, "conditionsV6", &p->cond[1], &c->err) < 0 || parse_mappings(c, p) < 0)
		return -1;
	if (need_prev && !c->has_prev)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"prevResult\" is required: portmap must be called as a chained plugin");
	if (c->has_prev)
		container_ips(c, p);
	/* GC and STATUS have no attachment */
	if (!c->ifname || !c->container_id)
		return 0;
	if (chain_name(c->name, c->ifname, c->container_id, p->chain, &c->err) < 0)
		return -1;
	snprintf(p->comment, sizeof(p->comment), "net=%s if=%s id=%s", c->name, c->ifname, c->container_id);
	nft_comment_clean(p->comment);
	return 0;
}

/* ADD, CHECK and RELOAD need prevResult; DEL must work whatever is left: only the attachment's identity
 * matters to it, not the mappings. */
static int parse(struct cni_ctx *c, void *conf)
{
	struct pm_conf *p = conf;
	if (parse_fields(c, p, c->verb == CNI_ADD || c->verb == CNI_CHECK || c->verb == CNI_RELOAD) == 0)
		return 0;
	if (c->verb != CNI_DEL)
		return -1;
	if (!p->chain[0] && chain_name(c->name, c->ifname, c->container_id, p->chain, &c->err) < 0)
		return -1;
	cni_err_clear(&c->err);
	p->n_maps = 0;
	return 0;
}

/* ---- the rules ---- */

/* Is there a postrouting rule masquerading this mark? 1/0/-1 */
static int masq_rule(struct nft *n, uint32_t mark, struct cni_error *e)
{
	struct nft_rule_info *r = NULL;
	size_t cnt = 0;
	char want[40];
	int rc = nfttab_rules(n, &tab, "postrouting", &r, &cnt, e), found = 0;

	snprintf(want, sizeof(want), "masquerade mark 0x%08x", mark);
	for (size_t i = 0; rc == 1 && i < cnt && !found; i++)
		found = strcmp(r[i].comment, want) == 0;
	free(r);
	return rc < 0 ? -1 : found;
}

/* The rules of one mapping in the attachment chain (in `chain`), for one family. */
static void mapping_rules(struct sb *b, const struct pm_conf *p, const struct pm_map *m, bool v4, const char *chain)
{
	const struct ipnet *cip = v4 ? &p->c4 : &p->c6;
	const char *fam = v4 ? "ip" : "ip6";
	char pc[32], match[160], a[IP_STRLEN], sub[IPNET_STRLEN], dst[IP_STRLEN + 8];
	struct ipnet net = { ipnet_network(cip), cip->prefix };

	snprintf(pc, sizeof(pc), "p-%s-%u", proto_name(m->proto), m->host);
	if (m->host_ip.len && !m->host_any)
		snprintf(match, sizeof(match), "%s daddr %s meta l4proto %s th dport %u", fam, ip_fmt(&m->host_ip, a),
			 proto_name(m->proto), m->host);
	else
		snprintf(match, sizeof(match), "meta nfproto %s meta l4proto %s th dport %u", v4 ? "ipv4" : "ipv6",
			 proto_name(m->proto), m->host);
	ip_fmt(&cip->ip, a);
	if (p->snat) {
		if (p->masq_all)
			sb_add(b, "add rule " TABLE " %s %s meta mark set meta mark or 0x%08x comment \"%s masqAll\"\n", chain,
			       match, p->mark, pc);
		else {
			sb_add(b,
			       "add rule " TABLE " %s %s %s saddr %s meta mark set meta mark or 0x%08x comment \"%s hairpin\"\n",
			       chain, match, fam, ipnet_fmt(&net, sub), p->mark, pc);
			if (v4)
				sb_add(b,
				       "add rule " TABLE
				       " %s %s ip saddr 127.0.0.1 meta mark set meta mark or 0x%08x comment \"%s localhost\"\n",
				       chain, match, p->mark, pc);
		}
	}
	snprintf(dst, sizeof(dst), v4 ? "%s:%u" : "[%s]:%u", a, m->cont);
	/* ::1 cannot be forwarded out of the host (IPv6 has no route_localnet) */
	sb_add(b, "add rule " TABLE " %s %s%s dnat %s to %s comment \"%s dnat %s\"\n", chain, match,
	       v4 ? "" : " ip6 daddr != ::1", fam, dst, pc, dst);
}

bool applies(const struct pm_conf *p, const struct pm_map *m, bool v4)
{
	if (v4 ? !p->has4 : !p->has6)
		return false;
	return !m->host_ip.len || ip_is_v4(&m->host_ip) == v4;
}

/* The expected comments of the attachment chain's rules, in order (CHECK compares them). */
static int expected_rules(const struct pm_conf *p, struct sb *b)
{
	for (size_t i = 0; i < p->n_maps; i++)
		for (int f = 0; f < 2; f++)
			if (applies(p, &p->maps[i], f == 0))
				mapping_rules(b, p, &p->maps[i], f == 0, p->chain);
	return b->oom ? -1 : 0;
}

/* The port chains an attachment chain's rules name (their comments' first word), unique. */
static int port_chains_of(struct nft *n, const char *chain, char (**out)[32], size_t *cnt, struct cni_error *e)
{
	struct nft_rule_info *r = NULL;
	size_t nr = 0;
	int rc = nfttab_rules(n, &tab, chain, &r, &nr, e);

	*out = NULL;
	*cnt = 0;
	if (rc <= 0)
		return rc;
	if (!(*out = calloc(nr + 1, sizeof(**out)))) {
		free(r);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < nr; i++) {
		char w[32];
		const char *c = r[i].comment + strspn(r[i].comment, " \t\n");
		snprintf(w, sizeof(w), "%.*s", (int)strcspn(c, " \t\n"), c); /* the first word */
		if (strncmp(w, "p-", 2) != 0)
			continue;
		bool seen = false;
		for (size_t k = 0; k < *cnt && !seen; k++)
			seen = strcmp((*out)[k], w) == 0;
		if (!seen)
			snprintf((*out)[(*cnt)++], 32, "%s", w);
	}
	free(r);
	return 1;
}

/* Whatever the attachment chain's rules still say (flushed or edited by hand, it may name none):
 * every other port chain holding a jump commented with its name, appended to *out. 0, or -1. */
static int port_chains_jumping(struct nft *n, const char *chain, char (**out)[32], size_t *cnt, struct cni_error *e)
{
	struct nft_chain_info *ch = NULL;
	size_t nch = 0;
	if (nft_list_chains(n, tab.family, tab.name, &ch, &nch, e) < 0)
		return -1;
	for (size_t i = 0; i < nch; i++) {
		struct nft_rule_info *r = NULL;
		size_t nr = 0;
		bool known = strncmp(ch[i].name, "p-", 2) != 0, hit = false;
		for (size_t k = 0; k < *cnt && !known; k++)
			known = strcmp((*out)[k], ch[i].name) == 0;
		if (known)
			continue;
		if (nfttab_rules(n, &tab, ch[i].name, &r, &nr, e) < 0) {
			free(ch);
			return -1;
		}
		for (size_t k = 0; k < nr && !hit; k++)
			hit = strcmp(r[k].comment, chain) == 0;
		free(r);
		if (!hit)
			continue;
		char(*grown)[32] = realloc(*out, (*cnt + 1) * sizeof(**out));
		if (!grown) {
			free(ch);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		*out = grown;
		snprintf((*out)[(*cnt)++], 32, "%s", ch[i].name);
	}
	free(ch);
	return 0;
}

/* A port chain's name, p-<proto>-<port>: 0 and its parts, or -1. */
static int port_chain_parse(const char *name, char proto[8], unsigned *port)
{
	size_t n;
	char *end;
	if (strncmp(name, "p-", 2) != 0)
		return -1;
	name += 2;
	n = strspn(name, "abcdefghijklmnopqrstuvwxyz");
	if (n == 0 || n > 7 || name[n] != '-' || name[n + 1] < '0' || name[n + 1] > '9')
		return -1;
	memcpy(proto, name, n);
	proto[n] = '\0';
	unsigned long v = strtoul(name + n + 1, &end, 10);
	if (*end || v > 65535)
		return -1;
	*port = (unsigned)v;
	return 0;
}

/* Batch commands that remove an attachment chain: its jumps in the port chains, the port chains
 * (and their map elements) left empty, then the chain. Nothing when the chain is absent. */
static int drop_cmds(struct nft *n, const char *chain, struct sb *b, struct cni_error *e)
{
	char(*pcs)[32] = NULL;
	size_t npc = 0;
	int r = port_chains_of(n, chain, &pcs, &npc, e);

	if (r <= 0)
		return r;
	if (port_chains_jumping(n, chain, &pcs, &npc, e) < 0) {
		free(pcs);
		return -1;
	}
	for (size_t i = 0; i < npc; i++) {
		struct nft_rule_info *pr = NULL;
		size_t cnt = 0, left = 0;
		char proto[8];
		unsigned port;
		if ((r = nfttab_rules(n, &tab, pcs[i], &pr, &cnt, e)) < 0) {
			free(pcs);
			return -1;
		}
		for (size_t k = 0; k < cnt; k++) {
			if (strcmp(pr[k].comment, chain) == 0)
				sb_add(b, "delete rule " TABLE " %s handle %llu\n", pcs[i], (unsigned long long)pr[k].handle);
			else
				left++;
		}
		free(pr);
		if (r == 1 && !left && port_chain_parse(pcs[i], proto, &port) == 0) {
			/* the element, unless someone removed it already (deleting it again fails the batch) */
			uint8_t key[8];
			char tgt[64];
			nfttab_key_port(strcmp(proto, "udp") == 0    ? IPPROTO_UDP
					: strcmp(proto, "sctp") == 0 ? IPPROTO_SCTP
								     : IPPROTO_TCP,
					port, key);
			if ((r = nfttab_elem(n, &tab, "ports", key, sizeof(key), tgt, sizeof(tgt), e)) < 0) {
				free(pcs);
				return -1;
			}
			if (r)
				sb_add(b, "delete element " TABLE " ports { %s . %u }\n", proto, port);
			sb_add(b, "delete chain " TABLE " %s\n", pcs[i]);
		}
	}
	free(pcs);
	nfttab_drop_chain(b, &tab, chain);
	return 1;
}

static int flush_udp(const struct pm_conf *p, struct cni_error *e)
{
	for (size_t i = 0; i < p->n_maps; i++) {
		int removed;
		if (p->maps[i].proto != IPPROTO_UDP)
			continue;
		for (int f = 0; f < 2; f++)
			if ((f == 0 ? p->has4 : p->has6) || !(p->has4 || p->has6))
				if (ct_flush_dport(f == 0 ? AF_INET : AF_INET6, IPPROTO_UDP, p->maps[i].host, &removed, e) < 0)
					return -1;
	}
	return 0;
}

/* route_localnet=1 on the host's interface towards the container, so 127.0.0.1 may be DNATed
 * there (what the reference does; it is never reset, as other containers may rely on it). */
static int localnet(struct cni_ctx *c, const struct pm_conf *p)
{
	struct nlsock *sk = NULL;
	struct cnl_link l;
	char path[128];
	int oif, rc = -1, r;

	if (!p->snat || !p->has4)
		return 0;
	if (cnl_open(&sk, &c->err) < 0)
		return -1;
	if (cnl_route_get_oif(sk, &p->c4.ip, &oif, &c->err) < 0) {
		/* the host has no route to the container (an L2-only overlay such as a vxlan network
		 * without a gateway): nothing to enable, as in the reference */
		cni_err_clear(&c->err);
		rc = 0;
		goto out;
	}
	if ((r = cnl_link_get(sk, NULL, oif, &l, &c->err)) <= 0) {
		if (!r)
			cni_errf(&c->err, CNI_ERR_KERNEL, "the interface (index %d) routing to the container is gone", oif);
		goto out;
	}
	snprintf(path, sizeof(path), "net/ipv4/conf/%s/route_localnet", l.name);
	char cur[8] = "";
	if (sysctl_get(path, cur, sizeof(cur)) < 0 || cur[0] != '1')
		if (sysctl_set(path, "1", &c->err) < 0)
			goto out;
	rc = 0;
out:
	cnl_close(sk);
	return rc;
}

/* The port chains, their map elements and this attachment's jumps, into b. 0, or -1 (e). */
static int port_cmds(struct nft *n, const struct pm_conf *p, struct sb *b, struct cni_error *e)
{
	char(*pcs)[32] = calloc(p->n_maps + 1, sizeof(*pcs));
	size_t npc = 0;
	int r, rc = -1;
	if (!pcs)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < p->n_maps; i++) {
		const struct pm_map *m = &p->maps[i];
		char pc[32];
		if (!applies(p, m, true) && !applies(p, m, false))
			continue;
		snprintf(pc, sizeof(pc), "p-%s-%u", proto_name(m->proto), m->host);
		bool done = false;
		for (size_t k = 0; k < npc && !done; k++)
			done = strcmp(pcs[k], pc) == 0;
		if (done)
			continue;
		snprintf(pcs[npc++], 32, "%s", pc);
		if ((r = nfttab_chain(n, &tab, pc, NULL, 0, e)) < 0)
			goto out;
		if (!r)
			sb_add(b, "add chain " TABLE " %s\n", pc);
		/* the element too when the chain exists: a chain is no proof of its element (deleted by
		 * hand, a flush); adding an identical element is a no-op */
		sb_add(b, "add element " TABLE " ports { %s . %u : jump %s }\n", proto_name(m->proto), m->host, pc);
		/* the most recent attachment first (as the reference: a pod recreated with the same
		 * host port takes it over before the old one's DEL) */
		if (!*p->cond[0] && !*p->cond[1])
			sb_add(b, "insert rule " TABLE " %s jump %s comment \"%s\"\n", pc, p->chain, p->chain);
		else
			for (int f = 0; f < 2; f++)
				sb_add(b, "insert rule " TABLE " %s meta nfproto %s %sjump %s comment \"%s\"\n", pc,
				       f == 0 ? "ipv4" : "ipv6", p->cond[f], p->chain, p->chain);
	}
	rc = 0;
out:
	free(pcs);
	return rc;
}

/* The table's skeleton and base rules when they are not intact, and the masquerade rule of the
 * mark when snat wants it and it is missing, into b. */
static int base_cmds(struct nft *n, const struct pm_conf *p, struct sb *b, struct cni_error *e)
{
	bool seen;
	int r;
	if (nfttab_ensure(n, &tab, b, &seen, e) < 0)
		return -1;
	if (p->snat && (r = seen ? masq_rule(n, p->mark, e) : 0) <= 0) {
		if (r < 0)
			return -1;
		if (!b->n)
			nfttab_skeleton(b, &tab, false, false);
		sb_add(b,
		       "add rule " TABLE
		       " postrouting meta mark and 0x%08x == 0x%08x masquerade comment \"masquerade mark 0x%08x\"\n",
		       p->mark, p->mark, p->mark);
	}
	return 0;
}

struct chain_undo {
	struct nft *n;
	const char *chain;
};

/* Nothing of this attachment stays: its chain, jumps, and port chains left empty. */
static void undo_chain(void *arg)
{
	struct chain_undo *x = arg;
	struct cni_error ig = { 0 };
	struct sb rb = { 0 };
	if (drop_cmds(x->n, x->chain, &rb, &ig) > 0 && !rb.oom)
		nft_run(x->n, rb.s, &ig);
	free(rb.s);
}

/* Nothing of this attachment stays in iptables: its chains and jumps, in both families. */
static void undo_ipt(void *arg)
{
	const struct cni_ctx *c = *(const struct cni_ctx *const *)arg;
	struct cni_error ig = { 0 };
	char ch[29];
	if (pm_ipt_chain(c->name, c->container_id, ch, &ig) == 0) {
		ipt_ref_del_chain(true, ch, "CNI-HOSTPORT-DNAT", NULL, &ig);
		ipt_ref_del_chain(false, ch, "CNI-HOSTPORT-DNAT", NULL, &ig);
	}
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	struct pm_conf *p = conf;
	struct nft *n = NULL;
	struct sb b = { 0 }, del = { 0 };
	struct undo u = { 0 };
	int lock = -1, rc = -1;

	if (p->n_maps && (p->has4 || p->has6)) {
		if ((lock = nft_lock(&c->err)) < 0 || nft_open(&n, &c->err) < 0)
			goto out;
		/* a repeated ADD replaces what this attachment had (with either backend) */
		if (drop_cmds(n, p->chain, &del, &c->err) < 0)
			goto out;
		if (nfttab_run(n, &del, &c->err, "portmap: replacing %s: ", p->chain) < 0)
			goto out;
		if (p->ipt) {
			if (undo_push(&u, undo_ipt, &c, sizeof(c), &c->err) < 0 || pm_ipt_add(c, p) < 0 ||
			    FAULT(&c->err, "portmap rules") < 0)
				goto out;
		} else {
			if (base_cmds(n, p, &b, &c->err) < 0)
				goto out;
			sb_add(&b, "add chain " TABLE " %s { comment \"%s\"; }\n", p->chain, p->comment);
			if (expected_rules(p, &b) < 0 || port_cmds(n, p, &b, &c->err) < 0 || b.oom) {
				if (!c->err.code)
					cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
				goto out;
			}
			if (nfttab_run(n, &b, &c->err, "portmap: ") < 0) {
				if (*p->cond[0] || *p->cond[1])
					cni_err_details(&c->err,
							"check conditionsV4/conditionsV6: they are nftables match expressions");
				goto out;
			}
			if (undo_push(&u, undo_chain, &(struct chain_undo){ n, p->chain }, sizeof(struct chain_undo), &c->err) <
				    0 ||
			    FAULT(&c->err, "portmap rules") < 0)
				goto out;
		}
		if (localnet(c, p) < 0 || FAULT(&c->err, "portmap localnet") < 0 || flush_udp(p, &c->err) < 0 ||
		    FAULT(&c->err, "portmap udp flows") < 0)
			goto out;
	}
	/* the result is prevResult, unchanged (moved: skel frees both) */
	*out = c->prev;
	memset(&c->prev, 0, sizeof(c->prev));
	c->has_prev = false;
	rc = 0;
out:
	if (rc < 0)
		undo_run(&u);
	free(b.s);
	free(del.s);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

/* RELOAD: what ADD makes, made again the same way (a repeated ADD replaces the attachment's
 * chains); the result is not printed. */
static int cmd_reload(struct cni_ctx *c, void *conf)
{
	struct cni_result out = { 0 };
	int rc = cmd_add(c, conf, &out);
	cni_result_free(&out);
	return rc;
}

/* utils.MustFormatChainNameWithPrefix(name, id, "DN-") of the reference: 28 characters */
static int ref_chain(struct cni_ctx *c, char out[29])
{
	return pm_ipt_chain(c->name, c->container_id, out, &c->err);
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	char ref[29];
	struct pm_conf *p = conf;
	struct nft *n = NULL;
	struct sb b = { 0 };
	int lock = -1, rc = -1;

	if ((lock = nft_lock(&c->err)) < 0 || nft_open(&n, &c->err) < 0)
		goto out;
	if (drop_cmds(n, p->chain, &b, &c->err) < 0 || nfttab_run(n, &b, &c->err, "portmap: removing %s: ", p->chain) < 0)
		goto out;
	/* the iptables chain of this container (CNI-DN-<hash> under CNI-HOSTPORT-DNAT): ours with
	 * the iptables backend, or the reference portmap's if the node ran it before; DEL does not
	 * know which backend the ADD used, and a stale DNAT would otherwise outlive the pod */
	if (ref_chain(c, ref) < 0 || ipt_ref_del_chain(true, ref, "CNI-HOSTPORT-DNAT", n, &c->err) < 0 ||
	    ipt_ref_del_chain(false, ref, "CNI-HOSTPORT-DNAT", n, &c->err) < 0) {
		cni_err_prefix(&c->err, "portmap: removing the reference plugin's chain %s: ", ref);
		goto out;
	}
	/* and the UDP flows towards the gone container (the reference leaves them) */
	if (flush_udp(p, &c->err) < 0)
		goto out;
	rc = 0;
out:
	free(b.s);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

/* CHECK of the attachment chain: its rules' comments, in order, are those ADD writes. */
static int check_rules(struct nft *n, struct cni_ctx *c, const struct pm_conf *p)
{
	struct sb b = { 0 };
	struct nft_rule_info *r = NULL;
	size_t cnt = 0, k = 0;
	int rc = -1, x;

	if ((x = nfttab_rules(n, &tab, p->chain, &r, &cnt, &c->err)) <= 0) {
		if (!x)
			cni_check_fail(&c->err, "portmap: chain %s of container %s (%s) is missing from table " TABLE, p->chain,
				       c->container_id, c->ifname);
		goto out;
	}
	if (expected_rules(p, &b) < 0) {
		cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (char *line = b.s, *next; line && *line; line = next, k++) {
		next = strchr(line, '\n');
		if (next)
			*next++ = '\0';
		char *cm = strstr(line, " comment \"");
		if (!cm)
			continue;
		cm += 10;
		cm[strlen(cm) - 1] = '\0';
		if (k >= cnt || strcmp(r[k].comment, cm) != 0) {
			cni_check_fail(&c->err, "portmap: chain %s lacks the rule \"%s\"", p->chain, cm);
			goto out;
		}
	}
	if (k != cnt) {
		cni_check_fail(&c->err, "portmap: chain %s has %zu rules, expected %zu", p->chain, cnt, k);
		goto out;
	}
	rc = 0;
out:
	free(r);
	free(b.s);
	return rc;
}

/* CHECK of one host port: its port chain jumps to the attachment chain, its element leads there. */
static int check_port(struct nft *n, struct cni_ctx *c, const struct pm_conf *p, const struct pm_map *m)
{
	struct nft_rule_info *pr = NULL;
	size_t pn = 0;
	bool found = false;
	uint8_t key[8];
	char pc[32], tgt[64];
	int x;

	snprintf(pc, sizeof(pc), "p-%s-%u", proto_name(m->proto), m->host);
	if (nfttab_rules(n, &tab, pc, &pr, &pn, &c->err) < 0)
		return -1;
	for (size_t j = 0; j < pn && !found; j++)
		found = strcmp(pr[j].comment, p->chain) == 0;
	free(pr);
	if (!found)
		return cni_check_fail(&c->err, "portmap: host port %s/%u does not lead to chain %s", proto_name(m->proto),
				      m->host, p->chain);
	nfttab_key_port(m->proto, m->host, key);
	if ((x = nfttab_elem(n, &tab, "ports", key, sizeof(key), tgt, sizeof(tgt), &c->err)) < 0)
		return -1;
	if (!x || strcmp(tgt, pc) != 0)
		return cni_check_fail(&c->err, "portmap: map ports of table " TABLE " has no element %s . %u leading to %s",
				      proto_name(m->proto), m->host, pc);
	return 0;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	struct pm_conf *p = conf;
	struct nft *n = NULL;
	int rc = -1, x;

	if (!p->n_maps || !(p->has4 || p->has6))
		return 0;
	if (p->ipt)
		return pm_ipt_check(c, p);
	if (nft_open(&n, &c->err) < 0 || nfttab_check(n, &tab, &c->err) < 0)
		goto out;
	if (p->snat && (x = masq_rule(n, p->mark, &c->err)) <= 0) {
		if (!x)
			cni_check_fail(&c->err,
				       "portmap: no masquerade rule for mark 0x%08x in chain postrouting of table " TABLE,
				       p->mark);
		goto out;
	}
	if (check_rules(n, c, p) < 0)
		goto out;
	/* every host port leads here */
	for (size_t i = 0; i < p->n_maps; i++)
		if ((applies(p, &p->maps[i], true) || applies(p, &p->maps[i], false)) && check_port(n, c, p, &p->maps[i]) < 0)
			goto out;
	rc = 0;
out:
	nft_close(n);
	return rc;
}

static int cmd_gc(struct cni_ctx *c, void *conf)
{
	(void)conf; /* the network name and the valid attachments are all GC needs */
	struct nft *n = NULL;
	struct sb b = { 0 };
	struct nft_chain_info *ch = NULL;
	size_t nch = 0;
	int lock = -1, rc = -1;

	if ((lock = nft_lock(&c->err)) < 0 || nft_open(&n, &c->err) < 0)
		goto out;
	if (nfttab_stale(n, &tab, c->name, c->valid, c->n_valid, &ch, &nch, &c->err) < 0)
		goto out;
	for (size_t k = 0; k < nch; k++) {
		/* one batch per stale attachment, each planned on the table as the previous one left
		 * it: planned together, two sharing a host port each saw the other's jump and neither
		 * removed the port chain and its element */
		b.n = 0;
		if (drop_cmds(n, ch[k].name, &b, &c->err) < 0 ||
		    nfttab_run(n, &b, &c->err, "portmap GC of network %s: ", c->name) < 0)
			goto out;
	}
	/* and the iptables backend's (or the reference's) chains of this network */
	if (pm_ipt_gc(c, n) < 0)
		goto out;
	rc = 0;
out:
	free(ch);
	free(b.s);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	const struct pm_conf *p = conf;
	if (p->ipt) {
		if (masq_available(MASQ_IPTABLES, &c->err) < 0) {
			cni_err_prefix(&c->err, "portmap: ");
			return -1;
		}
		return 0;
	}
	return nfttab_probe(&tab, "the port map", &c->err);
}

/* nf_tables and sysctl need CAP_NET_ADMIN only: portmap never enters the container. */
static const int portmap_caps[] = { CAP_NET_ADMIN, -1 };

int main(void)
{
	static const struct cni_plugin pl = {
		.name = "portmap",
		.any_cni_args = true,
		.caps = portmap_caps,
		.conf_size = sizeof(struct pm_conf),
		.parse = parse,
		.free_conf = pm_free,
		.add = cmd_add,
		.check = cmd_check,
		.del = cmd_del,
		.gc = cmd_gc,
		.status = cmd_status,
		.reload = cmd_reload,
	};
	return cni_plugin_main(&pl);
}
