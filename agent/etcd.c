/* etcd v3 JSON gateway calls (see etcd.h). */
#include "etcd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char b64c[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

char *etcd_b64(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	char *o = malloc((n + 2) / 3 * 4 + 1), *q = o;
	if (!o)
		return NULL;
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16 | (i + 1 < n ? (unsigned)p[i + 1] << 8 : 0) | (i + 2 < n ? p[i + 2] : 0);
		*q++ = b64c[v >> 18 & 63];
		*q++ = b64c[v >> 12 & 63];
		*q++ = i + 1 < n ? b64c[v >> 6 & 63] : '=';
		*q++ = i + 2 < n ? b64c[v & 63] : '=';
	}
	*q = '\0';
	return o;
}

char *etcd_unb64(const char *s, size_t *n)
{
	size_t l = strlen(s), k = 0;
	unsigned v = 0;
	int bits = 0;
	char *o = malloc(l / 4 * 3 + 4);
	if (!o)
		return NULL;
	for (size_t i = 0; i < l && s[i] != '='; i++) {
		const char *c = strchr(b64c, s[i]);
		if (!c || !s[i]) {
			free(o);
			return NULL;
		}
		v = v << 6 | (unsigned)(c - b64c);
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			o[k++] = (char)(v >> bits & 0xff);
		}
	}
	o[k] = '\0';
	if (n)
		*n = k;
	return o;
}

char *etcd_prefix_end_b64(const char *prefix)
{
	size_t n = strlen(prefix);
	char *e = strdup(prefix), *r;
	if (!e)
		return NULL;
	/* the prefixes here end in '/' and hold no 0xff: increment the last byte */
	if (n)
		e[n - 1]++;
	r = etcd_b64(e, n);
	free(e);
	return r;
}

long long etcd_int(const cJSON *obj, const char *key, long long def)
{
	const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
	if (cJSON_IsString(v))
		return strtoll(v->valuestring, NULL, 10);
	if (cJSON_IsNumber(v))
		return (long long)v->valuedouble;
	return def;
}

static int one_call(struct etcd *c, int i, const char *path, const char *body, cJSON **resp)
{
	char *txt = NULL;
	int st = http_post(&c->ep[i], path, body, c->timeout_ms, &txt);
	if (st < 0) {
		snprintf(c->err, sizeof(c->err), "%s: %s", c->ep[i].url, strerror(errno));
		return -1;
	}
	cJSON *j = cJSON_Parse(txt);
	free(txt);
	const cJSON *msg = cJSON_GetObjectItemCaseSensitive(j, "error");
	if (!j || st != 200 || msg) {
		snprintf(c->err, sizeof(c->err), "%s%s: HTTP %d: %s", c->ep[i].url, path, st,
			 cJSON_IsString(msg) ? msg->valuestring : "no JSON answer");
		long long code = etcd_int(j, "code", 0);
		cJSON_Delete(j);
		/* Unavailable (14), or no JSON at all: another member may do better */
		return code == 14 || code == 0 ? -1 : -2;
	}
	*resp = j;
	return 0;
}

int etcd_call(struct etcd *c, const char *path, cJSON *req, cJSON **resp)
{
	char *body = cJSON_PrintUnformatted(req);
	int r = -1;
	cJSON_Delete(req);
	*resp = NULL;
	if (!body) {
		snprintf(c->err, sizeof(c->err), "out of memory");
		return -2;
	}
	for (int k = 0; k < c->n && !http_aborted(); k++) {
		int i = (c->cur + k) % c->n;
		r = one_call(c, i, path, body, resp);
		if (r != -1) {
			c->cur = i;
			break;
		}
	}
	if (r == -1) /* next time start with the next endpoint */
		c->cur = (c->cur + 1) % c->n;
	free(body);
	return r;
}

void etcd_kv_free(struct etcd_kv *kv)
{
	free(kv->key);
	free(kv->value);
	memset(kv, 0, sizeof(*kv));
}

int etcd_kv_parse(const cJSON *j, struct etcd_kv *out)
{
	const cJSON *k = cJSON_GetObjectItemCaseSensitive(j, "key"), *v = cJSON_GetObjectItemCaseSensitive(j, "value");
	memset(out, 0, sizeof(*out));
	if (!cJSON_IsString(k))
		return -1;
	out->key = etcd_unb64(k->valuestring, NULL);
	out->value = etcd_unb64(cJSON_IsString(v) ? v->valuestring : "", NULL);
	out->create_rev = etcd_int(j, "create_revision", 0);
	out->mod_rev = etcd_int(j, "mod_revision", 0);
	out->lease = etcd_int(j, "lease", 0);
	if (!out->key || !out->value) {
		etcd_kv_free(out);
		return -1;
	}
	return 0;
}

static cJSON *key_obj(const char *key)
{
	cJSON *o = cJSON_CreateObject();
	char *k = etcd_b64(key, strlen(key));
	if (o && k)
		cJSON_AddStringToObject(o, "key", k);
	free(k);
	return o;
}

static void add_int(cJSON *o, const char *name, long long v)
{
	char b[24];
	snprintf(b, sizeof(b), "%lld", v);
	cJSON_AddStringToObject(o, name, b);
}

static int kvs_of(const cJSON *resp, struct etcd_kv **kvs, size_t *n)
{
	const cJSON *a = cJSON_GetObjectItemCaseSensitive(resp, "kvs"), *it;
	size_t m = (size_t)cJSON_GetArraySize(a), k = 0;
	*kvs = calloc(m ? m : 1, sizeof(**kvs));
	if (!*kvs)
		return -2;
	cJSON_ArrayForEach (it, a) {
		if (etcd_kv_parse(it, &(*kvs)[k]) == 0)
			k++;
	}
	*n = k;
	return 0;
}

int etcd_range_prefix(struct etcd *c, const char *prefix, struct etcd_kv **kvs, size_t *n, long long *rev)
{
	cJSON *req = key_obj(prefix), *resp;
	char *end = etcd_prefix_end_b64(prefix);
	cJSON_AddStringToObject(req, "range_end", end ? end : "");
	free(end);
	int r = etcd_call(c, "/v3/kv/range", req, &resp);
	if (r < 0)
		return r;
	*rev = etcd_int(cJSON_GetObjectItemCaseSensitive(resp, "header"), "revision", 0);
	r = kvs_of(resp, kvs, n);
	cJSON_Delete(resp);
	return r;
}

int etcd_get(struct etcd *c, const char *key, struct etcd_kv *kv)
{
	cJSON *resp;
	struct etcd_kv *kvs = NULL;
	size_t n = 0;
	int r = etcd_call(c, "/v3/kv/range", key_obj(key), &resp);
	if (r < 0)
		return r;
	r = kvs_of(resp, &kvs, &n);
	cJSON_Delete(resp);
	if (r < 0)
		return r;
	for (size_t i = 1; i < n; i++)
		etcd_kv_free(&kvs[i]);
	if (n)
		*kv = kvs[0];
	free(kvs);
	return n ? 1 : 0;
}

static cJSON *put_obj(const char *key, const char *value, long long lease)
{
	cJSON *o = key_obj(key);
	char *v = etcd_b64(value, strlen(value));
	cJSON_AddStringToObject(o, "value", v ? v : "");
	free(v);
	if (lease)
		add_int(o, "lease", lease);
	return o;
}

int etcd_put(struct etcd *c, const char *key, const char *value, long long lease)
{
	cJSON *resp;
	int r = etcd_call(c, "/v3/kv/put", put_obj(key, value, lease), &resp);
	cJSON_Delete(resp);
	return r;
}

int etcd_delete(struct etcd *c, const char *key)
{
	cJSON *resp;
	int r = etcd_call(c, "/v3/kv/deleterange", key_obj(key), &resp);
	cJSON_Delete(resp);
	return r;
}

int etcd_put_if(struct etcd *c, const char *key, const char *value, bool by_mod, long long rev)
{
	cJSON *req = cJSON_CreateObject(), *cmp = key_obj(key), *op = cJSON_CreateObject(), *resp;
	cJSON_AddStringToObject(cmp, "target", by_mod ? "MOD" : "CREATE");
	add_int(cmp, by_mod ? "mod_revision" : "create_revision", rev);
	cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "compare"), cmp);
	cJSON_AddItemToObject(op, "request_put", put_obj(key, value, 0));
	cJSON_AddItemToArray(cJSON_AddArrayToObject(req, "success"), op);
	int r = etcd_call(c, "/v3/kv/txn", req, &resp);
	if (r < 0)
		return r;
	r = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(resp, "succeeded")) ? 1 : 0;
	cJSON_Delete(resp);
	return r;
}

int etcd_lease_grant(struct etcd *c, long long ttl, long long *id)
{
	cJSON *req = cJSON_CreateObject(), *resp;
	add_int(req, "TTL", ttl);
	int r = etcd_call(c, "/v3/lease/grant", req, &resp);
	if (r < 0)
		return r;
	*id = etcd_int(resp, "ID", 0);
	cJSON_Delete(resp);
	if (!*id) {
		snprintf(c->err, sizeof(c->err), "lease grant: no ID in the answer");
		return -2;
	}
	return 0;
}

int etcd_lease_keepalive(struct etcd *c, long long id, long long *ttl)
{
	cJSON *req = cJSON_CreateObject(), *resp;
	add_int(req, "ID", id);
	int r = etcd_call(c, "/v3/lease/keepalive", req, &resp);
	if (r < 0)
		return r;
	/* {"result":{..., "ID":"..", "TTL":"9"}}; a lease that is gone has no TTL */
	*ttl = etcd_int(cJSON_GetObjectItemCaseSensitive(resp, "result"), "TTL", 0);
	cJSON_Delete(resp);
	return *ttl > 0 ? 1 : 0;
}

int etcd_lease_revoke(struct etcd *c, long long id)
{
	cJSON *req = cJSON_CreateObject(), *resp;
	add_int(req, "ID", id);
	int r = etcd_call(c, "/v3/lease/revoke", req, &resp);
	cJSON_Delete(resp);
	return r;
}

char *etcd_watch_body(const char *prefix, long long rev)
{
	cJSON *req = cJSON_CreateObject(), *cr = key_obj(prefix);
	char *end = etcd_prefix_end_b64(prefix);
	cJSON_AddStringToObject(cr, "range_end", end ? end : "");
	free(end);
	add_int(cr, "start_revision", rev);
	cJSON_AddItemToObject(req, "create_request", cr);
	char *s = cJSON_PrintUnformatted(req);
	cJSON_Delete(req);
	return s;
}
