/* Opt-in operator log: one line per verb (see README "Logging"). Never writes to stdout, never
 * fails or blocks the verb because the log cannot be written. */
#ifndef CNI_LOG_H
#define CNI_LOG_H

#include <stdbool.h>
#include <time.h>
#include <cjson/cJSON.h>

#include "err.h"
#include "result.h"

#define CNI_LOG_FILE_ENV "CNI_C_LOG_FILE"
#define CNI_LOG_LEVEL_ENV "CNI_C_LOG_LEVEL"

enum cni_log_level { CNI_LOG_OFF, CNI_LOG_ERROR, CNI_LOG_INFO, CNI_LOG_DEBUG };

struct cni_log {
	int fd; /* -1: no log */
	int level;
	bool env_file, env_level; /* set by the environment: the config's keys do not apply */
	bool conf_done;
	struct timespec t0, t_run; /* start; the verb's own work began (after parsing) */
};

/* At start: the clock, CNI_C_LOG_FILE / CNI_C_LOG_LEVEL. -1 (code 4) on a bad level. */
int cni_log_start(struct cni_log *l, struct cni_error *e);
/* The config's logFile / logLevel where the environment set none. Applies what is valid;
 * with e, -1 (code 6/7, naming the field) on a bad value; e NULL: lenient (a config that
 * failed to parse elsewhere still gets its failure logged). */
int cni_log_config(struct cni_log *l, const cJSON *conf, struct cni_error *e);

struct cni_log_entry {
	const char *plugin, *verb, *container_id, *ifname, *net, *netns, *version;
	const struct cni_result *result; /* ADD's, or NULL */
	size_t n_valid; /* GC: valid attachments */
	const struct cni_error *err; /* NULL or code 0: ok */
};
/* Writes the verb's line (one write(2), O_APPEND) and closes the log. */
void cni_log_verb(struct cni_log *l, const struct cni_log_entry *x);

#endif
