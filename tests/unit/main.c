/* Unit test runner: pure code only (ip math, parsing, result shapes, allocator config). */
#include "tap.h"

int tap_n, tap_failed;

int main(void)
{
	test_ip();
	test_args();
	test_conf();
	test_result();
	test_hostlocal();
	test_hostlocal_store_scan();
	test_sha512();
	test_sha512_names();
	test_malloc();
	test_agent();
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
