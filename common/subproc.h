/* Running a child program: the one place that spawns (a delegated IPAM plugin, iptables). Every
 * descriptor made here is close-on-exec, so a child only ever gets its own 0, 1 and 2; a child
 * started is always reaped by subproc_wait (no zombie), even when its output cannot be read. */
#ifndef CNI_SUBPROC_H
#define CNI_SUBPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What one of the child's stdout/stderr is connected to. */
enum subproc_io {
	SUBPROC_INHERIT, /* ours */
	SUBPROC_NULL, /* /dev/null */
	SUBPROC_CAPTURE, /* stdout: a pipe read by subproc_wait; stderr: a memfd read after exit */
};

struct subproc_opts {
	const char *file; /* the program; with `search`, a name looked up in PATH */
	bool search;
	char *const *argv;
	char *const *envp; /* NULL: this process's environment */
	const char *in; /* stdin: these in_len bytes (from a memfd: no pipe deadlock); NULL: ours */
	size_t in_len;
	enum subproc_io out, err;
};

/* Where subproc_start failed. */
enum subproc_stage {
	SUBPROC_SETUP = 1, /* making its descriptors */
	SUBPROC_STDIN, /* writing its stdin */
	SUBPROC_EXEC, /* posix_spawn (e.g. ENOENT: no such program) */
};

struct subproc {
	pid_t pid; /* 0: none running */
	int out_fd; /* stdout's pipe (SUBPROC_CAPTURE), else -1 */
	int err_fd; /* stderr's memfd (SUBPROC_CAPTURE), else -1 */
	enum subproc_stage stage;
};

/* Start the child. 0, or an errno value with s->stage saying where it failed (nothing is left
 * open or running then). */
int subproc_start(struct subproc *s, const struct subproc_opts *o);

/* Read the captured stdout to EOF (at most `max` bytes: *out malloc'ed, NUL-terminated, *len
 * without the NUL; both NULL/0 when stdout is not captured), then reap the child into *status
 * (waitpid's). 0, or the read's errno value (EFBIG: more than max bytes; ENOMEM); the child is
 * reaped either way. */
int subproc_wait(struct subproc *s, size_t max, char **out, size_t *len, int *status);

/* The first line of the captured stderr (read after subproc_wait), at most size-1 bytes; "" when
 * there is none. Closes the memfd. */
void subproc_stderr_line(struct subproc *s, char *buf, size_t size);

/* Read fd to EOF into a malloc'ed, NUL-terminated buffer of at most max bytes: 0, or an errno
 * value (EFBIG: more than max; ENOMEM; read's). */
int read_all_bounded(int fd, size_t max, char **out, size_t *len);

#endif
