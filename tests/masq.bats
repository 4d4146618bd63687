#!/usr/bin/env bats
# common/masq, spoofchk, nft and sha512 against the real kernel, driven by test-tools/masq-tool
# run inside throw-away namespaces: table layouts, idempotence, DEL without addresses, CHECK,
# GC, the reference plugin's iptables and nftables layouts, and real SNAT / spoofed traffic.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	P=mq$T # prefix of every namespace this test makes
	NET=n$T
	MT=$PLUGIN_DIR/test-tools/masq-tool
	[ -x "$MT" ] || fail "$MT is missing: make $(basename "$PLUGIN_DIR")/test-tools/masq-tool (SAN=1 BUILD=build-asan for the ASan lane)"
	NS=${P}h
	mkns "$NS"
}

teardown() {
	net_teardown
}

# mt ARGS...: masq-tool inside $NS (MTNS overrides); output/status as bats' run.
mt() {
	run ip netns exec "${MTNS:-$NS}" "$MT" "$@"
	if [[ $status == 86 ]]; then
		echo "sanitizer error in masq-tool $*:" >&2
		echo "$output" >&2
		return 1
	fi
}

# mt_ok ARGS...: mt that must succeed with no output.
mt_ok() {
	mt "$@"
	[[ $status == 0 ]] || fail "masq-tool $* failed ($status): $output"
}

# mt_err CODE REGEX: the last mt failed with that code and a message matching REGEX.
mt_err() {
	assert_equal "$status" 1
	local code msg
	code=$(jq -r .code <<<"$output") || fail "not JSON: $output"
	msg=$(jq -r .msg <<<"$output")
	[[ $code == "$1" ]] || fail "want code $1, got $code: $msg"
	[[ $msg =~ $2 ]] || fail "msg \"$msg\" does not match /$2/"
}

in_ns() { ip netns exec "$NS" "$@"; }
h16() { printf '%s' "$1" | sha512sum | cut -c1-"${2:-16}"; }
# achain NET CID IFNAME: our attachment chain's name
achain() { echo "a-$(h16 "$1")-$(h16 "$3:$2")"; }
# attachment chains of table inet cni_c_masq, sorted
chains() { in_ns nft -j list chains inet | jq -r '.nftables[].chain? // empty | select(.table=="cni_c_masq" and (.name|startswith("a-"))) | .name' | sort; }
# elems MAP: "address chain" per element, sorted
elems() { in_ns nft -j list map inet cni_c_masq "$1" | jq -r '.nftables[].map? // empty | .elem // [] | .[] | "\(.[0]) \(.[1].goto.target)"' | sort; }
# rules CHAIN: the rules of a chain of ours, one line each, without handles
rules() { in_ns nft list chain inet cni_c_masq "$1" | sed 's/^\s*//' | grep -v -e '^table ' -e '^chain ' -e '^type ' -e '^}'; }

@test "sha512 matches sha512sum for every length across the padding boundaries" {
	local f=$BATS_TEST_TMPDIR/data n want got
	head -c 300 /dev/urandom >"$f"
	# every prefix, lengths 0 to 300 (the padding boundaries at 111/112 and 239/240 bytes), in one
	# run of each side; the 300-byte one also through sha512sum
	"$MT" hash-prefixes 128 <"$f" >"$BATS_TEST_TMPDIR/got"
	perl -MDigest::SHA=sha512_hex -e 'local $/; my $d = <STDIN>; print sha512_hex(substr($d, 0, $_)), "\n" for 0 .. length $d' \
		<"$f" >"$BATS_TEST_TMPDIR/want"
	[[ $(wc -l <"$BATS_TEST_TMPDIR/want") == 301 ]]
	mapfile -t got <"$BATS_TEST_TMPDIR/got"
	mapfile -t want <"$BATS_TEST_TMPDIR/want"
	for n in "${!want[@]}"; do
		[[ ${got[n]:-} == "${want[n]}" ]] || fail "length $n: got '${got[n]:-}', want ${want[n]}"
	done
	assert_equal "${got[300]}" "$(sha512sum <"$f" | cut -d' ' -f1)"
	run "$MT" hash 128 <"$f"
	assert_output "${want[300]}"
	mt_ok hash 24 "n1ctr1"
	assert_equal "$output" "$(h16 n1ctr1 24)"
}

@test "libnftables is neither linked nor loaded: the rules go out over our own netlink" {
	skip_if_wrapped bridge
	run readelf -d "$MT"
	assert_success
	refute_output --partial libnftables
	run readelf -d "$PLUGIN_DIR/bridge"
	assert_success
	refute_output --partial libnftables
	refute_output --partial libcjson
	run strings -a "$PLUGIN_DIR/bridge"
	refute_output --partial libnftables.so
	mt_ok mapped
	assert_equal "$output" no
}

# nft_forms TABLE: every command form the plugins write (masq, spoofchk, portmap with its
# condition vocabulary, floating-ip), as nft text, in a table of that name per family.
nft_forms() {
	local t=$1
	cat <<-EOF
		add table inet $t { comment "forms: inet"; }
		add map inet $t m4 { type ipv4_addr : verdict; }
		add map inet $t m6 { type ipv6_addr : verdict; }
		add map inet $t ports { type inet_proto . inet_service : verdict; }
		add chain inet $t post { type nat hook postrouting priority srcnat; policy accept; }
		add chain inet $t pre { type nat hook prerouting priority dstnat; policy accept; }
		add chain inet $t out { type nat hook output priority -100; policy accept; }
		add chain inet $t a-1 { comment "10.200.160.2/24 net=n if=eth0 id=c"; }
		add chain inet $t a-2 { comment "net=n if=eth0 id=c"; }
		add chain inet $t p-tcp-80
		add rule inet $t post ip daddr 224.0.0.0/4 return comment "multicast: no SNAT (IPv4)"
		add rule inet $t post ip6 daddr ff00::/8 return comment "multicast: no SNAT (IPv6)"
		add rule inet $t post ip saddr vmap @m4 comment "IPv4 container addresses"
		add rule inet $t post ip6 saddr vmap @m6
		add rule inet $t post meta mark and 0x00002000 == 0x00002000 masquerade comment "masquerade mark 0x00002000"
		add rule inet $t pre fib daddr type local meta l4proto . th dport vmap @ports comment "host ports"
		add rule inet $t a-1 ip daddr != 10.200.160.0/24 masquerade comment "10.200.160.2/24"
		add rule inet $t a-1 ip6 daddr != fd00:200:a0::/64 masquerade
		add rule inet $t a-2 meta nfproto ipv4 meta l4proto tcp th dport 80 meta mark set meta mark or 0x00000020 comment "p masqAll"
		add rule inet $t a-2 ip daddr 10.9.9.9 meta l4proto udp th dport 53 ip saddr 10.1.0.0/16 meta mark set meta mark or 0x00002000
		add rule inet $t a-2 meta nfproto ipv4 meta l4proto sctp th dport 80 ip saddr 127.0.0.1 meta mark set meta mark or 0x00002000
		add rule inet $t a-2 meta nfproto ipv4 meta l4proto tcp th dport 80 dnat ip to 10.1.0.5:8080 comment "p dnat 10.1.0.5:8080"
		add rule inet $t a-2 meta nfproto ipv6 meta l4proto tcp th dport 80 ip6 daddr != ::1 dnat ip6 to [fd00::5]:8080
		add rule inet $t a-2 ip6 daddr fd00::9 meta l4proto tcp th dport 80 ip6 saddr fd00:1::/48 tcp sport >= 1024 meta l4proto < 200 drop
		add element inet $t ports { tcp . 80 : jump p-tcp-80 }
		add element inet $t ports { udp . 53 : jump p-tcp-80 }
		add element inet $t m4 { 10.200.160.2 : goto a-1 }
		add element inet $t m6 { fd00:200:a0::2 : goto a-1 }
		add rule inet $t p-tcp-80 jump a-2 comment "a-1"
		insert rule inet $t p-tcp-80 meta nfproto ipv4 ip saddr 10.200.0.0/20 jump a-2 comment "a-1"
		insert rule inet $t p-tcp-80 meta nfproto ipv6 ip6 saddr fd00::/65 ip6 daddr != fd00::1 jump a-2
		insert rule inet $t p-tcp-80 meta nfproto ipv4 iifname eth9 oifname != "eth8" tcp dport 80 tcp sport != 53 th sport 1 jump a-2
		insert rule inet $t p-tcp-80 meta nfproto ipv4 ip saddr 0.0.0.0/0 meta mark 0x10 meta l4proto != udp accept
		insert rule inet $t p-tcp-80 meta iifname eth0 meta mark != 7 sctp dport 9 goto a-2
		insert rule inet $t p-tcp-80 udp dport != 80 ip daddr 10.0.0.1 udp sport != 1 th dport 7 jump a-2
		insert rule inet $t p-tcp-80 th dport 80 th sport != 1 ip6 saddr fd00::1 jump a-2
		add chain inet $t fpre { type nat hook prerouting priority -110; policy accept; }
		add chain inet $t fpost { type nat hook postrouting priority 90; policy accept; }
		add chain inet $t d-1 { comment "net=n if=eth0 id=c"; }
		add rule inet $t d-1 ip daddr 10.200.92.50 dnat ip to 10.200.91.2 comment "10.200.92.50 to 10.200.91.2 addr eth0"
		add rule inet $t d-1 ip6 daddr fd00:200:91:0:1::50 dnat ip6 to fd00:200:91::2
		add rule inet $t d-1 ip daddr != 10.200.91.0/25 snat ip to 10.200.92.50 comment "10.200.91.2/25 as 10.200.92.50"
		add rule inet $t d-1 ip6 daddr != fd00:200:91::/80 snat ip6 to fd00:200:91:0:1::50
		add table bridge $t { comment "forms: bridge"; }
		add map bridge $t ports { type ifname : verdict; }
		add chain bridge $t prerouting { type filter hook prerouting priority -300; policy accept; }
		add chain bridge $t s-1 { comment "macspoofchk if=eth0 id=c"; }
		add rule bridge $t prerouting iifname vmap @ports comment "container ports: their MAC check chain"
		add rule bridge $t s-1 ether saddr 02:42:ac:11:00:02 return comment "mac=02:42:ac:11:00:02"
		add rule bridge $t s-1 drop comment "veth=veth0a1"
		add element bridge $t ports { "veth0a1" : jump s-1 }
		add element bridge $t ports { "veth0a2" : jump s-1 }
	EOF
}

@test "nft writer: every command form the plugins write holds the bytecode, user data and handles nft -f gives" {
	local f=$BATS_TEST_TMPDIR/forms ref=${P}r
	mkns "$ref"
	nft_forms "${P}t" >"$f"
	{
		echo "delete element inet ${P}t ports { udp . 53 }"
		echo "delete element bridge ${P}t ports { \"veth0a2\" }"
		echo "delete element inet ${P}t m6 { fd00:200:a0::2 }"
		echo "delete rule inet ${P}t post handle 13"
		echo "add chain inet ${P}t gone { comment \"flushed and deleted\"; }"
		echo "add rule inet ${P}t gone drop"
		echo "flush chain inet ${P}t gone"
		echo "delete chain inet ${P}t gone"
	} >>"$f"
	run ip netns exec "$ref" nft -f "$f"
	assert_success
	mt nft-run <"$f"
	[[ $status == 0 ]] || fail "nft-run: $output"
	# and without libnftables
	assert_equal "$output" no
	diff -u <(ip netns exec "$ref" nft --debug=netlink list ruleset 2>&1) <(in_ns nft --debug=netlink list ruleset 2>&1) ||
		fail "the kernel holds something else than nft -f made"
	run in_ns nft list chain inet "${P}t" post
	refute_output --partial 'ip6 saddr vmap @m6'
}

@test "nft writer: a refused command fails the whole batch, named with the kernel's reason; a dry run changes nothing" {
	mt nft-run <<<"add table inet ${P}t
add chain inet ${P}t c
add chain inet ${P}t d
add rule inet ${P}t d jump c"
	[[ $status == 0 ]] || fail "nft-run: $output"
	# the second command is refused: nothing of the first stays
	mt nft-run <<<"add chain inet ${P}t e
delete chain inet ${P}t c"
	mt_err 101 "^nftables: Device or resource busy in \"delete chain inet ${P}t c\"$"
	mt nft-run <<<"delete chain inet ${P}t e"
	mt_err 101 "^nftables: No such file or directory in \"delete chain inet ${P}t e\"$"
	# a form the writer does not know is named, and nothing is sent
	mt nft-run <<<"add chain inet ${P}t f
add rule inet ${P}t d ip saddr example.com accept"
	mt_err 7 "cannot express \"add rule inet ${P}t d ip saddr example.com accept\" \(at \"example.com accept\"\)"
	run in_ns nft list chain inet "${P}t" f
	assert_failure
	# a dry run validates (and refuses) like the real one, and leaves nothing behind
	mt nft-check <<<"add chain inet ${P}t g
delete chain inet ${P}t c"
	mt_err 101 "Device or resource busy in \"delete chain inet ${P}t c\""
	mt nft-check <<<"add chain inet ${P}t g
add rule inet ${P}t g ip daddr != 10.0.0.0/8 masquerade"
	[[ $status == 0 ]] || fail "nft-check: $output"
	run in_ns nft list chain inet "${P}t" g
	assert_failure
	run in_ns nft list table inet "${P}t"
	assert_success
	refute_output --partial "chain e"
}

@test "nft add: table, base chain, attachment chain with its comment, one element per address" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	local c
	c=$(achain "$NET" ctr1 eth0)
	assert_equal "$(chains)" "$c"
	assert_equal "$(elems masq4)" "10.200.160.2 $c"
	assert_equal "$(elems masq6)" "fd00:200:a0::2 $c"
	run rules "$c"
	assert_output "comment \"10.200.160.2/24 fd00:200:a0::2/64 net=$NET if=eth0 id=ctr1\"
ip daddr != 10.200.160.0/24 masquerade comment \"10.200.160.2/24\"
ip6 daddr != fd00:200:a0::/64 masquerade comment \"fd00:200:a0::2/64\""
	# base chain: NAT postrouting at srcnat, multicast exempt, one map lookup per family
	assert_equal "$(in_ns nft -j list chain inet cni_c_masq postrouting | jq -c '.nftables[1].chain | [.type, .hook, .prio, .policy]')" \
		'["nat","postrouting",100,"accept"]'
	run rules postrouting
	assert_output --partial 'ip daddr 224.0.0.0/4 return'
	assert_output --partial 'ip6 daddr ff00::/8 return'
	assert_output --partial 'ip saddr vmap @masq4'
	assert_output --partial 'ip6 saddr vmap @masq6'
	# and nothing else anywhere
	assert_equal "$(in_ns nft list tables)" "table inet cni_c_masq"
}

@test "nft add twice changes nothing; a new address set replaces the chain" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	local before c
	before=$(in_ns nft -a list table inet cni_c_masq)
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	# same handles: nothing was rewritten
	assert_equal "$(in_ns nft -a list table inet cni_c_masq)" "$before"
	c=$(achain "$NET" ctr1 eth0)
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.5/24
	assert_equal "$(elems masq4)" "10.200.160.5 $c"
	assert_equal "$(elems masq6)" ""
	run rules "$c"
	assert_output "comment \"10.200.160.5/24 net=$NET if=eth0 id=ctr1\"
ip daddr != 10.200.160.0/24 masquerade comment \"10.200.160.5/24\""
	mt_ok check nftables "$NET" ctr1 eth0 10.200.160.5/24
}

@test "nft add repairs a hand-edited base chain" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24
	in_ns nft flush chain inet cni_c_masq postrouting
	mt check nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_err 104 "chain postrouting of table inet cni_c_masq was altered"
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_ok check nftables "$NET" ctr1 eth0 10.200.160.2/24
	assert_equal "$(rules postrouting | wc -l)" 4
}

@test "del needs no address and removes exactly that attachment: another container's and another network's stay" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24 10.200.161.2/24 fd00:200:a0::2/64
	mt_ok add nftables "$NET" ctr2 eth0 10.200.160.3/24 fd00:200:a0::3/64
	mt_ok add nftables "$NET" ctr1 eth1 10.200.162.2/24
	mt_ok add nftables "other$NET" ctr1 eth0 10.200.163.2/24
	mt_ok del "$NET" ctr1 eth0
	local c2 c1b o1
	c2=$(achain "$NET" ctr2 eth0)
	c1b=$(achain "$NET" ctr1 eth1)
	o1=$(achain "other$NET" ctr1 eth0)
	assert_equal "$(chains)" "$(printf '%s\n' "$c2" "$c1b" "$o1" | sort)"
	assert_equal "$(elems masq4)" "10.200.160.3 $c2
10.200.162.2 $c1b
10.200.163.2 $o1"
	assert_equal "$(elems masq6)" "fd00:200:a0::3 $c2"
	mt_ok check nftables "$NET" ctr2 eth0 10.200.160.3/24 fd00:200:a0::3/64
	mt_ok check nftables "other$NET" ctr1 eth0 10.200.163.2/24
}

@test "del when nothing exists succeeds and creates nothing; a second del too" {
	mt_ok del "$NET" ctr1 eth0
	assert_equal "$(in_ns nft list ruleset)" ""
	mt_ok add nftables "$NET" ctr2 eth0 10.200.160.3/24
	mt_ok del "$NET" ctr1 eth0
	mt_ok del "$NET" ctr2 eth0
	mt_ok del "$NET" ctr2 eth0
	assert_equal "$(chains)" ""
	assert_equal "$(elems masq4)" ""
}

@test "check passes, then fails with 104 naming what is missing" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	mt_ok check nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	local c
	c=$(achain "$NET" ctr1 eth0)
	mt check nftables "$NET" ctr1 eth0 10.200.160.2/25
	mt_err 104 "chain $c has no masquerade rule for 10.200.160.2/25"
	in_ns nft delete element inet cni_c_masq masq6 '{ fd00:200:a0::2 }'
	mt check nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	mt_err 104 "fd00:200:a0::2 has no element in map masq6 of table inet cni_c_masq"
	in_ns nft delete element inet cni_c_masq masq4 '{ 10.200.160.2 }'
	in_ns nft delete chain inet cni_c_masq "$c"
	mt check nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_err 104 "chain $c of container ctr1 \(eth0\) is missing from table inet cni_c_masq"
	in_ns nft delete table inet cni_c_masq
	mt check nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_err 104 "table inet cni_c_masq or its chain postrouting is missing"
}

@test "an address handed to another container: its element moves, the old attachment's DEL leaves it" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_ok add nftables "$NET" ctr2 eth0 10.200.160.2/24
	local c1 c2
	c1=$(achain "$NET" ctr1 eth0)
	c2=$(achain "$NET" ctr2 eth0)
	assert_equal "$(elems masq4)" "10.200.160.2 $c2"
	mt check nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_err 104 "map masq4 of table inet cni_c_masq sends 10.200.160.2 to chain $c2, not $c1"
	mt_ok del "$NET" ctr1 eth0
	assert_equal "$(elems masq4)" "10.200.160.2 $c2"
	assert_equal "$(chains)" "$c2"
	mt_ok check nftables "$NET" ctr2 eth0 10.200.160.2/24
	# a stale element leading to a chain not made by us is replaced too
	in_ns nft add chain inet cni_c_masq a-stale
	in_ns nft add element inet cni_c_masq masq4 '{ 10.200.160.9 : goto a-stale }'
	mt_ok add nftables "$NET" ctr3 eth0 10.200.160.9/24
	assert_equal "$(elems masq4 | grep 160.9)" "10.200.160.9 $(achain "$NET" ctr3 eth0)"
}

@test "gc keeps the listed attachments and removes the rest of that network only" {
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24
	mt_ok add nftables "$NET" ctr2 eth0 10.200.160.3/24 fd00:200:a0::3/64
	mt_ok add nftables "$NET" ctr3 eth0 10.200.160.4/24
	mt_ok add nftables "other$NET" ctr2 eth0 10.200.161.3/24
	mt_ok gc "$NET" ctr1:eth0 ctr9:eth0 ctr3:eth1
	local c1 o2
	c1=$(achain "$NET" ctr1 eth0)
	o2=$(achain "other$NET" ctr2 eth0)
	assert_equal "$(chains)" "$(printf '%s\n' "$c1" "$o2" | sort)"
	assert_equal "$(elems masq4)" "10.200.160.2 $c1
10.200.161.3 $o2"
	assert_equal "$(elems masq6)" ""
	mt_ok gc "$NET"
	assert_equal "$(chains)" "$o2"
	# no table at all: nothing to do
	in_ns nft delete table inet cni_c_masq
	mt_ok gc "$NET"
	assert_equal "$(in_ns nft list ruleset)" ""
}

@test "gc of 400 stale attachments: the chain and map dumps span several replies, every one is read" {
	local i c nh f=$BATS_TEST_TMPDIR/batch c1 o1 c2
	mt_ok add nftables "$NET" ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64
	mt_ok add nftables "other$NET" ctr1 eth0 10.200.161.2/24
	# stale chains of this network, as ADD names and fills them; every 7th element a jump
	nh=$(h16 "$NET")
	for i in $(seq 1 400); do
		c=a-$nh-$(printf '%016x' "$i")
		printf 'add chain inet cni_c_masq %s { comment "10.201.%d.%d/16 net=%s"; }\n' "$c" $((i / 200)) $((i % 200 + 1)) "$NET"
		printf 'add rule inet cni_c_masq %s ip daddr != 10.201.0.0/16 masquerade\n' "$c"
		printf 'add element inet cni_c_masq masq4 { 10.201.%d.%d : %s %s }\n' $((i / 200)) $((i % 200 + 1)) \
			"$( ((i % 7)) && echo goto || echo jump)" "$c"
		printf 'add element inet cni_c_masq masq6 { fd00:201::%x : goto %s }\n' "$i" "$c"
	done >"$f"
	in_ns nft -f "$f"
	# a valid attachment made after them: last in the dumps
	mt_ok add nftables "$NET" ctr2 eth0 10.200.160.3/24 fd00:200:a0::3/64
	assert_equal "$(chains | wc -l)" 403
	mt_ok gc "$NET" ctr1:eth0 ctr2:eth0
	c1=$(achain "$NET" ctr1 eth0)
	c2=$(achain "$NET" ctr2 eth0)
	o1=$(achain "other$NET" ctr1 eth0)
	assert_equal "$(chains)" "$(printf '%s\n' "$c1" "$c2" "$o1" | sort)"
	assert_equal "$(elems masq4)" "$(printf '%s\n' "10.200.160.2 $c1" "10.200.160.3 $c2" "10.200.161.2 $o1" | sort)"
	assert_equal "$(elems masq6)" "$(printf '%s\n' "fd00:200:a0::2 $c1" "fd00:200:a0::3 $c2" | sort)"
	mt_ok check nftables "$NET" ctr2 eth0 10.200.160.3/24 fd00:200:a0::3/64
}

@test "parallel adds and dels of 20 attachments leave maps and chains consistent, then empty" {
	local i pids=()
	for i in $(seq 10 29); do
		ip netns exec "$NS" "$MT" add nftables "$NET" "ctr$i" eth0 "10.200.164.$i/24" "fd00:200:a4::$i/64" &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || fail "a parallel add failed"; done
	assert_equal "$(chains | wc -l)" 20
	assert_equal "$(elems masq4 | wc -l)" 20
	assert_equal "$(elems masq6 | wc -l)" 20
	for i in $(seq 10 29); do
		mt_ok check nftables "$NET" "ctr$i" eth0 "10.200.164.$i/24" "fd00:200:a4::$i/64"
	done
	pids=()
	for i in $(seq 10 29); do
		ip netns exec "$NS" "$MT" del "$NET" "ctr$i" eth0 &
		pids+=($!)
	done
	for i in "${pids[@]}"; do wait "$i" || fail "a parallel del failed"; done
	assert_equal "$(chains)" ""
	assert_equal "$(elems masq4)$(elems masq6)" ""
}

@test "map lists while the kernel resizes the map's hash table: each key once (a key listed twice failed a DEL)" {
	local stop=$BATS_TEST_TMPDIR/stop churn
	in_ns nft add table inet "$P"
	in_ns nft add chain inet "$P" c
	in_ns nft add map inet "$P" m '{ type ipv4_addr : verdict; }'
	# 50 elements added at once, then deleted one per transaction, over and over: the kernel
	# grows and shrinks the set's hash table meanwhile, and a list taken during a resize can meet
	# an element twice (seen a few times a second here, before the lists dropped repeats)
	timeout 30 ip netns exec "$NS" bash -c '
		while [ ! -e "$1" ]; do
			for i in $(seq 1 50); do echo "add element inet $2 m { 10.200.0.$i : goto c }"; done | nft -f - || exit 1
			for i in $(seq 1 50); do nft delete element inet "$2" m "{ 10.200.0.$i }" || exit 1; done
		done' churn "$stop" "$P" &
	churn=$!
	mt map-dups "$P" m 4
	touch "$stop"
	wait "$churn" || fail "the add/delete loop failed"
	[[ $status == 0 && $output =~ ^dumps=([0-9]+)\ repeated=([0-9]+)$ ]] || fail "map-dups: $output"
	(( BASH_REMATCH[1] > 100 )) || fail "only ${BASH_REMATCH[1]} lists in 4 s"
	assert_equal "${BASH_REMATCH[2]}" 0
}

@test "available: both backends work here, and the probe changes nothing" {
	mt_ok available nftables
	mt_ok available iptables
	assert_equal "$(in_ns nft list ruleset)" ""
	mt available pf
	mt_err 7 "backend \"pf\""
}

@test "valgrind: add, check, del, gc and the spoof check leak nothing and touch nothing uninitialised" {
	readelf -d "$MT" | grep -q libasan && skip "valgrind cannot run the ASan build (the release lane runs this)"
	command -v valgrind >/dev/null || fail "valgrind missing"
	local cmd
	for cmd in "add nftables $NET ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64" \
		"add nftables $NET ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64" \
		"check nftables $NET ctr1 eth0 10.200.160.2/24 fd00:200:a0::2/64" \
		"del $NET ctr1 eth0" "del $NET ctr1 eth0" \
		"add iptables $NET ctr1 eth0 10.200.160.2/24" "del $NET ctr1 eth0" \
		"add nftables $NET ctr2 eth0 10.200.160.3/24" "gc $NET" "available nftables" \
		"spoof-add ctr1 eth0 veth0a1 02:42:ac:11:00:02" "spoof-check ctr1 eth0 veth0a1 02:42:ac:11:00:02" \
		"spoof-del ctr1 eth0"; do
		# shellcheck disable=SC2086
		run ip netns exec "$NS" valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=all \
			--errors-for-leak-kinds=all "$MT" $cmd
		[[ $status == 0 ]] || fail "valgrind masq-tool $cmd ($status): $output"
	done
}

# ---- iptables backend: the reference's layout ----

# ref_bridge VERB HOSTNS CONTAINERNS NET CID SUBNET: the reference bridge plugin with ipMasq.
ref_bridge() {
	local conf
	conf=$(printf '{"cniVersion":"0.4.0","name":"%s","type":"bridge","bridge":"rb0","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"%s"}]]}}' \
		"$4" "$BATS_TEST_TMPDIR/ipam" "$6")
	run ip netns exec "$2" env CNI_COMMAND="$1" CNI_CONTAINERID="$5" CNI_IFNAME=eth0 CNI_NETNS="/var/run/netns/$3" \
		CNI_PATH="$REF_DIR" "$REF_DIR/bridge" <<<"$conf"
}

@test "iptables add: the reference's chain name, comment and rules, exactly as the reference writes them" {
	local chain cm
	chain=CNI-$(h16 "${NET}ctr-1" 24)
	cm="\"name: \\\"$NET\\\" id: \\\"ctr-1\\\"\""
	mt_ok add iptables "$NET" ctr-1 eth0 10.200.165.2/24 fd00:200:a5::2/64
	mt_ok add iptables "$NET" ctr-1 eth0 10.200.165.2/24 fd00:200:a5::2/64
	run in_ns iptables -w -t nat -S
	assert_output "-P PREROUTING ACCEPT
-P INPUT ACCEPT
-P OUTPUT ACCEPT
-P POSTROUTING ACCEPT
-N $chain
-A POSTROUTING -s 10.200.165.2/32 -m comment --comment $cm -j $chain
-A $chain -d 10.200.165.0/24 -m comment --comment $cm -j ACCEPT
-A $chain ! -d 224.0.0.0/4 -m comment --comment $cm -j MASQUERADE"
	run in_ns ip6tables -w -t nat -S "$chain"
	assert_output "-N $chain
-A $chain -d fd00:200:a5::/64 -m comment --comment $cm -j ACCEPT
-A $chain ! -d ff00::/8 -m comment --comment $cm -j MASQUERADE"
	in_ns ip6tables -w -t nat -S POSTROUTING | grep -qxF -- "-A POSTROUTING -s fd00:200:a5::2/128 -m comment --comment $cm -j $chain"
	mt_ok check iptables "$NET" ctr-1 eth0 10.200.165.2/24 fd00:200:a5::2/64
	in_ns iptables -w -t nat -D "$chain" ! -d 224.0.0.0/4 -m comment --comment "name: \"$NET\" id: \"ctr-1\"" -j MASQUERADE
	mt check iptables "$NET" ctr-1 eth0 10.200.165.2/24
	mt_err 104 "iptables nat has no MASQUERADE rule for 10.200.165.2 in chain $chain"
	mt_ok del "$NET" ctr-1 eth0
	run in_ns iptables -w -t nat -S "$chain"
	assert_failure
	mt check iptables "$NET" ctr-1 eth0 10.200.165.2/24
	mt_err 104 "iptables nat has no chain $chain"
}

@test "iptables: the reference plugin writes the same rules, and its DEL removes ours" {
	[ -x "$REF_DIR/bridge" ] || fail "reference plugins missing in $REF_DIR"
	# the reference, in a host namespace of its own, for the same network, container and address
	mkns ${P}r
	mkns ${P}rc
	ref_bridge ADD ${P}r ${P}rc "$NET" ctr-1 10.200.165.0/24
	assert_success
	assert_equal "$(jq -r '.ips[0].address' <<<"$output")" 10.200.165.2/24
	mt_ok add iptables "$NET" ctr-1 eth0 10.200.165.2/24
	assert_equal "$(in_ns iptables -w -t nat -S)" "$(ip netns exec ${P}r iptables -w -t nat -S)"
	ref_bridge DEL ${P}r ${P}rc "$NET" ctr-1 10.200.165.0/24
	assert_success
	# its DEL reads the addresses from the container's interface: give one the same address
	mkns ${P}c
	ip -n ${P}c link add eth0 type veth peer name eth0p
	ip -n ${P}c addr add 10.200.165.2/24 dev eth0
	ref_bridge DEL "$NS" ${P}c "$NET" ctr-1 10.200.165.0/24
	assert_success
	assert_equal "$(in_ns iptables -w -t nat -S | grep -c CNI-)" 0
}

@test "del removes iptables chains without knowing the addresses (the reference's too)" {
	[ -x "$REF_DIR/bridge" ] || fail "reference plugins missing in $REF_DIR"
	mkns ${P}c
	ref_bridge ADD "$NS" ${P}c "$NET" ctr-2 10.200.165.0/24
	assert_success
	mt_ok add iptables "$NET" ctr-3 eth0 10.200.166.3/24 fd00:200:a6::3/64
	local c2 c3
	c2=CNI-$(h16 "${NET}ctr-2" 24)
	c3=CNI-$(h16 "${NET}ctr-3" 24)
	in_ns iptables -w -t nat -S "$c2" >/dev/null
	mt_ok del "$NET" ctr-2 eth0
	run in_ns iptables -w -t nat -S
	refute_output --partial "$c2"
	assert_output --partial "$c3"
	mt_ok del "$NET" ctr-3 eth0
	assert_equal "$(in_ns iptables -w -t nat -S | grep -c CNI-)" 0
	assert_equal "$(in_ns ip6tables -w -t nat -S | grep -c CNI-)" 0
}

# shim_iptables: iptables and ip6tables on PATH that log each call, then run the real ones.
shim_iptables() {
	SHIM=$BATS_TEST_TMPDIR/shim
	LOG=$BATS_TEST_TMPDIR/exec.log
	mkdir -p "$SHIM"
	: >"$LOG"
	local t
	for t in iptables ip6tables; do
		printf '#!/bin/sh\necho "%s $*" >>"%s"\nexec %s "$@"\n' "$t" "$LOG" "$(command -v $t)" >"$SHIM/$t"
		chmod +x "$SHIM/$t"
	done
}

@test "del execs iptables only when there is something to remove, or the legacy nat table is in use" {
	shim_iptables
	run ip netns exec "$NS" env PATH="$SHIM:$PATH" "$MT" del "$NET" ctr-1 eth0
	assert_success
	assert_equal "$(cat "$LOG")" ""
	# an nft-only host with the chain (iptables-nft keeps it in table ip nat): exec'd, removed
	mt_ok add iptables "$NET" ctr-1 eth0 10.200.165.2/24
	: >"$LOG"
	run ip netns exec "$NS" env PATH="$SHIM:$PATH" "$MT" del "$NET" ctr-1 eth0
	assert_success
	grep -q '^iptables .*-X CNI-' "$LOG"
	run grep '^ip6tables' "$LOG"
	assert_failure
	assert_equal "$(in_ns iptables -w -t nat -S | grep -c CNI-)" 0
	# legacy nat in use in this netns: chains nf_tables cannot see, so iptables is asked
	command -v iptables-legacy >/dev/null || fail "iptables-legacy missing"
	in_ns iptables-legacy -w -t nat -S >/dev/null
	: >"$LOG"
	run ip netns exec "$NS" env PATH="$SHIM:$PATH" "$MT" del "$NET" ctr-1 eth0
	assert_success
	grep -q "^iptables -w -t nat -S CNI-" "$LOG"
}

@test "del removes the reference's nftables rules of this attachment only" {
	local mine other
	mine="$(h16 "$NET")-$(h16 "eth0:ctr-1"), net: $NET, if: eth0, id: ctr-1"
	other="$(h16 "$NET")-$(h16 "eth0:ctr-2"), net: $NET, if: eth0, id: ctr-2"
	in_ns nft -f - <<-EOF
		add table inet cni_plugins_masquerade
		add chain inet cni_plugins_masquerade masq_checks
		add rule inet cni_plugins_masquerade masq_checks ip saddr 10.200.165.2 ip daddr != 10.200.165.0/24 masquerade comment "$mine"
		add rule inet cni_plugins_masquerade masq_checks ip6 saddr fd00:200:a5::2 ip6 daddr != fd00:200:a5::/64 masquerade comment "$mine"
		add rule inet cni_plugins_masquerade masq_checks ip saddr 10.200.165.3 ip daddr != 10.200.165.0/24 masquerade comment "$other"
	EOF
	mt_ok del "$NET" ctr-1 eth0
	run in_ns nft list chain inet cni_plugins_masquerade masq_checks
	refute_output --partial "id: ctr-1"
	refute_output --partial "10.200.165.2"
	assert_output --partial "ip saddr 10.200.165.3 ip daddr != 10.200.165.0/24 masquerade comment \"$other\""
	# no such table: nothing to do
	in_ns nft delete table inet cni_plugins_masquerade
	mt_ok del "$NET" ctr-2 eth0
}

# ---- macspoofchk ----

@test "spoofchk add/check/del: table layout, idempotent, 104 naming what differs" {
	local c
	c=s-$(h16 "ctr1-eth0")
	mt_ok spoof-add ctr1 eth0 veth0a1 02:42:ac:11:00:02
	run in_ns nft list table bridge cni_c_spoof
	assert_output --partial 'type filter hook prerouting priority dstnat; policy accept;'
	assert_output --partial 'iifname vmap @ports'
	assert_output --partial "elements = { \"veth0a1\" : jump $c }"
	assert_output --partial 'ether saddr 02:42:ac:11:00:02 return'
	assert_output --partial 'drop comment "veth=veth0a1"'
	local before
	before=$(in_ns nft -a list table bridge cni_c_spoof)
	mt_ok spoof-add ctr1 eth0 veth0a1 02:42:ac:11:00:02
	assert_equal "$(in_ns nft -a list table bridge cni_c_spoof)" "$before"
	mt_ok spoof-add ctr2 eth0 veth0a2 02:42:ac:11:00:03
	mt_ok spoof-check ctr1 eth0 veth0a1 02:42:AC:11:00:02
	mt spoof-check ctr1 eth0 veth0a1 02:42:ac:11:00:09
	mt_err 104 "chain $c lets through MAC 02:42:ac:11:00:02, the container has 02:42:ac:11:00:09"
	in_ns nft delete element bridge cni_c_spoof ports '{ "veth0a1" }'
	mt spoof-check ctr1 eth0 veth0a1 02:42:ac:11:00:02
	mt_err 104 "map ports of table bridge cni_c_spoof sends veth0a1 nowhere"
	mt_ok spoof-add ctr1 eth0 veth0a1 02:42:ac:11:00:02
	mt_ok spoof-check ctr1 eth0 veth0a1 02:42:ac:11:00:02
	mt_ok spoof-del ctr1 eth0
	run in_ns nft list table bridge cni_c_spoof
	refute_output --partial "$c"
	refute_output --partial veth0a1
	assert_output --partial veth0a2
	mt spoof-check ctr1 eth0 veth0a1 02:42:ac:11:00:02
	mt_err 104 "chain $c of container ctr1 \(eth0\) is missing"
	mt_ok spoof-del ctr1 eth0
	mt spoof-add ctr1 eth0 'bad"name' 02:42:ac:11:00:02
	mt_err 100 "not a usable interface name"
	mt spoof-add ctr1 eth0 veth0a1 02:42:ac:11:00
	mt_err 100 "is not a MAC address"
}

@test "spoofchk del with nothing there succeeds and creates nothing" {
	mt_ok spoof-del ctr1 eth0
	assert_equal "$(in_ns nft list ruleset)" ""
}

# ---- real traffic ----

# The router $NS between a client (10.200.166.2, fd00:200:a6::2) and an outside namespace
# (10.200.167.2, fd00:200:a7::2) that has no route back to the client's subnet. The outside
# counts the echo requests it gets per source address in a table of its own.
traffic_setup() {
	C=${P}c
	O=${P}o
	mkns "$C"
	mkns "$O"
	ip link add vc netns "$NS" type veth peer name eth0 netns "$C"
	ip link add vo netns "$NS" type veth peer name eth0 netns "$O"
	ip -n "$NS" addr add 10.200.166.1/24 dev vc
	ip -n "$NS" addr add fd00:200:a6::1/64 dev vc nodad
	ip -n "$NS" addr add 10.200.167.1/24 dev vo
	ip -n "$NS" addr add fd00:200:a7::1/64 dev vo nodad
	ip -n "$C" addr add 10.200.166.2/24 dev eth0
	ip -n "$C" addr add fd00:200:a6::2/64 dev eth0 nodad
	ip -n "$O" addr add 10.200.167.2/24 dev eth0
	ip -n "$O" addr add fd00:200:a7::2/64 dev eth0 nodad
	local ns
	for ns in "$NS" "$C" "$O"; do
		ip -n "$ns" link set lo up
		ip -n "$ns" link set "$([[ $ns == "$NS" ]] && echo vc || echo eth0)" up
	done
	ip -n "$NS" link set vo up
	ip -n "$C" route add default via 10.200.166.1
	ip -n "$C" -6 route add default via fd00:200:a6::1
	ip netns exec "$NS" sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1
	ip netns exec "$O" nft -f - <<-EOF
		table inet seen {
			chain in {
				type filter hook input priority 0;
				ip saddr 10.200.167.1 icmp type echo-request counter comment "router4"
				ip saddr 10.200.166.2 icmp type echo-request counter comment "client4"
				ip6 saddr fd00:200:a7::1 icmpv6 type echo-request counter comment "router6"
				ip6 saddr fd00:200:a6::2 icmpv6 type echo-request counter comment "client6"
			}
		}
	EOF
}

# seen WHO: echo requests the outside got from router4/client4/router6/client6
seen() {
	ip netns exec "$O" nft -j list chain inet seen in |
		jq -r --arg c "$1" '.nftables[].rule? // empty | select(.comment==$c) | .expr[] | .counter? // empty | .packets'
}

@test "real traffic: with the rule the outside sees the router's address, without it the client's" {
	traffic_setup
	# without SNAT: the request arrives from the client, the reply has no way back
	run ip netns exec "$C" ping -n -c 1 -W 1 10.200.167.2
	assert_failure
	assert_equal "$(seen client4) $(seen router4)" "1 0"
	mt_ok add nftables "$NET" ctr1 eth0 10.200.166.2/24 fd00:200:a6::2/64
	ping_ok "$C" 10.200.167.2 || fail "no reply through SNAT"
	assert_equal "$(seen client4) $(seen router4)" "1 1"
	ping_ok "$C" fd00:200:a7::2 || fail "no IPv6 reply through SNAT"
	assert_equal "$(seen client6) $(seen router6)" "0 1"
	# the subnet itself is not masqueraded
	ping_ok "$C" 10.200.166.1
	mt_ok del "$NET" ctr1 eth0
	run ip netns exec "$C" ping -n -c 1 -W 1 -6 fd00:200:a7::2
	assert_failure
	assert_equal "$(seen client6) $(seen router6)" "1 1"
}

@test "real traffic with the iptables backend: SNAT works, and del stops it" {
	traffic_setup
	mt_ok add iptables "$NET" ctr1 eth0 10.200.166.2/24
	ping_ok "$C" 10.200.167.2 || fail "no reply through iptables SNAT"
	assert_equal "$(seen client4) $(seen router4)" "0 1"
	mt_ok del "$NET" ctr1 eth0
	run ip netns exec "$C" ping -n -c 1 -W 1 10.200.167.2
	assert_failure
	assert_equal "$(seen client4) $(seen router4)" "1 1"
}

@test "real traffic: with the spoof check, a forged source MAC does not get through the bridge" {
	local a1=${P}a a2=${P}b mac=02:00:0a:c8:a8:02
	mkns "$a1"
	mkns "$a2"
	ip -n "$NS" link add br0 type bridge
	ip link add v1 netns "$NS" type veth peer name eth0 netns "$a1"
	ip link add v2 netns "$NS" type veth peer name eth0 netns "$a2"
	ip -n "$a1" link set eth0 address "$mac"
	ip -n "$NS" link set v1 master br0
	ip -n "$NS" link set v2 master br0
	local ns
	for ns in "$NS" "$a1" "$a2"; do ip -n "$ns" link set lo up; done
	ip -n "$NS" link set br0 up
	ip -n "$NS" link set v1 up
	ip -n "$NS" link set v2 up
	ip -n "$a1" addr add 10.200.168.2/24 dev eth0
	ip -n "$a2" addr add 10.200.168.3/24 dev eth0
	ip -n "$a1" link set eth0 up
	ip -n "$a2" link set eth0 up
	mt_ok spoof-add ctr1 eth0 v1 "$mac"
	ping_ok "$a1" 10.200.168.3 || fail "the container's own MAC was dropped"
	# forge: same interface, another source MAC
	ip -n "$a1" link set eth0 address 02:00:0a:c8:a8:99
	ip -n "$a2" neigh flush dev eth0
	run ip netns exec "$a1" ping -n -c 2 -W 1 10.200.168.3
	assert_failure
	# the check, not something else, dropped it: without it the forged MAC passes
	mt_ok spoof-del ctr1 eth0
	# the forged pings leave a1's entry for a2 in PROBE/FAILED (its probes went unanswered):
	# start both from clean caches
	ip -n "$a1" neigh flush dev eth0
	ip -n "$a2" neigh flush dev eth0
	ping_ok "$a1" 10.200.168.3 || fail "forged MAC blocked even without the check"
}
