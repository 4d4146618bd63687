#!/usr/bin/env bash
# The demo: install the plugins into a temporary plugin dir, attach two "containers" to a bridge
# with our cnitool (a conflist chaining bridge, portmap and loopback, the result cache as libcni keeps it),
# ping between them, then out through SNAT to a namespace playing the internet, and clean up.
# Everything happens inside network namespaces made here ("node", two containers, "internet"),
# so the machine's own links, firewall and sysctls are never touched.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
tag=demo$$
NODE=${tag}node C1=${tag}c1 C2=${tag}c2 INET=${tag}inet
work=$(mktemp -d /tmp/cni-demo.XXXXXX)
plugins=$work/opt/cni/bin

cleanup() {
	local ns pid
	for ns in "$C1" "$C2" "$INET" "$NODE"; do
		# the web server; the shell's kill: a fresh Debian has no kill command (procps)
		for pid in $(ip netns pids "$ns" 2>/dev/null); do kill "$pid" 2>/dev/null || true; done
		ip netns del "$ns" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "install the plugins into a temporary plugin dir"
make -s BUILD="$BUILD" install DESTDIR="$work" PREFIX=/opt/cni/bin
ls -l "$plugins"

step "a node, two containers and an 'internet' (network namespaces)"
for ns in "$NODE" "$C1" "$C2" "$INET"; do ip netns add "$ns"; done
# the containers' lo stays down: the loopback plugin of the chain brings it up
ip -n "$NODE" link set lo up && ip -n "$INET" link set lo up
# the node's uplink to the internet: node 10.200.254.1 <-> internet 10.200.254.2
ip link add up0 netns "$NODE" type veth peer name eth0 netns "$INET"
ip -n "$NODE" addr add 10.200.254.1/24 dev up0 && ip -n "$NODE" link set up0 up
ip -n "$INET" addr add 10.200.254.2/24 dev eth0 && ip -n "$INET" link set eth0 up
echo "node $NODE, containers $C1 $C2, internet $INET (10.200.254.2)"

# a conflist in a temporary NETCONFPATH: our bridge (which runs host-local), then loopback
netconf=$work/net.d
mkdir -p "$netconf"
cat >"$netconf/10-demo.conflist" <<JSON
{
  "cniVersion": "1.1.0",
  "name": "demo",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni-demo0",
      "isDefaultGateway": true,
      "ipMasq": true,
      "ipam": {
        "type": "host-local",
        "dataDir": "$work/ipam",
        "ranges": [[{"subnet": "10.200.253.0/24"}], [{"subnet": "fd00:200:fd::/64"}]]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } },
    { "type": "loopback" }
  ]
}
JSON
step "the network config: $netconf/10-demo.conflist"
cat "$netconf/10-demo.conflist"

# cnitool VERB CONTAINER [CAP_ARGS]: our cnitool, run on the node like a runtime; the result cache in $work
cnitool() {
	ip netns exec "$NODE" env NETCONFPATH="$netconf" CNI_PATH="$plugins" CNI_CACHE_DIR="$work/cache" \
		CAP_ARGS="${3:-}" "$plugins/cnitool" "$1" demo "/var/run/netns/$2"
}

step "cnitool add: $C1 and $C2 (bridge, portmap, loopback; $C2 publishes port 80 as the node's 8080)"
cnitool add "$C1" >/dev/null
cnitool add "$C2" '{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}' | tee "$work/c2.json"
echo
ip2=$(jq -r '.ips[0].address' "$work/c2.json" | cut -d/ -f1)
ip6=$(jq -r '.ips[1].address' "$work/c2.json" | cut -d/ -f1)

step "the result cache, as libcni keeps it ($work/cache/results)"
ls "$work/cache/results"
cached=("$work"/cache/results/demo-*-eth0)
jq -c '.config |= "<base64 of the conflist>"' "${cached[0]}"
echo "lo in $C1 (up by the loopback plugin): $(ip -n "$C1" -br link show lo)"

step "the node: bridge and its ports"
ip -n "$NODE" -br link show master cni-demo0
ip -n "$NODE" -br addr show dev cni-demo0

step "$C1 pings $C2 ($ip2, $ip6), over IPv4 and IPv6"
ip netns exec "$C1" ping -c 2 -W 2 "$ip2"
ip netns exec "$C1" ping -c 2 -W 2 "$ip6"

step "$C1 pings the internet; the internet sees the node's address (SNAT)"
ip netns exec "$INET" timeout 5 tcpdump -l -n -i eth0 -c 2 icmp 2>/dev/null &
sleep 1
ip netns exec "$C1" ping -c 2 -W 2 10.200.254.2
wait
ip netns exec "$NODE" nft list table inet cni_c_masq

if [ -x /bin/busybox ]; then
	step "the internet reaches $C2's web server through the node's port 8080 (portmap: DNAT)"
	mkdir -p "$work/www" && echo "hello from $C2" >"$work/www/index.html"
	ip netns exec "$C2" /bin/busybox httpd -p 80 -h "$work/www"
	sleep 0.3
	ip netns exec "$INET" timeout 5 bash -c 'exec 3<>/dev/tcp/10.200.254.1/8080 && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' | tail -1
	ip netns exec "$NODE" nft list table inet cni_c_portmap
fi

step "cnitool check (prevResult from the cache), then del both containers (del twice is fine)"
cnitool check "$C2" && echo "CHECK ok"
cnitool del "$C1"; cnitool del "$C2"; cnitool del "$C2"
echo "ports left on the bridge: $(ip -n "$NODE" -o link show master cni-demo0 | wc -l)"
echo "reservations left: $(ls "$work/ipam/demo" | grep -c -e '^10\.' -e '^fd00' || true)"
echo "cache entries left: $(ls -A "$work/cache/results" | wc -l)"

step "done: cleaning up the namespaces and the temp plugin dir"
