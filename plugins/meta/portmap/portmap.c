/* portmap plugin: placeholder until the implementation lands (issue 6). */
#include "skel.h"

static int cmd_add(struct cni_ctx *c, struct cni_result *out)
{
	(void)out;
	return cni_errf(&c->err, CNI_ERR_INTERNAL, "portmap: not implemented yet");
}

int main(void)
{
	static const struct cni_plugin p = { .name = "portmap", .any_cni_args = true, .add = cmd_add };
	return cni_plugin_main(&p);
}
