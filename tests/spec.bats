#!/usr/bin/env bats
# The spec plumbing every plugin shares (common/skel.c): verbs, env, versions, errors, bad input.

setup() {
	load helpers/common
	load helpers/net
	DATA=$BATS_TEST_TMPDIR/data
	NET=$(tag)
	CONF='{"cniVersion":"1.1.0","name":"'$NET'","type":"host-local","ipam":{"type":"host-local","dataDir":"'$DATA'","ranges":[[{"subnet":"10.200.10.0/24"}]]}}'
}

teardown() { net_teardown; }

@test "VERSION lists every supported version, newest 1.1.0" {
	run env CNI_COMMAND=VERSION "$PLUGIN_DIR/host-local" </dev/null
	assert_success
	assert_equal "$(jqo .cniVersion)" "1.1.0"
	assert_equal "$(jqo -c .supportedVersions)" '["0.1.0","0.2.0","0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]'
}

@test "VERSION needs no other env and ignores stdin" {
	run env -i CNI_COMMAND=VERSION "$PLUGIN_DIR/host-local" <<<'garbage'
	assert_success
	assert_equal "$(jqo .cniVersion)" "1.1.0"
}

@test "no CNI_COMMAND prints the about text and exits 0, like the reference" {
	run env -i "$PLUGIN_DIR/host-local"
	assert_success
	assert_output --partial "CNI protocol versions supported: 0.1.0"
}

@test "unknown CNI_COMMAND is code 4" {
	run env -i CNI_COMMAND=FROB "$PLUGIN_DIR/host-local" </dev/null
	expect_error 4 "unknown CNI_COMMAND: FROB"
}

@test "ADD without CNI_CONTAINERID, CNI_NETNS, CNI_IFNAME, CNI_PATH names all four (code 4)" {
	run env -i CNI_COMMAND=ADD "$PLUGIN_DIR/host-local" <<<"$CONF"
	expect_error 4 'required env variables \[CNI_CONTAINERID,CNI_NETNS,CNI_IFNAME,CNI_PATH\] missing'
}

@test "each missing variable is named on its own for ADD and CHECK" {
	for verb in ADD CHECK; do
		for v in CNI_CONTAINERID CNI_NETNS CNI_IFNAME CNI_PATH; do
			run env -i CNI_COMMAND=$verb CNI_CONTAINERID=c1 CNI_NETNS=/x CNI_IFNAME=eth0 CNI_PATH=/x "$v=" \
				"$PLUGIN_DIR/host-local" <<<"$CONF"
			expect_error 4 "\\[$v\\] missing"
		done
	done
}

@test "DEL does not need CNI_NETNS but needs the container, ifname and path" {
	run env -i CNI_COMMAND=DEL CNI_CONTAINERID=c1 CNI_IFNAME=eth0 CNI_PATH=/x "$PLUGIN_DIR/host-local" <<<"$CONF"
	assert_success
	run env -i CNI_COMMAND=DEL "$PLUGIN_DIR/host-local" <<<"$CONF"
	expect_error 4 '\[CNI_CONTAINERID,CNI_IFNAME,CNI_PATH\] missing'
}

@test "GC and STATUS need only CNI_PATH" {
	run env -i CNI_COMMAND=GC CNI_PATH=/x "$PLUGIN_DIR/host-local" <<<"$CONF"
	assert_success
	run env -i CNI_COMMAND=STATUS CNI_PATH=/x "$PLUGIN_DIR/host-local" <<<"$CONF"
	assert_success
	run env -i CNI_COMMAND=STATUS "$PLUGIN_DIR/host-local" <<<"$CONF"
	expect_error 4 '\[CNI_PATH\] missing'
}

@test "CNI_CONTAINERID with path characters is code 4 naming it" {
	for id in '../etc' 'a/b' '-x' 'a b'; do
		CID=$id cni ADD host-local "$CONF"
		expect_error 4 "CNI_CONTAINERID"
	done
	[ ! -e "$DATA" ] || [ -z "$(ls -A "$DATA/$NET" 2>/dev/null | grep -v -e lock)" ]
}

@test "invalid CNI_IFNAME is code 4" {
	for ifn in 'a234567890123456' '.' '..' 'a/b' 'a:b' 'a b'; do
		IFNAME=$ifn cni ADD host-local "$CONF"
		expect_error 4 "CNI_IFNAME"
	done
}

@test "cniVersion we do not serve is code 1 with details" {
	cni ADD host-local "${CONF/1.1.0/2.0.0}"
	expect_error 1 'incompatible CNI versions: config is "2.0.0"'
	jqo .details | grep -q 'plugin supports'
}

@test "missing cniVersion means 0.1.0 (as libcni), and gets the 0.1.0 result shape" {
	cni ADD host-local "$(jq -c 'del(.cniVersion)' <<<"$CONF")"
	assert_success
	assert_equal "$(jqo .cniVersion)" "0.1.0"
	assert_equal "$(jqo .ip4.ip)" "10.200.10.2/24"
}

@test "CHECK needs cniVersion 0.4.0 or later; GC and STATUS need 1.1.0 (code 1)" {
	cni CHECK host-local "${CONF/1.1.0/0.3.1}"
	expect_error 1 "does not allow CHECK"
	cni GC host-local "${CONF/1.1.0/1.0.0}"
	expect_error 1 "does not allow GC"
	cni STATUS host-local "${CONF/1.1.0/1.0.0}"
	expect_error 1 "does not allow STATUS"
}

@test "malformed configs each get their exact code and name the field" {
	local -a cases=(
		# code | regex | config
		'6|not valid JSON|{"cniVersion":"1.0.0","name":'
		'6|not valid JSON|'
		'6|must be a JSON object|["a"]'
		'7|"name".*required|{"cniVersion":"1.0.0","type":"host-local"}'
		'7|"name".*invalid characters|{"cniVersion":"1.0.0","name":"../../etc","ipam":{}}'
		'7|"name".*invalid characters|{"cniVersion":"1.0.0","name":"a/b","ipam":{}}'
		'6|"name" must be a string|{"cniVersion":"1.0.0","name":5}'
		'6|"cniVersion" must be a string|{"cniVersion":1,"name":"n"}'
		'7|"ipam" is required|{"cniVersion":"1.0.0","name":"n","type":"host-local"}'
		'6|"ipam" must be an object|{"cniVersion":"1.0.0","name":"n","ipam":[]}'
		'7|ipam.ranges.*no IP ranges|{"cniVersion":"1.0.0","name":"n","ipam":{"type":"host-local"}}'
		'7|ipam.ranges\[0\]\[0\].subnet.*not a CIDR|{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.200.0.0/40"}]]}}'
		'7|ipam.ranges\[0\]\[0\].subnet.*too small|{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.200.0.0/32"}]]}}'
		'7|ipam.ranges\[0\]\[0\].gateway.*outside subnet|{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.200.0.0/24","gateway":"10.201.0.1"}]]}}'
		'7|ipam.subnet.*host bits|{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.200.0.1/24"}}'
		'7|range set 0 overlaps with range set 1|{"cniVersion":"1.0.0","name":"n","ipam":{"ranges":[[{"subnet":"10.200.0.0/24"}],[{"subnet":"10.200.0.0/16"}]]}}'
		'6|"prevResult" must be an object|{"cniVersion":"1.0.0","name":"n","prevResult":"x","ipam":{"subnet":"10.200.0.0/24"}}'
		'6|prevResult.ips\[0\].address|{"cniVersion":"1.0.0","name":"n","prevResult":{"cniVersion":"1.0.0","ips":[{"address":"nope"}]},"ipam":{"subnet":"10.200.0.0/24"}}'
		'6|ipam.routes.*must be an array|{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.200.0.0/24","routes":{}}}'
		'6|ipam.dataDir.*must be a string|{"cniVersion":"1.0.0","name":"n","ipam":{"subnet":"10.200.0.0/24","dataDir":false}}'
		'6|runtimeConfig.ips\[0\].*must be a string|{"cniVersion":"1.0.0","name":"n","runtimeConfig":{"ips":[1]},"ipam":{"subnet":"10.200.0.0/24"}}'
		'7|args.cni.ips\[0\].*not an IP address|{"cniVersion":"1.0.0","name":"n","args":{"cni":{"ips":["x"]}},"ipam":{"subnet":"10.200.0.0/24"}}'
	)
	local c code re conf
	for c in "${cases[@]}"; do
		code=${c%%|*}
		c=${c#*|}
		re=${c%%|*}
		conf=${c#*|}
		# keep every test's store in its own temp dir (configs that are not JSON stay as they are)
		conf=$(jq -c --arg d "$DATA" 'if (.ipam|type) == "object" and (.ipam|has("dataDir")|not)
			then .ipam.dataDir = $d else . end' <<<"$conf" 2>/dev/null || printf '%s' "$conf")
		cni ADD host-local "$conf"
		expect_error "$code" "$re"
	done
	# nothing was reserved by any of them
	[ -z "$(find "$DATA" -type f -name '10.*' 2>/dev/null)" ]
}

@test "stdin over 1 MiB is refused (code 6)" {
	local big
	big=$(head -c 1100000 /dev/zero | tr '\0' ' ')
	cni ADD host-local "${CONF%\}} ,\"pad\":\"x\" $big}"
	expect_error 6 "larger than 1048576 bytes"
}

@test "deep nesting and non-UTF-8 are decode errors (code 6)" {
	local deep
	deep=$(printf '[%.0s' $(seq 1 2000))
	cni ADD host-local "{\"cniVersion\":\"1.0.0\",\"name\":\"n\",\"x\":$deep"
	expect_error 6 "not valid JSON"
	cni ADD host-local "$(printf '{"cniVersion":"1.0.0","name":"n\xff"}')"
	expect_error 6 "not valid UTF-8"
}

@test "CNI_ARGS: unknown keys refused unless IgnoreUnknown; containerd labels accepted" {
	CNI_ARGS='FOO=bar' cni ADD host-local "$CONF"
	expect_error 6 'unknown argument "FOO=bar"'
	CNI_ARGS='FOO=bar;IgnoreUnknown=1' cni ADD host-local "$CONF" c-ign
	assert_success
	CNI_ARGS='K8S_POD_NAMESPACE=ns;K8S_POD_NAME=p;K8S_POD_INFRA_CONTAINER_ID=abc;K8S_POD_UID=u' cni ADD host-local "$CONF" c-k8s
	assert_success
	CNI_ARGS='garbage' cni ADD host-local "$CONF" c-bad
	expect_error 6 'invalid pair "garbage"'
}

@test "errors carry the config's cniVersion" {
	cni ADD host-local "$(jq -c '.cniVersion="0.4.0" | .ipam.ranges=[]' <<<"$CONF")"
	expect_error 7 "no IP ranges"
	assert_equal "$(jqo .cniVersion)" "0.4.0"
}

# shape030: what in $output is not a 0.3.0 result (SPEC 0.3.0, libcni's types040.Result): one line
# per violation, nothing when it is one. Top level: cniVersion "0.3.0", interfaces, ips (at least
# one), routes, dns and nothing else; interfaces {name, mac, sandbox}; ips {version, address,
# gateway, interface} with version "4" or "6" as the address is, interface an index into
# interfaces; routes {dst, gw}; dns {nameservers, domain, search, options}. So no 1.x field:
# no IP without "version", no interface mtu/socketPath/pciID, no route mtu/advmss/priority/table/scope.
shape030() {
	jq -r '
		def only($k): (keys - $k) as $x | if ($x | length) > 0 then "\(tojson): not in 0.3.0: \($x | join(","))" else empty end;
		(if .cniVersion != "0.3.0" then "cniVersion is \(.cniVersion | tojson)" else empty end),
		only(["cniVersion", "interfaces", "ips", "routes", "dns"]),
		(if (.ips | type) != "array" or (.ips | length) == 0 then "no ips[]" else empty end),
		((.interfaces // [])[] | only(["name", "mac", "sandbox"]), (if (.name | type) != "string" then "interface without a name" else empty end)),
		((.interfaces // []) as $ifs | (.ips // [])[] | only(["version", "address", "gateway", "interface"]),
			(if .version != (if (.address | tostring | test(":")) then "6" else "4" end) then "ip \(.address): version \(.version | tojson)" else empty end),
			(if has("interface") and ((.interface | type) != "number" or .interface < 0 or .interface >= ($ifs | length))
				then "ip \(.address): interface \(.interface | tojson) is not an index into interfaces" else empty end)),
		((.routes // [])[] | only(["dst", "gw"])),
		(.dns // {} | only(["nameservers", "domain", "search", "options"]))' <<<"$output"
}

@test "0.3.0 results from every plugin: host-local, bridge, portmap, vxlan, loopback (ips with version, interfaces, no 1.x field)" {
	local T
	T=$(tag)
	HOSTNS=h$T
	mkns "$HOSTNS"
	mkns b$T
	mkns x$T
	mkns l$T
	ip netns exec l$T ip link set lo down
	printf 'nameserver 10.200.0.53\ndomain example.test\nsearch a.example.test\noptions ndots:2\n' >"$BATS_TEST_TMPDIR/resolv.conf"
	# ipam N: dual-stack host-local on 10.200.N.0/24 and fd00:200:N::/64, two routes (one with
	# 1.1.0's route attributes, which a 0.3.0 result must not carry), dns
	ipam() {
		printf '"ipam":{"type":"host-local","dataDir":"%s","resolvConf":"%s","routes":[{"dst":"10.200.99.0/24","gw":"10.200.%s.1","mtu":1400,"priority":5},{"dst":"fd00:200:99::/64"}],"ranges":[[{"subnet":"10.200.%s.0/24"}],[{"subnet":"fd00:200:%s::/64"}]]}' \
			"$DATA" "$BATS_TEST_TMPDIR/resolv.conf" "$1" "$1" "$1"
	}

	# host-local: no interfaces; both families, gateways, routes, dns
	local hl='{"cniVersion":"0.3.0","name":"hl'$T'","type":"host-local",'$(ipam 31)'}'
	cni ADD host-local "$hl" hl1
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -c '[has("interfaces"), [.ips[] | [.version, .address, .gateway, has("interface")]]]')" \
		'[false,[["4","10.200.31.2/24","10.200.31.1",false],["6","fd00:200:31::2/64","fd00:200:31::1",false]]]'
	assert_equal "$(jqo -c .routes)" '[{"dst":"10.200.99.0/24","gw":"10.200.31.1"},{"dst":"fd00:200:99::/64"}]'
	assert_equal "$(jqo -c .dns)" '{"nameservers":["10.200.0.53"],"domain":"example.test","search":["a.example.test"],"options":["ndots:2"]}'

	# bridge: the bridge, the host veth, eth0 in the sandbox; the ips point at eth0
	local br='{"cniVersion":"0.3.0","name":"br'$T'","type":"bridge","bridge":"br'$T'","isGateway":true,'$(ipam 32)'}'
	hcni ADD bridge "$br" b$T
	assert_success
	assert_equal "$(shape030)" ""
	local bres=$output
	assert_equal "$(jqo -c '[.interfaces[] | [.name, has("mac"), .sandbox]]')" \
		"[[\"br$T\",true,null],[\"$(ip -n "$HOSTNS" -o link show master br$T | awk -F': ' '{print $2}' | cut -d@ -f1)\",true,null],[\"eth0\",true,\"/var/run/netns/b$T\"]]"
	assert_equal "$(jqo -c '[.ips[] | [.version, .address, .gateway, .interface]]')" \
		'[["4","10.200.32.2/24","10.200.32.1",2],["6","fd00:200:32::2/64","fd00:200:32::1",2]]'
	ip -n b$T -o addr show dev eth0 | grep -q 'inet 10.200.32.2/24'

	# portmap, chained after the bridge: the 0.3.0 prevResult comes back as it was
	local pm
	pm=$(jq -c --argjson p "$bres" '{cniVersion:"0.3.0",name:"br\($t)",type:"portmap",runtimeConfig:{portMappings:[{hostPort:18031,containerPort:80,protocol:"tcp"}]},prevResult:$p}' --arg t "$T" <<<'{}')
	hcni ADD portmap "$pm" b$T
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -S -c .)" "$(jq -S -c . <<<"$bres")"
	ip netns exec "$HOSTNS" nft list ruleset | grep -q 18031

	# vxlan: eth0 in the sandbox among the interfaces, the ip pointing at it
	ip -n "$HOSTNS" link add ul0 type veth peer name ul0p
	ip -n "$HOSTNS" addr add 10.200.33.1/24 dev ul0
	ip -n "$HOSTNS" link set ul0 up
	ip -n "$HOSTNS" link set ul0p up
	local vx='{"cniVersion":"0.3.0","name":"vx'$T'","type":"vxlan","vni":42,"underlayDevice":"ul0","peers":["10.200.33.2"],"ipam":{"type":"host-local","dataDir":"'$DATA'","ranges":[[{"subnet":"10.200.34.0/24"}]]}}'
	hcni ADD vxlan "$vx" x$T
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -c '[.ips[] | [.version, .address, .gateway]]')" '[["4","10.200.34.2/24","10.200.34.1"]]'
	assert_equal "$(jqo -c '.interfaces[.ips[0].interface] | [.name, .sandbox]')" "[\"eth0\",\"/var/run/netns/x$T\"]"

	# loopback: lo in the sandbox, 127.0.0.1/8 and ::1/128 on it
	hcni ADD loopback '{"cniVersion":"0.3.0","name":"lo'$T'","type":"loopback"}' l$T
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -c .)" "{\"cniVersion\":\"0.3.0\",\"interfaces\":[{\"name\":\"lo\",\"mac\":\"00:00:00:00:00:00\",\"sandbox\":\"/var/run/netns/l$T\"}],\"ips\":[{\"version\":\"4\",\"interface\":0,\"address\":\"127.0.0.1/8\"},{\"version\":\"6\",\"interface\":0,\"address\":\"::1/128\"}],\"dns\":{}}"

	# loopback passing a prevResult through: what 0.3.0 has no field for (an interface's mtu,
	# socketPath, pciID) does not come out, as libcni's types040 would drop it
	local prev='{"cniVersion":"0.3.0","interfaces":[{"name":"eth0","mac":"02:00:00:00:00:01","sandbox":"/var/run/netns/l'$T'","mtu":1400,"socketPath":"/run/x.sock","pciID":"0000:00:01.0"}],"ips":[{"version":"4","address":"10.200.37.2/24","interface":0}],"routes":[{"dst":"10.200.98.0/24","mtu":1400,"advmss":1360,"priority":5,"table":100,"scope":0}]}'
	hcni ADD loopback "$(jq -c --argjson p "$prev" '.prevResult=$p' <<<'{"cniVersion":"0.3.0","name":"lo'$T'","type":"loopback"}')" l$T
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -c '[.interfaces, .ips]')" "[[{\"name\":\"eth0\",\"mac\":\"02:00:00:00:00:01\",\"sandbox\":\"/var/run/netns/l$T\"}],[{\"version\":\"4\",\"interface\":0,\"address\":\"10.200.37.2/24\"}]]"

	# DEL at 0.3.0, in reverse
	hcni DEL loopback '{"cniVersion":"0.3.0","name":"lo'$T'","type":"loopback"}' l$T
	assert_success
	hcni DEL vxlan "$vx" x$T
	assert_success
	hcni DEL portmap "$pm" b$T
	assert_success
	hcni DEL bridge "$br" b$T
	assert_success
	cni DEL host-local "$hl" hl1
	assert_success
	[ -z "$(find "$DATA" -type f -name '10.*' -o -type f -name 'fd00*')" ]
}

@test "0.3.0 results from vlan, both modes (802.1Q: tests/vm/run.sh BUILD spec.bats:^0.3.0.results.from.vlan runs it in the VM lane)" {
	local T
	T=$(tag)
	HOSTNS=h$T
	mkns "$HOSTNS"
	ip -n "$HOSTNS" link add trunk type veth peer name trunkp
	ip -n "$HOSTNS" link set trunk up
	ip -n "$HOSTNS" link set trunkp up
	if ! ip -n "$HOSTNS" link add link trunk name t.9 type vlan id 9 2>/dev/null; then
		skip "the kernel has no 802.1Q (the VM lane runs this: tests/vm/run.sh BUILD spec.bats:^0.3.0.results.from.vlan)"
	fi
	ip -n "$HOSTNS" link del t.9
	mkns r$T
	mkns g$T
	local ref='{"cniVersion":"0.3.0","name":"vr'$T'","type":"vlan","master":"trunk","vlanId":101,"ipam":{"type":"host-local","dataDir":"'$DATA'","ranges":[[{"subnet":"10.200.35.0/24"}]]}}'
	local brd='{"cniVersion":"0.3.0","name":"vb'$T'","type":"vlan","master":"trunk","vlanId":102,"bridge":"brv'$T'","isGateway":true,"ipam":{"type":"host-local","dataDir":"'$DATA'","ranges":[[{"subnet":"10.200.36.0/24"}]]}}'
	# reference mode: the sub-interface itself is eth0 in the sandbox
	hcni ADD vlan "$ref" r$T
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -c '[(.interfaces[.ips[0].interface] | .name, .sandbox), [.ips[] | .version, .address]]')" \
		"[\"eth0\",\"/var/run/netns/r$T\",[\"4\",\"10.200.35.2/24\"]]"
	# bridged mode: the per-VLAN bridge, its sub-interface, the veth pair; the ip points at eth0
	hcni ADD vlan "$brd" g$T
	assert_success
	assert_equal "$(shape030)" ""
	assert_equal "$(jqo -c '[(.interfaces[.ips[0].interface] | .name, .sandbox), [.ips[] | .version, .address, .gateway]]')" \
		"[\"eth0\",\"/var/run/netns/g$T\",[\"4\",\"10.200.36.2/24\",\"10.200.36.1\"]]"
	jqo -e '.interfaces | map(.name) | index("trunk.102")' >/dev/null
	hcni DEL vlan "$brd" g$T
	assert_success
	hcni DEL vlan "$ref" r$T
	assert_success
}
