#!/usr/bin/env bats
# containerd 1.6 (Debian): `ctr run --cni` with a locally imported busybox image, our plugins as the
# CNI plugins. ctr reads the fixed paths /opt/cni/bin and /etc/cni/net.d, so each ctr runs in a
# private mount namespace where those are bind mounts of this test's directories, and inside a
# throw-away network namespace playing the host.

setup() {
	load helpers/common
	load helpers/net
	require containerd ctr runc podman /bin/busybox
	T=$(tag)
	HOSTNS=cd$T
	W=$BATS_TEST_TMPDIR/cd
	mkdir -p "$W"/{root,state,bin,net,img/rootfs/bin,proot,prun}
	cp "$PLUGIN_DIR"/{bridge,host-local,loopback} "$W/bin/"
	printf '{"cniVersion":"1.0.0","name":"cd%s","plugins":[{"type":"bridge","bridge":"cdbr0","isGateway":true,"ipam":{"type":"host-local","dataDir":"%s/ipam","ranges":[[{"subnet":"10.200.228.0/24"}]]}}]}' \
		"$T" "$W" >"$W/net/10-test.conflist"
	cat >"$W/config.toml" <<-EOF
		version = 2
		root = "$W/root"
		state = "$W/state"
		[grpc]
		  address = "$W/containerd.sock"
		[plugins."io.containerd.grpc.v1.cri"]
		  disable = true
	EOF
	containerd --config "$W/config.toml" >"$W/containerd.log" 2>&1 &
	echo $! >"$W/pid"
	local i
	for i in $(seq 1 50); do [ -S "$W/containerd.sock" ] && break; sleep 0.1; done
	# the image: busybox-static as one layer, made into an OCI archive by podman
	cp /bin/busybox "$W/img/rootfs/bin/"
	for a in sh ping ip sleep; do ln -sf busybox "$W/img/rootfs/bin/$a"; done
	tar -C "$W/img/rootfs" -cf "$W/img/layer.tar" .
	podman --root "$W/proot" --runroot "$W/prun" --storage-driver vfs import "$W/img/layer.tar" localhost/bb:latest >/dev/null
	podman --root "$W/proot" --runroot "$W/prun" --storage-driver vfs save --format oci-archive -o "$W/img/bb.tar" localhost/bb:latest 2>/dev/null
	ctr -a "$W/containerd.sock" -n cni-c images import "$W/img/bb.tar" >/dev/null
	mkns "$HOSTNS"
	# mount points for the bind mounts (created only if absent, removed in teardown)
	MADE=()
	for d in /opt/cni/bin /etc/cni/net.d; do
		[ -d "$d" ] || { mkdir -p "$d" && MADE+=("$d"); }
	done
}

teardown() {
	[[ -n ${W:-} ]] || return 0
	local id
	for id in $(timeout 10 ctr -a "$W/containerd.sock" -n cni-c tasks ls -q 2>/dev/null); do
		timeout 10 ctr -a "$W/containerd.sock" -n cni-c tasks kill -s 9 "$id" >/dev/null 2>&1
	done
	local pid i
	pid=$(cat "$W/pid" 2>/dev/null)
	# the tasks gone (10 s at most), then containerd and this test's shims (another run may use
	# the same containerd namespace name), each waited for
	for ((i = 0; i < 100; i++)); do
		[[ -z $(timeout 10 ctr -a "$W/containerd.sock" -n cni-c tasks ls -q 2>/dev/null) ]] && break
		sleep 0.1
	done
	[[ -n $pid ]] && kill "$pid" 2>/dev/null
	pkill -f "containerd-shim-runc-v2 -namespace cni-c .*-address $W/containerd.sock" 2>/dev/null
	for ((i = 0; i < 100; i++)); do
		{ [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; } || pgrep -f "containerd-shim-runc-v2 -namespace cni-c .*-address $W/containerd.sock" >/dev/null || break
		sleep 0.1
	done
	umount -R "$W/root" 2>/dev/null
	podman --root "$W/proot" --runroot "$W/prun" --storage-driver vfs system reset -f >/dev/null 2>&1
	for d in "${MADE[@]}"; do rmdir "$d" 2>/dev/null; done
	rmdir /opt/cni 2>/dev/null || true
	net_teardown
}

# ctr as a runtime would call it, with /opt/cni/bin and /etc/cni/net.d pointing at ours
C() {
	unshare -m --propagation private sh -c '
		w=$1 ns=$2
		shift 2
		mount --bind "$w/bin" /opt/cni/bin && mount --bind "$w/net" /etc/cni/net.d &&
			exec ip netns exec "$ns" ctr -a "$w/containerd.sock" -n cni-c "$@"' sh "$W" "$HOSTNS" "$@"
}

@test "ctr run --cni: the container gets an address from our bridge and host-local, lo is up, rm releases it" {
	run C run --rm --cni localhost/bb:latest a$T sh -c 'ip -4 -o addr show; ping -c 1 -W 2 10.200.228.1'
	assert_success
	assert_output --partial 'eth0    inet 10.200.228.2/24'
	assert_output --partial 'lo    inet 127.0.0.1/8'
	assert_output --partial '1 packets received'
	# --rm ran CNI DEL: the reservation and the veth are gone
	[ -z "$(ls "$W/ipam/cd$T" | grep '^10\.')" ]
	assert_equal "$(ip -n "$HOSTNS" -o link show type veth | wc -l)" 0
}

@test "ctr run --cni: two containers on the bridge ping each other" {
	C run --rm --cni localhost/bb:latest a$T sleep 8 >/dev/null 2>&1 &
	local bg=$! i
	for i in $(seq 1 40); do ls "$W/ipam/cd$T" 2>/dev/null | grep -q '^10\.200\.228\.2$' && break; sleep 0.2; done
	run C run --rm --cni localhost/bb:latest b$T ping -c 1 -W 2 10.200.228.2
	assert_success
	assert_output --partial '1 packets received'
	wait "$bg" # not a bare wait: containerd itself is a background job of this shell
}
