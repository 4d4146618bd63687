#!/bin/sh
# Install the Debian packages that building and testing need; does nothing when all are present.
# Works on a fresh Debian 12 (empty apt lists, no compiler): run as root.
#   --build-only  only what `make` needs;  --fuzz  what `make` and `make fuzz` need
set -eu

BUILD_PKGS="make gcc libc6-dev pkg-config libcap-dev libnl-3-dev libnl-route-3-dev"
TEST_PKGS="bats bats-support bats-assert iproute2 iputils-ping tcpdump nftables jq procps util-linux strace iptables valgrind
           golang-go golang-github-appc-cni-dev podman busybox-static containerd runc
           containernetworking-plugins"
# make fuzz: clang, libFuzzer (its runtime is not a dependency of clang-14) and llvm-symbolizer
FUZZ_PKGS="clang libclang-rt-14-dev llvm-14"
PKGS="$BUILD_PKGS ${DEPS_EXTRA:-}"
case "${1:-}" in
--build-only) ;;
--fuzz) PKGS="$PKGS $FUZZ_PKGS" ;;
*) PKGS="$PKGS $TEST_PKGS" ;;
esac

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
