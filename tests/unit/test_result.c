/* result.c: parse each version's shape, emit each version's shape, round trips. */
#include <stdlib.h>

#include "result.h"
#include "tap.h"

static char *emit(const struct cni_result *r, const char *ver)
{
	struct cni_error e = { 0 };
	cJSON *j = cni_result_to_json(r, ver, &e);
	char *s = j ? cJSON_PrintUnformatted(j) : strdup(e.msg);
	cJSON_Delete(j);
	return s;
}

static int parse_str(const char *s, struct cni_result *r, struct cni_error *e)
{
	cJSON *j = cJSON_Parse(s);
	int rc;
	cni_err_clear(e);
	rc = cni_result_parse(j, "prevResult", r, e);
	cJSON_Delete(j);
	return rc;
}

void test_result(void)
{
	struct cni_result r = { 0 };
	struct cni_error e = { 0 };
	char *s;

	OK(parse_str("{\"cniVersion\":\"1.0.0\",\"interfaces\":[{\"name\":\"cni0\",\"mac\":\"aa:bb:cc:dd:ee:ff\"},"
		     "{\"name\":\"eth0\",\"sandbox\":\"/var/run/netns/x\",\"mtu\":1400}],"
		     "\"ips\":[{\"address\":\"10.0.0.2/24\",\"gateway\":\"10.0.0.1\",\"interface\":1},"
		     "{\"address\":\"fd00::2/64\",\"interface\":1}],"
		     "\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\"},{\"dst\":\"::/0\",\"table\":100}],"
		     "\"dns\":{\"nameservers\":[\"10.0.0.1\"],\"search\":[\"a\",\"b\"]}}",
		     &r, &e) == 0,
	   "parse 1.0.0 %s", e.msg);
	OK(r.n_ifaces == 2 && r.n_ips == 2 && r.n_routes == 2 && r.ips[0].iface == 1 && r.ifaces[1].mtu == 1400 &&
		   r.routes[1].has_table && r.routes[1].table == 100 && r.dns.search.n == 2,
	   "1.0.0 fields");

	s = emit(&r, "1.1.0");
	STREQ(s,
	      "{\"cniVersion\":\"1.1.0\",\"interfaces\":[{\"name\":\"cni0\",\"mac\":\"aa:bb:cc:dd:ee:ff\"},"
	      "{\"name\":\"eth0\",\"mtu\":1400,\"sandbox\":\"/var/run/netns/x\"}],"
	      "\"ips\":[{\"interface\":1,\"address\":\"10.0.0.2/24\",\"gateway\":\"10.0.0.1\"},"
	      "{\"interface\":1,\"address\":\"fd00::2/64\"}],"
	      "\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\"},{\"dst\":\"::/0\",\"table\":100}],"
	      "\"dns\":{\"nameservers\":[\"10.0.0.1\"],\"search\":[\"a\",\"b\"]}}",
	      "emit 1.1.0");
	free(s);
	s = emit(&r, "0.4.0");
	OK(strstr(s, "\"version\":\"4\"") && strstr(s, "\"version\":\"6\"") && !strstr(s, "\"mtu\":1400"),
	   "0.4.0 has per-IP version, no interface mtu: %s", s);
	free(s);
	s = emit(&r, "0.2.0");
	STREQ(s,
	      "{\"cniVersion\":\"0.2.0\",\"ip4\":{\"ip\":\"10.0.0.2/24\",\"gateway\":\"10.0.0.1\","
	      "\"routes\":[{\"dst\":\"0.0.0.0/0\",\"gw\":\"10.0.0.1\"}]},\"ip6\":{\"ip\":\"fd00::2/64\","
	      "\"routes\":[{\"dst\":\"::/0\"}]},\"dns\":{\"nameservers\":[\"10.0.0.1\"],\"search\":[\"a\",\"b\"]}}",
	      "emit 0.2.0 (routes split by family)");
	free(s);
	cni_result_free(&r);

	OK(parse_str("{\"cniVersion\":\"0.2.0\",\"ip4\":{\"ip\":\"10.1.0.5/16\",\"gateway\":\"10.1.0.1\","
		     "\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}}",
		     &r, &e) == 0 &&
		   r.n_ips == 1 && r.n_routes == 1 && r.ips[0].iface == -1,
	   "parse 0.2.0 %s", e.msg);
	s = emit(&r, "1.0.0");
	STREQ(s,
	      "{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.1.0.5/16\",\"gateway\":\"10.1.0.1\"}],"
	      "\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}",
	      "0.2.0 up-converted; empty dns omitted in 1.x");
	free(s);
	s = emit(&r, "0.3.1");
	STREQ(s,
	      "{\"cniVersion\":\"0.3.1\",\"ips\":[{\"version\":\"4\",\"address\":\"10.1.0.5/16\",\"gateway\":\"10.1.0.1\"}],"
	      "\"routes\":[{\"dst\":\"0.0.0.0/0\"}],\"dns\":{}}",
	      "0.3.1 keeps an empty dns as libcni does");
	free(s);
	cni_result_free(&r);

	OK(parse_str("{\"cniVersion\":\"0.4.0\",\"ips\":[{\"version\":\"4\",\"address\":\"10.0.0.2\"}]}", &r, &e) < 0 &&
		   e.code == 6 && strstr(e.msg, "prevResult.ips[0].address"),
	   "bad address names its path: %s", e.msg);
	OK(parse_str("{\"cniVersion\":\"1.0.0\",\"ips\":[{\"address\":\"10.0.0.2/24\",\"interface\":3}]}", &r, &e) < 0 &&
		   strstr(e.msg, "interface"),
	   "interface index out of bounds: %s", e.msg);
	OK(parse_str("{\"cniVersion\":\"9.9.9\"}", &r, &e) < 0 && e.code == 1, "unsupported version");
	OK(parse_str("{\"cniVersion\":\"1.0.0\",\"routes\":[{\"gw\":\"10.0.0.1\"}]}", &r, &e) < 0 && strstr(e.msg, "dst"),
	   "route without dst: %s", e.msg);
	OK(parse_str("{\"cniVersion\":\"1.0.0\",\"routes\":[{\"dst\":\"::/0\",\"gw\":\"10.0.0.1\"}]}", &r, &e) < 0,
	   "route gw of other family");
	OK(parse_str("[]", &r, &e) < 0, "not an object");

	struct cni_result empty = { 0 };
	s = emit(&empty, "0.2.0");
	OK(strstr(s, "needs an IP address") != NULL, "0.2.0 cannot express a result without IPs: %s", s);
	free(s);
	struct cni_ipcfg a = { .iface = -1 }, b = { .iface = -1 };
	ipnet_parse("10.0.0.2/24", &a.address);
	ipnet_parse("10.0.1.2/24", &b.address);
	cni_result_add_ip(&empty, &a);
	cni_result_add_ip(&empty, &b);
	s = emit(&empty, "0.1.0");
	OK(strstr(s, "10.0.0.2/24") && !strstr(s, "10.0.1.2"), "0.1.0 keeps the first IP per family: %s", s);
	free(s);
	cni_result_free(&empty);
}
