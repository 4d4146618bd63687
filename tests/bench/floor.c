/* The floor: the kernel work of one bridge ADD (or DEL) and nothing else: no config parsing, no
 * IPAM, no result. Driven by cnibench exactly like a plugin (CNI_* env), so "our ADD / floor"
 * says how much overhead is left above the kernel. Address = 10.200.<i/250>.<i%250+2>/16 from
 * the container ID's trailing number, the host veth named from a hash of the ID; the bridge "cnifloor0" must exist and be up. */
#include <net/if.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "netns.h"
#include "nl.h"

int main(void)
{
	const char *cmd = getenv("CNI_COMMAND"), *cid = getenv("CNI_CONTAINERID"), *nsp = getenv("CNI_NETNS");
	struct cni_error e = { 0 };
	struct nlsock *sk = NULL, *csk = NULL;
	char host[16], buf[4096];
	if (!cmd || !cid)
		return 1;
	while (read(0, buf, sizeof(buf)) > 0)
		;
	const char *dash = strrchr(cid, '-');
	int i = dash ? atoi(dash + 1) : 0;
	/* the host name from the whole ID (FNV-1a): two floors in one run (glibc and musl builds)
	 * give the same container number, never the same name */
	uint32_t h = 2166136261u;
	for (const char *p = cid; *p; p++)
		h = (h ^ (uint8_t)*p) * 16777619u;
	snprintf(host, sizeof(host), "vf%08x", h);
	if (cnl_open(&sk, &e) < 0)
		return 1;
	if (strcmp(cmd, "DEL") == 0)
		return cnl_link_del(sk, 0, host, &e) < 0;
	int nsfd, self;
	unsigned br = if_nametoindex("cnifloor0");
	if (!br || netns_open(nsp, &nsfd, &e) != 0 || netns_current(&self, &e) < 0)
		return 1;
	struct cnl_veth v = { .name = host, .master = (int)br, .up = true, .peer_name = "eth0", .peer_netns_fd = nsfd };
	if (cnl_veth_create(sk, &v, &e) < 0 || netns_enter(nsfd, "c", &e) < 0 || cnl_open(&csk, &e) < 0 ||
	    netns_enter(self, "h", &e) < 0)
		return 1;
	struct cnl_link l;
	struct ipnet a = { .ip = { .len = 4, .b = { 10, 200, (uint8_t)(i / 250), (uint8_t)(i % 250 + 2) } }, .prefix = 16 };
	struct cni_route r = { .dst = { .ip = { .len = 4 } } };
	struct ip gw = { .len = 4, .b = { 10, 200, 255, 254 } };
	if (cnl_link_get(csk, "eth0", 0, &l, &e) != 1 || cnl_addr_add(csk, l.index, &a, true, &e) < 0 ||
	    cnl_link_modify(csk, l.index, IFF_UP, IFF_UP, 0, NULL, -1, &e) < 0 || cnl_route_add(csk, l.index, &r, &gw, &e) < 0) {
		fprintf(stderr, "%s\n", e.msg);
		return 1;
	}
	puts("{}");
	return 0;
}
