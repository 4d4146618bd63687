#!/usr/bin/env bats
# bandwidth chained after bridge, against the real kernel: a "host" namespace per test runs the
# plugins, containers are namespaces on its bridge (10.200.94.0/24). Throughput is real TCP
# (tests/tools/bw-tool) between the host namespace and a container, measured at the receiver.

setup() {
	load helpers/common
	load helpers/net
	T=bw$(tag)
	HOSTNS=bwh$(tag)
	BR=bwb$(tag)
	NET=bwn$(tag)
	DATA=$BATS_TEST_TMPDIR/ipam
	TOOL=${BW_TOOL:-$PLUGIN_DIR/test-tools/bw-tool}
	mkns "$HOSTNS"
}

teardown() {
	net_teardown
}

brconf() {
	printf '{"cniVersion":"1.0.0","name":"%s","type":"bridge","bridge":"%s","isGateway":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.94.0/24"}]]}}' \
		"$NET" "$BR" "$DATA"
}

# bwconf PREV MEMBERS [NAME]: the bandwidth config (members after "type")
bwconf() {
	printf '{"cniVersion":"1.0.0","name":"%s","type":"bandwidth"%s,"prevResult":%s}' "${3:-$NET}" "${2:+,$2}" "$1"
}

# bridged NAME: a container on the bridge; bridge's result in PREV
bridged() {
	mkns "$1"
	hcni ADD bridge "$(brconf)" "$1"
	assert_success
	PREV=$output
}

# bursts of 25 ms at the rate: a shaper dequeued late (CPU contention) loses fewer tokens, and the
# first burst adds under 1 % to a few seconds' transfer
RATES='"ingressRate":8000000,"ingressBurst":200000,"egressRate":4000000,"egressBurst":100000'

# host end of container NAME's veth
hostveth() { in_host ip -j link show master "$BR" | jq -r '.[0].ifname'; }

# ifbname NET CID: the ifb device the reference names (bwp + 12 hex of sha512(NET CID))
ifbname() { printf 'bwp%s' "$(printf '%s%s' "$1" "$2" | sha512sum | cut -c1-12)"; }

# rate FROM_NS TO_NS TO_ADDR SECONDS: TCP throughput FROM -> TO in bit/s on the wire, which is what
# tbf counts: the payload the receiver saw over its time, times 1514/1448 (an Ethernet frame of a
# 1500-byte MTU per 1448 bytes of TCP payload: 20 IP, 32 TCP with timestamps, 14 Ethernet)
rate() {
	local f=$BATS_TEST_TMPDIR/rate$RANDOM port=$((5200 + RANDOM % 100)) i
	ip netns exec "$2" "$TOOL" recv "$port" >"$f" 2>"$f.err" &
	local pid=$!
	for ((i = 0; i < 100; i++)); do grep -q listening "$f.err" && break; sleep 0.05; done
	ip netns exec "$1" "$TOOL" send "$3" "$port" "$4" || return 1
	wait "$pid"
	awk '{printf "%.0f\n", $3 * 1514 / 1448}' "$f"
}

# shaped FROM_NS TO_NS TO_ADDR WANT: the rate FROM -> TO is WANT ±10 %. CPU contention (other suites,
# other jobs on the machine) can only lower a measurement (a shaper dequeued late loses tokens), never
# raise it: a rate above the bound fails at once, one below is measured again, three times at most.
shaped() {
	local r i
	for i in 1 2 3; do
		r=$(rate "$1" "$2" "$3" 4)
		echo "$1 -> $2: $r bit/s (configured $4)" >&3
		awk -v r="$r" -v w="$4" 'BEGIN { exit !(r <= w * 1.1) }' || fail "measured $r bit/s, configured $4 (above +10 %)"
		awk -v r="$r" -v w="$4" 'BEGIN { exit !(r >= w * 0.9) }' && return 0
	done
	fail "measured $r bit/s, configured $4 (below -10 %, three times)"
}

# qdiscs: the host namespace's qdiscs, counters normalised
qdiscs() {
	in_host tc -s qdisc show | sed -E 's/^ Sent .*/ Sent/; s/^ backlog .*/ backlog/' | grep -v '^ *$'
}

@test "traffic to and from the container is shaped to the configured rates (unshaped first)" {
	require "$TOOL"
	bridged bwc1$T
	local fast_in fast_out r
	fast_in=$(rate "$HOSTNS" bwc1$T 10.200.94.2 1)
	fast_out=$(rate bwc1$T "$HOSTNS" 10.200.94.1 1)
	echo "unshaped: in $fast_in out $fast_out" >&3
	# far above what the plugin is about to configure
	awk -v a="$fast_in" -v b="$fast_out" 'BEGIN { exit !(a > 40000000 && b > 40000000) }'
	hcni ADD bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	# ingress: to the container, 8 Mbit/s
	shaped "$HOSTNS" bwc1$T 10.200.94.2 8000000
	# egress: from the container, 4 Mbit/s
	shaped bwc1$T "$HOSTNS" 10.200.94.1 4000000
	hcni DEL bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	r=$(rate bwc1$T "$HOSTNS" 10.200.94.1 1)
	awk -v a="$r" 'BEGIN { exit !(a > 40000000) }'
}

@test "the qdiscs, the filter's target and the ifb are the reference's for the same config" {
	require /usr/lib/cni/bandwidth
	bridged bwc1$T
	hcni ADD /usr/lib/cni/bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	local ref ours ifb
	ifb=$(ifbname "$NET" bwc1$T)
	assert_equal "$(jqo -r '.interfaces[-1].name')" "$ifb"
	ref=$(qdiscs)
	in_host tc filter show dev "$(hostveth)" ingress | grep -q "Egress Redirect to device $ifb"
	# our CHECK accepts the reference's layout
	hcni CHECK bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	hcni DEL /usr/lib/cni/bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	in_host tc qdisc del dev "$(hostveth)" root
	in_host tc qdisc del dev "$(hostveth)" ingress
	hcni ADD bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	assert_equal "$(jqo -r '.interfaces[-1].name')" "$ifb"
	assert_equal "$(jqo -r '.interfaces | length')" 4
	ours=$(qdiscs)
	assert_equal "$ours" "$ref"
	in_host tc filter show dev "$(hostveth)" ingress | grep -q "Egress Redirect to device $ifb"
	# a rate past 4 GiB/s (TCA_TBF_RATE64) and odd values
	local big='"ingressRate":40000000000,"ingressBurst":2000000000,"egressRate":12345,"egressBurst":4567'
	hcni DEL bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	assert_success
	hcni ADD /usr/lib/cni/bandwidth "$(bwconf "$PREV" "$big")" bwc1$T
	assert_success
	ref=$(qdiscs)
	hcni DEL /usr/lib/cni/bandwidth "$(bwconf "$PREV" "$big")" bwc1$T
	in_host tc qdisc del dev "$(hostveth)" root
	in_host tc qdisc del dev "$(hostveth)" ingress
	hcni ADD bandwidth "$(bwconf "$PREV" "$big")" bwc1$T
	assert_success
	assert_equal "$(qdiscs)" "$ref"
	# and CHECK of each accepts the other's
	hcni CHECK /usr/lib/cni/bandwidth "$(bwconf "$PREV" "$big")" bwc1$T
	assert_success
}

@test "runtimeConfig.bandwidth (the capability) shapes when the config has no rates; the config's own rates win (as the reference)" {
	bridged bwc1$T
	local rc='"runtimeConfig":{"bandwidth":{"ingressRate":16000000,"ingressBurst":160000}}'
	hcni ADD bandwidth "$(bwconf "$PREV" "$rc")" bwc1$T
	assert_success
	in_host tc qdisc show dev "$(hostveth)" | grep -q 'tbf 1: root .*rate 16Mbit burst 20000b'
	# no egress asked: no ifb
	[ -z "$(in_host ip -o link show type ifb)" ]
	hcni CHECK bandwidth "$(bwconf "$PREV" "$rc")" bwc1$T
	assert_success
	hcni DEL bandwidth "$(bwconf "$PREV" "$rc")" bwc1$T
	assert_success
	hcni ADD bandwidth "$(bwconf "$PREV" "\"ingressRate\":8000000,\"ingressBurst\":80000,$rc")" bwc1$T
	assert_success
	in_host tc qdisc show dev "$(hostveth)" | grep -q 'tbf 1: root .*rate 8Mbit burst 10000b'
}

@test "CHECK passes, then fails naming what differs after each kind of tampering" {
	bridged bwc1$T
	local conf veth ifb
	conf=$(bwconf "$PREV" "$RATES")
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	veth=$(hostveth)
	ifb=$(ifbname "$NET" bwc1$T)
	hcni CHECK bandwidth "$conf" bwc1$T
	assert_success
	in_host tc qdisc replace dev "$veth" root handle 1: tbf rate 9mbit burst 10000 latency 25ms
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "ingress: the tbf rate on $veth"
	in_host tc qdisc del dev "$veth" root
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "ingress: there is no tbf root qdisc on $veth"
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	in_host tc qdisc replace dev "$ifb" root handle 1: tbf rate 4mbit burst 20000 limit 1000
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "egress: the tbf limit on $ifb"
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	hcni CHECK bandwidth "$conf" bwc1$T
	assert_success
	in_host tc filter del dev "$veth" ingress
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "no filter on $veth redirects its traffic to $ifb"
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	in_host tc qdisc del dev "$veth" ingress
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "there is no ingress qdisc on $veth"
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	in_host ip link set "$ifb" down
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "ifb device $ifb is down"
	in_host ip link del "$ifb"
	hcni CHECK bandwidth "$conf" bwc1$T
	expect_error 104 "ifb device $ifb is missing"
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	hcni CHECK bandwidth "$conf" bwc1$T
	assert_success
}

@test "DEL removes the ifb and the qdiscs, twice is fine, and converges with the netns gone" {
	bridged bwc1$T
	local conf veth ifb
	conf=$(bwconf "$PREV" "$RATES")
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	veth=$(hostveth)
	ifb=$(ifbname "$NET" bwc1$T)
	for _ in 1 2; do
		hcni DEL bandwidth "$conf" bwc1$T
		assert_success
		run in_host ip link show "$ifb"
		assert_failure
		run in_host tc qdisc show dev "$veth"
		refute_output --regexp 'tbf|ingress'
	done
	# the netns gone: the ifb is still removed
	hcni ADD bandwidth "$conf" bwc1$T
	assert_success
	ip netns del bwc1$T
	hcni DEL bandwidth "$conf" bwc1$T
	assert_success
	run in_host ip link show "$ifb"
	assert_failure
	# and with no prevResult or an invalid config
	hcni DEL bandwidth '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"bandwidth","ingressRate":"x"}' bwc1$T
	assert_success
}

@test "a failed ADD leaves nothing behind" {
	bridged bwc1$T
	local veth ifb
	veth=$(hostveth)
	ifb=$(ifbname "$NET" bwc1$T)
	# the ifb's name is taken by something else: refused after the ingress tbf was made
	in_host ip link add "$ifb" type bridge
	hcni ADD bandwidth "$(bwconf "$PREV" "$RATES")" bwc1$T
	expect_error 106 "$ifb exists and is not this attachment's ifb"
	run in_host tc qdisc show dev "$veth"
	refute_output --regexp 'tbf|ingress'
	in_host ip link show "$ifb" | grep -q "$ifb"
	in_host ip link del "$ifb"
	# the host interface is not in prevResult
	local bad
	bad=$(jq -c '.interfaces[1].name = "bwnotthere"' <<<"$PREV")
	hcni ADD bandwidth "$(bwconf "$bad" "$RATES")" bwc1$T
	expect_error 7 'no host interface is the veth peer'
	run in_host tc qdisc show dev "$veth"
	refute_output --regexp 'tbf|ingress'
	[ -z "$(in_host ip -o link show type ifb)" ]
}

@test "bad configs: a clear error naming the field (7 for values, 6 for types)" {
	bridged bwc1$T
	hcni ADD bandwidth "$(bwconf "$PREV" '"ingressRate":8000000')" bwc1$T
	expect_error 7 'ingressBurst.*if rate is set, burst must also be set'
	hcni ADD bandwidth "$(bwconf "$PREV" '"egressBurst":8000')" bwc1$T
	expect_error 7 'egressRate.*if burst is set, rate must also be set'
	hcni ADD bandwidth "$(bwconf "$PREV" '"egressRate":8000000,"egressBurst":34359738368')" bwc1$T
	expect_error 7 'egressBurst.*burst cannot be more than 4GB'
	hcni ADD bandwidth "$(bwconf "$PREV" '"ingressRate":-1,"ingressBurst":8')" bwc1$T
	expect_error 7 '"ingressRate"'
	hcni ADD bandwidth "$(bwconf "$PREV" '"ingressRate":"8M","ingressBurst":8')" bwc1$T
	expect_error 6 '"ingressRate"'
	hcni ADD bandwidth "$(bwconf "$PREV" '"ingressRate":1.5,"ingressBurst":8')" bwc1$T
	expect_error 6 '"ingressRate"'
	hcni ADD bandwidth "$(bwconf "$PREV" '"runtimeConfig":{"bandwidth":[]}')" bwc1$T
	expect_error 6 'runtimeConfig.bandwidth'
	hcni ADD bandwidth "$(bwconf "$PREV" '"runtimeConfig":{"bandwidth":{"egressRate":4}}')" bwc1$T
	expect_error 7 'runtimeConfig.bandwidth.egressBurst'
	hcni ADD bandwidth "$(bwconf "$PREV" '"ingressRate":4,"ingressBurst":8')" bwc1$T
	expect_error 7 'ingressRate.*less than a byte per second'
	hcni ADD bandwidth '{"cniVersion":"1.0.0","name":"x","type":"bandwidth","ingressRate":8000,"ingressBurst":8000}' bwc1$T
	expect_error 7 'must be called as a chained plugin'
	# no rates: prevResult passes through, nothing made
	hcni ADD bandwidth "$(bwconf "$PREV" '')" bwc1$T
	assert_success
	assert_equal "$(jqo -cS .)" "$(jq -cS . <<<"$PREV")"
	[ -z "$(in_host tc qdisc show | grep -E 'tbf|ingress')" ]
}

@test "GC removes the ifb devices of attachments not in cni.dev/valid-attachments, of this network only" {
	bridged bwc1$T
	local p1=$PREV
	bridged bwc2$T
	local p2=$PREV
	hcni ADD bandwidth "$(bwconf "$p1" "$RATES")" bwc1$T
	assert_success
	hcni ADD bandwidth "$(bwconf "$p2" "$RATES")" bwc2$T
	assert_success
	# an attachment of another network, and an ifb that is not ours
	hcni ADD bandwidth "$(bwconf "$p1" "$RATES" other$T)" bwc1$T
	assert_success
	in_host ip link add bwpforeign type ifb
	local gc
	gc=$(printf '{"cniVersion":"1.1.0","name":"%s","type":"bandwidth","cni.dev/valid-attachments":[{"containerID":"bwc1%s","ifname":"eth0"}]}' "$NET" "$T")
	hcni GC bandwidth "$gc" ""
	assert_success
	in_host ip link show "$(ifbname "$NET" bwc1$T)"
	run in_host ip link show "$(ifbname "$NET" bwc2$T)"
	assert_failure
	in_host ip link show "$(ifbname other$T bwc1$T)"
	in_host ip link show bwpforeign
}

@test "STATUS and VERSION" {
	hcni STATUS bandwidth '{"cniVersion":"1.1.0","name":"x","type":"bandwidth"}' ""
	assert_success
	hcni VERSION bandwidth '{"cniVersion":"1.1.0"}' ""
	assert_success
	jqo -e '.supportedVersions | index("1.1.0")'
}
