/* ip.c: parsing, formatting, prefix edges and arithmetic for v4 and v6. */
#include "ip.h"
#include "tap.h"

static const char *fmt(const struct ip *a)
{
	static char b[4][IP_STRLEN];
	static int i;
	i = (i + 1) % 4;
	return ip_fmt(a, b[i]);
}

void test_ip(void)
{
	struct ip a, b;
	struct ipnet n;

	OK(ip_parse("10.0.0.1", &a) == 0 && a.len == 4, "parse v4");
	OK(ip_parse("fd00:200::1", &a) == 0 && a.len == 16, "parse v6");
	OK(ip_parse("::ffff:10.1.2.3", &a) == 0 && a.len == 4, "v4-mapped v6 is v4 (as Go's To4)");
	STREQ(fmt(&a), "10.1.2.3", "v4-mapped formats as v4");
	OK(ip_parse("10.0.0.256", &a) < 0, "reject octet > 255");
	OK(ip_parse("010.0.0.1", &a) < 0, "reject leading zero (as Go)");
	OK(ip_parse("", &a) < 0 && ip_parse("abc", &a) < 0, "reject garbage");
	OK(ip_parse("10.0.0.1 ", &a) < 0, "reject trailing space");

	OK(ipnet_parse("10.0.0.0/24", &n) == 0 && n.prefix == 24, "parse v4 cidr");
	OK(ipnet_parse("10.0.0.0/33", &n) < 0, "reject /33");
	OK(ipnet_parse("10.0.0.0/", &n) < 0 && ipnet_parse("10.0.0.0", &n) < 0, "reject missing prefix");
	OK(ipnet_parse("10.0.0.0/-1", &n) < 0 && ipnet_parse("10.0.0.0/+8", &n) < 0, "reject signed prefix");
	OK(ipnet_parse("fd00::/129", &n) < 0, "reject /129");
	OK(ipnet_parse("fd00::/128", &n) == 0 && n.prefix == 128, "accept /128");
	OK(ipnet_parse("::ffff:10.0.0.0/120", &n) == 0 && n.ip.len == 4 && n.prefix == 24, "mapped cidr /120 is v4 /24");

	ipnet_parse("10.0.0.5/24", &n);
	OK(!ipnet_is_network(&n), "host bits detected");
	a = ipnet_network(&n);
	STREQ(fmt(&a), "10.0.0.0", "network of 10.0.0.5/24");
	a = ipnet_last(&n);
	STREQ(fmt(&a), "10.0.0.255", "broadcast of /24");

	ipnet_parse("10.0.0.4/31", &n);
	a = ipnet_network(&n);
	b = ipnet_last(&n);
	OK(ip_distance(&a, &b) == 1, "/31 has two addresses");
	ipnet_parse("10.0.0.4/32", &n);
	a = ipnet_network(&n);
	b = ipnet_last(&n);
	OK(ip_equal(&a, &b), "/32 has one address");
	ipnet_parse("0.0.0.0/0", &n);
	a = ipnet_last(&n);
	STREQ(fmt(&a), "255.255.255.255", "last of /0 v4");
	OK(ipnet_contains(&n, &a), "/0 contains everything v4");
	ip_parse("fd00::1", &b);
	OK(!ipnet_contains(&n, &b), "v4 /0 does not contain v6");

	ipnet_parse("fd00:200::/127", &n);
	a = ipnet_last(&n);
	STREQ(fmt(&a), "fd00:200::1", "last of /127");
	ipnet_parse("fd00:200::7/128", &n);
	a = ipnet_network(&n);
	STREQ(fmt(&a), "fd00:200::7", "network of /128 is itself");
	ipnet_parse("::/0", &n);
	a = ipnet_last(&n);
	STREQ(fmt(&a), "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "last of ::/0");
	ipnet_parse("fd00:200::/64", &n);
	a = ipnet_last(&n);
	STREQ(fmt(&a), "fd00:200::ffff:ffff:ffff:ffff", "last of /64");

	ip_parse("10.0.0.255", &a);
	b = ip_next(&a);
	STREQ(fmt(&b), "10.0.1.0", "next carries");
	ip_parse("255.255.255.255", &a);
	b = ip_next(&a);
	STREQ(fmt(&b), "0.0.0.0", "next wraps in v4");
	b = ip_prev(&b);
	STREQ(fmt(&b), "255.255.255.255", "prev wraps in v4");
	ip_parse("fd00::ffff:ffff:ffff:ffff", &a);
	b = ip_next(&a);
	STREQ(fmt(&b), "fd00:0:0:1::", "v6 next carries across 64 bits");
	ip_parse("10.0.0.0", &a);
	b = ip_add(&a, 65536);
	STREQ(fmt(&b), "10.1.0.0", "add 65536");
	OK(ip_distance(&a, &b) == 65536, "distance");
	OK(ip_distance(&b, &a) == 0, "distance of reversed pair is 0");
	ip_parse("::", &a);
	ip_parse("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", &b);
	OK(ip_distance(&a, &b) == UINT64_MAX, "distance saturates");

	ip_parse("10.0.0.1", &a);
	ip_parse("fd00::1", &b);
	OK(ip_cmp(&a, &b) < 0, "v4 orders before v6");
	ip_parse("10.0.0.2", &b);
	OK(ip_cmp(&a, &b) < 0 && ip_cmp(&b, &a) > 0 && ip_cmp(&a, &a) == 0, "cmp");

	struct ipnet x, y;
	ipnet_parse("10.0.0.0/16", &x);
	ipnet_parse("10.0.5.0/24", &y);
	OK(ipnet_overlaps(&x, &y) && ipnet_overlaps(&y, &x), "overlap both ways");
	ipnet_parse("10.1.0.0/24", &y);
	OK(!ipnet_overlaps(&x, &y), "no overlap");
}
