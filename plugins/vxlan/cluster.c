/* vxlan cluster mode: the node-local state file of cni-c-agent (docs/cluster.md) read, and the
 * config completed from it: default ipam (host-local over the cluster subnet, limited to this
 * node's block), isGateway true, the state's MTU. */
#include "cluster.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf.h"

#define STATE_MAX 65536

/* Fields the state file provides: in the config they would contradict it. */
static const char *const refused[] = { "peers", "group", "vni", "port", "local", "underlayDevice", NULL };

static int state_read(const char *path, char **buf, struct cni_error *e)
{
	size_t len;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT || errno == ENOTDIR ? 0
							   : cni_errf(e, CNI_ERR_IO, "vxlan: %s: %s", path, cni_strerror(errno));
	int r = cni_read_bounded(fd, STATE_MAX, buf, &len, e);
	close(fd);
	if (r < 0) {
		cni_err_prefix(e, "vxlan: %s: ", path);
		return -1;
	}
	return 1;
}

static int state_bad(const char *path, const char *what, struct cni_error *e)
{
	return cni_errf(e, CNI_ERR_TRY_AGAIN, "vxlan: cluster state %s: %s (written by cni-c-agent)", path, what);
}

static int state_ipnet(const cJSON *j, const char *key, struct ipnet *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	return cJSON_IsString(v) && ipnet_parse(v->valuestring, out) == 0 ? 0 : -1;
}

static int state_int(const cJSON *j, const char *key, long long min, long long max, long long *out)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(j, key);
	if (!cJSON_IsNumber(v) || v->valuedouble < (double)min || v->valuedouble > (double)max)
		return -1;
	*out = (long long)v->valuedouble;
	return 0;
}

static int state_fields(struct vx_cluster *k, const cJSON *j, const char *path, struct cni_error *e)
{
	const cJSON *ul = cJSON_GetObjectItemCaseSensitive(j, "underlayDevice");
	const cJSON *lo = cJSON_GetObjectItemCaseSensitive(j, "local");
	const cJSON *gw = cJSON_GetObjectItemCaseSensitive(j, "gateway");
	if (state_ipnet(j, "subnet", &k->subnet) < 0 || state_ipnet(j, "block", &k->block) < 0 ||
	    k->block.ip.len != k->subnet.ip.len || k->block.prefix < k->subnet.prefix ||
	    !ipnet_contains(&k->subnet, &k->block.ip))
		return state_bad(path, "no valid \"subnet\" and \"block\" inside it", e);
	if (state_int(j, "vni", 1, 16777215, &k->vni) < 0 || state_int(j, "port", 1, 65535, &k->port) < 0)
		return state_bad(path, "no valid \"vni\" and \"port\"", e);
	if (!cJSON_IsString(ul) || !conf_valid_ifname(ul->valuestring) || !cJSON_IsString(lo) ||
	    ip_parse(lo->valuestring, &k->local) < 0)
		return state_bad(path, "no valid \"underlayDevice\" and \"local\"", e);
	snprintf(k->underlay, sizeof(k->underlay), "%s", ul->valuestring);
	k->block.ip = ipnet_network(&k->block);
	k->gw = ip_next(&k->block.ip);
	if (cJSON_IsString(gw) && (ip_parse(gw->valuestring, &k->gw) < 0 || !ipnet_contains(&k->block, &k->gw)))
		return state_bad(path, "\"gateway\" is not an address of the block", e);
	k->mtu = 0;
	if (cJSON_GetObjectItemCaseSensitive(j, "mtu") && state_int(j, "mtu", 68, 65535, &k->mtu) < 0)
		return state_bad(path, "\"mtu\" out of range 68..65535", e);
	return 0;
}

/* <clusterDir>/<net>.json, else the persistDir copy. */
static int state_load(struct vx_cluster *k, struct cni_error *e)
{
	const char *dirs[] = { k->dir, k->persist_dir };
	for (int i = 0; i < 2; i++) {
		char path[4096], *buf = NULL;
		snprintf(path, sizeof(path), "%s/%s.json", dirs[i], k->net);
		int r = state_read(path, &buf, e);
		if (r <= 0) {
			if (r < 0)
				return -1;
			continue;
		}
		cJSON *j = cJSON_Parse(buf);
		free(buf);
		r = j ? state_fields(k, j, path, e) : state_bad(path, "not JSON", e);
		cJSON_Delete(j);
		if (r < 0)
			return -1;
		k->have_state = true;
		return 0;
	}
	return 0;
}

int vx_cluster_no_state(const struct vx_cluster *k, int code, struct cni_error *e)
{
	return cni_errf(e, code,
			"vxlan: cluster network \"%s\" has no state yet (%s/%s.json, %s/%s.json): is cni-c-agent running with "
			"this network?",
			k->net, k->dir, k->net, k->persist_dir, k->net);
}

static int oom(struct cni_error *e)
{
	return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
}

/* The range of this node's block: its second host to its last (the IPv4 broadcast left out). */
static cJSON *block_range(const struct vx_cluster *k)
{
	char b[IPNET_STRLEN];
	struct ip start = ip_next(&k->gw), end = ipnet_last(&k->block);
	if (ip_is_v4(&end))
		end = ip_prev(&end);
	cJSON *r = cJSON_CreateObject();
	if (!r || !cJSON_AddStringToObject(r, "subnet", ipnet_fmt(&k->subnet, b)) ||
	    !cJSON_AddStringToObject(r, "rangeStart", ip_fmt(&start, b)) ||
	    !cJSON_AddStringToObject(r, "rangeEnd", ip_fmt(&end, b)) ||
	    !cJSON_AddStringToObject(r, "gateway", ip_fmt(&k->gw, b))) {
		cJSON_Delete(r);
		return NULL;
	}
	return r;
}

/* ipam without "type" (or absent): host-local over the block; its other fields (dataDir, routes)
 * kept. Without state (DEL, GC, STATUS) a range is still needed to parse, never used: host-local
 * releases and collects by owner. */
static int complete_ipam(struct cni_ctx *c, const struct vx_cluster *k, struct cni_error *e)
{
	cJSON *ipam = cJSON_GetObjectItemCaseSensitive(c->conf, "ipam");
	if (ipam && !cJSON_IsObject(ipam))
		return 0; /* refused by the common parser, naming it */
	if (ipam && cJSON_GetObjectItemCaseSensitive(ipam, "type"))
		return 0;
	if (!ipam && !(ipam = cJSON_AddObjectToObject(c->conf, "ipam")))
		return oom(e);
	cJSON_DeleteItemFromObjectCaseSensitive(ipam, "ranges");
	cJSON_DeleteItemFromObjectCaseSensitive(ipam, "subnet");
	cJSON *ranges = cJSON_AddArrayToObject(ipam, "ranges"), *set = cJSON_CreateArray(), *r = NULL;
	if (k->have_state)
		r = block_range(k);
	else if ((r = cJSON_CreateObject()))
		cJSON_AddStringToObject(r, "subnet", "10.200.0.0/16");
	if (!cJSON_AddStringToObject(ipam, "type", "host-local") || !ranges || !set || !r || !cJSON_AddItemToArray(set, r) ||
	    !cJSON_AddItemToArray(ranges, set)) {
		cJSON_Delete(set);
		return oom(e);
	}
	return 0;
}

/* The config as the plugin and its IPAM (in-process or exec'd) will read it. */
static int complete_conf(struct cni_ctx *c, const struct vx_cluster *k, struct cni_error *e)
{
	if (complete_ipam(c, k, e) < 0)
		return -1;
	if (!cJSON_GetObjectItemCaseSensitive(c->conf, "isGateway") && !cJSON_AddTrueToObject(c->conf, "isGateway"))
		return oom(e);
	if (k->mtu && !cJSON_GetObjectItemCaseSensitive(c->conf, "mtu") &&
	    !cJSON_AddNumberToObject(c->conf, "mtu", (double)k->mtu))
		return oom(e);
	char *s = cJSON_PrintUnformatted(c->conf);
	if (!s)
		return oom(e);
	free(c->stdin_buf);
	c->stdin_buf = s;
	c->stdin_len = strlen(s);
	return 0;
}

static int parse_fields(const cJSON *root, struct vx_cluster *k, struct cni_error *e)
{
	for (int i = 0; refused[i]; i++)
		if (conf_item(root, refused[i]))
			return cni_errf(e, CNI_ERR_INVALID_CONFIG,
					"invalid config: field \"%s\" cannot be used with \"cluster\" (it comes from the node's "
					"cluster state, written by cni-c-agent)",
					refused[i]);
	k->dir = "/run/cni-c/cluster";
	k->persist_dir = "/var/lib/cni-c/cluster";
	if (conf_string(root, "", "clusterDir", &k->dir, e) < 0 || conf_string(root, "", "persistDir", &k->persist_dir, e) < 0)
		return -1;
	if (!conf_valid_cni_name(k->net))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"cluster\": \"%s\" is not a valid network name", k->net);
	if (!*k->dir || !*k->persist_dir)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: fields \"clusterDir\" and \"persistDir\" must not be empty");
	return 0;
}

int vx_cluster_parse(struct cni_ctx *c, struct vx_cluster *k, struct cni_error *e)
{
	memset(k, 0, sizeof(*k));
	if (!conf_item(c->conf, "cluster"))
		return 0;
	if (conf_string(c->conf, "", "cluster", &k->net, e) < 0 || parse_fields(c->conf, k, e) < 0 || state_load(k, e) < 0)
		return -1;
	if (!k->have_state && (c->verb == CNI_ADD || c->verb == CNI_CHECK))
		return vx_cluster_no_state(k, CNI_ERR_TRY_AGAIN, e);
	return complete_conf(c, k, e) < 0 ? -1 : 1;
}
