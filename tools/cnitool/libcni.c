/* libcni's CNIConfig in C: chains of plugins run with the config and environment libcni gives them. */
#include "libcni.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

#include "conf.h"
#include "gojson.h"
#include "ipam.h"
#include "version.h"

void rtconf_free(struct rtconf *rt)
{
	free(rt->container_id);
	free(rt->netns);
	free(rt->ifname);
	cni_args_free(rt->args, rt->n_args);
	cJSON_Delete(rt->caps);
	memset(rt, 0, sizeof(*rt));
}

cJSON *lc_result_json(const struct cni_result *r, const char *version, struct cni_error *e)
{
	cJSON *j = cni_result_to_json(r, version, e);
	if (!j) {
		if (!e->code)
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	/* types100.Result marshals through a map (sorted keys, and no dns when it is empty, which
	 * cni_result_to_json already leaves out); the 0.x types marshal as structs, in field order */
	if (go_version_ge(version, "1.0.0"))
		gojson_canon(j);
	return j;
}

/* type="bridge" name="x", as libcni's pluginDescription */
static const char *describe(const struct plugin_conf *p, char *buf, size_t n)
{
	if (*p->name)
		snprintf(buf, n, "type=\"%s\" name=\"%s\"", p->type, p->name);
	else
		snprintf(buf, n, "type=\"%s\"", p->type);
	return buf;
}

/* libcni's Args.AsEnv: the caller's environment with the six CNI_* variables set (CNI_COMMAND
 * by cni_exec_start). GC and STATUS pass an empty RuntimeConf, VERSION fake values. */
static int set_env(const char *cid, const char *netns, const struct cni_kv *args, size_t n_args, const char *ifname,
		   const char *path, struct cni_error *e)
{
	struct sb b = { 0 };
	char *s;
	int rc;

	for (size_t i = 0; i < n_args; i++) {
		if (i)
			sb_puts(&b, ";");
		sb_puts(&b, args[i].key);
		sb_puts(&b, "=");
		sb_puts(&b, args[i].val);
	}
	if (!(s = sb_take(&b, NULL)))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	rc = setenv("CNI_CONTAINERID", cid, 1) | setenv("CNI_NETNS", netns, 1) | setenv("CNI_ARGS", s, 1) |
	     setenv("CNI_IFNAME", ifname, 1) | setenv("CNI_PATH", path, 1);
	free(s);
	return rc ? cni_errf(e, CNI_ERR_INTERNAL, "out of memory") : 0;
}

static int set_rt_env(const struct cnitool *t, const struct rtconf *rt, struct cni_error *e)
{
	if (!rt)
		return set_env("", "", NULL, 0, "", t->path, e);
	return set_env(rt->container_id, rt->netns, rt->args, rt->n_args, rt->ifname, t->path, e);
}

static int start(const struct cnitool *t, const struct plugin_conf *p, enum cni_verb verb, const struct rtconf *rt,
		 const char *conf, size_t len, struct cni_exec *x, struct cni_error *e)
{
	char path[4096];
	if (cni_find_plugin(t->path, p->type, path, sizeof(path), e) < 0)
		return -1;
	if (verb == CNI_VERSION) {
		if (set_env("", "dummy", NULL, 0, "dummy", "dummy", e) < 0)
			return -1;
	} else if (set_rt_env(t, rt, e) < 0) {
		return -1;
	}
	return cni_exec_start(path, verb, conf, len, x, e);
}

/* RawExec.ExecPlugin's outcome: stdout on success, else the plugin's CNI error as libcni reads it. */
static int finish(struct cni_exec *x, char **out, size_t *len, struct cni_error *e)
{
	int status;
	cJSON *j;
	const cJSON *code, *msg, *det;

	if (cni_exec_wait(x, out, len, &status, e) < 0)
		return -1;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
		return 0;
	j = *len ? gojson_parse(*out, *len) : NULL;
	code = cJSON_IsObject(j) ? conf_item(j, "code") : NULL;
	msg = cJSON_IsObject(j) ? conf_item(j, "msg") : NULL;
	det = cJSON_IsObject(j) ? conf_item(j, "details") : NULL;
	if (!*len) {
		char why[64];
		if (WIFSIGNALED(status)) {
			snprintf(why, sizeof(why), "signal: %s", strsignal(WTERMSIG(status)));
			why[8] = (char)tolower((unsigned char)why[8]); /* Go: "signal: killed" */
		} else {
			snprintf(why, sizeof(why), "exit status %d", WEXITSTATUS(status));
		}
		cni_errf(e, CNI_ERR_PLUGIN_EXEC, "netplugin failed with no error message: %s", why);
	} else if (!cJSON_IsObject(j) || (code && (!cJSON_IsNumber(code) || code->valuedouble < 0)) ||
		   (msg && !cJSON_IsString(msg)) || (det && !cJSON_IsString(det))) {
		cni_errf(e, CNI_ERR_PLUGIN_EXEC, "netplugin failed but error parsing its diagnostic message \"%.200s\"", *out);
	} else {
		/* keep the plugin's code; 0 would read as "no error yet" to cni_errf */
		int c = code && code->valuedouble > 0 ? (int)code->valuedouble : CNI_ERR_INTERNAL;
		cni_errf(e, c, "%s", msg ? msg->valuestring : "");
		if (det && *det->valuestring)
			cni_err_details(e, "%s", det->valuestring);
	}
	cJSON_Delete(j);
	free(*out);
	*out = NULL;
	*len = 0;
	return -1;
}

int lc_exec_plugin(const struct cnitool *t, const struct plugin_conf *p, enum cni_verb verb, const struct rtconf *rt,
		   const char *conf, size_t len, char **out, size_t *olen, struct cni_error *e)
{
	struct cni_exec x;
	char *o = NULL;
	size_t ol = 0;
	if (start(t, p, verb, rt, conf, len, &x, e) < 0 || finish(&x, &o, &ol, e) < 0)
		return -1;
	if (out) {
		*out = o;
		*olen = ol;
	} else {
		free(o);
	}
	return 0;
}

/* Set key in a config object as Go's map assignment does (replaces an exact match). */
static int set_member(cJSON *o, const char *key, cJSON *v)
{
	if (!v)
		return -1;
	cJSON_DeleteItemFromObjectCaseSensitive(o, key);
	if (!cJSON_AddItemToObject(o, key, v)) {
		cJSON_Delete(v);
		return -1;
	}
	return 0;
}

/* buildOneConfig (InjectConf + injectRuntimeConfig): name, cniVersion and prevResult set, then
 * runtimeConfig holding the capability args the plugin declares true; marshaled as Go does.
 * rt NULL: GC and STATUS, which inject name and cniVersion only (and GC, when given the valid
 * attachments, both keys libcni sends them under). */
char *lc_build_conf(const struct plugin_conf *p, const char *name, const char *version, const cJSON *prev,
		    const struct rtconf *rt, const cJSON *valid, size_t *len, struct cni_error *e)
{
	cJSON *c = cJSON_Duplicate(p->conf, true), *rc = NULL;
	struct sb b = { 0 };
	char *s;

	if (!c || set_member(c, "name", cJSON_CreateString(name)) < 0 ||
	    set_member(c, "cniVersion", cJSON_CreateString(version)) < 0 ||
	    (prev && set_member(c, "prevResult", cJSON_Duplicate(prev, true)) < 0) ||
	    (valid && (set_member(c, "cni.dev/valid-attachments", cJSON_Duplicate(valid, true)) < 0 ||
		       set_member(c, "cni.dev/attachments", cJSON_Duplicate(valid, true)) < 0)))
		goto oom;
	if (rt && rt->caps) {
		if (!(rc = cJSON_CreateObject()))
			goto oom;
		for (size_t i = 0; i < p->n_caps; i++) {
			const cJSON *v = cJSON_GetObjectItemCaseSensitive(rt->caps, p->caps[i]);
			if (v && set_member(rc, p->caps[i], cJSON_Duplicate(v, true)) < 0)
				goto oom;
		}
		if (rc->child) {
			if (set_member(c, "runtimeConfig", rc) < 0) {
				rc = NULL;
				goto oom;
			}
			/* libcni injects runtimeConfig with a second InjectConf, which decodes the first
			 * one's bytes into a map: from then on prevResult is a map too, its keys sorted */
			gojson_canon(c);
		} else {
			cJSON_Delete(rc);
		}
		rc = NULL;
	}
	gojson_sort_keys(c);
	gojson_marshal(c, &b);
	cJSON_Delete(c);
	if (!(s = sb_take(&b, len)))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory"), NULL;
	return s;
oom:
	cJSON_Delete(rc);
	cJSON_Delete(c);
	sb_free(&b);
	cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	return NULL;
}

/* ExecPluginWithResult's decoding: a result without cniVersion takes the config's
 * (fixupResultVersion), then it must be a version we can read. */
static int parse_result(const char *out, size_t len, const char *conf_version, struct cni_result *r, struct cni_error *e)
{
	cJSON *j = gojson_parse(out, len);
	const cJSON *v;
	int rc;

	if (!j)
		return cni_errf(e, CNI_ERR_DECODE, "failed to unmarshal raw result: the plugin printed no JSON");
	if (cJSON_IsNull(j)) {
		cJSON_Delete(j);
		if (!(j = cJSON_CreateObject()))
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	if (!cJSON_IsObject(j)) {
		cJSON_Delete(j);
		return cni_errf(e, CNI_ERR_DECODE, "failed to unmarshal raw result: not a JSON object");
	}
	gojson_canon(j);
	v = cJSON_GetObjectItemCaseSensitive(j, "cniVersion");
	if (!cJSON_IsString(v) || !*v->valuestring) {
		const char *cv = *conf_version ? conf_version : "0.1.0";
		if (set_member(j, "cniVersion", cJSON_CreateString(cv)) < 0) {
			cJSON_Delete(j);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		v = cJSON_GetObjectItemCaseSensitive(j, "cniVersion");
	}
	if (!cni_version_supported(v->valuestring)) {
		rc = cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION, "unsupported CNI result version \"%s\"", v->valuestring);
	} else {
		rc = cni_result_parse(j, "result", r, e);
	}
	cJSON_Delete(j);
	return rc;
}

/* validatePlugin for every plugin: VERSION run for all at once, then each must list the version. */
static int check_versions(const struct cnitool *t, const struct netlist *l, struct cni_error *e)
{
	static const char stdin_version[] = "{\"cniVersion\":\"1.1.0\"}";
	const char *want = *l->version ? l->version : "0.1.0";
	struct cni_exec *x = calloc(l->n_plugins, sizeof(*x));
	bool *started = calloc(l->n_plugins, sizeof(*started));
	int rc = 0;

	if (!x || !started) {
		free(x);
		free(started);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < l->n_plugins && rc == 0; i++) {
		if (start(t, &l->plugins[i], CNI_VERSION, NULL, stdin_version, sizeof(stdin_version) - 1, &x[i], e) < 0)
			rc = -1;
		else
			started[i] = true;
	}
	/* wait for every one started, even after a failure: no zombies */
	for (size_t i = 0; i < l->n_plugins; i++) {
		struct cni_error pe = { 0 };
		char *out = NULL;
		size_t len = 0;
		const cJSON *cv, *sv, *s;
		cJSON *j;
		bool ok = false;

		if (!started[i])
			continue;
		if (finish(&x[i], &out, &len, &pe) < 0) {
			/* a plugin older than VERSION supports 0.1.0 only */
			if (strcmp(pe.msg, "unknown CNI_COMMAND: VERSION") == 0) {
				ok = strcmp(want, "0.1.0") == 0;
				if (!ok && rc == 0)
					rc = cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION,
						      "plugin %s does not support config version \"%s\"", l->plugins[i].type,
						      want);
			} else if (rc == 0) {
				*e = pe;
				rc = -1;
			}
			continue;
		}
		j = gojson_parse(out, len);
		free(out);
		cv = cJSON_IsObject(j) ? conf_item(j, "cniVersion") : NULL;
		sv = cJSON_IsObject(j) ? conf_item(j, "supportedVersions") : NULL;
		if (rc == 0 && (!cJSON_IsString(cv) || !*cv->valuestring)) {
			rc = cni_errf(e, CNI_ERR_DECODE, "decoding version info: missing field cniVersion");
		} else if (rc == 0 && (!cJSON_IsArray(sv) || !sv->child)) {
			/* a 0.2.0 plugin listing nothing supports 0.1.0 and 0.2.0 (PluginDecoder) */
			if (strcmp(cv->valuestring, "0.2.0") == 0)
				ok = strcmp(want, "0.1.0") == 0 || strcmp(want, "0.2.0") == 0;
			else
				rc = cni_errf(e, CNI_ERR_DECODE, "decoding version info: missing field supportedVersions");
		} else if (rc == 0) {
			cJSON_ArrayForEach (s, sv)
				ok |= cJSON_IsString(s) && strcmp(s->valuestring, want) == 0;
		}
		if (rc == 0 && !ok)
			rc = cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION, "plugin %s does not support config version \"%s\"",
				      l->plugins[i].type, want);
		cJSON_Delete(j);
	}
	free(x);
	free(started);
	return rc;
}

/* utils.ValidateNetworkName and ValidateInterfaceName (the container ID we derive is valid). */
static int validate_names(const char *net, const char *ifname, struct cni_error *e)
{
	size_t n = strlen(ifname);
	if (!*net)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "missing network name:");
	if (!conf_valid_cni_name(net)) {
		cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid characters found in network name");
		cni_err_details(e, "%s", net);
		return -1;
	}
	if (n == 0)
		return cni_errf(e, CNI_ERR_INVALID_ENV, "interface name is empty");
	if (n > 15) {
		cni_errf(e, CNI_ERR_INVALID_ENV, "interface name is too long");
		cni_err_details(e, "interface name should be less than 16 characters");
		return -1;
	}
	if (strcmp(ifname, ".") == 0 || strcmp(ifname, "..") == 0)
		return cni_errf(e, CNI_ERR_INVALID_ENV, "interface name is . or ..");
	for (const char *s = ifname; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return cni_errf(e, CNI_ERR_INVALID_ENV, "interface name contains / or : or whitespace characters");
	return 0;
}

/* Run one plugin's DEL (delNetwork). */
static int del_one(const struct cnitool *t, const struct netlist *l, const struct plugin_conf *p, const cJSON *prev,
		   const struct rtconf *rt, struct cni_error *e)
{
	size_t len;
	char *conf = lc_build_conf(p, l->name, l->version, prev, rt, NULL, &len, e), d[160];
	int rc;
	if (!conf)
		return -1;
	rc = lc_exec_plugin(t, p, CNI_DEL, rt, conf, len, NULL, NULL, e);
	free(conf);
	if (rc < 0)
		cni_err_prefix(e, "plugin %s failed (delete): ", describe(p, d, sizeof(d)));
	return rc;
}

int lc_add(const struct cnitool *t, const struct netlist *l, const struct rtconf *rt, cJSON **result, struct cni_error *e,
	   struct cni_error *rollback)
{
	cJSON *prev = NULL;
	size_t i, ran = 0;
	char d[160];

	*result = NULL;
	if (check_versions(t, l, e) < 0)
		return -1;
	for (i = 0; i < l->n_plugins; i++) {
		const struct plugin_conf *p = &l->plugins[i];
		struct cni_result r;
		char path[4096], *conf = NULL, *out = NULL;
		size_t len, olen;
		cJSON *j;
		int rc;

		if (cni_find_plugin(t->path, p->type, path, sizeof(path), e) < 0 || validate_names(l->name, rt->ifname, e) < 0 ||
		    !(conf = lc_build_conf(p, l->name, l->version, prev, rt, NULL, &len, e)))
			goto fail;
		ran = i + 1;
		rc = lc_exec_plugin(t, p, CNI_ADD, rt, conf, len, &out, &olen, e);
		free(conf);
		if (rc < 0)
			goto fail;
		rc = parse_result(out, olen, l->version, &r, e);
		free(out);
		if (rc < 0)
			goto fail;
		/* the next plugin gets the result as libcni holds it: in the version the plugin wrote */
		j = lc_result_json(&r, r.version, e);
		cni_result_free(&r);
		if (!j)
			goto fail;
		cJSON_Delete(prev);
		prev = j;
	}
	if (cache_add(t->cache_dir, l, rt, prev, e) < 0) {
		cni_err_prefix(e, "failed to set network \"%s\" cached result: ", l->name);
		ran = l->n_plugins;
		i = 0;
		goto rollback;
	}
	*result = prev;
	return 0;
fail:
	cni_err_prefix(e, "plugin %s failed (add): ", describe(&l->plugins[i], d, sizeof(d)));
rollback : {
	/* DEL as DelNetworkList would, in reverse, over the plugins that ran; prevResult is
		 * what the chain had returned so far, in the list's version */
	cJSON *del_prev = NULL;
	if (prev && go_version_ge(l->version, "0.4.0")) {
		struct cni_result r;
		struct cni_error ig = { 0 };
		if (cni_result_parse(prev, "result", &r, &ig) == 0) {
			del_prev = lc_result_json(&r, l->version, &ig);
			cni_result_free(&r);
		}
	}
	for (size_t k = ran; k-- > 0;) {
		struct cni_error de = { 0 };
		if (del_one(t, l, &l->plugins[k], del_prev, rt, &de) < 0 && !rollback->code)
			*rollback = de;
	}
	cJSON_Delete(del_prev);
	cache_del(t->cache_dir, l->name, rt);
}
	cJSON_Delete(prev);
	return -1;
}

int lc_check(const struct cnitool *t, const struct netlist *l, const struct rtconf *rt, struct cni_error *e)
{
	cJSON *cached = NULL;
	int pv[3];

	if (go_version_parse(l->version, pv) < 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid version \"%s\"", l->version);
	if (!go_version_ge(l->version, "0.4.0"))
		return cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION,
				"configuration version \"%s\" does not support the CHECK command", l->version);
	if (l->disable_check)
		return 0;
	if (cache_get_result(t->cache_dir, l->name, l->version, rt, &cached, e) < 0) {
		cni_err_prefix(e, "failed to get network \"%s\" cached result: ", l->name);
		return -1;
	}
	for (size_t i = 0; i < l->n_plugins; i++) {
		const struct plugin_conf *p = &l->plugins[i];
		size_t len;
		char *conf = lc_build_conf(p, l->name, l->version, cached, rt, NULL, &len, e);
		int rc = conf ? lc_exec_plugin(t, p, CNI_CHECK, rt, conf, len, NULL, NULL, e) : -1;
		free(conf);
		if (rc < 0) {
			cJSON_Delete(cached);
			return -1;
		}
	}
	cJSON_Delete(cached);
	return 0;
}

int lc_del(const struct cnitool *t, const struct netlist *l, const struct rtconf *rt, struct cni_error *e)
{
	cJSON *cached = NULL;
	int pv[3];

	if (go_version_parse(l->version, pv) < 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid version \"%s\"", l->version);
	if (go_version_ge(l->version, "0.4.0")) {
		struct cni_error ig = { 0 };
		/* a cache entry that does not read is dropped, not fatal: DEL must go on */
		if (cache_get_result(t->cache_dir, l->name, l->version, rt, &cached, &ig) < 0) {
			cache_del(t->cache_dir, l->name, rt);
			cached = NULL;
		}
	}
	for (size_t i = l->n_plugins; i-- > 0;) {
		if (del_one(t, l, &l->plugins[i], cached, rt, e) < 0) {
			cJSON_Delete(cached);
			return -1;
		}
	}
	cJSON_Delete(cached);
	cache_del(t->cache_dir, l->name, rt);
	return 0;
}

/* errors.Join: one line per error */
static void join_err(struct sb *all, const struct cni_error *e)
{
	if (all->n)
		sb_puts(all, "\n");
	sb_puts(all, e->msg);
	if (*e->details) {
		sb_puts(all, "; ");
		sb_puts(all, e->details);
	}
}

int lc_gc(const struct cnitool *t, const struct netlist *l, bool keep_cached, struct cni_error *e)
{
	struct attachment *att = NULL;
	struct sb all = { 0 };
	struct cni_error ig = { 0 };
	cJSON *valid = NULL;
	size_t n = 0;
	int code = 0;

	if (l->disable_gc)
		return 0;
	/* libcni gives up silently when the cache cannot be listed */
	if (cache_attachments(t->cache_dir, &att, &n, &ig) < 0)
		return 0;
	if (keep_cached && !(valid = cJSON_CreateArray())) {
		attachments_free(att, n);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		struct cni_error de = { 0 };
		if (strcmp(att[i].network, l->name) != 0)
			continue;
		if (valid) {
			/* types.GCAttachment */
			cJSON *a = cJSON_CreateObject();
			if (!a || !cJSON_AddStringToObject(a, "containerID", att[i].rt.container_id) ||
			    !cJSON_AddStringToObject(a, "ifname", att[i].rt.ifname) || !cJSON_AddItemToArray(valid, a)) {
				cJSON_Delete(a);
				cJSON_Delete(valid);
				attachments_free(att, n);
				return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			}
			continue;
		}
		if (lc_del(t, l, &att[i].rt, &de) < 0) {
			cni_err_prefix(&de, "failed to delete stale attachment %s %s: ", att[i].rt.container_id,
				       att[i].rt.ifname);
			join_err(&all, &de);
			code = code ? code : de.code;
		}
	}
	attachments_free(att, n);
	if (go_version_ge(l->version, "1.1.0")) {
		for (size_t i = 0; i < l->n_plugins; i++) {
			const struct plugin_conf *p = &l->plugins[i];
			struct cni_error ge = { 0 };
			size_t len;
			char *conf = lc_build_conf(p, l->name, l->version, NULL, NULL, valid, &len, &ge);
			if (!conf || lc_exec_plugin(t, p, CNI_GC, NULL, conf, len, NULL, NULL, &ge) < 0) {
				cni_err_prefix(&ge, "failed to GC plugin %s: ", p->type);
				join_err(&all, &ge);
				code = code ? code : ge.code;
			}
			free(conf);
		}
	}
	cJSON_Delete(valid);
	if (all.n || all.oom) {
		char *s = sb_take(&all, NULL);
		cni_errf(e, code, "%s", s ? s : "GC failed");
		free(s);
		return -1;
	}
	sb_free(&all);
	return 0;
}

int lc_status(const struct cnitool *t, const struct netlist *l, struct cni_error *e)
{
	if (!go_version_ge(l->version, "1.1.0"))
		return 0;
	for (size_t i = 0; i < l->n_plugins; i++) {
		const struct plugin_conf *p = &l->plugins[i];
		size_t len;
		char *conf = lc_build_conf(p, l->name, l->version, NULL, NULL, NULL, &len, e);
		int rc = conf ? lc_exec_plugin(t, p, CNI_STATUS, NULL, conf, len, NULL, NULL, e) : -1;
		free(conf);
		if (rc < 0)
			return -1;
	}
	return 0;
}
