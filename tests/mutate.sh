#!/usr/bin/env bash
# The mutation check: each mutant is one deliberate breakage of the product code, applied to a copy
# of the tree; `make check` must fail on every one of them (a mutant that survives is a promise no
# test keeps). Prints TAP: "ok N mutant NAME: caught by SUITE" or "not ok N mutant NAME: survived".
#
#   tests/mutate.sh [NAME...]     all mutants, or the ones named
#   MUTATE_JOBS=N                 jobs at once inside each make check (default 3)
#
# Each make check runs with FAIL_FAST=1 (stops at the first failing job) and the suites most likely
# to catch the mutant scheduled first, so a caught mutant costs well under a minute. A breakage
# that no longer applies (its code changed) is itself a failure: update the mutant.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

# NAME <US> FILE <US> the code as it is <US> the code broken <US> the suites to schedule first
US=$'\x1f'
MUTANTS=(
	"enabledad-ignored${US}common/attach.c${US}{ \"enabledad\", offsetof${US}{ \"enabledad-mutant\", offsetof${US}bridge"
	"del-keeps-snat${US}common/masq.c${US}if (r == 1 && drop_chain_cmds(${US}if (0 && r == 1 && drop_chain_cmds(${US}bridge masq"
	"gc-keeps-everything${US}plugins/ipam/host-local/verbs.c${US}if (cni_attachment_valid(g->c, o->id, o->ifname[0] ? o->ifname : NULL))${US}if (1 || cni_attachment_valid(g->c, o->id, o->ifname[0] ? o->ifname : NULL))${US}host-local bridge"
	"check-always-succeeds${US}plugins/main/bridge/bridge.c${US}attach_check(c, &b.a, sk) == 0) {${US}(attach_check(c, &b.a, sk), cni_err_clear(&c->err), 1)) {${US}bridge"
	"vni-isolation-dropped${US}plugins/main/vxlan/vxlan.c${US}\"vxbr%lld\", v->vni);${US}\"vxbr%lld\", 0LL);${US}vxlan"
	"gateway-handed-out${US}plugins/ipam/host-local/config.c${US}if (ip_equal(ip, &r->gateway) || ip_equal(ip, &r->subnet.ip))${US}if (ip_equal(ip, &r->subnet.ip))${US}host-local bridge"
	"spoofchk-not-installed${US}common/attach.c${US}{ \"macspoofchk\", offsetof${US}{ \"macspoofchk-mutant\", offsetof${US}bridge"
	"portmap-del-keeps-udp-flows${US}plugins/meta/portmap/portmap.c${US}leaves them) */
	if (flush_udp(${US}leaves them) */
	if (0 && flush_udp(${US}portmap"
)

want=("$@")
work=$(mktemp -d /tmp/cni-c-mutate.XXXXXX)
trap 'rm -rf "$work"' EXIT
n=0 caught=0 survived=0 broken=0
echo "1..$(if ((${#want[@]})); then echo ${#want[@]}; else echo ${#MUTANTS[@]}; fi)"
for m in "${MUTANTS[@]}"; do
	IFS=$US read -r -d '' name file from to first < <(printf '%s' "$m")
	((${#want[@]})) && [[ " ${want[*]} " != *" $name "* ]] && continue
	n=$((n + 1))
	dir=$work/$name
	mkdir -p "$dir"
	# the tree as it is now (uncommitted changes included), without builds or git
	tar -C "$ROOT" --exclude='./build*' --exclude=./.git --exclude='./fuzz-build*' -cf - . | tar -C "$dir" -xf -
	count=$(FROM=$from perl -0ne '$n = () = /\Q$ENV{FROM}\E/g; print $n' "$dir/$file")
	if [[ $count != 1 ]]; then
		echo "not ok $n mutant $name: the code to break occurs $count times in $file (update the mutant)"
		broken=$((broken + 1))
		continue
	fi
	FROM=$from TO=$to perl -0pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/' "$dir/$file"
	start=$(date +%s)
	MODE=check FAIL_FAST=1 FIRST="$first" JOBS=${MUTATE_JOBS:-3} TEST_OUT="$dir/out" \
		"$dir/tests/run.sh" >"$work/$name.log" 2>&1
	rc=$?
	secs=$(($(date +%s) - start))
	if grep -q '^not ok - build failed' "$work/$name.log"; then
		echo "not ok $n mutant $name: the broken tree did not build (update the mutant)"
		sed -n '/^not ok - build failed/,$p' "$work/$name.log" | head -20 | sed 's/^/# /'
		broken=$((broken + 1))
	elif [[ $rc != 0 ]]; then
		by=$(grep -B1000 -m1 '^not ok' "$work/$name.log" | grep '^# \[' | tail -1 | sed 's/^# //')
		what=$(grep -m1 '^not ok' "$work/$name.log")
		echo "ok $n mutant $name ($file): caught in ${secs}s by ${by:-?}: ${what#not ok }"
		caught=$((caught + 1))
	else
		echo "not ok $n mutant $name ($file): survived make check (${secs}s)"
		survived=$((survived + 1))
	fi
	rm -rf "$dir"
done
echo "# mutants: $caught caught, $survived survived, $broken no longer apply"
[[ $survived == 0 && $broken == 0 ]]
