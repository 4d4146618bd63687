#!/bin/sh
# Install the Debian packages a purpose needs; does nothing when all are present.
# Works on a fresh Debian 12 (empty apt lists, no compiler): run as root.
#   scripts/deps.sh build   what make, make install, make dist and make deb need
#   scripts/deps.sh demo    build + what scripts/demo.sh runs (ip, nft, ping, tcpdump, jq, busybox)
#   scripts/deps.sh bench   build + scripts/bench.sh: the reference plugins, gnuplot, time, bc
#   scripts/deps.sh test    (or no argument) the whole test stack: runtimes, Go, valgrind...
#   scripts/deps.sh fuzz    build + clang and libFuzzer (make fuzz)
# DEPS_EXTRA adds packages to any of them. --build-only and --fuzz are the old spellings.
set -eu

BUILD_PKGS="make gcc libc6-dev binutils pkg-config musl-dev"
# scripts/demo.sh: ip, nft, ping, tcpdump, jq, timeout (coreutils), busybox httpd (its web part)
DEMO_PKGS="iproute2 nftables iputils-ping tcpdump jq busybox-static"
# scripts/bench.sh: Debian's reference plugins side by side (they exec iptables), the chart and timings
# (etcd: the cluster overlay's 100-node simulation)
BENCH_PKGS="iproute2 nftables iptables jq procps containernetworking-plugins gnuplot-nox time bc etcd-server etcd-client"
TEST_PKGS="bats bats-support bats-assert iproute2 iputils-ping tcpdump nftables jq procps util-linux strace iptables valgrind
           golang-go golang-github-appc-cni-dev podman busybox-static containerd runc
           containernetworking-plugins systemd clang-format cppcheck qemu-system-x86 cpio kmod etcd-server etcd-client"
# make fuzz: clang, libFuzzer (its runtime is not a dependency of clang-14) and llvm-symbolizer
FUZZ_PKGS="clang libclang-rt-14-dev llvm-14"
case "${1:-test}" in
build | --build-only) PKGS="$BUILD_PKGS" ;;
demo) PKGS="$BUILD_PKGS $DEMO_PKGS" ;;
bench) PKGS="$BUILD_PKGS $BENCH_PKGS" ;;
test) PKGS="$BUILD_PKGS $TEST_PKGS" ;;
fuzz | --fuzz) PKGS="$BUILD_PKGS $FUZZ_PKGS" ;;
*)
	echo "usage: $0 [build|demo|bench|test|fuzz]" >&2
	exit 2
	;;
esac
PKGS="$PKGS ${DEPS_EXTRA:-}"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing Debian packages:$missing (run as root to install them)" >&2
	exit 1
fi
echo "deps: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
# A fresh machine has empty package lists: update when installing fails or lists are absent.
if ! ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then
	apt-get update -qq
fi
# shellcheck disable=SC2086
if ! apt-get install -y -qq --no-install-recommends $missing; then
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
fi
# Debian's etcd-server starts a system etcd on 127.0.0.1:2379 when installed; the tests and the
# bench start etcd clusters of their own inside network namespaces, so the one this step brought
# in is stopped and disabled (an etcd that was installed before is left as it was).
case " $missing " in
*" etcd-server "*)
	if [ -d /run/systemd/system ]; then
		systemctl disable --now etcd.service >/dev/null 2>&1 || true
	fi
	;;
esac
