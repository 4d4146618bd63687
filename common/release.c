/* The release version, the one object that embeds it: the Makefile passes CNIC_VERSION (from git
 * describe, or the VERSION file of a release tarball) and rebuilds only this file when it changes. */
#include "version.h"

#ifndef CNIC_VERSION
#define CNIC_VERSION "unknown"
#endif

const char cni_c_version[] = CNIC_VERSION;
