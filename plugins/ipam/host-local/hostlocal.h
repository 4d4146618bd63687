/* host-local IPAM: config, the on-disk store (reference layout + our index), the allocator. */
#ifndef HOSTLOCAL_H
#define HOSTLOCAL_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "ipam.h"
#include "ip.h"
#include "result.h"
#include "skel.h"

#define HL_DEFAULT_DATA_DIR "/var/lib/cni/networks"

struct hl_range {
	struct ipnet subnet; /* network address + prefix */
	struct ip start, end; /* inclusive */
	struct ip gateway;
};

struct hl_rangeset {
	struct hl_range *r;
	size_t n;
};

struct hl_config {
	const char *name;
	const char *data_dir;
	const char *resolv_conf;
	struct hl_rangeset *sets;
	size_t n_sets;
	struct cni_route *routes;
	size_t n_routes;
	struct ip *requested;
	size_t n_requested;
};

int hl_config_parse(const struct cni_ctx *c, struct hl_config *cfg, struct cni_error *e);
void hl_config_free(struct hl_config *cfg);
/* "10.0.0.2-10.0.0.254,10.0.1.2-10.0.1.254" */
const char *hl_rangeset_str(const struct hl_rangeset *s, char *buf, size_t n);
const struct hl_range *hl_rangeset_find(const struct hl_rangeset *s, const struct ip *ip);
/* Addresses the allocator never hands out: gateway, v4 network and broadcast, v6 subnet-router anycast. */
bool hl_range_reserved_addr(const struct hl_range *r, const struct ip *ip);

/* The store: <dataDir>/<network>/ exactly as the reference plugin lays it out, under its flock on
 * <dir>/lock. Open reads every reservation (name and content) into a table that each answer comes
 * from and each change keeps in step with the files. */
struct hl_store;

struct hl_owner {
	char *id;
	char *ifname; /* "" for files of the oldest reference format (ID only) */
};

/* Which files hl_store_find matches: "<id>\r\n<ifname>" only; those of the oldest format
 * ("<id>" only) only; or, as the reference's DEL and CHECK do, the exact ones, and the old-format
 * ones when there is no exact one. */
enum hl_match { HL_EXACT, HL_LEGACY, HL_EXACT_OR_LEGACY };

int hl_store_open(struct hl_store **out, const char *data_dir, const char *network, struct cni_error *e);
/* Drops the lock. */
int hl_store_close(struct hl_store *s);

/* 1 = reserved, 0 = taken by someone else, -1 = error. */
int hl_store_reserve(struct hl_store *s, const struct ip *ip, const char *id, const char *ifname, struct cni_error *e);
/* Owner of an address: 1 found, 0 free, -1 error. */
int hl_store_owner(struct hl_store *s, const struct ip *ip, struct hl_owner *o, struct cni_error *e);
void hl_owner_free(struct hl_owner *o);
/* Addresses held by (id, ifname). */
int hl_store_find(struct hl_store *s, enum hl_match how, const char *id, const char *ifname, struct ip **ips, size_t *n,
		  struct cni_error *e);
/* Release one address if (id, ifname) owns it. */
int hl_store_release_ip(struct hl_store *s, const struct ip *ip, const char *id, const char *ifname, struct cni_error *e);
/* Release what (id, ifname) holds (HL_EXACT_OR_LEGACY); 0 when it held nothing. */
int hl_store_release_owner(struct hl_store *s, const char *id, const char *ifname, struct cni_error *e);

int hl_store_last_reserved(struct hl_store *s, size_t set_idx, struct ip *out);
int hl_store_set_last_reserved(struct hl_store *s, size_t set_idx, const struct ip *ip, struct cni_error *e);

/* Is a reservation file there (an empty, torn one does not count)? */
int hl_store_taken(struct hl_store *s, const struct ip *ip);
/* The first address in [from, to] with no reservation, or len 0. */
struct ip hl_store_next_free(struct hl_store *s, const struct ip *from, const struct ip *to);
/* Reservations in [r->start, r->end]. */
uint64_t hl_store_count_in(struct hl_store *s, const struct hl_range *r);
/* Remove a reservation file whatever it holds (GC: torn files). */
int hl_store_drop_file(struct hl_store *s, const struct ip *ip, struct cni_error *e);

/* Every reservation but unreadable ones (owner "" for torn ones), for GC. */
typedef int (*hl_visit_fn)(struct hl_store *s, const struct ip *ip, const struct hl_owner *o, void *arg);
int hl_store_foreach(struct hl_store *s, hl_visit_fn fn, void *arg, struct cni_error *e);

/* The plugin table (verbs.c) is declared in common/ipam.h, for the plugins that run it in-process. */

/* Allocator. */
int hl_alloc(struct hl_store *s, const struct hl_config *cfg, const char *id, const char *ifname, struct cni_result *res,
	     struct cni_error *e);
int hl_resolv_conf(const char *path, struct cni_dns *dns, struct cni_error *e);

#endif
