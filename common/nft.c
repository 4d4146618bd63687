/* nf_tables for the SNAT, spoof-check and port-map rules: writes as one nfnetlink batch, point
 * reads and GC's dumps, all straight over netlink (no libnftables, no nft command). */
#include "nft.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>
#include <netinet/in.h>

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include "ip.h"
#include "nl.h"
#include "nlmsg.h"

#define NFT_LOCK_DIR "/run/cni-c"
#define NFT_LOCK_FILE NFT_LOCK_DIR "/nft.lock"

struct nft {
	struct nlsock s; /* NETLINK_NETFILTER, for the reads and the write batches */
};

int nft_open(struct nft **out, struct cni_error *e)
{
	struct nft *n = malloc(sizeof(*n));
	int rc;

	*out = NULL;
	if (!n)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if ((rc = nls_open(&n->s, NETLINK_NETFILTER)) < 0) {
		free(n);
		if (rc == -ENOMEM)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables is not available: no netfilter netlink socket: %s",
				cni_strerror(-rc));
	}
	*out = n;
	return 0;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	/* Closing a socket that committed a deletion waits for an RCU grace period in the
	 * kernel (nf_tables flushes its destroy work on NETLINK_URELEASE): ~10 ms, once. */
	nls_close(&n->s);
	free(n);
}

/* ---- point reads over netlink ---- */

/* An nf_tables message: header and nfgenmsg (res_id: the subsystem, for a batch's begin and end). */
static void nft_msg(struct nlbuf *w, uint16_t type, uint16_t flags, int family, uint32_t seq, uint16_t res_id)
{
	struct nfgenmsg g = { .nfgen_family = (uint8_t)family, .version = NFNETLINK_V0, .res_id = htobe16(res_id) };
	struct nlmsghdr *h = nlb_msg(w, type, (uint16_t)(NLM_F_REQUEST | flags), &g, sizeof(g));
	if (h)
		h->nlmsg_seq = seq;
}

/* A request of the nf_tables subsystem (nls_request numbers it). */
static void req_init(struct nlbuf *w, uint16_t msg, uint16_t flags, int family)
{
	nft_msg(w, (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | msg), flags, family, 0, 0);
}

static size_t nest(struct nlbuf *w, uint16_t type)
{
	return nlb_nest(w, type | NLA_F_NESTED);
}
static void put_be32(struct nlbuf *w, uint16_t type, uint32_t v)
{
	v = htobe32(v);
	nlb_put(w, type, &v, 4);
}

/* Attributes of a reply message (after its nfgenmsg). */
static const void *msg_attrs(const struct nlmsghdr *h, size_t *len)
{
	size_t off = NLMSG_SPACE(sizeof(struct nfgenmsg));
	*len = h->nlmsg_len > off ? h->nlmsg_len - off : 0;
	return (const char *)h + off;
}

/* A string attribute into out (cut to olen - 1 bytes); "" when absent. */
static void astr(const struct nlattr *a, char *out, size_t olen)
{
	if (a)
		snprintf(out, olen, "%.*s", (int)strnlen(nla_payload(a), nla_plen(a)), (const char *)nla_payload(a));
	else
		out[0] = '\0';
}

/* libnftnl's user data, where nft keeps comments: TLVs of {u8 type, u8 len, value}; the
 * comment is type 0 (NFTNL_UDATA_{CHAIN,RULE}_COMMENT), NUL-terminated. */
static void udata_comment(const struct nlattr *ud, char *out, size_t olen)
{
	out[0] = '\0';
	if (!ud || !olen)
		return;
	const unsigned char *p = nla_payload(ud), *end = p + nla_plen(ud);
	while (p + 2 <= end && p + 2 + p[1] <= end) {
		if (p[0] == 0) {
			size_t l = strnlen((const char *)p + 2, p[1]);
			snprintf(out, olen, "%.*s", (int)l, (const char *)p + 2);
			return;
		}
		p += 2 + p[1];
	}
}

/* Send one request (w stays the caller's, to resend or free) and feed each reply message to cb
 * (which returns -ENOMEM to fail). 1 = done, 0 = ENOENT, -1 = error, -2 = a dump was interrupted
 * by a concurrent change (the caller starts over). */
static int talk(struct nft *n, struct nlbuf *w, const char *what, nls_cb cb, void *arg, struct cni_error *e)
{
	int rc = nls_request(&n->s, w, cb, arg);
	if (rc == -ENOENT)
		return 0;
	if (rc == -EINTR)
		return -2;
	if (rc == -ENOMEM)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (rc < 0)
		return cni_errf(e, rc == -EPERM ? CNI_ERR_KERNEL : CNI_ERR_NOT_AVAILABLE, "nftables: reading %s: %s%s", what,
				cni_strerror(-rc), rc == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
	return 1;
}

struct chain_arg {
	char *comment;
	size_t clen;
	bool seen;
};

static int chain_cb(const struct nlmsghdr *h, void *arg)
{
	struct chain_arg *c = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	c->seen = true;
	udata_comment(nla_find(a, len, NFTA_CHAIN_USERDATA), c->comment, c->clen);
	return 0;
}

int nft_get_chain(struct nft *n, int family, const char *table, const char *chain, char *comment, size_t clen,
		  struct cni_error *e)
{
	struct nlbuf r = { 0 };
	char dummy[1];
	struct chain_arg c = { comment ? comment : dummy, comment ? clen : sizeof(dummy), false };
	char what[160];
	int rc;

	snprintf(what, sizeof(what), "chain %s %s", table, chain);
	req_init(&r, NFT_MSG_GETCHAIN, 0, family);
	nlb_str(&r, NFTA_CHAIN_TABLE, table);
	nlb_str(&r, NFTA_CHAIN_NAME, chain);
	if (comment && clen)
		comment[0] = '\0';
	rc = talk(n, &r, what, chain_cb, &c, e);
	nlb_free(&r);
	return rc == 1 ? (c.seen ? 1 : 0) : rc < 0 ? -1 : rc;
}

/* One more slot at the end of a growing array of `size`-byte items: its address, NULL when out of
 * memory (the array is left as it was). */
static void *push(void **v, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? *cap * 2 : 32;
		void *nv = realloc(*v, c * size);
		if (!nv)
			return NULL;
		*v = nv;
		*cap = c;
	}
	return (char *)*v + (*n)++ * size;
}

struct rules_arg {
	struct nft_rule_info *v;
	size_t n, cap;
};

static int rule_cb(const struct nlmsghdr *h, void *arg)
{
	struct rules_arg *ra = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	const struct nlattr *hd = nla_find(a, len, NFTA_RULE_HANDLE);

	struct nft_rule_info *ri = push((void **)&ra->v, &ra->n, &ra->cap, sizeof(*ri));
	if (!ri)
		return -ENOMEM;
	ri->handle = 0;
	if (hd && nla_plen(hd) == 8) {
		uint64_t be;
		memcpy(&be, nla_payload(hd), 8);
		ri->handle = be64toh(be);
	}
	udata_comment(nla_find(a, len, NFTA_RULE_USERDATA), ri->comment, sizeof(ri->comment));
	return 0;
}

int nft_get_rules(struct nft *n, int family, const char *table, const char *chain, struct nft_rule_info **out, size_t *cnt,
		  struct cni_error *e)
{
	struct rules_arg ra = { 0 };
	struct nlbuf r = { 0 };
	char what[160];
	int rc;

	*out = NULL;
	*cnt = 0;
	/* A dump filtered to a missing chain is just empty: ask for the chain itself first. */
	if ((rc = nft_get_chain(n, family, table, chain, NULL, 0, e)) <= 0)
		return rc;
	snprintf(what, sizeof(what), "the rules of chain %s %s", table, chain);
	for (int attempt = 0; attempt < 10; attempt++) {
		ra.n = 0;
		req_init(&r, NFT_MSG_GETRULE, NLM_F_DUMP, family);
		nlb_str(&r, NFTA_RULE_TABLE, table);
		nlb_str(&r, NFTA_RULE_CHAIN, chain);
		rc = talk(n, &r, what, rule_cb, &ra, e);
		nlb_free(&r);
		if (rc != -2)
			break;
	}
	if (rc == -2)
		rc = cni_errf(e, CNI_ERR_TRY_AGAIN, "nftables: %s kept changing while being read", what);
	if (rc != 1) {
		free(ra.v);
		return rc;
	}
	*out = ra.v;
	*cnt = ra.n;
	return 1;
}

struct elem_arg {
	char *target;
	size_t tlen;
	bool seen;
};

static int elem_cb(const struct nlmsghdr *h, void *arg)
{
	struct elem_arg *ea = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	/* ELEMENTS { LIST_ELEM { DATA { VERDICT { CODE, CHAIN } } } } */
	const struct nlattr *x = nla_find(a, len, NFTA_SET_ELEM_LIST_ELEMENTS);
	x = nla_child(nla_child(nla_child(nla_child(x, NFTA_LIST_ELEM), NFTA_SET_ELEM_DATA), NFTA_DATA_VERDICT),
		      NFTA_VERDICT_CHAIN);
	ea->seen = true;
	astr(x, ea->target, ea->tlen);
	return 0;
}

int nft_get_map_elem(struct nft *n, int family, const char *table, const char *map, const void *key, size_t klen, char *target,
		     size_t tlen, struct cni_error *e)
{
	struct elem_arg ea = { target, tlen, false };
	size_t elems, el, k;
	struct nlbuf r = { 0 };
	char what[160];
	int rc;

	if (!tlen)
		return cni_errf(e, CNI_ERR_INTERNAL, "nftables: no room for an element's target");
	snprintf(what, sizeof(what), "an element of map %s %s", table, map);
	req_init(&r, NFT_MSG_GETSETELEM, 0, family);
	nlb_str(&r, NFTA_SET_ELEM_LIST_TABLE, table);
	nlb_str(&r, NFTA_SET_ELEM_LIST_SET, map);
	elems = nest(&r, NFTA_SET_ELEM_LIST_ELEMENTS);
	el = nest(&r, NFTA_LIST_ELEM);
	k = nest(&r, NFTA_SET_ELEM_KEY);
	nlb_put(&r, NFTA_DATA_VALUE, key, klen);
	nlb_nest_end(&r, k);
	nlb_nest_end(&r, el);
	nlb_nest_end(&r, elems);
	rc = talk(n, &r, what, elem_cb, &ea, e);
	nlb_free(&r);
	return rc == 1 ? (ea.seen ? 1 : 0) : rc < 0 ? -1 : rc;
}

/* ---- writes: our own nft command text, sent as one nfnetlink batch ----
 *
 * The callers keep writing nft commands (one a line); this translates the forms they write into
 * the messages and expressions nft itself generates for the same text (the same implicit
 * dependencies, set key types and user data, so `nft list ruleset` prints them alike), sends
 * them in one batch (atomic, like `nft -f`) and maps each kernel error back to its line. */

#define TOK_MAX 96

struct tok {
	const char *s;
	size_t len;
	bool quoted;
};

/* libnftnl's user data TLV {type, len, value} for a comment (type 0 for tables, chains, rules) */
static void wb_comment(struct nlbuf *w, uint16_t type, const struct tok *c)
{
	unsigned char ud[2 + NFT_COMMENT_MAX + 1];
	size_t l = c->len > NFT_COMMENT_MAX ? NFT_COMMENT_MAX : c->len;
	ud[0] = 0;
	ud[1] = (unsigned char)(l + 1);
	memcpy(ud + 2, c->s, l);
	ud[2 + l] = '\0';
	nlb_put(w, type, ud, l + 3);
}

/* ---- expressions ---- */

static size_t ex_begin(struct nlbuf *w, const char *name, size_t *data)
{
	size_t el = nest(w, NFTA_LIST_ELEM);
	nlb_str(w, NFTA_EXPR_NAME, name);
	*data = nest(w, NFTA_EXPR_DATA);
	return el;
}
static void ex_end(struct nlbuf *w, size_t el, size_t data)
{
	nlb_nest_end(w, data);
	nlb_nest_end(w, el);
}

static void ex_meta(struct nlbuf *w, uint32_t key, uint32_t reg, bool set)
{
	size_t d, el = ex_begin(w, "meta", &d);
	if (set) {
		put_be32(w, NFTA_META_KEY, key);
		put_be32(w, NFTA_META_SREG, reg);
	} else {
		put_be32(w, NFTA_META_DREG, reg);
		put_be32(w, NFTA_META_KEY, key);
	}
	ex_end(w, el, d);
}

static void ex_payload(struct nlbuf *w, uint32_t base, uint32_t off, uint32_t len, uint32_t reg)
{
	size_t d, el = ex_begin(w, "payload", &d);
	put_be32(w, NFTA_PAYLOAD_DREG, reg);
	put_be32(w, NFTA_PAYLOAD_BASE, base);
	put_be32(w, NFTA_PAYLOAD_OFFSET, off);
	put_be32(w, NFTA_PAYLOAD_LEN, len);
	ex_end(w, el, d);
}

static void wb_value(struct nlbuf *w, uint16_t type, const void *v, size_t len)
{
	size_t n = nest(w, type);
	nlb_put(w, NFTA_DATA_VALUE, v, len);
	nlb_nest_end(w, n);
}

static void ex_cmp(struct nlbuf *w, uint32_t op, const void *v, size_t len)
{
	size_t d, el = ex_begin(w, "cmp", &d);
	put_be32(w, NFTA_CMP_SREG, NFT_REG_1);
	put_be32(w, NFTA_CMP_OP, op);
	wb_value(w, NFTA_CMP_DATA, v, len);
	ex_end(w, el, d);
}

static void ex_bitwise(struct nlbuf *w, const void *mask, const void * xor, size_t len)
{
	size_t d, el = ex_begin(w, "bitwise", &d);
	put_be32(w, NFTA_BITWISE_SREG, NFT_REG_1);
	put_be32(w, NFTA_BITWISE_DREG, NFT_REG_1);
	put_be32(w, NFTA_BITWISE_LEN, (uint32_t)len);
	wb_value(w, NFTA_BITWISE_MASK, mask, len);
	wb_value(w, NFTA_BITWISE_XOR, xor, len);
	ex_end(w, el, d);
}

static void ex_verdict(struct nlbuf *w, int code, const struct tok *chain)
{
	size_t d, el = ex_begin(w, "immediate", &d);
	put_be32(w, NFTA_IMMEDIATE_DREG, NFT_REG_VERDICT);
	size_t dt = nest(w, NFTA_IMMEDIATE_DATA), v = nest(w, NFTA_DATA_VERDICT);
	put_be32(w, NFTA_VERDICT_CODE, (uint32_t)code);
	if (chain) {
		char name[TOK_MAX + 1];
		snprintf(name, sizeof(name), "%.*s", (int)chain->len, chain->s);
		nlb_str(w, NFTA_VERDICT_CHAIN, name);
	}
	nlb_nest_end(w, v);
	nlb_nest_end(w, dt);
	ex_end(w, el, d);
}

static void ex_imm(struct nlbuf *w, uint32_t reg, const void *v, size_t len)
{
	size_t d, el = ex_begin(w, "immediate", &d);
	put_be32(w, NFTA_IMMEDIATE_DREG, reg);
	wb_value(w, NFTA_IMMEDIATE_DATA, v, len);
	ex_end(w, el, d);
}

static void ex_lookup(struct nlbuf *w, const struct tok *set, bool vmap)
{
	char name[TOK_MAX + 1];
	size_t d, el = ex_begin(w, "lookup", &d);
	snprintf(name, sizeof(name), "%.*s", (int)set->len, set->s);
	nlb_str(w, NFTA_LOOKUP_SET, name);
	put_be32(w, NFTA_LOOKUP_SREG, NFT_REG_1);
	if (vmap)
		put_be32(w, NFTA_LOOKUP_DREG, NFT_REG_VERDICT);
	put_be32(w, NFTA_LOOKUP_FLAGS, 0);
	ex_end(w, el, d);
}

/* ---- the command text ---- */

static size_t tokenize(const char *line, size_t llen, struct tok *t, size_t max)
{
	const char *p = line, *end = line + llen;
	size_t n = 0;

	while (p < end) {
		if (*p == ' ' || *p == '\t' || *p == ';') {
			p++;
			continue;
		}
		if (n == max)
			return max + 1;
		if (*p == '"') {
			const char *q = memchr(p + 1, '"', (size_t)(end - p - 1));
			if (!q)
				return max + 1;
			t[n++] = (struct tok){ p + 1, (size_t)(q - p - 1), true };
			p = q + 1;
			continue;
		}
		const char *s = p;
		while (p < end && *p != ' ' && *p != '\t' && *p != ';')
			p++;
		t[n++] = (struct tok){ s, (size_t)(p - s), false };
	}
	return n;
}

static bool is(const struct tok *t, const char *s)
{
	return !t->quoted && t->len == strlen(s) && memcmp(t->s, s, t->len) == 0;
}

/* A token as a C string, or false when it does not fit. */
static bool tstr(const struct tok *t, char *buf, size_t blen)
{
	if (t->len >= blen)
		return false;
	memcpy(buf, t->s, t->len);
	buf[t->len] = '\0';
	return true;
}

static bool tnum(const struct tok *t, uint64_t max, uint64_t *out)
{
	char buf[32], *end;
	if (t->quoted || !tstr(t, buf, sizeof(buf)) || !buf[0] || buf[0] == '-')
		return false;
	errno = 0;
	unsigned long long v = strtoull(buf, &end, 0);
	if (errno || *end || v > max)
		return false;
	*out = v;
	return true;
}

static int proto_num(const struct tok *t)
{
	uint64_t v;
	if (is(t, "tcp"))
		return IPPROTO_TCP;
	if (is(t, "udp"))
		return IPPROTO_UDP;
	if (is(t, "sctp"))
		return IPPROTO_SCTP;
	if (is(t, "icmp"))
		return IPPROTO_ICMP;
	if (is(t, "icmpv6"))
		return IPPROTO_ICMPV6;
	return tnum(t, 255, &v) ? (int)v : -1;
}

/* an optional relational operator; false when none */
static bool relop(const struct tok *t, uint32_t *op)
{
	static const struct {
		const char *s;
		uint32_t op;
	} ops[] = {
		{ "==", NFT_CMP_EQ },  { "!=", NFT_CMP_NEQ }, { "<", NFT_CMP_LT },
		{ "<=", NFT_CMP_LTE }, { ">", NFT_CMP_GT },   { ">=", NFT_CMP_GTE },
	};
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (is(t, ops[i].s)) {
			*op = ops[i].op;
			return true;
		}
	return false;
}

struct rstate {
	int nfproto; /* the family the rule has matched so far (0 none) */
	int l4; /* the transport protocol it has matched (-1 none) */
};

static void dep_nfproto(struct nlbuf *w, struct rstate *st, int fam)
{
	if (st->nfproto == fam)
		return;
	uint8_t v = (uint8_t)fam;
	ex_meta(w, NFT_META_NFPROTO, NFT_REG_1, false);
	ex_cmp(w, NFT_CMP_EQ, &v, 1);
	st->nfproto = fam;
}

/* "ADDR" or "ADDR/PREFIX" of family fam compared with op, as nft: a byte-aligned prefix loads
 * only its bytes, any other a masked whole field. */
static bool match_addr(struct nlbuf *w, const struct tok *t, bool v4, uint32_t off, uint32_t op)
{
	char buf[64];
	struct ipnet net;
	int flen = v4 ? 4 : 16;

	if (t->quoted || !tstr(t, buf, sizeof(buf)))
		return false;
	if (!strchr(buf, '/')) {
		if (ip_parse(buf, &net.ip) < 0)
			return false;
		net.prefix = (uint8_t)(flen * 8);
	} else if (ipnet_parse(buf, &net) < 0)
		return false;
	if (net.ip.len != flen)
		return false;
	struct ip a = ipnet_network(&net);
	if (net.prefix == flen * 8) {
		ex_payload(w, NFT_PAYLOAD_NETWORK_HEADER, off, flen, NFT_REG_1);
		ex_cmp(w, op, a.b, flen);
	} else if (net.prefix % 8 == 0 && net.prefix) {
		ex_payload(w, NFT_PAYLOAD_NETWORK_HEADER, off, net.prefix / 8u, NFT_REG_1);
		ex_cmp(w, op, a.b, net.prefix / 8u);
	} else {
		uint8_t mask[16] = { 0 }, zero[16] = { 0 };
		for (int i = 0; i < net.prefix; i++)
			mask[i / 8] |= (uint8_t)(0x80 >> (i % 8));
		ex_payload(w, NFT_PAYLOAD_NETWORK_HEADER, off, flen, NFT_REG_1);
		ex_bitwise(w, mask, zero, flen);
		ex_cmp(w, op, a.b, flen);
	}
	return true;
}

static bool ifname_key(const struct tok *t, uint8_t key[16])
{
	memset(key, 0, 16);
	if (!t->len || t->len >= 16)
		return false;
	memcpy(key, t->s, t->len);
	return true;
}

/* nft merges a rule's port matches on adjacent header fields with the same operator into one
 * load (rule_postprocess: "th sport 1 th dport 80" loads 4 bytes at offset 0), in place of the
 * first by offset; matches are grouped up to the next statement that is not a match. A first
 * pass over the rule finds them, the second writes the merged form. */
#define MAX_PORTM 64
struct portm {
	size_t tok; /* where the match starts in the rule */
	int seg; /* matches merge only within one run between other statements */
	bool sport; /* offset 0, else 2 (dport) */
	uint32_t op;
	uint16_t val; /* network order */
	int act; /* 0 as written, 1 merged with `other` (4 bytes at 0), 2 merged away */
	uint16_t other;
};
struct plan {
	struct portm p[MAX_PORTM];
	size_t n;
	int seg;
	bool scan;
};

static void plan_merge(struct plan *pl)
{
	for (int seg = 0; seg <= pl->seg; seg++) {
		struct portm *v[MAX_PORTM] = { 0 };
		size_t k = 0;
		/* stable by offset: sports first, each in rule order */
		for (int pass = 0; pass < 2; pass++)
			for (size_t i = 0; i < pl->n; i++)
				if (pl->p[i].seg == seg && pl->p[i].sport == (pass == 0))
					v[k++] = &pl->p[i];
		struct portm *last = k ? v[0] : NULL;
		for (size_t i = 1; i < k; i++) {
			struct portm *this = v[i];
			if (last->sport && last->act == 0 && !this->sport && last->op == this->op &&
			    (this->op == NFT_CMP_EQ || this->op == NFT_CMP_NEQ)) {
				last->act = 1;
				last->other = this->val;
				this->act = 2;
				continue;
			}
			last = this;
		}
	}
}

/* One rule being translated: its tokens t[0..n), the next one at i. The statements below each
 * read theirs from t[i], write their expressions into w and move i past them; false: a form
 * this does not know, *bad at the token. */
struct rctx {
	struct nlbuf *w;
	int fam;
	const struct tok *t;
	size_t n, i;
	struct rstate st;
	struct plan *pl;
	const struct tok **comment;
	size_t *bad;
};

/* k more tokens from i on? */
static bool need(const struct rctx *c, size_t k)
{
	return c->i + k <= c->n;
}

/* "vmap @SET" at t[i]: the lookup of register 1 in SET, into the verdict */
static bool vmap_at(struct rctx *c, size_t at)
{
	const struct tok *s = &c->t[at];
	if (s->len < 2 || s->s[0] != '@')
		return false;
	struct tok set = { s->s + 1, s->len - 1, false };
	ex_lookup(c->w, &set, true);
	return true;
}

/* an optional relational operator at t[i] (then skipped), else ==; *bad at the operand */
static uint32_t op_at(struct rctx *c)
{
	uint32_t op = NFT_CMP_EQ;
	if (c->i < c->n && relop(&c->t[c->i], &op))
		c->i++;
	*c->bad = c->i;
	return op;
}

static bool st_comment(struct rctx *c)
{
	if (!need(c, 2))
		return false;
	*c->comment = &c->t[c->i + 1];
	c->i += 2;
	return true;
}

/* ip|ip6 saddr|daddr [OP] ADDR[/PREFIX], or ip|ip6 saddr|daddr vmap @SET */
static bool st_addr(struct rctx *c)
{
	const struct tok *t = c->t;
	bool v4 = is(&t[c->i], "ip");
	if (!need(c, 3))
		return false;
	bool sa = is(&t[c->i + 1], "saddr");
	if (!sa && !is(&t[c->i + 1], "daddr"))
		return false;
	uint32_t off = v4 ? (sa ? 12 : 16) : (sa ? 8 : 24);
	dep_nfproto(c->w, &c->st, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
	c->i += 2;
	if (is(&t[c->i], "vmap")) {
		if (!need(c, 2))
			return false;
		ex_payload(c->w, NFT_PAYLOAD_NETWORK_HEADER, off, v4 ? 4 : 16, NFT_REG_1);
		if (!vmap_at(c, c->i + 1))
			return false;
		c->i += 2;
		return true;
	}
	uint32_t op = op_at(c);
	if (!need(c, 1) || (op != NFT_CMP_EQ && op != NFT_CMP_NEQ) || !match_addr(c->w, &t[c->i], v4, off, op))
		return false;
	c->i++;
	return true;
}

/* [meta] iifname|oifname [OP] NAME, or iifname|oifname vmap @SET */
static bool st_ifname(struct rctx *c)
{
	const struct tok *t = c->t;
	uint8_t name[16];
	if (is(&t[c->i], "meta"))
		*c->bad = ++c->i; /* "meta iifname" is "iifname" */
	uint32_t key = is(&t[c->i], "iifname") ? NFT_META_IIFNAME : NFT_META_OIFNAME;
	if (!need(c, 2))
		return false;
	c->i++;
	ex_meta(c->w, key, NFT_REG_1, false);
	if (is(&t[c->i], "vmap")) {
		if (!need(c, 2) || !vmap_at(c, c->i + 1))
			return false;
		c->i += 2;
		return true;
	}
	uint32_t op = op_at(c);
	if (!need(c, 1) || (op != NFT_CMP_EQ && op != NFT_CMP_NEQ) || !ifname_key(&t[c->i], name) ||
	    memchr(t[c->i].s, '*', t[c->i].len))
		return false;
	ex_cmp(c->w, op, name, 16);
	c->i++;
	return true;
}

/* meta mark set meta mark or X | meta mark and X OP Y | meta mark [OP] X; i at the word after "mark" */
static bool meta_mark(struct rctx *c)
{
	const struct tok *t = c->t;
	uint64_t v, y;
	uint32_t op;
	if (is(&t[c->i], "set")) {
		if (!need(c, 5) || !is(&t[c->i + 1], "meta") || !is(&t[c->i + 2], "mark") || !is(&t[c->i + 3], "or") ||
		    !tnum(&t[c->i + 4], UINT32_MAX, &v))
			return false;
		uint32_t m = (uint32_t)v, mask = ~m;
		ex_meta(c->w, NFT_META_MARK, NFT_REG_1, false);
		ex_bitwise(c->w, &mask, &m, 4);
		ex_meta(c->w, NFT_META_MARK, NFT_REG_1, true);
		c->i += 5;
		return true;
	}
	if (is(&t[c->i], "and")) {
		if (!need(c, 4) || !tnum(&t[c->i + 1], UINT32_MAX, &v) || !relop(&t[c->i + 2], &op) ||
		    !tnum(&t[c->i + 3], UINT32_MAX, &y))
			return false;
		uint32_t m = (uint32_t)v, zero = 0, val = (uint32_t)y;
		ex_meta(c->w, NFT_META_MARK, NFT_REG_1, false);
		ex_bitwise(c->w, &m, &zero, 4);
		ex_cmp(c->w, op, &val, 4);
		c->i += 4;
		return true;
	}
	op = op_at(c);
	/* (an ordering on the host-order mark needs a byteorder expression first) */
	if (!need(c, 1) || (op != NFT_CMP_EQ && op != NFT_CMP_NEQ) || !tnum(&t[c->i], UINT32_MAX, &v))
		return false;
	uint32_t val = (uint32_t)v;
	ex_meta(c->w, NFT_META_MARK, NFT_REG_1, false);
	ex_cmp(c->w, op, &val, 4);
	c->i++;
	return true;
}

/* meta l4proto . th dport vmap @SET (the concatenation in 32-bit registers) | meta l4proto [OP] P;
 * i after "l4proto" */
static bool meta_l4proto(struct rctx *c)
{
	const struct tok *t = c->t;
	if (is(&t[c->i], ".")) {
		if (!need(c, 5) || !is(&t[c->i + 1], "th") || !is(&t[c->i + 2], "dport") || !is(&t[c->i + 3], "vmap"))
			return false;
		ex_meta(c->w, NFT_META_L4PROTO, NFT_REG_1, false);
		ex_payload(c->w, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, NFT_REG32_01);
		if (!vmap_at(c, c->i + 4))
			return false;
		c->i += 5;
		return true;
	}
	uint32_t op = op_at(c);
	int p;
	if (!need(c, 1) || (p = proto_num(&t[c->i])) < 0)
		return false;
	uint8_t b = (uint8_t)p;
	ex_meta(c->w, NFT_META_L4PROTO, NFT_REG_1, false);
	ex_cmp(c->w, op, &b, 1);
	if (op == NFT_CMP_EQ)
		c->st.l4 = p;
	c->i++;
	return true;
}

static bool st_meta(struct rctx *c)
{
	const struct tok *t = c->t;
	if (c->i + 1 < c->n && (is(&t[c->i + 1], "iifname") || is(&t[c->i + 1], "oifname")))
		return st_ifname(c);
	if (!need(c, 3))
		return false;
	const struct tok *k = &t[c->i + 1];
	c->i += 2;
	if (is(k, "l4proto"))
		return meta_l4proto(c);
	if (is(k, "mark"))
		return meta_mark(c);
	if (!is(k, "nfproto"))
		return false;
	int nf = is(&t[c->i], "ipv4") ? NFPROTO_IPV4 : is(&t[c->i], "ipv6") ? NFPROTO_IPV6 : 0;
	*c->bad = c->i;
	if (!nf)
		return false;
	uint8_t b = (uint8_t)nf;
	ex_meta(c->w, NFT_META_NFPROTO, NFT_REG_1, false);
	ex_cmp(c->w, NFT_CMP_EQ, &b, 1);
	c->st.nfproto = nf;
	c->i++;
	return true;
}

/* th|tcp|udp|sctp sport|dport [OP] PORT, merged with its neighbour as the plan says */
static bool st_port(struct rctx *c)
{
	const struct tok *t = c->t, *x = &t[c->i];
	struct plan *pl = c->pl;
	size_t stmt = c->i;
	uint64_t v;
	if (!need(c, 3))
		return false;
	bool sp = is(&t[c->i + 1], "sport");
	if (!sp && !is(&t[c->i + 1], "dport"))
		return false;
	int p = proto_num(x);
	if (!is(x, "th") && c->st.l4 != p) {
		uint8_t b = (uint8_t)p;
		ex_meta(c->w, NFT_META_L4PROTO, NFT_REG_1, false);
		ex_cmp(c->w, NFT_CMP_EQ, &b, 1);
		c->st.l4 = p;
	}
	c->i += 2;
	uint32_t op = op_at(c);
	if (!need(c, 1) || !tnum(&t[c->i], 65535, &v))
		return false;
	uint16_t port = htobe16((uint16_t)v);
	const struct portm *pm = NULL;
	for (size_t k = 0; k < pl->n && !pm; k++)
		if (pl->p[k].tok == stmt)
			pm = &pl->p[k];
	if (pl->scan) {
		if (pl->n == MAX_PORTM)
			return false;
		pl->p[pl->n++] = (struct portm){ stmt, pl->seg, sp, op, port, 0, 0 };
	}
	if (pm && pm->act == 1) {
		uint16_t both[2] = { port, pm->other };
		ex_payload(c->w, NFT_PAYLOAD_TRANSPORT_HEADER, 0, 4, NFT_REG_1);
		ex_cmp(c->w, op, both, 4);
	} else if (!pm || pm->act == 0) {
		ex_payload(c->w, NFT_PAYLOAD_TRANSPORT_HEADER, sp ? 0 : 2, 2, NFT_REG_1);
		ex_cmp(c->w, op, &port, 2);
	}
	c->i++;
	return true;
}

/* fib daddr type local */
static bool st_fib(struct rctx *c)
{
	const struct tok *t = c->t;
	if (!need(c, 4) || !is(&t[c->i + 1], "daddr") || !is(&t[c->i + 2], "type") || !is(&t[c->i + 3], "local"))
		return false;
	size_t d, el = ex_begin(c->w, "fib", &d);
	put_be32(c->w, NFTA_FIB_DREG, NFT_REG_1);
	put_be32(c->w, NFTA_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE);
	put_be32(c->w, NFTA_FIB_FLAGS, NFTA_FIB_F_DADDR);
	ex_end(c->w, el, d);
	uint32_t local = 2; /* RTN_LOCAL */
	ex_cmp(c->w, NFT_CMP_EQ, &local, 4);
	c->i += 4;
	return true;
}

/* ether saddr MAC, after nft's dependency on an Ethernet input device */
static bool st_ether(struct rctx *c)
{
	const struct tok *t = c->t;
	uint8_t mac[6];
	char buf[24];
	if (!need(c, 3) || !is(&t[c->i + 1], "saddr") || !tstr(&t[c->i + 2], buf, sizeof(buf)) || cnl_mac_parse(buf, mac) < 0)
		return false;
	uint16_t ether = 1; /* ARPHRD_ETHER */
	if (c->fam != NFPROTO_BRIDGE) {
		ex_meta(c->w, NFT_META_IIFTYPE, NFT_REG_1, false);
		ex_cmp(c->w, NFT_CMP_EQ, &ether, 2);
	}
	ex_payload(c->w, NFT_PAYLOAD_LL_HEADER, 6, 6, NFT_REG_1);
	ex_cmp(c->w, NFT_CMP_EQ, mac, 6);
	c->i += 3;
	return true;
}

static bool st_masquerade(struct rctx *c)
{
	size_t d, el = ex_begin(c->w, "masq", &d);
	ex_end(c->w, el, d);
	c->i++;
	return true;
}

/* dnat|snat ip to A[:P], dnat|snat ip6 to A or [A]:P (an address alone: 1:1 NAT) */
static bool st_nat(struct rctx *c)
{
	const struct tok *t = c->t;
	char buf[80], *ps = NULL, *as = buf;
	struct ip a;
	uint64_t v = 0;
	bool snat = is(&t[c->i], "snat");
	if (!need(c, 3))
		return false;
	bool v4 = is(&t[c->i + 1], "ip");
	if ((!v4 && !is(&t[c->i + 1], "ip6")) || !is(&t[c->i + 2], "to"))
		return false;
	*c->bad = c->i + 2;
	if (!need(c, 4) || !tstr(&t[c->i + 3], buf, sizeof(buf)))
		return false;
	if (v4 && (ps = strchr(buf, ':')))
		*ps++ = '\0';
	else if (!v4 && buf[0] == '[') {
		char *rb = strchr(buf, ']');
		if (!rb || rb[1] != ':')
			return false;
		*rb = '\0';
		as = buf + 1;
		ps = rb + 2;
	}
	if (ip_parse(as, &a) < 0 || a.len != (v4 ? 4 : 16))
		return false;
	if (ps) {
		struct tok pt = { ps, strlen(ps), false };
		if (!tnum(&pt, 65535, &v))
			return false;
	}
	uint16_t port = htobe16((uint16_t)v);
	ex_imm(c->w, NFT_REG_1, a.b, a.len);
	if (ps)
		ex_imm(c->w, NFT_REG_2, &port, 2);
	size_t d, el = ex_begin(c->w, "nat", &d);
	put_be32(c->w, NFTA_NAT_TYPE, snat ? NFT_NAT_SNAT : NFT_NAT_DNAT);
	put_be32(c->w, NFTA_NAT_FAMILY, v4 ? NFPROTO_IPV4 : NFPROTO_IPV6);
	put_be32(c->w, NFTA_NAT_REG_ADDR_MIN, NFT_REG_1);
	if (ps) {
		put_be32(c->w, NFTA_NAT_REG_PROTO_MIN, NFT_REG_2);
		put_be32(c->w, NFTA_NAT_FLAGS, 0x2); /* NF_NAT_RANGE_PROTO_SPECIFIED */
	} else
		put_be32(c->w, NFTA_NAT_FLAGS, 0x1); /* NF_NAT_RANGE_MAP_IPS */
	ex_end(c->w, el, d);
	c->i += 4;
	return true;
}

/* return | drop | accept | jump CHAIN | goto CHAIN */
static bool st_verdict(struct rctx *c)
{
	const struct tok *x = &c->t[c->i];
	if (is(x, "jump") || is(x, "goto")) {
		const struct tok *ch = &c->t[c->i + 1];
		if (!need(c, 2) || ch->quoted || !ch->len || ch->len > TOK_MAX)
			return false;
		ex_verdict(c->w, is(x, "jump") ? NFT_JUMP : NFT_GOTO, ch);
		c->i += 2;
		return true;
	}
	ex_verdict(c->w, is(x, "return") ? NFT_RETURN : is(x, "drop") ? NF_DROP : NF_ACCEPT, NULL);
	c->i++;
	return true;
}

/* The statements by their first word; from ST_MASQ on they end a run of mergeable matches.
 * (Names in arrays and a switch, not pointers: a static-pie binary pays a relocation for each.) */
enum { ST_COMMENT, ST_ADDR, ST_IFNAME, ST_META, ST_PORT, ST_FIB, ST_ETHER, ST_MASQ, ST_DNAT, ST_VERDICT };
static const struct {
	char word[11];
	uint8_t kind;
} statements[] = {
	{ "comment", ST_COMMENT }, { "ip", ST_ADDR },	     { "ip6", ST_ADDR },     { "iifname", ST_IFNAME },
	{ "oifname", ST_IFNAME },  { "meta", ST_META },	     { "th", ST_PORT },	     { "tcp", ST_PORT },
	{ "udp", ST_PORT },	   { "sctp", ST_PORT },	     { "fib", ST_FIB },	     { "ether", ST_ETHER },
	{ "masquerade", ST_MASQ }, { "dnat", ST_DNAT },	     { "snat", ST_DNAT },    { "return", ST_VERDICT },
	{ "drop", ST_VERDICT },	   { "accept", ST_VERDICT }, { "jump", ST_VERDICT }, { "goto", ST_VERDICT },
};

static bool statement(struct rctx *c, int kind)
{
	switch (kind) {
	case ST_COMMENT:
		return st_comment(c);
	case ST_ADDR:
		return st_addr(c);
	case ST_IFNAME:
		return st_ifname(c);
	case ST_META:
		return st_meta(c);
	case ST_PORT:
		return st_port(c);
	case ST_FIB:
		return st_fib(c);
	case ST_ETHER:
		return st_ether(c);
	case ST_MASQ:
		return st_masquerade(c);
	case ST_DNAT:
		return st_nat(c);
	default:
		return st_verdict(c);
	}
}

/* One rule's expressions, t[0..n); *comment set when it has one. false: a form this does not know,
 * *bad at the token. */
static bool rule_exprs(struct nlbuf *w, int fam, const struct tok *t, size_t n, const struct tok **comment, size_t *bad,
		       struct plan *pl)
{
	struct rctx c = { w, fam, t, n, 0, { 0, -1 }, pl, comment, bad };
	bool ok = true;

	*comment = NULL;
	pl->seg = 0;
	while (ok && c.i < n) {
		const struct tok *x = &t[c.i];
		size_t k = 0, ns = sizeof(statements) / sizeof(statements[0]);
		*bad = c.i;
		while (k < ns && !is(x, statements[k].word))
			k++;
		if (k == ns)
			break;
		/* statements other than matches end a run of mergeable matches */
		if (statements[k].kind >= ST_MASQ || (is(x, "meta") && c.i + 2 < n && is(&t[c.i + 2], "set")))
			pl->seg++;
		ok = statement(&c, statements[k].kind);
	}
	if (ok && c.i >= n)
		return true;
	if (*bad >= n)
		*bad = n ? n - 1 : 0;
	return false;
}

bool nft_match_ok(const char *expr)
{
	struct tok t[TOK_MAX];
	struct nlbuf none = { .oom = true };
	struct plan pl = { .scan = true };
	const struct tok *comment;
	size_t n = tokenize(expr, strlen(expr), t, TOK_MAX), bad;

	if (!n || n > TOK_MAX || !rule_exprs(&none, NFPROTO_INET, t, n, &comment, &bad, &pl) || comment)
		return false;
	/* matches only: nothing that ends a run of matches (a verdict, a statement) */
	return pl.seg == 0;
}

/* ---- sets, chains ---- */

static bool hook_num(const struct tok *t, uint32_t *h)
{
	static const char *const names[] = { "prerouting", "input", "forward", "output", "postrouting" };
	for (uint32_t i = 0; i < 5; i++)
		if (is(t, names[i])) {
			*h = i;
			return true;
		}
	return false;
}

static bool prio_num(const struct tok *t, int32_t *p)
{
	char buf[16], *end;
	if (is(t, "srcnat"))
		*p = 100;
	else if (is(t, "dstnat"))
		*p = -100;
	else if (is(t, "filter"))
		*p = 0;
	else if (is(t, "raw"))
		*p = -300;
	else if (is(t, "mangle"))
		*p = -150;
	else {
		if (!tstr(t, buf, sizeof(buf)))
			return false;
		long v = strtol(buf, &end, 10);
		if (!*buf || *end || v < INT32_MIN || v > INT32_MAX)
			return false;
		*p = (int32_t)v;
	}
	return true;
}

/* An element key: an address, a quoted interface name, or PROTO . PORT. */
static bool elem_key(const struct tok *t, size_t n, uint8_t key[16], size_t *klen, size_t *used)
{
	char buf[64];
	struct ip a;
	uint64_t v;

	if (n >= 3 && is(&t[1], ".")) {
		int p = proto_num(&t[0]);
		if (p < 0 || !tnum(&t[2], 65535, &v))
			return false;
		memset(key, 0, 8);
		key[0] = (uint8_t)p;
		key[4] = (uint8_t)(v >> 8);
		key[5] = (uint8_t)v;
		*klen = 8;
		*used = 3;
		return true;
	}
	if (n < 1)
		return false;
	*used = 1;
	if (t[0].quoted) {
		*klen = 16;
		return ifname_key(&t[0], key);
	}
	if (!tstr(&t[0], buf, sizeof(buf)) || ip_parse(buf, &a) < 0)
		return false;
	memcpy(key, a.b, a.len);
	*klen = a.len;
	return true;
}

/* ---- one command line into one message ---- */

static bool name_tok(const struct tok *t, char *buf, size_t blen)
{
	return !t->quoted && t->len && tstr(t, buf, blen);
}

/* One command line being translated: its tokens t[0..n) ("VERB WHAT FAMILY TABLE [OBJ] ..."),
 * the family and names they give, and the message's sequence number. The commands below each
 * append their message to w; false: a form this does not know, *bad at the token. */
struct cctx {
	struct nlbuf *w;
	const struct tok *t;
	size_t n;
	uint32_t seq;
	size_t *bad;
	int fam;
	char table[TOK_MAX + 1], obj[TOK_MAX + 1];
};

#define CREATE (NLM_F_CREATE | NLM_F_ACK)

static void cmd_msg(struct cctx *c, uint16_t msg, uint16_t flags)
{
	nft_msg(c->w, (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | msg), flags, c->fam, c->seq, 0);
}

/* add table F T [{ comment "C"; }] */
static bool cmd_add_table(struct cctx *c)
{
	const struct tok *t = c->t;
	cmd_msg(c, NFT_MSG_NEWTABLE, CREATE);
	nlb_str(c->w, NFTA_TABLE_NAME, c->table);
	put_be32(c->w, NFTA_TABLE_FLAGS, 0);
	if (c->n == 8 && is(&t[4], "{") && is(&t[5], "comment") && t[6].quoted && is(&t[7], "}"))
		wb_comment(c->w, NFTA_TABLE_USERDATA, &t[6]);
	else if (c->n != 4)
		return false;
	nlb_end(c->w);
	return true;
}

/* The key types of the maps this suite writes: the words after "type" and what the kernel
 * stores for them. (Arrays, not pointers: a static-pie binary pays a relocation for each.) */
static const struct {
	char w1[11], w2[13]; /* w2: the second word of a concatenation ("w1 . w2"), else "" */
	uint16_t ktype;
	uint8_t klen, order; /* the key's byte order in nft's user data: 2 big endian, 1 host */
} map_types[] = {
	{ "ipv4_addr", "", 7, 4, 2 },
	{ "ipv6_addr", "", 8, 16, 2 },
	{ "ifname", "", 41, 16, 1 },
	{ "inet_proto", "inet_service", 12 << 6 | 13, 8, 0 },
};

/* The user data nft 1.0 stores with a map (key byte order, and for the concatenation its typeof
 * description), byte for byte: `nft list` prints the key from it. */
static void map_udata(struct nlbuf *w, uint8_t order)
{
	static const unsigned char concat[] = { 0, 4, 0,    0, 0, 0, 1, 4, 0, 0, 0, 0, 3, 8,
						0, 4, 0x0d, 0, 0, 0, 1, 0, 6, 4, 0, 0, 0, 0 };
	unsigned char ud[] = { 0, 4, order, 0, 0, 0, 1, 4, 0, 0, 0, 0, 6, 4, 0, 0, 0, 0 };
	if (order)
		nlb_put(w, NFTA_SET_USERDATA, ud, sizeof(ud));
	else
		nlb_put(w, NFTA_SET_USERDATA, concat, sizeof(concat));
}

/* add map F T NAME { type KEY : verdict; } */
static bool cmd_add_map(struct cctx *c)
{
	const struct tok *t = c->t;
	size_t n = c->n, i = 0, k;
	*c->bad = 7;
	if (n < 10 || !is(&t[5], "{") || !is(&t[6], "type"))
		return false;
	for (k = 0; k < sizeof(map_types) / sizeof(map_types[0]) && !i; k++)
		if (is(&t[7], map_types[k].w1) && !map_types[k].w2[0])
			i = 8;
		else if (is(&t[7], map_types[k].w1) && n >= 12 && is(&t[8], ".") && is(&t[9], map_types[k].w2))
			i = 10;
	if (!i)
		return false;
	k--;
	*c->bad = i;
	if (n != i + 3 || !is(&t[i], ":") || !is(&t[i + 1], "verdict") || !is(&t[i + 2], "}"))
		return false;
	cmd_msg(c, NFT_MSG_NEWSET, CREATE);
	nlb_str(c->w, NFTA_SET_TABLE, c->table);
	nlb_str(c->w, NFTA_SET_NAME, c->obj);
	put_be32(c->w, NFTA_SET_FLAGS, NFT_SET_MAP);
	put_be32(c->w, NFTA_SET_KEY_TYPE, map_types[k].ktype);
	put_be32(c->w, NFTA_SET_KEY_LEN, map_types[k].klen);
	put_be32(c->w, NFTA_SET_DATA_TYPE, NFT_DATA_VERDICT);
	put_be32(c->w, NFTA_SET_DATA_LEN, 0);
	put_be32(c->w, NFTA_SET_ID, c->seq);
	map_udata(c->w, map_types[k].order);
	nlb_end(c->w);
	return true;
}

/* add chain F T NAME [{ comment "C"; } | { type nat|filter hook H priority P; policy accept; }] */
static bool cmd_add_chain(struct cctx *c)
{
	const struct tok *t = c->t;
	size_t n = c->n;
	uint32_t hook;
	int32_t prio;
	cmd_msg(c, NFT_MSG_NEWCHAIN, CREATE);
	nlb_str(c->w, NFTA_CHAIN_TABLE, c->table);
	nlb_str(c->w, NFTA_CHAIN_NAME, c->obj);
	if (n == 5) {
		nlb_end(c->w);
		return true;
	}
	*c->bad = 5;
	if (!is(&t[5], "{") || !is(&t[n - 1], "}"))
		return false;
	if (n == 9 && is(&t[6], "comment") && t[7].quoted) {
		wb_comment(c->w, NFTA_CHAIN_USERDATA, &t[7]);
		nlb_end(c->w);
		return true;
	}
	*c->bad = 6;
	if (n != 15 || !is(&t[6], "type") || !(is(&t[7], "nat") || is(&t[7], "filter")) || !is(&t[8], "hook") ||
	    !hook_num(&t[9], &hook) || !is(&t[10], "priority") || !prio_num(&t[11], &prio) || !is(&t[12], "policy") ||
	    !is(&t[13], "accept"))
		return false;
	nlb_str(c->w, NFTA_CHAIN_TYPE, is(&t[7], "nat") ? "nat" : "filter");
	put_be32(c->w, NFTA_CHAIN_POLICY, NF_ACCEPT);
	size_t h = nest(c->w, NFTA_CHAIN_HOOK);
	put_be32(c->w, NFTA_HOOK_HOOKNUM, hook);
	put_be32(c->w, NFTA_HOOK_PRIORITY, (uint32_t)prio);
	nlb_nest_end(c->w, h);
	nlb_end(c->w);
	return true;
}

/* delete chain F T NAME | flush chain F T NAME (every rule of the chain) */
static bool cmd_del_chain(struct cctx *c)
{
	bool del = is(&c->t[0], "delete");
	if (c->n != 5)
		return false;
	cmd_msg(c, del ? NFT_MSG_DELCHAIN : NFT_MSG_DELRULE, NLM_F_ACK);
	nlb_str(c->w, del ? NFTA_CHAIN_TABLE : NFTA_RULE_TABLE, c->table);
	nlb_str(c->w, del ? NFTA_CHAIN_NAME : NFTA_RULE_CHAIN, c->obj);
	nlb_end(c->w);
	return true;
}

/* delete rule F T CHAIN handle H */
static bool cmd_del_rule(struct cctx *c)
{
	uint64_t h;
	*c->bad = 5;
	if (c->n != 7 || !is(&c->t[5], "handle") || !tnum(&c->t[6], UINT64_MAX, &h))
		return false;
	cmd_msg(c, NFT_MSG_DELRULE, NLM_F_ACK);
	nlb_str(c->w, NFTA_RULE_TABLE, c->table);
	nlb_str(c->w, NFTA_RULE_CHAIN, c->obj);
	h = htobe64(h);
	nlb_put(c->w, NFTA_RULE_HANDLE, &h, 8);
	nlb_end(c->w);
	return true;
}

/* add|insert rule F T CHAIN STATEMENTS... [comment "C"] */
static bool cmd_add_rule(struct cctx *c)
{
	const struct tok *comment;
	bool add = is(&c->t[0], "add");
	cmd_msg(c, NFT_MSG_NEWRULE, (uint16_t)(CREATE | (add ? NLM_F_APPEND : 0)));
	nlb_str(c->w, NFTA_RULE_TABLE, c->table);
	nlb_str(c->w, NFTA_RULE_CHAIN, c->obj);
	/* a first pass, writing nothing (an "out of memory" buffer), plans the merges */
	struct nlbuf none = { .oom = true };
	struct plan pl = { .scan = true };
	if (!rule_exprs(&none, c->fam, c->t + 5, c->n - 5, &comment, c->bad, &pl)) {
		*c->bad += 5;
		return false;
	}
	plan_merge(&pl);
	pl.scan = false;
	size_t ex = nest(c->w, NFTA_RULE_EXPRESSIONS);
	rule_exprs(c->w, c->fam, c->t + 5, c->n - 5, &comment, c->bad, &pl);
	nlb_nest_end(c->w, ex);
	if (comment)
		wb_comment(c->w, NFTA_RULE_USERDATA, comment);
	nlb_end(c->w);
	return true;
}

/* add element F T MAP { KEY : jump|goto CHAIN } | delete element F T MAP { KEY } */
static bool cmd_element(struct cctx *c)
{
	const struct tok *t = c->t;
	size_t n = c->n, klen, used, i;
	bool add = is(&t[0], "add");
	uint8_t key[16];
	char chain[TOK_MAX + 1];
	*c->bad = 5;
	if (n < 7 || !is(&t[5], "{") || !is(&t[n - 1], "}") || !elem_key(t + 6, n - 7, key, &klen, &used))
		return false;
	i = 6 + used;
	*c->bad = i;
	bool verdict = add && n == i + 4 && is(&t[i], ":") && (is(&t[i + 1], "jump") || is(&t[i + 1], "goto"));
	if (!(verdict || (!add && n == i + 1)) || (verdict && !name_tok(&t[i + 2], chain, sizeof(chain))))
		return false;
	cmd_msg(c, add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM, add ? CREATE : NLM_F_ACK);
	nlb_str(c->w, NFTA_SET_ELEM_LIST_TABLE, c->table);
	nlb_str(c->w, NFTA_SET_ELEM_LIST_SET, c->obj);
	size_t els = nest(c->w, NFTA_SET_ELEM_LIST_ELEMENTS), el = nest(c->w, NFTA_LIST_ELEM);
	wb_value(c->w, NFTA_SET_ELEM_KEY, key, klen);
	if (verdict) {
		size_t d = nest(c->w, NFTA_SET_ELEM_DATA), v = nest(c->w, NFTA_DATA_VERDICT);
		put_be32(c->w, NFTA_VERDICT_CODE, (uint32_t)(is(&t[i + 1], "jump") ? NFT_JUMP : NFT_GOTO));
		nlb_str(c->w, NFTA_VERDICT_CHAIN, chain);
		nlb_nest_end(c->w, v);
		nlb_nest_end(c->w, d);
	}
	nlb_nest_end(c->w, el);
	nlb_nest_end(c->w, els);
	nlb_end(c->w);
	return true;
}

/* The commands by their first two words (arrays and a switch, as the statements). */
enum { CMD_MAP, CMD_CHAIN, CMD_DEL_CHAIN, CMD_DEL_RULE, CMD_RULE, CMD_ELEMENT };
static const struct {
	char verb[7], what[8];
	uint8_t kind;
} commands[] = {
	{ "add", "map", CMD_MAP },	     { "add", "chain", CMD_CHAIN },	 { "delete", "chain", CMD_DEL_CHAIN },
	{ "flush", "chain", CMD_DEL_CHAIN }, { "delete", "rule", CMD_DEL_RULE }, { "add", "rule", CMD_RULE },
	{ "insert", "rule", CMD_RULE },	     { "add", "element", CMD_ELEMENT },	 { "delete", "element", CMD_ELEMENT },
};

static bool command_of(struct cctx *c, int kind)
{
	switch (kind) {
	case CMD_MAP:
		return cmd_add_map(c);
	case CMD_CHAIN:
		return cmd_add_chain(c);
	case CMD_DEL_CHAIN:
		return cmd_del_chain(c);
	case CMD_DEL_RULE:
		return cmd_del_rule(c);
	case CMD_RULE:
		return cmd_add_rule(c);
	default:
		return cmd_element(c);
	}
}

/* Appends the message for the command t[0..n) with sequence seq. false: not a form this knows
 * (*bad: the token). */
static bool command(struct nlbuf *w, const struct tok *t, size_t n, uint32_t seq, size_t *bad)
{
	struct cctx c = { .w = w, .t = t, .n = n, .seq = seq, .bad = bad };

	*bad = 0;
	if (n < 4 || !(is(&t[2], "inet") || is(&t[2], "bridge")))
		return false;
	c.fam = is(&t[2], "inet") ? NFPROTO_INET : NFPROTO_BRIDGE;
	*bad = 3;
	if (!name_tok(&t[3], c.table, sizeof(c.table)))
		return false;
	if (is(&t[0], "add") && is(&t[1], "table"))
		return cmd_add_table(&c);
	*bad = 4;
	if (n < 5 || !name_tok(&t[4], c.obj, sizeof(c.obj)))
		return false;
	for (size_t k = 0; k < sizeof(commands) / sizeof(commands[0]); k++)
		if (is(&t[0], commands[k].verb) && is(&t[1], commands[k].what))
			return command_of(&c, commands[k].kind);
	return false;
}

/* ---- the batch ---- */

struct line {
	const char *s;
	size_t len;
};

/* The command lines translated into w, one message each, numbered base+1, base+2... after the
 * BATCH_BEGIN (base); lines[] keeps each line for the error messages. 0, or -1 with e filled. */
static int batch_build(struct nlbuf *w, const char *cmds, uint32_t base, struct line **lines, size_t *nl, struct cni_error *e)
{
	struct tok t[TOK_MAX];
	size_t cap = 0;

	nft_msg(w, NFNL_MSG_BATCH_BEGIN, 0, AF_UNSPEC, base, NFNL_SUBSYS_NFTABLES);
	nlb_end(w);
	for (const char *p = cmds; *p;) {
		size_t len = strcspn(p, "\n"), cnt, bad;
		const char *ln = p;
		p += len + (p[len] == '\n');
		if (!len)
			continue;
		struct line *slot = push((void **)lines, nl, &cap, sizeof(*slot));
		if (!slot)
			return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		*slot = (struct line){ ln, len };
		cnt = tokenize(ln, len, t, TOK_MAX);
		if (cnt > TOK_MAX || !command(w, t, cnt, base + (uint32_t)*nl, &bad)) {
			const char *at = cnt <= TOK_MAX && bad < cnt ? t[bad].s : ln;
			return cni_errf(e, CNI_ERR_INVALID_CONFIG, "nftables: cannot express \"%.*s\" (at \"%.*s\")", (int)len,
					ln, (int)(ln + len - at), at);
		}
	}
	return 0;
}

/* What the kernel answered to a batch numbered base (begin), base+1..base+nl (the lines),
 * base+nl+1 (end). */
struct answers {
	int first_err, batch_err;
	size_t err_line;
	bool all_absent;
};

static void answer(struct answers *a, const struct nlmsghdr *m, uint32_t base, size_t nl)
{
	int err;
	if (m->nlmsg_type != NLMSG_ERROR || m->nlmsg_len < NLMSG_LENGTH(sizeof(int)))
		return;
	memcpy(&err, NLMSG_DATA(m), sizeof(int));
	if (err >= 0)
		return;
	/* the batch's begin or end refused: no nf_tables at all, or the commit failed */
	if (m->nlmsg_seq == base || m->nlmsg_seq == base + 1 + nl) {
		a->batch_err = err;
		return;
	}
	if (m->nlmsg_seq < base || m->nlmsg_seq > base + nl)
		return;
	a->all_absent &= err == -ENOENT;
	if (!a->first_err || m->nlmsg_seq - base - 1 < a->err_line) {
		a->first_err = err;
		a->err_line = m->nlmsg_seq - base - 1;
	}
}

/* Send the batch (w up to blen) and the GETGEN after it (numbered last, answered after the whole
 * batch: the end of the replies), and read every answer. 0, or -1 with e filled. */
static int batch_talk(struct nft *n, const struct nlbuf *w, size_t blen, uint32_t base, size_t nl, uint32_t last,
		      struct answers *a, struct cni_error *e)
{
	int r;
	/* Every message is acknowledged, and the acks queue up until the batch is committed: a
	 * large batch (a GC of hundreds of attachments) would overrun the default receive buffer
	 * (ENOBUFS, the answers lost). Each ack costs about 1 KB of buffer; room for all of them. */
	if (nl > 64) {
		int want = (int)((nl + 2) * 2048 > 64u << 20 ? 64u << 20 : (nl + 2) * 2048);
		if (setsockopt(n->s.fd, SOL_SOCKET, SO_RCVBUFFORCE, &want, sizeof(want)) < 0)
			setsockopt(n->s.fd, SOL_SOCKET, SO_RCVBUF, &want, sizeof(want));
	}
	/* apart: the kernel reads nothing after a batch's end in the same datagram */
	if ((r = nls_send(&n->s, w->b, blen)) < 0 || (r = nls_send(&n->s, w->b + blen, w->len - blen)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: sending a batch of %zu commands: %s", nl, cni_strerror(-r));
	for (;;) {
		long got = nls_recv(&n->s);
		if (got == -EMSGSIZE)
			return cni_errf(e, CNI_ERR_KERNEL, "nftables: an answer to a batch was truncated");
		if (got < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "nftables: reading the answers to a batch: %s",
					cni_strerror((int)-got));
		size_t left = (size_t)got;
		bool done = false;
		for (const struct nlmsghdr *m = (const struct nlmsghdr *)(void *)n->s.rbuf; NLMSG_OK(m, left);
		     m = NLMSG_NEXT(m, left)) {
			if (m->nlmsg_seq == last && (m->nlmsg_type == NLMSG_ERROR || m->nlmsg_type == NLMSG_DONE))
				done = true;
			else
				answer(a, m, base, nl);
		}
		if (done)
			return 0;
	}
}

/* The first failed line (or the batch) as a CNI error. */
static void batch_error(const struct answers *a, const struct line *lines, struct cni_error *e)
{
	int err = a->first_err ? -a->first_err : -a->batch_err;
	const struct line *l = a->first_err ? &lines[a->err_line] : &(struct line){ "the batch", strlen("the batch") };
	if (err == EPERM)
		cni_errf(e, CNI_ERR_KERNEL, "nftables: %s (needs CAP_NET_ADMIN) in \"%.*s\"", cni_strerror(err), (int)l->len,
			 l->s);
	else if (err == EPROTONOSUPPORT || err == EOPNOTSUPP || err == EAFNOSUPPORT)
		cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables: the kernel lacks nf_tables or a needed module: %s in \"%.*s\"",
			 cni_strerror(err), (int)l->len, l->s);
	else
		cni_errf(e, CNI_ERR_KERNEL, "nftables: %s in \"%.*s\"", cni_strerror(err), (int)l->len, l->s);
}

/* Send the commands as one batch; ended (committed) unless dry, when the kernel validates each
 * message and then drops the transaction. 1 = done, 0 = an object was absent (ENOENT) and
 * absent_ok, -1 = error. */
static int batch(struct nft *n, const char *cmds, bool dry, bool absent_ok, struct cni_error *e)
{
	struct nlbuf w = { 0 };
	struct line *lines = NULL;
	size_t nl = 0;
	struct answers a = { .all_absent = true };
	uint32_t base = n->s.seq + 1;
	int rc = -1;

	if (batch_build(&w, cmds, base, &lines, &nl, e) < 0)
		goto out;
	if (!nl) {
		rc = 1;
		goto out;
	}
	if (!dry) {
		nft_msg(&w, NFNL_MSG_BATCH_END, 0, AF_UNSPEC, base + 1 + (uint32_t)nl, NFNL_SUBSYS_NFTABLES);
		nlb_end(&w);
	}
	uint32_t last = base + 2 + (uint32_t)nl;
	size_t blen = w.len;
	nft_msg(&w, NFNL_SUBSYS_NFTABLES << 8 | NFT_MSG_GETGEN, NLM_F_ACK, AF_UNSPEC, last, 0);
	nlb_end(&w);
	if (w.oom) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	n->s.seq = last;
	if (batch_talk(n, &w, blen, base, nl, last, &a, e) < 0)
		goto out;
	if (!a.first_err && !a.batch_err)
		rc = 1;
	else if (a.first_err && absent_ok && a.all_absent)
		rc = 0;
	else
		batch_error(&a, lines, e);
out:
	nlb_free(&w);
	free(lines);
	return rc;
}

int nft_run(struct nft *n, const char *cmds, struct cni_error *e)
{
	return batch(n, cmds, false, false, e) < 0 ? -1 : 0;
}

int nft_run_quiet(struct nft *n, const char *cmds, struct cni_error *e)
{
	return batch(n, cmds, false, true, e);
}

int nft_check(struct nft *n, const char *cmds, struct cni_error *e)
{
	return batch(n, cmds, true, false, e) < 0 ? -1 : 0;
}

/* ---- the lock ---- */

int nft_lock(struct cni_error *e)
{
	int fd;

	if (mkdir(NFT_LOCK_DIR, 0755) < 0 && errno != EEXIST)
		return cni_errf(e, CNI_ERR_IO, "creating %s: %s", NFT_LOCK_DIR, cni_strerror(errno));
	fd = open(NFT_LOCK_FILE, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cni_errf(e, CNI_ERR_IO, "opening %s: %s", NFT_LOCK_FILE, cni_strerror(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int err = errno;
			close(fd);
			return cni_errf(e, CNI_ERR_IO, "locking %s: %s", NFT_LOCK_FILE, cni_strerror(err));
		}
	}
	return fd;
}

void nft_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

/* Text that goes inside an nft double-quoted string: no quote, backslash or control
 * character can end it early, and at most NFT_COMMENT_MAX bytes. The names skel accepts never
 * contain such characters; this keeps the command well-formed whatever a caller passes. */
void nft_comment_clean(char *s)
{
	size_t i;
	for (i = 0; i < NFT_COMMENT_MAX && s[i]; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
			s[i] = '_';
	s[i] = '\0';
}

/* ---- whole-table reads over netlink (GC) ---- */

/* A dump: retried from scratch while a concurrent change interrupts it. `reset` empties the
 * collection before each attempt. */
static int dump(struct nft *n, struct nlbuf *r, const char *what, nls_cb cb, void *arg, void (*reset)(void *),
		struct cni_error *e)
{
	int rc = -2;
	for (int attempt = 0; attempt < 10 && rc == -2; attempt++) {
		reset(arg);
		rc = talk(n, r, what, cb, arg, e);
	}
	if (rc == -2)
		rc = cni_errf(e, CNI_ERR_TRY_AGAIN, "nftables: %s kept changing while being read", what);
	return rc;
}

struct chains_arg {
	const char *table;
	struct nft_chain_info *v;
	size_t n, cap;
};

static void chains_reset(void *arg)
{
	((struct chains_arg *)arg)->n = 0;
}

static int chains_cb(const struct nlmsghdr *h, void *arg)
{
	struct chains_arg *ca = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	const struct nlattr *tb = nla_find(a, len, NFTA_CHAIN_TABLE), *nm = nla_find(a, len, NFTA_CHAIN_NAME);
	char t[NFT_NAME_LEN];

	/* the kernel dumps every chain of the family: ours are those of the table asked for */
	astr(tb, t, sizeof(t));
	if (!nm || strcmp(t, ca->table) != 0)
		return 0;
	struct nft_chain_info *ci = push((void **)&ca->v, &ca->n, &ca->cap, sizeof(*ci));
	if (!ci)
		return -ENOMEM;
	astr(nm, ci->name, sizeof(ci->name));
	udata_comment(nla_find(a, len, NFTA_CHAIN_USERDATA), ci->comment, sizeof(ci->comment));
	return 0;
}

int nft_list_chains(struct nft *n, int family, const char *table, struct nft_chain_info **out, size_t *cnt, struct cni_error *e)
{
	struct chains_arg ca = { table, NULL, 0, 0 };
	struct nlbuf r = { 0 };
	char what[160];
	int rc;

	*out = NULL;
	*cnt = 0;
	snprintf(what, sizeof(what), "the chains of table %s", table);
	/* the chain dump takes no table filter: one dump of the family's chains */
	req_init(&r, NFT_MSG_GETCHAIN, NLM_F_DUMP, family);
	rc = dump(n, &r, what, chains_cb, &ca, chains_reset, e);
	nlb_free(&r);
	if (rc < 0) {
		free(ca.v);
		return -1;
	}
	*out = ca.v;
	*cnt = ca.n;
	return 0;
}

struct map_arg {
	struct nft_map_elem *v;
	size_t n, cap;
};

static void map_reset(void *arg)
{
	((struct map_arg *)arg)->n = 0;
}

/* One reply carries many elements: ELEMENTS { LIST_ELEM { KEY { VALUE }, DATA { VERDICT {
 * CODE, CHAIN } } }, LIST_ELEM ... }. */
static int map_cb(const struct nlmsghdr *h, void *arg)
{
	struct map_arg *ma = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	const struct nlattr *els = nla_find(a, len, NFTA_SET_ELEM_LIST_ELEMENTS);

	if (!els)
		return 0;
	nla_each (el, els) {
		if ((el->nla_type & NLA_TYPE_MASK) != NFTA_LIST_ELEM)
			continue;
		const struct nlattr *k = nla_child(el, NFTA_SET_ELEM_KEY);
		const struct nlattr *d = nla_child(el, NFTA_SET_ELEM_DATA);
		const struct nlattr *vd = NULL, *code = NULL;
		if (k)
			k = nla_child(k, NFTA_DATA_VALUE);
		if (!k || nla_plen(k) > sizeof(ma->v->key))
			continue;
		struct nft_map_elem *me = push((void **)&ma->v, &ma->n, &ma->cap, sizeof(*me));
		if (!me)
			return -ENOMEM;
		memset(me, 0, sizeof(*me));
		me->klen = nla_plen(k);
		memcpy(me->key, nla_payload(k), me->klen);
		if (d && (vd = nla_child(d, NFTA_DATA_VERDICT))) {
			if ((code = nla_child(vd, NFTA_VERDICT_CODE)) && nla_plen(code) == 4) {
				uint32_t be;
				memcpy(&be, nla_payload(code), 4);
				me->verdict = (int32_t)be32toh(be);
				me->has_verdict = true;
			}
			astr(nla_child(vd, NFTA_VERDICT_CHAIN), me->chain, sizeof(me->chain));
		}
	}
	return 0;
}

static int elem_cmp(const void *x, const void *y)
{
	const struct nft_map_elem *a = x, *b = y;
	if (a->klen != b->klen)
		return a->klen < b->klen ? -1 : 1;
	return memcmp(a->key, b->key, a->klen);
}

/* A key appears once in a map, but a dump can show it twice: the kernel walks a hash set's
 * rhashtable, and a walk that meets the table being resized (a worker shrinks it after deletes,
 * with no generation change to mark the dump interrupted) goes on and may return an element
 * again. Seen about once in 30,000 dumps while elements were deleted; a DEL that wrote
 * "delete element" twice for one key failed with ENOENT. Sorted by key, repeats dropped. */
static size_t elem_unique(struct nft_map_elem *v, size_t n)
{
	size_t k = 0;
	if (n < 2)
		return n;
	qsort(v, n, sizeof(*v), elem_cmp);
	for (size_t i = 1; i < n; i++)
		if (elem_cmp(&v[k], &v[i]) != 0)
			v[++k] = v[i];
	return k + 1;
}

int nft_list_map(struct nft *n, int family, const char *table, const char *map, struct nft_map_elem **out, size_t *cnt,
		 struct cni_error *e)
{
	struct map_arg ma = { 0 };
	struct nlbuf r = { 0 };
	char what[160];
	int rc;

	*out = NULL;
	*cnt = 0;
	snprintf(what, sizeof(what), "the elements of map %s %s", table, map);
	req_init(&r, NFT_MSG_GETSETELEM, NLM_F_DUMP, family);
	nlb_str(&r, NFTA_SET_ELEM_LIST_TABLE, table);
	nlb_str(&r, NFTA_SET_ELEM_LIST_SET, map);
	rc = dump(n, &r, what, map_cb, &ma, map_reset, e);
	nlb_free(&r);
	if (rc != 1) {
		free(ma.v);
		return rc < 0 ? -1 : 0;
	}
	*out = ma.v;
	*cnt = elem_unique(ma.v, ma.n);
	return 1;
}
