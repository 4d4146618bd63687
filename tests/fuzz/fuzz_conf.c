/* libFuzzer target: a network config on stdin, through the parsing every plugin does. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <cjson/cJSON.h>

#include "conf.h"
#include "hostlocal.h"
#include "result.h"
#include "skel.h"
#include "version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A property the parsers promise broke: stop here, loudly (libFuzzer and the replay see a crash). */
static void broken(const char *what, const char *a, const char *b)
{
	fprintf(stderr, "fuzz_conf: %s\n  first:  %s\n  second: %s\n", what, a ? a : "(null)", b ? b : "(null)");
	abort();
}

/* Re-serialise a parsed result in every version: each shape we print must parse back, and the
 * 1.1.0 shape (lossless) must be a fixed point. */
static void result_roundtrip(const struct cni_result *r)
{
	for (size_t v = 0; v < cni_n_supported_versions; v++) {
		struct cni_error e = { 0 };
		const char *ver = cni_supported_versions[v];
		cJSON *j = cni_result_to_json(r, ver, &e);
		if (!j)
			continue; /* e.g. 0.2.0 of a result without an address */
		char *s1 = cJSON_PrintUnformatted(j);
		struct cni_result r2;
		struct cni_error e2 = { 0 };
		if (cni_result_parse(j, "roundtrip", &r2, &e2) < 0)
			broken("a result we printed does not parse back", s1, e2.msg);
		if (strcmp(r2.version, ver) != 0)
			broken("version lost in the round trip", ver, r2.version);
		if (cni_version_cmp(ver, "1.0.0") >= 0) {
			struct cni_error e3 = { 0 };
			cJSON *j2 = cni_result_to_json(&r2, ver, &e3);
			char *s2 = j2 ? cJSON_PrintUnformatted(j2) : NULL;
			if (!s1 || !s2 || strcmp(s1, s2) != 0)
				broken("1.x result not stable through print/parse", s1, s2);
			free(s2);
			cJSON_Delete(j2);
		}
		cni_result_free(&r2);
		free(s1);
		cJSON_Delete(j);
	}
}

/* Every getter on every key and value of the tree, as some plugin may ask for it. */
static void walk(const cJSON *node, const char *path, int depth)
{
	char p[CONF_PATH_MAX];
	const cJSON *it;
	size_t i = 0;

	if (depth > 64)
		return;
	if (cJSON_IsString(node)) {
		const char *s = node->valuestring;
		struct ip ip;
		struct ipnet net;
		int v[3];
		(void)conf_valid_ifname(s);
		(void)conf_valid_cni_name(s);
		(void)conf_valid_utf8(s, strlen(s));
		(void)cni_version_supported(s);
		(void)cni_version_parse(s, v);
		(void)cni_version_cmp(s, "0.4.0");
		if (ip_parse(s, &ip) == 0) {
			char b[IP_STRLEN];
			struct ip back;
			if (ip_parse(ip_fmt(&ip, b), &back) < 0 || !ip_equal(&ip, &back))
				broken("ip_fmt output does not parse back to the same address", s, b);
		}
		if (ipnet_parse(s, &net) == 0) {
			char b[IPNET_STRLEN];
			struct ipnet back;
			/* as Go's net.ParseCIDR: the prefix length is decimal digits and nothing else */
			const char *len = strchr(s, '/') + 1;
			if (strspn(len, "0123456789") != strlen(len))
				broken("a prefix length with more than digits accepted", s, len);
			if (ipnet_parse(ipnet_fmt(&net, b), &back) < 0 || !ip_equal(&net.ip, &back.ip) ||
			    net.prefix != back.prefix)
				broken("ipnet_fmt output does not parse back to the same network", s, b);
			struct ip first = ipnet_network(&net), last = ipnet_last(&net);
			if (!ipnet_contains(&net, &first) || !ipnet_contains(&net, &last) || ip_cmp(&first, &last) > 0)
				broken("network bounds outside the network", s, b);
		}
	}
	if (cJSON_IsObject(node)) {
		struct cni_error e = { 0 };
		struct cni_route rt;
		struct cni_dns dns = { 0 };
		struct cni_result r;
		(void)cni_route_parse(node, path, &rt, &e);
		cni_err_clear(&e);
		(void)cni_dns_parse(node, path, &dns, &e);
		cJSON *dj = cni_dns_to_json(&dns);
		cJSON_Delete(dj);
		cni_dns_free(&dns);
		cni_err_clear(&e);
		if (cni_result_parse(node, path, &r, &e) == 0) {
			result_roundtrip(&r);
			cni_result_free(&r);
		}
		cJSON_ArrayForEach (it, node) {
			const char *k = it->string ? it->string : "";
			const char *s;
			bool b;
			long long n;
			const cJSON *o;
			struct ip ip;
			struct ipnet net;
			char upper[64];
			cni_err_clear(&e);
			(void)conf_string(node, path, k, &s, &e);
			cni_err_clear(&e);
			(void)conf_bool(node, path, k, &b, &e);
			cni_err_clear(&e);
			if (conf_int(node, path, k, 0, 65535, &n, &e) > 0 && (n < 0 || n > 65535))
				broken("conf_int out of its range", k, "0..65535");
			cni_err_clear(&e);
			if (conf_int(node, path, k, -(1LL << 53), 1LL << 53, &n, &e) > 0 && (n < -(1LL << 53) || n > 1LL << 53))
				broken("conf_int out of its range", k, "-2^53..2^53");
			cni_err_clear(&e);
			(void)conf_object(node, path, k, &o, &e);
			cni_err_clear(&e);
			(void)conf_array(node, path, k, &o, &e);
			cni_err_clear(&e);
			(void)conf_ip(node, path, k, &ip, &e);
			cni_err_clear(&e);
			(void)conf_ipnet(node, path, k, &net, &e);
			/* the same key in another case (Go's lookup ignores case) */
			snprintf(upper, sizeof(upper), "%s", k);
			for (char *q = upper; *q; q++)
				*q = (char)((*q >= 'a' && *q <= 'z') ? *q - 32 : *q);
			if (!conf_item(node, upper) && strlen(k) < sizeof(upper) && !cJSON_IsNull(it))
				broken("key not found ignoring case", k, upper);
			walk(it, conf_path(p, path, k), depth + 1);
		}
	} else if (cJSON_IsArray(node)) {
		cJSON_ArrayForEach (it, node) {
			struct cni_error e = { 0 };
			const char *s;
			struct ip ip;
			conf_path_idx(p, path, i++);
			(void)conf_val_string(it, p, &s, &e);
			cni_err_clear(&e);
			(void)conf_val_ip(it, p, &ip, &e);
			cni_err_clear(&e);
			(void)conf_val_ip_or_cidr(it, p, &ip, &e);
			walk(it, p, depth + 1);
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cni_ctx c = { 0 };
	struct cni_error *e = &c.err;
	static const char *const known[] = { "IP", "MAC", NULL };

	if (size > CNI_STDIN_MAX)
		return 0;
	/* as cni_read_bounded leaves it: the bytes, NUL-terminated */
	if (!(c.stdin_buf = malloc(size + 1)))
		return 0;
	memcpy(c.stdin_buf, data, size);
	c.stdin_buf[size] = '\0';
	c.stdin_len = size;
	/* GC parses everything ADD does, plus the valid-attachments list */
	c.verb = CNI_GC;
	c.args_env = "IP=10.1.2.3;IgnoreUnknown=1;K8S_POD_NAME=p";
	int rc = cni_parse_config(&c, e);
	if (c.has_prev)
		result_roundtrip(&c.prev);
	if (rc == 0) {
		struct cni_error ae = { 0 };
		struct hl_config cfg;
		struct cni_error he = { 0 };
		if (cni_args_parse(c.args_env, known, &c.args, &c.n_args, &ae) < 0)
			broken("fixed CNI_ARGS do not parse", c.args_env, ae.msg);
		if (hl_config_parse(&c, &cfg, &he) == 0) {
			char buf[512];
			for (size_t i = 0; i < cfg.n_sets; i++) {
				(void)hl_rangeset_str(&cfg.sets[i], buf, sizeof(buf));
				for (size_t k = 0; k < cfg.sets[i].n; k++) {
					const struct hl_range *r = &cfg.sets[i].r[k];
					if (!ipnet_contains(&r->subnet, &r->start) || !ipnet_contains(&r->subnet, &r->end) ||
					    ip_cmp(&r->start, &r->end) > 0)
						broken("host-local range outside its subnet", buf, "");
					if (hl_rangeset_find(&cfg.sets[i], &r->start) == NULL)
						broken("rangeStart not found in its own range set", buf, "");
					(void)hl_range_reserved_addr(r, &r->gateway);
				}
			}
			/* no two ranges of the config overlap, whichever set they are in */
			for (size_t i = 0; i < cfg.n_sets; i++)
				for (size_t k = 0; k < cfg.sets[i].n; k++)
					for (size_t j = i; j < cfg.n_sets; j++)
						for (size_t l = j == i ? k + 1 : 0; l < cfg.sets[j].n; l++) {
							const struct hl_range *a = &cfg.sets[i].r[k], *b = &cfg.sets[j].r[l];
							if (a->start.len == b->start.len && ip_cmp(&a->start, &b->end) <= 0 &&
							    ip_cmp(&b->start, &a->end) <= 0)
								broken("overlapping host-local ranges accepted", buf, "");
						}
			for (size_t i = 0; i < cfg.n_routes; i++)
				if (cfg.routes[i].gw.len && cfg.routes[i].gw.len != cfg.routes[i].dst.ip.len)
					broken("route gateway of another family accepted", "", "");
			for (size_t i = 0; i < cfg.n_requested; i++)
				if (cfg.requested[i].len != 4 && cfg.requested[i].len != 16)
					broken("requested address without a family", "", "");
			hl_config_free(&cfg);
		}
		for (size_t i = 0; i < c.n_valid; i++)
			if (!cni_attachment_valid(&c, c.valid[i].container_id, c.valid[i].ifname))
				broken("listed attachment not valid", c.valid[i].container_id, c.valid[i].ifname);
		(void)conf_runtime_config(c.conf);
		(void)conf_args_cni(c.conf);
	}
	if (c.conf)
		walk(c.conf, "", 0);
	cni_ctx_free(&c);
	return 0;
}
