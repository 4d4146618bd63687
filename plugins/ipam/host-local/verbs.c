/* host-local IPAM: parse config → ADD (allocate) → CHECK → DEL (release) → GC → STATUS, as a
 * plugin table shared by the host-local executable and the in-process fast path of the main
 * plugins (common/ipam.c). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hostlocal.h"

/* The network's store directory does not exist: nothing was ever reserved. */
static bool store_absent(const struct hl_config *cfg)
{
	char p[4096];
	struct stat st;
	snprintf(p, sizeof(p), "%s/%s", cfg->data_dir, cfg->name);
	return stat(p, &st) < 0 && errno == ENOENT;
}

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	const struct hl_config *cfg = conf;
	struct hl_store *s = NULL;
	struct cni_error *e = &c->err;
	int rc = -1;

	if (cfg->resolv_conf && *cfg->resolv_conf && hl_resolv_conf(cfg->resolv_conf, &out->dns, e) < 0)
		goto out;
	if (hl_store_open(&s, cfg->data_dir, cfg->name, e) < 0)
		goto out;
	rc = hl_alloc(s, cfg, c->container_id, c->ifname, out, e);
out:
	hl_store_close(s);
	return rc;
}

static int cmd_del(struct cni_ctx *c, void *conf)
{
	const struct hl_config *cfg = conf;
	struct hl_store *s = NULL;
	int rc = -1;

	if (store_absent(cfg)) {
		rc = 0;
		goto out;
	}
	if (hl_store_open(&s, cfg->data_dir, cfg->name, &c->err) < 0)
		goto out;
	rc = hl_store_release_owner(s, c->container_id, c->ifname, &c->err) < 0 ? -1 : 0;
out:
	hl_store_close(s);
	return rc;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	const struct hl_config *cfg = conf;
	struct hl_store *s = NULL;
	struct cni_error *e = &c->err;
	struct ip *ips = NULL;
	size_t n = 0;
	int rc = -1;
	char a[IP_STRLEN];

	if (store_absent(cfg)) {
		cni_check_fail(e, "host-local: no address is reserved for container %s (%s) in network \"%s\"", c->container_id,
			       c->ifname, cfg->name);
		goto out;
	}
	if (hl_store_open(&s, cfg->data_dir, cfg->name, e) < 0 ||
	    hl_store_find(s, HL_EXACT_OR_LEGACY, c->container_id, c->ifname, &ips, &n, e) < 0)
		goto out;
	if (n == 0) {
		cni_check_fail(e, "host-local: no address is reserved for container %s (%s) in network \"%s\"", c->container_id,
			       c->ifname, cfg->name);
		goto out;
	}
	/* Every address of prevResult that lies in our ranges must still be ours. */
	for (size_t i = 0; c->has_prev && i < c->prev.n_ips; i++) {
		const struct ip *want = &c->prev.ips[i].address.ip;
		bool ours = false, held = false;
		for (size_t k = 0; k < cfg->n_sets; k++)
			ours |= hl_rangeset_find(&cfg->sets[k], want) != NULL;
		for (size_t k = 0; k < n; k++)
			held |= ip_equal(&ips[k], want);
		if (ours && !held) {
			cni_check_fail(e, "host-local: %s from prevResult is not reserved for container %s (%s)", ip_fmt(want, a),
				       c->container_id, c->ifname);
			goto out;
		}
	}
	rc = 0;
out:
	free(ips);
	hl_store_close(s);
	return rc;
}

struct gc_arg {
	struct cni_ctx *c;
	size_t released;
};

static int gc_visit(struct hl_store *s, const struct ip *ip, const struct hl_owner *o, void *arg)
{
	struct gc_arg *g = arg;
	struct cni_error *e = &g->c->err;
	if (!o->id[0]) {
		g->released++;
		return hl_store_drop_file(s, ip, e);
	}
	/* Files of the oldest format carry no ifname: any attachment of that ID keeps them. */
	if (cni_attachment_valid(g->c, o->id, o->ifname[0] ? o->ifname : NULL))
		return 0;
	g->released++;
	return hl_store_release_ip(s, ip, o->id, o->ifname, e) < 0 ? -1 : 0;
}

static int cmd_gc(struct cni_ctx *c, void *conf)
{
	const struct hl_config *cfg = conf;
	struct hl_store *s = NULL;
	struct gc_arg g = { .c = c };
	int rc = -1;

	if (store_absent(cfg)) {
		rc = 0;
		goto out;
	}
	if (hl_store_open(&s, cfg->data_dir, cfg->name, &c->err) < 0)
		goto out;
	rc = hl_store_foreach(s, gc_visit, &g, &c->err);
out:
	hl_store_close(s);
	return rc < 0 ? -1 : 0;
}

static uint64_t usable(const struct hl_range *r)
{
	uint64_t n = ip_distance(&r->start, &r->end) + 1;
	struct ip bc = ipnet_last(&r->subnet);
	const struct ip *skip[] = { &r->gateway, &r->subnet.ip, ip_is_v4(&bc) ? &bc : NULL };
	for (int i = 0; i < 3; i++) {
		if (!skip[i] || ip_cmp(skip[i], &r->start) < 0 || ip_cmp(skip[i], &r->end) > 0 || !n)
			continue;
		/* the gateway may be the network or broadcast address: one address, counted once */
		bool seen = false;
		for (int j = 0; j < i; j++)
			seen = seen || (skip[j] && ip_equal(skip[j], skip[i]));
		if (!seen)
			n--;
	}
	return n;
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	const struct hl_config *cfg = conf;
	struct hl_store *s = NULL;
	struct cni_error *e = &c->err;
	char rs[1024];
	int rc = -1;

	if (hl_store_open(&s, cfg->data_dir, cfg->name, e) < 0) {
		cni_errf_force(e, CNI_ERR_NOT_AVAILABLE, "host-local: store for network \"%s\" is not usable: %s", cfg->name,
			       e->msg);
		goto out;
	}
	for (size_t i = 0; i < cfg->n_sets; i++) {
		bool free_left = false;
		for (size_t k = 0; k < cfg->sets[i].n && !free_left; k++) {
			const struct hl_range *r = &cfg->sets[i].r[k];
			uint64_t size = usable(r);
			free_left = hl_store_count_in(s, r) < size;
		}
		if (!free_left) {
			cni_errf(e, CNI_ERR_NOT_AVAILABLE, "host-local: no IP addresses available in range set %s",
				 hl_rangeset_str(&cfg->sets[i], rs, sizeof(rs)));
			goto out;
		}
	}
	rc = 0;
out:
	hl_store_close(s);
	return rc;
}

static const char *const hl_args[] = { "IP", NULL };

static int hl_parse(struct cni_ctx *c, void *conf)
{
	return hl_config_parse(c, conf, &c->err);
}
static void hl_free(void *conf)
{
	hl_config_free(conf);
}

const struct cni_plugin hostlocal_plugin = {
	.name = "host-local",
	.conf_size = sizeof(struct hl_config),
	.parse = hl_parse,
	.free_conf = hl_free,
	.cni_args = hl_args,
	.caps = NULL, /* files only: root owns the store, no capability needed */
	.add = cmd_add,
	.check = cmd_check,
	.del = cmd_del,
	.gc = cmd_gc,
	.status = cmd_status,
};
