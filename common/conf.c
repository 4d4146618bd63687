/* JSON field access for configs: Go-compatible key lookup, types checked, paths in errors. */
#include "conf.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

const cJSON *conf_item(const cJSON *obj, const char *key)
{
	const cJSON *it, *found = NULL;
	if (!cJSON_IsObject(obj))
		return NULL;
	/* As Go's encoding/json: every key equal to the field's name ignoring case is decoded in
	 * turn, so the last one wins; a null leaves the value as it was. */
	for (it = obj->child; it; it = it->next)
		if (it->string && strcasecmp(it->string, key) == 0 && !cJSON_IsNull(it))
			found = it;
	return found;
}

const char *conf_path(char *buf, const char *parent, const char *key)
{
	if (parent && *parent)
		snprintf(buf, CONF_PATH_MAX, "%s.%s", parent, key);
	else
		snprintf(buf, CONF_PATH_MAX, "%s", key);
	return buf;
}

const char *conf_path_idx(char *buf, const char *parent, size_t idx)
{
	snprintf(buf, CONF_PATH_MAX, "%s[%zu]", parent ? parent : "", idx);
	return buf;
}

static const char *type_name(const cJSON *v)
{
	if (cJSON_IsString(v))
		return "a string";
	if (cJSON_IsNumber(v))
		return "a number";
	if (cJSON_IsBool(v))
		return "a boolean";
	if (cJSON_IsArray(v))
		return "an array";
	if (cJSON_IsObject(v))
		return "an object";
	return "null";
}

static int wrong_type(const cJSON *v, const char *path, const char *want, struct cni_error *e)
{
	return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be %s, not %s", path, want, type_name(v));
}

int conf_val_string(const cJSON *v, const char *path, const char **out, struct cni_error *e)
{
	if (!cJSON_IsString(v))
		return wrong_type(v, path, "a string", e);
	*out = v->valuestring;
	return 1;
}

int conf_string(const cJSON *obj, const char *parent, const char *key, const char **out, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *v = conf_item(obj, key);
	if (!v)
		return 0;
	return conf_val_string(v, conf_path(p, parent, key), out, e);
}

int conf_bool(const cJSON *obj, const char *parent, const char *key, bool *out, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *v = conf_item(obj, key);
	if (!v)
		return 0;
	if (!cJSON_IsBool(v))
		return wrong_type(v, conf_path(p, parent, key), "true or false", e);
	*out = cJSON_IsTrue(v);
	return 1;
}

int conf_int(const cJSON *obj, const char *parent, const char *key, long long min, long long max, long long *out,
	     struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *v = conf_item(obj, key);
	double d;
	if (!v)
		return 0;
	conf_path(p, parent, key);
	if (!cJSON_IsNumber(v))
		return wrong_type(v, p, "an integer", e);
	d = v->valuedouble;
	if (!isfinite(d) || d != floor(d))
		return cni_errf(e, CNI_ERR_DECODE, "invalid config: field \"%s\" must be an integer, not %g", p, d);
	if (d < (double)min || d > (double)max)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": %.0f out of range %lld..%lld", p, d,
				min, max);
	*out = (long long)d;
	return 1;
}

int conf_object(const cJSON *obj, const char *parent, const char *key, const cJSON **out, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *v = conf_item(obj, key);
	if (!v)
		return 0;
	if (!cJSON_IsObject(v))
		return wrong_type(v, conf_path(p, parent, key), "an object", e);
	*out = v;
	return 1;
}

int conf_array(const cJSON *obj, const char *parent, const char *key, const cJSON **out, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *v = conf_item(obj, key);
	if (!v)
		return 0;
	if (!cJSON_IsArray(v))
		return wrong_type(v, conf_path(p, parent, key), "an array", e);
	*out = v;
	return 1;
}

int conf_val_ip(const cJSON *v, const char *path, struct ip *out, struct cni_error *e)
{
	const char *s = NULL;
	if (conf_val_string(v, path, &s, e) < 0)
		return -1;
	if (ip_parse(s, out) < 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": \"%s\" is not an IP address", path, s);
	return 1;
}

int conf_val_ip_or_cidr(const cJSON *v, const char *path, struct ip *out, struct cni_error *e)
{
	const char *s = NULL;
	struct ipnet n;
	if (conf_val_string(v, path, &s, e) < 0)
		return -1;
	if (ip_parse(s, out) == 0)
		return 1;
	if (ipnet_parse(s, &n) == 0) {
		*out = n.ip;
		return 1;
	}
	return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": \"%s\" is not an IP address", path, s);
}

int conf_ip(const cJSON *obj, const char *parent, const char *key, struct ip *out, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const cJSON *v = conf_item(obj, key);
	if (!v)
		return 0;
	return conf_val_ip(v, conf_path(p, parent, key), out, e);
}

int conf_ipnet(const cJSON *obj, const char *parent, const char *key, struct ipnet *out, struct cni_error *e)
{
	char p[CONF_PATH_MAX];
	const char *s = NULL;
	const cJSON *v = conf_item(obj, key);
	if (!v)
		return 0;
	conf_path(p, parent, key);
	if (conf_val_string(v, p, &s, e) < 0)
		return -1;
	if (ipnet_parse(s, out) < 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"%s\": \"%s\" is not a CIDR (address/prefix)",
				p, s);
	return 1;
}

bool conf_valid_ifname(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > 15 || strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
		return false;
	for (; *s; s++)
		if (*s == '/' || *s == ':' || isspace((unsigned char)*s))
			return false;
	return true;
}

bool conf_valid_cni_name(const char *s)
{
	if (!isalnum((unsigned char)*s))
		return false;
	for (s++; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_' && *s != '.' && *s != '-')
			return false;
	return true;
}

size_t conf_utf8_seq(const unsigned char *s, size_t n, uint32_t *r)
{
	unsigned char c = s[0];
	size_t len;
	uint32_t v, min;

	if (c < 0x80) {
		*r = c;
		return n ? 1 : 0;
	}
	if (c < 0xc2 || c > 0xf4)
		return 0;
	if (c < 0xe0) {
		len = 2;
		v = c & 0x1f;
		min = 0x80;
	} else if (c < 0xf0) {
		len = 3;
		v = c & 0x0f;
		min = 0x800;
	} else {
		len = 4;
		v = c & 0x07;
		min = 0x10000;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		v = (v << 6) | (s[i] & 0x3f);
	}
	if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff))
		return 0;
	*r = v;
	return len;
}

bool conf_valid_utf8(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	uint32_t r;
	for (size_t i = 0, k; i < len; i += k)
		if (!(k = conf_utf8_seq(p + i, len - i, &r)))
			return false;
	return true;
}

const cJSON *conf_runtime_config(const cJSON *root)
{
	const cJSON *rc = conf_item(root, "runtimeConfig");
	return cJSON_IsObject(rc) ? rc : NULL;
}

const cJSON *conf_args_cni(const cJSON *root)
{
	const cJSON *a = conf_item(root, "args");
	const cJSON *c = a ? conf_item(a, "cni") : NULL;
	return cJSON_IsObject(c) ? c : NULL;
}
