/* IPv4/IPv6 addresses and prefixes: parse, format, compare, arithmetic. */
#ifndef CNI_IP_H
#define CNI_IP_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

/* An address: len is 4 (IPv4) or 16 (IPv6); 0 means "unset". */
struct ip {
	uint8_t len;
	uint8_t b[16];
};

/* An address with a prefix length, as in "10.0.0.5/24". */
struct ipnet {
	struct ip ip;
	int prefix;
};

#define IP_STRLEN 46 /* INET6_ADDRSTRLEN */
#define IPNET_STRLEN (IP_STRLEN + 4)

static inline bool ip_is_set(const struct ip *a)
{
	return a->len != 0;
}
static inline bool ip_is_v4(const struct ip *a)
{
	return a->len == 4;
}
static inline int ip_bits(const struct ip *a)
{
	return a->len * 8;
}
static inline int ip_family_bits(int len)
{
	return len * 8;
}

/* Parse a textual address. IPv4-mapped IPv6 ("::ffff:a.b.c.d") becomes IPv4,
 * as Go's net.IP.To4() does. Returns 0 or -1. */
int ip_parse(const char *s, struct ip *out);
/* Parse "addr/prefix"; the address keeps its host bits. Returns 0 or -1. */
int ipnet_parse(const char *s, struct ipnet *out);
/* Format into buf (at least IP_STRLEN / IPNET_STRLEN); returns buf. */
const char *ip_fmt(const struct ip *a, char *buf);
const char *ipnet_fmt(const struct ipnet *n, char *buf);

bool ip_equal(const struct ip *a, const struct ip *b);
/* Orders v4 before v6, then numerically. */
int ip_cmp(const struct ip *a, const struct ip *b);

/* Address arithmetic, wrapping within the family. */
struct ip ip_add(const struct ip *a, uint64_t n);
struct ip ip_next(const struct ip *a);
struct ip ip_prev(const struct ip *a);
/* b - a for a <= b in the same family, saturated at UINT64_MAX. */
uint64_t ip_distance(const struct ip *a, const struct ip *b);

/* Network address (host bits cleared) and last address (host bits set). */
struct ip ipnet_network(const struct ipnet *n);
struct ip ipnet_last(const struct ipnet *n);
bool ipnet_contains(const struct ipnet *n, const struct ip *a);
/* True when the address has no host bits set under the prefix. */
bool ipnet_is_network(const struct ipnet *n);
/* True when two prefixes share any address. */
bool ipnet_overlaps(const struct ipnet *a, const struct ipnet *b);

#endif
