/* libcni's result cache, byte-compatible: <cacheDir>/results/<network>-<containerID>-<ifname>, kind cniCacheV1. */
#include "libcni.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "gojson.h"
#include "version.h"

#define CACHE_FILE_MAX (16u << 20)

int cache_path(const char *dir, const char *net, const struct rtconf *rt, char **out, struct cni_error *e)
{
	*out = NULL;
	if (!*net || !*rt->container_id || !*rt->ifname)
		return cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"cache file path requires network name (\"%s\"), container ID (\"%s\"), and interface name (\"%s\")", net,
			rt->container_id, rt->ifname);
	/* libcni joins them unchecked (only ADD validates them); a '/' would leave results/ */
	if (strchr(net, '/') || strchr(rt->container_id, '/') || strchr(rt->ifname, '/'))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "cache file path: '/' in network name \"%s\" or interface name \"%s\"",
				net, rt->ifname);
	if (asprintf(out, "%s/results/%s-%s-%s", dir, net, rt->container_id, rt->ifname) < 0) {
		*out = NULL;
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

/* os.MkdirAll(path, 0700) */
static int mkdir_all(char *path)
{
	struct stat st;
	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : (errno = ENOTDIR, -1);
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		int r = mkdir(path, 0700);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return -1;
	}
	return mkdir(path, 0700) < 0 && errno != EEXIST ? -1 : 0;
}

/* Write bytes to path so a reader sees the old file or the new one, never a part (libcni writes
 * in place; a concurrent GC in another runtime could read half a file). */
static int write_atomic(const char *path, const char *bytes, size_t len, struct cni_error *e)
{
	char *tmp = NULL, *dir = strdup(path);
	const char *base = strrchr(path, '/') + 1;
	int fd = -1, rc = -1;

	if (!dir || asprintf(&tmp, "%.*s.%s.tmp-XXXXXX", (int)(base - path), path, base) < 0) {
		tmp = NULL;
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	*strrchr(dir, '/') = '\0';
	if (mkdir_all(dir) < 0) {
		cni_errf(e, CNI_ERR_IO, "mkdir %s: %s", dir, cni_strerror(errno));
		goto out;
	}
	if ((fd = mkostemp(tmp, O_CLOEXEC)) < 0) { /* mode 0600, as libcni's */
		cni_errf(e, CNI_ERR_IO, "open %s: %s", tmp, cni_strerror(errno));
		goto out;
	}
	for (size_t off = 0; off < len;) {
		ssize_t w = write(fd, bytes + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			cni_errf(e, CNI_ERR_IO, "write %s: %s", tmp, w < 0 ? cni_strerror(errno) : "short write");
			goto out;
		}
		off += (size_t)w;
	}
	if (close(fd) < 0) {
		fd = -1;
		cni_errf(e, CNI_ERR_IO, "write %s: %s", tmp, cni_strerror(errno));
		goto out;
	}
	fd = -1;
	if (rename(tmp, path) < 0) {
		cni_errf(e, CNI_ERR_IO, "rename %s: %s", path, cni_strerror(errno));
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0)
		close(fd);
	if (rc < 0 && tmp)
		unlink(tmp);
	free(tmp);
	free(dir);
	return rc;
}

int cache_add(const char *dir, const struct netlist *l, const struct rtconf *rt, const cJSON *result, struct cni_error *e)
{
	struct sb b = { 0 };
	cJSON *res = NULL;
	char *path = NULL, *bytes;
	size_t len;
	int rc = -1;

	if (cache_path(dir, l->name, rt, &path, e) < 0)
		return -1;
	/* the struct cachedInfo, member by member; result and capabilityArgs are Go maps: sorted */
	sb_puts(&b, "{\"kind\":\"cniCacheV1\",\"containerId\":");
	gojson_string(rt->container_id, &b);
	sb_puts(&b, ",\"config\":\"");
	gojson_base64(l->bytes, l->len, &b);
	sb_puts(&b, "\",\"ifName\":");
	gojson_string(rt->ifname, &b);
	sb_puts(&b, ",\"networkName\":");
	gojson_string(l->name, &b);
	if (rt->netns && *rt->netns) {
		sb_puts(&b, ",\"netns\":");
		gojson_string(rt->netns, &b);
	}
	if (rt->n_args) {
		sb_puts(&b, ",\"cniArgs\":[");
		for (size_t i = 0; i < rt->n_args; i++) {
			sb_puts(&b, i ? ",[" : "[");
			gojson_string(rt->args[i].key, &b);
			sb_puts(&b, ",");
			gojson_string(rt->args[i].val, &b);
			sb_puts(&b, "]");
		}
		sb_puts(&b, "]");
	}
	if (rt->caps && rt->caps->child) {
		sb_puts(&b, ",\"capabilityArgs\":");
		gojson_marshal(rt->caps, &b);
	}
	if (result && result->child) {
		if (!(res = cJSON_Duplicate(result, true))) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto out;
		}
		gojson_canon(res);
		sb_puts(&b, ",\"result\":");
		gojson_marshal(res, &b);
	}
	sb_puts(&b, "}");
	if (!(bytes = sb_take(&b, &len))) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = write_atomic(path, bytes, len, e);
	free(bytes);
out:
	sb_free(&b);
	cJSON_Delete(res);
	free(path);
	return rc;
}

void cache_del(const char *dir, const char *net, const struct rtconf *rt)
{
	struct cni_error ignore = { 0 };
	char *path;
	if (cache_path(dir, net, rt, &path, &ignore) < 0)
		return;
	unlink(path);
	free(path);
}

/* types.Result from cached JSON (create.CreateFromBytes), then GetAsVersion(version). */
static int convert_result(const cJSON *j, const char *version, cJSON **out, struct cni_error *e)
{
	struct cni_result r;
	cJSON *copy = cJSON_Duplicate(j, true);
	const cJSON *v;
	int rc;

	if (!copy)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	/* DecodeVersion: a result without cniVersion is 0.1.0 */
	v = conf_item(copy, "cniVersion");
	if (cJSON_IsObject(copy) && (!v || (cJSON_IsString(v) && !*v->valuestring))) {
		cJSON_DeleteItemFromObjectCaseSensitive(copy, "cniVersion");
		cJSON_AddStringToObject(copy, "cniVersion", "0.1.0");
	}
	rc = cni_result_parse(copy, "cached result", &r, e);
	cJSON_Delete(copy);
	if (rc < 0)
		return -1;
	if (!cni_version_supported(version)) {
		cni_result_free(&r);
		return cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION,
				"failed to convert cached result to config version \"%s\": unsupported CNI result version \"%s\"",
				version, version);
	}
	*out = lc_result_json(&r, version, e);
	cni_result_free(&r);
	if (!*out) {
		cni_err_prefix(e, "failed to convert cached result to config version \"%s\": ", version);
		return -1;
	}
	return 0;
}

int cache_get_result(const char *dir, const char *net, const char *version, const struct rtconf *rt, cJSON **result,
		     struct cni_error *e)
{
	char *path, *bytes;
	size_t len;
	cJSON *j;
	const cJSON *kind, *res;
	int rc;

	*result = NULL;
	if (cache_path(dir, net, rt, &path, e) < 0)
		return -1;
	rc = read_file(path, CACHE_FILE_MAX, &bytes, &len);
	free(path);
	if (rc < 0) /* libcni ignores read errors: the cached result may not exist on disk */
		return 0;
	j = gojson_parse(bytes, len);
	free(bytes);
	if (!j)
		return cni_errf(e, CNI_ERR_DECODE, "decoding version from network config: the cached result is not JSON");
	kind = cJSON_IsObject(j) ? conf_item(j, "kind") : NULL;
	if (cJSON_IsString(kind) && strcmp(kind->valuestring, "cniCacheV1") == 0) {
		res = conf_item(j, "result");
		rc = res ? convert_result(res, version, result, e) : 0;
	} else {
		/* before cniCacheV1 the file was the result itself */
		rc = convert_result(j, version, result, e);
	}
	cJSON_Delete(j);
	return rc;
}

static int str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void attachments_free(struct attachment *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].network);
		free(v[i].config);
		rtconf_free(&v[i].rt);
	}
	free(v);
}

/* cachedInfo as Go's json.Unmarshal would take it: a field of the wrong type fails the file. */
static int parse_attachment(const cJSON *j, struct attachment *a)
{
	const cJSON *kind, *cid, *ifn, *net, *ns, *args, *caps, *cfg, *p;
	size_t n = 0;

	memset(a, 0, sizeof(*a));
	if (!cJSON_IsObject(j))
		return -1;
	kind = conf_item(j, "kind");
	cid = conf_item(j, "containerId");
	ifn = conf_item(j, "ifName");
	net = conf_item(j, "networkName");
	ns = conf_item(j, "netns");
	args = conf_item(j, "cniArgs");
	caps = conf_item(j, "capabilityArgs");
	cfg = conf_item(j, "config");
	if (!cJSON_IsString(kind) || strcmp(kind->valuestring, "cniCacheV1") != 0)
		return -1;
	if ((cid && !cJSON_IsString(cid)) || (ns && !cJSON_IsString(ns)) || (cfg && !cJSON_IsString(cfg)) ||
	    !cJSON_IsString(ifn) || !*ifn->valuestring || !cJSON_IsString(net) || !*net->valuestring ||
	    (args && !cJSON_IsArray(args)) || (caps && !cJSON_IsObject(caps)))
		return -1;
	cJSON_ArrayForEach (p, args) {
		if (!cJSON_IsArray(p) && !cJSON_IsNull(p))
			return -1;
		for (const cJSON *s = p->child; s; s = s->next)
			if (!cJSON_IsString(s) && !cJSON_IsNull(s))
				return -1;
		n++;
	}
	if (!(a->network = strdup(net->valuestring)) || !(a->rt.container_id = strdup(cid ? cid->valuestring : "")) ||
	    !(a->rt.ifname = strdup(ifn->valuestring)) || !(a->rt.netns = strdup(ns ? ns->valuestring : "")))
		goto oom;
	if (n && !(a->rt.args = calloc(n, sizeof(*a->rt.args))))
		goto oom;
	cJSON_ArrayForEach (p, args) {
		/* a [2]string: missing members are "", extra ones ignored */
		const cJSON *k = p->child, *v = k ? k->next : NULL;
		struct cni_kv *kv = &a->rt.args[a->rt.n_args++];
		if (!(kv->key = strdup(cJSON_IsString(k) ? k->valuestring : "")) ||
		    !(kv->val = strdup(cJSON_IsString(v) ? v->valuestring : "")))
			goto oom;
	}
	if (caps && !(a->rt.caps = cJSON_Duplicate(caps, true)))
		goto oom;
	/* []byte: base64; Go fails the whole file on bad base64 */
	if (cfg && *cfg->valuestring && !(a->config = gojson_base64_decode(cfg->valuestring, &a->config_len))) {
		free(a->network);
		rtconf_free(&a->rt);
		memset(a, 0, sizeof(*a));
		return -1;
	}
	return 0;
oom:
	free(a->network);
	rtconf_free(&a->rt);
	memset(a, 0, sizeof(*a));
	return -2;
}

int cache_attachments(const char *dir, struct attachment **out, size_t *n, struct cni_error *e)
{
	char *rdir = NULL, **names = NULL;
	size_t nn = 0;
	struct attachment *v = NULL;
	struct dirent *de;
	DIR *d;
	int rc = -1;

	*out = NULL;
	*n = 0;
	if (asprintf(&rdir, "%s/results", dir) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (!(d = opendir(rdir))) {
		free(rdir);
		if (errno == ENOENT)
			return 0;
		return cni_errf(e, CNI_ERR_IO, "open %s/results: %s", dir, cni_strerror(errno));
	}
	while ((de = readdir(d))) {
		char **nv;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0)
			continue;
		if (!(nv = realloc(names, (nn + 1) * sizeof(*nv))))
			goto oom;
		names = nv;
		if (!(names[nn] = strdup(de->d_name)))
			goto oom;
		nn++;
	}
	if (nn)
		qsort(names, nn, sizeof(*names), str_cmp);
	for (size_t i = 0; i < nn; i++) {
		char *path, *bytes;
		size_t len;
		cJSON *j;
		int r;
		if (asprintf(&path, "%s/%s", rdir, names[i]) < 0)
			goto oom;
		r = read_file(path, CACHE_FILE_MAX, &bytes, &len);
		free(path);
		if (r < 0)
			continue;
		j = gojson_parse(bytes, len);
		free(bytes);
		if (!j)
			continue;
		gojson_canon(j);
		struct attachment *nv = realloc(v, (*n + 1) * sizeof(*nv));
		if (!nv) {
			cJSON_Delete(j);
			goto oom;
		}
		v = nv;
		r = parse_attachment(j, &v[*n]);
		cJSON_Delete(j);
		if (r == -2)
			goto oom;
		if (r == 0)
			(*n)++;
	}
	*out = v;
	v = NULL;
	rc = 0;
	goto out;
oom:
	cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
out:
	closedir(d);
	if (rc < 0) {
		attachments_free(v, *n);
		*n = 0;
	}
	for (size_t i = 0; i < nn; i++)
		free(names[i]);
	free(names);
	free(rdir);
	return rc;
}
