/* Network configuration lists from a conf dir, found and parsed as libcni's LoadNetworkConf does. */
#ifndef CNITOOL_NETCONF_H
#define CNITOOL_NETCONF_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"

struct plugin_conf {
	cJSON *conf; /* the plugin's object as Go decodes it (keys sorted, duplicates resolved) */
	const char *type; /* into conf */
	const char *name; /* into conf, "" when absent */
	/* capabilities the plugin declares true, into conf */
	const char **caps;
	size_t n_caps;
};

struct netlist {
	char *name;
	char *version; /* the list's cniVersion after cniVersions; "" when none is given */
	bool disable_check, disable_gc, inline_only;
	struct plugin_conf *plugins;
	size_t n_plugins;
	char *bytes; /* what libcni caches as "config": the .conflist file, or the up-converted .conf */
	size_t len;
};

/* LoadNetworkConf(dir, name): the first .conflist (sorted) whose name matches, its plugins inline
 * and, unless loadOnlyInlinedPlugins, the .conf files in <dir>/<name>/; else the first .conf or .json
 * plugin config of that name, as a one-plugin list. Every file before the match must parse. */
int netlist_load(const char *dir, const char *name, struct netlist *l, struct cni_error *e);
/* NetworkConfFromBytes (exported for the up-conversion and tests). */
int netlist_from_bytes(const char *bytes, size_t len, struct netlist *l, struct cni_error *e);
void netlist_free(struct netlist *l);

/* Go's ParseVersion: "" is 0.1.0; "x", "x.y", "x.y.z" of decimal numbers. -1 when malformed. */
int go_version_parse(const char *s, int v[3]);
/* strcmp-like on parsed versions; *err set when either does not parse. */
int go_version_cmp(const char *a, const char *b, bool *err);
/* libcni's GreaterThanOrEqualTo(a, b), false when a does not parse. */
bool go_version_ge(const char *a, const char *b);

/* Read a whole file (at most max bytes) NUL-terminated; -1 with errno set. */
int read_file(const char *path, size_t max, char **out, size_t *len);

#endif
