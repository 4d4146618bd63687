#!/usr/bin/env bats
# Our plugins under the real libcni (Debian's golang-github-appc-cni-dev, built here in GOPATH mode,
# offline), as containerd and CRI-O call them: conflists, chaining, the result cache, CHECK and DEL
# from the cache, at cniVersion 0.3.1, 0.4.0 and 1.0.0; every result must parse in libcni's types.

setup_file() {
	export DRIVER=$BATS_FILE_TMPDIR/libcni-driver BUILD_LOG=$BATS_FILE_TMPDIR/build.log
	# the VM lane has no Go: tests/vm/run.sh builds the driver on the host and ships it in the build
	if [ -x "$PLUGIN_DIR/test-tools/libcni-driver" ]; then
		cp "$PLUGIN_DIR/test-tools/libcni-driver" "$DRIVER"
	elif ! command -v go >/dev/null; then
		echo "go is not installed (golang-go), and $PLUGIN_DIR/test-tools/libcni-driver was not shipped" >"$BUILD_LOG"
	elif [ ! -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ]; then
		echo "libcni's sources are missing: /usr/share/gocode/src/github.com/containernetworking/cni/libcni (golang-github-appc-cni-dev)" >"$BUILD_LOG"
	else
		(cd "$BATS_TEST_DIRNAME/libcni" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$BATS_FILE_TMPDIR/gocache \
			go build -o "$DRIVER" driver.go) >"$BUILD_LOG" 2>&1 || echo "go build exited with status $?" >>"$BUILD_LOG"
	fi
}

setup() {
	load helpers/common
	load helpers/net
	# every test here drives the plugins through the driver: no driver is a failure, never a skip
	[ -x "$DRIVER" ] || fail "$(printf 'the libcni driver (tests/libcni/driver.go) did not build; build log:\n'; head -c 4000 "$BUILD_LOG" 2>/dev/null)"
	T=$(tag)
	HOSTNS=h$T
	mkns "$HOSTNS"
	CACHE=$BATS_TEST_TMPDIR/cache
	DATA=$BATS_TEST_TMPDIR/ipam
}

teardown() { net_teardown; }

# drive VERB LIST CTR [CAP_ARGS]: libcni in the host namespace for container namespace CTR
drive() {
	run ip netns exec "$HOSTNS" env CNI_PATH="${CNI_PATH_OVERRIDE:-$PLUGIN_DIR}" "$DRIVER" "$1" "$2" /var/run/netns/$3 "$3" eth0 "$CACHE" "${4:-}"
}

# drive_ok VERB LIST CTR [CAP_ARGS]: drive, as a condition (for wait_for)
drive_ok() { drive "$@"; [[ $status == 0 ]]; }

# wait_for SECONDS CMD...: poll CMD until it succeeds; fails after SECONDS
wait_for() {
	local end=$((SECONDS + $1))
	shift
	until "$@"; do
		((SECONDS < end)) || return 1
		sleep 0.2
	done
}

# vlan_trunk: the master "trunk" (a veth) in the host namespace; skips on a kernel without 802.1Q
vlan_trunk() {
	ip -n "$HOSTNS" link add trunk type veth peer name trunkp
	ip -n "$HOSTNS" link set trunk up
	ip -n "$HOSTNS" link set trunkp up
	ip -n "$HOSTNS" link add link trunk name t.9 type vlan id 9 2>/dev/null || skip "the kernel has no 802.1Q (the VM lane runs this)"
	ip -n "$HOSTNS" link del t.9
}

# reserved DIR: the addresses host-local holds in DIR, one a line
reserved() { ls "$1" 2>/dev/null | grep '^10\.' || true; }

# list VERSION [extra plugins JSON, comma-prefixed]: a bridge conflist
list() {
	local f=$BATS_TEST_TMPDIR/list-$1.conflist
	printf '{"cniVersion":"%s","name":"n%s","plugins":[{"type":"bridge","bridge":"br%s","isDefaultGateway":true,"ipMasq":true,"capabilities":{"mac":true},"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.208.0/24"}],[{"subnet":"fd00:200:d0::/64"}]]}}%s]}' \
		"$1" "$T" "$T" "$DATA" "${2:-}" >"$f"
	echo "$f"
}

@test "bridge at cniVersion 0.3.1, 0.4.0 and 1.0.0: ADD, CHECK, DEL through libcni; results parse" {
	local v f
	for v in 0.3.1 0.4.0 1.0.0; do
		f=$(list $v)
		mkns a$v$T
		drive add "$f" a$v$T '{"mac":"02:00:00:d0:00:01"}'
		assert_success
		assert_equal "$(jqo -r '.interfaces[2].mac')" "02:00:00:d0:00:01"
		assert_equal "$(jqo -r '.ips[0].interface')" 2
		[ -f "$CACHE/results/n$T-a$v$T-eth0" ]
		if [[ $v != 0.3.1 ]]; then
			drive check "$f" a$v$T
			assert_success
		fi
		drive del "$f" a$v$T
		assert_success
		[ ! -f "$CACHE/results/n$T-a$v$T-eth0" ]
		drive del "$f" a$v$T
		assert_success
	done
}

@test "two containers attached through libcni ping each other; CHECK catches tampering" {
	local f
	f=$(list 1.0.0)
	mkns a$T
	mkns b$T
	drive add "$f" a$T; assert_success
	drive add "$f" b$T; assert_success
	ping_ok a$T 10.200.208.3
	ping_ok b$T fd00:200:d0::2
	ip -n a$T route del default
	drive check "$f" a$T
	assert_failure
	assert_output --partial 'route to 0.0.0.0/0'
	drive del "$f" a$T; assert_success
	drive del "$f" b$T; assert_success
}

@test "chained: bridge then portmap (portMappings capability), then the reference's tuning" {
	require "$REF_DIR/tuning"
	local f
	f=$(list 1.0.0 ',{"type":"portmap","capabilities":{"portMappings":true}},{"type":"tuning","sysctl":{"net.ipv4.conf.eth0.arp_accept":"1"}}')
	mkns a$T
	mkdir -p "$BATS_TEST_TMPDIR/path"
	ln -s "$PLUGIN_DIR"/* "$BATS_TEST_TMPDIR/path/"
	ln -s "$REF_DIR/tuning" "$BATS_TEST_TMPDIR/path/tuning"
	CNI_PATH_OVERRIDE=$BATS_TEST_TMPDIR/path drive add "$f" a$T '{"portMappings":[{"hostPort":18080,"containerPort":80,"protocol":"tcp"}]}'
	assert_success
	assert_equal "$(ip netns exec a$T cat /proc/sys/net/ipv4/conf/eth0/arp_accept)" 1
	CNI_PATH_OVERRIDE=$BATS_TEST_TMPDIR/path drive check "$f" a$T
	assert_success
	CNI_PATH_OVERRIDE=$BATS_TEST_TMPDIR/path drive del "$f" a$T
	assert_success
}

@test "vxlan through libcni at 1.0.0, with portmap chained" {
	ip -n "$HOSTNS" link add ul0 type veth peer name ul0p
	ip -n "$HOSTNS" addr add 10.200.209.1/24 dev ul0
	ip -n "$HOSTNS" link set ul0 up
	local f=$BATS_TEST_TMPDIR/vx.conflist
	printf '{"cniVersion":"1.0.0","name":"vx%s","plugins":[{"type":"vxlan","vni":77,"underlayDevice":"ul0","peers":["10.200.209.2"],"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.210.0/24"}]]}},{"type":"portmap","capabilities":{"portMappings":true}}]}' \
		"$T" "$DATA" >"$f"
	mkns a$T
	mkns b$T
	drive add "$f" a$T '{"portMappings":[{"hostPort":18081,"containerPort":80}]}'
	assert_success
	drive add "$f" b$T
	assert_success
	ping_ok a$T 10.200.210.3
	drive check "$f" a$T
	assert_success
	drive del "$f" a$T; assert_success
	drive del "$f" b$T; assert_success
	run ip -n "$HOSTNS" link show vxlan77
	assert_failure
}

@test "vlan through libcni (VM lane): bridged mode with portmap chained at 1.0.0, reference mode at 0.3.1" {
	vlan_trunk
	local f=$BATS_TEST_TMPDIR/vl.conflist g=$BATS_TEST_TMPDIR/vr.conflist
	printf '{"cniVersion":"1.0.0","name":"vl%s","plugins":[{"type":"vlan","master":"trunk","vlanId":100,"bridge":"brv%s","isGateway":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.211.0/24"}]]}},{"type":"portmap","capabilities":{"portMappings":true}}]}' \
		"$T" "$T" "$DATA" >"$f"
	printf '{"cniVersion":"0.3.1","name":"vr%s","plugins":[{"type":"vlan","master":"trunk","vlanId":200,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.212.0/24"}]]}}]}' \
		"$T" "$DATA" >"$g"
	mkns a$T
	mkns b$T
	mkns c$T
	drive add "$f" a$T '{"portMappings":[{"hostPort":18082,"containerPort":80}]}'
	assert_success
	drive add "$f" b$T
	assert_success
	ping_ok a$T 10.200.211.3
	ping_ok b$T 10.200.211.1
	drive check "$f" a$T
	assert_success
	drive add "$g" c$T
	assert_success
	ip -n c$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 200'
	# (no CHECK: 0.3.1 has none, libcni refuses it)
	drive del "$g" c$T; assert_success
	drive del "$f" a$T; assert_success
	drive del "$f" b$T; assert_success
	run ip -n "$HOSTNS" link show trunk.100
	assert_failure
}

@test "vxlan through libcni: DEL after the netns is gone succeeds; no veth, reservation or cache entry is left, nor the VTEP after the last" {
	ip -n "$HOSTNS" link add ul0 type veth peer name ul0p
	ip -n "$HOSTNS" addr add 10.200.213.1/24 dev ul0
	ip -n "$HOSTNS" link set ul0 up
	local f=$BATS_TEST_TMPDIR/vx.conflist va vb
	printf '{"cniVersion":"1.0.0","name":"vx%s","plugins":[{"type":"vxlan","vni":78,"underlayDevice":"ul0","peers":["10.200.213.2"],"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.214.0/24"}]]}}]}' \
		"$T" "$DATA" >"$f"
	mkns a$T
	mkns b$T
	drive add "$f" a$T; assert_success
	va=$(jqo -r '.interfaces[] | select(.sandbox == null and (.name | startswith("veth"))) | .name')
	drive add "$f" b$T; assert_success
	vb=$(jqo -r '.interfaces[] | select(.sandbox == null and (.name | startswith("veth"))) | .name')
	[ -n "$va" ] && [ -n "$vb" ]
	ping_ok a$T 10.200.214.3
	assert_equal "$(reserved "$DATA/vx$T" | wc -l)" 2
	[ -f "$CACHE/results/vx$T-a$T-eth0" ]
	# the runtime lost the netns before DEL; the kernel removes the veth pair with it
	ip netns del a$T
	wait_for 20 bash -c "! ip -n $HOSTNS link show $va >/dev/null 2>&1"
	drive del "$f" a$T
	assert_success
	[ ! -f "$CACHE/results/vx$T-a$T-eth0" ]
	assert_equal "$(reserved "$DATA/vx$T")" 10.200.214.3
	ip -n "$HOSTNS" link show vxlan78 >/dev/null # b still uses it
	# the last one: DEL straight after the netns goes, racing the kernel's cleanup of its veth
	ip netns del b$T
	drive del "$f" b$T
	assert_success
	[ ! -f "$CACHE/results/vx$T-b$T-eth0" ]
	assert_equal "$(reserved "$DATA/vx$T")" ""
	run ip -n "$HOSTNS" -o link show
	refute_output --partial "$vb"
	refute_output --partial vxlan78
	refute_output --partial vxbr78
	drive del "$f" b$T
	assert_success
}

@test "vlan reference mode through libcni (VM lane): DEL after the netns is gone succeeds, clears cache and reservation, frees the VLAN ID" {
	vlan_trunk
	local f=$BATS_TEST_TMPDIR/vr.conflist
	printf '{"cniVersion":"1.0.0","name":"vr%s","plugins":[{"type":"vlan","master":"trunk","vlanId":300,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.215.0/24"}]]}}]}' \
		"$T" "$DATA" >"$f"
	mkns a$T
	mkns b$T
	drive add "$f" a$T
	assert_success
	ip -n a$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 300'
	[ -f "$CACHE/results/vr$T-a$T-eth0" ]
	assert_equal "$(reserved "$DATA/vr$T")" 10.200.215.2
	# while a holds VLAN 300 on trunk, a second container cannot have it (reference mode)
	drive add "$f" b$T
	assert_failure
	assert_output --partial 'master trunk already has a VLAN 300 sub-interface'
	ip netns del a$T
	drive del "$f" a$T
	assert_success
	[ ! -f "$CACHE/results/vr$T-a$T-eth0" ]
	assert_equal "$(reserved "$DATA/vr$T")" ""
	drive del "$f" a$T
	assert_success
	# the sub-interface went with the netns: once the kernel has cleaned it up, the ID is free
	wait_for 30 drive_ok add "$f" b$T || fail "ADD of VLAN 300 still refused 30 s after the first container's netns went: $output"
	ip -n b$T -d link show eth0 | grep -q 'vlan protocol 802.1Q id 300'
	assert_equal "$(reserved "$DATA/vr$T" | wc -l)" 1
	drive del "$f" b$T
	assert_success
	assert_equal "$(reserved "$DATA/vr$T")" ""
	run ip -n b$T link show eth0
	assert_failure
}

@test "the reference plugins under the same driver (the driver itself is sound)" {
	require "$REF_DIR/bridge"
	local f
	f=$(list 0.4.0)
	mkns a$T
	CNI_PATH_OVERRIDE=$REF_DIR drive add "$f" a$T
	assert_success
	CNI_PATH_OVERRIDE=$REF_DIR drive del "$f" a$T
	assert_success
}
