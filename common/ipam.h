/* Delegation to the IPAM plugin named in ipam.type, exec'd from CNI_PATH as the spec says. */
#ifndef CNI_IPAM_H
#define CNI_IPAM_H

#include "result.h"
#include "skel.h"

/* Find an executable plugin `type` in the colon-separated `path` into out. */
int cni_find_plugin(const char *path, const char *type, char *out, size_t outlen, struct cni_error *e);

/* Exec a plugin with the caller's CNI_* env but CNI_COMMAND = verb, config =
 * stdin_data. On success of ADD, *res holds its result (converted to 1.1.0). */
int cni_exec_plugin(const char *plugin_path, enum cni_verb verb, const char *stdin_data, size_t len,
		    struct cni_result *res, struct cni_error *e);

/* ipam.type from the config (code 7 when absent or not a plain name). */
int cni_ipam_type(const struct cni_ctx *c, const char **type, struct cni_error *e);

/* Run the config's IPAM plugin for `verb` with the plugin's own stdin. */
int cni_ipam_exec(const struct cni_ctx *c, enum cni_verb verb, struct cni_result *res, struct cni_error *e);

#endif
