#!/usr/bin/env bats
# The cluster overlay (docs/cluster.md) end to end: a real 3-member etcd cluster, one real
# cni-c-agent per node namespace, containers added by the vxlan plugin in cluster mode, real
# traffic between them. The fixture is tests/helpers/cluster.bash.

setup() {
	load helpers/common
	load helpers/net
	load helpers/cluster
	require etcd etcdctl bc jq
	T=$(tag)
	cluster_setup
}

teardown() {
	cluster_teardown
}

# agent_required: the tests that need cni-c-agent fail (never skip) without it.
agent_required() { require "$AGENT"; }

# ping_all C...: every container pings every other one's address (in CIPS[C]).
declare -A CIPS=()
ping_all() {
	local a b
	for a in "$@"; do
		for b in "$@"; do
			[[ $a == "$b" ]] || ping_ok "$a" "${CIPS[$b]}" || fail "$a cannot ping $b (${CIPS[$b]})"
		done
	done
}

# in_block I ADDR: ADDR is inside node I's block.
in_block() {
	local blk
	blk=$(state_get "$1" block)
	[[ ${2%.*} == "${blk%.*}" ]]
}

# ---- the plugin side, with state files written by hand ----

@test "cluster mode: ADD takes its address from the node's block, gateway on the bridge, VTEP from the state, FDB untouched" {
	node_add 1
	state_write 1
	# an FDB entry nobody but the agent may remove: the plugin creates the VTEP, then leaves the FDB
	ctr_add 1 c1$T
	assert_equal "$CIP" 10.200.64.2
	assert_equal "$(jqo -r '.ips[0].address + " " + .ips[0].gateway')" "10.200.64.2/18 10.200.64.1"
	run ip -n "$(node 1)" -d -j link show "vxlan$CL_VNI"
	assert_equal "$(jqo -r '.[0].linkinfo.info_data | "\(.id) \(.port) \(.local)"')" "100 4789 10.200.250.1"
	assert_equal "$(jqo -r '.[0].master + " " + (.[0].mtu|tostring)')" "vxbr100 1450"
	run ip -n "$(node 1)" -4 addr show dev vxbr100
	assert_output --partial 'inet 10.200.64.1/18'
	bridge -n "$(node 1)" fdb append 00:00:00:00:00:00 dev vxlan100 dst 10.200.250.9
	ctr_add 1 c2$T
	assert_equal "$CIP" 10.200.64.3
	fdb_has 1 10.200.250.9
	ctr_verb CHECK 1 c2$T "\"prevResult\":$ADD_OUT"
	assert_success
	ctr_verb STATUS 1 ""
	assert_success
	# DEL keeps the VTEP and the bridge (the agent's) and the FDB entry
	ctr_verb DEL 1 c2$T
	assert_success
	ctr_verb DEL 1 c1$T
	assert_success
	ip -n "$(node 1)" link show vxlan100 >/dev/null
	ip -n "$(node 1)" link show vxbr100 >/dev/null
	fdb_has 1 10.200.250.9
}

@test "cluster mode: the persistDir copy stands in for a missing stateDir file; a given ipam is used as it is" {
	node_add 1
	state_write 1 70
	mv "$(state_dir 1)/$CL_NET.json" "$(persist_dir 1)/"
	ctr_add 1 c1$T
	assert_equal "$CIP" 10.200.70.2
	ctr_add 1 c2$T "\"ipam\":{\"type\":\"host-local\",\"dataDir\":\"$CL/n1/ipam2\",\"ranges\":[[{\"subnet\":\"$CL_SUBNET\",\"rangeStart\":\"10.200.70.100\",\"rangeEnd\":\"10.200.70.200\",\"gateway\":\"10.200.70.1\"}]]}"
	assert_equal "$CIP" 10.200.70.100
}

@test "cluster mode: no state file means code 11 naming the network and cni-c-agent; DEL, GC still clean up without it" {
	node_add 1
	state_write 1
	ctr_add 1 c1$T
	assert_equal "$CIP" 10.200.64.2
	ls "$CL/n1/ipam/$CL_NET/10.200.64.2"
	rm "$(state_dir 1)/$CL_NET.json"
	ctr_verb ADD 1 c2$T
	expect_error 11 "cluster network \"$CL_NET\" has no state.*cni-c-agent"
	ctr_verb STATUS 1 ""
	expect_error 50 "cluster network \"$CL_NET\".*cni-c-agent"
	# DEL without the state: the veth goes, the reservation is released
	run ip -n "$(node 1)" -o link show master vxbr100 type veth
	assert_output --partial veth
	ctr_verb DEL 1 c1$T
	assert_success
	run ip -n "$(node 1)" -o link show master vxbr100 type veth
	assert_output ''
	[[ ! -e $CL/n1/ipam/$CL_NET/10.200.64.2 ]]
	run ip -n "c1$T" link show eth0
	assert_failure
	ctr_verb GC 1 ""
	assert_success
}

@test "cluster mode: peers, group, vni, port, local and underlayDevice in the config are refused, naming the field" {
	node_add 1
	state_write 1
	ctr_add 1 c1$T '"mtu":1400'
	local f v
	for f in 'peers:["10.200.250.2"]' 'group:"239.1.1.1"' vni:100 port:4789 'local:"10.200.250.1"' 'underlayDevice:"ul0"'; do
		v=${f#*:}
		ctr_verb ADD 1 c2$T "\"${f%%:*}\":$v"
		expect_error 7 "field \"${f%%:*}\" cannot be used with \"cluster\""
	done
}

# ---- with agents and etcd ----

@test "containers on every pair of 3 nodes ping each other" {
	agent_required
	etcd_start_all
	node_up 1 2 3
	local i
	for i in 1 2 3; do
		ctr_add "$i" "c$i$T"
		CIPS[c$i$T]=$CIP
		in_block "$i" "$CIP" || fail "node $i's container got $CIP, outside its block $(state_get "$i" block)"
	done
	ping_all "c1$T" "c2$T" "c3$T"
}
