/* iptables and ip6tables, exec'd as the reference plugins run them (no shell, PATH lookup, -w):
 * the helpers that bridge's SNAT and portmap's iptables backends share, for the reference's own
 * chain layouts. */
#ifndef CNI_IPT_H
#define CNI_IPT_H

#include <stdbool.h>

#include "err.h"
#include "sb.h"

/* What an exec'd command left: exit status (-1: could not run or killed; errno_ in *err_no). */
struct ipt_out {
	int status, err_no;
	char *out; /* stdout, when asked for */
	char err[256]; /* first line of stderr */
};

/* Run argv (PATH lookup, no shell); stdout is collected when `want_out` (at most 64 MiB). stderr
 * goes to a memfd, read after exit, so neither stream can block the other. */
void ipt_exec(char *const argv[], bool want_out, struct ipt_out *r);
/* ipt_exec without stdout; fails (code 101, "<who>: ...") naming the command unless it exits 0,
 * or (when ok1) 1, which iptables uses for "no such rule/chain". Returns the exit status or -1. */
int ipt_run(const char *who, char *const argv[], bool ok1, struct cni_error *e);
/* "iptables" or "ip6tables". */
char *ipt_tool(bool v4);
/* Is the legacy (x_tables) nat table of this family instantiated in this netns? Then its
 * chains are invisible to nf_tables and only iptables can tell. */
bool ipt_legacy_nat(bool v4);
/* Split one line of "iptables -S" into words, in place. iptables-save quotes a word holding
 * anything but [A-Za-z0-9_-] in "..." with \", \\ and \' escaped. Returns the count, -1 past max. */
int ipt_save_words(char *line, char **w, int max);
/* fmt.Sprintf("%q", s) of Go for the strings CNI allows and then some: escapes quote,
 * backslash and control bytes; valid UTF-8 passes through, other bytes become \xNN. */
void ipt_go_quote(const char *s, struct sb *b);

#endif
