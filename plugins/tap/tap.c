/* tap plugin: a persistent TAP device in the container's netns for a VM runtime (Kata,
 * Firecracker, KubeVirt), optionally a port of a bridge in that netns, with IPAM addresses; the
 * reference tap plugin's options and behaviour. The device is made through /dev/net/tun opened
 * inside the container's netns under a kernel-chosen temporary name, then renamed to CNI_IFNAME,
 * so a name already taken is never attached to or overwritten. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <linux/capability.h>
#include <linux/if_tun.h>

#include "attach.h"
#include "conf.h"
#include "ipam.h"
#include "netns.h"
#include "nl.h"

/* The kernel picks a free name from this template; the device is renamed right after. */
#define TAP_TMP_NAME "cnitap%d"
#define TAP_HELPER_ARG "--cni-c-create-tap"

struct tap_conf {
	int mtu; /* 0: the kernel's */
	bool has_mac;
	uint8_t mac[6];
	bool multi_queue;
	long long owner, group; /* -1: none */
	const char *selinux; /* selinuxContext, NULL: none */
	const char *bridge; /* in the container's netns; NULL: none */
	bool has_ipam;
	bool has_dns;
	struct cni_dns dns;
};

/* ---- config ---- */

static int mac_value(const char *s, const char *what, int code, struct tap_conf *t, struct cni_error *e)
{
	if (cnl_mac_parse(s, t->mac) < 0 || (t->mac[0] & 1))
		return cni_errf(e, code, "%s\"%s\" is not a unicast MAC address", what, s);
	t->has_mac = true;
	return 0;
}

static int mac_field(const cJSON *obj, const char *parent, const char *key, struct tap_conf *t, struct cni_error *e)
{
	char p[CONF_PATH_MAX], what[CONF_PATH_MAX + 32];
	const char *s = NULL;
	int r = obj ? conf_string(obj, parent, key, &s, e) : 0;
	if (r <= 0 || !*s)
		return r;
	snprintf(what, sizeof(what), "invalid config: field \"%s\": ", conf_path(p, parent, key));
	return mac_value(s, what, CNI_ERR_INVALID_CONFIG, t, e);
}

/* owner, group: a uid or gid (uint32 in the reference; 4294967295 is the kernel's "none") */
static int id_field(const cJSON *root, const char *key, long long *out, struct cni_error *e)
{
	int r = conf_int(root, "", key, 0, 4294967294LL, out, e);
	if (r == 0)
		*out = -1;
	return r < 0 ? -1 : 0;
}

static int parse(struct cni_ctx *c, void *conf)
{
	struct tap_conf *t = conf;
	struct cni_error *e = &c->err;
	const cJSON *root = c->conf, *dns = NULL;
	const char *ipam_type = NULL, *envmac;
	long long v;
	int r;

	if ((r = conf_int(root, "", "mtu", 0, 65535, &v, e)) < 0)
		return -1;
	if (r && v && v < 68)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"mtu\": %lld out of range 68..65535", v);
	t->mtu = r ? (int)v : 0;
	if (conf_bool(root, "", "multiQueue", &t->multi_queue, e) < 0 || id_field(root, "owner", &t->owner, e) < 0 ||
	    id_field(root, "group", &t->group, e) < 0 || conf_string(root, "", "selinuxContext", &t->selinux, e) < 0 ||
	    conf_string(root, "", "bridge", &t->bridge, e) < 0)
		return -1;
	if (t->selinux && !*t->selinux)
		t->selinux = NULL;
	if (t->bridge && !*t->bridge)
		t->bridge = NULL;
	/* the MAC: "mac", then CNI_ARGS MAC, then args.cni.mac, then the `mac` capability; the later wins */
	if (mac_field(root, "", "mac", t, e) < 0)
		return -1;
	envmac = cni_arg(c, "MAC");
	if (envmac && *envmac && mac_value(envmac, "CNI_ARGS: MAC=", CNI_ERR_DECODE, t, e) < 0)
		return -1;
	if (mac_field(conf_args_cni(root), "args.cni", "mac", t, e) < 0 ||
	    mac_field(conf_runtime_config(root), "runtimeConfig", "mac", t, e) < 0)
		return -1;
	if ((r = cni_ipam_type(c, &ipam_type, e)) < 0)
		return -1;
	t->has_ipam = r > 0;
	if (conf_object(root, "", "dns", &dns, e) < 0)
		return -1;
	if (dns) {
		if (cni_dns_parse(dns, "dns", &t->dns, e) < 0)
			return -1;
		t->has_dns = !cni_dns_empty(&t->dns);
	}
	return 0;
}

static int verify(struct cni_ctx *c, void *conf)
{
	const struct tap_conf *t = conf;
	struct cni_error *e = &c->err;
	if (t->bridge && !conf_valid_ifname(t->bridge))
		return cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"bridge\": \"%s\" is not a valid interface name (1-15 bytes, no '/', ':' or spaces)",
			t->bridge);
	if (t->bridge && c->ifname && strcmp(t->bridge, c->ifname) == 0)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"bridge\" names CNI_IFNAME %s itself",
				c->ifname);
	if (t->selinux && (strlen(t->selinux) > 4095 || strpbrk(t->selinux, "\n")))
		return cni_errf(
			e, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"selinuxContext\": not an SELinux context (one line, at most 4095 bytes)");
	return 0;
}

static void free_conf(void *conf)
{
	cni_dns_free(&((struct tap_conf *)conf)->dns);
}

/* ---- making the device ---- */

/* The TUNSETIFF flags, as the reference makes the device: with both owner and group (its netlink
 * path) IFF_VNET_HDR, else (its `ip tuntap` path) IFF_NO_PI. A VMM opening the device sets these
 * feature flags again anyway; IFF_MULTI_QUEUE must match its open. */
static short tap_flags(const struct tap_conf *t)
{
	int f = IFF_TAP;
	if (t->owner >= 0 && t->group >= 0 && !t->selinux)
		f |= IFF_VNET_HDR | (t->multi_queue ? IFF_MULTI_QUEUE | IFF_NO_PI : 0);
	else
		f |= IFF_NO_PI | (t->multi_queue ? IFF_MULTI_QUEUE : 0);
	return (short)f;
}

/* On fd, an open /dev/net/tun (the device lands in the netns it was opened in): a new persistent
 * TAP device from the name template, owner and group set; its name into name. errno on failure,
 * with *step naming the ioctl. */
static int tap_make_fd(int fd, short flags, long long owner, long long group, char name[IFNAMSIZ], const char **step)
{
	struct ifreq ifr;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", TAP_TMP_NAME);
	ifr.ifr_flags = flags;
	*step = "TUNSETIFF";
	if (ioctl(fd, TUNSETIFF, &ifr) < 0)
		return errno;
	snprintf(name, IFNAMSIZ, "%s", ifr.ifr_name);
	*step = "TUNSETOWNER";
	if (owner >= 0 && ioctl(fd, TUNSETOWNER, (unsigned long)owner) < 0)
		goto fail;
	*step = "TUNSETGROUP";
	if (group >= 0 && ioctl(fd, TUNSETGROUP, (unsigned long)group) < 0)
		goto fail;
	*step = "TUNSETPERSIST";
	if (ioctl(fd, TUNSETPERSIST, 1UL) < 0)
		goto fail;
	return 0;
fail:;
	/* not persistent yet: closing the descriptor removes the device */
	return errno;
}

/* The helper mode (selinuxContext): this binary re-exec'd under the SELinux exec label, so that
 * the device is created by a process of that context, as the reference's `ip tuntap` is.
 * argv: TAP_HELPER_ARG FLAGS OWNER GROUP. Prints the device's name, or an error message; exit 0/1. */
static int helper_main(char **argv)
{
	char name[IFNAMSIZ];
	const char *step = "open /dev/net/tun";
	int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC), err;
	if (fd < 0) {
		printf("%s: %s\n", step, cni_strerror(errno));
		return 1;
	}
	err = tap_make_fd(fd, (short)strtol(argv[1], NULL, 10), strtoll(argv[2], NULL, 10), strtoll(argv[3], NULL, 10), name,
			  &step);
	close(fd);
	if (err) {
		printf("%s: %s\n", step, cni_strerror(err));
		return 1;
	}
	printf("%s\n", name);
	return 0;
}

/* selinuxContext: a child sets the exec label (/proc/thread-self/attr/exec, as the reference's
 * go-selinux does) and execs this binary in helper mode inside the container's netns. */
static int tap_make_labelled(const struct tap_conf *t, struct attach_ns *ns, char name[IFNAMSIZ], struct cni_error *e)
{
	int pfd[2], status = 0;
	char buf[512], fl[16], ow[24], gr[24];
	size_t len = 0;
	ssize_t k;
	pid_t pid;

	snprintf(fl, sizeof(fl), "%d", tap_flags(t));
	snprintf(ow, sizeof(ow), "%lld", t->owner);
	snprintf(gr, sizeof(gr), "%lld", t->group);
	if (pipe2(pfd, O_CLOEXEC) < 0)
		return cni_errf(e, CNI_ERR_INTERNAL, "pipe: %s", cni_strerror(errno));
	if ((pid = fork()) < 0) {
		close(pfd[0]);
		close(pfd[1]);
		return cni_errf(e, CNI_ERR_INTERNAL, "fork: %s", cni_strerror(errno));
	}
	if (pid == 0) {
		char *const argv[] = { (char *)"tap", (char *)TAP_HELPER_ARG, fl, ow, gr, NULL };
		int fd;
		dup2(pfd[1], STDOUT_FILENO);
		if (setns(ns->nsfd, 0) < 0) {
			dprintf(STDOUT_FILENO, "entering CNI_NETNS: %s\n", cni_strerror(errno));
			_exit(1);
		}
		fd = open("/proc/thread-self/attr/exec", O_WRONLY | O_CLOEXEC);
		if (fd < 0 || write(fd, t->selinux, strlen(t->selinux)) != (ssize_t)strlen(t->selinux)) {
			dprintf(STDOUT_FILENO, "cannot set the SELinux exec label: %s%s\n", cni_strerror(errno),
				errno == EINVAL || errno == ENOENT ? " (is SELinux enabled on this node, and the context valid?)"
								   : "");
			_exit(2);
		}
		close(fd);
		execv("/proc/self/exe", argv);
		dprintf(STDOUT_FILENO, "exec of /proc/self/exe: %s\n", cni_strerror(errno));
		_exit(1);
	}
	close(pfd[1]);
	while (len + 1 < sizeof(buf) && ((k = read(pfd[0], buf + len, sizeof(buf) - 1 - len)) > 0 || (k < 0 && errno == EINTR)))
		if (k > 0)
			len += (size_t)k;
	close(pfd[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	buf[len] = 0;
	buf[strcspn(buf, "\n")] = 0;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 2)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: field \"selinuxContext\": \"%s\": %s", t->selinux,
				buf);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0 || !conf_valid_ifname(buf))
		return cni_errf(e, CNI_ERR_KERNEL, "creating the TAP device (selinuxContext \"%s\"): %s", t->selinux,
				*buf ? buf : "the helper failed");
	snprintf(name, IFNAMSIZ, "%s", buf);
	return 0;
}

/* The device under a fresh temporary name, in the container's netns. */
static int tap_make(const struct tap_conf *t, struct attach_ns *ns, const char *netns, char name[IFNAMSIZ], struct cni_error *e)
{
	const char *step = "";
	int fd, err;
	if (t->selinux)
		return tap_make_labelled(t, ns, name, e);
	if (netns_enter(ns->nsfd, netns, e) < 0)
		return -1;
	fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
	err = errno;
	if (netns_enter(ns->selffd, "of the plugin", e) < 0) {
		if (fd >= 0)
			close(fd);
		return -1;
	}
	if (fd < 0)
		return cni_errf(e, CNI_ERR_KERNEL, "opening /dev/net/tun: %s", cni_strerror(err));
	err = tap_make_fd(fd, tap_flags(t), t->owner, t->group, name, &step);
	close(fd);
	if (err)
		return cni_errf(e, CNI_ERR_KERNEL, "creating the TAP device: %s: %s", step, cni_strerror(err));
	return 0;
}

struct link_undo {
	struct nlsock *sk;
	int index;
};

static void undo_link(void *arg)
{
	struct link_undo *l = arg;
	struct cni_error ig = { 0 };
	cnl_link_del(l->sk, l->index, NULL, &ig);
}

/* The bridge named by "bridge", in the container's netns (where the reference looks it up). */
static int find_bridge(struct cni_ctx *c, const struct tap_conf *t, struct nlsock *csk, struct cnl_link *br)
{
	int r = cnl_link_get(csk, t->bridge, 0, br, &c->err);
	if (r < 0)
		return -1;
	if (r == 0)
		return cni_errf(
			&c->err, CNI_ERR_INVALID_CONFIG,
			"invalid config: field \"bridge\": no bridge %s in CNI_NETNS %s (tap looks it up in the container's "
			"network namespace)",
			t->bridge, c->netns);
	if (strcmp(br->kind, "bridge") != 0)
		return cni_errf(&c->err, CNI_ERR_INVALID_CONFIG,
				"invalid config: field \"bridge\": %s in CNI_NETNS %s is not a bridge (kind \"%s\")", t->bridge,
				c->netns, br->kind);
	return 0;
}

/* ---- verbs ---- */

static int cmd_add(struct cni_ctx *c, void *conf, struct cni_result *out)
{
	const struct tap_conf *t = conf;
	struct cni_error *e = &c->err;
	struct undo undo = { 0 }, *u = &undo;
	struct attach_ns ns = { -1, -1, NULL };
	struct attach_conf a;
	struct cni_ipam_add ipam;
	struct cni_result ires = { 0 };
	struct cnl_link l, br;
	char tmp[IFNAMSIZ], mac[18];
	int r, rc = -1;

	if ((r = attach_ns_prepare(&ns, c->netns, e)) != 0) {
		if (r == 1)
			cni_errf(e, CNI_ERR_INVALID_ENV, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if (attach_ns_sock(&ns, c->netns, NULL, 0, e) < 0)
		goto out;
	/* a taken name fails before IPAM runs: a repeated ADD never releases a live reservation */
	if ((r = cnl_link_get(ns.csk, c->ifname, 0, &l, e)) < 0)
		goto out;
	if (r == 1) {
		cni_errf(e, CNI_ERR_EXISTS, "interface \"%s\" already exists in CNI_NETNS %s", c->ifname, c->netns);
		goto out;
	}
	if (t->bridge && find_bridge(c, t, ns.csk, &br) < 0)
		goto out;
	if (t->has_ipam && cni_ipam_add_start(&ipam, c, u, e) < 0)
		goto out;
	if (tap_make(t, &ns, c->netns, tmp, e) < 0)
		goto out;
	if ((r = cnl_link_get(ns.csk, tmp, 0, &l, e)) <= 0) {
		if (r == 0)
			cni_errf(e, CNI_ERR_KERNEL, "the new TAP device %s vanished from CNI_NETNS %s", tmp, c->netns);
		goto out;
	}
	if (undo_push(u, undo_link, &(struct link_undo){ ns.csk, l.index }, sizeof(struct link_undo), e) < 0)
		goto out;
	if ((r = cnl_link_rename(ns.csk, l.index, c->ifname, e)) < 0) {
		if (r == -EEXIST)
			cni_errf_force(e, CNI_ERR_EXISTS, "interface \"%s\" already exists in CNI_NETNS %s", c->ifname, c->netns);
		goto out;
	}
	if (cnl_link_modify(ns.csk, l.index, 0, 0, t->mtu, t->has_mac ? t->mac : NULL, t->bridge ? br.index : -1, e) < 0 ||
	    cnl_link_modify(ns.csk, l.index, IFF_UP, IFF_UP, 0, NULL, -1, e) < 0)
		goto out;
	if ((r = cnl_link_get(ns.csk, NULL, l.index, &l, e)) <= 0) {
		if (r == 0)
			cni_errf(e, CNI_ERR_KERNEL, "interface %s vanished from CNI_NETNS %s", c->ifname, c->netns);
		goto out;
	}
	if (cni_result_add_iface(out, c->ifname, l.has_mac ? cnl_mac_fmt(l.mac, mac) : "", c->netns) < 0) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	if (t->has_ipam) {
		if (cni_ipam_add_finish(&ipam, &ires, e) < 0)
			goto out;
		if (!ires.n_ips) {
			cni_errf(e, CNI_ERR_PLUGIN_EXEC, "IPAM plugin returned missing IP config");
			goto out;
		}
		memset(&a, 0, sizeof(a));
		a.has_ipam = true;
		if (attach_ctr_apply(c, &a, &ns, &ires, 0, out) < 0)
			goto out;
	}
	/* the config's DNS only, as the reference tap plugin */
	if (t->has_dns && cni_dns_copy(&out->dns, &t->dns) < 0) {
		cni_errf(e, CNI_ERR_INTERNAL, "out of memory");
		goto out;
	}
	rc = 0;
out:
	if (rc < 0)
		undo_run(u);
	cni_result_free(&ires);
	attach_ns_close(&ns);
	return rc;
}

/* DEL: IPAM released (even when the netns is gone), the TAP device of that name removed; what is
 * already gone is success. A link of that name that is not a tun device is not ours and stays. */
static int cmd_del(struct cni_ctx *c, void *conf)
{
	const struct tap_conf *t = conf;
	struct cni_error *e = &c->err, first = { 0 };
	struct cni_exec ipam = { 0 };
	bool ipam_running = false;
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link l;
	int r;

	if (t->has_ipam && cni_ipam_start(c, CNI_DEL, &ipam, &first) == 0)
		ipam_running = true;
	if (c->netns && *c->netns) {
		struct cni_error ne = { 0 };
		if ((r = attach_ns_prepare(&ns, c->netns, &ne)) == 0 && attach_ns_sock(&ns, c->netns, NULL, 0, &ne) == 0 &&
		    cnl_link_get(ns.csk, c->ifname, 0, &l, &ne) == 1 && strcmp(l.kind, "tun") == 0)
			cnl_link_del(ns.csk, l.index, c->ifname, &ne);
		/* a netns that is gone, or a path that is no netns any more: nothing left to remove */
		if (ne.code && ne.code != CNI_ERR_INVALID_ENV && !first.code)
			first = ne;
		attach_ns_close(&ns);
	}
	if (ipam_running && cni_exec_finish(&ipam, NULL, e) < 0) {
		if (!first.code)
			first = *e;
		cni_err_clear(e);
	}
	if (first.code) {
		*e = first;
		return -1;
	}
	return 0;
}

/* CHECK: prevResult's interface is here, a persistent TAP device with prevResult's MAC and the
 * config's MTU, queue mode, owner, group and bridge, up; prevResult's addresses and routes. */
static int check_tap(struct cni_ctx *c, const struct tap_conf *t, struct attach_ns *ns, const struct cni_iface *pi,
		     struct cnl_link *l)
{
	struct cni_error *e = &c->err;
	char m[18];
	int r;
	if ((r = cnl_link_get(ns->csk, c->ifname, 0, l, e)) < 0)
		return -1;
	if (r == 0)
		return cni_check_fail(e, "interface %s is missing from CNI_NETNS %s", c->ifname, c->netns);
	if (strcmp(l->kind, "tun") != 0 || l->tun_type != IFF_TAP)
		return cni_check_fail(e, "interface %s is not a TAP device (kind \"%s\")", c->ifname, l->kind);
	if (pi->mac[0] && (!l->has_mac || strcasecmp(cnl_mac_fmt(l->mac, m), pi->mac) != 0))
		return cni_check_fail(e, "interface %s has MAC %s, prevResult says %s", c->ifname, l->has_mac ? m : "(none)",
				      pi->mac);
	if (t->has_mac && memcmp(l->mac, t->mac, 6) != 0)
		return cni_check_fail(e, "interface %s has MAC %s, not the configured %s", c->ifname, cnl_mac_fmt(l->mac, m),
				      cnl_mac_fmt(t->mac, (char[18]){ 0 }));
	if (t->mtu && l->mtu != t->mtu)
		return cni_check_fail(e, "interface %s has MTU %d, the config says %d", c->ifname, l->mtu, t->mtu);
	if (!l->tun_persist)
		return cni_check_fail(e, "TAP device %s is not persistent", c->ifname);
	if (l->tun_multi_queue != t->multi_queue)
		return cni_check_fail(e, "TAP device %s is %s, the config says multiQueue %s", c->ifname,
				      l->tun_multi_queue ? "multi-queue" : "single-queue", t->multi_queue ? "true" : "false");
	if (l->tun_owner != t->owner)
		return cni_check_fail(e, "TAP device %s has owner %lld, the config says %lld (-1: none)", c->ifname, l->tun_owner,
				      t->owner);
	if (l->tun_group != t->group)
		return cni_check_fail(e, "TAP device %s has group %lld, the config says %lld (-1: none)", c->ifname, l->tun_group,
				      t->group);
	if (!(l->flags & IFF_UP))
		return cni_check_fail(e, "interface %s is down", c->ifname);
	if (t->bridge) {
		struct cnl_link br;
		if ((r = cnl_link_get(ns->csk, t->bridge, 0, &br, e)) < 0)
			return -1;
		if (r == 0 || strcmp(br.kind, "bridge") != 0 || l->master != br.index)
			return cni_check_fail(e, "interface %s is not a port of bridge %s in CNI_NETNS %s", c->ifname, t->bridge,
					      c->netns);
	} else if (l->master) {
		return cni_check_fail(e, "interface %s is a port of ifindex %d, the config names no bridge", c->ifname,
				      l->master);
	}
	return 0;
}

static int cmd_check(struct cni_ctx *c, void *conf)
{
	const struct tap_conf *t = conf;
	struct cni_error *e = &c->err;
	const struct cni_result *p = &c->prev;
	const struct cni_iface *pi = NULL;
	struct attach_ns ns = { -1, -1, NULL };
	struct cnl_link l;
	int r, rc = -1, idx = -1;

	if (!c->has_prev)
		return cni_errf(e, CNI_ERR_INVALID_CONFIG, "invalid config: CHECK needs \"prevResult\"");
	for (size_t i = 0; i < p->n_ifaces && !pi; i++)
		if (strcmp(p->ifaces[i].name, c->ifname) == 0 && p->ifaces[i].sandbox &&
		    strcmp(p->ifaces[i].sandbox, c->netns) == 0) {
			pi = &p->ifaces[i];
			idx = (int)i;
		}
	if (!pi)
		return cni_check_fail(e, "prevResult has no interface %s in sandbox %s", c->ifname, c->netns);
	if (t->has_ipam && cni_ipam_exec(c, CNI_CHECK, NULL, e) < 0)
		return -1;
	if ((r = attach_ns_prepare(&ns, c->netns, e)) != 0) {
		if (r == 1)
			cni_check_fail(e, "CNI_NETNS %s does not exist", c->netns);
		goto out;
	}
	if (attach_ns_sock(&ns, c->netns, NULL, 0, e) < 0 || check_tap(c, t, &ns, pi, &l) < 0 ||
	    attach_check_ctr(c, &ns, l.index, idx) < 0)
		goto out;
	rc = 0;
out:
	attach_ns_close(&ns);
	return rc;
}

/* GC and STATUS: the IPAM plugin's (tap keeps no state of its own outside the container). */
static int cmd_gc(struct cni_ctx *c, void *conf)
{
	return ((const struct tap_conf *)conf)->has_ipam ? cni_ipam_exec(c, CNI_GC, NULL, &c->err) : 0;
}

static int cmd_status(struct cni_ctx *c, void *conf)
{
	return ((const struct tap_conf *)conf)->has_ipam ? cni_ipam_exec(c, CNI_STATUS, NULL, &c->err) : 0;
}

static const char *const tap_args[] = { "MAC", NULL };
/* netlink and the tun ioctls need CAP_NET_ADMIN, setns(2) CAP_SYS_ADMIN, and opening a CNI_NETNS
 * of the form /proc/<pid>/ns/net CAP_SYS_PTRACE. */
static const int tap_caps[] = { CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE, -1 };

int main(int argc, char **argv)
{
	static const struct cni_plugin p = {
		.name = "tap",
		.inproc_ipam = &hostlocal_plugin,
		.cni_args = tap_args,
		.caps = tap_caps,
		.conf_size = sizeof(struct tap_conf),
		.parse = parse,
		.verify = verify,
		.free_conf = free_conf,
		.add = cmd_add,
		.check = cmd_check,
		.del = cmd_del,
		.gc = cmd_gc,
		.status = cmd_status,
	};
	if (argc == 5 && strcmp(argv[1], TAP_HELPER_ARG) == 0)
		return helper_main(argv + 1);
	return cni_plugin_main(&p);
}
