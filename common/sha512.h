/* SHA-512, for the names the reference plugins derive from it (iptables chain names, nft comments). */
#ifndef CNI_SHA512_H
#define CNI_SHA512_H

#include <stddef.h>
#include <stdint.h>

void sha512(const void *data, size_t len, uint8_t out[64]);
/* Lower-case hex of sha512(data), truncated to `hexlen` characters (<= 128), NUL-terminated. */
void sha512_hex(const void *data, size_t len, char *out, size_t hexlen);
/* sha512_hex of the printf-formatted text: how every derived name is made (veth and chain
 * names, container IDs). Text under 2048 bytes needs no allocation and cannot fail; longer text
 * is formatted into the heap. 0, or -1 (errno ENOMEM; out is then ""). */
int sha512_hexf(char *out, size_t hexlen, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
