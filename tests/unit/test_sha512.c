/* sha512.c against known answers (FIPS 180-4 examples). */
#include <string.h>

#include "sha512.h"
#include "tap.h"

void test_sha512(void)
{
	char h[129];
	sha512_hex("abc", 3, h, 128);
	STREQ(h, "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f", "sha512(abc)");
	sha512_hex("", 0, h, 24);
	STREQ(h, "cf83e1357eefb8bdf1542850", "sha512('') truncated to 24");
	const char *m = "abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu";
	sha512_hex(m, strlen(m), h, 128);
	STREQ(h, "8e959b75dae313da8cf4f72814fc143f8f7779c6eb9f7fa17299aeadb6889018501d289e4900f7e4331b99dec4b5433ac7d329eeb6dd26545e96e55b874be909", "sha512 two-block message");
}
