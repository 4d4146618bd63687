/* SNAT (masquerade) of container addresses leaving their subnet, multicast excluded.
 *
 * nftables backend (default): table "inet cni_c_masq" of ours, O(1) per packet and per
 * operation: a base chain "postrouting" (nat hook, srcnat priority) that returns for
 * multicast and then does "ip saddr vmap @masq4" / "ip6 saddr vmap @masq6"; each
 * attachment has its own chain "a-<16 hex>-<16 hex>" (sha512 of the network name, then of
 * "<ifname>:<containerID>"), with one "ip daddr != <subnet> masquerade" rule per address
 * and a chain comment listing its addresses and identity, and one map element per
 * address pointing to its chain. DEL needs no address: it reads the chain's comment.
 *
 * iptables backend ("ipMasqBackend": "iptables"): exactly the reference plugin's layout
 * (chain CNI-<sha512(network+containerID)[:24]> in nat, ACCEPT for the subnet, MASQUERADE
 * unless multicast, POSTROUTING jump per source address, comment 'name: "N" id: "ID"'),
 * so the reference plugin can delete what we add and the reverse. iptables runs as an
 * exec'd binary with an argv (never a shell). */
#ifndef CNI_MASQ_H
#define CNI_MASQ_H

#include <stdbool.h>
#include <stddef.h>

#include "err.h"
#include "ip.h"
#include "skel.h"

enum masq_backend { MASQ_NFTABLES, MASQ_IPTABLES };

struct masq_id {
	const char *network;
	const char *container_id;
	const char *ifname;
};

/* "nftables" / "iptables" / NULL (default nftables) → backend; code 7 otherwise. */
int masq_backend_parse(const char *s, enum masq_backend *b, struct cni_error *e);

/* Masquerade traffic from each address (with its subnet's prefix) to anything
 * outside that subnet. Idempotent: replaces what this attachment had. */
int masq_add(enum masq_backend b, const struct masq_id *id, const struct ipnet *ips, size_t n, struct cni_error *e);
/* Remove this attachment's rules from both backends (and from the reference plugin's
 * nftables table "inet cni_plugins_masquerade" if present). Absent rules are success. */
int masq_del(const struct masq_id *id, struct cni_error *e);
/* Verify the rules for these addresses exist (code 104 naming what is missing). */
int masq_check(enum masq_backend b, const struct masq_id *id, const struct ipnet *ips, size_t n, struct cni_error *e);
/* GC of the iptables backend's chains (the reference's layout) of `network`: those whose rules
 * or POSTROUTING jump carry its comment ('name: "N" id: "ID"') and belong to no valid
 * attachment. A chain emptied and unjumped by hand names no network and stays. */
int masq_gc_iptables(const char *network, const struct cni_attachment *valid, size_t n_valid, struct cni_error *e);
/* Remove every attachment of `network` that is not in valid[] (nftables backend; the chain names
 * carry the network). */
int masq_gc(const char *network, const struct cni_attachment *valid, size_t n_valid, struct cni_error *e);
/* STATUS: can this backend work here? Code 50 with the reason when not. */
int masq_available(enum masq_backend b, struct cni_error *e);

/* The reference plugins' iptables layout (nat table, iptables or ip6tables by v4): remove chain
 * and every rule of `entry` jumping to it; absent is success. n (may be NULL) lets it see
 * iptables-nft's chains over netlink, so it execs nothing when there is nothing to remove. */
struct nft;
int ipt_ref_del_chain(bool v4, const char *chain, const char *entry, struct nft *n, struct cni_error *e);

#endif
