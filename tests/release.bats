#!/usr/bin/env bats
# Releases: the version every binary reports, `make dist` (tarball + sha256) and `make deb`.
# One release build per run, in this file's temp dir (never build/ of a concurrent run); the
# tarball and package are made from it once, and each test looks at them.

setup_file() {
	ROOT=$(cd "$BATS_TEST_DIRNAME/.." && pwd)
	REL=$BATS_FILE_TMPDIR/rel
	mkdir -p "$REL"
	export ROOT REL
	make -s -C "$ROOT" version >"$REL/version"
	make -s -C "$ROOT" DIST_BUILD="$REL/build" DIST="$REL/dist" dist deb >"$REL/make.log" 2>&1 ||
		{ cat "$REL/make.log" >&3; return 1; }
}

setup() {
	load helpers/common
	V=$(cat "$REL/version")
	DV=$(sed 's/-/+/; s/-/./g' <<<"$V")
	TGZ=$REL/dist/cni-c-$V-linux-amd64.tgz
	DEB=$REL/dist/cni-c_${DV}_amd64.deb
	PROGRAMS="bandwidth bridge cni-c-agent cnitool floating-ip host-local loopback portmap tap vlan vxlan"
}

@test "release: the version is 0.1.0-<n>-g<hash> or a tag's, one line" {
	# (a copy of the tree without .git and VERSION, as tests/mutate.sh makes, is <base>-unknown)
	[[ $V =~ ^[0-9]+\.[0-9]+\.[0-9]+((-[0-9]+-g[0-9a-f]{7,})?(-dirty)?|-unknown)$ ]] || fail "version \"$V\""
}

@test "release: make dist writes the tarball and a sha256 that verifies" {
	[[ -s $TGZ ]] || fail "no $TGZ: $(ls "$REL/dist")"
	run sh -c 'cd "$1" && sha256sum -c "$2.sha256"' sh "$REL/dist" "${TGZ##*/}"
	assert_success
	assert_output "${TGZ##*/}: OK"
	# the sha256 file names the tarball alone (no directory), as sha256sum -c in a download dir wants
	assert_equal "$(awk '{print $2}' "$TGZ.sha256")" "${TGZ##*/}"
}

@test "release: a changed tarball fails the sha256 check" {
	cp "$TGZ" "$TGZ.sha256" "$BATS_TEST_TMPDIR/"
	printf x >>"$BATS_TEST_TMPDIR/${TGZ##*/}"
	run sh -c 'cd "$1" && sha256sum -c "$2.sha256"' sh "$BATS_TEST_TMPDIR" "${TGZ##*/}"
	assert_failure
}

@test "release: the tarball holds exactly the binaries, licenses, README, VERSION and packaging, root-owned" {
	local top=cni-c-$V p f
	{
		echo "$top/" "$top/LICENSE" "$top/NOTICE" "$top/README.md" "$top/VERSION" "$top/bin/"
		for p in $PROGRAMS; do echo "$top/bin/$p"; done
		echo "$top/packaging/" "$top/packaging/tmpfiles.d/" "$top/packaging/tmpfiles.d/cni-c.conf"
		[[ -d $ROOT/packaging/systemd ]] && echo "$top/packaging/systemd/" && (cd "$ROOT" && ls -d packaging/systemd/* | sed "s|^|$top/|")
		for f in "$ROOT"/third_party/*/LICENSE*; do
			[[ -f $f ]] || continue
			f=${f#"$ROOT"/}
			echo "$top/third_party/" "$top/$(dirname "$f")/" "$top/$f"
		done
	} | tr ' ' '\n' | sort -u >"$BATS_TEST_TMPDIR/want"
	tar -tzf "$TGZ" | sort >"$BATS_TEST_TMPDIR/got"
	run diff -u "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	assert_success
	# every entry root:root, numerically
	run sh -c 'tar --numeric-owner -tvzf "$1" | awk "\$2 != \"0/0\""' sh "$TGZ"
	assert_output ""
	# names sorted, one mtime (the commit's)
	tar -tzf "$TGZ" >"$BATS_TEST_TMPDIR/order"
	run sort -c "$BATS_TEST_TMPDIR/order"
	assert_success
	assert_equal "$(tar --full-time -tvzf "$TGZ" | awk '{print $4, $5}' | sort -u | wc -l)" 1
}

@test "release: the tarball's VERSION, each binary's about line and cnitool --version name the tarball's version" {
	local x=$BATS_TEST_TMPDIR/x p
	mkdir -p "$x"
	tar -xzf "$TGZ" -C "$x"
	local top=$x/cni-c-$V
	assert_equal "$(cat "$top/VERSION")" "$V"
	for p in $PROGRAMS; do
		[[ $p == cnitool || $p == cni-c-agent ]] && continue
		run env -i "$top/bin/$p"
		assert_success
		assert_line --index 0 "CNI $p plugin v$V (C CNI plugin suite)"
		assert_line --index 1 --partial "CNI protocol versions supported: 0.1.0"
	done
	run "$top/bin/cnitool" --version
	assert_success
	assert_output "cnitool v$V (C CNI plugin suite)"
	run "$top/bin/cni-c-agent" --version
	assert_success
	assert_line --index 0 "cni-c-agent v$V (C CNI plugin suite)"
	# stripped: no symbol table
	run readelf -S "$top/bin/bridge"
	refute_output --regexp '[.](symtab|debug_)'
	# stripping keeps the hardening: position-independent, full RELRO
	for p in $PROGRAMS; do
		readelf -h "$top/bin/$p" | grep -q 'Type: *DYN' || fail "$p is not PIE"
		readelf -l "$top/bin/$p" | grep -q GNU_RELRO || fail "$p has no RELRO"
		readelf -d "$top/bin/$p" | grep -q -E 'BIND_NOW|FLAGS.*NOW' || fail "$p is not bound now"
	done
}

@test "release: the build under test reports the version it was built at" {
	local p bv
	[[ $(head -c2 "$PLUGIN_DIR/bridge") != '#!' ]] || skip "the valgrind lane's wrappers: the release and asan lanes check the binaries"
	# the Makefile's record of the version it embedded (the tree may have moved on since the build)
	[[ -s $PLUGIN_DIR/version ]] || fail "$PLUGIN_DIR/version is missing: not built by this Makefile"
	bv=$(cat "$PLUGIN_DIR/version")
	for p in bridge host-local vxlan vlan loopback portmap floating-ip tap bandwidth; do
		run env -i "$PLUGIN_DIR/$p"
		assert_line --index 0 "CNI $p plugin v$bv (C CNI plugin suite)"
	done
	run "$PLUGIN_DIR/cnitool" --version
	assert_output "cnitool v$bv (C CNI plugin suite)"
}

@test "release: make dist twice gives the same bytes (reproducible tarball)" {
	make -s -C "$ROOT" DIST_BUILD="$REL/build" DIST="$BATS_TEST_TMPDIR/again" dist >/dev/null
	assert_equal "$(cut -d' ' -f1 "$BATS_TEST_TMPDIR/again/${TGZ##*/}.sha256")" "$(cut -d' ' -f1 "$TGZ.sha256")"
}

@test "release: a new version rebuilds release.o alone and relinks, without make clean" {
	local b=$BATS_TEST_TMPDIR/build
	cp -a "$REL/build" "$b"
	run make -C "$ROOT" BUILD="$b" VERSION=9.8.7-rebuild all
	assert_success
	# exactly one compile, of common/release.c
	assert_equal "$(grep -c -- ' -c ' <<<"$output")" 1
	assert_output --regexp ' -c -o [^ ]*/obj/common/release\.o common/release\.c'
	run env -i "$b/bridge"
	assert_line --index 0 "CNI bridge plugin v9.8.7-rebuild (C CNI plugin suite)"
	run "$b/cnitool" --version
	assert_output "cnitool v9.8.7-rebuild (C CNI plugin suite)"
	# the same version again: nothing to do
	run make -C "$ROOT" BUILD="$b" VERSION=9.8.7-rebuild all
	refute_output --partial ' -c '
}

@test "release: outside git the version comes from the VERSION file, else <base>-unknown" {
	local d=$BATS_TEST_TMPDIR/src
	mkdir -p "$d"
	cp "$ROOT/Makefile" "$d/"
	# a directory no git repository contains
	run env GIT_CEILING_DIRECTORIES="$BATS_TEST_TMPDIR" make -s -C "$d" version
	assert_output --regexp '^[0-9]+\.[0-9]+\.[0-9]+-unknown$'
	echo "4.5.6-7-gabcdef0" >"$d/VERSION"
	run env GIT_CEILING_DIRECTORIES="$BATS_TEST_TMPDIR" make -s -C "$d" version
	assert_output "4.5.6-7-gabcdef0"
}

@test "release: make deb's fields: cni-c, the Debian form of the version, amd64, no Conflicts or Replaces" {
	[[ -s $DEB ]] || fail "no $DEB: $(ls "$REL/dist")"
	run dpkg-deb -f "$DEB" Package Version Architecture Section Maintainer
	assert_success
	assert_line "Package: cni-c"
	assert_line "Version: $DV"
	assert_line "Architecture: amd64"
	assert_line "Section: net"
	run dpkg-deb -I "$DEB"
	assert_success
	refute_output --regexp '(Conflicts|Replaces|Breaks|Provides):'
	# the binaries are static: no shared library, so the package depends on nothing
	local needed
	needed=$(for p in $PROGRAMS; do readelf -d "$REL/build/$p"; done | grep -c '(NEEDED)' || true)
	assert_equal "$needed" 0
	refute_output --partial "Depends:"
	# the version sorts like the upstream one: a later commit count is a later package
	dpkg --compare-versions "0.1.0+9.gaaaaaaa" lt "0.1.0+10.gbbbbbbb"
	dpkg --compare-versions "0.1.0" lt "0.1.0+1.gaaaaaaa"
}

@test "release: make deb installs under /opt/cni/bin, /usr/share/doc/cni-c, /usr/lib/tmpfiles.d and /usr/lib/systemd/system only" {
	local p
	run sh -c 'dpkg-deb -c "$1" | awk "{print \$6}"' sh "$DEB"
	assert_success
	for p in $PROGRAMS; do assert_line "./opt/cni/bin/$p"; done
	assert_line "./usr/share/doc/cni-c/copyright"
	assert_line "./usr/lib/tmpfiles.d/cni-c.conf"
	assert_line "./usr/lib/systemd/system/cni-c-reload.service"
	assert_line "./usr/lib/systemd/system/cni-c-agent.service"
	# nothing in Debian's containernetworking-plugins directory, nothing else
	run sh -c 'dpkg-deb -c "$1" | awk "{print \$6}" | grep -v -E "^\./(|opt/|opt/cni/|opt/cni/bin/.*|usr/|usr/lib/|usr/lib/tmpfiles\.d/.*|usr/lib/systemd/|usr/lib/systemd/system/|usr/lib/systemd/system/cni-c-(reload|agent)\.service|usr/share/|usr/share/doc/|usr/share/doc/cni-c/.*|usr/share/lintian/|usr/share/lintian/overrides/|usr/share/lintian/overrides/cni-c)$"' sh "$DEB"
	assert_output ""
	run sh -c 'dpkg-deb -c "$1" | awk "\$2 != \"root/root\""' sh "$DEB"
	assert_output ""
}

@test "release: the unpacked .deb runs: about line, cnitool --version, the tmpfiles entry makes /run/cni-c" {
	require systemd-tmpfiles
	local r=$BATS_TEST_TMPDIR/root
	dpkg-deb -x "$DEB" "$r"
	run env -i "$r/opt/cni/bin/bridge"
	assert_success
	assert_line --index 0 "CNI bridge plugin v$V (C CNI plugin suite)"
	run "$r/opt/cni/bin/cnitool" --version
	assert_output "cnitool v$V (C CNI plugin suite)"
	run "$r/opt/cni/bin/cni-c-agent" --version
	assert_line --index 0 "cni-c-agent v$V (C CNI plugin suite)"
	grep -q 'Apache-2.0' "$r/usr/share/doc/cni-c/copyright"
	grep -q 'musl' "$r/usr/share/doc/cni-c/copyright"
	# the tmpfiles entry against the unpacked root: the runtime directory, root-owned, 0755
	run systemd-tmpfiles --root="$r" --create cni-c.conf
	assert_success
	assert_equal "$(stat -c '%a %u %g' "$r/run/cni-c")" "755 0 0"
}

@test "release: the reload unit: systemd accepts it as it is, it runs the installed cnitool's reload after and with the firewall services" {
	require systemd-analyze
	local r=$BATS_TEST_TMPDIR/root u
	dpkg-deb -x "$DEB" "$r"
	u=$r/usr/lib/systemd/system/cni-c-reload.service
	grep -qx 'ExecStart=/opt/cni/bin/cnitool reload' "$u"
	grep -qx 'ExecReload=/opt/cni/bin/cnitool reload' "$u"
	for k in After PartOf ReloadPropagatedFrom; do
		grep -qx "$k=nftables.service netfilter-persistent.service firewalld.service" "$u" || fail "$k"
	done
	# verify against the unpacked binary (the host has nothing in /opt/cni/bin): no warning at all,
	# an unknown key would be one; and the binary it names knows the command
	mkdir -p "$BATS_TEST_TMPDIR/u"
	sed "s|/opt/cni/bin/|$r/opt/cni/bin/|" "$u" >"$BATS_TEST_TMPDIR/u/cni-c-reload.service"
	run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR/u/cni-c-reload.service"
	assert_success
	assert_output ""
	sed 's/^PartOf=/PartOff=/' "$u" >"$BATS_TEST_TMPDIR/u/cni-c-reload.service"
	run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR/u/cni-c-reload.service"
	assert_output --partial "Unknown key 'PartOff'"
	run "$r/opt/cni/bin/cnitool" --cache-dir "$BATS_TEST_TMPDIR/nocache" reload
	assert_success
	assert_output "0 reloaded, 0 skipped, 0 failed"
}

@test "release: the agent unit: systemd accepts it as it is; a simple service, always restarted, after the network is online" {
	require systemd-analyze
	local r=$BATS_TEST_TMPDIR/root u
	dpkg-deb -x "$DEB" "$r"
	u=$r/usr/lib/systemd/system/cni-c-agent.service
	grep -qx 'ExecStart=/opt/cni/bin/cni-c-agent -c /etc/cni-c/agent.json' "$u"
	grep -qx 'Type=simple' "$u"
	grep -qx 'Restart=always' "$u"
	grep -qx 'After=network-online.target' "$u"
	mkdir -p "$BATS_TEST_TMPDIR/u"
	sed "s|/opt/cni/bin/|$r/opt/cni/bin/|" "$u" >"$BATS_TEST_TMPDIR/u/cni-c-agent.service"
	run systemd-analyze verify --man=no "$BATS_TEST_TMPDIR/u/cni-c-agent.service"
	assert_success
	assert_output ""
}

@test "release: LICENSE is the Apache License 2.0 in full; NOTICE names the third-party code" {
	cmp "$ROOT/LICENSE" /usr/share/common-licenses/Apache-2.0
	run cat "$ROOT/NOTICE"
	assert_output --partial "cJSON"
	assert_output --partial "MIT"
	assert_output --partial "musl"
	refute_output --partial "glibc"
}
