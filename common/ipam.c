/* Exec'ing a delegated plugin (common/subproc.c): stdin from a memfd (no pipe deadlock), result or CNI
 * error from stdout. */
#include "ipam.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf.h"

extern char **environ;

int cni_find_plugin(const char *path, const char *type, char *out, size_t outlen, struct cni_error *e)
{
	if (!type || !*type || strchr(type, '/') || strcmp(type, ".") == 0 || strcmp(type, "..") == 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid plugin type \"%s\"", type ? type : "");
	if (!path || !*path)
		return cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_PATH is empty: cannot find plugin \"%s\"", type);
	for (const char *p = path; *p;) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) : strlen(p);
		if (len > 0) {
			struct stat st;
			int n = snprintf(out, outlen, "%.*s/%s", (int)len, p, type);
			if (n > 0 && (size_t)n < outlen && stat(out, &st) == 0 && S_ISREG(st.st_mode) && access(out, X_OK) == 0)
				return 0;
		}
		if (!colon)
			break;
		p = colon + 1;
	}
	return cni_errf(e, CNI_ERR_PLUGIN_EXEC, "failed to find plugin \"%s\" in CNI_PATH \"%s\"", type, path);
}

static char **child_env(enum cni_verb verb)
{
	size_t n = 0;
	for (char **v = environ; *v; v++)
		n++;
	char **env = calloc(n + 2, sizeof(char *));
	if (!env)
		return NULL;
	size_t j = 0;
	for (char **v = environ; *v; v++)
		if (strncmp(*v, "CNI_COMMAND=", 12) != 0)
			env[j++] = *v;
	static char cmd[32];
	snprintf(cmd, sizeof(cmd), "CNI_COMMAND=%s", cni_verb_name(verb));
	env[j++] = cmd;
	env[j] = NULL;
	return env;
}

int cni_exec_start(const char *plugin_path, enum cni_verb verb, const char *stdin_data, size_t len, struct cni_exec *x,
		   struct cni_error *e)
{
	const char *name = strrchr(plugin_path, '/') ? strrchr(plugin_path, '/') + 1 : plugin_path;
	char **env;

	memset(x, 0, sizeof(*x));
	x->sp.out_fd = x->sp.err_fd = -1;
	x->verb = verb;
	snprintf(x->name, sizeof(x->name), "%s", name);
	if (!(env = child_env(verb)))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	char *argv[] = { (char *)plugin_path, NULL };
	const struct subproc_opts o = { .file = plugin_path,
					.argv = argv,
					.envp = env,
					.in = stdin_data ? stdin_data : "",
					.in_len = len,
					.out = SUBPROC_CAPTURE,
					.err = SUBPROC_INHERIT };
	int err = subproc_start(&x->sp, &o);
	free(env);
	if (!err)
		return 0;
	if (x->sp.stage == SUBPROC_EXEC)
		return cni_errf(e, CNI_ERR_PLUGIN_EXEC, "plugin %s: exec %s: %s", name, plugin_path, cni_strerror(err));
	if (x->sp.stage == SUBPROC_STDIN)
		return cni_errf(e, CNI_ERR_IO, "plugin %s: writing its stdin: %s", name, cni_strerror(err));
	return cni_errf(e, CNI_ERR_IO, "plugin %s: %s", name, cni_strerror(err));
}

/* Is the file at path the plugin p built from our very sources? Its marker sits in the first page. */
static bool ours_same_build(const char *path, const struct cni_plugin *p)
{
	char buf[4096], want[256];
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? pread(fd, buf, sizeof(buf), 0) : -1;
	if (fd >= 0)
		close(fd);
	snprintf(want, sizeof(want), "\nCNIC-PLUGIN=%s %s\n", p->name, CNIC_ID);
	return n > 0 && memmem(buf, (size_t)n, want, strlen(want)) != NULL;
}

/* An in-process run: a copy of the caller's context and the outcome. */
struct cni_inproc_job {
	struct cni_ctx sub;
	const struct cni_plugin *p;
	int rc;
	struct cni_result res;
	struct cni_error err;
};

/* Run the IPAM plugin's verb in this process, exactly as its executable would: its own CNI_ARGS
 * rules, its result round-tripped through the JSON of the config's version. */
static void run_inproc(struct cni_inproc_job *j)
{
	struct cni_ctx *sub = &j->sub;
	const struct cni_plugin *p = j->p;
	struct cni_result r = { 0 };
	void *conf = NULL;
	j->rc = -1;
	if ((sub->verb == CNI_ADD || sub->verb == CNI_CHECK || sub->verb == CNI_DEL) &&
	    cni_args_parse(sub->args_env, p->cni_args, &sub->args, &sub->n_args, &sub->err) < 0)
		goto out;
	if ((j->rc = cni_conf_open(p, sub, &conf)) == 0)
		j->rc = cni_verb_run(p, sub, conf, &r);
	cni_conf_close(p, conf);
	if (j->rc == 0 && sub->verb == CNI_ADD) {
		cJSON *o = cni_result_to_json(&r, sub->version, &sub->err);
		j->rc = o && cni_result_parse(o, "ipam result", &j->res, &sub->err) == 0 ? 0 : -1;
		cJSON_Delete(o);
	}
out:
	cni_result_free(&r);
	cni_args_free(sub->args, sub->n_args);
	j->err = sub->err;
	if (j->rc < 0) {
		size_t nl = strlen(p->name);
		if (!(strncmp(j->err.msg, p->name, nl) == 0 && j->err.msg[nl] == ':'))
			cni_err_prefix(&j->err, "%s: ", p->name);
		if (!j->err.code)
			j->err.code = CNI_ERR_INTERNAL;
	}
}

/* The outcome of a finished run into x. */
static void inproc_collect(struct cni_exec *x, struct cni_inproc_job *j)
{
	x->rc = j->rc;
	x->res = j->res;
	x->err = j->err;
}

/* The run happens here and now, on the caller's thread. (DEL on a thread of its own, beside the
 * veth's deletion, was measured no faster: the deletion's wait is RCU's, and DEL's ratio to the
 * floor moved no more than between two runs of the same build; and static glibc's threads
 * cost every binary 49 KB.) */
static void start_inproc(const struct cni_ctx *c, const struct cni_plugin *p, enum cni_verb verb, struct cni_exec *x)
{
	struct cni_inproc_job j = { .sub = *c, .p = p };
	j.sub.verb = verb;
	j.sub.args = NULL;
	j.sub.n_args = 0;
	cni_err_clear(&j.sub.err);
	x->inproc = true;
	run_inproc(&j);
	inproc_collect(x, &j);
}

int cni_exec_wait(struct cni_exec *x, char **out, size_t *len, int *status, struct cni_error *e)
{
	*out = NULL;
	*len = 0;
	*status = 0;
	if (x->inproc || !x->sp.pid)
		return cni_errf(e, CNI_ERR_INTERNAL, "plugin %s was not started", x->name);
	/* reaped even when its output is unreadable */
	int err = subproc_wait(&x->sp, CNI_STDIN_MAX, out, len, status);
	if (err) {
		cni_read_error(e, err, CNI_STDIN_MAX);
		cni_err_prefix(e, "plugin %s output: ", x->name);
		return -1;
	}
	return 0;
}

int cni_exec_finish(struct cni_exec *x, struct cni_result *res, struct cni_error *e)
{
	if (x->inproc) {
		x->inproc = false;
		if (x->rc < 0) {
			*e = x->err;
			cni_result_free(&x->res);
			return -1;
		}
		if (res)
			*res = x->res;
		else
			cni_result_free(&x->res);
		memset(&x->res, 0, sizeof(x->res));
		return 0;
	}
	{
		const char *name = x->name;
		int status = 0, rc = -1;
		char *out = NULL;
		size_t olen = 0;
		cJSON *j = NULL;

		if (cni_exec_wait(x, &out, &olen, &status, e) < 0)
			return -1;
		if (WIFSIGNALED(status)) {
			cni_errf(e, CNI_ERR_PLUGIN_EXEC, "plugin %s killed by signal %d", name, WTERMSIG(status));
			goto out;
		}
		if (WEXITSTATUS(status) != 0) {
			const cJSON *code, *msg, *det;
			j = olen ? cJSON_Parse(out) : NULL;
			code = j ? cJSON_GetObjectItemCaseSensitive(j, "code") : NULL;
			msg = j ? cJSON_GetObjectItemCaseSensitive(j, "msg") : NULL;
			det = j ? cJSON_GetObjectItemCaseSensitive(j, "details") : NULL;
			if (cJSON_IsNumber(code)) {
				const char *m = cJSON_IsString(msg) ? msg->valuestring : "failed";
				size_t nl = strlen(name);
				/* name the delegate once: its own message may already start with its name */
				if (strncmp(m, name, nl) == 0 && m[nl] == ':')
					cni_errf(e, code->valueint, "%s", m);
				else
					cni_errf(e, code->valueint, "%s: %s", name, m);
				if (cJSON_IsString(det))
					cni_err_details(e, "%s", det->valuestring);
			} else {
				cni_errf(e, CNI_ERR_PLUGIN_EXEC, "plugin %s exited with status %d and no CNI error", name,
					 WEXITSTATUS(status));
			}
			goto out;
		}
		if (x->verb == CNI_ADD) {
			if (!(j = cJSON_Parse(out))) {
				cni_errf(e, CNI_ERR_DECODE, "plugin %s printed no JSON result", name);
				goto out;
			}
			if (cni_result_parse(j, "ipam result", res, e) < 0) {
				cni_err_prefix(e, "plugin %s: ", name);
				goto out;
			}
		}
		rc = 0;
	out:
		cJSON_Delete(j);
		free(out);
		return rc;
	}
}

int cni_exec_plugin(const char *plugin_path, enum cni_verb verb, const char *stdin_data, size_t len, struct cni_result *res,
		    struct cni_error *e)
{
	struct cni_exec x;
	if (cni_exec_start(plugin_path, verb, stdin_data, len, &x, e) < 0)
		return -1;
	return cni_exec_finish(&x, res, e);
}

int cni_ipam_type(const struct cni_ctx *c, const char **type, struct cni_error *e)
{
	const cJSON *ipam = NULL;
	*type = NULL;
	if (conf_object(c->conf, "", "ipam", &ipam, e) < 0 || (ipam && conf_string(ipam, "ipam", "type", type, e) < 0))
		return -1;
	if (!ipam || !*type || !**type)
		return 0;
	if (strchr(*type, '/') || strcmp(*type, ".") == 0 || strcmp(*type, "..") == 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"ipam.type\": \"%s\" is not a plugin name",
				*type);
	return 1;
}

int cni_ipam_start(const struct cni_ctx *c, enum cni_verb verb, struct cni_exec *x, struct cni_error *e)
{
	char path[4096];
	const char *type;
	int r = cni_ipam_type(c, &type, e);
	if (r <= 0)
		return r < 0 ? -1 : cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"ipam.type\" is required");
	if (cni_find_plugin(c->path, type, path, sizeof(path), e) < 0)
		return -1;
	if (c->inproc_ipam && strcmp(type, c->inproc_ipam->name) == 0 && ours_same_build(path, c->inproc_ipam)) {
		memset(x, 0, sizeof(*x));
		x->verb = verb;
		snprintf(x->name, sizeof(x->name), "%s", type);
		start_inproc(c, c->inproc_ipam, verb, x);
		return 0;
	}
	return cni_exec_start(path, verb, c->stdin_buf, c->stdin_len, x, e);
}

int cni_ipam_exec(const struct cni_ctx *c, enum cni_verb verb, struct cni_result *res, struct cni_error *e)
{
	struct cni_exec x;
	if (cni_ipam_start(c, verb, &x, e) < 0)
		return -1;
	return cni_exec_finish(&x, res, e);
}

/* ---- a main plugin's IPAM ADD, undone by DEL ---- */

static void ipam_add_undo(void *arg)
{
	struct cni_ipam_add *ia = *(struct cni_ipam_add **)arg;
	struct cni_error ig = { 0 };
	if (ia->running) {
		struct cni_result tmp = { 0 };
		ia->running = false;
		ia->added = cni_exec_finish(&ia->x, &tmp, &ig) == 0;
		cni_result_free(&tmp);
	}
	if (ia->added && !ia->keep)
		cni_ipam_exec(ia->c, CNI_DEL, NULL, &ig);
	ia->added = false;
}

int cni_ipam_add_start(struct cni_ipam_add *ia, const struct cni_ctx *c, struct undo *u, struct cni_error *e)
{
	*ia = (struct cni_ipam_add){ .c = c };
	if (cni_ipam_start(c, CNI_ADD, &ia->x, e) < 0)
		return -1;
	ia->running = true;
	return undo_push(u, ipam_add_undo, &ia, sizeof(ia), e);
}

int cni_ipam_add_finish(struct cni_ipam_add *ia, struct cni_result *res, struct cni_error *e)
{
	ia->running = false;
	if (cni_exec_finish(&ia->x, res, e) < 0)
		return -1;
	ia->added = true;
	return 0;
}
