#!/usr/bin/env bats
# vlan on a kernel without 802.1Q (this host's): a plain error, nothing left behind. The real vlan
# suite runs in the VM lane (tests/vm/vlan.bats).

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	DATA=$BATS_TEST_TMPDIR/ipam
	mkns "$HOSTNS"
	in_host ip link add trunk type veth peer name trunkp
	in_host ip link set trunk up
}

teardown() { net_teardown; }

have_8021q() {
	! in_host ip link add link trunk name probe.7 type vlan id 7 2>&1 | grep -q 'not supported\|Unknown device type' &&
		in_host ip link del probe.7 2>/dev/null
}

@test "no 8021q in the kernel: ADD says so plainly (code 101) and leaves nothing, both modes" {
	have_8021q && skip "this kernel has 802.1Q: the VM lane covers vlan"
	local base='{"cniVersion":"1.0.0","name":"v","type":"vlan","master":"trunk","vlanId":100,"ipam":{"type":"host-local","dataDir":"'$DATA'","ranges":[[{"subnet":"10.200.121.0/24"}]]}}'
	mkns c1$T
	hcni ADD vlan "$base" c1$T
	expect_error 101 'the kernel has no 8021q support: load module 8021q'
	run ip -n c1$T -o link show
	refute_output --partial vlt
	refute_output --partial eth0
	hcni ADD vlan "$(jq -c '.bridge="brvlan100"' <<<"$base")" c1$T
	expect_error 101 'the kernel has no 8021q support: load module 8021q'
	run in_host ip -o link show
	refute_output --partial brvlan100
	refute_output --partial veth
	[ -z "$(ls "$DATA/v" 2>/dev/null | grep '^10\.')" ]
}
