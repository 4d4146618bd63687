/* This node's keys of a network in etcd: the network's config (create-if-absent, then compared),
 * the lease, the sticky block claim and the node key (docs/cluster.md "Keys in etcd").
 * Returns: 0 done, -1 etcd unreachable or failing (retry later), -2 no block to be had (retry in
 * a few seconds), -3 a fatal config conflict. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent.h"

static char *config_value(const struct anet *n)
{
	char sub[IPNET_STRLEN];
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "subnet", ipnet_fmt(&n->subnet, sub));
	cJSON_AddNumberToObject(j, "blockSize", n->block_len);
	cJSON_AddNumberToObject(j, "vni", (double)n->vni);
	cJSON_AddNumberToObject(j, "port", (double)n->port);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

/* The first field of ours that the stored config contradicts, or NULL. */
static const char *config_diff(const struct anet *n, const cJSON *have)
{
	char sub[IPNET_STRLEN];
	const cJSON *s = cJSON_GetObjectItemCaseSensitive(have, "subnet");
	if (!cJSON_IsString(s) || strcmp(s->valuestring, ipnet_fmt(&n->subnet, sub)) != 0)
		return "subnet";
	if (etcd_int(have, "blockSize", -1) != n->block_len)
		return "blockSize";
	if (etcd_int(have, "vni", -1) != n->vni)
		return "vni";
	if (etcd_int(have, "port", -1) != n->port)
		return "port";
	return NULL;
}

int node_config_check(struct agent *a, struct anet *n, struct cni_error *e)
{
	char *v = config_value(n);
	struct etcd_kv kv;
	int r = v ? etcd_put_if(&a->etcd, n->key_config, v, false, 0) : -1;
	free(v);
	if (r != 0)
		return r > 0 ? 0 : -1;
	if ((r = etcd_get(&a->etcd, n->key_config, &kv)) <= 0)
		return -1;
	cJSON *have = cJSON_Parse(kv.value);
	const char *f = config_diff(n, have);
	int idx = (int)(n - a->nets);
	if (f)
		cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"networks[%d].%s\": network %s in etcd (%s) was set up with %s; refusing to join it",
			idx, f, n->name, n->key_config, kv.value);
	cJSON_Delete(have);
	etcd_kv_free(&kv);
	return f ? -3 : 0;
}

int node_lease(struct agent *a, struct anet *n)
{
	long long ttl;
	if (!n->lease)
		n->lease = lease_load(a, n->name);
	if (n->lease) {
		int r = etcd_lease_keepalive(&a->etcd, n->lease, &ttl);
		if (r < 0)
			return -1;
		if (r > 0 && ttl == a->ttl)
			return 0;
		if (r > 0) /* leaseTTL changed: a lease of the new TTL; the node key moves to it */
			alog("network %s: lease %llx has TTL %lld, the config says %lld: granting a new one", n->name,
			     (unsigned long long)n->lease, ttl, a->ttl);
		else
			alog("network %s: lease %llx is gone: granting a new one", n->name, (unsigned long long)n->lease);
	}
	if (etcd_lease_grant(&a->etcd, a->ttl, &n->lease) < 0)
		return -1;
	vlog(a, "network %s: lease %llx granted (TTL %lld s)", n->name, (unsigned long long)n->lease, a->ttl);
	lease_save(a, n);
	return 0;
}

static char *block_value(const struct agent *a)
{
	char buf[256];
	snprintf(buf, sizeof(buf), "{\"node\":\"%s\",\"lastSeen\":%lld}", a->node, (long long)time(NULL));
	return strdup(buf);
}

static void block_key(const struct anet *n, const struct ipnet *b, char *key, size_t len)
{
	char ip[IP_STRLEN];
	snprintf(key, len, "%s%s-%d", n->key_blocks, ip_fmt(&b->ip, ip), b->prefix);
}

/* The i-th block of the subnet. */
static struct ipnet block_nth(const struct anet *n, unsigned long i)
{
	struct ipnet b = { ipnet_network(&n->subnet), n->block_len };
	int shift = n->subnet.ip.len * 8 - n->block_len; /* < 64: config.c checks it */
	b.ip = ip_add(&b.ip, ((uint64_t)1 << shift) * i);
	return b;
}

static const struct etcd_kv *find_kv(const struct etcd_kv *kvs, size_t k, const char *key)
{
	for (size_t i = 0; i < k; i++)
		if (strcmp(kvs[i].key, key) == 0)
			return &kvs[i];
	return NULL;
}

static bool owner_is(const struct etcd_kv *kv, const char *node, long long *last_seen)
{
	cJSON *j = cJSON_Parse(kv->value);
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "node");
	bool r = cJSON_IsString(o) && strcmp(o->valuestring, node) == 0;
	if (last_seen)
		*last_seen = etcd_int(j, "lastSeen", 0);
	cJSON_Delete(j);
	return r;
}

static char *owner_of(const struct etcd_kv *kv)
{
	cJSON *j = cJSON_Parse(kv->value);
	const cJSON *o = cJSON_GetObjectItemCaseSensitive(j, "node");
	char *r = strdup(cJSON_IsString(o) ? o->valuestring : "");
	cJSON_Delete(j);
	return r;
}

/* A block whose owner's node key is gone and whose lastSeen is older than graceSeconds. */
static int reclaimable(struct agent *a, struct anet *n, const struct etcd_kv *kv)
{
	long long seen;
	struct etcd_kv nk;
	char key[512], *owner = owner_of(kv);
	owner_is(kv, "", &seen);
	if (!owner)
		return -1;
	snprintf(key, sizeof(key), "%s%s", n->key_nodes, owner);
	free(owner);
	if ((long long)time(NULL) - seen < n->grace)
		return 0;
	int r = etcd_get(&a->etcd, key, &nk);
	if (r > 0)
		etcd_kv_free(&nk);
	return r < 0 ? -1 : r == 0;
}

static int take(struct agent *a, struct anet *n, const struct ipnet *b, bool by_mod, long long rev)
{
	char key[512], *v = block_value(a);
	block_key(n, b, key, sizeof(key));
	int r = v ? etcd_put_if(&a->etcd, key, v, by_mod, rev) : -1;
	free(v);
	if (r == 0)
		return 2;
	if (r > 0) {
		char s[IPNET_STRLEN];
		n->block = *b;
		alog("network %s: claimed block %s%s", n->name, ipnet_fmt(b, s), by_mod ? " (reclaimed)" : "");
	}
	return r < 0 ? -1 : 1;
}

/* Which free block a node takes after losing races for the lowest one: one of the lowest 8 << tries
 * free blocks, by a hash of its name. Many nodes joining at once spread over a few low blocks
 * instead of all racing for the next-lowest, and the blocks taken stay packed at the start. */
static unsigned long spread(const char *node, int tries, unsigned long nfree)
{
	uint32_t h = 2166136261u;
	unsigned long w = 8UL << (tries < 16 ? tries : 16);
	for (const char *p = node; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	h ^= (uint32_t)tries * 2654435761u;
	return tries ? (unsigned long)h % (nfree < w ? nfree : w) : 0;
}

static int block_pass(struct agent *a, struct anet *n, const struct etcd_kv *kvs, size_t k, int tries)
{
	unsigned long count = 1UL << (n->block_len - n->subnet.prefix);
	unsigned long pick = spread(a->node, tries, count > k ? count - k : 1), seen = 0;
	char key[512];
	for (size_t i = 0; i < k; i++) /* sticky: the one that names us */
		if (owner_is(&kvs[i], a->node, NULL)) {
			const char *s = kvs[i].key + strlen(n->key_blocks);
			char ip[IP_STRLEN + 8];
			snprintf(ip, sizeof(ip), "%s", s);
			char *dash = strrchr(ip, '-');
			if (dash)
				*dash = '/';
			if (ipnet_parse(ip, &n->block) == 0)
				return 1;
		}
	for (int pass = 0; pass < 2; pass++) /* the pick-th free block, else the lowest free one */
		for (unsigned long i = 0; i < count; i++) {
			struct ipnet b = block_nth(n, i);
			block_key(n, &b, key, sizeof(key));
			if (!find_kv(kvs, k, key) && (pass || seen++ == pick))
				return take(a, n, &b, false, 0);
		}
	for (unsigned long i = 0; i < count; i++) {
		struct ipnet b = block_nth(n, i);
		block_key(n, &b, key, sizeof(key));
		const struct etcd_kv *kv = find_kv(kvs, k, key);
		int r = kv ? reclaimable(a, n, kv) : 0;
		if (r != 0)
			return r < 0 ? -1 : take(a, n, &b, true, kv->mod_rev);
	}
	return 0;
}

int node_block(struct agent *a, struct anet *n)
{
	for (int tries = 0; tries < 8; tries++) {
		struct etcd_kv *kvs = NULL;
		size_t k = 0;
		long long rev;
		if (etcd_range_prefix(&a->etcd, n->key_blocks, &kvs, &k, &rev) < 0)
			return -1;
		int r = block_pass(a, n, kvs, k, tries);
		for (size_t i = 0; i < k; i++)
			etcd_kv_free(&kvs[i]);
		free(kvs);
		if (r != 2) /* 2: another node was faster: read again */
			return r == 1 ? 0 : r == 0 ? -2 : -1;
	}
	return -1;
}

static char *node_value(const struct anet *n)
{
	char ul[IP_STRLEN], mac[18], blk[IPNET_STRLEN];
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "underlay", ip_fmt(&n->local, ul));
	cJSON_AddStringToObject(j, "vtepMac", cnl_mac_fmt(n->mac, mac));
	cJSON_AddStringToObject(j, "block", ipnet_fmt(&n->block, blk));
	cJSON_AddNumberToObject(j, "vni", (double)n->vni);
	cJSON_AddNumberToObject(j, "port", (double)n->port);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return s;
}

int node_publish(struct agent *a, struct anet *n, bool force)
{
	char *v = node_value(n);
	struct etcd_kv kv;
	int r;
	if (!v)
		return -1;
	if (!force && (r = etcd_get(&a->etcd, n->key_self, &kv)) != 0) {
		bool same = r > 0 && kv.lease == n->lease && strcmp(kv.value, v) == 0;
		if (r > 0)
			etcd_kv_free(&kv);
		if (r < 0 || same) {
			free(v);
			return r < 0 ? -1 : 0;
		}
	}
	r = etcd_put(&a->etcd, n->key_self, v, n->lease);
	if (r == 0)
		alog("network %s: published %s %s", n->name, n->key_self, v);
	free(v);
	return r < 0 ? -1 : 0;
}

int node_lastseen(struct agent *a, struct anet *n)
{
	char key[512];
	struct etcd_kv kv = { 0 };
	block_key(n, &n->block, key, sizeof(key));
	int r = etcd_get(&a->etcd, key, &kv);
	if (r < 0)
		return -1;
	if (r > 0 && owner_is(&kv, a->node, NULL)) {
		char *v = block_value(a);
		r = v ? etcd_put_if(&a->etcd, key, v, true, kv.mod_rev) : -1;
		free(v);
		vlog(a, "network %s: block lastSeen refreshed", n->name);
	} else {
		alog("network %s: block %s is no longer ours", n->name, key);
		n->block.prefix = 0;
		r = -1;
	}
	etcd_kv_free(&kv);
	return r < 0 ? -1 : 0;
}

int node_leave(struct agent *a, const char *net)
{
	char key[512];
	long long lease = lease_load(a, net);
	snprintf(key, sizeof(key), "%s/%s/nodes/%s", a->prefix, net, a->node);
	if (lease && etcd_lease_revoke(&a->etcd, lease) == -1)
		return -1;
	if (etcd_delete(&a->etcd, key) < 0)
		return -1;
	lease_remove(a, net);
	alog("network %s: left (lease revoked, %s deleted; the block stays claimed)", net, key);
	return 0;
}
