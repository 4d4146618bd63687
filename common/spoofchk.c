/* macspoofchk: a chain per attachment in our bridge-family table, reached through a verdict
 * map keyed by the host veth, that lets through only the container's own source MAC. */
#include "spoofchk.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <linux/netfilter.h>

#include "nft.h"
#include "sha512.h"

#define TABLE_NAME "cni_c_spoof"
#define TABLE "bridge " TABLE_NAME
#define CHAIN_LEN 19 /* "s-" 16 hex NUL */

/* "s-<16 hex of sha512(containerID-ifname)>" */
static int chain_name(const char *cid, const char *ifname, char out[CHAIN_LEN], struct cni_error *e)
{
	char h[17];

	if (sha512_hexf(h, 16, "%s-%s", cid, ifname) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	snprintf(out, CHAIN_LEN, "s-%s", h);
	return 0;
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

/* The base chain's one rule, commented so one cheap read tells whether it is intact. */
#define BASE_RULE "iifname vmap @ports"
#define BASE_COMMENT "container ports: their MAC check chain"

/* 1 = table, map and base chain as we write them, 0 = not, -1 error. */
static int base_intact(struct nft *n, bool *chain_seen, struct cni_error *e)
{
	struct nft_rule_info *r = NULL;
	size_t cnt = 0;
	int rc = nft_get_rules(n, NFPROTO_BRIDGE, TABLE_NAME, "prerouting", &r, &cnt, e);
	bool ok = rc == 1 && cnt == 1 && strcmp(r[0].comment, BASE_COMMENT) == 0;

	free(r);
	if (chain_seen)
		*chain_seen = rc == 1;
	return rc < 0 ? -1 : ok;
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
	int rc = nft_get_rules(n, NFPROTO_BRIDGE, TABLE_NAME, chain, &r, &cnt, e);

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
	char key[16] = { 0 };
	memcpy(key, veth, strnlen(veth, sizeof(key)));
	return nft_get_map_elem(n, NFPROTO_BRIDGE, TABLE_NAME, "ports", key, sizeof(key), target, tlen, e);
}

/* ADD writes only what differs: a repeated ADD runs no batch, and a first ADD deletes
 * nothing (a batch that deletes costs an RCU grace period when the socket closes). */
int spoofchk_add(const char *container_id, const char *ifname, const char *host_veth, const char *mac,
		 struct cni_error *e)
{
	struct nft *n = NULL;
	struct chain_state st;
	char chain[CHAIN_LEN], cmds[3072], t[64], comment[129];
	int lock = -1, rc = -1, had, r;
	bool seen, same;
	size_t l = 0;

	if (args_ok(container_id, ifname, host_veth, mac, e) < 0 || chain_name(container_id, ifname, chain, e) < 0)
		return -1;
	if (!host_veth || !mac)
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: the host veth and the MAC are required");
	if ((lock = nft_lock(e)) < 0 || nft_open(&n, e) < 0)
		goto out;
#define ADD(...) (l += (size_t)snprintf(cmds + l, l < sizeof(cmds) ? sizeof(cmds) - l : 0, __VA_ARGS__))
	if ((r = base_intact(n, &seen, e)) < 0)
		goto out;
	if (!r) {
		ADD("add table " TABLE " { comment \"CNI macspoofchk (cni-c)\"; }\n"
		    "add map " TABLE " ports { type ifname : verdict; }\n"
		    "add chain " TABLE " prerouting { type filter hook prerouting priority -300; policy accept; }\n"
		    "%s"
		    "add rule " TABLE " prerouting " BASE_RULE " comment \"" BASE_COMMENT "\"\n",
		    seen ? "flush chain " TABLE " prerouting\n" : "");
	}
	if ((had = chain_read(n, chain, &st, e)) < 0)
		goto out;
	same = had && st.drop && strcmp(st.veth, host_veth) == 0 && strcasecmp(st.mac, mac) == 0;
	if ((r = element_target(n, host_veth, t, sizeof(t), e)) < 0)
		goto out;
	bool elem_ok = r && strcmp(t, chain) == 0;
	if (same && elem_ok && l == 0) {
		rc = 0;
		goto out;
	}
	/* The veth's element, whoever's: a veth name belongs to one attachment at a time. */
	if (r && !(same && elem_ok))
		ADD("delete element " TABLE " ports { \"%s\" }\n", host_veth);
	if (had && !same) {
		/* The element of the veth this chain was made for (renamed since?) must go first:
		 * the kernel refuses to delete a chain something jumps to. */
		if (st.veth[0] && strcmp(st.veth, host_veth) != 0 && ifname_ok(st.veth)) {
			if ((r = element_target(n, st.veth, t, sizeof(t), e)) < 0)
				goto out;
			if (r && strcmp(t, chain) == 0)
				ADD("delete element " TABLE " ports { \"%s\" }\n", st.veth);
		}
		ADD("flush chain " TABLE " %s\ndelete chain " TABLE " %s\n", chain, chain);
	}
	if (!same) {
		snprintf(comment, sizeof(comment), "macspoofchk if=%s id=%s", ifname, container_id);
		for (char *c = comment; *c; c++)
			if ((unsigned char)*c < 0x20 || (unsigned char)*c >= 0x7f || *c == '"' || *c == '\\')
				*c = '_';
		ADD("add chain " TABLE " %s { comment \"%s\"; }\n"
		    "add rule " TABLE " %s ether saddr %s return comment \"mac=%s\"\n"
		    "add rule " TABLE " %s drop comment \"veth=%s\"\n",
		    chain, comment, chain, mac, mac, chain, host_veth);
	}
	if (!(same && elem_ok))
		ADD("add element " TABLE " ports { \"%s\" : jump %s }\n", host_veth, chain);
#undef ADD
	if (l >= sizeof(cmds)) {
		cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: nft batch too long");
		goto out;
	}
	if (nft_run(n, cmds, e) < 0) {
		cni_err_prefix(e, "macspoofchk for %s: ", host_veth);
		goto out;
	}
	rc = 0;
out:
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

int spoofchk_del(const char *container_id, const char *ifname, struct cni_error *e)
{
	struct nft *n = NULL;
	struct chain_state st;
	char chain[CHAIN_LEN], t[64], cmds[512];
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
	cmds[0] = '\0';
	if (st.veth[0] && ifname_ok(st.veth)) {
		if ((r = element_target(n, st.veth, t, sizeof(t), e)) < 0)
			goto out;
		if (r && strcmp(t, chain) == 0)
			snprintf(cmds, sizeof(cmds), "delete element " TABLE " ports { \"%s\" }\n", st.veth);
	}
	size_t l = strlen(cmds);
	snprintf(cmds + l, sizeof(cmds) - l, "flush chain " TABLE " %s\ndelete chain " TABLE " %s\n", chain, chain);
	if (nft_run(n, cmds, e) < 0) {
		cni_err_prefix(e, "macspoofchk: removing %s: ", chain);
		goto out;
	}
	rc = 0;
out:
	nft_unlock(lock);
	nft_close(n);
	return rc;
}

int spoofchk_check(const char *container_id, const char *ifname, const char *host_veth, const char *mac,
		   struct cni_error *e)
{
	struct nft *n = NULL;
	struct chain_state st;
	char chain[CHAIN_LEN], t[64];
	int rc = -1, r;
	bool seen;

	if (args_ok(container_id, ifname, host_veth, mac, e) < 0 || chain_name(container_id, ifname, chain, e) < 0)
		return -1;
	if (!host_veth || !mac)
		return cni_errf(e, CNI_ERR_INTERNAL, "macspoofchk: the host veth and the MAC are required");
	if (nft_open(&n, e) < 0)
		return -1;
	if ((r = base_intact(n, &seen, e)) <= 0) {
		if (!r)
			cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: %s",
				 seen ? "chain prerouting of table " TABLE " was altered (want only \"" BASE_RULE "\")"
				      : "table " TABLE " or its chain prerouting is missing");
		goto out;
	}
	if ((r = chain_read(n, chain, &st, e)) <= 0) {
		if (!r)
			cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: chain %s of container %s (%s) is missing from table " TABLE,
				 chain, container_id, ifname);
		goto out;
	}
	if (strcasecmp(st.mac, mac) != 0) {
		cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: chain %s lets through MAC %s, the container has %s", chain,
			 st.mac[0] ? st.mac : "none", mac);
		goto out;
	}
	if (!st.drop) {
		cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: chain %s has no drop rule", chain);
		goto out;
	}
	if ((r = element_target(n, host_veth, t, sizeof(t), e)) < 0)
		goto out;
	if (!r || strcmp(t, chain) != 0) {
		cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: map ports of table " TABLE " sends %s %s%s, not to chain %s",
			 host_veth, r ? "to chain " : "nowhere", r ? t : "", chain);
		goto out;
	}
	rc = 0;
out:
	nft_close(n);
	return rc;
}
