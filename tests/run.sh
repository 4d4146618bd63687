#!/usr/bin/env bash
# The test command: builds each lane once, then runs the C unit tests and every bats suite of every
# lane as concurrent jobs, each bats file in a network namespace of its own (`unshare -n`: links,
# routes, sysctls and nf_tables tables of one suite never meet another's), prints each job's TAP
# output as it ends, the wall time of every job and lane, then one line
# "N passed, N failed, N skipped"; exits non-zero on any failure.
#
#   MODE=check          the developer loop (`make check`): the release lane only, without the slow
#                       suites (runtimes, stress); at most a few minutes
#   LANES="release asan valgrind vm mutate"  which lanes (default all): release build, ASan+UBSan
#                       test build, valgrind memcheck over the release binaries (a subset of the
#                       suites), the VM lane (tests/vm/: kernel features the host lacks), and the
#                       mutation check (tests/mutate.sh: make check must catch every mutant)
#   SUITES="spec host-local"  which bats files (default all in tests/)
#   JOBS=N              jobs at once (default 4: most tests wait on the kernel, not the CPU)
#   SUITE_TIMEOUT=S     a job still running after S seconds is stopped and fails (default 1200)
#   TEST_OUT=DIR        where each job's output is kept (default build/test-out)
#   FAIL_FAST=1         stop at the first failing job (the other jobs are interrupted, their
#                       teardowns run); FIRST="suite ..." schedules those suites first
#                       (tests/mutate.sh uses both)
#
# Counting: a test skipped counts as skipped, never as passed; a skip whose reason says a tool or
# binary is missing counts as failed (the install step provides every tool); a bats run that exits
# non-zero, dies before its plan is complete, or times out counts as failed even when no test
# reported "not ok".
set -uo pipefail
cd "$(dirname "$0")/.."
# the whole script is one block, read before it runs: editing this file during a run is safe
{
MODE=${MODE:-full}
if [[ $MODE == check ]]; then
	LANES=${LANES:-release}
	# the slow parts stay in the full run: real runtimes, the storm and kill loops, the etcd cluster
	EXCLUDE=${EXCLUDE:-podman containerd stress cluster}
else
	LANES=${LANES:-release asan valgrind vm mutate}
	EXCLUDE=${EXCLUDE:-}
fi
JOBS=${JOBS:-4}
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1200}
OUT=${TEST_OUT:-build/test-out}
mapfile -t SUITES < <(if [[ -n ${SUITES:-} ]]; then printf '%s\n' $SUITES; else ls tests/*.bats | sed 's|^tests/||; s|\.bats$||'; fi)
for x in $EXCLUDE; do
	for i in "${!SUITES[@]}"; do [[ ${SUITES[$i]} == "$x" ]] && unset 'SUITES[i]'; done
done
SUITES=("${SUITES[@]}")

# The VM lane's suites (802.1Q and bridge VLAN filtering); "test/" runs against the test build.
# Only the tests that need those features: spec.bats' other 0.3.0 test (every other plugin) runs
# on this host in the other lanes. (No spaces or backslashes in a filter: '.' stands for either.)
# Guests separated by ';': each boots a guest of its own, as a job of its own, so that the lane's
# suites run side by side (each guest prints how long each suite took).
VM_SUITES=${VM_SUITES:-vm/vlan.bats bridge.bats:vlan;corpus.bats:vlan libcni.bats:vlan spec.bats:^0.3.0.results.from.vlan test/faults.bats:vlan}
# valgrind is slow (~0.5 s per exec): the suites and tests it runs (bats -f regex); the plugin
# suites whole (tests that count syscalls skip themselves), masq without its timing-bound traffic
# tests, cnitool without the tests whose subject is the reference plugins or the Go cnitool (the
# same cnitool code runs under memcheck in the others), and the hostile-input corpus (every case a plugin exec, split so that the parts run side
# by side: five parts, host-local+loopback, bridge, vxlan+portmap+floating-ip+bandwidth, vlan, tap;
# one case in three, see below);
# stress, faults (test builds only) and the runtime suites only in the other lanes (entries
# separated by ';'). bridge, vxlan and tap run with host-local unwrapped in CNI_PATH, so their IPAM runs
# in-process (the production path) under memcheck.
VG_SUITES=${VG_SUITES:-spec.bats:;host-local.bats:;host-local-store.bats:^(ENOSPC|EROFS|a reservation|a container|a /22);bridge.bats:;vxlan.bats:;masq.bats:^(del|check|gc|nft|iptables|available|valgrind);portmap.bats:;floating-ip.bats:;bandwidth.bats:^(the|runtimeConfig|CHECK|DEL|a failed|bad|GC|STATUS);loopback.bats:;cnitool.bats:^(add, check, del|dual-stack|the cache|container ID|CHECK passes|DEL runs|a plugin|CAP_ARGS|cniVersions|.conf and|plugins from|gc|status|errors);reload.bats:;corpus.bats:^corpus: (host-local|loopback)$;corpus.bats:^corpus: bridge$;corpus.bats:^corpus: (vxlan|portmap|floating-ip|bandwidth)$;corpus.bats:^corpus: vlan$;tap.bats:;corpus.bats:^corpus: tap$}
VG_INPROC=${VG_INPROC:-bridge.bats vxlan.bats tap.bats}
# tests/cluster.bats (etcd, cni-c-agent) runs in the release and asan lanes like every suite, never
# under valgrind: its subject is timing (a node joins within 2 s, leaves within leaseTTL + 1 s)

# The sanitizer lanes run a rotating share of each suite's tests: under ASan one test in
# ASAN_SAMPLE (default 4), under valgrind one in VG_SAMPLE (default 6), the share moving with each
# commit (commit count modulo the sample), so that consecutive commits cover every test under each
# tool; the release lane runs every test. The corpus samples its cases instead (CORPUS_SAMPLE: as
# many shares; the VM lane's vlan cases one in two, the host lanes run them all up to the kernel's
# refusal). SAMPLE=1 runs every test in every lane, as before a release (about twice as long).
# On 2 cores the whole run is bound by the CPU: these shares are what keeps it inside 30 minutes.
if [[ ${SAMPLE:-} == 1 ]]; then ASAN_SAMPLE=1 VG_SAMPLE=1 ASAN_CORPUS_SAMPLE=1/0 VG_CORPUS_SAMPLE=1/0 VM_CORPUS_SAMPLE=1/0 MUTATE_SAMPLE=1; fi
# the mutation check: one mutant in two (tests/mutate.sh), moving with each commit too
MUTATE_SAMPLE=${MUTATE_SAMPLE:-2}
ASAN_SAMPLE=${ASAN_SAMPLE:-4}
VG_SAMPLE=${VG_SAMPLE:-6}
COMMITS=$(git rev-list --count HEAD 2>/dev/null || echo 0)
# sample_filter SUITE.bats FILTER K: a bats -f regex naming the suite's tests, of those whose names
# match FILTER (every test when empty), at the places S, S+K, S+2K... (S = COMMITS modulo K);
# empty when this commit's share has no test (the suite has fewer than K)
sample_filter() {
	local file=tests/$1 flt=$2 k=$3 line name re='' i=0 s=$((COMMITS % $3))
	while IFS= read -r line; do
		name=${line#@test }
		name=${name% \{}
		# the name as bats' filter sees it: the quotes gone, a \" inside left as it is
		name=${name#[\'\"]}
		name=${name%[\'\"]}
		[[ -z $flt || $name =~ $flt ]] || continue
		if ((i % k == s)); then
			re+=${re:+|}$(sed 's/[][\\^$.|?*+(){}]/\\&/g' <<<"$name")
		fi
		i=$((i + 1))
	done < <(grep -E '^@test ' "$file")
	[[ -n $re ]] && printf '^(%s)$' "$re"
}

passed=0 failed=0 skipped=0
rm -rf "$OUT" && mkdir -p "$OUT"
T0=$(date +%s.%N)

# ---- builds: each lane's binaries once, before any job starts ----
build_failed=()
mk() { # LABEL make-args...
	local label=$1
	shift
	echo "# build: $label"
	make -s -j2 "$@" >"$OUT/build-$label.log" 2>&1 || { cat "$OUT/build-$label.log"; build_failed+=("$label"); return 1; }
}
have_lane() { [[ " $LANES " == *" $1 "* ]]; }
if have_lane release || have_lane valgrind || have_lane vm; then
	mk release BUILD=build all test-tools build/unit-tests
	# the fault points (faults.bats, the capability probe) need a test build
	mk test TESTING=1 BUILD=build-test all test-tools
fi
have_lane asan && mk asan SAN=1 BUILD=build-asan all test-tools build-asan/unit-tests
# memcheck needs dynamically linked binaries (it replaces malloc through the loader): the release
# code and flags, linked dynamically
have_lane valgrind && mk valgrind STATIC=0 BUILD=build-dyn all test-tools

# ---- jobs ----
# one line a job: LANE NAME PLUGIN_DIR SUITE FILTER ENV, separated by ASCII US (ENV: VAR=value ...)
US=$'\x1f'
jobs_list=()
addjob() { jobs_list+=("$1$US$2$US$3$US$4$US${5:-}$US${6:-}"); }
lane_ok() { [[ " ${build_failed[*]} " != *" $1 "* ]]; }
for lane in $LANES; do
	case $lane in
	release | asan)
		build=build
		[[ $lane == asan ]] && build=build-asan
		lane_ok "$lane" || { echo "not ok - lane $lane: build failed" >"$OUT/lanefail-$lane"; continue; }
		addjob "$lane" unit "$build" unit
		if [[ $lane == release ]]; then addjob "$lane" lint "$build" lint; fi
		for s in "${SUITES[@]}"; do
			d=$build
			# fault injection needs the fault points: the release lane runs it on the test build
			[[ $lane == release && $s == faults ]] && d=build-test
			# the corpus under ASan: one case in ASAN_SAMPLE, the share moving with each commit (the
			# release lane runs every case; under ASan a case takes a second, not milliseconds)
			local_env= flt=
			[[ $lane == asan && $s == corpus ]] && local_env="CORPUS_SAMPLE=${ASAN_CORPUS_SAMPLE:-$ASAN_SAMPLE/$((COMMITS % ASAN_SAMPLE))}"
			# packaging and the release build's hardening flags: no code of ours runs under ASan there
			[[ $lane == asan && ($s == release || $s == hardening) ]] && continue
			# timing bounds (the cluster's join and death times) are the release build's promises
			[[ $lane == asan && $s == cluster ]] && local_env="TIMING_SLACK=2"
			if [[ $lane == asan && $s != corpus && $ASAN_SAMPLE -gt 1 ]]; then
				flt=$(sample_filter "$s.bats" "" "$ASAN_SAMPLE") || continue
			fi
			addjob "$lane" "$s${flt:+ (share $((COMMITS % ASAN_SAMPLE + 1)) of $ASAN_SAMPLE)}" "$d" "$s.bats" "$flt" "$local_env"
		done
		;;
	valgrind)
		if ! command -v valgrind >/dev/null || ! lane_ok valgrind; then
			echo "not ok - lane valgrind: valgrind is not installed or the dynamic build failed" >"$OUT/lanefail-$lane"
			continue
		fi
		vg=build-valgrind
		rm -rf "$vg" "$vg-inproc" && mkdir -p "$vg/test-tools" "$vg/logs"
		for f in build-dyn/* build-dyn/test-tools/*; do
			[[ -f $f && -x $f ]] || continue
			rel=${f#build-dyn/}
			# a wrapper per binary: errors and definite leaks exit 86, which the tests report
			printf '#!/bin/sh\nexec valgrind -q --read-inline-info=no --suppressions=%s/tests/valgrind.supp --error-exitcode=86 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --log-file=%s/logs/%%p.log %s "$@"\n' \
				"$PWD" "$PWD/$vg" "$PWD/$f" >"$vg/$rel"
			chmod +x "$vg/$rel"
		done
		# the same wrappers, but host-local is the real binary: the wrapped main plugins find their
		# own build's host-local in CNI_PATH and run IPAM in-process, under memcheck
		cp -a "$vg" "$vg-inproc"
		rm -rf "$vg-inproc/logs"
		ln -s "$PWD/$vg/logs" "$vg-inproc/logs"
		cp build-dyn/host-local "$vg-inproc/host-local"
		IFS=';' read -r -a vg_list <<<"$VG_SUITES"
		vg_turn=$((COMMITS % VG_SAMPLE))
		for s in "${vg_list[@]}"; do
			f=${s%%:*} flt=${s#*:} label=${s#*:}
			[[ " ${SUITES[*]} " == *" ${f%.bats} "* ]] || continue
			# this commit's share of the suite's tests (the corpus samples its cases instead)
			if [[ $f != corpus.bats && $VG_SAMPLE -gt 1 ]]; then
				flt=$(sample_filter "$f" "$flt" "$VG_SAMPLE") || continue
				label="${label:+$label, }share $((COMMITS % VG_SAMPLE + 1)) of $VG_SAMPLE"
			fi
			d=$vg
			[[ " $VG_INPROC " == *" $f "* ]] && d=$vg-inproc
			# a corpus case under memcheck takes ~1 s, not the release build's milliseconds: one case
			# in VG_SAMPLE here (the release lane runs them all), a share that moves with each
			# commit, so every case takes its turn under memcheck
			addjob valgrind "${f%.bats}${label:+ -f $label}" "$d" "$f" "$flt" "CORPUS_TIMEOUT=60 CORPUS_SAMPLE=${VG_CORPUS_SAMPLE:-$VG_SAMPLE/$vg_turn}"
		done
		;;
	vm)
		lane_ok release && lane_ok test || { echo "not ok - lane vm: build failed" >"$OUT/lanefail-$lane"; continue; }
		IFS=';' read -r -a vm_guests <<<"$VM_SUITES"
		for g in "${vm_guests[@]}"; do addjob vm "$g" build vm "" "CORPUS_SAMPLE=${VM_CORPUS_SAMPLE:-2/$((COMMITS % 2))}"; done
		;;
	mutate) addjob mutate mutants - mutate ;;
	*) echo "unknown lane $lane" >&2; exit 2 ;;
	esac
done

# longest first, so the run ends with short jobs filling the gaps
prio() {
	local lane name
	IFS=$US read -r lane name _ <<<"$1"
	if [[ " ${FIRST:-} " == *" ${name%% *} "* ]]; then echo 0; return; fi
	case "$lane:$name" in
	vm:* | mutate:*) echo 1 ;;
	valgrind:corpus*) echo 2 ;;
	asan:stress* | asan:corpus* | asan:containerd* | asan:podman*) echo 3 ;;
	valgrind:*) echo 4 ;;
	asan:*) echo 5 ;;
	*:stress* | *:corpus*) echo 6 ;;
	*) echo 7 ;;
	esac
}
mapfile -t jobs_list < <(for j in "${jobs_list[@]}"; do printf '%s\t%s\n' "$(prio "$j")" "$j"; done | sort -s -t$'\t' -k1,1n | cut -f2-)

run_job() { # N: runs job N, output in $OUT/N.tap, "rc start end" in $OUT/N.meta
	local n=$1 lane name dir suite flt envs start rc
	IFS=$US read -r lane name dir suite flt envs <<<"${jobs_list[$n]}"
	start=$(date +%s.%N)
	if [[ $suite == unit ]]; then
		"$dir/unit-tests" >"$OUT/$n.tap" 2>&1
		rc=$?
	elif [[ $suite == lint ]]; then
		scripts/lint.sh >"$OUT/$n.tap" 2>&1
		rc=$?
	elif [[ $lane == mutate ]]; then
		# the mutants start from the release build made above, when there is one
		local base=
		[[ -x build/bridge && " ${build_failed[*]} " != *" release "* ]] && (have_lane release || have_lane valgrind || have_lane vm) && base=$PWD/build
		MUTATE_SAMPLE=$MUTATE_SAMPLE/$((COMMITS % MUTATE_SAMPLE)) MUTATE_BASE_BUILD=$base timeout -s TERM -k 30 "$SUITE_TIMEOUT" tests/mutate.sh >"$OUT/$n.tap" 2>&1
		rc=$?
	elif [[ $lane == vm ]]; then
		# shellcheck disable=SC2086
		# software emulation beside the other lanes on 2 cores: the VM gets 40 minutes
		env $envs VM_TEST_BUILD=build-test VM_TIMEOUT=${VM_TIMEOUT:-2400} timeout -s TERM -k 30 "$((${VM_TIMEOUT:-2400} + 300))" \
			tests/vm/run.sh build $name >"$OUT/$n.tap" 2>&1
		rc=$?
	else
		# the etcd cluster suite measures latencies (a join within 2 s, a death within leaseTTL + 1 s)
		# that a node gives its agent; on 2 cores shared with three other jobs its processes come
		# first (the other jobs still run: it only takes its turn on the CPU before theirs)
		local prio=0
		[[ $suite == cluster.bats ]] && prio=-10
		# shellcheck disable=SC2086
		nice -n "$prio" env $envs PLUGIN_DIR="$dir" timeout -s INT -k 60 "$SUITE_TIMEOUT" \
			unshare -n sh -c 'ip link set lo up && exec "$@"' sh bats --tap ${flt:+-f "$flt"} "tests/$suite" >"$OUT/$n.tap" 2>&1 </dev/null
		rc=$?
	fi
	# the CPU the job's processes used (user + system, every descendant reaped), for the budget
	# (times must run in this shell, not in a $(...) subshell: a subshell has no children of its own)
	local cpu
	times >"$OUT/$n.cpu"
	cpu=$(awk 'END { s = 0; for (i = 1; i <= 2; i++) { split($i, p, "m"); s += p[1] * 60 + p[2] } printf "%.0f", s }' "$OUT/$n.cpu")
	echo "$rc $start $(date +%s.%N) $cpu" >"$OUT/$n.meta"
}

# tally N: prints job N's output and counts it
MISSING_TOOL='not installed|is missing|missing:|not built|no reference|cannot be installed'
tally() {
	local n=$1 lane name dir suite flt envs rc start end line plan=0 seen=0 nok=0 p=0 f=0 s=0
	IFS=$US read -r lane name dir suite flt envs <<<"${jobs_list[$n]}"
	read -r rc start end cpu <"$OUT/$n.meta"
	printf '# [%s] %s (%.0f s, CPU %s s)\n' "$lane" "$name" "$(bc <<<"$end - $start")" "$cpu"
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		1..*) [[ ${line#1..} =~ ^[0-9]+$ ]] && plan=$((plan + ${line#1..})) ;;
		"ok "*"# skip"* | "ok "*"# SKIP"*)
			seen=$((seen + 1))
			if [[ ${line#*# [sS][kK][iI][pP]} =~ $MISSING_TOOL ]]; then
				f=$((f + 1))
				echo "not ok - [$lane] the skip above is a missing tool: the install step must provide it"
			else
				s=$((s + 1))
			fi
			;;
		"ok "*) seen=$((seen + 1)) p=$((p + 1)) ;;
		"not ok "*) seen=$((seen + 1)) nok=$((nok + 1)) f=$((f + 1)) ;;
		esac
	done <"$OUT/$n.tap"
	if [[ $rc == 124 || $rc == 137 || $rc == 130 ]]; then
		# the limit each kind of job runs under (see run_job): the VM lane has its own
		local limit=$SUITE_TIMEOUT
		[[ $lane == vm ]] && limit=$((${VM_TIMEOUT:-2400} + 300))
		echo "not ok - [$lane] $name: timed out after ${limit}s, or was interrupted (status $rc)"
		f=$((f + 1))
	elif [[ $seen -lt $plan ]]; then
		echo "not ok - [$lane] $name: $((plan - seen)) of $plan tests never reported (the run died; status $rc)"
		f=$((f + plan - seen))
	elif [[ $rc != 0 && $nok == 0 ]]; then
		echo "not ok - [$lane] $name: exited with status $rc, though no test reported a failure"
		f=$((f + 1))
	elif [[ $seen == 0 ]]; then
		echo "not ok - [$lane] $name: ran no test"
		f=$((f + 1))
	fi
	passed=$((passed + p)) failed=$((failed + f)) skipped=$((skipped + s))
	printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$lane" "$name" "$start" "$end" "$p" "$f" "$s" "$cpu" >>"$OUT/times"
}

for f in "$OUT"/lanefail-*; do [[ -e $f ]] && { cat "$f"; failed=$((failed + 1)); }; done
printf '%s\n' "${build_failed[@]/#/not ok - build failed: }" | grep -v '^$' || true
failed=$((failed + ${#build_failed[@]}))
echo "# ${#jobs_list[@]} jobs, $JOBS at once"
declare -A done_=()
report_done() {
	local n
	for n in "${!jobs_list[@]}"; do
		[[ -z ${done_[$n]:-} && -e $OUT/$n.meta ]] || continue
		done_[$n]=1
		tally "$n"
	done
}
# each job gets a process group of its own, so that it can be interrupted whole: by FAIL_FAST,
# or when the run itself is interrupted (Ctrl-C, a CI cancel), whose jobs would otherwise run on
# with nobody to count them; their teardowns still run (bats gets SIGINT)
set -m
declare -A pids=()
stopped=
# SIGINT to every running job: its process group, and its timeout (which makes a process group
# of its own and passes the signal on to the suite)
stop_jobs() {
	local p
	for p in "${pids[@]}"; do
		kill -INT -- "-$p" 2>/dev/null
		pkill -INT -P "$p" 2>/dev/null
	done
}
interrupt() {
	trap - INT TERM
	echo "# interrupted: stopping the running jobs (their teardowns run)"
	stop_jobs
	wait
	exit 130
}
trap interrupt INT TERM
reap() {
	wait -n
	running=$((running - 1))
	report_done
	if [[ ${FAIL_FAST:-} == 1 && $failed -gt 0 && -z $stopped ]]; then
		stopped=1
		echo "# FAIL_FAST: a job failed; interrupting the others"
		stop_jobs
	fi
}
running=0
for n in "${!jobs_list[@]}"; do
	while ((running >= JOBS)); do reap; done
	[[ -n $stopped ]] && break
	run_job "$n" &
	pids[$n]=$!
	running=$((running + 1))
done
while ((running > 0)); do reap; done
wait
[[ -z $stopped ]] && report_done

# valgrind: the logs of runs that reported errors
if have_lane valgrind && [[ -d build-valgrind/logs ]]; then
	grep -l -E 'ERROR SUMMARY: [1-9]|definitely lost|indirectly lost' build-valgrind/logs/*.log 2>/dev/null | head -5 | xargs -r cat
fi

# the budget: every job's wall time, each lane's span, the whole run
T1=$(date +%s.%N)
echo "# wall time and CPU time (user + system, the job's processes) per job in seconds, longest first:"
awk -F'\t' '{printf "#   %6.0f %6.0f  %-9s %s\n", $4 - $3, $8, $1, substr($2, 1, 90)}' "$OUT/times" | sort -rn
echo "# lanes (first start to last end; CPU of their jobs, seconds):"
awk -F'\t' '{ if (!($1 in s) || $3 < s[$1]) s[$1] = $3; if ($4 > e[$1]) e[$1] = $4; c[$1] += $8 } END { for (l in s) printf "#   %-9s %6.0f %6.0f\n", l, e[l] - s[l], c[l] }' "$OUT/times"
printf '# whole run: %.0f s (builds included)\n' "$(bc <<<"$T1 - $T0")"
echo "$passed passed, $failed failed, $skipped skipped"
[[ $failed -eq 0 ]]
exit
}
