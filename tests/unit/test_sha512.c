/* sha512.c against known answers (FIPS 180-4 examples). */
#include <stdio.h>
#include <string.h>

#include "sha512.h"
#include "tap.h"

void test_sha512(void)
{
	char h[129];
	sha512_hex("abc", 3, h, 128);
	STREQ(h,
	      "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	      "sha512(abc)");
	sha512_hex("", 0, h, 24);
	STREQ(h, "cf83e1357eefb8bdf1542850", "sha512('') truncated to 24");
	const char *m =
		"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	sha512_hex(m, strlen(m), h, 128);
	STREQ(h,
	      "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909",
	      "sha512 two-block message");
}

/* The derived names are a contract with what earlier runs (and the reference plugins) left in the
 * kernel and on disk: each shape below, formatted by sha512_hexf, against the names the code made
 * before it used the helper. */
void test_sha512_names(void)
{
	const char *cid = "sm-ctr-0123456789abcdef", *ifname = "eth0", *net = "sm-net";
	char h[129], name[64];

	sha512_hexf(h, 11, "%s%s", cid, ifname);
	snprintf(name, sizeof(name), "veth%s", h);
	STREQ(name,
	      "veth"
	      "e602d623954",
	      "host veth name: veth + 11 hex of sha512(containerID ifname)");
	snprintf(name, sizeof(name), "vlt%s", h);
	STREQ(name,
	      "vlt"
	      "e602d623954",
	      "vlan's temporary name: vlt + the same 11 hex");
	sha512_hexf(h, 11, "%s.%d", "cni0", 42);
	snprintf(name, sizeof(name), "vgw%s", h);
	STREQ(name, "vgw8bc5ede7ea5", "VLAN gateway veth: vgw + 11 hex of sha512(bridge.vlan)");
	sha512_hexf(h, 8, "%s", "sm-trunk0");
	snprintf(name, sizeof(name), "vl%s.%d", h, 42);
	STREQ(name, "vl3357f9ba.42", "long vlan sub-interface: vl + 8 hex of sha512(master) . vid");

	char nh[17], ah[17];
	sha512_hexf(nh, 16, "%s", net);
	sha512_hexf(ah, 16, "%s:%s", ifname, cid);
	snprintf(name, sizeof(name), "a-%s-%s", nh, ah);
	STREQ(name, "a-b0c2ea6b8dad4621-099d2a424dc90b9e", "SNAT/portmap chain: a- sha512(network) - sha512(ifname:containerID)");
	sha512_hexf(h, 24, "%s%s", net, cid);
	snprintf(name, sizeof(name), "CNI-%s", h);
	STREQ(name, "CNI-89122039a2a15fdedcf7e657", "iptables SNAT chain: CNI- + 24 hex of sha512(network containerID)");
	sha512_hexf(h, 21, "%s%s", net, cid);
	snprintf(name, sizeof(name), "CNI-DN-%s", h);
	STREQ(name, "CNI-DN-89122039a2a15fdedcf7e", "portmap's reference chain: CNI-DN- + 21 hex");
	sha512_hexf(h, 16, "%s-%s", cid, ifname);
	snprintf(name, sizeof(name), "s-%s", h);
	STREQ(name, "s-036af503ee490756", "spoof-check chain: s- + 16 hex of sha512(containerID-ifname)");
	sha512_hexf(h, 20, "%s", "/var/run/netns/sm-ns");
	snprintf(name, sizeof(name), "cnitool-%s", h);
	STREQ(name, "cnitool-a38b0e123190e5b30961", "cnitool's container ID: cnitool- + 20 hex of sha512(netns)");

	/* past the stack buffer: formatted on the heap, hashed whole */
	char big[3001];
	memset(big, 'a', 3000);
	big[3000] = '\0';
	OK(sha512_hexf(h, 16, "%s", big) == 0, "3000 bytes of text: formatted");
	STREQ(h, "2e320b9a1dad1f25", "3000 bytes of text: hashed whole");
	sha512_hexf(h, 16, "%.2047s", big);
	char ref[17];
	sha512_hex(big, 2047, ref, 16);
	STREQ(h, ref, "2047 bytes (the stack buffer's edge)");
	sha512_hexf(h, 16, "%.2048s", big);
	sha512_hex(big, 2048, ref, 16);
	STREQ(h, ref, "2048 bytes (one past the edge)");
}
