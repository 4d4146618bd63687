/* Test driver of the tap plugin: plays the VM behind a TAP device. It attaches to the device the
 * plugin made (TUNSETIFF with its name, as a VMM does), answers ARP requests and ICMP echo
 * requests for one IPv4 address with one MAC, and counts what it saw; or writes one frame.
 * Run it inside the container's netns (ip netns exec). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <net/if.h>
#include <sys/ioctl.h>
#include <linux/if_tun.h>

static const char usage[] =
	"usage: tap-tool [-m] respond IFNAME MAC IPV4 SECONDS [ECHOES]\n"
	"         attach to TAP device IFNAME (-m: multi-queue), print \"ready\", answer ARP and ICMP echo\n"
	"         for IPV4 as MAC until SECONDS pass or ECHOES echoes are answered; prints\n"
	"         \"arp=N echo=N frames=N\" and exits 0 when at least one echo was answered\n"
	"       tap-tool [-m] send IFNAME SRCMAC ETHERTYPE-HEX   once the device has carrier (the bridge port\n"
	"         forwards), write a broadcast frame, payload \"tap-tool\", three times 50 ms apart\n";

/* The kernel reports the carrier asynchronously (linkwatch, up to a second): wait until the
 * device's operstate (sysfs of the netns we run in) says up. */
static void wait_up(const char *name)
{
	char path[64], st[16] = "";
	snprintf(path, sizeof(path), "/sys/class/net/%s/operstate", name);
	for (int i = 0; i < 60; i++) {
		FILE *f = fopen(path, "r");
		if (f) {
			if (!fgets(st, sizeof(st), f))
				st[0] = 0;
			fclose(f);
		}
		if (strncmp(st, "up", 2) == 0)
			return;
		usleep(50000);
	}
}

static int parse_mac(const char *s, uint8_t m[6])
{
	unsigned v[6];
	if (sscanf(s, "%2x:%2x:%2x:%2x:%2x:%2x", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]) != 6)
		return -1;
	for (int i = 0; i < 6; i++)
		m[i] = (uint8_t)v[i];
	return 0;
}

static uint16_t csum(const uint8_t *p, size_t n)
{
	uint32_t s = 0;
	for (size_t i = 0; i + 1 < n; i += 2)
		s += (uint32_t)(p[i] << 8 | p[i + 1]);
	if (n & 1)
		s += (uint32_t)(p[n - 1] << 8);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

static int tap_open(const char *name, int mq)
{
	struct ifreq ifr;
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		perror("open /dev/net/tun");
		return -1;
	}
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
	ifr.ifr_flags = (short)(IFF_TAP | IFF_NO_PI | (mq ? IFF_MULTI_QUEUE : 0));
	if (ioctl(fd, TUNSETIFF, &ifr) < 0) {
		fprintf(stderr, "TUNSETIFF %s: %s\n", name, strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

static int respond(int fd, const uint8_t mac[6], struct in_addr ip, int seconds, int want)
{
	uint8_t f[65536];
	int arp = 0, echo = 0, frames = 0;
	time_t end = time(NULL) + seconds;
	printf("ready\n");
	fflush(stdout);
	while (time(NULL) < end && (want <= 0 || echo < want)) {
		struct pollfd p = { fd, POLLIN, 0 };
		if (poll(&p, 1, 200) <= 0)
			continue;
		ssize_t n = read(fd, f, sizeof(f));
		if (n < 14)
			continue;
		frames++;
		uint16_t type = (uint16_t)(f[12] << 8 | f[13]);
		uint8_t *b = f + 14;
		size_t len = (size_t)n - 14;
		if (type == 0x0806 && len >= 28 && b[7] == 1 && memcmp(b + 24, &ip, 4) == 0) {
			/* ARP request for our address: the reply */
			memcpy(f, f + 6, 6);
			memcpy(f + 6, mac, 6);
			b[7] = 2;
			memcpy(b + 18, b + 8, 10); /* target = the asker */
			memcpy(b + 8, mac, 6);
			memcpy(b + 14, &ip, 4);
			if (write(fd, f, 42) == 42)
				arp++;
		} else if (type == 0x0800 && len >= 20 && (b[0] >> 4) == 4 && b[9] == 1 && memcmp(b + 16, &ip, 4) == 0) {
			size_t ihl = (size_t)(b[0] & 15) * 4, tot = (size_t)(b[2] << 8 | b[3]);
			if (tot > len || ihl < 20 || tot < ihl + 8 || b[ihl] != 8)
				continue;
			uint8_t t[4];
			memcpy(f, f + 6, 6);
			memcpy(f + 6, mac, 6);
			memcpy(t, b + 12, 4);
			memcpy(b + 12, b + 16, 4);
			memcpy(b + 16, t, 4);
			b[8] = 64;
			b[10] = b[11] = 0;
			uint16_t c = csum(b, ihl);
			b[10] = (uint8_t)(c >> 8), b[11] = (uint8_t)c;
			b[ihl] = 0; /* echo reply */
			b[ihl + 2] = b[ihl + 3] = 0;
			c = csum(b + ihl, tot - ihl);
			b[ihl + 2] = (uint8_t)(c >> 8), b[ihl + 3] = (uint8_t)c;
			if (write(fd, f, 14 + tot) == (ssize_t)(14 + tot))
				echo++;
		}
	}
	printf("arp=%d echo=%d frames=%d\n", arp, echo, frames);
	return echo > 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	int mq = 0, fd, rc;
	uint8_t mac[6];
	if (argc > 1 && strcmp(argv[1], "-m") == 0) {
		mq = 1;
		argv++, argc--;
	}
	if (argc >= 6 && strcmp(argv[1], "respond") == 0) {
		struct in_addr ip;
		if (parse_mac(argv[3], mac) < 0 || inet_pton(AF_INET, argv[4], &ip) != 1) {
			fputs(usage, stderr);
			return 2;
		}
		if ((fd = tap_open(argv[2], mq)) < 0)
			return 1;
		rc = respond(fd, mac, ip, atoi(argv[5]), argc > 6 ? atoi(argv[6]) : 0);
		close(fd);
		return rc;
	}
	if (argc == 5 && strcmp(argv[1], "send") == 0) {
		uint8_t f[64] = { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff };
		unsigned long type = strtoul(argv[4], NULL, 16);
		if (parse_mac(argv[3], mac) < 0) {
			fputs(usage, stderr);
			return 2;
		}
		memcpy(f + 6, mac, 6);
		f[12] = (uint8_t)(type >> 8), f[13] = (uint8_t)type;
		memcpy(f + 14, "tap-tool", 8);
		if ((fd = tap_open(argv[2], mq)) < 0)
			return 1;
		wait_up(argv[2]);
		rc = 0;
		for (int i = 0; i < 3 && !rc; i++) {
			rc = write(fd, f, sizeof(f)) == (ssize_t)sizeof(f) ? 0 : 1;
			if (rc)
				perror("write");
			usleep(50000);
		}
		close(fd);
		return rc;
	}
	fputs(usage, stderr);
	return 2;
}
