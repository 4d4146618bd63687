/* macspoofchk: a chain per attachment in our bridge-family table, reached through a verdict
 * map keyed by the host veth, that lets through only the container's own source MAC. */
#include "spoofchk.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <net/if.h>

#include <linux/netfilter.h>

#include "nft.h"
#include "nfttab.h"
#include "sb.h"

#define TABLE_NAME "cni_c_spoof"
#define TABLE "bridge " TABLE_NAME
#define CHAIN_LEN NFTTAB_CHAIN_LEN

/* The base chain's one rule, commented so one cheap read tells whether it is intact. */
#define BASE_RULE "iifname vmap @ports"
static const struct nfttab_map spoof_maps[] = { { "ports", "ifname" }, { "", "" } };
static const struct nfttab_chain spoof_chains[] = {
	{ "prerouting", "type filter hook prerouting priority -300; policy accept;" },
	{ "", NULL },
};
static const struct nfttab_rule spoof_rules[] = {
	{ "prerouting", BASE_RULE, "container ports: their MAC check chain" },
	{ "", NULL, NULL },
};
static const struct nfttab tab = {
	.family = NFPROTO_BRIDGE,
	.ref = TABLE,
	.name = TABLE_NAME,
	.comment = "CNI macspoofchk (cni-c)",
	.maps = spoof_maps,
	.chains = spoof_chains,
	.rules = spoof_rules,
	.chain_prefix = "s-",
	.naming = NFTTAB_ATTACHMENT,
	.who = "macspoofchk",
	.altered = "chain prerouting of table " TABLE " was altered (want only \"" BASE_RULE "\")",
	.missing = "table " TABLE " or its chain prerouting is missing",
};

/* "s-<16 hex of sha512(containerID-ifname)>" */
static int chain_name(const char *cid, const char *ifname, char out[CHAIN_LEN], struct cni_error *e)
{
	return nfttab_chain_name(&tab, NULL, ifname, cid, out, e);
}

/* Both end up inside nft commands: only what a MAC or a kernel interface name can hold, and
 * nothing that could close a quoted string. */
static bool mac_ok(const char *m)
{
	for (int i = 0; i < 17; i++)
		if (i % 3 == 2 ? m[i] != ':' : !isxdigit((unsigned char)m[i]))
			return false;
	return m[17] == '\0';
}

static bool ifname_ok(const char *s)
{
	size_t l = strlen(s);
	if (l == 0 || l > 15)
		return false;
	for (size_t i = 0; i < l; i++)
		if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f || strchr("\"\\/'", s[i]))
			return false;
	return true;
}

static int args_ok(const char *cid, const char *ifname, const char *veth, const char *mac, struct cni_error *e)
{
	if (!cid || !*cid || !ifname || !*ifname)
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: container ID and interface name are required");
	if (veth && !ifname_ok(veth))
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: \"%s\" is not a usable interface name", veth);
	if (mac && !mac_ok(mac))
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: \"%s\" is not a MAC address (want xx:xx:xx:xx:xx:xx)", mac);
	return 0;
}

/* What an attachment chain holds, from its rules' comments: the MAC its return rule lets
 * through ("mac=..."), the veth its drop rule was written for ("veth=..."). */
struct chain_state {
	char veth[32], mac[24];
	bool drop;
};

/* 1 = chain found, 0 = absent, -1 error. */
static int chain_read(struct nft *n, const char *chain, struct chain_state *st, struct cni_error *e)
{
	struct nft_rule_info *r = NULL;
	size_t cnt = 0;
	int rc = nfttab_rules(n, &tab, chain, &r, &cnt, e);

	memset(st, 0, sizeof(*st));
	for (size_t i = 0; rc == 1 && i < cnt; i++) {
		if (strncmp(r[i].comment, "mac=", 4) == 0 && i == 0)
			snprintf(st->mac, sizeof(st->mac), "%s", r[i].comment + 4);
		else if (strncmp(r[i].comment, "veth=", 5) == 0 && i == cnt - 1) {
			snprintf(st->veth, sizeof(st->veth), "%s", r[i].comment + 5);
			st->drop = true;
		}
	}
	free(r);
	return rc;
}

/* The chain a veth's map element jumps to: 1 found, 0 absent. The key of an ifname map is
 * the name NUL-padded to IFNAMSIZ. */
static int element_target(struct nft *n, const char *veth, char *target, size_t tlen, struct cni_error *e)
{
	uint8_t key[16];
	return nfttab_elem(n, &tab, "ports", key, nfttab_key_ifname(veth, key), target, tlen, e);
}

/* ADD writes only what differs: a repeated ADD runs no batch, and a first ADD deletes
 * nothing (a batch that deletes costs an RCU grace period when the socket closes). */
int spoofchk_add(const char *container_id, const char *ifname, const char *host_veth, const char *mac, struct cni_error *e)
{
	struct nft *n = NULL;
	struct chain_state st;
	struct sb b = { 0 };
	char chain[CHAIN_LEN], t[64], comment[129];
	int lock = -1, rc = -1, had, r;
	bool same;

	if (args_ok(container_id, ifname, host_veth, mac, e) < 0 || chain_name(container_id, ifname, chain, e) < 0)
		return -1;
	if (!host_veth || !mac)
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: the host veth and the MAC are required");
	if ((lock = nft_lock(e)) < 0 || nft_open(&n, e) < 0)
		goto out;
	if (nfttab_ensure(n, &tab, &b, NULL, e) < 0 || (had = chain_read(n, chain, &st, e)) < 0)
		goto out;
	same = had && st.drop && strcmp(st.veth, host_veth) == 0 && strcasecmp(st.mac, mac) == 0;
	if ((r = element_target(n, host_veth, t, sizeof(t), e)) < 0)
		goto out;
	bool elem_ok = r && strcmp(t, chain) == 0;
	if (same && elem_ok && b.n == 0) {
		rc = 0;
		goto out;
	}
	/* The veth's element leading elsewhere, whoever's: a veth name belongs to one attachment
	 * at a time. Elements leading to our chain go with it when it is remade (the kernel refuses
	 * to delete a chain something jumps to), found in the map whatever its rules still say. */
	if (r && !elem_ok)
		sb_add(&b, "delete element " TABLE " ports { \"%s\" }\n", host_veth);
	if (had && !same && nfttab_drop_chain_refs(n, &b, &tab, chain, e) < 0)
		goto out;
	if (!same) {
		snprintf(comment, sizeof(comment), "macspoofchk if=%s id=%s", ifname, container_id);
		nft_comment_clean(comment);
		sb_add(&b,
		       "add chain " TABLE " %s { comment \"%s\"; }\n"
		       "add rule " TABLE " %s ether saddr %s return comment \"mac=%s\"\n"
		       "add rule " TABLE " %s drop comment \"veth=%s\"\n",
		       chain, comment, chain, mac, mac, chain, host_veth);
	}
	if (!(same && elem_ok))
		sb_add(&b, "add element " TABLE " ports { \"%s\" : jump %s }\n", host_veth, chain);
	if (nfttab_run(n, &b, e, "macspoofchk for %s: ", host_veth) < 0)
		goto out;
	rc = 0;
out:
	free(b.s);
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

int spoofchk_del(const char *container_id, const char *ifname, struct cni_error *e)
{
	struct nft *n = NULL;
	struct chain_state st;
	struct sb b = { 0 };
	char chain[CHAIN_LEN];
	int lock = -1, rc = -1, r;

	if (args_ok(container_id, ifname, NULL, NULL, e) < 0 || chain_name(container_id, ifname, chain, e) < 0)
		return -1;
	if (nft_open(&n, e) < 0) {
		/* without nf_tables no chain of ours can exist */
		if (e->code != CNI_ERR_NOT_AVAILABLE)
			return -1;
		cni_err_clear(e);
		return 0;
	}
	if ((lock = nft_lock(e)) < 0 || (r = chain_read(n, chain, &st, e)) < 0)
		goto out;
	if (r == 0) {
		rc = 0;
		goto out;
	}
	if (nfttab_drop_chain_refs(n, &b, &tab, chain, e) < 0)
		goto out;
	if (nfttab_run(n, &b, e, "macspoofchk: removing %s: ", chain) < 0)
		goto out;
	rc = 0;
out:
	free(b.s);
	nft_unlock(lock);
	nft_close(n);
	return rc;
}

/* Is a chain of the table garbage for GC: 1 yes, 0 no, -1 error. */
static int chain_stale(struct nft *n, const char *chain, const struct cni_attachment *valid, size_t n_valid,
		       const struct nft_map_elem *el, size_t nel, struct cni_error *e)
{
	char name[CHAIN_LEN], veth[IFNAMSIZ];
	struct chain_state st;
	int r;

	if (strncmp(chain, tab.chain_prefix, strlen(tab.chain_prefix)) != 0)
		return 0; /* a base chain */
	for (size_t i = 0; i < n_valid; i++) {
		if (!valid[i].container_id || !valid[i].ifname ||
		    args_ok(valid[i].container_id, valid[i].ifname, NULL, NULL, e) < 0)
			continue;
		if (chain_name(valid[i].container_id, valid[i].ifname, name, e) < 0)
			return -1;
		if (strcmp(name, chain) == 0)
			return 0;
	}
	cni_err_clear(e);
	if ((r = chain_read(n, chain, &st, e)) <= 0)
		return r; /* gone meanwhile: nothing to do */
	if (st.veth[0] && if_nametoindex(st.veth))
		return 0;
	for (size_t i = 0; i < nel; i++) {
		if (!el[i].has_verdict || strcmp(el[i].chain, chain) != 0)
			continue;
		snprintf(veth, sizeof(veth), "%.*s", (int)strnlen((const char *)el[i].key, el[i].klen < 15 ? el[i].klen : 15),
			 (const char *)el[i].key);
		if (veth[0] && if_nametoindex(veth))
			return 0;
	}
	return 1;
}

int spoofchk_gc(const struct cni_attachment *valid, size_t n_valid, struct cni_error *e)
{
	struct nft *n = NULL;
	struct nft_chain_info *ch = NULL;
	struct nft_map_elem *el = NULL;
	const char **stale = NULL;
	struct sb b = { 0 };
	size_t nch = 0, nel = 0, k = 0;
	int lock = -1, rc = -1, r;

	if (nft_open(&n, e) < 0) {
		/* without nf_tables no chain of ours can exist */
		if (e->code != CNI_ERR_NOT_AVAILABLE)
			return -1;
		cni_err_clear(e);
		return 0;
	}
	if ((lock = nft_lock(e)) < 0 || nft_list_chains(n, tab.family, tab.name, &ch, &nch, e) < 0)
		goto out;
	if (nch && nft_list_map(n, tab.family, tab.name, "ports", &el, &nel, e) < 0)
		goto out;
	if (nch && !(stale = calloc(nch, sizeof(*stale)))) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	for (size_t c = 0; c < nch; c++) {
		if ((r = chain_stale(n, ch[c].name, valid, n_valid, el, nel, e)) < 0)
			goto out;
		if (r)
			stale[k++] = ch[c].name;
	}
	if (nfttab_drop_chains_refs(n, &b, &tab, stale, k, e) < 0 || nfttab_run(n, &b, e, "macspoofchk GC: ") < 0)
		goto out;
	rc = 0;
out:
	free(stale);
	free(el);
	free(ch);
	free(b.s);
	nft_unlock(lock);
	nft_close(n);
	return rc;
}

int spoofchk_check(const char *container_id, const char *ifname, const char *host_veth, const char *mac, struct cni_error *e)
{
	struct nft *n = NULL;
	struct chain_state st;
	char chain[CHAIN_LEN], t[64];
	int rc = -1, r;

	if (args_ok(container_id, ifname, host_veth, mac, e) < 0 || chain_name(container_id, ifname, chain, e) < 0)
		return -1;
	if (!host_veth || !mac)
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: the host veth and the MAC are required");
	if (nft_open(&n, e) < 0)
		return -1;
	if (nfttab_check(n, &tab, e) < 0)
		goto out;
	if ((r = chain_read(n, chain, &st, e)) <= 0) {
		if (!r)
			cni_check_fail(e, "macspoofchk: chain %s of container %s (%s) is missing from table " TABLE, chain,
				       container_id, ifname);
		goto out;
	}
	if (strcasecmp(st.mac, mac) != 0) {
		cni_check_fail(e, "macspoofchk: chain %s lets through MAC %s, the container has %s", chain,
			       st.mac[0] ? st.mac : "none", mac);
		goto out;
	}
	if (!st.drop) {
		cni_check_fail(e, "macspoofchk: chain %s has no drop rule", chain);
		goto out;
	}
	if ((r = element_target(n, host_veth, t, sizeof(t), e)) < 0)
		goto out;
	if (!r || strcmp(t, chain) != 0) {
		cni_check_fail(e, "macspoofchk: map ports of table " TABLE " sends %s %s%s, not to chain %s", host_veth,
			       r ? "to chain " : "nowhere", r ? t : "", chain);
		goto out;
	}
	rc = 0;
out:
	nft_close(n);
	return rc;
}
