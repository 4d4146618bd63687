#!/usr/bin/env bash
# make bench: our plugins and Debian's reference plugins (/usr/lib/cni) on identical configs, in
# one run, interleaved per container. Prints a table, writes bench/results.json, bench/results.md
# and bench/chart.svg (gnuplot). Everything runs inside a "node" network namespace made here.
#   BENCH_N (default 200) containers per sequential run; BENCH_GROWTH="250 1000".
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/deps.sh bench
BUILD=${BUILD:-build}
N=${BENCH_N:-200}
GROWTH=${BENCH_GROWTH:-250 1000}
REF=/usr/lib/cni
OUT=bench
mkdir -p "$OUT"
# /var/tmp, not /tmp: on this machine file creation in /tmp costs 30x more (280 µs), a quirk
# of its disk that would swamp both implementations alike
work=$(mktemp -d /var/tmp/cni-bench.XXXXXX)
NODE=cnibench$$
B="$BUILD/bench/cnibench"
cleanup() {
	set +e
	for f in /run/netns/b-* /run/netns/g[0-9]*-* /run/netns/m[0-9]*-*; do
		[[ -e $f ]] || continue
		umount -l "$f" 2>/dev/null
		rm -f "$f"
	done
	ip netns del "$NODE" 2>/dev/null
	rm -rf "$work" "/run/cni-bench-$$"
}
trap cleanup EXIT
ip netns add "$NODE"
ip -n "$NODE" link set lo up
ip -n "$NODE" link add cnifloor0 type bridge
ip -n "$NODE" link set cnifloor0 up
# an underlay for vxlan (a veth whose far end is down: no traffic leaves the node)
ip -n "$NODE" link add ul0 type veth peer name ul0p
ip -n "$NODE" addr add 10.200.199.1/24 dev ul0
ip -n "$NODE" link set ul0 up
inode() { ip netns exec "$NODE" "$@"; }

conf() { # NAME TYPE BRIDGE SUBNET DATADIR [extra]
	printf '{"cniVersion":"1.0.0","name":"%s","type":"%s","bridge":"%s","isGateway":true%s,"ipam":{"type":"host-local","dataDir":"%s","ranges":[[{"subnet":"%s"}]]}}' \
		"$1" "$2" "$3" "${6:+,$6}" "$5" "$4" >"$work/$1.json"
	echo "$work/$1.json"
}
ours=$(realpath "$BUILD")
c_ours=$(conf ours bridge cnib0 10.200.128.0/18 "$work/ipam")
c_ref=$(conf ref bridge cnib1 10.200.0.0/18 "$work/ipam-ref")
c_vx=$(conf vx vxlan vxbr100 10.200.200.0/21 "$work/ipam-vx" '"vni":100,"underlayDevice":"ul0","peers":["10.200.199.2"],"keepVtep":true')
c_hl=$(conf hl host-local x 10.200.128.0/18 "$work/ipam-hl")
c_hlr=$(conf hlr host-local x 10.200.0.0/18 "$work/ipam-hlr")
c_fl=$(conf floor floor cnifloor0 10.200.0.0/16 "$work/x")
# the same two with dataDir on tmpfs (as the reference's docs suggest, against leaks at reboot):
# the difference is what the disk costs
mkdir -p /run/cni-bench-$$
c_ourst=$(conf ourst bridge cnib2 10.200.64.0/19 "/run/cni-bench-$$/ipam")
c_reft=$(conf reft bridge cnib3 10.200.96.0/19 "/run/cni-bench-$$/ipam-ref")
OURS="ours=$ours/bridge,$ours,$c_ours"
REFC="reference=$REF/bridge,$REF,$c_ref"
FLOOR="floor=$ours/bench/floor,$ours,$c_fl"
# the same floor linked as the plugins are (musl): what the floor's own start-up costs
FLOORM="floor-musl=$ours/bench/floor-musl,$ours,$c_fl"
res=$work/results.jsonl
: >"$res"

echo "== 1. bridge + host-local ADD/DEL, $N containers in sequence, interleaved (and the floor)" >&2
inode env BENCH_TAG=b "$B" seq "$N" "$OURS" "$REFC" "$FLOOR" "$FLOORM" "ours-tmpfs=$ours/bridge,$ours,$c_ourst" \
	"reference-tmpfs=$REF/bridge,$REF,$c_reft" | tee -a "$res" >&2
echo "== 2. vxlan ADD/DEL ($N), host-local alone ($N)" >&2
inode env BENCH_TAG=b "$B" seq "$N" "vxlan=$ours/vxlan,$ours,$c_vx" | tee -a "$res" >&2
inode env BENCH_TAG=b "$B" seq "$N" "host-local=$ours/host-local,$ours,$c_hl,nons" \
	"host-local-ref=$REF/host-local,$REF,$c_hlr,nons" | tee -a "$res" >&2
echo "== 2b. portmap ADD/DEL ($N), chained after a bridge (a fixed prevResult), one host port per container" >&2
# 0.4.0: the reference (Debian 1.1.1) parses no newer prevResult; it execs iptables for each rule
pm_prev='{"cniVersion":"0.4.0","interfaces":[{"name":"cnifloor0"},{"name":"veth0"},{"name":"eth0","sandbox":"/x"}],"ips":[{"version":"4","interface":2,"address":"10.200.198.2/24","gateway":"10.200.198.1"}]}'
inode ip addr add 10.200.198.1/24 dev cnifloor0
printf '{"cniVersion":"0.4.0","name":"pm","type":"portmap","runtimeConfig":{"portMappings":[{"hostPort":@PORT@,"containerPort":80,"protocol":"tcp"}]},"prevResult":%s}' \
	"$pm_prev" >"$work/pm.json"
inode env BENCH_TAG=b "$B" seq "$N" "portmap=$ours/portmap,$ours,$work/pm.json,nons" \
	"portmap-ref=$REF/portmap,$REF,$work/pm.json,nons" | tee -a "$res" >&2
echo "== 3. $N ADDs, 8 in parallel" >&2
inode env BENCH_TAG=b "$B" par "$N" 8 "$OURS" | tee -a "$res" >&2
inode env BENCH_TAG=b "$B" par "$N" 8 "$REFC" | tee -a "$res" >&2
echo "== 4. growth: ADD/DEL with containers already attached" >&2
for k in $GROWTH; do
	inode env BENCH_TAG=g$k "$B" pre "$k" "$OURS" "$REFC" >&2
	inode env BENCH_TAG=m$k "$B" seq 50 "$OURS" "$REFC" | sed "s/\"mode\":\"seq\"/\"mode\":\"growth$k\"/" | tee -a "$res" >&2
	inode env BENCH_TAG=g$k "$B" unpre "$k" "$OURS" "$REFC" >&2
done
echo "== 4b. host-local ADD/DEL with 0, 250 and 60,000 reservations in the store; a failing ADD on a full /16" >&2
# one template of reservations as the reference writes them (10.200.0.2 on), copied into each store
# (files only: these networks have no links)
tpl=$work/tpl
mkdir -p "$tpl"
(cd "$tpl" && for x in $(seq 0 255); do for y in $(seq 0 255); do
	[[ $x == 0 && $y -lt 2 || $x == 255 && $y == 255 ]] && continue
	printf 'f%s-%s\r\neth0' $x $y >"10.200.$x.$y"
done; done)
store() { # IMPL SIZE: a config whose store holds the first SIZE reservations of the template
	local d=$work/store-$1-$2
	mkdir -p "$d/st$1$2"
	find "$tpl" -type f -printf '%f\n' | sort -t. -k3,3n -k4,4n | head -n "$2" | (cd "$tpl" && xargs -r cp -t "$d/st$1$2")
	conf "st$1$2" host-local x 10.200.0.0/16 "$d"
}
for impl in ours ref; do
	p=$ours/host-local cp=$ours
	[[ $impl == ref ]] && p=$REF/host-local cp=$REF
	for size in 0 250 60000; do
		n=100
		[[ $size == 60000 ]] && n=10
		[[ $impl == ref && $size == 60000 ]] && n=5
		c=$(store $impl $size)
		env BENCH_TAG=s "$B" seq "$n" "store$size-$impl=$p,$cp,$c,nons" | tee -a "$res" >&2
	done
	# a full /16: every ADD fails (kubelet retries it): median of 3
	c=$(store $impl 65533)
	ts=()
	for i in 1 2 3; do
		t0=$(date +%s%N)
		! CNI_COMMAND=ADD CNI_CONTAINERID=full$i CNI_IFNAME=eth0 CNI_NETNS=/x CNI_PATH=$cp "$p" <"$c" >/dev/null
		ts+=($((($(date +%s%N) - t0) / 1000)))
	done
	med=$(printf '%s\n' "${ts[@]}" | sort -n | sed -n 2p)
	echo "{\"mode\":\"full\",\"name\":\"full-$impl\",\"fail_median_us\":$med}" | tee -a "$res" >&2
	rm -rf "$work"/store-$impl-*
done

echo "== 5. peak RSS of one ADD (/usr/bin/time -v), installed sizes" >&2
rss() { # NAME PLUGIN CNI_PATH CONF
	local ns=rss-$1-$$ kb
	ip netns add "$ns"
	kb=$(inode env CNI_COMMAND=ADD CNI_CONTAINERID=$ns CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$ns CNI_PATH=$3 \
		/usr/bin/time -v "$2" <"$4" 2>&1 >/dev/null | awk -F': ' '/Maximum resident/{print $2}')
	inode env CNI_COMMAND=DEL CNI_CONTAINERID=$ns CNI_IFNAME=eth0 CNI_NETNS=/run/netns/$ns CNI_PATH=$3 "$2" <"$4" >/dev/null
	ip netns del "$ns"
	echo "{\"mode\":\"rss\",\"name\":\"$1\",\"maxrss_kb\":$kb}" | tee -a "$res" >&2
}
rss ours "$ours/bridge" "$ours" "$c_ours"
rss reference "$REF/bridge" "$REF" "$c_ref"
rss floor "$ours/bench/floor" "$ours" "$c_fl"
rss floor-musl "$ours/bench/floor-musl" "$ours" "$c_fl"

plugins="host-local bridge vxlan vlan loopback portmap"
ours_size=$(for p in $plugins; do strip -o "$work/s-$p" "$BUILD/$p"; stat -c %s "$work/s-$p"; done | paste -sd+ | bc)
# the largest single stripped binary (target: at most 1 MB), cnitool included
read -r max_size max_name < <(for p in $plugins cnitool; do strip -o "$work/s-$p" "$BUILD/$p"; echo "$(stat -c %s "$work/s-$p") $p"; done | sort -n | tail -1)
ref_all=$(du -cb $REF/* | tail -1 | cut -f1)
ref_same=$(du -cb $REF/host-local $REF/bridge $REF/vlan $REF/loopback $REF/portmap | tail -1 | cut -f1)
echo "{\"mode\":\"size\",\"ours_bytes\":$ours_size,\"ours_plugins\":\"$plugins\",\"reference_same_bytes\":$ref_same,\"reference_all_bytes\":$ref_all,\"largest_bytes\":$max_size,\"largest\":\"$max_name\"}" | tee -a "$res" >&2

python_free_report() {
	jq -s '.' "$res" >"$OUT/results.json"
	local q='map(select(.mode=="seq")) | map({(.name): .}) | add'
	local S F R
	S=$(jq "$q" "$OUT/results.json")
	{
		echo "Machine: $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d), N=$N"
		echo
		echo "| measure | ours | reference | ratio (ref/ours) |"
		echo "|---|---|---|---|"
		jq -r --argjson s "$S" -n '
			def ms(x): (x/1000*100|round/100|tostring) + " ms";
			def row(l; a; b): "| \(l) | \(ms(a)) | \(ms(b)) | \((b/a*100|round/100)) |";
			row("bridge ADD median"; $s.ours.add_median_us; $s.reference.add_median_us),
			row("bridge ADD p99"; $s.ours.add_p99_us; $s.reference.add_p99_us),
			row("bridge DEL median"; $s.ours.del_median_us; $s.reference.del_median_us),
			row("bridge ADD median, dataDir on tmpfs"; $s["ours-tmpfs"].add_median_us; $s["reference-tmpfs"].add_median_us),
			row("bridge DEL p99"; $s.ours.del_p99_us; $s.reference.del_p99_us),
			row("host-local ADD median"; $s["host-local"].add_median_us; $s["host-local-ref"].add_median_us),
			row("host-local DEL median"; $s["host-local"].del_median_us; $s["host-local-ref"].del_median_us),
			row("portmap ADD median (one host port)"; $s.portmap.add_median_us; $s["portmap-ref"].add_median_us),
			row("portmap DEL median"; $s.portmap.del_median_us; $s["portmap-ref"].del_median_us),
			"| vxlan ADD / DEL median | \(ms($s.vxlan.add_median_us)) / \(ms($s.vxlan.del_median_us)) | (no such plugin) | |",
			"| floor ADD / DEL median | \(ms($s.floor.add_median_us)) / \(ms($s.floor.del_median_us)) | | |",
			"| ours / floor, ADD | \(($s.ours.add_median_us/$s.floor.add_median_us*100|round/100)) (dataDir on tmpfs: \(($s["ours-tmpfs"].add_median_us/$s.floor.add_median_us*100|round/100))) | | |",
			"| ours / floor, DEL | \(($s.ours.del_median_us/$s.floor.del_median_us*100|round/100)) (means: \(($s.ours.del_mean_us/$s.floor.del_mean_us*100|round/100)); a deletion ends on a 4 ms scheduler tick) | | |",
			"| floor linked with musl, as ours: ADD / DEL median | \(ms($s["floor-musl"].add_median_us)) / \(ms($s["floor-musl"].del_median_us)) | | |",
			"| ours / floor linked with musl, ADD / DEL | \(($s.ours.add_median_us/$s["floor-musl"].add_median_us*100|round/100)) / \(($s.ours.del_median_us/$s["floor-musl"].del_median_us*100|round/100)) | | |",
			empty'
		jq -r 'map(select(.mode=="rss")) | map({(.name): .maxrss_kb}) | add | "| peak RSS of one ADD (floor: \(.floor) KB; linked with musl: \(.["floor-musl"]) KB) | \(.ours) KB | \(.reference) KB | \((.reference/.ours*10|round/10)) |"' "$OUT/results.json"
		jq -r '.[] | select(.mode=="par") | "| \(.n) ADDs, \(.workers) parallel (\(.name)) | \(.wall_ms|round) ms, \(.adds_per_s|round)/s | duplicates: \(.duplicates), failures: \(.failures) | |"' "$OUT/results.json"
		jq -r '.[] | select(.mode|startswith("growth")) | "| \(.mode) \(.name): ADD / DEL median | \(.add_median_us/1000*100|round/100) / \(.del_median_us/1000*100|round/100) ms | | |"' "$OUT/results.json"
		jq -r 'map(select((.name // "")|startswith("store"))) | map({(.name): .}) | add as $s | ["0","250","60000"][] as $k |
			"| host-local ADD / DEL median, \($k) reservations in the store | \($s["store\($k)-ours"].add_median_us/1000*100|round/100) / \($s["store\($k)-ours"].del_median_us/1000*100|round/100) ms | \($s["store\($k)-ref"].add_median_us/1000*100|round/100) / \($s["store\($k)-ref"].del_median_us/1000*100|round/100) ms | \(($s["store\($k)-ref"].add_median_us/$s["store\($k)-ours"].add_median_us*10|round/10)) / \(($s["store\($k)-ref"].del_median_us/$s["store\($k)-ours"].del_median_us*10|round/10)) |"' "$OUT/results.json"
		jq -r 'map(select(.mode=="full")) | map({(.name): .fail_median_us}) | add | "| host-local failing ADD, /16 full (65,533 reservations) | \(.["full-ours"]/1000|round) ms | \(.["full-ref"]/1000|round) ms | \((.["full-ref"]/.["full-ours"]*10|round/10)) |"' "$OUT/results.json"
		jq -r '.[] | select(.mode=="size") | "| installed size (\(.ours_plugins)) | \(.ours_bytes/1024|round) KB | \(.reference_same_bytes/1024|round) KB (host-local, bridge, vlan, loopback, portmap); all 16: \(.reference_all_bytes/1048576|round) MB | |"' "$OUT/results.json"
		jq -r '.[] | select(.mode=="size" and .largest_bytes) | "| largest stripped binary (\(.largest)) | \(.largest_bytes/1000|round) kB (\(.largest_bytes) bytes) | | |"' "$OUT/results.json"
	} >"$OUT/results.md"
	cat "$OUT/results.md"
	# chart: ADD and DEL medians side by side
	jq -r --argjson s "$S" -n '"bridge-ADD \($s.ours.add_median_us/1000) \($s.reference.add_median_us/1000) \($s.floor.add_median_us/1000)",
		"bridge-DEL \($s.ours.del_median_us/1000) \($s.reference.del_median_us/1000) \($s.floor.del_median_us/1000)",
		"host-local-ADD \($s["host-local"].add_median_us/1000) \($s["host-local-ref"].add_median_us/1000) 0",
		"host-local-DEL \($s["host-local"].del_median_us/1000) \($s["host-local-ref"].del_median_us/1000) 0",
		"portmap-ADD \($s.portmap.add_median_us/1000) \($s["portmap-ref"].add_median_us/1000) 0",
		"portmap-DEL \($s.portmap.del_median_us/1000) \($s["portmap-ref"].del_median_us/1000) 0"' >"$work/chart.dat"
	gnuplot <<GP
set terminal svg size 800,420 font "sans,12"
set output "$OUT/chart.svg"
set title "CNI ADD/DEL median latency (ms), $(nproc) cores, $(uname -r)"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set ylabel "ms"
set key top left
set grid ytics
plot "$work/chart.dat" using 2:xtic(1) title "ours", "" using 3 title "reference (Go, Debian 1.1.1)", "" using 4 title "floor (kernel work only)"
GP
}
python_free_report
