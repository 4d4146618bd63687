#!/usr/bin/env bats
# Fault injection (test builds only: the ASan lane): every step of an ADD is made to fail, and to
# crash, in turn. A failed ADD must leave nothing; after a crash, DEL must leave nothing: no link,
# address, route, nft rule, reservation or lock held.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	DATA=$BATS_TEST_TMPDIR/ipam
	mkns "$HOSTNS"
	# a test build's marker ends in "-test" (CNIC_ID); grep, as the VM lane has no nm
	if ! env CNI_COMMAND=VERSION CNI_TEST_TRACE=1 "$PLUGIN_DIR/bridge" >/dev/null 2>&1 ||
		! grep -aqE '[0-9a-f]{16}(-san)?-test' "$PLUGIN_DIR/bridge"; then
		skip "not a test build (fault points are compiled out of release builds): the asan lane runs these, the VM lane (test/faults.bats:vlan) the vlan ones"
	fi
}

teardown() { net_teardown; }

# count_steps VERB PLUGIN CONF CTR: fault points one successful ADD passes (then undone by DEL)
count_steps() {
	mkns "$4"
	run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=$4 CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$4 \
		CNI_PATH="$PLUGIN_DIR" CNI_TEST_TRACE=1 "$PLUGIN_DIR/$2" <<<"$3"
	assert_success
	STEPS=$(grep -c '^cni-fault:' <<<"$output")
	: # grep cni-fault lines to see the steps
	hcni DEL "$2" "$3" "$4"
	assert_success
}

# nothing_left CTR [links expected on the host]: the attachment left no trace
nothing_left() {
	local links
	links=$(ip -n "$HOSTNS" -o link show | awk -F': ' '{print $2}' | cut -d@ -f1 | sort | tr '\n' ' ')
	[[ $links == "${2:-lo }" ]] || { echo "host links left: $links" >&2; return 1; }
	[[ $(ip -n "$1" -o link show | wc -l) == 1 ]] || { ip -n "$1" -o link show >&2; return 1; }
	local f
	f=$(find "$DATA" -type f \( -name '[0-9]*' -o -name 'fd00*' \) 2>/dev/null)
	[[ -z $f ]] || { echo "reservations left: $f" >&2; return 1; }
	local nft
	nft=$(ip netns exec "$HOSTNS" nft list ruleset 2>/dev/null | grep -E 'chain (a|s|p|d)-|goto (a|s|d)-|jump (a|p)-' || true)
	[[ -z $nft ]] || { echo "nft left: $nft" >&2; return 1; }
	# addresses an ADD adds on the host (floating-ip), when the test names them
	if [[ -n ${HOST_ADDRS:-} ]] && ip -n "$HOSTNS" addr show | grep -qE "$HOST_ADDRS"; then
		echo "host addresses left: $(ip -n "$HOSTNS" addr show | grep -E "$HOST_ADDRS")" >&2
		return 1
	fi
	for l in $(find "$DATA" -name lock 2>/dev/null) /run/cni-c/nft.lock; do
		# the nft lock is the node's: other suites running beside this one take it briefly
		[[ -e $l ]] && { flock -w 20 "$l" true || { echo "lock held: $l" >&2; return 1; }; }
	done
	return 0
}

# walk PLUGIN CONF [host links]: fail and crash at every step
walk() {
	local plugin=$1 conf=$2 links=${3:-lo } n
	count_steps ADD "$plugin" "$conf" probe$T
	[[ $STEPS -ge ${MIN_STEPS:-5} ]] || fail "only $STEPS fault points"
	for n in $(seq 1 "$STEPS"); do
		mkns f$n$T
		CNI_TEST_FAIL_AT=$n hcni ADD "$plugin" "$conf" f$n$T
		expect_error 100 "injected fault at step $n"
		nothing_left f$n$T "$links" || fail "failed ADD at step $n left something"
		CNI_TEST_FAIL_AT=$n CNI_TEST_FAIL_MODE=crash hcni ADD "$plugin" "$conf" f$n$T
		assert_equal "$status" 99
		hcni DEL "$plugin" "$conf" f$n$T
		assert_success
		nothing_left f$n$T "$links" || fail "crash at step $n, then DEL, left something"
		ip netns del f$n$T
	done
}

@test "bridge: every ADD step failing or crashing leaves nothing (SNAT, spoof check, dual-stack)" {
	ip -n "$HOSTNS" link add "br$T" type bridge
	ip -n "$HOSTNS" link set "br$T" up
	local conf
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"bridge","bridge":"br%s","isDefaultGateway":true,"ipMasq":true,"macspoofchk":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.150.0/24"}],[{"subnet":"fd00:200:150::/64"}]]}}' "$T" "$T" "$DATA")
	walk bridge "$conf" "br$T lo "
}

@test "vxlan: every ADD step failing or crashing leaves nothing, VTEP and bridge included" {
	ip -n "$HOSTNS" link add ul0 type veth peer name ul0p
	ip -n "$HOSTNS" addr add 10.200.151.1/24 dev ul0
	ip -n "$HOSTNS" link set ul0 up
	local conf
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"vxlan","vni":42,"underlayDevice":"ul0","peers":["10.200.151.2"],"ipMasq":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.152.0/24"}]]}}' "$T" "$DATA")
	walk vxlan "$conf" "lo ul0 ul0p "
}

@test "portmap: every ADD step failing or crashing leaves nothing (attachment chain, port chain, map element)" {
	local conf prev
	prev='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.200.155.2/24","interface":0}]}'
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"},{"hostPort":18081,"containerPort":81,"protocol":"udp"}]},"prevResult":%s}' "$T" "$prev")
	MIN_STEPS=3 walk portmap "$conf"
}

@test "floating-ip: every ADD step failing or crashing leaves nothing (chains, map elements, the address on the uplink)" {
	ip -n "$HOSTNS" link add ul0 type veth peer name ul0p
	ip -n "$HOSTNS" link set ul0 up
	local conf prev
	prev='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.200.91.2/25","interface":0},{"address":"fd00:200:91::2/80","interface":0}]}'
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"floating-ip","floatingIP":["10.200.92.50","fd00:200:91:0:1::50"],"interface":"ul0","prevResult":%s}' "$T" "$prev")
	HOST_ADDRS='10\.200\.92\.50|fd00:200:91:0:1::50' MIN_STEPS=2 walk floating-ip "$conf" "lo ul0 ul0p "
}

# vlan needs 802.1Q: the VM lane runs these with a test build (tests/run.sh ships one)
vlan_walk_setup() {
	ip -n "$HOSTNS" link add trunk type veth peer name trunkp
	ip -n "$HOSTNS" link set trunk up
	ip -n "$HOSTNS" link add link trunk name t.9 type vlan id 9 2>/dev/null || skip "the kernel has no 802.1Q (the VM lane runs this)"
	ip -n "$HOSTNS" link del t.9
}

@test "vlan bridged mode: every ADD step failing or crashing leaves nothing, sub-interface and bridge included" {
	vlan_walk_setup
	local conf
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"vlan","master":"trunk","vlanId":100,"bridge":"brv%s","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.154.0/24"}]]}}' "$T" "$T" "$DATA")
	walk vlan "$conf" "lo trunk trunkp "
}

@test "vlan reference mode: every ADD step failing or crashing leaves nothing" {
	vlan_walk_setup
	local conf
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"vlan","master":"trunk","vlanId":101,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.155.0/24"}]]}}' "$T" "$DATA")
	MIN_STEPS=3 walk vlan "$conf" "lo trunk trunkp "
}

@test "host-local alone: every step failing or crashing, then DEL, leaves no reservation" {
	local conf n
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"host-local","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.153.0/24"}],[{"subnet":"fd00:200:153::/64"}]]}}' "$T" "$DATA")
	run env CNI_COMMAND=ADD CNI_CONTAINERID=probe CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH=/x CNI_TEST_TRACE=1 "$PLUGIN_DIR/host-local" <<<"$conf"
	assert_success
	STEPS=$(grep -c '^cni-fault:' <<<"$output")
	[[ $STEPS -ge 3 ]]
	cni DEL host-local "$conf" probe
	for n in $(seq 1 "$STEPS"); do
		CNI_TEST_FAIL_AT=$n cni ADD host-local "$conf" c$n
		expect_error 100 "injected fault at step $n"
		[ -z "$(ls "$DATA/n$T" | grep -e '^10\.' -e '^fd00')" ]
		CNI_TEST_FAIL_AT=$n CNI_TEST_FAIL_MODE=crash cni ADD host-local "$conf" c$n
		assert_equal "$status" 99
		cni DEL host-local "$conf" c$n
		assert_success
		[ -z "$(ls "$DATA/n$T" | grep -e '^10\.' -e '^fd00')" ]
	done
	# and the store still allocates consistently afterwards
	for n in 1 2 3; do cni ADD host-local "$conf" after$n; assert_success; done
	assert_equal "$(ls "$DATA/n$T" | grep -c '^10\.')" 3
}

@test "bridge: a repeated ADD (repair) failing or crashing at any step keeps the live attachment: its reservation, its veth pair, its result" {
	ip -n "$HOSTNS" link add "br$T" type bridge
	ip -n "$HOSTNS" link set "br$T" up
	local conf first n steps res
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"bridge","bridge":"br%s","isGateway":true,"ipMasq":true,"macspoofchk":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.150.0/24"}]]}}' "$T" "$T" "$DATA")
	mkns c$T
	hcni ADD bridge "$conf" c$T
	assert_success
	first=$(jqo -cS .)
	res=$(grep -l "c$T" "$DATA/n$T"/10.* | head -1)
	[[ -n $res ]] || fail "no reservation after ADD"
	# the steps a repeated ADD passes
	run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=c$T CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c$T \
		CNI_PATH="$PLUGIN_DIR" CNI_TEST_TRACE=1 "$PLUGIN_DIR/bridge" <<<"$conf"
	assert_success
	steps=$(grep -c '^cni-fault:' <<<"$output")
	[[ $steps -ge 5 ]] || fail "only $steps fault points"
	for n in $(seq 1 "$steps"); do
		CNI_TEST_FAIL_AT=$n hcni ADD bridge "$conf" c$T
		expect_error 100 "injected fault at step $n"
		[[ -e $res ]] || fail "a repair failing at step $n released the live attachment's reservation"
		ip -n c$T link show eth0 >/dev/null || fail "a repair failing at step $n removed the container's interface"
		CNI_TEST_FAIL_AT=$n CNI_TEST_FAIL_MODE=crash hcni ADD bridge "$conf" c$T
		assert_equal "$status" 99
		[[ -e $res ]] || fail "a repair crashing at step $n released the reservation"
		# the next repeated ADD repairs whatever the failed one left half done
		hcni ADD bridge "$conf" c$T
		assert_success
		assert_equal "$(jqo -cS .)" "$first"
	done
	hcni CHECK bridge "$(jq -c --argjson p "$first" '.prevResult=$p' <<<"$conf")" c$T
	assert_success
	hcni DEL bridge "$conf" c$T
	assert_success
	nothing_left c$T "br$T lo " || fail "DEL after the repairs left something"
}

@test "bandwidth: every ADD step failing or crashing leaves nothing (tbf, ingress qdisc, filter, ifb)" {
	local br brconf prev conf steps veth
	br=bwb$T
	mkns bwc$T
	brconf=$(printf '{"cniVersion":"1.0.0","name":"bwn%s","type":"bridge","bridge":"%s","ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.94.0/24"}]]}}' "$T" "$br" "$DATA")
	hcni ADD bridge "$brconf" bwc$T
	assert_success
	prev=$output
	veth=$(ip -n "$HOSTNS" -j link show master "$br" | jq -r '.[0].ifname')
	conf=$(printf '{"cniVersion":"1.0.0","name":"bwn%s","type":"bandwidth","ingressRate":8000000,"ingressBurst":80000,"egressRate":4000000,"egressBurst":80000,"prevResult":%s}' "$T" "$prev")
	# nothing of bandwidth's: no tbf or ingress qdisc on the host end, no ifb
	bw_nothing() {
		! ip netns exec "$HOSTNS" tc qdisc show dev "$veth" | grep -qE 'tbf|ingress' &&
			[[ -z $(ip -n "$HOSTNS" -o link show type ifb) ]]
	}
	run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=bwc$T CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/bwc$T \
		CNI_PATH="$PLUGIN_DIR" CNI_TEST_TRACE=1 "$PLUGIN_DIR/bandwidth" <<<"$conf"
	assert_success
	steps=$(grep -c '^cni-fault:' <<<"$output")
	[[ $steps -ge 5 ]] || fail "only $steps fault points"
	hcni DEL bandwidth "$conf" bwc$T
	assert_success
	bw_nothing || fail "DEL left something"
	for n in $(seq 1 "$steps"); do
		CNI_TEST_FAIL_AT=$n hcni ADD bandwidth "$conf" bwc$T
		expect_error 100 "injected fault at step $n"
		bw_nothing || fail "failed ADD at step $n left something"
		CNI_TEST_FAIL_AT=$n CNI_TEST_FAIL_MODE=crash hcni ADD bandwidth "$conf" bwc$T
		assert_equal "$status" 99
		hcni DEL bandwidth "$conf" bwc$T
		assert_success
		bw_nothing || fail "crash at step $n, then DEL, left something"
	done
}
