#!/usr/bin/env bash
# The VM lane: boot Debian's stock cloud kernel under QEMU (TCG) with a small initramfs holding
# busybox, bash, bats, iproute2, the test tools and our build, run bats suites that need kernel
# features this host lacks (802.1Q VLAN, bridge VLAN filtering), print their TAP output, exit
# with bats' status. Everything comes from Debian packages; the kernel is cached.
#
#   tests/vm/run.sh BUILD_DIR [test/]SUITE.bats[:FILTER]...   (FILTER: bats -f regex; "test/": run
#                   against VM_TEST_BUILD, a TESTING=1 build with the fault points)
# Env: VM_CACHE (default /var/tmp/cni-c-vm), VM_MEM (MiB, 1024), VM_TIMEOUT (s, 900), VM_BOOT_WAIT
# (s, 600: a guest silent that long hung at boot and is booted again, once).
# Exit 125: the guest never reported a status; 126: QEMU is missing and could not be installed.
set -euo pipefail
# the whole script is one block, read before it runs: editing this file during a run is safe
{
cd "$(dirname "$0")/../.."
build=$(realpath "$1"); shift
suites=("$@")
cache=${VM_CACHE:-/var/tmp/cni-c-vm}
mkdir -p "$cache"

# The guests of one run start side by side: one installs and fetches the kernel, the others wait
# for it (two apt-gets at once fail on dpkg's lock; a kernel half extracted is no kernel).
exec 9>"$cache/.setup.lock"
flock 9
pkgs="qemu-system-x86 busybox-static cpio kmod"
missing=""
for p in $pkgs; do dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'ok installed' || missing+=" $p"; done
if [[ -n $missing ]]; then
	echo "# vm: installing$missing" >&2
	export DEBIAN_FRONTEND=noninteractive
	if ! apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1; then
		apt-get update -qq >/dev/null 2>&1 || true
		apt-get install -y -qq --no-install-recommends $missing >/dev/null 2>&1 || {
			echo "not ok - vm: QEMU is missing: cannot install$missing (no package registry?)"
			exit 126
		}
	fi
fi

# 1. the kernel: Debian's cloud kernel, whose 8021q, bridge, veth, vxlan are modules
if [[ ! -f $cache/vmlinuz ]]; then
	pkg=$(apt-cache depends linux-image-cloud-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
	(cd "$cache" && chmod 777 . && apt-get download -qq "$pkg" >/dev/null && dpkg -x ./"$pkg"_*.deb kernel && rm -f ./*.deb)
	cp "$cache"/kernel/boot/vmlinuz-* "$cache/vmlinuz"
fi
flock -u 9
exec 9>&-
kver=$(ls "$cache/kernel/lib/modules")
moddir=$cache/kernel/lib/modules/$kver

# 2. the initramfs
root=$(mktemp -d /tmp/cni-c-vm.XXXXXX)
trap 'rm -rf "$root" "$root.cpio.gz"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,usr/lib,lib,lib64,proc,sys,dev,tmp,run,etc,var,mods,newroot}
ln -s /run "$root/var/run"
cp /bin/busybox "$root/bin/"
copy_lib_deps() {
	# a static binary has none: ldd prints no path and grep finds nothing, which is fine
	{ ldd "$1" 2>/dev/null | grep -o '/[^ ]*' || true; } | while read -r l; do
		mkdir -p "$root$(dirname "$l")"
		cp -Ln "$l" "$root$l" 2>/dev/null || true
	done
}
copy_bin() { # a host binary and every library it links, at the same paths
	local b
	b=$(command -v "$1") || { echo "vm: no $1 on the host" >&2; return 1; }
	mkdir -p "$root$(dirname "$b")"
	cp -L "$b" "$root$b"
	copy_lib_deps "$b"
}
for b in ip bridge bash env timeout jq ping tcpdump nft flock sha512sum od perl; do copy_bin "$b"; done
# the nft CLI the tests use loads libnftables (our plugins need no library)
for l in /usr/lib/x86_64-linux-gnu/libnftables.so.1; do
	[[ -e $l ]] && { mkdir -p "$root$(dirname "$l")"; cp -Ln "$l" "$root$l"; copy_lib_deps "$l"; }
done
cp -a /usr/bin/bats "$root/usr/bin/"
for d in /usr/lib/bats-core /usr/libexec/bats-core /usr/lib/bats /usr/share/bats-core; do
	[[ -d $d ]] && { mkdir -p "$root$(dirname "$d")"; cp -a "$d" "$root$d"; }
done
echo 'root:x:0:0:root:/root:/bin/bash' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
order=()
add_mod() {
	local f d
	f=$(find "$moddir" -name "$1.ko*" | head -1)
	[[ -n $f ]] || return 0
	for d in $(modinfo -F depends "$f" | tr ',' ' '); do add_mod "$d"; done
	[[ " ${order[*]} " == *" $1 "* ]] || { order+=("$1"); cp "$f" "$root/mods/"; }
}
for m in 8021q bridge veth vxlan dummy nf_tables nft_masq nft_nat nft_chain_nat nft_compat nf_conntrack \
	nft_fib_inet nft_fib_ipv4 nft_fib_ipv6 nft_ct nf_conntrack_netlink nft_meta_bridge; do add_mod "$m"; done
for f in "$root"/mods/*.ko.xz; do [[ -e $f ]] && xz -d "$f"; done
for f in "$root"/mods/*.ko.zst; do [[ -e $f ]] && zstd -qd --rm "$f"; done
printf '%s\n' "${order[@]}" >"$root/mods/order"
# the project's tests and the build under test, at /src
mkdir -p "$root/src/tests" "$root/src/build"
cp -a tests/. "$root/src/tests/"
cp -a "$build"/. "$root/src/build/"
rm -rf "$root/src/build/obj"
for f in "$root"/src/build/*; do [[ -f $f && -x $f ]] && copy_lib_deps "$f"; done
# a test build (fault points compiled in) for the suites named "test/<suite>", if given
if [[ -n ${VM_TEST_BUILD:-} ]]; then
	mkdir -p "$root/src/build-test"
	cp -a "$VM_TEST_BUILD"/. "$root/src/build-test/"
	rm -rf "$root/src/build-test/obj"
fi
# the libcni driver (Go, static): built here, the guest has no Go
if [[ " ${suites[*]}" == *" libcni.bats"* ]] && command -v go >/dev/null &&
	[[ -d /usr/share/gocode/src/github.com/containernetworking/cni/libcni ]]; then
	mkdir -p "$root/src/build/test-tools"
	(cd tests/libcni && CGO_ENABLED=0 GO111MODULE=off GOPATH=/usr/share/gocode GOCACHE=$cache/gocache \
		go build -o "$root/src/build/test-tools/libcni-driver" driver.go) >&2 || echo "vm: libcni driver did not build" >&2
fi
printf '%s\n' "${suites[@]}" >"$root/suites"
# the corpus's sampling (tests/corpus.bats), passed into the guest
printf 'export CORPUS_SAMPLE=%q\n' "${CORPUS_SAMPLE:-}" >"$root/env"
cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
# `ip netns exec` needs / to be a mount: move everything onto a tmpfs and switch to it
if [ "$$" = 1 ] && [ ! -e /.switched ]; then
	/bin/busybox mount -t tmpfs -o size=900m root /newroot
	for d in /*; do [ "$d" = /newroot ] || [ "$d" = /proc ] || cp -a "$d" /newroot/; done
	mkdir -p /newroot/proc /newroot/newroot
	touch /newroot/.switched
	exec /bin/busybox switch_root /newroot /init
fi
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mount -t tmpfs tmp /tmp; mount -t tmpfs run /run; mkdir -p /run/netns
ln -sf /proc/self/fd /dev/fd; ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout; ln -sf /proc/self/fd/2 /dev/stderr
for m in $(cat /mods/order); do insmod /mods/$m.ko 2>/dev/null; done
ip link set lo up
cd /src
. /env
[ -n "$CORPUS_SAMPLE" ] || unset CORPUS_SAMPLE
st=0
# one entry a line: a filter may hold spaces
while IFS= read -r s <&3; do
	echo "# vm: $s on $(uname -r)"
	t0=$(date +%s)
	pd=/src/build
	case $s in test/*) pd=/src/build-test; s=${s#test/} ;; esac
	f=${s%%:*}
	if [ "$f" = "$s" ]; then
		PLUGIN_DIR=$pd bats --tap "tests/$f" </dev/null || st=1
	else
		PLUGIN_DIR=$pd bats --tap -f "${s#*:}" "tests/$f" </dev/null || st=1
	fi
	echo "# vm: $s took $(($(date +%s) - t0)) s"
done 3</suites
echo "VM-EXIT-STATUS=$st"
poweroff -f
INIT
chmod +x "$root/init"
(cd "$root" && find . | cpio -o -H newc 2>/dev/null | gzip -1) >"$root.cpio.gz"

# 3. boot (TCG: this host's /dev/kvm cannot run a guest: nested KVM fails on the CPU's MSRs).
# A guest that has not started its first suite VM_BOOT_WAIT seconds after QEMU started hung at
# boot (seen once: QEMU at full CPU, not a byte on the console): it is stopped and booted again,
# once, instead of holding the run until VM_TIMEOUT.
out=$(mktemp)
boot() {
	: >"$out"
	# straight into the file (no buffering pipe between): the watchdog reads it as it grows
	timeout "${VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m "${VM_MEM:-1024}" \
		-nographic -no-reboot -kernel "$cache/vmlinuz" -initrd "$root.cpio.gz" \
		-append "console=ttyS0 quiet panic=-1" </dev/null >"$out" 2>&1 &
	local qemu=$! t0=$SECONDS
	while kill -0 "$qemu" 2>/dev/null; do
		if ((SECONDS - t0 > ${VM_BOOT_WAIT:-600})) && ! grep -q '# vm: ' "$out"; then
			kill "$qemu" 2>/dev/null || true # timeout passes the signal to QEMU
			wait "$qemu" || true
			return 1
		fi
		sleep 2
	done
	wait "$qemu" || true
}
for attempt in 1 2; do
	boot && break
	echo "# vm: the guest printed nothing for ${VM_BOOT_WAIT:-600} s after QEMU started (hung at boot): attempt $attempt stopped" >&2
done
tr -d '\r' <"$out" | awk '/# vm: /{on=1; sub(/^.*# vm: /, "# vm: ")} on && !/^VM-EXIT-STATUS=/ && !/^\[ *[0-9.]*\]/' || true
status=$(tr -d '\r' <"$out" | sed -n 's/^VM-EXIT-STATUS=\([0-9]*\).*/\1/p' | tail -1)
rm -f "$out"
[[ -n $status ]] || { echo "vm: the guest did not report a status (timeout or crash)" >&2; exit 125; }
exit "$status"
}
