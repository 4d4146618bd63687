/* IPv4/IPv6 address parsing, formatting and arithmetic on 128-bit integers. */
#include "ip.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned __int128 u128;

static u128 to_u128(const struct ip *a)
{
	u128 v = 0;
	for (int i = 0; i < a->len; i++)
		v = (v << 8) | a->b[i];
	return v;
}

static struct ip from_u128(u128 v, uint8_t len)
{
	struct ip a = { .len = len };
	for (int i = len - 1; i >= 0; i--) {
		a.b[i] = (uint8_t)(v & 0xff);
		v >>= 8;
	}
	return a;
}

static u128 family_mask(uint8_t len)
{
	return len == 16 ? ~(u128)0 : (((u128)1 << (len * 8)) - 1);
}

static u128 host_mask(uint8_t len, int prefix)
{
	int hostbits = len * 8 - prefix;
	if (hostbits <= 0)
		return 0;
	if (hostbits >= 128)
		return ~(u128)0;
	return ((u128)1 << hostbits) - 1;
}

int ip_parse(const char *s, struct ip *out)
{
	struct in_addr a4;
	struct in6_addr a6;

	memset(out, 0, sizeof(*out));
	if (!s)
		return -1;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		out->len = 4;
		memcpy(out->b, &a4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		static const uint8_t mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
		if (memcmp(a6.s6_addr, mapped, 12) == 0) {
			out->len = 4;
			memcpy(out->b, a6.s6_addr + 12, 4);
		} else {
			out->len = 16;
			memcpy(out->b, a6.s6_addr, 16);
		}
		return 0;
	}
	return -1;
}

int ipnet_parse(const char *s, struct ipnet *out)
{
	char buf[IPNET_STRLEN + 8];
	const char *slash;
	char *end;
	long p;
	size_t alen;

	memset(out, 0, sizeof(*out));
	if (!s || !(slash = strchr(s, '/')))
		return -1;
	alen = (size_t)(slash - s);
	if (alen == 0 || alen >= sizeof(buf))
		return -1;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	/* The prefix is given for the family as written: "::ffff:1.2.3.4/120"
	 * is an IPv6 prefix, so parse the family before the To4 mapping. */
	bool written_v6 = strchr(buf, ':') != NULL;
	if (ip_parse(buf, &out->ip) < 0)
		return -1;
	/* decimal digits only, as Go's ParseCIDR: strtol alone would take a sign and skip leading
	 * whitespace ("10.0.0.0/\t24") */
	if (!slash[1] || strspn(slash + 1, "0123456789") != strlen(slash + 1))
		return -1;
	errno = 0;
	p = strtol(slash + 1, &end, 10);
	if (errno || *end || p < 0)
		return -1;
	if (written_v6 && out->ip.len == 4) {
		if (p < 96 || p > 128)
			return -1;
		p -= 96;
	}
	if (p > ip_bits(&out->ip))
		return -1;
	out->prefix = (int)p;
	return 0;
}

const char *ip_fmt(const struct ip *a, char *buf)
{
	if (a->len == 4)
		inet_ntop(AF_INET, a->b, buf, IP_STRLEN);
	else if (a->len == 16)
		inet_ntop(AF_INET6, a->b, buf, IP_STRLEN);
	else
		buf[0] = '\0';
	return buf;
}

const char *ipnet_fmt(const struct ipnet *n, char *buf)
{
	char a[IP_STRLEN];
	snprintf(buf, IPNET_STRLEN, "%s/%d", ip_fmt(&n->ip, a), n->prefix);
	return buf;
}

bool ip_equal(const struct ip *a, const struct ip *b)
{
	return a->len == b->len && memcmp(a->b, b->b, a->len) == 0;
}

int ip_cmp(const struct ip *a, const struct ip *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->b, b->b, a->len);
}

struct ip ip_add(const struct ip *a, uint64_t n)
{
	return from_u128((to_u128(a) + n) & family_mask(a->len), a->len);
}

struct ip ip_next(const struct ip *a)
{
	return ip_add(a, 1);
}

struct ip ip_prev(const struct ip *a)
{
	return from_u128((to_u128(a) - 1) & family_mask(a->len), a->len);
}

uint64_t ip_distance(const struct ip *a, const struct ip *b)
{
	u128 x = to_u128(a), y = to_u128(b);
	if (y < x)
		return 0;
	y -= x;
	return y > UINT64_MAX ? UINT64_MAX : (uint64_t)y;
}

struct ip ipnet_network(const struct ipnet *n)
{
	return from_u128(to_u128(&n->ip) & ~host_mask(n->ip.len, n->prefix) & family_mask(n->ip.len), n->ip.len);
}

struct ip ipnet_last(const struct ipnet *n)
{
	return from_u128((to_u128(&n->ip) | host_mask(n->ip.len, n->prefix)) & family_mask(n->ip.len), n->ip.len);
}

bool ipnet_contains(const struct ipnet *n, const struct ip *a)
{
	if (a->len != n->ip.len)
		return false;
	u128 hm = host_mask(a->len, n->prefix);
	return (to_u128(a) & ~hm) == (to_u128(&n->ip) & ~hm);
}

bool ipnet_is_network(const struct ipnet *n)
{
	return (to_u128(&n->ip) & host_mask(n->ip.len, n->prefix)) == 0;
}

bool ipnet_overlaps(const struct ipnet *a, const struct ipnet *b)
{
	if (a->ip.len != b->ip.len)
		return false;
	return a->prefix <= b->prefix ? ipnet_contains(a, &b->ip) : ipnet_contains(b, &a->ip);
}
