/* The peer set of a network from etcd: a full read (range), then a watch from the read's revision
 * + 1; each change reconciles the FDB. While etcd is unreachable the last peer set stays. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"

void peers_free(struct anet *n)
{
	free(n->peers);
	n->peers = NULL;
	n->n_peers = 0;
}

/* A node key's value into p: 0, -1 malformed. */
static int peer_parse(const char *name, const char *value, struct peer *p)
{
	cJSON *j = cJSON_Parse(value);
	const cJSON *u = cJSON_GetObjectItemCaseSensitive(j, "underlay"), *m = cJSON_GetObjectItemCaseSensitive(j, "vtepMac");
	memset(p, 0, sizeof(*p));
	snprintf(p->name, sizeof(p->name), "%s", name);
	int r = cJSON_IsString(u) && ip_parse(u->valuestring, &p->underlay) == 0 ? 0 : -1;
	p->has_mac = cJSON_IsString(m) && cnl_mac_parse(m->valuestring, p->mac) == 0;
	cJSON_Delete(j);
	return r;
}

static void peer_del(struct anet *n, const char *name)
{
	for (size_t i = 0; i < n->n_peers; i++)
		if (strcmp(n->peers[i].name, name) == 0) {
			n->peers[i] = n->peers[--n->n_peers];
			return;
		}
}

static int peer_set(struct anet *n, const struct peer *p)
{
	peer_del(n, p->name);
	struct peer *v = realloc(n->peers, (n->n_peers + 1) * sizeof(*v));
	if (!v)
		return -1;
	n->peers = v;
	n->peers[n->n_peers++] = *p;
	return 0;
}

/* A node key's change: 1 when it is ours (deleted: republish), 0 otherwise. */
static int apply(struct agent *a, struct anet *n, const char *key, const char *value, bool del)
{
	const char *name = key + strlen(n->key_nodes);
	struct peer p;
	if (strncmp(key, n->key_nodes, strlen(n->key_nodes)) != 0 || !*name)
		return 0;
	if (strcmp(name, a->node) == 0)
		return del;
	if (del) {
		peer_del(n, name);
		vlog(a, "network %s: peer %s left", n->name, name);
	} else if (peer_parse(name, value, &p) == 0) {
		peer_set(n, &p);
		vlog(a, "network %s: peer %s at %s", n->name, name, value);
	}
	return 0;
}

static int read_peers(struct agent *a, struct anet *n)
{
	struct etcd_kv *kvs = NULL;
	size_t k = 0;
	if (etcd_range_prefix(&a->etcd, n->key_nodes, &kvs, &k, &n->rev) < 0)
		return -1;
	peers_free(n);
	for (size_t i = 0; i < k; i++) {
		apply(a, n, kvs[i].key, kvs[i].value, false);
		etcd_kv_free(&kvs[i]);
	}
	free(kvs);
	n->synced = true;
	return 0;
}

static int open_watch(struct agent *a, struct anet *n)
{
	char *body = etcd_watch_body(n->key_nodes, n->rev + 1);
	int r = -1;
	http_stream_close(&n->watch);
	for (int k = 0; body && k < a->etcd.n && r < 0; k++) {
		int i = (a->etcd.cur + k) % a->etcd.n;
		r = http_stream_open(&n->watch, &a->etcd.ep[i], "/v3/watch", body, a->etcd.timeout_ms);
		n->watch_ep = a->etcd.cur = i;
	}
	free(body);
	return r;
}

void sync_down(struct agent *a, struct anet *n, const char *why)
{
	long long now = mono_ms();
	http_stream_close(&n->watch);
	if (n->up || !n->backoff_ms)
		alog("network %s: etcd unreachable (%s): keeping the data plane, retrying", n->name, why);
	n->up = false;
	/* at most a third of the TTL apart: back within the lease's life once etcd is */
	int max = (int)(a->ttl * 1000 / 3 < 5000 ? a->ttl * 1000 / 3 : 5000);
	n->backoff_ms = n->backoff_ms ? n->backoff_ms * 2 : 250;
	if (n->backoff_ms > max)
		n->backoff_ms = max;
	n->t_retry = now + n->backoff_ms;
	vlog(a, "network %s: next try in %d ms", n->name, n->backoff_ms);
}

static void reconcile(struct agent *a, struct anet *n)
{
	struct cni_error e = { 0 };
	if (fdb_reconcile(a, n, &e) < 0)
		alog("network %s: fdb: %s", n->name, e.msg);
}

/* Join (or rejoin) through etcd: 0, -1 retry later, -2 no block yet, -3 fatal (e filled). */
int sync_full(struct agent *a, struct anet *n)
{
	struct cni_error e = { 0 };
	int r;
	if ((r = node_config_check(a, n, &e)) < 0) {
		if (r == -3)
			alog("%s", e.msg);
		return r;
	}
	struct ipnet old = n->block;
	if ((r = node_block(a, n)) == -1) /* the block first: no lease to waste while waiting for one */
		return -1;
	if (r == -2) {
		if (!n->no_block)
			alog("network %s: no free or reclaimable block in the subnet; retrying every %d s", n->name,
			     NO_BLOCK_RETRY_MS / 1000);
		n->no_block = true;
		return -2;
	}
	n->no_block = false;
	if (node_lease(a, n) < 0)
		return -1;
	if (!n->state_done || old.prefix != n->block.prefix || !ip_equal(&old.ip, &n->block.ip)) {
		if (dp_gateway(a, n, &old, &e) < 0)
			alog("network %s: gateway address: %s", n->name, e.msg);
		n->state_done = state_write(a, n) == 0;
	}
	if (node_publish(a, n, false) < 0 || read_peers(a, n) < 0)
		return -1;
	reconcile(a, n);
	if (!a->once && open_watch(a, n) < 0)
		return -1;
	long long now = mono_ms();
	n->up = true;
	n->backoff_ms = 0;
	n->t_keepalive = now + a->ttl * 1000 / 3;
	if (!n->t_lastseen)
		n->t_lastseen = now + 1000 * (n->grace / 10 < 3600 ? n->grace / 10 : 3600);
	alog("network %s: joined: block %s, %zu peers, watching from revision %lld", n->name,
	     ipnet_fmt(&n->block, (char[IPNET_STRLEN]){ 0 }), n->n_peers, n->rev + 1);
	return 0;
}

static int on_line(const char *line, void *arg)
{
	void **x = arg;
	struct agent *a = x[0];
	struct anet *n = x[1];
	cJSON *j = cJSON_Parse(line);
	const cJSON *res = cJSON_GetObjectItemCaseSensitive(j, "result"), *ev;
	int rc = 0;
	if (!res || cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(res, "canceled"))) {
		alog("network %s: watch ended: %.200s", n->name, line);
		cJSON_Delete(j);
		return -1;
	}
	long long rev = etcd_int(cJSON_GetObjectItemCaseSensitive(res, "header"), "revision", 0);
	cJSON_ArrayForEach (ev, cJSON_GetObjectItemCaseSensitive(res, "events")) {
		const cJSON *t = cJSON_GetObjectItemCaseSensitive(ev, "type");
		struct etcd_kv kv;
		if (etcd_kv_parse(cJSON_GetObjectItemCaseSensitive(ev, "kv"), &kv) < 0)
			continue;
		rc |= apply(a, n, kv.key, kv.value, cJSON_IsString(t) && strcmp(t->valuestring, "DELETE") == 0);
		etcd_kv_free(&kv);
		x[2] = (void *)1;
	}
	if (rev > n->rev)
		n->rev = rev;
	if (rc) { /* our node key went away under us (lease expired, deleted): put it back */
		alog("network %s: our node key was deleted: rejoining", n->name);
		if (node_lease(a, n) < 0 || node_block(a, n) < 0 || node_publish(a, n, true) < 0)
			rc = -1;
	}
	cJSON_Delete(j);
	return rc < 0 ? -1 : 0;
}

int sync_watch_event(struct agent *a, struct anet *n)
{
	void *x[3] = { a, n, NULL };
	int r = http_stream_read(&n->watch, on_line, x);
	if (x[2])
		reconcile(a, n);
	if (r < 0)
		sync_down(a, n, "watch stream closed");
	return r;
}
