#!/usr/bin/env bats
# Convergence after outside damage, continued (tamper.bats covers bridge with nftables SNAT and the
# spoof check, and portmap): a vxlan attachment, the iptables SNAT backend, GC of damaged
# attachments that are not valid any more, and a repeated ADD after the reservation was removed.
# Each case damages an attachment as an administrator, a firewall reload or another tool would;
# CHECK must report it (code 104, naming what is missing), DEL must succeed and leave nothing of
# it, and a new ADD with the same container ID must work and go with its DEL in turn. Everything
# happens inside the test's own namespaces (links, nft tables, iptables chains, ruleset).

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	DATA=$BATS_TEST_TMPDIR/ipam
}

teardown() {
	net_teardown
}

# ---- vxlan: host 1 holds the attachment c1, host 2 a peer container p2 on the same VNI ----

VNI=182
VTEP=vxlan$VNI
VXBR=vxbr$VNI

# vx_hosts: an underlay bridge (namespace u$T), hosts h$T1 and h$T2 on it: ul0 = 10.200.81.I/24
vx_hosts() {
	local i
	mkns u$T
	ip -n u$T link add ub type bridge
	ip -n u$T link set ub up
	for i in 1 2; do
		mkns h$T$i
		ip link add ul0 netns h$T$i type veth peer name p$i netns u$T
		ip -n u$T link set p$i master ub up
		ip -n h$T$i addr add 10.200.81.$i/24 dev ul0
		ip -n h$T$i link set ul0 up
	done
	HOSTNS=h${T}1
	mkns c1$T
	mkns p2$T
}

# vxconf HOST: the overlay 10.200.82.0/24, host I hands out .I1-.I9; peers: the other host and
# 10.200.81.3 (no one there), SNAT with the nftables backend
vxconf() {
	local i=$1 o=$((3 - $1))
	printf '{"cniVersion":"1.0.0","name":"vx%s","type":"vxlan","vni":%s,"underlayDevice":"ul0","peers":["10.200.81.%s","10.200.81.3"],"isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"%s/h%s","ranges":[[{"subnet":"10.200.82.0/24","rangeStart":"10.200.82.%s1","rangeEnd":"10.200.82.%s9"}]]}}' \
		"$T" "$VNI" "$o" "$DATA" "$i" "$i" "$i"
}
vx_prev() { vxconf 1 | jq -c --argjson p "$1" '.prevResult=$p'; }

# SNAT chains of the masq table in the current $HOSTNS
masq_chain() { in_host nft -j list chains inet | jq -r '.nftables[].chain? // empty | select(.table=="cni_c_masq" and (.name|startswith("a-"))) | .name'; }

# what is left of c1 on host 1: veths, VTEP, bridge, SNAT chains and elements, reservation
vx_residue() {
	in_host ip -o link show type veth | awk -F'[:@]' '$2 != " ul0" {print "veth" $2}'
	in_host ip -o link show type vxlan | awk -F': ' '{print "vtep " $2}'
	in_host ip -o link show type bridge | awk -F': ' '{print "bridge " $2}'
	masq_chain | sed 's/^/snat chain /'
	in_host nft list map inet cni_c_masq masq4 2>/dev/null | grep -o '10\.200\.82\.[0-9]*' | sed 's/^/snat element /'
	grep -l "c1$T" "$DATA/h1/vx$T"/10.* 2>/dev/null | sed 's/^/reservation /'
}

# vx_damage KIND: break c1's attachment on host 1
vx_damage() {
	local ip
	ip=$(jq -r '.ips[0].address' <<<"$FIRST")
	case $1 in
	vtep) in_host ip link del "$VTEP" ;;
	bridge) in_host ip link del "$VXBR" ;;
	host-veth) in_host ip link del "$(jq -r '.interfaces[1].name' <<<"$FIRST")" ;;
	container-iface) ip -n c1$T link del eth0 ;;
	fdb) in_host bridge fdb del 00:00:00:00:00:00 dev "$VTEP" dst 10.200.81.2 ;;
	snat-chain-flushed) in_host nft flush chain inet cni_c_masq "$(masq_chain)" ;;
	snat-table) in_host nft delete table inet cni_c_masq ;;
	ruleset) in_host nft flush ruleset ;;
	reservation) rm -f "$DATA/h1/vx$T/${ip%/*}" ;;
	netns) ip netns del c1$T ;;
	*) echo "unknown damage $1" >&2; return 1 ;;
	esac
}

# vx_converges KIND CHECK_MESSAGE (empty: CHECK cannot see it)
vx_converges() {
	[[ -e /var/run/netns/c1$T ]] || mkns c1$T
	hcni ADD vxlan "$(vxconf 1)" c1$T
	assert_success
	FIRST=$output
	hcni CHECK vxlan "$(vx_prev "$FIRST")" c1$T
	assert_success
	[[ -n $(vx_residue) ]]
	vx_damage "$1"
	if [[ -n $2 ]]; then
		hcni CHECK vxlan "$(vx_prev "$FIRST")" c1$T
		expect_error 104 "$2"
	fi
	hcni DEL vxlan "$(vxconf 1)" c1$T
	assert_success
	assert_equal "$(vx_residue)" ""
	[[ -e /var/run/netns/c1$T ]] || mkns c1$T
	hcni ADD vxlan "$(vxconf 1)" c1$T
	assert_success
	hcni CHECK vxlan "$(vx_prev "$output")" c1$T
	assert_success
	hcni DEL vxlan "$(vxconf 1)" c1$T
	assert_success
	assert_equal "$(vx_residue)" ""
}

@test "vxlan: each damage (VTEP, bridge, host veth, container interface, FDB peer, SNAT chain, SNAT table, ruleset, reservation, netns): CHECK reports it, DEL and a new ADD converge" {
	vx_hosts
	local d m
	while IFS='|' read -r d m; do
		echo "# damage: $d" >&3
		vx_converges "$d" "$m"
	done <<EOF
vtep|VTEP $VTEP is missing
bridge|bridge $VXBR not found
host-veth|interface eth0 not found in CNI_NETNS
container-iface|interface eth0 not found in CNI_NETNS
fdb|peer 10.200.81.2 has no FDB entry on $VTEP
snat-chain-flushed|has no masquerade rule for 10\.200\.82\.1[1-9]/24
snat-table|table inet cni_c_masq or its chain postrouting is missing
ruleset|is missing
reservation|no address is reserved for container c1$T
netns|CNI_NETNS /var/run/netns/c1$T does not exist
EOF
}

@test "vxlan: a repeated ADD repairs the VTEP, an FDB peer, the SNAT chain, table and ruleset, the reservation: same result, CHECK passes, traffic crosses the overlay" {
	vx_hosts
	HOSTNS=h${T}2 hcni ADD vxlan "$(vxconf 2)" p2$T
	assert_success
	local d ip strip='del(.interfaces[3].mac)'
	for d in vtep fdb snat-chain-flushed snat-table ruleset reservation; do
		echo "# damage: $d" >&3
		hcni ADD vxlan "$(vxconf 1)" c1$T
		assert_success
		FIRST=$output
		ip=$(jqo -r '.ips[0].address')
		ping_ok c1$T 10.200.82.21
		vx_damage "$d"
		hcni ADD vxlan "$(vxconf 1)" c1$T
		assert_success
		# a VTEP made again has a new MAC; everything else is the same
		assert_equal "$(jq -cS "$strip" <<<"$output")" "$(jq -cS "$strip" <<<"$FIRST")"
		hcni CHECK vxlan "$(vx_prev "$FIRST")" c1$T
		assert_success
		ping_ok c1$T 10.200.82.21
		ping_ok p2$T "${ip%/*}"
		in_host nft list map inet cni_c_masq masq4 | grep -qF "${ip%/*}"

		hcni DEL vxlan "$(vxconf 1)" c1$T
		assert_success
		assert_equal "$(vx_residue)" ""
	done
	HOSTNS=h${T}2 hcni DEL vxlan "$(vxconf 2)" p2$T
	assert_success
}

# ---- bridge with the iptables SNAT backend (iptables-nft here: its chains live in nf_tables) ----

br_setup() {
	HOSTNS=h$T
	BR=br$T
	NET=n$T
	mkns "$HOSTNS"
	mkns c1$T
}

# brconf SUBNET EXTRA: a bridge network with its gateway on the bridge
brconf() {
	printf '{"cniVersion":"1.0.0","name":"%s","type":"bridge","bridge":"%s","isGateway":true,%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"%s"}]]}}' \
		"$NET" "$BR" "$2" "$DATA" "$1"
}
ipt_conf() { brconf 10.200.83.0/24 '"ipMasq":true,"ipMasqBackend":"iptables"'; }
ipt_prev() { ipt_conf | jq -c --argjson p "$1" '.prevResult=$p'; }
ipt_chain() { in_host iptables -w -t nat -S 2>/dev/null | awk '$1=="-N" && $2 ~ /^CNI-/ {print $2}'; }

# what is left of c1: veths, iptables chains and rules naming CNI-, nft SNAT table, reservation
ipt_residue() {
	in_host ip -o link show type veth | awk -F'[:@]' '{print "veth" $2}'
	in_host iptables-save -t nat 2>/dev/null | grep -e CNI- | sed 's/^/iptables /'
	in_host nft list table inet cni_c_masq 2>/dev/null | grep -o 'chain a-.*' | sed 's/^/snat /'
	grep -l "c1$T" "$DATA/$NET"/10.* 2>/dev/null | sed 's/^/reservation /'
}

ipt_damage() {
	local ch
	case $1 in
	chain-flushed) in_host iptables -w -t nat -F "$(ipt_chain)" ;;
	chain-deleted)
		ch=$(ipt_chain)
		in_host iptables -w -t nat -F POSTROUTING && in_host iptables -w -t nat -F "$ch" && in_host iptables -w -t nat -X "$ch" ;;
	jump) in_host iptables -w -t nat -F POSTROUTING ;;
	nat-flushed) in_host iptables -w -t nat -F && in_host iptables -w -t nat -X ;;
	ruleset) in_host nft flush ruleset ;;
	*) echo "unknown damage $1" >&2; return 1 ;;
	esac
}

@test "ipMasqBackend iptables: chain flushed, its POSTROUTING jump deleted, chain and jump deleted, nat table flushed, ruleset flushed: CHECK reports it, DEL and a new ADD converge" {
	require iptables iptables-save
	br_setup
	local d m
	while IFS='|' read -r d m; do
		echo "# damage: $d" >&3
		hcni ADD bridge "$(ipt_conf)" c1$T
		assert_success
		FIRST=$output
		hcni CHECK bridge "$(ipt_prev "$FIRST")" c1$T
		assert_success
		[[ -n $(ipt_chain) ]]
		ipt_damage "$d"
		hcni CHECK bridge "$(ipt_prev "$FIRST")" c1$T
		expect_error 104 "$m"
		hcni DEL bridge "$(ipt_conf)" c1$T
		assert_success
		assert_equal "$(ipt_residue)" ""
		hcni ADD bridge "$(ipt_conf)" c1$T
		assert_success
		hcni CHECK bridge "$(ipt_prev "$output")" c1$T
		assert_success
		hcni DEL bridge "$(ipt_conf)" c1$T
		assert_success
		assert_equal "$(ipt_residue)" ""
	done <<EOF
chain-flushed|SNAT: iptables nat has no ACCEPT rule for 10\.200\.83\.[0-9]+'s subnet in chain CNI-
jump|SNAT: iptables nat has no POSTROUTING rule sending 10\.200\.83\.[0-9]+ to chain CNI-
chain-deleted|SNAT: iptables nat has no chain CNI-
nat-flushed|SNAT: iptables nat has no chain CNI-
ruleset|SNAT: iptables nat has no chain CNI-
EOF
}

@test "ipMasqBackend iptables: a repeated ADD repairs a flushed chain, a deleted jump, a deleted chain, a flushed nat table and ruleset: same result, CHECK passes" {
	require iptables iptables-save
	br_setup
	local d
	for d in chain-flushed jump chain-deleted nat-flushed ruleset; do
		echo "# damage: $d" >&3
		hcni ADD bridge "$(ipt_conf)" c1$T
		assert_success
		FIRST=$output
		ipt_damage "$d"
		hcni ADD bridge "$(ipt_conf)" c1$T
		assert_success
		assert_equal "$(jq -cS . <<<"$output")" "$(jq -cS . <<<"$FIRST")"
		hcni CHECK bridge "$(ipt_prev "$FIRST")" c1$T
		assert_success
		ping_ok c1$T 10.200.83.1
		hcni DEL bridge "$(ipt_conf)" c1$T
		assert_success
		assert_equal "$(ipt_residue)" ""
	done
}

# ---- GC of damaged attachments that are not in the valid list ----
# c1 is damaged and left out of the valid list, c2 is valid and must come through untouched.
# A container whose netns still lives keeps its veth, and with it its spoof check chain, through
# GC: the bridge may be shared with other networks and its ports carry no network identity (the
# reference's GC removes no links either); once the netns is gone, GC collects the chain too.

gc_conf() { brconf 10.200.84.0/24 '"ipMasq":true,"macspoofchk":true'; }
gc_prev() { gc_conf | jq -c --argjson p "$1" '.prevResult=$p'; }
gc_valid() { gc_conf | jq -c --arg c c2$T '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]'; }
snat_chains() { in_host nft -j list chains inet | jq -r '.nftables[].chain? // empty | select(.table=="cni_c_masq" and (.name|startswith("a-"))) | .name'; }
spoof_chains() { in_host nft -j list chains bridge | jq -r '.nftables[].chain? // empty | select(.name|startswith("s-")) | .name'; }

# what is left of c1 ($C1: its ADD result; $C1M, $C1S: its SNAT and spoof check chains); with
# "live", what a living container keeps (its veth and spoof check chain) is not counted
gc_residue() {
	local ip v
	ip=$(jq -r '.ips[0].address' <<<"$C1")
	v=$(jq -r '.interfaces[1].name' <<<"$C1")
	if [[ $1 != live ]]; then
		in_host ip link show "$v" >/dev/null 2>&1 && echo "veth $v"
		spoof_chains | grep -x "$C1S" | sed 's/^/spoofchk chain /'
		in_host nft list map bridge cni_c_spoof ports 2>/dev/null | grep -F "\"$v\"" | sed 's/^/spoofchk element /'
	fi
	snat_chains | grep -x "$C1M" | sed 's/^/snat chain /'
	in_host nft list map inet cni_c_masq masq4 2>/dev/null | grep -oF "${ip%/*} " | sed 's/^/snat element /'
	grep -l "c1$T" "$DATA/$NET"/10.* 2>/dev/null | sed 's/^/reservation /'
}

# veth_gone NAME: the kernel took the veth of a deleted netns (it does so asynchronously)
veth_gone() {
	local end=$((SECONDS + 10))
	while in_host ip link show "$1" >/dev/null 2>&1; do
		((SECONDS < end)) || fail "the kernel kept $1 of the deleted namespace"
		sleep 0.05
	done
}

# c2 as it was: CHECK passes, its SNAT element and spoof check in place, traffic to the gateway
gc_c2_intact() {
	hcni CHECK bridge "$(gc_prev "$C2")" c2$T
	assert_success
	ping_ok c2$T 10.200.84.1
}

@test "GC after damage (SNAT rule, SNAT chain flushed, SNAT element, spoof check rule, host veth, netns): the invalid attachment goes, the valid one stays" {
	br_setup
	mkns c2$T
	local d h ip v c2m c2s
	# c2 first: its chains are the ones there before c1's
	hcni ADD bridge "$(gc_conf)" c2$T
	assert_success
	C2=$output
	c2m=$(snat_chains)
	c2s=$(spoof_chains)
	for d in snat-rule snat-chain-flushed snat-element spoofchk-rule host-veth netns; do
		echo "# damage: $d" >&3
		[[ -e /var/run/netns/c1$T ]] || mkns c1$T
		hcni ADD bridge "$(gc_conf)" c1$T
		assert_success
		C1=$output
		C1M=$(snat_chains | grep -vxF "$c2m")
		C1S=$(spoof_chains | grep -vxF "$c2s")
		[[ -n $C1M && -n $C1S ]]
		ip=$(jq -r '.ips[0].address' <<<"$C1")
		v=$(jq -r '.interfaces[1].name' <<<"$C1")
		case $d in
		snat-rule)
			h=$(in_host nft -a list chain inet cni_c_masq "$C1M" | awk '/masquerade/ {print $NF; exit}')
			in_host nft delete rule inet cni_c_masq "$C1M" handle "$h" ;;
		snat-chain-flushed) in_host nft flush chain inet cni_c_masq "$C1M" ;;
		snat-element) in_host nft delete element inet cni_c_masq masq4 "{ ${ip%/*} }" ;;
		spoofchk-rule)
			h=$(in_host nft -a list chain bridge cni_c_spoof "$C1S" | awk '/drop/ {print $NF; exit}')
			in_host nft delete rule bridge cni_c_spoof "$C1S" handle "$h" ;;
		host-veth) in_host ip link del "$v" ;;
		netns) ip netns del c1$T; veth_gone "$v" ;;
		esac
		hcni GC bridge "$(gc_valid)" x
		assert_success
		if [[ -e /var/run/netns/c1$T ]] && in_host ip link show "$v" >/dev/null 2>&1; then
			# the container lives: its veth and spoof check stay; once it is gone, GC takes them
			assert_equal "$(gc_residue live)" ""
			ip netns del c1$T
			veth_gone "$v"
			hcni GC bridge "$(gc_valid)" x
			assert_success
		fi
		assert_equal "$(gc_residue)" ""
		gc_c2_intact
		# and a DEL after GC has nothing left to do, successfully
		hcni DEL bridge "$(gc_conf)" c1$T
		assert_success
		assert_equal "$(gc_residue)" ""
	done
	hcni DEL bridge "$(gc_conf)" c2$T
	assert_success
}

# portmap chained after the bridge: pm_conf PORT PREVRESULT
pm_conf() {
	jq -cn --arg n "$NET" --argjson port "$1" --argjson p "$2" \
		'{cniVersion:"1.0.0",name:$n,type:"portmap",runtimeConfig:{portMappings:[{hostPort:$port,containerPort:80,protocol:"tcp"}]},prevResult:$p}'
}
pm_valid() { jq -cn --arg n "$NET" --arg c c2$T '{cniVersion:"1.1.0",name:$n,type:"portmap","cni.dev/valid-attachments":[{"containerID":$c,"ifname":"eth0"}]}'; }
pm_chains() { in_host nft -j list chains inet | jq -r '.nftables[].chain? // empty | select(.table=="cni_c_portmap" and (.name|startswith("a-"))) | .name'; }
# what is left of c1's port mapping (18081; $C1A its attachment chain)
pm_residue() {
	pm_chains | grep -x "$C1A" | sed 's/^/portmap chain /'
	in_host nft list table inet cni_c_portmap 2>/dev/null | grep -E 'p-tcp-18081|tcp \. 18081 :|jump '"$C1A"
}

@test "portmap GC after damage (attachment chain flushed, port chain's jump deleted, map element deleted, host veth, netns): the invalid mapping goes, the valid one stays" {
	br_setup
	mkns c2$T
	local d h c2a c2m c2s pm1 pm2
	hcni ADD bridge "$(gc_conf)" c2$T
	assert_success
	C2=$output
	c2m=$(snat_chains)
	c2s=$(spoof_chains)
	pm2=$(pm_conf 18082 "$C2")
	hcni ADD portmap "$pm2" c2$T
	assert_success
	c2a=$(pm_chains)
	for d in achain pjump element host-veth netns; do
		echo "# damage: $d" >&3
		[[ -e /var/run/netns/c1$T ]] || mkns c1$T
		hcni ADD bridge "$(gc_conf)" c1$T
		assert_success
		C1=$output
		C1M=$(snat_chains | grep -vxF "$c2m")
		C1S=$(spoof_chains | grep -vxF "$c2s")
		pm1=$(pm_conf 18081 "$C1")
		hcni ADD portmap "$pm1" c1$T
		assert_success
		C1A=$(pm_chains | grep -vxF "$c2a")
		[[ -n $C1A && -n $(pm_residue) ]]
		case $d in
		achain) in_host nft flush chain inet cni_c_portmap "$C1A" ;;
		pjump)
			h=$(in_host nft -a list chain inet cni_c_portmap p-tcp-18081 | awk '/jump a-/ {print $NF; exit}')
			in_host nft delete rule inet cni_c_portmap p-tcp-18081 handle "$h" ;;
		element) in_host nft delete element inet cni_c_portmap ports '{ tcp . 18081 }' ;;
		host-veth) in_host ip link del "$(jq -r '.interfaces[1].name' <<<"$C1")" ;;
		netns) ip netns del c1$T ;;
		esac
		hcni GC portmap "$(pm_valid)" x
		assert_success
		assert_equal "$(pm_residue)" ""
		hcni CHECK portmap "$pm2" c2$T
		assert_success
		in_host nft list map inet cni_c_portmap ports | grep -q 'tcp \. 18082 : jump p-tcp-18082'
		# the runtime's DELs after GC: nothing left to do, successfully
		hcni DEL portmap "$pm1" c1$T
		assert_success
		hcni DEL bridge "$(gc_conf)" c1$T
		assert_success
		assert_equal "$(pm_residue)" ""
		assert_equal "$(gc_residue)" ""
	done
	gc_c2_intact
	hcni DEL portmap "$pm2" c2$T
	assert_success
	hcni DEL bridge "$(gc_conf)" c2$T
	assert_success
	assert_equal "$(in_host nft list table inet cni_c_portmap | grep -cE 'chain (a|p)-')" 0
}

# ---- the reservation file removed, then the ADD repeated ----

# A repeated ADD finds the container's interface still holding its address while the store lost
# its reservation: the ADD asks IPAM for that address again (the `ips` runtime config), so the
# result is the same. When the address went to another container meanwhile, IPAM is asked
# afresh: the container gets a new address and loses the old one (two containers with one
# address would be worse than a changed result).

res_conf() { brconf 10.200.85.0/24 '"ipMasq":true'; }
res_prev() { res_conf | jq -c --argjson p "$1" '.prevResult=$p'; }
ctr_addrs() { ip -n "$1" -4 -o addr show dev eth0 scope global | awk '{print $4}' | sort | xargs; }

@test "reservation removed, then a repeated ADD: the same address reserved again, same result, CHECK passes; DEL leaves nothing" {
	br_setup
	local ip
	hcni ADD bridge "$(res_conf)" c1$T
	assert_success
	FIRST=$output
	ip=$(jqo -r '.ips[0].address')
	rm -f "$DATA/$NET/${ip%/*}"
	hcni ADD bridge "$(res_conf)" c1$T
	assert_success
	assert_equal "$(jq -cS . <<<"$output")" "$(jq -cS . <<<"$FIRST")"
	assert_equal "$(head -1 "$DATA/$NET/${ip%/*}" | tr -d '\r')" "c1$T"
	assert_equal "$(ctr_addrs c1$T)" "$ip"
	hcni CHECK bridge "$(res_prev "$FIRST")" c1$T
	assert_success
	ping_ok c1$T 10.200.85.1
	hcni DEL bridge "$(res_conf)" c1$T
	assert_success
	assert_equal "$(ls "$DATA/$NET" | grep -c '^10\.')" 0
	assert_equal "$(in_host nft list table inet cni_c_masq | grep -c 'chain a-')" 0
	assert_equal "$(in_host ip -o link show type veth)" ""
}

@test "reservation removed and its address given to another container, then a repeated ADD: a new address, the old one gone from the interface, no conflict" {
	br_setup
	mkns c2$T
	local ip ip2
	hcni ADD bridge "$(res_conf)" c1$T
	assert_success
	ip=$(jqo -r '.ips[0].address')
	rm -f "$DATA/$NET/${ip%/*}"
	CNI_ARGS="IP=${ip%/*}" hcni ADD bridge "$(res_conf)" c2$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "$ip"
	hcni ADD bridge "$(res_conf)" c1$T
	assert_success
	ip2=$(jqo -r '.ips[0].address')
	[[ $ip2 != "$ip" ]]
	assert_equal "$(ctr_addrs c1$T)" "$ip2"
	assert_equal "$(ctr_addrs c2$T)" "$ip"
	hcni CHECK bridge "$(res_prev "$output")" c1$T
	assert_success
	ping_ok c1$T 10.200.85.1
	ping_ok c2$T 10.200.85.1
	ping_ok c1$T "${ip%/*}"
	hcni DEL bridge "$(res_conf)" c1$T
	assert_success
	hcni DEL bridge "$(res_conf)" c2$T
	assert_success
	assert_equal "$(ls "$DATA/$NET" | grep -c '^10\.')" 0
	assert_equal "$(in_host nft list table inet cni_c_masq | grep -c 'chain a-')" 0
}

# The iptables backend's chains carry the network only in their rules' comments ('name: "N" id:
# "ID"', the reference's layout): GC collects a chain by them, or by its POSTROUTING jump's. A
# chain flushed by hand after its jump was deleted names nothing any more: it stays (and DEL,
# which derives the name, removes it).
# ipt_unjump CHAIN: delete POSTROUTING's jump to CHAIN
ipt_unjump() {
	local n
	n=$(in_host iptables -w -t nat -L POSTROUTING -n --line-numbers | awk -v c="$1" '$2==c {print $1; exit}')
	[[ -n $n ]] && in_host iptables -w -t nat -D POSTROUTING "$n"
}
ipt_gc_valid() { ipt_conf | jq -c --arg c c2$T '.cniVersion="1.1.0" | ."cni.dev/valid-attachments"=[{"containerID":$c,"ifname":"eth0"}]'; }

@test "ipMasqBackend iptables GC after damage (none, chain flushed, jump deleted, netns): the invalid attachment's chain goes, the valid one's stays; a chain emptied and unjumped stays for DEL" {
	require iptables iptables-save
	br_setup
	mkns c2$T
	local d c2c ch
	hcni ADD bridge "$(ipt_conf)" c2$T
	assert_success
	C2=$output
	c2c=$(ipt_chain)
	for d in chain-flushed jump netns none both; do
		echo "# damage: $d" >&3
		[[ -e /var/run/netns/c1$T ]] || mkns c1$T
		hcni ADD bridge "$(ipt_conf)" c1$T
		assert_success
		ch=$(ipt_chain | grep -vxF "$c2c")
		[[ -n $ch ]]
		case $d in
		chain-flushed) in_host iptables -w -t nat -F "$ch" ;;
		jump) ipt_unjump "$ch" ;;
		netns) ip netns del c1$T ;;
		both)
			ipt_unjump "$ch"
			in_host iptables -w -t nat -F "$ch" ;;
		esac
		hcni GC bridge "$(ipt_gc_valid)" x
		assert_success
		if [[ $d == both ]]; then
			in_host iptables -w -t nat -S "$ch" >/dev/null
		else
			assert_equal "$(in_host iptables-save -t nat | grep -c -- "$ch")" 0
		fi
		# c2 untouched
		hcni CHECK bridge "$(ipt_prev "$C2")" c2$T
		assert_success
		hcni DEL bridge "$(ipt_conf)" c1$T
		assert_success
		assert_equal "$(in_host iptables-save -t nat | grep -c -- "$ch")" 0
	done
	hcni DEL bridge "$(ipt_conf)" c2$T
	assert_success
	assert_equal "$(ipt_residue)" ""
}
