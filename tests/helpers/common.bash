# shellcheck shell=bash
# Shared by every bats file: run plugins as a runtime does, check CNI errors, clean up.
load '/usr/lib/bats/bats-support/load'
load '/usr/lib/bats/bats-assert/load'

: "${PLUGIN_DIR:=$BATS_TEST_DIRNAME/../build}"
PLUGIN_DIR=$(cd "$PLUGIN_DIR" && pwd)
export PLUGIN_DIR
REF_DIR=/usr/lib/cni
# ASan/UBSan builds report with this status, distinct from a CNI error's 1.
export ASAN_OPTIONS=${ASAN_OPTIONS:-exitcode=86:detect_leaks=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:exitcode=86:print_stacktrace=1}

# A short unique tag for this test's objects (network names, links, namespaces).
tag() { printf 't%x%s' "$$" "${BATS_TEST_NUMBER:-0}"; }

# cni VERB PLUGIN CONFIG [CONTAINERID] [IFNAME] [NETNS]
# Runs the plugin like a runtime: CNI_* env, config on stdin. CNI_ARGS passes through
# from the caller's environment. Output in $output, exit status in $status.
cni() {
	local verb=$1 plugin=$2 conf=$3 cid=${4:-${CID:-ctr1}} ifname=${5:-${IFNAME:-eth0}} netns=${6:-${NETNS:-/var/run/netns/none}}
	local bin=$plugin
	[[ $bin == */* ]] || bin=$PLUGIN_DIR/$plugin
	run env CNI_COMMAND="$verb" CNI_CONTAINERID="$cid" CNI_IFNAME="$ifname" CNI_NETNS="$netns" \
		CNI_PATH="${CNI_PATH_OVERRIDE:-$PLUGIN_DIR}" "$bin" <<<"$conf"
	if [[ $status == 86 ]]; then
		echo "sanitizer error in $plugin $verb:" >&2
		echo "$output" >&2
		return 1
	fi
}

# expect_error CODE REGEX: the last run failed with a CNI error of that code whose
# msg matches REGEX (exit 1, JSON on stdout, cniVersion present).
expect_error() {
	assert_equal "$status" 1
	local code msg
	code=$(jq -r .code <<<"$output") || fail "not JSON: $output"
	msg=$(jq -r .msg <<<"$output")
	[[ $code == "$1" ]] || fail "want code $1, got $code: $msg"
	[[ $msg =~ $2 ]] || fail "msg \"$msg\" does not match /$2/"
	jq -e 'has("cniVersion")' <<<"$output" >/dev/null || fail "error without cniVersion: $output"
}

# jqo FILTER: jq on $output.
jqo() { jq -r "$@" <<<"$output"; }

# skip_if_wrapped PLUGIN: tests that count a plugin's syscalls or execs (strace) mean nothing
# when PLUGIN_DIR holds the valgrind lane's wrapper scripts instead of the binaries
skip_if_wrapped() {
	[[ $(head -c2 "$PLUGIN_DIR/$1" 2>/dev/null) != '#!' ]] || skip "counts syscalls: not through the valgrind wrapper (the release and asan lanes run it)"
}

# rounds PLUGIN FULL WRAPPED: how many times a loop repeats a call for a race's or a count's sake:
# FULL, but WRAPPED when PLUGIN_DIR holds the valgrind lane's wrapper scripts, where every exec
# costs a memcheck start (~0.5 s of CPU) and a few rounds run the same code under memcheck; the
# release and asan lanes run the same test full-size
rounds() { if [[ $(head -c2 "$PLUGIN_DIR/$1" 2>/dev/null) == '#!' ]]; then echo "$3"; else echo "$2"; fi; }

# require CMD_OR_PATH...: the test fails (never skips) when one is missing: every tool and
# reference binary the tests use is installed by the install step (scripts/deps.sh), so a
# missing one is a broken install, not a reason to pass quietly.
require() {
	local x
	for x in "$@"; do
		if [[ $x == */* ]]; then
			[[ -x $x ]] || fail "$x is missing: the install step (scripts/deps.sh) provides it"
		else
			command -v "$x" >/dev/null || fail "$x is not installed: the install step (scripts/deps.sh) provides it"
		fi
	done
}
