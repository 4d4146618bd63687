/* The per-verb log line: logfmt, one write(2) of the whole line to an O_APPEND descriptor. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "conf.h"
#include "ip.h"

static const char *const level_names[] = { "off", "error", "info", "debug" };

static int level_parse(const char *s)
{
	for (int i = 0; i < (int)(sizeof(level_names) / sizeof(level_names[0])); i++)
		if (strcasecmp(s, level_names[i]) == 0)
			return i;
	return -1;
}

/* Nonblocking (a FIFO without reader fails at once, a full one drops the line), appending,
 * not inherited by what the plugin execs, not through a symlink, never fd 0-2 (stdout is the
 * result). Failure leaves the log off. */
static void log_open(struct cni_log *l, const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_NONBLOCK | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0640);
	if (fd >= 0 && fd <= 2) {
		int nfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
		close(fd);
		fd = nfd;
	}
	l->fd = fd;
}

int cni_log_start(struct cni_log *l, struct cni_error *e)
{
	const char *f = getenv(CNI_LOG_FILE_ENV), *lv = getenv(CNI_LOG_LEVEL_ENV);
	int rc = 0;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	l->level = CNI_LOG_INFO;
	clock_gettime(CLOCK_MONOTONIC, &l->t0);
	l->t_run = l->t0;
	if (lv && *lv) {
		int n = level_parse(lv);
		if (n < 0)
			rc = cni_errf(e, CNI_ERR_INVALID_ENV, "%s \"%s\" is not a log level (want off, error, info or debug)",
				      CNI_LOG_LEVEL_ENV, lv);
		else
			l->level = n;
		l->env_level = true;
	}
	if (f && *f) {
		l->env_file = true;
		if (f[0] != '/')
			rc = cni_errf(e, CNI_ERR_INVALID_ENV, "%s \"%s\" must be an absolute path", CNI_LOG_FILE_ENV, f);
		else if (l->level != CNI_LOG_OFF)
			log_open(l, f);
	}
	return rc;
}

int cni_log_config(struct cni_log *l, const cJSON *conf, struct cni_error *e)
{
	struct cni_error scratch = { 0 };
	struct cni_error *pe = e ? e : &scratch;
	const char *f = NULL, *lv = NULL;
	int rc = 0;

	l->conf_done = true;
	if (!cJSON_IsObject(conf))
		return 0;
	if (!l->env_level && conf_string(conf, "", "logLevel", &lv, pe) > 0 && *lv) {
		int n = level_parse(lv);
		if (n < 0)
			rc = cni_errf(
				pe, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"logLevel\": \"%s\" is not a log level (want off, error, info or debug)",
				lv);
		else
			l->level = n;
	} else if (pe->code)
		rc = -1;
	if (!l->env_file && conf_string(conf, "", "logFile", &f, pe) > 0 && *f) {
		if (f[0] != '/')
			rc = cni_errf(pe, CNI_ERR_INVALID_CONFIG,
				      "invalid config: field \"logFile\": \"%s\" must be an absolute path", f);
		else if (l->level != CNI_LOG_OFF)
			log_open(l, f);
	} else if (pe->code)
		rc = -1;
	return e ? rc : 0;
}

struct line {
	char b[4096]; /* PIPE_BUF: a FIFO takes the line whole too */
	size_t n;
	bool full;
};

static void put(struct line *ln, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void put(struct line *ln, const char *fmt, ...)
{
	va_list ap;
	size_t room = sizeof(ln->b) - 1 - ln->n; /* one byte kept for the newline */
	if (ln->full)
		return;
	va_start(ap, fmt);
	int r = vsnprintf(ln->b + ln->n, room + 1, fmt, ap);
	va_end(ap);
	if (r < 0 || (size_t)r > room) {
		ln->n = sizeof(ln->b) - 1;
		ln->full = true;
	} else
		ln->n += (size_t)r;
}

/* " key=value": quoted when empty or holding a space, '"', '=' or '\'; every byte outside
 * printable ASCII (control characters, a newline in a container ID) as \xNN. */
static void put_kv(struct line *ln, const char *key, const char *v)
{
	if (!v)
		return;
	bool q = !*v;
	for (const char *s = v; *s && !q; s++)
		q = *s == ' ' || *s == '"' || *s == '=' || *s == '\\';
	put(ln, " %s=%s", key, q ? "\"" : "");
	for (const unsigned char *s = (const unsigned char *)v; *s && !ln->full; s++) {
		if (*s == '"' || *s == '\\')
			put(ln, "\\%c", *s);
		else if (*s < 0x20 || *s >= 0x7f)
			put(ln, "\\x%02x", *s);
		else
			put(ln, "%c", *s);
	}
	if (q)
		put(ln, "\"");
}

/* UTC calendar fields of a Unix time (the proleptic Gregorian civil-from-days algorithm). Not
 * gmtime_r: in a static binary it brings in the time-zone reader and, with it, glibc's scanf. */
static void utc_tm(time_t t, struct tm *tm)
{
	long long days = t / 86400, secs = t % 86400;
	if (secs < 0) {
		secs += 86400;
		days--;
	}
	days += 719468; /* from 1970-01-01 to 0000-03-01 */
	long long era = (days >= 0 ? days : days - 146096) / 146097;
	long long doe = days - era * 146097; /* [0, 146096] */
	long long yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* [0, 399] */
	long long doy = doe - (365 * yoe + yoe / 4 - yoe / 100); /* [0, 365] */
	long long mp = (5 * doy + 2) / 153; /* [0, 11] from March */
	long long m = mp < 10 ? mp + 3 : mp - 9;
	*tm = (struct tm){ 0 };
	tm->tm_year = (int)(yoe + era * 400 + (m <= 2) - 1900);
	tm->tm_mon = (int)(m - 1);
	tm->tm_mday = (int)(doy - (153 * mp + 2) / 5 + 1);
	tm->tm_hour = (int)(secs / 3600);
	tm->tm_min = (int)(secs / 60 % 60);
	tm->tm_sec = (int)(secs % 60);
}

static double ms_since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

void cni_log_verb(struct cni_log *l, const struct cni_log_entry *x)
{
	bool failed = x->err && x->err->code;
	struct timespec now, wall;
	struct tm tm;
	struct line ln;

	if (l->fd < 0)
		return;
	if (l->level == CNI_LOG_OFF || (!failed && l->level < CNI_LOG_INFO))
		goto out;
	clock_gettime(CLOCK_MONOTONIC, &now);
	clock_gettime(CLOCK_REALTIME, &wall);
	utc_tm(wall.tv_sec, &tm);
	ln.n = 0;
	ln.full = false;
	put(&ln, "time=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ level=%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
	    tm.tm_min, tm.tm_sec, wall.tv_nsec / 1000000, failed ? "error" : "info");
	put_kv(&ln, "plugin", x->plugin);
	put_kv(&ln, "verb", x->verb);
	put_kv(&ln, "container", x->container_id);
	put_kv(&ln, "ifname", x->ifname);
	put_kv(&ln, "net", x->net);
	put(&ln, " ms=%.3f", ms_since(&l->t0, &now));
	if (l->level >= CNI_LOG_DEBUG) {
		put(&ln, " pid=%ld", (long)getpid());
		put_kv(&ln, "netns", x->netns);
		put_kv(&ln, "cniVersion", x->version);
		if (l->t_run.tv_sec != l->t0.tv_sec || l->t_run.tv_nsec != l->t0.tv_nsec) /* the verb ran */
			put(&ln, " prep_ms=%.3f run_ms=%.3f", ms_since(&l->t0, &l->t_run), ms_since(&l->t_run, &now));
	}
	if (failed) {
		put(&ln, " result=error code=%d", x->err->code);
		put_kv(&ln, "msg", x->err->msg[0] ? x->err->msg : "unknown error");
		if (l->level >= CNI_LOG_DEBUG && x->err->details[0])
			put_kv(&ln, "details", x->err->details);
	} else {
		put(&ln, " result=ok");
		if (x->result && x->result->n_ips) {
			char ips[1024] = "", a[IPNET_STRLEN];
			size_t n = 0;
			for (size_t i = 0; i < x->result->n_ips && n < sizeof(ips); i++)
				n += (size_t)snprintf(ips + n, sizeof(ips) - n, "%s%s", i ? "," : "",
						      ipnet_fmt(&x->result->ips[i].address, a));
			put_kv(&ln, "ips", ips);
		}
		if (x->verb && strcmp(x->verb, "GC") == 0)
			put(&ln, " valid=%zu", x->n_valid);
	}
	if (ln.full)
		memcpy(ln.b + ln.n - 3, "...", 3);
	ln.b[ln.n++] = '\n';
	/* a FIFO whose reader left must not kill the plugin; nothing is exec'd after this */
	signal(SIGPIPE, SIG_IGN);
	if (write(l->fd, ln.b, ln.n) < 0) {
		/* ENOSPC, EAGAIN, EPIPE...: the verb's outcome does not depend on its log */
	}
out:
	close(l->fd);
	l->fd = -1;
}
