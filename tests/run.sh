#!/usr/bin/env bash
# The test command: builds each lane, runs the C unit tests and every bats suite against it,
# prints the TAP output, then one line "N passed, N failed"; exits non-zero on any failure.
#   LANES="release asan valgrind vm"  which lanes (default all): release build, ASan+UBSan test
#                            build, valgrind memcheck over the release binaries (a subset of the
#                            suites), and the VM lane (tests/vm/: kernel features the host lacks)
#   SUITES="spec host-local"  which bats files (default all in tests/)
set -uo pipefail
cd "$(dirname "$0")/.."
LANES=${LANES:-release asan valgrind vm}
mapfile -t SUITES < <(if [[ -n ${SUITES:-} ]]; then printf 'tests/%s.bats\n' $SUITES; else ls tests/*.bats; fi)
passed=0 failed=0 skipped=0

# one suite may not hang the run: bats is killed after SUITE_TIMEOUT seconds (a failure)
SUITE_TIMEOUT=${SUITE_TIMEOUT:-1200}
suite() { # suite BUILD_DIR [bats args...]: runs bats under the timeout
	local dir=$1 rc
	shift
	PLUGIN_DIR=$dir timeout -s INT -k 60 "$SUITE_TIMEOUT" bats --tap "$@" 2>&1
	rc=$?
	[[ $rc == 124 || $rc == 137 || $rc == 130 ]] && echo "not ok - ${*: -1}: timed out after ${SUITE_TIMEOUT}s (lane $dir)"
	return 0
}

count() { # reads TAP on stdin, echoes it, tallies
	local line
	while IFS= read -r line; do
		printf '%s\n' "$line"
		case $line in
		"ok "*"# skip"*) skipped=$((skipped + 1)); passed=$((passed + 1)) ;;
		"ok "*) passed=$((passed + 1)) ;;
		"not ok "*) failed=$((failed + 1)) ;;
		*"bats warning: Executed "*" instead of expected "*) failed=$((failed + 1)) ;; # a test that died unreported
		esac
	done
}

VM_SUITES=${VM_SUITES:-vm/vlan.bats bridge.bats:vlan corpus.bats:vlan libcni.bats:vlan test/faults.bats:vlan}
# valgrind is slow (~0.5 s per exec): the suites and tests it runs (bats -f regex); the plugin
# suites whole (tests that count syscalls skip themselves), masq without its timing-bound traffic
# tests, and the hostile-input corpus (every case a plugin exec, in two halves so each fits the
# suite timeout); stress, faults (test builds only) and the runtime suites only in the other
# lanes (entries separated by ';')
VG_SUITES=${VG_SUITES:-spec.bats:;host-local.bats:;bridge.bats:;vxlan.bats:;masq.bats:^(del|check|gc|nft|iptables|available|valgrind);portmap.bats:;loopback.bats:;cnitool.bats:;corpus.bats:^corpus: (host-local|bridge)$;corpus.bats:^corpus: (vxlan|vlan|portmap|loopback)$}

for lane in $LANES; do
	if [[ $lane == vm ]]; then
		echo "# lane vm: booting Debian's kernel under QEMU for: $VM_SUITES"
		if ! make -s BUILD=build all >&2 || ! make -s TESTING=1 BUILD=build-test all >&2; then
			echo "not ok - lane vm: build failed"
			failed=$((failed + 1))
			continue
		fi
		# shellcheck disable=SC2086
		count < <(VM_TEST_BUILD=build-test tests/vm/run.sh build $VM_SUITES 2>&1; rc=$?
			case $rc in
			0 | 1) ;;
			124) echo "# lane vm skipped: QEMU is not installed and cannot be installed here" ;;
			*) echo "not ok - lane vm: the VM did not finish (status $rc)" ;;
			esac)
		continue
	fi
	if [[ $lane == valgrind ]]; then
		echo "# lane valgrind: memcheck over the release binaries: $VG_SUITES"
		if ! command -v valgrind >/dev/null || ! make -s BUILD=build all test-tools >&2; then
			echo "not ok - lane valgrind: no valgrind or build failed"
			failed=$((failed + 1))
			continue
		fi
		vg=build-valgrind
		rm -rf "$vg" && mkdir -p "$vg/test-tools" "$vg/logs"
		for f in build/* build/test-tools/*; do
			[[ -f $f && -x $f ]] || continue
			rel=${f#build/}
			# a wrapper per binary: errors and definite leaks exit 86, which the tests report
			printf '#!/bin/sh\nexec valgrind -q --suppressions=%s/tests/valgrind.supp --error-exitcode=86 --leak-check=full --errors-for-leak-kinds=definite,indirect --show-leak-kinds=definite,indirect --log-file=%s/logs/%%p.log %s "$@"\n' \
				"$PWD" "$PWD/$vg" "$PWD/$f" >"$vg/$rel"
			chmod +x "$vg/$rel"
		done
		IFS=';' read -r -a vg_list <<<"$VG_SUITES"
		for s in "${vg_list[@]}"; do
			f=${s%%:*} flt=${s#*:}
			echo "# lane valgrind: tests/$f${flt:+ (-f '$flt')}"
			# a corpus case under memcheck takes ~1 s, not the release build's milliseconds
			count < <(CORPUS_TIMEOUT=60 suite "$vg" ${flt:+-f "$flt"} "tests/$f")
		done
		# the logs of runs that reported errors
		grep -l -E 'ERROR SUMMARY: [1-9]|definitely lost|indirectly lost' "$vg"/logs/*.log 2>/dev/null | head -5 | xargs -r cat
		continue
	fi
	case $lane in
	release) build=build; mk=() ;;
	asan) build=build-asan; mk=(SAN=1) ;;
	*) echo "unknown lane $lane" >&2; exit 2 ;;
	esac
	echo "# lane $lane: building into $build/"
	if ! make -s "${mk[@]}" BUILD=$build all test-tools $build/unit-tests >&2; then
		echo "not ok - lane $lane: build failed"
		failed=$((failed + 1))
		continue
	fi
	echo "# lane $lane: unit tests"
	count < <($build/unit-tests 2>&1 || echo "not ok - unit tests exited with status $?")
	for s in "${SUITES[@]}"; do
		echo "# lane $lane: $s"
		count < <(suite "$build" "$s")
	done
done
[[ $skipped -gt 0 ]] && echo "# $skipped of the passed tests were skipped (see '# skip' lines above)"
echo "$passed passed, $failed failed"
[[ $failed -eq 0 ]]
