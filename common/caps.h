/* Dropping capabilities a verb does not need. */
#ifndef CNI_CAPS_H
#define CNI_CAPS_H

#include "err.h"

/* Keep only the listed capabilities (-1 terminated; NULL keeps none) in the
 * effective and permitted sets; ones we never had are skipped. */
int cni_caps_limit(const int *keep, struct cni_error *e);

#endif
