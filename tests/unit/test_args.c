/* CNI_ARGS parsing: pairs, IgnoreUnknown, runtime labels, malformed input. */
#include <stdlib.h>

#include "skel.h"
#include "tap.h"

static int parse(const char *s, const char *const *known, struct cni_error *e, size_t *n)
{
	struct cni_kv *kv = NULL;
	int r;
	cni_err_clear(e);
	r = cni_args_parse(s, known, &kv, n, e);
	cni_args_free(kv, *n);
	return r;
}

void test_args(void)
{
	static const char *const known[] = { "IP", "MAC", NULL };
	struct cni_error e;
	struct cni_kv *kv = NULL;
	size_t n = 0;

	OK(parse(NULL, known, &e, &n) == 0 && n == 0, "no CNI_ARGS");
	OK(parse("IP=10.0.0.5", known, &e, &n) == 0 && n == 1, "one pair");
	OK(parse("IP=10.0.0.5;MAC=aa:bb:cc:dd:ee:ff", known, &e, &n) == 0 && n == 2, "two pairs");
	OK(parse("FOO=1", known, &e, &n) < 0 && e.code == CNI_ERR_DECODE && strstr(e.msg, "FOO=1"),
	   "unknown key is a decode error naming it: %s", e.msg);
	OK(parse("FOO=1;IgnoreUnknown=1", known, &e, &n) == 0, "IgnoreUnknown=1 after the key");
	OK(parse("IgnoreUnknown=true;FOO=1", known, &e, &n) == 0, "IgnoreUnknown=true");
	OK(parse("IgnoreUnknown=0;FOO=1", known, &e, &n) < 0, "IgnoreUnknown=0 keeps the check");
	OK(parse("IgnoreUnknown=maybe", known, &e, &n) < 0 && strstr(e.msg, "IgnoreUnknown"), "bad boolean");
	OK(parse("K8S_POD_NAMESPACE=default;K8S_POD_NAME=x;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u", known, &e, &n) == 0,
	   "containerd's labels pass without IgnoreUnknown");
	OK(parse("IP", known, &e, &n) < 0 && strstr(e.msg, "invalid pair"), "pair without '='");
	OK(parse("IP=1=2", known, &e, &n) < 0, "pair with two '='");
	OK(parse("IP=10.0.0.5;", known, &e, &n) < 0, "trailing ';' is an empty pair (as libcni)");
	OK(parse("=x", known, &e, &n) < 0, "empty key");
	OK(parse("IP=", known, &e, &n) == 0 && n == 1, "empty value is allowed");

	cni_err_clear(&e);
	cni_args_parse("IP=10.0.0.9;IgnoreUnknown=1", known, &kv, &n, &e);
	struct cni_ctx c = { .args = kv, .n_args = n };
	OK(cni_arg(&c, "IP") && strcmp(cni_arg(&c, "IP"), "10.0.0.9") == 0, "lookup");
	OK(cni_arg(&c, "MAC") == NULL, "absent key");
	cni_args_free(kv, n);
}
