/* The CNI result in memory (the 1.1.0 model) and its JSON shapes for every version. */
#ifndef CNI_RESULT_H
#define CNI_RESULT_H

#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "ip.h"

struct cni_iface {
	char name[64];
	char mac[24];
	int mtu; /* 0: not reported */
	char *sandbox; /* NULL: host side */
	char *socket_path;
	char *pci_id;
};

struct cni_ipcfg {
	struct ipnet address; /* address with its subnet's prefix */
	struct ip gateway; /* len 0: none */
	int iface; /* index into interfaces, -1: none */
};

struct cni_route {
	struct ipnet dst;
	struct ip gw; /* len 0: none */
	int mtu, advmss, priority;
	int has_table, table;
	int has_scope, scope;
};

struct cni_strlist {
	char **v;
	size_t n;
};

struct cni_dns {
	struct cni_strlist nameservers;
	char *domain;
	struct cni_strlist search;
	struct cni_strlist options;
};

struct cni_result {
	char version[16];
	struct cni_iface *ifaces;
	size_t n_ifaces;
	struct cni_ipcfg *ips;
	size_t n_ips;
	struct cni_route *routes;
	size_t n_routes;
	struct cni_dns dns;
};

/* Parse a result of any version (0.1.0 … 1.1.0) into the 1.1.0 model. `what`
 * names it in messages ("prevResult", "ipam result"). Code 6 on a bad shape. */
int cni_result_parse(const cJSON *j, const char *what, struct cni_result *r, struct cni_error *e);
/* Emit r in the shape of `version`. NULL on error (e filled). */
cJSON *cni_result_to_json(const struct cni_result *r, const char *version, struct cni_error *e);
void cni_result_free(struct cni_result *r);

/* Builders; each returns the new element's index, or -1 on allocation failure. */
int cni_result_add_iface(struct cni_result *r, const char *name, const char *mac, const char *sandbox);
int cni_result_add_ip(struct cni_result *r, const struct cni_ipcfg *ip);
int cni_result_add_route(struct cni_result *r, const struct cni_route *rt);
int cni_strlist_add(struct cni_strlist *l, const char *s);
void cni_strlist_free(struct cni_strlist *l);
/* Copy DNS from a JSON object of the spec's shape; code 6 on bad types. */
int cni_dns_parse(const cJSON *j, const char *what, struct cni_dns *d, struct cni_error *e);
void cni_dns_free(struct cni_dns *d);
int cni_dns_copy(struct cni_dns *dst, const struct cni_dns *src);
int cni_dns_empty(const struct cni_dns *d);
cJSON *cni_dns_to_json(const struct cni_dns *d);
/* A route object {"dst", "gw", ...} as in configs and results. */
int cni_route_parse(const cJSON *j, const char *what, struct cni_route *rt, struct cni_error *e);
cJSON *cni_route_to_json(const struct cni_route *rt, int full);

#endif
