#!/usr/bin/env bash
# The mutation check: each mutant is one deliberate breakage of the product code, applied to a copy
# of the tree; `make check` must fail on every one of them (a mutant that survives is a promise no
# test keeps). Prints TAP: "ok N mutant NAME: caught by SUITE: TEST" or "not ok N ...: survived".
#
#   tests/mutate.sh [NAME...]     all mutants, or the ones named
#   MUTATE_JOBS=N                 jobs at once inside make check (default 3)
#   MUTATE_SAMPLE=K[/S]           one mutant in K (without names), from mutant S (default: the
#                                 commit count, so the share moves with each commit)
#                                 (the test command: one in two; SAMPLE=1 there runs them all)
#   MUTATE_BASE_BUILD=DIR         a release build (BUILD=build, default flags) of this very tree,
#                                 e.g. the one tests/run.sh has just made: each mutant's copy starts
#                                 from it, so make recompiles the broken file and relinks (make
#                                 tracks sources, headers and the version by mtime); unset, every
#                                 mutant is built from scratch
#
# Each mutant names the suite and tests (bats -f regex) meant to catch it: those run first, against
# the broken release build, which costs seconds. Only when they let the mutant through does the
# whole `make check` run on it (FAIL_FAST: it stops at the first failing job); a mutant caught
# there is reported with the test that did, and as a miss of the test named. A breakage that no
# longer applies (its code changed) or no longer builds is itself a failure: update the mutant.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# NAME <US> FILE <US> the code as it is <US> the code broken <US> SUITE <US> the tests meant to catch it
US=$'\x1f'
MUTANTS=(
	"enabledad-ignored${US}common/attach.c${US}{ \"enabledad\", offsetof${US}{ \"enabledad-mutant\", offsetof${US}bridge${US}enabledad"
	"del-keeps-snat${US}common/masq.c${US}(r == 1 && nfttab_drop_chain_refs(${US}(0 && r == 1 && nfttab_drop_chain_refs(${US}bridge${US}^DEL removes veth, reservation and SNAT"
	"gc-keeps-everything${US}plugins/ipam/host-local/verbs.c${US}if (cni_attachment_valid(g->c, o->id, o->ifname[0] ? o->ifname : NULL))${US}if (1 || cni_attachment_valid(g->c, o->id, o->ifname[0] ? o->ifname : NULL))${US}host-local${US}^GC keeps valid attachments"
	"check-always-succeeds${US}plugins/bridge/bridge.c${US}attach_check(c, &b->a, sk) == 0) {${US}(attach_check(c, &b->a, sk), cni_err_clear(&c->err), 1)) {${US}bridge${US}^CHECK passes after ADD and fails after each kind of tampering"
	"vni-isolation-dropped${US}plugins/vxlan/vxlan.c${US}\"vxbr%lld\", v->vni);${US}\"vxbr%lld\", 0LL);${US}vxlan${US}^VNI 100 and VNI 200"
	"gateway-handed-out${US}plugins/ipam/host-local/config.c${US}if (ip_equal(ip, &r->gateway) || ip_equal(ip, &r->subnet.ip))${US}if (ip_equal(ip, &r->subnet.ip))${US}host-local${US}gateway"
	"spoofchk-not-installed${US}common/attach.c${US}{ \"macspoofchk\", offsetof${US}{ \"macspoofchk-mutant\", offsetof${US}bridge${US}^macspoofchk"
	"portmap-del-keeps-udp-flows${US}plugins/portmap/portmap.c${US}leaves them) */
	if (flush_udp(${US}leaves them) */
	if (0 && flush_udp(${US}portmap${US}^UDP: DEL flushes"
	"legacy-file-gets-second-address${US}plugins/ipam/host-local/alloc.c${US}if (hl_rangeset_find(set, &al->old[h]))${US}if (0 && hl_rangeset_find(set, &al->old[h]))${US}host-local-store${US}oldest format \\(ID only\\) is refused"
	"del-leaves-oldest-format${US}plugins/ipam/host-local/store.c${US}hl_store_find(s, HL_EXACT_OR_LEGACY, id, ifname, &ips, &n, e)${US}hl_store_find(s, HL_EXACT, id, ifname, &ips, &n, e)${US}host-local-store${US}two DELs release both"
	"repeated-add-not-adopted${US}common/attach.c${US}if (r == 1)
		return held_read(${US}if (r == 1 && 0)
		return held_read(${US}bridge${US}^an ADD repeated for a live attachment"
	"teardown-trusts-the-rules${US}common/nfttab.c${US}strcmp(el->chain, chain) == 0;${US}strcmp(el->chain, chain) == 0 && 0;${US}tamper${US}^SNAT rule deleted by hand"
	"check-ignores-gateway${US}common/attach.c${US}if (!found)
			return cni_check_fail(e, \"gateway %s is missing from %s\"${US}if (0)
			return cni_check_fail(e, \"gateway %s is missing from %s\"${US}tamper${US}^bridge gateway address removed"
	"portmap-teardown-trusts-the-chain${US}plugins/portmap/portmap.c${US}if (port_chains_jumping(n, chain, &pcs, &npc, e) < 0) {${US}if (0 && port_chains_jumping(n, chain, &pcs, &npc, e) < 0) {${US}tamper${US}^portmap: each damage"
	"reload-forgets-snat${US}common/attach.c${US}if (a->ip_masq && n && masq_add(a->masq_backend, &id, v, n, e) < 0)${US}if (0 && a->ip_masq && n && masq_add(a->masq_backend, &id, v, n, e) < 0)${US}reload${US}^after nft flush ruleset"
	"reload-skips-portmap${US}plugins/portmap/portmap.c${US}int rc = cmd_add(c, conf, &out);${US}int rc = c ? 0 : cmd_add(c, conf, &out);${US}reload${US}^after nft flush ruleset"
	"reload-ignores-dead-netns${US}tools/cnitool/reload.c${US}|| !netns_alive(ns)) {${US}|| (0 && !netns_alive(ns))) {${US}reload${US}^reload: an attachment whose netns is gone"
	"stale-bridge-mac${US}common/attach.c${US}if (r == 0 || strcmp(now.name, br->name) != 0)${US}if (1 || strcmp(now.name, br->name) != 0)${US}bridge${US}^a bridge made by someone else, without a MAC"
	"failed-add-removes-used-bridge${US}plugins/bridge/bridge.c${US}if (flock(b->lock, LOCK_EX) == 0)
		remove_if_unused${US}if (1)
		remove_if_unused${US}bridge${US}^failing ADDs that made the bridge"
	"fip-masq-wins${US}plugins/floating-ip/floating-ip.c${US}postrouting priority 90;${US}postrouting priority 110;${US}floating-ip${US}^with ipMasq on the bridge"
	"fip-portmap-wins${US}plugins/floating-ip/floating-ip.c${US}hook prerouting priority -110;${US}hook prerouting priority -90;${US}floating-ip${US}^with ipMasq on the bridge"
	"fip-taken-not-refused${US}plugins/floating-ip/floating-ip.c${US}return cni_errf(&c->err, CNI_ERR_IP_TAKEN,${US}if (0) return cni_errf(&c->err, CNI_ERR_IP_TAKEN,${US}floating-ip${US}^a floating IP mapped to another"
	"fip-del-keeps-address${US}plugins/floating-ip/floating-ip.c${US}if (ent[i].dev[0] && addr_remove(ent[i].dev, &ent[i].fip, e) < 0)${US}if (0 && ent[i].dev[0] && addr_remove(ent[i].dev, &ent[i].fip, e) < 0)${US}floating-ip${US}^outside reaches the container"
	"bw-rate-off-by-an-eighth${US}plugins/bandwidth/bandwidth.c${US}uint64_t rate = rate_bits / 8;${US}uint64_t rate = rate_bits / 7;${US}bandwidth${US}^traffic to and from the container is shaped"
	"bw-del-keeps-ifb${US}plugins/bandwidth/bandwidth.c${US}if (r && strcmp(ifb.kind, \"ifb\") == 0 && cnl_link_del(${US}if (0 && r && strcmp(ifb.kind, \"ifb\") == 0 && cnl_link_del(${US}bandwidth${US}^DEL removes the ifb"
	"bw-check-ignores-filter${US}plugins/bandwidth/bandwidth.c${US}if (!have) {${US}if (0) {${US}bandwidth${US}^CHECK passes"
	"bw-failed-add-keeps-tbf${US}plugins/bandwidth/bandwidth.c${US}if (rc < 0)
		undo_run(&u);
	cnl_close(sk);${US}if (0)
		undo_run(&u);
	cnl_close(sk);${US}bandwidth${US}^a failed ADD"
	"bw-gc-any-network${US}plugins/bandwidth/bandwidth.c${US}ALIAS_PREFIX \"%s id=\", c->name${US}ALIAS_PREFIX \"%.0s\", c->name${US}bandwidth${US}^GC removes"
)

want=("$@")
# this commit's share of the mutants (MUTATE_SAMPLE), unless some are named
k=${MUTATE_SAMPLE:-1} turn=
[[ $k == */* ]] && turn=${k#*/} k=${k%%/*}
[[ $k =~ ^[1-9][0-9]*$ && ${turn:-0} =~ ^[0-9]+$ ]] || { echo "MUTATE_SAMPLE=$MUTATE_SAMPLE: want K or K/S" >&2; exit 2; }
if ((${#want[@]} == 0 && k > 1)); then
	turn=$((${turn:-$(git rev-list --count HEAD 2>/dev/null || echo 0)} % k))
	for i in "${!MUTANTS[@]}"; do
		((i % k == turn)) && want+=("${MUTANTS[i]%%"$US"*}")
	done
	echo "# mutants $((turn + 1)), $((turn + 1 + k)), ... of ${#MUTANTS[@]} (one in $k, moving with each commit)"
fi
work=$(mktemp -d /tmp/cni-c-mutate.XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0 caught=0 survived=0 broken=0
echo "1..$(if ((${#want[@]})); then echo ${#want[@]}; else echo ${#MUTANTS[@]}; fi)"
for m in "${MUTANTS[@]}"; do
	IFS=$US read -r -d '' name file from to suite filter < <(printf '%s' "$m")
	((${#want[@]})) && [[ " ${want[*]} " != *" $name "* ]] && continue
	n=$((n + 1))
	dir=$work/$name
	mkdir -p "$dir"
	# the tree as it is now (uncommitted changes included), without builds or git
	tar -C "$ROOT" --exclude='./build*' --exclude=./.git --exclude='./fuzz-build*' -cf - . | tar -C "$dir" -xf -
	# the unbroken objects, older than the file broken below (cp -a keeps their times)
	[[ -n ${MUTATE_BASE_BUILD:-} && -d ${MUTATE_BASE_BUILD:-} ]] && cp -a "$MUTATE_BASE_BUILD" "$dir/build"
	count=$(FROM=$from perl -0ne '$n = () = /\Q$ENV{FROM}\E/g; print $n' "$dir/$file")
	if [[ $count != 1 ]]; then
		echo "not ok $n mutant $name: the code to break occurs $count times in $file (update the mutant)"
		broken=$((broken + 1))
		continue
	fi
	FROM=$from TO=$to perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$dir/$file"
	start=$(date +%s)
	if ! make -s -j2 -C "$dir" BUILD=build all test-tools >"$work/$name.log" 2>&1; then
		echo "not ok $n mutant $name: the broken tree did not build (update the mutant)"
		head -20 "$work/$name.log" | sed 's/^/# /'
		broken=$((broken + 1))
		rm -rf "$dir"
		continue
	fi
	# the tests meant to catch it, from this tree, against the broken build
	PLUGIN_DIR=$dir/build timeout -s INT -k 30 600 unshare -n sh -c 'ip link set lo up && exec "$@"' sh \
		bats --tap -f "$filter" "$ROOT/tests/$suite.bats" >"$work/$name.tap" 2>&1 </dev/null
	if grep -q '^not ok' "$work/$name.tap"; then
		what=$(grep -m1 '^not ok' "$work/$name.tap")
		echo "ok $n mutant $name ($file): caught in $(($(date +%s) - start))s by $suite: ${what#not ok }"
		caught=$((caught + 1))
		rm -rf "$dir"
		continue
	fi
	# missed there: does anything in make check catch it?
	MODE=check FAIL_FAST=1 FIRST="$suite" JOBS=${MUTATE_JOBS:-3} TEST_OUT="$dir/out" \
		"$dir/tests/run.sh" >"$work/$name.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if [[ $rc != 0 ]]; then
		by=$(grep -B1000 -m1 '^not ok' "$work/$name.log" | grep '^# \[' | tail -1 | sed 's/^# //')
		what=$(grep -m1 '^not ok' "$work/$name.log")
		echo "ok $n mutant $name ($file): caught in ${secs}s by ${by:-?}: ${what#not ok }"
		echo "# mutant $name: $suite.bats -f '$filter' (meant to catch it) let it through"
		caught=$((caught + 1))
	else
		echo "not ok $n mutant $name ($file): survived make check (${secs}s)"
		survived=$((survived + 1))
	fi
	rm -rf "$dir"
done
echo "# mutants: $caught caught, $survived survived, $broken no longer apply"
[[ $survived == 0 && $broken == 0 ]]
