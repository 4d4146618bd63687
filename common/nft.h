/* nf_tables through libnftables, loaded with dlopen only by the verbs that need it
 * (a plugin without ipMasq never maps the library). All callers serialise on one lock. */
#ifndef CNI_NFT_H
#define CNI_NFT_H

#include <stdbool.h>
#include <cjson/cJSON.h>

#include "err.h"

struct nft;

/* Load libnftables and create a context. Code 50 (not available) when the library
 * or nf_tables is missing: the message says which. */
int nft_open(struct nft **out, struct cni_error *e);
void nft_close(struct nft *n);

/* Run one batch of nft commands (newline-separated), atomically. On failure, the
 * error names the first line nft complained about. */
int nft_run(struct nft *n, const char *cmds, struct cni_error *e);
/* Like nft_run but for commands whose failure means "absent" (ENOENT): returns
 * 1 if it ran, 0 if the object did not exist, -1 on other errors. */
int nft_run_quiet(struct nft *n, const char *cmds, struct cni_error *e);
/* Run a list command with JSON output; *out is the parsed "nftables" array owner
 * (free with cJSON_Delete). Returns 0, 1 when the object does not exist (*out NULL), -1. */
int nft_list_json(struct nft *n, const char *cmd, cJSON **out, struct cni_error *e);

/* Run a command with plain text output (for commands whose JSON form this nft lacks,
 * such as "get element"): 1 = ran, *out points into the context's buffer (valid until the
 * next call); 0 = the object does not exist; -1 error. */
int nft_query(struct nft *n, const char *cmd, const char **out, struct cni_error *e);

/* The lock every nft user of this suite takes around read-modify-write (flock on
 * /run/cni-c/nft.lock). Returns an fd to pass to nft_unlock. */
int nft_lock(struct cni_error *e);
void nft_unlock(int fd);

#endif
