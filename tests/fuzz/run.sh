#!/bin/sh
# make fuzz: each libFuzzer target in turn (one job, niced) for FUZZ_TIME seconds, starting from its
# saved corpus, its regression inputs and seeds mined from tests/corpus; then the saved corpus is
# re-minimised (-merge=1) to the inputs that add coverage. Exit 1 when a target crashed.
set -eu
cd "$(dirname "$0")/../.."
B=${FUZZ_BUILD:-build-fuzz}
T=${FUZZ_TIME:-300}
targets=${FUZZ_TARGETS:-conf args}
./tests/fuzz/mkseeds.sh "$B/seeds"
status=0
for t in $targets; do
	work=$B/work/$t
	mkdir -p "$work" "$B/artifacts" "tests/fuzz/corpus/$t"
	dirs="tests/fuzz/corpus/$t $B/seeds/$t"
	[ -d "tests/fuzz/regress/$t" ] && dirs="$dirs tests/fuzz/regress/$t"
	# CNI_ARGS are short; configs (with a prevResult) a few KiB at most
	maxlen=8192
	[ "$t" = args ] && maxlen=1024
	dict=""
	[ -f "tests/fuzz/$t.dict" ] && dict="-dict=tests/fuzz/$t.dict"
	echo "fuzz: $t for ${T}s" >&2
	# shellcheck disable=SC2086
	if ! nice -n "${FUZZ_NICE:-10}" "$B/fuzz-$t" -max_total_time="$T" -max_len="$maxlen" -timeout=10 $dict \
		-print_final_stats=1 -artifact_prefix="$B/artifacts/$t-" "$work" $dirs; then
		echo "fuzz: $t crashed; the input is in $B/artifacts/ (replay: $B/fuzz-$t FILE)" >&2
		status=1
		continue
	fi
	# keep only inputs that add an edge (counters off), so the saved corpus stays small
	new=$B/merged/$t
	rm -rf "$new"
	mkdir -p "$new"
	# shellcheck disable=SC2086
	nice -n "${FUZZ_NICE:-10}" "$B/fuzz-$t" -merge=1 -use_counters=0 -max_len="$maxlen" "$new" "tests/fuzz/corpus/$t" "$work" $B/seeds/$t
	rm -rf "tests/fuzz/corpus/$t"
	mv "$new" "tests/fuzz/corpus/$t"
	echo "fuzz: $t: $(ls "tests/fuzz/corpus/$t" | wc -l) inputs saved in tests/fuzz/corpus/$t" >&2
done
exit $status
