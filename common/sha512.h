/* SHA-512, for the names the reference plugins derive from it (iptables chain names, nft comments). */
#ifndef CNI_SHA512_H
#define CNI_SHA512_H

#include <stddef.h>
#include <stdint.h>

void sha512(const void *data, size_t len, uint8_t out[64]);
/* Lower-case hex of sha512(data), truncated to `hexlen` characters (<= 128), NUL-terminated. */
void sha512_hex(const void *data, size_t len, char *out, size_t hexlen);

#endif
