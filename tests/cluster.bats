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

@test "cluster mode: ADD takes its address from the node's block, gateway on the bridge, VTEP from the state, FDB untouched; CHECK, STATUS, GC, DEL" {
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
	# GC: c2 is not a valid attachment any more: its port and reservation go, c1's stay
	ls "$CL/n1/ipam/$CL_NET/10.200.64.3"
	ctr_verb GC 1 "" "\"cni.dev/valid-attachments\":[{\"containerID\":\"c1$T\",\"ifname\":\"eth0\"}]"
	assert_success
	[[ ! -e $CL/n1/ipam/$CL_NET/10.200.64.3 && -e $CL/n1/ipam/$CL_NET/10.200.64.2 ]]
	assert_equal "$(ip -n "$(node 1)" -o link show master vxbr100 type veth | wc -l)" 1
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

@test "cluster mode: peers, group, vni, port, local and underlayDevice in the config are refused, naming the field; mtu at most the VTEP's" {
	node_add 1
	state_write 1 64 1420
	# a smaller container MTU is the container's: the VTEP keeps the state's
	ctr_add 1 c1$T '"mtu":1400'
	assert_equal "$(ip -n "$(node 1)" -j link show vxlan100 | jq '.[0].mtu')" 1420
	assert_equal "$(ip -n "c1$T" -j link show eth0 | jq '.[0].mtu')" 1400
	mkns "c2$T"
	mkns "c3$T"
	ctr_verb ADD 1 c3$T '"mtu":1421'
	expect_error 7 '"mtu": 1421 is larger than the cluster VTEP.s MTU 1420'
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

# two_nodes: etcd, nodes 1 and 2 with an agent each, a container on each (addresses in CIPS)
two_nodes() {
	agent_required
	etcd_start_all
	node_up 1 2
	ctr_add 1 "c1$T"
	CIPS[c1$T]=$CIP
	ctr_add 2 "c2$T"
	CIPS[c2$T]=$CIP
}

@test "a node that joins is reachable from all others within 2 s" {
	two_nodes
	node_add 3
	local t0 el
	# timed: the agent's start to node 3 (its gateway, which the agent sets up) answering the
	# containers of nodes 1 and 2; a container ADD on node 3 (the runtime's time) is not part of it
	t0=$EPOCHREALTIME
	agent_start 3
	wait_for 5 reach_gw "c1$T" 3 && wait_for 5 reach_gw "c2$T" 3 ||
		fail "node 3 unreachable 5 s after its agent started: $(cat "$CL/n3/agent.log")"
	el=$(since "$t0")
	echo "# node 3 reachable from nodes 1 and 2 $el s after its agent started" >&3
	le "$el" 2 || fail "node 3 took $el s to be reachable (over 2 s x ${TIMING_SLACK:-1})"
	agent_ready 3
	ctr_add 3 "c3$T"; CIPS[c3$T]=$CIP
	wait_for 3 reach "c1$T" "${CIPS[c3$T]}"
	ping_all "c1$T" "c2$T" "c3$T"
}

@test "a killed node disappears from every FDB within leaseTTL + 1 s" {
	agent_required
	etcd_start_all
	node_up 1 2 3
	local mac t0 el
	mac=$(vtep_mac 3)
	wait_for 3 fdb_has 1 10.200.250.3 "$mac" || fail "node 1 never had node 3 in its FDB: $(fdb 1)"
	wait_for 3 fdb_has 2 10.200.250.3 "$mac" || fail "node 2 never had node 3 in its FDB: $(fdb 2)"
	agent_kill 3
	node_unplug 3
	t0=$EPOCHREALTIME
	wait_for $((CL_TTL + 3)) fdb_lacks 1 10.200.250.3 && wait_for $((CL_TTL + 3)) fdb_lacks 2 10.200.250.3 ||
		fail "node 3 still in the FDBs $((CL_TTL + 3)) s after it died: $(fdb 1; fdb 2)"
	el=$(since "$t0")
	echo "# node 3 gone from nodes 1 and 2's FDBs $el s after its death (leaseTTL $CL_TTL s)" >&3
	le "$el" $((CL_TTL + 1)) || fail "took $el s, over leaseTTL + 1 = $((CL_TTL + 1)) s (x ${TIMING_SLACK:-1})"
	fdb_has 1 10.200.250.2 && fdb_has 2 10.200.250.1
}

@test "an agent restart changes nothing: same block, same lease, peers' FDB entries never removed, pings go on" {
	two_nodes
	ping_all "c1$T" "c2$T"
	local block lease
	block=$(state_get 1 block)
	lease=$(node_lease 1)
	[[ $lease =~ ^[0-9]+$ && $lease != 0 ]] || fail "node 1's key has no lease: $lease"
	wait_for 3 fdb_has 2 10.200.250.1
	fdb_sampler 2 10.200.250.1 "$CL/samples"
	pinger "c2$T" "${CIPS[c1$T]}" 40 "$CL/ping"
	sleep 0.5
	agent_restart 1
	wait "$PINGER_PID" || true
	kill "$SAMPLER_PID"; wait "$SAMPLER_PID" || true
	agent_ready 1
	kill -0 "${AGENT_PID[1]}" || fail "the restarted agent died: $(cat "$CL/n1/agent.log")"
	local n0 n
	n=$(wc -l <"$CL/samples")
	n0=$(grep -c '^0' "$CL/samples" || true)
	echo "# $n FDB samples at node 2 during the restart, $n0 without node 1; $(ping_lost "$CL/ping") of 40 pings lost" >&3
	# the pings span 4 s: at least one sample every 0.4 s (about 40 on an idle machine; fewer when
	# the suite shares the CPU)
	((n >= 10)) || fail "only $n samples"
	assert_equal "$n0" 0
	assert_equal "$(state_get 1 block)" "$block"
	assert_equal "$(node_lease 1)" "$lease"
	(($(ping_lost "$CL/ping") <= 2)) || fail "$(cat "$CL/ping")"
	ping_all "c1$T" "c2$T"
}

@test "one etcd member killed: nothing changes, a new node still joins, pings go on" {
	two_nodes
	ping_all "c1$T" "c2$T"
	pinger "c1$T" "${CIPS[c2$T]}" 30 "$CL/ping"
	etcd_kill 1
	node_up 3
	ctr_add 3 "c3$T"; CIPS[c3$T]=$CIP
	in_block 3 "$CIP"
	wait "$PINGER_PID" || true
	assert_equal "$(ping_lost "$CL/ping")" 0
	wait_for 3 reach "c1$T" "${CIPS[c3$T]}"
	ping_all "c1$T" "c2$T" "c3$T"
}

@test "all etcd members killed: existing containers keep pinging, a new container still gets an address from its block" {
	two_nodes
	ping_all "c1$T" "c2$T"
	etcd_kill_all
	# longer than a lease and than the agent's periodic reconcile (10 s): nothing is removed while
	# etcd is unreachable; the pings go on meanwhile
	pinger "c1$T" "${CIPS[c2$T]}" 110 "$CL/ping"
	wait "$PINGER_PID" || true
	assert_equal "$(ping_lost "$CL/ping")" 0
	fdb_has 1 10.200.250.2 || fail "node 1 dropped node 2 with etcd down: $(fdb 1)"
	fdb_has 2 10.200.250.1 || fail "node 2 dropped node 1 with etcd down: $(fdb 2)"
	ping_all "c1$T" "c2$T"
	ctr_add 1 "c3$T"; CIPS[c3$T]=$CIP
	in_block 1 "$CIP" || fail "$CIP is not in node 1's block $(state_get 1 block)"
	ping_all "c1$T" "c2$T" "c3$T"
}

@test "a simulated reboot (agent killed, VTEP deleted, agent restarted): peers learn the new VTEP MAC within 2 s" {
	two_nodes
	local old new t0 el
	old=$(vtep_mac 2)
	wait_for 3 fdb_has 1 10.200.250.2 "$old" || fail "node 1 lacks node 2's MAC $old: $(fdb 1)"
	ping_all "c1$T" "c2$T"
	agent_kill 2
	ip -n "$(node 2)" link del "vxlan$CL_VNI"
	t0=$EPOCHREALTIME
	agent_start 2
	wait_for 5 ip -n "$(node 2)" link show "vxlan$CL_VNI" || fail "the agent did not recreate the VTEP: $(cat "$CL/n2/agent.log")"
	new=$(vtep_mac 2)
	[[ $new != "$old" ]] || fail "the new VTEP has the old MAC $old"
	wait_for 5 fdb_has 1 10.200.250.2 "$new" || fail "node 1 never learnt $new: $(fdb 1)"
	el=$(since "$t0")
	echo "# node 1's FDB has node 2's new VTEP MAC $el s after the agent restarted" >&3
	le "$el" 2 || fail "took $el s, over 2 s (x ${TIMING_SLACK:-1})"
	# the old MAC's static entry goes (a reboot a day must not pile entries up at every peer)
	wait_for 3 bash -c "! bridge -n $(node 1) fdb show dev vxlan$CL_VNI | grep -q '^$old dst 10.200.250.2 .*permanent'" ||
		fail "node 1 still holds node 2's old MAC $old: $(fdb 1)"
	wait_for 3 reach "c1$T" "${CIPS[c2$T]}"
	ping_all "c1$T" "c2$T"
}

# storm_add I C: ADD of container C on node I, straight to $CL/storm/C.json (for parallel runs).
storm_add() {
	ip netns exec "$(node "$1")" env CNI_COMMAND=ADD CNI_CONTAINERID="$2" CNI_IFNAME=eth0 \
		CNI_NETNS="/var/run/netns/$2" CNI_PATH="$PLUGIN_DIR" "$PLUGIN_DIR/vxlan" <<<"$(clconf "$1")" >"$CL/storm/$2.json" 2>&1
}

@test "a storm of concurrent ADDs on all nodes never hands out one address twice, all inside each node's block" {
	agent_required
	etcd_start_all
	node_up 1 2 3
	ctr_add 1 "c0$T"
	in_block 1 "$CIP"
	mkdir -p "$CL/storm"
	local i k pids=() c
	for i in 1 2 3; do for k in $(seq 15); do mkns "s$i-$k$T"; done; done
	for i in 1 2 3; do for k in $(seq 15); do
		storm_add "$i" "s$i-$k$T" &
		pids+=($!)
	done; done
	local bad=0
	for k in "${pids[@]}"; do wait "$k" || bad=$((bad + 1)); done
	((bad == 0)) || fail "$bad ADDs failed: $(grep -l code "$CL"/storm/*.json | head -3 | xargs cat)"
	for i in 1 2 3; do for k in $(seq 15); do
		c=$(jq -r '.ips[0].address' "$CL/storm/s$i-$k$T.json" | cut -d/ -f1)
		in_block "$i" "$c" || fail "s$i-$k on node $i got $c outside $(state_get "$i" block)"
		echo "$c"
	done; done >"$CL/storm/all"
	assert_equal "$(wc -l <"$CL/storm/all")" 45
	run bash -c "sort '$CL/storm/all' | uniq -d"
	assert_output ''
	ping_ok "s1-1$T" "$(sed -n 45p "$CL/storm/all")"
}

@test "a bad agent config is refused with a message naming the field" {
	agent_required
	etcd_start_all
	node_add 1
	node_add 2
	local good f
	good=$(agent_conf 1)
	run timeout 20 ip netns exec "$(node 1)" "$AGENT" -c "$good" --once
	assert_success
	[[ -s $(state_dir 1)/$CL_NET.json ]]
	good=$(agent_conf 2)
	for f in '.leaseTTL=1:leaseTTL' '.networks[0].blockSize=16:blockSize' '.networks[0].subnet="10.200.64.0/33":subnet' \
		'.networks[0].vni=0:vni' '.etcdEndpoints=[]:etcdEndpoints' '.networks[0].port="x":port'; do
		jq "${f%:*}" "$good" >"$CL/bad.json"
		run timeout 20 ip netns exec "$(node 2)" "$AGENT" -c "$CL/bad.json" --once
		assert_failure
		[[ $output == *"${f##*:}"* ]] || fail "config $f: the message does not name ${f##*:}: $output"
	done
	# a network whose config differs from the one in etcd (written by node 1): refused, naming the field
	jq '.networks[0].vni=101' "$good" >"$CL/bad.json"
	run timeout 20 ip netns exec "$(node 2)" "$AGENT" -c "$CL/bad.json" --once
	assert_failure
	assert_output --partial vni
	[[ ! -e $(state_dir 2)/$CL_NET.json ]]
}

@test "vxlan cluster-mode ADD on a node without state (no agent) fails with code 11" {
	agent_required
	etcd_start_all
	node_up 1
	node_add 2
	ctr_add 1 "c1$T"
	in_block 1 "$CIP"
	ctr_verb ADD 2 "c2$T"
	expect_error 11 "cluster network \"$CL_NET\" has no state.*cni-c-agent"
}
