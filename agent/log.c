/* The agent's log: stderr, one line each, with a timestamp (journald adds its own; tests grep). */
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "agent.h"

static void vout(const char *fmt, va_list ap)
{
	char buf[1024];
	struct timespec t;
	clock_gettime(CLOCK_REALTIME, &t);
	int n = snprintf(buf, sizeof(buf), "cni-c-agent %lld.%03ld: ", (long long)t.tv_sec, t.tv_nsec / 1000000);
	vsnprintf(buf + n, sizeof(buf) - (size_t)n, fmt, ap);
	fprintf(stderr, "%s\n", buf);
}

void alog(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vout(fmt, ap);
	va_end(ap);
}

void vlog(const struct agent *a, const char *fmt, ...)
{
	va_list ap;
	if (!a->verbose)
		return;
	va_start(ap, fmt);
	vout(fmt, ap);
	va_end(ap);
}
