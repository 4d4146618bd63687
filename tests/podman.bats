#!/usr/bin/env bats
# podman 4.3 (Debian) with its CNI backend pointed at our plugins, run inside a throw-away
# network namespace that plays the host: podman network create, two containers from a local
# busybox image ping each other and the gateway, -p 18080:80 reaches a busybox httpd from the
# host, podman rm releases the address. The conflist podman generates is printed in the log.

setup_file() {
	command -v podman >/dev/null || return 0 # setup's require then fails every test
	export IMG_TAR=$BATS_FILE_TMPDIR/bb.tar
	local r=$BATS_FILE_TMPDIR/rootfs
	mkdir -p "$r/bin"
	cp /bin/busybox "$r/bin/" 2>/dev/null || return 0
	for a in sh ping httpd wget ip cat sleep mkdir echo; do ln -sf busybox "$r/bin/$a"; done
	tar -C "$r" -cf "$IMG_TAR" .
}

setup() {
	load helpers/common
	load helpers/net
	require podman /bin/busybox # busybox-static: the image is made from it
	T=$(tag)
	PODNS=p$T
	NET=cn$T
	W=$BATS_TEST_TMPDIR/podman
	mkdir -p "$W/net" "$W/root" "$W/run" "$W/tmp"
	cat >"$W/containers.conf" <<-CONF
		[network]
		network_backend = "cni"
		cni_plugin_dirs = ["$PLUGIN_DIR", "/usr/lib/cni"]
		network_config_dir = "$W/net"
		[engine]
		cgroup_manager = "cgroupfs"
		events_logger = "file"
		runtime = "runc"
	CONF
	mkns "$PODNS"
	P import "$IMG_TAR" localhost/bb:latest >/dev/null
}

teardown() {
	if [[ -n ${W:-} && -d $W ]]; then
		P rm -af -t 0 >/dev/null 2>&1
		P network rm -f "$NET" >/dev/null 2>&1
		P system reset -f >/dev/null 2>&1
		rm -rf "/var/lib/cni/networks/$NET"
	fi
	net_teardown
}

# podman as root, inside the host namespace, with its own storage and config
P() {
	# nsenter, not ip netns exec: that one remounts /sys, which hides /sys/fs/cgroup from crun
	nsenter --net=/var/run/netns/"$PODNS" env CONTAINERS_CONF="$W/containers.conf" podman --root "$W/root" --runroot "$W/run" \
		--tmpdir "$W/tmp" --storage-driver vfs "$@"
}

# get ADDR: HTTP GET of port 18080 from the host namespace (bash's /dev/tcp: Debian's static
# busybox wget crashes outside a container)
get() {
	timeout 5 ip netns exec "$PODNS" bash -c 'exec 3<>"/dev/tcp/$0/18080" && printf "GET / HTTP/1.0\r\n\r\n" >&3 && cat <&3' "$1" 2>/dev/null
}

ip_of() { P inspect -f '{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}' "$1"; }

@test "podman (CNI backend) on our plugins: network create, ping, port mapping, rm releases the address" {
	run P network create --subnet 10.200.224.0/24 "$NET"
	assert_success
	echo "# the conflist podman generated:" >&3
	{ sed 's/^/#   /' "$W/net/$NET.conflist"; echo; } >&3
	jq -e '.plugins[0].type == "bridge" and (.plugins | map(.type) | index("portmap"))' "$W/net/$NET.conflist" >/dev/null
	run P run -d --ulimit nofile=1024:4096 --ulimit nproc=1024:2048 --name a$T --network "$NET" localhost/bb sleep 600
	assert_success
	run P run -d --ulimit nofile=1024:4096 --ulimit nproc=1024:2048 --name b$T --network "$NET" localhost/bb sleep 600
	assert_success
	local a b
	a=$(ip_of a$T)
	b=$(ip_of b$T)
	[[ $a == 10.200.224.* && $b == 10.200.224.* && $a != "$b" ]]
	P exec a$T ping -c 1 -W 2 "$b"
	P exec b$T ping -c 1 -W 2 10.200.224.1
	# the plugins ran in our namespace: its bridge, our veths
	ip -n "$PODNS" -o link show type bridge | grep -q cni-podman
	run P run -d --ulimit nofile=1024:4096 --ulimit nproc=1024:2048 --name w$T --network "$NET" -p 18080:80 localhost/bb sh -c \
		'mkdir -p /www && echo hello-from-podman >/www/index.html && exec httpd -f -p 80 -h /www'
	assert_success
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		get 10.200.224.1 | grep -q hello-from-podman && break
		sleep 0.5
	done
	run get 10.200.224.1
	assert_output --partial hello-from-podman
	run get 127.0.0.1
	assert_output --partial hello-from-podman
	# rm releases the addresses
	ls "/var/lib/cni/networks/$NET" | grep -q "^$a\$"
	run P rm -f -t 0 a$T b$T w$T
	assert_success
	run ls "/var/lib/cni/networks/$NET"
	refute_output --partial 10.200.224.
	assert_equal "$(ip -n "$PODNS" -o link show type veth | wc -l)" 0
}

@test "podman: after nft flush ruleset, cnitool reload over podman's own result cache brings the port mapping back" {
	run P network create --subnet 10.200.226.0/24 "$NET"
	assert_success
	run P run -d --ulimit nofile=1024:4096 --ulimit nproc=1024:2048 --name w$T --network "$NET" -p 18080:80 localhost/bb sh -c \
		'mkdir -p /www && echo hello-from-podman >/www/index.html && exec httpd -f -p 80 -h /www'
	assert_success
	local i f
	for i in 1 2 3 4 5 6 7 8 9 10; do
		get 10.200.226.1 | grep -q hello-from-podman && break
		sleep 0.5
	done
	run get 10.200.226.1
	assert_output --partial hello-from-podman
	# podman (libcni) cached the attachment where cnitool reload looks by default
	f=$(ls /var/lib/cni/results/"$NET"-* 2>/dev/null | head -1)
	[[ -n $f ]] || fail "no cache entry of $NET in /var/lib/cni/results: $(ls /var/lib/cni/results)"
	echo "# podman's cache entry: $(jq -c 'del(.config) | .result |= {interfaces}' "$f")" >&3
	ip netns exec "$PODNS" nft flush ruleset
	run get 10.200.226.1
	refute_output --partial hello-from-podman
	run ip netns exec "$PODNS" env CNI_PATH="$PLUGIN_DIR:/usr/lib/cni" "$PLUGIN_DIR/cnitool" reload "$NET"
	echo "# $output" >&3
	assert_success
	assert_line --regexp "^$NET [0-9a-f]{64} eth0: reloaded"
	assert_line "1 reloaded, 0 skipped, 0 failed"
	run get 10.200.226.1
	assert_output --partial hello-from-podman
}
