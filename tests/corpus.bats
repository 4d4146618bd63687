#!/usr/bin/env bats
# The hostile-input corpus (tests/corpus/, format in tests/corpus/README.md): every case must fail
# with exit status 1, a CNI error JSON on stdout (its code, a msg matching the case's regex, a
# cniVersion), and leave nothing behind: the plugin runs inside a throw-away "host" namespace with
# a fixture (underlay veth ul0 10.200.250.1/24, default route), for a throw-away container
# namespace, with a dataDir of its own; afterwards the host and container namespaces must have the
# links they had before the plugin ran, the host no nftables table, the dataDir no file the case
# does not allow (never a reservation). All cases of one plugin run in one test; every failing case
# is reported by name. A case that shows an open bug is not parked anywhere: it fails its
# plugin's test until the bug is fixed.
#   CORPUS_FILTER=REGEX   only the cases whose path (e.g. bridge/012-mtu-too-big) matches
#   CORPUS_VERBOSE=1      print every case's code and message
#   CORPUS_SAMPLE=K[/S]   only every K-th case, starting at case S (the test command: one in three
#                         under valgrind, one in two under ASan, where a case takes a second; the
#                         release lane runs every case; S moves with each commit: all take turns)

setup() {
	load helpers/common
	load helpers/net
	T=$(tag)
	CORPUS=$BATS_TEST_DIRNAME/corpus
	# fixed files the placeholders point at
	NOTNS=$BATS_TEST_TMPDIR/not-a-netns
	printf 'not a namespace\n' >"$NOTNS"
	EMPTYDIR=$BATS_TEST_TMPDIR/empty-cni-path
	mkdir -p "$EMPTYDIR"
}

teardown() { net_teardown; }

# ---- the runner ----

# Kernel features some cases depend on (probed once per test, in a scratch namespace).
have_feature() {
	local ns=cf$$$RANDOM ok=1
	ip netns add "$ns" || return 2
	case $1 in
	bridge-vlan-filtering) ip -n "$ns" link add name p type bridge vlan_filtering 1 2>/dev/null || ok=0 ;;
	8021q)
		ip -n "$ns" link add pv type veth peer name pv2 &&
			{ ip -n "$ns" link add link pv name pv.7 type vlan id 7 2>/dev/null || ok=0; }
		;;
	*) ok=0 ;;
	esac
	ip netns del "$ns"
	[[ $ok == 1 ]]
}

# requirement_met REQ: "no-FEATURE" or "FEATURE"
requirement_met() {
	local r=$1 want=1
	if [[ $r == no-* ]]; then
		want=0
		r=${r#no-}
	fi
	local -n cache=FEAT_${r//-/_}
	if [[ -z ${cache:-} ]]; then
		if have_feature "$r"; then cache=1; else cache=0; fi
	fi
	[[ $cache == "$want" ]]
}

# subst STRING: the placeholders of a header value (stdin gets the same ones in make_stdin).
subst() {
	local s=$1
	s=${s//@DATA@/$DATA}
	s=${s//@NETNS@/\/var\/run\/netns\/$CNS}
	s=${s//@HOSTNS@/\/var\/run\/netns\/$HNS}
	s=${s//@FILE@/$NOTNS}
	s=${s//@MISSING@/$BATS_TEST_TMPDIR\/no\/such\/netns}
	s=${s//@EMPTYDIR@/$EMPTYDIR}
	s=${s//@PLUGINS@/$PLUGIN_DIR}
	s=${s//@SCRATCH@/$SCRATCH}
	printf '%s' "$s"
}

# make_stdin CASEFILE OUT: the bytes after the first "---" line, placeholders replaced, "repeat:"
# tokens expanded. Byte-exact (NUL, invalid UTF-8 and a missing final newline stay as they are).
# Also creates the case's empty $SCRATCH (one process less per case than a mkdir of its own).
make_stdin() {
	DATA=$DATA NETNS=/var/run/netns/$CNS HOSTNS=/var/run/netns/$HNS NOTNS=$NOTNS PLUGINS=$PLUGIN_DIR \
		MISSING=$BATS_TEST_TMPDIR/no/such/netns EMPTYDIR=$EMPTYDIR SCRATCH=$SCRATCH REPEATS=$(printf '%s\n' "${C_REPEAT[@]}") \
		perl -e '
		(my $parent = $ENV{SCRATCH}) =~ s|/[^/]+$||;
		mkdir $parent; mkdir $ENV{SCRATCH} or die "cannot create $ENV{SCRATCH}: $!\n";
		local $/; open(my $f, "<:raw", $ARGV[0]) or die; my $all = <$f>;
		$all =~ /\A.*?^---\n/ms or die "no --- line\n";
		my $body = substr($all, $+[0]);
		my %m = (DATA => $ENV{DATA}, NETNS => $ENV{NETNS}, HOSTNS => $ENV{HOSTNS}, FILE => $ENV{NOTNS},
			 MISSING => $ENV{MISSING}, EMPTYDIR => $ENV{EMPTYDIR}, PLUGINS => $ENV{PLUGINS},
			 SCRATCH => $ENV{SCRATCH});
		for (split /\n/, $ENV{REPEATS}) {
			my ($tok, $n, $txt) = /^(@[A-Z0-9_]+@) (\d+) (.+)$/ or die "bad repeat: $_\n";
			$tok =~ s/@//g;
			$m{$tok} = $txt x $n;
		}
		$body =~ s/@([A-Z0-9_]+)@/exists $m{$1} ? $m{$1} : "\@$1\@"/ge;
		open(my $o, ">:raw", $ARGV[1]) or die; print $o $body;' "$1" "$2"
}

# parse_case FILE: the header into C_* variables; returns 1 (with $C_ERR) when malformed.
parse_case() {
	C_PLUGIN='' C_VERB='' C_CODE='' C_MSG='' C_ERR=''
	C_ENV=() C_UNSET=() C_SETUP=() C_CSETUP=() C_LEAVES=() C_REPEAT=() C_REQ=()
	local line key val seen_sep=0
	while IFS= read -r line; do
		[[ $line == --- ]] && { seen_sep=1; break; }
		[[ -z $line || $line == '#'* ]] && continue
		key=${line%%:*}
		val=${line#*:}
		val=${val# }
		case $key in
		plugin) C_PLUGIN=$val ;;
		verb) C_VERB=$val ;;
		code) C_CODE=$val ;;
		msg) C_MSG=$val ;;
		env) C_ENV+=("$val") ;;
		unset) C_UNSET+=("$val") ;;
		setup) C_SETUP+=("$val") ;;
		container-setup) C_CSETUP+=("$val") ;;
		leaves) C_LEAVES+=("$val") ;;
		repeat) C_REPEAT+=("$val") ;;
		requires) C_REQ+=("$val") ;;
		*) C_ERR="unknown header key \"$key\""; return 1 ;;
		esac
	done <"$1"
	[[ $seen_sep == 1 ]] || { C_ERR='no "---" line before stdin'; return 1; }
	[[ -n $C_PLUGIN && -n $C_VERB && -n $C_MSG ]] || { C_ERR='needs plugin, verb, code and msg'; return 1; }
	[[ $C_CODE =~ ^[0-9]+$ ]] || { C_ERR="code \"$C_CODE\" is not a number"; return 1; }
	[[ -x $PLUGIN_DIR/$C_PLUGIN ]] || { C_ERR="no plugin $C_PLUGIN in $PLUGIN_DIR"; return 1; }
	return 0
}

# links_unsorted VAR LINES: the `ip -o link show` LINES as "name master" lines (a link's name, the
# word after its "master" if any), what a case must leave as it found, in the kernel's order and
# without a process: two snapshots with equal lines are equal sorted too; only snapshots that differ
# here are sorted and compared again (same_links).
links_unsorted() {
	local -n _out=$1
	local line name m i
	local -a w
	_out=''
	while IFS= read -r line; do
		[[ -n $line ]] || continue
		read -r -a w <<<"$line"
		if [[ $line =~ ^[0-9]+:\ ([^:@ ]+)(@[^:]*)?: ]]; then
			name=${BASH_REMATCH[1]}
			w=("$name" "${w[@]}")
		fi
		m=''
		for ((i = 1; i < ${#w[@]} - 1; i++)); do
			[[ ${w[i]} == master ]] && m=${w[i + 1]}
		done
		_out+="${w[0]} $m"$'\n'
	done <<<"$2"
}

# snapshot: what a case must leave as it found, in one process tree in the host namespace: the
# host's links, the container's links, the host's nftables tables ("nft list tables", errors
# included). Sets SNAP_HL and SNAP_CL ("name master" lines in the kernel's order, see
# links_unsorted) and SNAP_NFT.
snapshot() {
	# the parts are separated by a line "/" (every line of `ip -o link` starts with an index); with
	# a newline added at both ends, each part, even an empty one, sits between two such separators
	local raw rest sep=$'\n/\n'
	raw=$(ip netns exec "$HNS" sh -c 'ip -o link show; echo /; ip -n "$1" -o link show; echo /; nft list tables 2>&1' sh "$CNS")
	raw=$'\n'$raw$'\n'
	links_unsorted SNAP_HL "${raw%%"$sep"*}"
	rest=$'\n'${raw#*"$sep"}
	links_unsorted SNAP_CL "${rest%%"$sep"*}"
	rest=${rest#*"$sep"}
	# (what $(nft list tables) would give: its trailing newlines gone)
	SNAP_NFT=${rest%$'\n'}
}

# same_links BEFORE AFTER: the two snapshots hold the same "name master" lines (in any order);
# otherwise the lines that differ, in $LINKS_DIFF.
same_links() {
	[[ $1 == "$2" ]] && return 0
	local a b
	a=$(sort <<<"$1")
	b=$(sort <<<"$2")
	[[ $a == "$b" ]] && return 0
	LINKS_DIFF=$(diff <(echo "$a") <(echo "$b") | grep '^[<>]' | tr '\n' ' ')
	return 1
}

# leftovers: files under $DATA that no "leaves:" regex (on the path relative to $DATA) allows,
# and every reservation file (named by an address) or attachment index entry whatever the case says.
leftovers() {
	[[ -d $DATA ]] || return 0
	local rel ok re
	if [[ ${#C_LEAVES[@]} == 0 ]]; then
		find "$DATA" -mindepth 1 -printf '%P\n' | sed 's/^/not allowed: /'
		return 0
	fi
	while IFS= read -r rel; do
		ok=0
		for re in "${C_LEAVES[@]}"; do
			[[ $rel =~ ^($re)$ ]] && ok=1
		done
		local base=${rel##*/}
		# host-local's record of the boot the store was last used in: beside its lock, always
		[[ $base == .cni-c-boot-id && " ${C_LEAVES[*]}" == *"${rel%/*}/lock"* ]] && continue
		[[ $base =~ ^[0-9.]+$ || $base =~ ^[0-9a-fA-F:]*:[0-9a-fA-F:.]*$ || $rel == */own/* ]] && ok=0
		[[ $ok == 1 ]] || echo "not allowed: $rel"
	done < <(find "$DATA" -mindepth 1 ! -type d -printf '%P\n')
}

# fresh_namespaces: a new host namespace with the fixture (an underlay / master ul0 with an
# address and the default route) and a new container namespace: $HNS, $CNS.
fresh_namespaces() {
	NS_GEN=$((${NS_GEN:-0} + 1))
	HNS=ch$T-$NS_GEN
	CNS=cc$T-$NS_GEN
	mkns "$HNS" && mkns "$CNS" || return 1
	ip -n "$HNS" -batch - <<-EOF
		link add ul0 type veth peer name ul0p
		link set ul0p up
		link set ul0 up
		addr add 10.200.250.1/24 dev ul0
		route add default via 10.200.250.254 dev ul0
	EOF
}

# run_case FILE: 0 when the case holds; otherwise its problems in $CASE_FAIL.
run_case() {
	local file=$1 out err rc code msg
	CASE_FAIL=''
	if ! parse_case "$file"; then
		CASE_FAIL="malformed case: $C_ERR"
		return 1
	fi
	local r
	for r in "${C_REQ[@]}"; do
		if ! requirement_met "$r"; then
			CASE_SKIP="requires $r"
			return 0
		fi
	done
	CASE_N=$((CASE_N + 1))
	DATA=$BATS_TEST_TMPDIR/data/$CASE_N
	SCRATCH=$BATS_TEST_TMPDIR/scratch/$CASE_N
	# Namespaces are reused from case to case while every case leaves them as it found them;
	# a case with its own setup, or one that failed, gets fresh ones.
	if [[ -z ${HNS:-} || ${#C_SETUP[@]} -gt 0 || ${#C_CSETUP[@]} -gt 0 ]]; then
		net_teardown
		fresh_namespaces || { CASE_FAIL="cannot create the namespaces and fixture"; return 1; }
	fi
	# stdin (with the namespaces' names), and the empty $SCRATCH the setup lines may use
	local in=$BATS_TEST_TMPDIR/stdin.$CASE_N
	make_stdin "$file" "$in" || { CASE_FAIL="cannot build stdin"; return 1; }
	local cmd
	for cmd in "${C_SETUP[@]}"; do
		ip netns exec "$HNS" sh -c "$(subst "$cmd")" >/dev/null 2>&1 || { CASE_FAIL="setup failed: $cmd"; return 1; }
	done
	for cmd in "${C_CSETUP[@]}"; do
		ip netns exec "$CNS" sh -c "$(subst "$cmd")" >/dev/null 2>&1 || { CASE_FAIL="container-setup failed: $cmd"; return 1; }
	done
	# the state before the plugin runs: namespaces reused from the case before (which held, so
	# they are as that case's last snapshot saw them: nothing ran in them since) are not listed again
	local hl0 cl0 nft0
	if [[ -z ${SNAP_NS:-} || $SNAP_NS != "$HNS $CNS" || ${#C_SETUP[@]} -gt 0 || ${#C_CSETUP[@]} -gt 0 ]]; then
		snapshot
	fi
	hl0=$SNAP_HL cl0=$SNAP_CL nft0=$SNAP_NFT
	SNAP_NS=''

	# the environment: a runtime's, then the case's changes
	local -A envs=([CNI_COMMAND]=$C_VERB [CNI_CONTAINERID]=corpus-ctr [CNI_IFNAME]=eth0
		[CNI_NETNS]=/var/run/netns/$CNS [CNI_PATH]=$PLUGIN_DIR)
	local kv
	for kv in "${C_ENV[@]}"; do
		envs[${kv%%=*}]=$(subst "${kv#*=}")
	done
	for kv in "${C_UNSET[@]}"; do
		unset "envs[$kv]"
	done
	local -a envl=(PATH="$PATH" ASAN_OPTIONS="$ASAN_OPTIONS" UBSAN_OPTIONS="$UBSAN_OPTIONS")
	for kv in "${!envs[@]}"; do
		envl+=("$kv=${envs[$kv]}")
	done
	out=$BATS_TEST_TMPDIR/out.$CASE_N
	err=$BATS_TEST_TMPDIR/err.$CASE_N
	local limit=${CORPUS_TIMEOUT:-10} # seconds per case; the valgrind lane needs more
	ip netns exec "$HNS" env -i "${envl[@]}" timeout "$limit" "$PLUGIN_DIR/$C_PLUGIN" <"$in" >"$out" 2>"$err"
	rc=$?

	local -a fails=()
	if [[ $rc == 86 ]]; then
		fails+=("sanitizer error: $(head -c 3000 "$err")")
	elif [[ $rc == 124 ]]; then
		fails+=("hung: killed after $limit s")
	elif [[ $rc != 1 ]]; then
		fails+=("exit status $rc, want 1")
	fi
	local parsed
	if [[ ! -s $out ]] || ! parsed=$(jq -r 'if type == "object" then "\(.code)\n\(.cniVersion | type == "string")\n\(.msg)"
		else error("not an object") end' "$out" 2>/dev/null); then
		fails+=("stdout is not a JSON object: $(head -c 500 "$out")")
	else
		code=${parsed%%$'\n'*}
		parsed=${parsed#*$'\n'}
		local hasver=${parsed%%$'\n'*}
		msg=${parsed#*$'\n'}
		[[ $code == "$C_CODE" ]] || fails+=("code $code, want $C_CODE (msg: $msg)")
		[[ $msg =~ $C_MSG ]] || fails+=("msg \"$msg\" does not match /$C_MSG/")
		[[ $hasver == true ]] || fails+=("no cniVersion string in $(tr -d '\n\t' <"$out")")
		[[ -z ${CORPUS_VERBOSE:-} ]] || echo "# ${file#"$CORPUS"/}: $code $msg" >&3
	fi
	local now
	snapshot
	same_links "$hl0" "$SNAP_HL" || fails+=("host links changed: $LINKS_DIFF")
	same_links "$cl0" "$SNAP_CL" || fails+=("container links changed: $LINKS_DIFF")
	[[ $SNAP_NFT == "$nft0" ]] || fails+=("nftables tables left: $SNAP_NFT")
	now=$(leftovers)
	[[ -z $now ]] || fails+=("left in dataDir: $(tr '\n' ' ' <<<"$now")")
	# (an rm only where there is a dataDir; $SCRATCH, like stdin and the outputs, stays in the
	# test's temporary directory, which bats removes)
	if [[ -e $DATA ]]; then rm -rf "$DATA"; fi
	# namespaces with a case's own fixture, or changed by a failing case, are not reused
	if [[ ${#fails[@]} -gt 0 || ${#C_SETUP[@]} -gt 0 || ${#C_CSETUP[@]} -gt 0 ]]; then
		net_teardown
		HNS=''
	else
		# the snapshot just taken is the next case's "before"
		SNAP_NS="$HNS $CNS"
	fi
	if [[ ${#fails[@]} -gt 0 ]]; then
		local IFS=$'\n'
		CASE_FAIL="${fails[*]}"
		return 1
	fi
	return 0
}

# run_dir DIR: every case under tests/corpus/DIR; all failures reported, by case name.
run_dir() {
	trap - DEBUG # bats traces every command otherwise (~4x slower)
	local dir=$CORPUS/$1 f name nfail=0 nrun=0 nskip=0 idx=-1 every=1 from=0 sampled=0
	local -a report=()
	if [[ -n ${CORPUS_SAMPLE:-} ]]; then
		every=${CORPUS_SAMPLE%%/*}
		[[ $CORPUS_SAMPLE == */* ]] && from=${CORPUS_SAMPLE#*/}
		[[ $every =~ ^[1-9][0-9]*$ && $from =~ ^[0-9]+$ ]] || fail "CORPUS_SAMPLE=$CORPUS_SAMPLE: want K or K/S"
	fi
	CASE_N=0
	HNS='' SNAP_NS=''
	[[ -d $dir ]] || fail "no directory $dir"
	for f in "$dir"/*.case; do
		[[ -e $f ]] || continue
		name=${f#"$CORPUS"/}
		name=${name%.case}
		[[ -z ${CORPUS_FILTER:-} || $name =~ $CORPUS_FILTER ]] || continue
		idx=$((idx + 1))
		if (((idx + every - from % every) % every != 0)); then
			sampled=$((sampled + 1))
			continue
		fi
		CASE_SKIP=''
		if run_case "$f"; then
			if [[ -n $CASE_SKIP ]]; then
				nskip=$((nskip + 1))
				echo "# skipped $name: $CASE_SKIP" >&3
			else
				nrun=$((nrun + 1))
			fi
		else
			nfail=$((nfail + 1))
			report+=("$name:" "$(sed 's/^/    /' <<<"$CASE_FAIL")")
			net_teardown
			HNS=''
		fi
		if [[ -z $CASE_SKIP && -n $C_PLUGIN && $C_PLUGIN != "$1" ]]; then
			nfail=$((nfail + 1))
			report+=("$name:" "    says plugin: $C_PLUGIN but lives in $1/")
		fi
	done
	echo "# $1: $nrun cases held, $nfail failed, $nskip skipped${CORPUS_SAMPLE:+, $sampled left out (CORPUS_SAMPLE=$CORPUS_SAMPLE)}" >&3
	if [[ $nfail -gt 0 ]]; then
		printf '%s\n' "${report[@]}"
		fail "$nfail of $((nrun + nfail)) $1 cases failed (listed above)"
	fi
}

@test "corpus: host-local" {
	run_dir host-local
}

@test "corpus: bridge" {
	run_dir bridge
}

@test "corpus: vxlan" {
	run_dir vxlan
}

@test "corpus: vlan" {
	run_dir vlan
}

@test "corpus: portmap" {
	run_dir portmap
}

@test "corpus: floating-ip" {
	run_dir floating-ip
}

@test "corpus: bandwidth" {
	run_dir bandwidth
}

@test "corpus: loopback" {
	run_dir loopback
}

@test "corpus: tap" {
	run_dir tap
}

@test "corpus: at least 80 well-formed cases, each expected code one the suite uses; no directory no test runs" {
	local f d n=0 bad=()
	# a case outside the directories the tests above run would never run
	for d in "$CORPUS"/*/; do
		d=${d%/}
		d=${d##*/}
		grep -qx "	run_dir $d" "$BATS_TEST_FILENAME" || bad+=("$d/: no test runs the cases in this directory")
	done
	for f in "$CORPUS"/*/*.case; do
		n=$((n + 1))
		parse_case "$f" || { bad+=("${f#"$CORPUS"/}: $C_ERR"); continue; }
		[[ " 1 2 4 5 6 7 8 11 50 101 102 103 104 105 106 " == *" $C_CODE "* ]] || bad+=("${f#"$CORPUS"/}: code $C_CODE")
		grep -q '^#' "$f" || bad+=("${f#"$CORPUS"/}: no comment line saying what the case is")
	done
	[[ ${#bad[@]} == 0 ]] || { printf '%s\n' "${bad[@]}"; false; }
	[[ $n -ge 80 ]] || fail "only $n cases"
}
