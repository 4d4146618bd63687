/* See cjson-noscanf.h: sscanf(s, "%lg", &d) for cJSON, through strtod. Any other format is refused
 * (returns EOF), so a new cJSON version that scans something else fails loudly in the tests. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cjson-noscanf.h"

int cnic_json_sscanf(const char *s, const char *fmt, ...)
{
	va_list ap;
	char *end;
	double v;
	if (strcmp(fmt, "%lg") != 0)
		return EOF;
	v = strtod(s, &end);
	if (end == s)
		return 0;
	va_start(ap, fmt);
	*va_arg(ap, double *) = v;
	va_end(ap);
	return 1;
}
