#!/bin/sh
# make dist / make deb: package the release binaries of BUILD into OUT.
#   scripts/dist.sh tgz|deb BUILD OUT   (VERSION, DEB_VERSION and PROGRAMS from the Makefile)
# tgz: OUT/cni-c-<version>-linux-amd64.tgz and its .sha256 (sha256sum -c); one top directory
#      cni-c-<version>/ holding bin/ (stripped), LICENSE, NOTICE, README.md, VERSION, packaging/
#      and third_party/*/LICENSE*.
# deb: OUT/cni-c_<debversion>_amd64.deb (dpkg-deb, no maintainer scripts, no dependencies: the
#      binaries are self-contained) with /opt/cni/bin, /usr/share/doc/cni-c, /usr/lib/tmpfiles.d.
# Reproducible: every mtime is the commit's date (SOURCE_DATE_EPOCH overrides; outside git, the
# VERSION file's), owner root, names sorted, gzip without a timestamp.
set -eu
kind=$1 build=$2 out=$3
: "${VERSION:?}" "${PROGRAMS:?}"
cd "$(dirname "$0")/.."
if [ -z "${SOURCE_DATE_EPOCH:-}" ]; then
	SOURCE_DATE_EPOCH=$(git log -1 --format=%ct 2>/dev/null || stat -c %Y VERSION 2>/dev/null || echo 0)
fi
export SOURCE_DATE_EPOCH
mkdir -p "$out"
stage=$(mktemp -d "${TMPDIR:-/tmp}/cni-c-dist.XXXXXX")
trap 'rm -rf "$stage"' EXIT
umask 022

# tar of the tree under $1 (names relative to it), reproducible, gzip -n to $2
rtar() {
	tar -C "$1" --sort=name --mtime="@$SOURCE_DATE_EPOCH" --owner=0 --group=0 --numeric-owner \
		--mode='u+rwX,go+rX,go-w' --format=gnu -cf - "${3:-.}" | gzip -9n >"$2"
}

case $kind in
tgz)
	name=cni-c-$VERSION
	top=$stage/$name
	mkdir -p "$top/bin" "$top/packaging"
	for p in $PROGRAMS; do
		install -m 0755 "$build/$p" "$top/bin/$p"
		strip --strip-all -R .comment "$top/bin/$p"
	done
	install -m 0644 LICENSE NOTICE README.md "$top/"
	echo "$VERSION" >"$top/VERSION"
	# packaging/: the tmpfiles entry, and systemd units once there are any
	for f in packaging/tmpfiles.d/*.conf packaging/systemd/*; do
		[ -f "$f" ] || continue
		install -D -m 0644 "$f" "$top/$f"
	done
	for f in third_party/*/LICENSE*; do
		[ -f "$f" ] || continue
		install -D -m 0644 "$f" "$top/$f"
	done
	tgz=$name-linux-amd64.tgz
	rtar "$stage" "$out/$tgz" "$name"
	(cd "$out" && sha256sum "$tgz" >"$tgz.sha256")
	echo "$out/$tgz"
	;;
deb)
	: "${DEB_VERSION:?}"
	root=$stage/root
	doc=$root/usr/share/doc/cni-c
	mkdir -p "$root/DEBIAN" "$root/opt/cni/bin" "$doc" "$root/usr/lib/tmpfiles.d"
	for p in $PROGRAMS; do
		install -m 0755 "$build/$p" "$root/opt/cni/bin/$p"
		strip --strip-all -R .comment "$root/opt/cni/bin/$p"
	done
	install -m 0644 packaging/tmpfiles.d/cni-c.conf "$root/usr/lib/tmpfiles.d/cni-c.conf"
	for f in packaging/systemd/*.service packaging/systemd/*.timer; do
		[ -f "$f" ] || continue
		install -D -m 0644 "$f" "$root/usr/lib/systemd/system/$(basename "$f")"
	done
	gzip -9n <README.md >"$doc/README.md.gz"
	# the machine-readable copyright: ours, then what is linked in
	{
		echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
		echo "Upstream-Name: cni-c"
		echo
		echo "Files: *"
		echo "Copyright: cni-c authors"
		echo "License: Apache-2.0"
		echo " On Debian systems the full text of the Apache License, Version 2.0 is in"
		echo " /usr/share/common-licenses/Apache-2.0."
		echo
		echo "Comment: third-party code in the binaries"
		sed 's/^$/./; s/^/ /' NOTICE
	} >"$doc/copyright"
	date=$(date -u -R -d "@$SOURCE_DATE_EPOCH")
	{
		echo "cni-c ($DEB_VERSION) unstable; urgency=medium"
		echo
		echo "  * Release $VERSION."
		echo
		echo " -- ${DEB_MAINTAINER:-cni-c maintainers <cni-c@example.org>}  $date"
	} | gzip -9n >"$doc/changelog.gz"
	# Depends: none for self-contained (static) binaries; otherwise the packages of the shared
	# libraries they still load (readelf NEEDED -> the file -> its Debian package)
	deps=$(for p in $PROGRAMS; do readelf -d "$root/opt/cni/bin/$p"; done |
		sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | sort -u | while read -r lib; do
			f=$(ldconfig -p | awk -v l="$lib" '$1 == l && /x86-64/ { print $NF; exit }')
			[ -n "$f" ] && { dpkg -S "$f" 2>/dev/null || dpkg -S "$(readlink -f "$f")" 2>/dev/null || dpkg -S "/usr$f" 2>/dev/null; } | cut -d: -f1 | head -1
		done | sort -u | paste -sd, | sed 's/,/, /g')
	# /opt/cni/bin is the plugin directory of the runtimes: outside Debian's archive layout on purpose
	install -D -m 0644 /dev/stdin "$root/usr/share/lintian/overrides/cni-c" <<OVR
cni-c: dir-or-file-in-opt [opt/cni/*]
OVR
	size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
	cat >"$root/DEBIAN/control" <<CONTROL
Package: cni-c
Version: $DEB_VERSION
Architecture: amd64
Maintainer: ${DEB_MAINTAINER:-cni-c maintainers <cni-c@example.org>}
Installed-Size: $size
${deps:+Depends: $deps
}Section: net
Priority: optional
Description: CNI plugins in C: bridge, vlan, vxlan, host-local, loopback, portmap, tap, bandwidth
 Drop-in replacements for the CNI reference plugins of the same names, each a
 small self-contained executable; floating-ip (1:1 NAT of an external address
 to a container); and cnitool to run a network configuration by hand.
 Installed into /opt/cni/bin, the plugin directory of containerd, CRI-O and
 Kubernetes; Debian's containernetworking-plugins (/usr/lib/cni) can stay
 installed beside it.
CONTROL
	(cd "$root" && find . -path ./DEBIAN -prune -o -type f -printf '%P\0' | sort -z | xargs -0 md5sum >DEBIAN/md5sums)
	find "$root" -exec touch -h -d "@$SOURCE_DATE_EPOCH" {} +
	deb=$out/cni-c_${DEB_VERSION}_amd64.deb
	# --root-owner-group: root:root inside, whoever builds; dpkg-deb honours SOURCE_DATE_EPOCH
	dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" >/dev/null
	echo "$deb"
	;;
*)
	echo "usage: $0 tgz|deb BUILD OUT" >&2
	exit 2
	;;
esac
