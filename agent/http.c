/* HTTP/1.1 POST and streaming responses over plain TCP (see http.h). */
#include "http.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#define CONNECT_MS 1000

int http_parse_url(const char *url, struct http_ep *ep)
{
	const char *h = url;
	memset(ep, 0, sizeof(*ep));
	if (strncmp(h, "http://", 7) == 0)
		h += 7;
	else if (strstr(h, "://"))
		return -1;
	size_t n = strcspn(h, ":/");
	if (n == 0 || n >= sizeof(ep->host))
		return -1;
	memcpy(ep->host, h, n);
	ep->port = 2379;
	if (h[n] == ':') {
		char *end;
		long p = strtol(h + n + 1, &end, 10);
		if (p < 1 || p > 65535 || (*end && strcmp(end, "/") != 0))
			return -1;
		ep->port = (int)p;
	} else if (h[n] && strcmp(h + n, "/") != 0) {
		return -1;
	}
	snprintf(ep->url, sizeof(ep->url), "http://%s:%d", ep->host, ep->port);
	return 0;
}

long long mono_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static volatile sig_atomic_t *abort_flag;

void http_set_abort(volatile sig_atomic_t *flag)
{
	abort_flag = flag;
}

bool http_aborted(void)
{
	return abort_flag && *abort_flag;
}

static int wait_fd(int fd, short ev, long long deadline)
{
	for (;;) {
		if (http_aborted()) {
			errno = EINTR;
			return -1;
		}
		long long left = deadline - mono_ms();
		struct pollfd p = { .fd = fd, .events = ev };
		if (left <= 0) {
			errno = ETIMEDOUT;
			return -1;
		}
		int r = poll(&p, 1, (int)left);
		if (r > 0)
			return 0;
		if (r < 0 && errno != EINTR)
			return -1;
	}
}

/* Non-blocking connect to ep within the deadline; the fd stays non-blocking. */
static int tcp_connect(const struct http_ep *ep, long long deadline)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	struct sockaddr_in *a4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *a6 = (struct sockaddr_in6 *)&ss;
	if (inet_pton(AF_INET, ep->host, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)ep->port);
		sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, ep->host, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)ep->port);
		sl = sizeof(*a6);
	} else {
		errno = EINVAL; /* names are not resolved: endpoints are addresses */
		return -1;
	}
	int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	int one = 1, err = 0;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&ss, sl) < 0 && errno != EINPROGRESS)
		goto fail;
	socklen_t el = sizeof(err);
	/* a dead member must not eat the whole deadline: the next endpoint gets its turn */
	long long cd = mono_ms() + CONNECT_MS;
	if (wait_fd(fd, POLLOUT, cd < deadline ? cd : deadline) < 0 || getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el) < 0)
		goto fail;
	if (err) {
		errno = err;
		goto fail;
	}
	return fd;
fail:
	err = errno;
	close(fd);
	errno = err;
	return -1;
}

static int send_all(int fd, const char *p, size_t n, long long deadline)
{
	while (n) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
			if (wait_fd(fd, POLLOUT, deadline) < 0)
				return -1;
			continue;
		}
		if (w < 0)
			return -1;
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

static int send_request(int fd, const struct http_ep *ep, const char *path, const char *body, bool keep, long long deadline)
{
	char head[512];
	size_t bl = strlen(body);
	int hl = snprintf(head, sizeof(head),
			  "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
			  "Connection: %s\r\n\r\n",
			  path, ep->host, ep->port, bl, keep ? "keep-alive" : "close");
	if (hl < 0 || (size_t)hl >= sizeof(head)) {
		errno = EINVAL;
		return -1;
	}
	return send_all(fd, head, (size_t)hl, deadline) < 0 ? -1 : send_all(fd, body, bl, deadline);
}

static int grow(char **p, size_t *cap, size_t need)
{
	if (need <= *cap)
		return 0;
	size_t c = *cap ? *cap : 4096;
	while (c < need)
		c *= 2;
	char *q = realloc(*p, c);
	if (!q)
		return -1;
	*p = q;
	*cap = c;
	return 0;
}

static int append(char **p, size_t *len, size_t *cap, const char *d, size_t n)
{
	if (grow(p, cap, *len + n + 1) < 0)
		return -1;
	memcpy(*p + *len, d, n);
	*len += n;
	(*p)[*len] = '\0';
	return 0;
}

/* Status line and headers from s->raw, once complete: 1 done, 0 need more, -1 malformed. */
static int parse_head(struct http_stream *s)
{
	char *end = s->raw ? strstr(s->raw, "\r\n\r\n") : NULL;
	if (!end)
		return 0;
	*end = '\0';
	if (strncmp(s->raw, "HTTP/1.", 7) != 0 || strlen(s->raw) < 12)
		return -1;
	s->status = strtol(s->raw + 9, NULL, 10);
	s->content_length = -1;
	for (char *l = strstr(s->raw, "\r\n"); l; l = strstr(l + 2, "\r\n")) {
		if (strncasecmp(l + 2, "transfer-encoding:", 18) == 0 && strstr(l + 20, "chunked"))
			s->chunked = true;
		if (strncasecmp(l + 2, "content-length:", 15) == 0)
			s->content_length = strtoll(l + 17, NULL, 10);
	}
	size_t used = (size_t)(end + 4 - s->raw);
	memmove(s->raw, s->raw + used, s->raw_len - used);
	s->raw_len -= used;
	s->raw[s->raw_len] = '\0';
	s->head_done = true;
	return 1;
}

/* Move decoded body bytes from s->raw to s->body: 0, 1 at the terminating chunk, -1 malformed. */
static int decode_body(struct http_stream *s)
{
	size_t off = 0;
	int rc = 0;
	while (off < s->raw_len) {
		if (!s->chunked) {
			if (append(&s->body, &s->body_len, &s->body_cap, s->raw + off, s->raw_len - off) < 0)
				return -1;
			off = s->raw_len;
		} else if (s->chunk_left) {
			size_t n = s->raw_len - off < s->chunk_left ? s->raw_len - off : s->chunk_left;
			if (append(&s->body, &s->body_len, &s->body_cap, s->raw + off, n) < 0)
				return -1;
			off += n;
			s->chunk_left -= n;
			s->chunk_crlf = s->chunk_left == 0;
		} else if (s->chunk_crlf) {
			if (s->raw_len - off < 2)
				break;
			off += 2;
			s->chunk_crlf = false;
		} else {
			char *nl = memchr(s->raw + off, '\n', s->raw_len - off);
			if (!nl)
				break;
			char *end;
			unsigned long long n = strtoull(s->raw + off, &end, 16);
			if (end == s->raw + off)
				return -1;
			off = (size_t)(nl + 1 - s->raw);
			if (n == 0) {
				rc = 1;
				off = s->raw_len;
				break;
			}
			s->chunk_left = (size_t)n;
		}
	}
	memmove(s->raw, s->raw + off, s->raw_len - off);
	s->raw_len -= off;
	if (s->raw)
		s->raw[s->raw_len] = '\0';
	return rc;
}

/* Read once (non-blocking): 1 data, 0 nothing now, -1 EOF or error. */
static int read_some(struct http_stream *s)
{
	char buf[16384];
	ssize_t r = recv(s->fd, buf, sizeof(buf), 0);
	if (r < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (r <= 0)
		return -1;
	if (append(&s->raw, &s->raw_len, &s->raw_cap, buf, (size_t)r) < 0)
		return -1;
	if (!s->head_done && parse_head(s) < 0)
		return -1;
	return 1;
}

void http_stream_close(struct http_stream *s)
{
	if (s->fd >= 0)
		close(s->fd);
	free(s->raw);
	free(s->body);
	memset(s, 0, sizeof(*s));
	s->fd = -1;
}

int http_stream_open(struct http_stream *s, const struct http_ep *ep, const char *path, const char *body, int timeout_ms)
{
	long long deadline = mono_ms() + timeout_ms;
	memset(s, 0, sizeof(*s));
	s->fd = tcp_connect(ep, deadline);
	if (s->fd < 0)
		return -1;
	/* a member that vanishes without a FIN or RST: noticed within about 10 s */
	int on = 1, idle = 5, intvl = 2, cnt = 3;
	setsockopt(s->fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
	setsockopt(s->fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
	if (send_request(s->fd, ep, path, body, true, deadline) < 0) {
		http_stream_close(s);
		return -1;
	}
	return 0;
}

int http_stream_read(struct http_stream *s, int (*cb)(const char *line, void *arg), void *arg)
{
	int r, end = 0;
	while ((r = read_some(s)) > 0) {
		if (!s->head_done)
			continue;
		if (s->status != 200 || (end = decode_body(s)) < 0)
			return -1;
		char *nl;
		while (s->body_len && (nl = memchr(s->body, '\n', s->body_len))) {
			*nl = '\0';
			size_t used = (size_t)(nl + 1 - s->body);
			int c = s->body[0] ? cb(s->body, arg) : 0;
			memmove(s->body, s->body + used, s->body_len - used);
			s->body_len -= used;
			s->body[s->body_len] = '\0';
			if (c < 0)
				return -1;
		}
		if (end)
			return -1;
	}
	return r < 0 ? -1 : 0;
}

int http_post(const struct http_ep *ep, const char *path, const char *body, int timeout_ms, char **resp)
{
	long long deadline = mono_ms() + timeout_ms;
	struct http_stream s = { 0 };
	int r = 0, end = 0, status = -1;
	*resp = NULL;
	s.fd = tcp_connect(ep, deadline);
	if (s.fd < 0)
		return -1;
	if (send_request(s.fd, ep, path, body, false, deadline) < 0)
		goto out;
	while (!end) {
		if (wait_fd(s.fd, POLLIN, deadline) < 0)
			goto out;
		r = read_some(&s);
		if (r > 0 && s.head_done && (end = decode_body(&s)) < 0)
			goto out;
		if (s.head_done && !s.chunked && s.content_length >= 0 && (long long)s.body_len >= s.content_length)
			break; /* complete, whether or not the server closes */
		if (r < 0) /* EOF: the body is complete unless chunked and unterminated */
			break;
	}
	if (!s.head_done || (r < 0 && s.chunked && !end)) {
		errno = EPROTO;
		goto out;
	}
	status = (int)s.status;
	*resp = s.body ? s.body : strdup("");
	s.body = NULL;
out:
	if (status < 0 && !errno)
		errno = EIO;
	http_stream_close(&s);
	return status;
}
