/* libFuzzer target: CNI_ARGS ("K=V;K=V", IgnoreUnknown, K8S_* labels) and the CNI_* value checks. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "conf.h"
#include "hostlocal.h"
#include "skel.h"

static bool listed(const char *const *l, const char *k, size_t kl)
{
	for (; l && *l; l++)
		if (strlen(*l) == kl && memcmp(*l, k, kl) == 0)
			return true;
	return false;
}

/* The rules, written again from libcni's LoadArgs: should s parse, given the plugin's keys? */
static bool should_parse(const char *s, const char *const *known)
{
	static const char *const labels[] = { "K8S_POD_NAMESPACE", "K8S_POD_NAME", "K8S_POD_INFRA_CONTAINER_ID", "K8S_POD_UID",
					      NULL };
	bool unknown = false, ignore = false;
	if (!*s)
		return true;
	for (const char *p = s;;) {
		size_t len = strcspn(p, ";");
		const char *eq = memchr(p, '=', len);
		if (!eq || eq == p || memchr(eq + 1, '=', len - (size_t)(eq - p) - 1))
			return false;
		size_t kl = (size_t)(eq - p), vl = len - kl - 1;
		if (kl == 13 && memcmp(p, "IgnoreUnknown", 13) == 0) {
			if ((vl == 1 && eq[1] == '1') || (vl == 4 && strncasecmp(eq + 1, "true", 4) == 0))
				ignore = true;
			else if ((vl == 1 && eq[1] == '0') || (vl == 5 && strncasecmp(eq + 1, "false", 5) == 0))
				ignore = false;
			else
				return false;
		} else if (!listed(known, p, kl) && !listed(labels, p, kl)) {
			unknown = true;
		}
		if (!p[len])
			break;
		p += len + 1;
	}
	return !unknown || ignore;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void broken(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_args: %s\n  input: %s\n  got:   %s\n", what, a ? a : "(null)", b ? b : "(null)");
	abort();
}

/* A host-local config whose requested address can only come from CNI_ARGS IP= */
static const char hl_conf[] =
	"{\"cniVersion\":\"1.1.0\",\"name\":\"fz\",\"type\":\"host-local\","
	"\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"/nonexistent\",\"ranges\":[[{\"subnet\":\"10.1.0.0/16\"}],[{\"subnet\":\"fd00::/64\"}]]}}";

/* What the parse returned must be exactly the input cut at ';' and the first '=' */
static void check_pairs(const char *s, const struct cni_kv *kv, size_t n)
{
	size_t len = strlen(s), off = 0;
	char *back = malloc(len + 2);
	if (!back)
		return;
	back[0] = '\0';
	for (size_t i = 0; i < n; i++) {
		if (!*kv[i].key || strpbrk(kv[i].key, ";=") || strpbrk(kv[i].val, ";="))
			broken("a key or value holds a separator (or the key is empty)", s, kv[i].key);
		size_t kl = strlen(kv[i].key), vl = strlen(kv[i].val);
		if (off + kl + vl + 2 > len + 1)
			broken("pairs longer than the input", s, kv[i].key);
		off += (size_t)sprintf(back + off, "%s%s=%s", i ? ";" : "", kv[i].key, kv[i].val);
	}
	if (strcmp(back, s) != 0)
		broken("pairs do not add up to the input", s, back);
	free(back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const lists[][3] = { { NULL }, { "IP", NULL }, { "MAC", "IP", NULL } };
	static struct cni_ctx base;
	static int have_base;
	char *s;

	if (size > 65536)
		return 0;
	/* an environment string: it ends at the first NUL */
	if (!(s = malloc(size + 1)))
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';

	if (!have_base) {
		base.stdin_buf = strdup(hl_conf);
		base.stdin_len = strlen(hl_conf);
		base.verb = CNI_ADD;
		if (cni_parse_config(&base, &base.err) < 0)
			broken("the fixed host-local config does not parse", hl_conf, base.err.msg);
		have_base = 1;
	}

	for (size_t l = 0; l < sizeof(lists) / sizeof(lists[0]); l++) {
		struct cni_kv *kv = NULL;
		size_t n = 0;
		struct cni_error e = { 0 };
		int rc = cni_args_parse(s, lists[l], &kv, &n, &e);
		if ((rc == 0) != should_parse(s, lists[l]))
			broken(rc ? "CNI_ARGS refused that the rules accept" : "CNI_ARGS accepted that the rules refuse", s,
			       e.msg);
		if (rc < 0) {
			if (kv || n)
				broken("a failed parse returned pairs", s, e.msg);
			if (!e.msg[0])
				broken("a failed parse without a message", s, "");
			continue;
		}
		if (!*s && (kv || n))
			broken("empty CNI_ARGS gave pairs", s, "");
		check_pairs(s, kv, n);

		struct cni_ctx c = base;
		c.args_env = s;
		c.args = kv;
		c.n_args = n;
		for (size_t i = 0; i < n; i++) {
			const char *v = cni_arg(&c, kv[i].key);
			size_t first = 0;
			while (strcmp(kv[first].key, kv[i].key) != 0)
				first++;
			if (v != kv[first].val)
				broken("cni_arg does not return the first value of a key", s, kv[i].key);
			/* the same checks CNI_CONTAINERID, CNI_IFNAME and names get */
			(void)conf_valid_cni_name(kv[i].val);
			(void)conf_valid_ifname(kv[i].val);
			(void)conf_valid_utf8(kv[i].val, strlen(kv[i].val));
		}
		/* host-local takes IP= when the config requests nothing */
		struct hl_config cfg;
		struct cni_error he = { 0 };
		if (hl_config_parse(&c, &cfg, &he) == 0) {
			const char *ip = cni_arg(&c, "IP");
			if (ip && *ip && cfg.n_requested != 1)
				broken("IP= not taken as the requested address", s, ip);
			hl_config_free(&cfg);
		} else if (!he.msg[0]) {
			broken("host-local config failed without a message", s, "");
		}
		cni_args_free(kv, n);
	}
	/* the whole string as CNI_CONTAINERID / CNI_IFNAME / a network name */
	(void)conf_valid_cni_name(s);
	(void)conf_valid_ifname(s);
	free(s);
	return 0;
}
