/* Filling struct cni_error; only skel prints it. */
#include "err.h"

#include <stdio.h>
#include <string.h>

static int vfill(struct cni_error *e, int code, const char *fmt, va_list ap)
{
	char msg[sizeof(e->msg)];
	/* via a copy: callers may pass the old message as an argument */
	vsnprintf(msg, sizeof(msg), fmt, ap);
	memcpy(e->msg, msg, sizeof(msg));
	e->code = code;
	e->details[0] = '\0';
	return -1;
}

int cni_errf(struct cni_error *e, int code, const char *fmt, ...)
{
	va_list ap;
	if (e->code)
		return -1;
	va_start(ap, fmt);
	vfill(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

int cni_errf_force(struct cni_error *e, int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vfill(e, code, fmt, ap);
	va_end(ap);
	return -1;
}

void cni_err_details(struct cni_error *e, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(e->details, sizeof(e->details), fmt, ap);
	va_end(ap);
}

void cni_err_prefix(struct cni_error *e, const char *fmt, ...)
{
	char pre[256], old[sizeof(e->msg)];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(pre, sizeof(pre), fmt, ap);
	va_end(ap);
	memcpy(old, e->msg, sizeof(old));
	snprintf(e->msg, sizeof(e->msg), "%s%s", pre, old);
}

void cni_err_clear(struct cni_error *e)
{
	memset(e, 0, sizeof(*e));
}

int cni_check_fail(struct cni_error *e, const char *fmt, ...)
{
	va_list ap;
	if (e->code)
		return -1;
	va_start(ap, fmt);
	vfill(e, CNI_ERR_CHECK_FAILED, fmt, ap);
	va_end(ap);
	return -1;
}
