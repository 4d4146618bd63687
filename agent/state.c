/* Node-local files: <stateDir>/<net>.json (copied to <persistDir>) for the vxlan plugin's
 * cluster mode, and <stateDir>/<net>.lease, the lease a restarted agent keeps. Written by
 * atomic rename. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/stat.h>

#include "agent.h"

static int mkdir_p(const char *dir)
{
	char p[256];
	snprintf(p, sizeof(p), "%s", dir);
	for (char *s = p + 1; *s; s++)
		if (*s == '/') {
			*s = '\0';
			if (mkdir(p, 0755) < 0 && errno != EEXIST)
				return -1;
			*s = '/';
		}
	return mkdir(p, 0755) < 0 && errno != EEXIST ? -1 : 0;
}

static int write_atomic(const char *dir, const char *name, const char *text)
{
	char path[512], tmp[520];
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (mkdir_p(dir) < 0)
		goto fail;
	int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
	if (fd < 0)
		goto fail;
	size_t len = strlen(text);
	bool ok = write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
	ok = close(fd) == 0 && ok;
	if (!ok || rename(tmp, path) < 0) {
		unlink(tmp);
		goto fail;
	}
	return 0;
fail:
	alog("cannot write %s: %s", path, strerror(errno));
	return -1;
}

int state_write(const struct agent *a, const struct anet *n)
{
	char sub[IPNET_STRLEN], blk[IPNET_STRLEN], gw[IP_STRLEN], loc[IP_STRLEN], name[80];
	struct ip g = ipnet_network(&n->block);
	g = ip_next(&g);
	cJSON *j = cJSON_CreateObject();
	cJSON_AddStringToObject(j, "network", n->name);
	cJSON_AddStringToObject(j, "subnet", ipnet_fmt(&n->subnet, sub));
	cJSON_AddStringToObject(j, "block", ipnet_fmt(&n->block, blk));
	cJSON_AddStringToObject(j, "gateway", ip_fmt(&g, gw));
	cJSON_AddNumberToObject(j, "vni", (double)n->vni);
	cJSON_AddNumberToObject(j, "port", (double)n->port);
	cJSON_AddStringToObject(j, "underlayDevice", n->underlay);
	cJSON_AddStringToObject(j, "local", ip_fmt(&n->local, loc));
	cJSON_AddNumberToObject(j, "mtu", (double)n->mtu);
	char *s = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	if (!s)
		return -1;
	size_t l = strlen(s);
	char *t = realloc(s, l + 2);
	if (!t) {
		free(s);
		return -1;
	}
	memcpy(t + l, "\n", 2);
	snprintf(name, sizeof(name), "%s.json", n->name);
	int r = write_atomic(a->state_dir, name, t) < 0 || write_atomic(a->persist_dir, name, t) < 0 ? -1 : 0;
	free(t);
	return r;
}

long long lease_load(const struct agent *a, const char *net)
{
	char path[512], buf[32] = "";
	snprintf(path, sizeof(path), "%s/%s.lease", a->state_dir, net);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	return strtoll(buf, NULL, 10);
}

int lease_save(const struct agent *a, const struct anet *n)
{
	char name[80], buf[32];
	snprintf(name, sizeof(name), "%s.lease", n->name);
	snprintf(buf, sizeof(buf), "%lld\n", n->lease);
	return write_atomic(a->state_dir, name, buf);
}

void lease_remove(const struct agent *a, const char *net)
{
	char path[512];
	snprintf(path, sizeof(path), "%s/%s.lease", a->state_dir, net);
	unlink(path);
}

int state_load_block(const struct agent *a, const struct anet *n, struct ipnet *block)
{
	char path[512], buf[2048];
	snprintf(path, sizeof(path), "%s/%s.json", a->persist_dir, n->name);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = '\0';
	cJSON *j = cJSON_Parse(buf);
	const cJSON *b = cJSON_GetObjectItemCaseSensitive(j, "block");
	struct ipnet x;
	int r = cJSON_IsString(b) && ipnet_parse(b->valuestring, &x) == 0 && x.prefix == n->block_len &&
				ipnet_contains(&n->subnet, &x.ip) && etcd_int(j, "vni", 0) == n->vni
			? 0
			: -1;
	cJSON_Delete(j);
	if (r == 0)
		*block = x;
	return r;
}
