/* nf_tables for the SNAT and spoof-check rules: writes through libnftables (dlopen'ed on first
 * use, so what never writes never maps it), point reads and GC's dumps straight over netlink. */
#include "nft.h"

#include <dlfcn.h>
#include <endian.h>
#include <errno.h>
#include <stdarg.h>
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

#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <nftables/libnftables.h>

#define NFT_LIB "libnftables.so.1"
#define NFT_LOCK_DIR "/run/cni-c"
#define NFT_LOCK_FILE NFT_LOCK_DIR "/nft.lock"
#define RECV_SIZE 65536 /* larger than any skb a netlink dump fills */

/* The function types come from libnftables' own header, so a changed signature fails the
 * build instead of corrupting a call; the binary still has no link-time dependency on it. */
struct nft {
	int sock;      /* NETLINK_NETFILTER, for the reads */
	uint32_t seq;
	char *rbuf;    /* RECV_SIZE */
	void *lib;     /* NULL until the first libnftables call */
	struct nft_ctx *ctx;
	__typeof__(&nft_ctx_new) ctx_new;
	__typeof__(&nft_ctx_free) ctx_free;
	__typeof__(&nft_ctx_output_set_flags) set_flags;
	__typeof__(&nft_ctx_set_dry_run) set_dry_run;
	__typeof__(&nft_ctx_buffer_output) buffer_output;
	__typeof__(&nft_ctx_buffer_error) buffer_error;
	__typeof__(&nft_ctx_get_output_buffer) get_output;
	__typeof__(&nft_ctx_get_error_buffer) get_error;
	__typeof__(&nft_run_cmd_from_buffer) run_cmd;
};

int nft_open(struct nft **out, struct cni_error *e)
{
	struct nft *n = calloc(1, sizeof(*n));

	*out = NULL;
	if (!n || !(n->rbuf = malloc(RECV_SIZE))) {
		free(n);
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	}
	n->sock = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (n->sock < 0) {
		int err = errno;
		free(n->rbuf);
		free(n);
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables is not available: no netfilter netlink socket: %s",
				strerror(err));
	}
	/* The kernel answers at once; a reply that never comes must not hang a CNI verb. */
	struct timeval tmo = { .tv_sec = 30 };
	setsockopt(n->sock, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	*out = n;
	return 0;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	/* Closing a socket that committed a deletion waits for an RCU grace period in the
	 * kernel (nf_tables flushes its destroy work on NETLINK_URELEASE): ~10 ms, once. */
	if (n->ctx)
		n->ctx_free(n->ctx);
	if (n->lib)
		dlclose(n->lib);
	close(n->sock);
	free(n->rbuf);
	free(n);
}

/* ---- libnftables, loaded on first use ---- */

static int load(struct nft *n, struct cni_error *e)
{
	void *lib;

	if (n->ctx)
		return 0;
	/* RTLD_LOCAL: its symbols (and libnftnl's, libmnl's) stay out of our namespace. */
	if (!(lib = dlopen(NFT_LIB, RTLD_NOW | RTLD_LOCAL)))
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables is not available: cannot load " NFT_LIB
				" (Debian package libnftables1): %s", dlerror());
#define SYM(field, name)                                                                                   \
	do {                                                                                               \
		if (!(*(void **)&n->field = dlsym(lib, name))) {                                           \
			dlclose(lib);                                                                      \
			return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables is not available: " NFT_LIB   \
					" lacks the symbol " name);                                        \
		}                                                                                  \
	} while (0)
	SYM(ctx_new, "nft_ctx_new");
	SYM(ctx_free, "nft_ctx_free");
	SYM(set_flags, "nft_ctx_output_set_flags");
	SYM(set_dry_run, "nft_ctx_set_dry_run");
	SYM(buffer_output, "nft_ctx_buffer_output");
	SYM(buffer_error, "nft_ctx_buffer_error");
	SYM(get_output, "nft_ctx_get_output_buffer");
	SYM(get_error, "nft_ctx_get_error_buffer");
	SYM(run_cmd, "nft_run_cmd_from_buffer");
#undef SYM
	struct nft_ctx *ctx = n->ctx_new(NFT_CTX_DEFAULT);
	if (!ctx) {
		dlclose(lib);
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables is not available: nft_ctx_new failed");
	}
	if (n->buffer_output(ctx) < 0 || n->buffer_error(ctx) < 0) {
		n->ctx_free(ctx);
		dlclose(lib);
		return cni_errf(e, CNI_ERR_INTERNAL, "nftables: cannot buffer libnftables output");
	}
	n->lib = lib;
	n->ctx = ctx;
	return 0;
}

/* The reason and the command of nft's first complaint. Its error output reads
 *   Error: Could not process rule: No such file or directory
 *   delete chain inet t nope
 *                       ^^^^
 * (warnings, "# Warning: ...", may come first). */
static void parse_error(const char *err, char *why, size_t wl, char *cmd, size_t cl)
{
	const char *p = err ? strstr(err, "Error: ") : NULL;
	size_t l;

	why[0] = cmd[0] = '\0';
	if (!p) {
		l = err ? strcspn(err, "\n") : 0;
		snprintf(why, wl, "%.*s", (int)l, l ? err : "failed without a message");
		return;
	}
	p += strlen("Error: ");
	l = strcspn(p, "\n");
	snprintf(why, wl, "%.*s", (int)l, p);
	if (p[l] == '\n' && strncmp(p + l + 1, "Error", 5) != 0) {
		p += l + 1;
		snprintf(cmd, cl, "%.*s", (int)strcspn(p, "\n"), p);
	}
}

/* One call into libnftables. Returns 1 when it ran, 0 when it failed because the object is
 * absent and `absent_ok`, -1 otherwise. The error buffer is drained on every call (and the
 * output by the callers), since libnftables appends until read and a stale message would be
 * blamed on the next command. */
static int run(struct nft *n, const char *cmds, unsigned flags, bool dry, bool absent_ok, struct cni_error *e)
{
	char why[256], cmd[200];
	int rc;

	if (load(n, e) < 0)
		return -1;
	n->set_flags(n->ctx, flags);
	n->set_dry_run(n->ctx, dry);
	rc = n->run_cmd(n->ctx, cmds);
	const char *err = n->get_error(n->ctx);
	if (rc == 0)
		return 1;
	n->get_output(n->ctx);
	if (absent_ok && err && strstr(err, "No such file or directory"))
		return 0;
	parse_error(err, why, sizeof(why), cmd, sizeof(cmd));
	const char *q = *cmd ? " in \"" : "", *qe = *cmd ? "\"" : "";
	if (strstr(why, "Operation not permitted"))
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: %s (needs CAP_NET_ADMIN)%s%s%s", why, q, cmd, qe);
	/* What a kernel without nf_tables, or without one of its modules, answers. */
	if (strstr(why, "Protocol not supported") || strstr(why, "Operation not supported") ||
	    strstr(why, "Address family not supported"))
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables: the kernel lacks nf_tables or a needed module: %s%s%s%s",
				why, q, cmd, qe);
	return cni_errf(e, CNI_ERR_KERNEL, "nftables: %s%s%s%s", why, q, cmd, qe);
}

int nft_run(struct nft *n, const char *cmds, struct cni_error *e)
{
	int r = run(n, cmds, 0, false, false, e);
	if (r > 0)
		n->get_output(n->ctx);
	return r < 0 ? -1 : 0;
}

int nft_run_quiet(struct nft *n, const char *cmds, struct cni_error *e)
{
	int r = run(n, cmds, 0, false, true, e);
	if (r > 0)
		n->get_output(n->ctx);
	return r;
}

int nft_check(struct nft *n, const char *cmds, struct cni_error *e)
{
	int r = run(n, cmds, 0, true, false, e);
	if (r > 0)
		n->get_output(n->ctx);
	return r < 0 ? -1 : 0;
}

/* ---- point reads over netlink ---- */

/* A request: header, nfgenmsg, then attributes (nests closed by nest_end). */
struct req {
	alignas(struct nlmsghdr) char b[512];
	size_t len;
	bool overflow;
};

static void req_init(struct req *r, uint16_t msg, uint16_t flags, int family, uint32_t seq)
{
	struct nlmsghdr *h = (struct nlmsghdr *)r->b;
	struct nfgenmsg *g = (struct nfgenmsg *)NLMSG_DATA(h);

	memset(r->b, 0, sizeof(r->b));
	h->nlmsg_type = (uint16_t)(NFNL_SUBSYS_NFTABLES << 8 | msg);
	h->nlmsg_flags = (uint16_t)(NLM_F_REQUEST | flags);
	h->nlmsg_seq = seq;
	g->nfgen_family = (uint8_t)family;
	g->version = NFNETLINK_V0;
	r->len = NLMSG_SPACE(sizeof(*g));
	r->overflow = false;
}

static struct nlattr *put(struct req *r, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)(r->b + r->len);
	if (r->len + NLA_ALIGN(NLA_HDRLEN + len) > sizeof(r->b)) {
		r->overflow = true;
		return NULL;
	}
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
	r->len += NLA_ALIGN(a->nla_len);
	return a;
}

static void put_str(struct req *r, uint16_t type, const char *s) { put(r, type, s, strlen(s) + 1); }
static struct nlattr *nest(struct req *r, uint16_t type) { return put(r, type | NLA_F_NESTED, NULL, 0); }
static void nest_end(struct req *r, struct nlattr *a)
{
	if (a)
		a->nla_len = (uint16_t)(r->b + r->len - (char *)a);
}

/* The attribute of `type` among those in [data, data+len), or NULL. */
static const struct nlattr *attr(const void *data, size_t len, int type)
{
	const char *p = data;
	while (len >= NLA_HDRLEN) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > len)
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		size_t step = NLA_ALIGN(a->nla_len);
		if (step >= len)
			return NULL;
		p += step;
		len -= step;
	}
	return NULL;
}
static const void *adata(const struct nlattr *a) { return (const char *)a + NLA_HDRLEN; }
static size_t alen(const struct nlattr *a) { return a->nla_len - NLA_HDRLEN; }

/* Attributes of a reply message (after its nfgenmsg). */
static const void *msg_attrs(const struct nlmsghdr *h, size_t *len)
{
	size_t off = NLMSG_SPACE(sizeof(struct nfgenmsg));
	*len = h->nlmsg_len > off ? h->nlmsg_len - off : 0;
	return (const char *)h + off;
}

/* libnftnl's user data, where nft keeps comments: TLVs of {u8 type, u8 len, value}; the
 * comment is type 0 (NFTNL_UDATA_{CHAIN,RULE}_COMMENT), NUL-terminated. */
static void udata_comment(const struct nlattr *ud, char *out, size_t olen)
{
	out[0] = '\0';
	if (!ud || !olen)
		return;
	const unsigned char *p = adata(ud), *end = p + alen(ud);
	while (p + 2 <= end && p + 2 + p[1] <= end) {
		if (p[0] == 0) {
			size_t l = strnlen((const char *)p + 2, p[1]);
			snprintf(out, olen, "%.*s", (int)l, (const char *)p + 2);
			return;
		}
		p += 2 + p[1];
	}
}

typedef int (*msg_cb)(const struct nlmsghdr *h, void *arg);

/* Send one request and feed each reply message to cb. 1 = done, 0 = ENOENT, -1 = error,
 * -2 = a dump was interrupted by a concurrent change (the caller starts over). */
static int talk(struct nft *n, struct req *r, const char *what, msg_cb cb, void *arg, struct cni_error *e)
{
	struct nlmsghdr *h = (struct nlmsghdr *)r->b;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	bool intr = false;

	if (r->overflow)
		return cni_errf(e, CNI_ERR_INTERNAL, "nftables: request for %s too long", what);
	h->nlmsg_len = (uint32_t)r->len;
	h->nlmsg_seq = ++n->seq;
	if (sendto(n->sock, r->b, r->len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: asking for %s: %s", what, strerror(errno));
	for (;;) {
		ssize_t got = recv(n->sock, n->rbuf, RECV_SIZE, MSG_TRUNC);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return cni_errf(e, CNI_ERR_KERNEL, "nftables: reading %s: %s", what, strerror(errno));
		if (got > RECV_SIZE)
			return cni_errf(e, CNI_ERR_KERNEL, "nftables: reply for %s truncated", what);
		size_t left = (size_t)got;
		for (const struct nlmsghdr *m = (const struct nlmsghdr *)n->rbuf; NLMSG_OK(m, left); m = NLMSG_NEXT(m, left)) {
			if (m->nlmsg_seq != n->seq)
				continue; /* a late answer to an earlier request */
			intr |= (m->nlmsg_flags & NLM_F_DUMP_INTR) != 0;
			if (m->nlmsg_type == NLMSG_DONE || m->nlmsg_type == NLMSG_ERROR) {
				int err = 0;
				if (m->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
					memcpy(&err, NLMSG_DATA(m), sizeof(int));
				if (err == -ENOENT)
					return 0;
				if (err < 0)
					return cni_errf(e, err == -EPERM ? CNI_ERR_KERNEL : CNI_ERR_NOT_AVAILABLE,
							"nftables: reading %s: %s%s", what, strerror(-err),
							err == -EPERM ? " (needs CAP_NET_ADMIN)" : "");
				return intr ? -2 : 1;
			}
			if (cb(m, arg) < 0)
				return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		}
	}
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
	udata_comment(attr(a, len, NFTA_CHAIN_USERDATA), c->comment, c->clen);
	return 0;
}

int nft_get_chain(struct nft *n, int family, const char *table, const char *chain, char *comment, size_t clen,
		  struct cni_error *e)
{
	struct req r;
	char dummy[1];
	struct chain_arg c = { comment ? comment : dummy, comment ? clen : sizeof(dummy), false };
	char what[160];
	int rc;

	snprintf(what, sizeof(what), "chain %s %s", table, chain);
	req_init(&r, NFT_MSG_GETCHAIN, NLM_F_ACK, family, 0);
	put_str(&r, NFTA_CHAIN_TABLE, table);
	put_str(&r, NFTA_CHAIN_NAME, chain);
	if (comment && clen)
		comment[0] = '\0';
	rc = talk(n, &r, what, chain_cb, &c, e);
	return rc == 1 ? (c.seen ? 1 : 0) : rc < 0 ? -1 : rc;
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
	const struct nlattr *hd = attr(a, len, NFTA_RULE_HANDLE);

	if (ra->n == ra->cap) {
		size_t cap = ra->cap ? ra->cap * 2 : 8;
		struct nft_rule_info *v = realloc(ra->v, cap * sizeof(*v));
		if (!v)
			return -1;
		ra->v = v;
		ra->cap = cap;
	}
	struct nft_rule_info *ri = &ra->v[ra->n++];
	ri->handle = 0;
	if (hd && alen(hd) == 8) {
		uint64_t be;
		memcpy(&be, adata(hd), 8);
		ri->handle = be64toh(be);
	}
	udata_comment(attr(a, len, NFTA_RULE_USERDATA), ri->comment, sizeof(ri->comment));
	return 0;
}

int nft_get_rules(struct nft *n, int family, const char *table, const char *chain, struct nft_rule_info **out,
		  size_t *cnt, struct cni_error *e)
{
	struct rules_arg ra = { 0 };
	struct req r;
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
		req_init(&r, NFT_MSG_GETRULE, NLM_F_DUMP, family, 0);
		put_str(&r, NFTA_RULE_TABLE, table);
		put_str(&r, NFTA_RULE_CHAIN, chain);
		if ((rc = talk(n, &r, what, rule_cb, &ra, e)) != -2)
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
	const struct nlattr *x = attr(a, len, NFTA_SET_ELEM_LIST_ELEMENTS);
	if (x)
		x = attr(adata(x), alen(x), NFTA_LIST_ELEM);
	if (x)
		x = attr(adata(x), alen(x), NFTA_SET_ELEM_DATA);
	if (x)
		x = attr(adata(x), alen(x), NFTA_DATA_VERDICT);
	ea->seen = true;
	ea->target[0] = '\0';
	if (x && (x = attr(adata(x), alen(x), NFTA_VERDICT_CHAIN)))
		snprintf(ea->target, ea->tlen, "%.*s", (int)strnlen(adata(x), alen(x)), (const char *)adata(x));
	return 0;
}

int nft_get_map_elem(struct nft *n, int family, const char *table, const char *map, const void *key, size_t klen,
		     char *target, size_t tlen, struct cni_error *e)
{
	struct elem_arg ea = { target, tlen, false };
	struct nlattr *elems, *el, *k;
	struct req r;
	char what[160];
	int rc;

	if (!tlen)
		return cni_errf(e, CNI_ERR_INTERNAL, "nftables: no room for an element's target");
	snprintf(what, sizeof(what), "an element of map %s %s", table, map);
	req_init(&r, NFT_MSG_GETSETELEM, NLM_F_ACK, family, 0);
	put_str(&r, NFTA_SET_ELEM_LIST_TABLE, table);
	put_str(&r, NFTA_SET_ELEM_LIST_SET, map);
	elems = nest(&r, NFTA_SET_ELEM_LIST_ELEMENTS);
	el = nest(&r, NFTA_LIST_ELEM);
	k = nest(&r, NFTA_SET_ELEM_KEY);
	put(&r, NFTA_DATA_VALUE, key, klen);
	nest_end(&r, k);
	nest_end(&r, el);
	nest_end(&r, elems);
	rc = talk(n, &r, what, elem_cb, &ea, e);
	return rc == 1 ? (ea.seen ? 1 : 0) : rc < 0 ? -1 : rc;
}

/* ---- the lock ---- */

int nft_lock(struct cni_error *e)
{
	int fd;

	if (mkdir(NFT_LOCK_DIR, 0755) < 0 && errno != EEXIST)
		return cni_errf(e, CNI_ERR_IO, "creating %s: %s", NFT_LOCK_DIR, strerror(errno));
	fd = open(NFT_LOCK_FILE, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cni_errf(e, CNI_ERR_IO, "opening %s: %s", NFT_LOCK_FILE, strerror(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int err = errno;
			close(fd);
			return cni_errf(e, CNI_ERR_IO, "locking %s: %s", NFT_LOCK_FILE, strerror(err));
		}
	}
	return fd;
}

void nft_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}

void nft_sb_add(struct nft_sb *b, const char *fmt, ...)
{
	va_list ap;
	int w;

	if (b->oom)
		return;
	for (;;) {
		size_t room = b->cap - b->n;
		va_start(ap, fmt);
		w = vsnprintf(b->s ? b->s + b->n : NULL, room, fmt, ap);
		va_end(ap);
		if (w < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)w < room) {
			b->n += (size_t)w;
			return;
		}
		size_t cap = b->cap ? b->cap * 2 : 4096;
		while (cap < b->n + (size_t)w + 1)
			cap *= 2;
		char *s = realloc(b->s, cap);
		if (!s) {
			b->oom = true;
			return;
		}
		b->s = s;
		b->cap = cap;
	}
}

/* Text that goes inside an nft double-quoted string: no quote, backslash or control
 * character can end it early, and at most NFT_COMMENT_MAX bytes. The names skel accepts never
 * contain such characters; this keeps the command well-formed whatever a caller passes. */
void nft_comment_clean(char *s)
{
	size_t i;
	for (i = 0; s[i] && i < NFT_COMMENT_MAX; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
			s[i] = '_';
	s[i] = '\0';
}

/* ---- whole-table reads over netlink (GC) ---- */

/* Each attribute of `type` among those in [data, data+len), in order: *it starts NULL. */
static const struct nlattr *attr_next(const void *data, size_t len, int type, const struct nlattr *it)
{
	const char *p = data, *end = p + len;
	if (it)
		p = (const char *)it + NLA_ALIGN(it->nla_len);
	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *a = (const struct nlattr *)p;
		if (a->nla_len < NLA_HDRLEN || a->nla_len > (size_t)(end - p))
			return NULL;
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
		p += NLA_ALIGN(a->nla_len);
	}
	return NULL;
}

/* A string attribute into out (cut to olen - 1 bytes); "" when absent. */
static void astr(const struct nlattr *a, char *out, size_t olen)
{
	if (a)
		snprintf(out, olen, "%.*s", (int)strnlen(adata(a), alen(a)), (const char *)adata(a));
	else
		out[0] = '\0';
}

/* A dump: retried from scratch while a concurrent change interrupts it. `reset` empties the
 * collection before each attempt. */
static int dump(struct nft *n, struct req *r, const char *what, msg_cb cb, void *arg, void (*reset)(void *),
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

static void chains_reset(void *arg) { ((struct chains_arg *)arg)->n = 0; }

static int chains_cb(const struct nlmsghdr *h, void *arg)
{
	struct chains_arg *ca = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	const struct nlattr *tb = attr(a, len, NFTA_CHAIN_TABLE), *nm = attr(a, len, NFTA_CHAIN_NAME);
	char t[NFT_NAME_LEN];

	/* the kernel dumps every chain of the family: ours are those of the table asked for */
	astr(tb, t, sizeof(t));
	if (!nm || strcmp(t, ca->table) != 0)
		return 0;
	if (ca->n == ca->cap) {
		size_t cap = ca->cap ? ca->cap * 2 : 32;
		struct nft_chain_info *v = realloc(ca->v, cap * sizeof(*v));
		if (!v)
			return -1;
		ca->v = v;
		ca->cap = cap;
	}
	struct nft_chain_info *ci = &ca->v[ca->n++];
	astr(nm, ci->name, sizeof(ci->name));
	udata_comment(attr(a, len, NFTA_CHAIN_USERDATA), ci->comment, sizeof(ci->comment));
	return 0;
}

int nft_list_chains(struct nft *n, int family, const char *table, struct nft_chain_info **out, size_t *cnt,
		    struct cni_error *e)
{
	struct chains_arg ca = { table, NULL, 0, 0 };
	struct req r;
	char what[160];
	int rc;

	*out = NULL;
	*cnt = 0;
	snprintf(what, sizeof(what), "the chains of table %s", table);
	/* the chain dump takes no table filter: one dump of the family's chains */
	req_init(&r, NFT_MSG_GETCHAIN, NLM_F_DUMP, family, 0);
	if ((rc = dump(n, &r, what, chains_cb, &ca, chains_reset, e)) < 0) {
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

static void map_reset(void *arg) { ((struct map_arg *)arg)->n = 0; }

/* One reply carries many elements: ELEMENTS { LIST_ELEM { KEY { VALUE }, DATA { VERDICT {
 * CODE, CHAIN } } }, LIST_ELEM ... }. */
static int map_cb(const struct nlmsghdr *h, void *arg)
{
	struct map_arg *ma = arg;
	size_t len;
	const void *a = msg_attrs(h, &len);
	const struct nlattr *els = attr(a, len, NFTA_SET_ELEM_LIST_ELEMENTS), *el = NULL;

	while (els && (el = attr_next(adata(els), alen(els), NFTA_LIST_ELEM, el))) {
		const struct nlattr *k = attr(adata(el), alen(el), NFTA_SET_ELEM_KEY);
		const struct nlattr *d = attr(adata(el), alen(el), NFTA_SET_ELEM_DATA);
		const struct nlattr *vd = NULL, *code = NULL;
		if (k)
			k = attr(adata(k), alen(k), NFTA_DATA_VALUE);
		if (!k || alen(k) > sizeof(ma->v->key))
			continue;
		if (ma->n == ma->cap) {
			size_t cap = ma->cap ? ma->cap * 2 : 32;
			struct nft_map_elem *v = realloc(ma->v, cap * sizeof(*v));
			if (!v)
				return -1;
			ma->v = v;
			ma->cap = cap;
		}
		struct nft_map_elem *me = &ma->v[ma->n++];
		memset(me, 0, sizeof(*me));
		me->klen = alen(k);
		memcpy(me->key, adata(k), me->klen);
		if (d && (vd = attr(adata(d), alen(d), NFTA_DATA_VERDICT))) {
			if ((code = attr(adata(vd), alen(vd), NFTA_VERDICT_CODE)) && alen(code) == 4) {
				uint32_t be;
				memcpy(&be, adata(code), 4);
				me->verdict = (int32_t)be32toh(be);
				me->has_verdict = true;
			}
			astr(attr(adata(vd), alen(vd), NFTA_VERDICT_CHAIN), me->chain, sizeof(me->chain));
		}
	}
	return 0;
}

int nft_list_map(struct nft *n, int family, const char *table, const char *map, struct nft_map_elem **out,
		 size_t *cnt, struct cni_error *e)
{
	struct map_arg ma = { 0 };
	struct req r;
	char what[160];
	int rc;

	*out = NULL;
	*cnt = 0;
	snprintf(what, sizeof(what), "the elements of map %s %s", table, map);
	req_init(&r, NFT_MSG_GETSETELEM, NLM_F_DUMP, family, 0);
	put_str(&r, NFTA_SET_ELEM_LIST_TABLE, table);
	put_str(&r, NFTA_SET_ELEM_LIST_SET, map);
	if ((rc = dump(n, &r, what, map_cb, &ma, map_reset, e)) != 1) {
		free(ma.v);
		return rc < 0 ? -1 : 0;
	}
	*out = ma.v;
	*cnt = ma.n;
	return 1;
}
