/* cnitool: the Go cnitool's commands (add, check, del, gc, status) over libcni's behaviour, in C. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gojson.h"
#include "libcni.h"
#include "sha512.h"
#include "version.h"

#define DEFAULT_NET_DIR "/etc/cni/net.d"

static const char usage[] =
	"CNI Tool is a simple program that executes a CNI configuration.\n"
	"It will add, check, remove, gc, or get status of an interface in an already-created network namespace.\n"
	"\n"
	"Usage:\n"
	"  cnitool [command]\n"
	"\n"
	"Available Commands:\n"
	"  add         Add network interface to a network namespace\n"
	"  check       Check network interface in a network namespace\n"
	"  del         Delete network interface from a network namespace\n"
	"  gc          Garbage collect network interfaces\n"
	"  help        Help about any command\n"
	"  reload      Re-apply the host-side rules (SNAT, spoof check, host ports) of every cached attachment\n"
	"  status      Get status of network interfaces\n"
	"\n"
	"Flags:\n"
	"  -h, --help            help for cnitool\n"
	"      --version         print cnitool's version\n"
	"      --cache-dir dir   the runtime's result cache (defaults to env var CNI_CACHE_DIR or " LIBCNI_CACHE_DIR ")\n"
	"  -i, --ifname string   Interface name (defaults to env var CNI_IFNAME or 'eth0')\n"
	"\n"
	"Usage: cnitool add|check|del <network-name> <netns>; cnitool gc|status <network-name> [<netns>];\n"
	"       cnitool reload [<network-name>]\n"
	"\n"
	"Environment: NETCONFPATH (default " DEFAULT_NET_DIR "), CNI_PATH, CNI_IFNAME, CNI_ARGS (K=V;K=V),\n"
	"CAP_ARGS (capability args as JSON), CNI_CACHE_DIR (default " LIBCNI_CACHE_DIR ", results in <dir>/results),\n"
	"CNI_GC_KEEP_CACHED=1 (gc keeps the cached attachments, passing them to the plugins as valid)\n";

enum cmd { CMD_ADD, CMD_CHECK, CMD_DEL, CMD_GC, CMD_STATUS, CMD_RELOAD };

static const char *const cmd_names[] = { "add", "check", "del", "gc", "status", "reload" };

static int fail(const struct cni_error *e)
{
	fprintf(stderr, "Error: %s%s%s\n", e->msg, *e->details ? "; " : "", e->details);
	return 1;
}

/* os.Getwd: $PWD when it names the working directory (so a path through a symlink, /var/run for
 * /run, stays as the shell shows it), else getcwd(3). */
static char *go_getwd(void)
{
	const char *pwd = getenv("PWD");
	struct stat a, b;
	if (pwd && *pwd == '/' && stat(pwd, &a) == 0 && stat(".", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino)
		return strdup(pwd);
	return getcwd(NULL, 0);
}

/* filepath.Abs: joined onto the working directory when relative, then filepath.Clean. */
static char *abs_path(const char *p, struct cni_error *e)
{
	char *cwd = NULL, *joined = NULL, *out;
	size_t n, o = 0;

	if (*p != '/') {
		if (!(cwd = go_getwd())) {
			cni_errf(e, CNI_ERR_IO, "getwd: %s", cni_strerror(errno));
			return NULL;
		}
		if (asprintf(&joined, "%s/%s", cwd, p) < 0)
			joined = NULL;
		free(cwd);
	} else {
		joined = strdup(p);
	}
	if (!joined || !(out = malloc(strlen(joined) + 2))) {
		free(joined);
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		return NULL;
	}
	/* Clean: drop empty and "." elements, ".." eats the previous one (not past the root) */
	n = strlen(joined);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		while (j < n && joined[j] != '/')
			j++;
		size_t len = j - i;
		if (len == 0 || (len == 1 && joined[i] == '.')) {
			/* nothing */
		} else if (len == 2 && joined[i] == '.' && joined[i + 1] == '.') {
			while (o > 0 && out[o - 1] != '/')
				o--;
			if (o > 0)
				o--;
		} else {
			out[o++] = '/';
			memcpy(out + o, joined + i, len);
			o += len;
		}
		i = j + 1;
	}
	if (o == 0)
		out[o++] = '/';
	out[o] = '\0';
	free(joined);
	return out;
}

/* The Go tool's parseArgs: "K=V;K=V", each pair exactly one '=' with both sides non-empty. */
static int parse_cni_args(const char *s, struct rtconf *rt, struct cni_error *e)
{
	const char *p = s;
	for (;;) {
		const char *end = strchr(p, ';');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *eq = memchr(p, '=', len);
		struct cni_kv *nv;
		if (!eq || eq == p || eq + 1 == p + len || memchr(eq + 1, '=', len - (size_t)(eq + 1 - p)))
			return cni_errf(e, CNI_ERR_INVALID_ENV, "invalid CNI_ARGS pair \"%.*s\"", (int)len, p);
		if (!(nv = realloc(rt->args, (rt->n_args + 1) * sizeof(*nv))))
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		rt->args = nv;
		nv[rt->n_args].key = strndup(p, (size_t)(eq - p));
		nv[rt->n_args].val = strndup(eq + 1, len - (size_t)(eq + 1 - p));
		rt->n_args++;
		if (!nv[rt->n_args - 1].key || !nv[rt->n_args - 1].val)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		if (!end)
			return 0;
		p = end + 1;
	}
}

/* setupRuntimeConfig: the network from NETCONFPATH, CAP_ARGS, CNI_ARGS, the interface name, the
 * absolute netns path and the container ID derived from it. netns NULL: gc and status without one. */
static int setup(const char *net, const char *netns, const char *ifname_flag, struct netlist *l, struct rtconf *rt,
		 struct cni_error *e)
{
	const char *dir = getenv("NETCONFPATH"), *caps = getenv("CAP_ARGS"), *args = getenv("CNI_ARGS");
	const char *ifname = ifname_flag;
	char hex[21];

	memset(rt, 0, sizeof(*rt));
	if (netlist_load(dir && *dir ? dir : DEFAULT_NET_DIR, net, l, e) < 0)
		return -1;
	if (caps && *caps) {
		if (!(rt->caps = gojson_parse(caps, strlen(caps))))
			return cni_errf(e, CNI_ERR_DECODE, "CAP_ARGS is not JSON: %s", caps);
		if (cJSON_IsNull(rt->caps)) {
			cJSON_Delete(rt->caps);
			rt->caps = NULL;
		} else if (!cJSON_IsObject(rt->caps)) {
			return cni_errf(
				e, CNI_ERR_DECODE,
				"json: cannot unmarshal CAP_ARGS into Go value of type map[string]interface {}: not an object");
		} else {
			gojson_canon(rt->caps);
		}
	}
	if (args && *args && parse_cni_args(args, rt, e) < 0)
		return -1;
	if (!ifname || !*ifname)
		ifname = getenv("CNI_IFNAME");
	if (!ifname || !*ifname)
		ifname = "eth0";
	if (!(rt->ifname = strdup(ifname)))
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (!netns) {
		if (!(rt->netns = strdup("")) || !(rt->container_id = strdup("")))
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		return 0;
	}
	if (!(rt->netns = abs_path(netns, e)))
		return -1;
	/* the Go tool's container ID: "cnitool-" + hex of the first 10 bytes of sha512(netns) */
	if (sha512_hexf(hex, 20, "%s", rt->netns) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (asprintf(&rt->container_id, "cnitool-%s", hex) < 0) {
		rt->container_id = NULL;
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	return 0;
}

/* CNI_GC_KEEP_CACHED: ours; the Go tool always collects everything */
static bool keep_cached(void)
{
	const char *v = getenv("CNI_GC_KEEP_CACHED");
	return v && (strcmp(v, "1") == 0 || strcasecmp(v, "true") == 0);
}

static int run(enum cmd cmd, const char *net, const char *netns, const char *ifname_flag, const char *cache_dir)
{
	struct cnitool t = { .path = getenv("CNI_PATH"), .cache_dir = cache_dir ? cache_dir : getenv("CNI_CACHE_DIR") };
	struct cni_error e = { 0 }, rb = { 0 };
	struct netlist l = { 0 };
	struct rtconf rt = { 0 };
	cJSON *result = NULL;
	int rc;

	if (!t.path)
		t.path = "";
	if (!t.cache_dir || !*t.cache_dir)
		t.cache_dir = LIBCNI_CACHE_DIR;
	if (cmd == CMD_RELOAD) {
		const char *dir = getenv("NETCONFPATH");
		return lc_reload(&t, dir && *dir ? dir : DEFAULT_NET_DIR, net, &e) < 0 ? fail(&e) : 0;
	}
	rc = setup(net, netns, ifname_flag, &l, &rt, &e);
	if (rc == 0) {
		switch (cmd) {
		case CMD_ADD:
			rc = lc_add(&t, &l, &rt, &result, &e, &rb);
			break;
		case CMD_CHECK:
			rc = lc_check(&t, &l, &rt, &e);
			break;
		case CMD_DEL:
			rc = lc_del(&t, &l, &rt, &e);
			break;
		case CMD_GC:
			rc = lc_gc(&t, &l, keep_cached(), &e);
			break;
		case CMD_STATUS:
			rc = lc_status(&t, &l, &e);
			break;
		case CMD_RELOAD: /* handled above */
			break;
		}
	}
	if (rc == 0 && result) {
		/* Result.Print(): MarshalIndent with four spaces and, like Go, no newline after it */
		struct sb b = { 0 };
		size_t len;
		char *s;
		gojson_marshal_indent(result, &b);
		if ((s = sb_take(&b, &len))) {
			fwrite(s, 1, len, stdout);
			free(s);
		}
		fflush(stdout);
	}
	cJSON_Delete(result);
	rtconf_free(&rt);
	netlist_free(&l);
	if (rc < 0) {
		fail(&e);
		if (rb.code) {
			cni_err_prefix(&rb, "rolling back the failed ADD: ");
			fail(&rb);
		}
		return 1;
	}
	return 0;
}

int main(int argc, char **argv)
{
	const char *pos[8] = { 0 }, *ifname = NULL, *cache_dir = NULL;
	int npos = 0;
	bool flags_done = false;
	enum cmd cmd;
	struct cni_error e = { 0 };

	/* cobra's flags: -i/--ifname anywhere, -h/--help; "--" ends them */
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!flags_done && strcmp(a, "--") == 0) {
			flags_done = true;
		} else if (!flags_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			fputs(usage, stdout);
			return 0;
		} else if (!flags_done && strcmp(a, "--version") == 0) {
			printf("cnitool v%s (C CNI plugin suite)\n", cni_c_version);
			return 0;
		} else if (!flags_done && (strcmp(a, "-i") == 0 || strcmp(a, "--ifname") == 0)) {
			if (++i >= argc) {
				cni_errf(&e, CNI_ERR_INVALID_ENV, "flag needs an argument: %s", a);
				return fail(&e);
			}
			ifname = argv[i];
		} else if (!flags_done && strcmp(a, "--cache-dir") == 0) {
			if (++i >= argc) {
				cni_errf(&e, CNI_ERR_INVALID_ENV, "flag needs an argument: %s", a);
				return fail(&e);
			}
			cache_dir = argv[i];
		} else if (!flags_done && strncmp(a, "--cache-dir=", 12) == 0) {
			cache_dir = a + 12;
		} else if (!flags_done && strncmp(a, "--ifname=", 9) == 0) {
			ifname = a + 9;
		} else if (!flags_done && strncmp(a, "-i", 2) == 0) {
			ifname = a[2] == '=' ? a + 3 : a + 2;
		} else if (!flags_done && a[0] == '-' && a[1]) {
			cni_errf(&e, CNI_ERR_INVALID_ENV, "unknown flag: %s", a);
			return fail(&e);
		} else if (npos < (int)(sizeof(pos) / sizeof(pos[0]))) {
			pos[npos++] = a;
		}
	}
	if (npos == 0 || strcmp(pos[0], "help") == 0) {
		fputs(usage, stdout);
		return 0;
	}
	for (cmd = CMD_ADD; cmd <= CMD_RELOAD; cmd++)
		if (strcmp(pos[0], cmd_names[cmd]) == 0)
			break;
	if (cmd > CMD_RELOAD) {
		cni_errf(&e, CNI_ERR_INVALID_ENV, "unknown command \"%s\" for \"cnitool\"", pos[0]);
		fail(&e);
		fputs("Run 'cnitool --help' for usage.\n", stderr);
		return 1;
	}
	if (cmd == CMD_RELOAD)
		return run(cmd, npos > 1 ? pos[1] : NULL, NULL, NULL, cache_dir);
	/* add, check and del need the netns (the container ID comes from it); gc and status do not */
	if (npos < (cmd >= CMD_GC ? 2 : 3)) {
		cni_errf(&e, CNI_ERR_INVALID_ENV, "requires at least %d arg(s), only received %d", cmd >= CMD_GC ? 1 : 2,
			 npos - 1);
		fail(&e);
		fprintf(stderr, "Usage: cnitool %s <network-name> %s\n", cmd_names[cmd], cmd >= CMD_GC ? "[<netns>]" : "<netns>");
		return 1;
	}
	return run(cmd, pos[1], npos > 2 ? pos[2] : NULL, ifname, cache_dir);
}
