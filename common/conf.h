/* Typed, validated access to JSON config fields; every error names the field path. */
#ifndef CNI_CONF_H
#define CNI_CONF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "ip.h"

#define CONF_PATH_MAX 256

/* Key lookup as Go's encoding/json does it: the exact key, else the first key
 * equal ignoring case. JSON null counts as absent. */
const cJSON *conf_item(const cJSON *obj, const char *key);

/* Build "parent.key" / "parent[i]" into buf. */
const char *conf_path(char *buf, const char *parent, const char *key);
const char *conf_path_idx(char *buf, const char *parent, size_t idx);

/* Getters: 1 = present and valid, 0 = absent (out untouched), -1 = error
 * (wrong JSON type: code 6; bad value: code 7; the message names parent.key). */
int conf_string(const cJSON *obj, const char *parent, const char *key, const char **out, struct cni_error *e);
int conf_bool(const cJSON *obj, const char *parent, const char *key, bool *out, struct cni_error *e);
int conf_int(const cJSON *obj, const char *parent, const char *key, long long min, long long max, long long *out,
	     struct cni_error *e);
int conf_object(const cJSON *obj, const char *parent, const char *key, const cJSON **out, struct cni_error *e);
int conf_array(const cJSON *obj, const char *parent, const char *key, const cJSON **out, struct cni_error *e);
int conf_ip(const cJSON *obj, const char *parent, const char *key, struct ip *out, struct cni_error *e);
int conf_ipnet(const cJSON *obj, const char *parent, const char *key, struct ipnet *out, struct cni_error *e);
/* Same checks on a bare value (an array element): `path` names it. */
int conf_val_string(const cJSON *v, const char *path, const char **out, struct cni_error *e);
int conf_val_ip(const cJSON *v, const char *path, struct ip *out, struct cni_error *e);
/* "10.0.0.5" or "10.0.0.5/24" (the `ips` capability and args.cni.ips). */
int conf_val_ip_or_cidr(const cJSON *v, const char *path, struct ip *out, struct cni_error *e);

/* Names the kernel accepts for a link: 1..15 bytes, not "." or "..", no '/', ':'
 * or whitespace. */
bool conf_valid_ifname(const char *s);
/* CNI container IDs and network names: [a-zA-Z0-9][a-zA-Z0-9_.-]* */
bool conf_valid_cni_name(const char *s);
/* The one UTF-8 decoder: the length (1-4) of the valid sequence at s (at most n bytes), as Go's
 * utf8.DecodeRune accepts it, its code point in *r; 0 when invalid (overlong, surrogate, past
 * U+10FFFF, cut short). */
size_t conf_utf8_seq(const unsigned char *s, size_t n, uint32_t *r);
bool conf_valid_utf8(const char *s, size_t len);

/* The spec's 'runtimeConfig' and 'args.cni' objects (NULL when absent). */
const cJSON *conf_runtime_config(const cJSON *root);
const cJSON *conf_args_cni(const cJSON *root);

#endif
