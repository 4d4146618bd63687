/* Result JSON <-> struct cni_result: 1.x, 0.3.x/0.4.0 (per-IP "version") and 0.1.0/0.2.0 (ip4/ip6). */
#include "result.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf.h"
#include "version.h"

static void *grow(void *base, size_t *n, size_t size)
{
	void *p = realloc(base, (*n + 1) * size);
	if (!p)
		return NULL;
	memset((char *)p + *n * size, 0, size);
	(*n)++;
	return p;
}

int cni_strlist_add(struct cni_strlist *l, const char *s)
{
	char *d = strdup(s);
	size_t n = l->n;
	char **v = d ? grow(l->v, &n, sizeof(char *)) : NULL;
	if (!v) {
		free(d);
		return -1;
	}
	l->v = v;
	l->v[l->n] = d;
	l->n = n;
	return 0;
}

void cni_strlist_free(struct cni_strlist *l)
{
	for (size_t i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

void cni_dns_free(struct cni_dns *d)
{
	cni_strlist_free(&d->nameservers);
	cni_strlist_free(&d->search);
	cni_strlist_free(&d->options);
	free(d->domain);
	d->domain = NULL;
}

int cni_dns_copy(struct cni_dns *dst, const struct cni_dns *src)
{
	memset(dst, 0, sizeof(*dst));
	for (size_t i = 0; i < src->nameservers.n; i++)
		if (cni_strlist_add(&dst->nameservers, src->nameservers.v[i]) < 0)
			goto oom;
	for (size_t i = 0; i < src->search.n; i++)
		if (cni_strlist_add(&dst->search, src->search.v[i]) < 0)
			goto oom;
	for (size_t i = 0; i < src->options.n; i++)
		if (cni_strlist_add(&dst->options, src->options.v[i]) < 0)
			goto oom;
	if (src->domain && !(dst->domain = strdup(src->domain)))
		goto oom;
	return 0;
oom:
	cni_dns_free(dst);
	return -1;
}

int cni_dns_empty(const struct cni_dns *d)
{
	return !d->nameservers.n && !d->search.n && !d->options.n && !(d->domain && *d->domain);
}

static int strlist_parse(const cJSON *obj, const char *parent, const char *key, struct cni_strlist *l, struct cni_error *e)
{
	char p[CONF_PATH_MAX], pi[CONF_PATH_MAX];
	const cJSON *arr = NULL, *it;
	const char *s;
	size_t i = 0;
	int r = conf_array(obj, parent, key, &arr, e);
	if (r <= 0)
		return r;
	conf_path(p, parent, key);
	cJSON_ArrayForEach (it, arr) {
		if (conf_val_string(it, conf_path_idx(pi, p, i++), &s, e) < 0)
			return -1;
		if (cni_strlist_add(l, s) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	return 1;
}

int cni_dns_parse(const cJSON *j, const char *what, struct cni_dns *d, struct cni_error *e)
{
	const char *dom = NULL;
	if (strlist_parse(j, what, "nameservers", &d->nameservers, e) < 0 ||
	    strlist_parse(j, what, "search", &d->search, e) < 0 || strlist_parse(j, what, "options", &d->options, e) < 0 ||
	    conf_string(j, what, "domain", &dom, e) < 0)
		return -1;
	if (dom && !(d->domain = strdup(dom)))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	return 0;
}

static cJSON *strlist_json(const struct cni_strlist *l)
{
	cJSON *a = cJSON_CreateArray();
	for (size_t i = 0; a && i < l->n; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(l->v[i]));
	return a;
}

cJSON *cni_dns_to_json(const struct cni_dns *d)
{
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (d->nameservers.n)
		cJSON_AddItemToObject(o, "nameservers", strlist_json(&d->nameservers));
	if (d->domain && *d->domain)
		cJSON_AddStringToObject(o, "domain", d->domain);
	if (d->search.n)
		cJSON_AddItemToObject(o, "search", strlist_json(&d->search));
	if (d->options.n)
		cJSON_AddItemToObject(o, "options", strlist_json(&d->options));
	return o;
}

int cni_result_add_iface(struct cni_result *r, const char *name, const char *mac, const char *sandbox)
{
	struct cni_iface *v = grow(r->ifaces, &r->n_ifaces, sizeof(*v));
	if (!v)
		return -1;
	r->ifaces = v;
	struct cni_iface *i = &v[r->n_ifaces - 1];
	snprintf(i->name, sizeof(i->name), "%s", name ? name : "");
	snprintf(i->mac, sizeof(i->mac), "%s", mac ? mac : "");
	if (sandbox && *sandbox)
		i->sandbox = strdup(sandbox);
	return (int)r->n_ifaces - 1;
}

int cni_result_add_ip(struct cni_result *r, const struct cni_ipcfg *ip)
{
	struct cni_ipcfg *v = grow(r->ips, &r->n_ips, sizeof(*v));
	if (!v)
		return -1;
	r->ips = v;
	v[r->n_ips - 1] = *ip;
	return (int)r->n_ips - 1;
}

int cni_result_add_route(struct cni_result *r, const struct cni_route *rt)
{
	struct cni_route *v = grow(r->routes, &r->n_routes, sizeof(*v));
	if (!v)
		return -1;
	r->routes = v;
	v[r->n_routes - 1] = *rt;
	return (int)r->n_routes - 1;
}

void cni_result_free(struct cni_result *r)
{
	for (size_t i = 0; i < r->n_ifaces; i++) {
		free(r->ifaces[i].sandbox);
		free(r->ifaces[i].socket_path);
		free(r->ifaces[i].pci_id);
	}
	free(r->ifaces);
	free(r->ips);
	free(r->routes);
	cni_dns_free(&r->dns);
	memset(r, 0, sizeof(*r));
}

int cni_route_parse(const cJSON *j, const char *what, struct cni_route *rt, struct cni_error *e)
{
	long long v;
	int r;
	memset(rt, 0, sizeof(*rt));
	if (!cJSON_IsObject(j))
		return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be an object", what);
	r = conf_ipnet(j, what, "dst", &rt->dst, e);
	if (r < 0)
		return -1;
	if (r == 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s.dst\" is required", what);
	if (conf_ip(j, what, "gw", &rt->gw, e) < 0)
		return -1;
	if (rt->gw.len && rt->gw.len != rt->dst.ip.len)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s.gw\": gateway and dst are of different address families", what);
	if ((r = conf_int(j, what, "mtu", 0, 65535, &v, e)) < 0)
		return -1;
	rt->mtu = r ? (int)v : 0;
	if ((r = conf_int(j, what, "advmss", 0, 65535, &v, e)) < 0)
		return -1;
	rt->advmss = r ? (int)v : 0;
	if ((r = conf_int(j, what, "priority", 0, 0xffffffffLL, &v, e)) < 0)
		return -1;
	rt->priority = r ? (int)v : 0;
	if ((r = conf_int(j, what, "table", 0, 0xffffffffLL, &v, e)) < 0)
		return -1;
	rt->has_table = r;
	rt->table = r ? (int)v : 0;
	if ((r = conf_int(j, what, "scope", 0, 255, &v, e)) < 0)
		return -1;
	rt->has_scope = r;
	rt->scope = r ? (int)v : 0;
	return 0;
}

cJSON *cni_route_to_json(const struct cni_route *rt, int full)
{
	char b[IPNET_STRLEN];
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	cJSON_AddStringToObject(o, "dst", ipnet_fmt(&rt->dst, b));
	if (rt->gw.len)
		cJSON_AddStringToObject(o, "gw", ip_fmt(&rt->gw, b));
	if (!full)
		return o;
	if (rt->mtu)
		cJSON_AddNumberToObject(o, "mtu", rt->mtu);
	if (rt->advmss)
		cJSON_AddNumberToObject(o, "advmss", rt->advmss);
	if (rt->priority)
		cJSON_AddNumberToObject(o, "priority", (unsigned)rt->priority);
	if (rt->has_table)
		cJSON_AddNumberToObject(o, "table", (unsigned)rt->table);
	if (rt->has_scope)
		cJSON_AddNumberToObject(o, "scope", rt->scope);
	return o;
}

static int parse_ipcfg(const cJSON *j, const char *path, const char *addrkey, struct cni_ipcfg *ip, struct cni_error *e)
{
	long long v;
	int r;
	memset(ip, 0, sizeof(*ip));
	ip->iface = -1;
	if (!cJSON_IsObject(j))
		return cni_errf(e, CNI_ERR_DECODE, "%s must be an object", path);
	if ((r = conf_ipnet(j, path, addrkey, &ip->address, e)) < 0)
		return -1;
	if (!r)
		return cni_errf(e, CNI_ERR_DECODE, "%s.%s is required", path, addrkey);
	if (conf_ip(j, path, "gateway", &ip->gateway, e) < 0)
		return -1;
	if ((r = conf_int(j, path, "interface", 0, 1 << 20, &v, e)) < 0)
		return -1;
	if (r)
		ip->iface = (int)v;
	return 0;
}

static int parse_routes(const cJSON *arr, const char *path, struct cni_result *r, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *it;
	size_t i = 0;
	if (!cJSON_IsArray(arr))
		return cni_errf(e, CNI_ERR_DECODE, "%s must be an array", path);
	cJSON_ArrayForEach (it, arr) {
		struct cni_route rt;
		if (cni_route_parse(it, conf_path_idx(p, path, i++), &rt, e) < 0)
			return -1;
		if (cni_result_add_route(r, &rt) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

static int parse_v02(const cJSON *j, const char *what, struct cni_result *r, struct cni_error *e)
{
	static const char *const keys[] = { "ip4", "ip6" };
	char p[CONF_PATH_MAX], pr[CONF_PATH_MAX];
	for (int k = 0; k < 2; k++) {
		const cJSON *o = NULL, *routes = NULL;
		struct cni_ipcfg ip;
		if (conf_object(j, what, keys[k], &o, e) < 0)
			return -1;
		if (!o)
			continue;
		conf_path(p, what, keys[k]);
		if (parse_ipcfg(o, p, "ip", &ip, e) < 0)
			return -1;
		if (cni_result_add_ip(r, &ip) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		if ((routes = conf_item(o, "routes")) && parse_routes(routes, conf_path(pr, p, "routes"), r, e) < 0)
			return -1;
	}
	return 0;
}

/* 0.3.0 and later: "interfaces" */
static int parse_ifaces(const cJSON *j, const char *what, struct cni_result *r, struct cni_error *e)
{
	char p[CONF_PATH_MAX], pi[CONF_PATH_MAX];
	const cJSON *arr = NULL, *it;
	size_t i = 0;

	if (conf_array(j, what, "interfaces", &arr, e) < 0)
		return -1;
	cJSON_ArrayForEach (it, arr) {
		const char *name = NULL, *mac = NULL, *sb = NULL, *sock = NULL, *pci = NULL;
		long long mtu = 0;
		conf_path_idx(pi, conf_path(p, what, "interfaces"), i++);
		if (!cJSON_IsObject(it))
			return cni_errf(e, CNI_ERR_DECODE, "%s must be an object", pi);
		if (conf_string(it, pi, "name", &name, e) < 0 || conf_string(it, pi, "mac", &mac, e) < 0 ||
		    conf_string(it, pi, "sandbox", &sb, e) < 0 || conf_string(it, pi, "socketPath", &sock, e) < 0 ||
		    conf_string(it, pi, "pciID", &pci, e) < 0 || conf_int(it, pi, "mtu", 0, 1 << 30, &mtu, e) < 0)
			return -1;
		int x = cni_result_add_iface(r, name, mac, sb);
		if (x < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		r->ifaces[x].mtu = (int)mtu;
		if ((sock && !(r->ifaces[x].socket_path = strdup(sock))) || (pci && !(r->ifaces[x].pci_id = strdup(pci))))
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

/* 0.3.0 and later: "interfaces", "ips" (their interface indices among those), "routes" */
static int parse_v03(const cJSON *j, const char *what, struct cni_result *r, struct cni_error *e)
{
	char p[CONF_PATH_MAX], pi[CONF_PATH_MAX];
	const cJSON *arr = NULL, *it;
	size_t i = 0;

	if (parse_ifaces(j, what, r, e) < 0 || conf_array(j, what, "ips", &arr, e) < 0)
		return -1;
	cJSON_ArrayForEach (it, arr) {
		struct cni_ipcfg ip;
		if (parse_ipcfg(it, conf_path_idx(pi, conf_path(p, what, "ips"), i++), "address", &ip, e) < 0)
			return -1;
		if (ip.iface >= 0 && (size_t)ip.iface >= r->n_ifaces)
			return cni_errf(e, CNI_ERR_DECODE, "%s.interface: index %d names no interface", pi, ip.iface);
		if (cni_result_add_ip(r, &ip) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	arr = NULL;
	if (conf_array(j, what, "routes", &arr, e) < 0)
		return -1;
	if (arr && parse_routes(arr, conf_path(p, what, "routes"), r, e) < 0)
		return -1;
	return 0;
}

int cni_result_parse(const cJSON *j, const char *what, struct cni_result *r, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *dns = NULL;
	const char *ver = NULL;

	memset(r, 0, sizeof(*r));
	if (!cJSON_IsObject(j))
		return cni_errf(e, CNI_ERR_DECODE, "%s must be a JSON object", what);
	if (conf_string(j, what, "cniVersion", &ver, e) < 0)
		goto fail;
	if (!ver || !*ver)
		ver = conf_item(j, "ip4") || conf_item(j, "ip6") ? "0.2.0" : "1.0.0";
	if (!cni_version_supported(ver)) {
		cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION, "%s has unsupported cniVersion \"%s\"", what, ver);
		goto fail;
	}
	snprintf(r->version, sizeof(r->version), "%s", ver);
	if ((cni_version_cmp(ver, "0.3.0") < 0 ? parse_v02(j, what, r, e) : parse_v03(j, what, r, e)) < 0)
		goto fail;
	if (conf_object(j, what, "dns", &dns, e) < 0)
		goto fail;
	if (dns && cni_dns_parse(dns, conf_path(p, what, "dns"), &r->dns, e) < 0)
		goto fail;
	return 0;
fail:
	/* A result that does not parse is a decoding failure whatever the field. */
	if (e->code == CNI_ERR_INVALID_CONFIG)
		e->code = CNI_ERR_DECODE;
	cni_result_free(r);
	return -1;
}

static cJSON *ipcfg_json(const struct cni_ipcfg *ip, const char *addrkey, int with_version, int with_iface)
{
	char b[IPNET_STRLEN];
	cJSON *o = cJSON_CreateObject();
	if (!o)
		return NULL;
	if (with_version)
		cJSON_AddStringToObject(o, "version", ip_is_v4(&ip->address.ip) ? "4" : "6");
	if (with_iface && ip->iface >= 0)
		cJSON_AddNumberToObject(o, "interface", ip->iface);
	cJSON_AddStringToObject(o, addrkey, ipnet_fmt(&ip->address, b));
	if (ip->gateway.len)
		cJSON_AddStringToObject(o, "gateway", ip_fmt(&ip->gateway, b));
	return o;
}

static cJSON *to_v02(const struct cni_result *r, const char *version, struct cni_error *e)
{
	const struct cni_ipcfg *ip4 = NULL, *ip6 = NULL;
	cJSON *o, *c[2] = { NULL, NULL };
	for (size_t i = 0; i < r->n_ips; i++) {
		if (ip_is_v4(&r->ips[i].address.ip) && !ip4)
			ip4 = &r->ips[i];
		else if (!ip_is_v4(&r->ips[i].address.ip) && !ip6)
			ip6 = &r->ips[i];
	}
	if (!ip4 && !ip6) {
		cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION, "cannot express the result as cniVersion %s: it needs an IP address",
			 version);
		return NULL;
	}
	if (!(o = cJSON_CreateObject()))
		return NULL;
	cJSON_AddStringToObject(o, "cniVersion", version);
	if (ip4)
		cJSON_AddItemToObject(o, "ip4", c[0] = ipcfg_json(ip4, "ip", 0, 0));
	if (ip6)
		cJSON_AddItemToObject(o, "ip6", c[1] = ipcfg_json(ip6, "ip", 0, 0));
	for (size_t i = 0; i < r->n_routes; i++) {
		cJSON *parent = c[ip_is_v4(&r->routes[i].dst.ip) ? 0 : 1], *arr;
		if (!parent)
			continue;
		if (!(arr = cJSON_GetObjectItemCaseSensitive(parent, "routes")))
			cJSON_AddItemToObject(parent, "routes", arr = cJSON_CreateArray());
		cJSON_AddItemToArray(arr, cni_route_to_json(&r->routes[i], 0));
	}
	cJSON_AddItemToObject(o, "dns", cni_dns_to_json(&r->dns));
	return o;
}

cJSON *cni_result_to_json(const struct cni_result *r, const char *version, struct cni_error *e)
{
	cJSON *o, *a;
	int v1 = cni_version_cmp(version, "1.0.0") >= 0;
	/* interface mtu/socketPath/pciID and the route attributes beyond dst and gw came with 1.1.0 */
	int v11 = cni_version_cmp(version, "1.1.0") >= 0;

	if (cni_version_cmp(version, "0.3.0") < 0)
		return to_v02(r, version, e);
	if (!(o = cJSON_CreateObject()))
		return NULL;
	cJSON_AddStringToObject(o, "cniVersion", version);
	if (r->n_ifaces) {
		cJSON_AddItemToObject(o, "interfaces", a = cJSON_CreateArray());
		for (size_t i = 0; i < r->n_ifaces; i++) {
			const struct cni_iface *f = &r->ifaces[i];
			cJSON *x = cJSON_CreateObject();
			cJSON_AddItemToArray(a, x);
			cJSON_AddStringToObject(x, "name", f->name);
			if (f->mac[0])
				cJSON_AddStringToObject(x, "mac", f->mac);
			if (v11 && f->mtu)
				cJSON_AddNumberToObject(x, "mtu", f->mtu);
			if (f->sandbox)
				cJSON_AddStringToObject(x, "sandbox", f->sandbox);
			if (v11 && f->socket_path)
				cJSON_AddStringToObject(x, "socketPath", f->socket_path);
			if (v11 && f->pci_id)
				cJSON_AddStringToObject(x, "pciID", f->pci_id);
		}
	}
	if (r->n_ips) {
		cJSON_AddItemToObject(o, "ips", a = cJSON_CreateArray());
		for (size_t i = 0; i < r->n_ips; i++)
			cJSON_AddItemToArray(a, ipcfg_json(&r->ips[i], "address", !v1, 1));
	}
	if (r->n_routes) {
		cJSON_AddItemToObject(o, "routes", a = cJSON_CreateArray());
		for (size_t i = 0; i < r->n_routes; i++)
			cJSON_AddItemToArray(a, cni_route_to_json(&r->routes[i], v11));
	}
	if (!v1 || !cni_dns_empty(&r->dns))
		cJSON_AddItemToObject(o, "dns", cni_dns_to_json(&r->dns));
	return o;
}
