/* nf_tables through libnftables, dlopen'ed by the verbs that need it: batches run in-process
 * (no exec of nft), and a plugin or verb that never touches the firewall never maps the library. */
#include "nft.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nftables/libnftables.h>

#define NFT_LIB "libnftables.so.1"
#define NFT_LOCK_DIR "/run/cni-c"
#define NFT_LOCK_FILE NFT_LOCK_DIR "/nft.lock"

/* The prototypes come from the library's own header, so a changed signature fails the build
 * instead of corrupting a call; the binary still has no link-time dependency on it. */
struct nft {
	void *lib;
	struct nft_ctx *ctx;
	__typeof__(&nft_ctx_new) ctx_new;
	__typeof__(&nft_ctx_free) ctx_free;
	__typeof__(&nft_ctx_output_set_flags) set_flags;
	__typeof__(&nft_ctx_set_dry_run) set_dry_run;
	__typeof__(&nft_ctx_buffer_output) buffer_output;
	__typeof__(&nft_ctx_buffer_error) buffer_error;
	__typeof__(&nft_ctx_get_output_buffer) get_output;
	__typeof__(&nft_ctx_get_error_buffer) get_error;
	__typeof__(&nft_run_cmd_from_buffer) run_cmd;
};

static int open_fail(struct nft *n, struct cni_error *e, const char *what)
{
	if (n->lib)
		dlclose(n->lib);
	free(n);
	return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables is not available: %s", what);
}

int nft_open(struct nft **out, struct cni_error *e)
{
	struct nft *n = calloc(1, sizeof(*n));
	char why[320];

	*out = NULL;
	if (!n)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	/* RTLD_LOCAL: its symbols (and those of libnftnl/libmnl it pulls in) stay out of our namespace. */
	n->lib = dlopen(NFT_LIB, RTLD_NOW | RTLD_LOCAL);
	if (!n->lib) {
		snprintf(why, sizeof(why), "cannot load " NFT_LIB " (Debian package libnftables1): %s", dlerror());
		return open_fail(n, e, why);
	}
#define SYM(field, name)                                                                  \
	do {                                                                              \
		if (!(*(void **)&n->field = dlsym(n->lib, name)))                         \
			return open_fail(n, e, NFT_LIB " lacks the symbol " name);        \
	} while (0)
	SYM(ctx_new, "nft_ctx_new");
	SYM(ctx_free, "nft_ctx_free");
	SYM(set_flags, "nft_ctx_output_set_flags");
	SYM(set_dry_run, "nft_ctx_set_dry_run");
	SYM(buffer_output, "nft_ctx_buffer_output");
	SYM(buffer_error, "nft_ctx_buffer_error");
	SYM(get_output, "nft_ctx_get_output_buffer");
	SYM(get_error, "nft_ctx_get_error_buffer");
	SYM(run_cmd, "nft_run_cmd_from_buffer");
#undef SYM
	if (!(n->ctx = n->ctx_new(NFT_CTX_DEFAULT)))
		return open_fail(n, e, "nft_ctx_new failed (out of memory or no netlink socket)");
	if (n->buffer_output(n->ctx) < 0 || n->buffer_error(n->ctx) < 0) {
		n->ctx_free(n->ctx);
		return open_fail(n, e, "cannot buffer libnftables output");
	}
	*out = n;
	return 0;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	n->ctx_free(n->ctx);
	dlclose(n->lib);
	free(n);
}

/* The reason and the command of nft's first complaint. Its error output reads
 *   Error: Could not process rule: No such file or directory
 *   delete chain inet t nope
 *                       ^^^^
 * (warnings, "# Warning: ...", may come first). */
static void parse_error(const char *err, char *why, size_t wl, char *cmd, size_t cl)
{
	const char *p = err ? strstr(err, "Error: ") : NULL;
	size_t l;

	why[0] = cmd[0] = '\0';
	if (!p) {
		l = err ? strcspn(err, "\n") : 0;
		snprintf(why, wl, "%.*s", (int)l, l ? err : "failed without a message");
		return;
	}
	p += strlen("Error: ");
	l = strcspn(p, "\n");
	snprintf(why, wl, "%.*s", (int)l, p);
	if (p[l] == '\n' && strncmp(p + l + 1, "Error", 5) != 0) {
		p += l + 1;
		snprintf(cmd, cl, "%.*s", (int)strcspn(p, "\n"), p);
	}
}

/* One call into libnftables. Returns 1 when it ran, 0 when it failed because the object
 * is absent and `absent_ok`, -1 otherwise. Both buffers are drained on every call, since
 * libnftables appends until read and a stale message would be blamed on the next command. */
static int run(struct nft *n, const char *cmds, unsigned flags, bool dry, bool absent_ok, struct cni_error *e)
{
	char why[256], cmd[200];
	int rc;

	n->set_flags(n->ctx, flags);
	n->set_dry_run(n->ctx, dry);
	rc = n->run_cmd(n->ctx, cmds);
	const char *err = n->get_error(n->ctx);
	if (rc == 0)
		return 1;
	n->get_output(n->ctx);
	if (absent_ok && err && strstr(err, "No such file or directory"))
		return 0;
	parse_error(err, why, sizeof(why), cmd, sizeof(cmd));
	if (strstr(why, "Operation not permitted"))
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: %s (needs CAP_NET_ADMIN)%s%s%s", why, *cmd ? " in \"" : "", cmd,
				*cmd ? "\"" : "");
	/* What a kernel without nf_tables, or without one of its modules, answers. */
	if (strstr(why, "Protocol not supported") || strstr(why, "Operation not supported") ||
	    strstr(why, "Address family not supported"))
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables: the kernel lacks nf_tables or a needed module: %s%s%s%s",
				why, *cmd ? " in \"" : "", cmd, *cmd ? "\"" : "");
	return cni_errf(e, CNI_ERR_KERNEL, "nftables: %s%s%s%s", why, *cmd ? " in \"" : "", cmd, *cmd ? "\"" : "");
}

int nft_run(struct nft *n, const char *cmds, struct cni_error *e)
{
	int r = run(n, cmds, 0, false, false, e);
	n->get_output(n->ctx);
	return r < 0 ? -1 : 0;
}

int nft_run_quiet(struct nft *n, const char *cmds, struct cni_error *e)
{
	int r = run(n, cmds, 0, false, true, e);
	n->get_output(n->ctx);
	return r;
}

int nft_check(struct nft *n, const char *cmds, struct cni_error *e)
{
	int r = run(n, cmds, 0, true, false, e);
	n->get_output(n->ctx);
	return r < 0 ? -1 : 0;
}

int nft_list_json(struct nft *n, const char *cmd, cJSON **out, struct cni_error *e)
{
	int r = run(n, cmd, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE, false, true, e);
	cJSON *j, *arr;

	*out = NULL;
	if (r <= 0)
		return r < 0 ? -1 : 1;
	j = cJSON_Parse(n->get_output(n->ctx));
	arr = j ? cJSON_DetachItemFromObjectCaseSensitive(j, "nftables") : NULL;
	cJSON_Delete(j);
	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: \"%s\" printed no readable JSON", cmd);
	}
	*out = arr;
	return 0;
}

int nft_query(struct nft *n, const char *cmd, const char **out, struct cni_error *e)
{
	int r = run(n, cmd, 0, false, true, e);
	const char *o = n->get_output(n->ctx);
	*out = r == 1 ? o : NULL;
	return r;
}

int nft_lock(struct cni_error *e)
{
	int fd;

	if (mkdir(NFT_LOCK_DIR, 0755) < 0 && errno != EEXIST)
		return cni_errf(e, CNI_ERR_IO, "creating %s: %s", NFT_LOCK_DIR, strerror(errno));
	fd = open(NFT_LOCK_FILE, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return cni_errf(e, CNI_ERR_IO, "opening %s: %s", NFT_LOCK_FILE, strerror(errno));
	while (flock(fd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			int err = errno;
			close(fd);
			return cni_errf(e, CNI_ERR_IO, "locking %s: %s", NFT_LOCK_FILE, strerror(err));
		}
	}
	return fd;
}

void nft_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
