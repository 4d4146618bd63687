/* Forced into cJSON.c by the Makefile (-include), not part of Debian's cJSON source. cJSON's one
 * sscanf call reads back a double it printed ("%lg"); routing it to strtod keeps glibc's whole
 * scanf engine (~70 KB of a static binary) out of every plugin. The vendored source is unchanged. */
#ifndef CJSON_NOSCANF_H
#define CJSON_NOSCANF_H
#include <stdio.h>
int cnic_json_sscanf(const char *s, const char *fmt, ...);
#define sscanf cnic_json_sscanf
#endif
