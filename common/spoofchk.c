/* macspoofchk: a per-attachment chain in our bridge-family table, reached through a verdict map
 * keyed by the host veth, that lets through only the container's own source MAC. */
#include "spoofchk.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "nft.h"
#include "sha512.h"

#define TABLE "bridge cni_c_spoof"

static void chain_name(const char *cid, const char *ifname, char out[24])
{
	char buf[2048], h[17];
	snprintf(buf, sizeof(buf), "%s-%s", cid, ifname);
	sha512_hex(buf, strlen(buf), h, 16);
	snprintf(out, 24, "s-%s", h);
}

/* The host veth recorded in the chain's drop rule: 1 found, 0 chain absent. */
static int chain_veth(struct nft *n, const char *chain, char *veth, size_t len, char *mac, size_t mlen, struct cni_error *e)
{
	char cmd[96];
	cJSON *arr = NULL, *it;
	int r;
	snprintf(cmd, sizeof(cmd), "list chain " TABLE " %s", chain);
	if ((r = nft_list_json(n, cmd, &arr, e)) != 0)
		return r < 0 ? -1 : 0;
	veth[0] = mac[0] = '\0';
	cJSON_ArrayForEach(it, arr) {
		const cJSON *rule = cJSON_GetObjectItemCaseSensitive(it, "rule");
		const cJSON *c = rule ? cJSON_GetObjectItemCaseSensitive(rule, "comment") : NULL;
		if (!cJSON_IsString(c))
			continue;
		if (strncmp(c->valuestring, "veth=", 5) == 0)
			snprintf(veth, len, "%s", c->valuestring + 5);
		else if (strncmp(c->valuestring, "mac=", 4) == 0)
			snprintf(mac, mlen, "%s", c->valuestring + 4);
	}
	cJSON_Delete(arr);
	return 1;
}

static int element_target(struct nft *n, const char *veth, char *target, size_t tlen, struct cni_error *e)
{
	char cmd[128];
	const char *out, *p;
	snprintf(cmd, sizeof(cmd), "get element " TABLE " ports { \"%s\" }", veth);
	int r = nft_query(n, cmd, &out, e);
	if (r <= 0)
		return r;
	if (!out || !(p = strstr(out, "goto ")))
		return 0;
	p += 5;
	size_t l = strcspn(p, " }\n");
	if (l >= tlen)
		l = tlen - 1;
	memcpy(target, p, l);
	target[l] = '\0';
	return 1;
}

int spoofchk_add(const char *container_id, const char *ifname, const char *host_veth, const char *mac,
		 struct cni_error *e)
{
	struct nft *n = NULL;
	char chain[24], cmds[2048], t[64];
	int lock, rc = -1, r;
	chain_name(container_id, ifname, chain);
	if ((lock = nft_lock(e)) < 0)
		return -1;
	if (nft_open(&n, e) < 0)
		goto out;
	if ((r = element_target(n, host_veth, t, sizeof(t), e)) < 0)
		goto out;
	snprintf(cmds, sizeof(cmds),
		 "add table " TABLE "\n"
		 "add map " TABLE " ports { type ifname : verdict; }\n"
		 "add chain " TABLE " prerouting { type filter hook prerouting priority -300; policy accept; }\n"
		 "flush chain " TABLE " prerouting\n"
		 "add rule " TABLE " prerouting iifname vmap @ports\n"
		 "add chain " TABLE " %s { comment \"cni-c macspoofchk id=%.160s if=%s\"; }\n"
		 "flush chain " TABLE " %s\n"
		 "add rule " TABLE " %s ether saddr %s return comment \"mac=%s\"\n"
		 "add rule " TABLE " %s drop comment \"veth=%s\"\n"
		 "%s%s%s"
		 "add element " TABLE " ports { \"%s\" : goto %s }\n",
		 chain, container_id, ifname, chain, chain, mac, mac, chain, host_veth, r ? "delete element " TABLE " ports { \"" : "",
		 r ? host_veth : "", r ? "\" }\n" : "", host_veth, chain);
	rc = nft_run(n, cmds, e);
out:
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

int spoofchk_del(const char *container_id, const char *ifname, struct cni_error *e)
{
	struct nft *n = NULL;
	char chain[24], veth[64], mac[32], t[64], cmds[512];
	int lock, rc = -1, r;
	chain_name(container_id, ifname, chain);
	if ((lock = nft_lock(e)) < 0)
		return -1;
	if (nft_open(&n, e) < 0)
		goto out;
	if ((r = chain_veth(n, chain, veth, sizeof(veth), mac, sizeof(mac), e)) <= 0) {
		rc = r < 0 ? -1 : 0;
		goto out;
	}
	cmds[0] = '\0';
	if (veth[0] && (r = element_target(n, veth, t, sizeof(t), e)) > 0 && strcmp(t, chain) == 0)
		snprintf(cmds, sizeof(cmds), "delete element " TABLE " ports { \"%s\" }\n", veth);
	if (r < 0)
		goto out;
	size_t l = strlen(cmds);
	snprintf(cmds + l, sizeof(cmds) - l, "flush chain " TABLE " %s\ndelete chain " TABLE " %s\n", chain, chain);
	rc = nft_run(n, cmds, e);
out:
	nft_close(n);
	nft_unlock(lock);
	return rc;
}

int spoofchk_check(const char *container_id, const char *ifname, const char *host_veth, const char *mac,
		   struct cni_error *e)
{
	struct nft *n = NULL;
	char chain[24], veth[64], have[32], t[64];
	int rc = -1, r;
	chain_name(container_id, ifname, chain);
	if (nft_open(&n, e) < 0)
		return -1;
	if ((r = chain_veth(n, chain, veth, sizeof(veth), have, sizeof(have), e)) <= 0) {
		if (!r)
			cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: chain %s is missing from table " TABLE, chain);
		goto out;
	}
	if (strcasecmp(have, mac) != 0) {
		cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: chain %s allows MAC %s, the container has %s", chain, have, mac);
		goto out;
	}
	if ((r = element_target(n, host_veth, t, sizeof(t), e)) < 0)
		goto out;
	if (!r || strcmp(t, chain) != 0) {
		cni_errf(e, CNI_ERR_CHECK_FAILED, "macspoofchk: frames from %s do not go through chain %s", host_veth, chain);
		goto out;
	}
	rc = 0;
out:
	nft_close(n);
	return rc;
}
