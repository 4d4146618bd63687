#!/usr/bin/env bats
# The spec plumbing every plugin shares (common/skel.c): verbs, env, versions, errors, bad input.

setup() {
	load helpers/common
	DATA=$BATS_TEST_TMPDIR/data
	NET=$(tag)
	CONF='{"cniVersion":"1.1.0","name":"'$NET'","type":"host-local","ipam":{"type":"host-local","dataDir":"'$DATA'","ranges":[[{"subnet":"10.200.10.0/24"}]]}}'
}

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
	[ ! -e "$DATA" ] || [ -z "$(ls -A "$DATA/$NET" 2>/dev/null | grep -v -e lock -e .ccni)" ]
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
