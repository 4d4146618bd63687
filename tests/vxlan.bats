#!/usr/bin/env bats
# vxlan plugin as a multi-host network: each "host" is a namespace on a shared underlay (a bridge
# in an underlay namespace), the plugin runs inside each host with its own dataDir and a
# host-local range carved out of one overlay subnet; containers are namespaces on those hosts.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	DATA=$BATS_TEST_TMPDIR/ipam
	UL=u$T
	mkns "$UL"
	ip -n "$UL" link add ub type bridge
	ip -n "$UL" link set ub up
}

teardown() {
	[[ -z ${START:-} ]] || exec {START}>&-
	net_teardown
}

# mkhost I [mtu]: host namespace h$T$I on the underlay: ul0 = 10.200.100.I/24, fd00:200:100::I/64.
mkhost() {
	local h=h$T$1
	mkns "$h"
	ip link add ul0 netns "$h" mtu "${2:-1500}" type veth peer name p$1 netns "$UL" mtu "${2:-1500}"
	ip -n "$UL" link set p$1 master ub up
	ip -n "$h" addr add 10.200.100.$1/24 dev ul0
	ip -n "$h" addr add fd00:200:100::$1/64 dev ul0 nodad
	ip -n "$h" link set ul0 up
}

# vxconf HOST VNI [extra members] [peers JSON]: this host's config; its range is .HOST*10+1..+9.
vxconf() {
	local i=$1 vni=$2 extra=${3:-} peers=${4:-}
	local lo=$((i * 10 + 1)) hi=$((i * 10 + 9))
	[[ -n $peers ]] || peers=$(for j in 1 2 3; do [[ $j == "$i" ]] || printf '"10.200.100.%s",' "$j"; done | sed 's/,$//; s/.*/[&]/')
	printf '{"cniVersion":"1.0.0","name":"vx%s","type":"vxlan","vni":%s,"underlayDevice":"ul0","peers":%s%s,"ipam":{"type":"host-local","dataDir":"%s/h%s","ranges":[[{"subnet":"10.200.110.0/24","rangeStart":"10.200.110.%s","rangeEnd":"10.200.110.%s"}],[{"subnet":"fd00:200:110::/64","rangeStart":"fd00:200:110::%s","rangeEnd":"fd00:200:110::%s"}]]}}' \
		"$vni" "$vni" "$peers" "${extra:+,$extra}" "$DATA" "$i" "$lo" "$hi" "$(printf %x $lo)" "$(printf %x $hi)"
}

# vxadd HOST CTR VNI [extra] [peers]: ADD container namespace CTR on host HOST.
vxadd() {
	[[ -e /var/run/netns/$2 ]] || mkns "$2"
	HOSTNS=h$T$1 hcni ADD vxlan "$(vxconf "$1" "$3" "${4:-}" "${5:-}")" "$2"
}

# listen NS IFACE FILE: tcpdump in NS on IFACE for one VXLAN datagram (at most 4 s) into FILE;
# returns once it captures
listen() {
	ip netns exec "$1" timeout 4 tcpdump -l -n -i "$2" -c 1 'udp dst port 4789' >"$3" 2>"$3.err" &
	local end=$((SECONDS + 10))
	until grep -q 'listening on' "$3.err"; do
		((SECONDS < end)) || fail "tcpdump in $1 did not start: $(cat "$3.err")"
		sleep 0.05
	done
}

@test "containers on host A and host B in VNI 100 ping each other across the overlay (v4 and v6 inside)" {
	mkhost 1; mkhost 2
	vxadd 1 a1$T 100; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.110.11/24"
	assert_equal "$(jqo -r '.interfaces[0].name + " " + .interfaces[3].name')" "vxbr100 vxlan100"
	vxadd 2 b1$T 100; assert_success
	listen "$UL" ub "$BATS_TEST_TMPDIR/dump"
	ping_ok a1$T 10.200.110.21
	wait
	grep -q 'VXLAN, flags \[I\] (0x08), vni 100' "$BATS_TEST_TMPDIR/dump"
	grep -q '10.200.100.[12].[0-9]* > 10.200.100.[12].4789: VXLAN' "$BATS_TEST_TMPDIR/dump"
	ping_ok b1$T 10.200.110.11
	ping_ok b1$T fd00:200:110::b
	# the VTEP: VNI, port, local address, on the bridge
	run ip -n h${T}1 -d link show vxlan100
	assert_output --partial 'vxlan id 100'
	assert_output --partial 'local 10.200.100.1'
	assert_output --partial 'dstport 4789'
	assert_output --partial 'master vxbr100'
}

# vni200 HOST CTR ADDRESS4 ADDRESS6: ADD CTR on HOST in VNI 200, pinned to these addresses of the
# overlay subnet VNI 100 uses too (a store of its own)
vni200() {
	mkns "$2"
	HOSTNS=h$T$1 hcni ADD vxlan "$(vxconf "$1" 200 | jq -c --arg d "$DATA/vni200-h$1" --arg a "$3" --arg b "$4" \
		'.ipam.dataDir=$d | .ipam.ranges[0][0].rangeStart=$a | .ipam.ranges[1][0].rangeStart=$b')" "$2"
}

@test "VNI 100 and VNI 200 on the same hosts cannot reach each other" {
	mkhost 1; mkhost 2
	vxadd 1 a1$T 100; assert_success
	vxadd 2 b1$T 100; assert_success
	# VNI 200 reuses the same overlay subnet, so only L2 separates them: a2 (host 1), b2 (host 2)
	vni200 1 a2$T 10.200.110.19 fd00:200:110::13; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.110.19/24"
	vni200 2 b2$T 10.200.110.29 fd00:200:110::1d; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.110.29/24"
	# the same traffic passes within each VNI, host 1 to host 2 and back, v4 and v6...
	ping_ok a1$T 10.200.110.21
	ping_ok b1$T fd00:200:110::b
	ping_ok a2$T 10.200.110.29
	ping_ok b2$T fd00:200:110::13
	# ...and not from one VNI into the other
	run ping_ok a1$T 10.200.110.29
	assert_failure
	run ping_ok b1$T fd00:200:110::13
	assert_failure
	run ping_ok a2$T 10.200.110.21
	assert_failure
	run ping_ok b2$T fd00:200:110::b
	assert_failure
}

@test "three hosts with unicast peers: every pair pings" {
	mkhost 1; mkhost 2; mkhost 3
	for i in 1 2 3; do vxadd $i c$i$T 100; assert_success; done
	for i in 1 2 3; do for j in 1 2 3; do
		[[ $i == "$j" ]] || ping_ok c$i$T 10.200.110.$((j * 10 + 1))
	done; done
	# one VTEP and one bridge per host, the VTEP a port of the bridge
	for i in 1 2 3; do
		assert_equal "$(ip -n h$T$i -j -d link show type vxlan | jq -r '[.[].ifname] | join(" ")')" vxlan100
		assert_equal "$(ip -n h$T$i -j link show type bridge | jq -r '[.[].ifname] | join(" ")')" vxbr100
		assert_equal "$(ip -n h$T$i -j link show vxlan100 | jq -r '.[0].master')" vxbr100
	done
	assert_equal "$(ip netns exec h${T}1 bridge -j fdb show dev vxlan100 | jq -r '[.[] | select(.mac=="00:00:00:00:00:00") | .dst] | sort | join(" ")')" "10.200.100.2 10.200.100.3"
}

@test "three hosts with a multicast group" {
	mkhost 1; mkhost 2; mkhost 3
	for i in 1 2 3; do
		mkns m$i$T
		HOSTNS=h$T$i hcni ADD vxlan "$(vxconf $i 300 '"group":"239.1.1.30"' '[]' | jq -c 'del(.peers)')" m$i$T
		assert_success
	done
	ip -n h${T}1 -d link show vxlan300 | grep -q 'group 239.1.1.30'
	for i in 1 2 3; do for j in 1 2 3; do
		[[ $i == "$j" ]] || ping_ok m$i$T 10.200.110.$((j * 10 + 1))
	done; done
}

@test "MTU: underlay minus 50 over IPv4; a full-size DF ping passes, one byte more fails" {
	mkhost 1; mkhost 2
	vxadd 1 a1$T 100; assert_success
	vxadd 2 b1$T 100; assert_success
	assert_equal "$(ip -n h${T}1 -o link show vxlan100 | grep -o 'mtu [0-9]*')" "mtu 1450"
	assert_equal "$(ip -n h${T}1 -o link show vxbr100 | grep -o 'mtu [0-9]*')" "mtu 1450"
	assert_equal "$(ip -n a1$T -o link show eth0 | grep -o 'mtu [0-9]*')" "mtu 1450"
	ip netns exec a1$T ping -c 1 -W 2 -M do -s 1422 10.200.110.21 >/dev/null
	run ip netns exec a1$T ping -c 1 -W 2 -M do -s 1423 10.200.110.21
	assert_failure
}

@test "MTU: underlay minus 70 over IPv6; IPv6 underlay carries the overlay" {
	mkhost 1; mkhost 2
	for i in 1 2; do
		local j=$((3 - i))
		mkns x$i$T
		HOSTNS=h$T$i hcni ADD vxlan "$(vxconf $i 100 '' "[\"fd00:200:100::$j\"]")" x$i$T
		assert_success
	done
	assert_equal "$(ip -n h${T}1 -o link show vxlan100 | grep -o 'mtu [0-9]*')" "mtu 1430"
	ip -n h${T}1 -d link show vxlan100 | grep -q 'local fd00:200:100::1'
	ip netns exec x1$T ping -c 1 -W 2 -M do -s 1402 10.200.110.21 >/dev/null
	run ip netns exec x1$T ping -c 1 -W 2 -M do -s 1403 10.200.110.21
	assert_failure
	ping_ok x2$T fd00:200:110::b
}

@test "the default route's link and its address are the defaults for underlayDevice and local" {
	mkhost 1; mkhost 2
	ip -n h${T}1 route add default via 10.200.100.254
	mkns a1$T
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 | jq -c 'del(.underlayDevice)')" a1$T
	assert_success
	ip -n h${T}1 -d link show vxlan100 | grep -q 'local 10.200.100.1 dev ul0'
	# the default route moved to another link: the VTEP on ul0 is refused, and the message names
	# where the underlay came from, not a field the config does not have
	ip -n h${T}1 link add ul1 type veth peer name ul1p
	ip -n h${T}1 addr add 10.200.101.1/24 dev ul1
	ip -n h${T}1 link set ul1 up
	ip -n h${T}1 link set ul1p up
	ip -n h${T}1 route replace default via 10.200.101.254 dev ul1
	mkns a3$T
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 | jq -c 'del(.underlayDevice) | .local="10.200.100.1"')" a3$T
	expect_error 106 "existing vxlan100 sits on another underlay device \\(ifindex [0-9]+\\), not ul1, the default route's link \\(the config has no \"underlayDevice\"\\)"
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 | jq -c '.underlayDevice="ul1" | .local="10.200.100.1"')" a3$T
	expect_error 106 'sits on another underlay device \(ifindex [0-9]+\), config says "underlayDevice": ul1'
	mkns a2$T
	HOSTNS=h${T}2 hcni ADD vxlan "$(vxconf 2 100 | jq -c 'del(.underlayDevice)')" a2$T
	expect_error 7 'no "underlayDevice" given and no default route'
}

@test "a peer removed from the config stops receiving flooded frames after the next ADD" {
	mkhost 1; mkhost 2; mkhost 3
	vxadd 1 a1$T 100; assert_success
	# host 1 floods to hosts 2 and 3; host 3 has no VTEP of its own, so what reaches its underlay
	# is host 1's flooding
	assert_equal "$(ip netns exec h${T}1 bridge -j fdb show dev vxlan100 | jq -r '[.[] | select(.mac=="00:00:00:00:00:00") | .dst] | sort | join(" ")')" "10.200.100.2 10.200.100.3"
	run ip -n h${T}3 link show vxlan100
	assert_failure
	# host 3 listens on its underlay: a flooded ARP from host 1 reaches it
	listen h${T}3 ul0 "$BATS_TEST_TMPDIR/before"
	run ip netns exec a1$T ping -c 2 -W 1 10.200.110.99
	wait
	grep -q VXLAN "$BATS_TEST_TMPDIR/before"
	# peers now only host 2; the next ADD on host 1 drops host 3's FDB entry, a1 keeps running
	vxadd 1 a2$T 100 "" '["10.200.100.2"]'; assert_success
	assert_equal "$(ip netns exec h${T}1 bridge -j fdb show dev vxlan100 | jq -r '[.[] | select(.mac=="00:00:00:00:00:00") | .dst] | join(" ")')" "10.200.100.2"
	# the same flood: host 2 still gets it, host 3 not
	listen h${T}2 ul0 "$BATS_TEST_TMPDIR/after2"
	listen h${T}3 ul0 "$BATS_TEST_TMPDIR/after3"
	run ip netns exec a1$T ping -c 2 -W 1 10.200.110.98
	wait
	grep -q VXLAN "$BATS_TEST_TMPDIR/after2"
	run grep -c VXLAN "$BATS_TEST_TMPDIR/after3"
	assert_output 0
	ip -n a1$T link show eth0 | grep -q ',UP'
}

@test "DEL of the last container removes the VTEP and the bridge; keepVtep keeps them; DEL twice" {
	mkhost 1
	vxadd 1 a1$T 100; assert_success
	vxadd 1 a2$T 100; assert_success
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a1$T
	assert_success
	ip -n h${T}1 link show vxlan100 >/dev/null
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a2$T
	assert_success
	run ip -n h${T}1 link show vxlan100
	assert_failure
	run ip -n h${T}1 link show vxbr100
	assert_failure
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a2$T
	assert_success
	[ -z "$(ls "$DATA/h1/vx100" | grep -e '^10\.' -e '^fd00')" ]
	vxadd 1 a3$T 100 '"keepVtep":true'; assert_success
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100 '"keepVtep":true')" a3$T
	assert_success
	ip -n h${T}1 link show vxlan100 >/dev/null
}

@test "an existing VTEP with another VNI, port, local, group, learning or MTU is refused and left unchanged" {
	mkhost 1
	vxadd 1 a1$T 100; assert_success
	local before res=$output
	before=$(ip -n h${T}1 -d link show vxlan100 | head -3)
	mkns z$T
	# CHECK passes with the config as made, fails once it asks for learning off
	HOSTNS=h${T}1 hcni CHECK vxlan "$(vxconf 1 100 | jq -c --argjson p "$res" '.prevResult=$p')" a1$T
	assert_success
	HOSTNS=h${T}1 hcni CHECK vxlan "$(vxconf 1 100 '"learning":false' | jq -c --argjson p "$res" '.prevResult=$p')" a1$T
	expect_error 104 'existing vxlan100 has learning on, config says "learning": false'
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 '"learning":false')" z$T
	expect_error 106 'existing vxlan100 has learning on, config says "learning": false'
	# the underlay's MTU raised after the VTEP was made: containers would get 8950, the VTEP has 1450
	ip -n h${T}1 link set ul0 mtu 9000
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100)" z$T
	expect_error 106 "existing vxlan100 has MTU 1450, the config's is 8950"
	HOSTNS=h${T}1 hcni CHECK vxlan "$(vxconf 1 100 | jq -c --argjson p "$res" '.prevResult=$p')" a1$T
	expect_error 104 "existing vxlan100 has MTU 1450, the config's is 8950"
	ip -n h${T}1 link set ul0 mtu 1500
	# an explicit MTU larger than the underlay can carry
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 300 '"mtu":8950')" z$T
	expect_error 7 '"mtu": 8950 does not fit the underlay: ul0 has MTU 1500, less 50 for VXLAN over IPv4 leaves 1450'
	run ip -n h${T}1 link show vxlan300
	assert_failure
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 '"port":8472')" z$T
	expect_error 106 'existing vxlan100 uses port 4789, config says "port": 8472'
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 '"local":"fd00:200:100::1"' '["fd00:200:100::2"]')" z$T
	expect_error 106 'existing vxlan100 has local address 10.200.100.1'
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 '"group":"239.1.1.1"' '[]')" z$T
	expect_error 106 'group'
	# a device named as our VTEP but with another VNI
	ip -n h${T}1 link add vxlan200 type vxlan id 201 dstport 4789 dev ul0
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 200)" z$T
	expect_error 106 'existing vxlan200 has VNI 201'
	assert_equal "$(ip -n h${T}1 -d link show vxlan100 | head -3)" "$before"
	run ip -n z$T link show eth0
	assert_failure
	run ip -n h${T}1 link show vxbr200
	assert_failure
}

@test "CHECK verifies VTEP, FDB peers, bridge membership, addresses and routes" {
	mkhost 1; mkhost 2
	vxadd 1 a1$T 100 '"isDefaultGateway":true'; assert_success
	local conf
	conf=$(vxconf 1 100 '"isDefaultGateway":true' | jq -c --argjson p "$output" '.prevResult=$p')
	HOSTNS=h${T}1 hcni CHECK vxlan "$conf" a1$T
	assert_success
	ip netns exec h${T}1 bridge fdb del 00:00:00:00:00:00 dev vxlan100 dst 10.200.100.3
	HOSTNS=h${T}1 hcni CHECK vxlan "$conf" a1$T
	expect_error 104 'peer 10.200.100.3 has no FDB entry on vxlan100'
	ip netns exec h${T}1 bridge fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.200.100.3
	ip -n h${T}1 link set vxlan100 nomaster
	HOSTNS=h${T}1 hcni CHECK vxlan "$conf" a1$T
	expect_error 104 'not an up port of bridge vxbr100'
	ip -n h${T}1 link set vxlan100 master vxbr100
	ip -n a1$T route del default
	HOSTNS=h${T}1 hcni CHECK vxlan "$conf" a1$T
	expect_error 104 'route to 0.0.0.0/0'
}

@test "GC: invalid attachments lose their reservation and port; the VTEP goes with the last" {
	mkhost 1
	vxadd 1 a1$T 100; assert_success
	vxadd 1 a2$T 100; assert_success
	HOSTNS=h${T}1 hcni GC vxlan "$(vxconf 1 100 | jq -c --arg c a1$T '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]')" x
	assert_success
	assert_equal "$(ip -n h${T}1 -o link show master vxbr100 | wc -l)" 2 # a1's veth and the VTEP
	[ -e "$DATA/h1/vx100/10.200.110.11" ] && [ ! -e "$DATA/h1/vx100/10.200.110.12" ]
	HOSTNS=h${T}1 hcni GC vxlan "$(vxconf 1 100 | jq -c '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[]')" x
	assert_success
	run ip -n h${T}1 link show vxlan100
	assert_failure
}

@test "a VTEP whose bridge was deleted, or that was set nomaster, by hand: DEL and GC still remove it" {
	mkhost 1
	vxadd 1 a1$T 100; assert_success
	# the bridge deleted by hand: the last DEL removes the VTEP left without it
	ip -n h${T}1 link show vxlan100 >/dev/null
	ip -n h${T}1 link del vxbr100
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a1$T
	assert_success
	run ip -n h${T}1 link show vxlan100
	assert_failure
	# the VTEP set nomaster by hand: GC with nothing valid removes it and the bridge
	mkns a2$T
	vxadd 1 a2$T 100; assert_success
	ip -n h${T}1 link set vxlan100 nomaster
	HOSTNS=h${T}1 hcni GC vxlan "$(vxconf 1 100 | jq -c '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[]')" x
	assert_success
	run ip -n h${T}1 link show vxlan100
	assert_failure
	run ip -n h${T}1 link show vxbr100
	assert_failure
	# a vxlan device of this VNI enslaved to a bridge that is not ours stays
	ip -n h${T}1 link add other$T type bridge
	ip -n h${T}1 link add vxlan100 type vxlan id 100 dstport 4789 dev ul0
	ip -n h${T}1 link set vxlan100 master other$T
	HOSTNS=h${T}1 hcni GC vxlan "$(vxconf 1 100 | jq -c '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[]')" x
	assert_success
	ip -n h${T}1 link show vxlan100 >/dev/null
}

@test "devices not ours survive DEL and GC: a VTEP ADD refused, a bridge made by someone else and its other ports" {
	mkhost 1
	# positive: a bridge we create under a custom name is marked, and goes with the last DEL
	vxadd 1 a1$T 100 '"bridge":"vb'$T'"'; assert_success
	assert_equal "$(ip -n h${T}1 -d -j link show vb$T | jq -r '.[0].ifalias')" "cni-c vxlan vni 100"
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100 '"bridge":"vb'$T'"')" a1$T; assert_success
	run ip -n h${T}1 link show vb$T; assert_failure
	run ip -n h${T}1 link show vxlan100; assert_failure
	# a VTEP of this VNI on another port and an administrator's bridge with an address: ADD refuses,
	# and the runtime's DEL after it removes neither
	ip -n h${T}1 link add vxlan100 type vxlan id 100 dstport 8472 dev ul0 local 10.200.100.1
	ip -n h${T}1 link add adm$T type bridge
	ip -n h${T}1 addr add 10.200.111.1/24 dev adm$T
	ip -n h${T}1 link set adm$T up
	vxadd 1 a2$T 100 '"bridge":"adm'$T'"'
	expect_error 106 'existing vxlan100 uses port 8472'
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100 '"bridge":"adm'$T'"')" a2$T; assert_success
	ip -n h${T}1 link show vxlan100 >/dev/null
	ip -n h${T}1 -br addr show adm$T | grep -q 10.200.111.1/24
	ip -n h${T}1 link del vxlan100
	# a bridge network's container on the administrator's bridge, a vxlan network pointed at it:
	# GC of the vxlan network with nothing valid leaves the other network's port and the bridge
	mkns c3$T
	HOSTNS=h${T}1 hcni ADD bridge "$(printf '{"cniVersion":"1.0.0","name":"br%s","type":"bridge","bridge":"adm%s","ipam":{"type":"host-local","dataDir":"%s/b","ranges":[[{"subnet":"10.200.111.0/24"}]]}}' "$T" "$T" "$DATA")" c3$T
	assert_success
	vxadd 1 a4$T 100 '"bridge":"adm'$T'"'; assert_success
	assert_equal "$(ip -n h${T}1 -o link show master adm$T | wc -l)" 3 # c3's veth, a4's veth, the VTEP
	HOSTNS=h${T}1 hcni GC vxlan "$(vxconf 1 100 '"bridge":"adm'$T'"' | jq -c '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[]')" x
	assert_success
	ip -n c3$T link show eth0 >/dev/null
	ip -n h${T}1 -br addr show adm$T | grep -q 10.200.111.1/24
	[ ! -e "$DATA/h1/vx100/10.200.110.11" ] # a4's reservation is collected all the same
}

@test "STATUS: ready; 51 when the underlay is down" {
	mkhost 1
	HOSTNS=h${T}1 hcni STATUS vxlan "$(vxconf 1 100 | jq -c '.cniVersion="1.1.0"')" x
	assert_success
	ip -n h${T}1 link set ul0 down
	HOSTNS=h${T}1 hcni STATUS vxlan "$(vxconf 1 100 | jq -c '.cniVersion="1.1.0"')" x
	expect_error 51 'underlay ul0 is down'
}

@test "one peers list for every node, this node's own address in it: skipped, traffic on the host and across flows" {
	mkhost 1; mkhost 2
	local peers='["10.200.100.1","10.200.100.2"]' res
	vxadd 1 a1$T 100 "" "$peers"; assert_success
	res=$output
	vxadd 1 a2$T 100 "" "$peers"; assert_success
	vxadd 2 b1$T 100 "" "$peers"; assert_success
	# host 1 floods to host 2 only, never to itself
	assert_equal "$(ip netns exec h${T}1 bridge -j fdb show dev vxlan100 | jq -r '[.[] | select(.mac=="00:00:00:00:00:00") | .dst] | join(" ")')" "10.200.100.2"
	ping_ok a1$T 10.200.110.12
	ping_ok a1$T 10.200.110.21
	ping_ok b1$T 10.200.110.12
	# no local MAC learned as behind a remote VTEP (the symptom of flooding to itself)
	run ip netns exec h${T}1 bridge -j fdb show dev vxlan100
	assert_equal "$(jq -r '[.[] | select(.dst == "10.200.100.1" or .dst == "127.0.0.1")] | length' <<<"$output")" 0
	HOSTNS=h${T}1 hcni CHECK vxlan "$(vxconf 1 100 "" "$peers" | jq -c --argjson p "$res" '.prevResult=$p')" a1$T
	assert_success
}

@test "IPv6 underlay without \"local\": a second global address on the underlay changes nothing for later ADDs" {
	mkhost 1; mkhost 2
	vxadd 1 a1$T 100 "" '["fd00:200:100::2"]'; assert_success
	assert_equal "$(ip -n h${T}1 -j -d link show vxlan100 | jq -r '.[0].linkinfo.info_data.local6')" fd00:200:100::1
	# the kernel lists the newest address first
	ip -n h${T}1 addr add fd00:200:100::a1/64 dev ul0 nodad
	vxadd 1 a2$T 100 "" '["fd00:200:100::2"]'
	assert_success
	assert_equal "$(ip -n h${T}1 -j -d link show vxlan100 | jq -r '.[0].linkinfo.info_data.local6')" fd00:200:100::1
	vxadd 2 b1$T 100 "" '["fd00:200:100::1"]'; assert_success
	ping_ok a2$T 10.200.110.21
	ping_ok b1$T 10.200.110.11
	# once the VTEP's address has left the underlay, the refusal does not blame a "local" the config lacks
	ip -n h${T}1 addr del fd00:200:100::1/64 dev ul0
	mkns a3$T
	vxadd 1 a3$T 100 "" '["fd00:200:100::2"]'
	expect_error 106 'existing vxlan100 has local address fd00:200:100::1, which is not an IPv6 address of underlay ul0 \(the config has no "local"; fd00:200:100::a1 would be chosen\)'
}

@test "an overlay MTU below 1280 with an IPv6 range: refused, saying IPv6 needs 1280, nothing left; IPv4 alone works" {
	mkhost 1 1300 # overlay MTU 1250
	mkns a1$T
	vxadd 1 a1$T 100 "" '["10.200.100.2"]'
	expect_error 7 'IPv6 needs an MTU of at least 1280, but eth0 has 1250'
	# no veth, VTEP or bridge: the host has its loopback and underlay only
	assert_equal "$(ip -n h${T}1 -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')" "lo ul0 "
	[[ $(ip -n a1$T -o link show | wc -l) == 1 ]]
	[[ -z $(find "$DATA" -type f \( -name '10.*' -o -name 'fd00*' \)) ]]
	# the same overlay with only the IPv4 range
	HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 "" '["10.200.100.2"]' | jq -c '.ipam.ranges |= .[:1]')" a1$T
	assert_success
	assert_equal "$(ip -n a1$T -j link show eth0 | jq -r '.[0].mtu')" 1250
}

@test "bad vxlan configs are refused with the field named, nothing created" {
	mkhost 1
	mkns z$T
	local -a cases=(
		'7|"vni" \(1..16777215\) is required|del(.vni)'
		'7|"vni": 0 out of range 1..16777215|.vni=0'
		'7|"vni": 16777216 out of range|.vni=16777216'
		'6|"vni" must be an integer, not a string|.vni="abc"'
		'7|"port": 70000 out of range 1..65535|.port=70000'
		'7|"peers" and "group" exclude each other|.group="239.1.1.1"'
		'7|"group": 10.200.1.1 is not a multicast address|del(.peers) | .group="10.200.1.1"'
		'7|"peers\[0\]".*not an IP address|.peers=["x"]'
		'7|"underlayDevice": nope0 does not exist|.underlayDevice="nope0"'
		'7|"local".*not an IP address|.local="1.2.3"'
	)
	local c code re filter
	for c in "${cases[@]}"; do
		code=${c%%|*}; c=${c#*|}; re=${c%%|*}; filter=${c#*|}
		HOSTNS=h${T}1 hcni ADD vxlan "$(vxconf 1 100 | jq -c "$filter")" z$T
		expect_error "$code" "$re"
	done
	run ip -n h${T}1 -o link show
	refute_output --partial vxlan
	refute_output --partial vxbr
}

# vx_bg VERB HOST CTR CONF: the plugin for container CTR on HOST, for running in the background:
# it gets ready (ip netns exec and a shell are slow to start, 5-40 ms apart), says so in
# $BATS_TEST_TMPDIR/ready.CTR and waits for a line on the start FIFO (start_all) before it
# execs the plugin: the plugins of one start_all run at the same moment. Output in
# $BATS_TEST_TMPDIR/vx.CTR, exit status in $BATS_TEST_TMPDIR/rc.CTR.
vx_bg() {
	local rc=0
	rm -f "$BATS_TEST_TMPDIR/ready.$3"
	ip netns exec h$T$2 env CNI_COMMAND="$1" CNI_CONTAINERID="$3" CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$3 \
		CNI_PATH="$PLUGIN_DIR" bash -c 'exec 5<>"$0"; : >"$1"; read -r -t 30 -u 5 _ || exit 99; exec 5>&-; exec "$2"' \
		"$BATS_TEST_TMPDIR/start" "$BATS_TEST_TMPDIR/ready.$3" "$PLUGIN_DIR/vxlan" <<<"$4" >"$BATS_TEST_TMPDIR/vx.$3" 2>&1 || rc=$?
	echo $rc >"$BATS_TEST_TMPDIR/rc.$3"
}

# start_all CTR...: once every one of them is ready, start them all (one line each on the FIFO,
# which this shell holds open read-write: no open blocks, no line is lost, nothing hangs)
start_all() {
	local end=$((SECONDS + 30)) x
	[[ -p $BATS_TEST_TMPDIR/start ]] || mkfifo "$BATS_TEST_TMPDIR/start"
	[[ -n ${START:-} ]] || exec {START}<>"$BATS_TEST_TMPDIR/start"
	for x in "$@"; do
		until [[ -e $BATS_TEST_TMPDIR/ready.$x ]]; do
			((SECONDS < end)) || fail "$x never got ready"
			sleep 0.01
		done
	done
	printf 'go\n%.0s' "$@" >&"$START"
}

# all_ok CTR...: every background run succeeded
all_ok() {
	local x
	for x in "$@"; do
		[[ $(cat "$BATS_TEST_TMPDIR/rc.$x") == 0 ]] || fail "$x: $(cat "$BATS_TEST_TMPDIR/vx.$x")"
	done
}

@test "12 ADDs at once on a VNI whose VTEP does not exist yet: all succeed, one VTEP, every container reachable; 12 DELs at once leave nothing" {
	mkhost 1; mkhost 2
	local i n=12 conf ctrs=()
	# host 1 gets a range for 30 containers
	conf=$(vxconf 1 100 | jq -c '.ipam.ranges[0][0].rangeStart="10.200.110.101" | .ipam.ranges[0][0].rangeEnd="10.200.110.130" |
		.ipam.ranges[1][0].rangeStart="fd00:200:110::65" | .ipam.ranges[1][0].rangeEnd="fd00:200:110::82"')
	for i in $(seq 1 $n); do
		mkns p$i$T
		ctrs+=(p$i$T)
	done
	run ip -n h${T}1 link show vxlan100
	assert_failure
	mkfifo "$BATS_TEST_TMPDIR/start"
	for i in "${ctrs[@]}"; do vx_bg ADD 1 "$i" "$conf" & done
	start_all "${ctrs[@]}"
	wait
	all_ok "${ctrs[@]}"
	# one VTEP, one bridge, every container a port of it, all addresses distinct
	assert_equal "$(ip -n h${T}1 -j -d link show type vxlan | jq -r '[.[].ifname] | join(" ")')" vxlan100
	assert_equal "$(ip -n h${T}1 -j link show type bridge | jq -r '[.[].ifname] | join(" ")')" vxbr100
	assert_equal "$(ip -n h${T}1 -o link show master vxbr100 | wc -l)" $((n + 1))
	for i in "${ctrs[@]}"; do jq -r '.ips[0].address' "$BATS_TEST_TMPDIR/vx.$i"; done | sort -u >"$BATS_TEST_TMPDIR/addrs"
	assert_equal "$(wc -l <"$BATS_TEST_TMPDIR/addrs")" $n
	# every one reachable across the overlay from a container on host 2
	vxadd 2 b1$T 100; assert_success
	local a
	while read -r a; do
		ping_ok b1$T "${a%/*}" || fail "${a%/*} unreachable from host 2"
	done <"$BATS_TEST_TMPDIR/addrs"
	# every DEL at once: the last one takes VTEP and bridge with it
	for i in "${ctrs[@]}"; do vx_bg DEL 1 "$i" "$conf" & done
	start_all "${ctrs[@]}"
	wait
	all_ok "${ctrs[@]}"
	run ip -n h${T}1 link show vxlan100
	assert_failure
	run ip -n h${T}1 link show vxbr100
	assert_failure
	run ip -n h${T}1 -o link show
	refute_output --partial ': veth'
	[ -z "$(ls "$DATA/h1/vx100" | grep -e '^10\.' -e '^fd00')" ]
	for i in "${ctrs[@]}"; do
		run ip -n "$i" link show eth0
		assert_failure
	done
}

@test "DEL after the container's netns is gone: succeeds, no port and no reservation left; the VTEP goes with the last" {
	mkhost 1
	vxadd 1 a1$T 100; assert_success
	local v1 v2
	v1=$(jqo -r '.interfaces[1].name')
	vxadd 1 a2$T 100; assert_success
	v2=$(jqo -r '.interfaces[1].name')
	# both ports on the bridge, both reservations held
	assert_equal "$(ip -n h${T}1 -j link show "$v1" | jq -r '.[0].master')" vxbr100
	assert_equal "$(ip -n h${T}1 -j link show "$v2" | jq -r '.[0].master')" vxbr100
	assert_equal "$(grep -l a1$T "$DATA/h1/vx100"/10.* "$DATA/h1/vx100"/fd00* | wc -l)" 2
	# the runtime lost a1's namespace (the container died, its netns was unmounted), and the
	# kernel took the veth pair with it, then DELs
	ip netns del a1$T
	local end=$((SECONDS + 10))
	while ip -n h${T}1 link show "$v1" >/dev/null 2>&1; do
		((SECONDS < end)) || fail "the kernel kept $v1 of the deleted namespace"
		sleep 0.05
	done
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a1$T
	assert_success
	run ip -n h${T}1 link show "$v1"
	assert_failure
	[ -z "$(grep -l a1$T "$DATA/h1/vx100"/* 2>/dev/null | grep -v /lock)" ]
	# a2 still there: the VTEP stays
	assert_equal "$(ip -n h${T}1 -j link show vxlan100 | jq -r '.[0].master')" vxbr100
	assert_equal "$(ip -n h${T}1 -j link show "$v2" | jq -r '.[0].master')" vxbr100
	# the last one, its netns deleted right before the DEL (the kernel may not have taken its
	# veth yet): VTEP and bridge go with it
	ip netns del a2$T
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a2$T
	assert_success
	run ip -n h${T}1 link show "$v2"
	assert_failure
	run ip -n h${T}1 link show vxlan100
	assert_failure
	run ip -n h${T}1 link show vxbr100
	assert_failure
	[ -z "$(ls "$DATA/h1/vx100" | grep -e '^10\.' -e '^fd00')" ]
	# and again: nothing to do
	HOSTNS=h${T}1 hcni DEL vxlan "$(vxconf 1 100)" a2$T
	assert_success
}
