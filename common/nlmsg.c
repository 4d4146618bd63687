/* Netlink with no library: see nlmsg.h. */
#include "nlmsg.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

/* ---- building ---- */

void nlb_free(struct nlbuf *w)
{
	free(w->b);
	*w = (struct nlbuf){ 0 };
}

/* n more bytes, zeroed, or NULL (oom set). */
static void *room(struct nlbuf *w, size_t n)
{
	if (w->oom)
		return NULL;
	if (w->len + n > w->cap) {
		size_t cap = w->cap ? w->cap : 1024;
		while (cap < w->len + n)
			cap *= 2;
		char *b = realloc(w->b, cap);
		if (!b) {
			w->oom = true;
			return NULL;
		}
		w->b = b;
		w->cap = cap;
	}
	void *p = w->b + w->len;
	memset(p, 0, n);
	w->len += n;
	return p;
}

struct nlmsghdr *nlb_msg(struct nlbuf *w, uint16_t type, uint16_t flags, const void *hdr, size_t hlen)
{
	size_t at = w->len;
	struct nlmsghdr *h = room(w, NLMSG_SPACE(hlen));
	if (!h)
		return NULL;
	w->msg = at;
	h->nlmsg_type = type;
	h->nlmsg_flags = flags;
	h->nlmsg_len = (uint32_t)NLMSG_SPACE(hlen);
	if (hlen)
		memcpy(NLMSG_DATA(h), hdr, hlen);
	return h;
}

void nlb_end(struct nlbuf *w)
{
	if (!w->oom && w->b)
		nlb_hdr(w)->nlmsg_len = (uint32_t)(w->len - w->msg);
}

void nlb_raw(struct nlbuf *w, const void *data, size_t len)
{
	void *p = room(w, NLMSG_ALIGN(len));
	if (p)
		memcpy(p, data, len);
}

void nlb_put(struct nlbuf *w, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = room(w, NLA_ALIGN(NLA_HDRLEN + len));
	if (!a)
		return;
	if (NLA_HDRLEN + len > UINT16_MAX) {
		w->oom = true; /* cannot be expressed: treated like running out of room */
		return;
	}
	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	if (len)
		memcpy((char *)a + NLA_HDRLEN, data, len);
}

void nlb_str(struct nlbuf *w, uint16_t type, const char *s)
{
	nlb_put(w, type, s, strlen(s) + 1);
}
void nlb_u8(struct nlbuf *w, uint16_t type, uint8_t v)
{
	nlb_put(w, type, &v, sizeof(v));
}
void nlb_u16(struct nlbuf *w, uint16_t type, uint16_t v)
{
	nlb_put(w, type, &v, sizeof(v));
}
void nlb_u32(struct nlbuf *w, uint16_t type, uint32_t v)
{
	nlb_put(w, type, &v, sizeof(v));
}

size_t nlb_nest(struct nlbuf *w, uint16_t type)
{
	size_t at = w->len;
	nlb_put(w, type, NULL, 0);
	return at;
}

void nlb_nest_end(struct nlbuf *w, size_t at)
{
	if (w->oom)
		return;
	if (w->len - at > UINT16_MAX) {
		w->oom = true;
		return;
	}
	((struct nlattr *)(void *)(w->b + at))->nla_len = (uint16_t)(w->len - at);
}

/* ---- parsing ---- */

const struct nlattr *nla_next(const void *data, size_t len, const struct nlattr *prev)
{
	const char *p = prev ? (const char *)prev + NLA_ALIGN(prev->nla_len) : data, *end = (const char *)data + len;
	if (p + NLA_HDRLEN > end)
		return NULL;
	const struct nlattr *a = (const struct nlattr *)(const void *)p;
	return a->nla_len >= NLA_HDRLEN && a->nla_len <= (size_t)(end - p) ? a : NULL;
}

int nla_index(const void *data, size_t len, const struct nlattr **tb, int max)
{
	memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
	for (const struct nlattr *a = nla_next(data, len, NULL); a; a = nla_next(data, len, a))
		if ((a->nla_type & NLA_TYPE_MASK) <= max)
			tb[a->nla_type & NLA_TYPE_MASK] = a;
	return 0;
}

int nlmsg_index(const struct nlmsghdr *h, size_t hlen, const struct nlattr **tb, int max)
{
	size_t off = NLMSG_SPACE(hlen);
	if (h->nlmsg_len < NLMSG_LENGTH(hlen)) {
		memset(tb, 0, sizeof(*tb) * (size_t)(max + 1));
		return -1;
	}
	return nla_index((const char *)h + off, h->nlmsg_len > off ? h->nlmsg_len - off : 0, tb, max);
}

int nla_index_nested(const struct nlattr *a, const struct nlattr **tb, int max)
{
	return nla_index(nla_payload(a), nla_plen(a), tb, max);
}

const struct nlattr *nla_find(const void *data, size_t len, int type)
{
	for (const struct nlattr *a = nla_next(data, len, NULL); a; a = nla_next(data, len, a))
		if ((a->nla_type & NLA_TYPE_MASK) == type)
			return a;
	return NULL;
}

/* ---- talking ---- */

int nls_open(struct nlsock *s, int protocol)
{
	*s = (struct nlsock){ .fd = -1 };
	if (!(s->rbuf = malloc(NLS_RBUF)))
		return -ENOMEM;
	s->fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, protocol);
	if (s->fd < 0) {
		int err = errno;
		free(s->rbuf);
		s->rbuf = NULL;
		return -err;
	}
	/* The kernel answers at once; a reply that never comes must not hang a CNI verb. */
	struct timeval tmo = { .tv_sec = 30 };
	setsockopt(s->fd, SOL_SOCKET, SO_RCVTIMEO, &tmo, sizeof(tmo));
	return 0;
}

void nls_close(struct nlsock *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->rbuf);
	*s = (struct nlsock){ .fd = -1 };
}

int nls_send(struct nlsock *s, const void *data, size_t len)
{
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	for (;;) {
		if (sendto(s->fd, data, len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) >= 0)
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

long nls_recv(struct nlsock *s)
{
	for (;;) {
		ssize_t got = recv(s->fd, s->rbuf, NLS_RBUF, MSG_TRUNC);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		return got > NLS_RBUF ? -EMSGSIZE : (long)got;
	}
}

/* The error code an NLMSG_ERROR or NLMSG_DONE carries (0: acknowledgement, end of dump). */
static int msg_errno(const struct nlmsghdr *m)
{
	int err = 0;
	if (m->nlmsg_len >= NLMSG_LENGTH(sizeof(int)))
		memcpy(&err, NLMSG_DATA(m), sizeof(int));
	return err;
}

int nls_request(struct nlsock *s, struct nlbuf *w, nls_cb cb, void *arg)
{
	struct nlmsghdr *h;
	bool intr = false;
	int rc = 0, r;

	if (w->oom || !w->b)
		return -ENOMEM;
	nlb_end(w);
	h = nlb_hdr(w);
	h->nlmsg_flags |= NLM_F_REQUEST;
	if ((h->nlmsg_flags & NLM_F_DUMP) != NLM_F_DUMP)
		h->nlmsg_flags |= NLM_F_ACK;
	h->nlmsg_seq = ++s->seq;
	if ((r = nls_send(s, w->b, w->len)) < 0)
		return r;
	for (;;) {
		long got = nls_recv(s);
		if (got < 0)
			return (int)got;
		size_t left = (size_t)got;
		for (const struct nlmsghdr *m = (const struct nlmsghdr *)(void *)s->rbuf; NLMSG_OK(m, left);
		     m = NLMSG_NEXT(m, left)) {
			if (m->nlmsg_seq != s->seq)
				continue; /* a late answer to an earlier request */
			intr |= (m->nlmsg_flags & NLM_F_DUMP_INTR) != 0;
			if (m->nlmsg_type == NLMSG_ERROR || m->nlmsg_type == NLMSG_DONE) {
				int err = msg_errno(m);
				if (err < 0)
					return err;
				return rc < 0 ? rc : intr ? -EINTR : 0;
			}
			if (m->nlmsg_type == NLMSG_NOOP || m->nlmsg_type == NLMSG_OVERRUN)
				continue;
			if (cb && rc == 0 && (r = cb(m, arg)) < 0)
				rc = r;
		}
	}
}
