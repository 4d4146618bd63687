/* libnftables, dlopen'ed on first use: in-process nf_tables batches (no exec of nft, no
 * xtables lock), and nothing mapped by the verbs that do not touch the firewall. */
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

#define NFT_LOCK_DIR "/run/cni-c"
#define NFT_LOCK_FILE NFT_LOCK_DIR "/nft.lock"

struct nft {
	void *lib;
	struct nft_ctx *ctx;
	struct nft_ctx *(*ctx_new)(uint32_t);
	void (*ctx_free)(struct nft_ctx *);
	void (*set_flags)(struct nft_ctx *, unsigned int);
	int (*buffer_output)(struct nft_ctx *);
	int (*buffer_error)(struct nft_ctx *);
	const char *(*get_output)(struct nft_ctx *);
	const char *(*get_error)(struct nft_ctx *);
	int (*run)(struct nft_ctx *, const char *);
};

int nft_open(struct nft **out, struct cni_error *e)
{
	struct nft *n = calloc(1, sizeof(*n));
	*out = NULL;
	if (!n)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	n->lib = dlopen("libnftables.so.1", RTLD_NOW | RTLD_LOCAL);
	if (!n->lib) {
		free(n);
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE,
				"nftables is not available: cannot load libnftables.so.1 (install the libnftables1 package): %s",
				dlerror());
	}
#define SYM(field, name)                                                                            \
	if (!(*(void **)&n->field = dlsym(n->lib, name))) {                                         \
		dlclose(n->lib);                                                                    \
		free(n);                                                                            \
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "libnftables.so.1 has no symbol %s", name); \
	}
	SYM(ctx_new, "nft_ctx_new")
	SYM(ctx_free, "nft_ctx_free")
	SYM(set_flags, "nft_ctx_output_set_flags")
	SYM(buffer_output, "nft_ctx_buffer_output")
	SYM(buffer_error, "nft_ctx_buffer_error")
	SYM(get_output, "nft_ctx_get_output_buffer")
	SYM(get_error, "nft_ctx_get_error_buffer")
	SYM(run, "nft_run_cmd_from_buffer")
#undef SYM
	if (!(n->ctx = n->ctx_new(NFT_CTX_DEFAULT))) {
		dlclose(n->lib);
		free(n);
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables: cannot create a context");
	}
	n->buffer_output(n->ctx);
	n->buffer_error(n->ctx);
	*out = n;
	return 0;
}

void nft_close(struct nft *n)
{
	if (!n)
		return;
	n->ctx_free(n->ctx);
	/* libnftables registers atexit-free state; keep it mapped until exit */
	free(n);
}

static bool err_is_absent(const char *err)
{
	return err && strstr(err, "No such file or directory");
}

/* The first line of nft's complaint, for a message. */
static void first_line(const char *s, char *buf, size_t n)
{
	size_t l = s ? strcspn(s, "\n") : 0;
	if (l >= n)
		l = n - 1;
	memcpy(buf, s ? s : "", l);
	buf[l] = '\0';
}

static int run(struct nft *n, const char *cmds, unsigned flags, bool quiet, struct cni_error *e)
{
	n->set_flags(n->ctx, flags);
	if (n->run(n->ctx, cmds) == 0)
		return 1;
	const char *err = n->get_error(n->ctx);
	if (quiet && err_is_absent(err))
		return 0;
	char line[256], cmd[160];
	first_line(err, line, sizeof(line));
	first_line(cmds, cmd, sizeof(cmd));
	if (strstr(err ? err : "", "Operation not permitted"))
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: %s (needs CAP_NET_ADMIN)", line);
	if (strstr(err ? err : "", "Protocol not supported") || strstr(err ? err : "", "not supported"))
		return cni_errf(e, CNI_ERR_NOT_AVAILABLE, "nftables: the kernel lacks a needed feature: %s", line);
	return cni_errf(e, CNI_ERR_KERNEL, "nftables: %s (running \"%s\"...)", line, cmd);
}

int nft_run(struct nft *n, const char *cmds, struct cni_error *e)
{
	return run(n, cmds, 0, false, e) < 0 ? -1 : 0;
}

int nft_run_quiet(struct nft *n, const char *cmds, struct cni_error *e)
{
	return run(n, cmds, 0, true, e);
}

int nft_list_json(struct nft *n, const char *cmd, cJSON **out, struct cni_error *e)
{
	int r = run(n, cmd, NFT_CTX_OUTPUT_JSON | NFT_CTX_OUTPUT_HANDLE, true, e);
	*out = NULL;
	if (r <= 0)
		return r < 0 ? -1 : 1;
	cJSON *j = cJSON_Parse(n->get_output(n->ctx));
	cJSON *arr = j ? cJSON_DetachItemFromObjectCaseSensitive(j, "nftables") : NULL;
	cJSON_Delete(j);
	if (!cJSON_IsArray(arr)) {
		cJSON_Delete(arr);
		return cni_errf(e, CNI_ERR_KERNEL, "nftables: unreadable JSON listing for \"%s\"", cmd);
	}
	*out = arr;
	return 0;
}

int nft_query(struct nft *n, const char *cmd, const char **out, struct cni_error *e)
{
	int r = run(n, cmd, 0, true, e);
	*out = r == 1 ? n->get_output(n->ctx) : NULL;
	return r;
}

int nft_lock(struct cni_error *e)
{
	int fd;
	if (mkdir(NFT_LOCK_DIR, 0755) < 0 && errno != EEXIST)
		return cni_errf(e, CNI_ERR_IO, "creating %s: %s", NFT_LOCK_DIR, strerror(errno));
	if ((fd = open(NFT_LOCK_FILE, O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0)
		return cni_errf(e, CNI_ERR_IO, "opening %s: %s", NFT_LOCK_FILE, strerror(errno));
	while (flock(fd, LOCK_EX) < 0)
		if (errno != EINTR) {
			close(fd);
			return cni_errf(e, CNI_ERR_IO, "locking %s: %s", NFT_LOCK_FILE, strerror(errno));
		}
	return fd;
}

void nft_unlock(int fd)
{
	if (fd >= 0)
		close(fd);
}
