#!/usr/bin/env bats
# tap plugin against the real kernel: a "host" namespace per test runs the plugin, the container is
# a namespace, the VM behind the TAP device is tests/tools/tap-tool (it attaches to the device as a
# VMM does and answers ARP and ping). Nothing is created outside the test's namespaces.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=tph$T
	C=tpc$T
	NET=tpn$T
	DATA=$BATS_TEST_TMPDIR/ipam
	TOOL=$PLUGIN_DIR/test-tools/tap-tool
	TOOL_PIDS=()
	mkns "$HOSTNS"
	mkns "$C"
}

teardown() {
	local p
	for p in "${TOOL_PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
	net_teardown
}

V4='[[{"subnet":"10.200.90.0/24"}]]'
DUAL='[[{"subnet":"10.200.90.0/24"}],[{"subnet":"fd00:200:90::/64"}]]'

# tapconf [extra members] [ranges]: a tap config; with ranges, host-local IPAM in the test's dataDir
tapconf() {
	local ipam=
	[[ -n ${2:-} ]] && ipam=$(printf ',"ipam":{"type":"host-local","dataDir":"%s","ranges":%s}' "$DATA" "$2")
	printf '{"cniVersion":"1.1.0","name":"%s","type":"tap"%s%s}' "$NET" "${1:+,$1}" "$ipam"
}

# with_prev CONF RESULT: CONF with RESULT as prevResult
with_prev() { jq -c --argjson p "$2" '.prevResult=$p' <<<"$1"; }

# sysf IF FILE [NS]: /sys/class/net/IF/FILE as seen in the container's netns
sysf() { ip netns exec "${3:-$C}" cat "/sys/class/net/$1/$2"; }

# links [NS]: the container's link names, sorted, one line
links() { ip -n "${1:-$C}" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' '; }

# reservations: the addresses host-local holds for the network
reservations() { ls "$DATA/$NET" 2>/dev/null | grep -E '^(10\.|fd00)' | tr '\n' ' ' || true; }

# tool_start NS ARGS...: tap-tool in NS in the background (output in $BATS_TEST_TMPDIR/tool), once
# it has attached to the device ("ready")
tool_start() {
	local ns=$1 i
	shift
	require "$TOOL"
	: >"$BATS_TEST_TMPDIR/tool"
	ip netns exec "$ns" "$TOOL" "$@" >"$BATS_TEST_TMPDIR/tool" 2>&1 &
	TOOL_PID=$!
	TOOL_PIDS+=("$TOOL_PID")
	for ((i = 0; i < 200; i++)); do
		grep -q '^ready' "$BATS_TEST_TMPDIR/tool" && return 0
		kill -0 "$TOOL_PID" 2>/dev/null || break
		sleep 0.05
	done
	fail "tap-tool did not attach: $(cat "$BATS_TEST_TMPDIR/tool")"
}

@test "ADD without IPAM: result shape, a persistent TAP device (tun_flags), up, no owner; VERSION" {
	hcni ADD tap "$(tapconf)" "$C"
	assert_success
	assert_equal "$(jqo -c '.interfaces | length')" 1
	assert_equal "$(jqo -r '.interfaces[0].name + " " + .interfaces[0].sandbox')" "eth0 /var/run/netns/$C"
	assert_equal "$(jqo -r '.interfaces[0].mac')" "$(sysf eth0 address)"
	assert_equal "$(jqo -c '.ips // [] | length')" 0
	assert_equal "$(jqo -r .cniVersion)" 1.1.0
	# IFF_TAP | IFF_NO_PI | IFF_PERSIST, as the reference's `ip tuntap add mode tap`
	assert_equal "$(sysf eth0 tun_flags)" 0x1802
	assert_equal "$(sysf eth0 owner) $(sysf eth0 group)" "-1 -1"
	ip -n "$C" -d link show eth0 | grep -q 'tun type tap'
	ip -n "$C" link show eth0 | grep -q ',UP'
	# the only new link is the device: its temporary name is gone
	assert_equal "$(links)" "eth0 lo "
	run env CNI_COMMAND=VERSION "$PLUGIN_DIR/tap" <<<'{"cniVersion":"1.1.0"}'
	assert_success
	assert_equal "$(jqo -c '.supportedVersions | index("1.1.0") != null and index("0.3.1") != null')" true
}

@test "owner, group, multiQueue, mtu and mac reach the device (tun_flags, sysfs); owner alone" {
	hcni ADD tap "$(tapconf '"owner":1000,"group":1001,"multiQueue":true,"mtu":1400,"mac":"02:00:00:00:90:01"')" "$C"
	assert_success
	assert_equal "$(jqo -r '.interfaces[0].mac')" 02:00:00:00:90:01
	# with owner and group, the reference's netlink path: IFF_TAP | IFF_VNET_HDR | IFF_MULTI_QUEUE | IFF_NO_PI | IFF_PERSIST
	assert_equal "$(sysf eth0 tun_flags)" 0x5902
	assert_equal "$(sysf eth0 owner) $(sysf eth0 group)" "1000 1001"
	assert_equal "$(sysf eth0 mtu) $(sysf eth0 address)" "1400 02:00:00:00:90:01"
	ip -n "$C" -d link show eth0 | grep -q 'multi_queue'
	# owner alone (its `ip tuntap` path): no group, IFF_NO_PI, single queue
	hcni ADD tap "$(tapconf '"owner":0')" "$C" eth1
	assert_success
	assert_equal "$(sysf eth1 tun_flags)" 0x1802
	assert_equal "$(sysf eth1 owner) $(sysf eth1 group)" "0 -1"
	assert_equal "$(sysf eth1 mtu)" 1500
}

@test "the MAC: \"mac\", then CNI_ARGS MAC, then args.cni.mac, then runtimeConfig.mac; a multicast one is refused" {
	hcni ADD tap "$(tapconf '"mac":"02:00:00:00:90:01"')" "$C" e1
	assert_success
	assert_equal "$(sysf e1 address)" 02:00:00:00:90:01
	CNI_ARGS="IgnoreUnknown=1;MAC=02:00:00:00:90:02" hcni ADD tap "$(tapconf '"mac":"02:00:00:00:90:01"')" "$C" e2
	assert_success
	assert_equal "$(sysf e2 address) $(jqo -r '.interfaces[0].mac')" "02:00:00:00:90:02 02:00:00:00:90:02"
	CNI_ARGS="MAC=02:00:00:00:90:02" hcni ADD tap "$(tapconf '"mac":"02:00:00:00:90:01","args":{"cni":{"mac":"02:00:00:00:90:03"}}')" "$C" e3
	assert_success
	assert_equal "$(sysf e3 address)" 02:00:00:00:90:03
	CNI_ARGS="MAC=02:00:00:00:90:02" hcni ADD tap "$(tapconf '"mac":"02:00:00:00:90:01","args":{"cni":{"mac":"02:00:00:00:90:03"}},"runtimeConfig":{"mac":"02:00:00:00:90:04"}')" "$C" e4
	assert_success
	assert_equal "$(sysf e4 address)" 02:00:00:00:90:04
	hcni ADD tap "$(tapconf '"runtimeConfig":{"mac":"03:00:00:00:90:04"}')" "$C" e5
	expect_error 7 'field "runtimeConfig.mac": "03:00:00:00:90:04" is not a unicast MAC'
	CNI_ARGS="MAC=nope" hcni ADD tap "$(tapconf)" "$C" e5
	expect_error 6 'CNI_ARGS: MAC="nope" is not a unicast MAC'
	CNI_ARGS="FOO=1" hcni ADD tap "$(tapconf)" "$C" e5
	assert_failure
	assert_equal "$(links)" "e1 e2 e3 e4 lo "
}

@test "IPAM dual-stack: addresses on the device, routes via the gateway, ips on interface 0, arp_notify" {
	local c
	c=$(tapconf "" "$DUAL" | jq -c '.ipam.routes=[{"dst":"10.201.0.0/16"},{"dst":"fd00:200:91::/64"}]')
	hcni ADD tap "$c" "$C"
	assert_success
	assert_equal "$(jqo -c '[.ips[] | [.interface, .address, .gateway]]')" \
		'[[0,"10.200.90.2/24","10.200.90.1"],[0,"fd00:200:90::2/64","fd00:200:90::1"]]'
	assert_equal "$(jqo -c '[.routes[].dst]')" '["10.201.0.0/16","fd00:200:91::/64"]'
	ip -n "$C" -4 -o addr show dev eth0 | grep -q '10.200.90.2/24'
	ip -n "$C" -6 -o addr show dev eth0 | grep -q 'fd00:200:90::2/64'
	ip -n "$C" route show 10.201.0.0/16 | grep -q 'via 10.200.90.1 dev eth0'
	ip -n "$C" -6 route show fd00:200:91::/64 | grep -q 'via fd00:200:90::1 dev eth0'
	assert_equal "$(ip netns exec "$C" cat /proc/sys/net/ipv4/conf/eth0/arp_notify)" 1
	assert_equal "$(reservations)" "10.200.90.2 fd00:200:90::2 "
	# the config's dns is the result's (as the reference)
	hcni ADD tap "$(tapconf '"dns":{"nameservers":["10.200.90.53"]}' "$V4")" "$C" eth1
	assert_success
	assert_equal "$(jqo -c .dns)" '{"nameservers":["10.200.90.53"]}'
}

@test "traffic: a VM behind the device answers ARP and ping from the container's netns; none once it detaches" {
	hcni ADD tap "$(tapconf "" "$V4")" "$C"
	assert_success
	tool_start "$C" respond eth0 02:00:00:00:90:50 10.200.90.50 20 2
	ip netns exec "$C" ping -n -c 2 -i 0.2 -W 2 10.200.90.50
	wait "$TOOL_PID"
	grep -q 'arp=[1-9].* echo=2' "$BATS_TEST_TMPDIR/tool"
	# the VM gone, the device stays (persistent) and nothing answers
	ip -n "$C" -d link show eth0 | grep -q 'persist on'
	ip -n "$C" neigh flush dev eth0
	run ip netns exec "$C" ping -n -c 1 -W 1 10.200.90.50
	assert_failure
}

@test "bridge (in the container's netns): the device is a port; ping across it from another namespace, multi-queue" {
	ip -n "$C" link add tpbr type bridge
	ip -n "$C" link set tpbr up
	# a peer namespace joined to the same bridge by a veth
	mkns tpp$T
	ip -n "$C" link add tpv0 type veth peer name tpv1 netns tpp$T
	ip -n "$C" link set tpv0 master tpbr up
	ip -n tpp$T addr add 10.200.90.10/24 dev tpv1
	ip -n tpp$T link set tpv1 up
	hcni ADD tap "$(tapconf '"bridge":"tpbr","multiQueue":true')" "$C"
	assert_success
	assert_equal "$(ip -n "$C" -o link show master tpbr | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')" "eth0 tpv0 "
	tool_start "$C" -m respond eth0 02:00:00:00:90:50 10.200.90.50 20 2
	ip netns exec tpp$T ping -n -c 2 -i 0.2 -W 2 10.200.90.50
	wait "$TOOL_PID"
	grep -q 'echo=2' "$BATS_TEST_TMPDIR/tool"
	# a frame the VM writes is seen on the peer's side of the bridge
	capture tpp$T "$BATS_TEST_TMPDIR/cap" -c 1 -i tpv1 ether src 02:00:00:00:90:51
	ip netns exec "$C" "$TOOL" -m send eth0 02:00:00:00:90:51 88b5
	wait "$CAPTURE_PID"
	grep -q '02:00:00:00:90:51' "$BATS_TEST_TMPDIR/cap"
	# DEL takes the port away, the bridge stays
	hcni DEL tap "$(tapconf '"bridge":"tpbr","multiQueue":true')" "$C"
	assert_success
	assert_equal "$(ip -n "$C" -o link show master tpbr | wc -l)" 1
}

@test "bridge: missing from the container's netns (present on the host only), or not a bridge: code 7, nothing left" {
	ip -n "$C" link add tpbr type bridge
	hcni ADD tap "$(tapconf '"bridge":"tpbr"' "$V4")" "$C"
	assert_success
	hcni DEL tap "$(tapconf '"bridge":"tpbr"' "$V4")" "$C"
	assert_success
	ip -n "$C" link del tpbr
	in_host ip link add tpbr type bridge
	hcni ADD tap "$(tapconf '"bridge":"tpbr"' "$V4")" "$C"
	expect_error 7 'field "bridge": no bridge tpbr in CNI_NETNS'
	ip -n "$C" link add tpbr type veth peer name tpbrp
	hcni ADD tap "$(tapconf '"bridge":"tpbr"' "$V4")" "$C"
	expect_error 7 'field "bridge": tpbr in CNI_NETNS .* is not a bridge \(kind "veth"\)'
	assert_equal "$(links)" "lo tpbr tpbrp "
	assert_equal "$(reservations)" ""
	hcni ADD tap "$(tapconf '"bridge":"eth0"')" "$C"
	expect_error 7 'field "bridge" names CNI_IFNAME'
}

@test "CHECK passes after ADD; prevResult required and matched; fails (104) on each kind of damage" {
	local conf res
	conf=$(tapconf '"mtu":1400,"bridge":"tpbr"' "$DUAL")
	ip -n "$C" link add tpbr type bridge
	hcni ADD tap "$conf" "$C"
	assert_success
	res=$output
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
	assert_success
	hcni CHECK tap "$conf" "$C"
	expect_error 7 'CHECK needs "prevResult"'
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C" eth1
	expect_error 104 'prevResult has no interface eth1'
	# the config disagrees with the device
	hcni CHECK tap "$(with_prev "$(tapconf '"mtu":1400,"bridge":"tpbr","multiQueue":true' "$DUAL")" "$res")" "$C"
	expect_error 104 'single-queue, the config says multiQueue true'
	hcni CHECK tap "$(with_prev "$(tapconf '"mtu":1400,"bridge":"tpbr","owner":5' "$DUAL")" "$res")" "$C"
	expect_error 104 'has owner -1, the config says 5'
	hcni CHECK tap "$(with_prev "$(tapconf '"mtu":1400,"bridge":"tpbr","group":5' "$DUAL")" "$res")" "$C"
	expect_error 104 'has group -1, the config says 5'
	# damage, each undone before the next
	local damage
	while IFS='|' read -r damage undo msg; do
		ip -n "$C" $damage
		hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
		expect_error 104 "$msg"
		ip -n "$C" $undo
		hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
		assert_success
	done <<-EOF
		link set eth0 address 02:00:00:00:90:99|link set eth0 address $(jq -r '.interfaces[0].mac' <<<"$res")|has MAC 02:00:00:00:90:99, prevResult says
		link set eth0 mtu 1300|link set eth0 mtu 1400|has MTU 1300, the config says 1400
		link set eth0 down|link set eth0 up|interface eth0 is down
		link set eth0 nomaster|link set eth0 master tpbr|is not a port of bridge tpbr
		addr del 10.200.90.2/24 dev eth0|addr add 10.200.90.2/24 dev eth0|address 10.200.90.2/24 is missing
		addr del fd00:200:90::2/64 dev eth0|addr add fd00:200:90::2/64 dev eth0 nodad|address fd00:200:90::2/64 is missing
	EOF
	# a route (of IPAM's) removed
	local c2 r2
	c2=$(tapconf "" "$V4" | jq -c '.ipam.routes=[{"dst":"10.201.0.0/16"}]')
	hcni ADD tap "$c2" "$C" eth1
	assert_success
	r2=$output
	hcni CHECK tap "$(with_prev "$c2" "$r2")" "$C" eth1
	assert_success
	ip -n "$C" route del 10.201.0.0/16
	hcni CHECK tap "$(with_prev "$c2" "$r2")" "$C" eth1
	expect_error 104 'route to 10.201.0.0/16 via 10.200.90.1 is missing'
	# the device replaced by a non-TAP link of the same name
	ip -n "$C" link del eth0
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
	expect_error 104 'interface eth0 is missing'
	ip -n "$C" link add eth0 type bridge
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
	expect_error 104 'interface eth0 is not a TAP device \(kind "bridge"\)'
	# the netns gone
	ip netns del "$C"
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
	expect_error 104 "CNI_NETNS /var/run/netns/$C does not exist"
}

@test "CHECK: a device that is no longer persistent, or single-queue where multiQueue was asked" {
	local conf res
	conf=$(tapconf '"multiQueue":true')
	hcni ADD tap "$conf" "$C"
	assert_success
	res=$output
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
	assert_success
	hcni CHECK tap "$(with_prev "$(tapconf)" "$res")" "$C"
	expect_error 104 'is multi-queue, the config says multiQueue false'
	# persistence off (what `ip tuntap` cannot do to a live device: through TUNSETPERSIST 0, kept
	# alive by an attached VM)
	run ip netns exec "$C" python3 -c '
import fcntl, os, struct, time, sys
fd = os.open("/dev/net/tun", os.O_RDWR)
fcntl.ioctl(fd, 0x400454ca, struct.pack("16sH", b"eth0", 0x0002 | 0x1000 | 0x0100))
fcntl.ioctl(fd, 0x400454cb, 0)
print("ok"); sys.stdout.flush(); time.sleep(30)' &
	local pid=$!
	TOOL_PIDS+=("$pid")
	local i
	for ((i = 0; i < 100; i++)); do
		ip -n "$C" -d link show eth0 | grep -q 'persist off' && break
		sleep 0.05
	done
	hcni CHECK tap "$(with_prev "$conf" "$res")" "$C"
	expect_error 104 'TAP device eth0 is not persistent'
}

@test "DEL: twice is fine; with the netns gone or no CNI_NETNS it still releases IPAM; a non-TAP link of the name stays" {
	local conf
	conf=$(tapconf "" "$V4")
	hcni ADD tap "$conf" "$C"
	assert_success
	assert_equal "$(reservations)" "10.200.90.2 "
	hcni DEL tap "$conf" "$C"
	assert_success
	assert_equal "$(links)" "lo "
	assert_equal "$(reservations)" ""
	hcni DEL tap "$conf" "$C"
	assert_success
	# the netns deleted under the attachment
	hcni ADD tap "$conf" "$C"
	assert_success
	[[ $(reservations) =~ ^10\.200\.90\.[0-9]+\ $ ]]
	ip netns del "$C"
	hcni DEL tap "$conf" "$C"
	assert_success
	assert_equal "$(reservations)" ""
	# no CNI_NETNS at all
	mkns "$C"
	hcni ADD tap "$conf" "$C"
	assert_success
	hcni DEL tap "$conf" "" eth0 "$C"
	assert_success
	assert_equal "$(reservations)" ""
	# someone else's link of that name: not a tun device, left alone
	ip -n "$C" link del eth0
	ip -n "$C" link add eth0 type bridge
	hcni DEL tap "$conf" "$C"
	assert_success
	assert_equal "$(links)" "eth0 lo "
}

@test "a failed ADD leaves nothing: taken name, IPAM failing before and after the device, missing netns" {
	local conf
	conf=$(tapconf "" "$V4")
	# the name taken: 106, the other link untouched, no reservation
	ip -n "$C" link add eth0 type bridge
	hcni ADD tap "$conf" "$C"
	expect_error 106 'interface "eth0" already exists in CNI_NETNS'
	assert_equal "$(links)" "eth0 lo "
	assert_equal "$(reservations)" ""
	# a repeated ADD of a live attachment: refused, its reservation stays
	hcni ADD tap "$conf" "$C" eth1
	assert_success
	hcni ADD tap "$conf" "$C" eth1
	expect_error 106 'interface "eth1" already exists'
	assert_equal "$(reservations)" "10.200.90.2 "
	assert_equal "$(links)" "eth0 eth1 lo "
	hcni DEL tap "$conf" "$C" eth1
	assert_success
	# IPAM missing from CNI_PATH
	hcni ADD tap "$(tapconf "" "$V4" | jq -c '.ipam.type="tpnone"')" "$C" eth2
	assert_failure
	assert_equal "$(links)" "eth0 lo "
	# IPAM's address refused by the kernel after the device exists (IPv6 below MTU 1280)
	hcni ADD tap "$(tapconf '"mtu":1000' "$DUAL")" "$C" eth2
	expect_error 7 'IPv6 needs an MTU of at least 1280'
	assert_equal "$(links)" "eth0 lo "
	assert_equal "$(reservations)" ""
	# the range exhausted
	hcni ADD tap "$(tapconf "" '[[{"subnet":"10.200.90.0/30"}]]')" "$C" eth2
	assert_success
	hcni ADD tap "$(tapconf "" '[[{"subnet":"10.200.90.0/30"}]]')" "$C" eth3
	expect_error 102 'no IP addresses available'
	assert_equal "$(links)" "eth0 eth2 lo "
	# the netns missing
	hcni ADD tap "$conf" "/var/run/netns/tpgone$T" eth0 c1
	expect_error 4 'CNI_NETNS /var/run/netns/tpgone.* does not exist'
}

@test "bad config: code 6 for a wrong JSON type, 7 for a bad value, the field named, exit 1, nothing made" {
	hcni ADD tap "$(tapconf '"mtu":1500,"owner":1,"group":2,"multiQueue":false')" "$C"
	assert_success
	hcni DEL tap "$(tapconf)" "$C"
	assert_success
	local bad
	while IFS='|' read -r code extra msg; do
		hcni ADD tap "$(tapconf "$extra" "$V4")" "$C"
		expect_error "$code" "$msg"
	done <<-'EOF'
		6|"mtu":"1500"|field "mtu"
		7|"mtu":70000|field "mtu": 70000 out of range
		7|"mtu":10|field "mtu": 10 out of range 68
		6|"mtu":1.5|field "mtu" must be an integer
		6|"owner":"root"|field "owner"
		7|"owner":-1|field "owner": -1 out of range
		7|"group":4294967295|field "group": 4294967295 out of range
		6|"multiQueue":"yes"|field "multiQueue"
		7|"mac":"02:00:00:00:90"|field "mac": "02:00:00:00:90" is not a unicast MAC
		6|"mac":12|field "mac"
		6|"bridge":1|field "bridge"
		7|"bridge":"a/b"|field "bridge": "a/b" is not a valid interface name
		7|"bridge":"0123456789abcdef"|field "bridge"
		6|"selinuxContext":true|field "selinuxContext"
		6|"dns":[]|field "dns"
	EOF
	assert_equal "$(links)" "lo "
	assert_equal "$(reservations)" ""
}

@test "selinuxContext: applied through the exec label; on a node without SELinux a clear code 7, nothing made" {
	hcni ADD tap "$(tapconf "" "$V4")" "$C"
	assert_success
	hcni DEL tap "$(tapconf "" "$V4")" "$C"
	assert_success
	if [[ -e /sys/fs/selinux/enforce ]]; then
		hcni ADD tap "$(tapconf '"selinuxContext":"system_u:system_r:container_t:s0"' "$V4")" "$C"
		assert_success
		assert_equal "$(sysf eth0 tun_flags)" 0x1802
		return
	fi
	hcni ADD tap "$(tapconf '"selinuxContext":"system_u:system_r:container_t:s0"' "$V4")" "$C"
	expect_error 7 'field "selinuxContext": "system_u:system_r:container_t:s0": cannot set the SELinux exec label'
	# the key as Go matches it, any case
	hcni ADD tap "$(tapconf '"selinuxcontext":"system_u:system_r:container_t:s0","owner":1,"group":1' "$V4")" "$C"
	expect_error 7 'field "selinuxContext"'
	assert_equal "$(links)" "lo "
	assert_equal "$(reservations)" ""
}

@test "GC and STATUS pass IPAM's through; without IPAM they succeed" {
	local conf
	conf=$(tapconf "" "$V4")
	hcni ADD tap "$conf" "$C" eth0 c1
	assert_success
	hcni ADD tap "$conf" "$C" eth1 c2
	assert_success
	assert_equal "$(reservations)" "10.200.90.2 10.200.90.3 "
	hcni GC tap "$(jq -c '."cni.dev/valid-attachments"=[{"containerID":"c1","ifname":"eth0"}]' <<<"$conf")" "" "" ""
	assert_success
	assert_equal "$(reservations)" "10.200.90.2 "
	hcni GC tap "$(tapconf)" "" "" ""
	assert_success
	hcni STATUS tap "$conf" "" "" ""
	assert_success
	hcni STATUS tap "$(tapconf "" '[[{"subnet":"10.200.90.0/30"}]]')" "" "" ""
	expect_error 50 'no IP addresses available'
	hcni STATUS tap "$(tapconf)" "" "" ""
	assert_success
	hcni STATUS tap '{"cniVersion":"1.0.0","name":"x","type":"tap"}' "" "" ""
	assert_failure
}

@test "least privilege: ADD, CHECK, DEL with only CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE in the bounding set; a test build keeps only those" {
	require setpriv
	local conf res
	conf=$(tapconf '"owner":1000,"group":1000' "$V4")
	run ip netns exec "$HOSTNS" setpriv --bounding-set=-all,+net_admin,+sys_admin,+sys_ptrace -- env CNI_COMMAND=ADD \
		CNI_CONTAINERID=c1 CNI_IFNAME=eth0 CNI_NETNS="/var/run/netns/$C" CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/tap" <<<"$conf"
	[[ $status != 86 ]] || fail "sanitizer error: $output"
	assert_success
	res=$output
	assert_equal "$(sysf eth0 owner) $(sysf eth0 tun_flags)" "1000 0x4802"
	run ip netns exec "$HOSTNS" setpriv --bounding-set=-all,+net_admin,+sys_admin,+sys_ptrace -- env CNI_COMMAND=CHECK \
		CNI_CONTAINERID=c1 CNI_IFNAME=eth0 CNI_NETNS="/var/run/netns/$C" CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/tap" <<<"$(with_prev "$conf" "$res")"
	assert_success
	run ip netns exec "$HOSTNS" setpriv --bounding-set=-all,+net_admin,+sys_admin,+sys_ptrace -- env CNI_COMMAND=DEL \
		CNI_CONTAINERID=c1 CNI_IFNAME=eth0 CNI_NETNS="/var/run/netns/$C" CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/tap" <<<"$conf"
	assert_success
	assert_equal "$(links) $(reservations)" "lo  "
	# the effective set during ADD (the capability probe of test builds: the asan lane)
	nm "$PLUGIN_DIR/tap" 2>/dev/null | grep -q cni_fault || return 0
	CNI_TEST_CAPS_OUT=$BATS_TEST_TMPDIR/caps hcni ADD tap "$conf" "$C"
	assert_success
	grep -q '^CapEff:	0000000000281000$' "$BATS_TEST_TMPDIR/caps" || { cat "$BATS_TEST_TMPDIR/caps"; false; }
}

@test "older cniVersions: 0.3.0 and 0.4.0 results (ips with version, the interface in its sandbox), 0.2.0 ip4; CHECK below 0.4.0 refused" {
	local v
	for v in 0.3.0 0.4.0; do
		hcni ADD tap "$(tapconf "" "$V4" | jq -c --arg v "$v" '.cniVersion=$v')" "$C" "e$v"
		assert_success
		assert_equal "$(jqo -c '[.cniVersion, .interfaces[0].name, .interfaces[0].sandbox, .ips[0].version, .ips[0].interface]')" \
			"[\"$v\",\"e$v\",\"/var/run/netns/$C\",\"4\",0]"
	done
	hcni ADD tap "$(tapconf "" "$V4" | jq -c '.cniVersion="0.2.0"')" "$C" e020
	assert_success
	assert_equal "$(jqo -c '[.cniVersion, (.ip4.ip | test("^10\\.200\\.90\\.[0-9]+/24$")), has("interfaces")]')" '["0.2.0",true,false]'
	hcni CHECK tap "$(tapconf | jq -c '.cniVersion="0.3.1"')" "$C" e020
	expect_error 1 'CHECK'
}

@test "selinuxContext's creator (the plugin run again under the exec label) makes a persistent TAP device where it runs" {
	# what the child runs after setting /proc/thread-self/attr/exec: here without a label, in the container's netns
	run ip netns exec "$C" "$PLUGIN_DIR/tap" --cni-c-create-tap 4098 1000 -1
	assert_success
	assert_output cnitap0
	assert_equal "$(sysf cnitap0 tun_flags) $(sysf cnitap0 owner) $(sysf cnitap0 group)" "0x1802 1000 -1"
	# a flag set the kernel refuses: the ioctl named, exit 1, nothing made
	run ip netns exec "$C" "$PLUGIN_DIR/tap" --cni-c-create-tap 0 -1 -1
	assert_failure
	assert_output --partial 'TUNSETIFF: Invalid argument'
	assert_equal "$(links)" "cnitap0 lo "
}
