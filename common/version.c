/* Which CNI spec versions we serve: every one libcni knows, each result shape implemented. */
#include "version.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const cni_supported_versions[] = { "0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0" };
const size_t cni_n_supported_versions = sizeof(cni_supported_versions) / sizeof(cni_supported_versions[0]);

int cni_version_parse(const char *s, int v[3])
{
	v[0] = v[1] = v[2] = 0;
	for (int i = 0; i < 3; i++) {
		char *end;
		long x;
		if (*s < '0' || *s > '9')
			return -1;
		errno = 0;
		x = strtol(s, &end, 10);
		if (errno || x > 1000000)
			return -1;
		v[i] = (int)x;
		if (*end == '\0')
			return 0;
		if (*end != '.')
			return -1;
		s = end + 1;
	}
	return -1;
}

int cni_version_cmp(const char *a, const char *b)
{
	int x[3], y[3];
	int ea = cni_version_parse(a, x), eb = cni_version_parse(b, y);
	if (ea || eb)
		return ea - eb;
	for (int i = 0; i < 3; i++)
		if (x[i] != y[i])
			return x[i] < y[i] ? -1 : 1;
	return 0;
}

bool cni_version_supported(const char *v)
{
	for (size_t i = 0; i < cni_n_supported_versions; i++)
		if (strcmp(v, cni_supported_versions[i]) == 0)
			return true;
	return false;
}

const char *cni_versions_list(char *buf, size_t n)
{
	size_t off = 0;
	buf[0] = '\0';
	for (size_t i = 0; i < cni_n_supported_versions && off < n; i++)
		off += (size_t)snprintf(buf + off, n - off, "%s%s", i ? ", " : "", cni_supported_versions[i]);
	return buf;
}
