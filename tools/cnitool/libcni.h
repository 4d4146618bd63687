/* The runtime side of CNI as libcni's CNIConfig does it: plugin chains, the result cache, GC and STATUS. */
#ifndef CNITOOL_LIBCNI_H
#define CNITOOL_LIBCNI_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "netconf.h"
#include "result.h"
#include "skel.h"

/* libcni's default CacheDir; results live in <dir>/results. */
#define LIBCNI_CACHE_DIR "/var/lib/cni"

/* libcni's RuntimeConf: one attachment. */
struct rtconf {
	char *container_id;
	char *netns;
	char *ifname;
	struct cni_kv *args; /* CNI_ARGS pairs (libcni's [][2]string), in order */
	size_t n_args;
	cJSON *caps; /* capability args: an object, or NULL */
};

/* libcni's CNIConfig. */
struct cnitool {
	const char *path; /* CNI_PATH, colon-separated */
	const char *cache_dir; /* holds results/ */
};

void rtconf_free(struct rtconf *rt);

/* AddNetworkList, after checking every plugin's VERSION supports the list's version. On success
 * *result is the final result as libcni holds it (the last plugin's version, Go's member order).
 * A failure runs DEL for the plugins already run, the failed one included, as the spec asks of a
 * runtime ("a delete must still be executed even if the add fails"); a failing rollback is
 * reported in *rollback. */
int lc_add(const struct cnitool *t, const struct netlist *l, const struct rtconf *rt, cJSON **result, struct cni_error *e,
	   struct cni_error *rollback);
/* CheckNetworkList: every plugin, in order, with the cached result as prevResult. */
int lc_check(const struct cnitool *t, const struct netlist *l, const struct rtconf *rt, struct cni_error *e);
/* DelNetworkList: every plugin in reverse order, prevResult from the cache; the cache entry goes. */
int lc_del(const struct cnitool *t, const struct netlist *l, const struct rtconf *rt, struct cni_error *e);
/* GCNetworkList. As the Go cnitool calls it (no valid attachments): DEL every cached attachment of
 * the network, then GC each plugin (cniVersion >= 1.1.0). keep_cached: the network's cached
 * attachments are the valid ones, so nothing is deleted and the plugins' GC collects only what the
 * cache does not know (leaked reservations, links, rules). */
int lc_gc(const struct cnitool *t, const struct netlist *l, bool keep_cached, struct cni_error *e);
/* GetStatusNetworkList: STATUS each plugin (cniVersion >= 1.1.0), the first error wins. */
int lc_status(const struct cnitool *t, const struct netlist *l, struct cni_error *e);

/* RELOAD (see enum cni_verb) for every cached attachment (of `network` when not NULL): one line
 * per attachment on stdout (reloaded, skipped: netns gone, or failed: why), then the tally. The
 * chain is the one cached at ADD, else the network's config in conf_dir. -1 when any failed. */
int lc_reload(const struct cnitool *t, const char *conf_dir, const char *network, struct cni_error *e);

/* One plugin's config as libcni builds it (buildOneConfig), and its execution (RawExec). */
char *lc_build_conf(const struct plugin_conf *p, const char *name, const char *version, const cJSON *prev,
		    const struct rtconf *rt, const cJSON *valid, size_t *len, struct cni_error *e);
int lc_exec_plugin(const struct cnitool *t, const struct plugin_conf *p, enum cni_verb verb, const struct rtconf *rt,
		   const char *conf, size_t len, char **out, size_t *olen, struct cni_error *e);

/* The result JSON as libcni marshals a result of `version` (types100 sorts its keys, drops an
 * empty dns; types040 keeps struct order and an empty dns). NULL with e filled. */
cJSON *lc_result_json(const struct cni_result *r, const char *version, struct cni_error *e);

/* The cache (cache.c), laid out and encoded exactly as libcni's. */
int cache_path(const char *dir, const char *net, const struct rtconf *rt, char **out, struct cni_error *e);
int cache_add(const char *dir, const struct netlist *l, const struct rtconf *rt, const cJSON *result, struct cni_error *e);
/* getCachedResult: the cached result converted to `version`; *result NULL when there is none. */
int cache_get_result(const char *dir, const char *net, const char *version, const struct rtconf *rt, cJSON **result,
		     struct cni_error *e);
void cache_del(const char *dir, const char *net, const struct rtconf *rt);

struct attachment {
	char *network;
	struct rtconf rt;
	char *config; /* the network list's bytes as cached at ADD ("config"), NULL when absent */
	size_t config_len;
};
/* GetCachedAttachments(""): every valid cniCacheV1 entry, in file name order. */
int cache_attachments(const char *dir, struct attachment **out, size_t *n, struct cni_error *e);
void attachments_free(struct attachment *v, size_t n);

#endif
