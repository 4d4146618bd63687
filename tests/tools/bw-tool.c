/* A TCP throughput probe for tests/bandwidth.bats (no iperf needed):
 *   bw-tool recv PORT          accept one connection, read to EOF, print "BYTES SECONDS BITS_PER_SECOND"
 *                              (measured from the first byte to EOF, so what the sender's socket
 *                              buffers held still arrives at the shaped rate)
 *   bw-tool send ADDR PORT SECONDS   write as fast as TCP takes it for SECONDS, then close
 * recv prints "listening" on stderr once it listens. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sys/socket.h>
#include <netinet/in.h>

static double now(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int do_recv(const char *port)
{
	static char buf[65536];
	struct sockaddr_in6 a = { .sin6_family = AF_INET6, .sin6_port = htons((uint16_t)atoi(port)) };
	int one = 1, s = socket(AF_INET6, SOCK_STREAM, 0), c;
	double t0 = 0, t1 = 0;
	unsigned long long n = 0;
	ssize_t r;

	if (s < 0 || setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
		perror("bw-tool recv");
		return 1;
	}
	fprintf(stderr, "listening\n");
	if ((c = accept(s, NULL, NULL)) < 0) {
		perror("bw-tool accept");
		return 1;
	}
	while ((r = read(c, buf, sizeof(buf))) > 0) {
		if (!n)
			t0 = now();
		n += (unsigned long long)r;
		t1 = now();
	}
	if (t1 <= t0) {
		printf("%llu 0 0\n", n);
		return 0;
	}
	printf("%llu %.3f %.0f\n", n, t1 - t0, (double)n * 8 / (t1 - t0));
	return 0;
}

static int do_send(const char *host, const char *port, double secs)
{
	static char buf[16384];
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *ai;
	int s;
	if (getaddrinfo(host, port, &hints, &ai) != 0) {
		fprintf(stderr, "bw-tool: cannot resolve %s\n", host);
		return 1;
	}
	s = socket(ai->ai_family, SOCK_STREAM, 0);
	if (s < 0 || connect(s, ai->ai_addr, ai->ai_addrlen) < 0) {
		perror("bw-tool connect");
		return 1;
	}
	freeaddrinfo(ai);
	memset(buf, 'x', sizeof(buf));
	double end = now() + secs;
	while (now() < end)
		if (write(s, buf, sizeof(buf)) < 0) {
			perror("bw-tool write");
			return 1;
		}
	close(s);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "recv") == 0)
		return do_recv(argv[2]);
	if (argc == 5 && strcmp(argv[1], "send") == 0)
		return do_send(argv[2], argv[3], atof(argv[4]));
	fprintf(stderr, "usage: bw-tool recv PORT | bw-tool send ADDR PORT SECONDS\n");
	return 2;
}
