#!/usr/bin/env bats
# Crashes, full and read-only disks, and storms: whatever happens, the state afterwards is either
# the container's complete attachment or nothing, and DEL or GC converges.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	DATA=$BATS_TEST_TMPDIR/ipam
	NET=n$T
	mkns "$HOSTNS"
	ip -n "$HOSTNS" link add "br$T" type bridge
	ip -n "$HOSTNS" link set "br$T" up
	MOUNTS=()
}

teardown() {
	local m
	for m in "${MOUNTS[@]}"; do umount -l "$m" 2>/dev/null; done
	# the storm's containers, should it stop halfway
	for m in $(ip netns list | awk -v t="$T" '$1 ~ "^s[0-9]+-[0-9]+" t "$" {print $1}'); do ip netns del "$m"; done
	net_teardown
}

conf() { # [dataDir] [extra]
	printf '{"cniVersion":"1.1.0","name":"%s","type":"bridge","bridge":"br%s","isGateway":true,"ipMasq":true%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.160.0/20"}],[{"subnet":"fd00:200:160::/64"}]]}}' \
		"$NET" "$T" "${2:+,$2}" "${1:-$DATA}"
}

plugin() { # VERB CID [NETNS]
	ip netns exec "$HOSTNS" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_IFNAME=eth0 CNI_NETNS="${3:-/var/run/netns/$2}" \
		CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge"
}

# converged: nothing of ours left anywhere
converged() {
	[[ $(ip -n "$HOSTNS" -o link show master "br$T" | wc -l) == 0 ]] || { ip -n "$HOSTNS" -o link show master "br$T" >&2; return 1; }
	local r
	r=$(ls "$DATA/$NET" 2>/dev/null | grep -e '^10\.' -e '^fd00' || true)
	[[ -z $r ]] || { echo "reservations left: $r" >&2; return 1; }
	r=$(ip netns exec "$HOSTNS" nft list ruleset | grep -E 'chain a-|goto a-' || true)
	[[ -z $r ]] || { echo "SNAT left: $r" >&2; return 1; }
}

# killed VERB CID DELAY_US: start the plugin as a runtime does, wait until the plugin binary itself
# runs (ip netns exec and env exec in place: $! becomes it; the namespace setup before that takes
# 5-40 ms here, so a timer started at the fork would mostly kill "ip netns exec"), wait DELAY_US,
# SIGKILL it. Returns 0 when the kill landed in a running plugin: the process was the plugin
# binary just before the kill and died of the signal (status 137; one that had exited before
# keeps its own status).
killed() {
	local pid st was=0 deadline=$((${EPOCHREALTIME/./} + 5000000))
	ip netns exec "$HOSTNS" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$2 \
		CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <"$BATS_TEST_TMPDIR/c" >/dev/null 2>&1 &
	pid=$!
	until [[ /proc/$pid/exe -ef $PLUGIN_DIR/bridge ]]; do
		((${EPOCHREALTIME/./} < deadline)) || { kill -9 "$pid"; wait "$pid" 2>/dev/null; return 1; }
	done
	(($3 == 0)) || read -r -t "$(($3 / 1000000)).$(printf %06d $(($3 % 1000000)))" -u "$NEVER" || true
	# still the plugin right before the kill (not ip or env), and killed by it
	[[ /proc/$pid/exe -ef $PLUGIN_DIR/bridge ]] && was=1
	kill -9 "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	st=$?
	[[ $was == 1 && $st == 137 ]]
}

# plugin_us VERB CID: the plugin's own run time in microseconds (from its exec to its exit)
plugin_us() {
	local pid t0 t1
	ip netns exec "$HOSTNS" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/$2 \
		CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/bridge" <"$BATS_TEST_TMPDIR/c" >/dev/null 2>&1 &
	pid=$!
	until [[ /proc/$pid/exe -ef $PLUGIN_DIR/bridge ]]; do [[ -e /proc/$pid/exe ]] || break; done
	t0=${EPOCHREALTIME/./}
	wait "$pid" || return 1
	t1=${EPOCHREALTIME/./}
	echo $((t1 - t0))
}

@test "SIGKILL at random moments during 200 ADD/DEL cycles, then DEL and GC: zero residue, store consistent" {
	local i d n=0 hit=0 dadd=() ddel=()
	conf >"$BATS_TEST_TMPDIR/c"
	# read -t on a FIFO nobody writes: sub-millisecond waits without forking sleep
	mkfifo "$BATS_TEST_TMPDIR/never"
	exec {NEVER}<>"$BATS_TEST_TMPDIR/never"
	# how long an ADD and a DEL run here, now: the kills land at uniformly random moments in
	# [0, D), D starting at the median run time. The load of a shared machine changes run times
	# by a factor of 10 within a minute, so D follows: shorter after a kill that came too late,
	# a little longer after one that hit (so about 4 of 5 hit, and as run times vary, the kills
	# reach every phase of the work).
	for i in 1 2 3 4 5; do
		mkns m$i$T
		d=$(plugin_us ADD m$i$T) || fail "calibration ADD failed"
		dadd+=("$d")
		d=$(plugin_us DEL m$i$T) || fail "calibration DEL failed"
		ddel+=("$d")
	done
	local -A D
	D[ADD]=$(printf '%s\n' "${dadd[@]}" | sort -n | sed -n 3p)
	D[DEL]=$(printf '%s\n' "${ddel[@]}" | sort -n | sed -n 3p)
	echo "# median run time: ADD ${D[ADD]} us, DEL ${D[DEL]} us" >&3
	trap - DEBUG # bats traces every command otherwise: the polls below would lag the exec
	# kill VERB CID: one kill, counted, D adjusted
	kill_one() {
		n=$((n + 1))
		if killed "$1" "$2" $(((RANDOM * 32768 + RANDOM) % D[$1])); then
			hit=$((hit + 1))
			D[$1]=$((D[$1] * 21 / 20 + 1))
		else
			D[$1]=$((D[$1] * 4 / 5 + 1))
		fi
	}
	for i in $(seq 1 200); do
		ip netns add k$i$T && NS_LIST+=(k$i$T)
		kill_one ADD k$i$T
		if ((RANDOM % 3 == 0)); then # sometimes the DEL dies too
			kill_one DEL k$i$T
		fi
	done
	exec {NEVER}>&-
	echo "# $hit of $n kills hit a running ADD or DEL ($((hit * 100 / n))%); D at the end: ADD ${D[ADD]} us, DEL ${D[DEL]} us" >&3
	# at least a third, and 50: on a loaded machine the poll above sees a fast plugin late, and a
	# kill that comes after its exit is not counted (the test then still kills 50+ running plugins)
	((hit * 3 >= n && hit >= 50)) || fail "only $hit of $n kills landed while the plugin ran"
	# the runtime's cleanup: DEL everything (again), then GC with nothing valid
	for i in $(seq 1 200); do
		run plugin DEL k$i$T <<<"$(conf)"
		assert_success
		ip netns del k$i$T
	done
	run plugin GC x "" <<<"$(conf)"
	assert_success
	converged
	# no torn or ownerless file: new ADDs get distinct addresses
	[ -z "$(find "$DATA/$NET" -maxdepth 1 -type f -empty ! -name lock)" ]
	for i in 1 2 3 4 5; do
		mkns a$i$T
		run plugin ADD a$i$T <<<"$(conf)"
		assert_success
		echo "$output" | jq -r '.ips[0].address' >>"$BATS_TEST_TMPDIR/ips"
	done
	assert_equal "$(sort -u "$BATS_TEST_TMPDIR/ips" | wc -l)" 5
}

@test "a full disk (small tmpfs as dataDir): a clear error, nothing half-written, works once freed" {
	local small=$BATS_TEST_TMPDIR/small
	mkdir -p "$small"
	mount -t tmpfs -o size=64k tmpfs "$small"
	MOUNTS+=("$small")
	mkns c1$T
	run plugin ADD c1$T <<<"$(conf "$small")"
	assert_success
	# fill it up
	dd if=/dev/zero of="$small/fill" bs=4k 2>/dev/null || true
	mkns c2$T
	run plugin ADD c2$T <<<"$(conf "$small")"
	assert_failure
	assert_equal "$(jqo .code)" 5
	assert_output --regexp 'No space left on device|Disk quota'
	run ip -n c2$T link show eth0
	assert_failure
	[ -z "$(grep -l c2$T "$small/$NET"/* 2>/dev/null)" ]
	[ -z "$(find "$small/$NET" -maxdepth 1 -type f -empty ! -name lock)" ]
	rm -f "$small/fill"
	run plugin ADD c2$T <<<"$(conf "$small")"
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" "10.200.160.3/20"
}

@test "a read-only dataDir: a clear error naming the store, nothing created" {
	local ro=$BATS_TEST_TMPDIR/ro
	mkdir -p "$ro"
	mount -t tmpfs -o size=1m tmpfs "$ro"
	MOUNTS+=("$ro")
	mkdir -p "$ro/$NET"
	mount -o remount,ro "$ro"
	mkns c1$T
	run plugin ADD c1$T <<<"$(conf "$ro")"
	assert_failure
	assert_equal "$(jqo .code)" 5
	assert_output --partial "$ro/$NET"
	assert_output --partial 'Read-only file system'
	run ip -n c1$T link show eth0
	assert_failure
	[[ $(ip -n "$HOSTNS" -o link show master "br$T" | wc -l) == 0 ]]
}

@test "storm: 16 processes, 2000 ADD/DEL operations on one bridge and range, mixed with GC" {
	local reg=$BATS_TEST_TMPDIR/reg
	mkdir -p "$reg/held" "$reg/live" "$reg/errors" "$reg/ok" "$reg/again" "$reg/done"
	conf >"$BATS_TEST_TMPDIR/conf"
	worker() {
		local w=$1 k out ip cid
		for k in $(seq 1 62); do
			cid=s$w-$k$T
			ip netns add "$cid" || { echo "netns $cid" >"$reg/errors/$cid"; continue; }
			: >"$reg/live/$cid" # the runtime knows it before ADD: GC must keep it
			# (a bare out=$(...) that fails would end the worker here: errexit holds in it)
			if ! out=$(plugin ADD "$cid" <"$BATS_TEST_TMPDIR/conf" 2>&1); then
				if [[ $(jq -r .code <<<"$out" 2>/dev/null) == 11 ]]; then
					: >"$reg/again/$cid"
				else
					echo "ADD: $out" >"$reg/errors/$cid"
				fi
			else
				: >"$reg/ok/$cid"
				for ip in $(jq -r '.ips[].address' <<<"$out"); do
					# held/<address> is created exclusively: a second holder is a duplicate
					if ! ln -s "$cid" "$reg/held/${ip%/*}" 2>/dev/null; then
						echo "duplicate $ip: $cid and $(readlink "$reg/held/${ip%/*}")" >"$reg/errors/dup-$cid"
					fi
				done
				for ip in $(jq -r '.ips[].address' <<<"$out"); do rm -f "$reg/held/${ip%/*}"; done
			fi
			out=$(plugin DEL "$cid" <"$BATS_TEST_TMPDIR/conf" 2>&1) || echo "DEL: $out" >"$reg/errors/del-$cid"
			rm -f "$reg/live/$cid"
			ip netns del "$cid" || echo "netns del $cid" >"$reg/errors/nsdel-$cid"
		done
		: >"$reg/done/$w"
	}
	gc() {
		local i valid
		for i in $(seq 1 20); do
			valid=$(ls "$reg/live" | jq -R '{containerID: ., ifname: "eth0"}' | jq -sc .)
			out=$(jq -c --argjson v "$valid" '."cni.dev/valid-attachments"=$v' "$BATS_TEST_TMPDIR/conf" | plugin GC x "" 2>&1) ||
				echo "GC: $out" >"$reg/errors/gc-$i"
			sleep 0.2
		done
	}
	local w
	for w in $(seq 1 16); do worker "$w" & done
	gc &
	wait
	run ls "$reg/errors"
	[[ -z $output ]] || { cat "$reg"/errors/* | head -20; false; }
	# every worker went through all its cycles
	assert_equal "$(ls "$reg/done" | wc -l)" 16
	# code 11 (a netlink or nftables dump interrupted by a concurrent change) is a legitimate
	# answer under this load, but only now and then: healthy runs on this 2-core machine at load
	# averages of 8 to 25 (release and ASan builds) had all 992 ADDs succeed. A plugin that gives
	# up (or always says 11) must not pass.
	local ok again
	ok=$(ls "$reg/ok" | wc -l)
	again=$(ls "$reg/again" | wc -l)
	echo "# $ok of 992 ADDs succeeded, $again answered 11 (try again)" >&3
	((ok >= 900)) || fail "only $ok of 992 ADDs succeeded ($again answered 11)"
	converged
}
