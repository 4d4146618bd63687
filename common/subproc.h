/* Running a child program: the one place that spawns (a delegated IPAM plugin, iptables). Every
 * descriptor made here is close-on-exec, so a child only ever gets its own 0, 1 and 2; a child
 * started is always reaped by spawn_wait (no zombie), even when its output cannot be read. */
#ifndef CNI_SUBPROC_H
#define CNI_SUBPROC_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What one of the child's stdout/stderr is connected to. */
enum spawn_io {
	SPAWN_INHERIT, /* ours */
	SPAWN_NULL,    /* /dev/null */
	SPAWN_CAPTURE, /* stdout: a pipe read by spawn_wait; stderr: a memfd read after exit */
};

struct spawn_opts {
	const char *file;       /* the program; with `search`, a name looked up in PATH */
	bool search;
	char *const *argv;
	char *const *envp;      /* NULL: this process's environment */
	const char *in;         /* stdin: these in_len bytes (from a memfd: no pipe deadlock); NULL: ours */
	size_t in_len;
	enum spawn_io out, err;
};

/* Where spawn_start failed. */
enum spawn_stage {
	SPAWN_SETUP = 1, /* making its descriptors */
	SPAWN_STDIN,     /* writing its stdin */
	SPAWN_EXEC,      /* posix_spawn (e.g. ENOENT: no such program) */
};

struct spawn {
	pid_t pid;    /* 0: none running */
	int out_fd;   /* stdout's pipe (SPAWN_CAPTURE), else -1 */
	int err_fd;   /* stderr's memfd (SPAWN_CAPTURE), else -1 */
	enum spawn_stage stage;
};

/* Start the child. 0, or an errno value with s->stage saying where it failed (nothing is left
 * open or running then). */
int spawn_start(struct spawn *s, const struct spawn_opts *o);

/* Read the captured stdout to EOF (at most `max` bytes: *out malloc'ed, NUL-terminated, *len
 * without the NUL; both NULL/0 when stdout is not captured), then reap the child into *status
 * (waitpid's). 0, or the read's errno value (EFBIG: more than max bytes; ENOMEM); the child is
 * reaped either way. */
int spawn_wait(struct spawn *s, size_t max, char **out, size_t *len, int *status);

/* The first line of the captured stderr (read after spawn_wait), at most size-1 bytes; "" when
 * there is none. Closes the memfd. */
void spawn_stderr_line(struct spawn *s, char *buf, size_t size);

/* Read fd to EOF into a malloc'ed, NUL-terminated buffer of at most max bytes: 0, or an errno
 * value (EFBIG: more than max; ENOMEM; read's). */
int read_all_bounded(int fd, size_t max, char **out, size_t *len);

#endif
