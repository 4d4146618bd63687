/* The nf_tables tables this suite owns (SNAT, macspoofchk, portmap), each described once by a
 * static descriptor: its family and name, comment, maps, base chains and their base rules. From
 * the descriptor this builds the skeleton (an idempotent add), checks that the table is whole,
 * derives the per-attachment chain names, looks up map elements, and runs a batch. The modules
 * keep only what is theirs: the per-attachment chains, rules and elements. */
#ifndef CNI_NFTTAB_H
#define CNI_NFTTAB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "err.h"
#include "nft.h"
#include "sb.h"
#include "skel.h"

/* (Short names are arrays, not pointers: a static-pie binary pays a relocation for each pointer.) */
struct nfttab_map {
	char name[8], type[28]; /* "masq4", "ipv4_addr" (the text after "type", before ": verdict") */
};
struct nfttab_chain {
	char name[12]; /* "postrouting" */
	const char *spec; /* "type nat hook postrouting priority srcnat; policy accept;" */
};
struct nfttab_rule {
	char chain[12]; /* a base chain named here holds exactly its base rules */
	const char *rule, *comment;
};

/* How per-attachment chains are named (a compatibility contract with running nodes):
 * NET_ATTACHMENT  <prefix><16 hex sha512(network)>-<16 hex sha512("<ifname>:<containerID>")>
 * ATTACHMENT      <prefix><16 hex sha512("<containerID>-<ifname>")> */
enum nfttab_naming { NFTTAB_NET_ATTACHMENT, NFTTAB_ATTACHMENT };

struct nfttab {
	int family; /* NFPROTO_INET, NFPROTO_BRIDGE */
	char ref[24]; /* family and name as commands write them: "inet cni_c_masq" */
	char name[16]; /* "cni_c_masq" */
	const char *comment; /* the table's */
	const struct nfttab_map *maps; /* each list ends with an entry whose name is "" */
	const struct nfttab_chain *chains; /* the base chains, in the order they are added */
	const struct nfttab_rule *rules; /* the base rules, in order */
	char chain_prefix[3]; /* of the per-attachment chains: "a-" */
	enum nfttab_naming naming;
	char who[12]; /* what CHECK's errors start with: "SNAT" */
	const char *altered, *missing; /* CHECK's words for base rules changed / table or chains absent */
};

/* "a-" 16 hex "-" 16 hex NUL, the longest name of either kind */
#define NFTTAB_CHAIN_LEN 36

/* The per-attachment chain of (network, ifname, containerID); network is unused by
 * NFTTAB_ATTACHMENT. 0, or -1 (out of memory). */
int nfttab_chain_name(const struct nfttab *t, const char *network, const char *ifname, const char *container_id,
		      char out[NFTTAB_CHAIN_LEN], struct cni_error *e);
/* What every chain of a network's attachments starts with: "<prefix><16 hex>-". */
void nfttab_net_prefix(const struct nfttab *t, const char *network, char out[NFTTAB_CHAIN_LEN]);

/* 1 = every base chain with base rules holds exactly those (compared by their comments, in
 * order); 0 = not (absent or altered), *seen when one of those chains exists; -1 error. */
int nfttab_intact(struct nft *n, const struct nfttab *t, bool *seen, struct cni_error *e);
/* The commands adding the table, its maps and base chains (no-ops for what exists), and with
 * `rules` the base rules, after flushing their chains when `flush`. */
void nfttab_skeleton(struct sb *b, const struct nfttab *t, bool rules, bool flush);
/* nfttab_intact, and the skeleton with its rules into b when not intact (flushing what was
 * seen). 1 = intact, 0 = written, -1 error. */
int nfttab_ensure(struct nft *n, const struct nfttab *t, struct sb *b, bool *seen, struct cni_error *e);
/* CHECK of the skeleton: 0 intact, else -1 with code 104 "<who>: <altered|missing>" (or the
 * read's error). */
int nfttab_check(struct nft *n, const struct nfttab *t, struct cni_error *e);
/* STATUS: can the kernel take the table (its chains, maps and base rules)? A dry run that changes
 * nothing; code 50 prefixed "<t->who>: nf_tables cannot take <what> here: " when it cannot. */
int nfttab_probe(const struct nfttab *t, const char *what, struct cni_error *e);

/* Reads of the table (see nft.h for the results). */
static inline int nfttab_chain(struct nft *n, const struct nfttab *t, const char *chain, char *comment, size_t clen,
			       struct cni_error *e)
{
	return nft_get_chain(n, t->family, t->name, chain, comment, clen, e);
}
static inline int nfttab_rules(struct nft *n, const struct nfttab *t, const char *chain, struct nft_rule_info **out, size_t *cnt,
			       struct cni_error *e)
{
	return nft_get_rules(n, t->family, t->name, chain, out, cnt, e);
}
/* Where the element `key` of map leads: 1 (its chain into target), 0 absent, -1 error. */
static inline int nfttab_elem(struct nft *n, const struct nfttab *t, const char *map, const void *key, size_t klen, char *target,
			      size_t tlen, struct cni_error *e)
{
	return nft_get_map_elem(n, t->family, t->name, map, key, klen, target, tlen, e);
}
/* Keys as the kernel stores them: an ifname NUL-padded to 16 bytes; "proto . port" as two
 * 32-bit registers (the protocol byte, then the port in network order). Return the length. */
size_t nfttab_key_ifname(const char *ifname, uint8_t key[16]);
static inline size_t nfttab_key_port(uint8_t proto, unsigned port, uint8_t key[8])
{
	memset(key, 0, 8);
	key[0] = proto;
	key[4] = (uint8_t)(port >> 8);
	key[5] = (uint8_t)(port & 0xff);
	return 8;
}

/* GC: the table's chains of network's attachments that are not in valid[] (entries without
 * container ID or ifname match nothing), into *out (malloc'ed, *cnt of them). 0, or -1. */
int nfttab_stale(struct nft *n, const struct nfttab *t, const char *network, const struct cni_attachment *valid, size_t n_valid,
		 struct nft_chain_info **out, size_t *cnt, struct cni_error *e);

/* The commands removing a chain nothing jumps to any more: its rules, then itself. */
void nfttab_drop_chain(struct sb *b, const struct nfttab *t, const char *chain);
/* The commands removing a chain and every element of the table's maps that leads to it, found
 * in the maps themselves: whatever was deleted, flushed or edited by hand before (a rule that
 * named an element, the chain's rules), nothing left in a map keeps the chain busy. 0, or -1. */
int nfttab_drop_chain_refs(struct nft *n, struct sb *b, const struct nfttab *t, const char *chain, struct cni_error *e);
/* The same for several chains, each map read once (GC). */
int nfttab_drop_chains_refs(struct nft *n, struct sb *b, const struct nfttab *t, const char *const *chains, size_t cnt,
			    struct cni_error *e);
/* b's commands as one batch, nothing when b is empty; "out of memory" when building b failed;
 * a refused batch's error is prefixed with the formatted text. 0, or -1. */
int nfttab_run(struct nft *n, const struct sb *b, struct cni_error *e, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
