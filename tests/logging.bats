#!/usr/bin/env bats
# The per-verb log (logFile / logLevel in the config, CNI_C_LOG_FILE / CNI_C_LOG_LEVEL in the
# environment): one whole line per verb, never on stdout, never changing a verb's outcome.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	BR=lg$T
	NET=n$T
	DATA=$BATS_TEST_TMPDIR/ipam
	LOG=$BATS_TEST_TMPDIR/cni.log
	unset CNI_C_LOG_FILE CNI_C_LOG_LEVEL
}

teardown() {
	net_teardown
}

# brconf [extra members]: a bridge network with in-process host-local IPAM
brconf() {
	printf '{"cniVersion":"1.1.0","name":"%s","type":"bridge","bridge":"%s"%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.60.0/24"}]]}}' \
		"$NET" "$BR" "${1:+,$1}" "$DATA"
}
# hlconf [extra members]: host-local alone (no namespaces needed)
hlconf() {
	printf '{"cniVersion":"1.1.0","name":"%s","type":"host-local"%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"10.200.61.0/24"}]]}}' \
		"$NET" "${1:+,$1}" "$DATA"
}

# badconf [extra members]: host-local with a bad field (ipam.ranges not an array)
badconf() {
	printf '{"cniVersion":"1.1.0","name":"%s","type":"host-local"%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":"nope"}}' \
		"$NET" "${1:+,$1}" "$DATA"
}

TS='time=[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z'
MS='ms=[0-9]+\.[0-9]{3}'

# line N: the Nth line of the log
line() { sed -n "${1}p" "$LOG"; }

@test "bridge ADD, CHECK, DEL with logFile: exactly three lines with the verb's fields" {
	mkns "$HOSTNS"
	mkns "c$T"
	local conf
	conf=$(brconf "\"logFile\":\"$LOG\"")
	hcni ADD bridge "$conf" "c$T"
	assert_success
	local ip
	ip=$(jqo '.ips[0].address')
	[[ $ip == 10.200.60.* ]]
	local prev
	prev=$(jq -c --argjson r "$output" '. + {prevResult: $r}' <<<"$conf")
	hcni CHECK bridge "$prev" "c$T"
	assert_success
	hcni DEL bridge "$prev" "c$T"
	assert_success
	# the in-process IPAM adds no line of its own
	assert_equal "$(wc -l <"$LOG")" 3
	[[ $(line 1) =~ ^$TS\ level=info\ plugin=bridge\ verb=ADD\ container=c$T\ ifname=eth0\ net=$NET\ $MS\ result=ok\ ips=${ip//./\\.}$ ]] ||
		fail "ADD line: $(line 1)"
	[[ $(line 2) =~ ^$TS\ level=info\ plugin=bridge\ verb=CHECK\ container=c$T\ ifname=eth0\ net=$NET\ $MS\ result=ok$ ]] ||
		fail "CHECK line: $(line 2)"
	[[ $(line 3) =~ ^$TS\ level=info\ plugin=bridge\ verb=DEL\ container=c$T\ ifname=eth0\ net=$NET\ $MS\ result=ok$ ]] ||
		fail "DEL line: $(line 3)"
	# the log's time is now, in UTC
	local t
	t=$(line 1 | sed -E 's/^time=([^ ]+) .*/\1/')
	local d=$(($(date -u +%s) - $(date -u -d "$t" +%s)))
	((d > -60 && d < 60)) || fail "time $t is not now"
}

@test "a bad config field: the line has the CNI error code and message, stdout the same error" {
	cni ADD host-local "$(badconf "\"logFile\":\"$LOG\"")" ctr1
	expect_error 6 'ipam.ranges'
	local msg
	msg=$(jqo .msg)
	assert_equal "$(wc -l <"$LOG")" 1
	[[ $(line 1) =~ ^$TS\ level=error\ plugin=host-local\ verb=ADD\ container=ctr1\ ifname=eth0\ net=$NET\ $MS\ result=error\ code=6\ msg=\"(.*)\"$ ]] ||
		fail "line: $(line 1)"
	assert_equal "${BASH_REMATCH[1]//\\\"/\"}" "$msg"
	# a plugin's own field check (after skel's parsing) is logged too
	mkns "$HOSTNS"
	hcni ADD bridge "$(brconf "\"logFile\":\"$LOG\",\"mtu\":\"big\"")" /var/run/netns/none eth0 ctr1
	expect_error 6 'mtu'
	[[ $(line 2) == *"plugin=bridge verb=ADD"*"result=error code=6 msg=\"invalid config: field \\\"mtu\\\""* ]] || fail "line: $(line 2)"
}

@test "the log keys themselves are checked: logLevel, logFile, CNI_C_LOG_LEVEL" {
	cni ADD host-local "$(hlconf "\"logFile\":\"$LOG\",\"logLevel\":\"loud\"")" ctr1
	expect_error 7 'field "logLevel": "loud" is not a log level'
	# the bad level still leaves the failure in the file the config names
	[[ $(line 1) == *"result=error code=7 msg="* ]] || fail "line: $(line 1)"
	cni ADD host-local "$(hlconf '"logFile":"relative.log"')" ctr1
	expect_error 7 'field "logFile": "relative.log" must be an absolute path'
	cni ADD host-local "$(hlconf '"logFile":42')" ctr1
	expect_error 6 'logFile'
	CNI_C_LOG_LEVEL=chatty cni ADD host-local "$(hlconf)" ctr1
	expect_error 4 'CNI_C_LOG_LEVEL "chatty" is not a log level'
	[ ! -e "$DATA/$NET/10.200.61.2" ]
}

@test "CNI_C_LOG_FILE: a config that does not parse is logged; the environment wins over logFile" {
	local other=$BATS_TEST_TMPDIR/from-config.log
	CNI_C_LOG_FILE=$LOG cni ADD host-local '{"cniVersion":"1.1.0","name":' ctr1
	expect_error 6 'not valid JSON'
	assert_equal "$(wc -l <"$LOG")" 1
	[[ $(line 1) =~ ^$TS\ level=error\ plugin=host-local\ verb=ADD\ container=ctr1\ ifname=eth0\ $MS\ result=error\ code=6\ msg= ]] ||
		fail "line: $(line 1)"
	CNI_C_LOG_FILE=$LOG cni ADD host-local "$(hlconf "\"logFile\":\"$other\"")" ctr1
	assert_success
	[[ $(line 2) == *"verb=ADD container=ctr1 "*"result=ok ips=10.200.61.2/24" ]] || fail "line: $(line 2)"
	[ ! -e "$other" ]
	# VERSION reads no config: the environment alone logs it
	CNI_C_LOG_FILE=$LOG cni VERSION host-local ''
	assert_success
	[[ $(line 3) =~ ^$TS\ level=info\ plugin=host-local\ verb=VERSION\ container=ctr1\ ifname=eth0\ $MS\ result=ok$ ]] ||
		fail "line: $(line 3)"
	# control characters in the container ID stay on one line, escaped
	CNI_C_LOG_FILE=$LOG cni DEL host-local "$(hlconf)" "$(printf 'bad\nid\033')"
	expect_error 4 CNI_CONTAINERID
	assert_equal "$(wc -l <"$LOG")" 4
	[[ $(line 4) == *'container=bad\x0aid\x1b '*'msg="CNI_CONTAINERID \"bad\x0aid\x1b\" has invalid'* ]] || fail "line: $(line 4)"
}

@test "levels: error logs failures only, debug adds details, off (environment) silences the config" {
	cni ADD host-local "$(hlconf "\"logFile\":\"$LOG\",\"logLevel\":\"error\"")" ctr1
	assert_success
	[ ! -s "$LOG" ] || fail "error level logged a success: $(cat "$LOG")"
	cni ADD host-local "$(hlconf "\"logFile\":\"$LOG\",\"logLevel\":\"error\"")" ctr1 'bad/if'
	expect_error 4 CNI_IFNAME
	assert_equal "$(wc -l <"$LOG")" 1
	CNI_C_LOG_LEVEL=debug cni DEL host-local "$(hlconf "\"logFile\":\"$LOG\",\"logLevel\":\"error\"")" ctr1
	assert_success
	[[ $(line 2) =~ \ pid=[0-9]+\ netns=/var/run/netns/none\ cniVersion=1\.1\.0\ prep_ms=[0-9.]+\ run_ms=[0-9.]+\ result=ok$ ]] ||
		fail "debug line: $(line 2)"
	CNI_C_LOG_LEVEL=off cni DEL host-local "$(hlconf "\"logFile\":\"$LOG\"")" ctr1
	assert_success
	assert_equal "$(wc -l <"$LOG")" 2
}

@test "a log that cannot be written leaves the verb's result and exit status as they are" {
	# the reference: the same verbs with no log
	cni ADD host-local "$(hlconf)" ctr1
	assert_success
	local want
	want=$output
	cni DEL host-local "$(hlconf)" ctr1
	assert_success
	mkfifo "$BATS_TEST_TMPDIR/fifo"
	ln -s "$BATS_TEST_TMPDIR/target" "$BATS_TEST_TMPDIR/link"
	local p
	local n=0
	for p in "$BATS_TEST_TMPDIR" /proc/version /dev/full "$BATS_TEST_TMPDIR/fifo" "$BATS_TEST_TMPDIR/link" \
		"$BATS_TEST_TMPDIR/no/such/dir/log"; do
		# a store of its own each time: the same address as the reference run
		DATA=$BATS_TEST_TMPDIR/ipam$((++n))
		# a FIFO without a reader must not block the verb: timeout turns a hang into a failure
		run timeout 10 env CNI_COMMAND=ADD CNI_CONTAINERID=ctr1 CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/none \
			CNI_PATH="$PLUGIN_DIR" CNI_C_LOG_FILE="$p" "$PLUGIN_DIR/host-local" <<<"$(hlconf)"
		assert_success
		assert_equal "$output" "$want"
		run timeout 10 env CNI_COMMAND=ADD CNI_CONTAINERID=ctr2 CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/none \
			CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/host-local" <<<"$(badconf "\"logFile\":\"$p\"")"
		expect_error 6 ipam.ranges
		cni DEL host-local "$(hlconf "\"logFile\":\"$p\"")" ctr1
		assert_success
		assert_equal "$output" ""
	done
	# nothing went through the symlink
	[ ! -e "$BATS_TEST_TMPDIR/target" ]
}

@test "no log file set: the plugins open no file to log to" {
	require strace
	skip_if_wrapped host-local
	mkns "$HOSTNS"
	mkns "c$T"
	local conf
	conf=$(brconf "\"logLevel\":\"debug\"")
	# LeakSanitizer cannot run under ptrace
	ASAN_OPTIONS=$ASAN_OPTIONS:detect_leaks=0 run ip netns exec "$HOSTNS" env CNI_COMMAND=ADD CNI_CONTAINERID="c$T" CNI_IFNAME=eth0 CNI_NETNS="/var/run/netns/c$T" \
		CNI_PATH="$PLUGIN_DIR" CNI_C_LOG_LEVEL=info strace -f -e trace=open,openat,creat -o "$BATS_TEST_TMPDIR/st" \
		"$PLUGIN_DIR/bridge" <<<"$conf"
	assert_success
	# every file opened for writing by absolute path (a log file must be one) is the IPAM store's
	# or a sysctl
	local w
	w=$(grep -E 'O_WRONLY|O_RDWR|creat\(' "$BATS_TEST_TMPDIR/st" | grep '"/' | grep -v "\"$DATA" | grep -v '"/proc/sys/' || true)
	[[ -z $w ]] || fail "opened for writing: $w"
	grep -q "\"$DATA" "$BATS_TEST_TMPDIR/st" || fail "the trace misses the store"
	# (the reservation is written unnamed, O_TMPFILE, then linked as 10.200.60.2)
	grep -q 'O_TMPFILE' "$BATS_TEST_TMPDIR/st" && grep -q '"last_reserved_ip.0", O_WRONLY' "$BATS_TEST_TMPDIR/st" ||
		fail "the trace misses the store's writes"
}

@test "host-local run as its own executable logs its own line beside bridge's" {
	mkns "$HOSTNS"
	mkns "c$T"
	# a wrapper carries no build marker: bridge execs host-local as the spec says
	mkdir "$BATS_TEST_TMPDIR/path"
	printf '#!/bin/sh\nexec %s/host-local "$@"\n' "$PLUGIN_DIR" >"$BATS_TEST_TMPDIR/path/host-local"
	chmod +x "$BATS_TEST_TMPDIR/path/host-local"
	CNI_PATH_OVERRIDE=$BATS_TEST_TMPDIR/path hcni ADD bridge "$(brconf "\"logFile\":\"$LOG\"")" "c$T"
	assert_success
	assert_equal "$(wc -l <"$LOG")" 2
	[[ $(line 1) == *" plugin=host-local verb=ADD container=c$T ifname=eth0 net=$NET "*"result=ok ips=10.200.60.2/24" ]] ||
		fail "line 1: $(line 1)"
	[[ $(line 2) == *" plugin=bridge verb=ADD container=c$T ifname=eth0 net=$NET "*"result=ok ips=10.200.60.2/24" ]] ||
		fail "line 2: $(line 2)"
}

@test "20 ADDs at once: 20 whole lines" {
	require flock
	local i pids=() cid gate=$BATS_TEST_TMPDIR/gate
	# long container IDs make long lines (a line written in pieces would interleave); networks of
	# their own so that no store lock orders the ADDs; all start when the gate opens
	exec {g}>"$gate"
	flock -x "$g"
	for i in $(seq 1 20); do
		NET=$T-$i hlconf >"$BATS_TEST_TMPDIR/in$i"
		cid=$(printf 'ctr%02d-%01000d' "$i" 0)
		CNI_COMMAND=ADD CNI_CONTAINERID=$cid CNI_IFNAME=eth0 CNI_NETNS=/var/run/netns/none CNI_PATH="$PLUGIN_DIR" \
			CNI_C_LOG_FILE=$LOG flock -s "$gate" "$PLUGIN_DIR/host-local" <"$BATS_TEST_TMPDIR/in$i" >"$BATS_TEST_TMPDIR/out$i" {g}>&- &
		pids+=($!)
	done
	sleep 0.5
	flock -u "$g"
	exec {g}>&-
	for i in "${pids[@]}"; do wait "$i" || fail "an ADD failed"; done
	assert_equal "$(wc -l <"$LOG")" 20
	for i in $(seq 1 20); do
		cid=$(printf 'ctr%02d-%01000d' "$i" 0)
		assert_equal "$(grep -Ec "^$TS level=info plugin=host-local verb=ADD container=$cid ifname=eth0 net=$T-$i $MS result=ok ips=10\.200\.61\.2/24$" "$LOG")" 1
	done
}
