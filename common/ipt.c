/* iptables and ip6tables, exec'd: see ipt.h. */
#include "ipt.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf.h"
#include "subproc.h"

void ipt_go_quote(const char *s, struct sb *b)
{
	static const char esc[] = "\a\b\f\n\r\t\v";
	static const char let[] = "abfnrtv";
	const unsigned char *p = (const unsigned char *)s;

	sb_add(b, "\"");
	while (*p) {
		uint32_t r;
		size_t len = conf_utf8_seq(p, strlen((const char *)p), &r);
		bool ok = len > 1;
		if (*p == '"' || *p == '\\')
			sb_add(b, "\\%c", *p);
		else if (*p && strchr(esc, *p))
			sb_add(b, "\\%c", let[strchr(esc, *p) - esc]);
		else if (*p >= 0x20 && *p < 0x7f)
			sb_add(b, "%c", *p);
		else if (*p < 0x80)
			sb_add(b, "\\x%02x", *p);
		else if (ok) {
			sb_add(b, "%.*s", (int)len, (const char *)p);
			p += len;
			continue;
		} else
			sb_add(b, "\\x%02x", *p);
		p++;
	}
	sb_add(b, "\"");
}

void ipt_exec(char *const argv[], bool want_out, struct ipt_out *r)
{
	const struct subproc_opts o = { .file = argv[0],
					.search = true,
					.argv = argv,
					.out = want_out ? SUBPROC_CAPTURE : SUBPROC_NULL,
					.err = SUBPROC_CAPTURE };
	struct subproc s;
	size_t len;
	int st = 0;

	memset(r, 0, sizeof(*r));
	r->status = -1;
	if ((r->err_no = subproc_start(&s, &o)) != 0)
		return;
	r->err_no = subproc_wait(&s, 64u << 20, &r->out, &len, &st);
	r->status = WIFEXITED(st) && !r->err_no ? WEXITSTATUS(st) : -1;
	subproc_stderr_line(&s, r->err, sizeof(r->err));
}

int ipt_run(const char *who, char *const argv[], bool ok1, struct cni_error *e)
{
	struct ipt_out r;
	ipt_exec(argv, false, &r);
	if (r.status == 0 || (ok1 && r.status == 1))
		return r.status;
	if (r.status < 0)
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "%s: cannot run %s: %s", who, argv[0],
				cni_strerror(r.err_no ? r.err_no : ECHILD));
	char what[200] = "";
	for (size_t i = 0, l = 0; argv[i] && l < sizeof(what); i++)
		l += (size_t)snprintf(what + l, sizeof(what) - l, "%s%s", i ? " " : "", argv[i]);
	return cni_errf(e, CNI_ERR_KERNEL, "%s: \"%s\" failed (status %d): %s", who, what, r.status, r.err);
}

char *ipt_tool(bool v4)
{
	return v4 ? "iptables" : "ip6tables";
}

bool ipt_legacy_nat(bool v4)
{
	char buf[512];
	int fd = open(v4 ? "/proc/net/ip_tables_names" : "/proc/net/ip6_tables_names", O_RDONLY | O_CLOEXEC);
	ssize_t r = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	if (r <= 0)
		return false;
	buf[r] = '\0';
	for (char *save = NULL, *l = strtok_r(buf, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
		if (strcmp(l, "nat") == 0)
			return true;
	return false;
}

int ipt_save_words(char *line, char **w, int max)
{
	char *p = line;
	int n = 0;

	for (;;) {
		while (*p == ' ')
			p++;
		if (!*p)
			return n;
		if (n == max)
			return -1;
		char *o = p;
		w[n++] = o;
		if (*p == '"') {
			for (p++; *p && *p != '"'; p++) {
				if (*p == '\\' && p[1])
					p++;
				*o++ = *p;
			}
			if (*p)
				p++; /* the closing quote */
		} else {
			while (*p && *p != ' ')
				*o++ = *p++;
		}
		char delim = *p; /* o may equal p: read it before terminating the word */
		*o = '\0';
		if (!delim)
			return n;
		p++;
	}
}
