/* host-local config: defaults, validation, legacy form, ipRanges, requested IPs. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hostlocal.h"
#include "tap.h"

static int load(const char *json, const char *cni_args, struct hl_config *cfg, struct cni_error *e)
{
	struct cni_ctx c = { 0 };
	static const char *const known[] = { "IP", NULL };
	int rc;
	cni_err_clear(e);
	c.stdin_buf = strdup(json);
	c.stdin_len = strlen(json);
	c.verb = CNI_ADD;
	if (cni_parse_config(&c, e) < 0 || cni_args_parse(cni_args, known, &c.args, &c.n_args, e) < 0) {
		cni_ctx_free(&c);
		return -1;
	}
	rc = hl_config_parse(&c, cfg, e);
	/* cfg points into c.conf for strings: keep name only for the checks below */
	cfg->name = NULL;
	cfg->data_dir = NULL;
	cfg->resolv_conf = NULL;
	cni_ctx_free(&c);
	return rc;
}

#define NET(ipam) "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"type\":\"x\",\"ipam\":" ipam "}"

void test_hostlocal(void)
{
	struct hl_config cfg;
	struct cni_error e;
	char a[IP_STRLEN], b[IP_STRLEN], c[IP_STRLEN];

	OK(load(NET("{\"type\":\"host-local\",\"subnet\":\"10.200.1.0/24\"}"), NULL, &cfg, &e) == 0 && cfg.n_sets == 1,
	   "legacy subnet form %s", e.msg);
	STREQ(ip_fmt(&cfg.sets[0].r[0].start, a), "10.200.1.1", "default rangeStart .1");
	STREQ(ip_fmt(&cfg.sets[0].r[0].end, b), "10.200.1.254", "default rangeEnd excludes broadcast");
	STREQ(ip_fmt(&cfg.sets[0].r[0].gateway, c), "10.200.1.1", "default gateway .1");
	hl_config_free(&cfg);

	OK(load(NET("{\"ranges\":[[{\"subnet\":\"fd00:200::/120\"}]]}"), NULL, &cfg, &e) == 0, "v6 range");
	STREQ(ip_fmt(&cfg.sets[0].r[0].end, b), "fd00:200::ff", "v6 rangeEnd is the last address");
	hl_config_free(&cfg);

	OK(load(NET("{\"ranges\":[[{\"subnet\":\"10.200.2.0/24\",\"rangeStart\":\"10.200.2.10\",\"rangeEnd\":\"10.200.2.20\","
		    "\"gateway\":\"10.200.2.254\"}],[{\"subnet\":\"fd00:200:2::/64\"}]],\"routes\":[{\"dst\":\"0.0.0.0/0\"}]}"),
		NULL, &cfg, &e) == 0 &&
		   cfg.n_sets == 2 && cfg.n_routes == 1,
	   "dual stack with explicit range %s", e.msg);
	hl_config_free(&cfg);

	OK(load(NET("{\"ranges\":[[{\"subnet\":\"10.200.3.0/24\"}]]}"), "IP=10.200.3.7", &cfg, &e) == 0 && cfg.n_requested == 1,
	   "CNI_ARGS IP=");
	hl_config_free(&cfg);
	OK(load("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.200.3.0/24\"}]]},"
		"\"runtimeConfig\":{\"ips\":[\"10.200.3.8/24\"]}}",
		"IP=10.200.3.7", &cfg, &e) == 0 &&
		   cfg.n_requested == 1 && cfg.requested[0].b[3] == 8,
	   "runtimeConfig.ips overrides CNI_ARGS IP=");
	hl_config_free(&cfg);
	OK(load("{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.200.3.0/24\"}]]},"
		"\"args\":{\"cni\":{\"ips\":[\"10.200.3.9\"]}},\"runtimeConfig\":{\"ipRanges\":[[{\"subnet\":\"10.200.4.0/24\"}]]}}",
		NULL, &cfg, &e) == 0 &&
		   cfg.n_requested == 1 && cfg.n_sets == 2 && cfg.sets[0].r[0].subnet.ip.b[2] == 4,
	   "args.cni.ips and runtime ipRanges first %s", e.msg);
	hl_config_free(&cfg);

	struct {
		const char *json;
		int code;
		const char *needle;
	} bad[] = {
		{ "{\"cniVersion\":\"1.0.0\",\"name\":\"n\"}", 7, "\"ipam\"" },
		{ NET("{}"), 7, "no IP ranges" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/31\"}]]}"), 7, "too small" },
		{ NET("{\"ranges\":[[{\"subnet\":\"fd00::/127\"}]]}"), 7, "too small" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.5/24\"}]]}"), 7, "host bits" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\",\"gateway\":\"10.200.1.1\"}]]}"), 7,
		  "ipam.ranges[0][0].gateway" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\",\"rangeStart\":\"10.200.0.9\",\"rangeEnd\":\"10.200.0.3\"}]]}"),
		  7, "after rangeEnd" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\"},{\"subnet\":\"10.200.0.0/25\"}]]}"), 7, "overlaps" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\"}],[{\"subnet\":\"10.200.0.128/25\"}]]}"), 7,
		  "range set 0 overlaps" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\"},{\"subnet\":\"fd00::/64\"}]]}"), 7,
		  "mixed address families" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/33\"}]]}"), 7, "ipam.ranges[0][0].subnet" },
		{ NET("{\"ranges\":[[{\"subnet\":42}]]}"), 6, "must be a string" },
		{ NET("{\"ranges\":[{\"subnet\":\"10.200.0.0/24\"}]}"), 6, "ipam.ranges[0]" },
		{ NET("{\"ranges\":[[]]}"), 7, "empty range set" },
		{ NET("{\"ranges\":[[{\"rangeStart\":\"10.200.0.2\"}]]}"), 7, "subnet\" is required" },
		{ NET("{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\"}]],\"routes\":[{\"dst\":\"x\"}]}"), 7, "ipam.routes[0].dst" },
		{ "{\"cniVersion\":\"0.2.0\",\"name\":\"n\",\"ipam\":{\"ranges\":[[{\"subnet\":\"10.200.0.0/24\"}],"
		  "[{\"subnet\":\"10.200.1.0/24\"}]]}}",
		  1, "more than 1 address per family" },
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		int rc = load(bad[i].json, NULL, &cfg, &e);
		OK(rc < 0 && e.code == bad[i].code && strstr(e.msg, bad[i].needle), "bad config %zu: code %d \"%s\"", i, e.code,
		   e.msg);
		if (rc == 0)
			hl_config_free(&cfg);
	}
	OK(load(NET("{\"ranges\":[[{\"subnet\":\"10.200.3.0/24\"}]]}"), "IP=nope", &cfg, &e) < 0 && e.code == 6 &&
		   strstr(e.msg, "IP=\"nope\""),
	   "bad CNI_ARGS IP: %s", e.msg);
}

/* Open descriptors of this process. */
static int count_fds(void)
{
	int n = 0;
	DIR *d = opendir("/proc/self/fd");
	if (!d)
		return -1;
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

/* The store's scan reads each reservation through its own descriptor and closes them in batches
 * (close_range over each run of consecutive numbers): every owner must be read, and no descriptor
 * may stay open, also when holes in the descriptor table split the runs (in-process IPAM runs in
 * a plugin that holds sockets and namespace descriptors). */
void test_hostlocal_store_scan(void)
{
	char dir[] = "/tmp/cni-c-unit-store.XXXXXX", path[4200];
	struct cni_error e = { 0 };
	struct hl_store *s;
	int holes[8], nh = 0;
	const int N = 150;

	if (!mkdtemp(dir)) {
		OK(0, "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(path, sizeof(path), "%s/net", dir);
	mkdir(path, 0700);
	int written = 0;
	for (int i = 0; i < N; i++) {
		char name[4300], body[64];
		snprintf(name, sizeof(name), "%s/10.200.%d.%d", path, 50 + i / 200, 2 + i % 200);
		int fd = open(name, O_WRONLY | O_CREAT | O_EXCL, 0600);
		int len = snprintf(body, sizeof(body), "ctr%d\r\neth%d", i, i % 3);
		written += fd >= 0 && write(fd, body, (size_t)len) == len;
		if (fd >= 0)
			close(fd);
	}
	OK(written == N, "%d reservations written", written);
	/* holes: descriptors taken, every other one given back */
	for (int i = 0; i < 8; i++)
		holes[nh++] = open("/dev/null", O_RDONLY);
	for (int i = 0; i < 8; i += 2)
		close(holes[i]), holes[i] = -1;
	int before = count_fds();
	for (int round = 0; round < 2; round++) {
		OK(hl_store_open(&s, dir, "net", &e) == 0, "store opened (round %d) %s", round, e.msg);
		if (!s)
			break;
		int found = 0;
		for (int i = 0; i < N; i++) {
			char id[32], ifn[16];
			struct ip *ips = NULL;
			size_t n = 0;
			snprintf(id, sizeof(id), "ctr%d", i);
			snprintf(ifn, sizeof(ifn), "eth%d", i % 3);
			if (hl_store_find(s, HL_EXACT, id, ifn, &ips, &n, &e) == 0 && n == 1)
				found++;
			free(ips);
		}
		OK(found == N, "every owner read by the scan (%d of %d)", found, N);
		hl_store_close(s);
		OK(count_fds() == before, "no descriptor left open by the scan (%d before, %d after)", before, count_fds());
	}
	for (int i = 0; i < nh; i++)
		if (holes[i] >= 0)
			close(holes[i]);
	char cmd[4300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	OK(system(cmd) == 0, "store removed");
}
