/* The allocator the static binaries link (common/malloc.c; the sanitizer builds test glibc's
 * with the same checks): random allocations, frees and reallocs of every size class and of
 * mapped blocks, each block filled with its own pattern and verified before it is freed, so a
 * block handed out twice or overlapping another shows as a changed byte. */
#include <malloc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include "tap.h"

#define SLOTS 512

struct slot {
	unsigned char *p;
	size_t n;
	unsigned char fill;
};

static size_t rnd_size(unsigned *seed)
{
	unsigned r = (unsigned)rand_r(seed);
	switch (r % 16) {
	case 0:
		return r % 17; /* 0..16, the smallest class and its edge */
	case 1:
		return 65536 - 16 + r % 33; /* both sides of the largest class */
	case 2:
		return 65536 + r % 100000; /* mapped blocks */
	default:
		return (size_t)1 << (r % 15) | (r >> 8) % 64;
	}
}

static bool intact(const struct slot *s)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->p[i] != s->fill)
			return false;
	return true;
}

static bool put(struct slot *s, size_t n, unsigned char fill)
{
	s->n = n;
	s->fill = fill;
	memset(s->p, fill, n);
	return ((uintptr_t)s->p & 15) == 0 && malloc_usable_size(s->p) >= n;
}

static void churn(unsigned seed, int rounds, int *bad_align, int *bad_data)
{
	struct slot s[SLOTS] = { 0 };
	for (int k = 0; k < rounds; k++) {
		struct slot *x = &s[(unsigned)rand_r(&seed) % SLOTS];
		size_t n = rnd_size(&seed);
		if (x->p && !intact(x))
			++*bad_data;
		if (x->p && (rand_r(&seed) & 1)) {
			unsigned char *q = realloc(x->p, n);
			if (!q) { /* realloc(p, 0) may free p and return NULL */
				if (!n)
					x->p = NULL;
				continue;
			}
			size_t keep = n < x->n ? n : x->n;
			for (size_t i = 0; i < keep; i++)
				*bad_data += q[i] != x->fill;
			x->p = q;
		} else {
			free(x->p);
			x->p = malloc(n);
			if (!x->p)
				continue;
		}
		*bad_align += !put(x, n, (unsigned char)(k * 7 + 1));
	}
	for (int i = 0; i < SLOTS; i++) {
		if (s[i].p && !intact(&s[i]))
			++*bad_data;
		free(s[i].p);
	}
}

void test_malloc(void)
{
	int bad_align = 0, bad_data = 0;
	churn(12345, 30000, &bad_align, &bad_data);
	OK(bad_align == 0, "malloc/realloc: 16-byte aligned, usable size at least the size asked (%d wrong)", bad_align);
	OK(bad_data == 0, "malloc/realloc/free: no block overlaps another or loses its contents (%d bytes wrong)", bad_data);

	unsigned char *z = calloc(1000, 70); /* a mapped block */
	unsigned char *y = calloc(3, 5);
	size_t nz = 0;
	for (size_t i = 0; z && i < 70000; i++)
		nz += z[i] != 0;
	for (size_t i = 0; y && i < 15; i++)
		nz += y[i] != 0;
	OK(z && y && nz == 0, "calloc: zeroed, small and mapped");
	free(z);
	free(y);
#ifndef __SANITIZE_ADDRESS__ /* ASan stops the process on these, by design */
	volatile size_t huge = SIZE_MAX / 2; /* volatile: gcc refuses the literal at compile time */
	OK(calloc(huge, 4) == NULL, "calloc: a product that overflows is refused");
	OK(malloc(huge * 2 - 7) == NULL, "malloc: an impossible size is refused");
	void *c = NULL;
	OK(posix_memalign(&c, 24, 10) != 0 && !c, "posix_memalign: an alignment that is not a power of two is refused");
#endif

	void *a = aligned_alloc(4096, 8192), *b = NULL;
	OK(a && ((uintptr_t)a & 4095) == 0, "aligned_alloc: 4096-byte alignment");
	OK(posix_memalign(&b, 256, 70000) == 0 && ((uintptr_t)b & 255) == 0, "posix_memalign: 256 bytes, mapped size");
	free(a);
	free(b);
}
