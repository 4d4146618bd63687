/* host-local's store: the reference's files (one per address, last_reserved_ip.N, lock) kept
 * byte-compatible, plus an index under .ccni/ so no operation walks the directory:
 *   .ccni/own/<id>:<ifname>   the addresses an attachment holds (a symlink whose target lists them)
 *   .ccni/maps/<start>-<end>  a bitmap of taken addresses per range (ranges up to 2^20)
 *   .ccni/stamp               inode, mtime and ctime of the network directory when the index
 *                             was last exact; any other writer (the reference plugin, an admin's
 *                             rm) changes them, and the next open rebuilds the index.
 * The stamp is spoiled (overwritten in place) before our first change and rewritten after the
 * last, so a crash in between also forces a rebuild; that is also why the index files need no
 * temp-and-rename of their own. Reservation files are created O_EXCL as the reference does; an
 * empty one (a crash between create and write) owns nothing and is reclaimed. No fsync: a plugin
 * * crash cannot lose page-cache writes, and a power loss takes every container with it. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fault.h"
#include "hostlocal.h"

#define IDX_DIR ".ccni"
#define MAP_MAX_ADDRS (1u << 20)
#define LAST_PREFIX "last_reserved_ip."
#define OWNER_MAX 4096

struct hl_map {
	struct ip start, end;
	uint64_t size;
	int fd;
	uint8_t *bits; /* loaded on first scan */
};

struct hl_store {
	char path[4096];
	int dfd, lockfd, idx, own, mapsd;
	bool dirty;
	struct hl_map *maps;
	size_t n_maps;
};

static int io_err(struct cni_error *e, const struct hl_store *s, const char *what, const char *name)
{
	return cni_errf(e, CNI_ERR_IO, "host-local store %s: %s %s: %s", s->path, what, name ? name : "", strerror(errno));
}

static int mkdir_p(const char *path)
{
	char buf[4096];
	size_t n = strlen(path);
	if (n == 0 || n >= sizeof(buf))
		return errno = ENAMETOOLONG, -1;
	memcpy(buf, path, n + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0755) < 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	if (mkdir(buf, 0755) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static int open_subdir(int parent, const char *name)
{
	if (mkdirat(parent, name, 0755) < 0 && errno != EEXIST)
		return -1;
	return openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* Whole small file into buf (NUL-terminated); -1 with errno. */
static ssize_t read_small(int dir, const char *name, char *buf, size_t cap)
{
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
	size_t n = 0;
	if (fd < 0)
		return -1;
	while (n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		n += (size_t)r;
	}
	close(fd);
	buf[n] = '\0';
	return (ssize_t)n;
}

/* Write a file in place. For the index (guarded by the stamp) and last_reserved_ip (a hint the
 * reference also writes in place): a torn write costs a rebuild or one round-robin position. */
static int write_inplace(int dir, const char *name, const char *data, size_t len)
{
	/* No O_TRUNC: truncating to 0 frees the file's block and rewriting allocates another, and on a
	 * filesystem mounted with discard that round trip cost ~0.5 ms per file here. Overwrite,
	 * then cut the tail (within the same block for these small files). */
	int fd = openat(dir, name, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	ssize_t w = pwrite(fd, data, len, 0);
	int se = errno;
	if (w == (ssize_t)len && ftruncate(fd, (off_t)len) < 0)
		w = -1, se = errno;
	close(fd);
	if (w != (ssize_t)len)
		return errno = w < 0 ? se : ENOSPC, -1;
	return 0;
}

static void mark_dirty(struct hl_store *s)
{
	if (!s->dirty) {
		/* spoil it in place: cheaper than unlink and create on every operation */
		int fd = openat(s->idx, "stamp", O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
		if (fd >= 0) {
			if (pwrite(fd, "dirty", 5, 0) != 5)
				unlinkat(s->idx, "stamp", 0);
			close(fd);
		}
		s->dirty = true;
	}
}

static int stamp_text(struct hl_store *s, char *buf, size_t n)
{
	struct stat st;
	if (fstat(s->dfd, &st) < 0)
		return -1;
	memset(buf, ' ', n);
	int w = snprintf(buf, n, "ccni-index 2 %" PRIu64 " %lld.%09ld %lld.%09ld", (uint64_t)st.st_ino,
			 (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec, (long long)st.st_ctim.tv_sec, st.st_ctim.tv_nsec);
	if (w > 0 && (size_t)w < n)
		buf[w] = ' ';
	buf[n - 1] = '\n';
	return 0;
}

/* Owner file content: "id\r\nifname", or just "id" (oldest format). */
static void parse_owner(char *buf, struct hl_owner *o)
{
	char *p = buf, *end = buf + strlen(buf);
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	char *sep = strstr(p, "\r\n");
	if (sep) {
		*sep = '\0';
		o->id = strdup(p);
		o->ifname = strdup(sep + 2);
	} else {
		o->id = strdup(p);
		o->ifname = strdup("");
	}
}

void hl_owner_free(struct hl_owner *o)
{
	free(o->id);
	free(o->ifname);
	o->id = o->ifname = NULL;
}

static int owner_read(struct hl_store *s, const char *name, struct hl_owner *o)
{
	char buf[OWNER_MAX];
	memset(o, 0, sizeof(*o));
	if (read_small(s->dfd, name, buf, sizeof(buf)) < 0) {
		if (errno == ENOENT)
			return 0;
		/* a symlink or unreadable entry: taken, by nobody we know */
		buf[0] = '\0';
	}
	parse_owner(buf, o);
	if (!o->id || !o->ifname) {
		hl_owner_free(o);
		return -1;
	}
	return 1;
}

static bool owner_is(const struct hl_owner *o, const char *id, const char *ifname)
{
	return strcmp(o->id, id) == 0 && strcmp(o->ifname, ifname) == 0;
}

int hl_store_owner(struct hl_store *s, const struct ip *ip, struct hl_owner *o, struct cni_error *e)
{
	char name[IP_STRLEN];
	int r = owner_read(s, ip_fmt(ip, name), o);
	if (r < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	return r;
}

/* ---- owner index ---- */

static uint64_t fnv64(const char *a, const char *b)
{
	uint64_t h = 1469598103934665603ULL;
	for (const char *p = a; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	h = (h ^ 0) * 1099511628211ULL;
	for (const char *p = b; *p; p++)
		h = (h ^ (uint8_t)*p) * 1099511628211ULL;
	return h;
}

static void own_key(const char *id, const char *ifname, char *buf, size_t n)
{
	bool plain = strlen(id) + strlen(ifname) < 200 && !strchr(id, '/') && !strchr(id, '\n') && id[0] != '.' &&
		     id[0] != '\0';
	if (plain)
		snprintf(buf, n, "%s:%s", id, ifname);
	else
		snprintf(buf, n, "h.%016" PRIx64, fnv64(id, ifname));
}

/* own/<key> is a symlink whose target lists the addresses ("10.0.0.5,fd00::5"): creating one is a
 * single inode with the text inline, no data block to allocate (or free, with discard, on DEL).
 * Entries are hints: find() checks every address against its reservation file. */
static int own_read(struct hl_store *s, const char *id, const char *ifname, struct ip **ips, size_t *n)
{
	char key[256], buf[OWNER_MAX];
	*ips = NULL;
	*n = 0;
	own_key(id, ifname, key, sizeof(key));
	ssize_t l = readlinkat(s->own, key, buf, sizeof(buf) - 1);
	if (l < 0)
		return errno == ENOENT || errno == EINVAL ? 0 : -1;
	buf[l] = '\0';
	for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
		struct ip ip;
		if (ip_parse(tok, &ip) < 0)
			continue;
		struct ip *v = realloc(*ips, (*n + 1) * sizeof(*v));
		if (!v)
			return -1;
		*ips = v;
		(*ips)[(*n)++] = ip;
	}
	return 0;
}

static int own_write(struct hl_store *s, const char *id, const char *ifname, const struct ip *ips, size_t n)
{
	char key[256], buf[OWNER_MAX];
	size_t off = 0;
	own_key(id, ifname, key, sizeof(key));
	if (unlinkat(s->own, key, 0) < 0 && errno != ENOENT)
		return -1;
	if (n == 0)
		return 0;
	for (size_t i = 0; i < n && off < sizeof(buf) - IP_STRLEN - 2; i++) {
		char a[IP_STRLEN];
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s%s", i ? "," : "", ip_fmt(&ips[i], a));
	}
	return symlinkat(buf, s->own, key);
}

/* ---- bitmaps ---- */

static void map_name(const struct ip *a, const struct ip *b, char *buf, size_t n)
{
	char x[IP_STRLEN], y[IP_STRLEN];
	snprintf(buf, n, "%s-%s", ip_fmt(a, x), ip_fmt(b, y));
}

static struct hl_map *map_add(struct hl_store *s, const struct ip *start, const struct ip *end)
{
	struct hl_map *v = realloc(s->maps, (s->n_maps + 1) * sizeof(*v));
	if (!v)
		return NULL;
	s->maps = v;
	struct hl_map *m = &s->maps[s->n_maps++];
	memset(m, 0, sizeof(*m));
	m->start = *start;
	m->end = *end;
	m->size = ip_distance(start, end) + 1;
	m->fd = -1;
	return m;
}

static void maps_free(struct hl_store *s)
{
	for (size_t i = 0; i < s->n_maps; i++) {
		if (s->maps[i].fd >= 0)
			close(s->maps[i].fd);
		free(s->maps[i].bits);
	}
	free(s->maps);
	s->maps = NULL;
	s->n_maps = 0;
}

static int maps_list(struct hl_store *s)
{
	int fd = dup(s->mapsd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	while ((de = readdir(d))) {
		char buf[2 * IP_STRLEN + 2], *dash;
		struct ip a, b;
		snprintf(buf, sizeof(buf), "%s", de->d_name);
		/* v6 names contain no '-' so the separator is unambiguous */
		if (!(dash = strchr(buf, '-')))
			continue;
		*dash = '\0';
		if (ip_parse(buf, &a) < 0 || ip_parse(dash + 1, &b) < 0 || a.len != b.len || ip_cmp(&a, &b) > 0 ||
		    ip_distance(&a, &b) >= MAP_MAX_ADDRS)
			continue;
		if (!map_add(s, &a, &b)) {
			closedir(d);
			return -1;
		}
	}
	rewinddir(d);
	closedir(d);
	return 0;
}

static int map_open(struct hl_store *s, struct hl_map *m)
{
	char name[2 * IP_STRLEN + 2];
	if (m->fd >= 0)
		return 0;
	map_name(&m->start, &m->end, name, sizeof(name));
	m->fd = openat(s->mapsd, name, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	return m->fd < 0 ? -1 : 0;
}

static void map_set(struct hl_store *s, const struct ip *ip, bool taken)
{
	for (size_t i = 0; i < s->n_maps; i++) {
		struct hl_map *m = &s->maps[i];
		uint8_t byte = 0;
		if (ip->len != m->start.len || ip_cmp(ip, &m->start) < 0 || ip_cmp(ip, &m->end) > 0)
			continue;
		uint64_t off = ip_distance(&m->start, ip);
		if (map_open(s, m) < 0)
			continue;
		if (m->bits)
			byte = m->bits[off / 8];
		else if (pread(m->fd, &byte, 1, (off_t)(off / 8)) != 1)
			continue;
		if (taken)
			byte |= (uint8_t)(1u << (off % 8));
		else
			byte &= (uint8_t)~(1u << (off % 8));
		if (m->bits)
			m->bits[off / 8] = byte;
		if (pwrite(m->fd, &byte, 1, (off_t)(off / 8)) != 1) {
			/* The map can no longer be trusted: drop it, the next use rebuilds it. */
			char name[2 * IP_STRLEN + 2];
			map_name(&m->start, &m->end, name, sizeof(name));
			unlinkat(s->mapsd, name, 0);
		}
	}
}

/* Build a bitmap for [start, end] from the reservation files. */
static struct hl_map *map_build(struct hl_store *s, const struct hl_range *r)
{
	uint64_t size = ip_distance(&r->start, &r->end) + 1, bytes = (size + 7) / 8;
	char name[2 * IP_STRLEN + 2];
	uint8_t *bits = calloc(1, bytes ? bytes : 1);
	int fd = dup(s->dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	struct hl_map *m;

	if (!bits || !d) {
		free(bits);
		if (d)
			closedir(d);
		else if (fd >= 0)
			close(fd);
		return NULL;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct ip ip;
		if (de->d_name[0] == '.' || ip_parse(de->d_name, &ip) < 0 || ip.len != r->start.len ||
		    ip_cmp(&ip, &r->start) < 0 || ip_cmp(&ip, &r->end) > 0)
			continue;
		uint64_t off = ip_distance(&r->start, &ip);
		bits[off / 8] |= (uint8_t)(1u << (off % 8));
	}
	closedir(d);
	map_name(&r->start, &r->end, name, sizeof(name));
	if (write_inplace(s->mapsd, name, (const char *)bits, bytes) < 0 || !(m = map_add(s, &r->start, &r->end))) {
		free(bits);
		return NULL;
	}
	m->bits = bits;
	return m;
}

static struct hl_map *map_for(struct hl_store *s, const struct hl_range *r)
{
	if (ip_distance(&r->start, &r->end) >= MAP_MAX_ADDRS)
		return NULL;
	for (size_t i = 0; i < s->n_maps; i++) {
		struct hl_map *m = &s->maps[i];
		if (!ip_equal(&m->start, &r->start) || !ip_equal(&m->end, &r->end))
			continue;
		if (m->bits)
			return m;
		uint64_t bytes = (m->size + 7) / 8;
		struct stat st;
		if (map_open(s, m) == 0 && fstat(m->fd, &st) == 0 && (uint64_t)st.st_size == bytes &&
		    (m->bits = malloc(bytes ? bytes : 1)) && pread(m->fd, m->bits, bytes, 0) == (ssize_t)bytes)
			return m;
		/* unreadable or wrong size: forget it and build a new one */
		char name[2 * IP_STRLEN + 2];
		map_name(&m->start, &m->end, name, sizeof(name));
		unlinkat(s->mapsd, name, 0);
		if (m->fd >= 0)
			close(m->fd);
		free(m->bits);
		s->maps[i] = s->maps[--s->n_maps];
		break;
	}
	return map_build(s, r);
}

int hl_store_bitmap_test(struct hl_store *s, const struct hl_range *r, const struct ip *ip)
{
	struct hl_map *m = map_for(s, r);
	if (!m)
		return -1;
	uint64_t off = ip_distance(&r->start, ip);
	return (m->bits[off / 8] >> (off % 8)) & 1;
}

struct ip hl_store_bitmap_next_free(struct hl_store *s, const struct hl_range *r, const struct ip *from)
{
	struct ip none = { 0 };
	struct hl_map *m = map_for(s, r);
	if (!m)
		return *from;
	for (uint64_t off = ip_distance(&r->start, from); off < m->size;) {
		if ((off % 64) == 0 && off + 64 <= m->size) {
			uint64_t w;
			memcpy(&w, m->bits + off / 8, 8);
			if (w == UINT64_MAX) {
				off += 64;
				continue;
			}
		}
		if (!((m->bits[off / 8] >> (off % 8)) & 1))
			return ip_add(&r->start, off);
		off++;
	}
	return none;
}

size_t hl_store_count_in(struct hl_store *s, const struct hl_range *r)
{
	struct hl_map *m = map_for(s, r);
	size_t n = 0;
	if (m) {
		for (uint64_t i = 0; i < (m->size + 7) / 8; i++)
			n += (size_t)__builtin_popcount(m->bits[i]);
		return n;
	}
	int fd = dup(s->dfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return 0;
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct ip ip;
		if (de->d_name[0] != '.' && ip_parse(de->d_name, &ip) == 0 && ip.len == r->start.len &&
		    ip_cmp(&ip, &r->start) >= 0 && ip_cmp(&ip, &r->end) <= 0)
			n++;
	}
	closedir(d);
	return n;
}

/* ---- rebuild ---- */

struct entry {
	struct ip ip;
	struct hl_owner o;
};

static int entry_cmp(const void *a, const void *b)
{
	const struct entry *x = a, *y = b;
	int c = strcmp(x->o.id, y->o.id);
	return c ? c : strcmp(x->o.ifname, y->o.ifname);
}

/* Remove the files of a directory (those starting with `prefix`, if given). */
static void wipe_dir(int dirfd, const char *prefix)
{
	int fd = dup(dirfd);
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return;
	}
	rewinddir(d);
	while ((de = readdir(d)))
		if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") &&
		    (!prefix || strncmp(de->d_name, prefix, strlen(prefix)) == 0))
			unlinkat(dirfd, de->d_name, 0);
	closedir(d);
}

/* Is the name exactly how we (and Go) print this address? */
static bool ip_named(const char *name, struct ip *ip)
{
	char canon[IP_STRLEN];
	return name[0] != '.' && ip_parse(name, ip) == 0 && strcmp(ip_fmt(ip, canon), name) == 0;
}

int hl_store_rebuild(struct hl_store *s, struct cni_error *e)
{
	struct entry *ents = NULL;
	size_t n = 0, cap = 0;
	int fd = dup(s->dfd), rc = -1;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;

	mark_dirty(s);
	if (!d) {
		if (fd >= 0)
			close(fd);
		return io_err(e, s, "listing", "");
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		struct ip ip;
		struct hl_owner o;
		if (!ip_named(de->d_name, &ip))
			continue;
		int r = owner_read(s, de->d_name, &o);
		if (r < 0)
			goto oom;
		if (r == 0)
			continue;
		if (!o.id[0]) {
			/* torn (a crash between create and write): owned by nobody */
			unlinkat(s->dfd, de->d_name, 0);
			hl_owner_free(&o);
			continue;
		}
		if (n == cap) {
			cap = cap ? cap * 2 : 256;
			struct entry *v = realloc(ents, cap * sizeof(*v));
			if (!v) {
				hl_owner_free(&o);
				goto oom;
			}
			ents = v;
		}
		ents[n].ip = ip;
		ents[n++].o = o;
	}
	wipe_dir(s->own, NULL);
	wipe_dir(s->mapsd, NULL);
	wipe_dir(s->idx, "tmp."); /* temp files a crash left behind */
	maps_free(s);
	if (n)
		qsort(ents, n, sizeof(*ents), entry_cmp);
	for (size_t i = 0; i < n;) {
		size_t j = i;
		struct ip ips[64];
		size_t k = 0;
		while (j < n && entry_cmp(&ents[i], &ents[j]) == 0) {
			if (k < 64)
				ips[k++] = ents[j].ip;
			j++;
		}
		if (own_write(s, ents[i].o.id, ents[i].o.ifname, ips, k) < 0) {
			io_err(e, s, "writing index for", ents[i].o.id);
			goto out;
		}
		i = j;
	}
	rc = 0;
	goto out;
oom:
	cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
out:
	closedir(d);
	for (size_t i = 0; i < n; i++)
		hl_owner_free(&ents[i].o);
	free(ents);
	return rc;
}

/* ---- open / close ---- */

int hl_store_open(struct hl_store **out, const char *data_dir, const char *network, struct cni_error *e)
{
	struct hl_store *s = calloc(1, sizeof(*s));
	char want[128], have[192];
	*out = NULL;
	if (!s)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	s->dfd = s->lockfd = s->idx = s->own = s->mapsd = -1;
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s", data_dir, network) >= sizeof(s->path)) {
		cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"ipam.dataDir\" is too long");
		goto fail;
	}
	if (mkdir_p(s->path) < 0) {
		cni_errf(e, CNI_ERR_IO, "field \"ipam.dataDir\": cannot create the store %s: %s", s->path, strerror(errno));
		goto fail;
	}
	if ((s->dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int err = errno;
		struct stat lst;
		bool link = lstat(s->path, &lst) == 0 && S_ISLNK(lst.st_mode);

		cni_errf(e, CNI_ERR_IO, "field \"ipam.dataDir\": cannot open the store %s: %s", s->path,
			 link ? "it is a symlink (refused)" : strerror(err));
		goto fail;
	}
	if ((s->lockfd = openat(s->dfd, "lock", O_RDONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600)) < 0) {
		io_err(e, s, "opening", "lock");
		goto fail;
	}
	while (flock(s->lockfd, LOCK_EX) < 0) {
		if (errno != EINTR) {
			io_err(e, s, "locking", "lock");
			goto fail;
		}
	}
	if ((s->idx = open_subdir(s->dfd, IDX_DIR)) < 0 || (s->own = open_subdir(s->idx, "own")) < 0 ||
	    (s->mapsd = open_subdir(s->idx, "maps")) < 0) {
		io_err(e, s, "opening index", IDX_DIR);
		goto fail;
	}
	ssize_t r = read_small(s->idx, "stamp", have, sizeof(have));
	if (r != (ssize_t)sizeof(want) || stamp_text(s, want, sizeof(want)) < 0 || memcmp(want, have, sizeof(want)) != 0) {
		if (hl_store_rebuild(s, e) < 0)
			goto fail;
	} else if (maps_list(s) < 0) {
		io_err(e, s, "listing", IDX_DIR "/maps");
		goto fail;
	}
	*out = s;
	return 0;
fail:
	hl_store_close(s);
	return -1;
}

int hl_store_close(struct hl_store *s)
{
	int rc = 0;
	if (!s)
		return 0;
	if (s->dirty && s->idx >= 0) {
		char st[128];
		/* fixed length, so an in-place write replaces all of it */
		if (stamp_text(s, st, sizeof(st)) < 0 || write_inplace(s->idx, "stamp", st, sizeof(st)) < 0)
			rc = -1;
	}
	maps_free(s);
	for (int *fd = &s->dfd; fd <= &s->mapsd; fd++)
		if (*fd >= 0)
			close(*fd);
	free(s);
	return rc;
}

/* ---- reservations ---- */

int hl_store_reserve(struct hl_store *s, const struct ip *ip, const char *id, const char *ifname, struct cni_error *e)
{
	char name[IP_STRLEN], content[OWNER_MAX];
	int n, fd;

	mark_dirty(s);
	ip_fmt(ip, name);
	n = snprintf(content, sizeof(content), "%s\r\n%s", id, ifname);
	if (n < 0 || (size_t)n >= sizeof(content))
		return cni_errf(e, CNI_ERR_INVALID_ENV, "container ID too long");
	/* O_EXCL is the reservation, as in the reference. A crash between create and write leaves an
	 * empty file, which owns nothing and is reclaimed (below, and by GC); the stamp is spoiled, so
	 * the index is rebuilt as well. */
	for (int tries = 0;; tries++) {
		fd = openat(s->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST || tries)
			return errno == EEXIST ? 0 : io_err(e, s, "reserving", name);
		struct hl_owner o;
		int r = owner_read(s, name, &o);
		bool taken = r > 0 && o.id[0];
		hl_owner_free(&o);
		if (taken) {
			map_set(s, ip, true);
			return 0;
		}
		unlinkat(s->dfd, name, 0); /* torn: reclaim */
	}
	if (write(fd, content, (size_t)n) != n) {
		int se = errno ? errno : ENOSPC;
		close(fd);
		unlinkat(s->dfd, name, 0);
		errno = se;
		return io_err(e, s, "writing reservation", name);
	}
	close(fd);
	map_set(s, ip, true);
	return 1;
}

int hl_store_find(struct hl_store *s, const char *id, const char *ifname, struct ip **ips, size_t *n,
		  struct cni_error *e)
{
	/* Exact (id, ifname) first; files of the oldest format (ID only) only when
	 * there are none, as the reference's ReleaseByID does. */
	const char *ifn[2] = { ifname, "" };
	*ips = NULL;
	*n = 0;
	for (int pass = 0; pass < 2 && *n == 0; pass++) {
		struct ip *cand = NULL;
		size_t nc = 0;
		if (pass == 1 && !*ifname)
			break;
		if (own_read(s, id, ifn[pass], &cand, &nc) < 0) {
			free(cand);
			return io_err(e, s, "reading index for", id);
		}
		for (size_t i = 0; i < nc; i++) {
			struct hl_owner o;
			char name[IP_STRLEN];
			int r = owner_read(s, ip_fmt(&cand[i], name), &o);
			if (r < 0) {
				free(cand);
				return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			}
			if (r > 0 && owner_is(&o, id, ifn[pass]))
				cand[(*n)++] = cand[i];
			hl_owner_free(&o);
		}
		if (*n)
			*ips = cand;
		else
			free(cand);
		if (*n && pass == 1)
			break;
	}
	return 0;
}

int hl_store_index_owner(struct hl_store *s, const char *id, const char *ifname, const struct ip *ips, size_t n,
			 struct cni_error *e)
{
	struct ip *have = NULL, all[64];
	size_t nh = 0, k = 0;
	mark_dirty(s);
	if (own_read(s, id, ifname, &have, &nh) < 0) {
		free(have);
		return io_err(e, s, "reading index for", id);
	}
	for (size_t i = 0; i < nh + n && k < 64; i++) {
		const struct ip *ip = i < nh ? &have[i] : &ips[i - nh];
		bool dup = false;
		for (size_t j = 0; j < k; j++)
			dup |= ip_equal(&all[j], ip);
		if (!dup)
			all[k++] = *ip;
	}
	free(have);
	if (own_write(s, id, ifname, all, k) < 0)
		return io_err(e, s, "writing index for", id);
	return 0;
}

static int own_drop(struct hl_store *s, const char *id, const char *ifname, const struct ip *ip)
{
	struct ip *have = NULL;
	size_t nh = 0, k = 0;
	if (own_read(s, id, ifname, &have, &nh) < 0) {
		free(have);
		return -1;
	}
	for (size_t i = 0; i < nh; i++)
		if (!ip_equal(&have[i], ip))
			have[k++] = have[i];
	int r = k == nh ? 0 : own_write(s, id, ifname, have, k);
	free(have);
	return r;
}

int hl_store_release_ip(struct hl_store *s, const struct ip *ip, const char *id, const char *ifname,
			struct cni_error *e)
{
	char name[IP_STRLEN];
	struct hl_owner o;
	int r = owner_read(s, ip_fmt(ip, name), &o);
	if (r < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
	if (r == 0)
		return 0;
	bool mine = owner_is(&o, id, ifname);
	hl_owner_free(&o);
	if (!mine)
		return 0;
	mark_dirty(s);
	if (unlinkat(s->dfd, name, 0) < 0 && errno != ENOENT)
		return io_err(e, s, "releasing", name);
	map_set(s, ip, false);
	if (own_drop(s, id, ifname, ip) < 0)
		return io_err(e, s, "updating index for", id);
	return 1;
}

int hl_store_release_owner(struct hl_store *s, const char *id, const char *ifname, struct cni_error *e)
{
	struct ip *ips = NULL;
	size_t n = 0;
	int released = 0;
	if (hl_store_find(s, id, ifname, &ips, &n, e) < 0)
		return -1;
	if (n == 0)
		return 0;
	mark_dirty(s);
	for (size_t i = 0; i < n; i++) {
		char name[IP_STRLEN];
		if (unlinkat(s->dfd, ip_fmt(&ips[i], name), 0) < 0 && errno != ENOENT) {
			free(ips);
			return io_err(e, s, "releasing", name);
		}
		map_set(s, &ips[i], false);
		released++;
	}
	free(ips);
	/* Drop the index entries (exact, and the ID-only one the fallback used). */
	if (own_write(s, id, ifname, NULL, 0) < 0 || own_write(s, id, "", NULL, 0) < 0)
		return io_err(e, s, "updating index for", id);
	return released;
}

int hl_store_last_reserved(struct hl_store *s, size_t set_idx, struct ip *out)
{
	char name[64], buf[128];
	memset(out, 0, sizeof(*out));
	snprintf(name, sizeof(name), LAST_PREFIX "%zu", set_idx);
	if (read_small(s->dfd, name, buf, sizeof(buf)) < 0)
		return 0;
	buf[strcspn(buf, " \t\r\n")] = '\0';
	return ip_parse(buf, out) == 0 ? 1 : 0;
}

int hl_store_set_last_reserved(struct hl_store *s, size_t set_idx, const struct ip *ip, struct cni_error *e)
{
	char name[64], buf[IP_STRLEN];
	mark_dirty(s);
	snprintf(name, sizeof(name), LAST_PREFIX "%zu", set_idx);
	ip_fmt(ip, buf);
	if (write_inplace(s->dfd, name, buf, strlen(buf)) < 0)
		return io_err(e, s, "writing", name);
	if (FAULT(e, "host-local last reserved") < 0)
		return -1;
	return 0;
}

int hl_store_foreach(struct hl_store *s, hl_visit_fn fn, void *arg, struct cni_error *e)
{
	int fd = dup(s->dfd), rc = 0;
	DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
	struct dirent *de;
	if (!d) {
		if (fd >= 0)
			close(fd);
		return io_err(e, s, "listing", "");
	}
	rewinddir(d);
	while (rc >= 0 && (de = readdir(d))) {
		struct ip ip;
		struct hl_owner o;
		if (!ip_named(de->d_name, &ip))
			continue;
		int r = owner_read(s, de->d_name, &o);
		if (r < 0) {
			rc = cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
			break;
		}
		if (r == 0)
			continue;
		rc = fn(s, &ip, &o, arg);
		hl_owner_free(&o);
	}
	closedir(d);
	return rc;
}

int hl_store_taken(struct hl_store *s, const struct ip *ip)
{
	char name[IP_STRLEN];
	struct stat st;
	if (fstatat(s->dfd, ip_fmt(ip, name), &st, AT_SYMLINK_NOFOLLOW) == 0)
		return st.st_size > 0 || !S_ISREG(st.st_mode) ? 1 : 0; /* empty = torn, reclaimable */
	return errno == ENOENT ? 0 : -1;
}

int hl_store_drop_file(struct hl_store *s, const struct ip *ip, struct cni_error *e)
{
	char name[IP_STRLEN];
	mark_dirty(s);
	if (unlinkat(s->dfd, ip_fmt(ip, name), 0) < 0 && errno != ENOENT)
		return io_err(e, s, "releasing", name);
	map_set(s, ip, false);
	return 0;
}
