/* nf_tables over netfilter netlink: writes as one batch of our own messages, point reads as one
 * request each, dumps for GC: no libnftables, no nft command. All callers serialise on one lock. */
#ifndef CNI_NFT_H
#define CNI_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "err.h"

struct nft;

/* Open a netlink socket to nf_tables. Code 50 (not available) when nf_tables is missing. */
int nft_open(struct nft **out, struct cni_error *e);
void nft_close(struct nft *n);

/* Run nft commands (newline-separated) as one nfnetlink batch, atomically. Each line is translated
 * into the message nft would send for it; only the forms this suite writes are known (others fail
 * with code 7 naming the line, before anything is sent). On failure, the error names the first
 * line the kernel refused and its reason. */
int nft_run(struct nft *n, const char *cmds, struct cni_error *e);
/* Like nft_run but for commands whose failure means "absent" (ENOENT): returns
 * 1 if it ran, 0 if the object did not exist, -1 on other errors. */
int nft_run_quiet(struct nft *n, const char *cmds, struct cni_error *e);
/* Like nft_run as a dry run: the kernel validates the whole batch, then it is discarded
 * (STATUS probes with it without changing anything). */
int nft_check(struct nft *n, const char *cmds, struct cni_error *e);
/* Reads straight from the kernel, one netlink request each, without libnftables: its 1.0.x
 * cache makes every list or get command dump all elements of the table's sets first, so
 * those cost O(ruleset) where these cost O(1). family: NFPROTO_INET, _IPV4, _IPV6, _BRIDGE. */
struct nft_rule_info {
	uint64_t handle;
	char comment[129]; /* "" when the rule has none */
};
/* 1 = the chain exists (its comment, "" if none, into comment), 0 = no such table or chain. */
int nft_get_chain(struct nft *n, int family, const char *table, const char *chain, char *comment, size_t clen,
		  struct cni_error *e);
/* The chain's rules in order: 1 (*out malloc'ed, *cnt of them), 0 = no such table or chain. */
int nft_get_rules(struct nft *n, int family, const char *table, const char *chain, struct nft_rule_info **out, size_t *cnt,
		  struct cni_error *e);
/* Where one element of a verdict map leads: 1 = found, the chain it jumps or goes to into
 * target ("" for a verdict without chain), 0 = no such element, map or table. `key` is the
 * element's key as the kernel stores it (addresses in network order, ifnames NUL-padded). */
int nft_get_map_elem(struct nft *n, int family, const char *table, const char *map, const void *key, size_t klen, char *target,
		     size_t tlen, struct cni_error *e);

/* Whole-table reads for GC, one netlink dump each (O(table), not one request per object). */
#define NFT_NAME_LEN 256 /* the kernel's limit for table, chain and set names, NUL included */
struct nft_chain_info {
	char name[NFT_NAME_LEN];
	char comment[129]; /* "" when the chain has none */
};
/* Every chain of the table, in the kernel's order: 0 (*out malloc'ed, *cnt of them; a table
 * that does not exist has none), -1 error. */
int nft_list_chains(struct nft *n, int family, const char *table, struct nft_chain_info **out, size_t *cnt, struct cni_error *e);
struct nft_map_elem {
	uint8_t key[64]; /* as the kernel stores it (see nft_get_map_elem) */
	size_t klen;
	bool has_verdict;
	int32_t verdict; /* NFT_JUMP, NFT_GOTO, NF_ACCEPT, ... */
	char chain[NFT_NAME_LEN]; /* the chain a jump or goto leads to, else "" */
};
/* Every element of a verdict map, each key once, sorted by key: 1 (*out malloc'ed, *cnt of them), 0 = no
 * such map or table. */
int nft_list_map(struct nft *n, int family, const char *table, const char *map, struct nft_map_elem **out, size_t *cnt,
		 struct cni_error *e);

/* The lock every nft user of this suite takes around read-modify-write (flock on
 * /run/cni-c/nft.lock). Returns an fd to pass to nft_unlock. */
int nft_lock(struct cni_error *e);
void nft_unlock(int fd);

/* Can the batch writer express this nft match text (one portmap condition) in an inet table:
 * matches only, of the vocabulary it knows. */
bool nft_match_ok(const char *expr);

/* nftables' limit for a comment, in bytes */
#define NFT_COMMENT_MAX 128
/* Make text safe inside an nft double-quoted string, in place: quotes, backslashes, control and
 * non-ASCII bytes become '_', and it is cut at NFT_COMMENT_MAX bytes. */
void nft_comment_clean(char *s);

#endif
