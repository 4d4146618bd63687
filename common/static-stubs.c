/* Static binaries: libnl's name-lookup helpers (nl_addr_info, nl_str2ip_proto, nl_ip_proto2str)
 * are never called by this suite, but their objects reference glibc's resolver, which in a static
 * binary drags in NSS and the dynamic loader (~300 KB, and a run-time need for glibc's shared NSS
 * modules). These definitions take the place of glibc's, so neither is linked. Each fails cleanly
 * should a future libnl path ever call it. */
#include <errno.h>
#include <netdb.h>
#include <stddef.h>

int getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res)
{
	(void)node, (void)service, (void)hints;
	*res = NULL;
	return EAI_FAIL;
}

void freeaddrinfo(struct addrinfo *res)
{
	(void)res;
}

struct protoent *getprotobyname(const char *name)
{
	(void)name;
	errno = ENOENT;
	return NULL;
}

struct protoent *getprotobynumber(int proto)
{
	(void)proto;
	errno = ENOENT;
	return NULL;
}
