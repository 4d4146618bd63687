/* cni-c-agent: the node agent of the cluster VXLAN overlay on etcd (docs/cluster.md). */
#ifndef AGENT_AGENT_H
#define AGENT_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "etcd.h"
#include "http.h"
#include "ip.h"
#include "nl.h"

#define AGENT_MAX_NETS 16
#define AGENT_CONF_DEFAULT "/etc/cni-c/agent.json"
#define RECONCILE_MS 10000
#define NO_BLOCK_RETRY_MS 3000

/* A live peer: a node key other than ours. */
struct peer {
	char name[128];
	struct ip underlay;
	uint8_t mac[6];
	bool has_mac;
};

struct anet {
	/* configuration */
	char name[64];
	struct ipnet subnet;
	int block_len;
	long long vni, port, mtu, grace;
	bool mtu_given, local_given;
	char underlay[16];
	struct ip local;
	/* derived */
	char vtep[16], bridge[16];
	char key_config[256], key_blocks[256], key_nodes[256], key_self[384];
	/* run time */
	struct ipnet block; /* prefix 0: none yet */
	long long block_mod_rev;
	long long lease;
	uint8_t mac[6]; /* the VTEP's, as published */
	struct peer *peers;
	size_t n_peers;
	bool synced; /* peers holds a full read: until then the FDB is left as it is */
	struct http_stream watch;
	int watch_ep; /* the endpoint the watch streams from */
	long long rev; /* last revision seen */
	bool up; /* joined and watching: etcd reachable */
	int backoff_ms;
	long long t_retry, t_keepalive, t_reconcile, t_lastseen; /* monotonic ms */
	bool dp_dirty; /* check the VTEP (a link event) */
	bool no_block; /* the subnet is full: logged once */
	bool state_done; /* the state files are written for this block */
	bool refused; /* its config in etcd differs: not served */
};

struct agent {
	struct etcd etcd;
	char node[128];
	char prefix[128];
	long long ttl;
	char state_dir[256], persist_dir[256];
	struct anet nets[AGENT_MAX_NETS];
	int n_nets;
	bool verbose, once;
	struct nlsock *nl;
};

/* config.c: read and check the file (errors name the field): 0, -1 with e filled. */
int agent_config_load(struct agent *a, const char *path, struct cni_error *e);

/* log.c */
void alog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void vlog(const struct agent *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* dp.c: the VTEP and its bridge. Resolve underlay/local/mtu (once, at start). */
int dp_resolve(struct agent *a, struct anet *n, struct cni_error *e);
/* Create or adopt VTEP + bridge; n->mac gets the VTEP's MAC. */
int dp_ensure(struct agent *a, struct anet *n, struct cni_error *e);
/* The gateway address of n's block on the bridge (that of block `old`, if another, removed). */
int dp_gateway(struct agent *a, struct anet *n, const struct ipnet *old, struct cni_error *e);
/* The VTEP's current MAC: 1 read, 0 VTEP missing, -1 error. */
int dp_vtep_mac(struct agent *a, const struct anet *n, uint8_t mac[6]);

/* fdb.c: the VTEP's FDB to the live peer set. */
int fdb_reconcile(struct agent *a, struct anet *n, struct cni_error *e);

/* state.c: node-local files. */
int state_write(const struct agent *a, const struct anet *n);
long long lease_load(const struct agent *a, const char *net);
/* The block of the persisted state file (<persistDir>/<net>.json) if it fits the config: 0, -1 none. */
int state_load_block(const struct agent *a, const struct anet *n, struct ipnet *block);
int lease_save(const struct agent *a, const struct anet *n);
void lease_remove(const struct agent *a, const char *net);

/* node.c: the network's keys in etcd. */
int node_config_check(struct agent *a, struct anet *n, struct cni_error *e);
int node_lease(struct agent *a, struct anet *n);
int node_block(struct agent *a, struct anet *n);
int node_publish(struct agent *a, struct anet *n, bool force);
int node_lastseen(struct agent *a, struct anet *n);
int node_leave(struct agent *a, const char *net);

/* sync.c: peers, the watch. */
int sync_full(struct agent *a, struct anet *n);
int sync_watch_event(struct agent *a, struct anet *n);
void sync_down(struct agent *a, struct anet *n, const char *why);
void peers_free(struct anet *n);

#endif
