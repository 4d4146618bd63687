#!/usr/bin/env bats
# loopback plugin: lo up in the container, the reference's result, prevResult passed through,
# GC (nothing to collect, input still validated) and STATUS (always ready) of spec 1.1.

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	mkns "$HOSTNS"
	ip netns add c$T && NS_LIST+=(c$T) # lo left down on purpose
	CONF='{"cniVersion":"1.0.0","name":"lo","type":"loopback"}'
}

teardown() { net_teardown; }

@test "ADD brings lo up and reports it as the reference does" {
	hcni ADD loopback "$CONF" c$T anything
	assert_success
	assert_equal "$(jqo -c '.interfaces')" "[{\"name\":\"lo\",\"mac\":\"00:00:00:00:00:00\",\"sandbox\":\"/var/run/netns/c$T\"}]"
	assert_equal "$(jqo -c '[.ips[] | [.address, .interface]]')" '[["127.0.0.1/8",0],["::1/128",0]]'
	ip -n c$T link show lo | grep -q ',UP'
	ip netns exec c$T ping -c1 -W1 127.0.0.1 >/dev/null
	require "$REF_DIR/loopback"
	ip netns add d$T && NS_LIST+=(d$T)
	local ours=$output
	CNI_PATH_OVERRIDE=$REF_DIR hcni ADD "$REF_DIR/loopback" "$CONF" d$T
	assert_success
	assert_equal "$(jq -c '[.ips, (.interfaces|map(.name, .mac))]' <<<"$ours")" "$(jqo -c '[.ips, (.interfaces|map(.name, .mac))]')"
}

@test "prevResult passes through; CNI_ARGS of any kind are accepted" {
	local prev='{"cniVersion":"1.0.0","interfaces":[{"name":"eth0","sandbox":"/x"}],"ips":[{"address":"10.200.9.2/24","interface":0}]}'
	CNI_ARGS="FOO=bar" hcni ADD loopback "$(jq -c --argjson p "$prev" '.prevResult=$p' <<<"$CONF")" c$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address + " " + .interfaces[0].name')" '10.200.9.2/24 eth0'
}

@test "CHECK passes when lo is up, fails (104) when it is down; DEL sets it down; DEL without netns succeeds" {
	hcni ADD loopback "$CONF" c$T
	assert_success
	hcni CHECK loopback "$CONF" c$T
	assert_success
	hcni DEL loopback "$CONF" c$T
	assert_success
	run ip -n c$T link show lo
	refute_output --partial ',UP'
	hcni CHECK loopback "$CONF" c$T
	expect_error 104 'loopback interface is down'
	ip netns del c$T
	hcni DEL loopback "$CONF" c$T
	assert_success
	hcni DEL loopback "$CONF" "" lo c$T
	assert_success
}

# lo_run VERB CONFIG: a GC or STATUS as libcni sends it: no container, netns or ifname, only
# CNI_COMMAND and CNI_PATH, from the host namespace.
lo_run() {
	run ip netns exec "$HOSTNS" env -u CNI_CONTAINERID -u CNI_NETNS -u CNI_IFNAME -u CNI_ARGS \
		CNI_COMMAND="$1" CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/loopback" <<<"$2"
	[[ $status != 86 ]] || fail "sanitizer error in loopback $1: $output"
}

@test "GC: nothing to collect (lo of a live container untouched), attachments validated, below 1.1.0 refused" {
	local conf='{"cniVersion":"1.1.0","name":"lo","type":"loopback"}'
	hcni ADD loopback "$conf" c$T
	assert_success
	# the container is not among the valid attachments, and there are none at all: still nothing to do
	for va in '"cni.dev/valid-attachments":[{"containerID":"other","ifname":"eth0"}]' '"cni.dev/valid-attachments":[]' \
		'"cni.dev/attachments":[{"containerID":"other","ifname":"lo"}]'; do
		lo_run GC "${conf%\}},$va}"
		assert_success
		assert_output ''
	done
	lo_run GC "$conf"
	assert_success
	assert_output ''
	# lo of the container is still up: GC took nothing away
	ip -n c$T link show lo | grep -q ',UP'
	hcni CHECK loopback "$conf" c$T
	assert_success
	# the input is validated as every plugin's GC validates it, the field named
	lo_run GC "${conf%\}},\"cni.dev/valid-attachments\":{\"containerID\":\"c\",\"ifname\":\"lo\"}}"
	expect_error 6 'field "cni\.dev/valid-attachments" must be an array'
	lo_run GC "${conf%\}},\"cni.dev/valid-attachments\":[{\"containerID\":\"c\"}]}"
	expect_error 7 'field "cni\.dev/valid-attachments\[0\]" needs containerID and ifname'
	lo_run GC "${conf%\}},\"cni.dev/attachments\":[[\"c\",\"lo\"]]}"
	expect_error 6 'field "cni\.dev/attachments\[0\]" must be an object'
	lo_run GC '{"cniVersion":"1.1.0","name":"../x","type":"loopback"}'
	expect_error 7 'field "name"'
	# GC is new in 1.1.0: every older version is refused, the error in the config's version
	for v in 1.0.0 0.4.0 0.3.1 0.3.0 0.2.0 0.1.0; do
		lo_run GC "${conf/1.1.0/$v}"
		expect_error 1 "config version \"${v//./\\.}\" does not allow GC \\(needs 1\\.1\\.0 or later\\)"
		assert_equal "$(jqo -r .cniVersion)" "$v"
	done
	ip -n c$T link show lo | grep -q ',UP'
}

@test "STATUS: ready at 1.1.0 (no output) and the next ADD works; below 1.1.0 refused; needs CNI_PATH" {
	local conf='{"cniVersion":"1.1.0","name":"lo","type":"loopback"}'
	lo_run STATUS "$conf"
	assert_success
	assert_output ''
	# "ready" holds: the ADD that follows brings lo of a fresh container (c$T: lo down) up
	hcni ADD loopback "$conf" c$T
	assert_success
	ip -n c$T link show lo | grep -q ',UP'
	for v in 1.0.0 0.4.0 0.3.0 0.1.0; do
		lo_run STATUS "${conf/1.1.0/$v}"
		expect_error 1 "config version \"${v//./\\.}\" does not allow STATUS \\(needs 1\\.1\\.0 or later\\)"
	done
	lo_run STATUS '{"cniVersion":"1.1.0","name":"lo",'
	expect_error 6 'not valid JSON'
	run ip netns exec "$HOSTNS" env -u CNI_PATH CNI_COMMAND=STATUS "$PLUGIN_DIR/loopback" <<<"$conf"
	expect_error 4 '\[CNI_PATH\] missing'
}
