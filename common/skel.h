/* The plugin entry point: CNI_* env to a verb, version negotiation, result or error on stdout. */
#ifndef CNI_SKEL_H
#define CNI_SKEL_H

#include <stdbool.h>
#include <stddef.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "result.h"

#define CNI_STDIN_MAX (1u << 20)

/* RELOAD is this suite's own verb (not in the CNI spec; other plugins refuse it as an unknown
 * CNI_COMMAND): re-apply an existing attachment's host-side rules (SNAT, spoof check, host ports)
 * from prevResult, the runtime's cached result, after a firewall reload wiped them. It touches
 * nothing else and is idempotent. `cnitool reload` sends it. */
enum cni_verb { CNI_ADD, CNI_DEL, CNI_CHECK, CNI_GC, CNI_STATUS, CNI_VERSION, CNI_RELOAD };

/* CNI_COMMAND's value for a verb. */
static inline const char *cni_verb_name(enum cni_verb v)
{
	static const char *const names[] = { "ADD", "DEL", "CHECK", "GC", "STATUS", "VERSION", "RELOAD" };
	return (unsigned)v < sizeof(names) / sizeof(names[0]) ? names[v] : "?";
}

struct cni_kv {
	char *key;
	char *val;
};

/* One entry of cni.dev/valid-attachments. */
struct cni_attachment {
	const char *container_id;
	const char *ifname;
};

struct cni_ctx {
	enum cni_verb verb;
	const char *command;
	const char *container_id;
	const char *netns;
	const char *ifname;
	const char *args_env; /* CNI_ARGS as given */
	const char *path; /* CNI_PATH */

	char *stdin_buf; /* the config bytes, NUL-terminated */
	size_t stdin_len;
	cJSON *conf; /* parsed config */
	const char *version; /* cniVersion ("0.1.0" when absent) */
	const char *name; /* network name */
	const char *type;

	bool has_prev;
	struct cni_result prev; /* prevResult, converted to the 1.1.0 model */

	struct cni_kv *args; /* CNI_ARGS, parsed */
	size_t n_args;

	struct cni_attachment *valid; /* GC only */
	size_t n_valid;

	struct cni_error err;
	const struct cni_plugin *inproc_ipam; /* from the plugin: see struct cni_plugin */
};

#ifndef CNIC_ID
#define CNIC_ID "dev"
#endif
/* Embedded in a plugin binary (section .note.cnic, in its first page) so that another plugin of
 * this suite can tell, by reading 4 KiB, that the file is this plugin built from the same sources
 * (CNIC_ID hashes them), and run it in-process instead of exec'ing it. */
#define CNIC_MARKER(name) "\nCNIC-PLUGIN=" name " " CNIC_ID "\n"

struct cni_plugin {
	const char *name;
	/* An IPAM plugin this one may run in-process when the file named like it in CNI_PATH carries
	 * its marker from the same build (else it is exec'd as the spec says). */
	const struct cni_plugin *inproc_ipam;
	/* CNI_ARGS keys this plugin understands (NULL-terminated); others are an
	 * error unless IgnoreUnknown=1. Runtime labels (K8S_POD_*) always pass. */
	const char *const *cni_args;
	/* Take CNI_ARGS without checking any key (the reference loopback reads none). */
	bool any_cni_args;
	/* Capabilities kept after parsing (CAP_* numbers); -1 terminated. */
	const int *caps;
	/* The config's lifecycle belongs to skel: it allocates conf_size zeroed bytes, runs parse
	 * (the plugin's fields from c->conf; c->verb says which verb asks), then verify (the checks
	 * across fields, before anything touches the kernel), hands the result to the verb and runs
	 * free_conf at the end, also after a failed parse (a zeroed or half-filled config). */
	size_t conf_size;
	int (*parse)(struct cni_ctx *c, void *conf);
	int (*verify)(struct cni_ctx *c, void *conf);
	void (*free_conf)(void *conf);
	int (*add)(struct cni_ctx *c, void *conf, struct cni_result *out);
	int (*check)(struct cni_ctx *c, void *conf);
	int (*del)(struct cni_ctx *c, void *conf);
	int (*gc)(struct cni_ctx *c, void *conf);
	int (*status)(struct cni_ctx *c, void *conf);
	/* RELOAD (see enum cni_verb); a plugin without host-side rules leaves it out (success). */
	int (*reload)(struct cni_ctx *c, void *conf);
};

/* The plugin's config for c: allocated, parsed and verified (0), or -1 with c->err set; *conf is
 * to be given to cni_conf_close either way. */
int cni_conf_open(const struct cni_plugin *p, struct cni_ctx *c, void **conf);
void cni_conf_close(const struct cni_plugin *p, void *conf);
/* Verb c->verb of p on a config from cni_conf_open (out: ADD's result). 0 or -1 (c->err). A verb
 * the plugin leaves out succeeds, except ADD. */
int cni_verb_run(const struct cni_plugin *p, struct cni_ctx *c, void *conf, struct cni_result *out);

/* Runs the plugin; returns the process exit status. */
int cni_plugin_main(const struct cni_plugin *p);

/* The value of a CNI_ARGS key, or NULL. */
const char *cni_arg(const struct cni_ctx *c, const char *key);
/* Parse "K=V;K=V" (exported for tests and fuzzing). */
int cni_args_parse(const char *s, const char *const *known, struct cni_kv **out, size_t *n, struct cni_error *e);
void cni_args_free(struct cni_kv *kv, size_t n);
/* Is (container, ifname) in the GC valid set? */
bool cni_attachment_valid(const struct cni_ctx *c, const char *container_id, const char *ifname);

/* Read all of fd, at most max bytes (code 6 past that); NUL-terminates. */
int cni_read_bounded(int fd, size_t max, char **out, size_t *len, struct cni_error *e);
/* The CNI error of a failed bounded read (err: read_all_bounded's errno value); -1. */
int cni_read_error(struct cni_error *e, int err, size_t max);

/* Parse the config text into ctx (used by skel, exported for fuzzing): JSON,
 * name, cniVersion, prevResult, GC attachments. */
int cni_parse_config(struct cni_ctx *c, struct cni_error *e);
void cni_ctx_free(struct cni_ctx *c);

#endif
