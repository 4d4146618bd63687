#!/usr/bin/env bats
# bridge plugin against the real kernel: a "host" namespace per test runs the plugin, containers
# are namespaces, traffic is real pings. Nothing is created outside the test's namespaces.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	BR=br$T
	NET=n$T
	DATA=$BATS_TEST_TMPDIR/ipam
	mkns "$HOSTNS"
}

teardown() {
	net_teardown
}

V4='[[{"subnet":"10.200.40.0/24"}]]'
DUAL='[[{"subnet":"10.200.41.0/24"}],[{"subnet":"fd00:200:41::/64"}]]'

# brconf [extra members] [ranges] [cniVersion]
brconf() {
	printf '{"cniVersion":"%s","name":"%s","type":"bridge","bridge":"%s"%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":%s}}' \
		"${3:-1.0.0}" "$NET" "$BR" "${1:+,$1}" "$DATA" "${2:-$V4}"
}

# add_ctr NAME [extra] [ranges]: a container namespace attached with ADD; its result in $output.
add_ctr() {
	mkns "$1"
	hcni ADD bridge "$(brconf "${2:-}" "${3:-}")" "$1"
	assert_success
}

ctr_ip() { ip -n "$1" -4 -o addr show dev eth0 | awk '{print $4}' | cut -d/ -f1; }
ctr_ip6() { ip -n "$1" -6 -o addr show dev eth0 scope global | awk '{print $4}' | cut -d/ -f1; }

# need_vlan_filtering: the VLAN tests need bridge VLAN filtering, which this host's kernel lacks;
# the VM lane (tests/vm/run.sh BUILD bridge.bats:vlan) runs them on a kernel that has it.
need_vlan_filtering() {
	bridge_vlan_filtering || skip "no bridge VLAN filtering in this kernel: the VM lane runs this test (tests/vm/run.sh BUILD bridge.bats:vlan)"
}

# port_vlans VETH: the port's VLANs as "[[vid,pvid?,untagged?],...]"
port_vlans() {
	in_host bridge -j vlan show dev "$1" |
		jq -c '[.[0].vlans[] | [.vlan, (.flags // [] | index("PVID") != null), (.flags // [] | index("Egress Untagged") != null)]]'
}

# until_ok SECONDS CMD...: poll CMD until it succeeds; fails when the deadline passes first.
until_ok() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.1
	done
}

@test "two containers on one bridge: result shape, addresses, ping each other and the gateway" {
	add_ctr c1$T '"isGateway":true'
	assert_equal "$(jqo -r '.interfaces[0].name')" "$BR"
	assert_equal "$(jqo -r '.interfaces[2].name + " " + .interfaces[2].sandbox')" "eth0 /var/run/netns/c1$T"
	assert_equal "$(jqo -c '.ips')" '[{"interface":2,"address":"10.200.40.2/24","gateway":"10.200.40.1"}]'
	local hostveth
	hostveth=$(jqo -r '.interfaces[1].name')
	[[ $hostveth =~ ^veth[0-9a-f]{11}$ ]]
	assert_equal "$(in_host cat /sys/class/net/$hostveth/master/uevent | grep INTERFACE=)" "INTERFACE=$BR"
	assert_equal "$(jqo -r '.interfaces[2].mac')" "$(ip -n c1$T -o link show eth0 | grep -o 'link/ether [^ ]*' | cut -d' ' -f2)"
	add_ctr c2$T '"isGateway":true'
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.40.3/24"
	ping_ok c1$T 10.200.40.3
	ping_ok c2$T 10.200.40.2
	ping_ok c1$T 10.200.40.1
	in_host ip -4 -o addr show dev "$BR" | grep -q '10.200.40.1/24'
	assert_equal "$(in_host cat /proc/sys/net/ipv4/ip_forward)" 1
	# the reference's arp_notify: the kernel announces the address when the interface comes up
	assert_equal "$(ip netns exec c1$T cat /proc/sys/net/ipv4/conf/eth0/arp_notify)" 1
}

@test "three containers dual-stack: v4 and v6 pings, v6 gateway answers, no DAD wait" {
	in_host sysctl -qw net.ipv4.ip_forward=0 net.ipv6.conf.all.forwarding=0
	for i in 1 2 3; do add_ctr c$i$T '"isGateway":true' "$DUAL"; done
	assert_equal "$(jqo -c '[.ips[].address]')" '["10.200.41.4/24","fd00:200:41::4/64"]'
	ping_ok c1$T 10.200.41.3
	ping_ok c1$T 10.200.41.4
	ping_ok c3$T fd00:200:41::2
	ping_ok c2$T fd00:200:41::4
	ping_ok c2$T fd00:200:41::1
	# the global address is usable at once: not tentative
	run ip -n c1$T -6 addr show dev eth0 scope global
	refute_output --partial tentative
	# isGateway turned forwarding on for both families
	assert_equal "$(in_host cat /proc/sys/net/ipv4/ip_forward) $(in_host cat /proc/sys/net/ipv6/conf/all/forwarding)" "1 1"
	assert_equal "$(ip netns exec c2$T cat /proc/sys/net/ipv4/conf/eth0/arp_notify)" 1
}

@test "isDefaultGateway: default routes in the container via the gateway, for each family" {
	add_ctr c1$T '"isDefaultGateway":true' "$DUAL"
	assert_equal "$(jqo -c '[.routes[] | .dst + " " + .gw]')" '["0.0.0.0/0 10.200.41.1","::/0 fd00:200:41::1"]'
	ip -n c1$T route show default | grep -q 'via 10.200.41.1 dev eth0'
	ip -n c1$T -6 route show default | grep -q 'via fd00:200:41::1 dev eth0'
}

@test "isDefaultGateway when IPAM already returns a default route: no second one, as the reference" {
	local c
	# IPAM's IPv4 default route names the gateway: kept once; IPv6 has none from IPAM: added
	c=$(brconf '"isDefaultGateway":true' "$DUAL" | jq -c '.ipam.routes=[{"dst":"0.0.0.0/0","gw":"10.200.41.1"}]')
	mkns c1$T
	hcni ADD bridge "$c" c1$T
	assert_success
	assert_equal "$(jqo -c '[.routes[] | .dst + " " + .gw]')" '["0.0.0.0/0 10.200.41.1","::/0 fd00:200:41::1"]'
	assert_equal "$(ip -n c1$T -4 route show default)" "default via 10.200.41.1 dev eth0 "
	assert_equal "$(ip -n c1$T -6 route show default | grep -c '^default')" 1
	ip -n c1$T -6 route show default | grep -q 'via fd00:200:41::1 dev eth0'
	ping_ok c1$T 10.200.41.1
	# IPAM's default route via another router: that one stays the only one (another bridge)
	c=$(brconf '"isDefaultGateway":true' "$V4" | jq -c --arg b b2$T '.bridge=$b | .ipam.routes=[{"dst":"0.0.0.0/0","gw":"10.200.40.254"}]')
	mkns c2$T
	hcni ADD bridge "$c" c2$T
	assert_success
	assert_equal "$(jqo -c '[.routes[] | .dst + " " + .gw]')" '["0.0.0.0/0 10.200.40.254"]'
	assert_equal "$(ip -n c2$T -4 route show default)" "default via 10.200.40.254 dev eth0 "
	# the reference plugin, same configs: the same routes in its result and in the container
	require "$REF_DIR/bridge"
	local ours1 ours2
	ours1=$(ip -n c1$T route show; ip -n c1$T -6 route show default)
	ours2=$(ip -n c2$T route show)
	HOSTNS=r$T
	mkns r$T
	mkns d1$T
	mkns d2$T
	CNI_PATH_OVERRIDE=$REF_DIR hcni ADD "$REF_DIR/bridge" "$(brconf '"isDefaultGateway":true' "$DUAL" | jq -c --arg d "$BATS_TEST_TMPDIR/ref" '.ipam.dataDir=$d | .ipam.routes=[{"dst":"0.0.0.0/0","gw":"10.200.41.1"}]')" d1$T
	assert_success
	assert_equal "$(jqo -c '[.routes[] | .dst + " " + .gw]')" '["0.0.0.0/0 10.200.41.1","::/0 fd00:200:41::1"]'
	assert_equal "$(ip -n d1$T route show; ip -n d1$T -6 route show default)" "$ours1"
	CNI_PATH_OVERRIDE=$REF_DIR hcni ADD "$REF_DIR/bridge" "$(jq -c --arg d "$BATS_TEST_TMPDIR/ref" '.ipam.dataDir=$d' <<<"$c")" d2$T
	assert_success
	assert_equal "$(jqo -c '[.routes[] | .dst + " " + .gw]')" '["0.0.0.0/0 10.200.40.254"]'
	assert_equal "$(ip -n d2$T route show)" "$ours2"
}

@test "ipMasq: the outside sees the host's address; without it, the container's" {
	require tcpdump
	# host <-> outside link: host 10.200.42.1, outside 10.200.42.2
	mkns o$T
	ip link add oh$T netns "$HOSTNS" type veth peer name eth0 netns o$T
	in_host ip addr add 10.200.42.1/24 dev oh$T
	in_host ip link set oh$T up
	ip -n o$T addr add 10.200.42.2/24 dev eth0
	ip -n o$T link set eth0 up
	ip -n o$T route add 10.200.40.0/24 via 10.200.42.1 # only for the "without" half
	add_ctr c1$T '"isDefaultGateway":true,"ipMasq":true'
	ip netns exec o$T timeout 10 tcpdump -l -n -i eth0 -c 1 icmp >"$BATS_TEST_TMPDIR/dump" 2>"$BATS_TEST_TMPDIR/dump.err" &
	until_ok 5 grep -q 'listening on' "$BATS_TEST_TMPDIR/dump.err"
	ping_ok c1$T 10.200.42.2
	wait
	grep -q 'IP 10.200.42.1 > 10.200.42.2: ICMP echo request' "$BATS_TEST_TMPDIR/dump"
	in_host nft list table inet cni_c_masq | grep -q 'masquerade'
	add_ctr c2$T '"isDefaultGateway":true'
	ip netns exec o$T timeout 10 tcpdump -l -n -i eth0 -c 1 icmp >"$BATS_TEST_TMPDIR/dump2" 2>"$BATS_TEST_TMPDIR/dump2.err" &
	until_ok 5 grep -q 'listening on' "$BATS_TEST_TMPDIR/dump2.err"
	ping_ok c2$T 10.200.42.2
	wait
	grep -q 'IP 10.200.40.3 > 10.200.42.2: ICMP echo request' "$BATS_TEST_TMPDIR/dump2"
}

@test "ipMasq \"ipv4\" or \"ipv6\": SNAT for that family only, seen from outside; CHECK and DEL follow" {
	require tcpdump
	local f=$BATS_TEST_TMPDIR/src k fam prev
	# host <-> outside link in both families; the outside routes back to the containers' subnets,
	# so what is not masqueraded arrives with the container's own address
	mkns o$T
	ip link add oh$T netns "$HOSTNS" type veth peer name eth0 netns o$T
	in_host ip addr add 10.200.42.1/24 dev oh$T
	in_host ip addr add fd00:200:42::1/64 dev oh$T nodad
	in_host ip link set oh$T up
	ip -n o$T addr add 10.200.42.2/24 dev eth0
	ip -n o$T addr add fd00:200:42::2/64 dev eth0 nodad
	ip -n o$T link set eth0 up
	ip -n o$T route add 10.200.41.0/24 via 10.200.42.1
	ip -n o$T route add fd00:200:41::/64 via fd00:200:42::1
	in_host sysctl -qw net.ipv6.conf.all.forwarding=1
	# src CTR: the source addresses the outside sees of one v4 and one v6 echo request of CTR
	src() {
		capture o$T "$f" -c 1 icmp and 'icmp[icmptype] == icmp-echo'
		ping_ok "$1" 10.200.42.2
		wait
		capture o$T "$f.6" -c 1 icmp6 and 'ip6[40] == 128'
		until_ok 5 ping_ok "$1" fd00:200:42::2 # the first waits on neighbour discovery
		wait
		echo "$(awk '/ICMP echo request/ {print $3; exit}' "$f") $(awk '/ICMP6, echo request/ {print $3; exit}' "$f.6")"
	}
	add_ctr c1$T '"isDefaultGateway":true,"ipMasq":"ipv4"' "$DUAL"
	local r1=$output
	add_ctr c2$T '"isDefaultGateway":true,"ipMasq":"ipv6"' "$DUAL"
	local r2=$output
	assert_equal "$(src c1$T)" "10.200.42.1 fd00:200:41::2"
	assert_equal "$(src c2$T)" "10.200.41.3 fd00:200:42::1"
	# with true, as the reference: both
	add_ctr c3$T '"isDefaultGateway":true,"ipMasq":true' "$DUAL"
	assert_equal "$(src c3$T)" "10.200.42.1 fd00:200:42::1"
	assert_equal "$(in_host nft list map inet cni_c_masq masq4 | grep -o '10\.200\.41\.[0-9]*' | sort | xargs)" "10.200.41.2 10.200.41.4"
	assert_equal "$(in_host nft list map inet cni_c_masq masq6 | grep -o 'fd00:200:41::[0-9]*' | sort | xargs)" "fd00:200:41::3 fd00:200:41::4"
	local -a fams=(ipv4 ipv6) prevs=("$r1" "$r2")
	for k in 1 2; do
		fam=${fams[k - 1]} prev=${prevs[k - 1]}
		hcni CHECK bridge "$(brconf "\"isDefaultGateway\":true,\"ipMasq\":\"$fam\"" "$DUAL" | jq -c --argjson p "$prev" '.prevResult=$p')" c$k$T
		assert_success
		hcni DEL bridge "$(brconf "\"isDefaultGateway\":true,\"ipMasq\":\"$fam\"" "$DUAL")" c$k$T
		assert_success
	done
	assert_equal "$(in_host nft list map inet cni_c_masq masq4 | grep -o '10\.200\.41\.[0-9]*' | xargs)" "10.200.41.4"
	assert_equal "$(in_host nft list map inet cni_c_masq masq6 | grep -o 'fd00:200:41::[0-9]*' | xargs)" "fd00:200:41::4"
	mkns c4$T
	hcni ADD bridge "$(brconf '"ipMasq":"both"')" c4$T
	expect_error 7 '"ipMasq": "both" is not true, false, "ipv4" or "ipv6"'
	hcni ADD bridge "$(brconf '"ipMasq":1')" c4$T
	expect_error 6 '"ipMasq" must be true, false, "ipv4" or "ipv6"'
}

@test "hairpinMode, promiscMode and portIsolation set the port and bridge flags" {
	add_ctr c1$T '"hairpinMode":true'
	local v
	v=$(jqo -r '.interfaces[1].name')
	assert_equal "$(in_host cat /sys/class/net/$v/brport/hairpin_mode)" 1
	add_ctr c2$T '"portIsolation":true'
	v=$(jqo -r '.interfaces[1].name')
	assert_equal "$(in_host cat /sys/class/net/$v/brport/isolated)" 1
	add_ctr c3$T '"portIsolation":true,"promiscMode":true'
	in_host ip link show "$BR" | grep -q PROMISC
	# two isolated ports cannot talk; an isolated and a normal one can
	run ping_ok c2$T 10.200.40.4
	assert_failure
	ping_ok c1$T 10.200.40.4
	run bash -c "ip netns exec $HOSTNS env CNI_COMMAND=ADD CNI_CONTAINERID=x CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c1$T CNI_PATH=$PLUGIN_DIR $PLUGIN_DIR/bridge <<<'$(brconf '"hairpinMode":true,"promiscMode":true')'"
	expect_error 7 'hairpinMode.*promiscMode'
}

@test "MTU is applied to the bridge and both veth ends" {
	add_ctr c1$T '"mtu":1400'
	local v
	v=$(jqo -r '.interfaces[1].name')
	assert_equal "$(ip -n c1$T -o link show eth0 | grep -o 'mtu [0-9]*')" "mtu 1400"
	assert_equal "$(in_host cat /sys/class/net/$v/mtu)" 1400
	assert_equal "$(in_host cat /sys/class/net/$BR/mtu)" 1400
	mkns c2$T
	hcni ADD bridge "$(brconf '"mtu":67')" c2$T
	expect_error 7 '"mtu": 67 out of range 68..65535'
}

@test "mtuFromDefaultRoute: the bridge and both veth ends take the MTU of the default route's link (IPv4's, else IPv6's); mtu wins; no default route: the kernel's" {
	local x='"mtuFromDefaultRoute":true' v
	mtus() { # CTR: "bridge host-veth container-eth0" MTUs of CTR's attachment ($output: its ADD result)
		v=$(jqo -r '.interfaces[1].name')
		echo "$(in_host cat /sys/class/net/$BR/mtu) $(in_host cat /sys/class/net/$v/mtu) $(ip -n "$1" -o link show eth0 | grep -o 'mtu [0-9]*' | cut -d' ' -f2)"
	}
	in_host ip link add up$T mtu 1400 type veth peer name upp$T mtu 1400
	in_host ip link set up$T up
	in_host ip link set upp$T up
	in_host ip addr add 10.200.47.1/24 dev up$T
	in_host ip route add default via 10.200.47.2 dev up$T
	add_ctr c1$T "$x"
	assert_equal "$(mtus c1$T)" "1400 1400 1400"
	in_host ip link del "$BR"
	# without the option, as the reference: the kernel's default
	add_ctr c2$T
	assert_equal "$(mtus c2$T)" "1500 1500 1500"
	in_host ip link del "$BR"
	# an explicit mtu wins
	add_ctr c3$T "$x,\"mtu\":1450"
	assert_equal "$(mtus c3$T)" "1450 1450 1450"
	in_host ip link del "$BR"
	# IPv6's default route when IPv4 has none
	in_host ip route del default
	in_host ip link add up6$T mtu 1380 type veth peer name upp6$T
	in_host ip link set up6$T up
	in_host ip link set upp6$T up
	in_host ip -6 addr add fd00:200:47::1/64 dev up6$T nodad
	in_host ip -6 route add default via fd00:200:47::2 dev up6$T
	add_ctr c4$T "$x"
	assert_equal "$(mtus c4$T)" "1380 1380 1380"
	in_host ip link del "$BR"
	# no default route at all: the kernel's default, no error
	in_host ip -6 route del default
	add_ctr c5$T "$x"
	assert_equal "$(mtus c5$T)" "1500 1500 1500"
	mkns c6$T
	hcni ADD bridge "$(brconf '"mtuFromDefaultRoute":"yes"')" c6$T
	expect_error 6 '"mtuFromDefaultRoute" must be true or false'
}

@test "the container MAC comes from runtimeConfig.mac, args.cni.mac or CNI_ARGS MAC" {
	add_ctr c1$T '"runtimeConfig":{"mac":"02:00:00:20:00:01"}'
	assert_equal "$(jqo -r '.interfaces[2].mac')" "02:00:00:20:00:01"
	ip -n c1$T link show eth0 | grep -q 02:00:00:20:00:01
	add_ctr c2$T '"args":{"cni":{"mac":"02:00:00:20:00:02"}}'
	ip -n c2$T link show eth0 | grep -q 02:00:00:20:00:02
	mkns c3$T
	CNI_ARGS="IgnoreUnknown=1;MAC=02:00:00:20:00:03" hcni ADD bridge "$(brconf)" c3$T
	assert_success
	ip -n c3$T link show eth0 | grep -q 02:00:00:20:00:03
	mkns c4$T
	hcni ADD bridge "$(brconf '"runtimeConfig":{"mac":"01:00:00:00:00:01"}')" c4$T
	expect_error 7 'runtimeConfig.mac.*not a unicast MAC'
}

@test "CHECK passes after ADD and fails after each kind of tampering" {
	add_ctr c1$T '"isDefaultGateway":true,"ipMasq":true'
	local prev=$output conf
	conf=$(brconf '"isDefaultGateway":true,"ipMasq":true' | jq -c --argjson p "$prev" '.prevResult=$p')
	hcni CHECK bridge "$conf" c1$T
	assert_success
	# route removed
	ip -n c1$T route del default
	hcni CHECK bridge "$conf" c1$T
	expect_error 104 'route to 0.0.0.0/0 via 10.200.40.1 is missing'
	ip -n c1$T route add default via 10.200.40.1
	hcni CHECK bridge "$conf" c1$T
	assert_success
	# SNAT rule removed
	local chain
	chain=$(in_host nft -j list chains inet | jq -r '.nftables[].chain? | select(.table=="cni_c_masq" and (.name|startswith("a-"))) | .name')
	in_host nft delete element inet cni_c_masq masq4 '{ 10.200.40.2 }'
	hcni CHECK bridge "$conf" c1$T
	assert_failure
	assert_equal "$(jqo .code)" 104
	# address removed
	ip -n c1$T addr del 10.200.40.2/24 dev eth0
	hcni CHECK bridge "$(brconf '"isDefaultGateway":true' | jq -c --argjson p "$prev" '.prevResult=$p')" c1$T
	expect_error 104 'address 10.200.40.2/24 is missing from eth0'
	ip -n c1$T addr add 10.200.40.2/24 dev eth0
	ip -n c1$T route add default via 10.200.40.1
	# link down
	ip -n c1$T link set eth0 down
	hcni CHECK bridge "$(brconf '"isDefaultGateway":true' | jq -c --argjson p "$prev" '.prevResult=$p')" c1$T
	expect_error 104 'eth0 in the container is down'
	ip -n c1$T link set eth0 up
	# host end taken off the bridge
	in_host ip link set "$(jq -r '.interfaces[1].name' <<<"$prev")" nomaster
	hcni CHECK bridge "$(brconf '"isDefaultGateway":true' | jq -c --argjson p "$prev" '.prevResult=$p')" c1$T
	expect_error 104 'is not a port of bridge'
	[ -n "$chain" ]
}

@test "CHECK with promiscMode: passes after ADD, fails once the bridge's promiscuous mode is turned off; a packet capture is not the flag" {
	add_ctr c1$T '"promiscMode":true'
	local conf
	conf=$(brconf '"promiscMode":true' | jq -c --argjson p "$output" '.prevResult=$p')
	in_host ip link show "$BR" | grep -q PROMISC
	hcni CHECK bridge "$conf" c1$T
	assert_success
	in_host ip link set "$BR" promisc off
	run in_host ip link show "$BR"
	refute_output --partial PROMISC
	hcni CHECK bridge "$conf" c1$T
	expect_error 104 "bridge $BR promiscuous mode is off"
	in_host ip link set "$BR" promisc on
	hcni CHECK bridge "$conf" c1$T
	assert_success
	# without promiscMode: a packet capture on the bridge raises the kernel's promiscuity count, not
	# the flag the config sets; CHECK still passes (and fails once the flag itself is set)
	add_ctr c2$T
	conf=$(brconf | jq -c --argjson p "$output" '.prevResult=$p')
	in_host ip link set "$BR" promisc off
	capture "$HOSTNS" "$BATS_TEST_TMPDIR/cap" -i "$BR" -c 1000
	hcni CHECK bridge "$conf" c2$T
	assert_success
	kill "$CAPTURE_PID"; wait "$CAPTURE_PID" || true
	in_host ip link set "$BR" promisc on
	hcni CHECK bridge "$conf" c2$T
	expect_error 104 "bridge $BR promiscuous mode is on"
}

@test "CHECK without prevResult or for a missing container interface fails clearly" {
	add_ctr c1$T
	hcni CHECK bridge "$(brconf)" c1$T
	expect_error 7 'prevResult'
	hcni CHECK bridge "$(brconf | jq -c '.prevResult={"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/nope"}]}')" c1$T
	expect_error 104 'no interface eth0 in sandbox'
}

@test "DEL removes veth, reservation and SNAT; twice is fine" {
	add_ctr c1$T '"ipMasq":true'
	local v
	v=$(jqo -r '.interfaces[1].name')
	hcni DEL bridge "$(brconf '"ipMasq":true')" c1$T
	assert_success
	run in_host ip link show "$v"
	assert_failure
	run ip -n c1$T link show eth0
	assert_failure
	[ ! -e "$DATA/$NET/10.200.40.2" ]
	run in_host nft list table inet cni_c_masq
	refute_output --partial '10.200.40.2'
	hcni DEL bridge "$(brconf '"ipMasq":true')" c1$T
	assert_success
	# the bridge stays
	in_host ip link show "$BR" >/dev/null
}

@test "one container ID and ifname in two networks: the refused second ADD's DEL leaves the first network's attachment" {
	local ca cb
	ca=$(brconf '"isGateway":true') cb=$(NET=m$T BR=bb$T brconf '' '[[{"subnet":"10.200.42.0/24"}]]')
	add_ctr a$T '"isGateway":true'
	hcni ADD bridge "$cb" a$T
	expect_error 106 'interface "eth0" already exists'
	hcni DEL bridge "$cb" a$T
	assert_success
	# still attached to the first network: its eth0, its port, its traffic
	ip -n a$T link show eth0 >/dev/null
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" 1
	ip netns exec a$T ping -c1 -W2 10.200.40.1 >/dev/null
	# and the first network's own DEL removes it
	hcni DEL bridge "$ca" a$T
	assert_success
	run ip -n a$T link show eth0
	assert_failure
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" 0
}

@test "DEL after the runtime deleted the netns leaves no veth, SNAT rule or reservation" {
	add_ctr c1$T '"ipMasq":true' "$DUAL"
	local v
	v=$(jqo -r '.interfaces[1].name')
	ip netns del c1$T
	hcni DEL bridge "$(brconf '"ipMasq":true' "$DUAL")" c1$T
	assert_success
	run in_host ip link show "$v"
	assert_failure
	[ -z "$(ls "$DATA/$NET" | grep -e '^10\.' -e '^fd00')" ]
	run in_host nft list table inet cni_c_masq
	refute_output --partial 'a-'
	refute_output --partial '10.200.41.2'
	# and without CNI_NETNS at all
	hcni DEL bridge "$(brconf '"ipMasq":true' "$DUAL")" "" eth0 c1$T
	assert_success
}

@test "a failed ADD leaves nothing: IPAM error, exhausted range, taken ifname, non-bridge name" {
	# exhausted: a /30 has one address
	add_ctr c1$T "" '[[{"subnet":"10.200.43.0/30"}]]'
	mkns c2$T
	hcni ADD bridge "$(brconf "" '[[{"subnet":"10.200.43.0/30"}]]')" c2$T
	expect_error 102 "no IP addresses available"
	run ip -n c2$T link show eth0
	assert_failure
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" 1
	# IPAM plugin missing from CNI_PATH
	mkdir -p "$BATS_TEST_TMPDIR/emptypath"
	cp "$PLUGIN_DIR/bridge" "$BATS_TEST_TMPDIR/emptypath/"
	CNI_PATH_OVERRIDE=$BATS_TEST_TMPDIR/emptypath hcni ADD bridge "$(brconf)" c2$T
	expect_error 105 'failed to find plugin "host-local"'
	run ip -n c2$T link show eth0
	assert_failure
	# eth0 already in the container
	ip -n c2$T link add eth0 type veth peer name x0
	hcni ADD bridge "$(brconf)" c2$T
	expect_error 106 'interface "eth0" already exists'
	[ -z "$(grep -l c2$T "$DATA/$NET"/10.* 2>/dev/null)" ]
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" 1
	# a non-bridge link holds the bridge name
	in_host ip link add nb$T type veth peer name nbp$T
	mkns c3$T
	hcni ADD bridge "$(brconf | jq -c --arg b nb$T '.bridge=$b')" c3$T
	expect_error 106 "bridge \"nb$T\": a link of that name exists and is not a bridge"
	[ -z "$(grep -l c3$T "$DATA/$NET"/10.* 2>/dev/null)" ]
}

@test "an exec'd IPAM plugin reads the config from stdin and gets no descriptor of the plugin's beyond 0, 1 and 2" {
	# the valgrind lane's wrapper scripts hold descriptors of their own, which the child inherits
	skip_if_wrapped bridge
	# a stand-in for host-local: notes its descriptors and its stdin, then becomes host-local
	local dir=$BATS_TEST_TMPDIR/fakepath conf want got
	mkdir -p "$dir"
	printf '#!/bin/sh\nls /proc/$$/fd >"%s/fds.$FAKE_TAG"\ncat /proc/$$/fd/0 >"%s/stdin.$FAKE_TAG"\nexec "%s/host-local"\n' \
		"$BATS_TEST_TMPDIR" "$BATS_TEST_TMPDIR" "$PLUGIN_DIR" >"$dir/smfake"
	chmod +x "$dir/smfake"
	conf=$(brconf | jq -c '.ipam.type = "smfake"')
	mkns c1$T
	FAKE_TAG=plugin CNI_PATH_OVERRIDE=$dir hcni ADD bridge "$conf" c1$T
	assert_success
	[[ $(jqo '.ips[0].address') == 10.200.40.*/24 ]]
	assert_equal "$(cat "$BATS_TEST_TMPDIR/stdin.plugin")" "$conf"
	# the same script started straight from here has what any child of this test inherits (bats'
	# own descriptors among them); below 100: a sanitizer's or valgrind's sit above
	FAKE_TAG=direct run ip netns exec "$HOSTNS" env CNI_COMMAND=VERSION "$dir/smfake" <<<"$conf"
	assert_success
	want=$(awk '$1 < 100' "$BATS_TEST_TMPDIR/fds.direct" | sort -n | xargs)
	got=$(awk '$1 < 100' "$BATS_TEST_TMPDIR/fds.plugin" | sort -n | xargs)
	assert_equal "$got" "$want"
	FAKE_TAG=del CNI_PATH_OVERRIDE=$dir hcni DEL bridge "$conf" c1$T
	assert_success
	[[ -z $(find "$DATA" -name '10.200.40.*') ]]
}

@test "an ADD retried after a crash reclaims its own stale host veth" {
	mkns c1$T
	hcni ADD bridge "$(brconf)" c1$T
	assert_success
	local v
	v=$(jqo -r '.interfaces[1].name')
	# simulate a crash after the veth existed but before the container end got its name:
	ip -n c1$T link del eth0
	in_host ip link add "$v" type veth peer name stale$T
	hcni ADD bridge "$(brconf)" c1$T
	assert_success
	ping_ok c1$T 10.200.40.2 # own address works
}

@test "an ADD repeated for a live attachment adopts its veth pair, repairs the host side and returns the same result" {
	local x='"isGateway":true,"ipMasq":true' first v conf
	add_ctr c1$T "$x"
	first=$output
	v=$(jqo -r '.interfaces[1].name')
	# the host side damaged: the port off the bridge and down, the SNAT table and the gateway address gone
	in_host ip link set "$v" nomaster down
	in_host nft delete table inet cni_c_masq
	in_host ip addr flush dev "$BR"
	conf=$(brconf "$x" | jq -c --argjson p "$first" '.prevResult=$p')
	hcni CHECK bridge "$conf" c1$T
	assert_failure
	hcni ADD bridge "$(brconf "$x")" c1$T
	assert_success
	assert_equal "$(jq -cS . <<<"$output")" "$(jq -cS . <<<"$first")"
	[[ $(in_host ip -o link show master "$BR") == *"$v@"*"state UP"* ]]
	in_host ip -o addr show dev "$BR" | grep -q ' 10.200.40.1/24 '
	in_host nft list map inet cni_c_masq masq4 | grep -q '10.200.40.2 : goto a-'
	ping_ok c1$T 10.200.40.1
	hcni CHECK bridge "$conf" c1$T
	assert_success
	assert_equal "$(grep -l c1$T "$DATA/$NET"/10.* | wc -l)" 1
	# an eth0 that is not the attachment's (its peer is not our host end) is refused as before, and
	# the refused ADD leaves the attachment there whole: its reservation, its veth, its SNAT
	mkns c2$T
	ip -n c2$T link add eth0 type veth peer name x0
	hcni ADD bridge "$(brconf "$x")" c2$T
	expect_error 106 'interface "eth0" already exists'
	hcni ADD bridge "$(brconf "$x")" c2$T eth0 c1$T
	expect_error 106 'interface "eth0" already exists'
	hcni CHECK bridge "$conf" c1$T
	assert_success
	hcni DEL bridge "$(brconf "$x")" c1$T
	assert_success
	[[ -z $(in_host ip -o link show master "$BR") ]]
	[[ -z $(ls "$DATA/$NET" | grep '^10\.') ]]
}

@test "50 containers (10 under valgrind) attached and detached in parallel: the bridge and nft table end clean" {
	local conf i n
	n=$(rounds bridge 50 10)
	conf=$(brconf '"ipMasq":true')
	for i in $(seq 1 "$n"); do ip netns add p$i$T && NS_LIST+=(p$i$T); done
	for i in $(seq 1 "$n"); do
		ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=p$i CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/p$i$T \
			CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"$conf" >"$BATS_TEST_TMPDIR/add$i" 2>&1 &
	done
	wait
	for i in $(seq 1 "$n"); do jq -e '.ips[0].address' "$BATS_TEST_TMPDIR/add$i" >/dev/null || { cat "$BATS_TEST_TMPDIR/add$i"; false; }; done
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/add* | jq -r '.ips[0].address' | sort -u | wc -l)" "$n"
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" "$n"
	ping_ok p1$T 10.200.40.$((n + 1))
	for i in $(seq 1 "$n"); do
		ip netns exec "$HOSTNS" env CNI_COMMAND=DEL CNI_CONTAINERID=p$i CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/p$i$T \
			CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"$conf" >"$BATS_TEST_TMPDIR/del$i" 2>&1 &
	done
	wait
	for i in $(seq 1 "$n"); do [ ! -s "$BATS_TEST_TMPDIR/del$i" ] || { cat "$BATS_TEST_TMPDIR/del$i"; false; }; done
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" 0
	assert_equal "$(in_host nft -j list chains inet | jq '[.nftables[].chain? | select(.table=="cni_c_masq" and (.name|startswith("a-")))] | length')" 0
	assert_equal "$(in_host nft -j list map inet cni_c_masq masq4 | jq '[.nftables[].map?.elem // empty | .[]] | length')" 0
	[ -z "$(ls "$DATA/$NET" | grep '^10\.')" ]
}

@test "failing ADDs that made the bridge never delete it under a concurrent good ADD (60 rounds, 10 under valgrind, 3 failing ADDs each)" {
	local round i b fails=0 out="$BATS_TEST_TMPDIR/round" n
	n=$(rounds bridge 60 10)
	mkns c$T
	for round in $(seq 1 "$n"); do
		b=b$T$round
		b=${b:0:15}
		local conf
		conf=$(brconf | jq -c --arg b "$b" '.bridge=$b')
		# three ADDs for a netns that does not exist (they fail after creating the bridge) and a good
		# one, started together on a bridge that does not exist yet
		for i in 1 2 3; do
			ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=f$i CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/gone$T \
				CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"$conf" >/dev/null 2>&1 &
		done
		ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=good CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c$T \
			CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"$conf" >"$out" 2>&1 || { fails=$((fails + 1)); cat "$out" >&2; }
		wait
		ip netns exec "$HOSTNS" env CNI_COMMAND=DEL CNI_CONTAINERID=good CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c$T \
			CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"$conf" >/dev/null || fail "DEL failed in round $round"
		ip -n "$HOSTNS" link del "$b" 2>/dev/null || true
	done
	[[ $fails == 0 ]] || fail "$fails of $n good ADDs failed beside failing ones"
}

@test "GC removes SNAT rules and reservations of attachments not valid" {
	add_ctr c1$T '"ipMasq":true'
	add_ctr c2$T '"ipMasq":true'
	hcni GC bridge "$(brconf '"ipMasq":true' "" 1.1.0 | jq -c --arg c c1$T '."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]')" c1$T
	assert_success
	[ -e "$DATA/$NET/10.200.40.2" ] && [ ! -e "$DATA/$NET/10.200.40.3" ]
	run in_host nft list map inet cni_c_masq masq4
	assert_output --partial 10.200.40.2
	refute_output --partial 10.200.40.3
}

@test "STATUS: ready, then 50 when the range is exhausted" {
	hcni STATUS bridge "$(brconf "" '[[{"subnet":"10.200.44.0/30"}]]' 1.1.0)" x
	assert_success
	add_ctr c1$T "" '[[{"subnet":"10.200.44.0/30"}]]'
	hcni STATUS bridge "$(brconf "" '[[{"subnet":"10.200.44.0/30"}]]' 1.1.0)" x
	expect_error 50 'no IP addresses available'
}

@test "forceAddress: a different bridge address is refused, or replaced when forced" {
	in_host ip link add "$BR" type bridge
	in_host ip addr add 10.200.99.1/24 dev "$BR"
	mkns c1$T
	hcni ADD bridge "$(brconf '"isGateway":true')" c1$T
	expect_error 106 "already has an IP address 10.200.99.1/24 different from 10.200.40.1/24"
	[ -z "$(ls "$DATA/$NET" | grep '^10\.')" ]
	hcni ADD bridge "$(brconf '"isGateway":true,"forceAddress":true')" c1$T
	assert_success
	run in_host ip -4 -o addr show dev "$BR"
	assert_output --partial 10.200.40.1/24
	refute_output --partial 10.200.99.1
}

@test "an existing bridge is adopted and brought up" {
	in_host ip link add "$BR" type bridge
	add_ctr c1$T
	in_host ip link show "$BR" | grep -q 'state UP\|,UP'
}

@test "a kernel without bridge VLAN filtering: VLAN options fail with code 2 and leave nothing" {
	# the host lane's half; with VLAN filtering (the VM lane) the tests named "vlan..." below run
	bridge_vlan_filtering && skip "this kernel has bridge VLAN filtering: the VLAN tests below cover it"
	mkns c1$T
	hcni ADD bridge "$(brconf '"vlan":100')" c1$T
	expect_error 2 '"vlan": 100.*needs VLAN filtering, which this kernel lacks'
	run ip -n c1$T link show eth0
	assert_failure
	hcni ADD bridge "$(brconf '"vlanTrunk":[{"id":10}]')" c1$T
	expect_error 2 '"vlanTrunk".*needs VLAN filtering'
	run ip -n c1$T link show eth0
	assert_failure
	[ -z "$(ls "$DATA/$NET" 2>/dev/null | grep '^10\.')" ]
	run in_host ip -o link show
	refute_output --partial veth
}

@test "vlan: the port's PVID is the VLAN, default VLAN removed; same VLAN pings, the same endpoint moved to another VLAN is cut off" {
	need_vlan_filtering
	add_ctr c1$T '"vlan":100'
	local v
	v=$(jqo -r '.interfaces[1].name')
	assert_equal "$(in_host cat /sys/class/net/$BR/bridge/vlan_filtering)" 1
	assert_equal "$(port_vlans "$v")" '[[100,true,true]]'
	add_ctr c2$T '"vlan":100'
	ping_ok c1$T 10.200.40.3
	# one endpoint (fixed MAC and address), first in VLAN 100: c1 reaches it
	local ep='"args":{"cni":{"mac":"02:00:00:20:01:10","ips":["10.200.40.10"]}}'
	add_ctr c3$T "\"vlan\":100,$ep"
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.40.10/24
	ping_ok c1$T 10.200.40.10
	# the same endpoint re-attached in VLAN 200: a VLAN 200 neighbour reaches it, c1 no longer
	hcni DEL bridge "$(brconf "\"vlan\":100,$ep")" c3$T
	assert_success
	hcni ADD bridge "$(brconf "\"vlan\":200,$ep")" c3$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address + " " + .interfaces[2].mac')" "10.200.40.10/24 02:00:00:20:01:10"
	add_ctr c4$T '"vlan":200'
	ping_ok c4$T 10.200.40.10
	ip -n c1$T neigh flush all
	run ping_ok c1$T 10.200.40.10
	assert_failure
	run ping_ok c2$T 10.200.40.10
	assert_failure
	# and VLAN 100 itself still works
	ping_ok c1$T 10.200.40.3
}

@test "vlanTrunk: tagged VLANs on the port, native VLAN 1" {
	need_vlan_filtering
	add_ctr c1$T '"vlanTrunk":[{"id":10},{"minID":20,"maxID":22}]'
	local v
	v=$(jqo -r '.interfaces[1].name')
	assert_equal "$(in_host bridge -j vlan show dev "$v" | jq -c '[.[0].vlans[].vlan]')" '[1,10,20,21,22]'
	assert_equal "$(port_vlans "$v")" '[[1,true,true],[10,false,false],[20,false,false],[21,false,false],[22,false,false]]'
}

@test "vlan with vlanTrunk: untagged frames in the PVID VLAN, tagged trunk VLANs pass, a VLAN outside the trunk does not" {
	need_vlan_filtering
	add_ctr t$T '"vlan":100,"vlanTrunk":[{"id":200},{"minID":210,"maxID":211}]'
	local v
	v=$(jqo -r '.interfaces[1].name')
	# no VLAN 1: `vlan` is the native VLAN
	assert_equal "$(port_vlans "$v")" '[[100,true,true],[200,false,false],[210,false,false],[211,false,false]]'
	add_ctr a$T '"vlan":100'
	ping_ok t$T 10.200.40.3 # untagged: VLAN 100
	# access containers in VLAN 200 and VLAN 300, each on its own subnet
	local vid sub
	for vid in 200 300; do
		sub=$((vid == 200 ? 48 : 49))
		mkns b$vid$T
		hcni ADD bridge "$(brconf "\"vlan\":$vid" "[[{\"subnet\":\"10.200.$sub.0/24\"}]]" | jq -c --arg d "$DATA-$vid" '.ipam.dataDir=$d')" b$vid$T
		assert_success
		# the trunk container tags its own frames with that VLAN
		ip -n t$T link add link eth0 name eth0.$vid type vlan id $vid
		ip -n t$T addr add 10.200.$sub.100/24 dev eth0.$vid
		ip -n t$T link set eth0.$vid up
	done
	ping_ok t$T 10.200.48.2 # tagged 200: on the trunk
	# VLAN 300 works for its own members, but the trunk port does not carry it
	mkns c300$T
	hcni ADD bridge "$(brconf '"vlan":300' '[[{"subnet":"10.200.49.0/24"}]]' | jq -c --arg d "$DATA-300" '.ipam.dataDir=$d')" c300$T
	assert_success
	ping_ok c300$T 10.200.49.2
	run ping_ok t$T 10.200.49.2
	assert_failure
}

@test "vlan with preserveDefaultVlan: the port stays in VLAN 1 and hears its broadcasts; without it, not" {
	need_vlan_filtering
	add_ctr p$T '"vlan":100,"preserveDefaultVlan":true'
	local vp vq
	vp=$(jqo -r '.interfaces[1].name')
	add_ctr q$T '"vlan":100'
	vq=$(jqo -r '.interfaces[1].name')
	# p: VLAN 1 kept (egress untagged, no longer PVID), PVID 100; q: VLAN 100 only
	assert_equal "$(port_vlans "$vp")" '[[1,false,true],[100,true,true]]'
	assert_equal "$(port_vlans "$vq")" '[[100,true,true]]'
	ping_ok p$T 10.200.40.3
	# n: a port without VLAN options, in the default VLAN 1 of the filtering bridge
	add_ctr n$T
	assert_equal "$(port_vlans "$(jqo -r '.interfaces[1].name')")" '[[1,true,true]]'
	# n's ARP requests (VLAN 1 broadcasts) for p reach p, which learns n from them (p's replies
	# go out in VLAN 100, so n's ping itself fails)
	run ping_ok n$T 10.200.40.2
	assert_failure
	until_ok 5 bash -c "ip -n p$T neigh show 10.200.40.4 | grep -q lladdr"
	# the same requests for q never reach q
	run ping_ok n$T 10.200.40.3
	assert_failure
	assert_equal "$(ip -n q$T neigh show 10.200.40.4)" ""
}

@test "vlan with isGateway: the gateway is on <bridge>.<vlan> in that VLAN; its containers ping it, another VLAN cannot" {
	need_vlan_filtering
	mkns c1$T
	hcni ADD bridge "$(brconf '"vlan":7,"isGateway":true')" c1$T
	assert_success
	assert_equal "$(jqo -r '[.interfaces[].name] | .[0] + " " + .[3]')" "$BR $BR.7"
	assert_equal "$(jqo -r '.ips[0].gateway')" 10.200.40.1
	in_host ip -4 -o addr show dev "$BR.7" | grep -q '10.200.40.1/24'
	run in_host ip -4 -o addr show dev "$BR"
	refute_output --partial 10.200.40.1
	# the gateway veth's bridge end is an access port of VLAN 7
	local peer
	peer=$(in_host ip -o link show master "$BR" | awk -F': ' '{print $2}' | cut -d@ -f1 | grep '^vgw')
	assert_equal "$(port_vlans "$peer")" '[[7,true,true]]'
	ping_ok c1$T 10.200.40.1
	# a second container of the VLAN shares that gateway
	add_ctr c2$T '"vlan":7,"isGateway":true'
	ping_ok c2$T 10.200.40.1
	assert_equal "$(in_host ip -o link show master "$BR" | grep -c vgw)" 1
	# a container of VLAN 8 on the same bridge and subnet does not reach it
	add_ctr c3$T '"vlan":8'
	run ping_ok c3$T 10.200.40.1
	assert_failure
	assert_equal "$(in_host cat /proc/sys/net/ipv4/ip_forward)" 1
}

@test "disableContainerInterface without IPAM leaves the container end down; with IPAM it is refused" {
	mkns c1$T
	hcni ADD bridge "$(printf '{"cniVersion":"1.0.0","name":"%s","type":"bridge","bridge":"%s","disableContainerInterface":true}' "$NET" "$BR")" c1$T
	assert_success
	assert_equal "$(jqo -c '.ips // []')" '[]'
	run ip -n c1$T link show eth0
	refute_output --partial ',UP'
	mkns c2$T
	hcni ADD bridge "$(printf '{"cniVersion":"1.0.0","name":"%s","type":"bridge","bridge":"%s"}' "$NET" "$BR")" c2$T
	assert_success
	ip -n c2$T link show eth0 | grep -q ',UP'
	hcni ADD bridge "$(brconf '"disableContainerInterface":true')" c2$T
	expect_error 7 'disableContainerInterface'
}

@test "uplink: a host interface without addresses joins the bridge; one with addresses needs uplinkForce" {
	in_host ip link add up$T type veth peer name upp$T
	add_ctr c1$T "\"uplink\":\"up$T\""
	assert_equal "$(in_host cat /sys/class/net/up$T/master/uevent | grep INTERFACE=)" "INTERFACE=$BR"
	in_host ip link add up2$T type veth peer name up2p$T
	in_host ip addr add 10.200.45.1/24 dev up2$T
	mkns c2$T
	hcni ADD bridge "$(brconf "\"uplink\":\"up2$T\"" | jq -c --arg b b2$T '.bridge=$b')" c2$T
	expect_error 7 "up2$T carries the host address 10.200.45.1/24"
	hcni ADD bridge "$(brconf "\"uplink\":\"up2$T\",\"uplinkForce\":true" | jq -c --arg b b2$T '.bridge=$b | .name="other"')" c2$T
	assert_success
	assert_equal "$(in_host cat /sys/class/net/up2$T/master/uevent | grep INTERFACE=)" "INTERFACE=b2$T"
}

@test "removeUnusedBridge: the last DEL removes the bridge, an earlier one does not; without it the bridge stays; an uplink stays a host interface" {
	local x='"isGateway":true,"removeUnusedBridge":true'
	add_ctr c1$T "$x"
	add_ctr c2$T "$x"
	hcni DEL bridge "$(brconf "$x")" c1$T
	assert_success
	in_host ip link show "$BR" >/dev/null || fail "the bridge went while c2 still uses it"
	ping_ok c2$T 10.200.40.1
	hcni DEL bridge "$(brconf "$x")" c2$T
	assert_success
	run in_host ip link show "$BR"
	assert_failure
	# a DEL again, with nothing left, converges
	hcni DEL bridge "$(brconf "$x")" c2$T
	assert_success
	# without the option, as the reference: the bridge stays
	add_ctr c3$T '"isGateway":true'
	hcni DEL bridge "$(brconf '"isGateway":true')" c3$T
	assert_success
	in_host ip link show "$BR" >/dev/null
	in_host ip link del "$BR"
	# with an uplink: the bridge goes with the last container; the uplink is left, released
	in_host ip link add up$T type veth peer name upp$T
	add_ctr c4$T "$x,\"uplink\":\"up$T\""
	hcni DEL bridge "$(brconf "$x,\"uplink\":\"up$T\"")" c4$T
	assert_success
	run in_host ip link show "$BR"
	assert_failure
	run in_host ip -o link show up$T
	assert_success
	refute_output --partial master
	# the last container's netns gone without a DEL (its veth with it): GC removes the bridge
	add_ctr c5$T "$x"
	hcni GC bridge "$(brconf "$x" "" 1.1.0 | jq -c '."cni.dev/valid-attachments"=[]')" c5$T
	assert_success
	in_host ip link show "$BR" >/dev/null || fail "GC removed a bridge with a port"
	ip netns del c5$T
	until_ok 5 bash -c "[ -z \"\$(ip netns exec $HOSTNS ip -o link show master $BR)\" ]"
	hcni GC bridge "$(brconf "$x" "" 1.1.0 | jq -c '."cni.dev/valid-attachments"=[]')" c5$T
	assert_success
	run in_host ip link show "$BR"
	assert_failure
}

@test "removeUnusedBridge under load: 10 containers attached and detached 12 times each, all at once: every ADD and DEL succeeds, the bridge ends gone" {
	local x='"isGateway":true,"removeUnusedBridge":true' i n k
	n=$(rounds bridge 10 4)
	k=$(rounds bridge 12 2)
	for i in $(seq 1 "$n"); do ip netns add q$i$T && NS_LIST+=(q$i$T); done
	for i in $(seq 1 "$n"); do
		(
			for r in $(seq 1 "$k"); do
				for verb in ADD DEL; do
					out=$(ip netns exec "$HOSTNS" env CNI_COMMAND=$verb CNI_CONTAINERID=q$i CNI_IFNAME=eth0 \
						CNI_NETNS=/var/run/netns/q$i$T CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"$(brconf "$x")" 2>&1) ||
						echo "round $r: $verb failed: $out" >>"$BATS_TEST_TMPDIR/fail$i"
				done
			done
		) &
	done
	wait
	cat "$BATS_TEST_TMPDIR"/fail* 2>/dev/null | head -5
	[ -z "$(cat "$BATS_TEST_TMPDIR"/fail* 2>/dev/null)" ]
	run in_host ip link show "$BR"
	assert_failure
	assert_equal "$(in_host ip -o link show type veth | wc -l)" 0
}

@test "enabledad: a duplicate IPv6 address on the bridge fails DAD and the ADD; without enabledad the same duplicate goes unnoticed" {
	local V6='[[{"subnet":"fd00:200:46::/64"}]]' other=$BATS_TEST_TMPDIR/ipam2
	# the holder: DAD on and no duplicate yet: ADD succeeds, the address passed DAD
	add_ctr d$T '"enabledad":true' "$V6"
	assert_equal "$(jqo -r '.ips[0].address')" fd00:200:46::2/64
	run ip -n d$T -6 addr show dev eth0 scope global
	assert_output --partial fd00:200:46::2/64
	refute_output --regexp 'tentative|dadfailed'
	# a second IPAM store hands the same address to c1 (requested), on the same bridge (L2 segment)
	local plain dad
	plain=$(brconf '' "$V6" | jq -c --arg d "$other" '.ipam.dataDir=$d | .args.cni.ips=["fd00:200:46::2"]')
	dad=$(brconf '"enabledad":true' "$V6" | jq -c --arg d "$other" '.ipam.dataDir=$d | .args.cni.ips=["fd00:200:46::2"]')
	mkns c1$T
	# without enabledad: added nodad, no DAD runs, nothing notices the duplicate
	hcni ADD bridge "$plain" c1$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" fd00:200:46::2/64
	run ip -n c1$T -6 addr show dev eth0 scope global
	assert_output --partial fd00:200:46::2/64
	refute_output --regexp 'tentative|dadfailed'
	hcni DEL bridge "$plain" c1$T
	assert_success
	# with enabledad: DAD meets the holder's address, it ends dadfailed, the ADD fails and is undone
	hcni ADD bridge "$dad" c1$T
	expect_error 106 'address fd00:200:46::2/64 on eth0 failed duplicate address detection'
	run ip -n c1$T link show eth0
	assert_failure
	[ -z "$(ls "$other/$NET" | grep '^fd00')" ]
	assert_equal "$(in_host ip -o link show master "$BR" | wc -l)" 1
	# the holder keeps its address, usable
	run ip -n d$T -6 addr show dev eth0 scope global
	assert_output --partial fd00:200:46::2/64
	refute_output --regexp 'tentative|dadfailed'
}

@test "macspoofchk: the container's own MAC passes, a forged source MAC is dropped; without macspoofchk the forged MAC passes" {
	add_ctr c1$T '"macspoofchk":true'
	local real
	real=$(jqo -r '.interfaces[2].mac')
	add_ctr c2$T '"macspoofchk":true'
	add_ctr c3$T
	ping_ok c1$T 10.200.40.3
	# c3 has no spoof check: with a forged source MAC its traffic still flows (the setup drops nothing)
	ip -n c3$T link set eth0 address 02:00:00:66:66:67
	ip -n c3$T neigh flush all
	ip -n c2$T neigh flush all
	ping_ok c3$T 10.200.40.3
	# c1, checked: the same forged-MAC traffic is dropped
	ip -n c1$T link set eth0 address 02:00:00:66:66:66
	ip -n c1$T neigh flush all
	ip -n c2$T neigh flush all
	run ping_ok c1$T 10.200.40.3
	assert_failure
	# its own MAC back: passes again
	ip -n c1$T link set eth0 address "$real"
	ip -n c1$T neigh flush all
	ip -n c2$T neigh flush all
	ping_ok c1$T 10.200.40.3
	hcni DEL bridge "$(brconf '"macspoofchk":true')" c1$T
	assert_success
	run in_host nft list table bridge cni_c_spoof
	refute_output --partial "s-"$(printf '%s' "c1$T-eth0" | sha512sum | cut -c1-16)
}

@test "results in every version's shape: 0.3.1 and 0.4.0 with per-IP version, 0.2.0 ip4" {
	add_ctr c1$T "" "$V4"
	mkns c2$T
	hcni ADD bridge "$(brconf "" "" 0.4.0)" c2$T
	assert_success
	assert_equal "$(jqo -c '[.ips[0].version, .ips[0].interface]')" '["4",2]'
	mkns c3$T
	hcni ADD bridge "$(brconf "" "" 0.3.1)" c3$T
	assert_success
	assert_equal "$(jqo -r .cniVersion)" "0.3.1"
	mkns c4$T
	hcni ADD bridge "$(brconf "" "" 0.2.0)" c4$T
	assert_success
	assert_equal "$(jqo -r .ip4.ip)" "10.200.40.5/24"
}

@test "cniVersion 0.3.0: the result in 0.3.0's shape, as the reference's: interfaces, ips with per-IP version and interface index" {
	require "$REF_DIR/bridge"
	mkns c1$T
	hcni ADD bridge "$(brconf '"isGateway":true' "$DUAL" 0.3.0)" c1$T
	assert_success
	local ours=$output
	# 0.3.0 (libcni's types 0.3.x; the 0.3.0 text's "ip" key was a typo fixed by 0.3.1): cniVersion,
	# interfaces (name, mac, sandbox), ips (version, address, gateway, interface), routes, dns
	assert_equal "$(jqo -r .cniVersion)" 0.3.0
	jqo -e '(keys - ["cniVersion","interfaces","ips","routes","dns"]) == [] and has("interfaces") and has("ips")' >/dev/null
	assert_equal "$(jqo -c '[.ips[] | {version, address, gateway, interface}]')" \
		'[{"version":"4","address":"10.200.41.2/24","gateway":"10.200.41.1","interface":2},{"version":"6","address":"fd00:200:41::2/64","gateway":"fd00:200:41::1","interface":2}]'
	jqo -e '[.ips[] | keys == ["address","gateway","interface","version"] and (.interface | type) == "number"] | all' >/dev/null
	assert_equal "$(jqo -c '[.interfaces[] | keys]')" '[["mac","name"],["mac","name"],["mac","name","sandbox"]]'
	assert_equal "$(jqo -r '.interfaces[2].name + " " + .interfaces[2].sandbox')" "eth0 /var/run/netns/c1$T"
	# the reference's layout for the same config
	HOSTNS=r$T
	mkns r$T
	mkns d1$T
	CNI_PATH_OVERRIDE=$REF_DIR hcni ADD "$REF_DIR/bridge" "$(brconf '"isGateway":true' "$DUAL" 0.3.0 | jq -c --arg d "$BATS_TEST_TMPDIR/ref" '.ipam.dataDir=$d')" d1$T
	assert_success
	local shape='[.cniVersion, (keys - ["dns"]), [.interfaces[] | keys], [.ips[] | [keys, .version, .address, .gateway, .interface]]]'
	assert_equal "$(jq -c "$shape" <<<"$ours")" "$(jqo -c "$shape")"
}

@test "bad configs are refused before anything is created" {
	mkns c1$T
	local -a cases=(
		'7|"bridge": "a/b" is not a valid interface name|"bridge":"a/b"'
		'7|"bridge".*not a valid interface name|"bridge":"abcdefghijklmnopq"'
		'6|"isGateway" must be true or false|"isGateway":"yes"'
		'7|ipMasqBackend|"ipMasqBackend":"pf"'
		'7|"vlan": -1 out of range|"vlan":-1'
		'6|"mtu" must be an integer|"mtu":"1500"'
		'7|"vlan": 4095 out of range 0..4094|"vlan":4095'
		'7|vlanTrunk\[0\].*minID and maxID|"vlanTrunk":[{"minID":30}]'
		'7|minID 30 is greater than maxID 20|"vlanTrunk":[{"minID":30,"maxID":20}]'
	)
	local c code re extra
	for c in "${cases[@]}"; do
		code=${c%%|*}; c=${c#*|}; re=${c%%|*}; extra=${c#*|}
		hcni ADD bridge "$(brconf "$extra" | jq -c '.')" c1$T
		expect_error "$code" "$re"
	done
	run in_host ip -o link show
	refute_output --partial veth
	[ ! -e "$DATA/$NET" ] || [ -z "$(ls "$DATA/$NET" | grep '^10\.')" ]
}

@test "same conflist with the reference bridge plugin: same addresses, routes and result layout" {
	require "$REF_DIR/bridge"
	local conf='"isGateway":true,"isDefaultGateway":true,"ipMasq":false'
	add_ctr c1$T "$conf" "$DUAL"
	local ours=$output
	# the reference, in its own host namespace, with its own host-local
	HOSTNS=r$T; mkns r$T; mkns d1$T
	CNI_PATH_OVERRIDE=$REF_DIR hcni ADD "$REF_DIR/bridge" "$(brconf "$conf" "$DUAL" | jq -c --arg d "$BATS_TEST_TMPDIR/ref" '.ipam.dataDir=$d')" d1$T
	assert_success
	local ref=$output
	assert_equal "$(jq -c '[.ips[] | [.address, .gateway, .interface]]' <<<"$ours")" "$(jq -c '[.ips[] | [.address, .gateway, .interface]]' <<<"$ref")"
	assert_equal "$(jq -c '.routes' <<<"$ours")" "$(jq -c '.routes' <<<"$ref")"
	assert_equal "$(jq -c '[.interfaces[] | [.name | sub("veth.*";"veth"), has("sandbox")]]' <<<"$ours")" \
		"$(jq -c '[.interfaces[] | [.name | sub("veth.*";"veth"), has("sandbox")]]' <<<"$ref")"
	assert_equal "$(ip -n c1$T route show | sort)" "$(ip -n d1$T route show | sort)"
	assert_equal "$(ip -n c1$T -4 -o addr show dev eth0 | awk '{print $4}')" "$(ip -n d1$T -4 -o addr show dev eth0 | awk '{print $4}')"
	# and our DEL cleans a container the reference created (host veth named at random)
	HOSTNS=r$T
	hcni DEL bridge "$(brconf "$conf" "$DUAL" | jq -c --arg d "$BATS_TEST_TMPDIR/ref" '.ipam.dataDir=$d')" d1$T
	assert_success
	run ip -n d1$T link show eth0
	assert_failure
	[ -z "$(ls "$BATS_TEST_TMPDIR/ref/$NET" | grep -e '^10\.' -e '^fd00')" ]
}

@test "ipMasqBackend iptables: the reference's chain name and rules, removed by DEL without the netns" {
	add_ctr c1$T '"ipMasq":true,"ipMasqBackend":"iptables"'
	local chain
	chain=CNI-$(printf '%s' "${NET}c1$T" | sha512sum | cut -c1-24)
	run in_host iptables -w -t nat -S "$chain"
	assert_success
	assert_output --partial "-A $chain -d 10.200.40.0/24 -m comment --comment \"name: \\\"$NET\\\" id: \\\"c1$T\\\"\" -j ACCEPT"
	assert_output --partial "! -d 224.0.0.0/4"
	in_host iptables -w -t nat -S POSTROUTING | grep -q -- "-s 10.200.40.2/32 .*-j $chain"
	ip netns del c1$T
	hcni DEL bridge "$(brconf '"ipMasq":true,"ipMasqBackend":"iptables"')" c1$T eth0 c1$T
	assert_success
	run in_host iptables -w -t nat -S "$chain"
	assert_failure
	run in_host iptables -w -t nat -S POSTROUTING
	refute_output --partial "$chain"
}

@test "iptables SNAT made by the reference plugin is removed by our DEL, and ours by the reference's" {
	require "$REF_DIR/bridge"
	mkns d1$T
	CNI_PATH_OVERRIDE=$REF_DIR hcni ADD "$REF_DIR/bridge" "$(brconf '"ipMasq":true')" d1$T
	assert_success
	local chain
	chain=CNI-$(printf '%s' "${NET}d1$T" | sha512sum | cut -c1-24)
	in_host iptables -w -t nat -S "$chain" >/dev/null
	hcni DEL bridge "$(brconf '"ipMasq":true')" d1$T
	assert_success
	run in_host iptables -w -t nat -S "$chain"
	assert_failure
	# ours with the iptables backend, deleted by the reference
	add_ctr c2$T '"ipMasq":true,"ipMasqBackend":"iptables"'
	chain=CNI-$(printf '%s' "${NET}c2$T" | sha512sum | cut -c1-24)
	in_host iptables -w -t nat -S "$chain" >/dev/null
	CNI_PATH_OVERRIDE=$REF_DIR hcni DEL "$REF_DIR/bridge" "$(brconf '"ipMasq":true')" c2$T
	assert_success
	run in_host iptables -w -t nat -S "$chain"
	assert_failure
}

@test "SNAT stays per attachment: DEL of one container keeps another's, a re-ADD replaces stale elements" {
	add_ctr c1$T '"ipMasq":true' "$DUAL"
	add_ctr c2$T '"ipMasq":true' "$DUAL"
	hcni DEL bridge "$(brconf '"ipMasq":true' "$DUAL")" c1$T
	assert_success
	run in_host nft list table inet cni_c_masq
	refute_output --partial '10.200.41.2 :'
	assert_output --partial '10.200.41.3 :'
	assert_output --partial 'fd00:200:41::3 :'
	# a stale element for an address now handed to another container is replaced
	in_host nft add chain inet cni_c_masq a-stale
	in_host nft add element inet cni_c_masq masq4 '{ 10.200.41.4 : goto a-stale }'
	add_ctr c3$T '"ipMasq":true' "$DUAL"
	run in_host nft list map inet cni_c_masq masq4
	refute_output --partial 'a-stale'
}

@test "IPAM runs in-process only when CNI_PATH's host-local is ours from this build, with identical behaviour" {
	require strace
	skip_if_wrapped bridge
	mkns c1$T
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=c1 CNI_IFNAME=eth0 \
		CNI_NETNS=/var/run/netns/c1$T CNI_PATH="$PLUGIN_DIR" strace -f -e trace=execve -o "$BATS_TEST_TMPDIR/st1" \
		"$PLUGIN_DIR/bridge" <<<"$(brconf)"
	assert_success
	run grep -c 'execve(' "$BATS_TEST_TMPDIR/st1"
	assert_output 1 # only the bridge itself
	# another build's host-local (same code, different marker): exec'd as the spec says
	mkdir -p "$BATS_TEST_TMPDIR/other"
	cp "$PLUGIN_DIR/bridge" "$BATS_TEST_TMPDIR/other/"
	sed 's/CNIC-PLUGIN=host-local /CNIC-PLUGIN=host-locaX /' "$PLUGIN_DIR/host-local" >"$BATS_TEST_TMPDIR/other/host-local"
	chmod +x "$BATS_TEST_TMPDIR/other/host-local"
	mkns c2$T
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=c2 CNI_IFNAME=eth0 \
		CNI_NETNS=/var/run/netns/c2$T CNI_PATH="$BATS_TEST_TMPDIR/other" strace -f -e trace=execve -o "$BATS_TEST_TMPDIR/st2" \
		"$BATS_TEST_TMPDIR/other/bridge" <<<"$(brconf)"
	assert_success
	grep -q 'execve(".*other/host-local"' "$BATS_TEST_TMPDIR/st2"
	# the same CNI_ARGS error both ways (host-local knows IP, not MAC)
	mkns c3$T
	CNI_ARGS="MAC=02:00:00:00:00:09" hcni ADD bridge "$(brconf)" c3$T
	local inproc=$output
	CNI_ARGS="MAC=02:00:00:00:00:09" CNI_PATH_OVERRIDE=$BATS_TEST_TMPDIR/other hcni ADD "$BATS_TEST_TMPDIR/other/bridge" "$(brconf)" c3$T
	assert_equal "$(jq -c '{code,msg}' <<<"$inproc")" "$(jqo -c '{code,msg}')"
	expect_error 6 'host-local: CNI_ARGS: unknown argument "MAC=02:00:00:00:00:09"'
}

@test "in-process IPAM: one process and one thread for ADD and DEL; the reservation appears whole (written unnamed, then linked)" {
	require strace
	skip_if_wrapped bridge
	mkns c1$T
	local v
	for v in ADD DEL; do
		ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 run ip netns exec "$HOSTNS" env CNI_COMMAND=$v CNI_CONTAINERID=c1 \
			CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c1$T CNI_PATH="$PLUGIN_DIR" \
			strace -f -e trace=clone,clone3,execve,openat,linkat,unlinkat -o "$BATS_TEST_TMPDIR/st$v" "$PLUGIN_DIR/bridge" <<<"$(brconf)"
		assert_success
		# no child, no thread, no exec beyond the plugin's own
		! grep -qE 'clone3?\(' "$BATS_TEST_TMPDIR/st$v" || { cat "$BATS_TEST_TMPDIR/st$v"; false; }
		assert_equal "$(grep -c 'execve(' "$BATS_TEST_TMPDIR/st$v")" 1
	done
	grep -qE 'openat\([0-9]+, "\.", .*O_TMPFILE' "$BATS_TEST_TMPDIR/stADD"
	grep -qE 'linkat\(.*"10\.200\.40\.[0-9]+"' "$BATS_TEST_TMPDIR/stADD"
	! grep -qE 'openat\(.*"10\.200\.40\.[0-9]+", .*O_CREAT' "$BATS_TEST_TMPDIR/stADD"
	grep -qE 'unlinkat\(.*"10\.200\.40\.[0-9]+"' "$BATS_TEST_TMPDIR/stDEL"
	[[ -z $(find "$DATA" -name '10.200.40.*') ]]
}

@test "a bridge made by someone else, without a MAC of its own: the result reports its MAC after the port joined (it takes its lowest port's), and CHECK passes" {
	in_host ip link add "$BR" type bridge
	in_host ip link set "$BR" up
	add_ctr c1$T '"isGateway":true'
	local res=$output mac
	mac=$(in_host cat /sys/class/net/$BR/address)
	assert_equal "$(jq -r '.interfaces[0].mac' <<<"$res")" "$mac"
	hcni CHECK bridge "$(brconf '"isGateway":true' | jq -c --argjson p "$res" '.prevResult=$p')" c1$T
	assert_success
}
