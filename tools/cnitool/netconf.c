/* Finding and parsing network configs the way libcni's conf.go does, messages included. */
#include "netconf.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"
#include "gojson.h"

/* A config larger than this is not a config (libcni has no bound; plugins take 1 MiB on stdin). */
#define CONF_FILE_MAX (16u << 20)

int read_file(const char *path, size_t max, char **out, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	size_t n = 0, cap = 4096;
	char *p;

	if (fd < 0)
		return -1;
	if (!(p = malloc(cap + 1))) {
		close(fd);
		errno = ENOMEM;
		return -1;
	}
	for (;;) {
		if (n == cap) {
			char *q;
			if (cap >= max || !(q = realloc(p, cap * 2 + 1))) {
				free(p);
				close(fd);
				errno = cap >= max ? EFBIG : ENOMEM;
				return -1;
			}
			p = q;
			cap *= 2;
		}
		ssize_t r = read(fd, p + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int saved = errno;
			free(p);
			close(fd);
			errno = saved;
			return -1;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	p[n] = '\0';
	*out = p;
	*len = n;
	return 0;
}

static int parse_part(const char *s, size_t n, int *out)
{
	long v = 0;
	size_t i = 0;
	bool neg = false;
	/* strconv.Atoi: an optional sign, then at least one digit */
	if (n && (s[0] == '+' || s[0] == '-')) {
		neg = s[0] == '-';
		i++;
	}
	if (i == n)
		return -1;
	for (; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
		if (v > INT_MAX)
			return -1;
	}
	*out = (int)(neg ? -v : v);
	return 0;
}

int go_version_parse(const char *s, int v[3])
{
	v[0] = 0;
	v[1] = v[2] = 0;
	if (!*s) { /* no version declared is 0.1.0 */
		v[1] = 1;
		return 0;
	}
	for (int i = 0;; i++) {
		const char *dot = strchr(s, '.');
		size_t n = dot ? (size_t)(dot - s) : strlen(s);
		if (i == 3 || parse_part(s, n, &v[i]) < 0)
			return -1;
		if (!dot)
			return 0;
		s = dot + 1;
	}
}

int go_version_cmp(const char *a, const char *b, bool *err)
{
	int x[3], y[3];
	*err = go_version_parse(a, x) < 0 || go_version_parse(b, y) < 0;
	if (*err)
		return 0;
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

bool go_version_ge(const char *a, const char *b)
{
	bool err;
	int c = go_version_cmp(a, b, &err);
	return !err && c >= 0;
}

static const char *json_type(const cJSON *j)
{
	/* named as Go's %T names what encoding/json decoded into interface{} */
	if (cJSON_IsString(j))
		return "string";
	if (cJSON_IsNumber(j))
		return "float64";
	if (cJSON_IsBool(j))
		return "bool";
	if (cJSON_IsArray(j))
		return "[]interface {}";
	if (cJSON_IsObject(j))
		return "map[string]interface {}";
	return "<nil>";
}

static void plugin_conf_free(struct plugin_conf *p)
{
	cJSON_Delete(p->conf);
	free(p->caps);
	memset(p, 0, sizeof(*p));
}

void netlist_free(struct netlist *l)
{
	for (size_t i = 0; i < l->n_plugins; i++)
		plugin_conf_free(&l->plugins[i]);
	free(l->plugins);
	free(l->name);
	free(l->version);
	free(l->bytes);
	memset(l, 0, sizeof(*l));
}

/* A string field of types.PluginConf (Go matches keys case-insensitively; null leaves it empty). */
static int pc_string(const cJSON *o, const char *key, const char **out, struct cni_error *e)
{
	const cJSON *v = conf_item(o, key);
	*out = "";
	if (!v)
		return 0;
	if (!cJSON_IsString(v))
		return cni_errf(
			e, CNI_ERR_DECODE,
			"error parsing configuration: json: cannot unmarshal %s into Go struct field PluginConf.%s of type string",
			cJSON_IsNumber(v)  ? "number"
			: cJSON_IsBool(v)  ? "bool"
			: cJSON_IsArray(v) ? "array"
					   : "object",
			key);
	*out = v->valuestring;
	return 0;
}

/* NetworkPluginConfFromBytes on a value already decoded: takes ownership of j. */
static int plugin_conf_from_json(cJSON *j, struct plugin_conf *p, struct cni_error *e)
{
	const cJSON *caps, *ipam, *c;
	const char *ver;

	memset(p, 0, sizeof(*p));
	p->conf = j;
	if (!cJSON_IsObject(j)) {
		cni_errf(e, CNI_ERR_DECODE,
			 "error parsing configuration: json: cannot unmarshal %s into Go value of type types.PluginConf",
			 cJSON_IsArray(j)    ? "array"
			 : cJSON_IsString(j) ? "string"
			 : cJSON_IsNumber(j) ? "number"
					     : "bool");
		goto fail;
	}
	gojson_canon(j);
	if (pc_string(j, "cniVersion", &ver, e) < 0 || pc_string(j, "name", &p->name, e) < 0 ||
	    pc_string(j, "type", &p->type, e) < 0)
		goto fail;
	if ((ipam = conf_item(j, "ipam"))) {
		const char *t;
		if (!cJSON_IsObject(ipam)) {
			cni_errf(
				e, CNI_ERR_DECODE,
				"error parsing configuration: json: cannot unmarshal %s into Go struct field PluginConf.ipam of type types.IPAM",
				json_type(ipam));
			goto fail;
		}
		if (pc_string(ipam, "type", &t, e) < 0)
			goto fail;
	}
	if ((caps = conf_item(j, "capabilities"))) {
		size_t n = 0;
		if (!cJSON_IsObject(caps)) {
			cni_errf(
				e, CNI_ERR_DECODE,
				"error parsing configuration: json: cannot unmarshal %s into Go struct field PluginConf.capabilities of type map[string]bool",
				json_type(caps));
			goto fail;
		}
		cJSON_ArrayForEach (c, caps) {
			if (!cJSON_IsBool(c) && !cJSON_IsNull(c)) {
				cni_errf(
					e, CNI_ERR_DECODE,
					"error parsing configuration: json: cannot unmarshal %s into Go struct field PluginConf.capabilities of type bool",
					json_type(c));
				goto fail;
			}
			n++;
		}
		if (n && !(p->caps = calloc(n, sizeof(*p->caps)))) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			goto fail;
		}
		cJSON_ArrayForEach (c, caps)
			if (cJSON_IsTrue(c))
				p->caps[p->n_caps++] = c->string;
	}
	if (!*p->type) {
		cni_errf(e, CNI_ERR_DECODE, "error parsing configuration: missing 'type'");
		goto fail;
	}
	return 0;
fail:
	plugin_conf_free(p);
	return -1;
}

static int add_plugin(struct netlist *l, cJSON *j, struct cni_error *e)
{
	struct plugin_conf *np = realloc(l->plugins, (l->n_plugins + 1) * sizeof(*np));
	if (!np) {
		cJSON_Delete(j);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	l->plugins = np;
	if (plugin_conf_from_json(j, &l->plugins[l->n_plugins], e) < 0)
		return -1;
	l->n_plugins++;
	return 0;
}

/* readBool of NetworkConfFromBytes: a bool, or "true"/"false" in any case. */
static int read_bool(const cJSON *root, const char *key, bool *out, struct cni_error *e)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
	*out = false;
	if (!v)
		return 0;
	if (cJSON_IsBool(v)) {
		*out = cJSON_IsTrue(v);
		return 0;
	}
	if (!cJSON_IsString(v))
		return cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid type %s for %s", json_type(v), key);
	if (strcasecmp(v->valuestring, "true") == 0 || strcasecmp(v->valuestring, "false") == 0) {
		*out = strcasecmp(v->valuestring, "true") == 0;
		return 0;
	}
	return cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid value \"%s\" for %s", v->valuestring, key);
}

/* cniVersions: the highest version not above the one we implement (libcni's version.Current()),
 * cniVersion taking part when given. */
static int pick_version(const cJSON *root, const char *given, char **out, struct cni_error *e)
{
	const cJSON *vs = cJSON_GetObjectItemCaseSensitive(root, "cniVersions"), *v;
	const char *best = NULL;
	size_t i = 0;
	bool err;

	if (!vs) {
		*out = strdup(given);
		return *out ? 0 : cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	if (!cJSON_IsArray(vs))
		return cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid type for cniVersions: %s",
				json_type(vs));
	cJSON_ArrayForEach (v, vs) {
		if (!cJSON_IsString(v))
			return cni_errf(e, CNI_ERR_DECODE,
					"error parsing configuration list: invalid type for cniVersions index %zu: %s", i,
					json_type(v));
		int c = go_version_cmp(v->valuestring, "1.1.0", &err);
		if (err)
			return cni_errf(e, CNI_ERR_DECODE,
					"error parsing configuration list: invalid cniVersions entry %s at index %zu",
					v->valuestring, i);
		if (c <= 0 && (!best || go_version_cmp(v->valuestring, best, &err) > 0))
			best = v->valuestring;
		i++;
	}
	if (*given) {
		int c = go_version_cmp(given, "1.1.0", &err);
		if (err)
			return cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid cniVersion %s", given);
		if (c <= 0 && (!best || go_version_cmp(given, best, &err) > 0))
			best = given;
	}
	*out = strdup(best ? best : given);
	return *out ? 0 : cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
}

int netlist_from_bytes(const char *bytes, size_t len, struct netlist *l, struct cni_error *e)
{
	cJSON *root = gojson_parse(bytes, len);
	const cJSON *v, *plugins;
	const char *ver = "";
	size_t i = 0;

	memset(l, 0, sizeof(*l));
	if (!root || !cJSON_IsObject(root)) {
		cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: %s",
			 root ? "json: cannot unmarshal non-object into Go value of type map[string]interface {}"
			      : "invalid JSON");
		goto fail;
	}
	gojson_canon(root);
	if (!(v = cJSON_GetObjectItemCaseSensitive(root, "name"))) {
		cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: no name");
		goto fail;
	}
	if (!cJSON_IsString(v)) {
		cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid name type %s", json_type(v));
		goto fail;
	}
	if (!(l->name = strdup(v->valuestring)))
		goto oom;
	if ((v = cJSON_GetObjectItemCaseSensitive(root, "cniVersion"))) {
		if (!cJSON_IsString(v)) {
			cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid cniVersion type %s", json_type(v));
			goto fail;
		}
		ver = v->valuestring;
	}
	if (pick_version(root, ver, &l->version, e) < 0 || read_bool(root, "disableCheck", &l->disable_check, e) < 0 ||
	    read_bool(root, "disableGC", &l->disable_gc, e) < 0 ||
	    read_bool(root, "loadOnlyInlinedPlugins", &l->inline_only, e) < 0)
		goto fail;
	if (!(l->bytes = malloc(len + 1)))
		goto oom;
	memcpy(l->bytes, bytes, len);
	l->bytes[len] = '\0';
	l->len = len;
	plugins = cJSON_GetObjectItemCaseSensitive(root, "plugins");
	if (!plugins) {
		if (l->inline_only) {
			cni_errf(e, CNI_ERR_DECODE,
				 "error parsing configuration list: `loadOnlyInlinedPlugins` is true, and no 'plugins' key");
			goto fail;
		}
		cJSON_Delete(root);
		return 0;
	}
	if (!cJSON_IsArray(plugins)) {
		cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: invalid 'plugins' type %s", json_type(plugins));
		goto fail;
	}
	if (!plugins->child) {
		cni_errf(e, CNI_ERR_DECODE, "error parsing configuration list: no plugins in list");
		goto fail;
	}
	cJSON_ArrayForEach (v, plugins) {
		cJSON *dup = cJSON_Duplicate(v, true);
		if (!dup)
			goto oom;
		if (add_plugin(l, dup, e) < 0) {
			cni_err_prefix(e, "failed to parse plugin config %zu: ", i);
			goto fail;
		}
		i++;
	}
	cJSON_Delete(root);
	return 0;
oom:
	cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
fail:
	cJSON_Delete(root);
	netlist_free(l);
	return -1;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static void names_free(char **v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* ConfFiles: the non-directory entries of dir whose extension (from the last '.') is one of exts,
 * sorted (os.ReadDir sorts by name). A missing dir has none. */
static int conf_files(const char *dir, const char *const *exts, char ***out, size_t *n, struct cni_error *e)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	char **v = NULL;

	*out = NULL;
	*n = 0;
	if (!d) {
		if (errno == ENOENT)
			return 0;
		return cni_errf(e, CNI_ERR_IO, "open %s: %s", dir, cni_strerror(errno));
	}
	while ((de = readdir(d))) {
		const char *ext = strrchr(de->d_name, '.');
		bool want = false, isdir = de->d_type == DT_DIR;
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 || !ext)
			continue;
		for (const char *const *x = exts; *x; x++)
			want |= strcmp(ext, *x) == 0;
		if (!want)
			continue;
		if (de->d_type == DT_UNKNOWN) {
			struct stat st;
			isdir = fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && S_ISDIR(st.st_mode);
		}
		if (isdir)
			continue;
		char **nv = realloc(v, (*n + 1) * sizeof(*nv));
		if (!nv || asprintf(&nv[*n], "%s/%s", dir, de->d_name) < 0) {
			names_free(nv ? nv : v, *n);
			closedir(d);
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
		v = nv;
		(*n)++;
	}
	closedir(d);
	if (*n)
		qsort(v, *n, sizeof(*v), name_cmp);
	*out = v;
	return 0;
}

static int load_file(const char *path, char **bytes, size_t *len, struct cni_error *e)
{
	if (read_file(path, CONF_FILE_MAX, bytes, len) < 0)
		return cni_errf(e, CNI_ERR_IO, "error reading %s: %s", path, cni_strerror(errno));
	return 0;
}

/* NetworkConfFromFile: the list, then (unless loadOnlyInlinedPlugins) the .conf files in <dir>/<name>/. */
static int netlist_from_file(const char *path, struct netlist *l, struct cni_error *e)
{
	static const char *const conf_ext[] = { ".conf", NULL };
	char *bytes = NULL, **files = NULL, *pdir = NULL, *dir;
	size_t len, n = 0;
	int rc = -1;

	if (load_file(path, &bytes, &len, e) < 0)
		return -1;
	if (netlist_from_bytes(bytes, len, l, e) < 0)
		goto out;
	if (!l->inline_only) {
		if (!(dir = strdup(path)))
			goto oom;
		*(strrchr(dir, '/') ? strrchr(dir, '/') : dir) = '\0';
		if (asprintf(&pdir, "%s/%s", *dir ? dir : ".", l->name) < 0) {
			pdir = NULL;
			free(dir);
			goto oom;
		}
		free(dir);
		if (conf_files(pdir, conf_ext, &files, &n, e) < 0) {
			cni_err_prefix(e, "failed to read plugin config files in %s: ", pdir);
			goto out;
		}
		for (size_t i = 0; i < n; i++) {
			char *pb;
			size_t pl;
			cJSON *j;
			if (load_file(files[i], &pb, &pl, e) < 0)
				goto out;
			j = gojson_parse(pb, pl);
			free(pb);
			if (!j) {
				cni_errf(e, CNI_ERR_DECODE, "error parsing configuration: %s is not JSON", files[i]);
				goto out;
			}
			if (add_plugin(l, j, e) < 0)
				goto out;
		}
	}
	if (l->n_plugins == 0) {
		cni_errf(e, CNI_ERR_INVALID_CONFIG, "no plugin configs found");
		goto out;
	}
	rc = 0;
	goto out;
oom:
	cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
out:
	if (rc < 0)
		netlist_free(l);
	names_free(files, n);
	free(pdir);
	free(bytes);
	return rc;
}

/* ConfListFromConf: {"cniVersion", "name", "plugins": [conf]} marshaled as Go does, then parsed. */
static int netlist_from_conf(struct plugin_conf *p, struct netlist *l, struct cni_error *e)
{
	const char *ver = "";
	cJSON *list = cJSON_CreateObject(), *arr = cJSON_CreateArray();
	struct sb b = { 0 };
	char *bytes;
	size_t len;
	int rc;

	(void)pc_string(p->conf, "cniVersion", &ver, e);
	if (!list || !arr || !cJSON_AddItemToObject(list, "plugins", arr)) {
		cJSON_Delete(list);
		cJSON_Delete(arr);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	if (!cJSON_AddStringToObject(list, "cniVersion", ver) || !cJSON_AddStringToObject(list, "name", p->name) ||
	    !cJSON_AddItemReferenceToArray(arr, p->conf)) {
		cJSON_Delete(list);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	gojson_sort_keys(list); /* a Go map: cniVersion, name, plugins */
	gojson_marshal(list, &b);
	cJSON_Delete(list);
	if (!(bytes = sb_take(&b, &len)))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	rc = netlist_from_bytes(bytes, len, l, e);
	free(bytes);
	return rc;
}

int netlist_load(const char *dir, const char *name, struct netlist *l, struct cni_error *e)
{
	static const char *const list_ext[] = { ".conflist", NULL };
	static const char *const conf_ext[] = { ".conf", ".json", NULL };
	char **files = NULL;
	size_t n = 0, i;
	int rc = -1;

	memset(l, 0, sizeof(*l));
	if (conf_files(dir, list_ext, &files, &n, e) < 0)
		return -1;
	for (i = 0; i < n; i++) {
		if (netlist_from_file(files[i], l, e) < 0)
			goto out;
		if (strcmp(l->name, name) == 0) {
			rc = 0;
			goto out;
		}
		netlist_free(l);
	}
	{
		/* the deprecated single-plugin files, up-converted to a list */
		bool lists = n > 0;
		names_free(files, n);
		files = NULL;
		n = 0;
		if (conf_files(dir, conf_ext, &files, &n, e) < 0)
			goto out;
		if (n == 0) {
			if (lists)
				cni_errf(e, CNI_ERR_INVALID_CONFIG, "no net configuration with name \"%s\" in %s", name, dir);
			else
				cni_errf(e, CNI_ERR_INVALID_CONFIG, "no net configurations found in %s", dir);
			goto out;
		}
		for (i = 0; i < n; i++) {
			struct plugin_conf p;
			char *bytes;
			size_t len;
			cJSON *j;
			if (load_file(files[i], &bytes, &len, e) < 0)
				goto out;
			j = gojson_parse(bytes, len);
			free(bytes);
			if (!j) {
				cni_errf(e, CNI_ERR_DECODE, "error parsing configuration: %s is not JSON", files[i]);
				goto out;
			}
			if (plugin_conf_from_json(j, &p, e) < 0)
				goto out;
			if (strcmp(p.name, name) == 0) {
				rc = netlist_from_conf(&p, l, e);
				plugin_conf_free(&p);
				goto out;
			}
			plugin_conf_free(&p);
		}
		cni_errf(e, CNI_ERR_INVALID_CONFIG, "no net configuration with name \"%s\" in %s", name, dir);
	}
out:
	names_free(files, n);
	return rc;
}
