#!/usr/bin/env bats
# host-local's store answers from the reservation files themselves, as the reference does: every
# case below once went wrong because an index (.ccni/) said something the files did not (a failed
# index write stamped valid, a directory timestamp that did not move, a writer that takes no lock,
# a file rewritten in place, files of the oldest format). Ranges 10.200.140.0 .. 10.200.159.255.

setup() {
	load helpers/common
	require "$REF_DIR/host-local"
	MNT=$BATS_TEST_TMPDIR/mnt
	DATA=$BATS_TEST_TMPDIR/data
	NET=$(tag)
	STORE=$DATA/$NET
	PIDS=$BATS_TEST_TMPDIR/pids
}

teardown() {
	local p
	[[ -z ${LK:-} ]] || exec {LK}<&- # test 3's hold on the store's lock, if it ended holding it
	if [[ -f $PIDS ]]; then
		while read -r p; do kill "$p" 2>/dev/null || true; done <"$PIDS"
		while read -r p; do wait "$p" 2>/dev/null || true; done <"$PIDS"
	fi
	if mountpoint -q "$MNT"; then
		umount -l "$MNT"
	fi
}

# conf RANGES_JSON [extra top-level JSON members] [cniVersion]; the store is $DATA/$NET
conf() {
	printf '{"cniVersion":"%s","name":"%s","type":"host-local"%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":%s,"routes":[{"dst":"0.0.0.0/0"}]}}' \
		"${3:-1.0.0}" "$NET" "${2:+,$2}" "$DATA" "$1"
}

# mnt FSTYPE [OPTIONS]: a fresh filesystem of that type as dataDir's parent (unmounted by teardown)
mnt() {
	mkdir -p "$MNT"
	mount -t "$1" ${2:+-o "$2"} "ccni-test-$1" "$MNT"
	DATA=$MNT/data
	STORE=$DATA/$NET
	mkdir -p "$DATA"
}

# resv [DIR]: the reservation files of a store (everything but lock, last_reserved_ip.N, .ccni and
# the boot record)
resv() {
	ls -A "${1:-$STORE}" 2>/dev/null | grep -v -e '^lock$' -e '^last_reserved_ip\.' -e '^\.ccni$' -e '^\.cni-c-boot-id$' | sort
}

# snap [DIR]: every entry of a store but lock, .ccni and the boot record with a digest of its bytes
# (nothing changed?)
snap() {
	(cd "${1:-$STORE}" && find . -mindepth 1 -maxdepth 1 ! -name .ccni ! -name lock ! -name .cni-c-boot-id -print0 | sort -z | xargs -0r md5sum)
}

# hl BINARY VERB CID [IFNAME]: one raw run (config on stdin) for background jobs; no $status/$output
hl() {
	env CNI_COMMAND="$2" CNI_CONTAINERID="$3" CNI_IFNAME="${4:-eth0}" CNI_NETNS=/var/run/netns/none CNI_PATH="$PLUGIN_DIR" "$1"
}

# bg CMD...: run in the background; teardown kills it if the test ends early
bg() {
	"$@" &
	echo $! >>"$PIDS"
}

@test "ENOSPC: a failed ADD on a full store changes nothing; DEL and CHECK still answer from the reference's files" {
	mnt tmpfs size=4m,nr_inodes=48
	mkdir -p "$MNT/fill"
	local c i
	c=$(conf '[[{"subnet":"10.200.140.0/24"}]]')
	for i in 1 2 3; do
		cni ADD host-local "$c" o$i; assert_success
		cni ADD "$REF_DIR/host-local" "$c" r$i; assert_success
	done
	# every free inode to filler files, elsewhere on the filesystem (the store's directory does not
	# change when they go), then two back for the reference, which takes the last ones
	i=0
	while : 2>/dev/null >"$MNT/fill/$i"; do i=$((i + 1)); done
	rm -f "$MNT/fill/0" "$MNT/fill/1"
	cni ADD "$REF_DIR/host-local" "$c" r4; assert_success
	cni ADD "$REF_DIR/host-local" "$c" r5; assert_success
	cni ADD "$REF_DIR/host-local" "$c" r6; assert_failure # the filesystem is full
	local before
	before=$(snap)
	assert_equal "$(resv | wc -l)" 8

	cni ADD host-local "$c" o4
	assert_equal "$status" 1
	[[ $(jqo .code) == 5 || $(jqo .code) == 102 ]] || fail "want code 5 or 102: $output"
	assert_equal "$(snap)" "$before"

	# the reference's last reservation is released by ours, on the full filesystem
	local r5
	r5=$(grep -l '^r5' "$STORE"/10.* | xargs -n1 basename)
	cni DEL host-local "$c" r5
	assert_success
	[ ! -e "$STORE/$r5" ] || fail "DEL r5 returned 0 and left $r5"
	cni CHECK host-local "$c" r5
	expect_error 104 "no address is reserved for container r5"
	cni CHECK host-local "$c" r4
	assert_success

	# space again: every reservation is released by its container's DEL, whoever made it
	rm -rf "$MNT/fill"
	for i in o1 o2 o3 r1 r2 r3 r4; do
		cni DEL host-local "$c" $i; assert_success
		cni CHECK host-local "$c" $i; expect_error 104 "no address is reserved"
	done
	run resv
	assert_output ""
}

@test "EROFS: ADD and DEL fail with an I/O error and change nothing; CHECK answers; after rw every answer matches the files" {
	mnt tmpfs size=4m
	local c r2ip
	c=$(conf '[[{"subnet":"10.200.141.0/24"}]]')
	cni ADD host-local "$c" o1; assert_success
	cni ADD host-local "$c" o2; assert_success
	# the reference writes last: what ours knows of the store is out of date
	cni ADD "$REF_DIR/host-local" "$c" r1; assert_success
	cni ADD "$REF_DIR/host-local" "$c" r2; assert_success
	r2ip=$(jqo -r '.ips[0].address' | cut -d/ -f1)
	local before
	before=$(snap)

	mount -o remount,ro "$MNT"
	cni ADD host-local "$c" o3
	expect_error 5 "Read-only file system"
	cni DEL host-local "$c" o1
	expect_error 5 "Read-only file system"
	cni DEL host-local "$c" r1
	expect_error 5 "Read-only file system"
	# CHECK only reads: the reference answers on a read-only store, and so must ours
	cni CHECK "$REF_DIR/host-local" "$c" r2; assert_success
	cni CHECK host-local "$c" r2
	assert_success
	cni CHECK host-local "$c" o2
	assert_success
	cni CHECK host-local "$c" o3
	expect_error 104 "no address is reserved for container o3"
	assert_equal "$(snap)" "$before"

	mount -o remount,rw "$MNT"
	assert_equal "$(snap)" "$before"
	cni DEL host-local "$c" r1; assert_success
	cni CHECK host-local "$c" r1; expect_error 104 "no address is reserved for container r1"
	cni CHECK host-local "$c" r2; assert_success
	cni DEL host-local "$c" o1; assert_success
	cni CHECK host-local "$c" o1; expect_error 104 "no address is reserved for container o1"
	cni ADD host-local "$c" o3; assert_success
	refute_output --partial "$r2ip/"
	assert_equal "$(resv | wc -l)" 3
	for i in o2 o3 r2; do cni DEL host-local "$c" $i; assert_success; done
	run resv
	assert_output ""
}

@test "ramfs (coarse directory timestamps): two ADDs of ours racing one of the reference's, then our DELs, leak nothing" {
	require flock
	mnt ramfs
	local c i x n fails=0 rounds=40
	c=$(conf '[[{"subnet":"10.200.142.0/24"}]]')
	cni ADD host-local "$c" warm; assert_success
	cni DEL host-local "$c" warm; assert_success
	local ino
	ino=$(stat -c %i "$STORE/lock")
	for i in $(seq 1 $rounds); do
		# the three queue on the store's lock (held here, as a slow operation of another plugin
		# would) and run back to back when it is released: within one tick of the clock
		exec {LK}<"$STORE/lock"
		flock -x $LK
		hl "$REF_DIR/host-local" ADD r$i <<<"$c" >/dev/null {LK}<&- &
		echo $! >>"$PIDS"
		hl "$PLUGIN_DIR/host-local" ADD a$i <<<"$c" >/dev/null {LK}<&- &
		echo $! >>"$PIDS"
		hl "$PLUGIN_DIR/host-local" ADD b$i <<<"$c" >/dev/null {LK}<&- &
		echo $! >>"$PIDS"
		n=0
		while (($(grep -c -- "-> FLOCK.*:$ino " /proc/locks) < 3)); do
			((++n < 2500)) || fail "round $i: the three ADDs never all waited on the lock"
			sleep 0.002
		done
		exec {LK}<&-
		LK=
		for x in $(cat "$PIDS"); do wait "$x" || fails=$((fails + 1)); done
		: >"$PIDS"
		for x in a b r; do
			hl "$PLUGIN_DIR/host-local" DEL $x$i <<<"$c" >/dev/null || fails=$((fails + 1))
		done
	done
	assert_equal "$fails" 0
	run bash -c "cd '$STORE' && for f in \$(ls | grep '^10\\.'); do printf '%s=%s\n' \$f \"\$(tr '\r\n' '  ' <\$f)\"; done"
	assert_output "" # leaked reservations: address=owner
}

@test "a writer that takes no lock: DEL releases each file it made while our ADDs and DELs ran" {
	# our loop allocates in the first range only (round-robin never wraps in under 1000 ADDs);
	# the other writer's files are in the second range of the same set
	local c n=100
	c=$(conf '[[{"subnet":"10.200.144.0/22"},{"subnet":"10.200.148.0/22"}]]')
	cni ADD host-local "$c" warm; assert_success
	cni DEL host-local "$c" warm; assert_success
	local ino
	ino=$(stat -c %i "$STORE/lock")
	: >"$BATS_TEST_TMPDIR/running"
	loop() {
		trap - DEBUG # bats' per-command trap would slow the race down
		local i=0
		while [[ -e $BATS_TEST_TMPDIR/running ]] && ((i < 900)); do
			i=$((i + 1))
			hl "$PLUGIN_DIR/host-local" ADD o$i <<<"$c" >/dev/null || echo "ADD o$i failed" >>"$BATS_TEST_TMPDIR/errors"
			hl "$PLUGIN_DIR/host-local" DEL o$i <<<"$c" >/dev/null || echo "DEL o$i failed" >>"$BATS_TEST_TMPDIR/errors"
		done
	}
	bg loop
	(
		trap - DEBUG
		set +e
		for k in $(seq 1 $n); do
			# write while one of our operations holds the lock (most of the time; never wait long)
			for t in $(seq 1 300); do
				read -r -d '' locks </proc/locks
				[[ $locks == *"FLOCK  ADVISORY  WRITE"*":$ino "* ]] && break
			done
			ip=10.200.$((148 + k / 256)).$((k % 256))
			printf 'u%s\r\neth0' $k >"$STORE/$ip"
			hl "$PLUGIN_DIR/host-local" DEL u$k <<<"$c" >/dev/null || echo "DEL u$k failed" >>"$BATS_TEST_TMPDIR/errors"
			[[ ! -e $STORE/$ip ]] || echo "$ip" >>"$BATS_TEST_TMPDIR/left"
		done
	)
	rm -f "$BATS_TEST_TMPDIR/running"
	wait
	: >"$PIDS"
	[[ ! -s $BATS_TEST_TMPDIR/errors ]] || fail "$(cat "$BATS_TEST_TMPDIR/errors")"
	[[ ! -s $BATS_TEST_TMPDIR/left ]] || fail "$(wc -l <"$BATS_TEST_TMPDIR/left") of $n files left by their DEL: $(head -c 300 "$BATS_TEST_TMPDIR/left" | tr '\n' ' ')"
	run resv
	assert_output ""
}

@test "a reservation file rewritten in place belongs to its new owner: DEL of the old owner keeps it, DEL of the new one removes it" {
	local c
	c=$(conf '[[{"subnet":"10.200.145.0/24"}]]')
	cni ADD host-local "$c" c1; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.145.2/24"
	printf 'c9\r\neth0' >"$STORE/10.200.145.2"
	cni CHECK host-local "$c" c1
	expect_error 104 "no address is reserved for container c1"
	cni CHECK host-local "$c" c9
	assert_success
	cni DEL host-local "$c" c1
	assert_success
	assert_equal "$(od -An -c "$STORE/10.200.145.2" | tr -s ' ')" " c 9 \r \n e t h 0"
	cni DEL host-local "$c" c9
	assert_success
	[ ! -e "$STORE/10.200.145.2" ] || fail "DEL c9 returned 0 and left 10.200.145.2"
}

@test "a container holding a file of the oldest format (ID only) is refused another ADD, as by the reference; its DEL releases the file" {
	local variant c
	for variant in 'c1' $'c1\n'; do
		NET=$(tag)x${#variant} STORE=$DATA/$(tag)x${#variant}
		c=$(conf '[[{"subnet":"10.200.146.0/24"}]]')
		mkdir -p "$STORE"
		printf '%s' "$variant" >"$STORE/10.200.146.5"
		# positive control: the reference refuses (on a copy of the store)
		cp -a "$STORE" "$STORE-ref"
		cni ADD "$REF_DIR/host-local" "$(NET=$NET-ref conf '[[{"subnet":"10.200.146.0/24"}]]')" c1 eth1
		assert_equal "$status" 1
		[[ $(jqo .msg) =~ duplicate\ allocation ]] || fail "reference: $output"
		local before
		before=$(snap)
		for ifn in eth0 eth1; do
			cni ADD host-local "$c" c1 $ifn
			expect_error 103 "10.200.146.5 has been allocated to c1, duplicate allocation is not allowed"
			assert_equal "$(snap)" "$before"
		done
		cni CHECK host-local "$c" c1 eth0
		assert_success
		cni DEL host-local "$c" c1 eth0
		assert_success
		[ ! -e "$STORE/10.200.146.5" ] || fail "DEL c1/eth0 left the ID-only file"
		cni ADD host-local "$c" c2 eth0
		assert_success
		cni ADD host-local "$(conf '[[{"subnet":"10.200.146.0/24"}]]' '"runtimeConfig":{"ips":["10.200.146.5"]}')" c3 eth0
		assert_success
		assert_equal "$(jqo -r '.ips[0].address')" "10.200.146.5/24"
		assert_equal "$(od -An -c "$STORE/10.200.146.5" | tr -s ' ')" " c 3 \r \n e t h 0"
	done
}

@test "a container holding an exact file and one of the oldest format: two DELs release both, as two of the reference's do" {
	local c cref
	c=$(conf '[[{"subnet":"10.200.147.0/24"}]]')
	cni ADD host-local "$c" c1 eth0; assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.147.2/24"
	printf 'c1' >"$STORE/10.200.147.5"
	# positive control: the reference on a copy
	cp -a "$STORE" "$STORE-ref"
	cref=$(NET=$NET-ref conf '[[{"subnet":"10.200.147.0/24"}]]')
	cni DEL "$REF_DIR/host-local" "$cref" c1 eth0; assert_success
	assert_equal "$(resv "$STORE-ref")" "10.200.147.5"
	cni DEL "$REF_DIR/host-local" "$cref" c1 eth0; assert_success
	assert_equal "$(resv "$STORE-ref")" ""
	# ours
	cni DEL host-local "$c" c1 eth0; assert_success
	assert_equal "$(resv)" "10.200.147.5"
	cni DEL host-local "$c" c1 eth0; assert_success
	assert_equal "$(resv)" ""
}

@test "a /22 fully reserved by files written by others: ADD fails with 102 and creates nothing; a DEL right after works" {
	local c x y k=0
	c=$(conf '[[{"subnet":"10.200.156.0/22"}]]')
	mkdir -p "$STORE"
	(trap - DEBUG; cd "$STORE" && for x in 156 157 158 159; do for y in $(seq 0 255); do
		k=$((k + 1))
		printf 'f%s\r\neth0' $k >"10.200.$x.$y"
	done; done
	rm -f 10.200.156.0 10.200.156.1 10.200.159.255)
	local before
	before=$(snap)
	cni ADD host-local "$c" new
	expect_error 102 "no IP addresses available in range set 10.200.156.1-10.200.159.254"
	assert_equal "$(snap)" "$before"
	# f600 holds 10.200.158.87 (k counts from 10.200.156.0 = 1)
	cni DEL host-local "$c" f600
	assert_success
	[ ! -e "$STORE/10.200.158.87" ]
	cni CHECK host-local "$c" f601
	assert_success
	cni ADD host-local "$c" new
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.158.87/22"
	cni ADD host-local "$c" new2
	expect_error 102 "no IP addresses available"
}
