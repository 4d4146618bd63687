#!/usr/bin/env bats
# Least privilege and hardening: the capabilities each plugin keeps, that ADD works with only
# those, and that the shipped (release) binaries are PIE, full RELRO, stack-protected, fortified.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	DATA=$BATS_TEST_TMPDIR/ipam
	RELEASE=$BATS_TEST_DIRNAME/../build
}

teardown() { net_teardown; }

brconf() {
	printf '{"cniVersion":"1.0.0","name":"n%s","type":"bridge","bridge":"br%s","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.170.0/24"}]]}}' "$T" "$T" "$DATA"
}

@test "capabilities during ADD: bridge keeps only CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_SYS_PTRACE; host-local none" {
	nm "$PLUGIN_DIR/bridge" | grep -q cni_fault || skip "not a test build (the capability probe is compiled out of release builds; the asan lane runs this)"
	mkns "$HOSTNS"
	mkns c1$T
	CNI_TEST_CAPS_OUT=$BATS_TEST_TMPDIR/caps hcni ADD bridge "$(brconf)" c1$T
	assert_success
	# CAP_NET_ADMIN is bit 12, CAP_SYS_PTRACE 19, CAP_SYS_ADMIN 21
	grep -q '^CapEff:	0000000000281000$' "$BATS_TEST_TMPDIR/caps" || { cat "$BATS_TEST_TMPDIR/caps"; false; }
	grep -q '^CapPrm:	0000000000281000$' "$BATS_TEST_TMPDIR/caps"
	CNI_TEST_CAPS_OUT=$BATS_TEST_TMPDIR/caps2 cni ADD host-local "$(brconf | jq -c '.type="host-local"')" c2
	assert_success
	grep -q '^CapEff:	0000000000000000$' "$BATS_TEST_TMPDIR/caps2" || { cat "$BATS_TEST_TMPDIR/caps2"; false; }
}

# restricted VERB CONTAINER [CONFIG]: the bridge plugin run as a runtime would, in the host
# namespace, with only CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_SYS_PTRACE left in the bounding set
restricted() {
	run ip netns exec "$HOSTNS" setpriv --bounding-set=-all,+net_admin,+sys_admin,+sys_ptrace -- env CNI_COMMAND="$1" \
		CNI_CONTAINERID="$2" CNI_IFNAME=eth0 CNI_NETNS="/var/run/netns/$2" CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <<<"${3:-$(brconf)}"
	[[ $status != 86 ]] || fail "sanitizer error in bridge $1: $output"
}

@test "ADD, CHECK and DEL work with only CAP_NET_ADMIN, CAP_SYS_ADMIN and CAP_SYS_PTRACE in the bounding set; CHECK inspects the container" {
	require setpriv
	mkns "$HOSTNS"
	mkns c1$T
	mkns c2$T
	local conf res1
	conf=$(brconf)
	# the restriction is in force for what setpriv execs: bits 12, 19 and 21 only, effective included
	run ip netns exec "$HOSTNS" setpriv --bounding-set=-all,+net_admin,+sys_admin,+sys_ptrace -- grep -E '^Cap(Eff|Bnd):' /proc/self/status
	assert_output "$(printf 'CapEff:\t0000000000281000\nCapBnd:\t0000000000281000')"
	restricted ADD c1$T
	assert_success
	res1=$output
	restricted ADD c2$T
	assert_success
	ping_ok c1$T 10.200.170.3
	# CHECK against the attachment's own result passes: it found eth0, its address, the bridge,
	# the host veth and the SNAT rules as ADD left them
	restricted CHECK c1$T "$(jq -c --argjson p "$res1" '.prevResult=$p' <<<"$conf")"
	assert_success
	assert_output ''
	# take the address away inside the container: the same CHECK, still restricted, must enter the
	# container's namespace and list eth0's addresses to notice, and names exactly that
	ip -n c1$T addr del 10.200.170.2/24 dev eth0
	restricted CHECK c1$T "$(jq -c --argjson p "$res1" '.prevResult=$p' <<<"$conf")"
	expect_error 104 '^address 10\.200\.170\.2/24 is missing from eth0 in the container$'
	for c in c1$T c2$T; do
		restricted DEL $c
		assert_success
	done
	[ -z "$(ls "$DATA/n$T" | grep -e '^10\.200\.170\.')" ]
	assert_equal "$(ip -n "$HOSTNS" -o link show type veth | wc -l)" 0
}

@test "release binaries: static PIE (no interpreter, no shared library), full RELRO, stack protector, FORTIFY, no executable stack" {
	[ -x "$RELEASE/bridge" ] || skip "no release build in $RELEASE (the release lane of tests/run.sh builds it and runs this)"
	local b
	for b in host-local bridge vlan vxlan portmap floating-ip bandwidth loopback tap cnitool cni-c-agent; do
		run readelf -h "$RELEASE/$b"
		assert_output --partial 'Type:                              DYN'
		run readelf -lW "$RELEASE/$b"
		assert_output --partial 'GNU_RELRO'
		refute_output --partial 'INTERP'
		assert_output --regexp 'GNU_STACK +0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ RW '
		run readelf -dW "$RELEASE/$b"
		assert_output --regexp 'FLAGS.*BIND_NOW|BIND_NOW'
		refute_output --partial 'NEEDED'
		run ldd "$RELEASE/$b"
		assert_output --regexp 'statically linked|not a dynamic executable'
		run readelf -sW "$RELEASE/$b"
		assert_output --partial '__stack_chk_fail'
		assert_output --regexp 'FUNC +GLOBAL +DEFAULT +[0-9]+ __(mem[a-z]*|[a-z]*printf|st[a-z]*cpy|read[a-z]*)_chk'
	done
}

@test "release build: FORTIFY stops a run-time overflow of memcpy, strcpy, snprintf and read" {
	[ -x "$RELEASE/test-tools/fortify-probe" ] || skip "no release build in $RELEASE (the release lane of tests/run.sh builds it and runs this)"
	local m
	for m in memcpy strcpy snprintf read; do
		# the positive control: what fits is copied
		run "$RELEASE/test-tools/fortify-probe" $m 1234567
		assert_success
		assert_output 1234567
		run "$RELEASE/test-tools/fortify-probe" $m 1234567890abcdef
		assert_equal "$status" 134 # SIGABRT
		assert_output --partial 'buffer overflow detected'
	done
}

@test "release binaries run from an empty root: bridge ADD with ipMasq, CHECK, DEL with no loader, library or nft installed" {
	[ -x "$RELEASE/bridge" ] || skip "no release build in $RELEASE (the release lane of tests/run.sh builds it and runs this)"
	mkns "$HOSTNS"
	mkns c1$T
	local root=$BATS_TEST_TMPDIR/root b
	mkdir -p "$root/opt/cni/bin" "$root/proc" "$root/run/netns" "$root/var/lib"
	for b in bridge host-local; do cp "$RELEASE/$b" "$root/opt/cni/bin/"; done
	# the positive control first: the root really has nothing else (a dynamic binary cannot start)
	[[ ! -e $root/lib64 && ! -e $root/usr ]]
	local conf
	conf=$(printf '{"cniVersion":"1.0.0","name":"n%s","type":"bridge","bridge":"br%s","isGateway":true,"ipMasq":true,"ipam":{"type":"host-local","dataDir":"/var/lib/ipam","ranges":[[{"subnet":"10.200.171.0/24"}]]}}' "$T" "$T")
	inroot() { # VERB: the plugin run inside the empty root, in the host namespace, as a runtime would
		ip netns exec "$HOSTNS" unshare -m sh -c 'mount --make-rprivate / && mount -t proc proc "$1/proc" &&
			mount --rbind /run/netns "$1/run/netns" && exec chroot "$1" /opt/cni/bin/bridge' sh "$root" \
			<<<"$conf"
	}
	CNI_COMMAND=ADD CNI_CONTAINERID=c1$T CNI_IFNAME=eth0 CNI_NETNS=/run/netns/c1$T CNI_PATH=/opt/cni/bin run inroot
	assert_success
	[[ $(jq -r '.ips[0].address' <<<"$output") == 10.200.171.* ]] || fail "ADD: $output"
	in_host nft list table inet cni_c_masq >/dev/null
	ping_ok c1$T 10.200.171.1
	conf=$(jq -c --argjson r "$output" '. + {prevResult: $r}' <<<"$conf")
	CNI_COMMAND=CHECK CNI_CONTAINERID=c1$T CNI_IFNAME=eth0 CNI_NETNS=/run/netns/c1$T CNI_PATH=/opt/cni/bin run inroot
	assert_success
	CNI_COMMAND=DEL CNI_CONTAINERID=c1$T CNI_IFNAME=eth0 CNI_NETNS=/run/netns/c1$T CNI_PATH=/opt/cni/bin run inroot
	assert_success
	run in_host nft list chain inet cni_c_masq postrouting
	assert_success
	refute_output --partial 'goto a-'
	run ls -A "$root/var/lib/ipam/n$T"
	refute_output --partial 10.200.171
}
