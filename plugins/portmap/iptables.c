/* portmap's iptables backend: the reference plugin's chains in table nat of iptables and
 * ip6tables, exec'd as the reference runs them, for configs written for the reference
 * ("backend": "iptables", iptables-style conditions, externalSetMarkChain). See portmap.h. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <linux/netfilter.h>

#include "ipt.h"
#include "masq.h"
#include "portmap.h"
#include "sb.h"
#include "sha512.h"

#define DNAT_CHAIN "CNI-HOSTPORT-DNAT"
#define SETMARK_CHAIN "CNI-HOSTPORT-SETMARK"
#define MASQ_CHAIN "CNI-HOSTPORT-MASQ"
#define MAX_WORDS 96
#define PORTS_PER_RULE 15 /* multiport's limit */

static int ipt(char *const argv[], bool ok1, struct cni_error *e)
{
	return ipt_run("portmap (iptables backend)", argv, ok1, e);
}

int pm_ipt_chain(const char *network, const char *container_id, char out[29], struct cni_error *e)
{
	char hex[22];
	if (sha512_hexf(hex, 21, "%s%s", network, container_id) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	snprintf(out, 29, "CNI-DN-%s", hex);
	return 0;
}

/* 'dnat name: "N" id: "ID"', as the reference's comment; malloc'ed. */
static char *dnat_comment(const char *network, const char *container_id)
{
	struct sb b = { 0 };
	sb_add(&b, "dnat name: ");
	ipt_go_quote(network, &b);
	sb_add(&b, " id: ");
	ipt_go_quote(container_id, &b);
	if (b.oom) {
		free(b.s);
		return NULL;
	}
	return b.s;
}

/* One iptables command line: tool, -w, -t nat, the verb, the chain, then words. */
struct cmd {
	char *v[MAX_WORDS + 1];
	int n;
};

static void cmd_start(struct cmd *c, bool v4, const char *verb, const char *chain)
{
	c->n = 0;
	c->v[c->n++] = ipt_tool(v4);
	c->v[c->n++] = "-w";
	c->v[c->n++] = "-t";
	c->v[c->n++] = "nat";
	c->v[c->n++] = (char *)verb;
	c->v[c->n++] = (char *)chain;
	c->v[c->n] = NULL;
}

static void cmd_word(struct cmd *c, const char *w)
{
	if (c->n < MAX_WORDS)
		c->v[c->n++] = (char *)w;
	c->v[c->n] = NULL;
}

static void cmd_words(struct cmd *c, ...)
{
	va_list ap;
	va_start(ap, c);
	for (const char *w; (w = va_arg(ap, const char *));)
		cmd_word(c, w);
	va_end(ap);
}

/* The chain, made when missing (a concurrent maker is fine). */
static int ensure_chain(bool v4, const char *chain, struct cni_error *e)
{
	struct cmd c;
	struct ipt_out r;
	cmd_start(&c, v4, "-N", chain);
	ipt_exec(c.v, false, &r);
	free(r.out);
	if (r.status == 0)
		return 0;
	cmd_start(&c, v4, "-S", chain);
	return ipt(c.v, false, e) < 0 ? -1 : 0;
}

/* Append rule c (built with verb "-C") unless it is there: go-iptables' AppendUnique. */
static int ensure_rule(struct cmd *c, struct cni_error *e)
{
	int s = ipt(c->v, true, e);
	if (s <= 0)
		return s;
	c->v[4] = "-A";
	return ipt(c->v, false, e) < 0 ? -1 : 0;
}

/* The rules of the top-level chains, as -C commands; k picks one (0..4); false when it does not
 * apply to this config. */
static bool base_rule(const struct pm_conf *p, bool v4, int k, char mark[32], struct cmd *c)
{
	snprintf(mark, 32, "0x%x/0x%x", p->mark, p->mark);
	switch (k) {
	case 0:
	case 1:
		cmd_start(c, v4, "-C", k == 0 ? "PREROUTING" : "OUTPUT");
		cmd_words(c, "-m", "addrtype", "--dst-type", "LOCAL", "-j", DNAT_CHAIN, (const char *)NULL);
		return true;
	case 2:
		cmd_start(c, v4, "-C", SETMARK_CHAIN);
		cmd_words(c, "-m", "comment", "--comment", "CNI portfwd masquerade mark", "-j", "MARK", "--set-xmark", mark,
			  (const char *)NULL);
		return p->snat && !p->ext_mark;
	case 3:
		cmd_start(c, v4, "-C", MASQ_CHAIN);
		cmd_words(c, "-m", "mark", "--mark", mark, "-j", "MASQUERADE", (const char *)NULL);
		return p->snat && !p->ext_mark;
	default:
		cmd_start(c, v4, "-C", "POSTROUTING");
		cmd_words(c, "-m", "comment", "--comment", "CNI portfwd requiring masquerade", "-j", MASQ_CHAIN,
			  (const char *)NULL);
		return p->snat && !p->ext_mark;
	}
}

/* Operands of one mapping's rules, kept alive while the commands are run. */
struct map_words {
	char sub[IPNET_STRLEN], hostip[IP_STRLEN + 4], port[8], to[IP_STRLEN + 10];
};

/* The container chain's rules of mapping m for a family, as -C commands, in the reference's order:
 * the marks (hairpin from the container's subnet, and 127.0.0.1 for IPv4; or every source with
 * masqAll) when snat, then the DNAT. Returns how many (at most 3). */
static int mapping_rules(const struct pm_conf *p, const struct pm_map *m, bool v4, const char *chain, struct map_words *w,
			 struct cmd out[3])
{
	const struct ipnet *cip = v4 ? &p->c4 : &p->c6;
	struct ipnet net = { ipnet_network(cip), cip->prefix };
	const char *target = p->ext_mark ? p->ext_mark : SETMARK_CHAIN;
	char a[IP_STRLEN];
	int n = 0;

	ipnet_fmt(&net, w->sub);
	w->hostip[0] = '\0';
	if (m->host_ip.len && !m->host_any)
		snprintf(w->hostip, sizeof(w->hostip), "%s/%d", ip_fmt(&m->host_ip, a), v4 ? 32 : 128);
	snprintf(w->port, sizeof(w->port), "%u", m->host);
	ip_fmt(&cip->ip, a);
	snprintf(w->to, sizeof(w->to), v4 ? "%s:%u" : "[%s]:%u", a, m->cont);
	const char *srcs[2] = { p->masq_all ? NULL : w->sub, v4 && !p->masq_all ? "127.0.0.1/32" : NULL };
	for (int k = 0; p->snat && k < (p->masq_all ? 1 : 2); k++) {
		if (!p->masq_all && !srcs[k])
			continue;
		cmd_start(&out[n], v4, "-C", chain);
		if (srcs[k])
			cmd_words(&out[n], "-s", srcs[k], (const char *)NULL);
		if (w->hostip[0])
			cmd_words(&out[n], "-d", w->hostip, (const char *)NULL);
		cmd_words(&out[n], "-p", proto_name(m->proto), "--dport", w->port, "-j", target, (const char *)NULL);
		n++;
	}
	cmd_start(&out[n], v4, "-C", chain);
	if (w->hostip[0])
		cmd_words(&out[n], "-d", w->hostip, (const char *)NULL);
	cmd_words(&out[n], "-p", proto_name(m->proto), "--dport", w->port, "-j", "DNAT", "--to-destination", w->to,
		  (const char *)NULL);
	return n + 1;
}

/* The jumps of CNI-HOSTPORT-DNAT to the container chain: per protocol in the order tcp, udp, sctp,
 * the family's conditions,
 * the comment, the host ports (15 per rule, multiport's limit), as -C commands. ports holds the
 * port lists. Returns how many. */
static int jump_rules(const struct pm_conf *p, bool v4, const char *chain, const char *comment, char ports[][96], struct cmd *out,
		      int max)
{
	static const uint8_t protos[3] = { IPPROTO_SCTP, IPPROTO_TCP, IPPROTO_UDP }; /* sorted by name, as the reference */
	int n = 0;
	for (int pi = 0; pi < 3; pi++) {
		int in_rule = 0;
		for (size_t i = 0; i < p->n_maps && n < max; i++) {
			const struct pm_map *m = &p->maps[i];
			bool seen = false;
			/* every mapping's port, whatever its hostIP's family: the reference's jumps do so
			 * (the container chain then has no rule for it in the other family) */
			if (m->proto != protos[pi])
				continue;
			for (size_t j = 0; j < i && !seen; j++)
				seen = p->maps[j].proto == m->proto && p->maps[j].host == m->host;
			if (seen)
				continue;
			if (in_rule == PORTS_PER_RULE)
				in_rule = 0, n++;
			if (!in_rule) {
				ports[n][0] = '\0';
				cmd_start(&out[n], v4, "-C", DNAT_CHAIN);
				for (size_t k = 0; k < p->n_icond[v4 ? 0 : 1]; k++)
					cmd_word(&out[n], p->icond[v4 ? 0 : 1][k]);
				cmd_words(&out[n], "-p", proto_name(m->proto), "-m", "comment", "--comment", comment, "-m",
					  "multiport", "--dports", ports[n], "-j", chain, (const char *)NULL);
			}
			size_t l = strlen(ports[n]);
			snprintf(ports[n] + l, 96 - l, "%s%u", in_rule ? "," : "", m->host);
			in_rule++;
		}
		if (in_rule)
			n++;
	}
	return n;
}

/* The reference makes a family's chains whenever the container has an address of it. */
static bool family_used(const struct pm_conf *p, bool v4)
{
	return p->n_maps && (v4 ? p->has4 : p->has6);
}

/* What a family's rules are walked for: ADD appends them, CHECK wants each there. */
enum rule_kind { RULE_BASE, RULE_CHAIN, RULE_JUMP };
typedef int (*rule_fn)(struct cmd *c, enum rule_kind k, struct cni_error *e);

/* Every rule of the attachment in one family, as -C commands, in the order ADD appends them: the
 * top-level rules, the container chain's, the jumps to it. */
static int walk_rules(const struct pm_conf *p, bool v4, const char *chain, const char *comment, rule_fn fn, struct cni_error *e)
{
	struct cmd cm, rules[3], *jumps = calloc(p->n_maps + 3, sizeof(*jumps));
	struct map_words w;
	char mark[32], (*ports)[96] = calloc(p->n_maps + 3, sizeof(*ports));
	int rc = -1;

	if (!jumps || !ports) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (int k = 0; k < 5; k++)
		if (base_rule(p, v4, k, mark, &cm) && fn(&cm, RULE_BASE, e) < 0)
			goto out;
	for (size_t i = 0; i < p->n_maps; i++) {
		if (!applies(p, &p->maps[i], v4))
			continue;
		int nr = mapping_rules(p, &p->maps[i], v4, chain, &w, rules);
		for (int k = 0; k < nr; k++)
			if (fn(&rules[k], RULE_CHAIN, e) < 0)
				goto out;
	}
	int nj = jump_rules(p, v4, chain, comment, ports, jumps, (int)p->n_maps + 3);
	for (int k = 0; k < nj; k++)
		if (fn(&jumps[k], RULE_JUMP, e) < 0)
			goto out;
	rc = 0;
out:
	free(jumps);
	free(ports);
	return rc;
}

/* ADD: the top-level rules unless there (AppendUnique), the rest appended to the new chain. */
static int append_rule(struct cmd *c, enum rule_kind k, struct cni_error *e)
{
	if (k == RULE_BASE)
		return ensure_rule(c, e);
	c->v[4] = "-A";
	return ipt(c->v, false, e) < 0 ? -1 : 0;
}

/* CHECK: each rule there (-C), or a check failure naming it. */
static int must_have(struct cmd *c, enum rule_kind k, struct cni_error *e)
{
	static const char *const what[] = { "top-level rule", "rule of the container's chain", "jump to the container's chain" };
	int s = ipt(c->v, true, e);
	if (s == 1) {
		char line[400] = "";
		for (int i = 5, l = 0; c->v[i] && l < (int)sizeof(line); i++)
			l += snprintf(line + l, sizeof(line) - (size_t)l, "%s%s", i > 5 ? " " : "", c->v[i]);
		return cni_check_fail(e, "portmap: %s nat has no %s: -A %s", c->v[0], what[k], line);
	}
	return s < 0 ? -1 : 0;
}

int pm_ipt_add(struct cni_ctx *c, const struct pm_conf *p)
{
	struct cni_error *e = &c->err;
	char chain[29], *comment = dnat_comment(c->name, c->container_id);
	int rc = -1;

	if (!comment)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (pm_ipt_chain(c->name, c->container_id, chain, e) < 0)
		goto out;
	/* the mark chain of someone else's (Kubernetes' KUBE-MARK-MASQ) must be there: checked before
	 * anything changes, so a refused ADD leaves nothing */
	for (int f = 0; f < 2 && p->ext_mark && p->snat; f++) {
		struct cmd cm;
		int s;
		if (!family_used(p, f == 0))
			continue;
		cmd_start(&cm, f == 0, "-S", p->ext_mark);
		if ((s = ipt(cm.v, true, e)) < 0)
			goto out;
		if (s == 1) {
			cni_errf(e, CNI_ERR_INVALID_CONFIG,
				 "invalid config: field \"externalSetMarkChain\": chain %s does not exist in %s nat", p->ext_mark,
				 ipt_tool(f == 0));
			goto out;
		}
	}
	for (int f = 0; f < 2; f++) {
		bool v4 = f == 0;
		struct cmd cm;
		if (!family_used(p, v4))
			continue;
		/* the top-level chains; a repeated ADD replaces the container's chain and jumps */
		if (ensure_chain(v4, DNAT_CHAIN, e) < 0 ||
		    (p->snat && !p->ext_mark &&
		     (ensure_chain(v4, SETMARK_CHAIN, e) < 0 || ensure_chain(v4, MASQ_CHAIN, e) < 0)) ||
		    ipt_ref_del_chain(v4, chain, DNAT_CHAIN, NULL, e) < 0)
			goto out;
		cmd_start(&cm, v4, "-N", chain);
		if (ipt(cm.v, false, e) < 0 || walk_rules(p, v4, chain, comment, append_rule, e) < 0)
			goto out;
	}
	rc = 0;
out:
	free(comment);
	return rc;
}

int pm_ipt_check(struct cni_ctx *c, const struct pm_conf *p)
{
	struct cni_error *e = &c->err;
	char chain[29], *comment = dnat_comment(c->name, c->container_id);
	int rc = -1;

	if (!comment)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (pm_ipt_chain(c->name, c->container_id, chain, e) < 0)
		goto out;
	for (int f = 0; f < 2; f++) {
		bool v4 = f == 0;
		struct cmd cm;
		int s;
		if (!family_used(p, v4))
			continue;
		cmd_start(&cm, v4, "-S", chain);
		if ((s = ipt(cm.v, true, e)) < 0)
			goto out;
		if (s == 1) {
			cni_check_fail(e, "portmap: %s nat has no chain %s (container %s)", ipt_tool(v4), chain, c->container_id);
			goto out;
		}
		if (walk_rules(p, v4, chain, comment, must_have, e) < 0)
			goto out;
	}
	rc = 0;
out:
	free(comment);
	return rc;
}

/* One family: the container chains CNI-HOSTPORT-DNAT jumps to with a comment of this network
 * whose container is not valid, removed with their jumps. */
static int gc_family(struct cni_ctx *c, bool v4, struct nft *n, const char *pre, char **keep, struct cni_error *e)
{
	struct cmd cm;
	struct ipt_out r;
	char(*stale)[29] = NULL;
	size_t ns = 0;
	int rc = -1;

	if (!ipt_legacy_nat(v4) && n) {
		/* iptables-nft keeps "iptables -t nat" in the nf_tables table "ip nat" / "ip6 nat" */
		int q = nft_get_chain(n, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6, "nat", DNAT_CHAIN, NULL, 0, e);
		if (q <= 0)
			return q;
	}
	cmd_start(&cm, v4, "-S", DNAT_CHAIN);
	ipt_exec(cm.v, true, &r);
	if (r.status != 0) {
		free(r.out);
		return r.status == 1 || (r.status < 0 && !n) ? 0 : ipt(cm.v, false, e);
	}
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *w[64];
		const char *cmt = NULL, *jump = NULL;
		int nw = ipt_save_words(line, w, 64);
		bool valid = false;
		if (nw < 2 || strcmp(w[0], "-A") != 0 || strcmp(w[1], DNAT_CHAIN) != 0)
			continue;
		for (int i = 2; i + 1 < nw; i++) {
			if (strcmp(w[i], "--comment") == 0)
				cmt = w[i + 1];
			else if (strcmp(w[i], "-j") == 0 || strcmp(w[i], "--jump") == 0)
				jump = w[i + 1];
		}
		if (!cmt || !jump || strncmp(cmt, pre, strlen(pre)) != 0 || strncmp(jump, "CNI-DN-", 7) != 0 || strlen(jump) > 28)
			continue;
		for (size_t i = 0; i < c->n_valid && !valid; i++)
			valid = keep[i] && strcmp(keep[i], cmt) == 0;
		for (size_t i = 0; i < ns && !valid; i++)
			valid = strcmp(stale[i], jump) == 0; /* listed already */
		if (valid)
			continue;
		char(*v)[29] = realloc(stale, (ns + 1) * sizeof(*v));
		if (!v) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		}
		stale = v;
		snprintf(stale[ns++], 29, "%s", jump);
	}
	for (size_t i = 0; i < ns; i++)
		if (ipt_ref_del_chain(v4, stale[i], DNAT_CHAIN, n, e) < 0)
			goto out;
	rc = 0;
out:
	free(stale);
	free(r.out);
	return rc;
}

int pm_ipt_gc(struct cni_ctx *c, struct nft *n)
{
	struct cni_error *e = &c->err;
	struct sb pre = { 0 };
	char **keep = calloc(c->n_valid + 1, sizeof(*keep));
	int rc = -1;

	sb_add(&pre, "dnat name: ");
	ipt_go_quote(c->name, &pre);
	sb_add(&pre, " id: ");
	if (!keep || pre.oom) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t i = 0; i < c->n_valid; i++)
		if (c->valid[i].container_id && !(keep[i] = dnat_comment(c->name, c->valid[i].container_id))) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		}
	if (gc_family(c, true, n, pre.s, keep, e) < 0 || gc_family(c, false, n, pre.s, keep, e) < 0)
		goto out;
	rc = 0;
out:
	for (size_t i = 0; keep && i < c->n_valid; i++)
		free(keep[i]);
	free(keep);
	free(pre.s);
	return rc;
}
