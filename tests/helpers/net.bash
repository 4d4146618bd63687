# shellcheck shell=bash
# Network fixtures for plugin tests: every object lives in namespaces this test creates.
# A "host" namespace stands in for the node (the plugin runs inside it with ip netns exec),
# "containers" are namespaces too, so nothing touches the real host's links, tables or sysctls.

NS_LIST=()

# mkns NAME: create a namespace, remembered for teardown; lo up.
mkns() {
	ip netns add "$1" || return 1
	NS_LIST+=("$1")
	ip -n "$1" link set lo up
}

# net_teardown: delete every namespace this test made (their links and tables go with them).
net_teardown() {
	local ns
	for ns in "${NS_LIST[@]}"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
		ip netns del "$ns" 2>/dev/null
	done
	NS_LIST=()
}

# in_host CMD...: run in the test's host namespace ($HOSTNS).
in_host() { ip netns exec "$HOSTNS" "$@"; }

# hcni VERB PLUGIN CONFIG CONTAINER_NS [IFNAME] [CONTAINERID]: run a plugin inside the host
# namespace as a runtime would, for the container namespace CONTAINER_NS.
hcni() {
	local verb=$1 plugin=$2 conf=$3 cns=$4 ifname=${5:-eth0} cid=${6:-$4}
	local bin=$plugin
	[[ $bin == */* ]] || bin=$PLUGIN_DIR/$plugin
	local nspath=/var/run/netns/$cns
	[[ $cns == /* || -z $cns ]] && nspath=$cns
	run ip netns exec "$HOSTNS" env CNI_COMMAND="$verb" CNI_CONTAINERID="$cid" CNI_IFNAME="$ifname" \
		CNI_NETNS="$nspath" CNI_PATH="${CNI_PATH_OVERRIDE:-$PLUGIN_DIR}" "$bin" <<<"$conf"
	if [[ $status == 86 ]]; then
		echo "sanitizer error in $plugin $verb:" >&2
		echo "$output" >&2
		return 1
	fi
}

# bridge_vlan_filtering: does this kernel have bridge VLAN filtering? (probed in a scratch netns)
bridge_vlan_filtering() {
	local ns=vf$$$RANDOM ok=1
	ip netns add "$ns" || return 1
	ip -n "$ns" link add name vfbr type bridge vlan_filtering 1 2>/dev/null || ok=0
	ip netns del "$ns"
	[[ $ok == 1 ]]
}

# ping_ok NS ADDR: one ping succeeds (v4 or v6 chosen by the address).
ping_ok() { ip netns exec "$1" ping -n -c 1 -W 2 "$2" >/dev/null 2>&1; }

# capture NS FILE TCPDUMP_ARGS...: tcpdump in NS in the background (10 s at most), packets to FILE;
# returns once tcpdump is capturing (its "listening on" line), not after a fixed sleep.
# `wait "$CAPTURE_PID"` (or plain `wait`) then waits for it to end (-c N packets or the 10 s).
capture() {
	local ns=$1 out=$2 i
	shift 2
	: >"$out.err"
	ip netns exec "$ns" timeout "${CAPTURE_TIMEOUT:-10}" tcpdump -l -n "$@" >"$out" 2>"$out.err" &
	CAPTURE_PID=$!
	for ((i = 0; i < 200; i++)); do
		grep -q 'listening on' "$out.err" && return 0
		kill -0 "$CAPTURE_PID" 2>/dev/null || break
		sleep 0.05
	done
	echo "tcpdump did not start capturing: $(cat "$out.err")" >&2
	return 1
}

# listening NS PORT: wait (5 s at most) until a TCP socket listens on PORT in NS
listening() {
	local i
	for ((i = 0; i < 100; i++)); do
		ip netns exec "$1" ss -Hltn "sport = :$2" | grep -q . && return 0
		sleep 0.05
	done
	echo "nothing listens on port $2 in $1" >&2
	return 1
}
# httpd NS [DIR]: a web server on port 80 in NS (serving DIR, default $WWW), once it listens
httpd() { ip netns exec "$1" busybox httpd -p 80 -h "${2:-$WWW}" && listening "$1" 80; }
