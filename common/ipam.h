/* Delegation to the IPAM plugin named in ipam.type, exec'd from CNI_PATH as the spec says. */
#ifndef CNI_IPAM_H
#define CNI_IPAM_H

#include <sys/types.h>

#include "result.h"
#include "skel.h"
#include "subproc.h"
#include "undo.h"

/* Find an executable plugin `type` in the colon-separated `path` into out. */
int cni_find_plugin(const char *path, const char *type, char *out, size_t outlen, struct cni_error *e);

/* A delegated plugin started but not yet waited for: lets the caller do kernel work while
 * the IPAM plugin runs. */
struct cni_exec {
	struct subproc sp;
	enum cni_verb verb;
	char name[64];
	/* in-process run (see struct cni_plugin.inproc_ipam): its outcome, kept for finish */
	bool inproc;
	int rc;
	struct cni_result res;
	struct cni_error err;
};

/* Exec a plugin with the caller's CNI_* env but CNI_COMMAND = verb, config = stdin_data. */
int cni_exec_start(const char *plugin_path, enum cni_verb verb, const char *stdin_data, size_t len, struct cni_exec *x,
		   struct cni_error *e);
/* Wait for it; on success of ADD, *res holds its result (converted to 1.1.0). */
int cni_exec_finish(struct cni_exec *x, struct cni_result *res, struct cni_error *e);
/* Wait for it and hand back its raw stdout (NUL-terminated, the caller frees it) and its wait
 * status, for a caller that reads the output itself: cnitool keeps VERSION info, results and
 * CNI errors as the plugin wrote them, the way libcni reports them. -1 only when the output
 * could not be read (the plugin is reaped either way). Not for an in-process run. */
int cni_exec_wait(struct cni_exec *x, char **out, size_t *len, int *status, struct cni_error *e);
/* start + finish */
int cni_exec_plugin(const char *plugin_path, enum cni_verb verb, const char *stdin_data, size_t len, struct cni_result *res,
		    struct cni_error *e);

/* ipam.type from the config: 1 = set, 0 = no ipam (L2 only), -1 = error (code 7 when it
 * is not a plain name). */
int cni_ipam_type(const struct cni_ctx *c, const char **type, struct cni_error *e);

/* Run the config's IPAM plugin for `verb` with the plugin's own stdin. */
int cni_ipam_start(const struct cni_ctx *c, enum cni_verb verb, struct cni_exec *x, struct cni_error *e);
int cni_ipam_exec(const struct cni_ctx *c, enum cni_verb verb, struct cni_result *res, struct cni_error *e);

/* A main plugin's IPAM ADD: started early (it runs while the plugin does the kernel work),
 * finished when its addresses are needed, and released by an IPAM DEL when the ADD fails after
 * it: cni_ipam_add_start records that in the ADD's undo list. */
struct cni_ipam_add {
	const struct cni_ctx *c;
	struct cni_exec x;
	bool running, added;
	/* the undo reaps the IPAM run but releases nothing: set when the ADD repeats a live
	 * attachment's, whose reservation is the one the container is using */
	bool keep;
};
int cni_ipam_add_start(struct cni_ipam_add *ia, const struct cni_ctx *c, struct undo *u, struct cni_error *e);
/* Wait for its result (once). */
int cni_ipam_add_finish(struct cni_ipam_add *ia, struct cni_result *res, struct cni_error *e);

/* The IPAM plugins a main plugin may run in-process (struct cni_plugin.inproc_ipam): defined by
 * the IPAM plugin's own sources, linked into the main plugin's binary whole, so that the one it
 * runs in-process is the one its executable would have run. A main plugin names it in its
 * cni_plugin table and includes nothing else of the IPAM plugin; the delegation (cni_ipam_*
 * above) decides at run time between running it here and exec'ing the file from CNI_PATH.
 *   hostlocal_plugin  plugins/ipam/host-local: the reference host-local, with its store. */
extern const struct cni_plugin hostlocal_plugin;

#endif
