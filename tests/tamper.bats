#!/usr/bin/env bats
# Convergence after outside damage: an attachment (bridge with SNAT and the MAC spoof check) is
# made, something of it is damaged as an administrator, a firewall reload or another tool would,
# and then CHECK must report it (code 104), DEL must succeed and leave nothing of it, and a new ADD
# with the same container ID must work and be removed by DEL in turn. A second pass repeats the ADD
# right after the damage, as a runtime restarting does: it must repair and return the same result.
# Everything happens inside the test's own "host" namespace (its links, nft tables and ruleset).

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	BR=br$T
	NET=n$T
	DATA=$BATS_TEST_TMPDIR/ipam
	mkns "$HOSTNS"
	mkns c1$T
}

teardown() {
	net_teardown
}

X='"isGateway":true,"ipMasq":true,"macspoofchk":true'
conf() {
	printf '{"cniVersion":"1.0.0","name":"%s","type":"bridge","bridge":"%s",%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.44.0/24"}]]}}' \
		"$NET" "$BR" "$X" "$DATA"
}
with_prev() { conf | jq -c --argjson p "$1" '.prevResult=$p'; }

masq_chain() { in_host nft -j list chains inet | jq -r '.nftables[].chain? // empty | select(.table=="cni_c_masq" and (.name|startswith("a-"))) | .name'; }
spoof_chain() { in_host nft -j list chains bridge | jq -r '.nftables[].chain? // empty | select(.name|startswith("s-")) | .name'; }

# what is left of attachment c1 on the host: its veth, SNAT chains and elements, spoof check
# chains, reservation (empty when nothing is)
residue() {
	in_host ip -o link show type veth | awk -F': ' '{print "veth " $2}'
	masq_chain | sed 's/^/snat chain /'
	in_host nft list map inet cni_c_masq masq4 2>/dev/null | grep -o '10\.200\.44\.[0-9]*' | sed 's/^/snat element /'
	spoof_chain | sed 's/^/spoofchk chain /'
	grep -l "c1$T" "$DATA/$NET"/10.* 2>/dev/null | sed 's/^/reservation /'
}

# damage KIND: break attachment c1 as an outsider would
damage() {
	local v ch h ip
	v=$(jq -r '.interfaces[1].name' <<<"$FIRST")
	ip=$(jq -r '.ips[0].address' <<<"$FIRST")
	case $1 in
	snat-rule)
		ch=$(masq_chain)
		h=$(in_host nft -a list chain inet cni_c_masq "$ch" | awk '/masquerade/ {print $NF; exit}')
		in_host nft delete rule inet cni_c_masq "$ch" handle "$h" ;;
	snat-chain-flushed) in_host nft flush chain inet cni_c_masq "$(masq_chain)" ;;
	snat-element) in_host nft delete element inet cni_c_masq masq4 "{ ${ip%/*} }" ;;
	snat-table) in_host nft delete table inet cni_c_masq ;;
	spoofchk-rule)
		ch=$(spoof_chain)
		h=$(in_host nft -a list table bridge cni_c_spoof | awk -v c="$ch" '$1=="chain" {in_c=($2==c)} in_c && /drop/ {print $NF; exit}')
		in_host nft delete rule bridge cni_c_spoof "$ch" handle "$h" ;;
	ruleset) in_host nft flush ruleset ;;
	host-veth) in_host ip link del "$v" ;;
	container-iface) ip -n c1$T link del eth0 ;;
	bridge) in_host ip link del "$BR" ;;
	gateway-address) in_host ip addr flush dev "$BR" ;;
	reservation) rm -f "$DATA/$NET/${ip%/*}" ;;
	netns) ip netns del c1$T ;;
	*) echo "unknown damage $1" >&2; return 1 ;;
	esac
}

# converges KIND CHECK_MESSAGE: damage, CHECK reports it, DEL leaves nothing, ADD and DEL again
converges() {
	hcni ADD bridge "$(conf)" c1$T
	assert_success
	FIRST=$output
	hcni CHECK bridge "$(with_prev "$FIRST")" c1$T
	assert_success
	[[ -n $(residue) ]]
	damage "$1"
	hcni CHECK bridge "$(with_prev "$FIRST")" c1$T
	expect_error 104 "$2"
	hcni DEL bridge "$(conf)" c1$T
	assert_success
	assert_equal "$(residue)" ""
	[[ -e /var/run/netns/c1$T ]] || mkns c1$T
	hcni ADD bridge "$(conf)" c1$T
	assert_success
	hcni CHECK bridge "$(with_prev "$output")" c1$T
	assert_success
	hcni DEL bridge "$(conf)" c1$T
	assert_success
	assert_equal "$(residue)" ""
}

@test "SNAT rule deleted by hand: CHECK reports it, DEL and a new ADD converge" {
	converges snat-rule "has no masquerade rule for 10.200.44.2/24"
}

@test "SNAT chain flushed: CHECK reports it, DEL and a new ADD converge" {
	converges snat-chain-flushed "has no masquerade rule for 10.200.44.2/24"
}

@test "SNAT map element deleted: CHECK reports it, DEL and a new ADD converge" {
	converges snat-element "10.200.44.2 has no element in map masq4"
}

@test "SNAT table deleted: CHECK reports it, DEL and a new ADD converge" {
	converges snat-table "table inet cni_c_masq or its chain postrouting is missing"
}

@test "spoof check rule deleted: CHECK reports it, DEL and a new ADD converge" {
	converges spoofchk-rule "has no drop rule"
}

@test "whole ruleset flushed: CHECK reports it, DEL and a new ADD converge" {
	converges ruleset "is missing"
}

@test "host veth deleted: CHECK reports it, DEL and a new ADD converge" {
	converges host-veth "interface eth0 not found in CNI_NETNS"
}

@test "container interface deleted: CHECK reports it, DEL and a new ADD converge" {
	converges container-iface "interface eth0 not found in CNI_NETNS"
}

@test "bridge deleted: CHECK reports it, DEL and a new ADD converge" {
	converges bridge "bridge $BR not found"
}

@test "bridge gateway address removed: CHECK reports it, DEL and a new ADD converge" {
	converges gateway-address "gateway 10.200.44.1"
}

@test "reservation file removed: CHECK reports it, DEL and a new ADD converge" {
	converges reservation "no address is reserved for container c1$T"
}

@test "netns deleted: CHECK reports it, DEL and a new ADD converge" {
	converges netns "CNI_NETNS /var/run/netns/c1$T does not exist"
}

# repairs KIND: damage, then the ADD repeated returns the same result and CHECK passes again
repairs() {
	hcni ADD bridge "$(conf)" c1$T
	assert_success
	FIRST=$output
	damage "$1"
	hcni ADD bridge "$(conf)" c1$T
	assert_success
	assert_equal "$(jq -cS . <<<"$output")" "$(jq -cS . <<<"$FIRST")"
	hcni CHECK bridge "$(with_prev "$FIRST")" c1$T
	assert_success
	ping_ok c1$T 10.200.44.1
	hcni DEL bridge "$(conf)" c1$T
	assert_success
	assert_equal "$(residue)" ""
}

@test "a repeated ADD repairs: SNAT rule, chain, element, table; spoof check rule; ruleset; gateway address" {
	local d
	for d in snat-rule snat-chain-flushed snat-element snat-table spoofchk-rule ruleset gateway-address; do
		echo "# damage: $d" >&3
		repairs "$d"
	done
}

# portmap chained after the bridge: pm_conf PREVRESULT
pm_conf() {
	jq -cn --arg n "$NET" --argjson p "$1" \
		'{cniVersion:"1.0.0",name:$n,type:"portmap",runtimeConfig:{portMappings:[{hostPort:18080,containerPort:80,protocol:"tcp"}]},prevResult:$p}'
}
pm_residue() { in_host nft list table inet cni_c_portmap 2>/dev/null | grep -E 'chain (a|p)-|tcp \. 18080 :' ; }

@test "portmap: each damage (attachment chain flushed, port chain flushed, its jump, map element, table, ruleset): CHECK reports it, DEL and a new ADD converge" {
	local d ch h pm
	for d in achain pchain pjump element table ruleset; do
		echo "# damage: $d" >&3
		hcni ADD bridge "$(conf)" c1$T
		assert_success
		pm=$(pm_conf "$output")
		hcni ADD portmap "$pm" c1$T
		assert_success
		hcni CHECK portmap "$pm" c1$T
		assert_success
		[[ -n $(pm_residue) ]]
		case $d in
		achain) in_host nft flush chain inet cni_c_portmap "$(in_host nft list table inet cni_c_portmap | awk '/chain a-/ {print $2; exit}')" ;;
		pchain) in_host nft flush chain inet cni_c_portmap p-tcp-18080 ;;
		pjump)
			h=$(in_host nft -a list chain inet cni_c_portmap p-tcp-18080 | awk '/jump a-/ {print $NF; exit}')
			in_host nft delete rule inet cni_c_portmap p-tcp-18080 handle "$h" ;;
		element) in_host nft delete element inet cni_c_portmap ports '{ tcp . 18080 }' ;;
		table) in_host nft delete table inet cni_c_portmap ;;
		ruleset) in_host nft flush ruleset ;;
		esac
		hcni CHECK portmap "$pm" c1$T
		assert_failure
		assert_equal "$(jqo .code)" 104
		hcni DEL portmap "$pm" c1$T
		assert_success
		assert_equal "$(pm_residue)" ""
		hcni ADD portmap "$pm" c1$T
		assert_success
		hcni CHECK portmap "$pm" c1$T
		assert_success
		hcni DEL portmap "$pm" c1$T
		assert_success
		assert_equal "$(pm_residue)" ""
		hcni DEL bridge "$(conf)" c1$T
		assert_success
		assert_equal "$(residue)" ""
	done
}
