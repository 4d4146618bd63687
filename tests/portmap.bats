#!/usr/bin/env bats
# portmap chained after bridge, against the real kernel: a "host" namespace per test runs the
# plugins, an "outside" namespace is a client on the host's uplink, containers are namespaces;
# traffic is real HTTP (busybox httpd in the container, bash /dev/tcp as client) and UDP.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	OUT=o$T
	BR=br$T
	NET=n$T
	DATA=$BATS_TEST_TMPDIR/ipam
	WWW=$BATS_TEST_TMPDIR/www
	mkdir -p "$WWW"
	echo "hello-$T" >"$WWW/index.html"
	mkns "$HOSTNS"
	mkns "$OUT"
	# the node's uplink: host 10.200.231.1 / fd00:200:e7::1, outside client .2 / ::2
	ip -n "$HOSTNS" link add up$T type veth peer name eth0 netns "$OUT"
	ip -n "$HOSTNS" addr add 10.200.231.1/24 dev up$T
	ip -n "$HOSTNS" addr add fd00:200:e7::1/64 dev up$T nodad
	ip -n "$HOSTNS" link set up$T up
	ip -n "$OUT" addr add 10.200.231.2/24 dev eth0
	ip -n "$OUT" addr add fd00:200:e7::2/64 dev eth0 nodad
	ip -n "$OUT" link set eth0 up
	ip -n "$OUT" route add default via 10.200.231.1
	ip -n "$OUT" -6 route add default via fd00:200:e7::1
	in_host sysctl -qw net.ipv6.conf.all.forwarding=1
}

teardown() {
	[[ -z ${GO:-} ]] || exec {GO}>&-
	[[ -z ${START:-} ]] || exec {START}>&-
	net_teardown
}

DUAL='[[{"subnet":"10.200.230.0/24"}],[{"subnet":"fd00:200:e6::/64"}]]'

brconf() {
	printf '{"cniVersion":"%s","name":"%s","type":"bridge","bridge":"%s","isDefaultGateway":true,"hairpinMode":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":%s}}' \
		"${2:-1.0.0}" "$NET" "$BR" "$DATA" "${1:-$DUAL}"
}

# pmconf PREV MAPPINGS [extra members] [cniVersion]
pmconf() {
	printf '{"cniVersion":"%s","name":"%s","type":"portmap"%s,"runtimeConfig":{"portMappings":%s},"prevResult":%s}' \
		"${4:-1.0.0}" "$NET" "${3:+,$3}" "$2" "$1"
}

# attach NAME MAPPINGS [extra]: bridge then portmap for container NAME; bridge's result in PREV_NAME
attach() {
	mkns "$1"
	hcni ADD bridge "$(brconf)" "$1"
	assert_success
	printf -v "PREV_$1" '%s' "$output"
	local prev=$output
	hcni ADD portmap "$(pmconf "$prev" "$2" "${3:-}")" "$1"
	assert_success
	# the result is prevResult, unchanged
	assert_equal "$(jqo -cS .)" "$(jq -cS . <<<"$prev")"
}

prev_of() { local v=PREV_$1; echo "${!v}"; }

# get NS ADDR PORT: HTTP GET from NS; the body on stdout
get() {
	timeout 5 ip netns exec "$1" bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /index.html HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$2" "$3" 2>/dev/null | tail -1
}

# until_ok SECONDS CMD...: poll CMD until it succeeds; fails after SECONDS
until_ok() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.05
	done
}

# dump NS FILE FILTER: tcpdump in NS (for at most 20 s) writing to FILE; returns once it captures
dump() {
	ip netns exec "$1" timeout 20 tcpdump -i eth0 -n -l "$3" >"$2" 2>"$2.err" &
	until_ok 10 grep -q 'listening on' "$2.err" || fail "tcpdump in $1 did not start: $(cat "$2.err")"
}

# go_fifo: the handshake with a client: the FIFO exists, and this shell holds it open read-write,
# before the client starts. So neither side's open blocks (a read-write open of a FIFO never
# does), a "go" written before the client reads stays in the pipe, and the writer cannot block
# on a missing reader. The client opens it read-write too and waits at most 10 s (read -t).
go_fifo() {
	mkfifo "$BATS_TEST_TMPDIR/go"
	exec {GO}<>"$BATS_TEST_TMPDIR/go"
}

# conntracked HOSTPORT REPLY_SRC: the host has a UDP conntrack entry for HOSTPORT whose reply
# comes from REPLY_SRC (the host itself: not DNATed; the container: DNATed)
conntracked() {
	in_host grep -E "udp .* dport=$1 .*src=$2 dst=10\.200\.231\.2 sport=[0-9]+ " /proc/net/nf_conntrack >/dev/null
}

# what the table holds apart from its skeleton: chains a-*/p-* and map elements
leftovers() { in_host nft list table inet cni_c_portmap 2>/dev/null | grep -E 'chain (a|p)-|jump p-' || true; }

@test "a host port reaches the container from outside, from the host, via 127.0.0.1, over IPv6 and by hairpin" {
	attach c1$T '[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]'
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
	assert_equal "$(get "$OUT" fd00:200:e7::1 18080)" "hello-$T"
	assert_equal "$(get "$HOSTNS" 10.200.231.1 18080)" "hello-$T"
	assert_equal "$(get "$HOSTNS" 127.0.0.1 18080)" "hello-$T"
	assert_equal "$(get "$HOSTNS" 10.200.230.1 18080)" "hello-$T"
	# hairpin: the container reaches itself through the host port
	assert_equal "$(get c1$T 10.200.230.1 18080)" "hello-$T"
	assert_equal "$(get c1$T fd00:200:e6::1 18080)" "hello-$T"
	# a port not mapped stays closed
	[ -z "$(get "$OUT" 10.200.231.1 18081)" ]
	assert_equal "$(in_host cat /proc/sys/net/ipv4/conf/$BR/route_localnet)" 1
	# the outside client was seen through DNAT only (not masqueraded): its own address
	in_host nft list chain inet cni_c_portmap postrouting | grep -q 'masquerade'
}

@test "another container reaches it through the gateway; mappings of two containers coexist" {
	attach c1$T '[{"hostPort":18080,"containerPort":80}]'
	attach c2$T '[{"hostPort":18090,"containerPort":80,"protocol":"TCP"}]'
	httpd c1$T
	echo "other-$T" >"$BATS_TEST_TMPDIR/other.html"
	ip netns exec c2$T busybox httpd -p 80 -h "$BATS_TEST_TMPDIR" -c /dev/null && listening c2$T 80
	cp "$BATS_TEST_TMPDIR/other.html" "$BATS_TEST_TMPDIR/index.html"
	assert_equal "$(get c2$T 10.200.230.1 18080)" "hello-$T"
	assert_equal "$(get "$OUT" 10.200.231.1 18090)" "other-$T"
	assert_equal "$(get c1$T 10.200.231.1 18090)" "other-$T"
}

@test "CHECK passes, then catches a deleted rule, a missing chain and a missing map element" {
	attach c1$T '[{"hostPort":18080,"containerPort":80},{"hostPort":18053,"containerPort":53,"protocol":"udp"}]'
	local conf
	conf=$(pmconf "$(prev_of c1$T)" '[{"hostPort":18080,"containerPort":80},{"hostPort":18053,"containerPort":53,"protocol":"udp"}]')
	hcni CHECK portmap "$conf" c1$T
	assert_success
	# CHECK with other mappings than ADD had fails
	hcni CHECK portmap "$(pmconf "$(prev_of c1$T)" '[{"hostPort":18080,"containerPort":81}]')" c1$T
	expect_error 104 'lacks the rule'
	local chain h
	chain=$(in_host nft list table inet cni_c_portmap | grep -o 'a-[0-9a-f]*-[0-9a-f]*' | sort -u)
	h=$(in_host nft -a list chain inet cni_c_portmap "$chain" | grep 'dnat ip to 10.200.230.2:53' | grep -o 'handle [0-9]*')
	in_host nft delete rule inet cni_c_portmap "$chain" $h
	hcni CHECK portmap "$conf" c1$T
	expect_error 104 'p-udp-18053 dnat 10.200.230.2:53'
	in_host nft delete element inet cni_c_portmap ports '{ tcp . 18080 }'
	hcni ADD portmap "$conf" c1$T
	assert_success
	hcni CHECK portmap "$conf" c1$T
	assert_success
	in_host nft delete element inet cni_c_portmap ports '{ tcp . 18080 }'
	hcni CHECK portmap "$conf" c1$T
	expect_error 104 'no element tcp . 18080'
	in_host nft flush chain inet cni_c_portmap prerouting
	hcni CHECK portmap "$conf" c1$T
	expect_error 104 'altered'
}

@test "DEL removes the container's chain, its port chains and map elements; again, and without config, succeeds" {
	attach c1$T '[{"hostPort":18080,"containerPort":80}]'
	attach c2$T '[{"hostPort":18080,"containerPort":80,"hostIP":"10.200.231.1"},{"hostPort":18443,"containerPort":443}]'
	# c2's hostIP-specific mapping of the shared port comes first in the port chain
	in_host nft list chain inet cni_c_portmap p-tcp-18080 | grep -c jump | grep -qx 2
	hcni DEL portmap "$(pmconf "$(prev_of c2$T)" '[{"hostPort":18080,"containerPort":80,"hostIP":"10.200.231.1"},{"hostPort":18443,"containerPort":443}]')" c2$T
	assert_success
	# c1's mapping stays, and works
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
	run in_host nft list chain inet cni_c_portmap p-tcp-18443
	assert_failure
	# DEL as a runtime sends it after a crash: no prevResult, no runtimeConfig
	hcni DEL portmap "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"type\":\"portmap\"}" c1$T
	assert_success
	assert_equal "$(leftovers)" ""
	[ -z "$(get "$OUT" 10.200.231.1 18080)" ]
	hcni DEL portmap "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"type\":\"portmap\"}" c1$T
	assert_success
}

@test "hostIP: only that address forwards; 0.0.0.0 means every IPv4 address" {
	in_host ip addr add 10.200.231.11/24 dev up$T
	attach c1$T '[{"hostPort":18080,"containerPort":80,"hostIP":"10.200.231.11"},{"hostPort":18081,"containerPort":80,"hostIP":"0.0.0.0"}]'
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.11 18080)" "hello-$T"
	[ -z "$(get "$OUT" 10.200.231.1 18080)" ]
	assert_equal "$(get "$OUT" 10.200.231.1 18081)" "hello-$T"
	[ -z "$(get "$OUT" fd00:200:e7::1 18081)" ]
}

@test "UDP: datagrams reach the container, and a flow that existed before ADD is flushed from conntrack" {
	# another container's mapping first: the nat hooks exist when the early datagram passes, so
	# its conntrack entry is bound (to no NAT) and only a flush lets later ones be DNATed
	attach c0$T '[{"hostPort":18099,"containerPort":80}]'
	mkns c1$T
	hcni ADD bridge "$(brconf)" c1$T
	assert_success
	local prev=$output
	dump c1$T "$BATS_TEST_TMPDIR/dump" 'udp dst port 53'
	go_fifo
	# one socket (one source port) from outside: a datagram before the mapping exists makes a
	# conntrack entry to the host itself, the next ones after ADD must go to the container
	ip netns exec "$OUT" bash -c '
		exec 3<>/dev/udp/10.200.231.1/18053
		echo before >&3
		exec 4<>"$0"
		read -r -t 10 -u 4 _ || exit 3
		for i in 1 2 3; do echo after >&3 2>/dev/null; sleep 0.2; done' "$BATS_TEST_TMPDIR/go" &
	local client=$!
	# the early datagram's entry exists, to the host (10.200.231.1 answers): not DNATed
	until_ok 10 conntracked 18053 '10\.200\.231\.1' || fail "no conntrack entry of the early datagram"
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":18053,"containerPort":53,"protocol":"udp"}]')" c1$T
	assert_success
	echo go >&"$GO"
	wait "$client" || fail "the client failed (status $?: 3 means it never got the go)"
	until_ok 5 grep -q '10.200.231.2\.[0-9]* > 10.200.230.3.53' "$BATS_TEST_TMPDIR/dump" ||
		fail "no datagram reached the container after ADD: $(cat "$BATS_TEST_TMPDIR/dump")"
}

@test "GC removes the chains of attachments not valid, keeps the others" {
	attach c1$T '[{"hostPort":18080,"containerPort":80}]'
	attach c2$T '[{"hostPort":18090,"containerPort":80}]'
	local gc
	gc=$(printf '{"cniVersion":"1.1.0","name":"%s","type":"portmap","cni.dev/valid-attachments":[{"containerID":"c2%s","ifname":"eth0"}]}' "$NET" "$T")
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/portmap" <<<"$gc"
	assert_success
	run in_host nft list chain inet cni_c_portmap p-tcp-18080
	assert_failure
	in_host nft list chain inet cni_c_portmap p-tcp-18090 >/dev/null
	httpd c2$T
	assert_equal "$(get "$OUT" 10.200.231.1 18090)" "hello-$T"
	# another network's GC leaves this one alone
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/portmap" <<<'{"cniVersion":"1.1.0","name":"other","type":"portmap","cni.dev/valid-attachments":[]}'
	assert_success
	in_host nft list chain inet cni_c_portmap p-tcp-18090 >/dev/null
	# two stale attachments on one host port: both go, and with them the port's chain and element
	attach c3$T '[{"hostPort":18070,"containerPort":80}]'
	attach c4$T '[{"hostPort":18070,"containerPort":80}]'
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/portmap" <<<"$gc"
	assert_success
	run in_host nft list chain inet cni_c_portmap p-tcp-18070
	assert_failure
	run in_host nft get element inet cni_c_portmap ports '{ tcp . 18070 }'
	assert_failure
	in_host nft list chain inet cni_c_portmap p-tcp-18090 >/dev/null
}

@test "GC of 300 stale attachments, two per host port and one on a valid one's port: the chain dump spans several replies, every one goes" {
	attach c1$T '[{"hostPort":18080,"containerPort":80}]'
	local i c p nh f=$BATS_TEST_TMPDIR/batch
	nh=$(printf '%s' "$NET" | sha512sum | cut -c1-16)
	# stale attachments as ADD leaves them: the chain, its DNAT rule naming the port chain, the
	# port chain's jump to it and the port's element
	for i in $(seq 1 300); do
		c=a-$nh-$(printf '%016x' "$i")
		p=$((20000 + (i + 1) / 2))
		((i == 300)) && p=18080
		printf 'add chain inet cni_c_portmap %s { comment "net=%s if=eth0 id=stale%d"; }\n' "$c" "$NET" "$i"
		printf 'add rule inet cni_c_portmap %s meta l4proto tcp th dport %d counter comment "p-tcp-%d dnat 10.200.230.99:80"\n' \
			"$c" "$p" "$p"
		if ((i % 2 && p != 18080)); then
			printf 'add chain inet cni_c_portmap p-tcp-%d\n' "$p"
			printf 'add element inet cni_c_portmap ports { tcp . %d : jump p-tcp-%d }\n' "$p" "$p"
		fi
		printf 'insert rule inet cni_c_portmap p-tcp-%d jump %s comment "%s"\n' "$p" "$c" "$c"
	done >"$f"
	in_host nft -f "$f"
	assert_equal "$(in_host nft list table inet cni_c_portmap | grep -c 'chain a-')" 301
	local gc
	gc=$(printf '{"cniVersion":"1.1.0","name":"%s","type":"portmap","cni.dev/valid-attachments":[{"containerID":"c1%s","ifname":"eth0"}]}' "$NET" "$T")
	run ip netns exec "$HOSTNS" env CNI_COMMAND=GC CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/portmap" <<<"$gc"
	assert_success
	run leftovers
	assert_equal "$(grep -c 'chain a-' <<<"$output")" 1
	assert_equal "$(grep -o 'chain p-[a-z]*-[0-9]*' <<<"$output")" "chain p-tcp-18080"
	assert_equal "$(in_host nft -j list map inet cni_c_portmap ports | jq -c '[.nftables[].map? // empty | .elem[][0].concat]')" \
		'[["tcp",18080]]'
	assert_equal "$(in_host nft list chain inet cni_c_portmap p-tcp-18080 | grep -c jump)" 1
	hcni CHECK portmap "$(pmconf "$(prev_of c1$T)" '[{"hostPort":18080,"containerPort":80}]')" c1$T
	assert_success
}

@test "a repeated ADD replaces the mappings; no mappings passes prevResult through and creates nothing" {
	attach c1$T '[{"hostPort":18080,"containerPort":81}]'
	hcni ADD portmap "$(pmconf "$(prev_of c1$T)" '[{"hostPort":18080,"containerPort":80}]')" c1$T
	assert_success
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
	assert_equal "$(in_host nft list table inet cni_c_portmap | grep -c 'dnat ip to')" 1
	mkns c2$T
	hcni ADD bridge "$(brconf)" c2$T
	local prev=$output
	hcni ADD portmap "$(pmconf "$prev" '[]')" c2$T
	assert_success
	assert_equal "$(jqo -cS .)" "$(jq -cS . <<<"$prev")"
	hcni ADD portmap "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"type\":\"portmap\",\"prevResult\":$prev}" c2$T
	assert_success
	assert_equal "$(in_host nft list table inet cni_c_portmap | grep -c 'chain a-')" 1
}

@test "older versions: a 0.3.1 and a 0.4.0 conflist get their prevResult back in their shape" {
	local v
	for v in 0.3.1 0.4.0; do
		mkns c$v$T
		hcni ADD bridge "$(brconf "$DUAL" $v)" c$v$T
		assert_success
		local prev=$output
		hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":18080,"containerPort":80}]' '' $v)" c$v$T
		assert_success
		assert_equal "$(jqo -r .cniVersion)" $v
		assert_equal "$(jqo -cS .ips)" "$(jq -cS .ips <<<"$prev")"
		hcni DEL portmap "$(pmconf "$prev" '[{"hostPort":18080,"containerPort":80}]' '' $v)" c$v$T
		assert_success
	done
	assert_equal "$(leftovers)" ""
}

@test "bad mappings and options are refused naming the field, and nothing is created" {
	mkns c1$T
	hcni ADD bridge "$(brconf)" c1$T
	local prev=$output
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":0,"containerPort":80}]')" c1$T
	expect_error 7 'runtimeConfig.portMappings\[0\].hostPort'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80},{"hostPort":81,"containerPort":70000}]')" c1$T
	expect_error 7 'runtimeConfig.portMappings\[1\].containerPort'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80,"protocol":"icmp"}]')" c1$T
	expect_error 7 'portMappings\[0\].protocol.*icmp'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80,"hostIP":"300.1.1.1"}]')" c1$T
	expect_error 7 'portMappings\[0\].hostIP'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":"80","containerPort":80}]')" c1$T
	expect_error 6 'portMappings\[0\].hostPort'
	hcni ADD portmap "$(pmconf "$prev" '[{"containerPort":80}]')" c1$T
	expect_error 7 'portMappings\[0\].hostPort. is required'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"backend":"pf"')" c1$T
	expect_error 7 'backend'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"externalSetMarkChain":"KUBE-MARK-MASQ","markMasqBit":13')" c1$T
	expect_error 7 '"externalSetMarkChain" and "markMasqBit" cannot both be set'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"backend":"nftables","externalSetMarkChain":"KUBE-MARK-MASQ"')" c1$T
	expect_error 7 'externalSetMarkChain.*needs the iptables backend'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"conditionsV4":["-s","10.0.0.0/8","-j","ACCEPT"]')" c1$T
	expect_error 7 'conditionsV4\[2\].*"-j" cannot be part of an iptables match'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"backend":"iptables","externalSetMarkChain":"-X"')" c1$T
	expect_error 7 'externalSetMarkChain.*not an iptables chain name'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"markMasqBit":32')" c1$T
	expect_error 7 'markMasqBit'
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"conditionsV4":["ip saddr 1.2.3.4\nflush ruleset"]')" c1$T
	expect_error 7 'conditionsV4\[0\]'
	# nftables syntax, but not of the vocabulary the rules are written in
	hcni ADD portmap "$(pmconf "$prev" '[{"hostPort":80,"containerPort":80}]' '"conditionsV6":["ip6 saddr ::1","ct state established"]')" c1$T
	expect_error 7 'conditionsV6\[1\].*ct state established'
	hcni ADD portmap "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"type\":\"portmap\",\"runtimeConfig\":{\"portMappings\":[{\"hostPort\":80,\"containerPort\":80}]}}" c1$T
	expect_error 7 'prevResult'
	run in_host nft list table inet cni_c_portmap
	assert_failure
	run in_host iptables-save -t nat
	refute_output --partial CNI-
}

@test "conditionsV4, snat false, masqAll and markMasqBit shape the rules" {
	attach c1$T '[{"hostPort":18080,"containerPort":80}]' '"snat":false,"conditionsV4":["ip saddr 10.200.231.0/24"],"conditionsV6":["ip6 saddr fd00:200:e7::/64"]'
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
	# not from the host's own addresses: the condition excludes them
	[ -z "$(get "$HOSTNS" 10.200.230.1 18080)" ]
	run in_host nft list table inet cni_c_portmap
	refute_output --partial 'meta mark set'
	attach c2$T '[{"hostPort":18090,"containerPort":80}]' '"masqAll":true,"markMasqBit":5'
	in_host nft list table inet cni_c_portmap | grep -q 'meta mark & 0x00000020 == 0x00000020 masquerade'
	in_host nft list table inet cni_c_portmap | grep -q 'meta mark set meta mark | 0x00000020 comment "p-tcp-18090 masqAll"'
}

@test "STATUS is ready where nf_tables works; VERSION lists 1.1.0" {
	run ip netns exec "$HOSTNS" env CNI_COMMAND=STATUS CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/portmap" <<<'{"cniVersion":"1.1.0","name":"x","type":"portmap"}'
	assert_success
	run in_host nft list table inet cni_c_portmap
	assert_failure
	run env CNI_COMMAND=VERSION "$PLUGIN_DIR/portmap" <<<'{}'
	assert_success
	jqo -e '.supportedVersions | index("1.1.0")' >/dev/null
}

@test "least privilege: ADD, CHECK and DEL with only CAP_NET_ADMIN in the bounding set; it keeps only that" {
	require setpriv
	mkns c1$T
	hcni ADD bridge "$(brconf)" c1$T
	assert_success
	local conf v
	conf=$(pmconf "$output" '[{"hostPort":18080,"containerPort":80}]')
	for v in ADD CHECK DEL; do
		run ip netns exec "$HOSTNS" setpriv --bounding-set=-all,+net_admin -- env CNI_COMMAND=$v CNI_CONTAINERID=c1$T \
			CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c1$T CNI_PATH="$PLUGIN_DIR" CNI_TEST_CAPS_OUT="$BATS_TEST_TMPDIR/caps" \
			"$PLUGIN_DIR/portmap" <<<"$conf"
		assert_success
	done
	assert_equal "$(leftovers)" ""
	if nm "$PLUGIN_DIR/portmap" | grep -q cni_fault; then
		# a test build wrote its effective set during the verbs: CAP_NET_ADMIN (bit 12) only
		grep -q '^CapEff:	0000000000001000$' "$BATS_TEST_TMPDIR/caps" || { cat "$BATS_TEST_TMPDIR/caps"; false; }
	fi
}

@test "UDP: DEL flushes the mapped port's conntrack entries, so a live flow stops reaching the old container" {
	attach c1$T '[{"hostPort":18053,"containerPort":53,"protocol":"udp"}]'
	local conf
	conf=$(pmconf "$(prev_of c1$T)" '[{"hostPort":18053,"containerPort":53,"protocol":"udp"}]')
	dump c1$T "$BATS_TEST_TMPDIR/dump" 'udp dst port 53'
	# c1 has no listener: its port-unreachable answers would fail the client's next write (one
	# datagram of two would not leave); c1 keeps them to itself
	ip netns exec c1$T nft 'add table ip q; add chain ip q o { type filter hook output priority 0; }; add rule ip q o icmp type destination-unreachable drop'
	go_fifo
	# one socket (one source port): datagrams before DEL are DNATed to c1 and make a conntrack entry
	ip netns exec "$OUT" bash -c '
		exec 3<>/dev/udp/10.200.231.1/18053
		for i in 1 2; do echo before >&3 2>/dev/null; sleep 0.2; done
		exec 4<>"$0"
		read -r -t 10 -u 4 _ || exit 3
		for i in 1 2 3; do echo after >&3 2>/dev/null; sleep 0.2; done' "$BATS_TEST_TMPDIR/go" &
	local client=$!
	# the flow reaches c1 before DEL: both datagrams, through a DNATed entry
	until_ok 10 eval '[[ $(grep -c "> 10.200.230.2.53" "$BATS_TEST_TMPDIR/dump") == 2 ]]' ||
		fail "the datagrams before DEL did not reach c1: $(cat "$BATS_TEST_TMPDIR/dump")"
	conntracked 18053 '10\.200\.230\.2'
	hcni DEL portmap "$conf" c1$T
	assert_success
	echo go >&"$GO"
	wait "$client" || fail "the client failed (status $?: 3 means it never got the go)"
	# the datagrams after DEL reached the host and made a new entry, to the host itself...
	until_ok 5 conntracked 18053 '10\.200\.231\.1' || fail "no new conntrack entry after DEL: $(in_host cat /proc/net/nf_conntrack)"
	# ...and nothing more reached the container
	assert_equal "$(grep -c '> 10.200.230.2.53' "$BATS_TEST_TMPDIR/dump")" 2
}

@test "two containers claiming one host port: the most recent wins (as the reference); after its DEL the older one serves again" {
	attach c1$T '[{"hostPort":18080,"containerPort":80}]'
	# the port's map element deleted by hand: the next ADD on that port restores it (its chain
	# still being there is no proof of the element)
	in_host nft delete element inet cni_c_portmap ports '{ tcp . 18080 }'
	attach c2$T '[{"hostPort":18080,"containerPort":80}]'
	in_host nft get element inet cni_c_portmap ports '{ tcp . 18080 }' >/dev/null
	httpd c1$T
	echo "second-$T" >"$BATS_TEST_TMPDIR/index.html"
	httpd c2$T "$BATS_TEST_TMPDIR"
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "second-$T"
	hcni DEL portmap "$(pmconf "$(prev_of c2$T)" '[{"hostPort":18080,"containerPort":80}]')" c2$T
	assert_success
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
}

# pm_bg VERB NS CONF: portmap VERB for container NS, for running in the background: it gets
# ready (ip netns exec and a shell are slow to start, 5-40 ms apart), says so in
# $BATS_TEST_TMPDIR/ready.NS and waits for a line on the start FIFO (start_all) before it execs
# the plugin, so the plugins of one start_all run at the same moment. Output in
# $BATS_TEST_TMPDIR/pm.NS, exit status in $BATS_TEST_TMPDIR/rc.NS.
pm_bg() {
	local rc=0
	rm -f "$BATS_TEST_TMPDIR/ready.$2"
	ip netns exec "$HOSTNS" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$2 \
		CNI_PATH="$PLUGIN_DIR" bash -c 'exec 5<>"$0"; : >"$1"; read -r -t 30 -u 5 _ || exit 99; exec 5>&-; exec "$2"' \
		"$BATS_TEST_TMPDIR/start" "$BATS_TEST_TMPDIR/ready.$2" "$PLUGIN_DIR/portmap" <<<"$3" >"$BATS_TEST_TMPDIR/pm.$2" 2>&1 || rc=$?
	echo $rc >"$BATS_TEST_TMPDIR/rc.$2"
}

# start_all NS...: once every one of them is ready, start them all (one line each on the FIFO,
# which this shell holds open read-write: no open blocks, no line is lost, nothing hangs)
start_all() {
	local end=$((SECONDS + 30)) x
	[[ -n ${START:-} ]] || exec {START}<>"$BATS_TEST_TMPDIR/start"
	for x in "$@"; do
		until [[ -e $BATS_TEST_TMPDIR/ready.$x ]]; do
			((SECONDS < end)) || fail "$x never got ready"
			sleep 0.01
		done
	done
	printf 'go\n%.0s' "$@" >&"$START"
}

# map_ports: the host ports in the table's map, sorted
map_ports() { in_host nft list map inet cni_c_portmap ports | grep -o 'tcp \. [0-9]*' | awk '{print $3}' | sort -n | tr '\n' ' '; }

@test "12 containers map their own host port at once: all mapped, each port reaches its container; 12 DELs at once leave the map empty" {
	local i n=12 want='' ctrs=()
	for i in $(seq 1 $n); do
		mkns c$i$T
		ctrs+=(c$i$T)
		hcni ADD bridge "$(brconf)" c$i$T
		assert_success
		printf -v "PREV_c$i$T" '%s' "$output"
		mkdir -p "$BATS_TEST_TMPDIR/w$i"
		echo "c$i-$T" >"$BATS_TEST_TMPDIR/w$i/index.html"
		ip netns exec c$i$T busybox httpd -p 80 -h "$BATS_TEST_TMPDIR/w$i"
		want+="$((18100 + i)) "
	done
	# every portmap ADD at once (one table, one map: the first ones also race to create it)
	mkfifo "$BATS_TEST_TMPDIR/start"
	for i in $(seq 1 $n); do
		pm_bg ADD c$i$T "$(pmconf "$(prev_of c$i$T)" "[{\"hostPort\":$((18100 + i)),\"containerPort\":80}]")" &
	done
	start_all "${ctrs[@]}"
	wait
	for i in $(seq 1 $n); do
		[[ $(cat "$BATS_TEST_TMPDIR/rc.c$i$T") == 0 ]] || fail "ADD c$i$T: $(cat "$BATS_TEST_TMPDIR/pm.c$i$T")"
	done
	assert_equal "$(map_ports)" "$want"
	assert_equal "$(in_host nft list table inet cni_c_portmap | grep -c 'chain a-')" $n
	# each host port reaches its own container, from outside and from the host
	for i in $(seq 1 $n); do
		assert_equal "$(get "$OUT" 10.200.231.1 $((18100 + i)))" "c$i-$T"
	done
	assert_equal "$(get "$HOSTNS" 127.0.0.1 18107)" "c7-$T"
	# every DEL at once
	for i in $(seq 1 $n); do
		pm_bg DEL c$i$T "$(pmconf "$(prev_of c$i$T)" "[{\"hostPort\":$((18100 + i)),\"containerPort\":80}]")" &
	done
	start_all "${ctrs[@]}"
	wait
	for i in $(seq 1 $n); do
		[[ $(cat "$BATS_TEST_TMPDIR/rc.c$i$T") == 0 ]] || fail "DEL c$i$T: $(cat "$BATS_TEST_TMPDIR/pm.c$i$T")"
	done
	assert_equal "$(map_ports)" ""
	assert_equal "$(leftovers)" ""
	for i in 1 $n; do
		[ -z "$(get "$OUT" 10.200.231.1 $((18100 + i)))" ]
	done
}

# ipt_state: the nat tables of both families as iptables-save prints them, without counters
ipt_state() { in_host iptables-save -t nat | grep -v -e '^#' -e '^:'; in_host ip6tables-save -t nat | grep -v -e '^#' -e '^:'; }

@test "backend iptables: the reference's own chains, rule for rule; host ports reach the container from outside, the host, 127.0.0.1, IPv6 and by hairpin; CHECK; DEL" {
	require "$REF_DIR/portmap" iptables iptables-save ip6tables-save
	local maps='[{"hostPort":18080,"containerPort":80,"protocol":"tcp"},{"hostPort":18443,"containerPort":80,"protocol":"tcp","hostIP":"10.200.231.1"},{"hostPort":15353,"containerPort":53,"protocol":"udp"}]'
	local x='"backend":"iptables","conditionsV4":["!","-s","10.200.231.99/32"]' conf ours ref
	attach c1$T "$maps" "$x"
	conf=$(pmconf "$(prev_of c1$T)" "$maps" "$x")
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
	assert_equal "$(get "$OUT" 10.200.231.1 18443)" "hello-$T"
	assert_equal "$(get "$OUT" fd00:200:e7::1 18080)" "hello-$T"
	assert_equal "$(get "$HOSTNS" 127.0.0.1 18080)" "hello-$T"
	assert_equal "$(get c1$T 10.200.230.1 18080)" "hello-$T"
	# hostIP: only that address forwards that port
	[ -z "$(get "$HOSTNS" 10.200.230.1 18443)" ]
	[ -z "$(get "$OUT" fd00:200:e7::1 18443)" ]
	# nothing in our nf_tables table: the rules are iptables'
	run in_host nft list table inet cni_c_portmap
	assert_failure
	hcni CHECK portmap "$conf" c1$T
	assert_success
	ours=$(ipt_state)
	# the reference plugin, given the same config for the same container, writes the same
	hcni DEL portmap "$conf" c1$T
	assert_success
	[ -z "$(get "$OUT" 10.200.231.1 18080)" ]
	[[ $(ipt_state) != *CNI-DN-* ]] || fail "DEL left: $(ipt_state | grep CNI-DN-)"
	run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=c1$T CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c1$T \
		CNI_PATH="$REF_DIR" "$REF_DIR/portmap" <<<"$conf"
	assert_success
	ref=$(ipt_state)
	assert_equal "$ours" "$ref"
	# each removes the other's: ours the reference's here, the reference ours below
	hcni DEL portmap "$conf" c1$T
	assert_success
	[[ $(ipt_state) != *CNI-DN-* ]]
	hcni ADD portmap "$conf" c1$T
	assert_success
	run ip netns exec "$HOSTNS" env CNI_COMMAND=DEL CNI_CONTAINERID=c1$T CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c1$T \
		CNI_PATH="$REF_DIR" "$REF_DIR/portmap" <<<"$conf"
	assert_success
	[[ $(ipt_state) != *CNI-DN-* ]]
	[ -z "$(get "$OUT" 10.200.231.1 18080)" ]
}

@test "backend iptables: CHECK fails naming a deleted DNAT rule, a missing chain and a missing jump; GC removes only this network's stale containers" {
	require iptables iptables-save
	local maps='[{"hostPort":18080,"containerPort":80}]' x='"backend":"iptables"' conf chain
	attach c1$T "$maps" "$x"
	conf=$(pmconf "$(prev_of c1$T)" "$maps" "$x")
	hcni CHECK portmap "$conf" c1$T
	assert_success
	chain=$(in_host iptables-save -t nat | grep -o 'CNI-DN-[0-9a-f]*' | head -1)
	in_host iptables -t nat -D "$chain" -p tcp --dport 18080 -j DNAT --to-destination "$(jq -r '.ips[0].address' <<<"$(prev_of c1$T)" | cut -d/ -f1):80"
	hcni CHECK portmap "$conf" c1$T
	expect_error 104 'rule of the container.s chain.*DNAT'
	hcni ADD portmap "$conf" c1$T
	assert_success
	hcni CHECK portmap "$conf" c1$T
	assert_success
	in_host iptables -t nat -F CNI-HOSTPORT-DNAT
	hcni CHECK portmap "$conf" c1$T
	expect_error 104 'jump to the container.s chain'
	in_host iptables -t nat -F "$chain"
	in_host iptables -t nat -X "$chain"
	hcni CHECK portmap "$conf" c1$T
	expect_error 104 "no chain $chain"
	hcni ADD portmap "$conf" c1$T
	assert_success
	# GC: c1 valid, c2 stale, c3 of another network stays
	attach c2$T '[{"hostPort":18081,"containerPort":80}]' "$x"
	mkns c3$T
	hcni ADD portmap "$(pmconf "$(prev_of c2$T)" '[{"hostPort":18082,"containerPort":80}]' "$x" | jq -c '.name="other"')" c3$T
	assert_success
	assert_equal "$(in_host iptables -t nat -S CNI-HOSTPORT-DNAT | grep -c -- '-j CNI-DN-')" 3
	hcni GC portmap "$(pmconf "$(prev_of c1$T)" '[]' "$x" 1.1.0 | jq -c --arg c c1$T '."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}] | del(.prevResult)')" c1$T
	assert_success
	run in_host iptables -t nat -S CNI-HOSTPORT-DNAT
	assert_output --partial "id: \\\"c1$T\\\""
	refute_output --partial "id: \\\"c2$T\\\""
	assert_output --partial 'name: \"other\"'
	assert_equal "$(in_host iptables-save -t nat | grep -c '^:CNI-DN-')" 2
}

@test "the cni.dev example config (iptables-style conditions, externalSetMarkChain, no backend) runs on the iptables backend, as on the reference; the conditions apply" {
	require iptables iptables-save
	# what Kubernetes keeps: a mark chain and the masquerade of marked packets
	in_host iptables -t nat -N KUBE-MARK-MASQ
	in_host iptables -t nat -A KUBE-MARK-MASQ -j MARK --set-xmark 0x4000/0x4000
	in_host iptables -t nat -A POSTROUTING -m mark --mark 0x4000/0x4000 -j MASQUERADE
	in_host ip6tables -t nat -N KUBE-MARK-MASQ
	local maps='[{"hostPort":18080,"containerPort":80}]'
	local x='"snat":true,"externalSetMarkChain":"KUBE-MARK-MASQ","conditionsV4":["!","-d","10.200.230.1/32"],"conditionsV6":["!","-d","fc00::/7"]'
	attach c1$T "$maps" "$x"
	httpd c1$T
	assert_equal "$(get "$OUT" 10.200.231.1 18080)" "hello-$T"
	assert_equal "$(get c1$T 10.200.231.1 18080)" "hello-$T" # hairpin, marked through KUBE-MARK-MASQ
	# the condition excludes the bridge address as a destination: not forwarded there
	[ -z "$(get "$HOSTNS" 10.200.230.1 18080)" ]
	in_host iptables -t nat -S | grep -q -- '-j KUBE-MARK-MASQ'
	run in_host iptables -t nat -S CNI-HOSTPORT-SETMARK
	assert_failure
	hcni CHECK portmap "$(pmconf "$(prev_of c1$T)" "$maps" "$x")" c1$T
	assert_success
	hcni DEL portmap "$(pmconf "$(prev_of c1$T)" "$maps" "$x")" c1$T
	assert_success
	[ -z "$(get "$OUT" 10.200.231.1 18080)" ]
}

@test "DEL removes the reference portmap's iptables chain of the container (a node switching over)" {
	require "$REF_DIR/portmap" iptables iptables-save
	mkns c1$T
	hcni ADD bridge "$(brconf "$DUAL" 0.4.0)" c1$T
	assert_success
	local conf
	conf=$(pmconf "$output" '[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]' '' 0.4.0)
	run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID=c1$T CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/c1$T \
		CNI_PATH="$REF_DIR" "$REF_DIR/portmap" <<<"$conf"
	assert_success
	in_host iptables-save -t nat | grep -q -- '-A CNI-HOSTPORT-DNAT .* -j CNI-DN-'
	hcni DEL portmap "$conf" c1$T
	assert_success
	run in_host iptables-save -t nat
	refute_output --partial 'CNI-DN-'
	# and a second DEL finds nothing to do
	hcni DEL portmap "$conf" c1$T
	assert_success
}
