/* The allocator: one address per range set, round-robin from after the last reserved one,
 * taken addresses skipped by bitmap rather than by probing the directory. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "hostlocal.h"

/* Try every free address of r in [from, to]; 1 = reserved *out, 0 = none free. */
static int scan_segment(struct hl_store *s, const struct hl_range *r, struct ip from, const struct ip *to, const char *id,
			const char *ifname, struct ip *out, struct cni_error *e)
{
	struct ip x = from;
	for (;;) {
		x = hl_store_next_free(s, &x, to);
		if (!x.len)
			return 0;
		if (!hl_range_reserved_addr(r, &x)) {
			int rr = hl_store_reserve(s, &x, id, ifname, e);
			if (rr < 0)
				return -1;
			if (rr == 1) {
				*out = x;
				return 1;
			}
		}
		if (ip_equal(&x, to))
			return 0;
		x = ip_next(&x);
	}
}

static int alloc_in_set(struct hl_store *s, const struct hl_rangeset *set, size_t set_idx, const char *id, const char *ifname,
			struct ip *out, const struct hl_range **rout, struct cni_error *e)
{
	struct ip last, cur;
	size_t ri = 0;
	const struct hl_range *lr;

	if (hl_store_last_reserved(s, set_idx, &last) && (lr = hl_rangeset_find(set, &last))) {
		ri = (size_t)(lr - set->r);
		if (ip_equal(&last, &lr->end)) {
			ri = (ri + 1) % set->n;
			cur = set->r[ri].start;
		} else {
			cur = ip_next(&last);
		}
	} else {
		cur = set->r[0].start;
	}
	/* Segments: [cur, end of its range], every other range whole, then the part of the first
	 * range before cur. */
	for (size_t k = 0; k <= set->n; k++) {
		const struct hl_range *r = &set->r[(ri + k) % set->n];
		struct ip from = k == 0 ? cur : r->start, to = r->end;
		int got;
		if (k == set->n) {
			if (ip_equal(&cur, &r->start))
				break;
			to = ip_prev(&cur);
		}
		got = scan_segment(s, r, from, &to, id, ifname, out, e);
		if (got < 0)
			return -1;
		if (got) {
			*rout = r;
			return 1;
		}
	}
	return 0;
}

static void release_list(struct hl_store *s, const struct ip *ips, const bool *fresh, size_t n, const char *id,
			 const char *ifname)
{
	for (size_t i = 0; i < n; i++) {
		struct cni_error ignored = { 0 };
		if (fresh[i])
			hl_store_release_ip(s, &ips[i], id, ifname, &ignored);
	}
}

/* One ADD's allocation: an address per range set, and what it started from. */
struct alloc {
	struct hl_store *s;
	const struct hl_config *cfg;
	const char *id, *ifname;
	struct ip *got; /* per range set */
	bool *fresh; /* per range set: reserved by this ADD (released if it fails) */
	const struct hl_range **rng; /* per range set: the range got[i] lies in */
	bool *used; /* per requested address */
	struct ip *held, *old; /* this attachment's reservations; the oldest format's (ID only) */
	size_t nheld, nold;
};

/* The requested address q for range set i: reserved now, or already this attachment's. */
static int take_requested(struct alloc *al, size_t i, size_t q, struct cni_error *e)
{
	const struct hl_rangeset *set = &al->cfg->sets[i];
	const struct ip *want = &al->cfg->requested[q];
	char a[IP_STRLEN], rs[1024];

	al->used[q] = true;
	al->rng[i] = hl_rangeset_find(set, want);
	if (hl_range_reserved_addr(al->rng[i], want))
		return cni_errf(e, CNI_ERR_IP_TAKEN,
				"requested IP address %s is the gateway, network or broadcast address of range %s",
				ip_fmt(want, a), hl_rangeset_str(set, rs, sizeof(rs)));
	int rr = hl_store_reserve(al->s, want, al->id, al->ifname, e);
	if (rr < 0)
		return -1;
	if (rr == 0) {
		struct hl_owner o;
		int mine = hl_store_owner(al->s, want, &o, e) > 0 && strcmp(o.id, al->id) == 0 &&
			   strcmp(o.ifname, al->ifname) == 0;
		hl_owner_free(&o);
		if (!mine)
			return cni_errf(e, CNI_ERR_IP_TAKEN, "requested IP address %s is not available in range set %s",
					ip_fmt(want, a), hl_rangeset_str(set, rs, sizeof(rs)));
	}
	al->got[i] = *want;
	al->fresh[i] = rr == 1;
	return 0;
}

/* Range set i without a requested address: what the attachment holds there, else the next free. */
static int take_any(struct alloc *al, size_t i, struct cni_error *e)
{
	const struct hl_rangeset *set = &al->cfg->sets[i];
	const struct hl_range *r = NULL;
	char a[IP_STRLEN], rs[1024];

	/* An ADD repeated for the same attachment gets what it already holds. */
	for (size_t h = 0; h < al->nheld && !r; h++)
		if ((r = hl_rangeset_find(set, &al->held[h])))
			al->got[i] = al->held[h];
	/* A file of the oldest format names the container but no interface: which of its
	 * interfaces holds it is unknown, so, as the reference does, no second address. */
	for (size_t h = 0; h < al->nold && !r; h++)
		if (hl_rangeset_find(set, &al->old[h]))
			return cni_errf(e, CNI_ERR_IP_TAKEN,
					"%s has been allocated to %s, duplicate allocation is not allowed (its reservation file "
					"names no interface, as the oldest format did; DEL of %s releases it)",
					ip_fmt(&al->old[h], a), al->id, al->id);
	if (!r) {
		int rr = alloc_in_set(al->s, set, i, al->id, al->ifname, &al->got[i], &r, e);
		if (rr < 0)
			return -1;
		if (rr == 0)
			return cni_errf(e, CNI_ERR_IPAM_EXHAUSTED, "no IP addresses available in range set %s",
					hl_rangeset_str(set, rs, sizeof(rs)));
		al->fresh[i] = true;
	}
	al->rng[i] = r;
	return 0;
}

/* Range set i: the first requested address not yet used that lies in it, else any. */
static int alloc_set(struct alloc *al, size_t i, struct cni_error *e)
{
	const struct hl_config *cfg = al->cfg;
	size_t q;

	for (q = 0; q < cfg->n_requested; q++)
		if (!al->used[q] && hl_rangeset_find(&cfg->sets[i], &cfg->requested[q]))
			break;
	if ((q < cfg->n_requested ? take_requested(al, i, q, e) : take_any(al, i, e)) < 0)
		return -1;
	return FAULT(e, "host-local reserved");
}

/* Every requested address used; the last reserved of each set recorded; the result filled. */
static int alloc_finish(struct alloc *al, struct cni_result *res, struct cni_error *e)
{
	const struct hl_config *cfg = al->cfg;
	char a[IP_STRLEN];

	for (size_t q = 0; q < cfg->n_requested; q++)
		if (!al->used[q])
			return cni_errf(e, CNI_ERR_IP_TAKEN,
					"failed to allocate all requested IPs: %s is in no range set of network \"%s\"",
					ip_fmt(&cfg->requested[q], a), cfg->name);
	for (size_t i = 0; i < cfg->n_sets; i++)
		if (al->fresh[i] && hl_store_set_last_reserved(al->s, i, &al->got[i], e) < 0)
			return -1;
	for (size_t i = 0; i < cfg->n_sets; i++) {
		struct cni_ipcfg ipc = { .address = { .ip = al->got[i], .prefix = al->rng[i]->subnet.prefix },
					 .gateway = al->rng[i]->gateway,
					 .iface = -1 };
		if (cni_result_add_ip(res, &ipc) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < cfg->n_routes; i++)
		if (cni_result_add_route(res, &cfg->routes[i]) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	return 0;
}

int hl_alloc(struct hl_store *s, const struct hl_config *cfg, const char *id, const char *ifname, struct cni_result *res,
	     struct cni_error *e)
{
	struct alloc al = { .s = s,
			    .cfg = cfg,
			    .id = id,
			    .ifname = ifname,
			    .got = calloc(cfg->n_sets, sizeof(*al.got)),
			    .fresh = calloc(cfg->n_sets, sizeof(*al.fresh)),
			    .rng = calloc(cfg->n_sets, sizeof(*al.rng)),
			    .used = calloc(cfg->n_requested + 1, sizeof(*al.used)) };
	int rc = -1;

	if (!al.got || !al.fresh || !al.used || !al.rng) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (hl_store_find(s, HL_EXACT, id, ifname, &al.held, &al.nheld, e) < 0 ||
	    hl_store_find(s, HL_LEGACY, id, ifname, &al.old, &al.nold, e) < 0)
		goto out;
	for (size_t i = 0; i < cfg->n_sets; i++)
		if (alloc_set(&al, i, e) < 0)
			goto fail;
	if (alloc_finish(&al, res, e) < 0)
		goto fail;
	rc = 0;
	goto out;
fail:
	release_list(s, al.got, al.fresh, cfg->n_sets, id, ifname);
out:
	free(al.got);
	free(al.fresh);
	free(al.used);
	free(al.rng);
	free(al.held);
	free(al.old);
	return rc;
}

int hl_resolv_conf(const char *path, struct cni_dns *dns, struct cni_error *e)
{
	FILE *f = fopen(path, "re");
	char line[1024];
	if (!f)
		return cni_errf(e, CNI_ERR_IO, "invalid config: field \"ipam.resolvConf\": cannot read %s: %s", path,
				cni_strerror(errno));
	while (fgets(line, sizeof(line), f)) {
		char *save = NULL, *key = strtok_r(line, " \t\r\n", &save), *v;
		if (!key || key[0] == '#' || key[0] == ';')
			continue;
		if (!(v = strtok_r(NULL, " \t\r\n", &save)))
			continue;
		if (strcmp(key, "nameserver") == 0) {
			cni_strlist_add(&dns->nameservers, v);
		} else if (strcmp(key, "domain") == 0) {
			free(dns->domain);
			dns->domain = strdup(v);
		} else if (strcmp(key, "search") == 0 || strcmp(key, "options") == 0) {
			struct cni_strlist *l = key[0] == 's' ? &dns->search : &dns->options;
			for (; v; v = strtok_r(NULL, " \t\r\n", &save))
				cni_strlist_add(l, v);
		}
	}
	fclose(f);
	return 0;
}
