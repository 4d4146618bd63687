/* A few TAP helpers for the C unit tests: one "ok"/"not ok" line per check. */
#ifndef TAP_H
#define TAP_H

#include <stdio.h>
#include <string.h>

extern int tap_n, tap_failed;

#define OK(cond, ...)                                                                   \
	do {                                                                            \
		int ok_ = !!(cond);                                                     \
		tap_n++;                                                                \
		if (ok_) {                                                              \
			printf("ok %d - ", tap_n);                                      \
		} else {                                                                \
			tap_failed++;                                                   \
			printf("not ok %d - ", tap_n);                                  \
		}                                                                       \
		printf(__VA_ARGS__);                                                    \
		printf("\n");                                                           \
		if (!ok_)                                                               \
			printf("#   failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
	} while (0)

#define STREQ(a, b, ...)                        \
	OK(strcmp((a), (b)) == 0, __VA_ARGS__); \
	if (strcmp((a), (b)) != 0)              \
	printf("#   got \"%s\"\n#   want \"%s\"\n", (a), (b))

void test_ip(void);
void test_args(void);
void test_conf(void);
void test_result(void);
void test_hostlocal(void);
void test_hostlocal_store_scan(void);
void test_sha512(void);
void test_sha512_names(void);
void test_malloc(void);
void test_agent(void);

#endif
