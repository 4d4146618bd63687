/* The allocator of the static (musl) binaries. A plugin lives for milliseconds and frees little;
 * musl's own allocator (mallocng) returns memory to the kernel eagerly, so one bridge ADD made
 * 18 mmap and 17 munmap calls, each munmap 30-45 µs on a virtual machine (page-table teardown and
 * TLB flush trap to the hypervisor): a third of what the ADD spent above the kernel work.
 *
 * Here: power-of-two size classes from 16 bytes to 64 KiB with one free list each, carved from
 * 1 MiB regions that are never returned (their pages are faulted in only when first used, so an
 * unused tail costs no memory); larger blocks get their own mapping, returned on free. Every block
 * is 16-byte aligned with a 16-byte header. Single-threaded by design (nothing in the suite makes
 * threads); a block freed twice or not ours is caught by the header's magic and aborts.
 * The ASan and valgrind builds (glibc) do not use this file: their allocators check the callers. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define HDR 16u
#define MIN_SHIFT 4u /* 16 bytes */
#define MAX_SHIFT 16u /* 64 KiB: larger blocks are mapped on their own */
#define N_CLASSES (MAX_SHIFT - MIN_SHIFT + 1u)
#define REGION ((size_t)1 << 20)
#define MAGIC_USED 0x6d616c6cu
#define MAGIC_FREE 0x66726565u
#define CLASS_BIG 0xffffu

struct hdr {
	size_t size; /* class blocks: capacity; big blocks: the mapping's length */
	uint16_t cls; /* size class, or CLASS_BIG */
	uint16_t off16; /* big blocks: 16-byte units from the mapping's start to the header */
	uint32_t magic;
};
_Static_assert(sizeof(struct hdr) == HDR, "header is 16 bytes");

static void *free_list[N_CLASSES];
static char *bump, *bump_end;

static struct hdr *hdr_of(void *p)
{
	struct hdr *h = (struct hdr *)((char *)p - HDR);
	if (h->magic != MAGIC_USED)
		abort(); /* freed twice, or not from this allocator */
	return h;
}

static unsigned class_of(size_t n)
{
	unsigned c = 0;
	size_t cap = (size_t)1 << MIN_SHIFT;
	while (cap < n + HDR) {
		cap <<= 1;
		c++;
	}
	return c;
}

static void *map(size_t len)
{
	void *m = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

/* A block of its own mapping, its user area aligned to align (a power of two, at least 16). */
static void *big_alloc(size_t n, size_t align)
{
	size_t page = (size_t)sysconf(_SC_PAGESIZE), len;
	if (n > SIZE_MAX / 2 - HDR - align - page) {
		errno = ENOMEM;
		return NULL;
	}
	/* the user area starts at most HDR + align - 1 bytes into the mapping */
	len = (n + HDR + align + page - 1) & ~(page - 1);
	char *m = map(len);
	if (!m) {
		errno = ENOMEM;
		return NULL;
	}
	uintptr_t user = ((uintptr_t)m + HDR + align - 1) & ~(uintptr_t)(align - 1);
	struct hdr *h = (struct hdr *)(user - HDR);
	*h = (struct hdr){ .size = len, .cls = CLASS_BIG, .off16 = (uint16_t)(((char *)h - m) / 16), .magic = MAGIC_USED };
	return (void *)user;
}

static void *class_alloc(unsigned c)
{
	size_t cap = (size_t)1 << (c + MIN_SHIFT);
	struct hdr *h;
	if (free_list[c]) {
		h = free_list[c];
		free_list[c] = *(void **)((char *)h + HDR);
	} else {
		if ((size_t)(bump_end - bump) < cap) {
			char *r = map(REGION);
			if (!r) {
				errno = ENOMEM;
				return NULL;
			}
			bump = r;
			bump_end = r + REGION;
		}
		h = (struct hdr *)bump;
		bump += cap;
	}
	*h = (struct hdr){ .size = cap, .cls = (uint16_t)c, .magic = MAGIC_USED };
	return (char *)h + HDR;
}

/* Not named malloc: gcc turns malloc + memset into a call to calloc, which here would recurse. */
static void *alloc_any(size_t n)
{
	if (n > ((size_t)1 << MAX_SHIFT) - HDR)
		return big_alloc(n, 16);
	return class_alloc(class_of(n ? n : 1));
}

void *malloc(size_t n)
{
	return alloc_any(n);
}

void free(void *p)
{
	if (!p)
		return;
	struct hdr *h = hdr_of(p);
	if (h->cls == CLASS_BIG) {
		h->magic = MAGIC_FREE;
		munmap((char *)h - (size_t)h->off16 * 16, h->size);
		return;
	}
	h->magic = MAGIC_FREE;
	*(void **)p = free_list[h->cls];
	free_list[h->cls] = h;
}

size_t malloc_usable_size(void *p)
{
	if (!p)
		return 0;
	struct hdr *h = hdr_of(p);
	return h->cls == CLASS_BIG ? h->size - (size_t)h->off16 * 16 - HDR : h->size - HDR;
}

void *calloc(size_t n, size_t m)
{
	if (m && n > SIZE_MAX / m) {
		errno = ENOMEM;
		return NULL;
	}
	void *p = alloc_any(n * m);
	if (p)
		memset(p, 0, n * m);
	return p;
}

void *realloc(void *p, size_t n)
{
	if (!p)
		return alloc_any(n);
	size_t have = malloc_usable_size(p);
	if (n <= have && (n > have / 4 || have <= 64))
		return p;
	void *q = alloc_any(n);
	if (!q)
		return NULL;
	memcpy(q, p, n < have ? n : have);
	free(p);
	return q;
}

void *aligned_alloc(size_t align, size_t n)
{
	if (!align || (align & (align - 1)) || align > ((size_t)1 << 20)) {
		errno = EINVAL;
		return NULL;
	}
	if (align <= 16)
		return alloc_any(n);
	return big_alloc(n, align);
}

int posix_memalign(void **out, size_t align, size_t n)
{
	if (align < sizeof(void *) || (align & (align - 1)))
		return EINVAL;
	void *p = aligned_alloc(align, n);
	if (!p)
		return ENOMEM;
	*out = p;
	return 0;
}

void *memalign(size_t align, size_t n)
{
	return aligned_alloc(align, n);
}
