/* SNAT for container addresses: our nftables table with a verdict map per family (O(1) per
 * packet and per operation), or the reference plugin's iptables chains, byte for byte. */
#include "masq.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "nft.h"
#include "sha512.h"

#define TABLE "inet cni_c_masq"
#define REF_TABLE "inet cni_plugins_masquerade"
#define CMD_MAX 16384

extern char **environ;

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

/* ---- names ---- */

static void hash16(const char *s, char out[17])
{
	sha512_hex(s, strlen(s), out, 16);
}

static void net_hash(const char *network, char out[17])
{
	hash16(network, out);
}

static void att_hash(const struct masq_id *id, char out[17])
{
	char buf[2048];
	snprintf(buf, sizeof(buf), "%s:%s", id->ifname, id->container_id);
	hash16(buf, out);
}

/* "a-<net>-<attachment>" */
static void chain_name(const struct masq_id *id, char out[40])
{
	char n[17], a[17];
	net_hash(id->network, n);
	att_hash(id, a);
	snprintf(out, 40, "a-%s-%s", n, a);
}

/* ---- nftables backend ---- */

struct buf {
	char s[CMD_MAX];
	size_t n;
};

static void add(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	if (b->n >= sizeof(b->s))
		return;
	va_start(ap, fmt);
	int w = vsnprintf(b->s + b->n, sizeof(b->s) - b->n, fmt, ap);
	va_end(ap);
	if (w > 0)
		b->n += (size_t)w;
}

/* Addresses recorded in an attachment chain (one rule per address, commented with it). */
static int chain_ips(struct nft *n, const char *chain, struct ip *ips, size_t max, size_t *cnt, struct cni_error *e)
{
	char cmd[128];
	cJSON *arr = NULL, *it;
	int r;
	*cnt = 0;
	snprintf(cmd, sizeof(cmd), "list chain " TABLE " %s", chain);
	if ((r = nft_list_json(n, cmd, &arr, e)) != 0)
		return r < 0 ? -1 : 0;
	cJSON_ArrayForEach(it, arr) {
		const cJSON *rule = cJSON_GetObjectItemCaseSensitive(it, "rule");
		const cJSON *c = rule ? cJSON_GetObjectItemCaseSensitive(rule, "comment") : NULL;
		if (cJSON_IsString(c) && *cnt < max && ip_parse(c->valuestring, &ips[*cnt]) == 0)
			(*cnt)++;
	}
	cJSON_Delete(arr);
	return 1;
}

/* The chain an address's map element jumps to: 1 found (into target), 0 absent. */
static int element_target(struct nft *n, const struct ip *ip, char *target, size_t tlen, struct cni_error *e)
{
	char cmd[160], a[IP_STRLEN];
	const char *out, *p;
	snprintf(cmd, sizeof(cmd), "get element " TABLE " %s { %s }", ip_is_v4(ip) ? "masq4" : "masq6", ip_fmt(ip, a));
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

/* Batch the removal of an attachment chain and the map elements that still point to it. */
static int del_chain_cmds(struct nft *n, const char *chain, struct buf *b, struct cni_error *e)
{
	struct ip ips[16];
	size_t cnt;
	int r = chain_ips(n, chain, ips, 16, &cnt, e);
	if (r <= 0)
		return r;
	for (size_t i = 0; i < cnt; i++) {
		char t[64], a[IP_STRLEN];
		if ((r = element_target(n, &ips[i], t, sizeof(t), e)) < 0)
			return -1;
		if (r && strcmp(t, chain) == 0)
			add(b, "delete element " TABLE " %s { %s }\n", ip_is_v4(&ips[i]) ? "masq4" : "masq6", ip_fmt(&ips[i], a));
	}
	add(b, "flush chain " TABLE " %s\ndelete chain " TABLE " %s\n", chain, chain);
	return 1;
}

static int nft_add(const struct masq_id *id, const struct ipnet *ips, size_t cnt, struct cni_error *e)
{
	struct nft *n = NULL;
	struct buf *b = calloc(1, sizeof(*b));
	char chain[40], a[IP_STRLEN], net[IPNET_STRLEN];
	int lock = -1, rc = -1;
	if (!b)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	chain_name(id, chain);
	if ((lock = nft_lock(e)) < 0 || nft_open(&n, e) < 0)
		goto out;
	/* What this attachment had before (an ADD repeated): elements of addresses it no longer has. */
	struct ip old[16];
	size_t n_old = 0;
	if (chain_ips(n, chain, old, 16, &n_old, e) < 0)
		goto out;
	add(b, "add table " TABLE "\n"
	       "add chain " TABLE " postrouting { type nat hook postrouting priority srcnat; policy accept; }\n"
	       "add map " TABLE " masq4 { type ipv4_addr : verdict; }\n"
	       "add map " TABLE " masq6 { type ipv6_addr : verdict; }\n"
	       "flush chain " TABLE " postrouting\n"
	       "add rule " TABLE " postrouting ip daddr 224.0.0.0/4 return\n"
	       "add rule " TABLE " postrouting ip6 daddr ff00::/8 return\n"
	       "add rule " TABLE " postrouting ip saddr vmap @masq4\n"
	       "add rule " TABLE " postrouting ip6 saddr vmap @masq6\n");
	add(b, "add chain " TABLE " %s { comment \"cni-c masq net=%s if=%s id=%.160s\"; }\nflush chain " TABLE " %s\n", chain,
	    id->network, id->ifname, id->container_id, chain);
	for (size_t i = 0; i < cnt; i++) {
		struct ipnet sub = { ipnet_network(&ips[i]), ips[i].prefix };
		add(b, "add rule " TABLE " %s %s daddr != %s masquerade comment \"%s\"\n", chain, ip_is_v4(&ips[i].ip) ? "ip" : "ip6",
		    ipnet_fmt(&sub, net), ip_fmt(&ips[i].ip, a));
	}
	for (size_t i = 0; i < n_old + cnt; i++) {
		const struct ip *ip = i < n_old ? &old[i] : &ips[i - n_old].ip;
		char t[64];
		int r = element_target(n, ip, t, sizeof(t), e);
		if (r < 0)
			goto out;
		/* An element of another attachment for this address is stale: host-local gave the
		 * address to this container, so the old one is gone. */
		if (r)
			add(b, "delete element " TABLE " %s { %s }\n", ip_is_v4(ip) ? "masq4" : "masq6", ip_fmt(ip, a));
	}
	for (size_t i = 0; i < cnt; i++)
		add(b, "add element " TABLE " %s { %s : goto %s }\n", ip_is_v4(&ips[i].ip) ? "masq4" : "masq6",
		    ip_fmt(&ips[i].ip, a), chain);
	if (b->n >= sizeof(b->s)) {
		cni_errf(e, CNI_ERR_INTERNAL, "nftables batch too large");
		goto out;
	}
	rc = nft_run(n, b->s, e);
out:
	nft_close(n);
	nft_unlock(lock);
	free(b);
	return rc;
}

/* ---- iptables backend (the reference's layout) ---- */

/* Run argv; stdout into *out (may be NULL). Returns the exit status, -1 when it cannot run. */
static int run_cmd(char *const argv[], char **out)
{
	int p[2] = { -1, -1 }, devnull = open("/dev/null", O_WRONLY | O_CLOEXEC), st = 0;
	posix_spawn_file_actions_t fa;
	pid_t pid;
	if (out)
		*out = NULL;
	if (pipe2(p, O_CLOEXEC) < 0) {
		if (devnull >= 0)
			close(devnull);
		return -1;
	}
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	if (devnull >= 0)
		posix_spawn_file_actions_adddup2(&fa, devnull, 2);
	int se = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	if (devnull >= 0)
		close(devnull);
	if (se) {
		close(p[0]);
		return -1;
	}
	size_t cap = 4096, n = 0;
	char *b = malloc(cap);
	for (;;) {
		if (b && n + 1 >= cap) {
			char *nb = realloc(b, cap *= 2);
			if (!nb) {
				free(b);
				b = NULL;
			} else
				b = nb;
		}
		char tmp[4096];
		ssize_t r = read(p[0], b ? b + n : tmp, b ? cap - n - 1 : sizeof(tmp));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		if (b)
			n += (size_t)r;
	}
	close(p[0]);
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	if (b)
		b[n] = '\0';
	if (out)
		*out = b;
	else
		free(b);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void ipt_names(const struct masq_id *id, char chain[29], char comment[512])
{
	char buf[2048], hex[25];
	snprintf(buf, sizeof(buf), "%s%s", id->network, id->container_id);
	sha512_hex(buf, strlen(buf), hex, 24);
	snprintf(chain, 29, "CNI-%s", hex);
	snprintf(comment, 512, "name: \"%s\" id: \"%s\"", id->network, id->container_id);
}

static int ipt_add(const struct masq_id *id, const struct ipnet *ips, size_t cnt, struct cni_error *e)
{
	char chain[29], comment[512], a[IPNET_STRLEN], src[IP_STRLEN];
	for (size_t i = 0; i < cnt; i++) {
		bool v4 = ip_is_v4(&ips[i].ip);
		char *tool = v4 ? "iptables" : "ip6tables";
		char *mcast = v4 ? "224.0.0.0/4" : "ff00::/8";
		ipt_names(id, chain, comment);
		ipnet_fmt(&ips[i], a);
		ip_fmt(&ips[i].ip, src);
		char *newc[] = { tool, "-w", "-t", "nat", "-N", chain, NULL };
		char *hasc[] = { tool, "-w", "-t", "nat", "-S", chain, NULL };
		if (run_cmd(hasc, NULL) != 0 && run_cmd(newc, NULL) != 0)
			return cni_errf(e, CNI_ERR_KERNEL, "iptables backend: cannot create chain %s in nat (is %s installed?)", chain, tool);
		char *rules[3][16] = {
			{ tool, "-w", "-t", "nat", "-X", chain, "-d", a, "-j", "ACCEPT", "-m", "comment", "--comment", comment, NULL },
			{ tool, "-w", "-t", "nat", "-X", chain, "!", "-d", mcast, "-j", "MASQUERADE", "-m", "comment", "--comment", comment, NULL },
			{ tool, "-w", "-t", "nat", "-X", "POSTROUTING", "-s", src, "-j", chain, "-m", "comment", "--comment", comment, NULL },
		};
		for (int k = 0; k < 3; k++) {
			rules[k][4] = "-C"; /* append only when absent, as AppendUnique */
			if (run_cmd(rules[k], NULL) == 0)
				continue;
			rules[k][4] = "-A";
			if (run_cmd(rules[k], NULL) != 0)
				return cni_errf(e, CNI_ERR_KERNEL, "iptables backend: adding a rule to %s failed", rules[k][5]);
		}
	}
	return 0;
}

/* Does an iptables chain exist? Asked of nf_tables first (iptables-nft keeps its chains there)
 * so that a DEL on a host without any of them execs nothing. */
static bool legacy_nat(bool v4)
{
	char buf[256];
	int fd = open(v4 ? "/proc/net/ip_tables_names" : "/proc/net/ip6_tables_names", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
	if (fd >= 0)
		close(fd);
	if (r <= 0)
		return false;
	buf[r] = '\0';
	return strstr(buf, "nat") != NULL;
}

static int ipt_del_family(bool v4, char *chain, struct nft *n, struct cni_error *e)
{
	char *tool = v4 ? "iptables" : "ip6tables";
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "list chain %s nat %s", v4 ? "ip" : "ip6", chain);
	if (!legacy_nat(v4)) {
		const char *out;
		struct cni_error ig = { 0 };
		if (!n || nft_query(n, cmd, &out, &ig) != 1)
			return 0;
	}
	char *hasc[] = { tool, "-w", "-t", "nat", "-S", chain, NULL };
	if (run_cmd(hasc, NULL) != 0)
		return 0;
	/* POSTROUTING jumps to the chain, deleted by number from the last so numbers hold. */
	char *list[] = { tool, "-w", "-t", "nat", "-L", "POSTROUTING", "-n", "--line-numbers", NULL }, *out = NULL;
	if (run_cmd(list, &out) == 0 && out) {
		int nums[256], k = 0;
		for (char *save = NULL, *line = strtok_r(out, "\n", &save); line && k < 256; line = strtok_r(NULL, "\n", &save)) {
			int num;
			char target[64];
			if (sscanf(line, "%d %63s", &num, target) == 2 && strcmp(target, chain) == 0)
				nums[k++] = num;
		}
		for (int i = k - 1; i >= 0; i--) {
			char nb[16];
			snprintf(nb, sizeof(nb), "%d", nums[i]);
			char *d[] = { tool, "-w", "-t", "nat", "-D", "POSTROUTING", nb, NULL };
			run_cmd(d, NULL);
		}
	}
	free(out);
	char *flush[] = { tool, "-w", "-t", "nat", "-F", chain, NULL };
	char *delc[] = { tool, "-w", "-t", "nat", "-X", chain, NULL };
	run_cmd(flush, NULL);
	if (run_cmd(delc, NULL) != 0)
		return cni_errf(e, CNI_ERR_KERNEL, "iptables backend: cannot delete chain %s", chain);
	return 0;
}

/* ---- API ---- */

int masq_add(enum masq_backend b, const struct masq_id *id, const struct ipnet *ips, size_t n, struct cni_error *e)
{
	return b == MASQ_IPTABLES ? ipt_add(id, ips, n, e) : nft_add(id, ips, n, e);
}

/* The reference plugin's nftables rules for this attachment (a container it attached before
 * the node switched to us): comment prefix <sha(network)[:16]>-<sha(ifname:id)[:16]>. */
static int ref_nft_cmds(struct nft *n, const struct masq_id *id, struct buf *b, struct cni_error *e)
{
	char pre[40], nh[17], ah[17];
	cJSON *arr = NULL, *it;
	int r;
	net_hash(id->network, nh);
	att_hash(id, ah);
	snprintf(pre, sizeof(pre), "%s-%s", nh, ah);
	if ((r = nft_list_json(n, "list chain " REF_TABLE " masq_checks", &arr, e)) != 0)
		return r < 0 ? -1 : 0;
	cJSON_ArrayForEach(it, arr) {
		const cJSON *rule = cJSON_GetObjectItemCaseSensitive(it, "rule");
		const cJSON *c = rule ? cJSON_GetObjectItemCaseSensitive(rule, "comment") : NULL;
		const cJSON *h = rule ? cJSON_GetObjectItemCaseSensitive(rule, "handle") : NULL;
		if (cJSON_IsString(c) && cJSON_IsNumber(h) && strncmp(c->valuestring, pre, strlen(pre)) == 0)
			add(b, "delete rule " REF_TABLE " masq_checks handle %d\n", h->valueint);
	}
	cJSON_Delete(arr);
	return 0;
}

int masq_del(const struct masq_id *id, struct cni_error *e)
{
	struct nft *n = NULL;
	struct buf *b = calloc(1, sizeof(*b));
	char chain[40], ichain[29], comment[512];
	int lock = -1, rc = -1;
	if (!b)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	chain_name(id, chain);
	if ((lock = nft_lock(e)) < 0)
		goto out;
	if (nft_open(&n, e) < 0) {
		/* no nftables here: nothing of ours can exist; iptables may still hold the reference's */
		cni_err_clear(e);
		n = NULL;
	}
	if (n && (del_chain_cmds(n, chain, b, e) < 0 || ref_nft_cmds(n, id, b, e) < 0))
		goto out;
	if (n && b->n && nft_run(n, b->s, e) < 0)
		goto out;
	ipt_names(id, ichain, comment);
	if (ipt_del_family(true, ichain, n, e) < 0 || ipt_del_family(false, ichain, n, e) < 0)
		goto out;
	rc = 0;
out:
	nft_close(n);
	nft_unlock(lock);
	free(b);
	return rc;
}

int masq_check(enum masq_backend bk, const struct masq_id *id, const struct ipnet *ips, size_t cnt, struct cni_error *e)
{
	char a[IP_STRLEN];
	if (bk == MASQ_IPTABLES) {
		char chain[29], comment[512];
		ipt_names(id, chain, comment);
		for (size_t i = 0; i < cnt; i++) {
			char *tool = ip_is_v4(&ips[i].ip) ? "iptables" : "ip6tables";
			char *c[] = { tool, "-w", "-t", "nat", "-C", "POSTROUTING", "-s", (char *)ip_fmt(&ips[i].ip, a), "-j", chain,
				      "-m", "comment", "--comment", comment, NULL };
			if (run_cmd(c, NULL) != 0)
				return cni_errf(e, CNI_ERR_CHECK_FAILED, "SNAT: no %s POSTROUTING rule sending %s to chain %s", tool, a, chain);
		}
		return 0;
	}
	struct nft *n = NULL;
	char chain[40], t[64];
	struct ip have[16];
	size_t n_have = 0;
	int rc = -1, r;
	chain_name(id, chain);
	if (nft_open(&n, e) < 0)
		return -1;
	if ((r = chain_ips(n, chain, have, 16, &n_have, e)) <= 0) {
		if (!r)
			cni_errf(e, CNI_ERR_CHECK_FAILED, "SNAT: chain %s is missing from table " TABLE, chain);
		goto out;
	}
	for (size_t i = 0; i < cnt; i++) {
		bool found = false;
		for (size_t k = 0; k < n_have; k++)
			found |= ip_equal(&have[k], &ips[i].ip);
		if (!found) {
			cni_errf(e, CNI_ERR_CHECK_FAILED, "SNAT: chain %s has no rule for %s", chain, ip_fmt(&ips[i].ip, a));
			goto out;
		}
		if ((r = element_target(n, &ips[i].ip, t, sizeof(t), e)) < 0)
			goto out;
		if (!r || strcmp(t, chain) != 0) {
			cni_errf(e, CNI_ERR_CHECK_FAILED, "SNAT: %s is not mapped to chain %s in table " TABLE, ip_fmt(&ips[i].ip, a), chain);
			goto out;
		}
	}
	rc = 0;
out:
	nft_close(n);
	return rc;
}

int masq_gc(const char *network, const struct cni_attachment *valid, size_t n_valid, struct cni_error *e)
{
	struct nft *n = NULL;
	struct buf *b = calloc(1, sizeof(*b));
	cJSON *arr = NULL, *it;
	char nh[17], pre[24];
	int lock = -1, rc = -1, r;
	if (!b)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	net_hash(network, nh);
	snprintf(pre, sizeof(pre), "a-%s-", nh);
	if ((lock = nft_lock(e)) < 0 || nft_open(&n, e) < 0)
		goto out;
	if ((r = nft_list_json(n, "list chains inet", &arr, e)) < 0)
		goto out;
	cJSON_ArrayForEach(it, arr) {
		const cJSON *ch = cJSON_GetObjectItemCaseSensitive(it, "chain");
		const cJSON *tb = ch ? cJSON_GetObjectItemCaseSensitive(ch, "table") : NULL;
		const cJSON *nm = ch ? cJSON_GetObjectItemCaseSensitive(ch, "name") : NULL;
		bool keep = false;
		if (!cJSON_IsString(tb) || strcmp(tb->valuestring, "cni_c_masq") != 0 || !cJSON_IsString(nm) ||
		    strncmp(nm->valuestring, pre, strlen(pre)) != 0)
			continue;
		for (size_t i = 0; i < n_valid && !keep; i++) {
			struct masq_id id = { network, valid[i].container_id, valid[i].ifname };
			char want[40];
			chain_name(&id, want);
			keep = strcmp(want, nm->valuestring) == 0;
		}
		if (!keep && del_chain_cmds(n, nm->valuestring, b, e) < 0)
			goto out;
	}
	if (b->n && nft_run(n, b->s, e) < 0)
		goto out;
	rc = 0;
out:
	cJSON_Delete(arr);
	nft_close(n);
	nft_unlock(lock);
	free(b);
	return rc;
}

int masq_available(enum masq_backend b, struct cni_error *e)
{
	if (b == MASQ_IPTABLES) {
		char *v[] = { "iptables", "-w", "-t", "nat", "-S", "POSTROUTING", NULL };
		if (run_cmd(v, NULL) != 0)
			return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "SNAT backend iptables: \"iptables -t nat\" does not work here");
		return 0;
	}
	struct nft *n = NULL;
	const char *out;
	if (nft_open(&n, e) < 0)
		return -1;
	int r = nft_query(n, "list table " TABLE, &out, e);
	nft_close(n);
	if (r < 0) {
		cni_errf_force(e, CNI_ERR_NOT_AVAILABLE, "SNAT backend nftables does not work here: %s", e->msg);
		return -1;
	}
	return 0;
}
