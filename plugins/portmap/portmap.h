/* portmap's shared parts: the parsed config, and the iptables backend (iptables.c), which writes
 * the reference plugin's own chains for configs written for it. */
#ifndef CNI_PORTMAP_H
#define CNI_PORTMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <netinet/in.h>

#include "ip.h"
#include "nfttab.h"
#include "nft.h"
#include "skel.h"

#define CHAIN_LEN NFTTAB_CHAIN_LEN
#define COMMENT_MAX NFT_COMMENT_MAX
#define MAX_COND 32

struct pm_map {
	uint8_t proto; /* IPPROTO_TCP/UDP/SCTP */
	uint16_t host, cont;
	struct ip host_ip; /* len 0: any */
	bool host_any; /* hostIP 0.0.0.0 or ::: that family, any address */
};

struct pm_conf {
	bool snat, masq_all;
	uint32_t mark;
	char *cond[2]; /* nft expressions for IPv4, IPv6 ("" none) */
	bool ipt; /* the iptables backend ("backend": "iptables", or a config only it can take) */
	const char *ext_mark; /* externalSetMarkChain (iptables backend), or NULL */
	const char *icond[2][MAX_COND + 1]; /* iptables words of conditionsV4/V6 (iptables backend) */
	size_t n_icond[2];
	struct pm_map *maps;
	size_t n_maps;
	bool has4, has6;
	struct ipnet c4, c6; /* container addresses with their prefix */
	char chain[CHAIN_LEN];
	char comment[COMMENT_MAX + 1];
};

static inline const char *proto_name(uint8_t p)
{
	return p == IPPROTO_UDP ? "udp" : p == IPPROTO_SCTP ? "sctp" : "tcp";
}

/* Does mapping m apply to this family (the container has one, hostIP is of it or none)? */
bool applies(const struct pm_conf *p, const struct pm_map *m, bool v4);

/* The iptables backend, as the reference lays it out in table nat of iptables and ip6tables:
 * PREROUTING/OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT; per container and
 * protocol a jump (conditions, comment 'dnat name: "N" id: "ID"', multiport) to CNI-DN-<hash>
 * holding each mapping's mark rules (snat) and DNAT; CNI-HOSTPORT-SETMARK and CNI-HOSTPORT-MASQ
 * (or the externalSetMarkChain). Chain names are the reference's, so either plugin removes the
 * other's. Callers hold the suite's nft lock. */
int pm_ipt_chain(const char *network, const char *container_id, char out[29], struct cni_error *e);
int pm_ipt_add(struct cni_ctx *c, const struct pm_conf *p);
int pm_ipt_check(struct cni_ctx *c, const struct pm_conf *p);
/* Remove the chains of the attachments of network c->name not in c->valid. */
int pm_ipt_gc(struct cni_ctx *c, struct nft *n);

#endif
