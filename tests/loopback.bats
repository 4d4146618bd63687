#!/usr/bin/env bats
# loopback plugin: lo up in the container, the reference's result, prevResult passed through.

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
	[ -x "$REF_DIR/loopback" ] || return 0
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
