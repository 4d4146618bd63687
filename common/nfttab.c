/* The tables of ours in nf_tables, driven by their descriptors (see nfttab.h). */
#include "nfttab.h"

#include <arpa/inet.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sha512.h"

/* ---- names ---- */

void nfttab_net_prefix(const struct nfttab *t, const char *network, char out[NFTTAB_CHAIN_LEN])
{
	char nh[17];
	sha512_hex(network, strlen(network), nh, 16);
	snprintf(out, NFTTAB_CHAIN_LEN, "%s%s-", t->chain_prefix, nh);
}

int nfttab_chain_name(const struct nfttab *t, const char *network, const char *ifname, const char *container_id,
		      char out[NFTTAB_CHAIN_LEN], struct cni_error *e)
{
	char pre[NFTTAB_CHAIN_LEN], ah[17];

	if (t->naming == NFTTAB_ATTACHMENT) {
		if (sha512_hexf(ah, 16, "%s-%s", container_id, ifname) < 0)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		snprintf(out, NFTTAB_CHAIN_LEN, "%s%s", t->chain_prefix, ah);
		return 0;
	}
	if (sha512_hexf(ah, 16, "%s:%s", ifname, container_id) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	nfttab_net_prefix(t, network, pre);
	snprintf(out, NFTTAB_CHAIN_LEN, "%s%s", pre, ah);
	return 0;
}

/* ---- the skeleton ---- */

static bool has_rules(const struct nfttab *t, const char *chain)
{
	for (const struct nfttab_rule *r = t->rules; r->chain[0]; r++)
		if (strcmp(r->chain, chain) == 0)
			return true;
	return false;
}

/* 1 when the chain holds exactly its base rules, 0 not, -1 error; *seen when it exists. */
static int chain_intact(struct nft *n, const struct nfttab *t, const char *chain, bool *seen, struct cni_error *e)
{
	struct nft_rule_info *r = NULL;
	size_t cnt = 0, k = 0;
	int rc = nft_get_rules(n, t->family, t->name, chain, &r, &cnt, e);
	bool ok = rc == 1;

	for (const struct nfttab_rule *b = t->rules; ok && b->chain[0]; b++)
		if (strcmp(b->chain, chain) == 0)
			ok = k < cnt && strcmp(r[k++].comment, b->comment) == 0;
	free(r);
	*seen |= rc == 1;
	return rc < 0 ? -1 : ok && k == cnt;
}

int nfttab_intact(struct nft *n, const struct nfttab *t, bool *seen, struct cni_error *e)
{
	bool ok = true, ign;
	int r;

	if (!seen)
		seen = &ign;
	*seen = false;
	for (const struct nfttab_chain *c = t->chains; c->name[0]; c++) {
		if (!has_rules(t, c->name))
			continue;
		if ((r = chain_intact(n, t, c->name, seen, e)) < 0)
			return -1;
		ok = ok && r;
	}
	return ok;
}

void nfttab_skeleton(struct sb *b, const struct nfttab *t, bool rules, bool flush)
{
	sb_add(b, "add table %s { comment \"%s\"; }\n", t->ref, t->comment);
	for (const struct nfttab_map *m = t->maps; m->name[0]; m++)
		sb_add(b, "add map %s %s { type %s : verdict; }\n", t->ref, m->name, m->type);
	for (const struct nfttab_chain *c = t->chains; c->name[0]; c++)
		sb_add(b, "add chain %s %s { %s }\n", t->ref, c->name, c->spec);
	for (const struct nfttab_chain *c = t->chains; rules && c->name[0]; c++) {
		if (!has_rules(t, c->name))
			continue;
		if (flush)
			sb_add(b, "flush chain %s %s\n", t->ref, c->name);
		for (const struct nfttab_rule *r = t->rules; r->chain[0]; r++)
			if (strcmp(r->chain, c->name) == 0)
				sb_add(b, "add rule %s %s %s comment \"%s\"\n", t->ref, c->name, r->rule, r->comment);
	}
}

int nfttab_ensure(struct nft *n, const struct nfttab *t, struct sb *b, bool *seen, struct cni_error *e)
{
	bool ign;
	int r;

	if (!seen)
		seen = &ign;
	if ((r = nfttab_intact(n, t, seen, e)) == 0)
		nfttab_skeleton(b, t, true, *seen);
	return r;
}

int nfttab_check(struct nft *n, const struct nfttab *t, struct cni_error *e)
{
	bool seen;
	int r = nfttab_intact(n, t, &seen, e);

	if (r == 0)
		cni_check_fail(e, "%s: %s", t->who, seen ? t->altered : t->missing);
	return r == 1 ? 0 : -1;
}

int nfttab_probe(const struct nfttab *t, const char *what, struct cni_error *e)
{
	struct nft *n = NULL;
	struct sb b = { 0 };
	int rc = -1;

	if (nft_open(&n, e) < 0)
		goto out;
	nfttab_skeleton(&b, t, true, false);
	if (b.oom) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (nft_check(n, b.s, e) < 0) {
		e->code = CNI_ERR_NOT_AVAILABLE;
		cni_err_prefix(e, "%s: nf_tables cannot take %s here: ", t->who, what);
		goto out;
	}
	rc = 0;
out:
	free(b.s);
	nft_close(n);
	return rc;
}

/* ---- reads ---- */

size_t nfttab_key_ifname(const char *ifname, uint8_t key[16])
{
	memset(key, 0, 16);
	memcpy(key, ifname, strnlen(ifname, 16));
	return 16;
}

int nfttab_stale(struct nft *n, const struct nfttab *t, const char *network, const struct cni_attachment *valid, size_t n_valid,
		 struct nft_chain_info **out, size_t *cnt, struct cni_error *e)
{
	char pre[NFTTAB_CHAIN_LEN], (*keep)[NFTTAB_CHAIN_LEN] = calloc(n_valid + 1, sizeof(*keep));
	struct nft_chain_info *ch = NULL;
	size_t nch = 0, k = 0, lp;

	*out = NULL;
	*cnt = 0;
	if (!keep)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	for (size_t i = 0; i < n_valid; i++)
		if (valid[i].container_id && valid[i].ifname &&
		    nfttab_chain_name(t, network, valid[i].ifname, valid[i].container_id, keep[i], e) < 0)
			goto fail;
	/* one dump of the chains (none when there is no table), not a read per chain */
	if (nft_list_chains(n, t->family, t->name, &ch, &nch, e) < 0)
		goto fail;
	nfttab_net_prefix(t, network, pre);
	lp = strlen(pre);
	for (size_t c = 0; c < nch; c++) {
		bool valid_one = strncmp(ch[c].name, pre, lp) != 0;
		for (size_t i = 0; i < n_valid && !valid_one; i++)
			valid_one = strcmp(keep[i], ch[c].name) == 0;
		if (!valid_one)
			ch[k++] = ch[c];
	}
	free(keep);
	*out = ch;
	*cnt = k;
	return 0;
fail:
	free(keep);
	free(ch);
	return -1;
}

/* ---- writes ---- */

void nfttab_drop_chain(struct sb *b, const struct nfttab *t, const char *chain)
{
	sb_add(b, "flush chain %s %s\ndelete chain %s %s\n", t->ref, chain, t->ref, chain);
}

/* An element's key as nft writes it in map m: an address, a quoted ifname, "proto . port". */
static bool key_fmt(const struct nfttab_map *m, const struct nft_map_elem *el, char *out, size_t olen)
{
	if (strcmp(m->type, "ipv4_addr") == 0 && el->klen >= 4)
		return inet_ntop(AF_INET, el->key, out, (socklen_t)olen) != NULL;
	if (strcmp(m->type, "ipv6_addr") == 0 && el->klen >= 16)
		return inet_ntop(AF_INET6, el->key, out, (socklen_t)olen) != NULL;
	if (strcmp(m->type, "ifname") == 0 && el->klen) {
		char name[17];
		snprintf(name, sizeof(name), "%.*s", (int)strnlen((const char *)el->key, el->klen < 16 ? el->klen : 16),
			 (const char *)el->key);
		for (const char *c = name; *c; c++)
			if (*c == '"' || *c == '\\' || (unsigned char)*c < 0x20)
				return false;
		return snprintf(out, olen, "\"%s\"", name) < (int)olen;
	}
	if (strcmp(m->type, "inet_proto . inet_service") == 0 && el->klen >= 6) {
		const char *p = el->key[0] == IPPROTO_TCP    ? "tcp"
				: el->key[0] == IPPROTO_UDP  ? "udp"
				: el->key[0] == IPPROTO_SCTP ? "sctp"
							     : NULL;
		return p && snprintf(out, olen, "%s . %u", p, (unsigned)el->key[4] << 8 | el->key[5]) < (int)olen;
	}
	return false;
}

static bool leads_to(const struct nft_map_elem *el, const char *chain)
{
	return el->has_verdict && (el->verdict == NFT_GOTO || el->verdict == NFT_JUMP) && strcmp(el->chain, chain) == 0;
}

int nfttab_drop_chains_refs(struct nft *n, struct sb *b, const struct nfttab *t, const char *const *chains, size_t cnt,
			    struct cni_error *e)
{
	for (const struct nfttab_map *m = t->maps; cnt && m->name[0]; m++) {
		struct nft_map_elem *el = NULL;
		size_t nel = 0;
		if (nft_list_map(n, t->family, t->name, m->name, &el, &nel, e) < 0)
			return -1;
		for (size_t c = 0; c < cnt; c++)
			for (size_t i = 0; i < nel; i++) {
				char key[64];
				if (!leads_to(&el[i], chains[c]))
					continue;
				if (!key_fmt(m, &el[i], key, sizeof(key))) {
					free(el);
					return cni_errf(
						e, CNI_ERR_INTERNAL,
						"%s: an element of map %s leading to %s has a key this plugin cannot write",
						t->who, m->name, chains[c]);
				}
				sb_add(b, "delete element %s %s { %s }\n", t->ref, m->name, key);
			}
		free(el);
	}
	for (size_t c = 0; c < cnt; c++)
		nfttab_drop_chain(b, t, chains[c]);
	return 0;
}

int nfttab_drop_chain_refs(struct nft *n, struct sb *b, const struct nfttab *t, const char *chain, struct cni_error *e)
{
	return nfttab_drop_chains_refs(n, b, t, &chain, 1, e);
}

int nfttab_run(struct nft *n, const struct sb *b, struct cni_error *e, const char *fmt, ...)
{
	char pre[256];
	va_list ap;

	if (b->oom)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (!b->n || nft_run(n, b->s, e) == 0)
		return 0;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	cni_err_prefix(e, "%s", pre);
	return -1;
}
