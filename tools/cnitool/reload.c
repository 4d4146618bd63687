/* cnitool reload: after a firewall reload (`nft flush ruleset`, firewalld, iptables-restore) wiped
 * them, the host-side rules of every live attachment in the result cache come back. Each cached
 * attachment's chain (the network list as cached at ADD) gets CNI_COMMAND=RELOAD per plugin, with
 * the cached result as prevResult and the cached capability args as runtimeConfig; our plugins
 * re-apply their SNAT, spoof check and host-port rules from it, idempotently, and change nothing
 * else. A plugin that does not know RELOAD (not one of ours) refuses it as an unknown command: it is
 * reported and passed over. An attachment whose netns is gone is skipped and reported. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>

#include "libcni.h"
#include "sb.h"

#ifndef NSFS_MAGIC
#define NSFS_MAGIC 0x6e736673
#endif

struct reload_tally {
	unsigned reloaded, skipped, failed;
};

/* The attachment's netns: the cache's "netns", else the sandbox of its interface in the result. */
static const char *netns_of(const struct attachment *a, const cJSON *result)
{
	const cJSON *ifs = cJSON_GetObjectItemCaseSensitive(result, "interfaces"), *i;
	if (a->rt.netns && *a->rt.netns)
		return a->rt.netns;
	cJSON_ArrayForEach (i, ifs) {
		const cJSON *n = cJSON_GetObjectItemCaseSensitive(i, "name"), *s = cJSON_GetObjectItemCaseSensitive(i, "sandbox");
		if (cJSON_IsString(n) && cJSON_IsString(s) && *s->valuestring && strcmp(n->valuestring, a->rt.ifname) == 0)
			return s->valuestring;
	}
	return NULL;
}

/* A network namespace still there: the path is an nsfs file (a bind mount of one, or
 * /proc/<pid>/ns/net of a live process); an unmounted /run/netns file is plain tmpfs. */
static bool netns_alive(const char *path)
{
	struct statfs fs;
	return statfs(path, &fs) == 0 && (unsigned long)fs.f_type == NSFS_MAGIC;
}

/* RELOAD to each plugin of the chain; the plugins that refused it as unknown are listed in *foreign. */
static int reload_chain(const struct cnitool *t, const struct netlist *l, const cJSON *cached, const struct rtconf *rt,
			struct sb *foreign, struct cni_error *e)
{
	for (size_t i = 0; i < l->n_plugins; i++) {
		const struct plugin_conf *p = &l->plugins[i];
		struct cni_error pe = { 0 };
		size_t len;
		char *conf = lc_build_conf(p, l->name, l->version, cached, rt, NULL, &len, &pe);
		int rc = conf ? lc_exec_plugin(t, p, CNI_RELOAD, rt, conf, len, NULL, NULL, &pe) : -1;
		free(conf);
		if (rc == 0)
			continue;
		if (pe.code == CNI_ERR_INVALID_ENV && strncmp(pe.msg, "unknown CNI_COMMAND", 19) == 0) {
			sb_add(foreign, "%s%s", foreign->n ? ", " : "", p->type);
			continue;
		}
		*e = pe;
		cni_err_prefix(e, "plugin %s: ", p->type);
		return -1;
	}
	return 0;
}

/* The chain as cached at ADD; when the cache holds none, the network's current config. */
static int chain_of(const struct attachment *a, const char *conf_dir, struct netlist *l, struct cni_error *e)
{
	if (a->config && a->config_len)
		return netlist_from_bytes(a->config, a->config_len, l, e);
	return netlist_load(conf_dir, a->network, l, e);
}

static void reload_one(const struct cnitool *t, const char *conf_dir, struct attachment *a, struct reload_tally *n)
{
	struct netlist l = { 0 };
	struct cni_error e = { 0 };
	struct sb foreign = { 0 };
	cJSON *cached = NULL;
	const char *ns;
	char *saved = a->rt.netns, *fl;

	printf("%s %s %s: ", a->network, a->rt.container_id, a->rt.ifname);
	if (chain_of(a, conf_dir, &l, &e) < 0 || cache_get_result(t->cache_dir, a->network, l.version, &a->rt, &cached, &e) < 0)
		goto failed;
	if (!cached) {
		cni_errf(&e, CNI_ERR_INVALID_CONFIG, "the cache holds no result for it");
		goto failed;
	}
	if (!(ns = netns_of(a, cached)) || !netns_alive(ns)) {
		printf("skipped: its netns %s is gone\n", ns ? ns : "(not recorded)");
		n->skipped++;
		goto out;
	}
	a->rt.netns = (char *)ns;
	if (reload_chain(t, &l, cached, &a->rt, &foreign, &e) < 0)
		goto failed;
	fl = foreign.n ? sb_take(&foreign, NULL) : NULL;
	printf("reloaded%s%s%s\n", fl ? " (plugins without RELOAD, left as they are: " : "", fl ? fl : "", fl ? ")" : "");
	free(fl);
	n->reloaded++;
	goto out;
failed:
	printf("failed: %s%s%s\n", e.msg, *e.details ? "; " : "", e.details);
	n->failed++;
out:
	a->rt.netns = saved;
	sb_free(&foreign);
	cJSON_Delete(cached);
	netlist_free(&l);
	fflush(stdout);
}

int lc_reload(const struct cnitool *t, const char *conf_dir, const char *network, struct cni_error *e)
{
	struct attachment *att = NULL;
	struct reload_tally n = { 0 };
	size_t cnt = 0;

	if (cache_attachments(t->cache_dir, &att, &cnt, e) < 0)
		return -1;
	for (size_t i = 0; i < cnt; i++)
		if (!network || strcmp(att[i].network, network) == 0)
			reload_one(t, conf_dir, &att[i], &n);
	attachments_free(att, cnt);
	printf("%u reloaded, %u skipped, %u failed\n", n.reloaded, n.skipped, n.failed);
	if (n.failed)
		return cni_errf(e, CNI_ERR_INTERNAL, "%u attachment%s could not be reloaded (listed above)", n.failed,
				n.failed == 1 ? "" : "s");
	return 0;
}
