/* Netlink with no library: one growing buffer that holds a message or a batch of them, an
 * attribute parser, and a socket that sends a request and feeds each reply to a callback.
 * rtnetlink (nl.c), ctnetlink (conntrack.c) and nf_tables (nft.c) all speak through it. */
#ifndef CNI_NLMSG_H
#define CNI_NLMSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <linux/netlink.h>

/* ---- building ---- */

/* A buffer of one or more messages. Out of memory sets `oom` and makes every later put a no-op;
 * the sender refuses such a buffer, so builders need not check each put. */
struct nlbuf {
	char *b;
	size_t len, cap;
	size_t msg; /* offset of the message being built */
	bool oom;
};

void nlb_free(struct nlbuf *w);
/* Start a message: header (its length is fixed by nlb_end or the sender) and `hdr` (the family
 * header: ifinfomsg, rtmsg, nfgenmsg...) padded to the netlink alignment. */
struct nlmsghdr *nlb_msg(struct nlbuf *w, uint16_t type, uint16_t flags, const void *hdr, size_t hlen);
/* Close the current message (sets its nlmsg_len). */
void nlb_end(struct nlbuf *w);
/* Raw bytes, padded (a veth peer's ifinfomsg inside VETH_INFO_PEER). */
void nlb_raw(struct nlbuf *w, const void *data, size_t len);
void nlb_put(struct nlbuf *w, uint16_t type, const void *data, size_t len);
void nlb_str(struct nlbuf *w, uint16_t type, const char *s);
void nlb_u8(struct nlbuf *w, uint16_t type, uint8_t v);
void nlb_u16(struct nlbuf *w, uint16_t type, uint16_t v);
void nlb_u32(struct nlbuf *w, uint16_t type, uint32_t v);
/* Open a nested attribute (type as given: add NLA_F_NESTED where the family wants it); returns
 * its offset for nlb_nest_end. */
size_t nlb_nest(struct nlbuf *w, uint16_t type);
void nlb_nest_end(struct nlbuf *w, size_t at);
static inline struct nlmsghdr *nlb_hdr(const struct nlbuf *w)
{
	return (struct nlmsghdr *)(void *)(w->b + w->msg);
}

/* ---- parsing ---- */

static inline const void *nla_payload(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}
static inline size_t nla_plen(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}
static inline uint8_t nla_u8(const struct nlattr *a)
{
	return *(const uint8_t *)nla_payload(a);
}
static inline uint16_t nla_u16(const struct nlattr *a)
{
	uint16_t v;
	memcpy(&v, nla_payload(a), sizeof(v));
	return v;
}
static inline uint32_t nla_u32(const struct nlattr *a)
{
	uint32_t v;
	memcpy(&v, nla_payload(a), sizeof(v));
	return v;
}

/* The attribute after prev (NULL: the first) in [data, data+len); NULL at the end, or at one that
 * overruns the data. The one walk every parser below uses. */
const struct nlattr *nla_next(const void *data, size_t len, const struct nlattr *prev);
/* Index the attributes in [data, data+len) by type into tb[0..max] (NULL where absent; types
 * above max are skipped). */
int nla_index(const void *data, size_t len, const struct nlattr **tb, int max);
/* The attributes after a message's family header of hlen bytes; -1 when it is too short for it. */
int nlmsg_index(const struct nlmsghdr *h, size_t hlen, const struct nlattr **tb, int max);
int nla_index_nested(const struct nlattr *a, const struct nlattr **tb, int max);
/* The first attribute of `type` in [data, data+len), or NULL. */
const struct nlattr *nla_find(const void *data, size_t len, int type);
/* The first attribute of `type` nested in a, or NULL (a may be NULL). */
static inline const struct nlattr *nla_child(const struct nlattr *a, int type)
{
	return a ? nla_find(nla_payload(a), nla_plen(a), type) : NULL;
}
/* Each attribute nested in `a`: `it` walks them. */
#define nla_each(it, a)                                                                 \
	for (const struct nlattr *it = nla_next(nla_payload(a), nla_plen(a), NULL); it; \
	     it = nla_next(nla_payload(a), nla_plen(a), it))

/* ---- talking ---- */

struct nlsock {
	int fd;
	uint32_t seq;
	char *rbuf;
};

/* -errno on failure. */
int nls_open(struct nlsock *s, int protocol);
void nls_close(struct nlsock *s);
/* Replies are handed over one message at a time; a callback returns <0 to fail the request
 * with that value (after the rest of the reply is read). */
typedef int (*nls_cb)(const struct nlmsghdr *h, void *arg);
/* Send the one message in w (it gets NLM_F_REQUEST, NLM_F_ACK unless it is a dump, and the next
 * sequence number) and read until its acknowledgement or the end of the dump. 0, the kernel's
 * -errno, the callback's value, or -EINTR when a dump was interrupted by a concurrent change
 * (callers that dump start over). -ENOMEM when the buffer ran out of memory. */
int nls_request(struct nlsock *s, struct nlbuf *w, nls_cb cb, void *arg);
/* Send bytes as they are: messages numbered by the caller (a batch). 0 or -errno. */
int nls_send(struct nlsock *s, const void *data, size_t len);
/* Read one datagram into s->rbuf: its length, or -errno (-EMSGSIZE when truncated). */
long nls_recv(struct nlsock *s);

/* Larger than any skb the kernel fills for a dump (32 KiB), and small enough to be served from
 * the static binaries' allocator's regions (64 KiB less its 16-byte header): a socket then
 * costs no mmap and munmap of its own. */
#define NLS_RBUF (65536 - 16)

#endif
