/* SNAT of container addresses: our nftables table (a verdict map per family, one chain per
 * attachment), or the reference plugin's iptables chains, rule for rule. */
#include "masq.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>

#include "conf.h"
#include "ipt.h"
#include "nft.h"
#include "nfttab.h"
#include "sb.h"
#include "sha512.h"
#include "subproc.h"

#define TABLE_NAME "cni_c_masq"
#define TABLE "inet " TABLE_NAME
#define REF_TABLE_NAME "cni_plugins_masquerade"
#define REF_TABLE "inet " REF_TABLE_NAME
#define REF_CHAIN "masq_checks"
#define COMMENT_MAX NFT_COMMENT_MAX
#define CHAIN_LEN NFTTAB_CHAIN_LEN

int masq_backend_parse(const char *s, enum masq_backend *b, struct cni_error *e)
{
	if (!s || !*s || strcmp(s, "nftables") == 0)
		*b = MASQ_NFTABLES;
	else if (strcmp(s, "iptables") == 0)
		*b = MASQ_IPTABLES;
	else
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"ipMasqBackend\": \"%s\" is not \"nftables\" or \"iptables\"", s);
	return 0;
}

/* ---- small helpers ---- */

static bool id_ok(const struct masq_id *id, struct cni_error *e)
{
	if (!id || !id->network || !*id->network || !id->container_id || !*id->container_id || !id->ifname || !*id->ifname) {
		cni_errf(e, CNI_ERR_INTERNAL, "SNAT: network name, container ID and interface name are required");
		return false;
	}
	return true;
}

static const char *map_of(const struct ip *ip)
{
	return ip_is_v4(ip) ? "masq4" : "masq6";
}

/* ---- names ---- */

/* ---- nftables backend ---- */

/* The table. The base chain's rules carry comments, so ADD and CHECK can tell the chain is
 * intact from one cheap read (and ADD leaves an intact chain alone). */
static const struct nfttab_map masq_maps[] = { { "masq4", "ipv4_addr" }, { "masq6", "ipv6_addr" }, { "", "" } };
static const struct nfttab_chain masq_chains[] = {
	{ "postrouting", "type nat hook postrouting priority srcnat; policy accept;" },
	{ "", NULL },
};
static const struct nfttab_rule masq_rules[] = {
	{ "postrouting", "ip daddr 224.0.0.0/4 return", "multicast: no SNAT (IPv4)" },
	{ "postrouting", "ip6 daddr ff00::/8 return", "multicast: no SNAT (IPv6)" },
	{ "postrouting", "ip saddr vmap @masq4", "IPv4 container addresses" },
	{ "postrouting", "ip6 saddr vmap @masq6", "IPv6 container addresses" },
	{ "", NULL, NULL },
};
static const struct nfttab tab = {
	.family = NFPROTO_INET,
	.ref = TABLE,
	.name = TABLE_NAME,
	.comment = "SNAT of CNI container addresses (cni-c ipMasq)",
	.maps = masq_maps,
	.chains = masq_chains,
	.rules = masq_rules,
	.chain_prefix = "a-",
	.naming = NFTTAB_NET_ATTACHMENT,
	.who = "SNAT",
	.altered = "chain postrouting of table " TABLE " was altered (its rules are not the four this plugin writes)",
	.missing = "table " TABLE " or its chain postrouting is missing",
};

/* "a-<16 hex of sha512(network)>-<16 hex of sha512(ifname:containerID)>"; the part after "a-"
 * is, as it happens, the prefix of the reference's nftables rule comments too. */
static int chain_name(const struct masq_id *id, char out[CHAIN_LEN], struct cni_error *e)
{
	return nfttab_chain_name(&tab, id->network, id->ifname, id->container_id, out, e);
}

/* Where the map element of an address leads: 1 (chain into target), 0 absent. */
static int element_target(struct nft *n, const struct ip *ip, char *target, size_t tlen, struct cni_error *e)
{
	return nfttab_elem(n, &tab, map_of(ip), ip->b, ip->len, target, tlen, e);
}

/* The addresses (with prefix) an attachment chain masquerades: its rules' comments. */
static int chain_addrs(struct nft *n, const char *chain, struct ipnet **out, size_t *cnt, struct cni_error *e)
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
	for (size_t i = 0; i < nr; i++)
		if (ipnet_parse(r[i].comment, &(*out)[*cnt]) == 0)
			(*cnt)++;
	free(r);
	return 1;
}

static bool has_ip(const struct ipnet *v, size_t n, const struct ip *ip)
{
	for (size_t i = 0; i < n; i++)
		if (ip_equal(&v[i].ip, ip))
			return true;
	return false;
}

/* The chain comment: addresses first, so what a reader needs most survives the 128-byte cut. */
static void chain_comment(const struct masq_id *id, const struct ipnet *ips, size_t cnt, char out[COMMENT_MAX + 1])
{
	char net[IPNET_STRLEN];
	size_t l = 0;

	out[0] = '\0';
	for (size_t i = 0; i < cnt && l <= COMMENT_MAX; i++)
		l += (size_t)snprintf(out + l, COMMENT_MAX + 1 - l, "%s ", ipnet_fmt(&ips[i], net));
	if (l <= COMMENT_MAX)
		snprintf(out + l, COMMENT_MAX + 1 - l, "net=%s if=%s id=%s", id->network, id->ifname, id->container_id);
	nft_comment_clean(out);
}

/* ADD writes only what differs, in one batch: a repeated ADD with everything in place runs no
 * batch at all, and the first ADD deletes nothing (a batch that deletes costs the ~10 ms RCU
 * grace period nft_close waits for). */
static int nft_add(const struct masq_id *id, const struct ipnet *in, size_t n_in, struct cni_error *e)
{
	struct nft *n = NULL;
	struct sb b = { 0 };
	struct ipnet *ips = NULL, *old = NULL;
	size_t cnt = 0, n_old = 0;
	char chain[CHAIN_LEN], want[COMMENT_MAX + 1], have[COMMENT_MAX + 1], a[IP_STRLEN], net[IPNET_STRLEN], t[64];
	int lock = -1, rc = -1, had, r;
	bool same;

	if (chain_name(id, chain, e) < 0)
		return -1;
	/* One rule and one element per address: a repeated address counts once. */
	if (!(ips = calloc(n_in + 1, sizeof(*ips))))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < n_in; i++)
		if (!has_ip(ips, cnt, &in[i].ip))
			ips[cnt++] = in[i];
	chain_comment(id, ips, cnt, want);
	if ((lock = nft_lock(e)) < 0 || nft_open(&n, e) < 0)
		goto out;

	if (nfttab_ensure(n, &tab, &b, NULL, e) < 0)
		goto out;
	if ((had = nfttab_chain(n, &tab, chain, have, sizeof(have), e)) < 0 ||
	    (had && chain_addrs(n, chain, &old, &n_old, e) < 0))
		goto out;
	same = had && strcmp(have, want) == 0 && n_old == cnt;
	for (size_t i = 0; same && i < cnt; i++)
		same = ip_equal(&old[i].ip, &ips[i].ip) && old[i].prefix == ips[i].prefix;

	if (had && !same) {
		/* Different addresses (or a hand-edited chain): recreate it, since nftables keeps the
		 * first comment of a chain, and the comment must list this ADD's addresses. */
		if (nfttab_drop_chain_refs(n, &b, &tab, chain, e) < 0)
			goto out;
	}
	if (!same) {
		sb_add(&b, "add chain " TABLE " %s { comment \"%s\"; }\n", chain, want);
		for (size_t i = 0; i < cnt; i++) {
			struct ipnet sub = { ipnet_network(&ips[i]), ips[i].prefix };
			char sn[IPNET_STRLEN];
			sb_add(&b, "add rule " TABLE " %s %s daddr != %s masquerade comment \"%s\"\n", chain,
			       ip_is_v4(&ips[i].ip) ? "ip" : "ip6", ipnet_fmt(&sub, sn), ipnet_fmt(&ips[i], net));
		}
	}
	for (size_t i = 0; i < cnt; i++) {
		ip_fmt(&ips[i].ip, a);
		if ((r = element_target(n, &ips[i].ip, t, sizeof(t), e)) < 0)
			goto out;
		bool ours = r && strcmp(t, chain) == 0;
		if (same && ours)
			continue;
		/* An element leading elsewhere is stale: host-local handed this address to this
		 * container, so the attachment it leads to has lost it. One leading to our old
		 * chain is deleted with it above. */
		if (r && !ours)
			sb_add(&b, "delete element " TABLE " %s { %s }\n", map_of(&ips[i].ip), a);
		sb_add(&b, "add element " TABLE " %s { %s : goto %s }\n", map_of(&ips[i].ip), a, chain);
	}
	if (nfttab_run(n, &b, e, "SNAT for %s: ", chain) < 0)
		goto out;
	rc = 0;
out:
	free(ips);
	free(old);
	free(b.s);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

/* Our chain of this attachment and the reference plugin's rules for it, in one batch. */
static int nft_del(struct nft *n, const struct masq_id *id, struct cni_error *e)
{
	struct sb b = { 0 };
	struct nft_rule_info *ref = NULL;
	size_t n_ref = 0;
	char chain[CHAIN_LEN];
	const char *pre = chain + 2; /* the instance hash: the chain's name after "a-" */
	int rc = -1, r;

	if (chain_name(id, chain, e) < 0)
		return -1;
	if ((r = nfttab_chain(n, &tab, chain, NULL, 0, e)) < 0 || (r == 1 && nfttab_drop_chain_refs(n, &b, &tab, chain, e) < 0))
		goto out;
	/* The reference's own nftables backend (a container it attached before this node switched
	 * to us): rules in its masq_checks chain commented "<instance hash>, net: ...". */
	if (nft_get_rules(n, NFPROTO_INET, REF_TABLE_NAME, REF_CHAIN, &ref, &n_ref, e) < 0)
		goto out;
	for (size_t i = 0; i < n_ref; i++)
		if (strncmp(ref[i].comment, pre, strlen(pre)) == 0)
			sb_add(&b, "delete rule " REF_TABLE " " REF_CHAIN " handle %llu\n", (unsigned long long)ref[i].handle);
	if (nfttab_run(n, &b, e, "SNAT: removing %s: ", chain) < 0)
		goto out;
	rc = 0;
out:
	free(ref);
	free(b.s);
	return rc;
}

static int nft_check_rules(const struct masq_id *id, const struct ipnet *ips, size_t cnt, struct cni_error *e)
{
	struct nft *n = NULL;
	struct ipnet *have = NULL;
	size_t n_have = 0;
	char chain[CHAIN_LEN], t[64], a[IP_STRLEN], net[IPNET_STRLEN];
	int rc = -1, r;

	if (chain_name(id, chain, e) < 0 || nft_open(&n, e) < 0)
		return -1;
	if (nfttab_check(n, &tab, e) < 0)
		goto out;
	if ((r = chain_addrs(n, chain, &have, &n_have, e)) <= 0) {
		if (!r)
			cni_check_fail(e, "SNAT: chain %s of container %s (%s) is missing from table " TABLE, chain,
				       id->container_id, id->ifname);
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		bool found = false;
		ip_fmt(&ips[i].ip, a);
		for (size_t k = 0; k < n_have && !found; k++)
			found = ip_equal(&have[k].ip, &ips[i].ip) && have[k].prefix == ips[i].prefix;
		if (!found) {
			cni_check_fail(e, "SNAT: chain %s has no masquerade rule for %s", chain, ipnet_fmt(&ips[i], net));
			goto out;
		}
		if ((r = element_target(n, &ips[i].ip, t, sizeof(t), e)) < 0)
			goto out;
		if (!r) {
			cni_check_fail(e, "SNAT: %s has no element in map %s of table " TABLE, a, map_of(&ips[i].ip));
			goto out;
		}
		if (strcmp(t, chain) != 0) {
			cni_check_fail(e, "SNAT: map %s of table " TABLE " sends %s to chain %s, not %s", map_of(&ips[i].ip), a,
				       t[0] ? t : "(no chain)", chain);
			goto out;
		}
	}
	rc = 0;
out:
	free(have);
	nft_close(n);
	return rc;
}

/* ---- iptables backend: the reference's layout ---- */

/* An iptables command; fails (code 101) naming it unless it exits 0, or (ok1) 1. */
static int ipt(char *const argv[], bool ok1, struct cni_error *e)
{
	return ipt_run("SNAT backend iptables", argv, ok1, e);
}

/* CNI-<sha512(network + containerID)[:24]> and 'name: "N" id: "ID"', as utils.FormatChainName
 * and utils.FormatComment. The comment is malloc'ed. */
static int ipt_names(const struct masq_id *id, char chain[29], char **comment, struct cni_error *e)
{
	char hex[25];
	struct sb b = { 0 };

	if (sha512_hexf(hex, 24, "%s%s", id->network, id->container_id) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	snprintf(chain, 29, "CNI-%s", hex);
	sb_add(&b, "name: ");
	ipt_go_quote(id->network, &b);
	sb_add(&b, " id: ");
	ipt_go_quote(id->container_id, &b);
	if (b.oom) {
		free(b.s);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	*comment = b.s;
	return 0;
}

/* The reference's three rules for one address, as -C commands, in the order it appends them: ACCEPT
 * for the subnet, MASQUERADE unless multicast, the POSTROUTING jump. net and src hold the operands. */
enum { IPT_ACCEPT, IPT_MASQ, IPT_JUMP };
static void ipt_rules(const struct ipnet *ip, char *chain, char *comment, char net[IPNET_STRLEN], char src[IP_STRLEN],
		      char *rules[3][16])
{
	bool v4 = ip_is_v4(&ip->ip);
	char *tool = ipt_tool(v4), *mcast = v4 ? "224.0.0.0/4" : "ff00::/8";
	/* The reference's -d operand is ipn.String(): the address with its host bits. */
	ipnet_fmt(ip, net);
	ip_fmt(&ip->ip, src);
	char *r[3][16] = {
		[IPT_ACCEPT] = { tool, "-w", "-t", "nat", "-C", chain, "-d", net, "-j", "ACCEPT", "-m", "comment", "--comment",
				 comment, NULL },
		[IPT_MASQ] = { tool, "-w", "-t", "nat", "-C", chain, "!", "-d", mcast, "-j", "MASQUERADE", "-m", "comment",
			       "--comment", comment, NULL },
		[IPT_JUMP] = { tool, "-w", "-t", "nat", "-C", "POSTROUTING", "-s", src, "-j", chain, "-m", "comment", "--comment",
			       comment, NULL },
	};
	memcpy(rules, r, sizeof(r));
}

static int ipt_add(const struct masq_id *id, const struct ipnet *ips, size_t cnt, struct cni_error *e)
{
	char chain[29], net[IPNET_STRLEN], src[IP_STRLEN], *comment = NULL;
	int rc = -1;

	if (ipt_names(id, chain, &comment, e) < 0)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		char *rules[3][16], *tool = ipt_tool(ip_is_v4(&ips[i].ip));
		char *newc[] = { tool, "-w", "-t", "nat", "-N", chain, NULL };
		char *hasc[] = { tool, "-w", "-t", "nat", "-S", chain, NULL };
		struct ipt_out r;
		ipt_exec(newc, false, &r);
		if (r.status != 0 && ipt(hasc, false, e) < 0)
			goto out;
		ipt_rules(&ips[i], chain, comment, net, src, rules);
		/* -C before -A, as go-iptables' AppendUnique. */
		for (int k = 0; k < 3; k++) {
			int s = ipt(rules[k], true, e);
			if (s < 0)
				goto out;
			if (s == 0)
				continue;
			rules[k][4] = "-A";
			if (ipt(rules[k], false, e) < 0)
				goto out;
		}
	}
	rc = 0;
out:
	free(comment);
	return rc;
}

/* Remove a reference-layout chain of the nat table of one family: every rule of `entry` jumping to
 * it (found in "iptables -S <entry>", since DEL knows no address), then the chain. Execs nothing
 * when nf_tables shows no such chain and the legacy nat table is not in use. */
int ipt_ref_del_chain(bool v4, const char *chain, const char *entry, struct nft *n, struct cni_error *e)
{
	char *tool = ipt_tool(v4);
	struct ipt_out r;
	int rc = -1;

	if (!ipt_legacy_nat(v4) && n) {
		/* iptables-nft keeps "iptables -t nat" in the nf_tables table "ip nat" / "ip6 nat". */
		int q = nft_get_chain(n, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6, "nat", chain, NULL, 0, e);
		if (q <= 0)
			return q;
	} else {
		/* Only iptables can tell: one exec when the chain is not there. */
		char *hasc[] = { tool, "-w", "-t", "nat", "-S", (char *)chain, NULL };
		ipt_exec(hasc, false, &r);
		if (r.status == 1 || (r.status < 0 && r.err_no == ENOENT && !n))
			return 0; /* no such chain; or neither nf_tables nor this iptables here */
		if (r.status != 0)
			return ipt(hasc, false, e); /* runs it again only to word the error */
	}
	char *list[] = { tool, "-w", "-t", "nat", "-S", (char *)entry, NULL };
	ipt_exec(list, true, &r);
	if (r.status != 0) {
		free(r.out);
		return ipt(list, false, e);
	}
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *w[64], *argv[72];
		int nw = ipt_save_words(line, w, 64), k = 0;
		bool jumps = false;
		if (nw < 2 || strcmp(w[0], "-A") != 0 || strcmp(w[1], entry) != 0)
			continue;
		for (int i = 2; i + 1 < nw; i++)
			jumps |= (strcmp(w[i], "-j") == 0 || strcmp(w[i], "--jump") == 0) && strcmp(w[i + 1], chain) == 0;
		if (!jumps)
			continue;
		argv[k++] = tool, argv[k++] = "-w", argv[k++] = "-t", argv[k++] = "nat", argv[k++] = "-D";
		for (int i = 1; i < nw; i++)
			argv[k++] = w[i];
		argv[k] = NULL;
		/* 1: someone removed it meanwhile */
		if (ipt(argv, true, e) < 0)
			goto out;
	}
	char *flush[] = { tool, "-w", "-t", "nat", "-F", (char *)chain, NULL };
	char *delc[] = { tool, "-w", "-t", "nat", "-X", (char *)chain, NULL };
	char *hasc[] = { tool, "-w", "-t", "nat", "-S", (char *)chain, NULL };
	int st;
	if (ipt(flush, true, e) < 0 || (st = ipt(delc, true, e)) < 0)
		goto out;
	/* 1 is "no such chain", or a chain something else still jumps to: tell them apart */
	if (st == 1 && ipt(hasc, true, e) == 0) {
		cni_errf(e, CNI_ERR_KERNEL, "iptables: chain %s of %s nat cannot be deleted: a rule outside %s still jumps to it",
			 chain, tool, entry);
		goto out;
	}
	rc = 0;
out:
	free(r.out);
	return rc;
}

static int ipt_check(const struct masq_id *id, const struct ipnet *ips, size_t cnt, struct cni_error *e)
{
	static const int order[3] = { IPT_JUMP, IPT_ACCEPT, IPT_MASQ };
	static const char *what[3] = { [IPT_JUMP] = "POSTROUTING rule sending %s to chain %s",
				       [IPT_ACCEPT] = "ACCEPT rule for %s's subnet in chain %s",
				       [IPT_MASQ] = "MASQUERADE rule for %s in chain %s" };
	char chain[29], net[IPNET_STRLEN], src[IP_STRLEN], *comment = NULL;
	int rc = -1;

	if (ipt_names(id, chain, &comment, e) < 0)
		return -1;
	for (size_t i = 0; i < cnt; i++) {
		char *rules[3][16], *tool = ipt_tool(ip_is_v4(&ips[i].ip));
		char *hasc[] = { tool, "-w", "-t", "nat", "-S", chain, NULL };
		int s = ipt(hasc, true, e);
		ipt_rules(&ips[i], chain, comment, net, src, rules);
		if (s < 0)
			goto out;
		if (s == 1) {
			cni_check_fail(e, "SNAT: %s nat has no chain %s (for %s)", tool, chain, src);
			goto out;
		}
		for (int j = 0; j < 3; j++) {
			int k = order[j];
			if ((s = ipt(rules[k], true, e)) < 0)
				goto out;
			if (s == 1) {
				char m[160];
				snprintf(m, sizeof(m), what[k], src, chain);
				cni_check_fail(e, "SNAT: %s nat has no %s", tool, m);
				goto out;
			}
		}
	}
	rc = 0;
out:
	free(comment);
	return rc;
}

/* ---- GC of the iptables backend ---- */

/* "CNI-" and 24 lowercase hex: a chain of the reference's masquerade layout. */
static bool ref_chain(const char *s)
{
	if (strlen(s) != 28 || strncmp(s, "CNI-", 4) != 0)
		return false;
	for (const char *p = s + 4; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

struct ipt_gc {
	char (*keep)[29]; /* the valid attachments' chains */
	size_t n_keep;
	char (*stale)[29];
	size_t n;
};

static bool chain_in(char (*v)[29], size_t n, const char *ch)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(v[i], ch) == 0)
			return true;
	return false;
}

/* One line of "iptables -t nat -S": a rule of a reference chain, or a jump to one, whose comment
 * names this network ('name: "N" id: "ID"'), and the chain no valid attachment's: into g->stale. */
static int ipt_gc_line(char *line, const char *pre, struct ipt_gc *g, struct cni_error *e)
{
	char *w[64], *cm = NULL;
	const char *jump = NULL, *ch;
	int nw = ipt_save_words(line, w, 64);

	if (nw < 2 || strcmp(w[0], "-A") != 0)
		return 0;
	for (int i = 2; i + 1 < nw; i++) {
		if (strcmp(w[i], "--comment") == 0)
			cm = w[i + 1];
		else if (strcmp(w[i], "-j") == 0 || strcmp(w[i], "--jump") == 0)
			jump = w[i + 1];
	}
	if (!cm || strncmp(cm, pre, strlen(pre)) != 0)
		return 0;
	ch = ref_chain(w[1]) ? w[1] : jump && ref_chain(jump) ? jump : NULL;
	if (!ch || chain_in(g->stale, g->n, ch) || chain_in(g->keep, g->n_keep, ch))
		return 0;
	char(*v)[29] = realloc(g->stale, (g->n + 1) * sizeof(*v));
	if (!v)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	g->stale = v;
	snprintf(g->stale[g->n++], 29, "%s", ch);
	return 0;
}

/* The chains of one family's nat table that GC collects, then removed with their jumps. A chain
 * left with no rule and no jump names no network: it stays (as the reference's GC, which
 * collects none). No iptables here: nothing of this family to collect. */
static int ipt_gc_family(bool v4, struct ipt_gc *g, const char *pre, struct cni_error *e)
{
	char *list[] = { ipt_tool(v4), "-w", "-t", "nat", "-S", NULL };
	struct ipt_out r;
	int rc = -1;

	g->n = 0;
	ipt_exec(list, true, &r);
	if (r.status < 0 && r.err_no == ENOENT) {
		free(r.out);
		return 0;
	}
	if (r.status != 0) {
		free(r.out);
		return ipt(list, false, e);
	}
	for (char *save = NULL, *line = strtok_r(r.out, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
		if (ipt_gc_line(line, pre, g, e) < 0)
			goto out;
	for (size_t i = 0; i < g->n; i++)
		if (ipt_ref_del_chain(v4, g->stale[i], "POSTROUTING", NULL, e) < 0)
			goto out;
	rc = 0;
out:
	free(r.out);
	return rc;
}

int masq_gc_iptables(const char *network, const struct cni_attachment *valid, size_t n_valid, struct cni_error *e)
{
	struct ipt_gc g = { 0 };
	struct sb pre = { 0 };
	int rc = -1;

	if (!network || !*network)
		return cni_errf(e, CNI_ERR_INTERNAL, "SNAT GC: network name is required");
	if (n_valid && !(g.keep = calloc(n_valid, sizeof(*g.keep))))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < n_valid; i++) {
		struct masq_id id = { network, valid[i].container_id, valid[i].ifname };
		char *c = NULL;
		if (id.container_id && ipt_names(&id, g.keep[g.n_keep], &c, e) == 0)
			g.n_keep++;
		cni_err_clear(e);
		free(c);
	}
	sb_add(&pre, "name: ");
	ipt_go_quote(network, &pre);
	sb_add(&pre, " id: ");
	if (pre.oom)
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	else if (ipt_gc_family(true, &g, pre.s, e) == 0 && ipt_gc_family(false, &g, pre.s, e) == 0)
		rc = 0;
	free(g.keep);
	free(g.stale);
	free(pre.s);
	return rc;
}

/* ---- API ---- */

int masq_add(enum masq_backend b, const struct masq_id *id, const struct ipnet *ips, size_t n, struct cni_error *e)
{
	if (!id_ok(id, e))
		return -1;
	return b == MASQ_IPTABLES ? ipt_add(id, ips, n, e) : nft_add(id, ips, n, e);
}

int masq_del(const struct masq_id *id, struct cni_error *e)
{
	struct nft *n = NULL;
	char ichain[29], *comment = NULL;
	int lock = -1, rc = -1;

	if (!id_ok(id, e) || ipt_names(id, ichain, &comment, e) < 0)
		return -1;
	if (nft_open(&n, e) < 0) {
		/* no nf_tables: nothing of ours can exist; iptables may still hold the reference's */
		if (e->code != CNI_ERR_NOT_AVAILABLE)
			goto out;
		cni_err_clear(e);
		n = NULL;
	}
	if (n) {
		if ((lock = nft_lock(e)) < 0 || nft_del(n, id, e) < 0)
			goto out;
		nft_unlock(lock);
		lock = -1;
	}
	/* The iptables chain, by either plugin, whichever backend the ADD used: DEL cannot know it. */
	if (ipt_ref_del_chain(true, ichain, "POSTROUTING", n, e) < 0 || ipt_ref_del_chain(false, ichain, "POSTROUTING", n, e) < 0)
		goto out;
	rc = 0;
out:
	nft_unlock(lock);
	nft_close(n);
	free(comment);
	return rc;
}

int masq_check(enum masq_backend b, const struct masq_id *id, const struct ipnet *ips, size_t n, struct cni_error *e)
{
	if (!id_ok(id, e))
		return -1;
	return b == MASQ_IPTABLES ? ipt_check(id, ips, n, e) : nft_check_rules(id, ips, n, e);
}

int masq_gc(const char *network, const struct cni_attachment *valid, size_t n_valid, struct cni_error *e)
{
	struct nft *n = NULL;
	struct sb b = { 0 };
	struct nft_chain_info *ch = NULL;
	const char **names = NULL;
	size_t nch = 0;
	int lock = -1, rc = -1;

	if (!network || !*network)
		return cni_errf(e, CNI_ERR_INTERNAL, "SNAT GC: network name is required");
	if ((lock = nft_lock(e)) < 0 || nft_open(&n, e) < 0)
		goto out;
	/* One dump of the chains, and of each map once a chain is stale, instead of a read per
	 * chain: GC walks everything anyway. No table: no chains, nothing to do. */
	if (nfttab_stale(n, &tab, network, valid, n_valid, &ch, &nch, e) < 0)
		goto out;
	if (nch && !(names = calloc(nch, sizeof(*names)))) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t c = 0; c < nch; c++)
		names[c] = ch[c].name;
	if (nfttab_drop_chains_refs(n, &b, &tab, names, nch, e) < 0)
		goto out;
	if (nfttab_run(n, &b, e, "SNAT GC of network %s: ", network) < 0)
		goto out;
	rc = 0;
out:
	free(ch);
	free(names);
	free(b.s);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

int masq_available(enum masq_backend b, struct cni_error *e)
{
	if (b == MASQ_IPTABLES) {
		char *v[] = { "iptables", "-w", "-t", "nat", "-S", "POSTROUTING", NULL };
		if (ipt(v, false, e) < 0) {
			e->code = CNI_ERR_NOT_AVAILABLE;
			cni_err_prefix(e, "SNAT backend iptables does not work here: ");
			return -1;
		}
		return 0;
	}
	struct nft *n = NULL;
	struct sb s = { 0 };
	int rc;
	if (nft_open(&n, e) < 0)
		return -1;
	/* ADD's own table, maps and NAT chain, checked by the kernel and then discarded (dry run):
	 * proves nf_tables, the nat chain type and verdict maps work without changing anything. */
	nfttab_skeleton(&s, &tab, true, false);
	sb_add(&s, "add chain " TABLE " a-probe\nadd rule " TABLE " a-probe ip daddr != 10.0.0.0/8 masquerade\n");
	if (s.oom)
		rc = cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	else
		rc = nft_check(n, s.s, e);
	free(s.s);
	nft_close(n);
	if (rc < 0) {
		e->code = CNI_ERR_NOT_AVAILABLE;
		cni_err_prefix(e, "SNAT backend nftables does not work here: ");
	}
	return rc;
}
