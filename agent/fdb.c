/* The VTEP's FDB as the live peer set wants it: per peer a zero-MAC entry (head-end replication,
 * appended) and its VTEP MAC (permanent); every entry whose dst is no live peer goes, learned
 * ones too, and so does a static entry of a live peer's former VTEP MAC (docs/cluster.md "Data
 * plane"). */
#include <stdlib.h>
#include <string.h>
#include <linux/neighbour.h>

#include "agent.h"

static const uint8_t zero_mac[6];

static const struct peer *peer_at(const struct anet *n, const struct ip *dst)
{
	for (size_t i = 0; i < n->n_peers; i++)
		if (ip_equal(&n->peers[i].underlay, dst))
			return &n->peers[i];
	return NULL;
}

/* A static entry mac → dst (a learned one of the same MAC is made static). */
static bool have(const struct cnl_fdb_entry *v, size_t k, const uint8_t mac[6], const struct ip *dst)
{
	for (size_t i = 0; i < k; i++)
		if (!memcmp(v[i].mac, mac, 6) && ip_equal(&v[i].dst, dst) && (v[i].state & NUD_PERMANENT))
			return true;
	return false;
}

static int drop_stale(struct agent *a, struct anet *n, int index, const struct cnl_fdb_entry *v, size_t k, struct cni_error *e)
{
	char b[IP_STRLEN], m[18];
	for (size_t i = 0; i < k; i++) {
		const struct peer *p = peer_at(n, &v[i].dst);
		bool zero = !memcmp(v[i].mac, zero_mac, 6);
		/* a live peer's entries stay, but for a static one of a VTEP MAC it no longer has */
		if (p && (zero || !(v[i].state & NUD_PERMANENT) || (p->has_mac && !memcmp(p->mac, v[i].mac, 6))))
			continue;
		if (cnl_fdb(a->nl, false, index, zero ? NULL : v[i].mac, &v[i].dst, e) < 0)
			return -1;
		vlog(a, "network %s: fdb del %s dst %s", n->name, cnl_mac_fmt(v[i].mac, m), ip_fmt(&v[i].dst, b));
	}
	return 0;
}

static int add_missing(struct agent *a, struct anet *n, int index, const struct cnl_fdb_entry *v, size_t k, struct cni_error *e)
{
	char b[IP_STRLEN], m[18];
	for (size_t i = 0; i < n->n_peers; i++) {
		const struct peer *p = &n->peers[i];
		if (ip_equal(&p->underlay, &n->local))
			continue; /* never flood to ourselves */
		if (!have(v, k, zero_mac, &p->underlay)) {
			if (cnl_fdb(a->nl, true, index, NULL, &p->underlay, e) < 0)
				return -1;
			vlog(a, "network %s: fdb add 00:00:00:00:00:00 dst %s (%s)", n->name, ip_fmt(&p->underlay, b), p->name);
		}
		if (p->has_mac && !have(v, k, p->mac, &p->underlay)) {
			if (cnl_fdb_set(a->nl, index, p->mac, &p->underlay, e) < 0)
				return -1;
			vlog(a, "network %s: fdb add %s dst %s (%s)", n->name, cnl_mac_fmt(p->mac, m), ip_fmt(&p->underlay, b),
			     p->name);
		}
	}
	return 0;
}

int fdb_reconcile(struct agent *a, struct anet *n, struct cni_error *e)
{
	struct cnl_link vt;
	struct cnl_fdb_entry *v = NULL;
	size_t k = 0;
	int r;
	if (!n->synced) /* an agent restarted while etcd is unreachable keeps the last programmed peers */
		return 0;
	r = cnl_link_get(a->nl, n->vtep, 0, &vt, e);
	if (r <= 0)
		return r < 0 ? -1 : cni_errf(e, CNI_ERR_KERNEL, "VTEP %s is missing", n->vtep);
	if (cnl_fdb_list(a->nl, vt.index, &v, &k, e) < 0)
		return -1;
	r = drop_stale(a, n, vt.index, v, k, e) < 0 || add_missing(a, n, vt.index, v, k, e) < 0 ? -1 : 0;
	free(v);
	return r;
}
