/* main() of every plugin: env → verb, stdin → config, version checks, dispatch, one JSON answer. */
#include "skel.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "caps.h"
#include "conf.h"
#include "log.h"
#include "subproc.h"
#include "version.h"

static const char *const runtime_labels[] = {
	"IgnoreUnknown", "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID", NULL,
};

static bool in_list(const char *const *l, const char *k)
{
	for (; l && *l; l++)
		if (strcmp(*l, k) == 0)
			return true;
	return false;
}

void cni_args_free(struct cni_kv *kv, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(kv[i].key);
		free(kv[i].val);
	}
	free(kv);
}

int cni_args_parse(const char *s, const char *const *known, struct cni_kv **out, size_t *n, struct cni_error *e)
{
	struct cni_kv *kv = NULL;
	size_t cnt = 0;
	const char *unknown = NULL;
	size_t unknown_len = 0;
	int ignore = 0;

	*out = NULL;
	*n = 0;
	if (!s || !*s)
		return 0;
	for (const char *p = s;;) {
		const char *semi = strchr(p, ';');
		size_t len = semi ? (size_t)(semi - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		if (!eq || memchr(eq + 1, '=', len - (size_t)(eq - p) - 1) || eq == p) {
			cni_errf(e, CNI_ERR_DECODE, "CNI_ARGS: invalid pair \"%.*s\" (want KEY=VALUE)", (int)len, p);
			goto fail;
		}
		struct cni_kv *nk = realloc(kv, (cnt + 1) * sizeof(*kv));
		if (!nk)
			goto oom;
		kv = nk;
		kv[cnt].key = strndup(p, (size_t)(eq - p));
		kv[cnt].val = strndup(eq + 1, len - (size_t)(eq - p) - 1);
		cnt++;
		if (!kv[cnt - 1].key || !kv[cnt - 1].val)
			goto oom;
		if (strcmp(kv[cnt - 1].key, "IgnoreUnknown") == 0) {
			const char *v = kv[cnt - 1].val;
			if (strcasecmp(v, "1") == 0 || strcasecmp(v, "true") == 0)
				ignore = 1;
			else if (strcasecmp(v, "0") == 0 || strcasecmp(v, "false") == 0)
				ignore = 0;
			else {
				cni_errf(e, CNI_ERR_DECODE, "CNI_ARGS: IgnoreUnknown=\"%s\" is not a boolean", v);
				goto fail;
			}
		} else if (!in_list(known, kv[cnt - 1].key) && !in_list(runtime_labels, kv[cnt - 1].key) && !unknown) {
			unknown = p;
			unknown_len = len;
		}
		if (!semi)
			break;
		p = semi + 1;
	}
	if (unknown && !ignore) {
		cni_errf(e, CNI_ERR_DECODE, "CNI_ARGS: unknown argument \"%.*s\" (add IgnoreUnknown=1 to allow it)",
			 (int)unknown_len, unknown);
		goto fail;
	}
	*out = kv;
	*n = cnt;
	return 0;
oom:
	cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
fail:
	cni_args_free(kv, cnt);
	return -1;
}

const char *cni_arg(const struct cni_ctx *c, const char *key)
{
	for (size_t i = 0; i < c->n_args; i++)
		if (strcmp(c->args[i].key, key) == 0)
			return c->args[i].val;
	return NULL;
}

bool cni_attachment_valid(const struct cni_ctx *c, const char *container_id, const char *ifname)
{
	for (size_t i = 0; i < c->n_valid; i++)
		if (strcmp(c->valid[i].container_id, container_id) == 0 && (!ifname || strcmp(c->valid[i].ifname, ifname) == 0))
			return true;
	return false;
}

int cni_read_error(struct cni_error *e, int err, size_t max)
{
	if (err == ENOMEM)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (err == EFBIG)
		return cni_errf(e, CNI_ERR_DECODE, "config on stdin is larger than %zu bytes", max);
	return cni_errf(e, CNI_ERR_IO, "reading stdin: %s", cni_strerror(err));
}

int cni_read_bounded(int fd, size_t max, char **out, size_t *len, struct cni_error *e)
{
	int err = read_all_bounded(fd, max, out, len);
	return err ? cni_read_error(e, err, max) : 0;
}

static int parse_attachments(struct cni_ctx *c, const char *key, struct cni_error *e)
{
	char p[CONF_PATH_MAX], pi[CONF_PATH_MAX];
	const cJSON *arr = NULL, *it;
	size_t i = 0;
	if (conf_array(c->conf, "", key, &arr, e) <= 0)
		return e->code ? -1 : 0;
	conf_path(p, "", key);
	cJSON_ArrayForEach (it, arr) {
		struct cni_attachment a = { 0 };
		conf_path_idx(pi, p, i++);
		if (!cJSON_IsObject(it))
			return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be an object", pi);
		if (conf_string(it, pi, "containerID", &a.container_id, e) < 0 || conf_string(it, pi, "ifname", &a.ifname, e) < 0)
			return -1;
		if (!a.container_id || !a.ifname)
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\" needs containerID and ifname",
					pi);
		struct cni_attachment *v = realloc(c->valid, (c->n_valid + 1) * sizeof(*v));
		if (!v)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		c->valid = v;
		c->valid[c->n_valid++] = a;
	}
	return 0;
}

int cni_parse_config(struct cni_ctx *c, struct cni_error *e)
{
	const cJSON *prev = NULL;
	const char *ver = NULL, *name = NULL, *type = NULL;

	if (!conf_valid_utf8(c->stdin_buf, c->stdin_len))
		return cni_errf(e, CNI_ERR_DECODE, "config on stdin is not valid UTF-8");
	if (strlen(c->stdin_buf) != c->stdin_len)
		return cni_errf(e, CNI_ERR_DECODE, "config on stdin contains a NUL byte");
	/* cJSON decodes \u0000 and the string silently ends there ("a\u0000/../x" reads "a"): refuse */
	for (const char *q = c->stdin_buf; (q = strstr(q, "\\u0000")) != NULL; q++) {
		size_t bs = 0;
		for (const char *b = q; b > c->stdin_buf && b[-1] == '\\'; b--)
			bs++;
		if (bs % 2 == 0)
			return cni_errf(e, CNI_ERR_DECODE, "config on stdin contains an escaped NUL (\\u0000) in a string");
	}
	const char *end = NULL;
	c->conf = cJSON_ParseWithOpts(c->stdin_buf, &end, 1);
	if (!c->conf) {
		size_t off = end ? (size_t)(end - c->stdin_buf) : 0;
		return cni_errf(e, CNI_ERR_DECODE, "config on stdin is not valid JSON (at byte %zu)", off);
	}
	if (!cJSON_IsObject(c->conf))
		return cni_errf(e, CNI_ERR_DECODE, "config on stdin must be a JSON object");

	if (conf_string(c->conf, "", "name", &name, e) < 0)
		return -1;
	if (!name || !*name)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"name\" (the network name) is required");
	if (strlen(name) > 200)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"name\" is longer than 200 bytes");
	if (!conf_valid_cni_name(name))
		return cni_errf(e, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"name\": \"%s\" has invalid characters (want [a-zA-Z0-9][a-zA-Z0-9_.-]*)",
				name);
	c->name = name;

	if (conf_string(c->conf, "", "cniVersion", &ver, e) < 0)
		return -1;
	c->version = ver && *ver ? ver : "0.1.0";
	if (!cni_version_supported(c->version)) {
		char list[128];
		cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION, "incompatible CNI versions: config is \"%s\", plugin supports [%s]",
			 c->version, cni_versions_list(list, sizeof(list)));
		cni_err_details(e, "config is \"%s\", plugin supports [%s]", c->version, list);
		return -1;
	}
	if (conf_string(c->conf, "", "type", &type, e) < 0)
		return -1;
	c->type = type;

	/* the spec's reserved objects: wrong types are decode errors, not silently ignored */
	const cJSON *rc = NULL, *args = NULL, *acni = NULL;
	if (conf_object(c->conf, "", "runtimeConfig", &rc, e) < 0 || conf_object(c->conf, "", "args", &args, e) < 0 ||
	    (args && conf_object(args, "args", "cni", &acni, e) < 0))
		return -1;
	if (conf_object(c->conf, "", "prevResult", &prev, e) < 0)
		return -1;
	if (prev) {
		if (cni_result_parse(prev, "prevResult", &c->prev, e) < 0)
			return -1;
		c->has_prev = true;
	}
	if (c->verb == CNI_GC) {
		/* libcni sends both keys (the 1.1.0 text said the second); absent means
		 * no attachment is valid, as libcni's own GC assumes. */
		if (parse_attachments(c, "cni.dev/valid-attachments", e) < 0 ||
		    parse_attachments(c, "cni.dev/attachments", e) < 0)
			return -1;
	}
	return 0;
}

void cni_ctx_free(struct cni_ctx *c)
{
	if (c->has_prev)
		cni_result_free(&c->prev);
	cJSON_Delete(c->conf);
	free(c->stdin_buf);
	cni_args_free(c->args, c->n_args);
	free(c->valid);
	memset(c, 0, sizeof(*c));
}

static void print_json(cJSON *o)
{
	char *s = cJSON_Print(o);
	if (s) {
		fputs(s, stdout);
		fputc('\n', stdout);
		free(s);
	}
	fflush(stdout);
}

static int print_error(const struct cni_ctx *c, const struct cni_error *e)
{
	cJSON *o = cJSON_CreateObject();
	const char *v = c->version && cni_version_supported(c->version) ? c->version : CNI_CURRENT_VERSION;
	cJSON_AddStringToObject(o, "cniVersion", v);
	cJSON_AddNumberToObject(o, "code", e->code ? e->code : CNI_ERR_INTERNAL);
	cJSON_AddStringToObject(o, "msg", e->msg[0] ? e->msg : "unknown error");
	if (e->details[0])
		cJSON_AddStringToObject(o, "details", e->details);
	print_json(o);
	cJSON_Delete(o);
	return 1;
}

static int print_version(void)
{
	cJSON *o = cJSON_CreateObject(), *a = cJSON_CreateArray();
	cJSON_AddStringToObject(o, "cniVersion", CNI_CURRENT_VERSION);
	for (size_t i = 0; i < cni_n_supported_versions; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(cni_supported_versions[i]));
	cJSON_AddItemToObject(o, "supportedVersions", a);
	print_json(o);
	cJSON_Delete(o);
	return 0;
}

static const char *env(const char *k)
{
	const char *v = getenv(k);
	return v && *v ? v : NULL;
}

/* The verbs about one attachment (container ID and ifname). */
#define ATTACHMENT_VERBS (1u << CNI_ADD | 1u << CNI_CHECK | 1u << CNI_DEL | 1u << CNI_RELOAD)
#define ATTACHMENT_VERB(v) ((ATTACHMENT_VERBS >> (v)) & 1u)

/* Which CNI_* variables each verb needs, as libcni's skel checks them. */
static int check_env(struct cni_ctx *c, struct cni_error *e)
{
	static const struct {
		const char *name;
		unsigned need; /* bit per verb */
	} vars[] = {
		{ "CNI_CONTAINERID", ATTACHMENT_VERBS },
		{ "CNI_NETNS", 1u << CNI_ADD | 1u << CNI_CHECK },
		{ "CNI_IFNAME", ATTACHMENT_VERBS },
		{ "CNI_PATH", 1u << CNI_ADD | 1u << CNI_CHECK | 1u << CNI_DEL | 1u << CNI_GC | 1u << CNI_STATUS },
	};
	char missing[128] = "";
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		if ((vars[i].need & (1u << c->verb)) && !env(vars[i].name)) {
			size_t l = strlen(missing);
			snprintf(missing + l, sizeof(missing) - l, "%s%s", l ? "," : "", vars[i].name);
		}
	if (missing[0])
		return cni_errf(e, CNI_ERR_INVALID_ENV, "required env variables [%s] missing", missing);
	if (c->container_id && ATTACHMENT_VERB(c->verb) && !conf_valid_cni_name(c->container_id)) {
		cni_errf(e, CNI_ERR_INVALID_ENV,
			 "CNI_CONTAINERID \"%s\" has invalid characters (want [a-zA-Z0-9][a-zA-Z0-9_.-]*)", c->container_id);
		cni_err_details(e, "%s", c->container_id);
		return -1;
	}
	if (c->container_id && strlen(c->container_id) > 1024)
		return cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_CONTAINERID is longer than 1024 bytes");
	if (c->ifname && ATTACHMENT_VERB(c->verb) && !conf_valid_ifname(c->ifname))
		return cni_errf(
			e, CNI_ERR_INVALID_ENV,
			"CNI_IFNAME \"%s\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces, not . or ..)",
			c->ifname);
	return 0;
}

/* A verb that failed before its config was checked (a bad CNI_IFNAME, bad JSON further on) is
 * still logged where the config's logFile says, when that much of the config can be read. */
static void log_failed_config(struct cni_ctx *c, struct cni_log *lg)
{
	struct cni_error ignored = { 0 };
	if (c->verb == CNI_VERSION)
		return;
	if (!c->stdin_buf && cni_read_bounded(STDIN_FILENO, CNI_STDIN_MAX, &c->stdin_buf, &c->stdin_len, &ignored) < 0)
		return;
	/* the path must not be cut short by an escaped NUL (cni_parse_config refuses those) */
	if (!c->conf && !strstr(c->stdin_buf, "\\u0000"))
		c->conf = cJSON_ParseWithOpts(c->stdin_buf, NULL, 1);
	cni_log_config(lg, c->conf, NULL);
}

int cni_conf_open(const struct cni_plugin *p, struct cni_ctx *c, void **conf)
{
	*conf = NULL;
	if (p->conf_size && !(*conf = calloc(1, p->conf_size)))
		return cni_errf(&c->err, CNI_ERR_INTERNAL, "out of memory");
	if (p->parse && p->parse(c, *conf) < 0)
		return -1;
	if (p->verify && p->verify(c, *conf) < 0)
		return -1;
	return 0;
}

void cni_conf_close(const struct cni_plugin *p, void *conf)
{
	if (conf && p->free_conf)
		p->free_conf(conf);
	free(conf);
}

int cni_verb_run(const struct cni_plugin *p, struct cni_ctx *c, void *conf, struct cni_result *out)
{
	switch (c->verb) {
	case CNI_ADD:
		return p->add ? p->add(c, conf, out) : cni_errf(&c->err, CNI_ERR_INTERNAL, "ADD is not implemented");
	case CNI_DEL:
		return p->del ? p->del(c, conf) : 0;
	case CNI_CHECK:
		return p->check ? p->check(c, conf) : 0;
	case CNI_GC:
		return p->gc ? p->gc(c, conf) : 0;
	case CNI_STATUS:
		return p->status ? p->status(c, conf) : 0;
	case CNI_RELOAD:
		if (!c->has_prev)
			return cni_errf(
				&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"prevResult\" is required: RELOAD re-applies the rules of the attachment it describes");
		return p->reload ? p->reload(c, conf) : 0;
	case CNI_VERSION:
		break;
	}
	return 0;
}

/* The verb's checks against the config's version and CNI_ARGS, then the capabilities it keeps. */
static int before_verb(const struct cni_plugin *p, struct cni_ctx *c, struct cni_error *e)
{
	if (c->verb == CNI_CHECK && cni_version_cmp(c->version, "0.4.0") < 0)
		return cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION,
				"config version \"%s\" does not allow CHECK (needs 0.4.0 or later)", c->version);
	if ((c->verb == CNI_GC || c->verb == CNI_STATUS) && cni_version_cmp(c->version, "1.1.0") < 0)
		return cni_errf(e, CNI_ERR_INCOMPATIBLE_VERSION, "config version \"%s\" does not allow %s (needs 1.1.0 or later)",
				c->version, c->command);
	if (ATTACHMENT_VERB(c->verb) && !p->any_cni_args && cni_args_parse(c->args_env, p->cni_args, &c->args, &c->n_args, e) < 0)
		return -1;
	if (cni_caps_limit(p->caps, e) < 0)
		return -1;
#ifdef CNI_TESTING
	/* test builds: show the capability sets the verb runs with */
	if (getenv("CNI_TEST_CAPS_OUT")) {
		FILE *in = fopen("/proc/self/status", "re"), *co = fopen(getenv("CNI_TEST_CAPS_OUT"), "we");
		char line[256];
		while (in && co && fgets(line, sizeof(line), in))
			if (strncmp(line, "Cap", 3) == 0)
				fputs(line, co);
		if (in)
			fclose(in);
		if (co)
			fclose(co);
	}
#endif
	return 0;
}

/* The verb on its parsed config; ADD's result printed. An ADD whose result cannot be printed is
 * undone: the attachment exists but the runtime could not learn it. */
static int run_verb(const struct cni_plugin *p, struct cni_ctx *c, struct cni_result *out)
{
	struct cni_error *e = &c->err;
	void *conf = NULL;
	int rc;
	if ((rc = cni_conf_open(p, c, &conf)) == 0)
		rc = cni_verb_run(p, c, conf, out);
	if (rc == 0 && c->verb == CNI_ADD) {
		cJSON *j = cni_result_to_json(out, c->version, e);
		if (!j) {
			cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			cni_err_prefix(e, "cannot print the result: ");
			struct cni_error saved = *e;
			c->verb = CNI_DEL;
			cni_err_clear(e);
			cni_verb_run(p, c, conf, NULL);
			c->verb = CNI_ADD;
			*e = saved;
			rc = -1;
		} else {
			print_json(j);
			cJSON_Delete(j);
		}
	}
	cni_conf_close(p, conf);
	return rc;
}

int cni_plugin_main(const struct cni_plugin *p)
{
	struct cni_ctx c = { 0 };
	struct cni_error *e = &c.err;
	struct cni_result out = { 0 };
	struct cni_log lg;
	int rc = 0;
	size_t v;

	c.command = env("CNI_COMMAND");
	if (!c.command) {
		char list[128];
		fprintf(stderr, "CNI %s plugin v%s (C CNI plugin suite)\nCNI protocol versions supported: %s\n", p->name,
			cni_c_version, cni_versions_list(list, sizeof(list)));
		return 0;
	}
	for (v = 0; v <= CNI_RELOAD; v++)
		if (strcmp(c.command, cni_verb_name((enum cni_verb)v)) == 0)
			break;
	c.container_id = env("CNI_CONTAINERID");
	c.netns = env("CNI_NETNS");
	c.ifname = env("CNI_IFNAME");
	c.args_env = env("CNI_ARGS");
	c.path = env("CNI_PATH");
	/* the log first: every failure below is logged when CNI_C_LOG_FILE is set */
	if (cni_log_start(&lg, e) < 0)
		goto fail;
	if (v > CNI_RELOAD) {
		cni_errf(e, CNI_ERR_INVALID_ENV, "unknown CNI_COMMAND: %s", c.command);
		goto fail;
	}
	c.verb = (enum cni_verb)v;
	c.inproc_ipam = p->inproc_ipam;
	if (c.verb == CNI_VERSION) {
		rc = print_version();
		goto done;
	}
	if (check_env(&c, e) < 0 || cni_read_bounded(STDIN_FILENO, CNI_STDIN_MAX, &c.stdin_buf, &c.stdin_len, e) < 0 ||
	    cni_parse_config(&c, e) < 0 || cni_log_config(&lg, c.conf, e) < 0 || before_verb(p, &c, e) < 0)
		goto fail;
	clock_gettime(CLOCK_MONOTONIC, &lg.t_run);
	if ((rc = run_verb(p, &c, &out)) == 0)
		goto done;
fail:
	rc = print_error(&c, e);
	if (!lg.conf_done && !lg.env_file)
		log_failed_config(&c, &lg);
done:
	cni_log_verb(&lg, &(struct cni_log_entry){ .plugin = p->name,
						   .verb = c.command,
						   .container_id = c.container_id,
						   .ifname = c.ifname,
						   .net = c.name,
						   .netns = c.netns,
						   .version = c.version,
						   .result = rc == 0 && c.verb == CNI_ADD ? &out : NULL,
						   .n_valid = c.n_valid,
						   .err = rc ? e : NULL });
	cni_result_free(&out);
	cni_ctx_free(&c);
	return rc;
}
