/* One rollback mechanism for every ADD: each step that makes something records how to unmake it,
 * and a failed ADD runs the record in reverse (the C form of the reference plugins' `defer if
 * !success`). As a deferred call does, a record belongs to the function whose steps it holds
 * (arguments may point into its frame): that function runs it when it fails. Undo steps ignore
 * their own errors: the first error stays the one reported. Success simply drops the record. */
#ifndef CNI_UNDO_H
#define CNI_UNDO_H

#include <stddef.h>

#include "err.h"

#define UNDO_MAX 16
#define UNDO_ARG 64

typedef void (*undo_fn)(void *arg);

struct undo {
	struct {
		undo_fn fn;
		union {
			max_align_t align;
			char b[UNDO_ARG];
		} arg;
	} step[UNDO_MAX];
	size_t n;
};

/* Record fn, to be called with a copy of the len bytes at arg: push right after the thing is
 * made. When it cannot be recorded (the record full, the argument too large: a defect of the
 * caller) fn runs at once, so nothing is left, and the result is -1 (code 100). */
int undo_push(struct undo *u, undo_fn fn, const void *arg, size_t len, struct cni_error *e);
/* Run the record in reverse and empty it. */
void undo_run(struct undo *u);

#endif
