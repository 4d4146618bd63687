/* Running a child program (see subproc.h). */
#include "subproc.h"

#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

int read_all_bounded(int fd, size_t max, char **out, size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap + 1);

	*out = NULL;
	*len = 0;
	if (!buf)
		return ENOMEM;
	for (;;) {
		if (n == cap) {
			if (cap > max) {
				free(buf);
				return EFBIG;
			}
			char *nb = realloc(buf, cap * 2 + 1);
			if (!nb) {
				free(buf);
				return ENOMEM;
			}
			buf = nb;
			cap *= 2;
		}
		ssize_t r = read(fd, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			int err = errno;
			free(buf);
			return err;
		}
		if (r == 0)
			break;
		n += (size_t)r;
	}
	if (n > max) {
		free(buf);
		return EFBIG;
	}
	buf[n] = '\0';
	*out = buf;
	*len = n;
	return 0;
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* stdin's memfd holding the data, rewound */
static int stdin_memfd(const char *data, size_t len, int *fd)
{
	if ((*fd = memfd_create("cni-c-stdin", MFD_CLOEXEC)) < 0)
		return errno;
	for (size_t off = 0; off < len;) {
		ssize_t w = write(*fd, data + off, len - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return w < 0 ? errno : EIO;
		off += (size_t)w;
	}
	return lseek(*fd, 0, SEEK_SET) < 0 ? errno : 0;
}

/* The descriptor the child's fd `which` (1 or 2) gets: -1 for ours; for a pipe, *keep is our end. */
static int out_fd(enum subproc_io io, int which, int *keep)
{
	int p[2];
	switch (io) {
	case SUBPROC_NULL:
		return open("/dev/null", O_WRONLY | O_CLOEXEC);
	case SUBPROC_CAPTURE:
		if (which == 2)
			return *keep = memfd_create("cni-c-stderr", MFD_CLOEXEC);
		if (pipe2(p, O_CLOEXEC) < 0)
			return -1;
		*keep = p[0];
		return p[1];
	default:
		return -2;
	}
}

int subproc_start(struct subproc *s, const struct subproc_opts *o)
{
	int fds[3] = { -1, -1, -1 }, err = 0;
	posix_spawn_file_actions_t fa;

	memset(s, 0, sizeof(*s));
	s->out_fd = s->err_fd = -1;
	if (o->in && (err = stdin_memfd(o->in, o->in_len, &fds[0])) != 0) {
		/* a memfd that could not be made is a setup failure, one not written a stdin one */
		s->stage = fds[0] < 0 ? SUBPROC_SETUP : SUBPROC_STDIN;
		goto out;
	}
	if ((fds[1] = out_fd(o->out, 1, &s->out_fd)) == -1 || (fds[2] = out_fd(o->err, 2, &s->err_fd)) == -1) {
		err = errno;
		s->stage = SUBPROC_SETUP;
		goto out;
	}
	if ((err = posix_spawn_file_actions_init(&fa)) != 0) {
		s->stage = SUBPROC_SETUP;
		goto out;
	}
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0)
			posix_spawn_file_actions_adddup2(&fa, fds[i], i);
	char *const *env = o->envp ? o->envp : environ;
	err = o->search ? posix_spawnp(&s->pid, o->file, &fa, NULL, o->argv, env)
			: posix_spawn(&s->pid, o->file, &fa, NULL, o->argv, env);
	posix_spawn_file_actions_destroy(&fa);
	if (err) {
		s->pid = 0;
		s->stage = SUBPROC_EXEC;
	}
out:
	/* the child's ends: it has its copies now (the stderr memfd is both ends: keep ours) */
	for (int i = 0; i < 3; i++)
		if (fds[i] >= 0 && fds[i] != s->err_fd)
			close(fds[i]);
	if (err) {
		close_fd(&s->out_fd);
		close_fd(&s->err_fd);
	}
	return err;
}

int subproc_wait(struct subproc *s, size_t max, char **out, size_t *len, int *status)
{
	int err = 0;

	*out = NULL;
	*len = 0;
	*status = 0;
	if (s->out_fd >= 0)
		err = read_all_bounded(s->out_fd, max, out, len);
	close_fd(&s->out_fd);
	/* reap it even when its output was unreadable: no zombie, no stray pid */
	if (s->pid > 0)
		while (waitpid(s->pid, status, 0) < 0 && errno == EINTR)
			;
	s->pid = 0;
	return err;
}

void subproc_stderr_line(struct subproc *s, char *buf, size_t size)
{
	ssize_t k = s->err_fd >= 0 && size > 1 ? pread(s->err_fd, buf, size - 1, 0) : 0;
	if (size) {
		buf[k > 0 ? k : 0] = '\0';
		buf[strcspn(buf, "\n")] = '\0';
	}
	close_fd(&s->err_fd);
}
