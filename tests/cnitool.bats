#!/usr/bin/env bats
# cnitool, the runtime in miniature: conflists from NETCONFPATH, chains of our plugins and the
# reference ones, the result cache in libcni's layout, CHECK/DEL from it, GC, STATUS, rollback of
# a failed ADD, and side by side with the Go cnitool's runtime config over Debian's libcni.
# Each test has its own "host" namespace (the tool runs in it); containers are namespaces.

bats_require_minimum_version 1.5.0

# The Go cnitool (cnitool/cmd/root.go's setupRuntimeConfig, libcni's Add/Check/DelNetworkList),
# built once against Debian's libcni (golang-github-appc-cni-dev) for the side-by-side test.
setup_file() {
	export GOTOOL=$BATS_FILE_TMPDIR/gocnitool
	local src=$BATS_FILE_TMPDIR/gosrc
	command -v go >/dev/null && [ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ] || return 0
	mkdir -p "$src"
	cat >"$src/main.go" <<'GO'
// gocnitool add|check|del NET NETNS: the Go cnitool's runtime config, over libcni.
package main

import (
	"context"
	"crypto/sha512"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/containernetworking/cni/libcni"
)

func fail(err error) {
	fmt.Fprintf(os.Stderr, "Error: %s\n", err)
	os.Exit(1)
}

func main() {
	cmd, netName, netNS := os.Args[1], os.Args[2], os.Args[3]
	netdir := os.Getenv("NETCONFPATH")
	if netdir == "" {
		netdir = "/etc/cni/net.d"
	}
	netconf, err := libcni.LoadConfList(netdir, netName)
	if err != nil {
		fail(err)
	}
	var capabilityArgs map[string]interface{}
	if v := os.Getenv("CAP_ARGS"); v != "" {
		if err := json.Unmarshal([]byte(v), &capabilityArgs); err != nil {
			fail(err)
		}
	}
	var cniArgs [][2]string
	if v := os.Getenv("CNI_ARGS"); v != "" {
		for _, pair := range strings.Split(v, ";") {
			kv := strings.Split(pair, "=")
			if len(kv) != 2 || kv[0] == "" || kv[1] == "" {
				fail(fmt.Errorf("invalid CNI_ARGS pair %q", pair))
			}
			cniArgs = append(cniArgs, [2]string{kv[0], kv[1]})
		}
	}
	ifName := os.Getenv("CNI_IFNAME")
	if ifName == "" {
		ifName = "eth0"
	}
	if netNS, err = filepath.Abs(netNS); err != nil {
		fail(err)
	}
	s := sha512.Sum512([]byte(netNS))
	rt := &libcni.RuntimeConf{ContainerID: fmt.Sprintf("cnitool-%x", s[:10]), NetNS: netNS, IfName: ifName,
		Args: cniArgs, CapabilityArgs: capabilityArgs}
	cninet := libcni.NewCNIConfigWithCacheDir(filepath.SplitList(os.Getenv("CNI_PATH")), os.Getenv("CNI_CACHE_DIR"), nil)
	ctx := context.Background()
	switch cmd {
	case "add":
		result, err := cninet.AddNetworkList(ctx, netconf, rt)
		if err != nil {
			fail(err)
		}
		_ = result.Print()
	case "check":
		err = cninet.CheckNetworkList(ctx, netconf, rt)
	case "del":
		err = cninet.DelNetworkList(ctx, netconf, rt)
	}
	if err != nil {
		fail(err)
	}
}
GO
	(cd "$src" && GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$BATS_FILE_TMPDIR/gocache go build -o "$GOTOOL" main.go) \
		>"$BATS_FILE_TMPDIR/gobuild.log" 2>&1 || true
}

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	HOSTNS=h$T
	NET=n$T
	BR=br$T
	NETDIR=$BATS_TEST_TMPDIR/net.d
	CACHE=$BATS_TEST_TMPDIR/cache
	DATA=$BATS_TEST_TMPDIR/ipam
	LOG=$BATS_TEST_TMPDIR/log
	SPY=$BATS_TEST_TMPDIR/spy
	FAKES=$BATS_TEST_TMPDIR/fakes
	mkdir -p "$NETDIR" "$LOG" "$SPY" "$FAKES"
	touch "$LOG/order"
	mkns "$HOSTNS"
}

teardown() {
	net_teardown
}

# ct ARGS...: our cnitool in the host namespace, as an administrator runs it (NETCONFPATH,
# CNI_PATH=$CT_PATH or the build, the cache under the test's dir). CNI_ARGS, CAP_ARGS and
# CNI_IFNAME pass through from the caller. stdout in $output, stderr in $stderr.
ct() {
	run --separate-stderr ip netns exec "$HOSTNS" env NETCONFPATH="$NETDIR" CNI_PATH="${CT_PATH:-$PLUGIN_DIR}" \
		CNI_CACHE_DIR="$CACHE" "$PLUGIN_DIR/cnitool" "$@"
	if [[ $status == 86 ]] || grep -q -e 'Sanitizer' -e 'runtime error:' <<<"$stderr"; then
		echo "sanitizer error in cnitool $*:" >&2
		echo "$stderr" >&2
		return 1
	fi
	[[ $status == 0 ]] || echo "# cnitool $* failed ($status): $stderr" >&2
}

# gt ARGS...: the Go cnitool, the same way.
gt() {
	run --separate-stderr ip netns exec "$HOSTNS" env NETCONFPATH="$NETDIR" CNI_PATH="${CT_PATH:-$PLUGIN_DIR}" \
		CNI_CACHE_DIR="$CACHE" "$GOTOOL" "$@"
}

# conflist NAME JSON: write $NETDIR/NAME.conflist
conflist() { printf '%s\n' "$2" >"$NETDIR/$1.conflist"; }

# brplug [extra members] [subnet]: our bridge with host-local, as a plugin of a list
brplug() {
	printf '{"type":"bridge","bridge":"%s","isGateway":true%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"%s"}]]}}' \
		"$BR" "${1:+,$1}" "$DATA" "${2:-10.200.240.0/24}"
}

# cid_of NETNS: the Go tool's container ID for an (absolute) netns path
cid_of() { printf 'cnitool-%s' "$(printf '%s' "$1" | sha512sum | cut -c1-20)"; }

# spy NAME [REAL]: plugin NAME in $SPY logs "VERB NAME" to $LOG/order, its stdin to $LOG/NAME-VERB
# and its CNI_* environment to $LOG/NAME-VERB.env, then runs REAL (default: ours of that name).
spy() {
	local real=${2:-$PLUGIN_DIR/$1}
	cat >"$SPY/$1" <<EOF
#!/bin/bash
cat >"$LOG/$1-\$CNI_COMMAND"
env | grep -E '^CNI_(COMMAND|CONTAINERID|NETNS|ARGS|IFNAME|PATH)=' | sort >"$LOG/$1-\$CNI_COMMAND.env"
echo "\$CNI_COMMAND $1" >>"$LOG/order"
exec "$real" <"$LOG/$1-\$CNI_COMMAND"
EOF
	chmod +x "$SPY/$1"
}

# verbs: the order log without the VERSION queries, one line
verbs() { grep -v '^VERSION' "$LOG/order" | paste -sd, -; }

# fake NAME: a plugin with a fixed result (dns set, so libcni of any version marshals it alike)
fake() {
	cat >"$FAKES/$1" <<'EOF'
#!/bin/bash
in=$(cat)
case $CNI_COMMAND in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.3.0","0.3.1","0.4.0","1.0.0","1.1.0"]}' ;;
ADD)
	v=$(jq -r .cniVersion <<<"$in")
	ver=
	[[ $v == 0.* ]] && ver='"version":"4",'
	printf '{"cniVersion":"%s","interfaces":[{"name":"eth0","mac":"02:00:00:b0:00:01","sandbox":"%s"}],"ips":[{%s"interface":0,"address":"10.200.240.5/24","gateway":"10.200.240.1"}],"routes":[{"dst":"0.0.0.0/0","gw":"10.200.240.1"}],"dns":{"nameservers":["10.200.240.1"],"search":["example.test"]}}' \
		"$v" "$CNI_NETNS" "$ver"
	;;
esac
EOF
	chmod +x "$FAKES/$1"
	spy "$1" "$FAKES/$1"
}

# failer NAME: a plugin whose ADD fails with a CNI error; DEL succeeds
failer() {
	cat >"$FAKES/$1" <<'EOF'
#!/bin/bash
cat >/dev/null
case $CNI_COMMAND in
VERSION) echo '{"cniVersion":"1.1.0","supportedVersions":["0.4.0","1.0.0","1.1.0"]}' ;;
ADD) echo '{"cniVersion":"1.0.0","code":999,"msg":"boom","details":"on purpose"}'; exit 1 ;;
esac
exit 0
EOF
	chmod +x "$FAKES/$1"
	spy "$1" "$FAKES/$1"
}

eth0_addr() { ip -n "$1" -4 -o addr show dev "${2:-eth0}" | awk '{print $4}'; }
ports() { in_host ip -o link show master "$BR" 2>/dev/null | wc -l; }
reservations() { find "$DATA/${1:-$NET}" -maxdepth 1 -name '10.*' 2>/dev/null | wc -l; }

@test "add, check, del: our bridge and loopback chained; two containers ping each other; DEL twice" {
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"loopback\"}]}"
	mkns c1$T
	mkns c2$T
	ip -n c1$T link set lo down # the loopback plugin brings it up
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$stderr" ""
	# the final result (loopback passes the bridge's on), printed as Go's Result.Print does
	assert_equal "$(jqo -r .cniVersion)" 1.1.0
	assert_equal "$(jqo -c .ips)" '[{"address":"10.200.240.2/24","gateway":"10.200.240.1","interface":2}]'
	assert_equal "$(jqo -r '.interfaces[2].sandbox')" "/var/run/netns/c1$T"
	assert_equal "$(head -2 <<<"$output")" $'{\n    "cniVersion": "1.1.0",'
	[[ ${output: -1} == "}" ]] # no newline after it, like the Go tool
	ip -n c1$T -o link show lo | grep -q '<LOOPBACK,UP'
	ct add "$NET" /var/run/netns/c2$T
	assert_success
	assert_equal "$(eth0_addr c2$T)" 10.200.240.3/24
	ping_ok c1$T 10.200.240.3
	ping_ok c2$T 10.200.240.2
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	assert_output ""
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	assert_output ""
	run ip -n c1$T link show eth0
	assert_failure
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	run ping_ok c2$T 10.200.240.2
	assert_failure
	ct del "$NET" /var/run/netns/c2$T
	assert_success
	assert_equal "$(ports)" 0
	assert_equal "$(reservations)" 0
	assert_equal "$(ls -A "$CACHE/results")" ""
}

@test "dual-stack; DEL after the container's netns is gone: prevResult from the cache, addresses released, cache entry removed" {
	spy bridge
	CT_PATH=$SPY:$PLUGIN_DIR
	local ipam
	ipam="{\"type\":\"host-local\",\"dataDir\":\"$DATA\",\"ranges\":[[{\"subnet\":\"10.200.245.0/24\"}],[{\"subnet\":\"fd00:200:f0::/64\"}]]}"
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[{\"type\":\"bridge\",\"bridge\":\"$BR\",\"isGateway\":true,\"ipam\":$ipam}]}"
	mkns c1$T
	mkns c2$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jqo -c '[.ips[].address]')" '["10.200.245.2/24","fd00:200:f0::2/64"]'
	ct add "$NET" /var/run/netns/c2$T
	assert_success
	ping_ok c1$T 10.200.245.3
	ping_ok c1$T fd00:200:f0::3
	ping_ok c2$T fd00:200:f0::2
	local f
	f=$CACHE/results/$NET-$(cid_of /var/run/netns/c1$T)-eth0
	[ -f "$f" ]
	assert_equal "$(find "$DATA/$NET" -maxdepth 1 \( -name '10.*' -o -name 'fd00*' \) | wc -l)" 4
	# the container goes away without a DEL (its veth with it)
	ip netns del c1$T
	NS_LIST=("${NS_LIST[@]/c1$T/}")
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$stderr" ""
	# the plugin was told the same netns path and got the cached result
	grep -qx "CNI_NETNS=/var/run/netns/c1$T" "$LOG/bridge-DEL.env"
	assert_equal "$(jq -c '[.prevResult.ips[].address]' "$LOG/bridge-DEL")" '["10.200.245.2/24","fd00:200:f0::2/64"]'
	[ ! -e "$f" ]
	assert_equal "$(find "$DATA/$NET" -maxdepth 1 \( -name '10.*' -o -name 'fd00*' \) | wc -l)" 2
	[ ! -e "$DATA/$NET/10.200.245.2" ]
	[ ! -e "$DATA/$NET/fd00:200:f0::2" ]
	assert_equal "$(ports)" 1
	# again: nothing cached, nothing there, still success
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	ping_ok c2$T 10.200.245.1
	ct del "$NET" /var/run/netns/c2$T
	assert_success
	assert_equal "$(ports)" 0
	assert_equal "$(find "$DATA/$NET" -maxdepth 1 \( -name '10.*' -o -name 'fd00*' \) | wc -l)" 0
	assert_equal "$(ls -A "$CACHE/results")" ""
}

@test "the cache: libcni's path, modes and member order; config holds the conflist's bytes; written whole" {
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug '"capabilities":{"mac":true}')]}"
	mkns c1$T
	CAP_ARGS='{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"mac":"02:00:00:b0:00:02"}' \
		CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAME=web' ct add "$NET" /var/run/netns/c1$T
	assert_success
	local cid f
	cid=$(cid_of /var/run/netns/c1$T)
	f=$CACHE/results/$NET-$cid-eth0
	[ -f "$f" ]
	assert_equal "$(stat -c %a "$f") $(stat -c %a "$CACHE/results")" "600 700"
	assert_equal "$(ls -A "$CACHE/results")" "$NET-$cid-eth0" # no temp file left
	assert_equal "$(jq -c keys_unsorted "$f")" \
		'["kind","containerId","config","ifName","networkName","netns","cniArgs","capabilityArgs","result"]'
	assert_equal "$(jq -r '[.kind, .containerId, .ifName, .networkName, .netns] | join(" ")' "$f")" \
		"cniCacheV1 $cid eth0 $NET /var/run/netns/c1$T"
	jq -r .config "$f" | base64 -d | cmp - "$NETDIR/$NET.conflist"
	assert_equal "$(jq -c .cniArgs "$f")" '[["IgnoreUnknown","1"],["K8S_POD_NAME","web"]]'
	# capabilityArgs and result are Go maps: keys sorted at every level
	assert_equal "$(jq -c .capabilityArgs "$f")" \
		'{"mac":"02:00:00:b0:00:02","portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]}'
	assert_equal "$(jq -c .result "$f")" "$(jq -cS .result "$f")"
	assert_equal "$(jq -cS .result "$f")" "$(jq -cS . <<<"$output")"
	# compact, no newline at the end: exactly what json.Marshal wrote
	cmp <(jq -jc . "$f") "$f"
	# DEL removes it
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	[ ! -e "$f" ]
}

@test "container ID: cnitool- and the first 10 bytes of sha512 of the absolute netns path, as the Go tool; -i and CNI_IFNAME" {
	spy bridge
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug)]}"
	mkns c1$T
	mkns c2$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	grep -qx "CNI_CONTAINERID=$(cid_of /var/run/netns/c1$T)" "$LOG/bridge-ADD.env"
	grep -qx "CNI_NETNS=/var/run/netns/c1$T" "$LOG/bridge-ADD.env"
	[ -f "$CACHE/results/$NET-$(cid_of /var/run/netns/c1$T)-eth0" ]
	# a relative, unclean path is made absolute and clean first (filepath.Abs)
	cd /var/run
	ct add "$NET" "netns/../netns//./c2$T"
	assert_success
	grep -qx "CNI_CONTAINERID=$(cid_of /var/run/netns/c2$T)" "$LOG/bridge-ADD.env"
	assert_equal "$(jqo -r '.interfaces[2].sandbox')" "/var/run/netns/c2$T"
	# the interface: -i wins over CNI_IFNAME, which wins over eth0
	CNI_IFNAME=net7 ct -i net1 add "$NET" /var/run/netns/c2$T
	assert_success
	ip -n c2$T link show net1 >/dev/null
	CNI_IFNAME=net7 ct add "$NET" /var/run/netns/c2$T
	assert_success
	ip -n c2$T link show net7 >/dev/null
	[ -f "$CACHE/results/$NET-$(cid_of /var/run/netns/c2$T)-net7" ]
	CNI_IFNAME=net7 ct del "$NET" /var/run/netns/c2$T
	assert_success
	ct --ifname=net1 del "$NET" /var/run/netns/c2$T
	assert_success
	run ip -n c2$T link show net1
	assert_failure
}

@test "CHECK passes the cached result as prevResult: a tampered container, then a tampered cache, fail with the plugin's error" {
	spy bridge
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug)]}"
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	local f
	f=$CACHE/results/$NET-$(cid_of /var/run/netns/c1$T)-eth0
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jq -cS .prevResult "$LOG/bridge-CHECK")" "$(jq -cS .result "$f")"
	ip -n c1$T addr flush dev eth0
	ct check "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" "Error: address 10.200.240.2/24 is missing from eth0 in the container"
	ip -n c1$T addr add 10.200.240.2/24 dev eth0
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	# the plugin sees what the cache says, not what ADD printed
	jq -c '.result.ips[0].address = "10.200.240.99/24"' "$f" >"$f.new" && mv "$f.new" "$f"
	ct check "$NET" /var/run/netns/c1$T
	assert_failure 1
	[[ $stderr == "Error: "*"10.200.240.99"*"not reserved"* ]]
	assert_equal "$(jq -r '.prevResult.ips[0].address' "$LOG/bridge-CHECK")" 10.200.240.99/24
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(reservations)" 0
}

@test "DEL runs the chain in reverse: our bridge, then the reference tuning plugin (CNI_PATH lists both dirs)" {
	require "$REF_DIR/tuning"
	spy bridge
	spy tuning "$REF_DIR/tuning"
	CT_PATH=$SPY:$PLUGIN_DIR:$REF_DIR
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"tuning\",\"mtu\":1400,\"sysctl\":{\"net.ipv4.conf.eth0.accept_local\":\"1\"},\"dataDir\":\"$BATS_TEST_TMPDIR/tuning\"}]}"
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	# tuning got the bridge's result as prevResult and applied itself in the container
	assert_equal "$(jq -r '.prevResult.interfaces[2].name' "$LOG/tuning-ADD")" eth0
	ip -n c1$T link show eth0 | grep -q 'mtu 1400'
	assert_equal "$(ip netns exec c1$T cat /proc/sys/net/ipv4/conf/eth0/accept_local)" 1
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	# every plugin's VERSION first (run concurrently, so in any order)
	assert_equal "$(head -2 "$LOG/order" | sort | paste -sd, -)" "VERSION bridge,VERSION tuning"
	assert_equal "$(verbs)" "ADD bridge,ADD tuning,CHECK bridge,CHECK tuning,DEL tuning,DEL bridge"
	assert_equal "$(ports)" 0
}

@test "a plugin not supporting the list's version stops the ADD before any plugin runs" {
	require "$REF_DIR/tuning"
	spy bridge
	spy tuning "$REF_DIR/tuning"
	CT_PATH=$SPY:$PLUGIN_DIR:$REF_DIR
	# the reference 1.1.1 plugins speak up to 1.0.0
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"tuning\"}]}"
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" 'Error: plugin tuning does not support config version "1.1.0"'
	assert_equal "$(verbs)" ""
	run ip -n c1$T link show eth0
	assert_failure
}

@test "the reference firewall plugin chained after our bridge: ADD, CHECK, DEL" {
	require "$REF_DIR/firewall" iptables
	CT_PATH=$PLUGIN_DIR:$REF_DIR
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"firewall\",\"backend\":\"iptables\"}]}"
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	in_host iptables -S CNI-FORWARD | grep -q -- '-s 10.200.240.2/32 -j ACCEPT'
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	run in_host iptables -S CNI-FORWARD
	refute_output --partial 10.200.240.2
}

@test "CAP_ARGS become runtimeConfig only for the capabilities a plugin declares true (mac, ips for host-local via bridge)" {
	spy bridge
	spy loopback
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug '"capabilities":{"mac":true,"ips":true,"bandwidth":false}'),{\"type\":\"loopback\",\"capabilities\":{\"mac\":false,\"portMappings\":true}}]}"
	mkns c1$T
	mkns c2$T
	CAP_ARGS='{"mac":"02:00:00:b0:00:07","ips":["10.200.240.77/24"],"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}],"bandwidth":{"ingressRate":1}}' \
		ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jq -c .runtimeConfig "$LOG/bridge-ADD")" '{"ips":["10.200.240.77/24"],"mac":"02:00:00:b0:00:07"}'
	assert_equal "$(jq -c .runtimeConfig "$LOG/loopback-ADD")" '{"portMappings":[{"containerPort":80,"hostPort":8080,"protocol":"tcp"}]}'
	assert_equal "$(ip -n c1$T -o link show eth0 | grep -o 'link/ether [^ ]*')" "link/ether 02:00:00:b0:00:07"
	assert_equal "$(eth0_addr c1$T)" 10.200.240.77/24
	# name and cniVersion are the list's; prevResult is the chain's so far
	assert_equal "$(jq -r '.name + " " + .cniVersion' "$LOG/loopback-ADD")" "$NET 1.1.0"
	assert_equal "$(jq -r '.prevResult.ips[0].address' "$LOG/loopback-ADD")" 10.200.240.77/24
	# DEL gets the same runtimeConfig (from CAP_ARGS, as libcni)
	CAP_ARGS='{"mac":"02:00:00:b0:00:07","ips":["10.200.240.77/24"]}' ct del "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jq -c .runtimeConfig "$LOG/bridge-DEL")" '{"ips":["10.200.240.77/24"],"mac":"02:00:00:b0:00:07"}'
	# without CAP_ARGS nothing is injected
	ct add "$NET" /var/run/netns/c2$T
	assert_success
	assert_equal "$(jq -c 'has("runtimeConfig")' "$LOG/bridge-ADD")" false
	ct del "$NET" /var/run/netns/c2$T
	assert_success
}

@test "cniVersions: the highest version not above 1.1.0 wins, cniVersion taking part" {
	spy bridge
	CT_PATH=$SPY:$PLUGIN_DIR
	mkns c1$T
	conflist a "{\"cniVersions\":[\"0.4.0\",\"1.0.0\",\"9.0.0\"],\"name\":\"${NET}a\",\"plugins\":[$(brplug)]}"
	ct add "${NET}a" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jqo -r .cniVersion) $(jq -r .cniVersion "$LOG/bridge-ADD")" "1.0.0 1.0.0"
	ct del "${NET}a" /var/run/netns/c1$T
	assert_success
	conflist b "{\"cniVersion\":\"0.3.1\",\"cniVersions\":[\"0.4.0\"],\"name\":\"${NET}b\",\"plugins\":[$(brplug)]}"
	ct add "${NET}b" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jqo -r .cniVersion) $(jqo -r '.ips[0].version')" "0.4.0 4"
	ct check "${NET}b" /var/run/netns/c1$T
	assert_success
	ct del "${NET}b" /var/run/netns/c1$T
	assert_success
	conflist c "{\"cniVersion\":\"1.1.0\",\"cniVersions\":[\"0.4.0\",\"1.0.0\"],\"name\":\"${NET}c\",\"plugins\":[$(brplug)]}"
	ct add "${NET}c" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jq -r .cniVersion "$LOG/bridge-ADD")" 1.1.0
	ct del "${NET}c" /var/run/netns/c1$T
	assert_success
}

@test ".conf and .json: a single plugin config becomes a one-plugin list, cached as libcni up-converts it; a .conflist comes first" {
	mkns c1$T
	mkns c2$T
	local conf
	conf=$(brplug | jq -c --arg n "$NET" '{cniVersion: "1.0.0", name: $n} + .')
	printf '%s\n' "$conf" >"$NETDIR/10-$NET.conf"
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(eth0_addr c1$T)" 10.200.240.2/24
	# the cached config is ConfListFromConf's marshal: {"cniVersion","name","plugins":[conf]}, keys sorted
	cmp <(jq -jcS '{cniVersion, name, plugins: [.]}' "$NETDIR/10-$NET.conf") \
		<(jq -r .config "$CACHE/results/$NET-$(cid_of /var/run/netns/c1$T)-eth0" | base64 -d)
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	# .json too
	BR=bj$T brplug '' 10.200.241.0/24 | jq -c --arg n "${NET}j" '{cniVersion: "1.0.0", name: $n} + .' >"$NETDIR/20-j.json"
	ct add "${NET}j" /var/run/netns/c2$T
	assert_success
	assert_equal "$(eth0_addr c2$T)" 10.200.241.2/24
	ct del "${NET}j" /var/run/netns/c2$T
	assert_success
	# a .conflist of the same name is looked at first
	conflist zz "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(BR=bz$T brplug '' 10.200.242.0/24)]}"
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(eth0_addr c1$T)" 10.200.242.2/24
	ct del "$NET" /var/run/netns/c1$T
	assert_success
}

@test "plugins from <confdir>/<network>/*.conf unless loadOnlyInlinedPlugins" {
	spy loopback
	CT_PATH=$SPY:$PLUGIN_DIR
	mkns c1$T
	mkdir "$NETDIR/$NET"
	brplug >"$NETDIR/$NET/10-bridge.conf"
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\"}"
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(eth0_addr c1$T)" 10.200.240.2/24
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	# inline plugins first, then the directory's
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[{\"type\":\"loopback\"}]}"
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jqo -r '.ips[0].address')" 10.200.240.3/24
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	: >"$LOG/order"
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"loadOnlyInlinedPlugins\":true,\"plugins\":[{\"type\":\"loopback\"}]}"
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	run ip -n c1$T link show eth0
	assert_failure
	assert_equal "$(verbs)" "ADD loopback"
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"loadOnlyInlinedPlugins\":\"TRUE\"}"
	ct add "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" "Error: error parsing configuration list: \`loadOnlyInlinedPlugins\` is true, and no 'plugins' key"
}

@test "gc: every cached attachment of the network is deleted, then each plugin's GC runs (1.1.0); others' stay" {
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"loopback\"}]}"
	conflist "${NET}o" "{\"cniVersion\":\"1.1.0\",\"name\":\"${NET}o\",\"plugins\":[$(BR=bo$T brplug '' 10.200.243.0/24)]}"
	for c in c1 c2 c3 c4; do mkns $c$T; done
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	ct add "$NET" /var/run/netns/c2$T
	assert_success
	ct add "${NET}o" /var/run/netns/c3$T
	assert_success
	# an attachment made without cnitool: in host-local's store, not in the cache
	hcni ADD bridge "$(brplug | jq -c --arg n "$NET" '{cniVersion: "1.1.0", name: $n} + .')" c4$T eth0 outside
	assert_success
	assert_equal "$(reservations)" 3
	ct gc "$NET"
	assert_success
	assert_equal "$stderr" ""
	run ip -n c1$T link show eth0
	assert_failure
	run ip -n c2$T link show eth0
	assert_failure
	assert_equal "$(ls "$CACHE/results")" "${NET}o-$(cid_of /var/run/netns/c3$T)-eth0"
	# host-local's GC with no valid attachments released the outside reservation too
	assert_equal "$(reservations)" 0
	assert_equal "$(reservations "${NET}o")" 1
	ip -n c3$T link show eth0 >/dev/null
	# the Go tool's form (a netns argument, unused) works the same
	ct gc "${NET}o" /var/run/netns/c3$T
	assert_success
	assert_equal "$(ls -A "$CACHE/results")" ""
	assert_equal "$(reservations "${NET}o")" 0
	# disableGC: nothing at all
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"disableGC\":true,\"plugins\":[$(brplug),{\"type\":\"loopback\"}]}"
	ct gc "$NET"
	assert_success
	ip -n c1$T link show eth0 >/dev/null
	assert_equal "$(reservations)" 1
}

@test "gc with CNI_GC_KEEP_CACHED=1: the cached attachments are the valid ones; only the leaked reservation goes" {
	spy bridge
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug)]}"
	for c in c1 c2 c4; do mkns $c$T; done
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	ct -i net1 add "$NET" /var/run/netns/c2$T
	assert_success
	# a leak: an attachment host-local knows and the cache does not
	hcni ADD bridge "$(brplug | jq -c --arg n "$NET" '{cniVersion: "1.1.0", name: $n} + .')" c4$T eth0 outside
	assert_success
	assert_equal "$(reservations)" 3
	grep -rlq '^outside' "$DATA/$NET"
	CNI_GC_KEEP_CACHED=1 ct gc "$NET"
	assert_success
	assert_equal "$(verbs | tr , '\n' | grep -c '^DEL')" 0
	# both keys libcni sends, in the network's cache order
	assert_equal "$(jq -c '."cni.dev/valid-attachments"' "$LOG/bridge-GC")" \
		"$(jq -cn --arg a "$(cid_of /var/run/netns/c1$T)" --arg b "$(cid_of /var/run/netns/c2$T)" \
			'[{containerID: $a, ifname: "eth0"}, {containerID: $b, ifname: "net1"}] | sort_by(.containerID)')"
	assert_equal "$(jq -c '."cni.dev/attachments"' "$LOG/bridge-GC")" "$(jq -c '."cni.dev/valid-attachments"' "$LOG/bridge-GC")"
	assert_equal "$(reservations)" 2
	run grep -rlq '^outside' "$DATA/$NET"
	assert_failure
	ip -n c1$T link show eth0 >/dev/null
	ip -n c2$T link show net1 >/dev/null
	ping_ok c1$T "$(eth0_addr c2$T net1 | cut -d/ -f1)"
	assert_equal "$(ls "$CACHE/results" | wc -l)" 2
	# without it, the Go tool's gc: everything of the network goes
	ct gc "$NET"
	assert_success
	assert_equal "$(jq 'has("cni.dev/valid-attachments")' "$LOG/bridge-GC")" false
	assert_equal "$(reservations)" 0
	assert_equal "$(ls -A "$CACHE/results")" ""
	run ip -n c1$T link show eth0
	assert_failure
}

@test "status: each plugin's STATUS at 1.1.0, the plugin's error when one fails; nothing below 1.1.0" {
	spy bridge
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"loopback\"}]}"
	ct status "$NET"
	assert_success
	assert_output ""
	assert_equal "$(verbs)" "STATUS bridge"
	# GC and STATUS get an empty runtime config, as libcni's
	assert_equal "$(grep -c -e '^CNI_CONTAINERID=$' -e '^CNI_NETNS=$' -e '^CNI_IFNAME=$' -e '^CNI_ARGS=$' "$LOG/bridge-STATUS.env")" 4
	: >"$BATS_TEST_TMPDIR/notadir"
	DATA=$BATS_TEST_TMPDIR/notadir
	conflist "$NET" "{\"cniVersion\":\"1.1.0\",\"name\":\"$NET\",\"plugins\":[$(brplug)]}"
	ct status "$NET"
	assert_failure 1
	[[ $stderr == "Error: "*notadir* ]]
	: >"$LOG/order"
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug)]}"
	ct status "$NET"
	assert_success
	assert_equal "$(verbs)" ""
}

@test "a plugin failing in the middle of ADD: DEL for those that ran, in reverse, with the chain's result; nothing left" {
	spy bridge
	spy loopback
	failer failer
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug),{\"type\":\"failer\",\"name\":\"x\"},{\"type\":\"loopback\"}]}"
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_output ""
	assert_equal "$stderr" 'Error: plugin type="failer" name="x" failed (add): boom; on purpose'
	assert_equal "$(verbs)" "ADD bridge,ADD failer,DEL failer,DEL bridge"
	assert_equal "$(jq -r '.prevResult.ips[0].address' "$LOG/bridge-DEL")" 10.200.240.2/24
	run ip -n c1$T link show eth0
	assert_failure
	assert_equal "$(ports)" 0
	assert_equal "$(reservations)" 0
	[ ! -e "$CACHE/results/$NET-$(cid_of /var/run/netns/c1$T)-eth0" ]
}

@test "the reference bridge and host-local (/usr/lib/cni) driven by our cnitool" {
	require "$REF_DIR/bridge" "$REF_DIR/host-local"
	CT_PATH=$REF_DIR
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[$(brplug '' 10.200.244.0/24)]}"
	mkns c1$T
	mkns c2$T
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(jqo -c .ips)" '[{"address":"10.200.244.2/24","gateway":"10.200.244.1","interface":2}]'
	ct add "$NET" /var/run/netns/c2$T
	assert_success
	ping_ok c1$T 10.200.244.3
	ping_ok c2$T 10.200.244.2
	ct check "$NET" /var/run/netns/c2$T
	assert_success
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	ct del "$NET" /var/run/netns/c1$T
	assert_success
	ct del "$NET" /var/run/netns/c2$T
	assert_success
	assert_equal "$(ports)" 0
	assert_equal "$(reservations)" 0
}

@test "side by side with the Go cnitool over libcni: same plugin stdin and env, byte-identical cache and output; each reads the other's cache" {
	require go /usr/share/gocode/src/github.com/containernetworking/cni/libcni
	[ -x "$GOTOOL" ] || fail "the Go cnitool did not build against Debian's libcni: $(head -c 2000 "$BATS_FILE_TMPDIR/gobuild.log" 2>/dev/null)"
	fake fake
	fake fake2
	fake fake3
	CT_PATH=$SPY
	export CAP_ARGS='{"mac":"02:00:00:b0:00:09","other":{"b":1,"a":[1.5,2e-7,1e21]}}' CNI_ARGS='IgnoreUnknown=1;K8S_POD_NAME=p'
	local v tool verb f
	for v in 0.4.0 1.0.0; do
		conflist "$NET" "{\"cniVersion\":\"$v\",\"name\":\"$NET\",\"plugins\":[{\"type\":\"fake\",\"capabilities\":{\"mac\":true},\"z\":\"<&>\",\"a\":1500},{\"type\":\"fake2\",\"capabilities\":{\"other\":true}},{\"type\":\"fake3\",\"capabilities\":{\"nope\":true}}]}"
		f=$CACHE/results/$NET-$(cid_of /var/run/netns/c1$T)-eth0
		for tool in gt ct; do
			rm -rf "$CACHE" "$LOG"/*
			$tool add "$NET" /var/run/netns/c1$T
			assert_success
			printf '%s' "$output" >"$BATS_TEST_TMPDIR/$tool.out"
			cp "$f" "$BATS_TEST_TMPDIR/$tool.cache"
			$tool check "$NET" /var/run/netns/c1$T
			assert_success
			$tool del "$NET" /var/run/netns/c1$T
			assert_success
			[ ! -e "$f" ]
			mkdir -p "$BATS_TEST_TMPDIR/$tool.log"
			cp "$LOG"/fake* "$BATS_TEST_TMPDIR/$tool.log/"
		done
		# byte for byte, but for the netns member this libcni (1.1.2) predates (added with GC in 1.2)
		cmp "$BATS_TEST_TMPDIR/gt.cache" <(sed "s|,\"netns\":\"/var/run/netns/c1$T\"||" "$BATS_TEST_TMPDIR/ct.cache")
		grep -q ",\"ifName\":\"eth0\",\"networkName\":\"$NET\",\"netns\":\"/var/run/netns/c1$T\",\"cniArgs\":" "$BATS_TEST_TMPDIR/ct.cache"
		for verb in ADD CHECK DEL; do
			for p in fake fake2 fake3; do
				cmp "$BATS_TEST_TMPDIR/gt.log/$p-$verb.env" "$BATS_TEST_TMPDIR/ct.log/$p-$verb.env"
				if [[ $v == 0.4.0 ]]; then
					cmp "$BATS_TEST_TMPDIR/gt.log/$p-$verb" "$BATS_TEST_TMPDIR/ct.log/$p-$verb"
				else
					# this libcni (1.1.2) marshals a 1.x prevResult in struct order, later ones sorted
					assert_equal "$(jq -cS . "$BATS_TEST_TMPDIR/ct.log/$p-$verb")" "$(jq -cS . "$BATS_TEST_TMPDIR/gt.log/$p-$verb")"
				fi
			done
		done
		if [[ $v == 0.4.0 ]]; then
			cmp "$BATS_TEST_TMPDIR/gt.out" "$BATS_TEST_TMPDIR/ct.out"
		else
			assert_equal "$(jq -cS . "$BATS_TEST_TMPDIR/ct.out")" "$(jq -cS . "$BATS_TEST_TMPDIR/gt.out")"
		fi
		# each tool CHECKs and DELs from the other's cache
		rm -rf "$CACHE" "$LOG"/*
		gt add "$NET" /var/run/netns/c1$T
		assert_success
		ct check "$NET" /var/run/netns/c1$T
		assert_success
		assert_equal "$(jq -cS .prevResult "$LOG/fake2-CHECK")" "$(jq -cS .result "$f")"
		ct del "$NET" /var/run/netns/c1$T
		assert_success
		[ ! -e "$f" ]
		ct add "$NET" /var/run/netns/c1$T
		assert_success
		gt check "$NET" /var/run/netns/c1$T
		assert_success
		assert_equal "$(jq -cS .prevResult "$LOG/fake-CHECK")" "$(jq -cS .result "$f")"
		gt del "$NET" /var/run/netns/c1$T
		assert_success
		[ ! -e "$f" ]
	done
}

@test "errors: the Go tool's messages on stderr, exit status 1" {
	mkns c1$T
	ct add "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" "Error: no net configurations found in $NETDIR"
	conflist "$NET" "{\"cniVersion\":\"0.3.1\",\"name\":\"$NET\",\"plugins\":[{\"type\":\"nosuch\"}]}"
	ct add nope /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" "Error: no net configuration with name \"nope\" in $NETDIR"
	ct add "$NET" /var/run/netns/c1$T
	assert_failure 1
	[[ $stderr == "Error: failed to find plugin \"nosuch\""* ]]
	ct check "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" 'Error: configuration version "0.3.1" does not support the CHECK command'
	CNI_ARGS='A=b;c' ct del "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" 'Error: invalid CNI_ARGS pair "c"'
	ct add "$NET"
	assert_failure 1
	[[ $stderr == "Error: requires at least 2 arg(s), only received 1"* ]]
	ct frob "$NET"
	assert_failure 1
	[[ $stderr == 'Error: unknown command "frob" for "cnitool"'* ]]
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"plugins\":[{\"name\":\"x\"}]}"
	ct add "$NET" /var/run/netns/c1$T
	assert_failure 1
	assert_equal "$stderr" "Error: failed to parse plugin config 0: error parsing configuration: missing 'type'"
	ct
	assert_success
	assert_output --partial "Usage:"
	# disableCheck: CHECK runs nothing
	spy loopback
	CT_PATH=$SPY:$PLUGIN_DIR
	conflist "$NET" "{\"cniVersion\":\"1.0.0\",\"name\":\"$NET\",\"disableCheck\":true,\"plugins\":[{\"type\":\"loopback\"}]}"
	ct add "$NET" /var/run/netns/c1$T
	assert_success
	ct check "$NET" /var/run/netns/c1$T
	assert_success
	assert_equal "$(verbs)" "ADD loopback"
}

@test "the release cnitool is hardened as the plugins are: PIE, full RELRO, stack protector, FORTIFY, no executable stack" {
	local b=$BATS_TEST_DIRNAME/../build/cnitool
	[ -x "$b" ] || skip "no release build in build/ (the release lane of tests/run.sh builds it and runs this)"
	run readelf -h "$b"
	assert_output --partial 'Type:                              DYN'
	run readelf -lW "$b"
	assert_output --partial 'GNU_RELRO'
	assert_output --regexp 'GNU_STACK +0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ 0x[0-9a-f]+ RW '
	run readelf -dW "$b"
	assert_output --regexp 'BIND_NOW'
	run readelf -sW "$b"
	assert_output --partial '__stack_chk_fail'
	assert_output --regexp 'FUNC +GLOBAL +DEFAULT +[0-9]+ __(mem[a-z]*|[a-z]*printf|st[a-z]*cpy|read[a-z]*)_chk'
}
