/* nf_tables over netfilter netlink: writes as one batch of our own messages, point reads as one
 * request each. Only the listings (nft_list_json, nft_query) still go through libnftables, loaded
 * with dlopen by the first of them. All callers serialise on one lock. */
#ifndef CNI_NFT_H
#define CNI_NFT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cjson/cJSON.h>

#include "err.h"

struct nft;

/* Open a netlink socket to nf_tables. libnftables is loaded and its context created only by the
 * first listing (nft_list_json, nft_query). Code 50 (not available) when nf_tables (or, for a
 * listing, the library) is missing: the message says which. */
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
/* Run a list command with JSON output; *out is the parsed "nftables" array owner
 * (free with cJSON_Delete). Returns 0, 1 when the object does not exist (*out NULL), -1. */
int nft_list_json(struct nft *n, const char *cmd, cJSON **out, struct cni_error *e);

/* Run a command with plain text output (for commands whose JSON form this nft lacks,
 * such as "get element"): 1 = ran, *out points into the context's buffer (valid until the
 * next call); 0 = the object does not exist; -1 error. */
int nft_query(struct nft *n, const char *cmd, const char **out, struct cni_error *e);

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
int nft_get_rules(struct nft *n, int family, const char *table, const char *chain, struct nft_rule_info **out,
		  size_t *cnt, struct cni_error *e);
/* Where one element of a verdict map leads: 1 = found, the chain it jumps or goes to into
 * target ("" for a verdict without chain), 0 = no such element, map or table. `key` is the
 * element's key as the kernel stores it (addresses in network order, ifnames NUL-padded). */
int nft_get_map_elem(struct nft *n, int family, const char *table, const char *map, const void *key, size_t klen,
		     char *target, size_t tlen, struct cni_error *e);

/* The lock every nft user of this suite takes around read-modify-write (flock on
 * /run/cni-c/nft.lock). Returns an fd to pass to nft_unlock. */
int nft_lock(struct cni_error *e);
void nft_unlock(int fd);

/* A growing command buffer; an allocation failure is remembered (oom) and reported once, at
 * the end, by the caller. */
struct nft_sb {
	char *s;
	size_t n, cap;
	bool oom;
};
void nft_sb_add(struct nft_sb *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Can the batch writer express this nft match text (one portmap condition) in an inet table:
 * matches only, of the vocabulary it knows. */
bool nft_match_ok(const char *expr);

/* nftables' limit for a comment, in bytes */
#define NFT_COMMENT_MAX 128
/* Make text safe inside an nft double-quoted string, in place: quotes, backslashes, control and
 * non-ASCII bytes become '_', and it is cut at NFT_COMMENT_MAX bytes. */
void nft_comment_clean(char *s);

#endif
