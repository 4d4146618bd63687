/* cnibench: drives CNI plugins like a runtime (exec with CNI_* env, config on stdin) and times
 * each operation; netns creation and cleanup stay outside the timed part. Candidates (ours, the
 * reference, the floor) run interleaved in one run so their ratio holds on a noisy machine.
 *
 *   cnibench seq N NAME=PLUGIN,CNI_PATH,CONF[,nons] ...     ADD N containers per candidate, then DEL
 *   cnibench par N P NAME=PLUGIN,CNI_PATH,CONF              N ADDs, P at a time: wall time, duplicates
 *   cnibench pre K NAME=... / unpre K NAME=...               attach / detach K containers untimed
 * "@PORT@" in a CONF is replaced, per container, by 10000 + the number its container ID ends with.
 * Output: one JSON object per candidate on stdout. */
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

struct cand {
	char name[64], plugin[512], path[512];
	char *conf;
	size_t conf_len;
	int nons; /* IPAM-only candidates need no netns */
	double *add, *del;
	long maxrss_kb;
	int fail;
	char firsterr[512];
};

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static char *slurp(const char *p, size_t *len)
{
	FILE *f = fopen(p, "re");
	char *b = NULL;
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	rewind(f);
	b = malloc((size_t)n + 1);
	if (b && fread(b, 1, (size_t)n, f) != (size_t)n) {
		free(b);
		b = NULL;
	}
	fclose(f);
	if (b) {
		b[n] = 0;
		*len = (size_t)n;
	}
	return b;
}

static int parse_cand(const char *arg, struct cand *c)
{
	char buf[2048];
	memset(c, 0, sizeof(*c));
	snprintf(buf, sizeof(buf), "%s", arg);
	char *eq = strchr(buf, '=');
	if (!eq)
		return -1;
	*eq = 0;
	snprintf(c->name, sizeof(c->name), "%s", buf);
	char *f[4] = { 0 };
	int n = 0;
	for (char *s = eq + 1, *save = NULL, *t; n < 4 && (t = strtok_r(s, ",", &save)); s = NULL)
		f[n++] = t;
	if (n < 3)
		return -1;
	snprintf(c->plugin, sizeof(c->plugin), "%s", f[0]);
	snprintf(c->path, sizeof(c->path), "%s", f[1]);
	c->nons = n == 4 && strcmp(f[3], "nons") == 0;
	return (c->conf = slurp(f[2], &c->conf_len)) ? 0 : -1;
}

static int netns_make(const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "/run/netns/%s", name);
	mkdir("/run/netns", 0755);
	int fd = open(p, O_RDONLY | O_CREAT | O_EXCL, 0444);
	if (fd < 0)
		return -1;
	close(fd);
	pid_t pid = fork();
	if (pid == 0) {
		if (unshare(CLONE_NEWNET) < 0 || mount("/proc/self/ns/net", p, NULL, MS_BIND, NULL) < 0)
			_exit(1);
		_exit(0);
	}
	int st;
	waitpid(pid, &st, 0);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void netns_drop(const char *name)
{
	char p[256];
	snprintf(p, sizeof(p), "/run/netns/%s", name);
	umount2(p, MNT_DETACH);
	unlink(p);
}

/* One plugin run; returns wall µs (negative on failure); output into out (caller frees). */
static double run(struct cand *c, const char *verb, const char *cid, const char *nspath, char **out, long *rss)
{
	char e_cmd[64], e_cid[256], e_ns[300], e_if[] = "CNI_IFNAME=eth0", e_path[600];
	char *env[] = { e_cmd, e_cid, e_ns, e_if, e_path, "PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL };
	snprintf(e_cmd, sizeof(e_cmd), "CNI_COMMAND=%s", verb);
	snprintf(e_cid, sizeof(e_cid), "CNI_CONTAINERID=%s", cid);
	snprintf(e_ns, sizeof(e_ns), "CNI_NETNS=%s", nspath);
	snprintf(e_path, sizeof(e_path), "CNI_PATH=%s", c->path);
	int in = memfd_create("conf", MFD_CLOEXEC), p[2];
	/* "@PORT@" in a config becomes a port of this container's own (10000 + the number its ID
	 * ends with): portmap candidates then map one host port per container, as pods do */
	const char *at = strstr(c->conf, "@PORT@");
	if (at) {
		size_t k = strlen(cid);
		while (k && cid[k - 1] >= '0' && cid[k - 1] <= '9')
			k--;
		char port[16];
		snprintf(port, sizeof(port), "%ld", 10000 + strtol(cid + k, NULL, 10) % 50000);
		size_t pre = (size_t)(at - c->conf);
		if (write(in, c->conf, pre) != (ssize_t)pre || write(in, port, strlen(port)) != (ssize_t)strlen(port) ||
		    write(in, at + 6, c->conf_len - pre - 6) != (ssize_t)(c->conf_len - pre - 6) || pipe2(p, O_CLOEXEC) < 0)
			return -1;
	} else if (write(in, c->conf, c->conf_len) != (ssize_t)c->conf_len || pipe2(p, O_CLOEXEC) < 0)
		return -1;
	lseek(in, 0, SEEK_SET);
	posix_spawn_file_actions_t fa;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in, 0);
	posix_spawn_file_actions_adddup2(&fa, p[1], 1);
	char *argv[] = { c->plugin, NULL };
	pid_t pid;
	double t0 = now_us();
	int se = posix_spawn(&pid, c->plugin, &fa, NULL, argv, env);
	posix_spawn_file_actions_destroy(&fa);
	close(p[1]);
	close(in);
	if (se) {
		close(p[0]);
		return -1;
	}
	size_t cap = 8192, n = 0;
	char *b = malloc(cap);
	ssize_t r;
	while ((r = read(p[0], b + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (n + 1 >= cap)
			b = realloc(b, cap *= 2);
	}
	b[n] = 0;
	close(p[0]);
	int st;
	struct rusage ru;
	wait4(pid, &st, 0, &ru);
	double t = now_us() - t0;
	if (rss)
		*rss = ru.ru_maxrss;
	if (out)
		*out = b;
	else
		free(b);
	return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? t : -t;
}

static int cmp_d(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static void stats(const double *v, int n, double *med, double *p99, double *mean)
{
	double *s = malloc(sizeof(double) * (size_t)n), sum = 0;
	memcpy(s, v, sizeof(double) * (size_t)n);
	qsort(s, (size_t)n, sizeof(double), cmp_d);
	for (int i = 0; i < n; i++)
		sum += s[i];
	*med = n ? (n % 2 ? s[n / 2] : (s[n / 2 - 1] + s[n / 2]) / 2) : 0;
	*p99 = n ? s[(int)((n - 1) * 0.99 + 0.5)] : 0;
	*mean = n ? sum / n : 0;
	free(s);
}

static void note_fail(struct cand *c, const char *what, const char *out)
{
	if (!c->fail++)
		snprintf(c->firsterr, sizeof(c->firsterr), "%s: %.400s", what, out ? out : "");
}

static void json_escape_print(const char *s)
{
	for (; *s; s++) {
		if (*s == '"' || *s == '\\')
			printf("\\%c", *s);
		else if ((unsigned char)*s < 0x20)
			printf(" ");
		else
			putchar(*s);
	}
}

static void print_cand(struct cand *c, int n, const char *mode)
{
	double am, ap, aa, dm, dp, da;
	stats(c->add, n, &am, &ap, &aa);
	stats(c->del, n, &dm, &dp, &da);
	printf("{\"mode\":\"%s\",\"name\":\"%s\",\"n\":%d,\"add_median_us\":%.0f,\"add_p99_us\":%.0f,\"add_mean_us\":%.0f,"
	       "\"del_median_us\":%.0f,\"del_p99_us\":%.0f,\"del_mean_us\":%.0f,\"maxrss_kb\":%ld,\"failures\":%d,\"first_error\":\"",
	       mode, c->name, n, am, ap, aa, dm, dp, da, c->maxrss_kb, c->fail);
	json_escape_print(c->firsterr);
	printf("\"}\n");
	fflush(stdout);
}

static void cid_of(char *buf, size_t n, const char *name, int i, const char *tag)
{
	snprintf(buf, n, "%s-%s-%d", tag, name, i);
}

static int seq(int n, struct cand *cs, int nc, const char *tag, int do_del)
{
	char cid[256], ns[300], nsname[256];
	for (int k = 0; k < nc; k++) {
		cs[k].add = calloc((size_t)n, sizeof(double));
		cs[k].del = calloc((size_t)n, sizeof(double));
	}
	for (int i = 0; i < n; i++)
		for (int k = 0; k < nc; k++) {
			struct cand *c = &cs[k];
			cid_of(cid, sizeof(cid), c->name, i, tag);
			snprintf(nsname, sizeof(nsname), "%s", cid);
			snprintf(ns, sizeof(ns), "/run/netns/%s", nsname);
			if (!c->nons && netns_make(nsname) < 0) {
				note_fail(c, "netns", nsname);
				continue;
			}
			char *out = NULL;
			long rss = 0;
			double t = run(c, "ADD", cid, c->nons ? "/nonexistent" : ns, &out, &rss);
			if (t < 0)
				note_fail(c, "ADD", out);
			c->add[i] = t < 0 ? -t : t;
			if (rss > c->maxrss_kb)
				c->maxrss_kb = rss;
			free(out);
		}
	if (!do_del)
		return 0;
	for (int i = 0; i < n; i++)
		for (int k = 0; k < nc; k++) {
			struct cand *c = &cs[k];
			char *out = NULL;
			cid_of(cid, sizeof(cid), c->name, i, tag);
			snprintf(ns, sizeof(ns), "/run/netns/%s", cid);
			double t = run(c, "DEL", cid, c->nons ? "/nonexistent" : ns, &out, NULL);
			if (t < 0)
				note_fail(c, "DEL", out);
			c->del[i] = t < 0 ? -t : t;
			free(out);
			if (!c->nons)
				netns_drop(cid);
		}
	return 0;
}

/* N ADDs, P workers: the wall time of the lot and how many addresses came out twice. */
static int par(int n, int p, struct cand *c, const char *tag)
{
	char cid[256], ns[300];
	for (int i = 0; i < n; i++) {
		cid_of(cid, sizeof(cid), c->name, i, tag);
		if (!c->nons)
			netns_make(cid);
	}
	int shm = memfd_create("outs", 0);
	if (ftruncate(shm, (off_t)n * 512) < 0)
		return -1;
	char *area = mmap(NULL, (size_t)n * 512, PROT_READ | PROT_WRITE, MAP_SHARED, shm, 0);
	double t0 = now_us();
	for (int w = 0; w < p; w++) {
		if (fork() == 0) {
			for (int i = w; i < n; i += p) {
				char *out = NULL;
				cid_of(cid, sizeof(cid), c->name, i, tag);
				snprintf(ns, sizeof(ns), "/run/netns/%s", cid);
				double t = run(c, "ADD", cid, c->nons ? "/nonexistent" : ns, &out, NULL);
				/* keep the addresses the result holds */
				char *a = out ? strstr(out, "\"address\"") : NULL;
				snprintf(area + (size_t)i * 512, 512, "%s %.400s", t < 0 ? "FAIL" : "OK",
					 a ? a : (out ? out : ""));
				free(out);
			}
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	double wall = now_us() - t0;
	int fails = 0, dups = 0;
	for (int i = 0; i < n; i++) {
		char *s = area + (size_t)i * 512;
		if (strncmp(s, "OK", 2) != 0) {
			note_fail(c, "ADD", s);
			fails++;
			continue;
		}
		char ai[64] = "", aj[64] = "";
		sscanf(s, "OK \"address\":%*[ \t]\"%63[^\"]", ai);
		for (int j = 0; j < i && ai[0]; j++) {
			if (sscanf(area + (size_t)j * 512, "OK \"address\":%*[ \t]\"%63[^\"]", aj) == 1 && strcmp(ai, aj) == 0)
				dups++;
		}
	}
	printf("{\"mode\":\"par\",\"name\":\"%s\",\"n\":%d,\"workers\":%d,\"wall_ms\":%.1f,\"adds_per_s\":%.1f,\"failures\":%d,"
	       "\"duplicates\":%d,\"first_error\":\"",
	       c->name, n, p, wall / 1000, n / (wall / 1e6), fails, dups);
	json_escape_print(c->firsterr);
	printf("\"}\n");
	fflush(stdout);
	/* clean up: DEL everything, drop the namespaces */
	for (int i = 0; i < n; i++) {
		cid_of(cid, sizeof(cid), c->name, i, tag);
		snprintf(ns, sizeof(ns), "/run/netns/%s", cid);
		run(c, "DEL", cid, c->nons ? "/nonexistent" : ns, NULL, NULL);
		if (!c->nons)
			netns_drop(cid);
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 4) {
		fprintf(stderr, "usage: cnibench seq|par|pre ...\n");
		return 2;
	}
	const char *tag = getenv("BENCH_TAG") ? getenv("BENCH_TAG") : "b";
	struct cand cs[8];
	int nc = 0, n = atoi(argv[2]);
	if (strcmp(argv[1], "par") == 0) {
		if (argc < 5 || parse_cand(argv[4], &cs[0]) < 0)
			return 2;
		return par(n, atoi(argv[3]), &cs[0], tag);
	}
	for (int i = 3; i < argc && nc < 8; i++)
		if (parse_cand(argv[i], &cs[nc++]) < 0) {
			fprintf(stderr, "bad candidate %s\n", argv[i]);
			return 2;
		}
	if (strcmp(argv[1], "pre") == 0) /* attach, keep: the background for growth runs */
		return seq(n, cs, nc, tag, 0), 0;
	if (strcmp(argv[1], "unpre") == 0) { /* detach what "pre" attached (same tag) */
		char cid[256], ns[300];
		for (int i = 0; i < n; i++)
			for (int k = 0; k < nc; k++) {
				cid_of(cid, sizeof(cid), cs[k].name, i, tag);
				snprintf(ns, sizeof(ns), "/run/netns/%s", cid);
				run(&cs[k], "DEL", cid, cs[k].nons ? "/nonexistent" : ns, NULL, NULL);
				if (!cs[k].nons)
					netns_drop(cid);
			}
		return 0;
	}
	seq(n, cs, nc, tag, 1);
	for (int k = 0; k < nc; k++)
		print_cand(&cs[k], n, "seq");
	return 0;
}
