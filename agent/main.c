/* cni-c-agent: joins this node to each cluster network of its config through etcd and keeps the
 * VTEP's FDB to the live peers (docs/cluster.md). One thread, one poll loop: the watch streams,
 * a netlink socket of link events, timers. */
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <sys/socket.h>

#include "agent.h"
#include "version.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	stop = sig;
}

static void usage(FILE *f)
{
	fprintf(f, "usage: cni-c-agent [-c FILE] [-v] [--once | --leave NET]\n"
		   "  -c FILE      config (default " AGENT_CONF_DEFAULT ")\n"
		   "  -v           log each change to stderr\n"
		   "  --once       join, program, write state, exit\n"
		   "  --leave NET  revoke this node's lease on NET and delete its node key (the block stays)\n"
		   "  --version    print the version\n");
}

static void about(void)
{
	printf("cni-c-agent v%s (C CNI plugin suite)\nbuild %s\n", cni_c_version, CNIC_ID);
}

static int link_events_open(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK, .nl_groups = RTMGRP_LINK };
	int fd = socket(AF_NETLINK, SOCK_RAW | SOCK_NONBLOCK | SOCK_CLOEXEC, NETLINK_ROUTE);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

static void link_events_drain(struct agent *a, int fd)
{
	char buf[16384];
	while (recv(fd, buf, sizeof(buf), 0) > 0 || errno == ENOBUFS)
		;
	for (int i = 0; i < a->n_nets; i++)
		a->nets[i].dp_dirty = true;
}

/* The VTEP still there with the MAC we published? Recreate it, republish a new MAC. */
static void dp_check(struct agent *a, struct anet *n)
{
	struct cni_error e = { 0 };
	uint8_t mac[6];
	char m[18];
	int r = dp_vtep_mac(a, n, mac);
	n->dp_dirty = false;
	if (r == 0) {
		alog("network %s: VTEP %s is missing: recreating it", n->name, n->vtep);
		if (dp_ensure(a, n, &e) < 0 || (n->block.prefix && dp_gateway(a, n, NULL, &e) < 0)) {
			alog("network %s: %s", n->name, e.msg);
			return;
		}
		memcpy(mac, n->mac, 6);
		memset(n->mac, 0, 6); /* republish */
	} else if (r < 0) {
		return;
	}
	if (memcmp(mac, n->mac, 6) != 0) {
		memcpy(n->mac, mac, 6);
		alog("network %s: VTEP %s has MAC %s: republishing", n->name, n->vtep, cnl_mac_fmt(mac, m));
		if (n->up && node_publish(a, n, true) < 0)
			sync_down(a, n, "publishing the VTEP MAC");
	}
	if (fdb_reconcile(a, n, &e) < 0)
		alog("network %s: fdb: %s", n->name, e.msg);
}

static void keepalive(struct agent *a, struct anet *n, long long now)
{
	long long ttl;
	int r = etcd_lease_keepalive(&a->etcd, n->lease, &ttl);
	n->t_keepalive = now + a->ttl * 1000 / 3;
	if (r < 0) {
		sync_down(a, n, a->etcd.err);
	} else if (a->etcd.cur != n->watch_ep) {
		/* the keepalive went elsewhere: the watch's member may be cut off, silently */
		alog("network %s: etcd endpoint %s answers now: resyncing", n->name, a->etcd.ep[a->etcd.cur].url);
		http_stream_close(&n->watch);
		n->up = false;
		n->t_retry = now; /* sync_full renews or replaces the lease too */
	} else if (r == 0) {
		alog("network %s: lease %llx expired: rejoining", n->name, (unsigned long long)n->lease);
		if (node_lease(a, n) < 0 || node_block(a, n) < 0 || node_publish(a, n, true) < 0)
			sync_down(a, n, a->etcd.err);
	}
}

/* Timers of one network; returns the ms until its next one. */
static long long net_tick(struct agent *a, struct anet *n)
{
	long long now = mono_ms();
	if (n->refused)
		return RECONCILE_MS;
	if (!n->up && now >= n->t_retry) {
		int r = sync_full(a, n);
		if (r == -3) { /* this network is left alone; the others go on */
			n->refused = true;
			return RECONCILE_MS;
		}
		if (r == -2)
			n->t_retry = now + NO_BLOCK_RETRY_MS;
		else if (r < 0)
			sync_down(a, n, a->etcd.err);
	}
	if (n->up && now >= n->t_keepalive)
		keepalive(a, n, now);
	if (n->dp_dirty || now >= n->t_reconcile) {
		n->t_reconcile = now + RECONCILE_MS;
		dp_check(a, n);
	}
	if (n->up && now >= n->t_lastseen) {
		n->t_lastseen = now + 1000 * (n->grace / 10 < 3600 ? (n->grace / 10 ? n->grace / 10 : 1) : 3600);
		if (node_lastseen(a, n) < 0)
			sync_down(a, n, "refreshing the block's lastSeen");
	}
	long long next = n->t_reconcile;
	if (n->up && n->t_keepalive < next)
		next = n->t_keepalive;
	if (!n->up && n->t_retry < next)
		next = n->t_retry;
	return next - now;
}

static int run(struct agent *a)
{
	int lfd = link_events_open(), rc = 0;
	if (lfd < 0)
		alog("no netlink link events (%s): relying on the 10 s check", strerror(errno));
	while (!stop) {
		struct pollfd p[AGENT_MAX_NETS + 1];
		long long wait = RECONCILE_MS;
		int k = 0;
		int refused = 0;
		for (int i = 0; i < a->n_nets && !stop; i++) {
			long long w = net_tick(a, &a->nets[i]);
			wait = w < wait ? w : wait;
			refused += a->nets[i].refused;
		}
		if (refused == a->n_nets) {
			alog("no network to serve: exiting");
			rc = 1;
			break;
		}
		if (stop)
			break;
		p[k++] = (struct pollfd){ .fd = lfd, .events = POLLIN };
		for (int i = 0; i < a->n_nets; i++)
			p[k++] = (struct pollfd){ .fd = a->nets[i].up ? a->nets[i].watch.fd : -1, .events = POLLIN };
		if (poll(p, (nfds_t)k, (int)(wait < 0 ? 0 : wait)) <= 0)
			continue;
		if (p[0].revents)
			link_events_drain(a, lfd);
		for (int i = 0; i < a->n_nets; i++)
			if (p[i + 1].revents && a->nets[i].up)
				sync_watch_event(a, &a->nets[i]);
	}
	if (stop)
		alog("signal %d: exiting (leases stay: peers keep this node until they expire)", (int)stop);
	if (lfd >= 0)
		close(lfd);
	return rc;
}

/* A <net>.lease in stateDir for a network the config no longer has: leave it. */
static void leave_removed(struct agent *a)
{
	DIR *d = opendir(a->state_dir);
	struct dirent *de;
	while (d && (de = readdir(d))) {
		char net[256];
		size_t l = strlen(de->d_name);
		if (l <= 6 || l - 6 >= sizeof(net) || strcmp(de->d_name + l - 6, ".lease") != 0)
			continue;
		memcpy(net, de->d_name, l - 6);
		net[l - 6] = '\0';
		bool have = false;
		for (int i = 0; i < a->n_nets; i++)
			have |= strcmp(a->nets[i].name, net) == 0;
		if (!have && node_leave(a, net) < 0)
			alog("network %s (no longer configured): cannot leave: %s", net, a->etcd.err);
	}
	if (d)
		closedir(d);
}

static int once(struct agent *a)
{
	for (int i = 0; i < a->n_nets; i++) {
		struct anet *n = &a->nets[i];
		dp_check(a, n);
		int r = sync_full(a, n);
		if (r == -3)
			return 1;
		if (r < 0) {
			fprintf(stderr, "cni-c-agent: network %s: cannot join through etcd: %s\n", n->name, a->etcd.err);
			return 1;
		}
	}
	return 0;
}

static int setup(struct agent *a)
{
	struct cni_error e = { 0 };
	if (cnl_open(&a->nl, &e) < 0) {
		fprintf(stderr, "cni-c-agent: %s\n", e.msg);
		return -1;
	}
	for (int i = 0; i < a->n_nets; i++) {
		struct anet *n = &a->nets[i];
		if (dp_resolve(a, n, &e) < 0 || dp_ensure(a, n, &e) < 0) {
			fprintf(stderr, "cni-c-agent: network %s: %s\n", n->name, e.msg);
			return -1;
		}
		n->t_reconcile = mono_ms() + RECONCILE_MS;
		/* after a reboot with etcd down: the persisted block's gateway until etcd says otherwise */
		if (!a->once && state_load_block(a, n, &n->block) == 0 && dp_gateway(a, n, NULL, &e) < 0) {
			alog("network %s: gateway address: %s", n->name, e.msg);
			cni_err_clear(&e);
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	static struct agent a;
	const char *conf = AGENT_CONF_DEFAULT, *leave = NULL;
	struct cni_error e = { 0 };
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strcmp(argv[i], "-v") == 0)
			a.verbose = true;
		else if (strcmp(argv[i], "--once") == 0)
			a.once = true;
		else if (strcmp(argv[i], "--leave") == 0 && i + 1 < argc)
			leave = argv[++i];
		else if (strcmp(argv[i], "--version") == 0 || strcmp(argv[i], "version") == 0)
			return about(), 0;
		else if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0)
			return usage(stdout), 0;
		else
			return usage(stderr), 2;
	}
	if (agent_config_load(&a, conf, &e) < 0) {
		fprintf(stderr, "cni-c-agent: %s\n", e.msg);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	if (leave) {
		if (node_leave(&a, leave) == 0)
			return 0;
		fprintf(stderr, "cni-c-agent: --leave %s: %s\n", leave, a.etcd.err);
		return 1;
	}
	struct sigaction sa = { .sa_handler = on_signal }; /* no SA_RESTART: a signal cuts waits short */
	http_set_abort(&stop);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (setup(&a) < 0)
		return 1;
	leave_removed(&a);
	if (a.once)
		return once(&a);
	alog("node %s: %d network(s), etcd %s (+%d more)", a.node, a.n_nets, a.etcd.ep[0].url, a.etcd.n - 1);
	return run(&a);
}
