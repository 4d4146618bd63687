#!/usr/bin/env bats
# vlan plugin, run in the VM lane (this needs 802.1Q, which the host kernel may lack). Two trunk
# "hosts" are namespaces joined by a veth pair (the trunk cable); each has its parent link on it.

setup() {
	load ../helpers/common
	load ../helpers/net
	T=$(tag)
	DATA=$BATS_TEST_TMPDIR/ipam
	HA=ha$T HB=hb$T
	mkns "$HA"
	mkns "$HB"
	ip link add trunk netns "$HA" type veth peer name trunk netns "$HB"
	ip -n "$HA" link set trunk up
	ip -n "$HB" link set trunk up
}

teardown() { net_teardown; }

# vconf HOSTNUM VID [extra]: bridged mode unless extra says otherwise; per-host range .HOST*10+1..
vconf() {
	local lo=$(($1 * 10 + 1)) hi=$(($1 * 10 + 9))
	printf '{"cniVersion":"1.0.0","name":"v%s","type":"vlan","master":"trunk","vlanId":%s%s,"ipam":{"type":"host-local","dataDir":"%s/h%s","ranges":[[{"subnet":"10.200.120.0/24","rangeStart":"10.200.120.%s","rangeEnd":"10.200.120.%s"}]]}}' \
		"$2" "$2" "${3-,\"bridge\":\"brvlan$2\"}" "$DATA" "$1" "$lo" "$hi"
}

# wait_for SECONDS CMD...: poll CMD until it succeeds; fails after SECONDS
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}

# reserved DIR: the addresses host-local holds in DIR, one a line
reserved() { ls "$1" 2>/dev/null | grep '^10\.' || true; }

# vadd_ok ...: vadd as a condition (for wait_for)
vadd_ok() { vadd "$@"; [[ $status == 0 ]]; }

# v11 CONF: the config at cniVersion 1.1.0 (GC, STATUS)
v11() { jq -c '.cniVersion="1.1.0"' <<<"$1"; }

# vadd HOSTNS HOSTNUM CTR VID [extra]
vadd() {
	[[ -e /var/run/netns/$3 ]] || mkns "$3"
	HOSTNS=$1 hcni ADD vlan "$(vconf "$2" "$4" "${@:5}")" "$3"
}

@test "bridged: containers in VLAN 100 on two hosts ping across the trunk; frames carry tag 100" {
	vadd "$HA" 1 a1$T 100; assert_success
	assert_equal "$(jqo -r '.interfaces[0].name + " " + .interfaces[3].name')" "brvlan100 trunk.100"
	vadd "$HB" 2 b1$T 100; assert_success
	ip -n "$HA" -d link show trunk.100 | grep -q 'vlan protocol 802.1Q id 100'
	require tcpdump
	ip netns exec "$HB" timeout 10 tcpdump -Z root -l -e -n -i trunk -c 1 'vlan 100 and icmp' >"$BATS_TEST_TMPDIR/dump" 2>&1 &
	wait_for 5 grep -q 'listening on' "$BATS_TEST_TMPDIR/dump"
	ping_ok a1$T 10.200.120.21
	wait
	grep -q 'vlan 100' "$BATS_TEST_TMPDIR/dump"
}

@test "bridged: VLAN 100 and VLAN 200 cannot reach each other at L2" {
	# one subnet for both VLANs: only the tag keeps them apart. b2 always has 10.200.120.29.
	local at29='.ipam.ranges[0][0].rangeStart="10.200.120.29"'
	vadd "$HA" 1 a1$T 100; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.120.11/24
	vadd "$HB" 2 b1$T 100; assert_success # keeps VLAN 100 alive on host B throughout
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.120.21/24
	mkns b2$T
	HOSTNS=$HB hcni ADD vlan "$(vconf 2 100 | jq -c "$at29")" b2$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.120.29/24
	# same VLAN: a1 reaches .29
	ping_ok a1$T 10.200.120.29
	# b2 moves to VLAN 200, same address: the same ping from a1 is dropped
	HOSTNS=$HB hcni DEL vlan "$(vconf 2 100 | jq -c "$at29")" b2$T
	assert_success
	HOSTNS=$HB hcni ADD vlan "$(vconf 2 200 | jq -c "$at29")" b2$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.120.29/24
	ip -n "$HB" -d link show trunk.200 | grep -q 'vlan protocol 802.1Q id 200'
	ip -n a1$T neigh flush all
	ping_ok a1$T 10.200.120.21 # VLAN 100 still crosses the trunk to host B
	run ping_ok a1$T 10.200.120.29
	assert_failure
	# a1 follows it into VLAN 200 (same address .11): the same ping passes again
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100)" a1$T
	assert_success
	vadd "$HA" 1 a1$T 200; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.120.11/24
	ping_ok a1$T 10.200.120.29
}

@test "bridged: five containers on one host in one VLAN ping each other, one sub-interface, one bridge" {
	for i in 1 2 3 4 5; do vadd "$HA" 1 c$i$T 100; assert_success; done
	for i in 1 2 3 4 5; do ping_ok c1$T 10.200.120.1$i; done
	ping_ok c5$T 10.200.120.11
	assert_equal "$(ip -n "$HA" -o link show type vlan | wc -l)" 1
	assert_equal "$(ip -n "$HA" -o link show master brvlan100 | wc -l)" 6
}

@test "bridged: concurrent ADDs on one VLAN create one sub-interface and one bridge" {
	local i
	for i in 1 2 3 4 5 6; do ip netns add p$i$T && NS_LIST+=(p$i$T); done
	for i in 1 2 3 4 5 6; do
		ip netns exec "$HA" env CNI_COMMAND=ADD CNI_CONTAINERID=p$i CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/p$i$T \
			CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/vlan" <<<"$(vconf 1 100)" >"$BATS_TEST_TMPDIR/o$i" &
	done
	wait
	for i in 1 2 3 4 5 6; do jq -e .ips "$BATS_TEST_TMPDIR/o$i" >/dev/null || { cat "$BATS_TEST_TMPDIR/o$i"; false; }; done
	assert_equal "$(ip -n "$HA" -o link show type vlan | wc -l)" 1
	assert_equal "$(ip -n "$HA" -o link show type bridge | wc -l)" 1
}

@test "bridged: the last DEL removes the shared sub-interface and bridge; DEL twice; DEL after the netns is gone" {
	vadd "$HA" 1 a1$T 100; assert_success
	vadd "$HA" 1 a2$T 100; assert_success
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100)" a1$T
	assert_success
	ip -n "$HA" link show trunk.100 >/dev/null
	ip netns del a2$T
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100)" a2$T
	assert_success
	run ip -n "$HA" link show trunk.100
	assert_failure
	run ip -n "$HA" link show brvlan100
	assert_failure
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100)" a2$T
	assert_success
	[ -z "$(ls "$DATA/h1/v100" | grep '^10\.')" ]
	ip -n "$HA" link show trunk >/dev/null # the master stays
}

@test "bridged: an existing sub-interface with another ID or parent is a clear error" {
	ip -n "$HA" link add trunk2 type veth peer name trunk2p
	ip -n "$HA" link add link trunk2 name trunk.100 type vlan id 100
	mkns a1$T
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100)" a1$T
	expect_error 106 'existing trunk.100 is VLAN 100 of ifindex [0-9]+, not VLAN 100 of trunk'
	run ip -n a1$T link show eth0
	assert_failure
}

@test "bridged: CHECK passes, then fails when the sub-interface leaves the bridge" {
	vadd "$HA" 1 a1$T 100; assert_success
	local conf
	conf=$(vconf 1 100 | jq -c --argjson p "$output" '.prevResult=$p')
	HOSTNS=$HA hcni CHECK vlan "$conf" a1$T
	assert_success
	ip -n "$HA" link set trunk.100 nomaster
	HOSTNS=$HA hcni CHECK vlan "$conf" a1$T
	expect_error 104 'trunk.100 is not an up VLAN 100 sub-interface of trunk on bridge brvlan100'
}

@test "reference mode: the sub-interface moves into the container; a second one on the same ID is refused" {
	vadd "$HA" 1 a1$T 100 ''; assert_success
	assert_equal "$(jqo -c '[.interfaces[0].name, .ips[0].interface]')" '["eth0",0]'
	ip -n a1$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 100'
	vadd "$HB" 2 b1$T 100 ''; assert_success
	ping_ok a1$T 10.200.120.21
	vadd "$HA" 1 a2$T 100 ''
	expect_error 106 'master trunk already has a VLAN 100 sub-interface'
	[ -z "$(grep -l a2$T "$DATA"/h1/v100/10.* 2>/dev/null)" ]
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 '')" a1$T
	assert_success
	run ip -n a1$T link show eth0
	assert_failure
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 '')" a1$T
	assert_success
}

@test "reference mode: CHECK passes, fails after the address is removed" {
	vadd "$HA" 1 a1$T 100 ''; assert_success
	local conf
	conf=$(vconf 1 100 '' | jq -c --argjson p "$output" '.prevResult=$p')
	HOSTNS=$HA hcni CHECK vlan "$conf" a1$T
	assert_success
	ip -n a1$T addr flush dev eth0
	HOSTNS=$HA hcni CHECK vlan "$conf" a1$T
	expect_error 104 'address 10.200.120.11/24 is missing from eth0'
}

@test "linkInContainer: the master lives in the container's netns" {
	mkns a1$T
	ip -n "$HA" link set trunk netns a1$T
	ip -n a1$T link set trunk up
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 ',"linkInContainer":true')" a1$T
	assert_success
	ip -n a1$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 100'
}

@test "MTU above the master's, vlanId 0, 4095 and \"abc\" are refused with the field named" {
	mkns a1$T
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 ',"mtu":9000')" a1$T
	expect_error 7 '"mtu": 9000 is above master trunk.s MTU 1500'
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 | jq -c '.vlanId=0')" a1$T
	expect_error 7 '"vlanId": 0 out of range 1..4094'
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 | jq -c '.vlanId=4095')" a1$T
	expect_error 7 '"vlanId": 4095 out of range 1..4094'
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 | jq -c '.vlanId="abc"')" a1$T
	expect_error 6 '"vlanId" must be an integer'
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 | jq -c 'del(.master)')" a1$T
	expect_error 7 '"master".*is required'
	HOSTNS=$HA hcni ADD vlan "$(vconf 1 100 | jq -c '.master="nope0"')" a1$T
	expect_error 7 '"master": nope0 does not exist'
	run ip -n "$HA" -o link show type vlan
	assert_output ""
}

@test "bridged GC: a valid attachment keeps its reservation, SNAT chain and traffic; invalid ones lose reservation and SNAT chain" {
	local m=',"bridge":"brvlan100","ipMasq":true' valid
	vadd "$HA" 1 a1$T 100 "$m"; assert_success
	vadd "$HA" 1 a2$T 100 "$m"; assert_success
	vadd "$HB" 2 b1$T 100; assert_success
	ping_ok a1$T 10.200.120.21
	ping_ok a2$T 10.200.120.21
	assert_equal "$(reserved "$DATA/h1/v100" | tr '\n' ' ')" "10.200.120.11 10.200.120.12 "
	run ip netns exec "$HA" nft list map inet cni_c_masq masq4
	assert_output --partial 10.200.120.11
	assert_output --partial 10.200.120.12
	valid=$(v11 "$(vconf 1 100 "$m")" | jq -c --arg c a1$T '."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]')
	HOSTNS=$HA hcni GC vlan "$valid" x
	assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" 10.200.120.11
	run ip netns exec "$HA" nft list map inet cni_c_masq masq4
	assert_output --partial 10.200.120.11
	refute_output --partial 10.200.120.12
	# the valid attachment is untouched: its sub-interface, bridge port and traffic
	ip -n "$HA" link show trunk.100 >/dev/null
	ping_ok a1$T 10.200.120.21
	# GC again with the same list changes nothing; with no valid attachment, everything goes
	HOSTNS=$HA hcni GC vlan "$valid" x
	assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" 10.200.120.11
	HOSTNS=$HA hcni GC vlan "$(v11 "$(vconf 1 100 "$m")" | jq -c '."cni.dev/valid-attachments"=[]')" x
	assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" ""
	run ip netns exec "$HA" nft list map inet cni_c_masq masq4
	refute_output --partial 10.200.120.11
	# the DELs a runtime sends afterwards still succeed and take the VLAN's host objects with the last
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 "$m")" a1$T
	assert_success
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 "$m")" a2$T
	assert_success
	run ip -n "$HA" link show trunk.100
	assert_failure
	run ip -n "$HA" link show brvlan100
	assert_failure
}

@test "reference-mode GC: the invalid attachment's reservation goes, the valid one's stays" {
	vadd "$HA" 1 a1$T 100 ''; assert_success
	vadd "$HA" 1 a2$T 101 ''; assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" 10.200.120.11
	assert_equal "$(reserved "$DATA/h1/v101")" 10.200.120.11
	# one network per VLAN: GC of v100 with only a1 valid keeps a1's, GC of v101 likewise drops a2's
	HOSTNS=$HA hcni GC vlan "$(v11 "$(vconf 1 100 '')" | jq -c --arg c a1$T '."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]')" x
	assert_success
	HOSTNS=$HA hcni GC vlan "$(v11 "$(vconf 1 101 '')" | jq -c --arg c a1$T '."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]')" x
	assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" 10.200.120.11
	assert_equal "$(reserved "$DATA/h1/v101")" ""
	ip -n a1$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 100'
}

@test "STATUS: ready while traffic flows; 51 when the master is down (bridged), 50 when it is missing (both modes)" {
	local br ref
	br=$(v11 "$(vconf 1 100)")
	ref=$(v11 "$(vconf 1 100 '')")
	vadd "$HA" 1 a1$T 100; assert_success
	vadd "$HB" 2 b1$T 100; assert_success
	ping_ok a1$T 10.200.120.21
	HOSTNS=$HA hcni STATUS vlan "$br" x
	assert_success
	HOSTNS=$HA hcni STATUS vlan "$ref" x
	assert_success
	ip -n "$HA" link set trunk down
	run ping_ok a1$T 10.200.120.21
	assert_failure
	HOSTNS=$HA hcni STATUS vlan "$br" x
	expect_error 51 'vlan: master trunk is down'
	ip -n "$HA" link set trunk up
	HOSTNS=$HA hcni STATUS vlan "$br" x
	assert_success
	ip -n "$HA" link del trunk
	HOSTNS=$HA hcni STATUS vlan "$br" x
	expect_error 50 'vlan: master trunk does not exist'
	HOSTNS=$HA hcni STATUS vlan "$ref" x
	expect_error 50 'vlan: master trunk does not exist'
}

@test "reference mode: DEL after the netns is gone succeeds, releases the address, and the VLAN ID is free again" {
	vadd "$HA" 1 a1$T 100 ''; assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" 10.200.120.11
	# while a1 holds VLAN 100 on trunk, a second container cannot have it
	vadd "$HA" 1 a2$T 100 ''
	expect_error 106 'master trunk already has a VLAN 100 sub-interface'
	ip netns del a1$T
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 '')" a1$T
	assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" ""
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 '')" a1$T
	assert_success
	run ip -n "$HA" -o link show type vlan
	assert_output ""
	# the sub-interface went with the netns: once the kernel has cleaned that up, the ID is free
	wait_for 30 vadd_ok "$HA" 1 a2$T 100 '' || fail "VLAN 100 still refused 30 s after a1's netns went: $output"
	ip -n a2$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 100'
	HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 '')" a2$T
	assert_success
	assert_equal "$(reserved "$DATA/h1/v100")" ""
}

# what is left of a1 on host A after its DEL (a1 was the only container there): sub-interfaces,
# bridge, veths, SNAT chains, reservations
vlan_residue() {
	ip -n "$HA" -o link show type vlan | awk -F'[:@]' '{print "vlan" $2}'
	ip -n "$HA" -o link show type bridge | awk -F': ' '{print "bridge " $2}'
	ip -n "$HA" -o link show type veth | awk -F'[:@]' '$2 != " trunk" {print "veth" $2}'
	ip netns exec "$HA" nft list table inet cni_c_masq 2>/dev/null | grep -o 'chain a-[0-9a-f-]*' | sed 's/^/snat /'
	reserved "$DATA/h1/v100" | sed 's/^/reservation /'
}

@test "tamper: bridged (sub-interface deleted, SNAT chain flushed, netns deleted) and reference mode (sub-interface deleted, netns deleted): DEL converges, ADD again works" {
	local m=',"bridge":"brvlan100","ipMasq":true' d ch
	for d in bridged:subif bridged:snat bridged:netns ref:subif ref:netns; do
		echo "# damage: $d" >&3
		local x=$m
		[[ $d == ref:* ]] && x=''
		vadd "$HA" 1 a1$T 100 "$x"; assert_success
		case $d in
		bridged:subif) ip -n "$HA" link del trunk.100 ;;
		bridged:snat)
			ch=$(ip netns exec "$HA" nft list table inet cni_c_masq | grep -o 'chain a-[0-9a-f-]*' | awk '{print $2; exit}')
			ip netns exec "$HA" nft flush chain inet cni_c_masq "$ch" ;;
		ref:subif) ip -n a1$T link del eth0 ;;
		*:netns) ip netns del a1$T ;;
		esac
		HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 "$x")" a1$T
		assert_success
		assert_equal "$(vlan_residue)" ""
		# ADD again (reference mode: once the kernel has freed the ID of a deleted netns' sub-interface)
		wait_for 30 vadd_ok "$HA" 1 a1$T 100 "$x" || fail "ADD again after $d: $output"
		HOSTNS=$HA hcni CHECK vlan "$(vconf 1 100 "$x" | jq -c --argjson p "$output" '.prevResult=$p')" a1$T
		assert_success
		HOSTNS=$HA hcni DEL vlan "$(vconf 1 100 "$x")" a1$T
		assert_success
		assert_equal "$(vlan_residue)" ""
	done
}
