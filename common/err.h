/* CNI errors: the spec's codes and a message/details pair filled by the failing step. */
#ifndef CNI_ERR_H
#define CNI_ERR_H

#include <stdarg.h>

enum cni_code {
	CNI_OK = 0,
	CNI_ERR_INCOMPATIBLE_VERSION = 1,
	CNI_ERR_UNSUPPORTED_FIELD = 2,
	CNI_ERR_UNKNOWN_CONTAINER = 3,
	CNI_ERR_INVALID_ENV = 4,
	CNI_ERR_IO = 5,
	CNI_ERR_DECODE = 6,
	CNI_ERR_INVALID_CONFIG = 7,
	CNI_ERR_INVALID_NETNS = 8,
	CNI_ERR_TRY_AGAIN = 11,
	CNI_ERR_NOT_AVAILABLE = 50,
	CNI_ERR_LIMITED_CONNECTIVITY = 51,
	/* Ours, >= 100. */
	CNI_ERR_INTERNAL = 100, /* a step failed in a way the spec has no code for */
	CNI_ERR_KERNEL = 101, /* the kernel refused or lacks a feature */
	CNI_ERR_IPAM_EXHAUSTED = 102, /* no free address in a range set */
	CNI_ERR_IP_TAKEN = 103, /* a requested address is not available */
	CNI_ERR_CHECK_FAILED = 104, /* CHECK found a difference from prevResult */
	CNI_ERR_PLUGIN_EXEC = 105, /* a delegated plugin could not be run */
	CNI_ERR_EXISTS = 106, /* a link or name we must create is taken by something else */
};

struct cni_error {
	int code;
	char msg[512];
	char details[512];
};

/* Fill e (when e->code is still 0, so the first, innermost failure wins) and
 * return -1: `return cni_errf(e, CNI_ERR_INVALID_CONFIG, "...", ...);` */
int cni_errf(struct cni_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Same, overwriting whatever was there. */
int cni_errf_force(struct cni_error *e, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Set the details string of an error already filled. */
void cni_err_details(struct cni_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix the message with context: "ipam: " + old message. */
void cni_err_prefix(struct cni_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void cni_err_clear(struct cni_error *e);
/* strerror's text for errno value err, the same whichever C library the binary is linked with
 * (glibc's wording, which Go's syscall errors and so the reference plugins' messages share). */
const char *cni_strerror(int err);
/* CHECK found a difference from prevResult: cni_errf with code 104. */
int cni_check_fail(struct cni_error *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
