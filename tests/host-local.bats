#!/usr/bin/env bats
# host-local IPAM: allocation, release, CHECK, GC, STATUS, concurrency, and the store shared with
# the reference plugin (Debian's /usr/lib/cni/host-local) in both directions.

setup() {
	load helpers/common
	DATA=$BATS_TEST_TMPDIR/data
	NET=$(tag)
	STORE=$DATA/$NET
}

# conf RANGES_JSON [extra top-level JSON members] [cniVersion]
conf() {
	printf '{"cniVersion":"%s","name":"%s","type":"host-local"%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":%s,"routes":[{"dst":"0.0.0.0/0"}]}}' \
		"${3:-1.0.0}" "$NET" "${2:+,$2}" "$DATA" "$1"
}
V4='[[{"subnet":"10.200.20.0/24"}]]'
V6='[[{"subnet":"fd00:200:20::/64"}]]'
DUAL='[[{"subnet":"10.200.21.0/24"}],[{"subnet":"fd00:200:21::/64"}]]'

@test "IPv4 ADD: first address after the gateway, reference result and file format" {
	cni ADD host-local "$(conf "$V4")" ctr1
	assert_success
	assert_equal "$(jqo -c .ips)" '[{"address":"10.200.20.2/24","gateway":"10.200.20.1"}]'
	assert_equal "$(jqo -c .routes)" '[{"dst":"0.0.0.0/0"}]'
	assert_equal "$(od -An -c "$STORE/10.200.20.2" | tr -s ' ')" " c t r 1 \r \n e t h 0"
	assert_equal "$(cat "$STORE/last_reserved_ip.0")" "10.200.20.2"
	[ -e "$STORE/lock" ]
}

@test "IPv6 ADD" {
	cni ADD host-local "$(conf "$V6")" ctr1
	assert_success
	assert_equal "$(jqo -c .ips)" '[{"address":"fd00:200:20::2/64","gateway":"fd00:200:20::1"}]'
	[ -f "$STORE/fd00:200:20::2" ]
}

@test "dual-stack: one address from each range set, DEL releases both" {
	cni ADD host-local "$(conf "$DUAL")" ctr1
	assert_success
	assert_equal "$(jqo -c '[.ips[].address]')" '["10.200.21.2/24","fd00:200:21::2/64"]'
	cni DEL host-local "$(conf "$DUAL")" ctr1
	assert_success
	[ ! -e "$STORE/10.200.21.2" ] && [ ! -e "$STORE/fd00:200:21::2" ]
}

@test "rangeStart/rangeEnd bound allocation; gateway inside the range is skipped" {
	local r='[[{"subnet":"10.200.22.0/24","rangeStart":"10.200.22.10","rangeEnd":"10.200.22.12","gateway":"10.200.22.11"}]]'
	cni ADD host-local "$(conf "$r")" a; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.22.10/24"
	cni ADD host-local "$(conf "$r")" b; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.22.12/24"
	cni ADD host-local "$(conf "$r")" c
	expect_error 102 "no IP addresses available in range set 10.200.22.10-10.200.22.12"
}

@test "round-robin: a released address is not handed out again before the range wraps" {
	local r='[[{"subnet":"10.200.23.0/29"}]]' # .2 .. .6 usable
	cni ADD host-local "$(conf "$r")" a; assert_equal "$(jqo -r '.ips[0].address')" "10.200.23.2/29"
	cni ADD host-local "$(conf "$r")" b; assert_equal "$(jqo -r '.ips[0].address')" "10.200.23.3/29"
	cni DEL host-local "$(conf "$r")" a; assert_success
	cni ADD host-local "$(conf "$r")" c; assert_equal "$(jqo -r '.ips[0].address')" "10.200.23.4/29"
	cni ADD host-local "$(conf "$r")" d; assert_equal "$(jqo -r '.ips[0].address')" "10.200.23.5/29"
	cni ADD host-local "$(conf "$r")" e; assert_equal "$(jqo -r '.ips[0].address')" "10.200.23.6/29"
	cni ADD host-local "$(conf "$r")" f; assert_equal "$(jqo -r '.ips[0].address')" "10.200.23.2/29"
}

@test "several ranges in one set: the next range is used when the first is full" {
	local r='[[{"subnet":"10.200.24.0/30"},{"subnet":"10.200.25.0/30"}]]' # one usable each (.2)
	cni ADD host-local "$(conf "$r")" a; assert_equal "$(jqo -r '.ips[0].address')" "10.200.24.2/30"
	cni ADD host-local "$(conf "$r")" b; assert_equal "$(jqo -r '.ips[0].address')" "10.200.25.2/30"
	assert_equal "$(jqo -r '.ips[0].gateway')" "10.200.25.1"
	cni ADD host-local "$(conf "$r")" c
	expect_error 102 "10.200.24.1-10.200.24.2,10.200.25.1-10.200.25.2"
}

@test "requested IP via runtimeConfig.ips, args.cni.ips and CNI_ARGS IP=" {
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.50/24"]}')" a
	assert_success; assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.50/24"
	cni ADD host-local "$(conf "$V4" '"args":{"cni":{"ips":["10.200.20.51"]}}')" b
	assert_success; assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.51/24"
	CNI_ARGS="IP=10.200.20.52" cni ADD host-local "$(conf "$V4")" c
	assert_success; assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.52/24"
	# CNI_ARGS is ignored when runtimeConfig says the same thing (CONVENTIONS.md)
	CNI_ARGS="IP=10.200.20.53" cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.54"]}')" d
	assert_success; assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.54/24"
}

@test "requested IP taken, outside every range, or the gateway: clear errors, nothing reserved" {
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.50"]}')" a; assert_success
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.50"]}')" b
	expect_error 103 "requested IP address 10.200.20.50 is not available in range set 10.200.20.1-10.200.20.254"
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.99.5"]}')" b
	expect_error 103 "10.200.99.5 is in no range set"
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.1"]}')" b
	expect_error 103 "10.200.20.1 is the gateway"
	# dual-stack: the v4 request fails after v6 was allocated: v6 is rolled back
	cni ADD host-local "$(conf '[[{"subnet":"fd00:200:20::/64"}],[{"subnet":"10.200.20.0/24"}]]' '"runtimeConfig":{"ips":["10.200.20.50"]}')" b
	expect_error 103 "not available"
	assert_equal "$(ls "$STORE" | grep -c -e '^10\.' -e '^fd00')" 1
}

@test "the same request again for the same attachment is idempotent" {
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.60"]}')" a; assert_success
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.60"]}')" a; assert_success
	cni ADD host-local "$(conf "$V4")" a; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.60/24"
}

@test "exhaustion names the range; a dual-stack ADD that fails leaves nothing" {
	local r='[[{"subnet":"fd00:200:26::/64"}],[{"subnet":"10.200.26.0/30"}]]'
	cni ADD host-local "$(conf "$r")" a; assert_success
	cni ADD host-local "$(conf "$r")" b
	expect_error 102 "no IP addresses available in range set 10.200.26.1-10.200.26.2"
	run ls "$STORE"
	refute_output --partial "fd00:200:26::3"
	assert_equal "$(grep -l b "$STORE"/* 2>/dev/null | wc -l)" 0
}

@test "DEL is idempotent: twice, unknown container, missing store" {
	cni ADD host-local "$(conf "$V4")" a; assert_success
	cni DEL host-local "$(conf "$V4")" a; assert_success
	cni DEL host-local "$(conf "$V4")" a; assert_success
	cni DEL host-local "$(conf "$V4")" never-seen; assert_success
	rm -rf "$DATA"
	cni DEL host-local "$(conf "$V4")" a; assert_success
	[ ! -e "$DATA" ]
}

@test "DEL releases only its own attachment (container ID and ifname)" {
	cni ADD host-local "$(conf "$V4")" a eth0; assert_success
	cni ADD host-local "$(conf "$V4")" a eth1; assert_success
	cni ADD host-local "$(conf "$V4")" b eth0; assert_success
	cni DEL host-local "$(conf "$V4")" a eth0; assert_success
	[ ! -e "$STORE/10.200.20.2" ] && [ -e "$STORE/10.200.20.3" ] && [ -e "$STORE/10.200.20.4" ]
}

@test "CHECK passes after ADD, fails after DEL and when prevResult's address is not held" {
	cni ADD host-local "$(conf "$V4")" a; assert_success
	local prev=$output
	cni CHECK host-local "$(conf "$V4" "\"prevResult\":$prev")" a
	assert_success
	cni CHECK host-local "$(conf "$V4" '"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.200.20.77/24"}]}')" a
	expect_error 104 "10.200.20.77 from prevResult is not reserved"
	cni DEL host-local "$(conf "$V4")" a; assert_success
	cni CHECK host-local "$(conf "$V4" "\"prevResult\":$prev")" a
	expect_error 104 "no address is reserved for container a"
}

@test "result shapes per cniVersion: 0.3.1 and 0.4.0 carry version, 0.2.0 uses ip4/ip6" {
	cni ADD host-local "$(conf "$DUAL" '' 0.4.0)" a; assert_success
	assert_equal "$(jqo -c '[.ips[].version]')" '["4","6"]'
	cni ADD host-local "$(conf "$DUAL" '' 0.3.1)" b; assert_success
	assert_equal "$(jqo -c '[.ips[].version]')" '["4","6"]'
	cni ADD host-local "$(conf "$DUAL" '' 0.2.0)" c; assert_success
	assert_equal "$(jqo -r .ip4.ip) $(jqo -r .ip6.ip) $(jqo -r .ip4.routes[0].dst)" "10.200.21.4/24 fd00:200:21::4/64 0.0.0.0/0"
	cni ADD host-local "$(conf "$DUAL" '' 1.1.0)" d; assert_success
	assert_equal "$(jqo -c '[.ips[] | has("version")]')" '[false,false]'
}

@test "resolvConf fills dns" {
	printf 'nameserver 10.200.0.53\n# comment\nsearch a.example b.example\noptions ndots:2\ndomain x.example\n' >"$BATS_TEST_TMPDIR/resolv"
	cni ADD host-local "$(conf "$V4" | jq -c --arg r "$BATS_TEST_TMPDIR/resolv" '.ipam.resolvConf=$r')" a
	assert_success
	assert_equal "$(jqo -c .dns)" '{"nameservers":["10.200.0.53"],"domain":"x.example","search":["a.example","b.example"],"options":["ndots:2"]}'
	cni ADD host-local "$(conf "$V4" | jq -c '.ipam.resolvConf="/nonexistent/resolv"')" b
	expect_error 5 "ipam.resolvConf"
}

@test "GC keeps valid attachments and releases the rest; both keys of the spec honoured" {
	for c in a b c d; do cni ADD host-local "$(conf "$V4" '' 1.1.0)" $c; assert_success; done
	cni GC host-local "$(conf "$V4" '"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}],"cni.dev/attachments":[{"containerID":"c","ifname":"eth0"}]' 1.1.0)"
	assert_success
	assert_output ""
	[ -e "$STORE/10.200.20.2" ] && [ ! -e "$STORE/10.200.20.3" ] && [ -e "$STORE/10.200.20.4" ] && [ ! -e "$STORE/10.200.20.5" ]
	# the released ones are free again for the allocator
	cni CHECK host-local "$(conf "$V4" '' 1.1.0)" b
	expect_error 104 "no address"
	cni ADD host-local "$(conf "$V4" '"runtimeConfig":{"ips":["10.200.20.3"]}' 1.1.0)" e
	assert_success
}

@test "GC with no attachment list releases everything (as libcni's cnitool gc); wrong ifname is not valid" {
	cni ADD host-local "$(conf "$V4" '' 1.1.0)" a; assert_success
	cni GC host-local "$(conf "$V4" '"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth9"}]' 1.1.0)"
	assert_success
	[ ! -e "$STORE/10.200.20.2" ]
	cni ADD host-local "$(conf "$V4" '' 1.1.0)" b; assert_success
	cni GC host-local "$(conf "$V4" '' 1.1.0)"
	assert_success
	[ -z "$(ls "$STORE" | grep '^10\.')" ]
}

@test "GC removes torn (empty) reservation files; a torn file never blocks allocation" {
	mkdir -p "$STORE"
	: >"$STORE/10.200.20.2"
	cni ADD host-local "$(conf "$V4" '' 1.1.0)" a
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.2/24"
	: >"$STORE/10.200.20.9"
	cni GC host-local "$(conf "$V4" '"cni.dev/valid-attachments":[{"containerID":"a","ifname":"eth0"}]' 1.1.0)"
	assert_success
	[ -e "$STORE/10.200.20.2" ] && [ ! -e "$STORE/10.200.20.9" ]
}

@test "a reservation appears whole: written unnamed, then linked (O_EXCL where that cannot be done)" {
	require strace
	skip_if_wrapped host-local
	# LeakSanitizer cannot run under ptrace
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 CNI_COMMAND=ADD CNI_CONTAINERID=a CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH=/x \
		run strace -f -e trace=openat,linkat -o "$BATS_TEST_TMPDIR/st" "$PLUGIN_DIR/host-local" <<<"$(conf "$V4")"
	assert_success
	grep -q 'O_TMPFILE' "$BATS_TEST_TMPDIR/st" && grep -qE 'linkat\(.*"10\.200\.20\.2", AT_SYMLINK_FOLLOW\) = 0' "$BATS_TEST_TMPDIR/st" ||
		{ cat "$BATS_TEST_TMPDIR/st"; false; }
	! grep -q '"10.200.20.2", O_WRONLY' "$BATS_TEST_TMPDIR/st"
	assert_equal "$(od -An -c "$STORE/10.200.20.2" | tr -s ' ')" " a \r \n e t h 0"
	# taken: the link fails as O_EXCL would, and the next address is used
	cni ADD host-local "$(conf "$V4")" b
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.3/24"
	# without /proc (no way to link the unnamed file) the file is made with O_EXCL, as the reference does
	# (an ASan build reads its options from /proc, so its leak check cannot be turned off there)
	if nm -D "$PLUGIN_DIR/host-local" 2>/dev/null | grep -q __asan_init; then
		skip "the part without /proc: an ASan build cannot run there (the release lane runs it)"
	fi
	run unshare -m sh -c 'umount -l /proc && exec env CNI_COMMAND=ADD CNI_CONTAINERID=c CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH=/x "$0"' \
		"$PLUGIN_DIR/host-local" <<<"$(conf "$V4")"
	assert_success
	assert_equal "$(od -An -c "$STORE/10.200.20.4" | tr -s ' ')" " c \r \n e t h 0"
	cni ADD host-local "$(conf "$V4")" c
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.20.4/24"
	[[ $(ls "$STORE" | grep -c '^10\.') == 3 ]]
}

@test "GC validates its attachment list" {
	cni GC host-local "$(conf "$V4" '"cni.dev/valid-attachments":[{"containerID":"a"}]' 1.1.0)"
	expect_error 7 'valid-attachments\[0\].*containerID and ifname'
	cni GC host-local "$(conf "$V4" '"cni.dev/valid-attachments":{}' 1.1.0)"
	expect_error 6 'valid-attachments.*must be an array'
}

@test "STATUS: ready; 50 when the range is exhausted; 50 when dataDir is unusable" {
	local r='[[{"subnet":"10.200.27.0/30"}]]'
	cni STATUS host-local "$(conf "$r" '' 1.1.0)"
	assert_success
	cni ADD host-local "$(conf "$r" '' 1.1.0)" a; assert_success
	cni STATUS host-local "$(conf "$r" '' 1.1.0)"
	expect_error 50 "no IP addresses available in range set 10.200.27.1-10.200.27.2"
	: >"$BATS_TEST_TMPDIR/file"
	cni STATUS host-local "$(conf "$r" '' 1.1.0 | jq -c --arg d "$BATS_TEST_TMPDIR/file/x" '.ipam.dataDir=$d')"
	expect_error 50 "not usable"
}

@test "STATUS counts a gateway that is the network address once: 50 only when no ADD can succeed" {
	# a /29 from its network address, which is also the gateway: .1-.6 are the 6 usable addresses
	local r='[[{"subnet":"10.200.29.0/29","rangeStart":"10.200.29.0","gateway":"10.200.29.0"}]]' i
	for i in 1 2 3 4 5; do cni ADD host-local "$(conf "$r" '' 1.1.0)" c$i; assert_success; done
	cni STATUS host-local "$(conf "$r" '' 1.1.0)"
	assert_success
	cni ADD host-local "$(conf "$r" '' 1.1.0)" c6
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.29.6/29
	cni STATUS host-local "$(conf "$r" '' 1.1.0)"
	expect_error 50 "no IP addresses available in range set 10.200.29.0-10.200.29.6"
	cni ADD host-local "$(conf "$r" '' 1.1.0)" c7
	assert_failure
}

@test "the store directory refuses a symlink in place of the network dir" {
	mkdir -p "$DATA" "$BATS_TEST_TMPDIR/elsewhere"
	ln -s "$BATS_TEST_TMPDIR/elsewhere" "$STORE"
	cni ADD host-local "$(conf "$V4")" a
	expect_error 5 "it is a symlink"
	[ -z "$(ls "$BATS_TEST_TMPDIR/elsewhere")" ]
}

@test "200 allocations (40 under valgrind) by 8 parallel processes: no address handed out twice" {
	local r='[[{"subnet":"10.200.28.0/24"}],[{"subnet":"fd00:200:28::/64"}]]' c n
	n=$(rounds host-local 25 5) # per process
	c=$(conf "$r")
	mkdir -p "$BATS_TEST_TMPDIR/out"
	for w in $(seq 1 8); do
		(
			for i in $(seq 1 "$n"); do
				env CNI_COMMAND=ADD CNI_CONTAINERID="w$w-$i" CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH="$PLUGIN_DIR" \
					"$PLUGIN_DIR/host-local" <<<"$c" >"$BATS_TEST_TMPDIR/out/w$w-$i" || echo "fail w$w-$i"
			done
		) &
	done
	wait
	run bash -c "cat '$BATS_TEST_TMPDIR'/out/* | jq -r '.ips[].address' | sort | uniq -d"
	assert_output ""
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/out/* | jq -r '.ips[].address' | sort -u | wc -l)" $((16 * n))
	assert_equal "$(ls "$STORE" | grep -c '^10\.200\.28\.')" $((8 * n))
}

@test "reference store read by ours: ours continues round-robin and releases the reference's reservations" {
	require "$REF_DIR/host-local"
	for c in r1 r2 r3; do cni ADD "$REF_DIR/host-local" "$(conf "$DUAL")" $c; assert_success; done
	cni ADD host-local "$(conf "$DUAL")" o1
	assert_success
	assert_equal "$(jqo -c '[.ips[].address]')" '["10.200.21.5/24","fd00:200:21::5/64"]'
	cni DEL host-local "$(conf "$DUAL")" r2
	assert_success
	[ ! -e "$STORE/10.200.21.3" ] && [ ! -e "$STORE/fd00:200:21::3" ]
	cni CHECK host-local "$(conf "$DUAL")" r1
	assert_success
}

@test "our store read by the reference: it continues and releases ours" {
	require "$REF_DIR/host-local"
	for c in o1 o2; do cni ADD host-local "$(conf "$DUAL")" $c; assert_success; done
	cni ADD "$REF_DIR/host-local" "$(conf "$DUAL")" r1
	assert_success
	assert_equal "$(jqo -c '[.ips[].address]')" '["10.200.21.4/24","fd00:200:21::4/64"]'
	cni DEL "$REF_DIR/host-local" "$(conf "$DUAL")" o1
	assert_success
	[ ! -e "$STORE/10.200.21.2" ] && [ ! -e "$STORE/fd00:200:21::2" ]
	cni CHECK "$REF_DIR/host-local" "$(conf "$DUAL")" o2
	assert_success
	# and back: ours sees the reference's changes, releases r1, reuses nothing twice
	cni DEL host-local "$(conf "$DUAL")" r1
	assert_success
	[ ! -e "$STORE/10.200.21.4" ]
	cni ADD host-local "$(conf "$DUAL")" o3
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.21.5/24"
}

@test "the first operation after a reboot releases the previous boot's reservations; this boot's stay" {
	require "$REF_DIR/host-local"
	local boot old f
	boot=$(cat /proc/sys/kernel/random/boot_id)
	# reservations a runtime left behind when the node went down: dated before this boot
	old=$(($(awk '$1 == "btime" {print $2}' /proc/stat) - 3600))
	stale() {
		mkdir -p "$STORE"
		printf '%s' "$2" >"$STORE/$1"
		touch -d "@$old" "$STORE/$1"
	}
	stale 10.200.21.50 $'gone1\r\neth0'
	stale fd00:200:21::50 $'gone1\r\neth0'
	stale 10.200.21.51 'gone2' # the oldest reference format: the ID alone
	stale 10.200.21.52 ''      # torn
	ln -s /nonexistent "$STORE/10.200.21.53"
	# the reference, in this boot, before any operation of ours: a store without our record
	cni ADD "$REF_DIR/host-local" "$(conf "$DUAL")" ref1
	assert_success
	refip=$(jqo -r '.ips[0].address | split("/")[0]')
	cni ADD host-local "$(conf "$DUAL")" live1
	assert_success
	for f in 10.200.21.50 fd00:200:21::50 10.200.21.51 10.200.21.52; do
		[ ! -e "$STORE/$f" ] || fail "$f of the previous boot is still reserved"
	done
	[ -L "$STORE/10.200.21.53" ] # not a reservation file of either plugin: left alone
	[ -e "$STORE/$refip" ] || fail "the reference's reservation of this boot ($refip) was released"
	assert_equal "$(cat "$STORE/.cni-c-boot-id")" "$boot"
	[ -e "$STORE/last_reserved_ip.0" ] && [ -e "$STORE/lock" ]
	# within the same boot an old file is not looked at again: one comparison per operation
	stale 10.200.21.60 $'gone3\r\neth0'
	cni ADD host-local "$(conf "$DUAL")" live2
	assert_success
	[ -e "$STORE/10.200.21.60" ] || fail "an old file was released again within the same boot"
	# a reboot, staged: the store was last opened in another boot
	echo 00000000-0000-4000-8000-000000000000 >"$STORE/.cni-c-boot-id"
	cni DEL host-local "$(conf "$DUAL")" nobody
	assert_success
	[ ! -e "$STORE/10.200.21.60" ] || fail "the previous boot's 10.200.21.60 is still reserved"
	assert_equal "$(cat "$STORE/.cni-c-boot-id")" "$boot"
	for c in ref1 live1 live2; do
		cni CHECK host-local "$(conf "$DUAL")" "$c"
		assert_success
	done
	# the released address is free again, for ours and for the reference
	cni ADD host-local "$(conf "$DUAL" '"args":{"cni":{"ips":["10.200.21.50"]}}')" new1
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.21.50/24"
	cni ADD "$REF_DIR/host-local" "$(conf "$DUAL" '"args":{"cni":{"ips":["10.200.21.51"]}}')" new2
	assert_success
}

@test "ours and the reference allocating at once share the lock: no duplicates (80 allocations, 20 under valgrind)" {
	require "$REF_DIR/host-local"
	local c n
	n=$(rounds host-local 20 5) # per process
	c=$(conf '[[{"subnet":"10.200.29.0/24"}]]')
	mkdir -p "$BATS_TEST_TMPDIR/out"
	for w in 1 2 3 4; do
		local bin=$PLUGIN_DIR/host-local
		((w % 2)) && bin=$REF_DIR/host-local
		(
			for i in $(seq 1 "$n"); do
				env CNI_COMMAND=ADD CNI_CONTAINERID="w$w-$i" CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH="$PLUGIN_DIR" \
					"$bin" <<<"$c" >"$BATS_TEST_TMPDIR/out/w$w-$i"
			done
		) &
	done
	wait
	run bash -c "cat '$BATS_TEST_TMPDIR'/out/* | jq -r '.ips[].address' | sort | uniq -d"
	assert_output ""
	assert_equal "$(cat "$BATS_TEST_TMPDIR"/out/* | jq -r '.ips[].address' | sort -u | wc -l)" $((4 * n))
	# ours releases all of them, whoever allocated
	for w in 1 2 3 4; do for i in $(seq 1 "$n"); do
		cni DEL host-local "$c" "w$w-$i"; assert_success
	done; done
	assert_equal "$(ls "$STORE" | grep -c '^10\.')" 0
}

@test "a full /16 store: the last free address is found with one read per reservation, no probing" {
	require strace
	skip_if_wrapped host-local
	local r='[[{"subnet":"10.200.0.0/16"}]]' c
	c=$(conf "$r")
	mkdir -p "$STORE"
	# 65533 reservations written as the reference writes them; 10.200.77.77 left free
	(cd "$STORE" && perl -e 'for my $x (0 .. 255) { for my $y (0 .. 255) {
		open(my $f, ">", "10.200.$x.$y") or die "$!\n"; print $f "f$x-$y\r\neth0"; close($f) or die "$!\n" } }' &&
	rm -f 10.200.0.0 10.200.0.1 10.200.255.255 10.200.77.77
	printf '10.200.0.5' >last_reserved_ip.0)
	# LeakSanitizer cannot run under ptrace
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 CNI_COMMAND=ADD CNI_CONTAINERID=second CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH=/x \
		run strace -f -c -o "$BATS_TEST_TMPDIR/strace" "$PLUGIN_DIR/host-local" <<<"$c"
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.77.77/16"
	# the reference probes each candidate with an O_EXCL create (72,000 failed opens here); we read
	# each reservation once (open, one read, close) and create one file (slack: the sanitizer runtime's own reads)
	local opens fails reads
	opens=$(awk '$NF == "openat" {print $4}' "$BATS_TEST_TMPDIR/strace")
	fails=$(awk '$NF == "openat" {print ($5 ~ /^[0-9]+$/) ? $5 : 0}' "$BATS_TEST_TMPDIR/strace")
	reads=$(awk '$NF == "read" {print $4}' "$BATS_TEST_TMPDIR/strace")
	echo "openat: $opens ($fails failed), read: $reads" >&3
	[ "$opens" -le $((65533 + 200)) ] && [ "${fails:-0}" -le 3 ] && [ "$reads" -le $((65533 + 200)) ] ||
		{ cat "$BATS_TEST_TMPDIR/strace"; false; }
	# and the store is exactly the files: DEL and a refused ADD when full
	cni ADD host-local "$c" third
	expect_error 102 "no IP addresses available in range set 10.200.0.1-10.200.255.254"
	cni DEL host-local "$c" second; assert_success
	[ ! -e "$STORE/10.200.77.77" ]
}

@test "the index an earlier version kept in .ccni/ is removed, and its stale entries are not believed" {
	cni ADD host-local "$(conf "$V4")" a; assert_success
	# what an earlier version left: an owner entry and a stamp claiming b holds .9
	mkdir -p "$STORE/.ccni/own" "$STORE/.ccni/maps"
	ln -s 10.200.20.9 "$STORE/.ccni/own/b:eth0"
	printf 'ccni-index 2 1 2 3' >"$STORE/.ccni/stamp"
	: >"$STORE/.ccni/maps/10.200.20.1-10.200.20.254"
	cni CHECK host-local "$(conf "$V4")" b
	expect_error 104 "no address is reserved for container b"
	[ ! -e "$STORE/.ccni" ]
	cni CHECK host-local "$(conf "$V4")" a; assert_success
}
