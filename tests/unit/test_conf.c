/* conf.c: typed getters, Go-like key matching, names, UTF-8; version ordering. */
#include <stdlib.h>

#include "conf.h"
#include "tap.h"
#include "version.h"

void test_conf(void)
{
	cJSON *j = cJSON_Parse("{\"mtu\":1500,\"isGateway\":true,\"IPMASQ\":false,\"name\":\"n\",\"f\":1.5,"
			       "\"big\":70000,\"nul\":null,\"s\":5,\"exact\":1,\"EXACT\":2}");
	struct cni_error e = { 0 };
	long long v = 0;
	bool b = false;
	const char *s = NULL;

	OK(conf_int(j, "", "mtu", 68, 65535, &v, &e) == 1 && v == 1500, "int");
	OK(conf_bool(j, "", "isGateway", &b, &e) == 1 && b, "bool");
	OK(conf_bool(j, "", "ipMasq", &b, &e) == 1 && !b, "case-insensitive key as Go");
	OK(conf_int(j, "", "exact", 0, 9, &v, &e) == 1 && v == 2, "the last key matching ignoring case wins, as in Go");
	OK(conf_string(j, "", "nul", &s, &e) == 0, "null is absent");
	OK(conf_string(j, "", "missing", &s, &e) == 0, "absent");
	cni_err_clear(&e);
	OK(conf_int(j, "", "f", 0, 9, &v, &e) < 0 && e.code == CNI_ERR_DECODE && strstr(e.msg, "\"f\""), "non-integer: %s",
	   e.msg);
	cni_err_clear(&e);
	OK(conf_int(j, "", "big", 68, 65535, &v, &e) < 0 && e.code == CNI_ERR_INVALID_CONFIG && strstr(e.msg, "70000"),
	   "out of range: %s", e.msg);
	cni_err_clear(&e);
	OK(conf_string(j, "ipam", "s", &s, &e) < 0 && e.code == CNI_ERR_DECODE && strstr(e.msg, "ipam.s"),
	   "wrong type names the path: %s", e.msg);
	cJSON_Delete(j);

	OK(conf_valid_ifname("eth0") && conf_valid_ifname("a23456789012345"), "valid ifnames");
	OK(!conf_valid_ifname("a234567890123456") && !conf_valid_ifname("") && !conf_valid_ifname(".") &&
		   !conf_valid_ifname("..") && !conf_valid_ifname("a/b") && !conf_valid_ifname("a:b") &&
		   !conf_valid_ifname("a b"),
	   "invalid ifnames");
	OK(conf_valid_cni_name("abc-1.2_3") && !conf_valid_cni_name("-abc") && !conf_valid_cni_name("../etc") &&
		   !conf_valid_cni_name("a/b") && !conf_valid_cni_name(""),
	   "network/container names");
	OK(conf_valid_utf8("h\xc3\xa9llo", 6) && !conf_valid_utf8("\xff", 1) && !conf_valid_utf8("\xc3", 1) &&
		   !conf_valid_utf8("\xc0\x80", 2) && !conf_valid_utf8("\xed\xa0\x80", 3),
	   "utf-8 validation");

	OK(cni_version_cmp("0.3.1", "0.4.0") < 0 && cni_version_cmp("1.1.0", "1.0.0") > 0 && cni_version_cmp("1.0", "1.0.0") == 0,
	   "version order");
	OK(cni_version_supported("0.1.0") && cni_version_supported("1.1.0") && !cni_version_supported("1.2.0") &&
		   !cni_version_supported("0.3"),
	   "supported versions");
	int p[3];
	OK(cni_version_parse("1.x", p) < 0 && cni_version_parse("1.2.3.4", p) < 0 && cni_version_parse("", p) < 0,
	   "malformed versions");
}
