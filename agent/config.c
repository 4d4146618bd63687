/* The agent's configuration file (docs/cluster.md "Agent configuration"): every error names the
 * field. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent.h"
#include "conf.h"

static char *read_file(const char *path, struct cni_error *e)
{
	FILE *f = fopen(path, "r");
	char *buf = NULL;
	size_t len = 0, cap = 0;
	if (!f) {
		cni_errf(e, CNI_ERR_IO, "cannot read config %s: %s", path, strerror(errno));
		return NULL;
	}
	for (;;) {
		if (len + 4096 + 1 > cap) {
			char *b = realloc(buf, cap = cap ? cap * 2 : 8192);
			if (!b)
				break;
			buf = b;
		}
		size_t r = fread(buf + len, 1, 4096, f);
		len += r;
		if (r < 4096)
			break;
	}
	fclose(f);
	if (buf)
		buf[len] = '\0';
	return buf;
}

static int copy_str(const cJSON *o, const char *parent, const char *key, char *dst, size_t n, struct cni_error *e)
{
	const char *s;
	int r = conf_string(o, parent, key, &s, e);
	if (r <= 0)
		return r;
	if (!s[0] || strlen(s) >= n)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s%s%s\": must be 1 to %zu characters",
				parent ? parent : "", parent ? "." : "", key, n - 1);
	strcpy(dst, s);
	return 1;
}

static int node_name_default(struct agent *a, struct cni_error *e)
{
	FILE *f = fopen("/etc/machine-id", "r");
	char buf[128] = "";
	if (f) {
		if (!fgets(buf, sizeof(buf), f))
			buf[0] = '\0';
		fclose(f);
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	if (!buf[0])
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"nodeName\" not given and /etc/machine-id is missing or empty");
	snprintf(a->node, sizeof(a->node), "%s", buf);
	return 0;
}

static int endpoints(struct agent *a, const cJSON *root, struct cni_error *e)
{
	const cJSON *arr, *it;
	char p[CONF_PATH_MAX];
	if (conf_array(root, NULL, "etcdEndpoints", &arr, e) <= 0)
		return e->code ? -1 : cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"etcdEndpoints\" is required");
	cJSON_ArrayForEach (it, arr) {
		const char *s;
		conf_path_idx(p, "etcdEndpoints", (size_t)a->etcd.n);
		if (conf_val_string(it, p, &s, e) < 0)
			return -1;
		if (a->etcd.n >= ETCD_MAX_EP)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"etcdEndpoints\": more than %d",
					ETCD_MAX_EP);
		if (http_parse_url(s, &a->etcd.ep[a->etcd.n]) < 0)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\": \"%s\" is not http://<address>:<port>", p, s);
		a->etcd.n++;
	}
	if (!a->etcd.n)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"etcdEndpoints\" is empty");
	return 0;
}

static int net_block(struct anet *n, const cJSON *o, const char *p, struct cni_error *e)
{
	long long bl = n->subnet.ip.len == 4 ? 24 : 64;
	char f[CONF_PATH_MAX];
	if (conf_ipnet(o, p, "subnet", &n->subnet, e) <= 0)
		return e->code ? -1
			       : cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" is required",
					  conf_path(f, p, "subnet"));
	if (!ipnet_is_network(&n->subnet))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": host bits set",
				conf_path(f, p, "subnet"));
	bl = n->subnet.ip.len == 4 ? 24 : 64;
	if (conf_int(o, p, "blockSize", 1, n->subnet.ip.len * 8 - 2, &bl, e) < 0)
		return -1;
	if (bl <= n->subnet.prefix || bl - n->subnet.prefix > 16 || n->subnet.ip.len * 8 - bl >= 64)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"%s\": %lld must be longer than the subnet's /%d (by at most 16)",
				conf_path(f, p, "blockSize"), bl, n->subnet.prefix);
	n->block_len = (int)bl;
	return 0;
}

static int net_parse(struct agent *a, struct anet *n, const cJSON *o, size_t idx, struct cni_error *e)
{
	char p[CONF_PATH_MAX], f[CONF_PATH_MAX];
	conf_path_idx(p, "networks", idx);
	if (copy_str(o, p, "name", n->name, sizeof(n->name), e) <= 0)
		return e->code ? -1
			       : cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" is required",
					  conf_path(f, p, "name"));
	if (!conf_valid_cni_name(n->name))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": \"%s\" is not a valid name",
				conf_path(f, p, "name"), n->name);
	for (int i = 0; i < a->n_nets; i++)
		if (&a->nets[i] != n && strcmp(a->nets[i].name, n->name) == 0)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": \"%s\" given twice",
					conf_path(f, p, "name"), n->name);
	if (net_block(n, o, p, e) < 0)
		return -1;
	n->port = 4789;
	n->grace = 86400;
	if (conf_int(o, p, "vni", 1, 16777215, &n->vni, e) <= 0)
		return e->code ? -1
			       : cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" is required",
					  conf_path(f, p, "vni"));
	int r;
	if (conf_int(o, p, "port", 1, 65535, &n->port, e) < 0 || conf_int(o, p, "graceSeconds", 0, 1LL << 40, &n->grace, e) < 0 ||
	    (r = conf_int(o, p, "mtu", 576, 65535, &n->mtu, e)) < 0)
		return -1;
	n->mtu_given = r == 1;
	if (copy_str(o, p, "underlayDevice", n->underlay, sizeof(n->underlay), e) < 0 ||
	    (r = conf_ip(o, p, "local", &n->local, e)) < 0)
		return -1;
	n->local_given = r == 1;
	snprintf(n->vtep, sizeof(n->vtep), "vxlan%lld", n->vni);
	snprintf(n->bridge, sizeof(n->bridge), "vxbr%lld", n->vni);
	snprintf(n->key_config, sizeof(n->key_config), "%s/%s/config", a->prefix, n->name);
	snprintf(n->key_blocks, sizeof(n->key_blocks), "%s/%s/blocks/", a->prefix, n->name);
	snprintf(n->key_nodes, sizeof(n->key_nodes), "%s/%s/nodes/", a->prefix, n->name);
	snprintf(n->key_self, sizeof(n->key_self), "%s%s", n->key_nodes, a->node);
	n->watch.fd = -1;
	return 0;
}

static int top_level(struct agent *a, const cJSON *root, struct cni_error *e)
{
	const cJSON *nets, *it;
	snprintf(a->prefix, sizeof(a->prefix), "/cni-c/v1");
	snprintf(a->state_dir, sizeof(a->state_dir), "/run/cni-c/cluster");
	snprintf(a->persist_dir, sizeof(a->persist_dir), "/var/lib/cni-c/cluster");
	a->ttl = 10;
	if (endpoints(a, root, e) < 0 || copy_str(root, NULL, "prefix", a->prefix, sizeof(a->prefix), e) < 0 ||
	    copy_str(root, NULL, "stateDir", a->state_dir, sizeof(a->state_dir), e) < 0 ||
	    copy_str(root, NULL, "persistDir", a->persist_dir, sizeof(a->persist_dir), e) < 0 ||
	    conf_int(root, NULL, "leaseTTL", 2, 3600, &a->ttl, e) < 0)
		return -1;
	int r = copy_str(root, NULL, "nodeName", a->node, sizeof(a->node), e);
	if (r < 0 || (r == 0 && node_name_default(a, e) < 0))
		return -1;
	if (strchr(a->node, '/'))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"nodeName\": \"%s\" contains '/'", a->node);
	if (a->prefix[0] != '/' || a->prefix[strlen(a->prefix) - 1] == '/')
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"prefix\": \"%s\" must start with '/' and not end with one", a->prefix);
	if (conf_array(root, NULL, "networks", &nets, e) < 0)
		return -1;
	cJSON_ArrayForEach (it, nets) {
		if (a->n_nets >= AGENT_MAX_NETS)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"networks\": more than %d",
					AGENT_MAX_NETS);
		if (!cJSON_IsObject(it))
			return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"networks[%d]\" must be an object", a->n_nets);
		a->n_nets++;
		if (net_parse(a, &a->nets[a->n_nets - 1], it, (size_t)a->n_nets - 1, e) < 0)
			return -1;
	}
	return 0;
}

int agent_config_load(struct agent *a, const char *path, struct cni_error *e)
{
	char *txt = read_file(path, e);
	if (!txt)
		return -1;
	cJSON *root = cJSON_Parse(txt);
	free(txt);
	if (!cJSON_IsObject(root)) {
		cJSON_Delete(root);
		return cni_errf(e, CNI_ERR_DECODE, "config %s: not a JSON object", path);
	}
	a->etcd.timeout_ms = 2000;
	int r = top_level(a, root, e);
	cJSON_Delete(root);
	if (r < 0)
		cni_err_prefix(e, "%s: ", path);
	return r;
}
