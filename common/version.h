/* CNI spec versions: the ones we serve and their ordering. */
#ifndef CNI_VERSION_H
#define CNI_VERSION_H

#include <stdbool.h>
#include <stddef.h>

#define CNI_CURRENT_VERSION "1.1.0"

/* This suite's release version ("0.1.0-42-gabcdef1"; common/release.c). */
extern const char cni_c_version[];

extern const char *const cni_supported_versions[];
extern const size_t cni_n_supported_versions;

/* Parse "x", "x.y" or "x.y.z"; -1 when malformed. */
int cni_version_parse(const char *s, int v[3]);
/* strcmp-like; malformed versions order first. */
int cni_version_cmp(const char *a, const char *b);
bool cni_version_supported(const char *v);
/* "0.1.0, 0.2.0, ..." into buf. */
const char *cni_versions_list(char *buf, size_t n);

#endif
