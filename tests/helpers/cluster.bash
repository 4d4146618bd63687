# shellcheck shell=bash disable=SC2154,SC2034
# (status, output: set by bats' run; CIP, ADD_OUT, FAB, CL, ETCD_EPS: read by the tests)
# The cluster overlay's fixture (docs/cluster.md): a 3-member etcd cluster in a "fabric" namespace
# with a bridge, node namespaces <T>n1..nN on that bridge (underlay 10.200.250.I/24), one
# cni-c-agent per node, containers added through the vxlan plugin's cluster mode. Everything is
# named after the test's tag and removed by cluster_teardown, also after a failure: the agents and
# etcd members are killed by the PIDs this file started.
# Needs helpers/common and helpers/net loaded, and T set.

CL_TTL=${CL_TTL:-3}
CL_VNI=100
CL_NET=ov
CL_SUBNET=10.200.64.0/18
AGENT=${AGENT:-$PLUGIN_DIR/cni-c-agent}
declare -gA ETCD_PID=() AGENT_PID=()

# cluster_setup: the fabric namespace and its bridge; etcd members get 10.200.250.20I.
cluster_setup() {
	FAB=${T}f
	CL=$BATS_TEST_TMPDIR/cl
	mkdir -p "$CL"
	# etcd's data on tmpfs: its fsyncs on a disk the other suites keep busy took joins to 6 s
	ED=$(mktemp -d /dev/shm/cni-c-etcd-$T.XXXXXX)
	mkns "$FAB"
	ip -n "$FAB" link add fb type bridge
	ip -n "$FAB" link set fb up
	local i
	for i in 1 2 3; do ip -n "$FAB" addr add "10.200.250.20$i/24" dev fb; done
	ETCD_EPS='"http://10.200.250.201:2379","http://10.200.250.202:2379","http://10.200.250.203:2379"'
}

cluster_teardown() {
	local p
	for p in "${AGENT_PID[@]}" "${ETCD_PID[@]}"; do kill -KILL "$p" 2>/dev/null; done
	for p in "${AGENT_PID[@]}" "${ETCD_PID[@]}"; do wait "$p" 2>/dev/null || true; done
	AGENT_PID=() ETCD_PID=()
	[[ -z ${ED:-} ]] || rm -rf "$ED"
	net_teardown
}

# ---- etcd ----

# etcd_start I: member m<I> (1..3) of the test's cluster, in the background.
etcd_start() {
	local i=$1 a=10.200.250.20$1 init=
	local j
	for j in 1 2 3; do init+="${init:+,}m$j=http://10.200.250.20$j:2380"; done
	local state=new
	[[ -d $ED/etcd$i/member ]] && state=existing
	ip netns exec "$FAB" etcd --name "m$i" --data-dir "$ED/etcd$i" \
		--listen-client-urls "http://$a:2379" --advertise-client-urls "http://$a:2379" \
		--listen-peer-urls "http://$a:2380" --initial-advertise-peer-urls "http://$a:2380" \
		--initial-cluster "$init" --initial-cluster-state "$state" --initial-cluster-token "$T" \
		--heartbeat-interval 50 --election-timeout 500 --log-level error \
		>>"$CL/etcd$i.log" 2>&1 &
	ETCD_PID[$i]=$!
}

# etcd_kill I: SIGKILL member I.
etcd_kill() {
	local p=${ETCD_PID[$1]:-}
	[[ -n $p ]] || return 0
	kill -KILL "$p" 2>/dev/null
	wait "$p" 2>/dev/null || true
	unset "ETCD_PID[$1]"
}

etcd_start_all() { local i; for i in 1 2 3; do etcd_start "$i"; done; etcd_wait; }
etcd_kill_all() { local i; for i in 1 2 3; do etcd_kill "$i"; done; }

# etcdctl ARGS...: against the test's cluster, from the fabric.
etcdctl_() {
	ETCDCTL_API=3 ip netns exec "$FAB" etcdctl --dial-timeout=1s --command-timeout=2s \
		--endpoints=http://10.200.250.201:2379,http://10.200.250.202:2379,http://10.200.250.203:2379 "$@"
}

# etcd_wait: until a write through the cluster succeeds (10 s at most).
etcd_wait() {
	wait_for 10 etcdctl_ put "/cni-c-test/$T" up || { cat "$CL"/etcd*.log >&2; return 1; }
}

# ---- waiting and timing ----

# wait_for SECONDS CMD...: polls CMD every 50 ms until it succeeds; 1 if it never does.
wait_for() {
	local end
	end=$(bc <<<"${EPOCHREALTIME} + $1")
	shift
	until "$@" >/dev/null 2>&1; do
		(($(bc <<<"${EPOCHREALTIME} > $end"))) && return 1
		sleep 0.05
	done
}

# since T0: seconds elapsed since the EPOCHREALTIME value T0, with 2 decimals.
since() { bc <<<"scale=2; (${EPOCHREALTIME} - $1) / 1"; }

# le A B: A <= B (decimals).
# le T LIMIT: T <= LIMIT x TIMING_SLACK (1; the test command gives the ASan lane 2: its binaries
# run several times slower, and the bounds are the release build's promises)
le() { (($(bc <<<"$1 <= $2 * ${TIMING_SLACK:-1}"))); }

# ---- nodes and agents ----

node() { echo "${T}n$1"; }
state_dir() { echo "$CL/n$1/state"; }
persist_dir() { echo "$CL/n$1/persist"; }

# node_add I: namespace <T>n<I> with ul0 = 10.200.250.I/24 on the fabric bridge (as port p<I>).
node_add() {
	local n
	n=$(node "$1")
	mkns "$n"
	ip link add ul0 netns "$n" type veth peer name "p$1" netns "$FAB"
	ip -n "$FAB" link set "p$1" master fb up
	ip -n "$n" addr add "10.200.250.$1/24" dev ul0
	ip -n "$n" link set ul0 up
	mkdir -p "$(state_dir "$1")" "$(persist_dir "$1")" "$CL/n$1/ipam"
}

# node_unplug I: the node's underlay link removed: it vanishes from the fabric.
node_unplug() { ip -n "$FAB" link del "p$1"; }

# agent_conf I [EXTRA_NET_MEMBERS] [EXTRA_TOP_MEMBERS]: the agent's config file for node I; its path.
agent_conf() {
	local f=$CL/n$1/agent.json
	printf '{"etcdEndpoints":[%s],"nodeName":"n%s","prefix":"/cni-c/%s","leaseTTL":%s,"stateDir":"%s","persistDir":"%s"%s,"networks":[{"name":"%s","subnet":"%s","blockSize":24,"vni":%s,"port":4789,"underlayDevice":"ul0","local":"10.200.250.%s","graceSeconds":86400%s}]}\n' \
		"$ETCD_EPS" "$1" "$T" "$CL_TTL" "$(state_dir "$1")" "$(persist_dir "$1")" "${3:+,$3}" "$CL_NET" "$CL_SUBNET" "$CL_VNI" "$1" "${2:+,$2}" >"$f"
	echo "$f"
}

# agent_start I: cni-c-agent in node I (its config written unless AGENT_CONF is set), in the background.
agent_start() {
	local f=${AGENT_CONF:-}
	[[ -n $f ]] || f=$(agent_conf "$1")
	ip netns exec "$(node "$1")" "$AGENT" -c "$f" -v >>"$CL/n$1/agent.log" 2>&1 &
	AGENT_PID[$1]=$!
}

# agent_kill I [SIGNAL]: stop node I's agent (SIGKILL by default) and reap it.
agent_kill() {
	local p=${AGENT_PID[$1]:-}
	[[ -n $p ]] || return 0
	kill "-${2:-KILL}" "$p" 2>/dev/null
	wait "$p" 2>/dev/null || true
	unset "AGENT_PID[$1]"
}

agent_restart() { agent_kill "$1" TERM; agent_start "$1"; }

# agent_ready I: node I's state file is written (10 s at most), and its node key is in etcd.
agent_ready() {
	wait_for 10 test -s "$(state_dir "$1")/$CL_NET.json" || {
		echo "agent of node $1 wrote no state; its log:" >&2
		cat "$CL/n$1/agent.log" >&2
		return 1
	}
}

# node_up I...: node I added, its agent started and ready.
node_up() {
	local i
	for i in "$@"; do node_add "$i"; agent_start "$i"; done
	for i in "$@"; do agent_ready "$i" || return 1; done
}

# state_get I FIELD: a field of node I's state file.
state_get() { jq -r ".$2" "$(state_dir "$1")/$CL_NET.json"; }

# vtep_mac I: the MAC of node I's VTEP.
vtep_mac() { ip -n "$(node "$1")" -j link show "vxlan$CL_VNI" | jq -r '.[0].address'; }

# fdb I: node I's VTEP's FDB (NTF_SELF entries: "MAC dst ADDR").
fdb() { bridge -n "$(node "$1")" fdb show dev "vxlan$CL_VNI" 2>/dev/null | grep ' dst '; }

# fdb_has I DST [MAC]: node I floods to DST (the all-zero entry), and has MAC at DST as a
# permanent entry (the agent's, not one the VTEP learnt from traffic) if given.
fdb_has() {
	local f
	f=$(fdb "$1")
	grep -q "^00:00:00:00:00:00 dst $2 " <<<"$f" || return 1
	[[ -z ${3:-} ]] || grep -q "^$3 dst $2 .*permanent" <<<"$f"
}

# fdb_lacks I DST: no entry of node I's FDB points at DST.
fdb_lacks() { ! fdb "$1" | grep -q " dst $2 "; }

# ---- containers ----

# clconf I [EXTRA]: the vxlan cluster-mode config on node I.
clconf() {
	printf '{"cniVersion":"1.1.0","name":"%s","type":"vxlan","cluster":"%s","clusterDir":"%s","persistDir":"%s","ipam":{"dataDir":"%s"}%s}' \
		"$CL_NET" "$CL_NET" "$(state_dir "$1")" "$(persist_dir "$1")" "$CL/n$1/ipam" "${2:+,$2}"
}

# ctr_add I C [EXTRA]: container namespace C added on node I; its address (no prefix) in $CIP.
ctr_add() {
	[[ -e /var/run/netns/$2 ]] || mkns "$2"
	HOSTNS=$(node "$1") hcni ADD vxlan "$(clconf "$1" "${3:-}")" "$2"
	[[ $status == 0 ]] || { echo "ADD $2 on node $1: $output" >&2; return 1; }
	CIP=$(jqo '.ips[0].address' | cut -d/ -f1)
	ADD_OUT=$output
}

# ctr_verb VERB I C [EXTRA]: another verb for container C on node I (result in $status/$output).
ctr_verb() { HOSTNS=$(node "$2") hcni "$1" vxlan "$(clconf "$2" "${4:-}")" "$3"; }

# state_write I [BLOCK_THIRD_OCTET] [MTU]: node I's state file by hand (the plugin side without an agent).
state_write() {
	local b=${2:-$((63 + $1))}
	printf '{"network":"%s","subnet":"%s","block":"10.200.%s.0/24","gateway":"10.200.%s.1","vni":%s,"port":4789,"underlayDevice":"ul0","local":"10.200.250.%s","mtu":%s}\n' \
		"$CL_NET" "$CL_SUBNET" "$b" "$b" "$CL_VNI" "$1" "${3:-1450}" >"$(state_dir "$1")/$CL_NET.json"
}

# ---- traffic and sampling ----

# reach C ADDR: one quick ping (0.3 s) from container C.
reach() { ip netns exec "$1" ping -n -c 1 -W 0.3 "$2" >/dev/null 2>&1; }

# reach_gw C I: container C reaches node I's gateway (from node I's state file, once written)
reach_gw() {
	local g
	g=$(state_get "$2" gateway 2>/dev/null) && [[ -n $g && $g != null ]] && reach "$1" "$g"
}

# pinger C ADDR COUNT FILE: COUNT pings, 0.1 s apart, in the background; PINGER_PID.
pinger() {
	ip netns exec "$1" ping -n -i 0.1 -W 1 -c "$3" "$2" >"$4" 2>&1 &
	PINGER_PID=$!
}

# ping_lost FILE: how many pings of a finished pinger went unanswered.
ping_lost() {
	local l
	l=$(grep 'packets transmitted' "$1") || { echo 9999; return; }
	echo $(($(awk '{print $1}' <<<"$l") - $(awk '{print $4}' <<<"$l")))
}

# fdb_sampler I DST FILE: every 20 ms, one line to FILE: 1 when node I's FDB points at DST, else 0;
# in the background (SAMPLER_PID) until killed.
fdb_sampler() {
	local ns
	ns=$(node "$1")
	(
		while :; do
			if bridge -n "$ns" fdb show dev "vxlan$CL_VNI" 2>/dev/null | grep -q " dst $2 "; then echo 1; else echo 0; fi
			sleep 0.02
		done
	) >"$3" 2>/dev/null &
	SAMPLER_PID=$!
}

# node_lease I: the lease ID of node I's key in etcd.
# (read as text: a lease ID is a 64-bit integer, which jq would round to a double)
node_lease() { etcdctl_ get -w json "/cni-c/$T/$CL_NET/nodes/n$1" | grep -o '"lease":[0-9]*' | cut -d: -f2; }
