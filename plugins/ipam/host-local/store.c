/* host-local's store: the reference's files, and one of ours it never reads as a reservation. One
 * file per reserved address, named by it and holding "<containerID>\r\n<ifname>" (files of the
 * oldest format hold only the ID), `last_reserved_ip.<N>`, the `lock` both implementations flock,
 * and `.cni-c-boot-id`, the boot the store was last opened in (see reclaim_previous_boot).
 *
 * Every operation takes the lock and reads the directory once, names and contents, into a sorted
 * table; every answer (what an attachment holds, which addresses are free, how full a range is)
 * comes from that table, and each change is made to the files and the table together. Nothing is
 * cached between operations, so the answers are exact whoever else writes the store (the reference
 * plugin, an administrator, a restore without the lock, a rewrite in place) and on any filesystem,
 * whatever its timestamps: an earlier version kept an index guarded by the directory's timestamps,
 * which a coarse clock, a writer without the lock or a rewrite in place could all get past.
 * What that costs is one open and read per reservation (measured in the README's Performance
 * section); the reference reads every file too, after an lstat, on each ADD and DEL.
 *
 * Reservations are created O_EXCL as the reference does: the create is the reservation, so a
 * writer outside the lock can never be given the same address. An empty file (a crash between
 * create and write) owns nothing: the allocator reclaims it and GC removes it. No fsync: a plugin
 * crash cannot lose page-cache writes, and a power loss takes every container with it. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "fault.h"
#include "hostlocal.h"

#define OLD_INDEX_DIR ".ccni" /* the index of earlier versions: removed on sight */
#define LAST_PREFIX "last_reserved_ip."
#define OWNER_MAX 4096
#define BOOT_FILE ".cni-c-boot-id" /* the boot this store was last opened in */
#define BOOT_ID_PATH "/proc/sys/kernel/random/boot_id"

enum ent_kind {
	ENT_OWNED, /* "<id>\r\n<ifname>", or "<id>" (ifname "") */
	ENT_TORN, /* empty: a crash between create and write; owns nothing, reclaimable */
	ENT_FOREIGN, /* a symlink, fifo or unreadable entry: taken, by nobody we know */
};

struct hl_ent {
	struct ip ip;
	enum ent_kind kind;
	struct hl_owner o; /* id and ifname; "" for torn and foreign */
};

struct hl_store {
	char path[4096];
	int dfd, lockfd;
	bool listed; /* dfd's offset has moved: rewind before the next listing */
	struct hl_ent *ents; /* sorted by address */
	size_t n, cap;
};

static int io_err(struct cni_error *e, const struct hl_store *s, const char *what, const char *name)
{
	return cni_errf(e, CNI_ERR_IO, "host-local store %s: %s %s: %s", s->path, what, name ? name : "", cni_strerror(errno));
}

static int oom(struct cni_error *e)
{
	return cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
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

/* The descriptors of a directory scan's reads, closed together (close_range) when they are
 * consecutive, as they are unless the process has holes below them: each syscall costs some
 * microseconds on a virtual machine, and a scan reads every reservation. */
static struct {
	bool on;
	int n;
	int fd[64];
} deferred;

static int fd_cmp(const void *a, const void *b)
{
	return *(const int *)a - *(const int *)b;
}

/* Sorted, then each run of consecutive descriptors in one close_range (a descriptor freed by one
 * batch is reused by the next, so a batch is usually two runs). */
static void deferred_flush(void)
{
	qsort(deferred.fd, (size_t)deferred.n, sizeof(deferred.fd[0]), fd_cmp);
	for (int i = 0, j; i < deferred.n; i = j) {
		for (j = i + 1; j < deferred.n && deferred.fd[j] == deferred.fd[j - 1] + 1; j++)
			;
		if (j - i == 1 || syscall(SYS_close_range, deferred.fd[i], deferred.fd[j - 1], 0) < 0)
			for (int k = i; k < j; k++)
				close(deferred.fd[k]);
	}
	deferred.n = 0;
}

static void close_read_fd(int fd)
{
	if (!deferred.on) {
		close(fd);
		return;
	}
	if (deferred.n == (int)(sizeof(deferred.fd) / sizeof(deferred.fd[0])))
		deferred_flush();
	deferred.fd[deferred.n++] = fd;
}

/* Whole small file into buf (NUL-terminated); -1 with errno. */
static ssize_t read_small(int dir, const char *name, char *buf, size_t cap)
{
	int fd = openat(dir, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
	size_t n = 0;
	int se = 0;
	if (fd < 0)
		return -1;
	while (n < cap - 1) {
		ssize_t r = read(fd, buf + n, cap - 1 - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			se = errno;
		if (r <= 0)
			break;
		n += (size_t)r;
		/* a short read of a regular file is its end: no second read for the 0 (one syscall per
		 * reservation saved on every scan) */
		if ((size_t)r < cap - 1 - (n - (size_t)r))
			break;
	}
	close_read_fd(fd);
	buf[n] = '\0';
	if (se)
		return errno = se, -1;
	return (ssize_t)n;
}

/* Write a small file in place (last_reserved_ip: a hint the reference also writes in place). */
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

/* Owner file content, trimmed as the reference trims it: "id\r\nifname", or just "id". */
static int parse_owner(char *buf, struct hl_owner *o)
{
	char *p = buf, *end = buf + strlen(buf);
	while (p < end && isspace((unsigned char)*p))
		p++;
	while (end > p && isspace((unsigned char)end[-1]))
		*--end = '\0';
	char *sep = strstr(p, "\r\n");
	if (sep)
		*sep = '\0';
	o->id = strdup(p);
	o->ifname = strdup(sep ? sep + 2 : "");
	if (!o->id || !o->ifname) {
		hl_owner_free(o);
		return -1;
	}
	return 0;
}

void hl_owner_free(struct hl_owner *o)
{
	free(o->id);
	free(o->ifname);
	o->id = o->ifname = NULL;
}

/* Is the name exactly how we (and Go) print this address? */
static bool ip_named(const char *name, struct ip *ip)
{
	char canon[IP_STRLEN];
	return name[0] != '.' && ip_parse(name, ip) == 0 && strcmp(ip_fmt(ip, canon), name) == 0;
}

/* Read one reservation file into *x. 1 = an entry, 0 = gone, -1 = the store cannot be read. */
static int ent_read(struct hl_store *s, const char *name, const struct ip *ip, struct hl_ent *x, struct cni_error *e)
{
	char buf[OWNER_MAX];
	memset(x, 0, sizeof(*x));
	x->ip = *ip;
	if (read_small(s->dfd, name, buf, sizeof(buf)) < 0) {
		switch (errno) {
		case ENOENT:
			return 0;
		case ELOOP:
		case EACCES:
		case EPERM:
		case ENXIO:
		case EISDIR:
		case EAGAIN:
		case EINVAL:
			x->kind = ENT_FOREIGN;
			buf[0] = '\0';
			break;
		default:
			/* EMFILE, EIO, ENOMEM...: an answer without this file would not be exact */
			return io_err(e, s, "reading", name);
		}
	}
	if (parse_owner(buf, &x->o) < 0)
		return oom(e);
	if (x->kind != ENT_FOREIGN)
		x->kind = x->o.id[0] ? ENT_OWNED : ENT_TORN;
	return 1;
}

static void ents_free(struct hl_store *s)
{
	for (size_t i = 0; i < s->n; i++)
		hl_owner_free(&s->ents[i].o);
	free(s->ents);
	s->ents = NULL;
	s->n = s->cap = 0;
}

static int ent_cmp(const void *a, const void *b)
{
	return ip_cmp(&((const struct hl_ent *)a)->ip, &((const struct hl_ent *)b)->ip);
}

/* Index of the first entry at or after ip. */
static size_t lower_bound(const struct hl_store *s, const struct ip *ip)
{
	size_t lo = 0, hi = s->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (ip_cmp(&s->ents[mid].ip, ip) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct hl_ent *ent_find(struct hl_store *s, const struct ip *ip)
{
	size_t i = lower_bound(s, ip);
	return i < s->n && ip_equal(&s->ents[i].ip, ip) ? &s->ents[i] : NULL;
}

static int ent_grow(struct hl_store *s)
{
	if (s->n < s->cap)
		return 0;
	size_t cap = s->cap ? s->cap * 2 : 64;
	struct hl_ent *v = realloc(s->ents, cap * sizeof(*v));
	if (!v)
		return -1;
	s->ents = v;
	s->cap = cap;
	return 0;
}

/* Put x (owned by the table from here on) in its place, replacing an entry for the same address. */
static int ent_put(struct hl_store *s, struct hl_ent *x)
{
	size_t i = lower_bound(s, &x->ip);
	if (i < s->n && ip_equal(&s->ents[i].ip, &x->ip)) {
		hl_owner_free(&s->ents[i].o);
		s->ents[i] = *x;
		return 0;
	}
	if (ent_grow(s) < 0) {
		hl_owner_free(&x->o);
		return -1;
	}
	memmove(&s->ents[i + 1], &s->ents[i], (s->n - i) * sizeof(*x));
	s->ents[i] = *x;
	s->n++;
	return 0;
}

static void ent_drop(struct hl_store *s, const struct ip *ip)
{
	size_t i = lower_bound(s, ip);
	if (i < s->n && ip_equal(&s->ents[i].ip, ip)) {
		hl_owner_free(&s->ents[i].o);
		memmove(&s->ents[i], &s->ents[i + 1], (s->n - i - 1) * sizeof(s->ents[0]));
		s->n--;
	}
}

/* A listing of the store straight from getdents64 on its own descriptor, in one 32 KiB buffer
 * (about 800 entries a call): fdopendir on a copy would add a dup, an fstat, two fcntl, an lseek
 * and a close to every scan, and read 2 KiB at a time. */
struct dscan {
	struct hl_store *s;
	size_t pos, len;
};
struct dent64 {
	uint64_t ino;
	int64_t off;
	unsigned short reclen;
	unsigned char type;
	char name[];
};
static char dscan_buf[32768] __attribute__((aligned(8)));

static int dscan_start(struct dscan *d, struct hl_store *s)
{
	if (s->listed && lseek(s->dfd, 0, SEEK_SET) < 0)
		return -1;
	s->listed = true;
	d->s = s;
	d->pos = d->len = 0;
	return 0;
}

/* The next entry; NULL at the end (errno 0) or on an error (errno set). */
static const struct dent64 *dscan_next(struct dscan *d)
{
	if (d->pos >= d->len) {
		long n;
		do
			n = syscall(SYS_getdents64, d->s->dfd, dscan_buf, sizeof(dscan_buf));
		while (n < 0 && errno == EINTR);
		if (n <= 0) {
			if (n == 0)
				errno = 0;
			return NULL;
		}
		d->pos = 0, d->len = (size_t)n;
	}
	const struct dent64 *de = (const struct dent64 *)(dscan_buf + d->pos);
	d->pos += de->reclen;
	return de;
}

/* The whole directory into the table. */
static int scan(struct hl_store *s, struct cni_error *e)
{
	struct dscan d;
	const struct dent64 *de;
	int rc = 0;
	if (dscan_start(&d, s) < 0)
		return io_err(e, s, "listing", "");
	deferred.on = true;
	for (errno = 0; (de = dscan_next(&d)); errno = 0) {
		struct ip ip;
		int r;
		if (de->type == DT_DIR || !ip_named(de->name, &ip))
			continue;
		if (ent_grow(s) < 0) {
			rc = oom(e);
			break;
		}
		if ((r = ent_read(s, de->name, &ip, &s->ents[s->n], e)) < 0) {
			rc = -1;
			break;
		}
		s->n += (size_t)r;
	}
	int se = errno;
	deferred_flush();
	deferred.on = false;
	errno = se;
	if (rc == 0 && errno)
		rc = io_err(e, s, "listing", "");
	if (rc == 0 && s->n > 1)
		qsort(s->ents, s->n, sizeof(*s->ents), ent_cmp);
	return rc;
}

/* The index directory of earlier versions (.ccni/{own,maps}/..., stamp): ours to remove. */
static void remove_old_index(int dfd)
{
	static const char *const subs[] = { "own", "maps", "" };
	struct stat st;
	if (fstatat(dfd, OLD_INDEX_DIR, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
		return;
	int idx = openat(dfd, OLD_INDEX_DIR, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (idx < 0)
		return;
	for (int i = 0; i < 3; i++) {
		int sd = subs[i][0] ? openat(idx, subs[i], O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC) : dup(idx);
		DIR *d = sd >= 0 ? fdopendir(sd) : NULL;
		struct dirent *de;
		if (!d) {
			if (sd >= 0)
				close(sd);
			continue;
		}
		while ((de = readdir(d)))
			if (strcmp(de->d_name, ".") && strcmp(de->d_name, "..") && de->d_type != DT_DIR)
				unlinkat(dirfd(d), de->d_name, 0);
		closedir(d);
		if (subs[i][0])
			unlinkat(idx, subs[i], AT_REMOVEDIR);
	}
	close(idx);
	unlinkat(dfd, OLD_INDEX_DIR, AT_REMOVEDIR);
}

/* ---- a previous boot's reservations ---- */

/* The boot ID, trimmed; false when the kernel does not tell (then nothing is reclaimed). */
static bool boot_id(char *out, size_t cap)
{
	ssize_t n = read_small(AT_FDCWD, BOOT_ID_PATH, out, cap);
	while (n > 0 && isspace((unsigned char)out[n - 1]))
		out[--n] = '\0';
	return n > 0;
}

/* The first operation on a store after a boot releases the reservations made before that boot:
 * no container outlives a reboot, and a runtime that never ran DEL for them (the node went down
 * with its containers) would leak them for good. The boot ID is recorded in the store (a dot file
 * no reference version reads as a reservation), so every later operation of the same boot only
 * compares two short strings. "Made before this boot" is the file's modification time against
 * the boot time: reservations that another writer (the reference plugin) made in this boot
 * before our first operation stay. Regular files named by an address only; last_reserved_ip,
 * the lock and anything else stay. Nothing here fails the operation: a store we cannot clean or
 * mark is tried again next time. */
static void reclaim_previous_boot(struct hl_store *s)
{
	char cur[64], rec[64];
	struct timespec rt, bt;

	if (!boot_id(cur, sizeof(cur)))
		return;
	if (read_small(s->dfd, BOOT_FILE, rec, sizeof(rec)) > 0) {
		size_t n = strlen(rec);
		while (n && isspace((unsigned char)rec[n - 1]))
			rec[--n] = '\0';
		if (strcmp(rec, cur) == 0)
			return;
	}
	if (clock_gettime(CLOCK_REALTIME, &rt) < 0 || clock_gettime(CLOCK_BOOTTIME, &bt) < 0)
		return;
	/* a second of slack for the boot time's rounding, in favour of keeping */
	time_t booted = rt.tv_sec - bt.tv_sec - 1;
	struct dscan d;
	const struct dent64 *de;
	if (dscan_start(&d, s) < 0)
		return;
	while ((de = dscan_next(&d))) {
		struct ip ip;
		struct stat st;
		if (!ip_named(de->name, &ip) || fstatat(s->dfd, de->name, &st, AT_SYMLINK_NOFOLLOW) < 0)
			continue;
		if (S_ISREG(st.st_mode) && st.st_mtim.tv_sec < booted)
			unlinkat(s->dfd, de->name, 0);
	}
	char line[sizeof(cur) + 1];
	int n = snprintf(line, sizeof(line), "%s\n", cur);
	write_inplace(s->dfd, BOOT_FILE, line, (size_t)n);
}

/* ---- open / close ---- */

int hl_store_open(struct hl_store **out, const char *data_dir, const char *network, struct cni_error *e)
{
	struct hl_store *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s)
		return oom(e);
	s->dfd = s->lockfd = -1;
	if ((size_t)snprintf(s->path, sizeof(s->path), "%s/%s", data_dir, network) >= sizeof(s->path)) {
		cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"ipam.dataDir\" is too long");
		goto fail;
	}
	/* The store is there on every ADD and DEL but the first: open it, and only when that fails
	 * create its path (then open again, reporting as before). */
	s->dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (s->dfd < 0 && mkdir_p(s->path) < 0) {
		cni_errf(e, CNI_ERR_IO, "field \"ipam.dataDir\": cannot create the store %s: %s", s->path, cni_strerror(errno));
		goto fail;
	}
	if (s->dfd < 0 && (s->dfd = open(s->path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0) {
		int err = errno;
		struct stat lst;
		bool link = lstat(s->path, &lst) == 0 && S_ISLNK(lst.st_mode);

		cni_errf(e, CNI_ERR_IO, "field \"ipam.dataDir\": cannot open the store %s: %s", s->path,
			 link ? "it is a symlink (refused)" : cni_strerror(err));
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
	remove_old_index(s->dfd);
	reclaim_previous_boot(s);
	if (scan(s, e) < 0)
		goto fail;
	*out = s;
	return 0;
fail:
	hl_store_close(s);
	return -1;
}

int hl_store_close(struct hl_store *s)
{
	if (!s)
		return 0;
	ents_free(s);
	if (s->dfd >= 0)
		close(s->dfd);
	if (s->lockfd >= 0)
		close(s->lockfd); /* drops the flock */
	free(s);
	return 0;
}

/* ---- questions, answered from the table ---- */

static bool owner_is(const struct hl_owner *o, const char *id, const char *ifname)
{
	return strcmp(o->id, id) == 0 && strcmp(o->ifname, ifname) == 0;
}

int hl_store_owner(struct hl_store *s, const struct ip *ip, struct hl_owner *o, struct cni_error *e)
{
	const struct hl_ent *x = ent_find(s, ip);
	memset(o, 0, sizeof(*o));
	if (!x)
		return 0;
	o->id = strdup(x->o.id);
	o->ifname = strdup(x->o.ifname);
	if (!o->id || !o->ifname) {
		hl_owner_free(o);
		return oom(e);
	}
	return 1;
}

int hl_store_find(struct hl_store *s, enum hl_match how, const char *id, const char *ifname, struct ip **ips, size_t *n,
		  struct cni_error *e)
{
	*ips = NULL;
	*n = 0;
	for (int pass = 0; pass < 2 && *n == 0; pass++) {
		/* pass 0: "<id>\r\n<ifname>"; pass 1: files of the oldest format, holding only "<id>" */
		const char *want = pass ? "" : ifname;
		if ((pass == 0 && how == HL_LEGACY) || (pass == 1 && (how == HL_EXACT || !ifname[0])))
			continue;
		for (size_t i = 0; i < s->n; i++) {
			const struct hl_ent *x = &s->ents[i];
			if (x->kind != ENT_OWNED || !owner_is(&x->o, id, want))
				continue;
			struct ip *v = realloc(*ips, (*n + 1) * sizeof(*v));
			if (!v) {
				free(*ips);
				*ips = NULL;
				*n = 0;
				return oom(e);
			}
			*ips = v;
			(*ips)[(*n)++] = x->ip;
		}
	}
	return 0;
}

int hl_store_taken(struct hl_store *s, const struct ip *ip)
{
	const struct hl_ent *x = ent_find(s, ip);
	return x && x->kind != ENT_TORN;
}

struct ip hl_store_next_free(struct hl_store *s, const struct ip *from, const struct ip *to)
{
	struct ip none = { 0 }, x = *from;
	size_t i = lower_bound(s, &x);
	for (;;) {
		while (i < s->n && ip_cmp(&s->ents[i].ip, &x) < 0)
			i++;
		if (i >= s->n || !ip_equal(&s->ents[i].ip, &x) || s->ents[i].kind == ENT_TORN)
			return x;
		if (ip_equal(&x, to))
			return none;
		x = ip_next(&x);
	}
}

uint64_t hl_store_count_in(struct hl_store *s, const struct hl_range *r)
{
	uint64_t n = 0;
	for (size_t i = lower_bound(s, &r->start); i < s->n && ip_cmp(&s->ents[i].ip, &r->end) <= 0; i++)
		n += s->ents[i].kind != ENT_TORN;
	return n;
}

/* ---- changes: to the files, then the table ---- */

/* A reservation file created whole: 1 = made, -1 (errno EEXIST) = the name is taken, 0 = it
 * could not be written (errno), -2 = no unnamed file could be made or linked here (no O_TMPFILE
 * support, no /proc, a read-only or full filesystem...): the caller creates it with O_EXCL, and
 * reports what that meets. */
static int reserve_whole(int dfd, const char *name, const char *content, size_t len)
{
	char self[64];
	int fd = openat(dfd, ".", O_TMPFILE | O_WRONLY | O_CLOEXEC, 0600), r = 1, se = 0;
	if (fd < 0)
		return -2;
	snprintf(self, sizeof(self), "/proc/self/fd/%d", fd);
	if (write(fd, content, len) != (ssize_t)len)
		r = 0, se = errno ? errno : ENOSPC;
	else if (linkat(AT_FDCWD, self, dfd, name, AT_SYMLINK_FOLLOW) < 0)
		r = errno == EEXIST ? -1 : -2, se = errno;
	close(fd);
	if (r != 1)
		errno = se;
	return r;
}

int hl_store_reserve(struct hl_store *s, const struct ip *ip, const char *id, const char *ifname, struct cni_error *e)
{
	char name[IP_STRLEN], content[OWNER_MAX];
	struct hl_ent x = { .ip = *ip, .kind = ENT_OWNED };
	int n, fd;

	ip_fmt(ip, name);
	n = snprintf(content, sizeof(content), "%s\r\n%s", id, ifname);
	if (n < 0 || (size_t)n >= sizeof(content))
		return cni_errf(e, CNI_ERR_INVALID_ENV, "container ID too long");
	/* The file appears whole (created unnamed, written, then linked: link fails on EEXIST as
	 * O_EXCL does), so that no crash, nor the death of this process while the in-process IPAM's
	 * thread writes, leaves it empty; where unnamed files are not supported, O_EXCL is the
	 * reservation, as in the reference, and a crash between create and write leaves an empty file,
	 * which owns nothing and is reclaimed here and by GC. */
	for (int tries = 0;; tries++) {
		if ((fd = reserve_whole(s->dfd, name, content, (size_t)n)) == 1)
			break;
		if (fd == 0)
			return cni_errf(e, CNI_ERR_IO, "host-local store %s: writing reservation %s: %s", s->path, name,
					cni_strerror(errno));
		if (fd == -2)
			fd = openat(s->dfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0)
			break;
		if (errno != EEXIST)
			return io_err(e, s, "reserving", name);
		/* torn, or created since the scan by a writer outside the lock */
		struct hl_ent now;
		int r = ent_read(s, name, ip, &now, e);
		if (r < 0)
			return -1;
		if (r > 0 && (now.kind != ENT_TORN || tries >= 2)) {
			if (ent_put(s, &now) < 0)
				return oom(e);
			return 0; /* taken */
		}
		if (r > 0)
			hl_owner_free(&now.o);
		if (tries >= 2 || (r > 0 && unlinkat(s->dfd, name, 0) < 0 && errno != ENOENT))
			return 0; /* torn but will not go away: leave it to GC */
	}
	if (fd != 1 && write(fd, content, (size_t)n) != n) {
		int se = errno ? errno : ENOSPC;
		close(fd);
		unlinkat(s->dfd, name, 0);
		errno = se;
		return io_err(e, s, "writing reservation", name);
	}
	if (fd != 1)
		close(fd);
	x.o.id = strdup(id);
	x.o.ifname = strdup(ifname);
	if (!x.o.id || !x.o.ifname || ent_put(s, &x) < 0) {
		hl_owner_free(&x.o);
		unlinkat(s->dfd, name, 0);
		return oom(e);
	}
	return 1;
}

/* Remove one reservation file and its entry. */
static int unreserve(struct hl_store *s, const struct ip *ip, struct cni_error *e)
{
	char name[IP_STRLEN];
	if (unlinkat(s->dfd, ip_fmt(ip, name), 0) < 0 && errno != ENOENT)
		return io_err(e, s, "releasing", name);
	ent_drop(s, ip);
	return 0;
}

int hl_store_release_ip(struct hl_store *s, const struct ip *ip, const char *id, const char *ifname, struct cni_error *e)
{
	const struct hl_ent *x = ent_find(s, ip);
	if (!x || x->kind != ENT_OWNED || !owner_is(&x->o, id, ifname))
		return 0;
	return unreserve(s, ip, e) < 0 ? -1 : 1;
}

int hl_store_release_owner(struct hl_store *s, const char *id, const char *ifname, struct cni_error *e)
{
	struct ip *ips = NULL;
	size_t n = 0;
	int rc = 0;
	/* the reference's ReleaseByID: every exact match, or, when there is none, every file of the
	 * oldest format holding this ID */
	if (hl_store_find(s, HL_EXACT_OR_LEGACY, id, ifname, &ips, &n, e) < 0)
		return -1;
	for (size_t i = 0; i < n && rc >= 0; i++)
		rc = unreserve(s, &ips[i], e) < 0 ? -1 : rc + 1;
	free(ips);
	return rc;
}

int hl_store_drop_file(struct hl_store *s, const struct ip *ip, struct cni_error *e)
{
	return unreserve(s, ip, e);
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
	/* fn may release entries: walk a copy of the addresses */
	struct ip *ips = malloc((s->n ? s->n : 1) * sizeof(*ips));
	size_t n = s->n;
	int rc = 0;
	if (!ips)
		return oom(e);
	for (size_t i = 0; i < n; i++)
		ips[i] = s->ents[i].ip;
	for (size_t i = 0; i < n && rc >= 0; i++) {
		const struct hl_ent *x = ent_find(s, &ips[i]);
		struct hl_owner o;
		if (!x || x->kind == ENT_FOREIGN)
			continue;
		if (hl_store_owner(s, &ips[i], &o, e) < 0) {
			rc = -1;
			break;
		}
		rc = fn(s, &ips[i], &o, arg);
		hl_owner_free(&o);
	}
	free(ips);
	return rc;
}
