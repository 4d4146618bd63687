/* See undo.h. */
#include "undo.h"

#include <string.h>

int undo_push(struct undo *u, undo_fn fn, const void *arg, size_t len, struct cni_error *e)
{
	if (u->n == UNDO_MAX || len > UNDO_ARG) {
		fn((void *)arg);
		return cni_errf(e, CNI_ERR_INTERNAL,
				"internal error: undo record full (%zu steps) or argument too large (%zu bytes)", u->n, len);
	}
	u->step[u->n].fn = fn;
	memcpy(u->step[u->n].arg.b, arg, len);
	u->n++;
	return 0;
}

void undo_run(struct undo *u)
{
	while (u->n > 0) {
		u->n--;
		u->step[u->n].fn(u->step[u->n].arg.b);
	}
}
