/* A small HTTP/1.1 client over TCP for etcd's JSON gateway: POST requests with a deadline
 * (non-blocking connect + poll), plain or chunked bodies, and long-lived streaming responses
 * (watch) read a line at a time from the poll loop. No TLS. */
#ifndef AGENT_HTTP_H
#define AGENT_HTTP_H

#include <stdbool.h>
#include <stddef.h>

struct http_ep {
	char host[64];
	int port;
	char url[96];
};

#include <signal.h>

/* A flag (the agent's signal flag) that cuts every wait short once set: calls fail with EINTR. */
void http_set_abort(volatile sig_atomic_t *flag);
bool http_aborted(void);

/* "http://host:port" (port default 2379): 0, or -1 when malformed. */
int http_parse_url(const char *url, struct http_ep *ep);

/* POST body to path; *resp (malloc'd, NUL-terminated) gets the decoded body. Returns the HTTP
 * status, or -1 (transport failure or timeout: errno set). */
int http_post(const struct http_ep *ep, const char *path, const char *body, int timeout_ms, char **resp);

/* A streaming response, fed from the poll loop. */
struct http_stream {
	int fd; /* -1: closed */
	bool head_done, chunked;
	long status;
	long long content_length; /* -1: not given */
	size_t chunk_left; /* bytes left in the current chunk */
	bool chunk_crlf; /* a chunk's trailing CRLF is still to skip */
	char *raw; /* bytes read, not yet parsed */
	size_t raw_len, raw_cap;
	char *body; /* decoded body bytes not yet handed out as lines */
	size_t body_len, body_cap;
};

/* Connect (within timeout_ms), send the request; the fd stays non-blocking for poll(). */
int http_stream_open(struct http_stream *s, const struct http_ep *ep, const char *path, const char *body, int timeout_ms);
/* Read what is available and call cb for each complete line of the body. 0 while open, -1 on
 * EOF, error or a cb returning <0. */
int http_stream_read(struct http_stream *s, int (*cb)(const char *line, void *arg), void *arg);
void http_stream_close(struct http_stream *s);

/* Milliseconds on the monotonic clock (deadlines, timers). */
long long mono_ms(void);

#endif
