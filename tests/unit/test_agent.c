/* cni-c-agent's etcd gateway client: URLs, base64, prefix ranges, and HTTP bodies (plain and
 * chunked, cut at every byte) read a line at a time as the watch stream is. */
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/socket.h>

#include "etcd.h"
#include "http.h"
#include "tap.h"

static void test_urls(void)
{
	struct http_ep ep;
	OK(http_parse_url("http://10.0.0.1:2379", &ep) == 0 && strcmp(ep.host, "10.0.0.1") == 0 && ep.port == 2379,
	   "http://10.0.0.1:2379");
	OK(http_parse_url("10.0.0.2:23790/", &ep) == 0 && ep.port == 23790, "no scheme, a trailing slash");
	OK(http_parse_url("http://10.0.0.3", &ep) == 0 && ep.port == 2379, "default port 2379");
	STREQ(ep.url, "http://10.0.0.3:2379", "the URL as logged");
	OK(http_parse_url("https://10.0.0.1:2379", &ep) < 0, "https refused");
	OK(http_parse_url("http://10.0.0.1:0", &ep) < 0, "port 0 refused");
	OK(http_parse_url("http://10.0.0.1:2379/v3", &ep) < 0, "a path refused");
	OK(http_parse_url("http://:2379", &ep) < 0, "no host refused");
}

static void test_b64(void)
{
	const char *v[] = { "", "f", "fo", "foo", "foob", "fooba", "foobar", "/cni-c/v1/overlay/nodes/" };
	const char *want[] = { "", "Zg==", "Zm8=", "Zm9v", "Zm9vYg==", "Zm9vYmE=", "Zm9vYmFy", NULL };
	for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
		char *e = etcd_b64(v[i], strlen(v[i]));
		size_t n;
		char *d = etcd_unb64(e, &n);
		if (want[i]) {
			STREQ(e, want[i], "base64(\"%s\")", v[i]);
		}
		OK(d && n == strlen(v[i]) && strcmp(d, v[i]) == 0, "round trip \"%s\"", v[i]);
		free(e);
		free(d);
	}
	char *bad = etcd_unb64("Zm9v!", NULL);
	OK(bad == NULL, "a non-base64 byte refused");
	char *end = etcd_prefix_end_b64("/a/"), *d = etcd_unb64(end, NULL);
	STREQ(d, "/a0", "the range end of a prefix: its last byte plus one");
	free(end);
	free(d);
}

struct lines {
	char got[1024];
	int n;
};

static int collect(const char *line, void *arg)
{
	struct lines *l = arg;
	strncat(l->got, line, sizeof(l->got) - strlen(l->got) - 2);
	strcat(l->got, "|");
	l->n++;
	return 0;
}

/* Feed resp into a stream `cut` bytes at a time; the lines seen, and whether the stream ended. */
static int feed(const char *resp, size_t cut, struct lines *l)
{
	int sv[2], r = 0;
	struct http_stream s;
	memset(l, 0, sizeof(*l));
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
		return -2;
	memset(&s, 0, sizeof(s));
	s.fd = sv[0];
	fcntl(sv[0], F_SETFL, O_NONBLOCK);
	for (size_t off = 0, len = strlen(resp); off < len && r == 0; off += cut) {
		size_t n = len - off < cut ? len - off : cut;
		if (write(sv[1], resp + off, n) != (ssize_t)n)
			r = -2;
		else
			r = http_stream_read(&s, collect, l);
	}
	close(sv[1]);
	if (r == 0) /* the peer closed: the stream reports its end */
		r = http_stream_read(&s, collect, l) < 0 ? 1 : 0;
	else
		r = r < 0 ? 1 : r;
	http_stream_close(&s);
	return r;
}

static void test_stream(void)
{
	const char *chunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
			      "c\r\n{\"a\":1}\n{\"b\"\r\n"
			      "4\r\n:2}\n\r\n"
			      "8\r\n{\"c\":3}\n\r\n"
			      "0\r\n\r\n";
	const char *plain = "HTTP/1.1 200 OK\r\nContent-Length: 16\r\n\r\n{\"x\":1}\n{\"y\":2}\n";
	struct lines l;
	int all = 1;
	for (size_t cut = 1; cut <= strlen(chunked); cut++) {
		int end = feed(chunked, cut, &l);
		if (end != 1 || l.n != 3 || strcmp(l.got, "{\"a\":1}|{\"b\":2}|{\"c\":3}|") != 0) {
			all = 0;
			printf("# cut %zu: end %d, %d lines: %s\n", cut, end, l.n, l.got);
		}
	}
	OK(all, "a chunked body cut at every byte: three lines, then its end");
	feed(plain, 5, &l);
	STREQ(l.got, "{\"x\":1}|{\"y\":2}|", "a plain body, line by line");
	OK(feed("HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\nno", 7, &l) == 1 && l.n == 0,
	   "a non-200 answer ends the stream");
}

void test_agent(void)
{
	test_urls();
	test_b64();
	test_stream();
}
