#!/usr/bin/env bash
# make bench-cluster (part of make bench): the cluster overlay at scale, on one machine. A 3-member
# etcd in a network namespace, SIM_NODES (default 100) agents each in a namespace of its own with a
# veth to one underlay bridge (10.200.240.0/20; overlay 10.200.0.0/17 in /24 blocks). Prints JSON
# lines (also into bench/cluster.jsonl):
#   join_converged_s   the last agent's start → every other agent has it in its FDB
#   self_converged_s   the last agent's start → it has programmed every peer
#   cold_start_s       N-1 agents started at once → the last of them joined
#   etcd_keys          keys under the prefix
#   writes_per_node_hour  etcd revision delta over SIM_WINDOW s (steady state), per node, per hour
#   agent_cpu_s_per_hour  utime+stime per agent per hour (mean, max), agent_rss_kb (VmHWM mean, max)
#   leave_converged_s  an agent killed (SIGKILL) → every peer has dropped it (bound: leaseTTL + 1)
# With 99 agents joining at once each etcd request takes 0.25-0.4 s on a 2-CPU machine that runs
# etcd and every agent: the cold start is bound by the CPUs (etcd's data on tmpfs,
# SIM_ETCD_DIR=/dev/shm, changes little).
# Needs root, etcd (Debian's etcd-server) and $(BUILD)/cni-c-agent.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
N=${SIM_NODES:-100}
TTL=${SIM_TTL:-10}
WINDOW=${SIM_WINDOW:-60}
AG=$(realpath "$BUILD/cni-c-agent")
OUT=${SIM_OUT:-bench/cluster.jsonl}
E=agse # etcd members and the underlay bridge
work=$(mktemp -d /var/tmp/cni-sim.XXXXXX)
# etcd's data (SIM_ETCD_DIR=/dev/shm: on tmpfs, no fsync cost: the agents' own share shows)
edir=$(mktemp -d "${SIM_ETCD_DIR:-/var/tmp}/cni-sim-etcd.XXXXXX")
declare -a apid
epids=()

cleanup() {
	set +e
	for p in "${apid[@]}" "${epids[@]}"; do kill -9 "$p" 2>/dev/null; done
	wait 2>/dev/null
	for i in $(seq 1 "$N"); do ip netns del "agsn$i" 2>/dev/null; done
	ip netns del "$E" 2>/dev/null
	rm -rf "$work" "$edir"
}
trap cleanup EXIT INT TERM

command -v etcd >/dev/null || { echo "cluster-sim: no etcd (apt-get install etcd-server)" >&2; exit 1; }
[[ -x $AG ]] || { echo "cluster-sim: no $AG (make all)" >&2; exit 1; }
mkdir -p "$(dirname "$OUT")"
: >"$OUT"
emit() { echo "$1" | tee -a "$OUT"; }
now() { date +%s.%N; }
ulip() { echo "10.200.$((241 + ($1 - 1) / 250)).$((($1 - 1) % 250 + 1))"; }

ip netns add $E
ip -n $E link set lo up
ip -n $E link add agsbr type bridge
ip -n $E link set agsbr up
cluster=""
for m in 1 2 3; do
	ip -n $E addr add 10.200.240.$m/20 dev agsbr
	cluster+="${cluster:+,}e$m=http://10.200.240.$m:2380"
done
for m in 1 2 3; do
	ip netns exec $E etcd --name e$m --data-dir "$edir/e$m" --listen-client-urls http://10.200.240.$m:2379 \
		--advertise-client-urls http://10.200.240.$m:2379 --listen-peer-urls http://10.200.240.$m:2380 \
		--initial-advertise-peer-urls http://10.200.240.$m:2380 --initial-cluster "$cluster" \
		--initial-cluster-state new --log-level error >"$work/etcd$m.log" 2>&1 &
	epids+=($!)
done
EPS=http://10.200.240.1:2379,http://10.200.240.2:2379,http://10.200.240.3:2379
ectl() { ip netns exec $E etcdctl --endpoints "$EPS" "$@"; }

for i in $(seq 1 "$N"); do
	ip netns add "agsn$i"
	ip -n "agsn$i" link set lo up
	ip link add eth0 netns "agsn$i" type veth peer name "agsp$i" netns $E
	ip -n $E link set "agsp$i" master agsbr up
	ip -n "agsn$i" addr add "$(ulip "$i")/20" dev eth0
	ip -n "agsn$i" link set eth0 up
	mkdir -p "$work/n$i"
	printf '{"etcdEndpoints":["http://10.200.240.1:2379","http://10.200.240.2:2379","http://10.200.240.3:2379"],"nodeName":"sim%s","leaseTTL":%s,"stateDir":"%s/run","persistDir":"%s/lib","networks":[{"name":"sim","subnet":"10.200.0.0/17","blockSize":24,"vni":100,"underlayDevice":"eth0"}]}\n' \
		"$i" "$TTL" "$work/n$i" "$work/n$i" >"$work/n$i/agent.json"
done
for _ in $(seq 100); do ectl endpoint health >/dev/null 2>&1 && break; sleep 0.2; done
ectl endpoint health >/dev/null 2>&1

start() { # start I: agent I in the background, -v log in n$I/log
	ip netns exec "agsn$1" "$AG" -v -c "$work/n$1/agent.json" >"$work/n$1/log" 2>&1 &
	apid[$1]=$!
}
# the time of the first log line of file $1 matching $2 (the agent's own timestamp)
tmatch() { grep -m1 -E -- "$2" "$1" | sed 's/^cni-c-agent \([0-9.]*\):.*/\1/'; }

t0=$(now)
for i in $(seq 1 $((N - 1))); do start "$i"; done
for _ in $(seq 600); do
	j=$( (grep -l "joined:" "$work"/n*/log 2>/dev/null || true) | wc -l)
	((j >= N - 1)) && break
	sleep 0.2
done
last=$(for i in $(seq 1 $((N - 1))); do tmatch "$work/n$i/log" 'joined:'; done | sort -n | tail -1)
emit "$(printf '{"metric":"cold_start_s","nodes":%d,"value":%.3f}' $((N - 1)) "$(echo "$last - $t0" | bc)")"
sleep 3

# the last node joins: how long until every other agent floods to it
ipN=$(ulip "$N")
tN=$(now)
start "$N"
want="fdb add 00:00:00:00:00:00 dst ${ipN//./\\.} "
for _ in $(seq 300); do
	c=$( (grep -lE -- "$want" "$work"/n*/log 2>/dev/null || true) | wc -l)
	((c >= N - 1)) && break
	sleep 0.1
done
((c >= N - 1)) || { echo "cluster-sim: only $c of $((N - 1)) agents programmed node $N" >&2; exit 1; }
tmax=$(for i in $(seq 1 $((N - 1))); do tmatch "$work/n$i/log" "$want"; done | sort -n | tail -1)
emit "$(printf '{"metric":"join_converged_s","nodes":%d,"value":%.3f}' "$N" "$(echo "$tmax - $tN" | bc)")"
for _ in $(seq 100); do
	k=$(grep -c 'fdb add 00:00:00:00:00:00' "$work/n$N/log" || true)
	((k >= N - 1)) && break
	sleep 0.1
done
tself=$(grep -F 'fdb add 00:00:00:00:00:00' "$work/n$N/log" | tail -1 | sed 's/^cni-c-agent \([0-9.]*\):.*/\1/')
emit "$(printf '{"metric":"self_converged_s","nodes":%d,"peers":%d,"value":%.3f}' "$N" "$k" "$(echo "$tself - $tN" | bc)")"
fdb1=$(bridge -n agsn1 fdb show dev vxlan100 | grep -c '^00:00:00:00:00:00 dst')
emit "$(printf '{"metric":"fdb_zero_entries_node1","value":%d,"expected":%d}' "$fdb1" $((N - 1)))"
keys=$(ectl get --prefix /cni-c/v1/ --keys-only | grep -c . || true)
emit "$(printf '{"metric":"etcd_keys","nodes":%d,"value":%d}' "$N" "$keys")"

# steady state over WINDOW seconds: etcd writes, agent CPU
rev() { ectl endpoint status -w json | tr ',' '\n' | sed -n 's/.*"revision":\([0-9]*\).*/\1/p' | sort -n | tail -1; }
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
declare -a c0
r0=$(rev)
for i in $(seq 1 "$N"); do c0[i]=$(cpu "${apid[$i]}"); done
sleep "$WINDOW"
r1=$(rev)
hz=$(getconf CLK_TCK)
stats=$(for i in $(seq 1 "$N"); do echo "$(($(cpu "${apid[$i]}") - c0[i]))"; done |
	awk -v hz="$hz" -v w="$WINDOW" '{s += $1; if ($1 > m) m = $1} END {printf "%.3f %.3f", s / NR / hz * 3600 / w, m / hz * 3600 / w}')
emit "$(printf '{"metric":"writes_per_node_hour","nodes":%d,"window_s":%d,"revisions":%d,"value":%.2f,"note":"lastSeen refresh: 1 per node per min(graceSeconds/10,3600) s"}' "$N" "$WINDOW" \
	$((r1 - r0)) "$(echo "($r1 - $r0) * 3600 / $WINDOW / $N" | bc -l)")"
emit "$(printf '{"metric":"agent_cpu_s_per_hour","mean":%s,"max":%s}' "${stats% *}" "${stats#* }")"
rss=$(for i in $(seq 1 "$N"); do awk '/VmHWM/ {print $2}' "/proc/${apid[$i]}/status"; done |
	awk '{s += $1; if ($1 > m) m = $1} END {printf "%d %d", s / NR, m}')
emit "$(printf '{"metric":"agent_rss_kb","mean":%s,"max":%s}' "${rss% *}" "${rss#* }")"

# an agent dies: how long until every peer has dropped it
ip1=$(ulip 1)
{ kill -9 "${apid[1]}" && wait "${apid[1]}"; } 2>/dev/null || true
tk=$(now)
gone="fdb del 00:00:00:00:00:00 dst ${ip1//./\\.}\$"
for _ in $(seq $((TTL * 10 + 100))); do
	c=$( (grep -lE -- "$gone" "$work"/n*/log 2>/dev/null || true) | wc -l)
	((c >= N - 1)) && break
	sleep 0.1
done
tmax=$(for i in $(seq 2 "$N"); do tmatch "$work/n$i/log" "$gone"; done | sort -n | tail -1)
emit "$(printf '{"metric":"leave_converged_s","ttl":%d,"peers":%d,"value":%.3f}' "$TTL" "$c" "$(echo "$tmax - $tk" | bc)")"

# the same figures as a table (bench/cluster.md), printed beside the plugins' table
md=${OUT%.jsonl}.md
jq -rs --arg when "$(date +%F)" --arg n "$N" --arg ttl "$TTL" '
	map({(.metric): .}) | add as $m |
	"Cluster overlay, \($n) nodes (one agent each) on a 3-member etcd, one machine, leaseTTL \($ttl) s, \($when)\n",
	"| measure | value |", "|---|---|",
	"| a node joins: in every peer'"'"'s FDB after its agent starts | \($m.join_converged_s.value) s |",
	"| a node joins: it has programmed its \($m.self_converged_s.peers) peers | \($m.self_converged_s.value) s |",
	"| \($m.cold_start_s.nodes) agents started at once: all joined | \($m.cold_start_s.value) s |",
	"| a node dies (SIGKILL): gone from all \($m.leave_converged_s.peers) peers | \($m.leave_converged_s.value) s |",
	"| keys in etcd | \($m.etcd_keys.value) |",
	"| etcd writes per node per hour (measured over \($m.writes_per_node_hour.window_s) s; lastSeen once an hour by design) | \($m.writes_per_node_hour.value) |",
	"| agent CPU per hour, mean / max | \($m.agent_cpu_s_per_hour.mean) / \($m.agent_cpu_s_per_hour.max) s |",
	"| agent peak RSS (VmHWM), mean / max | \($m.agent_rss_kb.mean) / \($m.agent_rss_kb.max) kB |"' "$OUT" >"$md"
cat "$md"
