#!/usr/bin/env bash
# The demo: install the plugins into a temporary plugin dir, attach two "containers" to a bridge
# through them exactly as a runtime does (CNI_* env, config on stdin), ping between them, then
# out through SNAT to a namespace playing the internet, and clean everything up.
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
	for ns in "$C1" "$C2" "$INET" "$NODE"; do ip netns del "$ns" 2>/dev/null || true; done
	rm -rf "$work"
}
trap cleanup EXIT

step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "install the plugins into a temporary plugin dir"
make -s BUILD="$BUILD" install DESTDIR="$work" PREFIX=/opt/cni/bin
ls -l "$plugins"

step "a node, two containers and an 'internet' (network namespaces)"
for ns in "$NODE" "$C1" "$C2" "$INET"; do ip netns add "$ns"; ip -n "$ns" link set lo up; done
# the node's uplink to the internet: node 10.200.254.1 <-> internet 10.200.254.2
ip link add up0 netns "$NODE" type veth peer name eth0 netns "$INET"
ip -n "$NODE" addr add 10.200.254.1/24 dev up0 && ip -n "$NODE" link set up0 up
ip -n "$INET" addr add 10.200.254.2/24 dev eth0 && ip -n "$INET" link set eth0 up
echo "node $NODE, containers $C1 $C2, internet $INET (10.200.254.2)"

conf=$(cat <<JSON
{
  "cniVersion": "1.1.0",
  "name": "demo",
  "type": "bridge",
  "bridge": "cni-demo0",
  "isDefaultGateway": true,
  "ipMasq": true,
  "ipam": {
    "type": "host-local",
    "dataDir": "$work/ipam",
    "ranges": [[{"subnet": "10.200.253.0/24"}], [{"subnet": "fd00:200:fd::/64"}]]
  }
}
JSON
)
step "the network config"
echo "$conf"

cni() { # VERB CONTAINER
	ip netns exec "$NODE" env CNI_COMMAND="$1" CNI_CONTAINERID="$2" CNI_NETNS="/var/run/netns/$2" \
		CNI_IFNAME=eth0 CNI_PATH="$plugins" "$plugins/bridge" <<<"$conf"
}

step "ADD $C1 and $C2 through the bridge plugin (which runs host-local)"
cni ADD "$C1"
cni ADD "$C2" | tee "$work/c2.json"
ip2=$(jq -r '.ips[0].address' "$work/c2.json" | cut -d/ -f1)

step "the node: bridge and its ports"
ip -n "$NODE" -br link show master cni-demo0
ip -n "$NODE" -br addr show dev cni-demo0

step "$C1 pings $C2 ($ip2), over IPv4 and IPv6"
ip netns exec "$C1" ping -c 2 -W 2 "$ip2"
ip netns exec "$C1" ping -c 2 -W 2 fd00:200:fd::3

step "$C1 pings the internet; the internet sees the node's address (SNAT)"
ip netns exec "$INET" timeout 5 tcpdump -l -n -i eth0 -c 2 icmp 2>/dev/null &
sleep 1
ip netns exec "$C1" ping -c 2 -W 2 10.200.254.2
wait
ip netns exec "$NODE" nft list table inet cni_c_masq

step "CHECK, then DEL both containers (DEL twice is fine)"
ip netns exec "$NODE" env CNI_COMMAND=CHECK CNI_CONTAINERID="$C2" CNI_NETNS="/var/run/netns/$C2" CNI_IFNAME=eth0 \
	CNI_PATH="$plugins" "$plugins/bridge" <<<"$(jq -c --slurpfile p "$work/c2.json" '.prevResult=$p[0]' <<<"$conf")" &&
	echo "CHECK ok"
cni DEL "$C1"; cni DEL "$C2"; cni DEL "$C2"
echo "ports left on the bridge: $(ip -n "$NODE" -o link show master cni-demo0 | wc -l)"
echo "reservations left: $(ls "$work/ipam/demo" | grep -c -e '^10\.' -e '^fd00' || true)"

step "done: cleaning up the namespaces and the temp plugin dir"
