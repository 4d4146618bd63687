#!/usr/bin/env bats
# The fuzz targets' saved inputs (tests/fuzz/), replayed through the lane's build of each target
# (gcc, no libFuzzer): a crash, a sanitizer report or a broken parser property fails the test.
# `make fuzz` (clang + libFuzzer) is what finds new inputs; this keeps the old ones fixed.

setup() {
	load helpers/common
	FUZZ=$BATS_TEST_DIRNAME/fuzz
}

# replay TARGET DIR...: every file of the DIRs through fuzz-replay-TARGET; the count must match
replay() {
	local t=$1 bin=$PLUGIN_DIR/test-tools/fuzz-replay-$1 n=0 d
	shift
	[[ -x $bin ]] || fail "$bin not built (make BUILD=... test-tools)"
	for d in "$@"; do
		n=$((n + $(find "$d" -type f | wc -l)))
	done
	((n > 0)) || fail "no saved inputs for $t in $*"
	run "$bin" "$@"
	[[ $status != 86 ]] || fail "sanitizer report replaying $t: $output"
	assert_success
	assert_line "replayed $n inputs"
}

# the saved corpus of TARGET plus its regression inputs, when there are some
saved() {
	echo "$FUZZ/corpus/$1"
	[[ ! -d $FUZZ/regress/$1 ]] || echo "$FUZZ/regress/$1"
}

@test "conf: the saved corpus (configs, prevResults, host-local ranges) replays cleanly" {
	mapfile -t dirs < <(saved conf)
	replay conf "${dirs[@]}"
}

@test "args: the saved corpus (CNI_ARGS, IgnoreUnknown, K8S_* labels) replays cleanly" {
	mapfile -t dirs < <(saved args)
	replay args "${dirs[@]}"
}

@test "conf and args: every stdin and CNI_ARGS of the hostile-input corpus replays cleanly" {
	"$FUZZ/mkseeds.sh" "$BATS_TEST_TMPDIR/seeds"
	replay conf "$BATS_TEST_TMPDIR/seeds/conf"
	replay args "$BATS_TEST_TMPDIR/seeds/args"
}

@test "the replay fails on an input it cannot read instead of replaying nothing" {
	run "$PLUGIN_DIR/test-tools/fuzz-replay-conf" "$BATS_TEST_TMPDIR/missing"
	assert_failure
	assert_output --partial "missing: No such file"
	run "$PLUGIN_DIR/test-tools/fuzz-replay-args"
	assert_failure 2
}

@test "the saved corpus stays small: at most 500 inputs per target, each at most 8 KiB" {
	local t n big
	for t in conf args; do
		n=$(find "$FUZZ/corpus/$t" -type f | wc -l)
		((n <= 500)) || fail "$t: $n saved inputs (re-minimise: make fuzz merges into tests/fuzz/corpus/$t)"
		mapfile -t dirs < <(saved "$t")
		big=$(find "${dirs[@]}" -type f -size +8k)
		[[ -z $big ]] || fail "inputs over 8 KiB: $big"
	done
}
