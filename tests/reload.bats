#!/usr/bin/env bats
# `cnitool reload` after a firewall reload: every live attachment in the runtime's result cache
# gets its host-side rules (SNAT, spoof check, host ports) back, through each plugin's RELOAD, with
# real traffic before the wipe, none after it, and all of it again after the reload. A "host"
# namespace is the node (its own ruleset), an "outside" namespace a client on its uplink, and the
# containers are namespaces; the cache is the test's own (--cache-dir).

bats_require_minimum_version 1.5.0

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	OUT=o$T
	BR=br$T
	NET=n$T
	NETDIR=$BATS_TEST_TMPDIR/net.d
	CACHE=$BATS_TEST_TMPDIR/cache
	DATA=$BATS_TEST_TMPDIR/ipam
	WWW=$BATS_TEST_TMPDIR/www
	mkdir -p "$NETDIR" "$WWW"
	echo "hello-$T" >"$WWW/index.html"
	mkns "$HOSTNS"
	mkns "$OUT"
	# the node's uplink: host 10.200.71.1, outside .2; the outside has no route to the containers'
	# 10.200.70.0/24, so a container reaches it only through SNAT
	ip -n "$HOSTNS" link add up$T type veth peer name eth0 netns "$OUT"
	ip -n "$HOSTNS" addr add 10.200.71.1/24 dev up$T
	ip -n "$HOSTNS" link set up$T up
	ip -n "$OUT" addr add 10.200.71.2/24 dev eth0
	ip -n "$OUT" link set eth0 up
}

teardown() {
	net_teardown
}

# ct ARGS...: our cnitool in the host namespace (NETCONFPATH, CNI_PATH, the test's cache); CAP_ARGS
# passes through. stdout in $output, stderr in $stderr.
ct() {
	run --separate-stderr ip netns exec "$HOSTNS" env NETCONFPATH="$NETDIR" CNI_PATH="${CT_PATH:-$PLUGIN_DIR}" \
		"$PLUGIN_DIR/cnitool" --cache-dir "$CACHE" "$@"
	if [[ $status == 86 ]] || grep -q -e 'Sanitizer' -e 'runtime error:' <<<"$stderr"; then
		echo "sanitizer error in cnitool $*:" >&2
		echo "$stderr" >&2
		return 1
	fi
}

# netconf [bridge members] [more plugins]: the network: bridge with SNAT and the spoof check, portmap
netconf() {
	printf '{"cniVersion":"%s","name":"%s","plugins":[{"type":"bridge","bridge":"%s","isDefaultGateway":true,"ipMasq":true,"macspoofchk":true%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.70.0/24"}]]}},{"type":"portmap","capabilities":{"portMappings":true}}%s]}\n' \
		"${V:-1.1.0}" "$NET" "$BR" "${1:+,$1}" "$DATA" "${2:+,$2}" >"$NETDIR/$NET.conflist"
}

# attach NS [hostPort]: ADD through cnitool, host port -> 80 in the container
attach() {
	mkns "$1"
	CAP_ARGS="{\"portMappings\":[{\"hostPort\":${2:-8080},\"containerPort\":80,\"protocol\":\"tcp\"}]}" ct add "$NET" "/var/run/netns/$1"
	[[ $status == 0 ]] || fail "cnitool add $1: $stderr"
}

# get ADDR PORT: HTTP GET from the outside; the body on stdout
get() {
	timeout 5 ip netns exec "$OUT" bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET /index.html HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$1" "$2" 2>/dev/null | tail -1
}
# traffic NS [PORT]: the container pings the outside (only possible through SNAT) and the outside
# fetches from the container through the host port; "ok ok", or what failed
traffic() {
	local a=no b=no
	ping_ok "$1" 10.200.71.2 && a=ok
	[[ $(get 10.200.71.1 "${2:-8080}") == "hello-$T" ]] && b=ok
	echo "snat:$a hostport:$b"
}
# the ruleset as nft prints it (no handles), table by table in name order (a reload creates the
# tables in its own order): what reload must restore exactly
ruleset() {
	in_host nft list tables | sort | while read -r _ fam name; do in_host nft list table "$fam" "$name"; done
}

@test "after nft flush ruleset, cnitool reload restores SNAT, the spoof check and the host port: real traffic before, none after the flush, all after the reload; idempotent" {
	netconf
	attach c1$T
	httpd c1$T
	assert_equal "$(traffic c1$T)" "snat:ok hostport:ok"
	local before
	before=$(ruleset)
	[[ $before == *masquerade* && $before == *"ether saddr"* && $before == *dnat* ]] || fail "rules missing after ADD: $before"

	# reload with nothing wiped changes nothing
	ct reload
	assert_success
	assert_equal "$(ruleset)" "$before"

	in_host nft flush ruleset
	assert_equal "$(traffic c1$T)" "snat:no hostport:no"
	ct check "$NET" /var/run/netns/c1$T
	assert_failure

	ct reload
	assert_success
	assert_line --regexp "^$NET cnitool-[0-9a-f]{20} eth0: reloaded$"
	assert_line "1 reloaded, 0 skipped, 0 failed"
	assert_equal "$(ruleset)" "$before"
	assert_equal "$(traffic c1$T)" "snat:ok hostport:ok"
	ct check "$NET" /var/run/netns/c1$T
	assert_success

	# again: the same ruleset, and the spoof check still drops a forged source MAC after the reload
	ct reload
	assert_success
	assert_equal "$(ruleset)" "$before"
	ip -n c1$T link set eth0 address 02:00:00:de:ad:01
	run ping_ok c1$T 10.200.70.1
	assert_failure

	ct del "$NET" /var/run/netns/c1$T
	assert_success
	run in_host nft list ruleset
	refute_output --partial 'chain a-'
	refute_output --partial 'chain s-'
}

@test "reload leaves everything else alone: a table of another tool, and attachments of a network not named" {
	netconf
	attach c1$T
	in_host nft -f - <<EOF
table inet other$T {
	chain input { type filter hook input priority 0; policy accept; tcp dport 9 counter drop comment "not ours"; }
}
EOF
	local before
	before=$(ruleset)
	in_host nft flush chain inet cni_c_masq postrouting
	# named for another network: nothing of this one is reloaded
	ct reload other-net
	assert_success
	assert_line "0 reloaded, 0 skipped, 0 failed"
	[[ $(ruleset) != "$before" ]] || fail "the damage is not visible"
	ct reload "$NET"
	assert_success
	assert_line "1 reloaded, 0 skipped, 0 failed"
	assert_equal "$(ruleset)" "$before"
	in_host nft list table inet other$T | grep -q 'comment "not ours"'
}

@test "reload: an attachment whose netns is gone is skipped and reported, a plugin that is not ours is passed over and named, the rest reloaded" {
	# the reference tuning plugin after ours: it does not know RELOAD (Debian's serves up to 1.0.0)
	V=1.0.0 netconf '' '{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.rp_filter":"2"}}'
	CT_PATH=$PLUGIN_DIR:$REF_DIR
	attach c1$T 8080
	attach c2$T 8081
	httpd c1$T
	ip netns del c2$T
	in_host nft flush ruleset
	ct reload
	assert_success
	assert_line --regexp "^$NET cnitool-[0-9a-f]{20} eth0: skipped: its netns /var/run/netns/c2$T is gone$"
	assert_line --regexp "^$NET cnitool-[0-9a-f]{20} eth0: reloaded \(plugins without RELOAD, left as they are: tuning\)$"
	assert_line "1 reloaded, 1 skipped, 0 failed"
	assert_equal "$(traffic c1$T)" "snat:ok hostport:ok"
	# the gone attachment got nothing back: only c1's chains exist
	assert_equal "$(in_host nft list table inet cni_c_masq | grep -c 'chain a-')" 1
}

@test "reload reads the netns from the result when the cache has none (older libcni), and fails plainly on a cache entry it cannot use" {
	netconf
	attach c1$T
	httpd c1$T
	local f
	f=$(ls "$CACHE"/results/"$NET"-*)
	jq -c 'del(.netns)' "$f" >"$f.new" && mv "$f.new" "$f"
	in_host nft flush ruleset
	ct reload
	assert_success
	assert_line "1 reloaded, 0 skipped, 0 failed"
	assert_equal "$(traffic c1$T)" "snat:ok hostport:ok"
	# a cached result without the container's interface: no netns to be found, then (with the
	# cache's netns) RELOAD refuses it and the tool says so
	jq -c '.result.interfaces |= map(if .sandbox then .name = "eth9" else . end)' "$f" >"$f.new" && mv "$f.new" "$f"
	in_host nft flush ruleset
	ct reload
	assert_success
	assert_line --regexp "^$NET cnitool-[0-9a-f]{20} eth0: skipped: its netns \(not recorded\) is gone$"
	jq -c '.netns="/var/run/netns/c1'"$T"'"' "$f" >"$f.new" && mv "$f.new" "$f"
	ct reload
	assert_failure
	assert_line --regexp "^$NET cnitool-[0-9a-f]{20} eth0: failed: plugin bridge: invalid config: prevResult has no interface eth0 in a sandbox$"
	assert_line "0 reloaded, 0 skipped, 1 failed"
	[[ $stderr == *"1 attachment could not be reloaded"* ]] || fail "stderr: $stderr"
}

@test "reload with ipMasqBackend iptables: after the nat table is flushed, SNAT comes back" {
	netconf '"ipMasqBackend":"iptables"'
	attach c1$T
	httpd c1$T
	assert_equal "$(traffic c1$T)" "snat:ok hostport:ok"
	local before
	before=$(in_host iptables -t nat -S | sort)
	[[ $before == *MASQUERADE* ]] || fail "no iptables SNAT: $before"
	in_host iptables -t nat -F
	in_host iptables -t nat -X
	assert_equal "$(traffic c1$T)" "snat:no hostport:ok"
	ct reload
	assert_success
	assert_equal "$(in_host iptables -t nat -S | sort)" "$before"
	assert_equal "$(traffic c1$T)" "snat:ok hostport:ok"
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	run in_host iptables -t nat -S
	refute_output --partial 'CNI-'
}

@test "the RELOAD verb: needs prevResult (code 7 naming it); loopback has nothing to reload; an unknown verb is still refused" {
	mkns c1$T
	local conf
	conf=$(jq -c '.plugins[0] + {cniVersion:"1.1.0",name:"'"$NET"'"}' <<<"$(netconf && cat "$NETDIR/$NET.conflist")")
	hcni RELOAD bridge "$conf" c1$T
	expect_error 7 'prevResult'
	hcni RELOAD loopback '{"cniVersion":"1.1.0","name":"lo","type":"loopback","prevResult":{"cniVersion":"1.1.0"}}' c1$T
	assert_success
	assert_output ''
	hcni FROB bridge "$conf" c1$T
	expect_error 4 'unknown CNI_COMMAND: FROB'
	# and nothing was made by any of it
	run in_host nft list tables
	assert_output ''
	run in_host ip -o link show type bridge
	assert_output ''
}

@test "reload for vxlan: the overlay's SNAT and spoof check come back after a flush; traffic out through SNAT again" {
	cat >"$NETDIR/$NET.conflist" <<EOF2
{"cniVersion":"1.1.0","name":"$NET","plugins":[{"type":"vxlan","vni":70,"underlayDevice":"up$T","peers":["10.200.71.2"],"isGateway":true,"isDefaultGateway":true,"ipMasq":true,"macspoofchk":true,"ipam":{"type":"host-local","dataDir":"$DATA","ranges":[[{"subnet":"10.200.72.0/24"}]]}}]}
EOF2
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	ping_ok c1$T 10.200.71.2
	local before
	before=$(ruleset)
	[[ $before == *masquerade* && $before == *"ether saddr"* ]] || fail "rules missing after ADD: $before"
	in_host nft flush ruleset
	run ping_ok c1$T 10.200.71.2
	assert_failure
	ct reload
	assert_success
	assert_line "1 reloaded, 0 skipped, 0 failed"
	assert_equal "$(ruleset)" "$before"
	ping_ok c1$T 10.200.71.2
	ct del "$NET" /var/run/netns/c1$T
	assert_success
}
