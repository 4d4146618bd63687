/* host-local config: ranges (new and legacy forms, runtime ipRanges), routes, requested IPs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "hostlocal.h"
#include "version.h"

static int parse_range(const cJSON *j, const char *path, struct hl_range *r, struct cni_error *e)
{
	char b1[IP_STRLEN], b2[IPNET_STRLEN];
	int have;
	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(j))
		return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be an object", path);
	if ((have = conf_ipnet(j, path, "subnet", &r->subnet, e)) < 0)
		return -1;
	if (!have)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s.subnet\" is required", path);
	int bits = ip_bits(&r->subnet.ip);
	if (r->subnet.prefix > bits - 2)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s.subnet\": network %s is too small to allocate from (at most /%d)",
				path, ipnet_fmt(&r->subnet, b2), bits - 2);
	if (!ipnet_is_network(&r->subnet)) {
		struct ip net = ipnet_network(&r->subnet);
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s.subnet\": %s has host bits set; for a /%d the network address is %s",
				path, ipnet_fmt(&r->subnet, b2), r->subnet.prefix, ip_fmt(&net, b1));
	}
	struct ip net = r->subnet.ip, last = ipnet_last(&r->subnet);
	static const char *const keys[] = { "gateway", "rangeStart", "rangeEnd" };
	struct ip *dst[] = { &r->gateway, &r->start, &r->end };
	for (int k = 0; k < 3; k++) {
		if ((have = conf_ip(j, path, keys[k], dst[k], e)) < 0)
			return -1;
		if (have && !ipnet_contains(&r->subnet, dst[k]))
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s.%s\": %s is outside subnet %s",
					path, keys[k], ip_fmt(dst[k], b1), ipnet_fmt(&r->subnet, b2));
	}
	if (!r->gateway.len)
		r->gateway = ip_next(&net);
	if (!r->start.len)
		r->start = ip_next(&net);
	if (!r->end.len)
		r->end = ip_is_v4(&net) ? ip_prev(&last) : last;
	if (ip_cmp(&r->start, &r->end) > 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s.rangeStart\": %s is after rangeEnd %s",
				path, ip_fmt(&r->start, b1), ip_fmt(&r->end, b2));
	return 0;
}

static bool ranges_overlap(const struct hl_range *a, const struct hl_range *b)
{
	return a->start.len == b->start.len && ip_cmp(&a->start, &b->end) <= 0 && ip_cmp(&b->start, &a->end) <= 0;
}

static int add_set(struct hl_config *cfg, struct hl_rangeset *set, struct cni_error *e)
{
	struct hl_rangeset *v = realloc(cfg->sets, (cfg->n_sets + 1) * sizeof(*v));
	if (!v) {
		free(set->r);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	cfg->sets = v;
	cfg->sets[cfg->n_sets++] = *set;
	return 0;
}

static int parse_rangeset(const cJSON *arr, const char *path, struct hl_rangeset *set, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *it;
	size_t i = 0;
	memset(set, 0, sizeof(*set));
	if (!cJSON_IsArray(arr))
		return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be an array of ranges", path);
	if (cJSON_GetArraySize(arr) == 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" is an empty range set", path);
	if (!(set->r = calloc((size_t)cJSON_GetArraySize(arr), sizeof(*set->r))))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	cJSON_ArrayForEach (it, arr) {
		struct hl_range *r = &set->r[i];
		if (parse_range(it, conf_path_idx(p, path, i), r, e) < 0)
			goto fail;
		if (i && r->subnet.ip.len != set->r[0].subnet.ip.len) {
			cni_errf(e, CNI_ERR_INVALID_CONFIG,
				 "invalid config: field \"%s\": mixed address families in one range set", p);
			goto fail;
		}
		for (size_t k = 0; k < i; k++)
			if (ranges_overlap(&set->r[k], r)) {
				char a[IP_STRLEN], b[IP_STRLEN];
				cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": range %s-%s overlaps %s[%zu]",
					 p, ip_fmt(&r->start, a), ip_fmt(&r->end, b), path, k);
				goto fail;
			}
		set->n = ++i;
	}
	return 0;
fail:
	free(set->r);
	set->r = NULL;
	return -1;
}

static int parse_sets_array(const cJSON *arr, const char *path, struct hl_config *cfg, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *it;
	size_t i = 0;
	cJSON_ArrayForEach (it, arr) {
		struct hl_rangeset set;
		if (parse_rangeset(it, conf_path_idx(p, path, i++), &set, e) < 0 || add_set(cfg, &set, e) < 0)
			return -1;
	}
	return 0;
}

static int add_requested(struct hl_config *cfg, const struct ip *ip, struct cni_error *e)
{
	for (size_t i = 0; i < cfg->n_requested; i++)
		if (ip_equal(&cfg->requested[i], ip))
			return 0;
	struct ip *v = realloc(cfg->requested, (cfg->n_requested + 1) * sizeof(*v));
	if (!v)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	cfg->requested = v;
	cfg->requested[cfg->n_requested++] = *ip;
	return 0;
}

static int parse_ip_list(const cJSON *obj, const char *parent, struct hl_config *cfg, struct cni_error *e)
{
	char p[CONF_PATH_MAX], pi[CONF_PATH_MAX];
	const cJSON *arr = NULL, *it;
	size_t i = 0;
	int r = conf_array(obj, parent, "ips", &arr, e);
	if (r <= 0)
		return r;
	conf_path(p, parent, "ips");
	cJSON_ArrayForEach (it, arr) {
		struct ip ip;
		if (conf_val_ip_or_cidr(it, conf_path_idx(pi, p, i++), &ip, e) < 0 || add_requested(cfg, &ip, e) < 0)
			return -1;
	}
	return 1;
}

/* Range sets in the reference's order: runtime ipRanges, the legacy single range, then
 * ipam.ranges; at least one. */
static int parse_all_sets(const cJSON *ipam, const cJSON *rc, struct hl_config *cfg, struct cni_error *e)
{
	const cJSON *ranges = NULL;

	if (rc && conf_array(rc, "runtimeConfig", "ipRanges", &ranges, e) < 0)
		return -1;
	if (ranges && parse_sets_array(ranges, "runtimeConfig.ipRanges", cfg, e) < 0)
		return -1;
	const cJSON *legacy = conf_item(ipam, "subnet");
	if (legacy && !(cJSON_IsString(legacy) && !*legacy->valuestring)) {
		struct hl_rangeset set = { .n = 1 };
		if (!(set.r = calloc(1, sizeof(*set.r))))
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		if (parse_range(ipam, "ipam", set.r, e) < 0) {
			free(set.r);
			return -1;
		}
		if (add_set(cfg, &set, e) < 0)
			return -1;
	}
	ranges = NULL;
	if (conf_array(ipam, "ipam", "ranges", &ranges, e) < 0)
		return -1;
	if (ranges && parse_sets_array(ranges, "ipam.ranges", cfg, e) < 0)
		return -1;
	if (!cfg->n_sets)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"ipam.ranges\": no IP ranges specified");
	return 0;
}

/* No two range sets overlap; before 0.3.0, one range set per family. */
static int check_sets(const struct cni_ctx *c, const struct hl_config *cfg, struct cni_error *e)
{
	int n4 = 0, n6 = 0;
	for (size_t i = 0; i < cfg->n_sets; i++) {
		ip_is_v4(&cfg->sets[i].r[0].subnet.ip) ? n4++ : n6++;
		for (size_t j = 0; j < i; j++)
			for (size_t a = 0; a < cfg->sets[i].n; a++)
				for (size_t b = 0; b < cfg->sets[j].n; b++)
					if (ranges_overlap(&cfg->sets[i].r[a], &cfg->sets[j].r[b]))
						return cni_errf(
							e, CNI_ERR_INVALID_CONFIG,
							"invalid config: field \"ipam.ranges\": range set %zu overlaps with range set %zu",
							j, i);
	}
	if ((n4 > 1 || n6 > 1) && cni_version_cmp(c->version, "0.3.0") < 0)
		return cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION,
				"cniVersion %s does not support more than 1 address per family (%d IPv4, %d IPv6 range sets)",
				c->version, n4, n6);
	return 0;
}

static int parse_routes(const cJSON *ipam, struct hl_config *cfg, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *routes = NULL, *it;
	size_t i = 0;

	if (conf_array(ipam, "ipam", "routes", &routes, e) < 0)
		return -1;
	cJSON_ArrayForEach (it, routes) {
		struct cni_route rt;
		if (cni_route_parse(it, conf_path_idx(p, "ipam.routes", i++), &rt, e) < 0)
			return -1;
		struct cni_route *v = realloc(cfg->routes, (cfg->n_routes + 1) * sizeof(*v));
		if (!v)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		cfg->routes = v;
		cfg->routes[cfg->n_routes++] = rt;
	}
	return 0;
}

/* Requested addresses: the `ips` capability and args.cni.ips; CNI_ARGS IP= only when neither
 * says anything (CONVENTIONS.md). */
static int parse_requested(const struct cni_ctx *c, const cJSON *rc, const cJSON *args, struct hl_config *cfg,
			   struct cni_error *e)
{
	int got = 0, r = 0;
	if (rc && (r = parse_ip_list(rc, "runtimeConfig", cfg, e)) < 0)
		return -1;
	got |= rc && r > 0;
	if (args && (r = parse_ip_list(args, "args.cni", cfg, e)) < 0)
		return -1;
	got |= args && r > 0;
	const char *envip = cni_arg(c, "IP");
	if (!got && envip && *envip) {
		struct ip ip;
		if (ip_parse(envip, &ip) < 0)
			return cni_errf(e, CNI_ERR_DECODE, "CNI_ARGS: IP=\"%s\" is not an IP address", envip);
		if (add_requested(cfg, &ip, e) < 0)
			return -1;
	}
	return 0;
}

int hl_config_parse(const struct cni_ctx *c, struct hl_config *cfg, struct cni_error *e)
{
	const cJSON *ipam = NULL;
	const cJSON *rc = conf_runtime_config(c->conf), *args = conf_args_cni(c->conf);

	memset(cfg, 0, sizeof(*cfg));
	cfg->name = c->name;
	if (conf_object(c->conf, "", "ipam", &ipam, e) < 0)
		goto fail;
	if (!ipam) {
		cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"ipam\" is required");
		goto fail;
	}
	if (conf_string(ipam, "ipam", "dataDir", &cfg->data_dir, e) < 0 ||
	    conf_string(ipam, "ipam", "resolvConf", &cfg->resolv_conf, e) < 0)
		goto fail;
	if (!cfg->data_dir || !*cfg->data_dir)
		cfg->data_dir = HL_DEFAULT_DATA_DIR;
	if (parse_all_sets(ipam, rc, cfg, e) < 0 || check_sets(c, cfg, e) < 0 || parse_routes(ipam, cfg, e) < 0 ||
	    parse_requested(c, rc, args, cfg, e) < 0)
		goto fail;
	return 0;
fail:
	hl_config_free(cfg);
	return -1;
}

void hl_config_free(struct hl_config *cfg)
{
	for (size_t i = 0; i < cfg->n_sets; i++)
		free(cfg->sets[i].r);
	free(cfg->sets);
	free(cfg->routes);
	free(cfg->requested);
	memset(cfg, 0, sizeof(*cfg));
}

const char *hl_rangeset_str(const struct hl_rangeset *s, char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < s->n && off < n; i++) {
		char a[IP_STRLEN], b[IP_STRLEN];
		off += (size_t)snprintf(buf + off, n - off, "%s%s-%s", i ? "," : "", ip_fmt(&s->r[i].start, a),
					ip_fmt(&s->r[i].end, b));
	}
	return buf;
}

const struct hl_range *hl_rangeset_find(const struct hl_rangeset *s, const struct ip *ip)
{
	for (size_t i = 0; i < s->n; i++)
		if (ip->len == s->r[i].start.len && ip_cmp(ip, &s->r[i].start) >= 0 && ip_cmp(ip, &s->r[i].end) <= 0)
			return &s->r[i];
	return NULL;
}

bool hl_range_reserved_addr(const struct hl_range *r, const struct ip *ip)
{
	if (ip_equal(ip, &r->gateway) || ip_equal(ip, &r->subnet.ip))
		return true;
	if (ip_is_v4(ip)) {
		struct ip bc = ipnet_last(&r->subnet);
		return ip_equal(ip, &bc);
	}
	return false;
}
