/* JSON bytes exactly as Go's encoding/json writes them, so our caches and configs match libcni's. */
#ifndef CNITOOL_GOJSON_H
#define CNITOOL_GOJSON_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "sb.h"

/* What Go does to a JSON value it decodes into interface{}: every object's keys in byte order
 * (Go marshals maps sorted), and of duplicate keys only the last (Go's decoder keeps the last). */
void gojson_canon(cJSON *j);
/* Sort the keys of this object only (nested values are left as they are). */
void gojson_sort_keys(cJSON *obj);

/* json.Marshal: compact, strings escaped as Go does (<, >, & and U+2028/9 as \u, invalid UTF-8
 * as U+FFFD), numbers in Go's shortest float64 form. Members in the order cJSON holds them. */
void gojson_marshal(const cJSON *j, struct sb *b);
/* json.MarshalIndent(v, "", "    ") */
void gojson_marshal_indent(const cJSON *j, struct sb *b);
/* One string, quoted and escaped as Go does. */
void gojson_string(const char *s, struct sb *b);

/* Standard base64 with padding: how Go marshals a []byte. */
void gojson_base64(const void *data, size_t n, struct sb *b);

/* Its reverse, NUL-terminated (*n bytes before the NUL); NULL when s is not valid base64 (or out
 * of memory). */
char *gojson_base64_decode(const char *s, size_t *n);

/* Parse len bytes of JSON (no trailing garbage); NULL when it is not JSON. */
cJSON *gojson_parse(const char *s, size_t len);

#endif
