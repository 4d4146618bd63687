/* etcd v3 through its JSON gateway (http.h): several endpoints tried in turn, keys and values
 * base64, int64 fields as strings. */
#ifndef AGENT_ETCD_H
#define AGENT_ETCD_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "http.h"

#define ETCD_MAX_EP 16

struct etcd {
	struct http_ep ep[ETCD_MAX_EP];
	int n, cur; /* endpoints; the one that last answered */
	int timeout_ms;
	char err[256]; /* the last failure */
};

struct etcd_kv {
	char *key, *value; /* decoded, NUL-terminated */
	long long create_rev, mod_rev, lease;
};

/* POST req (consumed) to path; *resp the parsed answer. 0 ok; -1 no endpoint answered
 * (unreachable); -2 etcd answered with an error (c->err). */
int etcd_call(struct etcd *c, const char *path, cJSON *req, cJSON **resp);

/* An int64 field (string or number) of obj; def when absent. */
long long etcd_int(const cJSON *obj, const char *key, long long def);
/* base64 of n bytes (malloc'd); decode into malloc'd NUL-terminated text (NULL: malformed). */
char *etcd_b64(const char *s, size_t n);
char *etcd_unb64(const char *s, size_t *n);
/* "<prefix>" → the range_end of a prefix read, base64 (malloc'd). */
char *etcd_prefix_end_b64(const char *prefix);

/* A kv object of a response into out (free with etcd_kv_free): 0, -1 malformed. */
int etcd_kv_parse(const cJSON *j, struct etcd_kv *out);
void etcd_kv_free(struct etcd_kv *kv);

/* Every key under prefix: kvs[] (caller frees each and the array), the read's revision. */
int etcd_range_prefix(struct etcd *c, const char *prefix, struct etcd_kv **kvs, size_t *n, long long *rev);
/* One key: 1 found (*kv filled), 0 absent, <0 as etcd_call. */
int etcd_get(struct etcd *c, const char *key, struct etcd_kv *kv);
int etcd_put(struct etcd *c, const char *key, const char *value, long long lease);
int etcd_delete(struct etcd *c, const char *key);
/* Put when the key's create (want_mod false: create_revision == rev; 0 = absent) or mod revision
 * equals rev: 1 done, 0 compare failed, <0 as etcd_call. */
int etcd_put_if(struct etcd *c, const char *key, const char *value, bool by_mod, long long rev);
int etcd_lease_grant(struct etcd *c, long long ttl, long long *id);
/* Remaining TTL (>0), 0 when the lease is gone, <0 as etcd_call. */
int etcd_lease_keepalive(struct etcd *c, long long id, long long *ttl);
int etcd_lease_revoke(struct etcd *c, long long id);
/* Body of a watch create request over prefix from revision rev (malloc'd). */
char *etcd_watch_body(const char *prefix, long long rev);

#endif
