#!/usr/bin/env bash
# fresh-root.sh: prove that the project works on a *fresh* Debian 12, one with none of its tools.
#
# What it proves, each on its own minimal Debian 12 root (debootstrap --variant=minbase: no make,
# no compiler, no iproute2, no nftables, empty apt lists, as a fresh machine or image has):
#   1. demo: a git clone of this branch runs `./scripts/deps.sh demo` then `./run.sh demo` as root
#      in a chroot of the root; prints the install's wall time, package count and download size,
#      and the build+demo time. The demo's traffic stays in the namespaces it makes.
#   2. artifacts: `make dist` and `make deb` (built here, on this machine) install and run on a
#      second fresh root that gets none of the build dependencies: `dpkg -i` the .deb, check and
#      unpack the tarball, every plugin's about line (no environment), `cnitool --version`, and
#      bridge ADD / CHECK / DEL (host-local IPAM, ipMasq) into a network namespace made inside the
#      root with `unshare --net=FILE`, once with the .deb's binaries and once with the tarball's.
#      The whole check runs under `unshare -n`: this machine's network is never touched; its
#      addresses come from 10.200.0.0/16.
#
# Needs: root, debootstrap (installed with apt-get when missing) and access to the Debian registry
# this machine's apt is configured with (the first bookworm entry of /etc/apt/sources.list*;
# FRESH_MIRROR overrides; the roots get a copy of this machine's apt sources). The build
# dependencies on this machine for `make dist deb` (./scripts/deps.sh build).
# Takes 2-3 minutes on 2 cores (debootstrap about 1, the demo's installs about half a minute),
# 4-5 when other jobs keep the cores busy. Not part of `make test`: too slow, and it needs the registry.
#
# Everything lives in one directory /var/tmp/fresh-XXXX (about 500 MB at the end); the chroots'
# mounts (/proc, /sys, /dev, /run) are made in a private mount namespace (unshare -m), so they
# vanish with it; the trap kills what still runs in the roots, unmounts anything left under the
# directory and only then removes it, on failure or interrupt too.
#   scripts/fresh-root.sh            both parts;  FRESH_PARTS="demo" or "artifacts" for one
#   FRESH_KEEP=1                     keep the directory (mounts are gone anyway) to look inside
# shellcheck disable=SC2317,SC2016,SC2154 # the traps' functions; the root's script is single-quoted;
# the figures come from a file the demo part writes
set -euo pipefail

SUITE=bookworm
# 10.200.0.0/16 only; the demo itself uses 10.200.253.0/24 and 10.200.254.0/24
FRESH_SUBNET=10.200.252.0/24

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------------------------------------
# Inside a private mount namespace (and for the artifacts a new network namespace): the chroot's
# mounts. Called as: fresh-root.sh __in ROOT demo|artifacts
if [ "${1:-}" = __in ]; then
	root=$2 part=$3
	mounted=()
	unmount_all() {
		local i
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do umount -R -l "${mounted[i]}" 2>/dev/null || true; done
	}
	trap unmount_all EXIT
	mount --make-rprivate /
	# the root must be a mount point: `ip netns exec` makes "/" a slave mount
	mount --bind "$root" "$root" && mounted+=("$root")
	mount -t proc proc "$root/proc" && mounted+=("$root/proc")
	# a sysfs of this process's network namespace (in the artifacts part, the new one)
	mount -t sysfs sysfs "$root/sys" && mounted+=("$root/sys")
	mount --rbind /dev "$root/dev" && mounted+=("$root/dev")
	# /run of its own: `ip netns` and `unshare --net=` keep their namespace files there
	mount -t tmpfs -o mode=0755 tmpfs "$root/run" && mounted+=("$root/run")
	in_root() { chroot "$root" /usr/bin/env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME=/root TERM=dumb LANG=C.UTF-8 "$@"; }

	case $part in
	demo)
		figures=$root/../demo.figures
		npkg0=$(in_root dpkg-query -W -f=. | wc -c)
		t0=$(now)
		in_root sh -c 'cd /root/cni-c && ./scripts/deps.sh demo'
		t1=$(now)
		npkg1=$(in_root dpkg-query -W -f=. | wc -c)
		archives=$root/var/cache/apt/archives
		bytes=$(find "$archives" -maxdepth 1 -name '*.deb' -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }')
		{
			echo "install_s=$(secs "$t0" "$t1")"
			echo "packages=$((npkg1 - npkg0))"
			echo "debs=$(find "$archives" -maxdepth 1 -name '*.deb' | wc -l)"
			echo "download_mb=$(awk -v b="$bytes" 'BEGIN { printf "%.1f", b / 1e6 }')"
		} >"$figures"
		in_root sh -c 'cd /root/cni-c && ./run.sh demo'
		t2=$(now)
		{
			echo "demo_s=$(secs "$t1" "$t2")"
			echo "whole_s=$(secs "$t0" "$t2")"
		} >>"$figures"
		;;
	artifacts)
		# the fresh root's own checks, in its shell: only what a minbase root has (coreutils,
		# util-linux's unshare and nsenter, dpkg, tar, sha256sum)
		in_root bash -euo pipefail -c '
			cd /tmp/art
			for t in make gcc cc ip nft iptables jq; do
				! command -v "$t" >/dev/null || { echo "FAIL: $t is installed" >&2; exit 1; }
			done
			echo "the root has no make, gcc, ip, nft, iptables, jq; $(dpkg-query -W -f=. | wc -c) packages"
			echo "-- dpkg -i"
			dpkg -i ./*.deb
			dpkg-query -W -f="\${Package} \${Version} Depends: [\${Depends}]\n" cni-c
			echo "-- the tarball"
			sha256sum -c ./*.tgz.sha256
			tar -xzf ./*.tgz
			tgzbin=$(echo /tmp/art/cni-c-*/bin)
			for dir in /opt/cni/bin "$tgzbin"; do
				echo "-- about lines: $dir (no environment)"
				for p in "$dir"/*; do
					[ "${p##*/}" = cnitool ] && continue
					env -i "$p" >/tmp/art/about
					head -1 /tmp/art/about
				done
				env -i "$dir/cnitool" --version
			done
			mkdir -p /tmp/art/net.d
			cat >/tmp/art/net.d/10-fresh.conflist <<JSON
{
  "cniVersion": "1.1.0",
  "name": "fresh",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "cni-fresh0",
      "isGateway": true,
      "ipMasq": true,
      "ipam": { "type": "host-local", "dataDir": "/tmp/art/ipam", "ranges": [[{"subnet": "'"$FRESH_SUBNET"'"}]] }
    }
  ]
}
JSON
			ns=/run/cni-fresh/ctr
			mkdir -p /run/cni-fresh
			links() { nsenter --net="$1" sh -c "tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d \" \" | sort | paste -sd\" \""; }
			for dir in /opt/cni/bin "$tgzbin"; do
				echo "-- bridge ADD / CHECK / DEL with $dir"
				touch "$ns"
				unshare --net="$ns" true
				cni() { env -i NETCONFPATH=/tmp/art/net.d CNI_PATH="$dir" CNI_CACHE_DIR=/tmp/art/cache "$dir/cnitool" "$@"; }
				cni add fresh "$ns" | tee /tmp/art/add.json
				echo
				grep -q "\"address\": *\"10\.200\.252\." /tmp/art/add.json || { echo "FAIL: no 10.200.252.x in the result" >&2; exit 1; }
				echo "container links: $(links "$ns"); node links: $(links /proc/self/ns/net)"
				grep -q "^ *eth0:" /proc/net/dev && { echo "FAIL: eth0 on the node" >&2; exit 1; }
				nsenter --net="$ns" grep -q "^ *eth0:" /proc/net/dev || { echo "FAIL: no eth0 in the container" >&2; exit 1; }
				cni check fresh "$ns" && echo "CHECK ok"
				cni del fresh "$ns" && echo "DEL ok"
				nsenter --net="$ns" grep -q "^ *eth0:" /proc/net/dev && { echo "FAIL: eth0 left in the container" >&2; exit 1; }
				[ -z "$(ls -A /tmp/art/cache/results)" ] || { echo "FAIL: cache entries left" >&2; exit 1; }
				[ -z "$(ls /tmp/art/ipam/fresh | grep "^10\.")" ] || { echo "FAIL: reservations left" >&2; exit 1; }
				echo "after DEL: container links: $(links "$ns"); node links: $(links /proc/self/ns/net)"
				umount "$ns" && rm -f "$ns"
			done
			echo "artifacts: all checks passed"
		'
		;;
	esac
	exit 0
fi

# ---------------------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || {
	echo "$0: needs root (debootstrap, chroot, mounts, namespaces)" >&2
	exit 1
}
cd "$(dirname "$0")/.."
repo=$PWD
self=$repo/scripts/fresh-root.sh
parts=${FRESH_PARTS:-demo artifacts}
branch=$(git rev-parse --abbrev-ref HEAD)
[ -z "$(git status --porcelain --untracked-files=no)" ] ||
	echo "note: uncommitted changes are not in the clone; it tests commit $(git rev-parse --short HEAD)" >&2

# the registry: the first bookworm entry of this machine's apt sources (deb822 or one-line)
mirror=${FRESH_MIRROR:-}
if [ -z "$mirror" ]; then
	mirror=$(awk -v s=$SUITE '
		/^[ \t]*$/ { u = "" }
		/^URIs:/ { u = $2 }
		/^Suites:/ { for (i = 2; i <= NF; i++) if ($i == s && u != "") { print u; exit } }
	' /etc/apt/sources.list.d/*.sources 2>/dev/null | head -1)
fi
if [ -z "$mirror" ]; then
	mirror=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null | awk -v s=$SUITE '
		$1 == "deb" { for (i = 2; i < NF; i++) if ($i ~ /^[a-z]+:\/\// && $(i + 1) == s) { print $i; exit } }' | head -1)
fi
[ -n "$mirror" ] || {
	echo "$0: no $SUITE entry in /etc/apt/sources.list*; set FRESH_MIRROR" >&2
	exit 1
}

work=$(mktemp -d /var/tmp/fresh-XXXX)
# the chroots' _apt user must reach their /var/cache/apt
chmod 0755 "$work"
# the long steps run in the background so that a signal interrupts them at once (bash runs a
# trap only once the foreground command has ended)
child=
bg() {
	local rc=0
	"$@" &
	child=$!
	wait "$child" || rc=$?
	child=
	return "$rc"
}
# the pids of what runs inside a root (a build, a demo's web server): ours
in_roots() {
	local pid r
	for pid in /proc/[0-9]*; do
		r=$(readlink "$pid/root" 2>/dev/null) || continue
		case $r in "$work"/*) echo "${pid#/proc/}" ;; esac
	done
}
cleanup() {
	local rc=$? pid pids i
	trap - EXIT INT TERM
	set +e
	[ -z "$child" ] || kill "$child" 2>/dev/null
	for i in 1 2 3 4 5 6 7 8 9 10; do
		pids=$(in_roots)
		[ -n "$pids" ] || break
		for pid in $pids; do kill "$pid" 2>/dev/null; done
		sleep 0.5
	done
	[ -z "$(in_roots)" ] || echo "fresh-root: processes left in $work: $(in_roots | paste -sd' ')" >&2
	# the mounts live in the private namespaces; anything under $work seen here is unmounted first
	findmnt -rn -o TARGET | grep -F "$work/" | sort -r | while read -r m; do umount -l "$m" || true; done
	if findmnt -rn -o TARGET | grep -qF "$work/" || [ -n "$(in_roots)" ]; then
		echo "fresh-root: mounts or processes left under $work; not removing it" >&2
	elif [ "${FRESH_KEEP:-0}" = 1 ]; then
		echo "fresh-root: kept $work" >&2
	else
		rm -rf --one-file-system "$work"
	fi
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "fresh-root: interrupted" >&2; exit 130' INT TERM

t_start=$(now)
command -v debootstrap >/dev/null || {
	say "installing debootstrap"
	apt-get install -y -qq --no-install-recommends debootstrap || {
		apt-get update -qq
		apt-get install -y -qq --no-install-recommends debootstrap
	}
}

case " $parts " in *" artifacts "*)
	say "make dist deb (on this machine, in $repo)"
	make -s dist deb
	version=$(make -s version)
	debv=$(echo "$version" | sed 's/-/+/; s/-/./g')
	deb=dist/cni-c_${debv}_amd64.deb tgz=dist/cni-c-$version-linux-amd64.tgz
	ls -l "$deb" "$tgz" "$tgz.sha256"
	;;
esac

say "debootstrap --variant=minbase $SUITE from $mirror"
base=$work/base
t0=$(now)
bg debootstrap --variant=minbase "$SUITE" "$base" "$mirror" >"$work/debootstrap.log" 2>&1 || {
	tail -20 "$work/debootstrap.log" >&2
	exit 1
}
t_boot=$(secs "$t0" "$(now)")
# as a fresh machine or image: this machine's apt sources, empty package lists and cache
rm -f "$base/etc/apt/sources.list"
for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources; do
	[ -f "$f" ] && cp "$f" "$base$f"
done
find "$base/var/lib/apt/lists" "$base/var/cache/apt/archives" -maxdepth 1 -type f -delete
find "$base/var/cache/apt" -maxdepth 1 -name '*.bin' -delete
[ -s "$base/etc/resolv.conf" ] || cp /etc/resolv.conf "$base/etc/resolv.conf"
echo "root: $(chroot "$base" dpkg-query -W -f=. | wc -c) packages, $(du -sm "$base" | cut -f1) MB, in ${t_boot}s"
for t in make gcc ip nft; do
	if [ -e "$base/usr/bin/$t" ] || [ -e "$base/usr/sbin/$t" ] || [ -e "$base/bin/$t" ] || [ -e "$base/sbin/$t" ]; then
		echo "$0: the fresh root has $t: not a fresh root" >&2
		exit 1
	fi
done

failed=0
demo_result="not run" art_result="not run"
case " $parts " in *" artifacts "*)
	say "part 2: the release artifacts on a fresh root without build dependencies (unshare -n)"
	art=$work/art
	cp -a "$base" "$art"
	mkdir -p "$art/tmp/art"
	cp "$deb" "$tgz" "$tgz.sha256" "$art/tmp/art/"
	if bg unshare -m -n "$self" __in "$art" artifacts; then
		art_result=passed
	else
		art_result=FAILED failed=1
	fi
	;;
esac

case " $parts " in *" demo "*)
	say "part 1: ./run.sh demo from a clone of branch $branch on a fresh root"
	demo=$work/demo
	mv "$base" "$demo"
	git clone -q --branch "$branch" "$repo" "$demo/root/cni-c"
	if bg unshare -m "$self" __in "$demo" demo; then
		demo_result=passed
	else
		demo_result=FAILED failed=1
	fi
	;;
esac

say "figures ($(date -u +%F), $(nproc) cores)"
echo "debootstrap minbase: ${t_boot}s"
if [ -f "$work/demo.figures" ]; then
	# shellcheck disable=SC1091 # install_s packages debs download_mb, then demo_s whole_s
	. "$work/demo.figures"
	echo "demo: deps.sh demo ${install_s}s: $packages packages, $debs .debs, $download_mb MB downloaded (with apt-get update of empty lists)"
	[ -z "${demo_s:-}" ] || echo "demo: ./run.sh demo (build + demo) ${demo_s}s; install and demo together ${whole_s}s"
fi
echo "demo: $demo_result; artifacts: $art_result"
echo "fresh-root: $(secs "$t_start" "$(now)")s in all"
exit $failed
