/* The fortification of the release build, shown at run time: fortify-probe MODE ARG copies ARG
 * (or reads len(ARG) bytes of it through a pipe) into an 8-byte buffer with the function MODE
 * names, the length known only at run time. A short ARG fits and is printed; a long one must end
 * in "buffer overflow detected" and SIGABRT, not in a silent overwrite. */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char buf[8];
	int p[2];
	if (argc != 3)
		return 2;
	const char *mode = argv[1], *arg = argv[2];
	size_t n = strlen(arg);
	memset(buf, 0, sizeof(buf));
	if (strcmp(mode, "memcpy") == 0) {
		memcpy(buf, arg, n + 1);
	} else if (strcmp(mode, "strcpy") == 0) {
		strcpy(buf, arg);
	} else if (strcmp(mode, "snprintf") == 0) {
		/* the size given is the argument's, not the buffer's */
		snprintf(buf, n + 1, "%s", arg);
	} else if (strcmp(mode, "read") == 0) {
		if (pipe(p) < 0 || write(p[1], arg, n + 1) != (ssize_t)(n + 1))
			return 2;
		if (read(p[0], buf, n + 1) < 0)
			return 2;
	} else {
		return 2;
	}
	puts(buf);
	return 0;
}
