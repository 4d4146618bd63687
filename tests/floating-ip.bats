#!/usr/bin/env bats
# floating-ip chained after bridge, against the real kernel: a "host" namespace per test runs the
# plugins, an "outside" namespace is a client on the host's uplink, containers are namespaces.
# Inbound traffic is real HTTP to a CGI in the container that answers with the peer address it
# sees; outbound is a ping from the container captured by tcpdump in the outside namespace.
#   containers 10.200.91.0/25, fd00:200:91::/80; uplink 10.200.92.0/24, fd00:200:91:0:1::/80
#   floating IPs on the uplink (address added): 10.200.92.50-59, fd00:200:91:0:1::50-59
#   floating IPs routed to the node (no address): 10.200.91.200-209, fd00:200:91:0:2::/80

setup() {
	load helpers/common
	load helpers/net
	T=fi$(tag)
	HOSTNS=h$T
	OUT=o$T
	BR=b$T
	UP=u$T
	NET=n$T
	DATA=$BATS_TEST_TMPDIR/ipam
	WWW=$BATS_TEST_TMPDIR/www
	mkdir -p "$WWW/cgi-bin"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\n%%s\\n" "$REMOTE_ADDR"\n' >"$WWW/cgi-bin/peer"
	chmod +x "$WWW/cgi-bin/peer"
	mkns "$HOSTNS"
	mkns "$OUT"
	ip -n "$HOSTNS" link add "$UP" type veth peer name eth0 netns "$OUT"
	ip -n "$HOSTNS" addr add 10.200.92.1/24 dev "$UP"
	ip -n "$HOSTNS" addr add fd00:200:91:0:1::1/80 dev "$UP" nodad
	ip -n "$HOSTNS" link set "$UP" up
	ip -n "$OUT" addr add 10.200.92.2/24 dev eth0
	ip -n "$OUT" addr add fd00:200:91:0:1::2/80 dev eth0 nodad
	ip -n "$OUT" link set eth0 up
	ip -n "$OUT" route add default via 10.200.92.1
	ip -n "$OUT" -6 route add default via fd00:200:91:0:1::1
	# the node's own default route points at the outside (so it can reach floating IPs routed to it)
	ip -n "$HOSTNS" route add default via 10.200.92.2
	ip -n "$HOSTNS" -6 route add default via fd00:200:91:0:1::2
	in_host sysctl -qw net.ipv4.ip_forward=1
	in_host sysctl -qw net.ipv6.conf.all.forwarding=1
}

teardown() {
	net_teardown
}

DUAL='[[{"subnet":"10.200.91.0/25"}],[{"subnet":"fd00:200:91::/80"}]]'

brconf() {
	printf '{"cniVersion":"1.0.0","name":"%s","type":"bridge","bridge":"%s","isDefaultGateway":true%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":%s}}' \
		"$NET" "$BR" "${1:+,$1}" "$DATA" "$DUAL"
}

# ficonf PREV [members] [cniVersion]: the floating-ip config (members after "type")
ficonf() {
	printf '{"cniVersion":"%s","name":"%s","type":"floating-ip"%s,"prevResult":%s}' "${3:-1.0.0}" "$NET" "${2:+,$2}" "$1"
}

# attach NAME MEMBERS [BRIDGE_MEMBERS]: bridge then floating-ip for container NAME; bridge's result in PREV_NAME
attach() {
	[[ -e /var/run/netns/$1 ]] || mkns "$1"
	hcni ADD bridge "$(brconf "${3:-}")" "$1"
	assert_success
	printf -v "PREV_$1" '%s' "$output"
	local prev=$output
	hcni ADD floating-ip "$(ficonf "$prev" "$2")" "$1"
	assert_success
	# the result is prevResult, unchanged
	assert_equal "$(jqo -cS .)" "$(jq -cS . <<<"$prev")"
}

prev_of() { local v=PREV_$1; echo "${!v}"; }

# peer NS ADDR: HTTP GET of the CGI at ADDR:80 from NS; prints the peer address the server saw
peer() {
	# (busybox httpd listens on IPv6 and sees an IPv4 peer as ::ffff:A)
	timeout "${GET_TIMEOUT:-5}" ip netns exec "$1" bash -c 'exec 3<>"/dev/tcp/$0/80" && printf "GET /cgi-bin/peer HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$2" 2>/dev/null | tail -1 | tr -d '[]\r' | sed 's/^::ffff://'
}

# src CTR DST: the source address the outside sees of one echo request CTR sends to DST
src() {
	local f=$BATS_TEST_TMPDIR/src$RANDOM
	if [[ $2 == *:* ]]; then
		capture "$OUT" "$f" -i eth0 -c 1 icmp6 and 'ip6[40] == 128'
	else
		capture "$OUT" "$f" -i eth0 -c 1 icmp and 'icmp[icmptype] == icmp-echo'
	fi
	# the first may wait on neighbour discovery; without a way back no reply comes: the
	# capture is what counts
	for _ in 1 2 3; do ip netns exec "$1" ping -n -c 1 -W 1 "$2" >/dev/null 2>&1 && break; done
	wait "$CAPTURE_PID"
	awk '/echo request/ {print $3; exit}' "$f"
}

# what the table holds of attachments: chains d-*/s-* and map elements
leftovers() { in_host nft list table inet cni_c_fip 2>/dev/null | grep -E 'chain [ds]-|goto [ds]-' || true; }

@test "outside reaches the container at its floating IP, the container leaves as it; DEL stops both" {
	require tcpdump
	attach c1$T "\"floatingIP\":\"10.200.92.50\",\"interface\":\"$UP\""
	ip netns exec c1$T busybox httpd -p 80 -h "$WWW" && listening c1$T 80
	ip netns exec "$OUT" busybox httpd -p 80 -h "$WWW" && listening "$OUT" 80
	# the address is on the uplink, as a /32
	in_host ip -4 addr show dev "$UP" | grep -q 'inet 10.200.92.50/32'
	# inbound: the container sees the outside's own address
	assert_equal "$(peer "$OUT" 10.200.92.50)" 10.200.92.2
	# outbound: the outside sees the floating IP (a new connection and a ping)
	assert_equal "$(peer c1$T 10.200.92.2)" 10.200.92.50
	assert_equal "$(src c1$T 10.200.92.2)" 10.200.92.50
	# the host reaches it too (output chain), from the address itself: it is the host's own
	assert_equal "$(peer "$HOSTNS" 10.200.92.50)" 10.200.92.50
	hcni DEL floating-ip "$(ficonf "$(prev_of c1$T)" "\"floatingIP\":\"10.200.92.50\",\"interface\":\"$UP\"")" c1$T
	assert_success
	run in_host ip -4 addr show dev "$UP"
	refute_output --partial 10.200.92.50
	[ -z "$(GET_TIMEOUT=2 peer "$OUT" 10.200.92.50)" ]
	# the container's own address again
	assert_equal "$(src c1$T 10.200.92.2)" 10.200.91.2
	[ -z "$(leftovers)" ]
}

@test "IPv6: inbound and outbound through the floating IP; DEL stops both" {
	require tcpdump
	local fip=fd00:200:91:0:1::50
	attach c1$T "\"floatingIP\":[\"$fip\"],\"interface\":\"$UP\",\"addAddress\":true"
	ip netns exec c1$T busybox httpd -p 80 -h "$WWW" && listening c1$T 80
	ip netns exec "$OUT" busybox httpd -p 80 -h "$WWW" && listening "$OUT" 80
	in_host ip -6 addr show dev "$UP" | grep -q "inet6 $fip/128"
	until_ok() { local end=$((SECONDS + $1)); shift; until "$@"; do ((SECONDS < end)) || return 1; sleep 0.1; done; }
	seen() { [[ $(peer "$OUT" $fip) == fd00:200:91:0:1::2 ]]; }
	until_ok 5 seen || fail "inbound: $(peer "$OUT" $fip)"
	assert_equal "$(peer c1$T fd00:200:91:0:1::2)" "$fip"
	assert_equal "$(src c1$T fd00:200:91:0:1::2)" "$fip"
	hcni DEL floating-ip "$(ficonf "$(prev_of c1$T)" "\"floatingIP\":[\"$fip\"],\"interface\":\"$UP\"")" c1$T
	assert_success
	run in_host ip -6 addr show dev "$UP"
	refute_output --partial "$fip"
	[ -z "$(GET_TIMEOUT=2 peer "$OUT" $fip)" ]
	assert_equal "$(src c1$T fd00:200:91:0:1::2)" fd00:200:91::2
	[ -z "$(leftovers)" ]
}

@test "with ipMasq on the bridge the container still leaves as its floating IP; one without is masqueraded; portmap beside" {
	require tcpdump
	attach c1$T '"floatingIP":"10.200.92.51","interface":"'"$UP"'"' '"ipMasq":true'
	attach c2$T '' '"ipMasq":true'
	assert_equal "$(src c1$T 10.200.92.2)" 10.200.92.51
	assert_equal "$(src c2$T 10.200.92.2)" 10.200.92.1
	# inbound through the floating IP is not masqueraded either
	ip netns exec c1$T busybox httpd -p 80 -h "$WWW" && listening c1$T 80
	assert_equal "$(peer "$OUT" 10.200.92.51)" 10.200.92.2
	# both tables hold the container: ours runs first (postrouting priority 90 < srcnat)
	in_host nft list map inet cni_c_masq masq4 | grep -q 10.200.91.2
	in_host nft list chain inet cni_c_fip postrouting | grep -q 'srcnat - 10'
	# portmap beside it: c2 publishes host port 80 (every local address); the node's own address
	# leads there, the floating IP (local too, on the uplink) stays c1's whole address
	mkdir -p "$BATS_TEST_TMPDIR/w2/cgi-bin"
	printf '#!/bin/sh\nprintf "Content-Type: text/plain\\r\\n\\r\\nc2\\n"\n' >"$BATS_TEST_TMPDIR/w2/cgi-bin/peer"
	chmod +x "$BATS_TEST_TMPDIR/w2/cgi-bin/peer"
	ip netns exec c2$T busybox httpd -p 8080 -h "$BATS_TEST_TMPDIR/w2" && listening c2$T 8080
	hcni ADD portmap "$(printf '{"cniVersion":"1.0.0","name":"%s","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":80,"containerPort":8080}]},"prevResult":%s}' "$NET" "$(prev_of c2$T)")" c2$T
	assert_success
	assert_equal "$(peer "$OUT" 10.200.92.1)" c2
	assert_equal "$(peer "$OUT" 10.200.92.51)" 10.200.92.2
}

@test "excludeSubnets: destinations listed keep the container's own address, the others see the floating IP; CHECK follows" {
	require tcpdump
	local conf
	conf='"floatingIP":["10.200.92.60","fd00:200:91:0:1::60"],"interface":"'"$UP"'","excludeSubnets":["10.200.92.2/31","fd00:200:91:0:1::/80"]'
	attach c1$T "$conf"
	ip -n "$OUT" addr add 10.200.92.9/24 dev eth0
	# excluded: the outside's .2 (v4) and the whole uplink (v6) see the container's address
	assert_equal "$(src c1$T 10.200.92.2)" 10.200.91.2
	assert_equal "$(src c1$T fd00:200:91:0:1::2)" fd00:200:91::2
	# not excluded: .9 sees the floating IP
	assert_equal "$(src c1$T 10.200.92.9)" 10.200.92.60
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)" "$conf")" c1$T
	assert_success
	# the exclusion gone: CHECK names it
	local s h
	s=$(in_host nft list table inet cni_c_fip | awk '/chain s-/ {print $2; exit}')
	h=$(in_host nft -a list chain inet cni_c_fip "$s" | awk '/exclude 10.200.92.2\/31/ {print $NF}')
	in_host nft delete rule inet cni_c_fip "$s" handle "$h"
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)" "$conf")" c1$T
	expect_error 104 "chain $s .* does not exclude 10.200.92.2/31 from SNAT"
	# and a config without exclusions: the chain has more rules than it asks for
	hcni ADD floating-ip "$(ficonf "$(prev_of c1$T)" "$conf")" c1$T
	assert_success
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)" "\"floatingIP\":[\"10.200.92.60\",\"fd00:200:91:0:1::60\"],\"interface\":\"$UP\"")" c1$T
	expect_error 104 "chain $s has 4 rules, expected 2"
}

@test "a floating IP routed to the node (no address) from the runtime's floatingIPs capability" {
	# the capability replaces the config's floatingIP
	attach c1$T '"floatingIP":"10.200.91.209","runtimeConfig":{"floatingIPs":["10.200.91.200","fd00:200:91:0:2::50"]}'
	ip netns exec c1$T busybox httpd -p 80 -h "$WWW" && listening c1$T 80
	assert_equal "$(peer "$OUT" 10.200.91.200)" 10.200.92.2
	assert_equal "$(peer "$OUT" fd00:200:91:0:2::50)" fd00:200:91:0:1::2
	[ -z "$(GET_TIMEOUT=2 peer "$OUT" 10.200.91.209)" ]
	# no address was added anywhere
	run in_host ip addr show
	refute_output --partial 10.200.91.200
}

@test "CHECK passes after ADD and fails after each kind of tampering, naming what differs; ADD and RELOAD repair" {
	local fip=10.200.92.52 conf
	attach c1$T "\"floatingIP\":[\"$fip\",\"fd00:200:91:0:1::52\"],\"interface\":\"$UP\""
	conf=$(ficonf "$(prev_of c1$T)" "\"floatingIP\":[\"$fip\",\"fd00:200:91:0:1::52\"],\"interface\":\"$UP\"")
	hcni CHECK floating-ip "$conf" c1$T
	assert_success
	local d s
	d=$(in_host nft list table inet cni_c_fip | awk '/chain d-/ {print $2; exit}')
	s=$(in_host nft list table inet cni_c_fip | awk '/chain s-/ {print $2; exit}')
	[[ -n $d && -n $s ]]
	# tamper CMD REGEX: after CMD (in the host), CHECK fails with 104 matching REGEX; ADD repairs
	tamper() {
		in_host sh -c "$1"
		hcni CHECK floating-ip "$conf" c1$T
		expect_error 104 "$2"
		hcni ADD floating-ip "$conf" c1$T
		assert_success
		hcni CHECK floating-ip "$conf" c1$T
		assert_success
	}
	tamper "nft delete element inet cni_c_fip dnat4 { $fip }" "map dnat4 .* does not send $fip to chain $d"
	tamper "nft flush chain inet cni_c_fip $d" "chain $d .* does not map $fip to 10.200.91.2"
	tamper "nft flush chain inet cni_c_fip $s" "chain $s .* does not SNAT 10.200.91.2 to $fip"
	tamper "nft delete element inet cni_c_fip snat6 { fd00:200:91::2 }" "map snat6 .* does not send fd00:200:91::2 to chain $s"
	tamper "ip addr del $fip/32 dev $UP" "address $fip/32 is missing from interface $UP"
	tamper "nft add rule inet cni_c_fip $s drop" "chain $s has 3 rules, expected 2"
	tamper "nft flush chain inet cni_c_fip prerouting" "hook chain of table inet cni_c_fip was altered"
	tamper "nft delete table inet cni_c_fip" "table inet cni_c_fip or its hook chains are missing"
	# a config that asks for another floating IP than the one mapped
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)" '"floatingIP":"10.200.92.59"')" c1$T
	expect_error 104 "does not map 10.200.92.59"
	# a prevResult with another container address
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T | sed 's/10\.200\.91\.2\//10.200.91.9\//')" "\"floatingIP\":\"$fip\"")" c1$T
	expect_error 104 "does not map $fip to 10.200.91.9"
	# the address removed by hand is put back by the repairing ADDs above
	in_host ip -4 addr show dev "$UP" | grep -q "inet $fip/32"
	# RELOAD (cnitool reload, after a firewall reload wiped every table) makes the mapping again
	in_host nft flush ruleset
	hcni RELOAD floating-ip "$conf" c1$T
	assert_success
	assert_output ''
	hcni CHECK floating-ip "$conf" c1$T
	assert_success
}

@test "GC keeps the valid attachments and removes the rest, with their addresses" {
	attach c1$T "\"floatingIP\":\"10.200.92.53\",\"interface\":\"$UP\""
	attach c2$T "\"floatingIP\":\"10.200.92.54\",\"interface\":\"$UP\""
	attach c3$T '"floatingIP":"10.200.91.203"'
	local gc
	gc=$(printf '{"cniVersion":"1.1.0","name":"%s","type":"floating-ip","cni.dev/valid-attachments":[{"containerID":"c1%s","ifname":"eth0"}]}' "$NET" "$T")
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/floating-ip" <<<"$gc"
	assert_success
	run in_host ip -4 addr show dev "$UP"
	assert_output --partial 10.200.92.53
	refute_output --partial 10.200.92.54
	assert_equal "$(leftovers | grep -c 'chain [ds]-')" 2
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)" "\"floatingIP\":\"10.200.92.53\",\"interface\":\"$UP\"")" c1$T
	assert_success
	ip netns exec c1$T busybox httpd -p 80 -h "$WWW" && listening c1$T 80
	assert_equal "$(peer "$OUT" 10.200.92.53)" 10.200.92.2
	# another network's GC leaves this one alone
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/floating-ip" <<<'{"cniVersion":"1.1.0","name":"other","type":"floating-ip","cni.dev/valid-attachments":[]}'
	assert_success
	assert_equal "$(leftovers | grep -c 'chain [ds]-')" 2
	# and with none valid, nothing is left
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/floating-ip" <<<"${gc/\{\"containerID\"*\}\]/]}"
	assert_success
	[ -z "$(leftovers)" ]
	run in_host ip -4 addr show dev "$UP"
	refute_output --partial 10.200.92.53
}

@test "a floating IP mapped to another attachment is refused (103) and the refusal leaves nothing" {
	attach c1$T "\"floatingIP\":\"10.200.92.55\",\"interface\":\"$UP\""
	mkns c2$T
	hcni ADD bridge "$(brconf)" c2$T
	assert_success
	local prev2=$output before
	before=$(in_host nft list table inet cni_c_fip)
	hcni ADD floating-ip "$(ficonf "$prev2" "\"floatingIP\":[\"fd00:200:91:0:1::55\",\"10.200.92.55\"],\"interface\":\"$UP\"")" c2$T
	expect_error 103 "10\.200\.92\.55 is already mapped to another attachment \(net=$NET if=eth0 id=c1$T\)"
	assert_equal "$(in_host nft list table inet cni_c_fip)" "$before"
	run in_host ip -6 addr show dev "$UP"
	refute_output --partial fd00:200:91:0:1::55
	# the runtime's DEL after the failed ADD leaves the first attachment whole
	hcni DEL floating-ip "$(ficonf "$prev2" "\"floatingIP\":\"10.200.92.55\",\"interface\":\"$UP\"")" c2$T
	assert_success
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)" "\"floatingIP\":\"10.200.92.55\",\"interface\":\"$UP\"")" c1$T
	assert_success
	ip netns exec c1$T busybox httpd -p 80 -h "$WWW" && listening c1$T 80
	assert_equal "$(peer "$OUT" 10.200.92.55)" 10.200.92.2
}

@test "DEL: twice, without prevResult, with the netns gone, with a broken config; an address it found in place stays" {
	# the address is already on the uplink: used, and left there by DEL
	in_host ip addr add 10.200.92.56/32 dev "$UP"
	attach c1$T "\"floatingIP\":[\"10.200.92.56\",\"fd00:200:91:0:1::56\"],\"interface\":\"$UP\""
	in_host ip -6 addr show dev "$UP" | grep -q 'fd00:200:91:0:1::56/128'
	ip netns del c1$T
	hcni DEL floating-ip '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"floating-ip","floatingIP":42}' c1$T
	assert_success
	[ -z "$(leftovers)" ]
	run in_host ip addr show dev "$UP"
	assert_output --partial 10.200.92.56/32
	refute_output --partial fd00:200:91:0:1::56
	hcni DEL floating-ip "$(ficonf "$(prev_of c1$T)" '"floatingIP":"10.200.92.56"')" c1$T
	assert_success
	hcni DEL floating-ip '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"floating-ip"}' c1$T
	assert_success
	# a repeated ADD replaces the mapping: the old floating IP's address goes
	attach c2$T "\"floatingIP\":\"10.200.92.57\",\"interface\":\"$UP\""
	hcni ADD floating-ip "$(ficonf "$(prev_of c2$T)" "\"floatingIP\":\"10.200.92.58\",\"interface\":\"$UP\"")" c2$T
	assert_success
	run in_host ip addr show dev "$UP"
	refute_output --partial 10.200.92.57
	assert_output --partial 10.200.92.58/32
	assert_equal "$(leftovers | grep -c 'goto [ds]-')" 2
}

@test "bad config: a clear error naming the field (6 for a wrong JSON type, 7 for a bad value), nothing left" {
	mkns c1$T
	hcni ADD bridge "$(brconf)" c1$T
	assert_success
	local prev=$output
	bad() { # CODE REGEX MEMBERS [PREV]
		hcni ADD floating-ip "$(ficonf "${4:-$prev}" "$3")" c1$T
		expect_error "$1" "$2"
		run in_host nft list tables
		refute_output --partial cni_c_fip
	}
	bad 6 'field "floatingIP" must be an IP address or an array' '"floatingIP":42'
	bad 7 'field "floatingIP": "10.200.92.300" is not an IP address' '"floatingIP":"10.200.92.300"'
	bad 7 'field "floatingIP\[1\]": a second IPv4 floating IP' '"floatingIP":["10.200.92.50","10.200.92.51"]'
	bad 7 'field "floatingIP\[0\]": "127.0.0.1" cannot be a floating IP' '"floatingIP":["127.0.0.1"]'
	bad 7 'field "floatingIP": "0.0.0.0" cannot be a floating IP' '"floatingIP":"0.0.0.0"'
	bad 6 'field "floatingIP\[0\]" must be a string, not a number' '"floatingIP":[1]'
	bad 7 'field "floatingIP": more than two' '"floatingIP":["10.200.92.50","fd00::1","10.200.92.51"]'
	bad 6 'field "runtimeConfig.floatingIPs" must be an array' '"runtimeConfig":{"floatingIPs":"10.200.92.50"}'
	bad 7 'field "runtimeConfig.floatingIPs\[0\]": "ff02::1" cannot be' '"runtimeConfig":{"floatingIPs":["ff02::1"]}'
	bad 7 'field "interface": "a/b" is not a valid interface name' '"floatingIP":"10.200.92.50","interface":"a/b"'
	bad 6 'field "addAddress" must be true or false' '"floatingIP":"10.200.92.50","interface":"eth0","addAddress":"yes"'
	bad 7 'field "interface" is required when "addAddress" is true' '"floatingIP":"10.200.92.50","addAddress":true'
	bad 7 'field "interface": there is no interface nope0 on the host' '"floatingIP":"10.200.92.50","interface":"nope0"'
	bad 7 'field "prevResult": no IPv6 address on eth0' '"floatingIP":"fd00:200:91:0:1::50"' "$(jq -c '.ips |= map(select(.address | contains(".")))' <<<"$prev")"
	bad 7 "floating IP 10.200.91.2 is the container's own address" '"floatingIP":"10.200.91.2"'
	bad 7 'field "excludeSubnets\[1\]": "10.0.0.0" is not a prefix' '"floatingIP":"10.200.92.50","excludeSubnets":["10.1.0.0/16","10.0.0.0"]'
	bad 6 'field "excludeSubnets" must be an array' '"floatingIP":"10.200.92.50","excludeSubnets":"10.1.0.0/16"'
	hcni ADD floating-ip '{"cniVersion":"1.0.0","name":"'"$NET"'","type":"floating-ip","floatingIP":"10.200.92.50"}' c1$T
	expect_error 7 'field "prevResult" is required'
	run in_host ip addr show
	refute_output --partial 10.200.92.50
}

@test "no floating IP: ADD passes prevResult through and touches nothing; STATUS passes" {
	attach c1$T ''
	run in_host nft list tables
	refute_output --partial cni_c_fip
	hcni CHECK floating-ip "$(ficonf "$(prev_of c1$T)")" c1$T
	assert_success
	run ip netns exec "$HOSTNS" env CNI_COMMAND=STATUS CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/floating-ip" <<<'{"cniVersion":"1.1.0","name":"x","type":"floating-ip"}'
	assert_success
	run in_host nft list tables
	refute_output --partial cni_c_fip
}

@test "conntrack: flows of a floating IP are flushed when its mapping appears and when it goes" {
	[[ -e /proc/net/nf_conntrack ]] || skip "no /proc/net/nf_conntrack on this kernel"
	# flowto ADDR: one UDP datagram from the outside to ADDR:5353 (source port 40000)
	flowto() { ip netns exec "$OUT" bash -c 'exec 3<>/dev/udp/$0/5353; printf x >&3' "$1" 2>/dev/null || true; }
	tracked() { in_host grep -Eq "udp .*src=10\.200\.92\.2 dst=$1 sport=[0-9]+ dport=5353 .*src=$2 " /proc/net/nf_conntrack; }
	# another attachment first: the host namespace tracks connections from then on
	attach c0$T '"floatingIP":"10.200.91.206"'
	# a flow to the address while it is the host's own
	in_host ip addr add 10.200.91.205/32 dev lo
	flowto 10.200.91.205
	tracked 10.200.91.205 10.200.91.205
	in_host ip addr del 10.200.91.205/32 dev lo
	attach c1$T '"floatingIP":"10.200.91.205"'
	run tracked 10.200.91.205 10.200.91.205
	assert_failure
	# now DNATed to the container; DEL flushes that flow too
	flowto 10.200.91.205
	tracked 10.200.91.205 10.200.91.3
	hcni DEL floating-ip "$(ficonf "$(prev_of c1$T)" '"floatingIP":"10.200.91.205"')" c1$T
	assert_success
	run tracked 10.200.91.205 10.200.91.3
	assert_failure
	# the other attachment's flows stay
	flowto 10.200.91.206
	tracked 10.200.91.206 10.200.91.2
}
